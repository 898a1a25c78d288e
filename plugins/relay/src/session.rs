//! One upstream connection ("run"): TCP connect and WebSocket upgrade within
//! `connect_timeout` (with `Authorization: Bearer <token>` when a token is set), then every
//! message through a [`Republisher`] until something ends it: an error, the upstream
//! closing, the stall watchdog, or the host closing the source.
//!
//! Watchdogs: while the upstream says `live`, a frame must come every `stall_timeout`
//! (counted from when it said so, then from each frame); while it says anything else, the
//! relay stays connected and shows the upstream's state, and only a connection silent for
//! [`SILENCE_TIMEOUT`] (no message at all: the upstream pings every 15 s) is dropped.
//!
//! Failures are worded for the gateway's outage classifier (`hub/outage.rs`, documented in
//! docs/plugin-authors.md): 401 and a revoked token read `authentication failed`, 403
//! `access denied`, 404 and close 4004 `stream not found`, refused/timed out/no route/no
//! DNS name as for cameras, a stall `no frame for`, and the upstream closing the socket
//! (1001 shutting down, 4008 too slow, any other end) `stream ended`.
//!
//! Invariants: the token is sent only in the upgrade's header (marked sensitive) and
//! appears in no error, log line or state; `live` is reported only after the host took a
//! frame (the [`Republisher`] does it).

use std::time::{Duration, Instant};

use camgate_plugin_api::Host;
use camgate_plugin_common::camera::human;
use camgate_plugin_common::run::RunStats;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::config::Settings;
use crate::republish::{Outcome, Republisher};

/// A connection that carries no message at all for this long is dropped (the upstream
/// pings every 15 s by default; three missed pings is a dead connection).
pub const SILENCE_TIMEOUT: Duration = Duration::from_secs(45);

/// Largest message accepted: the gateway's largest frame (16 MiB) and a video header.
const MAX_MESSAGE: usize = 16 * 1024 * 1024 + 64;

/// Why a run failed: short, operator-facing texts (no token, no multi-line dumps).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// 401 at the upgrade.
    #[error("authentication failed (401 Unauthorized): {0}")]
    Unauthorized(&'static str),
    /// The upstream closed with 4001 (its token was revoked by a reload).
    #[error("authentication failed: the upstream gateway revoked the token (close 4001)")]
    Revoked,
    /// 403 at the upgrade.
    #[error("access denied (403 Forbidden): the token may not watch this stream upstream")]
    Forbidden,
    /// 404 at the upgrade (no such stream or variant).
    #[error("stream not found (404 Not Found) on the upstream gateway")]
    NotFound,
    /// The upstream closed with 4004 (stream removed).
    #[error("stream not found: it was removed from the upstream gateway (close 4004)")]
    Removed,
    /// Nothing listens there.
    #[error("connection refused")]
    Refused,
    /// TCP connect + upgrade took longer than `connect_timeout`.
    #[error("connection timed out (no answer within {0})")]
    ConnectTimeout(String),
    /// The connection carried nothing for [`SILENCE_TIMEOUT`].
    #[error("connection timed out (no message from the upstream gateway for {0})")]
    Silent(String),
    /// No route to the upstream's host.
    #[error("no route to host")]
    NoRoute,
    /// The network is unreachable.
    #[error("network unreachable")]
    NetworkUnreachable,
    /// The upstream's host name does not resolve.
    #[error("host name not found: {0}")]
    NoSuchHost(String),
    /// 503: the upstream stream is at its viewer limit.
    #[error("the upstream gateway refused the viewer (503: at its viewer limit)")]
    Busy,
    /// 421: the upstream does not accept the host name the URL uses.
    #[error(
        "the upstream gateway refused the host name (421 Misdirected Request): add `{0}` to \
         its server.allowed_hosts, or use its IP address"
    )]
    Misdirected(String),
    /// Any other answer to the upgrade.
    #[error("the upstream gateway refused the upgrade ({0})")]
    Http(String),
    /// Frames stopped for `stall_timeout` while the upstream said it was live.
    #[error("no frame for {0} (stream stalled)")]
    Stalled(String),
    /// The upstream closed with 1001.
    #[error("stream ended: the upstream gateway is shutting down (close 1001)")]
    ShuttingDown,
    /// The upstream closed with 4008.
    #[error("stream ended: the upstream gateway found this relay too slow (close 4008)")]
    TooSlow,
    /// The upstream closed otherwise, or the connection ended.
    #[error("stream ended: the upstream gateway closed the connection{0}")]
    Ended(String),
    /// Any other network or protocol error: its first line.
    #[error("{0}")]
    Network(String),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The host closed this source (it is stopping): publish nothing more.
    Closed,
    /// The run failed; the supervisor retries.
    Failed(RunError),
}

