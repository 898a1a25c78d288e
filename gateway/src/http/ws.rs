//! `GET /ws/streams/{id}`: the WebSocket viewer.
//!
//! Protocol: each binary message is exactly one JPEG (carrying the Camgate APP11 tag with
//! sequence number and timestamps); text messages are JSON objects with a `type`:
//! `hello` first, then `state` on changes and `dropped` when frames were skipped.
//! Close codes: 1001 shutting down, 4004 stream removed, 4008 too slow.
//!
//! Slow-viewer policy (explicit, per viewer):
//! - Latest frame wins: the session only ever holds a reference to the newest frame; it
//!   hands a frame to the socket only after the previous one was fully written, so frames a
//!   slow viewer cannot take are skipped (and reported with `dropped`), never queued.
//! - The socket's unsent queue is kept tiny (`TCP_NOTSENT_LOWAT`, set at accept), so the
//!   backlog cannot hide in the kernel either: a slow viewer sees a recent picture.
//! - A viewer whose socket takes no frame for `write_timeout`, or that answers no ping for
//!   `pong_timeout`, is disconnected with 4008.
//! - One viewer's slowness never touches another: each session reads the hub's latest frame
//!   on its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use super::auth::Credential;
use super::pacing::{FramePacer, Next, parse_max_fps};
use super::response::{self, Body};
use crate::app::AppState;
use crate::hub::{Closing, Hub, StreamState, StreamStatus, Viewer};
use crate::telemetry::{Transport, ViewerTelemetry};

/// Close code: the gateway is shutting down.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: the viewer is not allowed to watch.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
/// Close code: the stream was removed from the configuration.
pub const CLOSE_STREAM_REMOVED: u16 = 4004;
/// Close code: the viewer could not keep up (or stopped answering).
pub const CLOSE_TOO_SLOW: u16 = 4008;

/// Tunables of the WebSocket viewer.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// How often the gateway pings an idle viewer.
    pub ping_interval: Duration,
    /// A viewer that answers no ping for this long is disconnected.
    pub pong_timeout: Duration,
    /// A viewer whose socket cannot take one message for this long is disconnected.
    pub write_timeout: Duration,
    /// `dropped` notices are sent at most this often.
    pub dropped_report_interval: Duration,
    /// Largest message a viewer may send (viewers only send small control messages).
    pub max_incoming_message: usize,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            ping_interval: Duration::from_secs(15),
            pong_timeout: Duration::from_secs(45),
            write_timeout: Duration::from_secs(10),
            dropped_report_interval: Duration::from_secs(1),
            max_incoming_message: 64 * 1024,
        }
    }
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Browsers always send `Origin`; it must be our own host or in the allow-list. Clients
/// without `Origin` (not browsers) are not subject to cross-site attacks and pass.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

