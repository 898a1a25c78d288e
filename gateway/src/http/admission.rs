//! Connection admission: who gets a connection slot, for how long, and what a connection
//! accepted under pressure may do.
//!
//! - Every accepted connection holds an owned [`Semaphore`] permit (mini-redis style) from
//!   a general pool of [`ConnectionLimits::max_connections`]; when that pool is empty, from
//!   a small reserve of [`ConnectionLimits::reserve_connections`]; when both are empty the
//!   oldest connection still sending its first request's headers (at least
//!   [`ConnectionLimits::evict_after`] old) is evicted to make room ([`super::eviction`]: a
//!   slowloris flood cannot keep clients out), and only when there is none is the new
//!   connection closed at once. The permit lives in the connection's
//!   [`super::ConnectionGuard`], which an upgraded WebSocket session keeps, so a viewer
//!   socket counts (and is capped) for its whole life. `camgate_connections` follows the
//!   permits exactly.
//! - A reserve connection gets a short header timeout and may only make bodiless
//!   `GET`/`HEAD` requests to the health, metrics and media routes (see
//!   `router::reserve_may_serve`): a flood that fills the general pool cannot lock out
//!   health checks and authenticated viewers.
//! - Unauthenticated body reads (`POST /api/session`, public by necessity) are limited by a
//!   separate small semaphore ([`Admission::login_body`]): over it the request is refused at
//!   once, so stalled login bodies cannot even hold the general pool for long; every body
//!   read is bounded by [`ConnectionLimits::body_timeout`] (`api/body.rs`).
//! - [`WriteTimeout`] fails a connection's write that stays pending longer than the viewer
//!   write timeout and raises a flag, so a stalled MJPEG viewer is cut like a stalled
//!   WebSocket viewer and counted as a slow-viewer disconnect.
//! - Refused and evicted connections are logged at most once per 10 s each, with the
//!   number left unlogged.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use super::eviction::{Candidates, Eviction, RoomTicket};
use crate::telemetry::{LogBudget, Metrics};

/// Default size of the general connection pool.
pub const MAX_CONNECTIONS: usize = 4096;
/// Default size of the reserve pool.
pub const RESERVE_CONNECTIONS: usize = 256;

/// Connection and request-body limits (`GatewayOptions::limits`; tests use small ones).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections of the general pool (WebSocket viewers included).
    pub max_connections: usize,
    /// Extra connections kept for health checks, metrics and viewers when the general
    /// pool is full.
    pub reserve_connections: usize,
    /// A client must send its request headers within this time.
    pub header_timeout: Duration,
    /// The header timeout of a reserve connection.
    pub reserve_header_timeout: Duration,
    /// When every slot is taken, a connection that has gone this long without completing
    /// its first request's headers may be evicted to make room (younger ones are left
    /// their round trips: at capacity, real newcomers must not displace each other).
    pub evict_after: Duration,
    /// A request body must arrive completely within this time.
    pub body_timeout: Duration,
    /// Unauthenticated body reads (`POST /api/session`) in progress at once.
    pub max_login_bodies: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: MAX_CONNECTIONS,
            reserve_connections: RESERVE_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
            reserve_header_timeout: Duration::from_secs(2),
            evict_after: Duration::from_secs(1),
            body_timeout: Duration::from_secs(10),
            max_login_bodies: 64,
        }
    }
}

/// Which pool a connection's permit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// The ordinary pool.
    General,
    /// The reserve: restricted to health checks, metrics and media.
    Reserve,
}

/// The connection pools and the login-body limit, shared by the server and the router.
pub struct Admission {
    limits: ConnectionLimits,
    general: Arc<Semaphore>,
    reserve: Arc<Semaphore>,
    login_bodies: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    /// Connections still sending their first headers: what a full gateway may evict.
    candidates: Candidates,
    /// Warnings about refused connections: a flood must not write a line per connection.
    refusals: Mutex<LogBudget>,
    /// The same for evictions.
    evictions: Mutex<LogBudget>,
    /// Warnings written about refused connections (so tests need not capture logs).
    refusal_lines: AtomicU64,
}

/// At most this many "connection limit reached" warnings per [`REFUSAL_LOG_WINDOW`].
const REFUSAL_LOG_LINES: u32 = 1;
/// See [`REFUSAL_LOG_LINES`].
const REFUSAL_LOG_WINDOW: Duration = Duration::from_secs(10);

/// One connection's slot; `camgate_connections` counts these. Released on drop.
pub struct ConnectionPermit {
    _permit: OwnedSemaphorePermit,
    pool: Pool,
    metrics: Arc<Metrics>,
    eviction: Eviction,
}

impl ConnectionPermit {
    /// The pool the slot came from.
    pub fn pool(&self) -> Pool {
        self.pool
    }

