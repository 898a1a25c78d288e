//! The HTTP API end to end: CRUD through the API-managed file (and its survival across a
//! restart), every error as JSON with the right status and nothing changed, snapshots and
//! MJPEG parsed by a real client, Prometheus metrics, and the access-control matrix.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECS: fn(u64) -> Duration = Duration::from_secs;

const MANIFEST: &str = r#"
streams:
  - id: hand
    name: Hand written
    source: { plugin: testsrc, width: 160, height: 90, fps: 10 }
"#;

fn manifest_dir(content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("camgate.yaml");
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

fn api_streams_file(manifest: &Path) -> PathBuf {
    manifest.with_file_name("camgate.api.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_goes_to_the_api_file_survives_a_restart_and_never_touches_the_manifest() {
    let (_dir, path) = manifest_dir(MANIFEST);
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();

    let (status, created) = http_json(
        addr,
        "POST",
        "/api/streams",
        &[("Content-Type", "application/json")],
        Some(r#"{"id": "cam1", "name": "Camera 1", "on_demand": false, "source": {"plugin": "testsrc", "width": 320, "height": 180}}"#),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id"], "cam1");
    assert_eq!(created["editable"], true);
    assert_eq!(created["source"]["width"], 320);

    // It streams.
    let mut ws = connect(addr, "/ws/streams/cam1").await;
    let frame = next_frame(&mut ws, SECS(5)).await;
    assert_eq!((frame.width, frame.height), (320, 180));

    // Update: the viewer stays connected through the source restart.
    let (status, updated) = http_json(
        addr,
        "PUT",
        "/api/streams/cam1",
        &[],
        Some(r#"{"name": "Camera one", "on_demand": false, "source": {"plugin": "testsrc", "width": 160, "height": 90}}"#),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "Camera one");
    loop {
        let frame = next_frame(&mut ws, SECS(5)).await;
        if frame.width == 160 {
            break;
        }
    }

    // The hand-written stream is read-only here, with the reason.
    for (method, body) in [
        ("PUT", Some(r#"{"source": {"plugin": "testsrc"}}"#)),
        ("DELETE", None),
    ] {
        let (status, error) = http_json(addr, method, "/api/streams/hand", &[], body).await;
        assert_eq!(status, 409, "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("operator's manifest") && message.contains("camgate.yaml:3:"),
            "{message}"
        );
    }
    let (status, error) = http_json(
        addr,
        "POST",
        "/api/streams",
        &[],
        Some(r#"{"id": "hand", "source": {"plugin": "testsrc"}}"#),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(error["error"]["field"], "id");

    assert_eq!(std::fs::read_to_string(&path).unwrap(), MANIFEST);
    let stored = std::fs::read_to_string(api_streams_file(&path)).unwrap();
    assert!(stored.contains("\"cam1\""));
    drop(ws);
    gateway.shutdown().await;

    // A new gateway on the same files has the API stream.
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let (status, list) = http_json(addr, "GET", "/api/streams", &[], None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hand", "cam1"]);
    assert_eq!(list["streams"][1]["name"], "Camera one");

    // Delete closes its viewers and removes it from the file.
    let mut ws = connect(addr, "/ws/streams/cam1").await;
    next_frame(&mut ws, SECS(5)).await;
    let (status, _, _) = http(addr, "DELETE", "/api/streams/cam1", &[], None).await;
    assert_eq!(status, 204);
    assert_eq!(closed_with(&mut ws, SECS(5)).await, Some(4004));
    assert!(
        !std::fs::read_to_string(api_streams_file(&path))
            .unwrap()
            .contains("cam1")
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), MANIFEST);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_with_the_right_status_and_change_nothing() {
    let (_dir, path) = manifest_dir(MANIFEST);
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let huge = format!(
        r#"{{"id": "x", "source": {{"plugin": "testsrc", "pad": "{}"}}}}"#,
        "a".repeat(70_000)
    );
    // (method, path, body, status, error code, field)
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        u16,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "POST",
            "/api/streams",
            Some("{not json"),
            400,
            "malformed_request",
            None,
        ),
        (
            "POST",
            "/api/streams",
            Some(r#"{"id": 5, "source": {"plugin": "testsrc"}}"#),
            422,
            "invalid_stream",
            None,
        ),
        (
            "POST",
            "/api/streams",
            Some(r#"{"id": "x", "colour": "red", "source": {"plugin": "testsrc"}}"#),
            422,
            "invalid_stream",
            Some("colour"),
        ),
        (
            "POST",
            "/api/streams",
            Some(r#"{"id": "x", "source": {"plugin": "testsrc", "widht": 3}}"#),
            422,
            "invalid_stream",
            Some("source.widht"),
        ),
        (
            "POST",
            "/api/streams",
            Some(r#"{"id": "x", "source": {"plugin": "testsrc", "fps": 0}}"#),
            422,
            "invalid_stream",
            None,
        ),
        (
            "POST",
            "/api/streams",
            Some(r#"{"id": "Bad Id", "source": {"plugin": "testsrc"}}"#),
            422,
            "invalid_stream",
            Some("id"),
        ),
        (
            "POST",
            "/api/streams",
            Some(r#"{"id": "x", "source": {"plugin": "nope"}}"#),
            422,
            "invalid_stream",
            None,
        ),
        (
            "POST",
            "/api/streams",
            Some(r#"{"source": {"plugin": "testsrc"}}"#),
            422,
            "invalid_stream",
            Some("id"),
        ),
        (
            "POST",
            "/api/streams",
            Some(
                r#"{"id": "x", "source": {"plugin": "ffmpeg-mjpeg", "url": "file:///etc/passwd"}}"#,
            ),
            422,
            "invalid_stream",
            Some("source.url"),
        ),
        (
            "POST",
            "/api/streams",
            Some(r#"{"id": "x", "source": {"plugin": "testsrc", "ffmpeg_path": "/bin/sh"}}"#),
            422,
            "invalid_stream",
            Some("source.ffmpeg_path"),
        ),
        (
            "POST",
            "/api/streams",
            Some(huge.as_str()),
            413,
            "body_too_large",
            None,
        ),
        (
            "PUT",
            "/api/streams/nope",
            Some(r#"{"source": {"plugin": "testsrc"}}"#),
            404,
            "stream_not_found",
            None,
        ),
        (
            "DELETE",
            "/api/streams/nope",
            None,
            404,
            "stream_not_found",
            None,
        ),
        (
            "GET",
            "/api/streams/nope",
            None,
            404,
            "stream_not_found",
            None,
        ),
        (
            "GET",
            "/api/streams/nope/snapshot.jpg",
            None,
            404,
            "stream_not_found",
            None,
        ),
        (
            "GET",
            "/api/streams/nope/mjpeg",
            None,
            404,
            "stream_not_found",
            None,
        ),
        ("GET", "/api/nothing", None, 404, "not_found", None),
        (
            "PATCH",
            "/api/streams",
            None,
            405,
            "method_not_allowed",
            None,
        ),
        (
            "GET",
            "/api/streams/hand/mjpeg?max_fps=-1",
            None,
            400,
            "bad_query",
            None,
        ),
    ];
    for (method, path, body, status, code, field) in cases {
        let (got, json) = http_json(addr, method, path, &[], body).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        assert_eq!(json["error"]["code"], code, "{method} {path}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        if let Some(field) = field {
            assert_eq!(json["error"]["field"], field, "{method} {path}: {json}");
        }
    }
    // A body must be declared JSON (a cross-site form or "simple" fetch cannot do that).
    let valid = r#"{"id": "x", "source": {"plugin": "testsrc"}}"#;
    for content_type in ["", "text/plain", "application/x-www-form-urlencoded"] {
        for (method, path) in [("POST", "/api/streams"), ("PUT", "/api/streams/hand")] {
            let (got, json) = http_json(
                addr,
                method,
                path,
                &[("Content-Type", content_type)],
                Some(valid),
            )
            .await;
            assert_eq!(got, 415, "{method} {path} as `{content_type}`: {json}");
            assert_eq!(json["error"]["code"], "unsupported_media_type");
        }
    }
    // Nothing changed.
    assert!(!api_streams_file(&path).exists());
    assert_eq!(gateway.state().registry.all().len(), 1);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_mjpeg_plugins_config_health_and_openapi() {
    let (_dir, path) = manifest_dir(MANIFEST);
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();

    // Snapshot of a stopped on-demand stream: starts it and waits for a frame.
    let (status, headers, jpeg) =
        http(addr, "GET", "/api/streams/hand/snapshot.jpg", &[], None).await;
    assert_eq!(status, 200);
    assert!(headers.contains(&("content-type".into(), "image/jpeg".into())));
    let frame = decode_frame(&jpeg);
    assert_eq!((frame.width, frame.height), (160, 90));

    // MJPEG: parse parts as a client would.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        // HTTP/1.0: the body is sent raw until the connection closes (no chunked framing),
        // as simple MJPEG clients expect.
        .write_all(
            format!("GET /api/streams/hand/mjpeg HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut parts = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    while parts.len() < 5 {
        let n = tokio::time::timeout(SECS(5), stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "MJPEG stream ended early");
        buf.extend_from_slice(&chunk[..n]);
        parts = mjpeg_parts(&buf);
    }
    let head = String::from_utf8_lossy(&buf[..200.min(buf.len())]).to_string();
    assert!(
        head.contains("multipart/x-mixed-replace; boundary=camgateframe"),
        "{head}"
    );
    let mut last = 0;
    for part in &parts[..5] {
        let frame = decode_frame(part);
        assert!(frame.seq > last);
        last = frame.seq;
    }
    assert_eq!(
        gateway.state().registry.get("hand").unwrap().viewer_count(),
        1,
        "an MJPEG client is a viewer"
    );
    drop(stream);

    let (status, plugins) = http_json(addr, "GET", "/api/plugins", &[], None).await;
    assert_eq!(status, 200);
    assert!(
        plugins["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "testsrc" && p["abi_version"] == 2)
    );
    let (status, config) = http_json(addr, "GET", "/api/config", &[], None).await;
    assert_eq!(status, 200);
    assert!(
        config["manifest"]
            .as_str()
            .unwrap()
            .ends_with("camgate.yaml")
    );
    assert_eq!(config["last_reload_successful"], true);
    assert_eq!(http_json(addr, "GET", "/healthz", &[], None).await.0, 200);
    let (status, ready) = http_json(addr, "GET", "/readyz", &[], None).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
    let (status, openapi) = http_json(addr, "GET", "/api/openapi.json", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/api/streams/{id}/mjpeg"]["get"].is_object());
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_frames_viewers_and_reloads_consistently() {
    let (_dir, path) = manifest_dir(MANIFEST);
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let mut a = connect(addr, "/ws/streams/hand").await;
    let mut b = connect(addr, "/ws/streams/hand").await;
    for _ in 0..10 {
        next_frame(&mut a, SECS(5)).await;
        next_frame(&mut b, SECS(5)).await;
    }
    std::fs::write(
        &path,
        format!("{MANIFEST}  - id: more\n    source: {{ plugin: testsrc }}\n"),
    )
    .unwrap();
    gateway.state().reload(camgate::reload::Cause::Signal).await;
    std::fs::write(&path, "streams: [oops\n").unwrap();
    gateway.state().reload(camgate::reload::Cause::Signal).await;

    let (status, _, body) = http(addr, "GET", "/metrics", &[], None).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
    };
    let received = value("camgate_frames_received_total{stream=\"hand\"}");
    let sent = value("camgate_frames_sent_total{stream=\"hand\",transport=\"websocket\"}");
    let dropped = value("camgate_frames_dropped_total{stream=\"hand\"}");
    assert!(received >= 10.0);
    // Every viewer got every frame published while it watched, minus what it skipped.
    assert!(
        sent >= 20.0 && sent <= received * 2.0 + 2.0,
        "sent {sent}, received {received}"
    );
    assert!(sent + dropped <= received * 2.0 + 2.0);
    assert_eq!(
        value("camgate_viewers{stream=\"hand\",transport=\"websocket\"}"),
        2.0
    );
    assert_eq!(value("camgate_source_up{stream=\"hand\"}"), 1.0);
    assert_eq!(
        value("camgate_config_reloads_total{result=\"applied\"}"),
        1.0
    );
    assert_eq!(
        value("camgate_config_reloads_total{result=\"rejected\"}"),
        1.0
    );
    assert_eq!(value("camgate_config_last_reload_successful"), 0.0);
    assert!(text.contains("camgate_plugin_info{abi=\"2\",name=\"testsrc\""));
    assert!(text.contains("camgate_build_info{version="));
    assert!(text.contains(
        "camgate_http_requests_total{method=\"GET\",route=\"/ws/streams/{id}\",status=\"101\"} 2"
    ));
    assert!(
        text.contains(
            "camgate_frame_latency_seconds_bucket{stream=\"hand\",transport=\"websocket\""
        )
    );
    assert!(text.contains("camgate_process_resident_memory_bytes"));
    // Labels are bounded: no raw paths, addresses or agents.
    assert!(!text.contains("127.0.0.1"));
    drop((a, b));

    // A removed stream's series disappear.
    assert!(text.contains("stream=\"more\""));
    std::fs::write(&path, MANIFEST).unwrap();
    let report = gateway.state().reload(camgate::reload::Cause::Signal).await;
    assert_eq!(report.result, "applied");
    let (_, _, body) = http(addr, "GET", "/metrics", &[], None).await;
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains("stream=\"more\""), "{text}");
    assert!(text.contains("stream=\"hand\""));
    gateway.shutdown().await;
}

/// Opens a WebSocket with one extra request header (a token or a cookie).
async fn ws_with_header(
    url: &str,
    name: &'static str,
    value: &str,
) -> Result<
    (
        Client,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(name, value.parse().unwrap());
    tokio_tungstenite::connect_async(request).await
}

const ADMIN: &str = "admin-token-0123456789";
const VIEWER_ALL: &str = "viewer-token-all-0123456";
const VIEWER_A: &str = "viewer-token-a-0123456789";
const METRICS: &str = "metrics-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_control_matrix() {
    let (_dir, path) = manifest_dir(&format!(
        r#"
auth:
  tokens:
    - role: admin
      token: {ADMIN}
    - role: viewer
      token: {VIEWER_ALL}
    - role: viewer
      token: {VIEWER_A}
      streams: [a]
    - role: metrics
      token: {METRICS}
streams:
  - id: a
    source: {{ plugin: testsrc, width: 160, height: 90 }}
  - id: b
    source: {{ plugin: testsrc, width: 160, height: 90 }}
"#
    ));
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let bearer = |t: &str| format!("Bearer {t}");
    // The scheme is case-insensitive (RFC 9110 §11.1): one column says `bearer`, one `BEARER`.
    let (admin, all, only_a, wrong, metrics) = (
        format!("bearer {ADMIN}"),
        format!("BEARER {VIEWER_ALL}"),
        bearer(VIEWER_A),
        bearer("not-a-token-at-all-xx"),
        bearer(METRICS),
    );
    // (method, path, body, [none, wrong, viewer-a, viewer-all, admin, metrics])
    let post = r#"{"id": "c", "source": {"plugin": "testsrc"}}"#;
    let table: Vec<(&str, &str, Option<&str>, [u16; 6])> = vec![
        ("GET", "/healthz", None, [200, 200, 200, 200, 200, 200]),
        ("GET", "/readyz", None, [200, 200, 200, 200, 200, 200]),
        (
            "GET",
            "/api/openapi.json",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        ("GET", "/api/session", None, [200, 200, 200, 200, 200, 200]),
        ("GET", "/api/streams", None, [401, 401, 200, 200, 200, 403]),
        (
            "GET",
            "/api/streams/a",
            None,
            [401, 401, 200, 200, 200, 403],
        ),
        (
            "GET",
            "/api/streams/b",
            None,
            [401, 401, 403, 200, 200, 403],
        ),
        (
            "GET",
            "/api/streams/b/snapshot.jpg",
            None,
            [401, 401, 403, 200, 200, 403],
        ),
        (
            "GET",
            "/api/streams/a/mjpeg?max_fps=-1",
            None,
            [401, 401, 400, 400, 400, 403],
        ),
        ("GET", "/ws/streams/a", None, [401, 401, 426, 426, 426, 403]),
        ("GET", "/api/plugins", None, [401, 401, 200, 200, 200, 403]),
        ("GET", "/api/config", None, [401, 401, 403, 403, 200, 403]),
        ("GET", "/metrics", None, [401, 401, 403, 403, 200, 200]),
        (
            "POST",
            "/api/streams",
            Some(post),
            [401, 401, 403, 403, 201, 403],
        ),
        (
            "PUT",
            "/api/streams/c",
            Some(post),
            [401, 401, 403, 403, 200, 403],
        ),
        (
            "DELETE",
            "/api/streams/c",
            None,
            [401, 401, 403, 403, 204, 403],
        ),
    ];
    let who = [
        "none",
        "wrong",
        "viewer-a",
        "viewer-all",
        "admin",
        "metrics",
    ];
    let credentials = [
        None,
        Some(&wrong),
        Some(&only_a),
        Some(&all),
        Some(&admin),
        Some(&metrics),
    ];
    for (method, path, body, expected) in table {
        for ((who, header), expected) in who.iter().zip(credentials).zip(expected) {
            let headers: Vec<(&str, &str)> = header
                .map(|h| vec![("Authorization", h.as_str())])
                .unwrap_or_default();
            let (status, _, bytes) =
                http(addr, method, path, &headers, body.map(str::as_bytes)).await;
            assert_eq!(
                status,
                expected,
                "{who} {method} {path}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
    // The list is filtered by the allow-list.
    let (_, list) = http_json(
        addr,
        "GET",
        "/api/streams",
        &[("Authorization", &only_a)],
        None,
    )
    .await;
    assert_eq!(list["streams"].as_array().unwrap().len(), 1);

    // WebSocket: refused before the upgrade without a token; allowed with the header.
    let url = format!("ws://{addr}/ws/streams/a");
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let (mut ws, _) = ws_with_header(&url, "Authorization", &only_a)
        .await
        .unwrap();
    next_frame(&mut ws, SECS(5)).await;
    let other_stream = format!("ws://{addr}/ws/streams/b");
    match ws_with_header(&other_stream, "Authorization", &only_a).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }

    // Browsers: a token buys a session cookie that works for WebSocket and snapshots.
    let cookie = login(addr, VIEWER_A).await;
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let (_, me) = http_json(addr, "GET", "/api/session", &[("Cookie", &session)], None).await;
    assert_eq!(
        (me["authenticated"].as_bool(), me["role"].as_str()),
        (Some(true), Some("viewer"))
    );
    let (mut ws2, _) = ws_with_header(&url, "Cookie", &session).await.unwrap();
    next_frame(&mut ws2, SECS(5)).await;
    // The same valid cookie from a page of another origin: refused for the Origin (403),
    // before the cookie is looked at — not a 401 that would send the page to a login.
    {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.as_str().into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert("Cookie", session.parse().unwrap());
        headers.insert("Origin", "http://127.0.0.1:1".parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 403);
                let body =
                    String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).to_string();
                assert!(body.contains("origin_not_allowed"), "{body}");
            }
            other => panic!("expected 403, got {other:?}"),
        }
    }
    let (status, _) = http_json(
        addr,
        "POST",
        "/api/session",
        &[],
        Some(r#"{"token": "wrong-wrong-wrong-wrong"}"#),
    )
    .await;
    assert_eq!(status, 401);

    // Media URLs (only) accept the token in the query, for clients like VLC.
    let (status, _, _) = http(
        addr,
        "GET",
        &format!("/api/streams/a/snapshot.jpg?access_token={VIEWER_A}"),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = http(
        addr,
        "GET",
        &format!("/api/streams?access_token={VIEWER_A}"),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 401);

    // Revoking a token by reload closes its open viewers with 4001.
    let without_a = std::fs::read_to_string(&path).unwrap().replace(
        &format!("    - role: viewer\n      token: {VIEWER_A}\n      streams: [a]\n"),
        "",
    );
    std::fs::write(&path, without_a).unwrap();
    let report = gateway.state().reload(camgate::reload::Cause::Signal).await;
    assert_eq!(report.result, "applied", "{report:?}");
    assert_eq!(closed_with(&mut ws, SECS(5)).await, Some(4001));
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_share_one_metric_series() {
    let gateway = start(MANIFEST).await;
    let addr = gateway.local_addr();
    for i in 1..=20 {
        let (status, _, _) = http(addr, &format!("FOO{i}"), "/healthz", &[], None).await;
        assert_eq!(status, 405);
    }
    http(addr, "PATCH", "/healthz", &[], None).await;
    let (_, _, body) = http(addr, "GET", "/metrics", &[], None).await;
    let text = String::from_utf8(body).unwrap();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("camgate_http_requests_total{") && l.contains("/healthz"))
        .collect();
    assert!(
        series.contains(
            &"camgate_http_requests_total{method=\"other\",route=\"/healthz\",status=\"405\"} 20"
        ),
        "{series:#?}"
    );
    assert!(
        series.iter().any(|l| l.contains("method=\"PATCH\"")),
        "standard methods keep their name: {series:#?}"
    );
    assert!(!text.contains("FOO"), "{series:#?}");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_refuses_viewers_beyond_its_limit() {
    let (_dir, path) = manifest_dir(&format!("server:\n  max_viewers_per_stream: 1\n{MANIFEST}"));
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let mut first = connect(addr, "/ws/streams/hand").await;
    next_frame(&mut first, SECS(5)).await;
    match tokio_tungstenite::connect_async(format!("ws://{addr}/ws/streams/hand")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
    let (status, error) = http_json(addr, "GET", "/api/streams/hand/mjpeg", &[], None).await;
    assert_eq!(status, 503);
    assert_eq!(error["error"]["code"], "too_many_viewers");
    drop(first);
    gateway.shutdown().await;
}

const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

/// The running (substituted) URL of stream `id`.
fn running_url(gateway: &camgate::app::Gateway, id: &str) -> String {
    gateway
        .state()
        .config()
        .manifest
        .stream(id)
        .unwrap()
        .source
        .options["url"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_stream_with_an_inline_password_keeps_the_password() {
    let (_dir, path) = manifest_dir(MANIFEST);
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let url = "rtsp://admin:Raw'Pw9x@127.0.0.1:9/x";
    let body = serde_json::json!({"id": "cam", "name": "Cam", "source": {"plugin": "ffmpeg-mjpeg", "url": url}});
    let (status, created) =
        http_json(addr, "POST", "/api/streams", JSON, Some(&body.to_string())).await;
    assert_eq!(status, 201, "{created}");
    let shown = created["source"]["url"].as_str().unwrap().to_owned();
    assert_eq!(shown, "rtsp://admin:***@127.0.0.1:9/x");

    // A form that sends back what it was shown, with a new name: the password stays.
    let edit =
        serde_json::json!({"name": "Renamed", "source": {"plugin": "ffmpeg-mjpeg", "url": shown}});
    let (status, updated) = http_json(
        addr,
        "PUT",
        "/api/streams/cam",
        JSON,
        Some(&edit.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(running_url(&gateway, "cam"), url);
    let stored = std::fs::read_to_string(api_streams_file(&path)).unwrap();
    assert!(stored.contains(url) && !stored.contains("***"), "{stored}");

    // A form that leaves the url out: kept too.
    let edit = serde_json::json!({"name": "Again", "source": {"plugin": "ffmpeg-mjpeg"}});
    let (status, updated) = http_json(
        addr,
        "PUT",
        "/api/streams/cam",
        JSON,
        Some(&edit.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(running_url(&gateway, "cam"), url);

    // The mask with a changed host would store `***` as the password: refused, nothing
    // changed.
    let before = std::fs::read(api_streams_file(&path)).unwrap();
    for (method, target, body) in [
        (
            "PUT",
            "/api/streams/cam",
            serde_json::json!({"name": "X", "source": {"plugin": "ffmpeg-mjpeg", "url": "rtsp://admin:***@10.0.0.9/x"}}),
        ),
        (
            "POST",
            "/api/streams",
            serde_json::json!({"id": "other", "source": {"plugin": "ffmpeg-mjpeg", "url": "rtsp://admin:***@10.0.0.9/x"}}),
        ),
    ] {
        let (status, error) = http_json(addr, method, target, JSON, Some(&body.to_string())).await;
        assert_eq!(status, 422, "{method} {error}");
        assert_eq!(error["error"]["field"], "source.url");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("the password is masked"),
            "{error}"
        );
    }
    assert_eq!(std::fs::read(api_streams_file(&path)).unwrap(), before);
    assert_eq!(running_url(&gateway, "cam"), url);

    // A new password typed in: stored.
    let edit = serde_json::json!({"source": {"plugin": "ffmpeg-mjpeg", "url": "rtsp://admin:n3w'P!w@127.0.0.1:9/x"}});
    let (status, updated) = http_json(
        addr,
        "PUT",
        "/api/streams/cam",
        JSON,
        Some(&edit.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        running_url(&gateway, "cam"),
        "rtsp://admin:n3w'P!w@127.0.0.1:9/x"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_input_is_data_and_rewrites_keep_the_operators_references() {
    let (_dir, path) = manifest_dir(MANIFEST);
    // The operator wrote the API file by hand with a reference and an escape.
    std::fs::write(
        api_streams_file(&path),
        "streams:\n  - id: ops\n    name: \"$${not a var}\"\n    source: { plugin: ffmpeg-mjpeg, url: \"rtsp://admin:${CAM_PW}@127.0.0.1:9/x\" }\n",
    )
    .unwrap();
    let gateway = start_from_file_with_env(
        &path,
        fast_options(),
        &[("SOME_VAR", "leaked-value"), ("CAM_PW", "s3cret-pw")],
    )
    .await;
    let addr = gateway.local_addr();
    let body = r#"{"id": "cam", "name": "${SOME_VAR}", "source": {"plugin": "testsrc"}}"#;
    let (status, created) = http_json(addr, "POST", "/api/streams", JSON, Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "${SOME_VAR}");
    let (_, list) = http_json(addr, "GET", "/api/streams", &[], None).await;
    let text = list.to_string();
    assert!(!text.contains("leaked-value"), "{text}");
    assert!(text.contains("\"name\":\"${not a var}\""), "{text}");

    let reference = "rtsp://admin:${CAM_PW}@127.0.0.1:9/x";
    let stored = std::fs::read_to_string(api_streams_file(&path)).unwrap();
    assert!(stored.contains(reference), "{stored}");
    assert!(stored.contains("\"$${not a var}\""), "{stored}");
    assert!(stored.contains("\"$${SOME_VAR}\""), "{stored}");
    assert!(
        !stored.contains("s3cret-pw") && !stored.contains("leaked-value"),
        "{stored}"
    );
    // Renaming the operator's stream through the API (sending back the masked URL it was
    // shown) keeps the reference too.
    let edit = r#"{"name": "Ops", "source": {"plugin": "ffmpeg-mjpeg", "url": "rtsp://admin:***@127.0.0.1:9/x"}}"#;
    let (status, updated) = http_json(addr, "PUT", "/api/streams/ops", JSON, Some(edit)).await;
    assert_eq!(status, 200, "{updated}");
    let stored = std::fs::read_to_string(api_streams_file(&path)).unwrap();
    assert!(stored.contains(reference), "{stored}");
    assert!(!stored.contains("s3cret-pw"), "{stored}");
    assert_eq!(
        running_url(&gateway, "ops"),
        "rtsp://admin:s3cret-pw@127.0.0.1:9/x"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_file_path_is_configurable_and_a_failed_write_says_what_to_set() {
    let (dir, path) = manifest_dir(&format!(
        "server:\n  api_streams_file: state/streams.json\n{MANIFEST}"
    ));
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let body = r#"{"id": "cam", "source": {"plugin": "testsrc"}}"#;
    // The directory does not exist: the write fails, the message names the file and the key.
    let (status, error) = http_json(addr, "POST", "/api/streams", JSON, Some(body)).await;
    assert_eq!(status, 500, "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    let configured = dir.path().join("state").join("streams.json");
    assert!(
        message.contains(&configured.display().to_string())
            && message.contains("server.api_streams_file"),
        "{message}"
    );
    assert!(gateway.state().config().manifest.stream("cam").is_none());

    std::fs::create_dir(dir.path().join("state")).unwrap();
    let (status, created) = http_json(addr, "POST", "/api/streams", JSON, Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert!(configured.exists() && !api_streams_file(&path).exists());
    let (_, config) = http_json(addr, "GET", "/api/config", &[], None).await;
    assert_eq!(config["api_streams_file"], configured.display().to_string());
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_write_over_a_manifest_broken_meanwhile_changes_nothing_and_later_reloads_work() {
    let (_dir, path) = manifest_dir(MANIFEST);
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let (status, _) = http_json(
        addr,
        "POST",
        "/api/streams",
        JSON,
        Some(r#"{"id": "cam1", "source": {"plugin": "testsrc"}}"#),
    )
    .await;
    assert_eq!(status, 201);
    let before = std::fs::read(api_streams_file(&path)).unwrap();
    // The operator breaks the manifest; no watcher runs, so the gateway has not seen it.
    std::fs::write(
        &path,
        "streams:\n  - id: hand\n    source: { plugin: testsrc, fps: 0 }\n",
    )
    .unwrap();
    let (status, error) = http_json(
        addr,
        "POST",
        "/api/streams",
        JSON,
        Some(r#"{"id": "cam2", "source": {"plugin": "testsrc"}}"#),
    )
    .await;
    assert_eq!(status, 409, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("configuration on disk is invalid"),
        "{error}"
    );
    assert_eq!(std::fs::read(api_streams_file(&path)).unwrap(), before);
    assert!(gateway.state().config().manifest.stream("cam2").is_none());
    // Once the manifest is fixed, reloads and API writes work again.
    std::fs::write(&path, MANIFEST).unwrap();
    let report = gateway
        .state()
        .reload(camgate::reload::Cause::Periodic)
        .await;
    assert_ne!(report.result, "rejected", "{report:?}");
    let (status, _) = http_json(
        addr,
        "POST",
        "/api/streams",
        JSON,
        Some(r#"{"id": "cam2", "source": {"plugin": "testsrc"}}"#),
    )
    .await;
    assert_eq!(status, 201);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_rules_set_through_the_api_survive_updates_that_omit_them() {
    let (_dir, path) = manifest_dir(MANIFEST);
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();

    // Every stream shows the rules in force, defaults included.
    let (_, hand) = http_json(addr, "GET", "/api/streams/hand", &[], None).await;
    assert_eq!(
        hand["health_rules"],
        serde_json::json!({"enabled": true, "frozen_after": "10s", "dark_after": "10s",
            "dark_luma": 20.0, "late_after": "3s", "min_fps_ratio": 0.5})
    );

    let body = r#"{"id": "dark-room", "source": {"plugin": "testsrc"},
        "health_rules": {"enabled": false, "dark_after": "1m"}}"#;
    let (status, created) = http_json(addr, "POST", "/api/streams", JSON, Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["health_rules"]["enabled"], false);
    assert_eq!(created["health_rules"]["dark_after"], "1m");
    assert_eq!(created["health_rules"]["frozen_after"], "10s");

    // A client that does not know the rules (an older UI) renames the stream: they stay.
    let rename = r#"{"name": "Dark room", "source": {"plugin": "testsrc"}}"#;
    let (status, updated) =
        http_json(addr, "PUT", "/api/streams/dark-room", JSON, Some(rename)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "Dark room");
    assert_eq!(updated["health_rules"]["enabled"], false);
    assert_eq!(updated["health_rules"]["dark_after"], "1m");

    // A bad threshold names its field and changes nothing.
    let bad = r#"{"source": {"plugin": "testsrc"}, "health_rules": {"dark_luma": 300}}"#;
    let (status, error) = http_json(addr, "PUT", "/api/streams/dark-room", JSON, Some(bad)).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "health_rules.dark_luma", "{error}");
    let (_, now) = http_json(addr, "GET", "/api/streams/dark-room", &[], None).await;
    assert_eq!(now["health_rules"]["enabled"], false, "{now}");

    // `{}` means the defaults again.
    let reset = r#"{"source": {"plugin": "testsrc"}, "health_rules": {}}"#;
    let (status, reset) = http_json(addr, "PUT", "/api/streams/dark-room", JSON, Some(reset)).await;
    assert_eq!(status, 200, "{reset}");
    assert_eq!(reset["health_rules"]["enabled"], true);
    assert_eq!(reset["health_rules"]["dark_after"], "10s");
    gateway.shutdown().await;
}
