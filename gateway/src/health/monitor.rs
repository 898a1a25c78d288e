//! The per-stream health monitor: a gateway task that samples the stream about once a
//! second and records the verdict in the hub.
//!
//! Each tick it reads what the hub already has — the newest frame's capture time, the
//! input rate, and a new picture if one arrived: the JPEG track's newest frame for a JPEG
//! stream, the newest keyframe for a passthrough stream — reduces the picture to a
//! [`Thumbnail`] and lets the [`Judge`] decide. Never per viewer, never per frame: the cost
//! is one reduced decode per stream and second (≈ 2 ms for a 720p JPEG, on a blocking
//! thread), plus, for passthrough streams, one keyframe decode by an idle ffmpeg.
//!
//! Invariants:
//! - it never runs on the source's thread or the fan-out: it is a task on the gateway's
//!   I/O runtime, and JPEG decoding goes to the blocking pool;
//! - it holds the hub weakly: a removed stream's monitor ends at its next tick, and its
//!   keyframe ffmpeg (if any) is killed and reaped with it;
//! - while the source is not live, or the stream's rules are disabled, the verdict is
//!   `unknown` and every run is forgotten, so a restarted camera is judged afresh.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::judge::{Judge, Observation, PictureSample, SAME_PICTURE};
use super::keyframes::KeyframeSampler;
use super::thumbnail::Thumbnail;
use crate::hub::{Codec, Hub, PictureHealth, StreamState, TAG_LEN, unix_micros};

/// Keyframes remembered while ffmpeg decodes them.
const MAX_PENDING: usize = 4;

/// How the monitors run.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// Time between samples.
    pub interval: Duration,
    /// The ffmpeg that decodes passthrough keyframes.
    pub ffmpeg: PathBuf,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            interval: Duration::from_secs(1),
            ffmpeg: PathBuf::from("ffmpeg"),
        }
    }
}

/// Starts the monitor of `hub` on the current runtime; it ends by itself once the hub is
/// gone or `shutdown` turns true.
pub fn spawn(
    hub: &Arc<Hub>,
    options: MonitorOptions,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let hub = Arc::downgrade(hub);
    tokio::spawn(run(hub, options, shutdown))
}

async fn run(hub: Weak<Hub>, options: MonitorOptions, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(options.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let label = hub
        .upgrade()
        .map(|hub| hub.id().to_owned())
        .unwrap_or_default();
    let mut monitor = Monitor::new(label, options.ffmpeg);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = crate::hub::turned_true(&mut shutdown) => break,
        }
        let Some(hub) = hub.upgrade() else {
            break;
        };
        monitor.tick(&hub).await;
    }
}

/// The last picture sampled and what it reduced to.
struct Sampled {
    /// The hub sequence number of the frame it came from.
    seq: u64,
    /// The bytes compared for "the same picture" (a JPEG without its tag, or a keyframe).
    bytes: Bytes,
    thumbnail: Arc<Thumbnail>,
}

/// One stream's sampling state.
struct Monitor {
    /// The stream id, for log lines.
    label: String,
    ffmpeg: PathBuf,
    judge: Judge,
    last: Option<Sampled>,
    /// Passthrough streams only, while live.
    keyframes: Option<KeyframeSampler>,
    /// The keyframe last offered to the sampler.
    offered: Option<u64>,
    /// Keyframes offered and not decoded yet, oldest first (ffmpeg may hand a picture
    /// back only when the next keyframe pushes it out).
    pending: VecDeque<(u64, Bytes)>,
}

impl Monitor {
    fn new(label: String, ffmpeg: PathBuf) -> Self {
        Monitor {
            label,
            ffmpeg,
            judge: Judge::default(),
            last: None,
            keyframes: None,
            offered: None,
            pending: VecDeque::new(),
        }
    }

    fn reset(&mut self) {
        self.judge.reset();
        self.last = None;
        self.keyframes = None;
        self.offered = None;
        self.pending.clear();
    }

