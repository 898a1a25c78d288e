//! Shared helpers for the gateway's integration tests: a real gateway on 127.0.0.1:0,
//! real WebSocket clients, JPEG decoding, and building plugin shared libraries.

#![allow(dead_code)]

pub mod binary;
pub mod cluster;
pub mod fleet;
pub mod haproxy;
pub mod rng;
pub mod rtsp;
pub mod video;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate::app::{Gateway, GatewayOptions};
use camgate::config::{self, LoadedConfig, Manifest};
use camgate::http::ws::WsSettings;
use camgate::hub::{FrameSink, RunningSource, SourceFactory, read_tag};
use camgate::plugins::PluginCatalog;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Parses a manifest written inline in a test (no environment variables).
pub fn manifest(yaml: &str, catalog: &PluginCatalog) -> Manifest {
    let path = Path::new("/test/camgate.yaml");
    match config::parse(yaml, path, &|_| None, catalog) {
        Ok(manifest) => manifest,
        Err(errors) => panic!("test manifest is invalid:\n{errors}"),
    }
}

/// The repository's `deploy/` folder (monitoring, HAProxy and Kubernetes files).
pub fn deploy_dir() -> PathBuf {
    rtsp::workspace().join("deploy")
}

/// A text file's contents; panics naming the file.
pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Options with short timeouts so slow-viewer behaviour shows within a test.
pub fn fast_options() -> GatewayOptions {
    GatewayOptions {
        ws: WsSettings {
            ping_interval: Duration::from_secs(1),
            pong_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(1),
            ..WsSettings::default()
        },
        reaper_interval: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(3),
        watch_config: false,
        ..GatewayOptions::default()
    }
}

/// Starts a gateway on 127.0.0.1:0 with `catalog` and the inline manifest.
pub async fn start_with(yaml: &str, catalog: PluginCatalog, options: GatewayOptions) -> Gateway {
    let manifest = manifest(yaml, &catalog);
    start_loaded(LoadedConfig::without_api_file(manifest), catalog, options).await
}

/// Starts a gateway with `loaded` on 127.0.0.1:0 (no environment variables).
async fn start_loaded(
    loaded: LoadedConfig,
    catalog: PluginCatalog,
    options: GatewayOptions,
) -> Gateway {
    start_loaded_with_env(
        loaded,
        catalog,
        options,
        std::sync::Arc::new(|_: &str| None),
    )
    .await
}

async fn start_loaded_with_env(
    loaded: LoadedConfig,
    catalog: PluginCatalog,
    options: GatewayOptions,
    env: camgate::app::Env,
) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Gateway::start(loaded, catalog, listener, env, options)
        .await
        .expect("gateway starts")
}

/// Starts a gateway with the built-in plugins.
pub async fn start(yaml: &str) -> Gateway {
    start_with(yaml, PluginCatalog::with_builtins(), fast_options()).await
}

/// Opens a viewer WebSocket. Nagle is off, as in browsers: a small message sent right
/// after another is not held back until the gateway acknowledges the first (which it
/// delays; under a paused clock that real-time wait lets virtual time jump ahead).
pub async fn connect(addr: SocketAddr, path: &str) -> Client {
    let url = format!("ws://{addr}{path}");
    let (ws, response) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .expect("WebSocket connects");
    assert_eq!(response.status(), 101);
    ws
}

/// Opens a viewer WebSocket that buffers little on its side: a fixed receive buffer of
/// `rcvbuf` bytes (which turns off the kernel's receive autotuning) and small reads, like a
/// viewer behind a slow link. Whatever backlog builds up then is the gateway's.
pub async fn connect_with_rcvbuf(addr: SocketAddr, path: &str, rcvbuf: u32) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(rcvbuf).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (ws, response) = tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}{path}"),
        MaybeTlsStream::Plain(stream),
        Some(WebSocketConfig::default().read_buffer_size(4096)),
    )
    .await
    .expect("WebSocket connects");
    assert_eq!(response.status(), 101);
    ws
}

