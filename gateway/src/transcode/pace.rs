//! A derived sub's frame-rate cap (`sub: { fps: N }`): which pictures to keep, by their
//! capture times, so the sub carries at most N a second.
//!
//! Invariants: decisions follow capture times only (never the clock of this machine), so
//! they are the same however late frames arrive; kept pictures are at least half an
//! interval apart and, for a steady source, exactly one interval apart on average (the
//! next slot moves on from the previous *slot*, not from the picture kept, so a 25 fps main
//! capped to 10 gives 10, not 25/3 ≈ 8.3); after a gap (a paused camera) the next picture
//! is kept at once and the schedule starts again from it.

/// Keeps at most one picture per interval (see the module docs).
#[derive(Debug, Clone)]
pub struct Pace {
    interval_us: u64,
    /// The capture time from which the next picture is kept; `None`: keep the next one.
    next_us: Option<u64>,
}

impl Pace {
    /// At most `fps` pictures a second (`fps` ≥ 1).
    pub fn new(fps: u32) -> Self {
        Pace {
            interval_us: 1_000_000 / u64::from(fps.max(1)),
            next_us: None,
        }
    }

    /// Whether to keep the picture captured at `captured_at_us`.
    pub fn keep(&mut self, captured_at_us: u64) -> bool {
        if let Some(next) = self.next_us
            && captured_at_us < next
        {
            return false;
        }
        let slot = self.next_us.unwrap_or(captured_at_us);
        // Behind by more than an interval (a gap): start again from this picture.
        let from = if captured_at_us >= slot + self.interval_us {
            captured_at_us
        } else {
            slot
        };
        self.next_us = Some(from + self.interval_us.max(1));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The capture times `pace` keeps out of `times`.
    fn kept(pace: &mut Pace, times: impl IntoIterator<Item = u64>) -> Vec<u64> {
        times.into_iter().filter(|&t| pace.keep(t)).collect()
    }

    #[test]
    fn a_steady_source_is_thinned_to_the_rate_exactly() {
        // 25 fps (40 ms) capped at 10: 10 kept per second, each 80 or 120 ms apart.
        let mut pace = Pace::new(10);
        let kept = kept(&mut pace, (0..250).map(|i| i * 40_000));
        assert_eq!(kept.len(), 100);
        assert!(
            kept.windows(2)
                .all(|w| (80_000..=120_000).contains(&(w[1] - w[0])))
        );
        // 10 fps capped at 5: every other frame.
        let mut pace = Pace::new(5);
        let kept = self::kept(&mut pace, (0..20).map(|i| i * 100_000));
        assert_eq!(kept, (0..10).map(|i| i * 200_000).collect::<Vec<_>>());
    }

    #[test]
    fn a_source_slower_than_the_cap_keeps_every_picture() {
        let mut pace = Pace::new(30);
        let times: Vec<u64> = (0..50).map(|i| i * 100_000).collect();
        assert_eq!(kept(&mut pace, times.clone()), times);
    }

    #[test]
    fn after_a_gap_the_next_picture_is_kept_and_the_schedule_restarts_from_it() {
        let mut pace = Pace::new(10);
        assert_eq!(
            kept(
                &mut pace,
                [0, 40_000, 100_000, 5_000_000, 5_040_000, 5_100_000]
            ),
            [0, 100_000, 5_000_000, 5_100_000]
        );
    }

    #[test]
    fn pictures_out_of_order_or_repeated_are_not_kept_twice_in_a_slot() {
        let mut pace = Pace::new(10);
        assert_eq!(
            kept(&mut pace, [100_000, 100_000, 50_000, 150_000, 200_000]),
            [100_000, 200_000]
        );
    }
}
