//! One simulated viewer: connects (WebSocket or MJPEG over HTTP), reads frames until told
//! to stop, and records what it saw. Slow viewers sleep between frames and use a small
//! receive buffer so the backlog really builds up on the server's side.
//!
//! With `--credit W` WebSocket viewers use the protocol's flow control: they grant W frames
//! (`{"type":"credit","frames":W}`) right after the handshake and one more per frame
//! consumed; a normal viewer consumes a frame when it has read it, a slow one when it has
//! finished its pause after it (it takes the frame when it reads it, then is busy for
//! `1 / slow_fps`). The frame the gateway sends with `hello` goes out before any credit can
//! arrive, so it is not granted for (else it would keep one frame more than the window in
//! the pipeline for good, and a 1 fps consumer would always take a frame a second old). The
//! gateway sends that frame right after `hello` exactly when it has one, which `hello` says
//! by carrying the frame's `width`. With `--bind-from IP` viewer `i` binds its socket to IP + i, so a link
//! emulator can give every viewer a link of its own (`bench/link-classes`).
//!
//! With `--format h264|h265|auto` a WebSocket viewer gets the camera's own video (README,
//! "Passthrough"): binary messages that start with `0x01` and an 18-byte header (keyframe
//! flag, sequence number, capture time). The viewer counts them like JPEGs (frames, bytes,
//! latency = receipt − capture time, share by sequence number) and also the frames it
//! skipped (gaps in the sequence numbers). A joining video viewer is sent the frames since
//! the last keyframe at once; it holds the *current* picture once it has received a frame
//! that was still the newest when it arrived, i.e. the next frame was captured after that
//! receipt (same clock): the time to that moment is `gop_us`. JPEG messages take exactly the
//! path they took before video existed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::mjpeg::{MultipartParser, boundary_of};
use crate::tag::{VideoHeader, read_tag, read_video_header};
use crate::ws_client::{Incoming, READ_CHUNK, Reading, WsClient};

/// Measurement phases shared by all viewers.
pub const PHASE_WARMUP: u8 = 0;
/// Frames received now count.
pub const PHASE_MEASURE: u8 = 1;
/// The window is over.
pub const PHASE_DONE: u8 = 2;

/// How viewers reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `ws://.../ws/streams/ID`: one JPEG per binary message.
    Ws,
    /// `http://.../mjpeg`: a `multipart/x-mixed-replace` body.
    MjpegHttp,
}

/// Where one viewer connects.
#[derive(Debug, Clone)]
pub struct Target {
    /// The full URL (for reports and the WebSocket handshake).
    pub url: String,
    /// The resolved socket address.
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Path and query.
    pub path: String,
}

/// What every viewer shares.
pub struct Shared {
    /// One of the `PHASE_*` values.
    pub phase: AtomicU8,
    /// Limits simultaneous handshakes.
    pub connect: Semaphore,
    /// Turns true when viewers must leave.
    pub stop: watch::Receiver<bool>,
    /// How viewers connect.
    pub mode: Mode,
    /// Slow viewers' delay between frames.
    pub slow_gap: Duration,
    /// Slow viewers' `SO_RCVBUF`; 0 leaves the OS default (autotuned).
    pub slow_rcvbuf: u32,
    /// Credit window of WebSocket viewers (`--credit`), if they use flow control.
    pub credit: Option<u32>,
    /// Normal WebSocket viewers skim frames (see `ws_client::Reading::Skim`).
    pub skim: bool,
    /// Viewers done with their handshake (successfully or not).
    pub settled: AtomicUsize,
}

