//! Room for a new connection when every slot is taken: the connections still sending their
//! first request's headers, oldest first, are the ones a full gateway closes.
//!
//! Why: connections that connect and then say nothing (or dribble a header a byte at a
//! time: "slowloris") cost an attacker nothing but a socket. With every slot of both pools
//! held that way, new clients were refused until the header timeout (10 s; 2 s on the
//! reserve) freed slots, and a flood that kept reconnecting kept everyone out. A real client
//! sends its headers within a round trip of connecting, so the oldest connection that has
//! not is, under pressure, the one least likely to be a real client; closing it admits the
//! new one within that round trip.
//!
//! Invariants:
//! - Only a connection whose first request's headers are not complete (for HTTPS: whose
//!   TLS handshake or first request is not) can be evicted: a viewer, an API call in
//!   progress or an idle keep-alive connection never is. Nor is one younger than
//!   `evict_after` (1 s): at capacity, real newcomers still within their round trips must
//!   not displace each other; a slowloris flood then has to replace every slot faster than
//!   that to keep anyone out, where holding them was enough before.
//!   [`Eviction::headers_complete`] and an eviction race on one atomic: exactly one wins.
//! - An eviction frees exactly one slot, in the evicted connection's pool, and the slot goes
//!   to the connection that asked for room: it joins the pool's queue before the evicted
//!   connection is told, and tokio's semaphore hands a released permit to the oldest
//!   waiter before anyone's `try_acquire` (fair). At most [`MAX_WAITING`] new connections
//!   wait for room at once (each for at most [`ROOM_WAIT`]); beyond that a connection is
//!   refused as before.
//! - The list of candidates is in arrival order and holds weak references; entries that
//!   completed their headers or closed are dropped from its front as it is used, and the
//!   whole list is compacted when it outgrows twice the slots, so it never grows with
//!   traffic.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::{AcquireError, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::admission::Pool;

/// At most this many new connections wait for an evicted connection's slot at once.
pub const MAX_WAITING: usize = 64;

/// How long a new connection waits for the slot an eviction frees (the evicted
/// connection's task drops it at its next poll: microseconds, unless the runtime is
/// saturated).
pub const ROOM_WAIT: Duration = Duration::from_secs(1);

const WAITING_FOR_HEADERS: u8 = 0;
const HEADERS_COMPLETE: u8 = 1;
const EVICTED: u8 = 2;

/// One connection's place in the list of candidates.
struct Candidate {
    state: AtomicU8,
    evict: Notify,
    pool: Pool,
    /// When it was admitted.
    since: Instant,
}

/// A connection's side of its eviction: told when its headers are complete, and waits to be
/// evicted. Held with the connection's permit; clones are the same connection's.
#[derive(Clone)]
pub struct Eviction(Arc<Candidate>);

