//! The unit of fan-out: one JPEG picture with its sequence number and timestamps.

use std::sync::{Arc, OnceLock};

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
    /// The frame as one WebSocket binary message in a sealed in-memory file, made by the
    /// first WebSocket viewer that sends the frame and shared by all of them: the kernel
    /// then sends the same pages to every viewer (`sendfile`) instead of copying the JPEG
    /// into each socket. `None` inside when no file was made (viewers then write `jpeg`).
    /// See `http/ws/sealed.rs`.
    pub ws_message: Arc<OnceLock<Option<Arc<super::SealedFile>>>>,
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
            ws_message: Arc::default(),
        }
    }
}