    async fn tick(&mut self, hub: &Arc<Hub>) {
        let info = hub.info();
        let rules = info.health;
        if !rules.enabled || hub.status().state != StreamState::Live {
            self.reset();
            hub.set_health(PictureHealth::Unknown);
            return;
        }
        let frame_age = hub.last_capture_us().map(|captured| {
            Duration::from_micros(unix_micros(SystemTime::now()).saturating_sub(captured))
        });
        if let Some(age) = frame_age {
            hub.telemetry().frame_age(age.as_secs_f64());
        }
        let picture = match hub.native_codec() {
            Some(Codec::Jpeg) => self.sample_jpeg(hub).await,
            Some(_) => self.sample_video(hub).await,
            None => None,
        };
        let seen = Observation {
            at: Instant::now(),
            frame_age,
            fps: hub.input_rate().fps,
            configured_fps: info.fps,
            picture,
        };
        let verdict = self.judge.observe(&rules, &seen);
        hub.set_health(verdict);
    }

    /// The JPEG track's newest frame, if it is new.
    async fn sample_jpeg(&mut self, hub: &Hub) -> Option<PictureSample> {
        self.keyframes = None;
        let frame = hub.latest_frame()?;
        if self.last.as_ref().is_some_and(|last| last.seq == frame.seq) {
            return None;
        }
        // The tag (sequence number, times) differs in every frame: compare the picture.
        let picture = frame.data.slice((2 + TAG_LEN).min(frame.data.len())..);
        let thumbnail = match self.same_as_last(&picture) {
            Some(thumbnail) => thumbnail,
            None => Arc::new(reduce(&frame.data).await?),
        };
        Some(self.sampled(frame.seq, picture, thumbnail))
    }

    /// The newest keyframe: offered to the sampler when new, judged once decoded.
    async fn sample_video(&mut self, hub: &Hub) -> Option<PictureSample> {
        if let Some(key) = hub.latest_keyframe()
            && self.offered != Some(key.seq)
        {
            self.offered = Some(key.seq);
            if let Some(thumbnail) = self.same_as_last(&key.data) {
                return Some(self.sampled(key.seq, key.data, thumbnail));
            }
            let ffmpeg = &self.ffmpeg;
            self.keyframes
                .get_or_insert_with(|| KeyframeSampler::start(ffmpeg, hub.id()))
                .offer(&key);
            if self.pending.len() == MAX_PENDING {
                self.pending.pop_front();
            }
            self.pending.push_back((key.seq, key.data));
        }
        let (seq, jpeg) = self.keyframes.as_ref()?.take()?;
        // Older offers were dropped by a busy ffmpeg, or will never come.
        while self
            .pending
            .front()
            .is_some_and(|(pending, _)| *pending < seq)
        {
            self.pending.pop_front();
        }
        let (_, bytes) = self
            .pending
            .pop_front()
            .filter(|(pending, _)| *pending == seq)?;
        let thumbnail = Arc::new(reduce(&jpeg).await?);
        Some(self.sampled(seq, bytes, thumbnail))
    }

    /// The last sample's thumbnail when `bytes` are the last sample's (a camera repeating
    /// its picture): nothing to decode.
    fn same_as_last(&self, bytes: &Bytes) -> Option<Arc<Thumbnail>> {
        self.last
            .as_ref()
            .filter(|last| last.bytes == *bytes)
            .map(|last| Arc::clone(&last.thumbnail))
    }

    /// Records a sampled picture and says how it compares with the previous one.
    fn sampled(&mut self, seq: u64, bytes: Bytes, thumbnail: Arc<Thumbnail>) -> PictureSample {
        let difference = self
            .last
            .as_ref()
            .map(|last| last.thumbnail.difference(&thumbnail));
        let sample = PictureSample {
            changed: difference.is_none_or(|d| d >= SAME_PICTURE),
            mean: thumbnail.mean(),
            spread: thumbnail.spread(),
        };
        tracing::trace!(
            stream = %self.label,
            seq,
            difference,
            mean = sample.mean,
            spread = sample.spread,
            "health sample"
        );
        self.last = Some(Sampled {
            seq,
            bytes,
            thumbnail,
        });
        sample
    }
}

/// Decodes a JPEG to a thumbnail on the blocking pool; an undecodable one is skipped (and
/// logged at debug: a source that sends them is counted as refusing frames elsewhere).
async fn reduce(jpeg: &Bytes) -> Option<Thumbnail> {
    let jpeg = jpeg.clone();
    match tokio::task::spawn_blocking(move || Thumbnail::from_jpeg(&jpeg)).await {
        Ok(Ok(thumbnail)) => Some(thumbnail),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "health: picture not sampled");
            None
        }
        Err(_) => None,
    }
}
