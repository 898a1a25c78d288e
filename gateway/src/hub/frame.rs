//! The unit of fan-out: one JPEG picture with its sequence number and timestamps.

use bytes::Bytes;

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
}
