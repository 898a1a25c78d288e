//! Direct fan-out: the publisher hands each new frame straight to the viewers that are
//! ready for it, instead of waking one task per viewer.
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
//! - Offers arrive on the publisher's thread, in publication order, after the frame is in
//!   the hub's `watch` (a viewer that looks there after declining an offer finds it).
//! - The list is copied on attach and detach (rare) and read without a lock during a pass
//!   (every frame), so viewers joining or leaving never wait for a pass.
//! - A pass over many viewers is split over the machine's cores: the publisher takes the
//!   first part and one scoped thread per core takes each other part; the pass ends when
//!   all parts are done, so passes never overlap and each viewer sees frames in order.

use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock, RwLock};

use super::frame::Frame;
use super::stream_hub::Hub;

/// Viewers per part of a pass, at least. Below twice this a pass runs on the publisher's
/// thread alone: a thread costs tens of microseconds to start, a viewer about ten to write.
const VIEWERS_PER_PART: usize = 128;

/// A viewer that may take frames directly from the publisher.
pub trait DirectViewer: Send + Sync {
    /// Offered every frame the hub publishes, on the publisher's thread, in order. Must
    /// not block or wait: it either takes the frame at once or leaves it to its own task.
    fn offer(&self, frame: &Frame);
}

/// The hub's directly-served viewers.
#[derive(Default)]
pub(super) struct DirectViewers {
    list: RwLock<Arc<[Arc<dyn DirectViewer>]>>,
}

impl DirectViewers {
    fn snapshot(&self) -> Arc<[Arc<dyn DirectViewer>]> {
        Arc::clone(&self.list.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn replace(&self, edit: impl FnOnce(&[Arc<dyn DirectViewer>]) -> Vec<Arc<dyn DirectViewer>>) {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        *list = edit(&list).into();
    }

    /// Offers `frame` to every attached viewer, over up to one thread per core.
    pub(super) fn offer(&self, frame: &Frame) {
        let list = self.snapshot();
        let parts = parts_for(list.len(), cores());
        if parts <= 1 {
            offer_all(&list, frame);
            return;
        }
        let mut chunks = list.chunks(list.len().div_ceil(parts));
        let first = chunks.next().unwrap_or_default();
        std::thread::scope(|scope| {
            for chunk in chunks {
                let spawned = std::thread::Builder::new()
                    .name("camgate-fanout".into())
                    .spawn_scoped(scope, move || offer_all(chunk, frame));
                if spawned.is_err() {
                    // Out of threads: the publisher does this part too.
                    offer_all(chunk, frame);
                }
            }
            offer_all(first, frame);
        });
    }

    /// How many viewers are attached.
    pub(super) fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub(super) fn attach(&self, viewer: Arc<dyn DirectViewer>) {
        self.replace(|list| list.iter().cloned().chain([viewer]).collect());
    }

    pub(super) fn detach(&self, viewer: &Arc<dyn DirectViewer>) {
        self.replace(|list| list.iter().filter(|v| !same(v, viewer)).cloned().collect());
    }
}

fn offer_all(viewers: &[Arc<dyn DirectViewer>], frame: &Frame) {
    for viewer in viewers {
        viewer.offer(frame);
    }
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
fn same(a: &Arc<dyn DirectViewer>, b: &Arc<dyn DirectViewer>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

/// Keeps a viewer attached to a hub's direct fan-out; dropping it detaches the viewer
/// (a pass already running may still offer it one frame).
pub struct DirectAttachment {
    hub: Arc<Hub>,
    viewer: Arc<dyn DirectViewer>,
}

impl DirectAttachment {
    pub(super) fn new(hub: Arc<Hub>, viewer: Arc<dyn DirectViewer>) -> Self {
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

    #[test]
    fn a_split_pass_reaches_every_viewer_once() {
        let viewers = DirectViewers::default();
        let all: Vec<Arc<Recorder>> = (0..3 * VIEWERS_PER_PART + 7)
            .map(|_| Arc::new(Recorder::default()))
            .collect();
        for viewer in &all {
            viewers.attach(viewer.clone());
        }
        for seq in 1..=3 {
            viewers.offer(&frame(seq));
        }
        for viewer in &all {
            assert_eq!(*viewer.0.lock().unwrap(), [1, 2, 3]);
        }
    }

    #[test]
    fn attached_viewers_get_every_offer_in_order_until_detached() {
        let viewers = DirectViewers::default();
        let a = Arc::new(Recorder::default());
        let b = Arc::new(Recorder::default());
        let (a_dyn, b_dyn): (Arc<dyn DirectViewer>, Arc<dyn DirectViewer>) = (a.clone(), b.clone());
        viewers.attach(Arc::clone(&a_dyn));
        viewers.offer(&frame(1));
        viewers.attach(Arc::clone(&b_dyn));
        viewers.offer(&frame(2));
        viewers.detach(&a_dyn);
        viewers.offer(&frame(3));
        assert_eq!(*a.0.lock().unwrap(), [1, 2]);
        assert_eq!(*b.0.lock().unwrap(), [2, 3]);
        assert_eq!(viewers.len(), 1);
        viewers.detach(&b_dyn);
        assert_eq!(viewers.len(), 0);
    }
}
