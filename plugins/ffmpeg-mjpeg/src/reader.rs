//! The stdout side of one ffmpeg run: read the pipe to the end, split it into JPEGs, pace
//! them (copy mode only) and hand them to the host.
//!
//! Invariants: the pipe is always read to EOF — even after the host closed the source —
//! so ffmpeg never blocks on a full pipe while it is being stopped; a complete frame counts
//! as progress for the watchdog only if the host took it (or the pacer dropped it on
//! purpose): a frame the host *rejected* (a host-side error, [`SendError::Rejected`]) is
//! logged, rate-limited, and does not count, so a host that keeps rejecting makes the
//! watchdog restart the run instead of the stream staying `live` while nothing is
//! published; only [`SendError::Closed`] ends publishing for the run (frames drained after
//! it do not count either); the run's end is
//! reported to the supervisor exactly once, after the last host call of this thread.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime};

use camgate_plugin_api::{Frame, Host, LogLevel, SendError};
use camgate_plugin_common::ratelimit::LogLimiter;

use crate::splitter::{DEFAULT_MAX_FRAME, JpegSplitter};
use crate::supervisor::Event;

/// Read size; ffmpeg writes a frame in a few writes of up to 64 KiB.
const CHUNK: usize = 64 * 1024;

/// At most one "frames rejected" log line per this long (the first one at once).
const REJECTED_LOG_EVERY: Duration = Duration::from_secs(10);

/// Progress of one run, shared with the supervisor's watchdog.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    frames: AtomicU64,
    /// Frames the host rejected (not counted in `frames`).
    rejected: AtomicU64,
    /// Milliseconds after `started` of the latest complete frame.
    last_frame_ms: AtomicU64,
}

impl Progress {
    /// Progress of a run that starts now.
    pub fn new() -> Self {
        Progress {
            started: Instant::now(),
            frames: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            last_frame_ms: AtomicU64::new(0),
        }
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Complete frames seen.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::SeqCst)
    }

    /// Frames the host rejected in this run.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::SeqCst)
    }

    /// When the latest frame was seen (`None` before the first).
    pub fn last_frame(&self) -> Option<Instant> {
        (self.frames() > 0).then(|| {
            self.started + Duration::from_millis(self.last_frame_ms.load(Ordering::SeqCst))
        })
    }

    fn record(&self) -> u64 {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_frame_ms.store(ms, Ordering::SeqCst);
        self.frames.fetch_add(1, Ordering::SeqCst) + 1
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// Lets through at most `fps` frames per second on average (for copy mode, where ffmpeg
/// passes the camera's rate through).
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next_due: Option<Instant>,
}

impl Pacer {
    /// A pacer for `fps` frames per second.
    pub fn new(fps: f64) -> Self {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / fps),
            next_due: None,
        }
    }

    /// Whether a frame arriving `now` should be delivered.
    pub fn admit(&mut self, now: Instant) -> bool {
        // A little early is fine: frames arrive with jitter around the camera's rate.
        let slack = self.interval / 8;
        match self.next_due {
            Some(due) if now + slack < due => false,
            Some(due) => {
                let next = due + self.interval;
                // After a gap, restart the schedule instead of bursting to catch up.
                self.next_due = Some(if next < now {
                    now + self.interval
                } else {
                    next
                });
                true
            }
            None => {
                self.next_due = Some(now + self.interval);
                true
            }
        }
    }
}

/// Everything the stdout thread of one run needs.
pub struct RunReader {
    /// This run's number (events of older runs are ignored).
    pub run: u64,
    /// Shared with the watchdog.
    pub progress: std::sync::Arc<Progress>,
    /// Where the first frame and the end are reported.
    pub events: Sender<Event>,
    /// Frame pacing (copy mode).
    pub pacer: Option<Pacer>,
}

impl RunReader {
    /// Reads `stdout` to EOF, publishing frames through `host`.
    pub fn run(mut self, mut stdout: impl Read, host: &Host) {
        let mut splitter = JpegSplitter::new(DEFAULT_MAX_FRAME);
        let mut chunk = vec![0u8; CHUNK];
        let mut closed = false;
        let mut oversized_logged = false;
        let mut rejections = RejectionLog::default();
        loop {
            let n = match stdout.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            splitter.push(&chunk[..n], |frame| {
                if closed {
                    // The host is stopping us; just drain so ffmpeg can exit. Not progress:
                    // nothing is published any more.
                    return;
                }
                if let Some(pacer) = &mut self.pacer
                    && !pacer.admit(Instant::now())
                {
                    // Dropped on purpose: the camera is healthy.
                    self.progressed();
                    return;
                }
                let frame = Frame {
                    jpeg: frame.jpeg,
                    width: frame.width,
                    height: frame.height,
                    captured_at: SystemTime::now(),
                };
                match host.send_frame(&frame) {
                    Ok(()) => self.progressed(),
                    Err(SendError::Closed) => closed = true,
                    Err(SendError::Rejected { status }) => {
                        self.progress.rejected.fetch_add(1, Ordering::SeqCst);
                        rejections.rejected(status, Instant::now(), host);
                    }
                }
            });
            if splitter.stats().oversized > 0 && !oversized_logged && !closed {
                oversized_logged = true;
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "dropped a frame larger than {} MiB from ffmpeg; resynchronised",
                        DEFAULT_MAX_FRAME / (1024 * 1024)
                    ),
                );
            }
        }
        let _ = self.events.send(Event::Eof { run: self.run });
    }

    /// Records a frame as progress; the first one is reported to the supervisor.
    fn progressed(&self) {
        if self.progress.record() == 1 {
            let _ = self.events.send(Event::FirstFrame { run: self.run });
        }
    }
}

