//! The supervisor: one thread per running source that owns a small current-thread tokio
//! runtime (the RTSP client needs one; the ABI forbids sharing the host's) and runs RTSP
//! sessions on it, one after the other, forever — until the source is stopped.
//!
//! The loop is `ffmpeg-mjpeg`'s, with a session where that one has an ffmpeg process:
//! `connecting` → a [`session::run`] (`live` at its first frame) → `retrying` with the
//! reason → a backoff delay ([`camgate_plugin_common::backoff`], equal jitter), cut short
//! when the camera's port answers again after being silent
//! ([`camgate_plugin_common::retry`]) → `connecting` ... The same rules for probe-started
//! runs apply ([`ShortcutPolicy`]), so a camera is never hammered.
//!
//! Invariants:
//! - stop is prompt: the stop signal wakes every await of the thread (a session in any
//!   phase, a backoff sleep); only a reachability probe in progress (≤ 300 ms) or the
//!   TEARDOWN grace ([`TEARDOWN_GRACE`]) delays it;
//! - a session is dropped (its TCP connection closed, TEARDOWN sent in the background)
//!   before the next one starts, and the runtime — with every task of the RTSP client —
//!   is gone when [`Supervisor::run`] returns, so nothing of this source calls the host
//!   afterwards;
//! - `Failed` is reported only when the thread cannot work at all (no runtime); failures of
//!   the camera are retried;
//! - every text reported or logged passes through [`scrub`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use camgate_plugin_api::{Host, LogLevel, SourceState};
use camgate_plugin_common::backoff::Backoff;
use camgate_plugin_common::camera::scrub;
use camgate_plugin_common::retry::{self, ProbeSchedule, ProbeTarget, ShortcutPolicy};
pub use camgate_plugin_common::runtime::StopSignal;
use camgate_plugin_common::runtime::{RuntimeWaiter, stopped};
use retina::client::SessionGroup;
use tokio::runtime::Runtime;

use crate::config::Settings;
use crate::session::{self, RunEnd, RunStats};

/// How long a stopping source waits for the TEARDOWN of its last session.
pub const TEARDOWN_GRACE: Duration = Duration::from_millis(300);

/// One source's supervisor. Runs on its own thread until stopped.
pub struct Supervisor {
    settings: Settings,
    host: Host,
    stop: StopSignal,
    backoff: Backoff,
    probe_target: Option<ProbeTarget>,
    probe_schedule: ProbeSchedule,
    shortcut: ShortcutPolicy,
    group: Arc<SessionGroup>,
}

impl Supervisor {
    /// A supervisor for `settings`, reporting to `host`, ended by `stop`.
    pub fn new(settings: Settings, host: Host, stop: StopSignal) -> Self {
        Supervisor {
            probe_target: ProbeTarget::from_url(&settings.url.input_url),
            probe_schedule: ProbeSchedule::default(),
            shortcut: ShortcutPolicy::default(),
            backoff: Backoff::standard(),
            group: Arc::new(SessionGroup::default()),
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
                let message = format!("cannot start the RTSP client's runtime: {e}");
                self.log(LogLevel::Error, &message);
                self.host.set_state(SourceState::Failed, &message);
                return;
            }
        };
        let mut connecting_message = format!("connecting to {}", self.settings.url.display_url);
        loop {
            self.host
                .set_state(SourceState::Connecting, &connecting_message);
            let mut stats = RunStats::new();
            let end = {
                let (settings, host, group) = (&self.settings, &self.host, &self.group);
                let stop = &mut self.stop;
                runtime.block_on(async {
                    tokio::select! {
                        biased;
                        () = stopped(stop) => None,
                        end = session::run(settings, host, group, &mut stats) => Some(end),
                    }
                })
            };
            let reason = match end {
                None | Some(RunEnd::Closed) => break,
                Some(RunEnd::Failed(error)) => {
                    scrub(&error.to_string(), &self.settings.url.secrets)
                }
            };
            connecting_message = format!(
                "reconnecting to {} (last error: {reason})",
                self.settings.url.display_url
            );
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
        // The last session was dropped with the `block_on` above; give its TEARDOWN a
        // moment on this runtime, then drop the runtime and whatever the client left on it.
        let group = Arc::clone(&self.group);
        runtime.block_on(async {
            let _ = tokio::time::timeout(TEARDOWN_GRACE, group.await_teardown()).await;
        });
    }

    /// Reports `Retrying` and waits `delay` (probing the camera's port meanwhile when
    /// `probe`); `true` if stopped meanwhile.
    fn wait_retry(
        &mut self,
        runtime: &Runtime,
        reason: &str,
        delay: Duration,
        probe: bool,
    ) -> bool {
        let message = retry::retrying_message(reason, delay, self.backoff.failures());
        self.log(LogLevel::Warn, &message);
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
        end.stopped_announcing(target.as_ref(), |line| self.log(LogLevel::Info, line))
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.host
            .log(level, &scrub(message, &self.settings.url.secrets));
    }
}