fn connect_error(error: &std::io::Error, host: &str) -> RunError {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => RunError::Refused,
        ErrorKind::HostUnreachable => RunError::NoRoute,
        ErrorKind::NetworkUnreachable => RunError::NetworkUnreachable,
        ErrorKind::TimedOut => RunError::ConnectTimeout("the system's limit".to_owned()),
        _ if error.to_string().contains("lookup address") => RunError::NoSuchHost(host.to_owned()),
        _ => RunError::Network(first_line(&error.to_string())),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// The failure for an answer other than 101 to the upgrade.
pub fn refusal(status: StatusCode, have_token: bool, host: &str) -> RunError {
    match status.as_u16() {
        401 => RunError::Unauthorized(if have_token {
            "the upstream gateway refused the token"
        } else {
            "the upstream gateway wants a token: set source.token"
        }),
        403 => RunError::Forbidden,
        404 => RunError::NotFound,
        421 => RunError::Misdirected(host.to_owned()),
        503 => RunError::Busy,
        _ => RunError::Http(status.to_string()),
    }
}

/// The failure for a close frame (or a connection that ended without one).
pub fn closed(code: Option<CloseCode>) -> RunError {
    match code.map(u16::from) {
        Some(1001) => RunError::ShuttingDown,
        Some(4001) => RunError::Revoked,
        Some(4004) => RunError::Removed,
        Some(4008) => RunError::TooSlow,
        Some(code) => RunError::Ended(format!(" (close {code})")),
        None => RunError::Ended(String::new()),
    }
}

type Upstream = tokio_tungstenite::WebSocketStream<TcpStream>;

/// TCP connect and upgrade, within `connect_timeout`.
async fn connect(settings: &Settings) -> Result<Upstream, RunError> {
    let host = settings.url.host.as_str();
    let open = async {
        let tcp = TcpStream::connect(settings.url.authority())
            .await
            .map_err(|e| connect_error(&e, host))?;
        let _ = tcp.set_nodelay(true);
        let mut request = settings
            .url
            .request()
            .into_client_request()
            .map_err(|e| RunError::Network(first_line(&e.to_string())))?;
        if let Some(token) = &settings.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| RunError::Network("the token is not a valid header".to_owned()))?;
            value.set_sensitive(true);
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        match tokio_tungstenite::client_async_with_config(request, tcp, Some(config)).await {
            Ok((upstream, _response)) => Ok(upstream),
            Err(WsError::Http(response)) => {
                Err(refusal(response.status(), settings.token.is_some(), host))
            }
            Err(e) => Err(RunError::Network(format!(
                "WebSocket upgrade failed: {}",
                first_line(&e.to_string())
            ))),
        }
    };
    match tokio::time::timeout(settings.connect_timeout, open).await {
        Ok(result) => result,
        Err(_) => Err(RunError::ConnectTimeout(human(settings.connect_timeout))),
    }
}

