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
        let Some(newest) = self.frames.back() else {
            return Catchup::default();
        };
        if cursor.last.is_some_and(|last| last >= newest.seq) {
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
                let frames = self
                    .frames
                    .iter()
                    .filter(|f| f.seq >= next)
                    .cloned()
                    .collect();
                cursor.last = Some(newest.seq);
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
