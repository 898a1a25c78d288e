//! The supervisor: one long-lived thread per running source that spawns ffmpeg, watches
//! it, and restarts it — forever, until the source is stopped.
//!
//! Each *run* is one ffmpeg process with two helper threads (stdout → frames, stderr →
//! diagnostics). A run ends when ffmpeg exits (with any status: ffmpeg exits 0 when the
//! camera goes away), when no complete frame arrived for `stall_timeout` (the watchdog —
//! ffmpeg's own `-timeout` does not catch a stall mid-stream), when `passthrough: auto`
//! decides to switch to copying, or when the source stops. Then the supervisor kills and
//! reaps ffmpeg, joins both helpers, reports `Retrying` with the most useful error, and
//! waits a backoff delay (interruptible by stop) before the next run — cut short when the
//! camera's port starts answering again ([`retry`](crate::retry)). After a run started that
//! way fails without a frame (the port opened before the stream was ready), the backoff
//! starts over from its base (at most once a minute) and the next wait is not cut short,
//! so a flapping port cannot make ffmpeg start more often than the backoff allows.
//!
//! Invariants:
//! - ffmpeg is spawned from this thread and killed before this thread returns: with
//!   `setpriv --pdeathsig KILL` the kernel kills ffmpeg when *this thread* ends, so the
//!   thread must be the long-lived one (and the gateway dying kills ffmpeg too);
//! - every child is reaped (`wait`) before the next one is spawned: no zombies;
//! - the helper threads are joined before the run is over, so after [`Supervisor::run`]
//!   returns nothing of this source calls the host;
//! - `Failed` is never reported from here: failures at run time are retried.

use std::io;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use camgate_plugin_api::{Host, LogLevel, SourceState};
use rustix::process::{Pid, Signal, kill_process};

use crate::backoff::Backoff;
use crate::command::{self, Mode, Probing};
use crate::config::{Passthrough, Scale, Settings, human, scrub};
use crate::reader::{Pacer, Progress, RunReader};
use crate::retry::{self, ProbeSchedule, ProbeTarget, ShortcutPolicy, Waiter};
use crate::stderr::{self, Diagnostics, ErrorKind, SharedDiagnostics};

/// How long a stopping ffmpeg gets after SIGTERM (to send RTSP TEARDOWN) before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// How often the supervisor wakes up when nothing happens (watchdog resolution).
const TICK: Duration = Duration::from_millis(200);

/// What the helper threads and the source tell the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Stop everything and return.
    Stop,
    /// Run `run` produced its first complete frame.
    FirstFrame {
        /// The run.
        run: u64,
    },
    /// Run `run`'s stdout reached EOF (ffmpeg exited or was killed).
    Eof {
        /// The run.
        run: u64,
    },
}

/// Why a run ended.
#[derive(Debug)]
enum RunEnd {
    /// The source is stopping.
    Stop,
    /// ffmpeg exited by itself.
    Exited,
    /// No frame for this long.
    Stalled(Duration),
    /// `passthrough: auto` found an MJPEG camera: restart in copy mode now.
    SwitchToCopy,
}

/// What the supervisor does after a run.
enum Next {
    Stop,
    RestartNow,
    /// Retry after a backoff; the run had been live for the given time.
    Retry(String, Duration),
}

/// The passthrough decision, kept across runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyDecision {
    /// Not known yet (auto): transcode and watch the input codec.
    Undecided,
    /// Copy the camera's JPEGs.
    Copy,
    /// Transcode for good.
    Transcode,
}

/// One source's supervisor. Runs on its own thread until [`Event::Stop`].
pub struct Supervisor {
    settings: Settings,
    ffmpeg: PathBuf,
    host: Host,
    events: Receiver<Event>,
    events_tx: Sender<Event>,
    setpriv: bool,
    backoff: Backoff,
    decision: CopyDecision,
    run: u64,
    /// Where the camera listens, for the reachability probe during backoff.
    probe_target: Option<ProbeTarget>,
    /// Keeps probes a second apart across waits.
    probe_schedule: ProbeSchedule,
    /// What runs the probe started mean for the next wait.
    shortcut: ShortcutPolicy,
    /// Fast input probing until a run finds the camera's stream but never a frame; then
    /// ffmpeg's default probing for the life of the source.
    probing: Probing,
}

/// The supervisor's clock and stop signal: real time, woken early by [`Event::Stop`].
struct EventWaiter<'a> {
    events: &'a Receiver<Event>,
}

impl Waiter for EventWaiter<'_> {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => return true,
                Ok(_) => {} // stale events of a finished run
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
    }
}

