//! What the hub needs from a source, and the sink through which a source publishes.
//!
//! The hub defines these traits so that it depends on nothing above it; the plugin host
//! implements them. A [`FrameSink`] is bound to one *generation* of a hub's source: after a
//! source is stopped or replaced, its sink silently refuses frames and states, so a late
//! callback can never show an old source's picture or state.

use std::sync::Weak;

use super::stream_hub::{Hub, StreamState, VideoIn};

/// Starts sources for one stream. Held by the hub; replaced when the stream's configuration
/// changes.
pub trait SourceFactory: Send + Sync {
    /// Creates and starts a source that publishes into `sink`. May block briefly (the hub
    /// calls it on a blocking thread). The error text is shown to operators and viewers: it
    /// must not contain secrets.
    fn start(&self, sink: FrameSink) -> Result<Box<dyn RunningSource>, String>;

    /// A short description for status pages (e.g. the plugin name).
    fn describe(&self) -> String;
}

/// A started source.
pub trait RunningSource: Send {
    /// Stops the source: blocking; after it returns the source publishes nothing more.
    fn stop(self: Box<Self>);
}

/// The publishing end a source writes into. Cheap to clone; safe from any thread.
#[derive(Clone)]
pub struct FrameSink {
    hub: Weak<Hub>,
    generation: u64,
}

impl FrameSink {
    pub(super) fn new(hub: Weak<Hub>, generation: u64) -> Self {
        FrameSink { hub, generation }
    }

    /// Publishes one JPEG (copied once into a refcounted buffer shared by all viewers).
    /// Returns `false` when the sink is closed (the source was stopped or replaced, or the
    /// stream removed): the producer should stop.
    ///
    /// Safe from any thread, several at once (frames are numbered in the order they reach
    /// the hub). It costs the caller the copy and O(1) more, whatever the number of viewers:
    /// the hub's fan-out task delivers the frame on the gateway's threads (`fanout.rs`).
    pub fn publish(&self, jpeg: &[u8], width: u32, height: u32, captured_at_us: u64) -> bool {
        match self.hub.upgrade() {
            Some(hub) => hub.publish(self.generation, jpeg, width, height, captured_at_us),
            None => false,
        }
    }

    /// Publishes one H.264/H.265 access unit (copied once; see [`VideoIn`]). Returns
    /// `false` when the sink is closed. Safe from any thread; O(1) in the number of
    /// viewers. Frames from one source must come in decoding order: publish from one
    /// thread, or order them yourself.
    pub fn publish_video(&self, video: VideoIn<'_>) -> bool {
        match self.hub.upgrade() {
            Some(hub) => hub.publish_video(self.generation, video),
            None => false,
        }
    }

    /// Reports the source's state with a message for operators (no secrets).
    pub fn set_state(&self, state: StreamState, message: &str) {
        if let Some(hub) = self.hub.upgrade() {
            hub.source_state(self.generation, state, message);
        }
    }

    /// The stream this sink publishes into, for log context.
    pub fn stream_id(&self) -> String {
        self.hub
            .upgrade()
            .map(|hub| hub.id().to_owned())
            .unwrap_or_default()
    }
}
