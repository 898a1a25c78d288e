//! What one connection attempt ("run") of a source achieved: when it started, how many
//! frames the host took and when the last one was. The supervisors read it for the stall
//! watchdog, the backoff (a run live long enough resets it) and their messages.
//!
//! Invariant: `last_frame` is `None` exactly while `frames` is 0.

use std::time::{Duration, Instant};

/// What one run achieved.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// When the run started (before connecting).
    pub started: Instant,
    /// Frames the host took.
    pub frames: u64,
    /// When the host last took a frame.
    pub last_frame: Option<Instant>,
}

impl RunStats {
    /// A run starting now.
    pub fn new() -> Self {
        RunStats {
            started: Instant::now(),
            frames: 0,
            last_frame: None,
        }
    }

    /// The host took a frame at `now`; `true` if it was the run's first.
    pub fn took_frame(&mut self, now: Instant) -> bool {
        self.frames += 1;
        self.last_frame = Some(now);
        self.frames == 1
    }

    /// How long the run delivered frames (from its start to the last frame); zero without
    /// frames.
    pub fn live_for(&self) -> Duration {
        self.last_frame
            .map(|last| last.saturating_duration_since(self.started))
            .unwrap_or_default()
    }
}

impl Default for RunStats {
    fn default() -> Self {
        RunStats::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_for_counts_from_the_start_to_the_last_frame() {
        let mut stats = RunStats::new();
        assert_eq!(stats.live_for(), Duration::ZERO);
        assert!(stats.took_frame(stats.started + Duration::from_secs(3)));
        assert!(!stats.took_frame(stats.started + Duration::from_secs(12)));
        assert_eq!(stats.live_for(), Duration::from_secs(12));
        assert_eq!(stats.frames, 2);
    }
}
