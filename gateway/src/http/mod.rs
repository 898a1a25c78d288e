//! The HTTP server: accepts connections, tunes their sockets for live video, serves the
//! router with hyper (HTTP/1.1 with upgrades) and shuts down gracefully.
//!
//! Invariants:
//! - Every accepted socket gets `TCP_NODELAY` and a small `TCP_NOTSENT_LOWAT`, so data the
//!   gateway hands the kernel for a slow viewer cannot pile up there (see `ws/session.rs`).
//! - Every connection holds a permit of [`admission`] for its whole life, upgraded
//!   WebSocket sessions included (they keep the connection's [`ConnectionGuard`]): the
//!   connection cap bounds viewers and `camgate_connections` counts them. Until its first
//!   request's headers are complete a connection may be evicted to make room
//!   ([`eviction`]); its task watches for that and drops it.
//! - A connection's writes that make no progress for the viewer write timeout fail
//!   ([`admission::WriteTimeout`]), so a stalled MJPEG viewer is cut (and counted) like a
//!   WebSocket one.
//! - On shutdown the listener stops accepting, HTTP connections finish their current
//!   request, and WebSocket sessions close with 1001 (they watch the same signal);
//!   [`serve`] returns when every connection is gone or the grace period ran out.
//! - With `server.tls` the listener speaks HTTPS only: [`tls`] terminates TLS and hands
//!   the plaintext to this same serving path through a loopback socket, so every route,
//!   the zero-copy WebSocket writer and every limit work unchanged; the connection keeps
//!   the client's permit (one slot per client, taken at its accept) and its real [`Peer`].

pub mod admission;
mod api;
pub mod auth;
pub mod eviction;
mod guard;
pub mod host;
mod openapi;
pub(crate) mod pacing;
pub mod response;
pub mod router;
pub mod sealed_file;
pub(crate) mod signed_session;
mod tls;
mod ui;
pub mod variant;
mod viewer_page;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::app::AppState;
use admission::{Admit, ConnectionPermit, Pool, WriteTimeout};

/// Unsent bytes the kernel may hold per connection before a write waits.
const NOTSENT_LOWAT_BYTES: u32 = 16 * 1024;
/// Data the peer does not acknowledge (or a zero window it never reopens) for this long
/// aborts the connection: this bounds stalled MJPEG clients, which hyper would otherwise
/// keep forever.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
pub use admission::{MAX_CONNECTIONS, RESERVE_CONNECTIONS};

/// The IO type hyper serves (the WebSocket upgrade downcasts to it).
pub(crate) type ConnectionIo = TokioIo<WriteTimeout<TcpStream>>;

pub(crate) fn tune_socket(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let socket = socket2::SockRef::from(stream);
    if let Err(e) = socket.set_tcp_notsent_lowat(NOTSENT_LOWAT_BYTES) {
        tracing::debug!(error = %e, "TCP_NOTSENT_LOWAT not available");
    }
    if let Err(e) = socket.set_tcp_user_timeout(Some(TCP_USER_TIMEOUT)) {
        tracing::debug!(error = %e, "TCP_USER_TIMEOUT not available");
    }
}

/// Held by every connection and by the WebSocket session it turns into (it travels in the
/// request's extensions): the connection's slot is released, and [`serve`] stops waiting
/// for it, only when the last clone is gone.
#[derive(Clone)]
pub struct ConnectionGuard(Arc<ConnectionInner>);

struct ConnectionInner {
    permit: ConnectionPermit,
    peer: Peer,
    write_stalled: Arc<AtomicBool>,
    body_timeout: Duration,
    _alive: mpsc::Sender<()>,
}

impl ConnectionGuard {
    /// Whether the connection holds a reserve slot (restricted, see [`admission`]).
    pub fn is_reserve(&self) -> bool {
        self.0.permit.pool() == Pool::Reserve
    }

    /// Whether the client reached the gateway over TLS (an `https://` page's origin).
    pub fn is_tls(&self) -> bool {
        self.0.peer.tls
    }

    /// The client's address (for an HTTPS client, its own, not the loopback hand-off's).
    pub fn peer(&self) -> SocketAddr {
        self.0.peer.addr
    }

    /// Turns true once a write on this connection timed out.
    pub fn write_stalled(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0.write_stalled)
    }

    /// How long a request body may take to arrive.
    pub fn body_timeout(&self) -> Duration {
        self.0.body_timeout
    }
}

/// Where a connection came from: the client's address and whether it spoke TLS to the
/// gateway. For an HTTPS client this is the real peer, not the loopback hand-off socket
/// (see [`tls`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub addr: SocketAddr,
    pub tls: bool,
}

