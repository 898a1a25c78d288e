//! MJPEG derived on demand from a passthrough (H.264/H.265) stream, from the frames the hub
//! already has — never from a second session to the camera.
//!
//! - [`annexb`]: AVCC/HVCC access units + `avcC`/`hvcC` → the Annex B byte stream ffmpeg's
//!   raw demuxers read (strict on malformed input, fuzzed);
//! - [`Transcoder`] ([`mjpeg`]): one ffmpeg fed from the hub's frames on a bounded queue,
//!   one JPEG out per frame with the frame's capture time, started on demand at a keyframe
//!   and killed and reaped when stopped or dropped;
//! - [`FfmpegDeriver`]: the transcoder as the hub's `JpegDeriver`, which the hub runs
//!   while a stream has JPEG consumers (`hub/derive.rs`);
//! - [`snapshot_from_gop`] ([`snapshot`]): the last picture of a GOP as a JPEG, with a
//!   one-shot ffmpeg, so snapshots need no running transcoder;
//! - [`DerivedSubFactory`] ([`sub`]): a stream's derived `sub` variant, the source of its
//!   sub hub, fed from the main hub's frames (video or JPEG) through one transcoder.
//!
//! This module knows the hub (frames, and for [`sub`] the main hub it follows) and nothing of HTTP or plugins: whoever owns a
//! stream decides when a transcoder runs (while it has MJPEG consumers) and where its JPEGs
//! go. ffmpeg's stderr is logged through `tracing`, rate-limited, by the ffmpeg plugin's
//! parser ([`camgate_ffmpeg_mjpeg::stderr`]); its JPEG output is split by the plugin's
//! splitter ([`camgate_ffmpeg_mjpeg::splitter`]).

pub mod annexb;
mod deriver;
pub mod mjpeg;
mod pace;
mod process;
pub mod snapshot;
pub mod sub;

pub use annexb::{AnnexBError, AnnexBWriter};
pub use deriver::FfmpegDeriver;
pub use mjpeg::{
    Pushed, RunningCount, TranscodeError, TranscodedJpeg, Transcoder, TranscoderOptions,
    TranscoderState, TranscoderStats,
};
pub use snapshot::{SnapshotError, SnapshotOptions, snapshot_from_gop, snapshot_with};
pub use sub::DerivedSubFactory;
