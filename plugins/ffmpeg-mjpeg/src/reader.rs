//! The stdout side of one ffmpeg run: read the pipe to the end, split it into JPEGs, pace
//! them (copy mode only) and hand them to the host.
//!
//! Invariants: the pipe is always read to EOF — even after the host refused a frame —
//! so ffmpeg never blocks on a full pipe while it is being stopped; every complete frame
//! (paced out or not) counts as progress for the watchdog; the run's end is reported to
//! the supervisor exactly once, after the last host call of this thread.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime};

use camgate_plugin_api::{Frame, Host, LogLevel};

use crate::splitter::{DEFAULT_MAX_FRAME, JpegSplitter};
use crate::supervisor::Event;

/// Read size; ffmpeg writes a frame in a few writes of up to 64 KiB.
const CHUNK: usize = 64 * 1024;

/// Progress of one run, shared with the supervisor's watchdog.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    frames: AtomicU64,
    /// Milliseconds after `started` of the latest complete frame.
    last_frame_ms: AtomicU64,
}

impl Progress {
    /// Progress of a run that starts now.
    pub fn new() -> Self {
        Progress {
            started: Instant::now(),
            frames: AtomicU64::new(0),
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
        loop {
            let n = match stdout.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            splitter.push(&chunk[..n], |frame| {
                let count = self.progress.record();
                if count == 1 {
                    let _ = self.events.send(Event::FirstFrame { run: self.run });
                }
                if closed {
                    return;
                }
                if let Some(pacer) = &mut self.pacer
                    && !pacer.admit(Instant::now())
                {
                    return;
                }
                let frame = Frame {
                    jpeg: frame.jpeg,
                    width: frame.width,
                    height: frame.height,
                    captured_at: SystemTime::now(),
                };
                if host.send_frame(&frame).is_err() {
                    // The host is stopping us; keep draining so ffmpeg can exit.
                    closed = true;
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
