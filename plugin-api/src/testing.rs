//! A stand-in host for plugin unit tests: [`TestHost`] hands out a real [`Host`] whose
//! callbacks record what the plugin sends (JPEG frames through `send_frame`, frames of any
//! codec through `send_media`) and answer frames with scripted statuses.
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

use crate::abi::{self, FrameRef, HostCallbacks, MediaFrameRef, StrRef};
use crate::plugin::{Codec, Host, LogLevel, SourceState};

/// One call of the frame callback, as the test host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFrame {
    /// The JPEG bytes (copied).
    pub jpeg: Vec<u8>,
    /// Width as sent.
    pub width: u32,
    /// Height as sent.
    pub height: u32,
    /// Capture time as sent, µs since the Unix epoch.
    pub capture_time_us: u64,
    /// The status the test host answered (`abi::STATUS_*`).
    pub status: i32,
}

/// What the plugin told the host, in order: frames (JPEG or media, by their index in
/// [`TestHost::frames`] / [`TestHost::media`]) and skips ([`Host::skipped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The `n`th call of `send_frame` (0-based).
    Frame(usize),
    /// The `n`th call of `send_media` (0-based).
    Media(usize),
    /// `on_skip` with this many frames.
    Skip(u64),
}

/// One call of the media callback ([`Host::send_media`]), as the test host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedMedia {
    /// The codec as sent (`None` for a code this crate does not know).
    pub codec: Option<Codec>,
    /// The keyframe flag as sent.
    pub keyframe: bool,
    /// The frame bytes (copied).
    pub data: Vec<u8>,
    /// The configuration record (copied), `None` when the plugin sent none.
    pub config: Option<Vec<u8>>,
    /// Width as sent.
    pub width: u32,
    /// Height as sent.
    pub height: u32,
    /// Capture time as sent, µs since the Unix epoch.
    pub capture_time_us: u64,
    /// The status the test host answered (`abi::STATUS_*`).
    pub status: i32,
}

#[derive(Default)]
struct Recorder {
    frames: Mutex<Vec<RecordedFrame>>,
    media: Mutex<Vec<RecordedMedia>>,
    states: Mutex<Vec<(SourceState, String)>>,
    logs: Mutex<Vec<(LogLevel, String)>>,
    events: Mutex<Vec<Event>>,
    /// Statuses for the next frames (of either callback), in order; `STATUS_OK` once empty.
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

    /// Answers the next frames with `statuses` (one per frame, in order, whether sent with
    /// `send_frame` or `send_media`), then `STATUS_OK`.
    pub fn answer_frames_with(&self, statuses: impl IntoIterator<Item = i32>) {
        lock(&self.recorder.script).extend(statuses);
    }

    /// A [`Host`] handle whose callbacks report to this test host.
    pub fn host(&self) -> Host {
        Host::with_owner(self.callbacks(), Some(Box::new(Arc::clone(&self.recorder))))
    }

    /// The callbacks a [`Host`] of this test host calls.
    fn callbacks(&self) -> HostCallbacks {
        HostCallbacks {
            size: std::mem::size_of::<HostCallbacks>(),
            ctx: Arc::as_ptr(&self.recorder) as *mut c_void,
            on_frame,
            on_state,
            on_log,
            on_media,
            on_skip: Some(on_skip),
        }
    }

    /// Every frame the plugin sent, with the answer it got.
    pub fn frames(&self) -> Vec<RecordedFrame> {
        lock(&self.recorder.frames).clone()
    }

    /// Every frame the plugin sent with `send_media`, with the answer it got.
    pub fn media(&self) -> Vec<RecordedMedia> {
        lock(&self.recorder.media).clone()
    }

    /// Frames and skips in the order the plugin sent them.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.recorder.events).clone()
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
        let mut frames = lock(&recorder.frames);
        lock(&recorder.events).push(Event::Frame(frames.len()));
        frames.push(RecordedFrame {
            // SAFETY: the JPEG is borrowed for this call; it is copied here.
            jpeg: unsafe { frame.jpeg.as_slice() }.to_vec(),
            width: frame.width,
            height: frame.height,
            capture_time_us: frame.capture_time_us,
            status,
        });
        status
    }))
    .unwrap_or(abi::STATUS_ERROR)
}

