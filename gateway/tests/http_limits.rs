//! The HTTP server's limits and request screening end to end, with real sockets against a
//! gateway on 127.0.0.1:0: `Host` (DNS rebinding), `Origin` and `Content-Type` (cross-site
//! requests), connection permits that WebSocket viewers hold, per-stream viewer slots taken
//! before the 101, the reserve pool, connections without headers evicted to make room, the
//! login-body limit, the body timeout, a flood of stalled logins at full scale, and a
//! stalled MJPEG viewer counted as slow.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use camgate::app::GatewayOptions;
use camgate::http::admission::ConnectionLimits;
use camgate::plugins::PluginCatalog;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECS: fn(u64) -> Duration = Duration::from_secs;

const ADMIN: &str = "admin-token-0123456789";

const ONE_STREAM: &str = r#"
streams:
  - id: a
    source: { plugin: testsrc, width: 160, height: 90, fps: 10 }
"#;

fn options_with(limits: ConnectionLimits) -> GatewayOptions {
    GatewayOptions {
        limits,
        ..fast_options()
    }
}

/// Connects and sends `request` (a raw HTTP/1.1 head, maybe with part of a body).
async fn send_raw(addr: SocketAddr, request: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Reads one response head (status and head text) from `stream`; `None` if the server
/// closed the connection without answering.
async fn read_head(stream: &mut TcpStream, timeout: Duration) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            return Some((head[9..12].parse().unwrap(), head));
        }
        let n = tokio::time::timeout(timeout, stream.read(&mut chunk))
            .await
            .expect("an answer or a close in time")
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits until the server closes `stream` (EOF or reset), reading away whatever comes.
async fn closed_by_server(stream: &mut TcpStream, timeout: Duration) {
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server did not close the connection within {timeout:?}"),
        }
    }
}

/// A login whose body never arrives: headers announce 64 bytes, none follow.
fn stalled_login(addr: SocketAddr) -> String {
    format!(
        "POST /api/session HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n"
    )
}