    /// The connection's side of eviction: it reports its first complete request and
    /// watches for being evicted until then.
    pub fn eviction(&self) -> Eviction {
        self.eviction.clone()
    }
}

/// What [`Admission::admit`] decided for a newly accepted connection.
pub enum Admit {
    /// A slot was free.
    Now(ConnectionPermit),
    /// Every slot was taken and a connection still sending its headers was evicted: the
    /// slot it frees is this one's ([`Admission::after_eviction`]).
    AfterEviction(RoomTicket),
    /// Every slot was taken by connections past their headers: close this one at once.
    Refused,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.metrics.connections.dec();
    }
}

impl Admission {
    /// Pools sized by `limits`, counted in `metrics`.
    pub fn new(limits: ConnectionLimits, metrics: Arc<Metrics>) -> Admission {
        Admission {
            general: Arc::new(Semaphore::new(limits.max_connections)),
            reserve: Arc::new(Semaphore::new(limits.reserve_connections)),
            login_bodies: Arc::new(Semaphore::new(limits.max_login_bodies)),
            candidates: Candidates::new(
                limits
                    .max_connections
                    .saturating_add(limits.reserve_connections),
                limits.evict_after,
            ),
            limits,
            metrics,
            refusals: Mutex::new(LogBudget::new(REFUSAL_LOG_LINES, REFUSAL_LOG_WINDOW)),
            evictions: Mutex::new(LogBudget::new(REFUSAL_LOG_LINES, REFUSAL_LOG_WINDOW)),
            refusal_lines: AtomicU64::new(0),
        }
    }

    /// Event: a connection was closed at once ([`Admit::Refused`], or the slot an eviction
    /// freed did not come). Always counted (`camgate_connections_refused_total`); logged at
    /// most once per [`REFUSAL_LOG_WINDOW`] with the number left unlogged, since a flood of
    /// connections costs nothing to send and must not fill the disk through the log.
    pub fn refused(&self) {
        self.metrics.connections_refused.inc();
        if let Some(unlogged) = may_log(&self.refusals) {
            self.refusal_lines.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                limit = self.limits.max_connections,
                reserve = self.limits.reserve_connections,
                refused_unlogged = unlogged,
                "connection limit reached; refusing a connection (logged at most every 10 s)"
            );
        }
    }

    /// How many "connection limit reached" warnings were written.
    pub fn refusal_lines_logged(&self) -> u64 {
        self.refusal_lines.load(Ordering::Relaxed)
    }

    /// The limits in force.
    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// A slot for a newly accepted connection: general first, then reserve; when both
    /// pools are empty, the slot of the oldest connection still sending its headers, which
    /// is evicted; else none (close the connection).
    pub fn admit(&self) -> Admit {
        if let Ok(permit) = Arc::clone(&self.general).try_acquire_owned() {
            return Admit::Now(self.permit(permit, Pool::General));
        }
        if let Ok(permit) = Arc::clone(&self.reserve).try_acquire_owned() {
            return Admit::Now(self.permit(permit, Pool::Reserve));
        }
        match self.candidates.make_room(&self.general, &self.reserve) {
            Some(ticket) => {
                self.evicted();
                Admit::AfterEviction(ticket)
            }
            None => Admit::Refused,
        }
    }

    /// The slot an eviction freed for this connection (at most
    /// [`super::eviction::ROOM_WAIT`] away); `None` if it went elsewhere: close it.
    pub async fn after_eviction(&self, ticket: RoomTicket) -> Option<ConnectionPermit> {
        let pool = ticket.pool();
        let permit = ticket.slot().await?;
        Some(self.permit(permit, pool))
    }

    /// A connection's permit from `pool`, counted and enlisted as an eviction candidate.
    fn permit(&self, permit: OwnedSemaphorePermit, pool: Pool) -> ConnectionPermit {
        self.metrics.connections.inc();
        self.metrics.connections_total.inc();
        ConnectionPermit {
            _permit: permit,
            pool,
            metrics: Arc::clone(&self.metrics),
            eviction: self.candidates.enlist(pool),
        }
    }

    /// Event: a connection still sending its headers was closed to make room. Always
    /// counted (`camgate_connections_evicted_total`); logged at most once per
    /// [`REFUSAL_LOG_WINDOW`], as refusals are.
    fn evicted(&self) {
        self.metrics.connections_evicted.inc();
        if let Some(unlogged) = may_log(&self.evictions) {
            tracing::warn!(
                limit = self.limits.max_connections,
                reserve = self.limits.reserve_connections,
                evicted_unlogged = unlogged,
                "connection limit reached; closing the oldest connection that has not sent its request headers (logged at most every 10 s)"
            );
        }
    }

    /// Unauthenticated body reads in progress (for tests and status pages).
    pub fn login_bodies_in_progress(&self) -> usize {
        self.limits.max_login_bodies - self.login_bodies.available_permits()
    }

    /// Leave to read one unauthenticated request body; `None` when
    /// [`ConnectionLimits::max_login_bodies`] are already being read (refuse at once).
    pub fn login_body(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.login_bodies).try_acquire_owned().ok()
    }
}

