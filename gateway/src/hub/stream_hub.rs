//! One stream's hub: the latest frame, the source status, the viewer count and the single
//! running source.
//!
//! Concurrency design:
//! - Frames and status travel through `tokio::sync::watch` channels: they keep only the
//!   latest value, which is exactly latest-frame-wins, and a new viewer gets the last frame
//!   at once.
//! - The viewer count is an atomic that a viewer increments *before* it asks for the source
//!   to run, and the reaper re-checks it under the control lock before stopping. Starting and
//!   stopping both happen under that (async) lock, so "last viewer leaves" and "new viewer
//!   arrives" cannot interleave into zero or two sources: either the reaper sees the viewer
//!   and keeps the source, or the viewer waits for the lock and starts a fresh one.
//! - Source start/stop run on blocking threads (plugins may block); the runtime never waits
//!   on them except through the async lock.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{Mutex, broadcast, watch};
use tokio::time::Instant;

use super::derive::{DerivedSink, Deriving, JpegDemand, JpegDeriver};
use super::direct::{DirectAttachment, DirectViewer, DirectViewers};
use super::fanout::{Handoff, Pending, Unnumbered};
use super::frame::{Codec, Frame, VideoConfig};
use super::gop::{Catchup, Cursor, Gop};
use super::health::{HealthRules, HealthStatus, PictureHealth};
use super::outage::{OutageCause, outage_cause};
use super::source::{FrameSink, RunningSource, SourceFactory};
use super::tag::{FrameTag, tagged_copy};
use crate::telemetry::StreamTelemetry;

/// Status changes a viewer may fall behind by before it only gets the current status.
const STATUS_EVENT_BACKLOG: usize = 16;

/// Largest frame the hub accepts; anything bigger is a broken source, not a picture.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The lifecycle state of a stream's source, as users see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    /// No source is running (an on-demand stream with no viewers).
    Stopped,
    /// The source is starting or reaching its input.
    Connecting,
    /// Frames are flowing.
    Live,
    /// The source lost its input and is retrying.
    Retrying,
    /// The source gave up or could not start.
    Failed,
}

impl StreamState {
    /// The name used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Stopped => "stopped",
            StreamState::Connecting => "connecting",
            StreamState::Live => "live",
            StreamState::Retrying => "retrying",
            StreamState::Failed => "failed",
        }
    }
}

/// The state with the message that explains it (last error, masked of secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStatus {
    /// Current state.
    pub state: StreamState,
    /// Why (empty when there is nothing to say).
    pub message: String,
    /// When this state began.
    pub since: SystemTime,
}

impl StreamStatus {
    fn new(state: StreamState, message: &str) -> Self {
        StreamStatus {
            state,
            message: message.to_owned(),
            since: SystemTime::now(),
        }
    }

    /// Why the stream is down, while it is `retrying` or `failed` (`hub/outage.rs`).
    pub fn cause(&self) -> Option<OutageCause> {
        outage_cause(self.state, &self.message)
    }
}

/// [`Hub::retry_now`] found no source to restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the source is not running (an on-demand stream starts when someone watches)")]
pub struct NotRunning;

/// Why a hub is telling its viewers to leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// The stream was removed from the configuration.
    Removed,
    /// The gateway is shutting down.
    ShuttingDown,
}

/// Static facts about a stream that viewers are told in their greeting.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// Display name.
    pub name: String,
    /// Start with the first viewer and stop after `idle_timeout` without viewers.
    pub on_demand: bool,
    /// Grace period before an idle on-demand source is stopped.
    pub idle_timeout: Duration,
    /// The frame rate the source was configured for, if it said.
    pub fps: Option<f64>,
    /// What the picture's health is judged by.
    pub health: HealthRules,
}

/// Measured input rate over the last full second (for status pages).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InputRate {
    /// Frames per second.
    pub fps: f64,
    /// JPEG bits per second.
    pub bitrate: f64,
}

/// One-second buckets of frames and bytes; updated by the (single) publisher.
#[derive(Debug)]
struct RateMeter {
    window_start: Instant,
    frames: u64,
    bytes: u64,
    last: InputRate,
    last_at: Instant,
}

impl RateMeter {
    fn new() -> Self {
        let now = Instant::now();
        RateMeter {
            window_start: now,
            frames: 0,
            bytes: 0,
            last: InputRate::default(),
            last_at: now,
        }
    }

    fn record(&mut self, bytes: usize, now: Instant) {
        let elapsed = now.duration_since(self.window_start);
        if elapsed >= Duration::from_secs(1) {
            let secs = elapsed.as_secs_f64();
            self.last = InputRate {
                fps: self.frames as f64 / secs,
                bitrate: self.bytes as f64 * 8.0 / secs,
            };
            self.last_at = now;
            self.window_start = now;
            self.frames = 0;
            self.bytes = 0;
        }
        self.frames += 1;
        self.bytes += bytes as u64;
    }

    /// The last complete second's rate, or zero when frames stopped arriving.
    fn rate(&self, now: Instant) -> InputRate {
        if now.duration_since(self.window_start) > Duration::from_secs(2) {
            InputRate::default()
        } else {
            self.last
        }
    }
}

struct Control {
    factory: Arc<dyn SourceFactory>,
    source: Option<Box<dyn RunningSource>>,
}