/// Everything one viewer observed.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Index of its target.
    pub target: usize,
    /// A deliberately slow viewer.
    pub slow: bool,
    /// The handshake succeeded.
    pub connected: bool,
    /// Why it failed or ended early.
    pub error: Option<String>,
    /// Close code the server sent, if any.
    pub close_code: Option<u16>,
    /// The server ended the session before the run did.
    pub ended_early: bool,
    /// Connect start → handshake complete, µs.
    pub handshake_us: Option<u64>,
    /// Connect start → first JPEG, µs (may be the hub's cached frame).
    pub ttff_us: Option<u64>,
    /// Connect start → first JPEG captured after the connect started, µs (tagged frames
    /// only): on a cold on-demand stream this is the source's real start-up time, since the
    /// first JPEG may be a cached frame from the previous run.
    pub fresh_us: Option<u64>,
    /// Connect start, µs since the epoch.
    pub started_at_us: u64,
    /// Frames received in the measurement window.
    pub frames: u64,
    /// JPEG bytes received in the measurement window.
    pub bytes: u64,
    /// Frames without a Camgate tag (other servers).
    pub untagged: u64,
    /// Capture → receipt, µs, per tagged frame in the window.
    pub latency_us: Vec<u32>,
    /// Publish (at the hub) → receipt, µs.
    pub added_us: Vec<u32>,
    /// (seq, receipt time µs since the epoch) of tagged frames in the window.
    pub receipts: Vec<(u64, u64)>,
    /// (seq, kernel receive time µs since the epoch) of tagged frames in the window, where
    /// the transport knows it (WebSocket viewers): arrival at the socket, without the
    /// tool's own scheduling delay.
    pub arrivals: Vec<(u64, u64)>,
    /// `dropped` notices received, and the frames they reported.
    pub dropped_notices: u64,
    /// Sum of `frames` in `dropped` notices.
    pub dropped_reported: u64,
    /// Frames of credit granted (`--credit`), warm-up included.
    pub credit_granted: u64,
    /// Video frames skipped in the window: gaps in the sequence numbers of the video
    /// messages received (the gap before a frame counts in the window of that frame).
    pub skipped: u64,
    /// `config` messages received (video formats), warm-up included.
    pub configs: u64,
    /// Video: connect start → the viewer holds the GOP up to the newest frame (its first
    /// showable current picture), µs. Set when the next frame shows that the frame before
    /// it was still the newest when it arrived (it was captured after that receipt).
    pub gop_us: Option<u64>,
    /// Video frames received up to that moment (the GOP sent on join and any frame after).
    pub gop_frames: Option<u64>,
    /// The newest video frame's sequence number, for gaps.
    pub(crate) last_video_seq: Option<u64>,
    /// Video frames received so far, warm-up included.
    pub(crate) video_received: u64,
    /// While `gop_us` is unknown: the last video frame's receipt (µs since the epoch) and
    /// time since connect start (µs); the next frame's capture time decides whether it was
    /// the newest.
    pub(crate) pending_current: Option<(u64, u64)>,
}