/// Whether `budget` allows a line now; if so, how many went unlogged since the last one.
fn may_log(budget: &Mutex<LogBudget>) -> Option<u32> {
    let (log, unlogged) = budget
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take(tokio::time::Instant::now());
    log.then_some(unlogged)
}

/// Wraps a connection's IO so that a write (or flush) pending for longer than `timeout`
/// fails with `TimedOut` and sets the shared `stalled` flag. Any progress restarts the
/// clock. Reads are untouched (headers and bodies have their own timeouts).
pub struct WriteTimeout<T> {
    io: T,
    timeout: Duration,
    /// One timer for the connection's life, made at the first wait and re-armed (not
    /// re-allocated) at each later one: a slow MJPEG viewer waits about once per frame.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Whether `deadline` times the write pending now.
    armed: bool,
    stalled: Arc<AtomicBool>,
}

impl<T> WriteTimeout<T> {
    /// Wraps `io`; `stalled` turns true when a write timed out.
    pub fn new(io: T, timeout: Duration, stalled: Arc<AtomicBool>) -> Self {
        WriteTimeout {
            io,
            timeout,
            deadline: None,
            armed: false,
            stalled,
        }
    }

    /// The wrapped IO (a WebSocket session takes the raw socket back after the upgrade).
    pub fn into_inner(self) -> T {
        self.io
    }

