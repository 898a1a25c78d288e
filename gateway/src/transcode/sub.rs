//! The derived sub-stream: a low-resolution MJPEG made inside the gateway from the main
//! stream's frames (`sub: { width: 640 }`), as the source of the stream's `sub` hub.
//!
//! [`DerivedSubFactory`] is a `hub::SourceFactory` like a plugin's: the sub hub starts it
//! with its first viewer and the reaper stops it after the stream's idle timeout. A
//! running derived sub:
//! - is a viewer of the main hub (counted in from `start` on), so an on-demand main starts
//!   for it and, once the sub stops, is reaped by its own idle rule;
//! - mirrors the main's state into the sub's sink (main connecting, retrying or failed →
//!   the sub the same, with the same message; a stopped main → connecting); the sub turns
//!   live with its own first picture;
//! - feeds ONE ffmpeg ([`Transcoder`], scaled to the sub size): an H.264/H.265 main's video
//!   track, followed with a [`Cursor`] like the JPEG deriver (the sub is then the only
//!   decode of that camera: the main hub derives no JPEGs for it), or a JPEG main's
//!   pictures, latest-frame-wins (a queue of one: a picture waits for ffmpeg at most while
//!   one is decoded; newer ones replace nothing and are dropped instead, so no backlog
//!   builds), decoded at a reduced size when the sub is at most half as wide (`-lowres`,
//!   see `mjpeg.rs`). Each sub picture carries the capture time of the main frame it
//!   shows;
//! - with `fps: N`, keeps at most N pictures a second by capture time (`pace.rs`): a JPEG
//!   main's pictures are thinned before ffmpeg (fewer decodes too); a video main's are all
//!   decoded (each needs the ones before it) and the sub's JPEGs thinned as they come out;
//! - reports its own ffmpeg failing (cannot start, exits, stalls) as `retrying` with the
//!   reason (the transcoder retries at a later frame with a backoff);
//! - kills and reaps ffmpeg and leaves the main before `stop` returns.
//!
//! Why a JPEG main is decoded again instead of sharing the main's decode: the plugin ABI
//! carries one picture stream per source (an ffmpeg-mjpeg or testsrc source hands over
//! JPEGs, not raw pictures), so the only pictures the gateway has of a JPEG main are JPEGs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, watch};

use super::mjpeg::{RunningCount, Transcoder, TranscoderOptions, TranscoderState};
use super::pace::Pace;
use crate::config::DerivedSub;
use crate::hub::{
    Codec, Cursor, Frame, FrameSink, Hub, RunningSource, SourceFactory, StreamState, StreamStatus,
    Viewer,
};

/// Frames a video main's transcoder queues (a GOP suffix; it skips to the next keyframe
/// when full).
const VIDEO_QUEUE: usize = 32;
/// Frames a JPEG main's transcoder queues: one, latest-frame-wins.
const JPEG_QUEUE: usize = 1;
/// The sub's message while its main is stopped (between a restart's stop and start).
const WAITING_FOR_MAIN: &str = "waiting for the main stream";

/// Starts derived subs of one main hub (see the module docs).
pub struct DerivedSubFactory {
    main: Arc<Hub>,
    sub: DerivedSub,
    /// The ffmpeg binary.
    ffmpeg: PathBuf,
    /// Names the sub in log lines (`<id>/sub`).
    label: String,
    /// Where the follower task and ffmpeg's pipes run (`None`: where `start` is called).
    runtime: Option<tokio::runtime::Handle>,
    /// ffmpeg children of this sub alive now (tests and diagnostics).
    running: RunningCount,
}

impl DerivedSubFactory {
    /// A factory deriving `sub` from `main`, with `ffmpeg` from `PATH`; its tasks run on
    /// the calling runtime (if any).
    pub fn new(main: Arc<Hub>, sub: DerivedSub, label: &str) -> Self {
        DerivedSubFactory {
            main,
            sub,
            ffmpeg: TranscoderOptions::default().ffmpeg,
            label: label.to_owned(),
            runtime: tokio::runtime::Handle::try_current().ok(),
            running: RunningCount::default(),
        }
    }

    /// Uses `ffmpeg` instead of the one on `PATH`.
    pub fn with_ffmpeg(mut self, ffmpeg: PathBuf) -> Self {
        self.ffmpeg = ffmpeg;
        self
    }

    /// ffmpeg children of this factory's subs alive now.
    pub fn running(&self) -> RunningCount {
        self.running.clone()
    }

    fn options(&self, jpeg: bool) -> TranscoderOptions {
        TranscoderOptions {
            ffmpeg: self.ffmpeg.clone(),
            quality: self.sub.quality,
            queue: if jpeg { JPEG_QUEUE } else { VIDEO_QUEUE },
            label: self.label.clone(),
            running: self.running.clone(),
            size: Some((self.sub.width, self.sub.height.unwrap_or(0))),
            jpeg_input: jpeg,
        }
    }
}