/// Waits for the next message, failing the test after `timeout`.
pub async fn next_message(ws: &mut Client, timeout: Duration) -> Message {
    match tokio::time::timeout(timeout, ws.next()).await {
        Ok(Some(Ok(message))) => message,
        Ok(Some(Err(e))) => panic!("WebSocket error: {e}"),
        Ok(None) => panic!("WebSocket closed"),
        Err(_) => panic!("no message within {timeout:?}"),
    }
}

/// Reads the next JSON text message (skipping frames and pings).
pub async fn next_event(ws: &mut Client, timeout: Duration) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Message::Text(text) = next_message(ws, left).await {
            return serde_json::from_str(&text).expect("text messages are JSON");
        }
    }
}

/// Reads the `hello` and the `health` message that follows it; returns the hello.
pub async fn next_hello(ws: &mut Client, timeout: Duration) -> serde_json::Value {
    let hello = next_event(ws, timeout).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    let health = next_event(ws, timeout).await;
    assert_eq!(health["type"], "health", "{health}");
    hello
}

/// A frame as a viewer sees it.
#[derive(Debug)]
pub struct ReceivedFrame {
    pub seq: u64,
    pub captured_at_us: u64,
    pub width: u16,
    pub height: u16,
    pub bytes: usize,
}

/// Decodes a binary message as exactly one JPEG (failing the test otherwise).
pub fn decode_frame(bytes: &[u8]) -> ReceivedFrame {
    assert_eq!(&bytes[..2], &[0xFF, 0xD8], "message starts with SOI");
    assert_eq!(
        &bytes[bytes.len() - 2..],
        &[0xFF, 0xD9],
        "message ends with EOI"
    );
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.decode().expect("message decodes as a JPEG");
    let info = decoder.info().expect("JPEG has a frame header");
    let tag = read_tag(bytes).expect("frame carries the camgate tag");
    ReceivedFrame {
        seq: tag.seq,
        captured_at_us: tag.captured_at_us,
        width: info.width,
        height: info.height,
        bytes: bytes.len(),
    }
}

/// Reads the next binary message and decodes it.
pub async fn next_frame(ws: &mut Client, timeout: Duration) -> ReceivedFrame {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Message::Binary(bytes) = next_message(ws, left).await {
            return decode_frame(&bytes);
        }
    }
}

/// Waits until `ws` is closed by the server and returns the close code (None for a bare
/// TCP close).
pub async fn closed_with(ws: &mut Client, timeout: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) => return None,
            Err(_) => panic!("connection not closed within {timeout:?}"),
        }
    }
}

/// Polls `check` until it is true, failing after `timeout` with `what`.
pub async fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Builds a workspace `cdylib` package into its own target directory (the outer `cargo
/// test` holds the lock of the main one) and returns the library path.
pub fn build_cdylib(package: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _serial = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = workspace.join("target").join("test-plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--target-dir"])
        .arg(&target)
        .current_dir(workspace)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {package} failed");
    let file = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        package.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    let path = target.join("debug").join(file);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A fresh plugins folder holding copies of `libraries`.
pub fn plugins_dir(libraries: &[&Path]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for library in libraries {
        std::fs::copy(library, dir.path().join(library.file_name().unwrap())).unwrap();
    }
    dir
}

/// Options for gateways whose manifest is a real file: the watcher is on, the periodic
/// fallback effectively off (so tests prove the file events work).
pub fn watching_options() -> GatewayOptions {
    GatewayOptions {
        watch_config: true,
        reload: camgate::reload::ReloadOptions {
            debounce: Duration::from_millis(100),
            debounce_max: Duration::from_secs(5),
            periodic: Duration::from_secs(3600),
        },
        ..fast_options()
    }
}

/// Starts a gateway from the manifest file at `path` (and its API file), with the built-in
/// plugins.
pub async fn start_from_file(path: &Path, options: GatewayOptions) -> Gateway {
    start_from_file_with_env(path, options, &[]).await
}

