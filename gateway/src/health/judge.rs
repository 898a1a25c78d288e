//! The verdict: turns the monitor's once-a-second observations into a stream's
//! [`PictureHealth`], by the stream's [`HealthRules`].
//!
//! The rules (documented for operators in `docs/configuration.md`, "Picture health"):
//! - **late**: the newest frame is older than `late_after`, or the measured input rate
//!   has stayed below `min_fps_ratio` × the configured fps for `late_after`;
//! - **dark**: every picture sampled over `dark_after` was dark — mean luma at or below
//!   `dark_luma`, or uniform (cells spread ≤ [`UNIFORM_SPREAD`] levels: a lens cap, a
//!   grey "no signal" screen);
//! - **frozen**: every picture sampled over `frozen_after` was the same picture — the same
//!   bytes, or thumbnails within [`SAME_PICTURE`] levels on average — while frames kept
//!   arriving. A still scene is not frozen: sensor noise and the camera's own clock or
//!   compression make consecutive pictures differ by more than that (measured in
//!   `docs/performance.md`, "Picture health");
//! - otherwise **ok**; before the first sampled picture, **unknown** (unless late).
//!
//! When several hold, the first in this order wins: late, dark, frozen. Evidence, not the
//! clock, decides: a run counts from the first sample showing the condition to the last
//! one that showed it, so a stream whose keyframes come every 10 s is not called frozen in
//! the gaps between them. A dark picture stays dark until its mean rises
//! [`DARK_HYSTERESIS`] above the threshold (no flapping at dusk).

use std::time::Duration;

use tokio::time::Instant;

use crate::hub::{HealthRules, PictureHealth};

/// Cells spread (standard deviation, luma levels) at or below which a picture is uniform.
pub const UNIFORM_SPREAD: f64 = 2.0;
/// Mean cell difference (luma levels) below which two thumbnails show the same picture.
pub const SAME_PICTURE: f64 = 0.01;
/// Luma levels above `dark_luma` a dark picture must reach to count as lit again.
pub const DARK_HYSTERESIS: f64 = 4.0;

/// One sampled picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PictureSample {
    /// Whether it is a different picture from the previous sample (the first one is).
    pub changed: bool,
    /// Its mean luma (0–255).
    pub mean: f64,
    /// Its cells' standard deviation (luma levels).
    pub spread: f64,
}

/// What the monitor saw at one tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// When.
    pub at: Instant,
    /// Now minus the newest frame's capture time (`None`: no frame yet).
    pub frame_age: Option<Duration>,
    /// The input rate measured over the last second.
    pub fps: f64,
    /// The rate the stream is configured for, if it says.
    pub configured_fps: Option<f64>,
    /// A new picture, if one was sampled at this tick.
    pub picture: Option<PictureSample>,
}

/// A run of samples showing one condition: from the first to the latest.
#[derive(Debug, Clone, Copy)]
struct Run {
    first: Instant,
    last: Instant,
}

impl Run {
    fn lasted(&self, at_least: Duration) -> bool {
        self.last.duration_since(self.first) >= at_least
    }
}

/// One stream's judge. Holds only the current runs: O(1) memory.
#[derive(Debug, Default)]
pub struct Judge {
    /// Samples of one unchanging picture (from when it first appeared).
    same: Option<Run>,
    /// Samples of dark pictures.
    dark: Option<Run>,
    /// Since when the input rate has been too low.
    slow_since: Option<Instant>,
    /// Whether a picture has been sampled since the last reset.
    seen_picture: bool,
}

impl Judge {
    /// Forgets every run (the source stopped or restarted: a new session is judged anew).
    pub fn reset(&mut self) {
        *self = Judge::default();
    }

