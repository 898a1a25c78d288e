//! The supervisor: one thread per running source that owns a small current-thread tokio
//! runtime (the ABI forbids sharing the host's) and runs upstream connections on it, one
//! after the other, until the source is stopped.
//!
//! The loop is the camera plugins' (`camgate-plugin-common`): `connecting` → a
//! [`session::run`] (`live` at its first frame) → `retrying` with the reason → a backoff
//! delay, cut short when the upstream's port answers again after being silent (a restarted
//! gateway) → `connecting` ... The backoff is quicker than a camera's: the first delay is
//! at most [`FIRST_RETRY_MAX`] (a cluster moves a stream to another node when one dies, and
//! its edges must follow at once), then it doubles with equal jitter up to [`RETRY_CAP`],
//! and starts over after a run live for [`RESET_AFTER`].
//!
//! Invariants: stop is prompt (the stop signal wakes every await of the thread; only a
//! reachability probe in progress, ≤ 300 ms, delays it); the runtime and the connection
//! are gone when [`Supervisor::run`] returns, so nothing of this source calls the host
//! afterwards; `Failed` is reported only when the thread cannot work at all.

use std::time::{Duration, Instant};

use camgate_plugin_api::{Host, LogLevel, SourceState};
use camgate_plugin_common::backoff::Backoff;
use camgate_plugin_common::retry::{self, ProbeSchedule, ProbeTarget, ShortcutPolicy};
use camgate_plugin_common::run::RunStats;
pub use camgate_plugin_common::runtime::StopSignal;
use camgate_plugin_common::runtime::{RuntimeWaiter, stopped};
use tokio::runtime::Runtime;

use crate::config::Settings;
use crate::session::{self, RunEnd};

/// The longest first delay after a failure.
pub const FIRST_RETRY_MAX: Duration = Duration::from_millis(500);
/// The longest delay.
pub const RETRY_CAP: Duration = Duration::from_secs(10);
/// A run live this long starts the backoff over.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// The relay's backoff: see the module docs.
pub fn backoff() -> Backoff {
    Backoff::new(FIRST_RETRY_MAX, RETRY_CAP, RESET_AFTER)
}

/// One source's supervisor. Runs on its own thread until stopped.
pub struct Supervisor {
    settings: Settings,
    host: Host,
    stop: StopSignal,
    backoff: Backoff,
    probe_target: Option<ProbeTarget>,
    probe_schedule: ProbeSchedule,
    shortcut: ShortcutPolicy,
}

impl Supervisor {
    /// A supervisor for `settings`, reporting to `host`, ended by `stop`.
    pub fn new(settings: Settings, host: Host, stop: StopSignal) -> Self {
        Supervisor {
            probe_target: ProbeTarget::from_url(&format!("http://{}/", settings.url.authority())),
            probe_schedule: ProbeSchedule::default(),
            shortcut: ShortcutPolicy::default(),
            backoff: backoff(),
            settings,
            host,
            stop,
        }
    }

    /// The supervision loop. Returns when the source is stopped.
    pub fn run(mut self) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let message = format!("cannot start the relay's runtime: {e}");
                self.host.log(LogLevel::Error, &message);
                self.host.set_state(SourceState::Failed, &message);
                return;
            }
        };
        let shown = self.settings.url.display();
        let mut connecting_message = format!("connecting to {shown}");
        loop {
            self.host
                .set_state(SourceState::Connecting, &connecting_message);
            let mut stats = RunStats::new();
            let end = {
                let (settings, host) = (&self.settings, &self.host);
                let stop = &mut self.stop;
                runtime.block_on(async {
                    tokio::select! {
                        biased;
                        () = stopped(stop) => None,
                        end = session::run(settings, host, &mut stats) => Some(end),
                    }
                })
            };
            let reason = match end {
                None | Some(RunEnd::Closed) => break,
                Some(RunEnd::Failed(error)) => error.to_string(),
            };
            connecting_message = format!("reconnecting to {shown} (last error: {reason})");
            let live_for = stats.live_for();
            let plan = self.shortcut.after_run(live_for, Instant::now());
            if plan.restart_backoff {
                self.backoff.restart();
            }
            let delay = self.backoff.next_delay(live_for);
            if self.wait_retry(&runtime, &reason, delay, plan.probe) {
                break;
            }
        }
    }

    /// Reports `Retrying` and waits `delay` (probing the upstream's port meanwhile when
    /// `probe`); `true` if stopped meanwhile.
    fn wait_retry(
        &mut self,
        runtime: &Runtime,
        reason: &str,
        delay: Duration,
        probe: bool,
    ) -> bool {
        let message = retry::retrying_message(reason, delay, self.backoff.failures());
        self.host.log(LogLevel::Warn, &message);
        self.host.set_state(SourceState::Retrying, &message);
        let target = self.probe_target.clone().filter(|_| probe);
        let mut waiter = RuntimeWaiter {
            runtime,
            stop: &mut self.stop,
        };
        let end = retry::wait_probing(
            &mut waiter,
            delay,
            target.as_ref(),
            &mut self.probe_schedule,
            &mut self.shortcut,
        );
        end.stopped_announcing(target.as_ref(), |line| self.host.log(LogLevel::Info, line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_retry_is_quick_and_none_is_longer_than_the_cap() {
        for seed in 0..100 {
            let mut b = backoff().with_seed(seed);
            let first = b.next_delay(Duration::ZERO);
            assert!(first <= FIRST_RETRY_MAX, "seed {seed}: {first:?}");
            for _ in 0..20 {
                assert!(b.next_delay(Duration::ZERO) <= RETRY_CAP);
            }
            // A healthy run starts it over.
            assert!(b.next_delay(RESET_AFTER) <= FIRST_RETRY_MAX);
        }
    }
}
