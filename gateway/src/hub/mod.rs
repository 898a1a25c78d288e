//! Per-stream broadcast hubs and the registry that maps stream ids to them.
//!
//! The hub is the centre of the data flow: one source publishes into it through a
//! [`FrameSink`]; any number of viewers read from it. It knows nothing of HTTP or plugins:
//! it defines the traits it needs ([`SourceFactory`], [`RunningSource`]) and the server wires
//! a plugin-backed factory in. A frame walks plugin thread → sink → hand-off slot → the hub's
//! fan-out task → viewer task → socket and never comes back; a viewer whose socket keeps up
//! gets it from the fan-out task directly, without its own task waking (`direct.rs`). The
//! source's thread only numbers the frame and wakes that task (`fanout.rs`), so its cost
//! does not grow with the viewers.
//!
//! Invariants:
//! - At most one running source per hub, started by the first viewer (or at creation for an
//!   always-on stream) and stopped by the reaper, a restart or removal — all under one lock,
//!   so two sources for one stream cannot exist.
//! - Fan-out is zero-copy and latest-frame-wins: a frame is one refcounted buffer shared by
//!   every viewer; a viewer that falls behind sees only the newest frame and counts the
//!   sequence numbers it skipped. Memory per viewer is one buffer reference.
//! - Video (H.264/H.265) is latest-GOP-wins instead (`gop.rs`): a viewer gets every frame in
//!   order from a keyframe, and one that falls behind skips to the next keyframe. JPEGs of
//!   a video stream are derived only while someone needs them (`derive.rs`).
//! - One picture stream per hub: a stream's low-resolution `sub` variant is a hub of its own
//!   (`variant.rs`), kept next to the main one by the registry.

pub mod codec_config;
mod derive;
mod derived;
mod direct;
mod fanout;
mod frame;
mod gop;
mod health;
mod outage;
mod registry;
#[cfg(test)]
mod retry_tests;
mod source;
mod stream_hub;
mod tag;
mod variant;

pub use derive::{DerivedSink, Deriving, JpegDemand, JpegDeriver};
pub use derived::Derived;
pub use direct::{DirectAttachment, DirectViewer};
pub use frame::{Codec, Frame, VideoConfig};
pub use gop::{Catchup, Cursor, MAX_GOP_BYTES, MAX_GOP_US, MAX_VIEWER_LAG_US};
pub use health::{HealthRules, HealthStatus, PictureHealth};
pub use outage::{OutageCause, outage_cause};
pub use registry::Registry;
pub use source::{FrameSink, MediaIn, MediaRefused, RunningSource, SourceFactory};
pub use stream_hub::{
    Closing, Hub, InputRate, NotRunning, StreamInfo, StreamState, StreamStatus, VideoIn, Viewer,
    ViewerReservation, unix_micros,
};
pub use tag::{FrameTag, TAG_LEN, read_tag};
pub use variant::{BadVariant, Variant};

/// Resolves when a `watch<bool>` flag turns true (or its sender is gone). Unlike
/// `wait_for`, the future holds no borrow of the value, so it is `Send` in `select!`.
pub async fn turned_true(flag: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = flag.wait_for(|value| *value).await.map(|_| ());
}
