//! HTTPS (`server.tls`): terminates TLS in the process and hands the plaintext to the
//! ordinary serving path through a loopback TCP connection, so HTTPS clients get every
//! route — API, UI, snapshots, MJPEG and the WebSocket viewer with its zero-copy writer
//! (`ws/session.rs` writes a raw `TcpStream` itself, with `sendfile` from sealed frame
//! files and `TCP_NOTSENT_LOWAT`) — without a second implementation of any of them.
//! `docs/ARCHITECTURE.md` ("HTTPS") weighs this against a TLS writer in the session.
//!
//! For each client on the public listener:
//! 1. [`super::serve`] admits it (one connection permit, as for plain HTTP) and tunes its
//!    socket; [`Front::accept`] then waits for the TLS handshake within the header timeout.
//!    A client whose first byte is not a TLS handshake record (plain HTTP on the HTTPS
//!    port) gets a plain-text `400` saying to use `https://`, and is closed.
//! 2. The relay opens a loopback socket, binds it (so its port is known), files the
//!    client's permit and real address under that port in [`Handoffs`], and connects to an
//!    internal listener on `127.0.0.1:0` that only this process knows.
//! 3. The internal acceptor takes the entry filed under the connecting port — a connection
//!    whose port has no entry (any other local process) is dropped unserved — and serves
//!    the socket like any other, as [`Peer`]`{ addr: client, tls: true }` with the client's
//!    permit: one connection slot per client, the real address in logs, and `https://` as
//!    the only same-origin scheme (`guard.rs`).
//! 4. The relay copies both ways until the inner side closes (then it sends the client
//!    `close_notify` and ends) or the client's side fails.
//!
//! Invariants:
//! - Only a socket this process bound and filed is served from the internal listener: the
//!   loopback port is the authentication (it is ours until the socket is closed), and the
//!   permit travels with it, so nothing is counted twice or not at all.
//! - The slow-viewer policy still holds, with a larger bound: the relay reads at most
//!   [`RELAY_CHUNK`] at a time through a loopback socket with a small receive buffer
//!   ([`RELAY_RCVBUF`]), and writes to a client socket tuned like a plain one, so a slow
//!   HTTPS viewer holds about 100 KiB in flight (16 KiB for plain HTTP) and its session's
//!   write timeout cuts it as usual. The relay's own write timeout (twice the viewer's)
//!   is a backstop that lets the inner connection decide first (and count the slow viewer).
//! - The certificate is the configuration's: each handshake uses the one in force, so a
//!   reload with a new certificate or key applies to new connections at once.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::admission::{ConnectionPermit, Pool, WriteTimeout};
use super::{Peer, serve_connection, tune_socket};
use crate::app::AppState;
use crate::config::TlsConfig;

/// Largest read of the relay from the inner connection (one TLS record's worth).
const RELAY_CHUNK: usize = 16 * 1024;
/// Receive buffer of the relay's loopback socket: small, so a viewer's backlog cannot
/// hide there (a fixed size also turns off the kernel's autotuning).
const RELAY_RCVBUF: u32 = 32 * 1024;
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// What a client that speaks plain HTTP to the HTTPS port is told.
const PLAIN_ANSWER_BODY: &str = "{\"error\":{\"code\":\"https_required\",\"message\":\"this port serves HTTPS: use an https:// URL\"}}";

/// The HTTPS front of [`super::serve`]: the TLS settings, the internal listener's address
/// and the hand-offs in flight.
pub(crate) struct Front {
    acceptor: TlsAcceptor,
    handoffs: Arc<Handoffs>,
    internal: SocketAddr,
}

impl Front {
    /// Opens the internal listener and starts its acceptor (which stops at `shutdown`).
    pub(crate) async fn start(
        config: TlsConfig,
        state: &Arc<AppState>,
        shutdown: &watch::Receiver<bool>,
        alive: &mpsc::Sender<()>,
    ) -> Result<Front, FrontError> {
        let resolver = Certificates {
            state: Arc::clone(state),
            initial: Arc::clone(&config.certified),
        };
        let mut server =
            rustls::ServerConfig::builder_with_provider(crate::config::tls::provider())
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(resolver));
        // hyper serves HTTP/1.1 only: say so, so no client tries h2 on this connection.
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let internal = listener.local_addr()?;
        let handoffs = Arc::new(Handoffs::default());
        tokio::spawn(accept_internal(
            listener,
            Arc::clone(&handoffs),
            Arc::clone(state),
            shutdown.clone(),
            alive.clone(),
        ));
        tracing::info!("serving HTTPS");
        Ok(Front {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            handoffs,
            internal,
        })
    }

    /// Takes over an admitted client: handshake, hand-off and relay, in a task of its own.
    pub(crate) fn accept(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
        permit: ConnectionPermit,
        state: &Arc<AppState>,
        alive: &mpsc::Sender<()>,
    ) {
        let limits = state.admission.limits();
        let handshake_timeout = match permit.pool() {
            Pool::General => limits.header_timeout,
            Pool::Reserve => limits.reserve_header_timeout,
        };
        let relay_timeout = state.ws.write_timeout * 2;
        let acceptor = self.acceptor.clone();
        let handoffs = Arc::clone(&self.handoffs);
        let internal = self.internal;
        let alive = alive.clone();
        let eviction = permit.eviction();
        tokio::spawn(async move {
            let _alive = alive;
            let handshake = tokio::time::timeout(handshake_timeout, handshake(acceptor, stream));
            let handshaken = tokio::select! {
                result = handshake => result,
                () = eviction.evicted() => {
                    tracing::debug!(peer = %addr, "evicted during the TLS handshake");
                    return;
                }
            };
            let tls = match handshaken {
                Ok(Ok(Some(tls))) => tls,
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %addr, "TLS handshake timed out");
                    return;
                }
            };
            let (inner, port) = match handoffs.connect(internal, addr, permit).await {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(peer = %addr, error = %e, "cannot hand an HTTPS connection over");
                    return;
                }
            };
            relay(tls, inner, relay_timeout).await;
            // Unclaimed only if the internal acceptor stopped first (shutdown).
            handoffs.take(port);
        });
    }
}