/// Handles the upgrade request for `hub` (already authorized): validates it, answers 101
/// and spawns the viewer session. `credential` is re-checked during the session.
pub fn upgrade(
    req: Request<Incoming>,
    state: Arc<AppState>,
    hub: Arc<Hub>,
    credential: Credential,
) -> Response<Body> {
    let headers = req.headers();
    if !header_has_token(headers, header::CONNECTION, "upgrade")
        || !header_has_token(headers, header::UPGRADE, "websocket")
    {
        return response::error(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            "this endpoint speaks WebSocket: send `Connection: Upgrade` and `Upgrade: websocket`",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        let mut response = response::error(
            StatusCode::BAD_REQUEST,
            "websocket_version",
            "unsupported WebSocket version (only 13 is supported)",
        );
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return response::error(
            StatusCode::BAD_REQUEST,
            "websocket_key",
            "missing Sec-WebSocket-Key header",
        );
    };
    if !origin_allowed(headers, &state.config().manifest.server.allowed_origins) {
        return response::error(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this Origin may not open viewer WebSockets (add it to server.allowed_origins)",
        );
    }
    let max_fps = match parse_max_fps(req.uri().query()) {
        Ok(max_fps) => max_fps,
        Err(message) => return response::error(StatusCode::BAD_REQUEST, "bad_query", &message),
    };
    let accept = derive_accept_key(key.as_bytes());

    let settings = state.ws.clone();
    let guard = req.extensions().get::<super::ConnectionGuard>().cloned();
    tokio::spawn(async move {
        let _guard = guard;
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        // Viewers only send small control messages. A small read buffer matters: tungstenite
        // zero-fills the whole buffer before every read attempt, and the session polls the
        // socket once per frame it sends — with the default 128 KiB that memset was 22 % of
        // the gateway's CPU at 500 viewers, and 128 KiB of memory per viewer.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .max_message_size(Some(settings.max_incoming_message))
            .max_frame_size(Some(settings.max_incoming_message));
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        let viewer = hub.subscribe().await;
        let access = Access { state, credential };
        run_session(ws, viewer, max_fps, settings, access).await;
    });

    let mut response = Response::new(response::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

/// The JSON text messages of the protocol.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Event<'a> {
    Hello {
        stream: &'a str,
        name: &'a str,
        fps: Option<f64>,
        width: Option<u32>,
        height: Option<u32>,
        state: StreamState,
        message: &'a str,
    },
    State {
        state: StreamState,
        message: &'a str,
    },
    Dropped {
        frames: u64,
    },
}

impl Event<'_> {
    fn to_message(&self) -> Message {
        Message::text(serde_json::to_string(self).unwrap_or_default())
    }
}

/// Why a session ended, for logs and the close frame.
enum End {
    ClientLeft,
    Close(u16, &'static str),
    SocketError,
}

/// The writing side of a session: the socket, what was sent, and the viewer's metrics.
struct Output {
    settings: WsSettings,
    tx: futures_util::stream::SplitSink<Ws, Message>,
    telemetry: ViewerTelemetry,
    dropped_unreported: u64,
    last_dropped_report: Instant,
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// What a session needs to re-check its viewer's access and see shutdown.
struct Access {
    state: Arc<AppState>,
    credential: Credential,
}

impl Access {
    /// Whether the viewer may still watch `stream` (tokens can be revoked by a reload).
    fn still_allowed(&self, stream: &str) -> bool {
        self.state
            .principal(&self.credential)
            .is_some_and(|p| p.can_view(stream))
    }
}

/// Runs one viewer until it leaves, is closed, or the gateway shuts down.
async fn run_session(
    ws: Ws,
    mut viewer: Viewer,
    max_fps: Option<f64>,
    settings: WsSettings,
    access: Access,
) {
    let mut shutdown = access.state.shutdown.clone();
    let hub = Arc::clone(viewer.hub());
    let (tx, mut rx) = ws.split();
    let mut out = Output {
        settings,
        tx,
        telemetry: hub.telemetry().viewer(Transport::WebSocket),
        dropped_unreported: 0,
        last_dropped_report: Instant::now(),
    };
    let mut pacer = FramePacer::new(max_fps);
    let end = serve(
        &hub,
        &mut viewer,
        &mut pacer,
        &mut out,
        &mut rx,
        &mut shutdown,
        &access,
    )
    .await;
    if let End::Close(code, reason) = end {
        if code == CLOSE_TOO_SLOW {
            out.telemetry.slow_disconnect(reason);
        }
        tracing::debug!(stream = %hub.id(), code, reason, "closing viewer");
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        // A viewer too slow to take frames may not take the close frame either.
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            out.tx.send(Message::Close(Some(frame))),
        )
        .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), out.tx.close()).await;
}

async fn serve(
    hub: &Arc<Hub>,
    viewer: &mut Viewer,
    pacer: &mut FramePacer,
    out: &mut Output,
    rx: &mut futures_util::stream::SplitStream<Ws>,
    shutdown: &mut watch::Receiver<bool>,
    access: &Access,
) -> End {
    if let Err(end) = out.greet(hub, viewer, pacer).await {
        return end;
    }
    let mut ping = tokio::time::interval(out.settings.ping_interval);
    ping.reset();
    let mut last_heard = Instant::now();
    let mut closing = viewer.closing.clone();
    let mut frames = viewer.frames.clone();

    loop {
        tokio::select! {
            biased;
            _ = crate::hub::turned_true(shutdown) => {
                return End::Close(CLOSE_GOING_AWAY, "gateway shutting down");
            }
            _ = closing.changed() => {
                let reason = *closing.borrow_and_update();
                match reason {
                    Some(Closing::Removed) => return End::Close(CLOSE_STREAM_REMOVED, "stream removed"),
                    None => {}
                }
            }
            incoming = rx.next() => {
                last_heard = Instant::now();
                match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return End::ClientLeft,
                    // Pings are answered by tungstenite on the next write; flush it now.
                    Some(Ok(Message::Ping(_))) => {
                        if out.tx.flush().await.is_err() {
                            return End::SocketError;
                        }
                    }
                    // Pongs and client messages only prove the viewer is alive.
                    Some(Ok(_)) => {}
                }
            }
            event = viewer.status_events.recv() => {
                let status = match event {
                    Ok(status) => status,
                    // Fell behind: the current status is what matters.
                    Err(broadcast::error::RecvError::Lagged(_)) => viewer.status.borrow().clone(),
                    Err(broadcast::error::RecvError::Closed) => {
                        return End::Close(CLOSE_STREAM_REMOVED, "stream removed");
                    }
                };
                let event = Event::State { state: status.state, message: &status.message };
                if let Err(end) = out.send(event.to_message()).await {
                    return end;
                }
            }
            next = pacer.next(&mut frames) => {
                let Some(next) = next else {
                    return End::Close(CLOSE_STREAM_REMOVED, "stream removed");
                };
                if let Err(end) = out.send_frame(next).await {
                    return end;
                }
            }
            _ = ping.tick() => {
                if !access.still_allowed(hub.id()) {
                    return End::Close(CLOSE_UNAUTHORIZED, "access revoked");
                }
                if last_heard.elapsed() >= out.settings.pong_timeout {
                    return End::Close(CLOSE_TOO_SLOW, "viewer stopped answering pings");
                }
                if let Err(end) = out.send(Message::Ping(Vec::new().into())).await {
                    return end;
                }
            }
        }
    }
}

