//! HTTPS (`server.tls`) end to end: a real gateway on 127.0.0.1:0 with a certificate made
//! in the test (a local CA and a leaf for `localhost` and 127.0.0.1, as `docs/security.md`
//! tells operators to make one), real TLS clients (rustls), real WebSocket and HTTP
//! exchanges over them.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use camgate::app::{Gateway, GatewayOptions};
use camgate::config;
use camgate::http::admission::ConnectionLimits;
use camgate::plugins::PluginCatalog;
use camgate::reload::Cause;
use futures_util::StreamExt;
use rustls::pki_types::{CertificateDer, ServerName};
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A local certificate authority and the leaves it signs.
struct Pki {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "camgate test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        Pki { params, key, der }
    }

    /// A leaf for `localhost` and 127.0.0.1: (certificate PEM, key PEM).
    fn leaf(&self) -> (String, String) {
        let params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

const STREAMS: &str = r#"
streams:
  - id: pattern
    source: { plugin: testsrc, width: 160, height: 90, fps: 10 }
"#;

/// A manifest with `server.tls` in a fresh directory, with its certificate and key
/// (relative paths, resolved against the manifest's directory).
struct Site {
    dir: tempfile::TempDir,
    pki: Pki,
}

impl Site {
    fn new() -> Site {
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
            pki: Pki::new(),
        };
        let (cert, key) = site.pki.leaf();
        std::fs::write(site.path("cert.pem"), cert).unwrap();
        std::fs::write(site.path("key.pem"), key).unwrap();
        std::fs::write(
            site.manifest(),
            format!("server:\n  tls:\n    cert: cert.pem\n    key: ./key.pem\n{STREAMS}"),
        )
        .unwrap();
        site
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn manifest(&self) -> PathBuf {
        self.path("camgate.yaml")
    }

    async fn start(&self, options: GatewayOptions) -> Gateway {
        start_from_file(&self.manifest(), options).await
    }
}

/// Connects over TLS, trusting only `pki`, checking the certificate names 127.0.0.1.
async fn tls_connect(addr: SocketAddr, pki: &Pki) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    pki.connector().connect(name, tcp).await
}

/// One HTTP/1.1 exchange with `Connection: close` on any stream: status, head, body.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(SECS(10), stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("a clean end (TLS close_notify)");
    split_response(&raw)
}

fn split_response(raw: &[u8]) -> (u16, String, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    (head[9..12].parse().unwrap(), head, raw[end + 4..].to_vec())
}

/// Reads a response head (and whatever body came with it) from a stream left open.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> (u16, String, Vec<u8>) {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(SECS(10), stream.read(&mut chunk))
            .await
            .expect("a response head in time")
            .unwrap();
        assert!(n > 0, "closed before a response head");
        raw.extend_from_slice(&chunk[..n]);
    }
    split_response(&raw)
}

async fn https_get(addr: SocketAddr, pki: &Pki, path: &str) -> (u16, String, Vec<u8>) {
    exchange(tls_connect(addr, pki).await.unwrap(), addr, path, &[]).await
}

