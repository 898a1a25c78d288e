//! The unit of fan-out: one picture (a JPEG) or one coded video access unit (H.264/H.265),
//! with its sequence number and timestamps.
//!
//! Invariants:
//! - A JPEG frame's `data` is a complete JPEG carrying a [`FrameTag`](super::FrameTag);
//!   it needs no other frame to be shown.
//! - A video frame's `data` is one access unit in AVCC/HVCC form (each NAL unit prefixed by
//!   its 4-byte big-endian length) and carries the [`VideoConfig`] in force, so a viewer
//!   can start at any keyframe without having seen what came before.

use std::sync::Arc;

use bytes::Bytes;

use super::derived::Derived;

/// What a frame's bytes are: the source's native coding, passed through untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// A complete JPEG picture (every frame a keyframe).
    Jpeg,
    /// An H.264 access unit (AVCC).
    H264,
    /// An H.265 access unit (HVCC).
    H265,
}

impl Codec {
    /// The name the API and the viewing protocol use: `jpeg`, `h264`, `h265`.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Jpeg => "jpeg",
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        }
    }

    /// Whether frames depend on earlier ones (decoding must start at a keyframe).
    pub fn is_video(self) -> bool {
        !matches!(self, Codec::Jpeg)
    }
}

/// How to decode a video stream: what a decoder needs before the first keyframe. Shared by
/// every frame coded with it (one allocation per change, not per frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// H.264 or H.265.
    pub codec: Codec,
    /// RFC 6381 codec string (`avc1.64001f`, `hvc1.1.6.L93.B0`), what browsers' decoders ask.
    pub codec_string: String,
    /// Picture width in pixels, after the SPS's cropping (0 if unknown).
    pub width: u32,
    /// Picture height in pixels, after the SPS's cropping (0 if unknown).
    pub height: u32,
    /// The decoder configuration record: `avcC` (H.264) or `hvcC` (H.265).
    pub description: Bytes,
}

/// One published frame. Cloning it clones a refcount, never the bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Per-hub sequence number, starting at 1 and increasing by one per published frame,
    /// so a viewer can count what it skipped.
    pub seq: u64,
    /// When the source captured the picture, µs since the Unix epoch.
    pub captured_at_us: u64,
    /// When the hub published it, µs since the Unix epoch.
    pub published_at_us: u64,
    /// Width in pixels (0 if the source did not say).
    pub width: u32,
    /// Height in pixels (0 if the source did not say).
    pub height: u32,
    /// What `data` is.
    pub codec: Codec,
    /// Whether a decoder can start here (always true for JPEG).
    pub keyframe: bool,
    /// For video: the configuration this access unit is coded with. `None` for JPEG.
    pub config: Option<Arc<VideoConfig>>,
    /// JPEG: a complete JPEG (SOI..EOI) that carries a [`FrameTag`](super::FrameTag)
    /// segment. Video: one access unit, AVCC/HVCC.
    pub data: Bytes,
    /// Representations transports derive from this frame once and share between viewers
    /// (e.g. the WebSocket transport's message in a sealed file, sent with `sendfile`).
    /// Clones share it; the hub never looks inside.
    pub derived: Arc<Derived>,
}

#[cfg(test)]
impl Frame {
    /// A JPEG frame with only a sequence number and bytes, for tests of the fan-out paths.
    pub fn for_test(seq: u64, jpeg: Bytes) -> Frame {
        Frame {
            seq,
            captured_at_us: 0,
            published_at_us: 0,
            width: 0,
            height: 0,
            codec: Codec::Jpeg,
            keyframe: true,
            config: None,
            data: jpeg,
            derived: Arc::default(),
        }
    }
}
