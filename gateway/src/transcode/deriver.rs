//! The hub's JPEG deriver for passthrough streams (`hub::JpegDeriver`), made of a
//! [`Transcoder`]: the server sets one on every hub, the hub starts it while a JPEG
//! consumer exists and feeds it from its GOP.
//!
//! Invariants: each JPEG goes to the hub with the capture time of the frame it shows; when
//! the hub refuses one (the source it was started for has stopped), later ones are not
//! offered either — the hub drops this deriver and starts another for the new source.
//! The transcoder's tasks run on the runtime the deriver was made on (the gateway's I/O
//! runtime), not on the one that starts it: the hub starts derivers on its fan-out task,
//! and the binary's fan-out runtime has no I/O or timer driver
//! (`scheduling::fanout_runtime`), on which spawning ffmpeg would panic.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::mjpeg::{RunningCount, Transcoder, TranscoderOptions};
use crate::hub::{DerivedSink, Deriving, Frame, JpegDeriver};

/// Makes JPEGs of one stream with ffmpeg.
#[derive(Debug, Clone)]
pub struct FfmpegDeriver {
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// JPEG quality (`-q:v`).
    pub quality: u8,
    /// The stream id, for log lines.
    pub label: String,
    /// Where the transcoder's tasks run (ffmpeg's pipes need an I/O driver); `None`: on
    /// the runtime that starts it.
    pub runtime: Option<tokio::runtime::Handle>,
}

impl FfmpegDeriver {
    /// A deriver for stream `label` with the default ffmpeg and quality, whose
    /// transcoders run on the calling runtime (if any).
    pub fn new(label: &str) -> Self {
        let defaults = TranscoderOptions::default();
        FfmpegDeriver {
            ffmpeg: defaults.ffmpeg,
            quality: defaults.quality,
            label: label.to_owned(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }
}

/// A running [`FfmpegDeriver`].
struct Running {
    transcoder: Transcoder,
    alive: RunningCount,
}

impl JpegDeriver for FfmpegDeriver {
    fn start(&self, sink: DerivedSink) -> Box<dyn Deriving> {
        let alive = RunningCount::default();
        let options = TranscoderOptions {
            ffmpeg: self.ffmpeg.clone(),
            quality: self.quality,
            label: self.label.clone(),
            running: alive.clone(),
            ..TranscoderOptions::default()
        };
        let refused = Arc::new(AtomicBool::new(false));
        let _on_runtime = self.runtime.as_ref().map(tokio::runtime::Handle::enter);
        let transcoder = Transcoder::start(options, move |jpeg| {
            if !refused.load(Ordering::Relaxed)
                && !sink.publish(&jpeg.jpeg, jpeg.width, jpeg.height, jpeg.captured_at_us)
            {
                refused.store(true, Ordering::Relaxed);
            }
        });
        Box::new(Running { transcoder, alive })
    }
}

impl Deriving for Running {
    fn push(&mut self, frame: &Frame) {
        self.transcoder.push(frame);
    }

    fn running(&self) -> usize {
        self.alive.get()
    }
}
