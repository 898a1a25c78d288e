//! The safe side of the ABI: what a plugin author implements ([`SourcePlugin`], [`Source`])
//! and the [`Host`] handle through which a source talks back to the gateway.
//!
//! Invariant: once the host has asked an instance to stop and `stop` has returned, every
//! [`Host`] method is a no-op, even if a plugin thread is still alive. The handle enforces
//! this with a gate that `stop` closes after waiting for callbacks already in flight, so
//! "no callback after stop" holds by construction for anything built on this crate.

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use crate::abi::{self, ByteSlice, FrameRef, HostCallbacks, MediaFrameRef, StrRef};

/// A source plugin: a factory of [`Source`] instances, identified by a unique name.
///
/// Implement this, then export it with [`export_plugin!`](crate::export_plugin) in a
/// `cdylib` crate (or register it as a built-in in the gateway).
pub trait SourcePlugin: 'static {
    /// The name used in manifests (`source.plugin`). Lowercase, `[a-z0-9-]+`.
    const NAME: &'static str;
    /// The plugin's own version (usually `env!("CARGO_PKG_VERSION")`).
    const VERSION: &'static str;
    /// One line saying what the plugin does, shown by `camgate plugins`.
    const DESCRIPTION: &'static str;
    /// The options of the manifest's `source` mapping (minus `plugin`), deserialized from
    /// JSON. Use `#[serde(deny_unknown_fields)]` so typos are errors, as the gateway's own
    /// keys are.
    type Config: DeserializeOwned;
    /// The running instance type.
    type Source: Source;

    /// Semantic checks beyond deserialization (ranges, URL schemes...). Called by
    /// `camgate check`, on reload and before `create`. Messages must not contain secrets.
    fn check(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Builds an instance. Must not start threads or touch the network yet.
    fn create(config: Self::Config, host: Host) -> Result<Self::Source, PluginError>;
}

/// A running (or startable) source of frames (JPEG, H.264 or H.265).
pub trait Source: Send + 'static {
    /// Starts producing frames on the plugin's own threads and returns promptly.
    fn start(&mut self) -> Result<(), PluginError>;
    /// Stops producing: blocking and idempotent; joins every thread the source started.
    fn stop(&mut self);
}

/// An error a plugin reports to the host: a human-readable message without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError(pub String);

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PluginError {}

impl From<String> for PluginError {
    fn from(s: String) -> Self {
        PluginError(s)
    }
}

impl From<&str> for PluginError {
    fn from(s: &str) -> Self {
        PluginError(s.to_owned())
    }
}

/// The state a source reports; the host shows it in the API, the UI and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// Trying to reach the input for the first time (or after a restart).
    Connecting,
    /// Frames are flowing.
    Live,
    /// Lost the input; trying again with backoff.
    Retrying,
    /// Gave up; the host must restart the source to try again.
    Failed,
}

impl SourceState {
    /// The state for an `abi::STATE_*` code, `None` for an unknown one.
    pub(crate) fn from_abi(state: u32) -> Option<Self> {
        match state {
            abi::STATE_CONNECTING => Some(SourceState::Connecting),
            abi::STATE_LIVE => Some(SourceState::Live),
            abi::STATE_RETRYING => Some(SourceState::Retrying),
            abi::STATE_FAILED => Some(SourceState::Failed),
            _ => None,
        }
    }

    fn to_abi(self) -> u32 {
        match self {
            SourceState::Connecting => abi::STATE_CONNECTING,
            SourceState::Live => abi::STATE_LIVE,
            SourceState::Retrying => abi::STATE_RETRYING,
            SourceState::Failed => abi::STATE_FAILED,
        }
    }
}

/// Log levels for [`Host::log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something is wrong but handled.
    Warn,
    /// Normal operation worth recording.
    Info,
    /// Detail for troubleshooting.
    Debug,
}