pub(crate) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Outcome {
    /// A video message of `len` bytes with `header`.
    fn video_frame(
        &mut self,
        header: VideoHeader,
        len: usize,
        arrived_us: Option<u64>,
        started: Instant,
        measuring: bool,
    ) {
        let now_us = unix_micros();
        let elapsed = started.elapsed().as_micros() as u64;
        self.video_received += 1;
        if self.ttff_us.is_none() {
            self.ttff_us = Some(elapsed);
        }
        if self.fresh_us.is_none() && header.captured_at_us >= self.started_at_us {
            self.fresh_us = Some(elapsed);
        }
        if self.gop_us.is_none() {
            if let Some((received_us, at)) = self.pending_current
                && header.captured_at_us > received_us
            {
                // The frame before this one was the newest there was when it arrived.
                self.gop_us = Some(at);
                self.gop_frames = Some(self.video_received - 1);
            } else {
                self.pending_current = Some((now_us, elapsed));
            }
        }
        let gap = self
            .last_video_seq
            .map_or(0, |last| header.seq.saturating_sub(last + 1));
        self.last_video_seq = Some(header.seq);
        if !measuring {
            return;
        }
        self.skipped += gap;
        self.frames += 1;
        self.bytes += len as u64;
        let clamp = |v: u64| v.min(u64::from(u32::MAX)) as u32;
        self.latency_us
            .push(clamp(now_us.saturating_sub(header.captured_at_us)));
        self.receipts.push((header.seq, now_us));
        if let Some(at) = arrived_us {
            self.arrivals.push((header.seq, at));
        }
    }

    /// A frame of `len` bytes that starts with `jpeg` (all of it, or its head when skimming).
    fn frame(
        &mut self,
        jpeg: &[u8],
        len: usize,
        arrived_us: Option<u64>,
        started: Instant,
        measuring: bool,
    ) {
        let now_us = unix_micros();
        let tag = read_tag(jpeg);
        let elapsed = started.elapsed().as_micros() as u64;
        if self.ttff_us.is_none() {
            self.ttff_us = Some(elapsed);
        }
        if self.fresh_us.is_none() && tag.is_some_and(|t| t.captured_at_us >= self.started_at_us) {
            self.fresh_us = Some(elapsed);
        }
        if !measuring {
            return;
        }
        self.frames += 1;
        self.bytes += len as u64;
        match tag {
            Some(tag) => {
                let clamp = |v: u64| v.min(u64::from(u32::MAX)) as u32;
                self.latency_us
                    .push(clamp(now_us.saturating_sub(tag.captured_at_us)));
                self.added_us
                    .push(clamp(now_us.saturating_sub(tag.published_at_us)));
                self.receipts.push((tag.seq, now_us));
                if let Some(at) = arrived_us {
                    self.arrivals.push((tag.seq, at));
                }
            }
            None => self.untagged += 1,
        }
    }

    /// Records a text message; says whether it was a `hello` announcing a frame.
    fn text(&mut self, text: &str) -> Option<Announced> {
        let value = serde_json::from_str::<serde_json::Value>(text).ok()?;
        if value["type"] == "dropped" {
            self.dropped_notices += 1;
            self.dropped_reported += value["frames"].as_u64().unwrap_or(0);
        }
        if value["type"] == "config" {
            self.configs += 1;
        }
        // `hello` has the frame's size exactly when the frame follows it.
        (value["type"] == "hello" && value["width"].as_u64().is_some())
            .then_some(Announced::HelloWithFrame)
    }
}

/// What a text message tells the viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announced {
    /// `hello`, with the stream's current frame right behind it.
    HelloWithFrame,
}

/// Opens the viewer's TCP connection (a small receive buffer for slow viewers unless
/// `--slow-rcvbuf 0`, from `local` if given), within 10 s.
async fn connect(
    target: &Target,
    out: &Outcome,
    shared: &Shared,
    local: Option<IpAddr>,
) -> anyhow::Result<TcpStream> {
    let rcvbuf = (out.slow && shared.slow_rcvbuf > 0).then_some(shared.slow_rcvbuf);
    tokio::time::timeout(
        Duration::from_secs(10),
        tcp_connect(target.addr, rcvbuf, local),
    )
    .await
    .context("TCP connect timed out")?
}

async fn tcp_connect(
    addr: SocketAddr,
    rcvbuf: Option<u32>,
    local: Option<IpAddr>,
) -> anyhow::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(ip) = local {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("cannot bind to {ip} (is it an address of this host?)"))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Runs one viewer until `shared.stop` (or, for a probe, until its first frame), its
/// socket bound to `local` if given.
pub async fn run(
    target_index: usize,
    target: Arc<Target>,
    slow: bool,
    probe: bool,
    local: Option<IpAddr>,
    shared: Arc<Shared>,
) -> Outcome {
    let mut outcome = Outcome {
        target: target_index,
        slow,
        ..Outcome::default()
    };
    let result = match shared.mode {
        Mode::Ws => run_ws(&target, probe, local, &shared, &mut outcome).await,
        Mode::MjpegHttp => run_mjpeg(&target, probe, local, &shared, &mut outcome).await,
    };
    if let Err(e) = result {
        outcome.error = Some(format!("{e:#}"));
    }
    if !outcome.connected && !probe {
        shared.settled.fetch_add(1, Ordering::SeqCst);
    }
    outcome
}

/// What both transports need while one viewer runs.
struct ViewerRun<'a> {
    shared: &'a Shared,
    stop: watch::Receiver<bool>,
    started: Instant,
    probe: bool,
}

