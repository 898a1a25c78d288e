//! For plugins whose source runs an async client on a current-thread tokio runtime on the
//! source's own thread (`rtsp`, `relay`): the stop signal, and the [`Waiter`] that sleeps
//! between attempts on that runtime (so the client's background work, e.g. an RTSP
//! TEARDOWN, makes progress meanwhile), woken early when the source stops.
//!
//! Behind the `tokio` feature: plugins without an async client do not pull in tokio.

use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::watch;

use camgate_plugin_api::{Host, LogLevel, PluginError};

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

/// A source's supervisor thread and the sender of its stop signal: what `Source::start`
/// creates and `Source::stop` ends (signal, then join), the same for every plugin whose
/// supervisor runs an async client.
pub struct SupervisorThread {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
    name: &'static str,
}

impl SupervisorThread {
    /// Spawns `run` on a thread called `name` (through `host`, which reports a panic),
    /// handing it the stop signal.
    pub fn spawn(
        host: &Host,
        name: &'static str,
        run: impl FnOnce(StopSignal) + Send + 'static,
    ) -> Result<Self, PluginError> {
        let (stop, signal) = watch::channel(false);
        let thread = host
            .spawn(name, move |_host| run(signal))
            .map_err(|e| PluginError(format!("cannot start the {name} thread: {e}")))?;
        Ok(SupervisorThread { stop, thread, name })
    }

    /// Signals the supervisor (it ends its session or backoff wait) and joins it.
    pub fn stop(self, host: &Host) {
        let _ = self.stop.send(true);
        if self.thread.join().is_err() {
            host.log(
                LogLevel::Error,
                &format!("{} thread ended with a panic", self.name),
            );
        }
    }
}
