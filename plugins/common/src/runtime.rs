//! For plugins whose source runs an async client on a current-thread tokio runtime on the
//! source's own thread (`rtsp`, `relay`): the stop signal, and the [`Waiter`] that sleeps
//! between attempts on that runtime (so the client's background work, e.g. an RTSP
//! TEARDOWN, makes progress meanwhile), woken early when the source stops.
//!
//! Behind the `tokio` feature: plugins without an async client do not pull in tokio.

use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::retry::Waiter;

/// The stop signal: `true` once the source is stopping (a dropped sender means the same).
pub type StopSignal = watch::Receiver<bool>;

/// Resolves when the source is stopping.
pub async fn stopped(stop: &mut StopSignal) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Backoff sleeps on the supervisor's runtime, woken early by the stop signal.
pub struct RuntimeWaiter<'a> {
    /// The source thread's runtime.
    pub runtime: &'a Runtime,
    /// Ends a sleep early.
    pub stop: &'a mut StopSignal,
}

impl Waiter for RuntimeWaiter<'_> {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&mut self, timeout: Duration) -> bool {
        let stop = &mut *self.stop;
        self.runtime.block_on(async {
            tokio::select! {
                () = stopped(stop) => true,
                () = tokio::time::sleep(timeout) => false,
            }
        })
    }
}
