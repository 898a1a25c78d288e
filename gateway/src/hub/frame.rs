//! The unit of fan-out: one JPEG picture with its sequence number and timestamps.

use std::sync::Arc;

use bytes::Bytes;

use super::derived::Derived;

/// One published picture. Cloning it clones a refcount, never the bytes.
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
    /// A complete JPEG (SOI..EOI) that carries a [`FrameTag`](super::FrameTag) segment.
    pub jpeg: Bytes,
    /// Representations transports derive from this frame once and share between viewers
    /// (e.g. the WebSocket transport's message in a sealed file, sent with `sendfile`).
    /// Clones share it; the hub never looks inside.
    pub derived: Arc<Derived>,
}

#[cfg(test)]
impl Frame {
    /// A frame with only a sequence number and bytes, for tests of the fan-out paths.
    pub fn for_test(seq: u64, jpeg: Bytes) -> Frame {
        Frame {
            seq,
            captured_at_us: 0,
            published_at_us: 0,
            width: 0,
            height: 0,
            jpeg,
            derived: Arc::default(),
        }
    }
}