extern "C" fn on_media(ctx: *mut c_void, frame: *const MediaFrameRef<'_>) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `on_frame`: the `Host`'s own, whole `MediaFrameRef`.
        let (recorder, frame) = unsafe { (recorder(ctx), &*frame) };
        let status = lock(&recorder.script).pop_front().unwrap_or(abi::STATUS_OK);
        // SAFETY: both slices are borrowed for this call; they are copied here.
        let (data, config) = unsafe { (frame.data.as_slice(), frame.config.as_slice()) };
        let mut media = lock(&recorder.media);
        lock(&recorder.events).push(Event::Media(media.len()));
        media.push(RecordedMedia {
            codec: Codec::from_abi(frame.codec),
            keyframe: frame.flags & abi::MEDIA_KEYFRAME != 0,
            data: data.to_vec(),
            config: (!config.is_empty()).then(|| config.to_vec()),
            width: frame.width,
            height: frame.height,
            capture_time_us: frame.capture_time_us,
            status,
        });
        status
    }))
    .unwrap_or(abi::STATUS_ERROR)
}

extern "C" fn on_skip(ctx: *mut c_void, frames: u64) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `on_frame`.
        let recorder = unsafe { recorder(ctx) };
        lock(&recorder.events).push(Event::Skip(frames));
        abi::STATUS_OK
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
    use crate::plugin::{Frame, MediaFrame, SendError};

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
    fn media_frames_are_recorded_with_the_same_gate_and_statuses() {
        let test = TestHost::new();
        test.answer_frames_with([abi::STATUS_ERROR]);
        let host = test.host();
        let avcc = [0, 0, 0, 2, 0x65, 0x88];
        let config = [1, 0x64, 0, 0x1f, 0xff, 0xe0, 0];
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_234_567);
        let first = MediaFrame {
            codec: Codec::H264,
            keyframe: true,
            data: &avcc,
            config: Some(&config),
            width: 640,
            height: 480,
            captured_at: at,
        };
        assert_eq!(
            host.send_media(&first),
            Err(SendError::Rejected {
                status: abi::STATUS_ERROR
            })
        );
        let next = MediaFrame {
            keyframe: false,
            config: None,
            ..first
        };
        assert_eq!(host.send_media(&next), Ok(()));
        let media = test.media();
        assert_eq!(media.len(), 2);
        assert_eq!(media[0].codec, Some(Codec::H264));
        assert!(media[0].keyframe);
        assert_eq!(media[0].config.as_deref(), Some(&config[..]));
        assert_eq!(media[0].capture_time_us, 1_234_567);
        assert_eq!((media[0].width, media[0].height), (640, 480));
        assert_eq!(media[0].status, abi::STATUS_ERROR);
        assert!(!media[1].keyframe);
        assert_eq!(media[1].config, None);
        assert_eq!(media[1].data, avcc);
        assert!(test.frames().is_empty(), "send_media is not send_frame");

        host.close();
        assert_eq!(host.send_media(&next), Err(SendError::Closed));
        assert_eq!(test.media().len(), 2);
    }

    #[test]
    fn skips_are_recorded_in_order_with_frames_and_only_reach_hosts_that_have_the_callback() {
        let test = TestHost::new();
        let host = test.host();
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(42);
        host.send_frame(&Frame {
            captured_at: at,
            ..frame()
        })
        .unwrap();
        assert!(!host.skipped(0), "nothing to tell");
        assert!(host.skipped(3));
        host.send_frame(&frame()).unwrap();
        assert_eq!(
            test.events(),
            [Event::Frame(0), Event::Skip(3), Event::Frame(1)]
        );
        assert_eq!(test.frames()[0].capture_time_us, 42);

        // A v2 host from before `on_skip`: its struct ends before the field, so the
        // callback is never called, even if the memory past `size` holds one.
        let old = TestHost::new();
        let mut callbacks = old.callbacks();
        callbacks.size = abi::HOST_CALLBACKS_V2_SIZE;
        let old_host = Host::with_owner(callbacks, Some(Box::new(Arc::clone(&old.recorder))));
        assert!(!old_host.skipped(3));
        assert!(old.events().is_empty());

        host.close();
        assert!(!host.skipped(1), "closed");
        assert_eq!(test.events().len(), 3);
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
