//! A log rate limit for events that outsiders control the rate of (a plugin's log lines, a
//! flood of connections): at most `lines` per `window`; the lines refused in a window are
//! counted and reported with the first line of a later window, so nothing goes unsaid and
//! nobody can fill the disk through the log.

use std::time::Duration;

use tokio::time::Instant;

/// At most `lines` log lines per `window` (see the module docs).
#[derive(Debug)]
pub struct LogBudget {
    lines: u32,
    window: Duration,
    window_start: Option<Instant>,
    used: u32,
    suppressed: u32,
}

impl LogBudget {
    /// A budget of `lines` per `window`.
    pub const fn new(lines: u32, window: Duration) -> Self {
        LogBudget {
            lines,
            window,
            window_start: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// Returns whether a line may be logged now, and how many were suppressed in the window
    /// that just ended (to report once).
    pub fn take(&mut self, now: Instant) -> (bool, u32) {
        let mut ended_suppressed = 0;
        match self.window_start {
            Some(start) if now.duration_since(start) < self.window => {}
            _ => {
                ended_suppressed = self.suppressed;
                self.window_start = Some(now);
                self.used = 0;
                self.suppressed = 0;
            }
        }
        if self.used < self.lines {
            self.used += 1;
            (true, ended_suppressed)
        } else {
            self.suppressed += 1;
            (false, ended_suppressed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn lines_beyond_the_budget_are_counted_and_reported_later() {
        let mut budget = LogBudget::new(2, Duration::from_secs(10));
        let now = Instant::now();
        assert_eq!(budget.take(now), (true, 0));
        assert_eq!(budget.take(now), (true, 0));
        assert_eq!(budget.take(now), (false, 0));
        assert_eq!(budget.take(now + Duration::from_secs(9)), (false, 0));
        assert_eq!(budget.take(now + Duration::from_secs(10)), (true, 2));
        assert_eq!(budget.take(now + Duration::from_secs(30)), (true, 0));
    }
}