    /// Takes one observation and returns the verdict.
    pub fn observe(&mut self, rules: &HealthRules, seen: &Observation) -> PictureHealth {
        let late = self.late(rules, seen);
        if let Some(picture) = seen.picture {
            self.seen_picture = true;
            self.same = match (self.same, picture.changed) {
                (Some(run), false) => Some(Run {
                    last: seen.at,
                    ..run
                }),
                _ => Some(Run {
                    first: seen.at,
                    last: seen.at,
                }),
            };
            let threshold = if self.dark.is_some() {
                rules.dark_luma + DARK_HYSTERESIS
            } else {
                rules.dark_luma
            };
            let dark = picture.mean <= threshold || picture.spread <= UNIFORM_SPREAD;
            self.dark = match (dark, self.dark) {
                (false, _) => None,
                (true, Some(run)) => Some(Run {
                    last: seen.at,
                    ..run
                }),
                (true, None) => Some(Run {
                    first: seen.at,
                    last: seen.at,
                }),
            };
        }
        if late {
            PictureHealth::Late
        } else if !self.seen_picture {
            PictureHealth::Unknown
        } else if self.dark.is_some_and(|run| run.lasted(rules.dark_after)) {
            PictureHealth::Dark
        } else if self.same.is_some_and(|run| run.lasted(rules.frozen_after)) {
            PictureHealth::Frozen
        } else {
            PictureHealth::Ok
        }
    }

