//! Splits ffmpeg's MJPEG byte stream (`-f mjpeg pipe:1`) into complete JPEG pictures.
//!
//! The splitter follows the JPEG marker structure instead of searching for byte pairs:
//! after SOI (`FFD8`) it walks the marker segments by their lengths (so an EXIF thumbnail's
//! own SOI/EOI inside an APP1 segment cannot end a frame early), and inside entropy-coded
//! data it knows that `FF00` is a stuffed byte and `FFD0..FFD7` are restart markers. A
//! frame ends at the EOI (`FFD9`) that follows.
//!
//! Invariants (unit- and property-tested):
//! - the frames produced do not depend on how the input is chunked;
//! - bytes outside SOI..EOI (garbage between frames) are skipped;
//! - a frame that grows past `max_frame` bytes is dropped whole (never emitted, never kept):
//!   everything it is known to span is dropped, including the rest of a segment whose
//!   declared length runs past the cap (bytes that have not arrived yet are skipped as
//!   they come), and the splitter resynchronises on the next SOI after that; it never waits
//!   for bytes past `max_frame`, so between pushes it holds at most `max_frame` bytes and
//!   memory stays bounded by `max_frame` plus one read chunk;
//! - a new SOI where a marker is expected (a truncated frame) drops the partial frame and
//!   starts over at the new SOI.

/// Default cap on one frame: 16 MiB (the hub refuses larger frames anyway).
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// One complete JPEG found in the stream.
#[derive(Debug, PartialEq, Eq)]
pub struct SplitFrame<'a> {
    /// SOI to EOI inclusive.
    pub jpeg: &'a [u8],
    /// From the SOFn header; 0 if the frame had none.
    pub width: u32,
    /// From the SOFn header; 0 if the frame had none.
    pub height: u32,
}

/// Where the parser is inside the current frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for SOI; `buf` holds at most one byte (a trailing `FF`).
    Seeking,
    /// At a marker boundary inside a frame: the bytes at `pos` should be `FF xx`.
    Marker,
    /// Inside entropy-coded data after an SOS header.
    Entropy,
    /// Dropping an oversized frame: like `Seeking`, but the bytes are not garbage.
    Discarding,
}

/// Statistics for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SplitterStats {
    /// Complete frames emitted.
    pub frames: u64,
    /// Frames dropped because they exceeded the cap.
    pub oversized: u64,
    /// Partial frames abandoned (a new SOI or a broken marker where one was expected).
    pub broken: u64,
    /// Bytes skipped outside frames.
    pub garbage_bytes: u64,
}

/// An incremental JPEG splitter. Feed it with [`JpegSplitter::push`].
#[derive(Debug)]
pub struct JpegSplitter {
    /// Unconsumed bytes: the frame in progress (from its SOI) and whatever follows it.
    buf: Vec<u8>,
    /// Parse position inside `buf`; may run past `buf.len()` while skipping a segment.
    pos: usize,
    state: State,
    /// Bytes of a dropped frame still to come (`Discarding` skips them before seeking).
    skip: usize,
    max_frame: usize,
    width: u32,
    height: u32,
    stats: SplitterStats,
}

impl JpegSplitter {
    /// A splitter that refuses frames larger than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        JpegSplitter {
            buf: Vec::new(),
            pos: 0,
            state: State::Seeking,
            skip: 0,
            max_frame: max_frame.max(4),
            width: 0,
            height: 0,
            stats: SplitterStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> SplitterStats {
        self.stats
    }