async fn login_cookie(addr: SocketAddr) -> String {
    login(addr, ADMIN)
        .await
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_are_refused_before_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("camgate.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
server:
  allowed_origins: ["http://partner.example"]
auth:
  tokens:
    - role: admin
      token: {ADMIN}
{ONE_STREAM}"#
        ),
    )
    .unwrap();
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let cookie = login_cookie(addr).await;
    let foreign = "http://127.0.0.1:1";
    let same = format!("http://{addr}");
    let create = |id: &str| format!(r#"{{"id": "{id}", "source": {{"plugin": "testsrc"}}}}"#);
    let count = || gateway.state().registry.all().len();

    // A page on another port of the same host, with the admin's cookie: refused for the
    // Origin, whatever the content type, and nothing is created.
    for content_type in ["application/json", "text/plain", ""] {
        let (status, json) = http_json(
            addr,
            "POST",
            "/api/streams",
            &[
                ("Cookie", &cookie),
                ("Origin", foreign),
                ("Content-Type", content_type),
            ],
            Some(&create("x")),
        )
        .await;
        assert_eq!(status, 403, "{content_type}: {json}");
        assert_eq!(json["error"]["code"], "origin_not_allowed");
    }
    for (method, path) in [
        ("DELETE", "/api/streams/a"),
        ("DELETE", "/api/session"),
        ("PUT", "/api/streams/a"),
    ] {
        let body = (method == "PUT").then(|| create("a"));
        let (status, _) = http_json(
            addr,
            method,
            path,
            &[("Cookie", &cookie), ("Origin", foreign)],
            body.as_deref(),
        )
        .await;
        assert_eq!(status, 403, "{method} {path}");
    }
    let (status, _) = http_json(
        addr,
        "POST",
        "/api/session",
        &[("Origin", foreign)],
        Some(&format!(r#"{{"token": "{ADMIN}"}}"#)),
    )
    .await;
    assert_eq!(status, 403, "a cross-site login is refused too");
    assert_eq!(count(), 1);

    // Same-origin without the JSON type: 415 (with the cookie, so it is not about access).
    let (status, json) = http_json(
        addr,
        "POST",
        "/api/streams",
        &[
            ("Cookie", &cookie),
            ("Origin", &same),
            ("Content-Type", "text/plain"),
        ],
        Some(&create("x")),
    )
    .await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    assert_eq!(count(), 1);

    // Same-origin JSON, an allow-listed origin, and a client without Origin all work.
    for (id, origin) in [
        ("s1", Some(same.as_str())),
        ("s2", Some("http://partner.example")),
        ("s3", None),
    ] {
        let mut headers = vec![("Cookie", cookie.as_str())];
        headers.extend(origin.map(|o| ("Origin", o)));
        let (status, json) =
            http_json(addr, "POST", "/api/streams", &headers, Some(&create(id))).await;
        assert_eq!(status, 201, "{origin:?}: {json}");
    }
    assert_eq!(count(), 4);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_hosts_that_name_the_gateway_are_served_even_without_tokens() {
    let gateway = start(&format!(
        "server:\n  allowed_hosts: [cams.example]\n{ONE_STREAM}"
    ))
    .await;
    let addr = gateway.local_addr();
    let port = addr.port();
    // A rebinding page: its own name in Host. Refused for reads, writes and WebSockets.
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "cams.example.evil.example",
    ] {
        let (status, json) = http_json(addr, "GET", "/api/streams", &[("Host", host)], None).await;
        assert_eq!(status, 421, "{host}: {json}");
        assert_eq!(json["error"]["code"], "host_not_allowed");
        let (status, _) = http_json(
            addr,
            "POST",
            "/api/streams",
            &[("Host", host)],
            Some(r#"{"id": "ssrf", "source": {"plugin": "testsrc"}}"#),
        )
        .await;
        assert_eq!(status, 421, "{host}");
        let mut ws = send_raw(
            addr,
            &format!(
                "GET /ws/streams/a HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            ),
        )
        .await;
        let (status, _) = read_head(&mut ws, SECS(5)).await.expect("an answer");
        assert_eq!(status, 421, "{host}");
    }
    assert!(gateway.state().registry.get("ssrf").is_none());
    // IP literals (the address connected to, or the one a port forward exposes: rebinding
    // needs a name), `localhost` with any port, and configured names.
    for host in [
        addr.to_string(),
        "127.0.0.1".to_owned(),
        "192.0.2.7:30080".to_owned(),
        format!("localhost:{port}"),
        "localhost".to_owned(),
        "[::1]:8000".to_owned(),
        "cams.example".to_owned(),
        format!("CAMS.example:{port}"),
    ] {
        let (status, json) = http_json(addr, "GET", "/api/streams", &[("Host", &host)], None).await;
        assert_eq!(status, 200, "{host}: {json}");
    }
    // No Host at all (HTTP/1.0 tools) is not a browser.
    let mut old = send_raw(addr, "GET /healthz HTTP/1.0\r\n\r\n").await;
    assert_eq!(read_head(&mut old, SECS(5)).await.unwrap().0, 200);
    gateway.shutdown().await;
}

/// The opening handshake of a viewer WebSocket for stream `a`.
fn upgrade_request(addr: SocketAddr) -> String {
    format!(
        "GET /ws/streams/a HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

// One thread on purpose: the connection tasks that the requests wake run one after another
// in a queue, so every request is checked before any upgraded session has started — the
// interleaving that overran the limit when the slot was counted only after the 101.
#[tokio::test]
async fn concurrent_upgrades_take_exactly_the_free_viewer_slots_and_are_counted() {
    const N: usize = 32;
    let gateway = start(&format!(
        "server:\n  max_viewers_per_stream: {}\n{ONE_STREAM}",
        N / 2
    ))
    .await;
    let addr = gateway.local_addr();
    // Every connection is open before any request, and every request is sent before any
    // answer is read: the upgrades race each other inside the gateway.
    let mut sockets = Vec::new();
    for _ in 0..N {
        sockets.push(TcpStream::connect(addr).await.unwrap());
    }
    let request = upgrade_request(addr);
    for socket in &mut sockets {
        socket.write_all(request.as_bytes()).await.unwrap();
    }
    let mut open = Vec::new();
    let mut refused = 0;
    for mut socket in sockets {
        match read_head(&mut socket, SECS(10)).await.expect("an answer").0 {
            101 => open.push(socket),
            503 => refused += 1,
            status => panic!("unexpected status {status}"),
        }
    }
    assert_eq!((open.len(), refused), (N / 2, N / 2));
    let state = gateway.state();
    let hub = state.registry.get("a").unwrap();
    let viewers_metric = || {
        let text = state.metrics.render();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("camgate_viewers{stream=\"a\",transport=\"websocket\"} ")
                    .map(|v| v.parse::<i64>().unwrap())
            })
            .unwrap_or(0)
    };
    // The refused handshakes' sockets were closed; the open ones count, all of them.
    eventually(SECS(5), "connections = open WebSockets", || {
        state.metrics.connections.get() == (N / 2) as i64
    })
    .await;
    eventually(SECS(5), "viewers = open WebSockets", || {
        viewers_metric() == (N / 2) as i64
    })
    .await;
    assert_eq!(hub.viewer_count(), N / 2);
    drop(open);
    eventually(SECS(5), "every count back to zero", || {
        state.metrics.connections.get() == 0 && hub.viewer_count() == 0 && viewers_metric() == 0
    })
    .await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_bounds_websocket_viewers() {
    let gateway = start_with(
        ONE_STREAM,
        PluginCatalog::with_builtins(),
        options_with(ConnectionLimits {
            max_connections: 3,
            reserve_connections: 0,
            ..ConnectionLimits::default()
        }),
    )
    .await;
    let addr = gateway.local_addr();
    let mut viewers = Vec::new();
    for _ in 0..3 {
        let mut ws = connect(addr, "/ws/streams/a").await;
        next_frame(&mut ws, SECS(5)).await;
        viewers.push(ws);
    }
    assert_eq!(gateway.state().metrics.connections.get(), 3);
    // A fourth connection is closed at once, without an answer.
    let mut extra = send_raw(
        addr,
        &format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    )
    .await;
    assert_eq!(read_head(&mut extra, SECS(5)).await, None);
    // A viewer leaving frees its slot.
    viewers.pop();
    let state = gateway.state();
    eventually(SECS(5), "the slot is free", || {
        state.metrics.connections.get() == 2
    })
    .await;
    let mut again = connect(addr, "/ws/streams/a").await;
    next_frame(&mut again, SECS(5)).await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_gets_408_and_its_connection_closes() {
    let gateway = start_with(
        ONE_STREAM,
        PluginCatalog::with_builtins(),
        options_with(ConnectionLimits {
            body_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        }),
    )
    .await;
    let addr = gateway.local_addr();
    for path in ["/api/session", "/api/streams"] {
        let mut stream = send_raw(
            addr,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"id\": "
            ),
        )
        .await;
        let (status, head) = read_head(&mut stream, SECS(5)).await.expect("an answer");
        assert_eq!(status, 408, "{path}: {head}");
        closed_by_server(&mut stream, SECS(5)).await;
    }
    assert_eq!(gateway.state().registry.all().len(), 1);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_body_reads_are_limited() {
    let gateway = start_with(
        &format!("auth:\n  tokens:\n    - role: admin\n      token: {ADMIN}\n{ONE_STREAM}"),
        PluginCatalog::with_builtins(),
        options_with(ConnectionLimits {
            max_login_bodies: 2,
            ..ConnectionLimits::default()
        }),
    )
    .await;
    let addr = gateway.local_addr();
    let mut stalled = Vec::new();
    for _ in 0..2 {
        stalled.push(send_raw(addr, &stalled_login(addr)).await);
    }
    // Both are being read (held) before the third arrives.
    let state = gateway.state();
    eventually(SECS(5), "two logins being read", || {
        state.admission.login_bodies_in_progress() == 2
    })
    .await;
    let mut third = send_raw(addr, &stalled_login(addr)).await;
    let (status, head) = read_head(&mut third, SECS(5)).await.expect("an answer");
    assert_eq!(status, 503, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    closed_by_server(&mut third, SECS(5)).await;
    // Everything else goes on.
    assert_eq!(http_json(addr, "GET", "/healthz", &[], None).await.0, 200);
    drop(stalled);
    // The server notices the closed sockets on its own time: wait for it, not a guess.
    eventually(SECS(5), "the stalled logins are gone", || {
        state.admission.login_bodies_in_progress() == 0
    })
    .await;
    let (status, _) = http_json(
        addr,
        "POST",
        "/api/session",
        &[],
        Some(r#"{"token": "wrong-wrong-wrong-wrong"}"#),
    )
    .await;
    assert_eq!(
        status, 401,
        "a login is read again once the stalled ones are gone"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reserve_serves_health_checks_and_viewers_when_the_pool_is_full() {
    let gateway = start_with(
        ONE_STREAM,
        PluginCatalog::with_builtins(),
        options_with(ConnectionLimits {
            max_connections: 8,
            reserve_connections: 4,
            header_timeout: SECS(60),
            reserve_header_timeout: Duration::from_millis(500),
            ..ConnectionLimits::default()
        }),
    )
    .await;
    let addr = gateway.local_addr();
    let state = gateway.state();
    // Connections that send nothing fill the general pool.
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    eventually(SECS(5), "the general pool is full", || {
        state.metrics.connections.get() == 8
    })
    .await;
    // On the reserve: logins, the API and the UI are refused at once, and closed...
    for request in [
        stalled_login(addr),
        format!("GET /api/streams HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    ] {
        let mut stream = send_raw(addr, &request).await;
        let (status, head) = read_head(&mut stream, SECS(5)).await.expect("an answer");
        assert_eq!(status, 503, "{request}: {head}");
        closed_by_server(&mut stream, SECS(5)).await;
    }
    // ...health checks, metrics, snapshots and viewers are served.
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/streams/a/snapshot.jpg",
    ] {
        assert_eq!(http(addr, "GET", path, &[], None).await.0, 200, "{path}");
    }
    let mut viewer = connect(addr, "/ws/streams/a").await;
    next_frame(&mut viewer, SECS(5)).await;
    // A silent connection on the reserve is dropped after the short header timeout.
    let mut lurker = TcpStream::connect(addr).await.unwrap();
    closed_by_server(&mut lurker, SECS(5)).await;
    next_frame(&mut viewer, SECS(5)).await;
    drop(silent);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_4300_stalled_logins_leaves_health_checks_and_viewers_working() {
    const FLOOD: usize = 4300;
    let gateway = start_with(
        &format!("auth:\n  tokens:\n    - role: admin\n      token: {ADMIN}\n{ONE_STREAM}"),
        PluginCatalog::with_builtins(),
        // The real limits, with a long body timeout so the stalled logins stay stalled.
        options_with(ConnectionLimits {
            body_timeout: SECS(120),
            ..ConnectionLimits::default()
        }),
    )
    .await;
    let addr = gateway.local_addr();
    let state = gateway.state();
    let mut flood = Vec::with_capacity(FLOOD);
    while flood.len() < FLOOD {
        let batch: Vec<_> = (0..100)
            .map(|_| tokio::spawn(async move { send_raw(addr, &stalled_login(addr)).await }))
            .collect();
        for task in batch {
            flood.push(task.await.unwrap());
        }
    }
    // Under the flood: health checks and a viewer (with its token) work.
    assert_eq!(http_json(addr, "GET", "/healthz", &[], None).await.0, 200);
    let (mut viewer, _) = {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{addr}/ws/streams/a")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {ADMIN}").parse().unwrap());
        tokio_tungstenite::connect_async(request).await.unwrap()
    };
    next_frame(&mut viewer, SECS(10)).await;
    // Only the logins being read hold connections; the rest were refused and closed.
    let limits = ConnectionLimits::default();
    eventually(SECS(30), "refused logins release their connections", || {
        state.metrics.connections.get() <= (limits.max_login_bodies + 1) as i64
    })
    .await;
    drop(flood);
    eventually(SECS(30), "only the viewer is left", || {
        state.metrics.connections.get() == 1
    })
    .await;
    next_frame(&mut viewer, SECS(5)).await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_mjpeg_viewer_is_cut_after_the_write_timeout_and_counted_as_slow() {
    // Big noisy frames fill a small receive window quickly.
    let gateway = start(
        "streams:\n  - id: big\n    source: { plugin: testsrc, width: 1280, height: 720, fps: 25 }\n",
    )
    .await;
    let addr = gateway.local_addr();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET /api/streams/big/mjpeg HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let (status, _) = read_head(&mut stream, SECS(10)).await.expect("an answer");
    assert_eq!(status, 200);
    // The client stops reading. The write timeout (1 s here) cuts it and counts it.
    let state = gateway.state();
    let hub = state.registry.get("big").unwrap();
    let slow = || {
        state
            .metrics
            .render()
            .lines()
            .find_map(|l| {
                l.strip_prefix("camgate_slow_viewer_disconnects_total{stream=\"big\"} ")
                    .map(|v| v.parse::<u64>().unwrap())
            })
            .unwrap_or(0)
    };
    eventually(
        SECS(15),
        "the stalled MJPEG viewer is cut and counted",
        || hub.viewer_count() == 0 && slow() == 1,
    )
    .await;
    assert_eq!(state.metrics.connections.get(), 0);
    drop(stream);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_send_headers_make_room_for_viewers_oldest_first() {
    let gateway = start_with(
        ONE_STREAM,
        PluginCatalog::with_builtins(),
        // Header timeouts far beyond the test: only eviction can free a silent slot.
        options_with(ConnectionLimits {
            max_connections: 4,
            reserve_connections: 1,
            header_timeout: SECS(600),
            reserve_header_timeout: SECS(600),
            // Any silent connection may go (the 1 s default has a unit test).
            evict_after: Duration::ZERO,
            ..ConnectionLimits::default()
        }),
    )
    .await;
    let addr = gateway.local_addr();
    let state = gateway.state();
    let mut first = connect(addr, "/ws/streams/a").await;
    next_frame(&mut first, SECS(5)).await;
    // Connections that say nothing take every other slot (the last one on the reserve).
    let mut silent = Vec::new();
    for n in 2..=5 {
        silent.push(TcpStream::connect(addr).await.unwrap());
        eventually(SECS(5), "the connection holds a slot", || {
            state.metrics.connections.get() == n
        })
        .await;
    }
    // Each new viewer gets in at once, in place of the oldest silent connection.
    let mut viewers = vec![first];
    for (n, lurker) in silent.iter_mut().enumerate() {
        let mut viewer = connect(addr, "/ws/streams/a").await;
        next_frame(&mut viewer, SECS(5)).await;
        closed_by_server(lurker, SECS(5)).await;
        assert_eq!(state.metrics.connections_evicted.get(), n as u64 + 1);
        viewers.push(viewer);
    }
    assert_eq!(state.metrics.connections.get(), 5);
    assert_eq!(state.metrics.connections_refused.get(), 0);
    // Every slot is a viewer now: nobody is evicted, a newcomer is closed at once, and the
    // viewers keep their pictures.
    let mut late = TcpStream::connect(addr).await.unwrap();
    closed_by_server(&mut late, SECS(5)).await;
    assert_eq!(state.metrics.connections_refused.get(), 1);
    assert_eq!(state.metrics.connections_evicted.get(), 4);
    for viewer in &mut viewers {
        next_frame(viewer, SECS(5)).await;
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_counted_and_do_not_flood_the_log() {
    let gateway = start_with(
        ONE_STREAM,
        PluginCatalog::with_builtins(),
        options_with(ConnectionLimits {
            max_connections: 1,
            reserve_connections: 0,
            ..ConnectionLimits::default()
        }),
    )
    .await;
    let addr = gateway.local_addr();
    let state = gateway.state();
    // A viewer past its headers: not a connection the gateway may evict to make room.
    let mut held = send_raw(
        addr,
        &format!("GET /api/streams/a/mjpeg HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    )
    .await;
    assert_eq!(read_head(&mut held, SECS(5)).await.map(|h| h.0), Some(200));
    assert_eq!(state.metrics.connections.get(), 1);
    // A flood beyond the limit (unauthenticated, as cheap as a connect) must not write a
    // log line per connection: it could fill the disk.
    for _ in 0..50 {
        let mut refused = TcpStream::connect(addr).await.unwrap();
        closed_by_server(&mut refused, SECS(5)).await;
    }
    assert_eq!(
        state.metrics.connections_refused.get(),
        50,
        "every refusal counts"
    );
    // One line per 10 s window: 1 unless this machine took over 10 s for the loop.
    let warnings = state.admission.refusal_lines_logged();
    assert!(
        (1..=3).contains(&warnings),
        "{warnings} warnings for 50 refusals"
    );
    drop(held);
    gateway.shutdown().await;
}