/// Like [`start_from_file`], with `vars` as the whole environment `${VAR}` sees (the
/// process environment is never touched).
pub async fn start_from_file_with_env(
    path: &Path,
    options: GatewayOptions,
    vars: &[(&str, &str)],
) -> Gateway {
    let vars: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let env: camgate::app::Env = std::sync::Arc::new(move |name: &str| vars.get(name).cloned());
    let catalog = PluginCatalog::with_builtins();
    let loaded = match config::load_with_api_file(path, &*env, &catalog) {
        Ok(loaded) => loaded,
        Err(errors) => panic!("manifest is invalid:\n{errors}"),
    };
    start_loaded_with_env(loaded, catalog, options, env).await
}

/// A raw HTTP/1.1 GET; returns the status and the body.
pub async fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0; 64 * 1024];
    let mut got = 0;
    // Read until the headers and the announced body are in.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf[got..]))
            .await
            .expect("response in time")
            .unwrap();
        got += n;
        let text = String::from_utf8_lossy(&buf[..got]).to_string();
        if let Some(split) = text.find("\r\n\r\n") {
            let length = text[..split]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if got >= split + 4 + length || n == 0 {
                let status = text[9..12].parse().unwrap();
                return (status, text[split + 4..].to_string());
            }
        }
        assert!(n > 0, "connection closed early");
    }
}

/// A complete HTTP/1.1 exchange (`Connection: close`): status, headers (lowercase names)
/// and body bytes. A body is sent as `application/json` unless `headers` name a
/// `Content-Type`, and `Host` is `addr` unless `headers` name one (an empty value sends
/// none).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers.iter().filter(|(_, value)| !value.is_empty()) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            request.push_str("Content-Type: application/json\r\n");
        }
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    if let Some(body) = body {
        stream.write_all(body).await.unwrap();
    }
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response has headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// Like [`http`], with the body parsed as JSON (`Null` when empty).
pub async fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let (status, _, bytes) = http(addr, method, path, headers, body.map(str::as_bytes)).await;
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, json)
}

/// A WebSocket viewer written by hand on a plain TCP socket, for what a library client
/// hides: it answers no ping by itself and can send malformed frames.
pub struct RawViewer {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// A frame the gateway sent to a [`RawViewer`].
#[derive(Debug)]
pub struct RawFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

impl RawViewer {
    /// Performs the opening handshake for `path` and checks the 101.
    pub async fn connect(addr: SocketAddr, path: &str) -> RawViewer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // Like browsers (and `connect`): no Nagle, so a small control frame never waits
        // for the peer's delayed ACK while the paused clock jumps ahead.
        stream.set_nodelay(true).unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buffer = Vec::new();
        let end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed during the handshake");
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        // The accept key of RFC 6455's own example.
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        buffer.drain(..end);
        RawViewer { stream, buffer }
    }