    /// Bytes currently buffered (bounded by the cap plus one pushed chunk).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds `data` and calls `on_frame` for every frame it completes, in order.
    pub fn push(&mut self, data: &[u8], mut on_frame: impl FnMut(SplitFrame<'_>)) {
        self.buf.extend_from_slice(data);
        while self.step(&mut on_frame) {}
    }

    /// One parsing step; `false` when more input is needed.
    fn step(&mut self, on_frame: &mut impl FnMut(SplitFrame<'_>)) -> bool {
        match self.state {
            State::Discarding if self.skip > 0 => {
                let n = self.skip.min(self.buf.len());
                self.buf.drain(..n);
                self.skip -= n;
                self.skip == 0
            }
            State::Seeking | State::Discarding => self.seek_soi(),
            // The frame would end at `pos + 2` at the earliest.
            State::Marker | State::Entropy if self.pos + 2 > self.max_frame => {
                // Too large: drop all of it up to `pos` and resynchronise on the next SOI.
                // `pos` may lie past the bytes read so far (a segment's declared length):
                // those are skipped when they arrive, so where scanning resumes does not
                // depend on how the input was chunked.
                self.stats.oversized += 1;
                let consumed = self.pos.max(2);
                let have = consumed.min(self.buf.len());
                self.buf.drain(..have);
                self.skip = consumed - have;
                self.pos = 0;
                self.state = State::Discarding;
                true
            }
            State::Marker => self.marker(on_frame),
            State::Entropy => self.entropy(),
        }
    }

    /// Drops bytes up to the next SOI and starts a frame there.
    fn seek_soi(&mut self) -> bool {
        match self.buf.windows(2).position(|w| w == [0xFF, 0xD8]) {
            Some(at) => {
                self.skip(at);
                self.pos = 2;
                self.width = 0;
                self.height = 0;
                self.state = State::Marker;
                true
            }
            None => {
                // Keep a trailing FF: it may pair with a D8 in the next chunk.
                let keep = usize::from(self.buf.last() == Some(&0xFF));
                self.skip(self.buf.len() - keep);
                false
            }
        }
    }

    fn skip(&mut self, n: usize) {
        if self.state == State::Seeking {
            self.stats.garbage_bytes += n as u64;
        }
        self.buf.drain(..n);
    }

    /// Abandons the frame in progress at `pos` and looks for the next SOI from there.
    fn abandon(&mut self) -> bool {
        self.stats.broken += 1;
        let at = self.pos.min(self.buf.len());
        self.buf.drain(..at);
        self.pos = 0;
        self.state = State::Seeking;
        true
    }

    fn marker(&mut self, on_frame: &mut impl FnMut(SplitFrame<'_>)) -> bool {
        let Some(&[first, code]) = self.buf.get(self.pos..self.pos + 2) else {
            return false;
        };
        if first != 0xFF {
            // No marker where one must be: the stream is corrupt.
            return self.abandon();
        }
        match code {
            // A fill byte before a marker.
            0xFF => self.pos += 1,
            // A new frame started before this one ended, or a stuffed zero out of place.
            0xD8 | 0x00 => return self.abandon(),
            0xD9 => {
                let end = self.pos + 2;
                self.stats.frames += 1;
                on_frame(SplitFrame {
                    jpeg: &self.buf[..end],
                    width: self.width,
                    height: self.height,
                });
                self.buf.drain(..end);
                self.pos = 0;
                self.state = State::Seeking;
            }
            // Standalone markers: TEM, RSTn.
            0x01 | 0xD0..=0xD7 => self.pos += 2,
            _ => {
                // A segment and an EOI follow: the frame ends at `pos + 6` at the earliest.
                // Too large ones are refused before waiting for more of their bytes.
                if self.pos + 6 > self.max_frame {
                    self.pos += 4;
                    return true;
                }
                let Some(&[hi, lo]) = self.buf.get(self.pos + 2..self.pos + 4) else {
                    return false;
                };
                let length = usize::from(u16::from_be_bytes([hi, lo]));
                if length < 2 {
                    return self.abandon();
                }
                if self.pos + 2 + length + 2 > self.max_frame {
                    self.pos += 2 + length;
                    return true;
                }
                // The size is read only from inside the segment (a corrupt one may be short).
                if is_sof(code) && length >= 7 {
                    // SOFn: length(2) precision(1) height(2) width(2) ...
                    let Some(h) = self.buf.get(self.pos + 5..self.pos + 9) else {
                        return false;
                    };
                    self.height = u32::from(u16::from_be_bytes([h[0], h[1]]));
                    self.width = u32::from(u16::from_be_bytes([h[2], h[3]]));
                }
                self.pos += 2 + length;
                if code == 0xDA {
                    self.state = State::Entropy;
                }
            }
        }
        true
    }

    fn entropy(&mut self) -> bool {
        // Scan for FF followed by something that is neither a stuffed 00 nor RSTn.
        if self.pos >= self.buf.len() {
            return false;
        }
        // Having moved, go on (`step` then checks the cap even if more bytes are needed).
        let start = self.pos;
        let Some(offset) = self.buf[self.pos..].iter().position(|&b| b == 0xFF) else {
            self.pos = self.buf.len();
            return self.pos != start;
        };
        let at = self.pos + offset;
        self.pos = at;
        let Some(&next) = self.buf.get(at + 1) else {
            return self.pos != start;
        };
        match next {
            0x00 | 0xD0..=0xD7 => self.pos = at + 2,
            // Fill bytes: move to the last FF of the run.
            0xFF => self.pos = at + 1,
            _ => self.state = State::Marker,
        }
        true
    }
}

/// SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
fn is_sof(code: u8) -> bool {
    (0xC0..=0xCF).contains(&code) && !matches!(code, 0xC4 | 0xC8 | 0xCC)
}

#[cfg(test)]
/// A synthetic but structurally valid JPEG: SOI, an APP1 segment holding a whole
/// "thumbnail" JPEG (SOI..EOI), SOF0 with the size, SOS, entropy data with stuffed FFs
/// and restart markers, EOI.
pub(crate) fn synthetic(width: u16, height: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let thumbnail = [0xFF, 0xD8, 0xFF, 0xD9, 0x12, 0xFF];
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((thumbnail.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&thumbnail);
    out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08]);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
    // A fill byte before the next marker is legal.
    out.extend_from_slice(&[
        0xFF, 0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00,
    ]);
    for (i, &b) in payload.iter().enumerate() {
        out.push(b);
        if b == 0xFF {
            out.push(0x00);
        }
        if i % 97 == 96 {
            out.extend_from_slice(&[0xFF, 0xD0 + (i / 97 % 8) as u8]);
        }
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Splits `stream` fed in `chunks` (sizes cycled) and returns the frames.
    fn split(stream: &[u8], chunks: &[usize], max: usize) -> (Vec<Vec<u8>>, SplitterStats) {
        let mut splitter = JpegSplitter::new(max);
        let mut frames = Vec::new();
        let mut rest = stream;
        let mut sizes = chunks.iter().copied().cycle();
        while !rest.is_empty() {
            let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
            let (chunk, tail) = rest.split_at(n);
            splitter.push(chunk, |f| frames.push(f.jpeg.to_vec()));
            rest = tail;
        }
        (frames, splitter.stats())
    }

    #[test]
    fn real_jpegs_from_the_test_pattern_split_exactly() {
        let mut renderer = camgate_testsrc::PatternRenderer::new(320, 180, 80);
        let now = std::time::SystemTime::now();
        let jpegs: Vec<Vec<u8>> = (0..5).map(|n| renderer.render(n, now)).collect();
        let stream: Vec<u8> = jpegs.concat();
        for chunk in [1, 2, 3, 7, 100, 4096, 1 << 20] {
            let mut splitter = JpegSplitter::new(DEFAULT_MAX_FRAME);
            let mut frames = Vec::new();
            for part in stream.chunks(chunk) {
                splitter.push(part, |f| frames.push((f.jpeg.to_vec(), f.width, f.height)));
            }
            assert_eq!(frames.len(), 5, "chunk {chunk}");
            for (got, want) in frames.iter().zip(&jpegs) {
                assert_eq!(&got.0, want);
                assert_eq!((got.1, got.2), (320, 180));
            }
        }
    }

    #[test]
    fn embedded_thumbnail_does_not_end_the_frame() {
        let frame = synthetic(640, 480, &[1, 2, 0xFF, 3]);
        let (frames, stats) = split(&frame, &[frame.len()], DEFAULT_MAX_FRAME);
        assert_eq!(frames, vec![frame]);
        assert_eq!(stats.frames, 1);
    }

    #[test]
    fn dimensions_come_from_the_sof_header() {
        let frame = synthetic(1280, 720, &[9; 10]);
        let mut splitter = JpegSplitter::new(DEFAULT_MAX_FRAME);
        let mut dims = None;
        splitter.push(&frame, |f| dims = Some((f.width, f.height)));
        assert_eq!(dims, Some((1280, 720)));
    }

    #[test]
    fn garbage_between_frames_is_skipped() {
        let a = synthetic(16, 16, b"first");
        let b = synthetic(16, 16, b"second");
        let mut stream = b"junk\xFF\xFF".to_vec();
        stream.extend_from_slice(&a);
        stream.extend_from_slice(b"\x00\xFFmore junk\xFF");
        stream.extend_from_slice(&b);
        stream.extend_from_slice(b"trailing");
        let (frames, stats) = split(&stream, &[3], DEFAULT_MAX_FRAME);
        assert_eq!(frames, vec![a, b]);
        assert!(stats.garbage_bytes >= 20, "{stats:?}");
    }

    #[test]
    fn a_truncated_frame_is_dropped_and_the_next_one_kept() {
        let a = synthetic(16, 16, &[7; 50]);
        let b = synthetic(16, 16, &[8; 50]);
        let mut stream = a[..a.len() - 20].to_vec();
        stream.extend_from_slice(&b);
        let (frames, _) = split(&stream, &[5], DEFAULT_MAX_FRAME);
        // The truncated frame ends inside entropy data, where FFD8 cannot appear unstuffed,
        // so the splitter reads on into the next frame's header and must give up there.
        assert_eq!(frames.last(), Some(&b));
        assert!(!frames.contains(&a));
    }

    #[test]
    fn an_oversized_frame_is_refused_and_not_kept() {
        let small = synthetic(16, 16, &[1; 100]);
        let big = synthetic(16, 16, &[2; 5000]);
        let mut stream = small.clone();
        stream.extend_from_slice(&big);
        stream.extend_from_slice(&small);
        for chunk in [1, 13, 4096, 100_000] {
            let mut splitter = JpegSplitter::new(1000);
            let mut frames = Vec::new();
            let mut peak = 0;
            for part in stream.chunks(chunk) {
                splitter.push(part, |f| frames.push(f.jpeg.to_vec()));
                peak = peak.max(splitter.buffered());
            }
            assert_eq!(frames, vec![small.clone(), small.clone()], "chunk {chunk}");
            assert_eq!(splitter.stats().oversized, 1);
            assert!(peak <= 1000 + chunk, "buffered {peak} with chunk {chunk}");
        }
    }

    #[test]
    fn the_splitter_never_waits_for_bytes_past_the_cap() {
        // Found by the `jpeg_splitter` fuzz target: with a tiny cap, a SOF segment made the
        // splitter wait for its size fields past the cap before refusing the frame.
        let stream = [0xFF, 0xD8, 0xFF, 0xCD, 0xB7, 0xEF, 1, 2, 3, 4, 5, 6, 7, 8];
        for max in [4, 8, 12] {
            let mut splitter = JpegSplitter::new(max);
            for byte in stream {
                splitter.push(&[byte], |_| panic!("no frame here"));
                assert!(
                    splitter.buffered() <= max,
                    "{} > {max}",
                    splitter.buffered()
                );
            }
        }
    }

    #[test]
    fn entropy_data_past_the_cap_is_dropped_in_the_push_that_brought_it() {
        // Found by the `jpeg_splitter` fuzz target: a push of entropy data with no marker
        // left the whole push buffered; the cap was checked only on the next push.
        let mut big = vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02];
        big.resize(2500, 0x55);
        let mut splitter = JpegSplitter::new(1000);
        splitter.push(&big, |_| panic!("the frame is too large"));
        assert!(splitter.buffered() <= 1000, "{}", splitter.buffered());
        assert_eq!(splitter.stats().oversized, 1);
    }

    #[test]
    fn a_segment_declared_past_the_cap_is_skipped_whole_under_any_chunking() {
        // Found by the `jpeg_splitter` fuzz target: a corrupt segment length made the frame
        // oversized before its bytes had arrived; a splitter fed everything at once dropped
        // them all, one fed in small chunks looked for an SOI inside them and found frames.
        let inner = synthetic(8, 8, &[3; 10]);
        let after = synthetic(8, 8, &[4; 10]);
        let mut stream = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x01, 0x00]; // a 256-byte APP1
        stream.extend_from_slice(&inner);
        stream.resize(4 + 256, 0x11);
        stream.extend_from_slice(&after);
        for chunks in [vec![stream.len()], vec![1], vec![7], vec![64, 3]] {
            let (frames, stats) = split(&stream, &chunks, 100);
            assert_eq!(frames, vec![after.clone()], "chunks {chunks:?}");
            assert_eq!(stats.oversized, 1);
        }
    }

    fn garbage() -> impl Strategy<Value = Vec<u8>> {
        // Anything without an SOI in it (an SOI *is* the start of a frame by definition).
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|mut g| {
            while let Some(i) = g.windows(2).position(|w| w == [0xFF, 0xD8]) {
                g[i + 1] = 0xD7;
            }
            // A trailing FF would glue to the next frame's SOI as a fill byte: harmless, but
            // keep garbage unambiguous.
            if g.last() == Some(&0xFF) {
                g.pop();
            }
            g
        })
    }