/// Rate limit for "the host rejected frames" lines: the first at once, then one summary
/// per [`REJECTED_LOG_EVERY`] at most.
#[derive(Debug)]
struct RejectionLog(LogLimiter);

impl Default for RejectionLog {
    fn default() -> Self {
        RejectionLog(LogLimiter::new(REJECTED_LOG_EVERY))
    }
}

impl RejectionLog {
    fn rejected(&mut self, status: i32, now: Instant, host: &Host) {
        if let Some(count) = self.0.record(1, now) {
            host.log(
                LogLevel::Warn,
                &format!(
                    "the gateway rejected {count} frame(s) (status {status}); still publishing"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camgate_plugin_api::abi::{STATUS_CLOSED, STATUS_ERROR, STATUS_OK};
    use camgate_plugin_api::testing::TestHost;
    use std::sync::Arc;
    use std::sync::mpsc;

    /// Runs a reader over `jpegs` back to back against `test`; returns the progress and the
    /// supervisor events.
    fn read(jpegs: usize, test: &TestHost) -> (Arc<Progress>, Vec<Event>) {
        let stream: Vec<u8> = (0..jpegs)
            .flat_map(|i| crate::splitter::synthetic(32, 16, &[i as u8; 40]))
            .collect();
        let (tx, rx) = mpsc::channel();
        let progress = Arc::new(Progress::new());
        let reader = RunReader {
            run: 7,
            progress: Arc::clone(&progress),
            events: tx,
            pacer: None,
        };
        reader.run(std::io::Cursor::new(stream), &test.host());
        (progress, rx.try_iter().collect())
    }

    #[test]
    fn a_host_error_skips_one_frame_and_publishing_goes_on() {
        let test = TestHost::new();
        test.answer_frames_with([STATUS_ERROR, STATUS_OK, STATUS_ERROR]);
        let (progress, events) = read(5, &test);
        let answers: Vec<i32> = test.frames().iter().map(|f| f.status).collect();
        assert_eq!(
            answers,
            [STATUS_ERROR, STATUS_OK, STATUS_ERROR, STATUS_OK, STATUS_OK],
            "every frame must still be offered after a host error"
        );
        // Only the frames the host took count for the watchdog (and for `live`).
        assert_eq!(progress.frames(), 3);
        assert_eq!(progress.rejected(), 2);
        assert_eq!(
            events,
            [Event::FirstFrame { run: 7 }, Event::Eof { run: 7 }]
        );
        // One log line for the burst, not one per frame.
        let logs = test.logs();
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert!(
            logs[0].1.contains("rejected 1 frame(s) (status 1)"),
            "{logs:?}"
        );
    }

    #[test]
    fn a_host_that_rejects_everything_gives_no_progress_so_the_watchdog_fires() {
        let test = TestHost::new();
        test.answer_frames_with([STATUS_ERROR; 4]);
        let (progress, events) = read(4, &test);
        assert_eq!(progress.frames(), 0);
        assert_eq!(progress.last_frame(), None);
        assert_eq!(events, [Event::Eof { run: 7 }], "no FirstFrame: never live");
    }

    #[test]
    fn closed_stops_publishing_but_the_pipe_is_drained() {
        let test = TestHost::new();
        test.answer_frames_with([STATUS_OK, STATUS_CLOSED]);
        let (progress, events) = read(5, &test);
        assert_eq!(test.frames().len(), 2, "nothing offered after Closed");
        assert_eq!(progress.frames(), 1, "only the frame the host took counts");
        assert_eq!(events.last(), Some(&Event::Eof { run: 7 }));
    }

    #[test]
    fn pacer_thins_25_fps_to_10() {
        let mut pacer = Pacer::new(10.0);
        let start = Instant::now();
        let admitted = (0..250)
            .filter(|i| pacer.admit(start + Duration::from_millis(i * 40)))
            .count();
        assert!((95..=105).contains(&admitted), "{admitted} in 10 s");
    }

    #[test]
    fn pacer_passes_a_slower_camera_untouched_and_does_not_burst_after_a_gap() {
        let mut pacer = Pacer::new(10.0);
        let start = Instant::now();
        assert!((0..20).all(|i| pacer.admit(start + Duration::from_millis(i * 200))));
        let later = start + Duration::from_secs(60);
        assert!(pacer.admit(later));
        assert!(!pacer.admit(later + Duration::from_millis(10)));
        assert!(pacer.admit(later + Duration::from_millis(100)));
    }
}