impl Supervisor {
    /// A supervisor for `settings`, running `ffmpeg`; `events_tx` must feed `events`.
    pub fn new(
        settings: Settings,
        ffmpeg: PathBuf,
        host: Host,
        events: Receiver<Event>,
        events_tx: Sender<Event>,
    ) -> Self {
        let decision = match settings.passthrough {
            Passthrough::Always => CopyDecision::Copy,
            Passthrough::Never => CopyDecision::Transcode,
            // Copying cannot resize: with width/height there is nothing to decide.
            Passthrough::Auto if settings.scale != Scale::Native => CopyDecision::Transcode,
            Passthrough::Auto => CopyDecision::Undecided,
        };
        Supervisor {
            probe_target: ProbeTarget::from_url(&settings.input_url),
            probe_schedule: ProbeSchedule::default(),
            shortcut: ShortcutPolicy::default(),
            probing: Probing::Fast,
            settings,
            ffmpeg,
            host,
            events,
            events_tx,
            setpriv: command::setpriv_available(),
            backoff: Backoff::standard(),
            decision,
            run: 0,
        }
    }

    /// The supervision loop. Returns when the source is stopped, with ffmpeg reaped and
    /// every helper thread joined.
    pub fn run(mut self) {
        if !self.setpriv {
            self.log(
                LogLevel::Warn,
                &format!(
                    "{} not found: ffmpeg will not be killed by the kernel if the gateway \
                     itself is killed",
                    command::SETPRIV
                ),
            );
        }
        let mut connecting_message = format!("connecting to {}", self.settings.display_url);
        loop {
            self.run += 1;
            self.host
                .set_state(SourceState::Connecting, &connecting_message);
            let next = self.one_run();
            match next {
                Next::Stop => return,
                Next::RestartNow => {
                    connecting_message = format!(
                        "the camera sends MJPEG: switching to passthrough (copying its JPEGs) \
                         from {}",
                        self.settings.display_url
                    );
                }
                Next::Retry(reason, live_for) => {
                    // Keep the last error visible while reconnecting.
                    connecting_message = format!(
                        "reconnecting to {} (last error: {reason})",
                        self.settings.display_url
                    );
                    let plan = self.shortcut.after_run(live_for, Instant::now());
                    if plan.restart_backoff {
                        self.backoff.restart();
                    }
                    let delay = self.backoff.next_delay(live_for);
                    if self.wait_retry(&reason, delay, plan.probe) {
                        return;
                    }
                }
            }
        }
    }

    /// Reports `Retrying` and waits `delay` (with `probe`, probing the camera's port
    /// meanwhile, see [`retry`]); `true` if stopped meanwhile.
    fn wait_retry(&mut self, reason: &str, delay: Duration, probe: bool) -> bool {
        let message = retry::retrying_message(reason, delay, self.backoff.failures());
        self.log(LogLevel::Warn, &message);
        self.host.set_state(SourceState::Retrying, &message);
        let target = self.probe_target.clone().filter(|_| probe);
        let mut waiter = EventWaiter {
            events: &self.events,
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

    fn mode(&self) -> Mode {
        match self.decision {
            CopyDecision::Copy => Mode::Copy,
            CopyDecision::Undecided | CopyDecision::Transcode => Mode::Transcode,
        }
    }

    /// Spawns ffmpeg once, supervises it to the end, cleans up, and says what next.
    fn one_run(&mut self) -> Next {
        let mode = self.mode();
        let cmd = command::build(
            &self.settings,
            &self.ffmpeg,
            mode,
            self.probing,
            self.setpriv,
        );
        self.log(LogLevel::Debug, &format!("starting {cmd:?}"));
        let spawned = cmd
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let message = if e.kind() == io::ErrorKind::NotFound {
                    format!(
                        "cannot run ffmpeg (`{}`): not found; install ffmpeg or set \
                         source.ffmpeg_path",
                        self.ffmpeg.display()
                    )
                } else {
                    format!("cannot run ffmpeg (`{}`): {e}", self.ffmpeg.display())
                };
                return Next::Retry(message, Duration::ZERO);
            }
        };
        let progress = Arc::new(Progress::new());
        let diagnostics = SharedDiagnostics::default();
        let helpers = self.start_helpers(&mut child, mode, &progress, &diagnostics);
        let end = match helpers {
            Ok(_) => self.watch(&mut child, mode, &progress, &diagnostics),
            Err(_) => RunEnd::Exited,
        };
        let status = self.terminate(&mut child, &end);
        if let Ok(helpers) = helpers {
            for helper in helpers {
                if helper.join().is_err() {
                    self.log(LogLevel::Error, "an ffmpeg helper thread panicked");
                }
            }
        }
        let diagnostics = diagnostics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.after_run(end, mode, status, &progress, &diagnostics)
    }