impl LogLevel {
    /// The level for an `abi::LOG_*` code; unknown codes read as `Debug`.
    pub(crate) fn from_abi(level: u32) -> Self {
        match level {
            abi::LOG_ERROR => LogLevel::Error,
            abi::LOG_WARN => LogLevel::Warn,
            abi::LOG_INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }

    fn to_abi(self) -> u32 {
        match self {
            LogLevel::Error => abi::LOG_ERROR,
            LogLevel::Warn => abi::LOG_WARN,
            LogLevel::Info => abi::LOG_INFO,
            LogLevel::Debug => abi::LOG_DEBUG,
        }
    }
}

/// One complete JPEG picture to publish.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The JPEG bytes, SOI to EOI. Borrowed: the host copies them.
    pub jpeg: &'a [u8],
    /// Width in pixels, 0 if unknown.
    pub width: u32,
    /// Height in pixels, 0 if unknown.
    pub height: u32,
    /// When the picture was captured (the host measures latency from it).
    pub captured_at: SystemTime,
}

/// How a [`MediaFrame`] is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// One whole JPEG image per frame.
    Jpeg,
    /// H.264 / AVC: one access unit per frame in AVCC form, avcC configuration record.
    H264,
    /// H.265 / HEVC: one access unit per frame in HVCC form, hvcC configuration record.
    H265,
}

impl Codec {
    /// The `abi::CODEC_*` code.
    pub fn to_abi(self) -> u32 {
        match self {
            Codec::Jpeg => abi::CODEC_JPEG,
            Codec::H264 => abi::CODEC_H264,
            Codec::H265 => abi::CODEC_H265,
        }
    }

    /// The codec for an `abi::CODEC_*` code, `None` for an unknown one.
    pub fn from_abi(code: u32) -> Option<Self> {
        match code {
            abi::CODEC_JPEG => Some(Codec::Jpeg),
            abi::CODEC_H264 => Some(Codec::H264),
            abi::CODEC_H265 => Some(Codec::H265),
            _ => None,
        }
    }
}

/// One encoded frame of any codec to publish with [`Host::send_media`].
///
/// - [`Codec::Jpeg`]: `data` is one whole JPEG (exactly what [`Frame::jpeg`] is), `config`
///   is `None`, `keyframe` is `true`.
/// - [`Codec::H264`] / [`Codec::H265`]: `data` is ONE access unit in AVCC/HVCC form: each
///   NAL unit prefixed by its length as a 4-byte big-endian integer (no Annex B start
///   codes); parameter sets may be left out of it. `config` is the decoder configuration
///   record (avcC for H.264, hvcC for H.265, with 4-byte lengths), REQUIRED on the first
///   frame a source sends and whenever it changes, `None` otherwise. `keyframe` is `true`
///   for IDR (H.264) / IRAP (H.265) access units.
///
/// The host checks all of this and refuses a malformed frame with
/// [`SendError::Rejected`] (and logs why), so a mistake shows up at once, not in a viewer.
#[derive(Debug, Clone, Copy)]
pub struct MediaFrame<'a> {
    /// How `data` is coded.
    pub codec: Codec,
    /// `true` if the frame decodes on its own (every JPEG; IDR/IRAP access units).
    pub keyframe: bool,
    /// The encoded frame. Borrowed: the host copies it.
    pub data: &'a [u8],
    /// The decoder configuration record when it is new or changed (video only), else
    /// `None`. `Some(&[])` counts as `None`.
    pub config: Option<&'a [u8]>,
    /// Coded width in pixels, 0 if unknown.
    pub width: u32,
    /// Coded height in pixels, 0 if unknown.
    pub height: u32,
    /// When the picture was captured (the host measures latency from it).
    pub captured_at: SystemTime,
}

