//! Restart delays: exponential backoff with jitter.
//!
//! The ceiling starts at `base` and doubles per consecutive failure up to `cap`; each delay
//! is drawn uniformly from `[ceiling / 2, ceiling]` ("equal jitter"). Compared with full
//! jitter (`[0, ceiling]`) this still spreads many gateways restarting against one NVR, but
//! guarantees that delays really grow, so a dead camera is not hammered by an unlucky run
//! of tiny delays. After a run that stayed live for `reset_after`, the next failure starts
//! from `base` again.
//!
//! The jitter comes from a [`fastrand::Rng`] owned by the backoff: randomly seeded in
//! production (so gateways restarting together spread out), seeded explicitly in tests
//! ([`Backoff::with_seed`]) so a delay sequence is reproducible. Backoff holds no clock: the
//! caller says how long the last run was live, and waits the delay itself (see `retry`).
//!
//! Invariant: every delay lies in `[base / 2, cap]`.

use std::time::Duration;

/// Backoff state for one source.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    reset_after: Duration,
    failures: u32,
    rng: fastrand::Rng,
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
            rng: fastrand::Rng::new(),
        }
    }

    /// The same backoff with its jitter drawn from a generator seeded with `seed`
    /// (reproducible delays, for tests).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = fastrand::Rng::with_seed(seed);
        self
    }

    /// Starts the growth over from `base` (the next delay is drawn under `base` again).
    pub fn restart(&mut self) {
        self.failures = 0;
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
        half + half.mul_f64(self.rng.f64())
    }

    /// The current upper bound.
    fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }
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
    fn restart_starts_the_growth_over() {
        let mut b = Backoff::standard().with_seed(1);
        for _ in 0..6 {
            b.next_delay(Duration::ZERO);
        }
        b.restart();
        assert!(b.next_delay(Duration::ZERO) <= Duration::from_millis(500));
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn jitter_spreads_delays_between_sources() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let mut b = Backoff::standard();
            seen.insert(b.next_delay(Duration::ZERO).as_micros());
        }
        assert!(
            seen.len() > 10,
            "jitter should differ between sources: {seen:?}"
        );
    }

    #[test]
    fn a_seeded_backoff_is_reproducible_and_grows_from_every_seed() {
        let delays = |seed| {
            let mut b = Backoff::standard().with_seed(seed);
            (0..8)
                .map(|_| b.next_delay(Duration::ZERO))
                .collect::<Vec<_>>()
        };
        assert_eq!(delays(7), delays(7));
        assert_ne!(delays(7), delays(8));
        // Equal jitter: whatever the draw, each delay is at least the one before until the
        // cap (ceilings double, delays lie in [ceiling / 2, ceiling]); at the cap (the 7th
        // delay on) they vary within [15 s, 30 s].
        for seed in 0..200 {
            let d = delays(seed);
            assert!(
                d[..7].windows(2).all(|w| w[1] >= w[0]),
                "seed {seed}: {d:?}"
            );
            assert!(
                d[6..].iter().all(|x| *x >= Duration::from_secs(15)),
                "seed {seed}: {d:?}"
            );
            assert!(d[4] >= Duration::from_secs(4), "seed {seed}: {d:?}");
        }
    }
}