    /// Sends one frame; `masked: false` breaks the protocol on purpose.
    pub async fn send(&mut self, first_byte: u8, payload: &[u8], masked: bool) {
        use tokio::io::AsyncWriteExt;
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mask_bit = if masked { 0x80 } else { 0 };
        let mut frame = vec![first_byte];
        match payload.len() {
            n if n < 126 => frame.push(mask_bit | n as u8),
            n if n <= 0xFFFF => {
                frame.push(mask_bit | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(mask_bit | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            frame.extend_from_slice(&mask);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        } else {
            frame.extend_from_slice(payload);
        }
        self.stream.write_all(&frame).await.unwrap();
    }

    /// Sends only the header of a masked frame announcing `len` payload bytes.
    pub async fn send_header_only(&mut self, first_byte: u8, len: u64) {
        use tokio::io::AsyncWriteExt;
        let mut frame = vec![first_byte, 0x80 | 127];
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        self.stream.write_all(&frame).await.unwrap();
    }

    /// The next frame from the gateway; `None` when the connection ended.
    pub async fn next(&mut self, timeout: Duration) -> Option<RawFrame> {
        use tokio::io::AsyncReadExt;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(frame) = self.parse() {
                return Some(frame);
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no frame within {timeout:?}"));
            match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next frame with `opcode`, skipping others.
    pub async fn next_of(&mut self, opcode: u8, timeout: Duration) -> RawFrame {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(frame) if frame.opcode == opcode => return frame,
                Some(_) => {}
                None => panic!("connection ended before a frame with opcode {opcode:#x}"),
            }
        }
    }

    fn parse(&mut self) -> Option<RawFrame> {
        let b = &self.buffer;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames are never masked");
        assert_ne!(b[0] & 0x80, 0, "server frames are final");
        let (len, start) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => (
                usize::try_from(u64::from_be_bytes(b[2..10].try_into().unwrap())).unwrap(),
                10,
            ),
            126 | 127 => return None,
            n => (usize::from(n), 2),
        };
        if b.len() < start + len {
            return None;
        }
        let frame = RawFrame {
            opcode: b[0] & 0x0F,
            payload: b[start..start + len].to_vec(),
        };
        self.buffer.drain(..start + len);
        Some(frame)
    }
}

/// A valid `Sec-WebSocket-Key` (RFC 6455's example).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The headers of a WebSocket upgrade request with `key`, then `extra`.
pub fn upgrade_headers<'a>(key: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", key),
    ];
    headers.extend_from_slice(extra);
    headers
}

/// A real 8x8 JPEG (decodable by viewers' decoders).
pub const GREY: &[u8] = include_bytes!("../../../plugins/template/src/grey8x8.jpg");

/// [`GREY`] padded with comment segments to about `len` bytes: frames over 16 KiB take the
/// gateway's `sendfile` path, as camera frames do.
pub fn jpeg(len: usize) -> Vec<u8> {
    let mut out = GREY[..2].to_vec();
    let mut padding = len.saturating_sub(GREY.len());
    while padding > 4 {
        let chunk = (padding - 4).min(0xFFFF - 2);
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&u16::try_from(chunk + 2).unwrap().to_be_bytes());
        out.resize(out.len() + chunk, b'.');
        padding -= chunk + 4;
    }
    out.extend_from_slice(&GREY[2..]);
    out
}

/// A source factory whose sources publish only what the test hands their sink: frames then
/// arrive when the test says, not on a plugin thread's wall clock. Swap it into a real
/// gateway's hub with `hub.reconfigure(hub.info(), factory.clone())`.
#[derive(Default)]
pub struct ManualFactory {
    sinks: Mutex<Vec<FrameSink>>,
    /// Sources started so far.
    pub starts: AtomicUsize,
    /// Sources running now.
    pub running: Arc<AtomicUsize>,
}

struct ManualSource(Arc<AtomicUsize>);

impl RunningSource for ManualSource {
    fn stop(self: Box<Self>) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SourceFactory for ManualFactory {
    fn start(&self, sink: FrameSink) -> Result<Box<dyn RunningSource>, String> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        self.running.fetch_add(1, Ordering::SeqCst);
        self.sinks.lock().unwrap().push(sink);
        Ok(Box::new(ManualSource(Arc::clone(&self.running))))
    }

    fn describe(&self) -> String {
        "manual".into()
    }
}

impl ManualFactory {
    /// The sink of the source started last.
    pub fn sink(&self) -> FrameSink {
        self.numbered_sink().1
    }

    /// The sink of the source started last, with its number (1 for the first source).
    pub fn numbered_sink(&self) -> (usize, FrameSink) {
        let sinks = self.sinks.lock().unwrap();
        let sink = sinks.last().cloned().expect("a manual source runs");
        (sinks.len(), sink)
    }
}

