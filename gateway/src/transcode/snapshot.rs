//! Snapshots of a passthrough stream without a running transcoder: decode the frames since
//! the last keyframe (the hub's GOP) with a one-shot ffmpeg and return the last picture as
//! a JPEG.
//!
//! The whole GOP is written to ffmpeg's stdin in Annex B form (parameter sets before the
//! keyframe, [`super::annexb`]) while stdout is read concurrently (a large GOP cannot
//! deadlock on a full pipe). ffmpeg decodes every frame but encodes only the last ones:
//! `-vf select=gte(n\,N-3)` keeps the final three pictures (a margin in case the decoder
//! drops a corrupt one), and the last JPEG out is the answer. Decoding is needed anyway
//! (P-frames depend on the keyframe), JPEG encoding is what the filter saves.
//!
//! Invariants: a [`SnapshotError`] for every failure, never a panic; the whole run is
//! bounded by [`SnapshotOptions::timeout`], after which ffmpeg is killed and reaped; if the
//! future is dropped early, the child is killed (`kill_on_drop`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use camgate_ffmpeg_mjpeg::splitter::{DEFAULT_MAX_FRAME, JpegSplitter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::annexb::{AnnexBError, AnnexBWriter};
use super::process::Ffmpeg;
use crate::hub::{Codec, Frame, VideoConfig};

/// How to take a snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// JPEG quality, ffmpeg's `-q:v`.
    pub quality: u8,
    /// The longest a snapshot may take, start to end.
    pub timeout: Duration,
    /// Names the stream in log lines.
    pub label: String,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            ffmpeg: PathBuf::from("ffmpeg"),
            quality: 5,
            timeout: Duration::from_secs(5),
            label: String::new(),
        }
    }
}

/// Why no snapshot could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// No frames (the stream has not sent a keyframe yet).
    #[error("no frames to decode")]
    Empty,
    /// The first frame is not a keyframe: nothing can be decoded.
    #[error("the frames do not start at a keyframe")]
    NoKeyframe,
    /// JPEG frames (a snapshot of those is the frame itself) or mixed codecs.
    #[error("not one H.264/H.265 stream")]
    NotVideo,
    /// A video frame without its decoder configuration.
    #[error("a video frame without its decoder configuration")]
    NoConfig,
    /// Malformed frames or configuration.
    #[error("malformed input: {0}")]
    Input(#[from] AnnexBError),
    /// ffmpeg could not be started.
    #[error("cannot start {program}: {message}")]
    Spawn {
        /// The program.
        program: String,
        /// The operating system's reason.
        message: String,
    },
    /// ffmpeg did not finish in time (it was killed).
    #[error("no picture within {0:?}")]
    Timeout(Duration),
    /// ffmpeg finished without a picture.
    #[error("ffmpeg decoded no picture{}", .0.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    NoPicture(Option<String>),
}

/// The last picture of `frames` (a GOP: keyframe first) as a JPEG, with default options.
pub async fn snapshot_from_gop(frames: &[Frame]) -> Result<Bytes, SnapshotError> {
    snapshot_with(frames, &SnapshotOptions::default()).await
}

/// The last picture of `frames` (a GOP: keyframe first) as a JPEG.
pub async fn snapshot_with(
    frames: &[Frame],
    options: &SnapshotOptions,
) -> Result<Bytes, SnapshotError> {
    let (codec, stream) = annex_b(frames)?;
    let args = ffmpeg_args(codec, options.quality, frames.len());
    let mut ffmpeg = Ffmpeg::spawn(&options.ffmpeg, &args, &options.label).map_err(|e| {
        SnapshotError::Spawn {
            program: options.ffmpeg.display().to_string(),
            message: e.to_string(),
        }
    })?;
    let (Some(mut stdin), Some(mut stdout)) = (ffmpeg.stdin.take(), ffmpeg.stdout.take()) else {
        let (_, message) = ffmpeg.kill().await;
        return Err(SnapshotError::NoPicture(message));
    };
    let work = async move {
        let write = async move {
            // A write error means ffmpeg gave up; its stderr says why.
            let _ = stdin.write_all(&stream).await;
        };
        let read = async move {
            let mut splitter = JpegSplitter::new(DEFAULT_MAX_FRAME);
            let mut last = None;
            let mut chunk = vec![0u8; 64 * 1024];
            while let Ok(n @ 1..) = stdout.read(&mut chunk).await {
                splitter.push(&chunk[..n], |jpeg| {
                    last = Some(Bytes::copy_from_slice(jpeg.jpeg));
                });
            }
            last
        };
        tokio::join!(write, read).1
    };
    match tokio::time::timeout(options.timeout, work).await {
        Ok(last) => {
            let (_, message) = ffmpeg.wait().await;
            last.ok_or(SnapshotError::NoPicture(message))
        }
        Err(_) => {
            let _ = ffmpeg.kill().await;
            Err(SnapshotError::Timeout(options.timeout))
        }
    }
}

/// The GOP as one Annex B stream (parameter sets before every keyframe).
fn annex_b(frames: &[Frame]) -> Result<(Codec, Vec<u8>), SnapshotError> {
    let first = frames.first().ok_or(SnapshotError::Empty)?;
    if !first.codec.is_video() {
        return Err(SnapshotError::NotVideo);
    }
    if !first.keyframe {
        return Err(SnapshotError::NoKeyframe);
    }
    let mut out = Vec::with_capacity(frames.iter().map(|f| f.data.len() + 64).sum());
    let mut current: Option<(Arc<VideoConfig>, AnnexBWriter)> = None;
    for frame in frames {
        if frame.codec != first.codec {
            return Err(SnapshotError::NotVideo);
        }
        let config = frame.config.as_ref().ok_or(SnapshotError::NoConfig)?;
        if current
            .as_ref()
            .is_none_or(|(c, _)| !Arc::ptr_eq(c, config))
        {
            current = Some((Arc::clone(config), AnnexBWriter::new(config)?));
        }
        if let Some((_, writer)) = &current {
            writer.write(&frame.data, frame.keyframe, &mut out)?;
        }
    }
    Ok((first.codec, out))
}

/// Decode everything, encode only the last three pictures (see the module docs).
fn ffmpeg_args(codec: Codec, quality: u8, frames: usize) -> Vec<OsString> {
    let format = if codec == Codec::H265 { "hevc" } else { "h264" };
    let select = format!("select=gte(n\\,{})", frames.saturating_sub(3));
    let quality = quality.clamp(2, 31).to_string();
    [
        "-hide_banner",
        "-loglevel",
        "level+error",
        "-nostats",
        "-f",
        format,
        "-i",
        "pipe:0",
        "-an",
        "-vf",
        &select,
        "-fps_mode",
        "passthrough",
        "-c:v",
        "mjpeg",
        "-q:v",
        &quality,
        "-f",
        "image2pipe",
        "pipe:1",
    ]
    .iter()
    .map(OsString::from)
    .collect()
}