impl Eviction {
    /// The first request's headers are complete: this connection is never evicted now.
    /// Cheap enough to call on every request.
    pub fn headers_complete(&self) {
        let _ = self.0.state.compare_exchange(
            WAITING_FOR_HEADERS,
            HEADERS_COMPLETE,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Resolves when the gateway evicts this connection (never after
    /// [`Eviction::headers_complete`]). The connection's task then drops the connection.
    pub fn evicted(&self) -> impl Future<Output = ()> + '_ {
        self.0.evict.notified()
    }
}

/// The candidates of one gateway, oldest first, and the connections waiting for room.
pub struct Candidates {
    list: Mutex<VecDeque<Weak<Candidate>>>,
    /// Candidates younger than this are not evicted.
    evict_after: Duration,
    /// Compact the list beyond this many entries (twice the slots).
    compact_above: usize,
    waiting: Arc<AtomicUsize>,
}

impl Candidates {
    /// An empty list for a gateway of `slots` connections (both pools) that evicts
    /// connections `evict_after` old or older.
    pub fn new(slots: usize, evict_after: Duration) -> Self {
        Candidates {
            list: Mutex::new(VecDeque::new()),
            evict_after,
            compact_above: slots.saturating_mul(2).max(16),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Adds a newly admitted connection of `pool`.
    pub fn enlist(&self, pool: Pool) -> Eviction {
        let candidate = Arc::new(Candidate {
            state: AtomicU8::new(WAITING_FOR_HEADERS),
            evict: Notify::new(),
            pool,
            since: Instant::now(),
        });
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        while list.front().is_some_and(|front| !evictable(front)) {
            list.pop_front();
        }
        if list.len() >= self.compact_above {
            list.retain(evictable);
        }
        list.push_back(Arc::downgrade(&candidate));
        Eviction(candidate)
    }

    /// Evicts the oldest connection still sending its headers, if any, and returns a
    /// ticket for the slot it frees; `None` when there is no such connection or
    /// [`MAX_WAITING`] connections already wait for room.
    pub fn make_room(
        &self,
        general: &Arc<Semaphore>,
        reserve: &Arc<Semaphore>,
    ) -> Option<RoomTicket> {
        // A place among the waiting first: never evict for a connection that cannot wait.
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_WAITING).then_some(n + 1)
            })
            .ok()?;
        let Some(candidate) = self.claim_oldest() else {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        };
        let semaphore = match candidate.pool {
            Pool::General => general,
            Pool::Reserve => reserve,
        };
        // In the semaphore's queue before the connection is told to go: the slot it frees
        // then comes here (a released permit goes to the oldest waiter), never to a later
        // accept's `try_acquire`. A slot freed meanwhile is taken at once.
        let mut slot: Slot = Box::pin(Arc::clone(semaphore).acquire_owned());
        let early = match slot.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(permit)) => Some(permit),
            Poll::Ready(Err(_)) | Poll::Pending => None,
        };
        // Stored if the connection's task is not waiting yet: it sees it at once.
        candidate.evict.notify_one();
        Some(RoomTicket {
            slot,
            early,
            pool: candidate.pool,
            waiting: Arc::clone(&self.waiting),
        })
    }

    /// Marks the oldest connection still sending its headers as evicted (not told yet),
    /// if it is at least `evict_after` old.
    fn claim_oldest(&self) -> Option<Arc<Candidate>> {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while let Some(weak) = list.front() {
            let Some(candidate) = weak.upgrade() else {
                list.pop_front();
                continue;
            };
            if candidate.state.load(Ordering::Acquire) == WAITING_FOR_HEADERS
                && now.saturating_duration_since(candidate.since) < self.evict_after
            {
                // The oldest candidate is too young, so is every other one.
                return None;
            }
            list.pop_front();
            let won = candidate.state.compare_exchange(
                WAITING_FOR_HEADERS,
                EVICTED,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            if won.is_ok() {
                return Some(candidate);
            }
        }
        None
    }
}

fn evictable(weak: &Weak<Candidate>) -> bool {
    weak.upgrade()
        .is_some_and(|c| c.state.load(Ordering::Acquire) == WAITING_FOR_HEADERS)
}

/// A place in a pool's queue for a permit.
type Slot = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A new connection's claim on the slot an eviction frees: already in the pool's queue.
pub struct RoomTicket {
    slot: Slot,
    /// The slot, if it was free when the ticket was made.
    early: Option<OwnedSemaphorePermit>,
    pool: Pool,
    waiting: Arc<AtomicUsize>,
}

impl RoomTicket {
    /// The pool the slot is in.
    pub fn pool(&self) -> Pool {
        self.pool
    }

    /// Waits (at most [`ROOM_WAIT`]) for the slot; `None` if it did not come.
    pub async fn slot(mut self) -> Option<OwnedSemaphorePermit> {
        if let Some(permit) = self.early.take() {
            return Some(permit);
        }
        tokio::time::timeout(ROOM_WAIT, &mut self.slot)
            .await
            .ok()?
            .ok()
    }
}

impl Drop for RoomTicket {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}