/// A stream's broadcast hub. Shared as `Arc<Hub>`.
pub struct Hub {
    id: String,
    /// Which of the stream's picture streams this hub carries.
    variant: super::Variant,
    info: RwLock<StreamInfo>,
    frames: watch::Sender<Option<Frame>>,
    status: watch::Sender<StreamStatus>,
    /// Every status change in order (the `watch` above keeps only the latest): viewers
    /// are told about each transition, e.g. live → stopped → connecting → live on a
    /// restart, not just the end state.
    status_events: broadcast::Sender<StreamStatus>,
    closing: watch::Sender<Option<Closing>>,
    viewers: AtomicUsize,
    /// Milliseconds since `epoch` when the viewer count last dropped to zero.
    idle_since_ms: AtomicU64,
    epoch: Instant,
    /// The generation whose sink may publish; bumped whenever a source stops.
    generation: AtomicU64,
    /// Held (shared) by every publication for its whole length, taken (exclusive) by a stop
    /// right after it bumps `generation`: once a stop has passed it, no publication of the
    /// old generation is still under way — none can count a frame, number one or say
    /// `live` after the stop returned, however a plugin thread was scheduled.
    publishing: std::sync::RwLock<()>,
    /// Where publishers leave frames for the hub's fan-out task (see `fanout.rs`).
    handoff: Handoff,
    /// Frames published since the hub was created (for status pages).
    frames_in: AtomicU64,
    rate: std::sync::Mutex<RateMeter>,
    telemetry: StreamTelemetry,
    control: Mutex<Control>,
    /// Viewers the fan-out task writes to itself while their sockets keep up (`direct.rs`).
    direct: DirectViewers,
    /// A video source's current GOP and the configuration in force (`gop.rs`).
    video: std::sync::Mutex<VideoTrack>,
    /// The newest video frame's number, set by the fan-out task: wakes video viewers.
    video_seq: watch::Sender<u64>,
    /// The source's own coding, once it has published (kept across restarts).
    native_codec: RwLock<Option<Codec>>,
    /// Makes JPEGs of a video source for the consumers that need them (`derive.rs`).
    deriver: RwLock<Option<Arc<dyn JpegDeriver>>>,
    /// The running deriver and where it stands in the GOP.
    deriving: std::sync::Mutex<Option<ActiveDeriving>>,
    /// Consumers holding a [`JpegDemand`].
    jpeg_demand: AtomicUsize,
    /// The picture's health, decided by the gateway's monitor (`hub/health.rs`).
    health: watch::Sender<HealthStatus>,
    /// Capture time (µs since the Unix epoch) of the source's newest frame, JPEG or
    /// video; 0 before the first frame of a source generation.
    last_capture_us: AtomicU64,
    /// Milliseconds since `epoch` when the JPEG demand last dropped to zero.
    jpeg_idle_since_ms: AtomicU64,
}

/// A running deriver and its place in the video track.
struct ActiveDeriving {
    deriving: Box<dyn Deriving>,
    cursor: Cursor,
    /// The source generation it derives for.
    generation: u64,
}

/// The hub's video state, under one lock: frames are numbered and kept in order.
#[derive(Default)]
struct VideoTrack {
    gop: Gop,
    config: Option<Arc<VideoConfig>>,
}

/// One H.264/H.265 access unit as a source hands it to [`FrameSink::publish_video`].
#[derive(Debug, Clone)]
pub struct VideoIn<'a> {
    /// H.264 or H.265.
    pub codec: Codec,
    /// Whether a decoder can start at this frame.
    pub keyframe: bool,
    /// One access unit, AVCC/HVCC (4-byte big-endian length before each NAL unit).
    pub data: &'a [u8],
    /// The decoder configuration when it changed (required before the first frame);
    /// `None`: the one in force.
    pub config: Option<Arc<VideoConfig>>,
    /// Coded width in pixels (0 if unknown).
    pub width: u32,
    /// Coded height in pixels (0 if unknown).
    pub height: u32,
    /// Capture time, µs since the Unix epoch (0: now).
    pub captured_at_us: u64,
}

impl Hub {
    /// Creates a hub. Nothing starts until [`Hub::activate`] or the first viewer. Its
    /// fan-out task runs on the runtime that starts the source.
    pub fn new(
        id: &str,
        info: StreamInfo,
        factory: Arc<dyn SourceFactory>,
        telemetry: StreamTelemetry,
    ) -> Arc<Hub> {
        Hub::with_fanout_on(id, info, factory, telemetry, None)
    }

    /// [`Hub::new`] whose fan-out task runs on `fanout` (a runtime of its own, so that the
    /// fan-out never competes with the gateway's I/O for wake-ups), or, with `None`, on
    /// the runtime that starts the source.
    pub fn with_fanout_on(
        id: &str,
        info: StreamInfo,
        factory: Arc<dyn SourceFactory>,
        telemetry: StreamTelemetry,
        fanout: Option<tokio::runtime::Handle>,
    ) -> Arc<Hub> {
        Hub::for_variant(id, super::Variant::Main, info, factory, telemetry, fanout)
    }

    /// [`Hub::with_fanout_on`] for one `variant` of stream `id` (a sub is a hub of its own).
    pub fn for_variant(
        id: &str,
        variant: super::Variant,
        info: StreamInfo,
        factory: Arc<dyn SourceFactory>,
        telemetry: StreamTelemetry,
        fanout: Option<tokio::runtime::Handle>,
    ) -> Arc<Hub> {
        telemetry.configured_fps(info.fps);
        Arc::new(Hub {
            id: id.to_owned(),
            variant,
            info: RwLock::new(info),
            frames: watch::Sender::new(None),
            status: watch::Sender::new(StreamStatus::new(StreamState::Stopped, "")),
            status_events: broadcast::Sender::new(STATUS_EVENT_BACKLOG),
            closing: watch::Sender::new(None),
            viewers: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            generation: AtomicU64::new(0),
            handoff: Handoff::new(fanout),
            frames_in: AtomicU64::new(0),
            publishing: std::sync::RwLock::new(()),
            rate: std::sync::Mutex::new(RateMeter::new()),
            telemetry,
            control: Mutex::new(Control {
                factory,
                source: None,
            }),
            direct: DirectViewers::default(),
            video: std::sync::Mutex::default(),
            video_seq: watch::Sender::new(0),
            native_codec: RwLock::new(None),
            deriver: RwLock::new(None),
            deriving: std::sync::Mutex::new(None),
            jpeg_demand: AtomicUsize::new(0),
            jpeg_idle_since_ms: AtomicU64::new(0),
            health: watch::Sender::new(HealthStatus::now(PictureHealth::Unknown)),
            last_capture_us: AtomicU64::new(0),
        })
    }

    /// The stream id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Which of the stream's picture streams this hub carries.
    pub fn variant(&self) -> super::Variant {
        self.variant
    }