/// Microseconds since the Unix epoch, 0 for a time before it (the ABI's "unknown").
fn micros_since_epoch(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Why the host did not take a frame ([`Host::send_frame`], [`Host::send_media`]).
///
/// The two cases need opposite reactions, so they are kept apart: `Closed` is final (the
/// instance is being stopped: end the producer), `Rejected` is about this one frame (a
/// host-side error, e.g. a panic caught in the host): log it, rate-limited, and keep
/// producing. A producer must not go quiet on `Rejected` while it reports `Live`.
///
/// [`SendError::Closed`] is also re-exported at the crate root as `Closed`, so code written
/// against the older `Result<(), Closed>` API (`Err(Closed) => return`) still compiles and
/// keeps its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The host no longer accepts frames from this instance (it is stopping): stop
    /// producing. Every later call returns `Closed` too.
    Closed,
    /// The host could not take this frame (the ABI status it returned, e.g.
    /// [`abi::STATUS_ERROR`] or [`abi::STATUS_ABI_MISMATCH`]); later frames may succeed.
    Rejected {
        /// The raw status code from the host.
        status: i32,
    },
}

impl SendError {
    /// Maps a non-OK status of the host's frame callback.
    fn from_status(status: i32) -> Self {
        if status == abi::STATUS_CLOSED {
            SendError::Closed
        } else {
            SendError::Rejected { status }
        }
    }

    /// `Ok` for [`abi::STATUS_OK`], else the error for the status.
    fn check(status: i32) -> Result<(), SendError> {
        if status == abi::STATUS_OK {
            Ok(())
        } else {
            Err(SendError::from_status(status))
        }
    }

    /// `true` for [`SendError::Closed`]: the producer should end.
    pub fn is_closed(&self) -> bool {
        matches!(self, SendError::Closed)
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Closed => f.write_str("the host closed this source (it is stopping)"),
            SendError::Rejected { status } => {
                write!(f, "the host rejected the frame (status {status})")
            }
        }
    }
}

impl std::error::Error for SendError {}

/// A cheap, cloneable, thread-safe handle to the host callbacks of one instance.
#[derive(Clone)]
pub struct Host {
    shared: Arc<HostShared>,
}

struct HostShared {
    callbacks: HostCallbacks,
    /// Keeps the callbacks' `ctx` alive when this crate owns it ([`crate::testing`]).
    _owner: Option<Box<dyn std::any::Any + Send + Sync>>,
    /// `true` while callbacks may be forwarded. Readers hold the read lock for the duration
    /// of a callback; closing takes the write lock, so it waits for calls in flight.
    open: RwLock<bool>,
}

// SAFETY: the ABI requires the host's callbacks and their `ctx` to be callable from any
// thread concurrently (see `HostCallbacks`); the struct holds nothing else.
unsafe impl Send for HostShared {}
// SAFETY: as above; shared access only reads the copied function pointers and ctx.
unsafe impl Sync for HostShared {}

impl Host {
    pub(crate) fn new(callbacks: HostCallbacks) -> Self {
        Self::with_owner(callbacks, None)
    }

    /// A handle whose callbacks' `ctx` is owned by `owner` (kept alive as long as the handle).
    pub(crate) fn with_owner(
        callbacks: HostCallbacks,
        owner: Option<Box<dyn std::any::Any + Send + Sync>>,
    ) -> Self {
        Host {
            shared: Arc::new(HostShared {
                callbacks,
                _owner: owner,
                open: RwLock::new(true),
            }),
        }
    }

    /// Runs `f` with the callbacks if the gate is still open.
    fn with_open<R>(&self, f: impl FnOnce(&HostCallbacks) -> R) -> Option<R> {
        let open = self.shared.open.read().unwrap_or_else(|e| e.into_inner());
        if *open {
            Some(f(&self.shared.callbacks))
        } else {
            None
        }
    }

    /// Closes the gate: waits for callbacks in flight, then turns every method into a no-op.
    pub(crate) fn close(&self) {
        let mut open = self.shared.open.write().unwrap_or_else(|e| e.into_inner());
        *open = false;
    }

