//! Thumbnails of a passthrough (H.264/H.265) stream: its keyframes, decoded by one
//! long-lived ffmpeg at thumbnail size.
//!
//! The hub holds the stream's coded frames, never pictures. Decoding every frame would
//! cost what passthrough saves (a decode per camera), so only keyframes are sampled —
//! each decodes on its own — at most one per [`KeyframeSampler::offer`] call (the monitor
//! offers at most one a second), through the same [`Transcoder`] that makes MJPEG for
//! viewers, asked for a [`WIDTH`] × [`HEIGHT`] output at the best JPEG quality. ffmpeg
//! decodes a 720p keyframe in a few milliseconds and stays idle between them; starting
//! one per sample would cost ten times more (process start, probing).
//!
//! Invariants: at most one ffmpeg per sampler; dropping the sampler stops it (the
//! transcoder kills and reaps its child); a thumbnail is tagged with the hub sequence
//! number of the keyframe it shows, so a late one is never taken for a newer keyframe.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::thumbnail::{HEIGHT, WIDTH};
use crate::hub::Frame;
use crate::transcode::{Transcoder, TranscoderOptions};

/// JPEG quality of the thumbnails (ffmpeg's best): their detail is what is compared.
const QUALITY: u8 = 2;

/// The newest decoded keyframe: its hub sequence number and a small JPEG.
type Latest = Arc<Mutex<Option<(u64, Bytes)>>>;

/// Decodes offered keyframes into small JPEGs (see the module docs).
#[derive(Debug)]
pub struct KeyframeSampler {
    transcoder: Transcoder,
    latest: Latest,
}

impl KeyframeSampler {
    /// Starts a sampler (its ffmpeg starts with the first keyframe) on the current runtime,
    /// running `ffmpeg`; `label` names the stream in log lines.
    pub fn start(ffmpeg: &std::path::Path, label: &str) -> KeyframeSampler {
        let latest = Latest::default();
        let options = TranscoderOptions {
            ffmpeg: ffmpeg.to_path_buf(),
            quality: QUALITY,
            // One in flight and one waiting: the monitor offers one a second.
            queue: 2,
            label: format!("{label} (health)"),
            size: Some((WIDTH as u32, HEIGHT as u32)),
            ..TranscoderOptions::default()
        };
        let into = Arc::clone(&latest);
        let transcoder = Transcoder::start(options, move |jpeg| {
            *into.lock().unwrap_or_else(|e| e.into_inner()) = Some((jpeg.source_seq, jpeg.jpeg));
        });
        KeyframeSampler { transcoder, latest }
    }

    /// Offers a keyframe for decoding (never blocks; dropped if ffmpeg is busy).
    pub fn offer(&self, keyframe: &Frame) {
        debug_assert!(keyframe.keyframe);
        let _ = self.transcoder.push(keyframe);
    }

    /// The newest thumbnail JPEG not taken yet, with its keyframe's sequence number.
    pub fn take(&self) -> Option<(u64, Bytes)> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The ffmpeg process running now, if any (tests check it is reaped).
    pub fn ffmpeg_pid(&self) -> Option<u32> {
        self.transcoder.ffmpeg_pid()
    }
}