    /// A copy of the stream's static facts.
    pub fn info(&self) -> StreamInfo {
        self.info.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current status.
    pub fn status(&self) -> StreamStatus {
        self.status.borrow().clone()
    }

    /// The picture's health and since when.
    pub fn health(&self) -> HealthStatus {
        *self.health.borrow()
    }

    /// Records the monitor's verdict; a repeat of the current one changes nothing (its
    /// `since` stays). While the source is not live only `unknown` is accepted: a verdict
    /// computed just before a stop must not outlive it.
    pub fn set_health(&self, health: PictureHealth) {
        let live = self.status.borrow().state == StreamState::Live;
        let health = if live { health } else { PictureHealth::Unknown };
        let changed = self.health.send_if_modified(|current| {
            if current.health == health {
                return false;
            }
            *current = HealthStatus::now(health);
            true
        });
        if changed {
            self.telemetry.health_changed(health.as_str());
        }
    }

    /// Capture time (µs since the Unix epoch) of the running source's newest frame, or
    /// `None` before its first (the monitor's measure of lateness).
    pub fn last_capture_us(&self) -> Option<u64> {
        Some(self.last_capture_us.load(Ordering::Relaxed)).filter(|&us| us != 0)
    }

    /// The newest keyframe of the video track, if a source is publishing video (the
    /// health monitor samples it).
    pub fn latest_keyframe(&self) -> Option<Frame> {
        self.video_lock().gop.latest_keyframe()
    }

    /// The latest frame, if any (snapshots are free). The newest published, possibly a
    /// moment before viewers are offered it.
    pub fn latest_frame(&self) -> Option<Frame> {
        self.handoff.latest()
    }

    /// The source's own coding (JPEG, H.264, H.265) once it has published a frame; kept
    /// across restarts, `None` before the first frame.
    pub fn native_codec(&self) -> Option<Codec> {
        *self.native_codec.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The frames of the current video GOP, keyframe first, if the hub holds a whole one
    /// (a snapshot of a video stream decodes them).
    pub fn current_gop(&self) -> Option<Vec<Frame>> {
        self.video_lock().gop.joinable_frames()
    }

    /// The video configuration in force (a running H.264/H.265 source's).
    pub fn video_config(&self) -> Option<Arc<VideoConfig>> {
        self.video_lock().config.clone()
    }

    /// The video frames a viewer at `cursor` is sent next (see [`Gop::catch_up`]).
    pub fn video_catch_up(&self, cursor: &mut Cursor) -> Catchup {
        self.video_lock().gop.catch_up(cursor)
    }

    /// [`Hub::video_catch_up`] for a viewer on credit with `credit` frames to spend
    /// (`hub::Gop::catch_up_with_credit`).
    pub fn video_catch_up_with_credit(&self, cursor: &mut Cursor, credit: u32) -> Catchup {
        self.video_lock().gop.catch_up_with_credit(cursor, credit)
    }

    fn video_lock(&self) -> std::sync::MutexGuard<'_, VideoTrack> {
        self.video.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_native_codec(&self, codec: Codec) {
        if self.native_codec() != Some(codec) {
            *self.native_codec.write().unwrap_or_else(|e| e.into_inner()) = Some(codec);
        }
    }

    /// Sets what makes JPEGs of this stream when its source is video (the server's
    /// transcoder); `None`: JPEG consumers of a video stream get no pictures.
    pub fn set_jpeg_deriver(&self, deriver: Option<Arc<dyn JpegDeriver>>) {
        *self.deriver.write().unwrap_or_else(|e| e.into_inner()) = deriver;
    }

    /// Registers a consumer that needs JPEGs until the returned guard is dropped. On a
    /// video stream this starts the deriver (on the fan-out task).
    pub fn want_jpeg(self: &Arc<Self>) -> JpegDemand {
        self.jpeg_demand.fetch_add(1, Ordering::SeqCst);
        if self.native_codec().is_some_and(Codec::is_video) {
            self.handoff.wake_task();
        }
        JpegDemand::new(Arc::clone(self))
    }

    pub(super) fn release_jpeg_demand(&self) {
        let since = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.jpeg_idle_since_ms.store(since, Ordering::SeqCst);
        self.jpeg_demand.fetch_sub(1, Ordering::SeqCst);
    }

    /// Transcoding processes running for this stream now (0 or 1).
    pub fn transcoders(&self) -> usize {
        self.deriving_lock()
            .as_ref()
            .map_or(0, |active| active.deriving.running())
    }

    fn deriving_lock(&self) -> std::sync::MutexGuard<'_, Option<ActiveDeriving>> {
        self.deriving.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Viewers currently attached (WebSocket, MJPEG, ...).
    pub fn viewer_count(&self) -> usize {
        self.viewers.load(Ordering::SeqCst)
    }

    /// Frames published since the hub was created.
    pub fn frames_in(&self) -> u64 {
        self.frames_in.load(Ordering::Relaxed)
    }

    /// The measured input rate (last full second).
    pub fn input_rate(&self) -> InputRate {
        self.rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rate(Instant::now())
    }

    /// The stream's metric handles (viewers attach theirs through it).
    pub fn telemetry(&self) -> &StreamTelemetry {
        &self.telemetry
    }

    /// Offers every frame published from now on to `viewer` on the hub's fan-out task, until
    /// the returned attachment is dropped. The viewer must also hold a [`Viewer`]: the
    /// attachment is a faster path to its socket, not a subscription.
    pub fn attach_direct(self: &Arc<Self>, viewer: Arc<dyn DirectViewer>) -> DirectAttachment {
        DirectAttachment::new(Arc::clone(self), viewer)
    }

    /// Viewers attached to the direct fan-out (open or not; tests check attach and detach).
    pub fn direct_viewer_count(&self) -> usize {
        self.direct.len()
    }

    pub(super) fn direct_viewers(&self) -> &DirectViewers {
        &self.direct
    }

    pub(super) fn handoff(&self) -> &Handoff {
        &self.handoff
    }

    /// Starts the source of an always-on stream (no-op for on-demand streams).
    pub async fn activate(self: &Arc<Self>) {
        if !self.info().on_demand {
            self.ensure_running().await;
        }
    }

    /// Attaches a viewer; starts the source if it is not running. The viewer detaches when
    /// the returned [`Viewer`] is dropped. Not limited (snapshots use it); viewers that
    /// count against `max_viewers_per_stream` take a [`Hub::try_reserve_viewer`] first.
    pub async fn subscribe(self: &Arc<Self>) -> Viewer {
        // Count first: from here on the reaper sees this viewer.
        self.viewers.fetch_add(1, Ordering::SeqCst);
        ViewerReservation {
            hub: Some(Arc::clone(self)),
        }
        .subscribe()
        .await
    }

    /// Takes one of `limit` viewer slots, atomically (compare-and-increment), or `None` when
    /// all are taken. The slot counts as a viewer from now on (the reaper keeps the source
    /// for it); [`ViewerReservation::subscribe`] turns it into the [`Viewer`], and dropping
    /// it unused gives the slot back. A request handler reserves before it answers, so
    /// concurrent requests can never overrun the limit.
    pub fn try_reserve_viewer(self: &Arc<Self>, limit: usize) -> Option<ViewerReservation> {
        self.viewers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        Some(ViewerReservation {
            hub: Some(Arc::clone(self)),
        })
    }

    /// Takes a viewer out of the count (a [`Viewer`] or an unused reservation went away).
    fn release_viewer(&self) {
        let since = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Record the idle start before the count can read zero, so the reaper never sees
        // zero viewers with a stale idle time.
        self.idle_since_ms.store(since, Ordering::SeqCst);
        self.viewers.fetch_sub(1, Ordering::SeqCst);
    }

    async fn ensure_running(self: &Arc<Self>) {
        let mut control = self.control.lock().await;
        if control.source.is_none() && self.closing.borrow().is_none() {
            let reason = if self.info().on_demand {
                "viewer"
            } else {
                "always_on"
            };
            self.start_locked(&mut control, reason).await;
        }
    }

    /// Starts a new source generation. Called with the control lock held.
    async fn start_locked(self: &Arc<Self>, control: &mut Control, reason: &'static str) {
        self.handoff.start(self);
        self.telemetry.source_starting(reason);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.set_status(StreamState::Connecting, "");
        let sink = FrameSink::new(Arc::downgrade(self), generation);
        let factory = Arc::clone(&control.factory);
        let started = tokio::task::spawn_blocking(move || factory.start(sink)).await;
        match started {
            Ok(Ok(source)) => {
                tracing::info!(stream = %self.id, "source started");
                control.source = Some(source);
            }
            Ok(Err(message)) => {
                tracing::warn!(stream = %self.id, error = %message, "source failed to start");
                self.generation.fetch_add(1, Ordering::SeqCst);
                self.set_status(StreamState::Failed, &message);
            }
            Err(join_error) => {
                let message = format!("source start aborted: {join_error}");
                tracing::error!(stream = %self.id, error = %message);
                self.generation.fetch_add(1, Ordering::SeqCst);
                self.set_status(StreamState::Failed, &message);
            }
        }
    }

    /// Stops the running source, if any, and says so. Called with the control lock held.
    async fn stop_locked(&self, control: &mut Control) {
        self.halt_locked(control).await;
        self.set_status(StreamState::Stopped, "");
    }

    /// Stops the running source, if any, without a status change (a restart goes straight
    /// to `connecting`). Called with the control lock held.
    async fn halt_locked(&self, control: &mut Control) {
        // Refuse the old generation's frames before asking it to stop, and wait out the
        // publications already past their check (a few microseconds of copying).
        self.generation.fetch_add(1, Ordering::SeqCst);
        drop(self.publications_fence());
        if let Some(source) = control.source.take() {
            if let Err(e) = tokio::task::spawn_blocking(move || source.stop()).await {
                tracing::error!(stream = %self.id, error = %e, "source stop panicked");
            }
            tracing::info!(stream = %self.id, "source stopped");
        }
        // A stopped source's last picture may be minutes old by the time the next viewer
        // arrives: never greet anyone with it.
        self.handoff.clear();
        self.frames.send_replace(None);
        {
            let mut video = self.video_lock();
            video.gop.clear();
            video.config = None;
        }
        // Dropped outside the lock: it stops its process.
        let deriving = self.deriving_lock().take();
        drop(deriving);
    }

    /// Records a status (and keeps `source_up` in step with it).
    fn set_status(&self, state: StreamState, message: &str) {
        self.telemetry.source_state(state.as_str());
        if state != StreamState::Live {
            self.last_capture_us.store(0, Ordering::Relaxed);
            self.set_health(PictureHealth::Unknown);
        }
        let status = StreamStatus::new(state, message);
        self.status.send_replace(status.clone());
        // No receiver is fine: nobody is watching.
        let _ = self.status_events.send(status);
    }

    /// Stops an on-demand source that has had no viewer for its idle timeout. Returns
    /// whether it stopped one.
    pub async fn reap_if_idle(&self) -> bool {
        let info = self.info();
        self.reap_deriver_if_idle(info.idle_timeout);
        if !info.on_demand || !self.idle_for(info.idle_timeout) {
            return false;
        }
        let mut control = self.control.lock().await;
        // Re-check under the lock: a viewer that counted itself in before this point keeps
        // the source; one that arrives later waits for the lock and starts a new source.
        if control.source.is_none() || !self.idle_for(info.idle_timeout) {
            return false;
        }
        tracing::info!(stream = %self.id, idle_timeout = ?info.idle_timeout, "stopping idle source");
        self.stop_locked(&mut control).await;
        true
    }

    /// Stops the deriver once no consumer has needed JPEGs for `timeout`.
    fn reap_deriver_if_idle(&self, timeout: Duration) {
        if self.jpeg_demand.load(Ordering::SeqCst) > 0 {
            return;
        }
        let since = Duration::from_millis(self.jpeg_idle_since_ms.load(Ordering::SeqCst));
        if self.epoch.elapsed().saturating_sub(since) < timeout {
            return;
        }
        let mut deriving = self.deriving_lock();
        // Re-checked under the lock: the fan-out task starts derivers under it.
        if self.jpeg_demand.load(Ordering::SeqCst) == 0 && deriving.is_some() {
            tracing::info!(stream = %self.id, idle_timeout = ?timeout, "stopping idle transcoder");
            let stopped = deriving.take();
            drop(deriving);
            drop(stopped);
            // Its last picture would only get older: nobody is greeted with it.
            self.handoff.clear();
            self.frames.send_replace(None);
        }
    }

    fn idle_for(&self, timeout: Duration) -> bool {
        if self.viewers.load(Ordering::SeqCst) > 0 {
            return false;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::SeqCst));
        self.epoch.elapsed().saturating_sub(since) >= timeout
    }

    /// Replaces the source factory and info (a configuration change): the running source,
    /// if any, is stopped and a new one started; viewers stay attached and see the state
    /// change.
    pub async fn reconfigure(self: &Arc<Self>, info: StreamInfo, factory: Arc<dyn SourceFactory>) {
        let mut control = self.control.lock().await;
        let was_running = control.source.is_some();
        self.stop_locked(&mut control).await;
        self.telemetry.configured_fps(info.fps);
        *self.info.write().unwrap_or_else(|e| e.into_inner()) = info.clone();
        control.factory = factory;
        if was_running || !info.on_demand || self.viewers.load(Ordering::SeqCst) > 0 {
            self.start_locked(&mut control, "reconfigured").await;
        }
    }

    /// "Retry now": ends the source's current attempt or backoff wait and starts a fresh
    /// source at once (a new generation from the same factory, so the plugin's backoff
    /// starts from zero). Viewers stay attached and see `connecting`, then the new source's
    /// states. Counted and logged as a `manual` start (`StreamTelemetry::source_starting`).
    ///
    /// Refused with [`NotRunning`] when there is nothing to retry: no source runs (an idle
    /// on-demand stream starts when someone watches) and none failed to start for a
    /// stream that should run (always-on, or watched), or the stream is being removed.
    pub async fn retry_now(self: &Arc<Self>) -> Result<StreamState, NotRunning> {
        let mut control = self.control.lock().await;
        let wanted = !self.info().on_demand || self.viewers.load(Ordering::SeqCst) > 0;
        let failed_start =
            control.source.is_none() && wanted && self.status.borrow().state == StreamState::Failed;
        if self.closing.borrow().is_some() || (control.source.is_none() && !failed_start) {
            return Err(NotRunning);
        }
        self.halt_locked(&mut control).await;
        self.start_locked(&mut control, "manual").await;
        Ok(self.status.borrow().state)
    }

    /// Updates the facts that need no source restart (name, `on_demand`, idle timeout).
    /// A stream that became always-on is started.
    pub async fn update_info(self: &Arc<Self>, info: StreamInfo) {
        let on_demand = info.on_demand;
        self.telemetry.configured_fps(info.fps);
        *self.info.write().unwrap_or_else(|e| e.into_inner()) = info;
        if !on_demand {
            self.ensure_running().await;
        }
    }

    /// Tells every viewer to leave for `reason` and stops the source. Used when the stream
    /// is removed; the hub accepts no source afterwards.
    pub async fn close(&self, reason: Closing) {
        self.closing.send_replace(Some(reason));
        let mut control = self.control.lock().await;
        self.stop_locked(&mut control).await;
    }

    /// Tells every viewer to leave for `reason`, now and on arrival, without stopping the
    /// source (gateway shutdown stops sources after the viewers are gone). One signal per
    /// hub means a viewer session waits on one channel for every reason to end.
    pub fn dismiss_viewers(&self, reason: Closing) {
        self.closing.send_replace(Some(reason));
    }

    /// Stops the source without closing viewers (gateway shutdown stops sources after the
    /// viewers were told).
    pub async fn stop_source(&self) {
        let mut control = self.control.lock().await;
        self.stop_locked(&mut control).await;
    }

    /// Called through a [`FrameSink`], on the source's thread: publishes if `generation`
    /// is current. O(1) in the number of viewers: the fan-out task does the rest.
    pub(super) fn publish(
        &self,
        generation: u64,
        jpeg: &[u8],
        width: u32,
        height: u32,
        captured_at_us: u64,
    ) -> bool {
        if generation != self.generation.load(Ordering::SeqCst) {
            return false;
        }
        self.set_native_codec(Codec::Jpeg);
        self.publish_jpeg(generation, jpeg, width, height, captured_at_us, true)
    }

    /// Called through a [`DerivedSink`]: publishes a JPEG made from the video track, for
    /// the JPEG consumers. It neither changes the stream's state nor counts as input.
    pub(super) fn publish_derived(
        &self,
        generation: u64,
        jpeg: &[u8],
        width: u32,
        height: u32,
        captured_at_us: u64,
    ) -> bool {
        self.publish_jpeg(generation, jpeg, width, height, captured_at_us, false)
    }

    /// Tags and hands a JPEG to the fan-out task; `from_source`: the source's own picture
    /// (it may turn the stream live and counts as input).
    fn publish_jpeg(
        &self,
        generation: u64,
        jpeg: &[u8],
        width: u32,
        height: u32,
        captured_at_us: u64,
        from_source: bool,
    ) -> bool {
        let _publishing = self.publication();
        let started = Instant::now();
        if generation != self.generation.load(Ordering::SeqCst) {
            return false;
        }
        if !looks_like_jpeg(jpeg) {
            self.telemetry.frame_refused(&format!(
                "a {}-byte frame that is not one complete JPEG",
                jpeg.len()
            ));
            return true;
        }
        let published_at_us = unix_micros(SystemTime::now());
        let captured_at_us = if captured_at_us == 0 {
            published_at_us
        } else {
            captured_at_us
        };
        let tag = FrameTag {
            seq: 0,
            captured_at_us,
            published_at_us,
        };
        let frame = Unnumbered {
            tagged: tagged_copy(jpeg, tag),
            captured_at_us,
            published_at_us,
            width,
            height,
        };
        let is_current = |g| g == self.generation.load(Ordering::SeqCst);
        // A frame proves the source is live, whatever it last reported. The frame that says
        // so (one per start or recovery) is put in the watch here, before the status, and
        // not offered directly: viewers are told `live`, then their own tasks take it. Every
        // other frame goes to the fan-out task.
        let turned_live = from_source && self.status.borrow().state != StreamState::Live;
        let Some(frame) = self
            .handoff
            .publish(generation, is_current, frame, !turned_live)
        else {
            return false;
        };
        if turned_live {
            self.store_latest(&frame, generation);
            self.set_status(StreamState::Live, "");
        }
        if !from_source {
            return true;
        }
        self.last_capture_us
            .store(captured_at_us, Ordering::Relaxed);
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        self.rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(jpeg.len(), Instant::now());
        self.telemetry.frame_received(jpeg.len(), started.elapsed());
        true
    }

    /// Called through a [`FrameSink`], on the source's thread: numbers and keeps one video
    /// access unit if `generation` is current, and wakes the fan-out task to tell the
    /// viewers. O(1) in the number of viewers. A frame before any configuration, or not
    /// plausibly an access unit, is dropped (and logged); the source keeps going.
    pub(super) fn publish_video(&self, generation: u64, video: VideoIn<'_>) -> bool {
        let _publishing = self.publication();
        let started = Instant::now();
        if generation != self.generation.load(Ordering::SeqCst) {
            return false;
        }
        self.set_native_codec(video.codec);
        if video.data.is_empty() || video.data.len() > MAX_FRAME_BYTES {
            self.telemetry.frame_refused(&format!(
                "a video frame of an impossible size ({} bytes)",
                video.data.len()
            ));
            return true;
        }
        let published_at_us = unix_micros(SystemTime::now());
        let captured_at_us = if video.captured_at_us == 0 {
            published_at_us
        } else {
            video.captured_at_us
        };
        let data = bytes::Bytes::copy_from_slice(video.data);
        {
            let mut track = self.video_lock();
            if generation != self.generation.load(Ordering::SeqCst) {
                return false;
            }
            if let Some(config) = video.config {
                track.config = Some(config);
            }
            let Some(config) = track.config.clone().filter(|c| c.codec == video.codec) else {
                drop(track);
                self.telemetry.frame_refused(&format!(
                    "an {} frame without its decoder configuration",
                    video.codec.as_str()
                ));
                return true;
            };
            let frame = Frame {
                seq: track.gop.next_seq(),
                captured_at_us,
                published_at_us,
                width: video.width,
                height: video.height,
                codec: video.codec,
                keyframe: video.keyframe,
                config: Some(config),
                data,
                derived: Arc::default(),
            };
            track.gop.push(frame);
        }
        if self.status.borrow().state != StreamState::Live {
            self.set_status(StreamState::Live, "");
        }
        self.handoff.wake_task();
        self.last_capture_us
            .store(captured_at_us, Ordering::Relaxed);
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        self.rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(video.data.len(), Instant::now());
        self.telemetry
            .frame_received(video.data.len(), started.elapsed());
        true
    }

    /// Called through a [`FrameSink`]: the source's next frame follows `frames` frames
    /// skipped before they reached it, if `generation` is current. Both tracks leave the
    /// numbers out (a source publishes on one of them; the other is unused or derived), so
    /// viewers see the gap and count it like their own skips.
    /// A publication's share of [`Hub::publishing`].
    fn publication(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.publishing.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until no publication is under way (see [`Hub::publishing`]).
    fn publications_fence(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.publishing.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn skip(&self, generation: u64, frames: u64) -> bool {
        let _publishing = self.publication();
        let is_current = |g| g == self.generation.load(Ordering::SeqCst);
        if !is_current(generation) {
            return false;
        }
        self.handoff.skip(generation, is_current, frames);
        let mut track = self.video_lock();
        if is_current(generation) {
            track.gop.skip(frames);
        }
        true
    }

    /// Called by the fan-out task when woken: tells video viewers of new frames (waking
    /// them is O(viewers), so it is the task's work, not the publisher's).
    pub(super) fn deliver_video(self: &Arc<Self>) {
        let newest = self.video_lock().gop.last_seq();
        self.video_seq.send_if_modified(|seq| {
            let newer = *seq != newest;
            *seq = newest;
            newer
        });
        self.feed_deriver();
    }

    /// Starts the deriver if JPEGs are wanted of a video stream, and hands it the frames
    /// it has not had yet (in order; after a gap, from the next keyframe).
    fn feed_deriver(self: &Arc<Self>) {
        let mut deriving = self.deriving_lock();
        let generation = self.generation.load(Ordering::SeqCst);
        // One started for a source that has stopped since is of no use.
        if deriving
            .as_ref()
            .is_some_and(|active| active.generation != generation)
        {
            let stale = deriving.take();
            drop(stale);
        }
        if deriving.is_none()
            && self.jpeg_demand.load(Ordering::SeqCst) > 0
            && self.native_codec().is_some_and(Codec::is_video)
            && self.status.borrow().state == StreamState::Live
        {
            let deriver = self
                .deriver
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(deriver) = deriver {
                tracing::info!(stream = %self.id, "starting a transcoder for JPEG consumers");
                let sink = DerivedSink::new(Arc::downgrade(self), generation);
                *deriving = Some(ActiveDeriving {
                    deriving: deriver.start(sink),
                    cursor: Cursor::new(),
                    generation,
                });
            }
        }
        if let Some(active) = deriving.as_mut() {
            for frame in self.video_catch_up(&mut active.cursor).frames {
                active.deriving.push(&frame);
            }
        }
    }

    /// Called by the fan-out task for each frame it takes: puts it in the `watch` and
    /// offers it to the direct viewers. A viewer whose offer panicked is detached and
    /// abandoned; nobody else notices.
    pub(super) async fn deliver(&self, pending: Pending) {
        let Pending { frame, generation } = pending;
        if !self.store_latest(&frame, generation) {
            return;
        }
        for viewer in self.direct.pass(&frame).await {
            self.direct.detach(&viewer);
            self.telemetry.direct_viewer_panicked();
            viewer.abandon();
        }
    }

    /// Makes `frame` the watch's latest, unless its source is no longer current or the
    /// watch already holds a newer frame. Both are checked under the watch's lock: a stop
    /// bumps the generation before it clears the watch, so a stopped source's frame cannot
    /// land after the clear, and the watch never goes back to an older frame.
    fn store_latest(&self, frame: &Frame, generation: u64) -> bool {
        self.frames.send_if_modified(|latest| {
            let newer = latest.as_ref().is_none_or(|l| l.seq < frame.seq);
            if !newer || generation != self.generation.load(Ordering::SeqCst) {
                return false;
            }
            *latest = Some(frame.clone());
            true
        })
    }

    /// Called through a [`FrameSink`]: records a state if `generation` is current.
    pub(super) fn source_state(&self, generation: u64, state: StreamState, message: &str) {
        if generation != self.generation.load(Ordering::SeqCst) {
            return;
        }
        let previous = self.status.borrow().clone();
        if previous.state == state && previous.message == message {
            return;
        }
        if state == StreamState::Retrying && previous.state != StreamState::Retrying {
            self.telemetry.source_starting("error");
        }
        self.set_status(state, message);
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.handoff.hub_dropped();
    }
}

pub(super) fn looks_like_jpeg(bytes: &[u8]) -> bool {
    bytes.len() >= 4
        && bytes.len() <= MAX_FRAME_BYTES
        && bytes[..2] == [0xFF, 0xD8]
        && bytes[bytes.len() - 2..] == [0xFF, 0xD9]
}

/// Microseconds since the Unix epoch (0 before it).
pub fn unix_micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A counted viewer slot that has not attached yet (see [`Hub::try_reserve_viewer`]).
pub struct ViewerReservation {
    /// `None` once the slot passed to a [`Viewer`].
    hub: Option<Arc<Hub>>,
}

impl ViewerReservation {
    /// The hub the slot is on.
    pub fn hub(&self) -> &Arc<Hub> {
        self.hub
            .as_ref()
            .expect("a reservation holds its hub until it subscribes")
    }

    /// Attaches the viewer in this slot (counted already) and starts the source if it is
    /// not running.
    pub async fn subscribe(mut self) -> Viewer {
        let hub = self.hub.take().expect("a reservation subscribes once");
        let viewer = Viewer {
            frames: hub.frames.subscribe(),
            video: hub.video_seq.subscribe(),
            status: hub.status.subscribe(),
            status_events: hub.status_events.subscribe(),
            closing: hub.closing.subscribe(),
            health: hub.health.subscribe(),
            hub,
        };
        viewer.hub.ensure_running().await;
        viewer
    }
}

impl Drop for ViewerReservation {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.release_viewer();
        }
    }
}

/// One attached viewer's view of a hub. Dropping it detaches the viewer.
pub struct Viewer {
    hub: Arc<Hub>,
    /// Latest frame; `changed()` wakes on every publication (skipped ones are counted via
    /// sequence numbers).
    pub frames: watch::Receiver<Option<Frame>>,
    /// The newest video frame's number: `changed()` wakes on every video publication
    /// (read the frames with [`Hub::video_catch_up`]).
    pub video: watch::Receiver<u64>,
    /// The current source status.
    pub status: watch::Receiver<StreamStatus>,
    /// Every status change since the viewer attached, in order.
    pub status_events: broadcast::Receiver<StreamStatus>,
    /// Set when the hub tells its viewers to leave.
    pub closing: watch::Receiver<Option<Closing>>,
    /// The picture's health: `changed()` wakes on each new verdict.
    pub health: watch::Receiver<HealthStatus>,
}

impl Viewer {
    /// The hub this viewer is attached to.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.hub.release_viewer();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    /// A factory that counts live sources and publishes nothing by itself.
    #[derive(Default)]
    struct CountingFactory {
        running: Arc<AtomicUsize>,
        max_running: Arc<AtomicUsize>,
        starts: Arc<AtomicUsize>,
        sinks: Arc<StdMutex<Vec<FrameSink>>>,
    }