/// Why a derived sub could not start.
#[derive(Debug, thiserror::Error)]
enum StartError {
    /// Called outside a tokio runtime and none was given.
    #[error("no runtime to run the sub's transcoder on")]
    NoRuntime,
    /// The main hub counts `usize::MAX` viewers (cannot happen).
    #[error("the main stream takes no more viewers")]
    MainFull,
}

impl SourceFactory for DerivedSubFactory {
    fn start(&self, sink: FrameSink) -> Result<Box<dyn RunningSource>, String> {
        let runtime = self
            .runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
            .ok_or_else(|| StartError::NoRuntime.to_string())?;
        // Counted in now, before this returns: from here on the main's reaper keeps it.
        let Some(reservation) = self.main.try_reserve_viewer(usize::MAX) else {
            return Err(StartError::MainFull.to_string());
        };
        let (stop, stopped) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let follower = Follower {
            main: Arc::clone(&self.main),
            sink,
            video: self.options(false),
            jpeg: self.options(true),
            runtime: runtime.clone(),
            transcoder: None,
            cursor: Cursor::new(),
            fps: self.sub.fps,
            pace: self.sub.fps.map(Pace::new),
        };
        runtime.spawn(async move {
            let viewer = reservation.subscribe().await;
            follower.run(viewer, stopped).await;
            let _ = done_tx.send(());
        });
        Ok(Box::new(RunningSub { stop, done }))
    }

    fn describe(&self) -> String {
        match self.sub.height {
            Some(height) => format!("derived {}x{height}", self.sub.width),
            None => format!("derived {} wide", self.sub.width),
        }
    }
}

/// A started derived sub: `stop` ends its follower and waits until ffmpeg is reaped and
/// the main's viewer is gone.
struct RunningSub {
    stop: oneshot::Sender<()>,
    done: oneshot::Receiver<()>,
}

impl RunningSource for RunningSub {
    fn stop(self: Box<Self>) {
        let RunningSub { stop, done } = *self;
        drop(stop);
        // On the hub's blocking thread (sources stop there): waiting is what `stop` is for.
        let _ = done.blocking_recv();
    }
}

/// The task of one running derived sub.
struct Follower {
    main: Arc<Hub>,
    sink: FrameSink,
    /// Transcoder options for a video main and for a JPEG main.
    video: TranscoderOptions,
    jpeg: TranscoderOptions,
    runtime: tokio::runtime::Handle,
    /// The running transcoder and whether it takes JPEGs.
    transcoder: Option<(Transcoder, bool)>,
    /// Where the sub stands in the main's video track.
    cursor: Cursor,
    /// The sub's `fps` cap, if any.
    fps: Option<u32>,
    /// The cap applied to a JPEG main's pictures before ffmpeg.
    pace: Option<Pace>,
}

/// Resolves with the next state of the current transcoder (never, while there is none).
async fn next_state(states: &mut Option<watch::Receiver<TranscoderState>>) -> TranscoderState {
    if let Some(rx) = states
        && rx.changed().await.is_ok()
    {
        return rx.borrow_and_update().clone();
    }
    std::future::pending().await
}

