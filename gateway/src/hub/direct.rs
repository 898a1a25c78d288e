//! Direct fan-out: the hub's fan-out task hands each new frame straight to the viewers that
//! are ready for it, instead of waking one task per viewer.
//!
//! Why: at hundreds of viewers, waking every viewer's task for every frame (and each task
//! re-arming its wake-ups) was a sixth of the gateway's CPU and, worse, spread the moment
//! a frame reaches the last viewer over the run queues of a busy machine. A viewer whose
//! socket is idle needs no task to take a frame: one non-blocking write does it.
//!
//! Invariants:
//! - The hub knows nothing of sockets: a transport registers a [`DirectViewer`] and decides
//!   in [`DirectViewer::offer`] whether it can take the frame now, without blocking; if it
//!   cannot, it wakes its own task, which takes over (the watch channel still holds the
//!   latest frame, so nothing is lost and latest-frame-wins still holds).
//! - Offers run on the gateway's runtime (the hub's fan-out task, `fanout.rs`), never on a
//!   source's thread, in publication order, after the frame is in the hub's `watch` (a
//!   viewer that looks there after declining an offer finds it).
//! - The list is copied on attach and detach (rare) and read without a lock during a pass
//!   (every frame), so viewers joining or leaving never wait for a pass.
//! - A pass over many viewers is split into one part per core, each a task on the runtime;
//!   the pass ends when all parts are done, so passes never overlap and each viewer sees
//!   frames in order. Parts give way to other tasks between offers (tokio's cooperative
//!   budget), so a long pass never holds a worker thread for its whole length.
//! - A panicking offer is contained: the pass catches it, carries on with the other
//!   viewers and reports the viewer, which the hub detaches and abandons.

use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock, RwLock};

use super::frame::Frame;
use super::stream_hub::Hub;

/// Viewers per part of a pass, at least. Below twice this a pass runs as one part: a part
/// costs a task spawn and a wake-up, a viewer about ten microseconds to write.
const VIEWERS_PER_PART: usize = 128;

/// A viewer that may take frames directly from the hub's fan-out.
pub trait DirectViewer: Send + Sync {
    /// Offered every frame the hub publishes, on a gateway thread, in order. Must not block
    /// or wait: it either takes the frame at once or leaves it to its own task.
    fn offer(&self, frame: &Frame);

    /// Called once after an [`offer`](DirectViewer::offer) panicked: the hub has detached
    /// the viewer, whose state is now suspect; it should end (e.g. drop its connection).
    fn abandon(&self) {}
}

/// A handle to an attached direct viewer.
pub(super) type Attached = Arc<dyn DirectViewer>;

/// The hub's directly-served viewers.
#[derive(Default)]
pub(super) struct DirectViewers {
    list: RwLock<Arc<[Attached]>>,
}