impl<'a> ViewerRun<'a> {
    /// Starts the viewer's clock (`out.started_at_us` too).
    fn begin(shared: &'a Shared, probe: bool, out: &mut Outcome) -> Self {
        out.started_at_us = unix_micros();
        ViewerRun {
            shared,
            stop: shared.stop.clone(),
            started: Instant::now(),
            probe,
        }
    }

    /// The viewer is through its handshake: the run may count it as settled.
    fn handshake_done(&self, out: &mut Outcome) {
        out.connected = true;
        out.handshake_us = Some(self.started.elapsed().as_micros() as u64);
        if !self.probe {
            self.shared.settled.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// What `next` gives, or `None` once the viewers are told to stop.
    async fn unless_stopped<T>(&mut self, next: impl Future<Output = T>) -> Option<T> {
        if *self.stop.borrow() {
            return None;
        }
        tokio::select! {
            _ = self.stop.wait_for(|v| *v) => None,
            value = next => Some(value),
        }
    }

    /// Records a frame of `len` bytes that starts with `jpeg` (or a video message: its
    /// first byte is `0x01`) and paces a slow viewer; `true` when the viewer is done (a
    /// probe that saw what it came for: a fresh JPEG, or the current video picture).
    async fn took_frame(
        &mut self,
        out: &mut Outcome,
        jpeg: &[u8],
        len: usize,
        arrived_us: Option<u64>,
    ) -> bool {
        let measuring = self.shared.phase.load(Ordering::Relaxed) == PHASE_MEASURE;
        if jpeg.first() == Some(&crate::tag::VIDEO_KIND)
            && let Some(header) = read_video_header(jpeg)
        {
            out.video_frame(
                header,
                len,
                arrived_us,
                self.started,
                measuring && !self.probe,
            );
            if self.probe && out.gop_us.is_some() {
                return true;
            }
        } else {
            out.frame(
                jpeg,
                len,
                arrived_us,
                self.started,
                measuring && !self.probe,
            );
            if self.probe && (out.fresh_us.is_some() || read_tag(jpeg).is_none()) {
                return true;
            }
        }
        if out.slow {
            self.unless_stopped(tokio::time::sleep(self.shared.slow_gap))
                .await;
        }
        false
    }
}

/// The protocol's credit message granting `frames` more frames.
pub fn credit_message(frames: u32) -> String {
    format!(r#"{{"type":"credit","frames":{frames}}}"#)
}

async fn run_ws(
    target: &Target,
    probe: bool,
    local: Option<IpAddr>,
    shared: &Shared,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    let mut run = ViewerRun::begin(shared, probe, out);
    let reading = match (out.slow, shared.skim) {
        (true, _) => Reading::Full(4096),
        (false, true) => Reading::Skim,
        (false, false) => Reading::Full(READ_CHUNK),
    };
    let mut ws = {
        let _permit = shared.connect.acquire().await?;
        let stream = connect(target, out, shared, local).await?;
        tokio::time::timeout(
            Duration::from_secs(10),
            WsClient::handshake(stream, target, reading),
        )
        .await
        .context("WebSocket handshake timed out")??
    };
    run.handshake_done(out);
    // Probes measure the first frame of a plain viewer: no flow control.
    let credit = shared.credit.filter(|_| !probe);
    if let Some(window) = credit {
        ws.send_text(&credit_message(window)).await?;
        out.credit_granted += u64::from(window);
    }
    // Frames that came without credit: the one sent with `hello`, if `hello` announced it.
    let mut free_frames = 0u32;
    loop {
        let Some(message) = run.unless_stopped(ws.next()).await else {
            break;
        };
        match message {
            Ok(Some(Incoming::Binary { head, len })) => {
                let arrived_us = ws.arrived_us();
                // The frame sent with `hello` is free: it went out before our credit could
                // arrive.
                let free = free_frames > 0;
                free_frames = free_frames.saturating_sub(1);
                if run.took_frame(out, &head, len, arrived_us).await {
                    break;
                }
                // Consumed (a slow viewer has finished its pause): one more frame.
                if credit.is_some() && !free && !*run.stop.borrow() {
                    ws.send_text(&credit_message(1)).await?;
                    out.credit_granted += 1;
                }
            }
            Ok(Some(Incoming::Text(text))) => {
                if out.text(&String::from_utf8_lossy(&text)) == Some(Announced::HelloWithFrame) {
                    free_frames = 1;
                }
            }
            Ok(Some(Incoming::Close(code))) => {
                out.close_code = code;
                out.ended_early = true;
                return Ok(());
            }
            Err(e) => {
                out.ended_early = true;
                bail!("WebSocket error: {e:#}");
            }
            Ok(None) => {
                out.ended_early = true;
                bail!("connection closed by the server");
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_millis(200), ws.close()).await;
    Ok(())
}

async fn run_mjpeg(
    target: &Target,
    probe: bool,
    local: Option<IpAddr>,
    shared: &Shared,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    let mut run = ViewerRun::begin(shared, probe, out);
    let (response, connection) = {
        let _permit = shared.connect.acquire().await?;
        let stream = connect(target, out, shared, local).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
        let connection = tokio::spawn(connection);
        let request = http::Request::get(target.path.as_str())
            .header(http::header::HOST, target.host.as_str())
            .body(Empty::new())?;
        let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
            .await
            .context("HTTP response timed out")??;
        (response, connection)
    };
    let status = response.status();
    if status != 200 {
        connection.abort();
        bail!("GET {} answered {status}", target.path);
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let Some(boundary) = boundary_of(&content_type) else {
        connection.abort();
        bail!("not a multipart response (Content-Type: {content_type:?})");
    };
    run.handshake_done(out);
    let mut parser = MultipartParser::new(&boundary);
    let mut body = response.into_body();
    'read: loop {
        let Some(frame) = run.unless_stopped(body.frame()).await else {
            break;
        };
        match frame {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                for jpeg in parser.push(&data) {
                    let len = jpeg.len();
                    if run.took_frame(out, &jpeg, len, None).await {
                        break 'read;
                    }
                }
            }
            Some(Err(e)) => {
                out.ended_early = true;
                connection.abort();
                bail!("HTTP body error: {e}");
            }
            None => {
                out.ended_early = true;
                connection.abort();
                bail!("the server ended the stream");
            }
        }
    }
    drop(body);
    connection.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A tiny JPEG, as a binary message.
    fn jpeg() -> (u8, Vec<u8>) {
        (0x82, vec![0xFF, 0xD8, 0xFF, 0xD9])
    }

    /// A text message.
    fn text(json: &str) -> (u8, Vec<u8>) {
        (0x81, json.as_bytes().to_vec())
    }

    /// A hand-written server: answers the handshake, sends `messages` (opcode, short
    /// payload) at once, then returns the text messages the client sends (with their
    /// arrival times) until it has `want` of them.
    async fn serve(
        listener: TcpListener,
        messages: Vec<(u8, Vec<u8>)>,
        want: usize,
    ) -> Vec<(String, Instant)> {
        let mut socket = crate::ws_client::tests::accept_handshake(listener).await;
        for (opcode, payload) in messages {
            socket
                .write_all(&[opcode, payload.len() as u8])
                .await
                .unwrap();
            socket.write_all(&payload).await.unwrap();
        }
        let mut texts = Vec::new();
        while texts.len() < want {
            let mut head = [0u8; 6];
            socket.read_exact(&mut head).await.unwrap();
            let len = usize::from(head[1] & 0x7F);
            let mut payload = vec![0u8; len];
            socket.read_exact(&mut payload).await.unwrap();
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= head[2 + i % 4];
            }
            assert_eq!(head[0], 0x81, "a final text frame");
            texts.push((String::from_utf8(payload).unwrap(), Instant::now()));
        }
        texts
    }

    /// The text messages [`serve`] got, once it has all it waits for.
    async fn texts_of(server: tokio::task::JoinHandle<Vec<(String, Instant)>>) -> Vec<String> {
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the viewer sent its credit")
            .unwrap()
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    fn shared(credit: Option<u32>, slow_gap: Duration) -> (watch::Sender<bool>, Arc<Shared>) {
        let (stop_tx, stop) = watch::channel(false);
        let shared = Shared {
            phase: AtomicU8::new(PHASE_MEASURE),
            connect: Semaphore::new(1),
            stop,
            mode: Mode::Ws,
            slow_gap,
            slow_rcvbuf: 0,
            credit,
            skim: false,
            settled: AtomicUsize::new(0),
        };
        (stop_tx, Arc::new(shared))
    }

    fn target(addr: SocketAddr) -> Arc<Target> {
        Arc::new(Target {
            url: format!("ws://{addr}/ws/streams/x"),
            addr,
            host: addr.to_string(),
            path: "/ws/streams/x".into(),
        })
    }

    #[tokio::test]
    async fn a_credit_viewer_grants_its_window_then_one_frame_per_frame_taken() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, vec![jpeg(); 3], 4));
        let (stop, shared) = shared(Some(5), Duration::ZERO);
        let local = Some(IpAddr::from([127, 0, 0, 1]));
        let viewer = tokio::spawn(run(0, target(addr), false, false, local, shared));
        let texts = texts_of(server).await;
        let _ = stop.send(true);
        let outcome = viewer.await.unwrap();
        assert_eq!(
            texts,
            [
                r#"{"type":"credit","frames":5}"#,
                r#"{"type":"credit","frames":1}"#,
                r#"{"type":"credit","frames":1}"#,
                r#"{"type":"credit","frames":1}"#,
            ]
        );
        assert_eq!((outcome.frames, outcome.credit_granted), (3, 8));
    }

    #[tokio::test]
    async fn a_slow_credit_viewer_grants_the_next_frame_after_its_pause() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, vec![jpeg(); 2], 2));
        let gap = Duration::from_millis(300);
        let (stop, shared) = shared(Some(1), gap);
        let viewer = tokio::spawn(run(0, target(addr), true, false, None, shared));
        let texts = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the viewer sent its credit")
            .unwrap();
        let _ = stop.send(true);
        viewer.await.unwrap();
        assert_eq!(texts[0].0, r#"{"type":"credit","frames":1}"#);
        assert_eq!(texts[1].0, r#"{"type":"credit","frames":1}"#);
        let waited = texts[1].1 - texts[0].1;
        assert!(
            waited >= gap,
            "granted after the pause, not on receipt: {waited:?}"
        );
    }

    /// Window 2 against `hello`, then three frames: the credit the viewer grants in all
    /// (the server waits for `want` credit messages before it closes).
    async fn granted_after_hello(hello: &str, want: usize) -> u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let messages = vec![text(hello), jpeg(), jpeg(), jpeg()];
        let server = tokio::spawn(serve(listener, messages, want));
        let (stop, shared) = shared(Some(2), Duration::ZERO);
        let viewer = tokio::spawn(run(0, target(addr), false, false, None, shared));
        let texts = texts_of(server).await;
        // Give a wrongly granted fourth message time to arrive before the count is read.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = stop.send(true);
        let outcome = viewer.await.unwrap();
        assert_eq!(texts[0], r#"{"type":"credit","frames":2}"#);
        assert_eq!(outcome.frames, 3);
        outcome.credit_granted
    }

    #[tokio::test]
    async fn the_frame_sent_with_hello_is_not_granted_for() {
        // `hello` with a size: the first frame is the one sent with it, free.
        let hello = r#"{"type":"hello","stream":"x","fps":10,"width":8,"height":8,"state":"live"}"#;
        assert_eq!(granted_after_hello(hello, 3).await, 2 + 1 + 1);
        // Without (no frame yet): every frame came on credit.
        let hello = r#"{"type":"hello","stream":"x","fps":10,"width":null,"state":"starting"}"#;
        assert_eq!(granted_after_hello(hello, 4).await, 2 + 1 + 1 + 1);
    }

    /// A video message: keyframe flag, seq, capture time, a 2-byte access unit.
    fn video(keyframe: bool, seq: u64, captured_at_us: u64) -> (u8, Vec<u8>) {
        let mut message = vec![crate::tag::VIDEO_KIND, u8::from(keyframe)];
        message.extend_from_slice(&seq.to_be_bytes());
        message.extend_from_slice(&captured_at_us.to_be_bytes());
        message.extend_from_slice(&[0x65, 0x88]);
        (0x82, message)
    }

    /// A server that sends `config` and a GOP captured before the join at once (keyframe
    /// 5, then 6 and 7, 7 captured just now), then after 50 ms frame 9 (8 is skipped),
    /// captured after the GOP went out; it holds the connection until the viewer leaves.
    async fn serve_join(listener: TcpListener) {
        let mut socket = crate::ws_client::tests::accept_handshake(listener).await;
        let now = unix_micros();
        let config = text(r#"{"type":"config","codec":"avc1.64001f","width":8,"height":8}"#);
        let gop = [
            config,
            video(true, 5, now - 80_000),
            video(false, 6, now - 40_000),
            video(false, 7, now),
        ];
        for (opcode, payload) in gop {
            socket
                .write_all(&[opcode, payload.len() as u8])
                .await
                .unwrap();
            socket.write_all(&payload).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (opcode, payload) = video(false, 9, unix_micros());
        socket
            .write_all(&[opcode, payload.len() as u8])
            .await
            .unwrap();
        socket.write_all(&payload).await.unwrap();
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
    }

    #[tokio::test]
    async fn a_video_probe_times_the_gop_up_to_the_newest_frame() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_join(listener));
        let (_stop, shared) = shared(None, Duration::ZERO);
        let probe = tokio::time::timeout(
            Duration::from_secs(10),
            run(0, target(addr), false, true, None, shared),
        )
        .await
        .expect("the probe ends once it knows");
        server.abort();
        assert_eq!(probe.error, None);
        assert_eq!(probe.configs, 1);
        // Frames 5, 6, 7 arrived at once; 7 was the newest then (9 was captured later).
        assert_eq!(probe.gop_frames, Some(3));
        let (ttff, gop) = (probe.ttff_us.unwrap(), probe.gop_us.unwrap());
        assert!(ttff <= gop, "the keyframe came first: {ttff} vs {gop} us");
        assert!(
            gop < ttff + 40_000,
            "the GOP's end is timed at its receipt, not at the next frame: {ttff} vs {gop} us"
        );
        assert_eq!(probe.frames, 0, "probes are not counted in the window");
    }

    #[tokio::test]
    async fn a_video_viewer_counts_frames_bytes_latency_and_sequence_gaps() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_join(listener));
        let (stop, shared) = shared(None, Duration::ZERO);
        let viewer = tokio::spawn(run(0, target(addr), false, false, None, shared));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stop.send(true);
        let outcome = viewer.await.unwrap();
        server.abort();
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.frames, 4);
        assert_eq!(outcome.bytes, 4 * 20, "whole messages, header included");
        assert_eq!(outcome.skipped, 1, "8 is missing between 7 and 9");
        assert_eq!(
            outcome.receipts.iter().map(|r| r.0).collect::<Vec<_>>(),
            [5, 6, 7, 9]
        );
        assert!(
            outcome.latency_us[0] >= 80_000,
            "latency is receipt - capture time: {:?}",
            outcome.latency_us
        );
        assert_eq!(outcome.untagged, 0);
        assert!(outcome.added_us.is_empty(), "video has no publish time");
    }

    #[tokio::test]
    async fn without_credit_a_viewer_sends_nothing() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            // Expect no text at all: the first thing the client sends is its close frame.
            let frames = vec![jpeg(); 2];
            let texts =
                tokio::time::timeout(Duration::from_millis(500), serve(listener, frames, 1));
            texts.await.is_err()
        });
        let (stop, shared) = shared(None, Duration::ZERO);
        let viewer = tokio::spawn(run(0, target(addr), false, false, None, shared));
        let nothing_sent = server.await.unwrap();
        let _ = stop.send(true);
        assert_eq!(viewer.await.unwrap().frames, 2);
        assert!(nothing_sent);
    }
}
