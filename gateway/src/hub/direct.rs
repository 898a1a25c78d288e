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

use std::sync::{Arc, RwLock};

use super::frame::Frame;
use super::stream_hub::Hub;

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

    /// Offers `frame` to every attached viewer.
    pub(super) fn offer(&self, frame: &Frame) {
        for viewer in self.snapshot().iter() {
            viewer.offer(frame);
        }
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
