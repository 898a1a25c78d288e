//! The hand-off from a source's thread to the hub's fan-out task.
//!
//! Why: a source publishes from its own thread (a camera SDK's callback, the ffmpeg
//! reader), which has deadlines of its own and may not be ours to borrow. Publishing
//! therefore does O(1) work whatever the number of viewers: it numbers the frame, leaves it
//! in the hub's hand-off slot and wakes one gateway task. That task — one per hub, spawned
//! once, on the gateway's fan-out runtime (`camgate run` gives it threads of its own that
//! never preempt a source's thread, `scheduling.rs`) — puts the frame in the hub's
//! `watch` (waking the viewer tasks that wait there) and runs the direct pass
//! (`direct.rs`).
//!
//! Invariants:
//! - Latest frame wins at the hand-off too: the slot holds one frame; a frame published
//!   while the task is busy replaces one it has not taken yet, and the task takes the newest.
//! - Sequence numbers are given under the slot's lock, so with several publishing threads
//!   (the ABI allows callbacks from any thread) the slot only ever moves to higher numbers.
//! - The generation is checked under the slot's lock on publish and under the `watch`'s
//!   lock on delivery, and a source stop bumps it before clearing both, so a frame of a
//!   stopped source never reappears after the clear.
//! - The frame that turns a stream live (one per start or recovery) is the exception: the
//!   publisher puts it in the `watch` itself, before it announces `live`, so viewers are
//!   told the state before they see the frame. That once costs the publisher the wake-ups.
//! - The `watch` only moves to newer frames (checked under its lock), whoever delivers.
//! - The task holds the hub only while it delivers: a dropped hub wakes it and it ends.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use bytes::BytesMut;
use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::frame::{Codec, Frame};
use super::stream_hub::Hub;
use super::tag::set_seq;

/// A frame waiting for the fan-out task.
pub(super) struct Pending {
    /// The frame.
    pub frame: Frame,
    /// The source generation that published it.
    pub generation: u64,
}

#[derive(Default)]
struct Slot {
    /// The newest frame published (kept after the task took it: snapshots read it).
    latest: Option<Frame>,
    generation: u64,
    /// Whether the task has yet to take `latest`.
    pending: bool,
    last_seq: u64,
}

/// A frame's fields other than its bytes, as the publisher measured them.
pub(super) struct Unnumbered {
    /// The JPEG with its tag, sequence number not yet set.
    pub tagged: BytesMut,
    /// Capture time, µs since the Unix epoch.
    pub captured_at_us: u64,
    /// Publication time, µs since the Unix epoch.
    pub published_at_us: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// The slot between publishers and the fan-out task, and the task's wake-up.
pub(super) struct Handoff {
    slot: Mutex<Slot>,
    wake: Arc<Notify>,
    task: OnceLock<()>,
    /// The runtime the task runs on (`None`: the one that starts the source).
    runtime: Option<Handle>,
}

impl Handoff {
    /// A hand-off whose task will run on `runtime` (or the current one).
    pub(super) fn new(runtime: Option<Handle>) -> Self {
        Handoff {
            slot: Mutex::default(),
            wake: Arc::default(),
            task: OnceLock::new(),
            runtime,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns the hub's fan-out task, once per hub.
    pub(super) fn start(&self, hub: &Arc<Hub>) {
        self.task.get_or_init(|| {
            let task = run(Arc::downgrade(hub), Arc::clone(&self.wake));
            match &self.runtime {
                Some(runtime) => drop(runtime.spawn(task)),
                None => drop(tokio::spawn(task)),
            }
        });
    }

    /// Numbers the frame and makes it the latest, if `is_current(generation)` holds under
    /// the slot's lock; returns it, or `None` for a stale generation. With `for_task` the
    /// task is woken to deliver it; without, the caller delivers it (and an older frame the
    /// task has not taken yet is dropped: it would arrive after a newer one).
    pub(super) fn publish(
        &self,
        generation: u64,
        is_current: impl FnOnce(u64) -> bool,
        mut frame: Unnumbered,
        for_task: bool,
    ) -> Option<Frame> {
        let mut slot = self.lock();
        if !is_current(generation) {
            return None;
        }
        slot.last_seq += 1;
        set_seq(&mut frame.tagged, slot.last_seq);
        let frame = Frame {
            seq: slot.last_seq,
            captured_at_us: frame.captured_at_us,
            published_at_us: frame.published_at_us,
            width: frame.width,
            height: frame.height,
            codec: Codec::Jpeg,
            keyframe: true,
            config: None,
            data: frame.tagged.freeze(),
            derived: Arc::default(),
        };
        // A frame the task has not taken yet is replaced: latest frame wins.
        slot.pending = for_task;
        slot.generation = generation;
        slot.latest = Some(frame.clone());
        drop(slot);
        if for_task {
            self.wake.notify_one();
        }
        Some(frame)
    }

    /// Leaves `frames` sequence numbers out, if `is_current(generation)` holds under the
    /// slot's lock: the next frame follows a gap of that many (skipped upstream).
    pub(super) fn skip(&self, generation: u64, is_current: impl FnOnce(u64) -> bool, frames: u64) {
        let mut slot = self.lock();
        if is_current(generation) {
            slot.last_seq = slot.last_seq.saturating_add(frames);
        }
    }

    /// The frame the task should deliver next, if any.
    pub(super) fn take(&self) -> Option<Pending> {
        let mut slot = self.lock();
        if !std::mem::take(&mut slot.pending) {
            return None;
        }
        Some(Pending {
            frame: slot.latest.clone()?,
            generation: slot.generation,
        })
    }

    /// The newest frame published (and not cleared since).
    pub(super) fn latest(&self) -> Option<Frame> {
        self.lock().latest.clone()
    }

    /// Forgets the newest frame (its source stopped).
    pub(super) fn clear(&self) {
        let mut slot = self.lock();
        slot.latest = None;
        slot.pending = false;
    }

    /// Wakes the task without a JPEG frame (a video frame was kept; the task tells the
    /// viewers).
    pub(super) fn wake_task(&self) {
        self.wake.notify_one();
    }

    /// Lets the task see that its hub is gone.
    pub(super) fn hub_dropped(&self) {
        self.wake.notify_one();
    }
}

/// The fan-out task: delivers each frame left in the hub's slot, newest first, until the
/// hub is dropped.
async fn run(hub: Weak<Hub>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        hub.deliver_video();
        while let Some(pending) = hub.handoff().take() {
            hub.deliver(pending).await;
        }
    }
}