    /// Turns a pending write into a timer: `Ready(Err)` once it has been pending for
    /// `timeout` without progress.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let timeout = self.timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if !self.armed {
            deadline
                .as_mut()
                .reset(tokio::time::Instant::now() + timeout);
            self.armed = true;
        }
        ready!(deadline.as_mut().poll(cx));
        self.stalled.store(true, Ordering::SeqCst);
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peer took no data within the write timeout",
        )))
    }

    fn progress<R>(
        &mut self,
        result: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match result {
            Poll::Ready(result) => {
                self.armed = false;
                Poll::Ready(result)
            }
            Poll::Pending => self.pending(cx),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        this.progress(result, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.progress(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_flush(cx);
        this.progress(result, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_shutdown(cx);
        this.progress(result, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn now(admit: Admit) -> ConnectionPermit {
        match admit {
            Admit::Now(permit) => permit,
            Admit::AfterEviction(_) => panic!("evicted for it"),
            Admit::Refused => panic!("refused"),
        }
    }

    fn ticket(admit: Admit) -> RoomTicket {
        match admit {
            Admit::AfterEviction(ticket) => ticket,
            Admit::Now(_) => panic!("a slot was free"),
            Admit::Refused => panic!("refused"),
        }
    }

    fn admission(general: usize, reserve: usize) -> (Admission, Arc<Metrics>) {
        let metrics = Metrics::new();
        let limits = ConnectionLimits {
            max_connections: general,
            reserve_connections: reserve,
            ..ConnectionLimits::default()
        };
        (Admission::new(limits, Arc::clone(&metrics)), metrics)
    }

    #[test]
    fn pools_fill_in_order_and_release_on_drop() {
        let (admission, metrics) = admission(2, 1);
        let a = now(admission.admit());
        let b = now(admission.admit());
        let c = now(admission.admit());
        for permit in [&a, &b, &c] {
            permit.eviction().headers_complete();
        }
        assert_eq!(
            (a.pool(), b.pool(), c.pool()),
            (Pool::General, Pool::General, Pool::Reserve)
        );
        assert!(
            matches!(admission.admit(), Admit::Refused),
            "both pools are empty and every connection is past its headers"
        );
        assert_eq!(metrics.connections.get(), 3);
        drop(a);
        assert_eq!(metrics.connections.get(), 2);
        assert_eq!(now(admission.admit()).pool(), Pool::General);
        assert_eq!(
            metrics.connections.get(),
            2,
            "the new permit was dropped at once"
        );
        assert_eq!(metrics.connections_total.get(), 4);
        assert_eq!(metrics.connections_evicted.get(), 0);
    }

    /// Past the default `evict_after` (1 s) on the paused clock.
    async fn age() {
        tokio::time::advance(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_gateway_evicts_the_oldest_connection_still_sending_headers() {
        let (admission, metrics) = admission(2, 1);
        let oldest = now(admission.admit());
        let viewer = now(admission.admit());
        viewer.eviction().headers_complete();
        let newer = now(admission.admit());
        assert_eq!(newer.pool(), Pool::Reserve);
        age().await;
        // Full: the oldest connection without headers goes, the viewer before it stays.
        let room = ticket(admission.admit());
        assert_eq!(room.pool(), Pool::General, "the evicted connection's pool");
        assert_eq!(metrics.connections_evicted.get(), 1);
        let evicted = oldest.eviction();
        tokio::time::timeout(Duration::from_secs(1), evicted.evicted())
            .await
            .expect("the oldest connection is told");
        // Its task drops it; the slot goes to the new connection, not to a later accept.
        drop(oldest);
        let later = admission.admit();
        let admitted = admission
            .after_eviction(room)
            .await
            .expect("the freed slot");
        assert_eq!(admitted.pool(), Pool::General);
        // The later accept evicted the next candidate (`newer`), not the viewer.
        let room = ticket(later);
        assert_eq!(room.pool(), Pool::Reserve);
        drop(newer);
        let second = admission
            .after_eviction(room)
            .await
            .expect("the reserve slot");
        assert_eq!(second.pool(), Pool::Reserve);
        // Viewer, first and second: no slot was lost or made on the way.
        assert_eq!(metrics.connections.get(), 3);
        assert_eq!(metrics.connections_evicted.get(), 2);
        drop((viewer, admitted, second));
    }

    #[tokio::test(start_paused = true)]
    async fn headers_that_complete_first_win_the_race_and_nobody_is_evicted() {
        let (admission, _metrics) = admission(1, 0);
        let only = now(admission.admit());
        only.eviction().headers_complete();
        assert!(matches!(admission.admit(), Admit::Refused));
        // Completing twice, or after an eviction attempt, changes nothing.
        only.eviction().headers_complete();
        assert!(
            tokio::time::timeout(Duration::from_secs(5), only.eviction().evicted())
                .await
                .is_err(),
            "a connection past its headers is never told to go"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn connections_younger_than_evict_after_are_left_their_round_trips() {
        let (admission, metrics) = admission(1, 0);
        let young = now(admission.admit());
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(
            matches!(admission.admit(), Admit::Refused),
            "a newcomer must not displace one still within its round trips"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        let room = ticket(admission.admit());
        drop(young);
        assert!(admission.after_eviction(room).await.is_some());
        assert_eq!(metrics.connections_evicted.get(), 1);
        assert_eq!(
            metrics.connections_refused.get(),
            0,
            "counted by the caller"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_that_is_not_freed_in_time_is_given_up() {
        let (admission, _metrics) = admission(1, 0);
        let stuck = now(admission.admit());
        age().await;
        let room = ticket(admission.admit());
        // The evicted connection never lets go (a runtime too busy to poll it).
        let started = tokio::time::Instant::now();
        assert!(admission.after_eviction(room).await.is_none());
        assert_eq!(started.elapsed(), super::super::eviction::ROOM_WAIT);
        drop(stuck);
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_max_waiting_connections_wait_for_room_whatever_is_evictable() {
        use super::super::eviction::MAX_WAITING;
        let (admission, _metrics) = admission(MAX_WAITING + 10, 0);
        let silent: Vec<_> = (0..MAX_WAITING + 10)
            .map(|_| now(admission.admit()))
            .collect();
        age().await;
        let mut tickets: Vec<_> = (0..MAX_WAITING)
            .map(|_| ticket(admission.admit()))
            .collect();
        assert!(
            matches!(admission.admit(), Admit::Refused),
            "ten candidates left, but {MAX_WAITING} connections already wait"
        );
        tickets.pop();
        tickets.push(ticket(admission.admit()));
        drop(tickets);
        drop(silent);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_pending_past_the_timeout_fails_and_flags_the_stall() {
        // A duplex pipe whose reader never reads: writes block once its buffer is full.
        let (client, server) = tokio::io::duplex(64);
        let stalled = Arc::new(AtomicBool::new(false));
        let mut io = WriteTimeout::new(server, Duration::from_secs(10), Arc::clone(&stalled));
        io.write_all(&[0; 64]).await.unwrap();
        let start = tokio::time::Instant::now();
        let err = io.write_all(&[0; 1]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert!(stalled.load(Ordering::SeqCst));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn progress_restarts_the_clock() {
        use tokio::io::AsyncReadExt;
        let (mut client, server) = tokio::io::duplex(64);
        let stalled = Arc::new(AtomicBool::new(false));
        let mut io = WriteTimeout::new(server, Duration::from_secs(10), Arc::clone(&stalled));
        let reader = tokio::spawn(async move {
            let mut buf = [0; 64];
            let mut total = 0;
            // Takes 64 bytes every 6 s: each write waits 6 s, never 10.
            while total < 64 * 4 {
                tokio::time::sleep(Duration::from_secs(6)).await;
                total += client.read(&mut buf).await.unwrap();
            }
            client
        });
        io.write_all(&[0; 64 * 5]).await.unwrap();
        assert!(!stalled.load(Ordering::SeqCst));
        drop(reader.await.unwrap());
    }
}