/// Serves `listener` until `shutdown` turns true, then drains connections for at most
/// `grace`. With `server.tls` in the configuration the listener speaks HTTPS only.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    // Each connection (and upgraded session) holds a sender through its guard; when all
    // are dropped, `recv` returns None.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let front = match state.config().manifest.server.tls.clone() {
        None => None,
        Some(config) => match tls::Front::start(config, &state, &shutdown, &alive_tx).await {
            Ok(front) => Some(Arc::new(front)),
            Err(e) => {
                tracing::error!(error = %e, "cannot open the internal listener for HTTPS; not serving");
                return;
            }
        },
    };
    let dispatcher = Dispatcher {
        front,
        state: Arc::clone(&state),
        shutdown: shutdown.clone(),
        alive: alive_tx.clone(),
    };
    loop {
        let (stream, addr) = tokio::select! {
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
        match state.admission.admit() {
            Admit::Now(permit) => dispatcher.serve(stream, addr, permit),
            Admit::AfterEviction(ticket) => {
                // The evicted connection's task frees its slot at its next poll: wait for it
                // off the accept loop.
                let dispatcher = dispatcher.clone();
                tokio::spawn(async move {
                    match dispatcher.state.admission.after_eviction(ticket).await {
                        Some(permit) => dispatcher.serve(stream, addr, permit),
                        None => dispatcher.state.admission.refused(),
                    }
                });
            }
            Admit::Refused => {
                state.admission.refused();
                drop(stream);
            }
        }
    }
    drop(listener);
    // It holds the TLS front and a sender of `alive`.
    drop(dispatcher);
    drop(alive_tx);
    if tokio::time::timeout(grace, alive_rx.recv()).await.is_err() {
        tracing::warn!(
            ?grace,
            "connections still open after the shutdown grace period"
        );
    }
}

/// What serving an admitted client needs: the accept loop's, cloned into a task that waits
/// for an evicted connection's slot.
#[derive(Clone)]
struct Dispatcher {
    front: Option<Arc<tls::Front>>,
    state: Arc<AppState>,
    shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
}

impl Dispatcher {
    /// Serves an admitted client: plain HTTP here, HTTPS through the TLS front.
    fn serve(&self, stream: TcpStream, addr: SocketAddr, permit: ConnectionPermit) {
        tune_socket(&stream);
        match &self.front {
            None => serve_connection(
                stream,
                Peer { addr, tls: false },
                permit,
                &self.state,
                &self.shutdown,
                &self.alive,
            ),
            Some(front) => front.accept(stream, addr, permit, &self.state, &self.alive),
        }
    }
}

/// Serves one admitted connection with hyper (in a task of its own): a plain client's
/// socket, or the loopback end of an HTTPS client's hand-off, whose `permit` was taken
/// when the client itself was accepted.
pub(crate) fn serve_connection(
    stream: TcpStream,
    peer: Peer,
    permit: ConnectionPermit,
    state: &Arc<AppState>,
    shutdown: &watch::Receiver<bool>,
    alive: &mpsc::Sender<()>,
) {
    let limits = state.admission.limits();
    let header_timeout = match permit.pool() {
        Pool::General => limits.header_timeout,
        Pool::Reserve => limits.reserve_header_timeout,
    };
    let write_stalled = Arc::new(AtomicBool::new(false));
    let eviction = permit.eviction();
    let guard = ConnectionGuard(Arc::new(ConnectionInner {
        permit,
        peer,
        write_stalled: Arc::clone(&write_stalled),
        body_timeout: limits.body_timeout,
        _alive: alive.clone(),
    }));
    let io = WriteTimeout::new(stream, state.ws.write_timeout, write_stalled);
    let state = Arc::clone(state);
    let mut conn_shutdown = shutdown.clone();
    tokio::spawn(async move {
        let complete = eviction.clone();
        let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            // Headers are in: from now on this connection is never evicted.
            complete.headers_complete();
            // Upgraded sessions outlive this task; they carry a guard of their own.
            req.extensions_mut().insert(guard.clone());
            let state = Arc::clone(&state);
            async move { Ok::<_, std::convert::Infallible>(router::route_request(req, state).await) }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true);
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(peer = %peer.addr, tls = peer.tls, error = %e, "connection ended with an error");
                }
            }
            _ = crate::hub::turned_true(&mut conn_shutdown) => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
            () = eviction.evicted() => {
                // Dropping the connection closes the socket and frees the slot.
                tracing::debug!(peer = %peer.addr, tls = peer.tls, "evicted before its request headers were complete");
            }
        }
    });
}
