//! The HTTP server: accepts connections, tunes their sockets for live video, serves the
//! router with hyper (HTTP/1.1 with upgrades) and shuts down gracefully.
//!
//! Invariants:
//! - Every accepted socket gets `TCP_NODELAY` and a small `TCP_NOTSENT_LOWAT`, so data the
//!   gateway hands the kernel for a slow viewer cannot pile up there (see `ws/session.rs`).
//! - On shutdown the listener stops accepting, HTTP connections finish their current
//!   request, and WebSocket sessions close with 1001 (they watch the same signal);
//!   [`serve`] returns when every connection is gone or the grace period ran out.

mod api;
pub mod auth;
mod openapi;
pub(crate) mod pacing;
pub mod response;
pub mod router;
mod ui;
mod viewer_page;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::app::AppState;

/// Unsent bytes the kernel may hold per connection before a write waits.
const NOTSENT_LOWAT_BYTES: u32 = 16 * 1024;
/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Data the peer does not acknowledge (or a zero window it never reopens) for this long
/// aborts the connection: this bounds stalled MJPEG clients, which hyper would otherwise
/// keep forever.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
/// Most simultaneous connections; beyond it new connections are closed at once.
pub const MAX_CONNECTIONS: i64 = 4096;

fn tune_socket(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let socket = socket2::SockRef::from(stream);
    if let Err(e) = socket.set_tcp_notsent_lowat(NOTSENT_LOWAT_BYTES) {
        tracing::debug!(error = %e, "TCP_NOTSENT_LOWAT not available");
    }
    if let Err(e) = socket.set_tcp_user_timeout(Some(TCP_USER_TIMEOUT)) {
        tracing::debug!(error = %e, "TCP_USER_TIMEOUT not available");
    }
}

/// Counts a connection in the metrics for as long as it lives.
struct ConnectionCount(Arc<crate::telemetry::Metrics>);

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

/// Held by every connection and upgraded session; [`serve`] waits until none is left.
#[derive(Clone)]
pub struct ConnectionGuard(#[allow(dead_code)] mpsc::Sender<()>);

/// Serves `listener` until `shutdown` turns true, then drains connections for at most
/// `grace`.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    // Each connection task holds a sender; when all are dropped, `recv` returns None.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = crate::hub::turned_true(&mut shutdown) => break,
        };
        if state.metrics.connections.get() >= MAX_CONNECTIONS {
            tracing::warn!(
                limit = MAX_CONNECTIONS,
                "connection limit reached; refusing a connection"
            );
            drop(stream);
            continue;
        }
        tune_socket(&stream);
        state.metrics.connections.inc();
        state.metrics.connections_total.inc();
        let counted = ConnectionCount(Arc::clone(&state.metrics));
        let state = Arc::clone(&state);
        let mut conn_shutdown = shutdown.clone();
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            let _counted = counted;
            let guard = ConnectionGuard(alive);
            let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                // Upgraded sessions outlive this task; they carry a guard of their own.
                req.extensions_mut().insert(guard.clone());
                let state = Arc::clone(&state);
                async move { Ok::<_, std::convert::Infallible>(router::route_request(req, state).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(true);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = crate::hub::turned_true(&mut conn_shutdown) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    drop(alive_tx);
    if tokio::time::timeout(grace, alive_rx.recv()).await.is_err() {
        tracing::warn!(
            ?grace,
            "connections still open after the shutdown grace period"
        );
    }
}