    /// Starts the stdout and stderr threads of a run.
    fn start_helpers(
        &self,
        child: &mut Child,
        mode: Mode,
        progress: &Arc<Progress>,
        diagnostics: &SharedDiagnostics,
    ) -> Result<[JoinHandle<()>; 2], ()> {
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            self.log(LogLevel::Error, "ffmpeg started without pipes");
            return Err(());
        };
        let reader = RunReader {
            run: self.run,
            progress: Arc::clone(progress),
            events: self.events_tx.clone(),
            pacer: (mode == Mode::Copy).then(|| Pacer::new(self.settings.fps)),
        };
        let stdout_thread = self
            .host
            .spawn("ffmpeg-stdout", move |host| reader.run(stdout, &host));
        let secrets = self.settings.secrets.clone();
        let shared = Arc::clone(diagnostics);
        let stderr_thread = self.host.spawn("ffmpeg-stderr", move |host| {
            stderr::drain(
                stderr,
                &mut |level, line: &str| host.log(level, line),
                &secrets,
                &shared,
            );
        });
        match (stdout_thread, stderr_thread) {
            (Ok(a), Ok(b)) => Ok([a, b]),
            (a, b) => {
                self.log(LogLevel::Error, "cannot start ffmpeg helper threads");
                // Kill ffmpeg so that whichever helper started sees EOF, then join it.
                let _ = child.kill();
                for handle in [a, b].into_iter().flatten() {
                    let _ = handle.join();
                }
                Err(())
            }
        }
    }

    /// Waits for the end of a run: exit, stall, stop or a passthrough switch.
    fn watch(
        &mut self,
        child: &mut Child,
        mode: Mode,
        progress: &Progress,
        diagnostics: &Mutex<Diagnostics>,
    ) -> RunEnd {
        let settings = &self.settings;
        // Before the first frame, allow the connect timeout on top of the stall timeout.
        let first_frame_budget = settings.connect_timeout + settings.stall_timeout;
        loop {
            let now = Instant::now();
            let (deadline, allowed) = match progress.last_frame() {
                Some(last) => (last + settings.stall_timeout, settings.stall_timeout),
                None => (progress.started() + first_frame_budget, first_frame_budget),
            };
            if now >= deadline {
                return RunEnd::Stalled(allowed);
            }
            if mode == Mode::Transcode
                && self.decision == CopyDecision::Undecided
                && progress.frames() > 0
            {
                let codec = diagnostics
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .input_codec
                    .clone();
                match codec.as_deref() {
                    Some("mjpeg") => {
                        self.decision = CopyDecision::Copy;
                        return RunEnd::SwitchToCopy;
                    }
                    Some(_) => self.decision = CopyDecision::Transcode,
                    None => {}
                }
            }
            match self.events.recv_timeout((deadline - now).min(TICK)) {
                Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => return RunEnd::Stop,
                Ok(Event::Eof { run }) if run == self.run => return RunEnd::Exited,
                Ok(Event::FirstFrame { run }) if run == self.run => {
                    self.host.set_state(SourceState::Live, "");
                    self.log(
                        LogLevel::Info,
                        &format!(
                            "first frame {} ms after starting ffmpeg ({})",
                            progress.started().elapsed().as_millis(),
                            match mode {
                                Mode::Copy => "passthrough",
                                Mode::Transcode => "transcoding",
                            }
                        ),
                    );
                }
                Ok(_) => {} // stale events of an earlier run
                Err(RecvTimeoutError::Timeout) => {
                    // Safety net: stdout EOF normally reports the exit.
                    if matches!(child.try_wait(), Ok(Some(_))) {
                        return RunEnd::Exited;
                    }
                }
            }
        }
    }

    /// Ends ffmpeg (if still running) and reaps it. A stall gets SIGKILL at once (the
    /// camera is not answering anyway); otherwise SIGTERM first so ffmpeg can send RTSP
    /// TEARDOWN, then SIGKILL after [`TERM_GRACE`]. The stdout thread keeps draining the
    /// pipe meanwhile, so ffmpeg cannot block on it.
    fn terminate(&self, child: &mut Child, end: &RunEnd) -> Option<ExitStatus> {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let graceful = !matches!(end, RunEnd::Stalled(_));
        if graceful {
            // The child is not reaped yet, so its pid cannot have been reused.
            let _ = kill_process(Pid::from_child(child), Signal::TERM);
            let deadline = Instant::now() + TERM_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    return Some(status);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Decides what follows a run and builds the operator-facing reason.
    fn after_run(
        &mut self,
        end: RunEnd,
        mode: Mode,
        status: Option<ExitStatus>,
        progress: &Progress,
        diagnostics: &Diagnostics,
    ) -> Next {
        let ran_for = progress.started().elapsed();
        let frames = progress.frames();
        // A run that delivered frames for a while resets the backoff.
        let live_for = progress
            .last_frame()
            .map(|last| last.saturating_duration_since(progress.started()))
            .unwrap_or(Duration::ZERO);
        let error = diagnostics.error.as_ref();
        let reason = match end {
            RunEnd::Stop => return Next::Stop,
            RunEnd::SwitchToCopy => {
                self.log(
                    LogLevel::Info,
                    "the camera sends MJPEG: restarting ffmpeg with -c:v copy (no transcoding)",
                );
                return Next::RestartNow;
            }
            RunEnd::Stalled(allowed) => {
                let mut reason = if frames == 0 {
                    format!("no frame for {} after starting ffmpeg", human(allowed))
                } else {
                    format!("no frame for {} (stream stalled)", human(allowed))
                };
                if progress.rejected() > 0 {
                    reason.push_str(&format!(
                        "; the gateway rejected {} frame(s)",
                        progress.rejected()
                    ));
                }
                if let Some(e) = error {
                    reason.push_str(&format!("; last ffmpeg error: {}", e.message));
                }
                reason
            }
            RunEnd::Exited => {
                let status = status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown status".to_owned());
                match error {
                    Some(e)
                        if e.kind == ErrorKind::InvalidData
                            && frames == 0
                            && ran_for >= self.settings.connect_timeout.mul_f64(0.9) =>
                    {
                        // ffmpeg 5.1 reports a handshake timeout as invalid data.
                        format!(
                            "connection timed out (no answer within {})",
                            human(self.settings.connect_timeout)
                        )
                    }
                    Some(e) => e.message.clone(),
                    None if frames > 0 => format!("stream ended (ffmpeg exited: {status})"),
                    None => format!("ffmpeg exited before the first frame ({status})"),
                }
            }
        };
        // ffmpeg reached the camera and saw its video but produced no frame: with fast
        // probing that is typically a first packet without SPS/PPS. Probe fully from now on.
        let probing = probing_after(self.probing, frames, diagnostics);
        if probing != self.probing {
            self.probing = probing;
            self.log(
                LogLevel::Warn,
                "ffmpeg found the camera's video but no frame with fast probing: using \
                 ffmpeg's default probing from now on",
            );
        }
        // passthrough bookkeeping: a copy run that never produced a frame falls back.
        if mode == Mode::Copy && frames == 0 {
            match (
                self.settings.passthrough,
                diagnostics.input_codec.as_deref(),
            ) {
                (Passthrough::Auto, _) => {
                    self.decision = CopyDecision::Transcode;
                    self.log(
                        LogLevel::Warn,
                        "passthrough produced no frame: transcoding from now on",
                    );
                }
                (Passthrough::Always, Some(codec)) if codec != "mjpeg" => {
                    return Next::Retry(
                        scrub(
                            &format!(
                                "{reason}; the camera sends {codec}, not MJPEG: passthrough: \
                                 always cannot work (use auto or never)"
                            ),
                            &self.settings.secrets,
                        ),
                        live_for,
                    );
                }
                _ => {}
            }
        }
        Next::Retry(scrub(&reason, &self.settings.secrets), live_for)
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.host
            .log(level, &scrub(message, &self.settings.secrets));
    }
}

/// The probing for the next run: fast until a run saw the camera's video (ffmpeg named
/// its codec) but produced no frame — then ffmpeg's default, for good.
fn probing_after(current: Probing, frames: u64, diagnostics: &Diagnostics) -> Probing {
    if frames == 0 && diagnostics.input_codec.is_some() {
        Probing::Default
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_probing_after_a_run_that_saw_the_video_but_no_frame() {
        let saw_h264 = Diagnostics {
            input_codec: Some("hevc".to_owned()),
            ..Diagnostics::default()
        };
        let refused = Diagnostics::default();
        // A refused connection says nothing about probing; frames say it works.
        assert_eq!(probing_after(Probing::Fast, 0, &refused), Probing::Fast);
        assert_eq!(probing_after(Probing::Fast, 12, &saw_h264), Probing::Fast);
        assert_eq!(probing_after(Probing::Fast, 0, &saw_h264), Probing::Default);
        // Once default, it stays.
        assert_eq!(
            probing_after(Probing::Default, 5, &refused),
            Probing::Default
        );
    }
}
