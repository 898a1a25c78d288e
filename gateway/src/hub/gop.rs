//! A video stream's frames since its last keyframe, and where each viewer stands in them.
//!
//! Why: an H.264/H.265 frame only decodes after the frames before it back to a keyframe.
//! Latest-frame-wins (the JPEG rule) would hand a viewer undecodable frames; waiting for the
//! next keyframe would make every new viewer wait up to a GOP (often 1–4 s) for a picture.
//! So the hub keeps the current GOP: a new viewer gets it at once (it decodes ahead and
//! shows the last picture), a viewer that keeps up gets every frame in order, and one that
//! falls behind skips to the next keyframe — latest GOP wins.
//!
//! Invariants:
//! - Retained frames run without a gap to the newest; the newest keyframe among them is
//!   where new viewers start. The GOP before the current one is kept too, so a viewer that
//!   had not read the end of it when a keyframe arrived still gets every frame.
//! - Retention is bounded by [`MAX_GOP_BYTES`] and [`MAX_GOP_US`]: past either (a camera
//!   with a very long or no GOP), the oldest frames are let go and new viewers wait for the
//!   next keyframe; viewers that keep up still get every frame (the newest are kept).
//! - Frames are numbered here, under the lock, in the order they are published: one
//!   sequence per video track, gaps only where a viewer skipped.
//! - Publishing is O(1) in the number of viewers (the caller wakes them elsewhere).
//! - A viewer on credit (the viewing protocol's flow control) is sent no more frames in
//!   order than it has credit for; the rest wait for its next grant, under the same rules
//!   (too far behind by then, it skips to a keyframe). A GOP from its keyframe goes whole to
//!   a viewer with any credit (it is what the latest picture takes to decode): a viewer
//!   granting one frame at a time still joins with a picture at once.

use std::collections::VecDeque;

use super::frame::Frame;

/// Most bytes of one GOP kept for joining viewers.
pub const MAX_GOP_BYTES: usize = 16 * 1024 * 1024;
/// Longest GOP kept for joining viewers (capture time of the newest minus the keyframe's).
pub const MAX_GOP_US: u64 = 10_000_000;
/// How far (capture time) a viewer may fall behind the newest frame before it skips to the
/// next keyframe instead of sending what it missed.
pub const MAX_VIEWER_LAG_US: u64 = 1_000_000;

/// The retained frames: the current GOP and the one before it.
#[derive(Debug, Default)]
pub struct Gop {
    /// Consecutive frames, oldest first; may start mid-GOP.
    frames: VecDeque<Frame>,
    bytes: usize,
    /// The newest keyframe, while it is retained: new viewers start there.
    key: Option<u64>,
    last_seq: u64,
}

/// What a viewer is sent next.
#[derive(Debug, Default)]
pub struct Catchup {
    /// Frames to send, in order (empty: nothing new it can use).
    pub frames: Vec<Frame>,
    /// Frames it skips (between its last frame and the first of `frames`).
    pub skipped: u64,
}

/// Where one viewer stands in a video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The last frame it was sent (`None`: nothing yet).
    pub last: Option<u64>,
    /// Whether it may only continue at a keyframe newer than `last` (it joined, missed
    /// frames or fell too far behind).
    pub needs_keyframe: bool,
}

impl Cursor {
    /// A viewer that has been sent nothing.
    pub fn new() -> Self {
        Cursor {
            last: None,
            needs_keyframe: true,
        }
    }
}

/// A new viewer's cursor (it starts at a keyframe), never one that would take a frame
/// out of the middle of a GOP.
impl Default for Cursor {
    fn default() -> Self {
        Cursor::new()
    }
}

impl Gop {
    /// The sequence number the next frame gets.
    pub fn next_seq(&self) -> u64 {
        self.last_seq + 1
    }

    /// The newest frame's sequence number (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Keeps `frame` (numbered by the caller with [`Gop::next_seq`]). A keyframe starts a
    /// new GOP and lets the one before the last go: a viewer that had not read the end of
    /// the last GOP when the keyframe came still gets it, in order. Frames before the first
    /// keyframe are not kept (no viewer could decode them).
    pub fn push(&mut self, frame: Frame) {
        debug_assert_eq!(frame.seq, self.next_seq());
        self.last_seq = frame.seq;
        if frame.keyframe {
            if let Some(key) = self.key {
                self.drop_front_while(|f| f.seq < key);
            }
            self.key = Some(frame.seq);
        } else if self.frames.is_empty() && self.key.is_none() {
            return;
        }
        self.bytes += frame.data.len();
        self.frames.push_back(frame);
        while self.too_long() {
            let Some(old) = self.frames.pop_front() else {
                break;
            };
            self.bytes -= old.data.len();
            if self.key.is_some_and(|key| old.seq >= key) {
                self.key = None;
            }
        }
    }