/// A gateway from `yaml` (no config watching, no health monitor: the test records any
/// verdict itself) whose stream `stream` runs on a [`ManualFactory`] swapped in before any
/// viewer arrives (on demand: nothing runs yet).
pub async fn manual_gateway(
    yaml: &str,
    stream: &str,
    options: GatewayOptions,
) -> (Gateway, Arc<camgate::hub::Hub>, Arc<ManualFactory>) {
    let options = GatewayOptions {
        watch_config: false,
        // The test drives the hub; a verdict is whatever the test records.
        health: None,
        ..options
    };
    let gateway = start_with(yaml, PluginCatalog::with_builtins(), options).await;
    let hub = gateway.state().registry.get(stream).unwrap();
    let factory = Arc::new(ManualFactory::default());
    hub.reconfigure(hub.info(), Arc::clone(&factory) as Arc<dyn SourceFactory>)
        .await;
    assert_eq!(
        factory.starts.load(Ordering::SeqCst),
        0,
        "on demand: nothing runs"
    );
    (gateway, hub, factory)
}

/// Waits (in virtual time) until `hub` has `n` viewers and, with any, its manual source
/// runs (a viewer counts itself in before it asks for the source).
pub async fn manual_viewers(hub: &camgate::hub::Hub, factory: &ManualFactory, n: usize) {
    eventually(Duration::from_secs(5), &format!("{n} viewers"), || {
        hub.viewer_count() == n && (n == 0 || factory.running.load(Ordering::SeqCst) == 1)
    })
    .await;
}

/// Sends `text`, then a ping, and waits for the pong: once it is back the gateway's session
/// has acted on `text` (it reads in order). Returns what arrived before the pong (pings and
/// pongs left out).
pub async fn send_and_sync(ws: &mut Client, text: &str) -> Vec<Message> {
    use futures_util::SinkExt;
    ws.send(Message::text(text)).await.unwrap();
    ws.send(Message::Ping(b"sync".to_vec().into()))
        .await
        .unwrap();
    let mut before = Vec::new();
    loop {
        match next_message(ws, Duration::from_secs(5)).await {
            Message::Pong(payload) if payload.as_ref() == b"sync" => return before,
            Message::Ping(_) | Message::Pong(_) => {}
            message => before.push(message),
        }
    }
}

/// A `GET /metrics` scrape (`headers`: the credential, if the gateway asks for one).
pub struct Scrape(pub String);

impl Scrape {
    /// Scrapes the gateway at `addr`.
    pub async fn of(addr: SocketAddr, headers: &[(&str, &str)]) -> Scrape {
        let (status, _, body) = http(addr, "GET", "/metrics", headers, None).await;
        assert_eq!(status, 200);
        Scrape(String::from_utf8(body).unwrap())
    }

    /// The value of `series` (name and labels exactly as exposed; labels sorted by name).
    pub fn value(&self, series: &str) -> f64 {
        self.0
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in\n{}", self.0))
    }
}

/// Logs in with `token` (`POST /api/session`) and returns the `Set-Cookie` header value.
pub async fn login(addr: SocketAddr, token: &str) -> String {
    let body = serde_json::json!({ "token": token }).to_string();
    let (status, headers, _) = http(addr, "POST", "/api/session", &[], Some(body.as_bytes())).await;
    assert_eq!(status, 204);
    headers
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.clone())
        .expect("a session cookie")
}

/// Splits a multipart/x-mixed-replace body into complete parts (by Content-Length).
pub fn mjpeg_parts(buf: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let text_pos = |from: usize, needle: &[u8]| {
        buf[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut at = match text_pos(0, b"\r\n\r\n") {
        Some(p) => p + 4,
        None => return parts,
    };
    while let Some(boundary) = text_pos(at, b"--camgateframe\r\n") {
        let Some(header_end) = text_pos(boundary, b"\r\n\r\n") else {
            break;
        };
        let header = String::from_utf8_lossy(&buf[boundary..header_end]).to_string();
        let length: usize = header
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("each part has a Content-Length");
        let start = header_end + 4;
        if buf.len() < start + length {
            break;
        }
        parts.push(buf[start..start + length].to_vec());
        at = start + length;
    }
    parts
}
