//! `GET /ws/streams/{id}`: the WebSocket viewer.
//!
//! Protocol: each binary message is exactly one JPEG (carrying the Camgate APP11 tag with
//! sequence number and timestamps); text messages are JSON objects with a `type`:
//! `hello` first, then `health` (right after `hello` and on changes), `state` on changes and
//! `dropped` when frames were skipped. A viewer may send `{"type":"credit","frames":N}`
//! (opt-in flow control) and `{"type":"shown",...}` (what it drew: freshness reports), see
//! `session.rs` and [`control`]; other text it sends is ignored.
//! Close codes: 1001 shutting down, 4001 access revoked, 4004 stream removed, 4008 too slow
//! (or silent), 1002 / 1009 / 1007 for a client that breaks the protocol / sends too much /
//! sends text that is not UTF-8, 1008 for a bad credit message (a bad `shown` report is
//! only counted and ignored). A viewer's own close is
//! answered with its code (or with no code if it gave none).
//!
//! This module validates the upgrade request (version, key, `max_fps`, `credit`; `Origin` and `Host`
//! were checked by the router before authentication, see `guard.rs`), answers
//! `101 Switching Protocols` and hands the raw TCP socket to a [`session`]. The session
//! keeps the connection's guard (its connection slot) and the viewer slot the router
//! reserved, so both count for the socket's whole life; framing is our
//! own ([`codec`], [`outbox`]) so a frame shared by every viewer is never copied per viewer
//! in user space, and large frames are not copied per viewer in the kernel either
//! ([`sealed`]: `sendfile` from one sealed in-memory file per frame). While a viewer's
//! socket keeps up, the hub's fan-out task writes its frames directly ([`lane`]) and its task
//! sleeps. The slow-viewer policy is documented in `session.rs`.

pub(crate) mod codec;
pub(crate) mod control;
mod lane;
mod outbox;
mod sealed;
mod session;
mod video;

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::auth::Credential;
use super::pacing::parse_max_fps;
use super::response::{self, Body};
use crate::app::AppState;
use crate::hub::{Variant, ViewerReservation};
use session::{Access, Session};

/// Close code: the gateway is shutting down.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: the viewer is not allowed to watch.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
/// Close code: the stream was removed from the configuration.
pub const CLOSE_STREAM_REMOVED: u16 = 4004;
/// Close code: the viewer could not keep up (or stopped answering).
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// The viewer asked for a video format (`h264`, `h265`) the stream does not have.
pub const CLOSE_FORMAT_UNAVAILABLE: u16 = 4006;

/// Tunables of the WebSocket viewer.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// How often the gateway pings an idle viewer.
    pub ping_interval: Duration,
    /// A viewer that answers no ping for this long is disconnected.
    pub pong_timeout: Duration,
    /// A viewer whose socket cannot take one message for this long is disconnected. Every
    /// HTTP connection's writes are bounded by it too (`http::admission::WriteTimeout`), so
    /// a stalled MJPEG viewer is cut after the same time.
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

/// Whether `key` is a `Sec-WebSocket-Key` as RFC 6455 §4.1 asks: the base64 encoding of
/// 16 bytes, which is always 22 base64 characters and `==`. The last character must leave
/// the unused low bits zero (canonical base64, as every client library encodes), so each
/// accepted key decodes to exactly one 16-byte value.
pub(crate) fn is_valid_key(key: &[u8]) -> bool {
    let is_base64 = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    match key {
        [data @ .., last, b'=', b'='] if data.len() == 21 => {
            data.iter().all(is_base64) && b"AQgw".contains(last)
        }
        _ => false,
    }
}

/// Handles the upgrade request for the stream of `reservation` (already authorized, its
/// viewer slot taken): validates it, answers 101 and spawns the viewer session, which
/// attaches in the reserved slot. `credential` is re-checked during the session.
pub fn upgrade(
    req: Request<Incoming>,
    state: Arc<AppState>,
    reservation: ViewerReservation,
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
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|key| is_valid_key(key.as_bytes()))
    else {
        return response::error(
            StatusCode::BAD_REQUEST,
            "websocket_key",
            "missing or invalid Sec-WebSocket-Key header (base64 of 16 bytes)",
        );
    };
    let max_fps = match parse_max_fps(req.uri().query()) {
        Ok(max_fps) => max_fps,
        Err(message) => return response::error(StatusCode::BAD_REQUEST, "bad_query", &message),
    };
    let credit = match control::initial_credit(req.uri().query()) {
        Ok(credit) => credit,
        Err(error) => {
            return response::error(StatusCode::BAD_REQUEST, "bad_query", &error.to_string());
        }
    };
    let requested = match video::parse_format(req.uri().query()) {
        Ok(requested) => requested,
        Err(error) => {
            return response::error(StatusCode::BAD_REQUEST, "bad_query", &error.to_string());
        }
    };
    if reservation.hub().variant() == Variant::Sub && requested != video::Requested::Mjpeg {
        return response::error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "variant=sub is served as JPEG frames only: omit `format` or use format=mjpeg",
        );
    }
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
        // The server hands hyper `TcpStream`s in a write-timeout wrapper (see `http::serve`),
        // taken off here: the session has its own write timeout. This only fails
        // if that changes: say so loudly rather than serve through a slower path.
        let parts = match upgraded.downcast::<super::ConnectionIo>() {
            Ok(parts) => parts,
            Err(_) => {
                tracing::error!("WebSocket upgrade on a connection that is not a TCP socket");
                return;
            }
        };
        let viewer = reservation.subscribe().await;
        let session = Session::new(
            parts.io.into_inner().into_inner(),
            &parts.read_buf,
            settings,
            &viewer,
            max_fps,
            credit,
            requested,
        );
        session.run(viewer, Access { state, credential }).await;
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

/// A connected loopback pair (client, server) for the socket tests of this module's parts.
#[cfg(test)]
async fn loopback_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
    let (client, accepted) = tokio::join!(client, listener.accept());
    (client.unwrap(), accepted.unwrap().0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_base64_of_16_bytes() {
        // RFC 6455's example, and what browsers and client libraries generate.
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(is_valid_key(b"AAAAAAAAAAAAAAAAAAAAAA=="));
        assert!(is_valid_key(b"/+/+/+/+/+/+/+/+/+/+/w=="));
        for bad in [
            &b""[..],
            b"x",
            b"dGhlIHNhbXBsZSBub25jZQ",       // no padding
            b"dGhlIHNhbXBsZSBub25jZQ=",      // short padding
            b"dGhlIHNhbXBsZSBub25jZQ===",    // 25 characters
            b"dGhlIHNhbXBsZSBub25jZXM=",     // 17 bytes
            b"dGhlIHNhbXBsZSBub25jZ==",      // 15 bytes
            b"dGhlIHNhbXBsZSBub25jZR==",     // non-zero unused bits
            b"dGhlIHNhbXBsZSBub25j*Q==",     // not base64
            b"dGhlIHNhbXBsZSBub25jZQ==\x00", // trailing byte
            b"dGhlIHNhbXBsZSBub25jZQ-_",     // base64url
        ] {
            assert!(!is_valid_key(bad), "{}", String::from_utf8_lossy(bad));
        }
    }
}