    fn drop_front_while(&mut self, mut old: impl FnMut(&Frame) -> bool) {
        while let Some(front) = self.frames.front()
            && old(front)
        {
            self.bytes -= front.data.len();
            self.frames.pop_front();
        }
    }

    fn too_long(&self) -> bool {
        let span = match (self.frames.front(), self.frames.back()) {
            (Some(first), Some(last)) => last.captured_at_us.saturating_sub(first.captured_at_us),
            _ => 0,
        };
        self.frames.len() > 1 && (self.bytes > MAX_GOP_BYTES || span > MAX_GOP_US)
    }

    /// Leaves `frames` sequence numbers out: the next frame is numbered as if that many
    /// had come (they were skipped before reaching the source, e.g. upstream of a relay).
    /// The retained frames are let go, since frames must run without a gap to the newest
    /// and nothing decodes across the gap: viewers continue at the next keyframe and count
    /// the gap, like their own skips.
    pub fn skip(&mut self, frames: u64) {
        if frames == 0 {
            return;
        }
        self.clear();
        self.last_seq = self.last_seq.saturating_add(frames);
    }

    /// Forgets everything (the source stopped); numbering goes on.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
        self.key = None;
    }

    /// The newest keyframe, if it is retained (the health monitor samples it).
    pub fn latest_keyframe(&self) -> Option<Frame> {
        let key = self.key?;
        let first = self.frames.front()?.seq;
        self.frames.get(usize::try_from(key - first).ok()?).cloned()
    }

    /// The frames of the current GOP from its keyframe, if it is retained (snapshots decode
    /// them).
    pub fn joinable_frames(&self) -> Option<Vec<Frame>> {
        let key = self.key?;
        Some(
            self.frames
                .iter()
                .filter(|f| f.seq >= key)
                .cloned()
                .collect(),
        )
    }

    /// What the viewer at `cursor` is sent next, and moves the cursor past it.
    ///
    /// - A viewer that keeps up gets every frame after its last, in order.
    /// - One whose next frame is gone, or whose next frame is more than
    ///   [`MAX_VIEWER_LAG_US`] older than the newest, skips to a keyframe.
    /// - One that needs a keyframe gets the current GOP if its keyframe is newer than what
    ///   it had (a new viewer: at once), else nothing until the next keyframe.
    pub fn catch_up(&self, cursor: &mut Cursor) -> Catchup {
        self.catch_up_within(cursor, None)
    }

    /// [`Gop::catch_up`] for a viewer on credit with `credit` frames to spend: in order it
    /// gets at most `credit` frames (the rest wait for more credit, or are skipped if it
    /// falls too far behind meanwhile); a GOP from its keyframe (joining, or after a skip)
    /// comes whole, whatever the credit, as it is what the latest picture takes to decode.
    /// With no credit, nothing.
    pub fn catch_up_with_credit(&self, cursor: &mut Cursor, credit: u32) -> Catchup {
        self.catch_up_within(cursor, Some(credit))
    }

    fn catch_up_within(&self, cursor: &mut Cursor, credit: Option<u32>) -> Catchup {
        let Some(newest) = self.frames.back() else {
            return Catchup::default();
        };
        if credit == Some(0) || cursor.last.is_some_and(|last| last >= newest.seq) {
            return Catchup::default();
        }
        if !cursor.needs_keyframe {
            let next = cursor.last.map_or(0, |last| last + 1);
            let due = self.frames.iter().find(|f| f.seq >= next);
            let in_order = self.frames.front().is_some_and(|f| f.seq <= next);
            let lag = due.map_or(0, |f| {
                newest.captured_at_us.saturating_sub(f.captured_at_us)
            });
            if in_order && lag <= MAX_VIEWER_LAG_US {
                let limit = credit.map_or(usize::MAX, |credit| credit as usize);
                let frames: Vec<Frame> = self
                    .frames
                    .iter()
                    .filter(|f| f.seq >= next)
                    .take(limit)
                    .cloned()
                    .collect();
                cursor.last = frames.last().map(|f| f.seq).or(cursor.last);
                return Catchup { frames, skipped: 0 };
            }
            cursor.needs_keyframe = true;
        }
        match self.key {
            Some(key) if cursor.last.is_none_or(|last| key > last) => {
                let skipped = cursor.last.map_or(0, |last| key - last - 1);
                cursor.last = Some(newest.seq);
                cursor.needs_keyframe = false;
                Catchup {
                    frames: self
                        .frames
                        .iter()
                        .filter(|f| f.seq >= key)
                        .cloned()
                        .collect(),
                    skipped,
                }
            }
            _ => Catchup::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::hub::frame::Codec;

    fn frame(gop: &Gop, keyframe: bool, captured_at_us: u64, bytes: usize) -> Frame {
        let mut frame = Frame::for_test(gop.next_seq(), Bytes::from(vec![0; bytes]));
        frame.codec = Codec::H264;
        frame.keyframe = keyframe;
        frame.captured_at_us = captured_at_us;
        frame.derived = Arc::default();
        frame
    }

    /// Publishes a GOP of `len` frames at 10 fps from `t0` (µs).
    fn publish_gop(gop: &mut Gop, len: usize, t0: u64) {
        for i in 0..len {
            let f = frame(gop, i == 0, t0 + i as u64 * 100_000, 1000);
            gop.push(f);
        }
    }

    fn seqs(catchup: &Catchup) -> Vec<u64> {
        catchup.frames.iter().map(|f| f.seq).collect()
    }

    #[test]
    fn frames_before_the_first_keyframe_are_not_kept_and_a_new_viewer_waits() {
        let mut gop = Gop::default();
        for t in 0..3 {
            let f = frame(&gop, false, t * 100_000, 10);
            gop.push(f);
        }
        let mut cursor = Cursor::new();
        assert!(gop.catch_up(&mut cursor).frames.is_empty());
        assert_eq!(gop.last_seq(), 3, "numbered all the same");
        let f = frame(&gop, true, 300_000, 10);
        gop.push(f);
        assert_eq!(seqs(&gop.catch_up(&mut cursor)), [4]);
    }

    #[test]
    fn a_new_viewer_gets_the_whole_gop_at_once_then_every_frame_in_order() {
        let mut gop = Gop::default();
        publish_gop(&mut gop, 5, 0);
        let mut cursor = Cursor::new();
        let first = gop.catch_up(&mut cursor);
        assert_eq!(seqs(&first), [1, 2, 3, 4, 5]);
        assert_eq!(first.skipped, 0);
        assert!(first.frames[0].keyframe);
        assert!(gop.catch_up(&mut cursor).frames.is_empty(), "nothing twice");
        for expected in [6, 7] {
            let f = frame(&gop, false, (expected - 1) * 100_000, 1000);
            gop.push(f);
            assert_eq!(seqs(&gop.catch_up(&mut cursor)), [expected]);
        }
        // Two at once (its task was busy): both, in order.
        for t in [7, 8] {
            let f = frame(&gop, false, t * 100_000, 1000);
            gop.push(f);
        }
        assert_eq!(seqs(&gop.catch_up(&mut cursor)), [8, 9]);
    }

    #[test]
    fn a_viewer_that_has_not_read_the_end_of_a_gop_when_a_keyframe_comes_still_gets_it() {
        let mut gop = Gop::default();
        publish_gop(&mut gop, 3, 0);
        let mut cursor = Cursor::new();
        gop.catch_up(&mut cursor);
        let f = frame(&gop, false, 300_000, 10);
        gop.push(f);
        publish_gop(&mut gop, 2, 400_000);
        let got = gop.catch_up(&mut cursor);
        assert_eq!(seqs(&got), [4, 5, 6]);
        assert_eq!(got.skipped, 0);
        // A new viewer starts at the newest keyframe.
        assert_eq!(seqs(&gop.catch_up(&mut Cursor::new())), [5, 6]);
    }

    #[test]
    fn a_viewer_whose_frames_are_gone_skips_to_the_newest_keyframe_and_counts_the_gap() {
        let mut gop = Gop::default();
        publish_gop(&mut gop, 3, 0);
        let mut cursor = Cursor::new();
        gop.catch_up(&mut cursor);
        // It took nothing while two whole GOPs and the next keyframe passed.
        publish_gop(&mut gop, 3, 300_000);
        publish_gop(&mut gop, 3, 600_000);
        publish_gop(&mut gop, 2, 900_000);
        let got = gop.catch_up(&mut cursor);
        assert_eq!(seqs(&got), [10, 11]);
        assert!(got.frames[0].keyframe);
        assert_eq!(got.skipped, 6, "frames 4 to 9");
    }

    #[test]
    fn a_viewer_too_far_behind_waits_for_the_next_keyframe() {
        let mut gop = Gop::default();
        publish_gop(&mut gop, 1, 0);
        let mut cursor = Cursor::new();
        gop.catch_up(&mut cursor);
        // 20 more frames of the same GOP (2 s) before it looks again: too far behind.
        for i in 1..=20 {
            let f = frame(&gop, false, i * 100_000, 1000);
            gop.push(f);
        }
        assert!(gop.catch_up(&mut cursor).frames.is_empty());
        let f = frame(&gop, false, 2_100_000, 1000);
        gop.push(f);
        assert!(
            gop.catch_up(&mut cursor).frames.is_empty(),
            "still no keyframe"
        );
        let f = frame(&gop, true, 2_200_000, 1000);
        gop.push(f);
        let got = gop.catch_up(&mut cursor);
        assert_eq!(seqs(&got), [23]);
        assert_eq!(got.skipped, 21);
    }

    #[test]
    fn a_viewer_on_credit_gets_at_most_its_credit_in_order_and_a_gop_whole() {
        let mut gop = Gop::default();
        publish_gop(&mut gop, 5, 0);
        let mut cursor = Cursor::new();
        // No credit: nothing, and the cursor stays where it was.
        assert!(gop.catch_up_with_credit(&mut cursor, 0).frames.is_empty());
        assert_eq!(cursor, Cursor::new());
        // Joining: the whole GOP, whatever the credit.
        let join = gop.catch_up_with_credit(&mut cursor, 1);
        assert_eq!(seqs(&join), [1, 2, 3, 4, 5]);
        for t in 5..9 {
            let f = frame(&gop, false, t * 100_000, 1000);
            gop.push(f);
        }
        // Four new frames, credit for two: the first two, in order; then the rest.
        let two = gop.catch_up_with_credit(&mut cursor, 2);
        assert_eq!((seqs(&two), two.skipped), (vec![6, 7], 0));
        let rest = gop.catch_up_with_credit(&mut cursor, 10);
        assert_eq!(seqs(&rest), [8, 9]);
        assert!(gop.catch_up_with_credit(&mut cursor, 10).frames.is_empty());
        // Without credit for over a second it skips to the next keyframe's GOP.
        for t in 9..25 {
            let f = frame(&gop, false, t * 100_000, 1000);
            gop.push(f);
        }
        assert!(gop.catch_up_with_credit(&mut cursor, 3).frames.is_empty());
        publish_gop(&mut gop, 3, 2_500_000);
        let skip = gop.catch_up_with_credit(&mut cursor, 1);
        assert_eq!((seqs(&skip), skip.skipped), (vec![26, 27, 28], 16));
    }

    /// What a randomized run does next.
    #[derive(Debug, Clone)]
    enum Step {
        /// The source publishes a frame `dt_ms` after the last.
        Publish { keyframe: bool, dt_ms: u64 },
        /// The viewer grants credit.
        Grant(u32),
        /// The viewer's session looks for frames.
        Look,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (proptest::bool::weighted(0.08), 0u64..250)
                .prop_map(|(keyframe, dt_ms)| Step::Publish { keyframe, dt_ms }),
            2 => (0u32..6).prop_map(Step::Grant),
            3 => Just(Step::Look),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// A viewer on credit, whatever the publishing and granting: what it gets always
        /// decodes (every run starts at a keyframe, sequence numbers only grow), frames in
        /// order never exceed its credit (only a GOP from its keyframe may), nothing comes
        /// without credit, and once it grants enough it reaches the newest frame at the next
        /// keyframe.
        #[test]
        fn a_viewer_on_credit_gets_decodable_runs_within_its_credit(
            steps in proptest::collection::vec(step(), 1..300),
        ) {
            let mut gop = Gop::default();
            let mut cursor = Cursor::new();
            let mut balance: i64 = 0;
            let mut last: Option<u64> = None;
            let mut now_us = 0;
            let look = |gop: &Gop, cursor: &mut Cursor, balance: &mut i64, last: &mut Option<u64>| {
                let credit = u32::try_from((*balance).max(0)).unwrap();
                let got = gop.catch_up_with_credit(cursor, credit);
                if credit == 0 {
                    proptest::prop_assert!(got.frames.is_empty(), "a frame without credit");
                    return Ok(());
                }
                if let Some(first) = got.frames.first() {
                    let continues = last.is_some_and(|l| first.seq == l + 1);
                    proptest::prop_assert!(continues || first.keyframe, "a run starts mid-GOP");
                    proptest::prop_assert!(
                        got.frames.len() <= credit as usize || first.keyframe,
                        "{} frames in order on {credit} credits", got.frames.len()
                    );
                    for pair in got.frames.windows(2) {
                        proptest::prop_assert_eq!(pair[1].seq, pair[0].seq + 1);
                    }
                    proptest::prop_assert_eq!(
                        got.skipped,
                        last.map_or(0, |l| first.seq - l - 1)
                    );
                    *last = got.frames.last().map(|f| f.seq);
                }
                *balance -= i64::try_from(got.frames.len()).unwrap();
                Ok(())
            };
            for step in steps {
                match step {
                    Step::Publish { keyframe, dt_ms } => {
                        now_us += dt_ms * 1000;
                        let f = frame(&gop, keyframe, now_us, 100);
                        gop.push(f);
                    }
                    Step::Grant(n) => balance = (balance + i64::from(n)).min(1000),
                    Step::Look => look(&gop, &mut cursor, &mut balance, &mut last)?,
                }
            }
            // Enough credit and a keyframe: it reaches the newest frame.
            balance = 1000;
            let f = frame(&gop, true, now_us + 10_000_000, 100);
            gop.push(f);
            look(&gop, &mut cursor, &mut balance, &mut last)?;
            proptest::prop_assert_eq!(last, Some(gop.last_seq()));
        }
    }

    #[test]
    fn a_gop_past_its_bounds_keeps_the_newest_frames_for_followers_but_new_viewers_wait() {
        let mut gop = Gop::default();
        let mut follower = Cursor::new();
        publish_gop(&mut gop, 1, 0);
        gop.catch_up(&mut follower);
        // 11 s without a keyframe (beyond MAX_GOP_US), the follower keeping up.
        for i in 1..=110 {
            let f = frame(&gop, false, i * 100_000, 1000);
            gop.push(f);
            assert_eq!(seqs(&gop.catch_up(&mut follower)), [i + 1]);
        }
        assert!(gop.joinable_frames().is_none());
        let mut newcomer = Cursor::new();
        assert!(gop.catch_up(&mut newcomer).frames.is_empty());
        // Bytes bound too: one huge frame lets the rest go.
        let f = frame(&gop, true, 11_100_000, 1000);
        gop.push(f);
        assert_eq!(seqs(&gop.catch_up(&mut newcomer)), [112]);
        assert_eq!(seqs(&gop.catch_up(&mut follower)), [112]);
        let f = frame(&gop, false, 11_200_000, MAX_GOP_BYTES);
        gop.push(f);
        assert!(gop.joinable_frames().is_none());
        assert_eq!(seqs(&gop.catch_up(&mut follower)), [113]);
        assert!(gop.catch_up(&mut Cursor::new()).frames.is_empty());
    }

    #[test]
    fn the_latest_keyframe_is_the_newest_gops_first_frame() {
        let mut gop = Gop::default();
        assert!(gop.latest_keyframe().is_none());
        publish_gop(&mut gop, 3, 0);
        assert_eq!(gop.latest_keyframe().map(|f| f.seq), Some(1));
        publish_gop(&mut gop, 3, 1_000_000);
        assert_eq!(gop.latest_keyframe().map(|f| f.seq), Some(4));
        gop.clear();
        assert!(gop.latest_keyframe().is_none());
    }

    #[test]
    fn clearing_keeps_numbering_and_makes_viewers_wait_for_a_keyframe() {
        let mut gop = Gop::default();
        publish_gop(&mut gop, 3, 0);
        let mut cursor = Cursor::new();
        gop.catch_up(&mut cursor);
        gop.clear();
        assert!(gop.catch_up(&mut cursor).frames.is_empty());
        let f = frame(&gop, false, 400_000, 10);
        gop.push(f);
        assert!(gop.catch_up(&mut cursor).frames.is_empty());
        publish_gop(&mut gop, 2, 500_000);
        let got = gop.catch_up(&mut cursor);
        assert_eq!(seqs(&got), [5, 6]);
        assert_eq!(got.skipped, 1);
    }
}