impl Output {
    /// Sends one message, giving up on a viewer whose socket takes nothing for
    /// `write_timeout`.
    async fn send(&mut self, message: Message) -> Result<(), End> {
        match tokio::time::timeout(self.settings.write_timeout, self.tx.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::SocketError),
            Err(_) => Err(End::Close(
                CLOSE_TOO_SLOW,
                "viewer too slow: a frame could not be sent in time",
            )),
        }
    }

    /// Sends `hello`, then the hub's latest frame at once (a new viewer sees a picture
    /// immediately).
    async fn greet(
        &mut self,
        hub: &Arc<Hub>,
        viewer: &mut Viewer,
        pacer: &mut FramePacer,
    ) -> Result<(), End> {
        let info = hub.info();
        // The hello carries the current status: transitions queued before it are old news.
        while viewer.status_events.try_recv().is_ok() {}
        let StreamStatus { state, message, .. } = viewer.status.borrow_and_update().clone();
        let current = pacer.current(&mut viewer.frames);
        let (width, height) = current
            .as_ref()
            .map(|next| &next.frame)
            .filter(|f| f.width > 0 && f.height > 0)
            .map(|f| (Some(f.width), Some(f.height)))
            .unwrap_or((None, None));
        let hello = Event::Hello {
            stream: hub.id(),
            name: &info.name,
            fps: info.fps,
            width,
            height,
            state,
            message: &message,
        };
        self.send(hello.to_message()).await?;
        match current {
            Some(next) => self.send_frame(next).await,
            None => Ok(()),
        }
    }

    /// Sends a frame, first reporting frames this viewer skipped (at most once per
    /// `dropped_report_interval`).
    async fn send_frame(&mut self, next: Next) -> Result<(), End> {
        if next.dropped > 0 {
            self.telemetry.frames_dropped(next.dropped);
            self.dropped_unreported += next.dropped;
        }
        if self.dropped_unreported > 0
            && self.last_dropped_report.elapsed() >= self.settings.dropped_report_interval
        {
            let frames = std::mem::take(&mut self.dropped_unreported);
            self.last_dropped_report = Instant::now();
            self.send(Event::Dropped { frames }.to_message()).await?;
        }
        let (bytes, captured_at_us) = (next.frame.jpeg.len(), next.frame.captured_at_us);
        self.send(Message::Binary(next.frame.jpeg)).await?;
        self.telemetry.frame_sent(bytes, captured_at_us);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_match_host_or_allow_list() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8000"));
        assert!(origin_allowed(&h, &[]), "no Origin: not a browser");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8000"),
        );
        assert!(origin_allowed(&h, &[]));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!origin_allowed(&h, &[]));
        assert!(origin_allowed(&h, &["http://evil.example".to_owned()]));
    }
}