/// A WebSocket upgrade over TLS with `origin`: the status of the answer.
async fn wss_upgrade_status(addr: SocketAddr, pki: &Pki, origin: &str) -> u16 {
    let mut stream = tls_connect(addr, pki).await.unwrap();
    let request = format!(
        "GET /ws/streams/pattern HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {origin}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    read_head(&mut stream).await.0
}

type Wss = tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>;

async fn wss_connect(addr: SocketAddr, pki: &Pki) -> Wss {
    let stream = tls_connect(addr, pki).await.unwrap();
    let url = format!("wss://{addr}/ws/streams/pattern");
    let (ws, response) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("wss connects");
    assert_eq!(response.status(), 101);
    ws
}

/// The next binary message of `ws` (text messages skipped), within 10 s.
async fn next_binary(ws: &mut Wss) -> Vec<u8> {
    loop {
        let message = tokio::time::timeout(SECS(10), ws.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a well-formed message");
        if let Message::Binary(bytes) = message {
            return bytes.to_vec();
        }
    }
}

#[tokio::test]
async fn https_serves_the_api_health_and_mjpeg() {
    let site = Site::new();
    let gateway = site.start(fast_options()).await;
    let addr = gateway.local_addr();

    let (status, _, body) = https_get(addr, &site.pki, "/healthz").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = https_get(addr, &site.pki, "/api/streams").await;
    assert_eq!(status, 200);
    let streams: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(streams["streams"][0]["id"], "pattern", "{streams}");

    // MJPEG: a multipart response whose first part is a JPEG.
    let mut stream = tls_connect(addr, &site.pki).await.unwrap();
    let request = format!("GET /api/streams/pattern/mjpeg HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let (status, head, mut body) = read_head(&mut stream).await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("multipart/x-mixed-replace"),
        "{head}"
    );
    let mut chunk = [0u8; 16 * 1024];
    while !body.windows(2).any(|w| w == [0xFF, 0xD8]) {
        let n = tokio::time::timeout(SECS(10), stream.read(&mut chunk))
            .await
            .expect("a JPEG in time")
            .unwrap();
        assert!(n > 0);
        body.extend_from_slice(&chunk[..n]);
    }
    drop(stream);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_wss_viewer_receives_frames() {
    let site = Site::new();
    let gateway = site.start(fast_options()).await;
    let mut ws = wss_connect(gateway.local_addr(), &site.pki).await;
    let first = decode_frame(&next_binary(&mut ws).await);
    let second = decode_frame(&next_binary(&mut ws).await);
    assert!(second.seq > first.seq);
    assert_eq!((second.width, second.height), (160, 90), "a whole JPEG");
    drop(ws);
    gateway.shutdown().await;
}

#[tokio::test]
async fn over_https_only_the_https_origin_is_same_origin() {
    let site = Site::new();
    let gateway = site.start(fast_options()).await;
    let addr = gateway.local_addr();
    assert_eq!(
        wss_upgrade_status(addr, &site.pki, &format!("https://{addr}")).await,
        101
    );
    assert_eq!(
        wss_upgrade_status(addr, &site.pki, &format!("http://{addr}")).await,
        403,
        "another scheme is another origin"
    );
    assert_eq!(
        wss_upgrade_status(addr, &site.pki, "https://evil.example").await,
        403
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn tls_clients_hold_one_connection_slot_each() {
    let site = Site::new();
    let options = GatewayOptions {
        limits: ConnectionLimits {
            max_connections: 1,
            reserve_connections: 0,
            ..ConnectionLimits::default()
        },
        ..fast_options()
    };
    let gateway = site.start(options).await;
    let addr = gateway.local_addr();
    // A viewer holds the only slot for its whole life (and only one: its hand-off to the
    // serving path takes none of its own, else it could not have connected at all).
    let mut ws = wss_connect(addr, &site.pki).await;
    next_binary(&mut ws).await;
    assert!(
        tls_connect(addr, &site.pki).await.is_err(),
        "a second client is closed at once"
    );
    drop(ws);
    // Its slot comes back once it is gone.
    let deadline = tokio::time::Instant::now() + SECS(10);
    loop {
        if let Ok(stream) = tls_connect(addr, &site.pki).await {
            let (status, _, _) = exchange(stream, addr, "/healthz", &[]).await;
            assert_eq!(status, 200);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn tls_clients_that_never_send_a_request_make_room_for_those_that_do() {
    let site = Site::new();
    let options = GatewayOptions {
        limits: ConnectionLimits {
            max_connections: 1,
            reserve_connections: 0,
            // Far beyond the test: only eviction frees a silent slot.
            header_timeout: SECS(600),
            reserve_header_timeout: SECS(600),
            // Any silent connection may go (the 1 s default has a unit test).
            evict_after: Duration::ZERO,
            ..ConnectionLimits::default()
        },
        ..fast_options()
    };
    let gateway = site.start(options).await;
    let addr = gateway.local_addr();
    let state = gateway.state();
    // Silent before the TLS handshake: evicted for the next client.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let deadline = tokio::time::Instant::now() + SECS(10);
    while state.metrics.connections.get() != 1 {
        assert!(tokio::time::Instant::now() < deadline, "never admitted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(https_get(addr, &site.pki, "/healthz").await.0, 200);
    let mut sink = [0u8; 64];
    assert_eq!(
        tokio::time::timeout(SECS(10), silent.read(&mut sink))
            .await
            .expect("closed in time")
            .unwrap_or(0),
        0
    );
    // Silent after the handshake (no request yet): evicted the same way.
    let mut idle = tls_connect(addr, &site.pki).await.unwrap();
    let (status, _, _) = exchange(
        tls_connect(addr, &site.pki).await.unwrap(),
        addr,
        "/healthz",
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        tokio::time::timeout(SECS(10), idle.read(&mut sink))
            .await
            .expect("closed in time")
            .unwrap_or(0),
        0
    );
    assert_eq!(state.metrics.connections_evicted.get(), 2);
    gateway.shutdown().await;
}

#[tokio::test]
async fn plain_http_on_the_https_port_is_told_to_use_https() {
    let site = Site::new();
    let gateway = site.start(fast_options()).await;
    let addr = gateway.local_addr();
    let plain = TcpStream::connect(addr).await.unwrap();
    let (status, _, body) = exchange(plain, addr, "/healthz", &[]).await;
    assert_eq!(status, 400);
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("https_required") && body.contains("https://"),
        "{body}"
    );
    // Garbage that is not HTTP either, then a client that goes away mid-handshake.
    let mut junk = TcpStream::connect(addr).await.unwrap();
    junk.write_all(b"\x00\x01\x02").await.unwrap();
    drop(junk);
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    drop(half);
    let (status, _, _) = https_get(addr, &site.pki, "/healthz").await;
    assert_eq!(status, 200, "the gateway still serves HTTPS");
    gateway.shutdown().await;
}

/// What loading the manifest at `path` says (the errors, one per line).
fn load_errors(path: &Path) -> String {
    let catalog = PluginCatalog::with_builtins();
    match config::load(path, &|_| None, &catalog) {
        Ok(_) => panic!("the manifest was accepted"),
        Err(errors) => errors.to_string(),
    }
}

#[test]
fn bad_certificate_files_are_configuration_errors_naming_the_field() {
    let site = Site::new();
    let key_pem = std::fs::read_to_string(site.path("key.pem")).unwrap();
    let key_body: String = key_pem.lines().nth(1).unwrap().to_owned();
    let write = |tls: &str| {
        std::fs::write(site.manifest(), format!("server:\n  tls:\n{tls}{STREAMS}")).unwrap();
    };

    write("    cert: missing.pem\n    key: key.pem\n");
    let errors = load_errors(&site.manifest());
    assert!(
        errors.contains("camgate.yaml:3:11: `server.tls.cert`: cannot read")
            && errors.contains("missing.pem"),
        "{errors}"
    );

    // A key of another certificate.
    let (_, other_key) = site.pki.leaf();
    std::fs::write(site.path("other-key.pem"), &other_key).unwrap();
    write("    cert: cert.pem\n    key: other-key.pem\n");
    let errors = load_errors(&site.manifest());
    assert!(
        errors.contains("camgate.yaml:4:10: `server.tls.key`:") && errors.contains("do not match"),
        "{errors}"
    );
    let other_body = other_key.lines().nth(1).unwrap();
    assert!(!errors.contains(other_body) && !errors.contains("PRIVATE KEY-----"));

    // The two files swapped, a file that is not PEM, and a missing key.
    write("    cert: key.pem\n    key: cert.pem\n");
    let errors = load_errors(&site.manifest());
    assert!(
        errors.contains("`server.tls.cert`:") && errors.contains("holds no certificate"),
        "{errors}"
    );
    assert!(!errors.contains(&key_body), "no key material in messages");
    std::fs::write(
        site.path("junk.pem"),
        "-----BEGIN PRIVATE KEY-----\nnot base64!\n",
    )
    .unwrap();
    write("    cert: cert.pem\n    key: junk.pem\n");
    let errors = load_errors(&site.manifest());
    assert!(
        errors.contains("`server.tls.key`:") && errors.contains("not a well-formed PEM file"),
        "{errors}"
    );
    assert!(!errors.contains("not base64!"), "{errors}");
    write("    cert: cert.pem\n");
    let errors = load_errors(&site.manifest());
    assert!(errors.contains("`server.tls` is missing `key`"), "{errors}");
}

/// The leaf certificate a new TLS connection is served with.
async fn served_certificate(addr: SocketAddr, pki: &Pki) -> Vec<u8> {
    let stream = tls_connect(addr, pki).await.unwrap();
    let (_, connection) = stream.get_ref();
    connection.peer_certificates().unwrap()[0].to_vec()
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn a_reload_refuses_a_bad_key_and_applies_a_new_certificate() {
    let site = Site::new();
    let gateway = site.start(fast_options()).await;
    let addr = gateway.local_addr();
    let first = std::fs::read_to_string(site.path("cert.pem")).unwrap();
    assert_eq!(served_certificate(addr, &site.pki).await, pem_der(&first));

    // A key that does not match: refused, named, and the running certificate stays.
    let (new_cert, new_key) = site.pki.leaf();
    std::fs::write(site.path("cert.pem"), &new_cert).unwrap();
    let report = gateway.state().reload(Cause::Signal).await;
    assert_eq!(report.result, "rejected");
    let error = report.error.unwrap();
    assert!(
        error.contains("`server.tls.key`") && error.contains("do not match"),
        "{error}"
    );
    assert_eq!(served_certificate(addr, &site.pki).await, pem_der(&first));
    let (status, _, _) = https_get(addr, &site.pki, "/healthz").await;
    assert_eq!(status, 200);

    // Its key arrives: the next connection gets the new certificate, without a restart.
    std::fs::write(site.path("key.pem"), &new_key).unwrap();
    let report = gateway.state().reload(Cause::Signal).await;
    assert_eq!(report.result, "applied", "{report:?}");
    assert_eq!(
        served_certificate(addr, &site.pki).await,
        pem_der(&new_cert)
    );
    gateway.shutdown().await;
}
