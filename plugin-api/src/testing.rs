//! A stand-in host for plugin unit tests: [`TestHost`] hands out a real [`Host`] whose
//! callbacks record what the plugin sends and answer frames with scripted statuses.
//!
//! It goes through the same C callbacks the gateway provides (the same `Host` code, the
//! same status mapping), so a test of "what does my producer do when the host answers
//! `STATUS_ERROR`, then `STATUS_OK`?" needs neither the gateway nor `unsafe` in the
//! plugin's crate.
//!
//! Invariant: the recorder behind the callbacks' `ctx` lives as long as the longest-lived
//! [`Host`] clone or [`TestHost`] (each holds an `Arc` of it), so no callback can reach
//! freed memory.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::{self, FrameRef, HostCallbacks, StrRef};
use crate::plugin::{Host, LogLevel, SourceState};

/// One call of the frame callback, as the test host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFrame {
    /// The JPEG bytes (copied).
    pub jpeg: Vec<u8>,
    /// Width as sent.
    pub width: u32,
    /// Height as sent.
    pub height: u32,
    /// The status the test host answered (`abi::STATUS_*`).
    pub status: i32,
}

#[derive(Default)]
struct Recorder {
    frames: Mutex<Vec<RecordedFrame>>,
    states: Mutex<Vec<(SourceState, String)>>,
    logs: Mutex<Vec<(LogLevel, String)>>,
    /// Statuses for the next frames, in order; `STATUS_OK` once empty.
    script: Mutex<VecDeque<i32>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A host for unit tests. Cheap to create; every [`Host`] it hands out reports to it.
#[derive(Clone, Default)]
pub struct TestHost {
    recorder: Arc<Recorder>,
}

impl TestHost {
    /// A host that accepts every frame until told otherwise.
    pub fn new() -> Self {
        TestHost::default()
    }

    /// Answers the next frames with `statuses` (one per frame, in order), then `STATUS_OK`.
    pub fn answer_frames_with(&self, statuses: impl IntoIterator<Item = i32>) {
        lock(&self.recorder.script).extend(statuses);
    }

    /// A [`Host`] handle whose callbacks report to this test host.
    pub fn host(&self) -> Host {
        let callbacks = HostCallbacks {
            size: std::mem::size_of::<HostCallbacks>(),
            ctx: Arc::as_ptr(&self.recorder) as *mut c_void,
            on_frame,
            on_state,
            on_log,
        };
        Host::with_owner(callbacks, Some(Box::new(Arc::clone(&self.recorder))))
    }

    /// Every frame the plugin sent, with the answer it got.
    pub fn frames(&self) -> Vec<RecordedFrame> {
        lock(&self.recorder.frames).clone()
    }

    /// Every state the plugin reported.
    pub fn states(&self) -> Vec<(SourceState, String)> {
        lock(&self.recorder.states).clone()
    }

    /// Every line the plugin logged.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        lock(&self.recorder.logs).clone()
    }
}

/// # Safety
/// `ctx` must be the recorder pointer of a live [`TestHost`] (kept alive by the `Host`).
unsafe fn recorder<'a>(ctx: *mut c_void) -> &'a Recorder {
    // SAFETY: guaranteed by the caller.
    unsafe { &*(ctx as *const Recorder) }
}

extern "C" fn on_frame(ctx: *mut c_void, frame: *const FrameRef<'_>) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the recorder the calling `Host` keeps alive; `frame` is the
        // `Host`'s own, whole `FrameRef`, valid for this call.
        let (recorder, frame) = unsafe { (recorder(ctx), &*frame) };
        let status = lock(&recorder.script).pop_front().unwrap_or(abi::STATUS_OK);
        lock(&recorder.frames).push(RecordedFrame {
            // SAFETY: the JPEG is borrowed for this call; it is copied here.
            jpeg: unsafe { frame.jpeg.as_slice() }.to_vec(),
            width: frame.width,
            height: frame.height,
            status,
        });
        status
    }))
    .unwrap_or(abi::STATUS_ERROR)
}

extern "C" fn on_state(ctx: *mut c_void, state: u32, message: StrRef<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `on_frame`; the message is borrowed for this call.
        let (recorder, message) = unsafe { (recorder(ctx), message.to_string_lossy()) };
        if let Some(state) = SourceState::from_abi(state) {
            lock(&recorder.states).push((state, message));
        }
    }));
}

extern "C" fn on_log(ctx: *mut c_void, level: u32, message: StrRef<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `on_frame`; the message is borrowed for this call.
        let (recorder, message) = unsafe { (recorder(ctx), message.to_string_lossy()) };
        lock(&recorder.logs).push((LogLevel::from_abi(level), message));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{Frame, SendError};

    fn frame() -> Frame<'static> {
        Frame {
            jpeg: &[0xFF, 0xD8, 0xFF, 0xD9],
            width: 2,
            height: 1,
            captured_at: std::time::SystemTime::now(),
        }
    }

    #[test]
    fn a_host_error_is_not_closed_and_later_frames_still_go_through() {
        let test = TestHost::new();
        test.answer_frames_with([abi::STATUS_ERROR, abi::STATUS_ABI_MISMATCH]);
        let host = test.host();
        let first = host.send_frame(&frame()).unwrap_err();
        assert_eq!(
            first,
            SendError::Rejected {
                status: abi::STATUS_ERROR
            }
        );
        assert!(!first.is_closed());
        assert!(!host.send_frame(&frame()).unwrap_err().is_closed());
        assert_eq!(host.send_frame(&frame()), Ok(()));
        assert_eq!(test.frames().len(), 3);
        assert_eq!(test.frames()[2].jpeg, frame().jpeg);
    }

    #[test]
    fn closed_means_closed_and_the_old_pattern_still_compiles() {
        let test = TestHost::new();
        test.answer_frames_with([abi::STATUS_CLOSED]);
        let host = test.host();
        // Code written against the 0.1 API matched `Err(Closed)`; it keeps its meaning.
        use crate::Closed;
        assert!(matches!(host.send_frame(&frame()), Err(Closed)));
        // After the gate closes, nothing reaches the host and every call says Closed.
        host.close();
        assert_eq!(host.send_frame(&frame()), Err(SendError::Closed));
        host.set_state(SourceState::Live, "");
        assert_eq!(test.frames().len(), 1);
        assert!(test.states().is_empty());
    }

    #[test]
    fn states_and_logs_are_recorded() {
        let test = TestHost::new();
        let host = test.host();
        host.set_state(SourceState::Retrying, "cable cut");
        host.log(LogLevel::Warn, "hello");
        drop(host);
        assert_eq!(
            test.states(),
            vec![(SourceState::Retrying, "cable cut".to_owned())]
        );
        assert_eq!(test.logs(), vec![(LogLevel::Warn, "hello".to_owned())]);
    }
}