    proptest! {
        #[test]
        fn any_chunking_yields_the_same_frames(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6),
            gaps in proptest::collection::vec(garbage(), 7),
            chunks in proptest::collection::vec(1usize..200, 1..10),
        ) {
            let frames: Vec<Vec<u8>> = payloads.iter().map(|p| synthetic(32, 24, p)).collect();
            let mut stream = Vec::new();
            for (i, frame) in frames.iter().enumerate() {
                stream.extend_from_slice(&gaps[i]);
                stream.extend_from_slice(frame);
            }
            stream.extend_from_slice(&gaps[6]);
            let (whole, _) = split(&stream, &[stream.len()], DEFAULT_MAX_FRAME);
            prop_assert_eq!(&whole, &frames);
            let (chunked, _) = split(&stream, &chunks, DEFAULT_MAX_FRAME);
            prop_assert_eq!(&chunked, &frames);
        }

        #[test]
        fn oversized_frames_are_refused_under_any_chunking(
            sizes in proptest::collection::vec(0usize..1500, 1..8),
            chunks in proptest::collection::vec(1usize..300, 1..10),
        ) {
            let max = 1000;
            let frames: Vec<Vec<u8>> = sizes.iter().map(|&n| synthetic(8, 8, &vec![0x55; n])).collect();
            let stream = frames.concat();
            let expected: Vec<Vec<u8>> = frames.iter().filter(|f| f.len() <= max).cloned().collect();
            let (got, stats) = split(&stream, &chunks, max);
            prop_assert_eq!(&got, &expected);
            prop_assert_eq!(stats.oversized as usize, frames.len() - expected.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_stay_bounded(
            bytes in proptest::collection::vec(any::<u8>(), 0..3000),
            chunks in proptest::collection::vec(1usize..500, 1..5),
        ) {
            let mut splitter = JpegSplitter::new(512);
            let mut sizes = chunks.iter().copied().cycle();
            let mut rest: &[u8] = &bytes;
            while !rest.is_empty() {
                let n = sizes.next().unwrap_or(1).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                splitter.push(chunk, |f| {
                    assert!(f.jpeg.len() <= 512);
                    assert_eq!(&f.jpeg[..2], &[0xFF, 0xD8]);
                    assert_eq!(&f.jpeg[f.jpeg.len() - 2..], &[0xFF, 0xD9]);
                });
                prop_assert!(splitter.buffered() <= 512 + 16 + n);
                rest = tail;
            }
        }
    }
}