    /// `true` once the host has stopped this instance; producers should return.
    pub fn is_closed(&self) -> bool {
        !*self.shared.open.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes one frame (the host copies it).
    ///
    /// `Err(SendError::Closed)` means: stop producing. `Err(SendError::Rejected { .. })`
    /// means the host could not take this frame; keep going (and log it, rate-limited).
    pub fn send_frame(&self, frame: &Frame<'_>) -> Result<(), SendError> {
        let raw = FrameRef {
            size: std::mem::size_of::<FrameRef<'_>>(),
            jpeg: ByteSlice::new(frame.jpeg),
            width: frame.width,
            height: frame.height,
            capture_time_us: micros_since_epoch(frame.captured_at),
        };
        let status = self
            .with_open(|cb| (cb.on_frame)(cb.ctx, &raw))
            .unwrap_or(abi::STATUS_CLOSED);
        SendError::check(status)
    }

    /// Publishes one frame of any codec (the host copies what it keeps); see [`MediaFrame`]
    /// for what `data` and `config` must be.
    ///
    /// Same gate and errors as [`Host::send_frame`]: `Err(SendError::Closed)` means stop
    /// producing; `Err(SendError::Rejected { .. })` refuses this frame only (the host logs
    /// why, e.g. a video frame before its first `config`). A JPEG sent here is handled
    /// exactly like one sent with `send_frame`.
    pub fn send_media(&self, frame: &MediaFrame<'_>) -> Result<(), SendError> {
        let raw = MediaFrameRef {
            size: std::mem::size_of::<MediaFrameRef<'_>>(),
            codec: frame.codec.to_abi(),
            flags: if frame.keyframe {
                abi::MEDIA_KEYFRAME
            } else {
                0
            },
            data: ByteSlice::new(frame.data),
            config: ByteSlice::new(frame.config.unwrap_or(&[])),
            width: frame.width,
            height: frame.height,
            capture_time_us: micros_since_epoch(frame.captured_at),
        };
        let status = self
            .with_open(|cb| (cb.on_media)(cb.ctx, &raw))
            .unwrap_or(abi::STATUS_CLOSED);
        SendError::check(status)
    }

    /// Tells the host that the next frame follows `frames` frames skipped before they
    /// reached this source (e.g. a relay whose upstream's sequence numbers jumped), so the
    /// host numbers it with the same gap and viewers count the frames as missing. Call it
    /// right before sending that frame, from the thread that sends it.
    ///
    /// Returns `false` when the host was not told: it is closed, or it is a v2 host from
    /// before this callback (its `HostCallbacks` is too small or has none); frames then
    /// simply follow without a gap. `frames == 0` tells nothing.
    pub fn skipped(&self, frames: u64) -> bool {
        if frames == 0 {
            return false;
        }
        self.with_open(|cb| {
            // Older v2 hosts pass a struct that ends before `on_skip` (`abi.rs`).
            let covered =
                cb.size >= abi::HOST_CALLBACKS_V2_SIZE + std::mem::size_of_val(&cb.on_skip);
            match cb.on_skip.filter(|_| covered) {
                Some(on_skip) => on_skip(cb.ctx, frames) == abi::STATUS_OK,
                None => false,
            }
        })
        .unwrap_or(false)
    }

    /// Reports a state change with a message for operators. Never put secrets in it.
    pub fn set_state(&self, state: SourceState, message: &str) {
        self.with_open(|cb| (cb.on_state)(cb.ctx, state.to_abi(), StrRef::new(message)));
    }

    /// Logs through the host's logger (which adds stream and plugin context).
    pub fn log(&self, level: LogLevel, message: &str) {
        self.with_open(|cb| (cb.on_log)(cb.ctx, level.to_abi(), StrRef::new(message)));
    }

    /// Spawns a named worker thread whose panic is caught and reported as
    /// [`SourceState::Failed`] instead of silently killing the stream.
    pub fn spawn<F>(&self, name: &str, work: F) -> std::io::Result<std::thread::JoinHandle<()>>
    where
        F: FnOnce(Host) + Send + 'static,
    {
        let host = self.clone();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let for_work = host.clone();
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || work(for_work)));
                if let Err(payload) = outcome {
                    let message = format!(
                        "plugin worker thread panicked: {}",
                        crate::export::panic_message(payload.as_ref())
                    );
                    host.log(LogLevel::Error, &message);
                    host.set_state(SourceState::Failed, &message);
                }
            })
    }
}