impl Follower {
    async fn run(mut self, mut viewer: Viewer, mut stopped: oneshot::Receiver<()>) {
        let status = viewer.status.borrow_and_update().clone();
        self.mirror(&status);
        let mut states = None;
        let current = viewer.frames.borrow_and_update().clone();
        if let Some(frame) = current {
            self.push(&frame, &mut states).await;
        }
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                state = next_state(&mut states) => {
                    if let TranscoderState::Failed(error) = state {
                        self.sink.set_state(
                            StreamState::Retrying,
                            &format!("the sub's transcoder failed ({error}); retrying"),
                        );
                    }
                }
                changed = viewer.status.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let status = viewer.status.borrow_and_update().clone();
                    self.mirror(&status);
                }
                changed = viewer.frames.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let frame = viewer.frames.borrow_and_update().clone();
                    if let Some(frame) = frame {
                        self.push(&frame, &mut states).await;
                    }
                }
                changed = viewer.video.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    viewer.video.borrow_and_update();
                    let frames = self.main.video_catch_up(&mut self.cursor).frames;
                    for frame in frames {
                        self.push(&frame, &mut states).await;
                    }
                }
            }
        }
        if let Some((transcoder, _)) = self.transcoder.take() {
            transcoder.stop().await;
        }
        drop(viewer);
    }

    /// The main's state as the sub's (see the module docs).
    fn mirror(&self, main: &StreamStatus) {
        match main.state {
            StreamState::Live => {}
            StreamState::Stopped => self
                .sink
                .set_state(StreamState::Connecting, WAITING_FOR_MAIN),
            state => self.sink.set_state(state, &main.message),
        }
    }

    /// Hands one main frame to the transcoder for its kind, starting (or replacing) it;
    /// `states` follows the transcoder in use.
    async fn push(&mut self, frame: &Frame, states: &mut Option<watch::Receiver<TranscoderState>>) {
        let jpeg = frame.codec == Codec::Jpeg;
        // A video main's JPEG track holds pictures derived for its own MJPEG consumers, not
        // the camera's: the sub follows the video (taking both would swap transcoders, and
        // restart ffmpeg, on every frame).
        if jpeg && self.main.native_codec().is_some_and(Codec::is_video) {
            return;
        }
        if self.transcoder.as_ref().is_some_and(|(_, j)| *j != jpeg)
            && let Some((old, _)) = self.transcoder.take()
        {
            old.stop().await;
            *states = None;
        }
        if jpeg
            && let Some(pace) = &mut self.pace
            && !pace.keep(frame.captured_at_us)
        {
            return;
        }
        let (transcoder, _) = self.transcoder.get_or_insert_with(|| {
            let options = if jpeg { &self.jpeg } else { &self.video };
            let sink = self.sink.clone();
            let refused = AtomicBool::new(false);
            // A video main's pictures are all decoded; the cap thins what comes out.
            let out_pace = (!jpeg)
                .then_some(self.fps)
                .flatten()
                .map(|fps| Mutex::new(Pace::new(fps)));
            let _on_runtime = self.runtime.enter();
            let transcoder = Transcoder::start(options.clone(), move |out| {
                if let Some(pace) = &out_pace
                    && !pace
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .keep(out.captured_at_us)
                {
                    return;
                }
                if !refused.load(Ordering::Relaxed)
                    && !sink.publish(&out.jpeg, out.width, out.height, out.captured_at_us)
                {
                    refused.store(true, Ordering::Relaxed);
                }
            });
            (transcoder, jpeg)
        });
        if states.is_none() {
            *states = Some(transcoder.watch_state());
        }
        transcoder.push(frame);
    }
}

#[cfg(test)]
mod tests {
    //! The follower against real hubs: what the sub says when its ffmpeg cannot run.

    use std::time::Duration;

    use super::*;
    use crate::hub::{HealthRules, StreamInfo, Variant};

    /// A main source that hands its sink to the test.
    struct Manual(Arc<Mutex<Option<FrameSink>>>);

    struct Idle;

    impl RunningSource for Idle {
        fn stop(self: Box<Self>) {}
    }

    impl SourceFactory for Manual {
        fn start(&self, sink: FrameSink) -> Result<Box<dyn RunningSource>, String> {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
            Ok(Box::new(Idle))
        }
        fn describe(&self) -> String {
            "manual".into()
        }
    }

    fn info() -> StreamInfo {
        StreamInfo {
            name: "cam".into(),
            on_demand: true,
            idle_timeout: Duration::from_secs(1),
            fps: None,
            health: HealthRules::default(),
        }
    }

    /// A real 8x8 JPEG.
    const GREY: &[u8] = include_bytes!("../../../plugins/template/src/grey8x8.jpg");

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sub_whose_ffmpeg_cannot_start_says_so_and_leaves_its_main() {
        let metrics = crate::telemetry::Metrics::new();
        let sink = Arc::new(Mutex::new(None));
        let main = Hub::new(
            "cam",
            info(),
            Arc::new(Manual(Arc::clone(&sink))),
            metrics.stream("cam"),
        );
        let factory = DerivedSubFactory::new(
            Arc::clone(&main),
            DerivedSub {
                width: 4,
                height: None,
                quality: 5,
                fps: None,
            },
            "cam/sub",
        )
        .with_ffmpeg("/nonexistent/ffmpeg".into());
        let sub = Hub::for_variant(
            "cam",
            Variant::Sub,
            info(),
            Arc::new(factory),
            metrics.stream("cam/sub"),
            None,
        );
        let viewer = sub.subscribe().await;
        // The sub's start counted it in on the main, which started.
        assert_eq!(main.viewer_count(), 1);
        let mut status = viewer.status.clone();
        // The follower's subscription starts the main on its own task.
        let main_sink = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(sink) = sink.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                    return sink;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the main starts");
        let published = main_sink.publish(GREY, 8, 8, 0);
        assert!(published);
        let retrying = tokio::time::timeout(
            Duration::from_secs(10),
            status.wait_for(|s| s.state == StreamState::Retrying),
        )
        .await
        .expect("the sub reports its failed transcoder")
        .expect("the hub lives")
        .clone();
        assert!(
            retrying
                .message
                .starts_with("the sub's transcoder failed (cannot start /nonexistent/ffmpeg"),
            "{}",
            retrying.message
        );
        drop(viewer);
        sub.stop_source().await;
        assert_eq!(main.viewer_count(), 0, "stopping the sub leaves the main");
    }
}
