//! A host-name lookup that keeps its caller waiting at most a bound: the system resolver
//! (`getaddrinfo`) runs on a thread of its own, and a caller that gives up leaves it running
//! for the next caller to collect.
//!
//! Why: the reconnect wait probes a camera by name on the supervisor's thread, and that
//! thread must answer `stop` promptly. With the DNS server down, one `getaddrinfo` can take
//! the resolver's full timeout and retries (5–30 s), and a stream could not be stopped,
//! reconfigured or reaped meanwhile.
//!
//! Invariants: at most one lookup in flight per [`Lookup`] (shared by its clones), so a
//! resolver that hangs costs one parked thread, not one per probe; [`Lookup::resolve`]
//! returns within its `wait` (plus a thread spawn); a result that arrives after its caller
//! gave up is used by the next call, not dropped.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Resolves a name and port to addresses (the system resolver, or a stand-in in tests).
pub type Resolver = Arc<dyn Fn(&str, u16) -> Answer + Send + Sync>;

/// What one lookup found.
pub type Answer = io::Result<Vec<SocketAddr>>;

/// The system resolver.
fn system_resolver() -> Resolver {
    Arc::new(|name, port| (name, port).to_socket_addrs().map(Iterator::collect))
}

/// The addresses of one host name, looked up without blocking the caller for long.
#[derive(Clone)]
pub struct Lookup {
    name: String,
    port: u16,
    resolver: Resolver,
    /// The lookup in flight, if any (its result not collected yet).
    pending: Arc<Mutex<Option<Receiver<Answer>>>>,
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookup")
            .field("name", &self.name)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Lookup {
    /// A lookup of `name` (port `port`) through the system resolver.
    pub fn new(name: &str, port: u16) -> Self {
        Self::with_resolver(name, port, system_resolver())
    }

    /// The same through `resolver`.
    pub fn with_resolver(name: &str, port: u16, resolver: Resolver) -> Self {
        Lookup {
            name: name.to_owned(),
            port,
            resolver,
            pending: Arc::new(Mutex::new(None)),
        }
    }

    /// The name's addresses, waiting at most `wait` for them. `None` when the lookup failed
    /// or is still running (it goes on, and a later call collects its result).
    pub fn resolve(&self, wait: Duration) -> Option<Vec<SocketAddr>> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.is_none() {
            *pending = Some(self.start()?);
        }
        let outcome = pending.as_ref()?.recv_timeout(wait);
        match outcome {
            Err(RecvTimeoutError::Timeout) => None,
            Ok(result) => {
                *pending = None;
                result.ok()
            }
            Err(RecvTimeoutError::Disconnected) => {
                *pending = None;
                None
            }
        }
    }

    /// Starts a lookup on a thread of its own; `None` if no thread could be made.
    fn start(&self) -> Option<Receiver<Answer>> {
        let (tx, rx) = mpsc::channel();
        let (name, port, resolver) = (self.name.clone(), self.port, Arc::clone(&self.resolver));
        std::thread::Builder::new()
            .name("camgate-lookup".into())
            .spawn(move || {
                // Nobody may be waiting any more: a closed channel is fine.
                let _ = tx.send(resolver(&name, port));
            })
            .ok()?;
        Some(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::SyncSender;

    /// A resolver that answers only when the test says so; it reports each call on entry.
    fn gated() -> (Resolver, SyncSender<()>, Receiver<()>) {
        let (release, gate) = mpsc::sync_channel::<()>(0);
        let gate = Mutex::new(gate);
        let (entered_tx, entered) = mpsc::channel();
        let entered_tx = Mutex::new(entered_tx);
        let resolver: Resolver = Arc::new(move |_name, port| {
            let _ = entered_tx.lock().unwrap().send(());
            // Held until the test releases it (or drops the sender).
            let _ = gate.lock().unwrap().recv();
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
        });
        (resolver, release, entered)
    }

    #[test]
    fn a_hanging_resolver_does_not_hold_the_caller_and_runs_once() {
        let (resolver, release, entered) = gated();
        let lookup = Lookup::with_resolver("camera.example", 554, resolver);
        // The resolver hangs: each call gives up after its wait...
        assert_eq!(lookup.resolve(Duration::from_millis(1)), None);
        entered.recv().unwrap();
        assert_eq!(lookup.clone().resolve(Duration::from_millis(1)), None);
        // ...and the second call started no second lookup (a wrong one would have entered
        // by now; on a slow machine this can only miss a bug, never fail a right answer).
        assert!(entered.recv_timeout(Duration::from_millis(200)).is_err());
        // Once it answers, the next call gets the result the earlier ones waited for.
        release.send(()).unwrap();
        assert_eq!(
            lookup.resolve(Duration::from_secs(60)),
            Some(vec![SocketAddr::from(([127, 0, 0, 1], 554))])
        );
        // Collected: the next call looks the name up again (an address may change).
        drop(release);
        assert!(lookup.resolve(Duration::from_secs(60)).is_some());
        entered.recv().unwrap();
    }

    #[test]
    fn a_failed_lookup_is_none_and_the_next_one_tries_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let resolver: Resolver = Arc::new(move |_, _| {
            counted.fetch_add(1, Ordering::SeqCst);
            Err(io::Error::other("no such host"))
        });
        let lookup = Lookup::with_resolver("nowhere.invalid", 554, resolver);
        assert_eq!(lookup.resolve(Duration::from_secs(60)), None);
        assert_eq!(lookup.resolve(Duration::from_secs(60)), None);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_system_resolver_finds_localhost() {
        let found = Lookup::new("localhost", 554)
            .resolve(Duration::from_secs(60))
            .expect("localhost resolves");
        assert!(
            found
                .iter()
                .all(|a| a.port() == 554 && a.ip().is_loopback())
        );
    }
}