/// Why the HTTPS front could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrontError {
    /// The TLS settings were refused.
    #[error("TLS settings: {0}")]
    Tls(#[from] rustls::Error),
    /// The internal listener could not be opened.
    #[error("internal listener: {0}")]
    Io(#[from] io::Error),
}

/// Waits for the client's first byte; a TLS client is taken through the handshake, any
/// other is told (in plain HTTP) to use `https://` and closed (`None`).
async fn handshake(
    acceptor: TlsAcceptor,
    mut stream: TcpStream,
) -> io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Ok(None);
    }
    if first[0] != TLS_HANDSHAKE {
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_ANSWER_BODY}",
            PLAIN_ANSWER_BODY.len()
        );
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent before closing: closing with unread data would reset
        // the connection, and the client could lose the answer. Bounded by the handshake
        // timeout and a byte budget.
        let mut sink = [0u8; 4096];
        let mut budget: usize = 64 * 1024;
        while budget > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => budget = budget.saturating_sub(n),
            }
        }
        return Ok(None);
    }
    acceptor.accept(stream).await.map(Some)
}

/// Copies between the client's TLS stream and the inner connection. Ends when the inner
/// side is done (the client then gets `close_notify` and FIN) or the client's side fails;
/// when the client closes first, the inner side is told (FIN) and its last bytes still go out.
async fn relay(tls: TlsStream<TcpStream>, inner: TcpStream, timeout: Duration) {
    let outer = WriteTimeout::new(tls, timeout, Arc::new(AtomicBool::new(false)));
    let (mut outer_read, mut outer_write) = tokio::io::split(outer);
    let (inner_read, mut inner_write) = inner.into_split();
    let mut inner_read = BufReader::with_capacity(RELAY_CHUNK, inner_read);
    let down = async {
        let copied = tokio::io::copy_buf(&mut inner_read, &mut outer_write).await;
        let _ = outer_write.shutdown().await;
        copied
    };
    let up = async {
        let copied = tokio::io::copy(&mut outer_read, &mut inner_write).await;
        let _ = inner_write.shutdown().await;
        copied
    };
    tokio::pin!(down, up);
    let result = tokio::select! {
        result = &mut down => result,
        result = &mut up => match result {
            Ok(_) => down.await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTPS relay ended with an error");
    }
}

/// A client waiting to be picked up by the internal acceptor.
struct Handoff {
    peer: SocketAddr,
    permit: ConnectionPermit,
}

/// Hand-offs in flight, by the loopback port of the relay's socket.
#[derive(Default)]
struct Handoffs(Mutex<HashMap<SocketAddr, Handoff>>);

impl Handoffs {
    /// Binds a loopback socket, files `peer` and `permit` under its address and connects it
    /// to the internal listener. Returns the relay's end and the address it is filed under.
    async fn connect(
        &self,
        internal: SocketAddr,
        peer: SocketAddr,
        permit: ConnectionPermit,
    ) -> io::Result<(TcpStream, SocketAddr)> {
        let socket = TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(RELAY_RCVBUF)?;
        socket.set_nodelay(true)?;
        socket.bind((Ipv4Addr::LOCALHOST, 0).into())?;
        let local = socket.local_addr()?;
        self.lock().insert(local, Handoff { peer, permit });
        match socket.connect(internal).await {
            Ok(stream) => Ok((stream, local)),
            Err(e) => {
                self.take(local);
                Err(e)
            }
        }
    }

    /// Removes and returns what was filed under `local`.
    fn take(&self, local: SocketAddr) -> Option<Handoff> {
        self.lock().remove(&local)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Handoff>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves the relays' loopback connections (and nothing else) until `shutdown`.
async fn accept_internal(
    listener: TcpListener,
    handoffs: Arc<Handoffs>,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    loop {
        let (stream, from) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "internal accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = crate::hub::turned_true(&mut shutdown) => break,
        };
        let Some(handoff) = handoffs.take(from) else {
            tracing::debug!(%from, "dropped an internal connection no HTTPS client handed over");
            continue;
        };
        tune_socket(&stream);
        serve_connection(
            stream,
            Peer {
                addr: handoff.peer,
                tls: true,
            },
            handoff.permit,
            &state,
            &shutdown,
            &alive,
        );
    }
}

/// Picks the certificate for each handshake: the configuration's, so a reload with a new
/// certificate applies to the next connection. (Turning TLS off needs a restart; until
/// then the certificate the gateway started with is kept.)
struct Certificates {
    state: Arc<AppState>,
    initial: Arc<CertifiedKey>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Certificates")
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let config = self.state.config();
        Some(config.manifest.server.tls.as_ref().map_or_else(
            || Arc::clone(&self.initial),
            |tls| Arc::clone(&tls.certified),
        ))
    }
}