    struct CountingSource(Arc<AtomicUsize>);

    impl RunningSource for CountingSource {
        #[expect(
            clippy::disallowed_methods,
            reason = "a slow stop on its blocking thread, as a real plugin's"
        )]
        fn stop(self: Box<Self>) {
            std::thread::sleep(Duration::from_millis(20));
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl SourceFactory for CountingFactory {
        fn start(&self, sink: FrameSink) -> Result<Box<dyn RunningSource>, String> {
            self.starts.fetch_add(1, Ordering::SeqCst);
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            self.sinks.lock().unwrap().push(sink);
            Ok(Box::new(CountingSource(Arc::clone(&self.running))))
        }
        fn describe(&self) -> String {
            "counting".into()
        }
    }

    fn info(on_demand: bool, idle_ms: u64) -> StreamInfo {
        StreamInfo {
            name: "Test".into(),
            on_demand,
            idle_timeout: Duration::from_millis(idle_ms),
            fps: None,
            health: HealthRules::default(),
        }
    }

    const JPEG: &[u8] = &[0xFF, 0xD8, 0x00, 0xFF, 0xD9];

    fn telemetry() -> StreamTelemetry {
        crate::telemetry::Metrics::new().stream("a")
    }

    #[tokio::test]
    async fn viewers_share_one_source_and_reaper_stops_it() {
        let factory = Arc::new(CountingFactory::default());
        let hub = Hub::new("a", info(true, 0), factory.clone(), telemetry());
        let v1 = hub.subscribe().await;
        let v2 = hub.subscribe().await;
        assert_eq!(factory.starts.load(Ordering::SeqCst), 1);
        assert_eq!(hub.viewer_count(), 2);
        assert!(
            !hub.reap_if_idle().await,
            "viewers attached: nothing to reap"
        );
        drop(v1);
        drop(v2);
        assert!(hub.reap_if_idle().await);
        assert_eq!(factory.running.load(Ordering::SeqCst), 0);
        assert_eq!(hub.status().state, StreamState::Stopped);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_viewers_and_reaper_never_run_two_sources() {
        let factory = Arc::new(CountingFactory::default());
        let hub = Hub::new("a", info(true, 0), factory.clone(), telemetry());
        let reaper = {
            let hub = Arc::clone(&hub);
            tokio::spawn(async move {
                for _ in 0..200 {
                    hub.reap_if_idle().await;
                    tokio::task::yield_now().await;
                }
            })
        };
        for _ in 0..200 {
            let viewer = hub.subscribe().await;
            // While a viewer is attached the source must be running.
            assert_eq!(factory.running.load(Ordering::SeqCst), 1);
            drop(viewer);
            tokio::task::yield_now().await;
        }
        reaper.await.unwrap();
        assert_eq!(factory.max_running.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn frames_carry_sequence_and_stale_generations_are_refused() {
        let factory = Arc::new(CountingFactory::default());
        let hub = Hub::new("a", info(false, 0), factory.clone(), telemetry());
        hub.activate().await;
        let sink = factory.sinks.lock().unwrap()[0].clone();
        assert!(sink.publish(JPEG, 2, 2, 0));
        assert!(sink.publish(JPEG, 2, 2, 0));
        let frame = hub.latest_frame().unwrap();
        assert_eq!(frame.seq, 2);
        assert_eq!(hub.status().state, StreamState::Live);
        // Not a JPEG: dropped, but the sink stays open.
        assert!(sink.publish(b"garbage", 2, 2, 0));
        assert_eq!(hub.latest_frame().unwrap().seq, 2);
        // After a reconfigure the old sink is closed.
        hub.reconfigure(info(false, 0), factory.clone()).await;
        assert!(!sink.publish(JPEG, 2, 2, 0));
        sink.set_state(StreamState::Failed, "old");
        assert_ne!(hub.status().state, StreamState::Failed);
        assert_eq!(factory.running.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_frame_the_fanout_took_before_a_stop_is_not_delivered_after_it() {
        let factory = Arc::new(CountingFactory::default());
        let hub = Hub::new("a", info(false, 0), factory.clone(), telemetry());
        hub.activate().await;
        let sink = factory.sinks.lock().unwrap()[0].clone();
        assert!(sink.publish(JPEG, 2, 2, 0), "turns the stream live");
        assert!(sink.publish(JPEG, 2, 2, 0));
        // The fan-out task has taken the frame (this runtime has not run it yet, so the
        // test plays its part) when the source is replaced; then it delivers.
        let taken = hub.handoff().take().expect("a frame waits for the fan-out");
        hub.reconfigure(info(false, 0), factory.clone()).await;
        hub.deliver(taken).await;
        assert!(
            hub.frames.borrow().is_none(),
            "a stopped source's frame reappeared"
        );
        assert!(hub.latest_frame().is_none());
    }

    #[tokio::test]
    async fn the_watch_never_goes_back_to_an_older_frame() {
        let factory = Arc::new(CountingFactory::default());
        let hub = Hub::new("a", info(false, 0), factory.clone(), telemetry());
        hub.activate().await;
        let sink = factory.sinks.lock().unwrap()[0].clone();
        assert!(sink.publish(JPEG, 2, 2, 0), "1 turns the stream live");
        assert!(sink.publish(JPEG, 2, 2, 0), "2 waits for the fan-out");
        let taken = hub.handoff().take().expect("frame 2");
        // The source recovers from an error: frame 3 turns it live again and goes into
        // the watch at once; the fan-out task then delivers the frame 2 it had taken.
        sink.set_state(StreamState::Retrying, "lost the camera");
        assert!(sink.publish(JPEG, 2, 2, 0), "3 turns the stream live again");
        hub.deliver(taken).await;
        assert_eq!(hub.frames.borrow().as_ref().map(|f| f.seq), Some(3));
    }

    #[tokio::test]
    async fn reservations_are_bounded_and_counted_once() {
        let factory = Arc::new(CountingFactory::default());
        let hub = Hub::new("a", info(true, 0), factory.clone(), telemetry());
        let a = hub.try_reserve_viewer(2).unwrap();
        let b = hub.try_reserve_viewer(2).unwrap();
        assert!(hub.try_reserve_viewer(2).is_none(), "the limit holds");
        assert_eq!(hub.viewer_count(), 2);
        assert_eq!(
            factory.starts.load(Ordering::SeqCst),
            0,
            "nothing attached yet"
        );
        let viewer = a.subscribe().await;
        assert_eq!(hub.viewer_count(), 2, "subscribing does not count twice");
        assert_eq!(factory.starts.load(Ordering::SeqCst), 1);
        drop(b);
        assert_eq!(
            hub.viewer_count(),
            1,
            "an unused reservation gives its slot back"
        );
        let c = hub.try_reserve_viewer(2).unwrap();
        drop(viewer);
        drop(c);
        assert_eq!(hub.viewer_count(), 0);
        assert!(hub.reap_if_idle().await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_reservations_never_overrun_the_limit() {
        let factory = Arc::new(CountingFactory::default());
        let hub = Hub::new("a", info(true, 0), factory, telemetry());
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let hub = Arc::clone(&hub);
                tokio::spawn(async move { hub.try_reserve_viewer(10) })
            })
            .collect();
        let mut held = Vec::new();
        for task in tasks {
            held.extend(task.await.unwrap());
        }
        assert_eq!(held.len(), 10);
        assert_eq!(hub.viewer_count(), 10);
        drop(held);
        assert_eq!(hub.viewer_count(), 0);
    }

    #[tokio::test]
    async fn close_tells_viewers_and_stops_for_good() {
        let factory = Arc::new(CountingFactory::default());
        let hub = Hub::new("a", info(true, 0), factory.clone(), telemetry());
        let viewer = hub.subscribe().await;
        hub.close(Closing::Removed).await;
        assert_eq!(*viewer.closing.borrow(), Some(Closing::Removed));
        assert_eq!(factory.running.load(Ordering::SeqCst), 0);
        let _late = hub.subscribe().await;
        assert_eq!(
            factory.starts.load(Ordering::SeqCst),
            1,
            "closed hubs start nothing"
        );
    }
}