    fn late(&mut self, rules: &HealthRules, seen: &Observation) -> bool {
        let too_slow = seen
            .configured_fps
            .is_some_and(|fps| fps > 0.0 && seen.fps < fps * rules.min_fps_ratio);
        if too_slow {
            self.slow_since.get_or_insert(seen.at);
        } else {
            self.slow_since = None;
        }
        let stale = seen.frame_age.is_some_and(|age| age > rules.late_after);
        let slow = self
            .slow_since
            .is_some_and(|since| seen.at.duration_since(since) >= rules.late_after);
        stale || slow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIT: PictureSample = PictureSample {
        changed: true,
        mean: 110.0,
        spread: 40.0,
    };
    const STILL: PictureSample = PictureSample {
        changed: false,
        ..LIT
    };
    const BLACK: PictureSample = PictureSample {
        changed: true,
        mean: 3.0,
        spread: 1.0,
    };

    /// Feeds one observation a second, `t` seconds after `t0`.
    struct Clock {
        t0: Instant,
        judge: Judge,
        rules: HealthRules,
    }

    impl Clock {
        fn new() -> Self {
            Clock {
                t0: Instant::now(),
                judge: Judge::default(),
                rules: HealthRules::DEFAULT,
            }
        }

        fn at(&mut self, t: u64, picture: Option<PictureSample>) -> PictureHealth {
            self.seen(t, picture, 25.0, Some(Duration::from_millis(40)))
        }

        fn seen(
            &mut self,
            t: u64,
            picture: Option<PictureSample>,
            fps: f64,
            frame_age: Option<Duration>,
        ) -> PictureHealth {
            let seen = Observation {
                at: self.t0 + Duration::from_secs(t),
                frame_age,
                fps,
                configured_fps: Some(25.0),
                picture,
            };
            self.judge.observe(&self.rules, &seen)
        }
    }

    #[test]
    fn unknown_until_a_picture_is_sampled_then_ok() {
        let mut c = Clock::new();
        assert_eq!(c.at(0, None), PictureHealth::Unknown);
        assert_eq!(c.at(1, Some(LIT)), PictureHealth::Ok);
        assert_eq!(c.at(2, None), PictureHealth::Ok);
    }

    #[test]
    fn the_same_picture_for_frozen_after_is_frozen_and_a_change_ends_it() {
        let mut c = Clock::new();
        assert_eq!(c.at(0, Some(LIT)), PictureHealth::Ok);
        for t in 1..10 {
            assert_eq!(c.at(t, Some(STILL)), PictureHealth::Ok, "t={t}");
        }
        assert_eq!(c.at(10, Some(STILL)), PictureHealth::Frozen);
        assert_eq!(c.at(11, None), PictureHealth::Frozen);
        assert_eq!(c.at(12, Some(LIT)), PictureHealth::Ok);
    }

    #[test]
    fn time_without_samples_is_no_evidence_of_a_frozen_picture() {
        let mut c = Clock::new();
        c.at(0, Some(LIT));
        for t in 1..30 {
            assert_eq!(c.at(t, None), PictureHealth::Ok, "t={t}");
        }
        // Keyframes every 12 s that keep changing: never frozen.
        assert_eq!(c.at(30, Some(LIT)), PictureHealth::Ok);
        assert_eq!(c.at(42, Some(LIT)), PictureHealth::Ok);
        // Two samples 12 s apart showing the same picture: frozen.
        assert_eq!(c.at(54, Some(STILL)), PictureHealth::Frozen);
    }

    #[test]
    fn dark_for_dark_after_is_dark_with_hysteresis_and_beats_frozen() {
        let mut c = Clock::new();
        c.at(0, Some(LIT));
        for t in 1..11 {
            let still_black = PictureSample {
                changed: t == 1,
                ..BLACK
            };
            assert_eq!(c.at(t, Some(still_black)), PictureHealth::Ok, "t={t}");
        }
        let still_black = PictureSample {
            changed: false,
            ..BLACK
        };
        assert_eq!(c.at(11, Some(still_black)), PictureHealth::Dark);
        // Just above the threshold, but not by the hysteresis: still dark.
        let dusk = PictureSample {
            changed: true,
            mean: c.rules.dark_luma + 1.0,
            spread: 10.0,
        };
        assert_eq!(c.at(12, Some(dusk)), PictureHealth::Dark);
        assert_eq!(c.at(13, Some(LIT)), PictureHealth::Ok);
    }

    #[test]
    fn a_uniform_grey_picture_counts_as_dark() {
        let mut c = Clock::new();
        let grey = PictureSample {
            changed: true,
            mean: 128.0,
            spread: 0.5,
        };
        for t in 0..10 {
            assert_eq!(c.at(t, Some(grey)), PictureHealth::Ok);
        }
        assert_eq!(c.at(10, Some(grey)), PictureHealth::Dark);
    }

    #[test]
    fn an_old_newest_frame_is_late_at_once_and_beats_everything() {
        let mut c = Clock::new();
        c.at(0, Some(BLACK));
        let old = Some(Duration::from_millis(3_100));
        assert_eq!(c.seen(1, None, 0.0, old), PictureHealth::Late);
        assert_eq!(c.seen(11, Some(BLACK), 25.0, old), PictureHealth::Late);
        assert_eq!(c.at(12, Some(BLACK)), PictureHealth::Dark);
    }

    #[test]
    fn a_rate_under_the_ratio_for_late_after_is_late() {
        let mut c = Clock::new();
        c.at(0, Some(LIT));
        let fresh = Some(Duration::from_millis(200));
        assert_eq!(c.seen(1, Some(LIT), 10.0, fresh), PictureHealth::Ok);
        assert_eq!(c.seen(3, Some(LIT), 10.0, fresh), PictureHealth::Ok);
        assert_eq!(c.seen(4, Some(LIT), 10.0, fresh), PictureHealth::Late);
        // Half the configured rate is enough.
        assert_eq!(c.seen(5, Some(LIT), 12.5, fresh), PictureHealth::Ok);
    }

    #[test]
    fn streams_without_a_configured_rate_are_late_only_by_age() {
        let mut judge = Judge::default();
        let seen = Observation {
            at: Instant::now(),
            frame_age: Some(Duration::from_millis(100)),
            fps: 0.5,
            configured_fps: None,
            picture: Some(LIT),
        };
        for _ in 0..10 {
            assert_eq!(
                judge.observe(&HealthRules::DEFAULT, &seen),
                PictureHealth::Ok
            );
        }
    }

    #[test]
    fn reset_forgets_the_runs() {
        let mut c = Clock::new();
        c.at(0, Some(LIT));
        c.at(10, Some(STILL));
        c.judge.reset();
        assert_eq!(c.at(11, None), PictureHealth::Unknown);
        assert_eq!(c.at(12, Some(STILL)), PictureHealth::Ok);
    }
}