impl DirectViewers {
    fn snapshot(&self) -> Arc<[Attached]> {
        Arc::clone(&self.list.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn replace(&self, edit: impl FnOnce(&[Attached]) -> Vec<Attached>) {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        *list = edit(&list).into();
    }

    /// Offers `frame` to every attached viewer, in up to one part per core. Returns the
    /// viewers whose offer panicked.
    pub(super) async fn pass(&self, frame: &Frame) -> Vec<Attached> {
        let list = self.snapshot();
        let parts = parts_for(list.len(), cores());
        if parts <= 1 {
            return offer_all(&list, frame).await;
        }
        let size = list.len().div_ceil(parts);
        let others: Vec<_> = (1..parts)
            .map(|part| {
                let (list, frame) = (Arc::clone(&list), frame.clone());
                tokio::spawn(async move {
                    let end = ((part + 1) * size).min(list.len());
                    offer_all(&list[part * size..end], &frame).await
                })
            })
            .collect();
        let mut failed = offer_all(&list[..size], frame).await;
        for part in others {
            // A part fails only when the runtime shuts down under it.
            failed.extend(part.await.unwrap_or_default());
        }
        failed
    }

    /// How many viewers are attached.
    pub(super) fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub(super) fn attach(&self, viewer: Attached) {
        self.replace(|list| list.iter().cloned().chain([viewer]).collect());
    }

    pub(super) fn detach(&self, viewer: &Attached) {
        self.replace(|list| list.iter().filter(|v| !same(v, viewer)).cloned().collect());
    }
}

/// Offers `frame` to each of `viewers` in turn; returns those whose offer panicked.
async fn offer_all(viewers: &[Attached], frame: &Frame) -> Vec<Attached> {
    let mut failed = Vec::new();
    for viewer in viewers {
        if catch_unwind(AssertUnwindSafe(|| viewer.offer(frame))).is_err() {
            failed.push(Arc::clone(viewer));
        }
        // Lets other tasks run once this task has used its budget (every 128 offers).
        tokio::task::coop::consume_budget().await;
    }
    failed
}

/// How many parts a pass over `viewers` is split into on `cores` cores.
fn parts_for(viewers: usize, cores: usize) -> usize {
    (viewers / VIEWERS_PER_PART).clamp(1, cores.max(1))
}

/// The cores this process may use (asked once).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
}

/// Whether two handles are the same viewer (compares the data pointers only: the same
/// object can be reached through different vtables).
fn same(a: &Attached, b: &Attached) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

/// Keeps a viewer attached to a hub's direct fan-out; dropping it detaches the viewer
/// (a pass already running may still offer it one frame).
pub struct DirectAttachment {
    hub: Arc<Hub>,
    viewer: Attached,
}

impl DirectAttachment {
    pub(super) fn new(hub: Arc<Hub>, viewer: Attached) -> Self {
        hub.direct_viewers().attach(Arc::clone(&viewer));
        DirectAttachment { hub, viewer }
    }
}

impl Drop for DirectAttachment {
    fn drop(&mut self) {
        self.hub.direct_viewers().detach(&self.viewer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<u64>>);

    impl DirectViewer for Recorder {
        fn offer(&self, frame: &Frame) {
            self.0.lock().unwrap().push(frame.seq);
        }
    }

    struct Panicker;

    impl DirectViewer for Panicker {
        fn offer(&self, _: &Frame) {
            panic!("a broken viewer");
        }
    }

    fn frame(seq: u64) -> Frame {
        Frame::for_test(seq, bytes::Bytes::new())
    }

    #[test]
    fn large_passes_are_split_over_the_cores_small_ones_are_not() {
        assert_eq!(parts_for(0, 2), 1);
        assert_eq!(parts_for(255, 2), 1);
        assert_eq!(parts_for(256, 2), 2);
        assert_eq!(parts_for(1000, 2), 2);
        assert_eq!(parts_for(1000, 4), 4);
        assert_eq!(parts_for(1000, 0), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_split_pass_reaches_every_viewer_once() {
        let viewers = DirectViewers::default();
        let all: Vec<Arc<Recorder>> = (0..3 * VIEWERS_PER_PART + 7)
            .map(|_| Arc::new(Recorder::default()))
            .collect();
        for viewer in &all {
            viewers.attach(viewer.clone());
        }
        for seq in 1..=3 {
            assert!(viewers.pass(&frame(seq)).await.is_empty());
        }
        for viewer in &all {
            assert_eq!(*viewer.0.lock().unwrap(), [1, 2, 3]);
        }
    }

    #[tokio::test]
    async fn attached_viewers_get_every_offer_in_order_until_detached() {
        let viewers = DirectViewers::default();
        let a = Arc::new(Recorder::default());
        let b = Arc::new(Recorder::default());
        let (a_dyn, b_dyn): (Attached, Attached) = (a.clone(), b.clone());
        viewers.attach(Arc::clone(&a_dyn));
        viewers.pass(&frame(1)).await;
        viewers.attach(Arc::clone(&b_dyn));
        viewers.pass(&frame(2)).await;
        viewers.detach(&a_dyn);
        viewers.pass(&frame(3)).await;
        assert_eq!(*a.0.lock().unwrap(), [1, 2]);
        assert_eq!(*b.0.lock().unwrap(), [2, 3]);
        assert_eq!(viewers.len(), 1);
        viewers.detach(&b_dyn);
        assert_eq!(viewers.len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_offer_is_reported_and_the_others_still_get_the_frame() {
        let viewers = DirectViewers::default();
        let before: Vec<Arc<Recorder>> = (0..VIEWERS_PER_PART * 2)
            .map(|_| Arc::new(Recorder::default()))
            .collect();
        for viewer in &before {
            viewers.attach(viewer.clone());
        }
        let broken: Attached = Arc::new(Panicker);
        viewers.attach(Arc::clone(&broken));
        let after = Arc::new(Recorder::default());
        viewers.attach(after.clone());

        let failed = viewers.pass(&frame(1)).await;
        assert_eq!(failed.len(), 1);
        assert!(same(&failed[0], &broken));
        for viewer in before.iter().chain([&after]) {
            assert_eq!(*viewer.0.lock().unwrap(), [1]);
        }
    }
}
