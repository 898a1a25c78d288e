//! Restart delays: exponential backoff with jitter.
//!
//! The ceiling starts at `base` and doubles per consecutive failure up to `cap`; each delay
//! is drawn uniformly from `[ceiling / 2, ceiling]` ("equal jitter"). Compared with full
//! jitter (`[0, ceiling]`) this still spreads many gateways restarting against one NVR, but
//! guarantees that delays really grow, so a dead camera is not hammered by an unlucky run
//! of tiny delays. After a run that stayed live for `reset_after`, the next failure starts
//! from `base` again.
//!
//! Invariant: every delay lies in `[base / 2, cap]`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Backoff state for one source.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    reset_after: Duration,
    failures: u32,
}

impl Backoff {
    /// 0.5 s doubling up to 30 s; reset after 10 s live.
    pub fn standard() -> Self {
        Backoff::new(
            Duration::from_millis(500),
            Duration::from_secs(30),
            Duration::from_secs(10),
        )
    }

    /// A backoff with explicit parameters.
    pub fn new(base: Duration, cap: Duration, reset_after: Duration) -> Self {
        Backoff {
            base,
            cap: cap.max(base),
            reset_after,
            failures: 0,
        }
    }

    /// Consecutive failures counted so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records the end of a run that was live for `live_for` and returns the delay before
    /// the next attempt.
    pub fn next_delay(&mut self, live_for: Duration) -> Duration {
        if live_for >= self.reset_after {
            self.failures = 0;
        }
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(random_unit())
    }

    /// The current upper bound.
    fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// A uniformly distributed number in `[0, 1)`, from the std library's randomly seeded
/// hasher (no RNG dependency needed for jitter).
fn random_unit() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds_and_cap() {
        let mut b = Backoff::standard();
        let mut ceilings = Vec::new();
        for _ in 0..12 {
            let ceiling = b.ceiling();
            let d = b.next_delay(Duration::ZERO);
            assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} vs {ceiling:?}");
            ceilings.push(ceiling);
        }
        assert_eq!(ceilings[0], Duration::from_millis(500));
        assert_eq!(ceilings[1], Duration::from_secs(1));
        assert_eq!(ceilings[3], Duration::from_secs(4));
        assert_eq!(ceilings[11], Duration::from_secs(30));
        assert_eq!(b.failures(), 12);
    }

    #[test]
    fn a_long_live_run_resets_the_delay() {
        let mut b = Backoff::standard();
        for _ in 0..6 {
            b.next_delay(Duration::from_secs(1));
        }
        assert!(b.ceiling() >= Duration::from_secs(30));
        let d = b.next_delay(Duration::from_secs(60));
        assert!(d <= Duration::from_millis(500), "{d:?}");
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let mut b = Backoff::standard();
            seen.insert(b.next_delay(Duration::ZERO).as_micros());
        }
        assert!(
            seen.len() > 10,
            "jitter should differ between sources: {seen:?}"
        );
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
