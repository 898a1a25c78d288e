//! JPEG pictures derived from a video source, only while someone needs them.
//!
//! Why: a passthrough camera sends H.264/H.265, which browsers with a decoder play as is;
//! but an MJPEG client (`<img>`, VLC, Home Assistant), a viewer that asks for `mjpeg` or
//! cannot decode, still needs JPEGs. Transcoding costs a camera's worth of CPU, so it runs
//! only while such a consumer exists, fed from the hub (the camera never sees a second
//! session), and stops with the reaper after the stream's idle timeout without one.
//!
//! The hub defines what it needs ([`JpegDeriver`], [`Deriving`]) and knows nothing of how
//! JPEGs are made; the server wires an implementation in (`transcode::FfmpegDeriver`).
//!
//! Invariants:
//! - At most one deriver runs per hub. It starts on the fan-out task (a gateway thread)
//!   when the stream's native codec is video and at least one [`JpegDemand`] is held; it is
//!   fed there, in order, from the GOP (`gop.rs`), like a viewer that skips to the next
//!   keyframe when it falls behind.
//! - Its JPEGs enter the hub's JPEG track as frames do, through a [`DerivedSink`] bound to
//!   the source generation it was started for: a stopped or replaced source's pictures
//!   never reappear. They do not change the stream's state or its input figures.
//! - A stopped source stops its deriver; so does the reaper, once no demand has been held
//!   for the stream's idle timeout.

use std::sync::{Arc, Weak};

use super::frame::Frame;
use super::stream_hub::Hub;

/// Makes JPEG pictures from a video track (set on a hub by the server).
pub trait JpegDeriver: Send + Sync {
    /// Starts deriving: frames come through [`Deriving::push`] in decoding order (from a
    /// keyframe); pictures go to `sink`. Called on a gateway runtime thread.
    fn start(&self, sink: DerivedSink) -> Box<dyn Deriving>;
}

/// A running deriver. Dropping it stops it (and any process it runs).
pub trait Deriving: Send {
    /// Hands over the next frame; must not block (drop frames rather than wait).
    fn push(&mut self, frame: &Frame);

    /// Transcoding processes alive for it now (0 while waiting for a keyframe or after a
    /// failure), for the API's `transcoders`.
    fn running(&self) -> usize;
}

/// Where a deriver publishes its pictures: the hub's JPEG track, for one source generation.
#[derive(Clone)]
pub struct DerivedSink {
    hub: Weak<Hub>,
    generation: u64,
}

impl DerivedSink {
    pub(super) fn new(hub: Weak<Hub>, generation: u64) -> Self {
        DerivedSink { hub, generation }
    }

    /// Publishes one derived JPEG with the capture time of the frame it shows. `false`
    /// when the source it was derived for has stopped: the deriver should stop.
    pub fn publish(&self, jpeg: &[u8], width: u32, height: u32, captured_at_us: u64) -> bool {
        match self.hub.upgrade() {
            Some(hub) => hub.publish_derived(self.generation, jpeg, width, height, captured_at_us),
            None => false,
        }
    }
}

/// A consumer that needs JPEGs (an MJPEG client, a WebSocket viewer on `mjpeg`), held for
/// as long as it does. On a video stream, holding one makes the hub derive JPEGs.
pub struct JpegDemand {
    hub: Arc<Hub>,
}

impl JpegDemand {
    pub(super) fn new(hub: Arc<Hub>) -> Self {
        JpegDemand { hub }
    }
}

impl Drop for JpegDemand {
    fn drop(&mut self) {
        self.hub.release_jpeg_demand();
    }
}