/// Runs one connection to its end (see the module docs).
pub async fn run(settings: &Settings, host: &Host, stats: &mut RunStats) -> RunEnd {
    let mut upstream = match connect(settings).await {
        Ok(upstream) => upstream,
        Err(e) => return RunEnd::Failed(e),
    };
    let mut relay = Republisher::new(host);
    let mut last_message = Instant::now();
    // Since when a frame is due: when the upstream said live, then each frame.
    let mut frames_due_since: Option<Instant> = None;
    loop {
        let (deadline, on_timeout) = match frames_due_since {
            Some(since) if relay.upstream_live() => (
                since + settings.stall_timeout,
                RunError::Stalled(human(settings.stall_timeout)),
            ),
            _ => (
                last_message + SILENCE_TIMEOUT,
                RunError::Silent(human(SILENCE_TIMEOUT)),
            ),
        };
        let next = tokio::time::timeout_at(deadline.into(), upstream.next()).await;
        let now = Instant::now();
        last_message = now;
        let message = match next {
            Err(_) => return RunEnd::Failed(on_timeout),
            Ok(None) => return RunEnd::Failed(closed(None)),
            Ok(Some(Err(e))) => return RunEnd::Failed(read_error(&e)),
            Ok(Some(Ok(message))) => message,
        };
        let outcome = match message {
            Message::Text(text) => relay.text(text.as_str(), now),
            Message::Binary(bytes) => relay.binary(Vec::from(bytes), now),
            Message::Close(frame) => return RunEnd::Failed(closed(frame.map(|f| f.code))),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Outcome::Nothing,
        };
        match outcome {
            Outcome::Closed => return RunEnd::Closed,
            Outcome::Published => {
                stats.took_frame(now);
                frames_due_since = Some(now);
            }
            Outcome::Nothing => {}
        }
        if !relay.upstream_live() {
            frames_due_since = None;
        } else if frames_due_since.is_none() {
            frames_due_since = Some(now);
        }
    }
}

fn read_error(error: &WsError) -> RunError {
    match error {
        WsError::ConnectionClosed | WsError::AlreadyClosed => closed(None),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            RunError::Ended(" (reset)".to_owned())
        }
        WsError::Io(e) => match e.kind() {
            std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::BrokenPipe => RunError::Ended(" (reset)".to_owned()),
            _ => RunError::Network(first_line(&e.to_string())),
        },
        other => RunError::Network(format!(
            "invalid data from the upstream gateway: {}",
            first_line(&other.to_string())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_refusals_and_closes_read_as_outages() {
        let cases = [
            (
                refusal(StatusCode::UNAUTHORIZED, true, "h"),
                "authentication failed (401",
            ),
            (
                refusal(StatusCode::UNAUTHORIZED, false, "h"),
                "wants a token",
            ),
            (
                refusal(StatusCode::FORBIDDEN, true, "h"),
                "access denied (403",
            ),
            (
                refusal(StatusCode::NOT_FOUND, true, "h"),
                "stream not found (404",
            ),
            (
                refusal(StatusCode::MISDIRECTED_REQUEST, true, "core"),
                "add `core` to",
            ),
            (
                refusal(StatusCode::SERVICE_UNAVAILABLE, true, "h"),
                "viewer limit",
            ),
            (
                refusal(StatusCode::BAD_REQUEST, true, "h"),
                "refused the upgrade (400 Bad Request)",
            ),
            (
                closed(Some(CloseCode::Away)),
                "stream ended: the upstream gateway is shutting down",
            ),
            (
                closed(Some(CloseCode::from(4004))),
                "stream not found: it was removed",
            ),
            (
                closed(Some(CloseCode::from(4001))),
                "authentication failed: the upstream",
            ),
            (closed(Some(CloseCode::from(4008))), "too slow"),
            (
                closed(Some(CloseCode::Normal)),
                "closed the connection (close 1000)",
            ),
            (closed(None), "stream ended"),
        ];
        for (error, needle) in cases {
            assert!(error.to_string().contains(needle), "{error} / {needle}");
        }
    }

    #[test]
    fn connect_errors_are_worded_like_cameras() {
        use std::io::{Error, ErrorKind};
        assert_eq!(
            connect_error(&Error::from(ErrorKind::ConnectionRefused), "h"),
            RunError::Refused
        );
        assert_eq!(
            connect_error(
                &Error::other("failed to lookup address information: Name or service not known"),
                "core.invalid"
            )
            .to_string(),
            "host name not found: core.invalid"
        );
    }
}
