//! Rate limits for log lines about recurring events (frames the host rejected, packets
//! lost on the network): the first occurrence is logged at once, later ones are counted
//! and summed up in at most one line per interval.
//!
//! The limiter holds no clock: the caller passes `now`, so tests need no sleeping.
//!
//! Invariant: every occurrence is counted in exactly one line that is reported — except
//! those after the last reported line, which only a later occurrence reports.

use std::time::{Duration, Instant};

/// Counts occurrences of one event and says when a line is due.
#[derive(Debug, Clone)]
pub struct LogLimiter {
    every: Duration,
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl LogLimiter {
    /// At most one line per `every`.
    pub fn new(every: Duration) -> Self {
        LogLimiter {
            every,
            last_logged: None,
            unlogged: 0,
        }
    }

    /// Records `count` occurrences at `now`; returns the number to put in a log line when
    /// one is due (all occurrences since the last line), `None` when it is not.
    pub fn record(&mut self, count: u64, now: Instant) -> Option<u64> {
        self.unlogged = self.unlogged.saturating_add(count);
        if self
            .last_logged
            .is_some_and(|at| now.saturating_duration_since(at) < self.every)
        {
            return None;
        }
        self.last_logged = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_is_logged_at_once_then_one_sum_per_interval() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut limiter = LogLimiter::new(s(10));
        assert_eq!(limiter.record(1, t0), Some(1));
        assert_eq!(limiter.record(3, t0 + s(1)), None);
        assert_eq!(limiter.record(2, t0 + s(9)), None);
        assert_eq!(limiter.record(1, t0 + s(10)), Some(6));
        assert_eq!(limiter.record(4, t0 + s(30)), Some(4));
    }
}
