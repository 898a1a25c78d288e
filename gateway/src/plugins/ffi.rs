//! The host side of the plugin ABI: the handshake, safe wrappers around a plugin's vtable
//! and the host callbacks plugins call into.
//!
//! This module and `loader.rs` are the only gateway code allowed `unsafe`; each block says
//! why it is sound. Invariants:
//! - A [`LoadedPlugin`]'s vtable points into a library that is never unloaded, and was
//!   checked before it was built: `size` and `abi_version` read alone through the raw
//!   pointer, every function pointer non-null (a plugin that returns OK without filling its
//!   vtable is refused, not called).
//! - A plugin never holds a pointer to host memory: its `ctx` is a token looked up in a
//!   process-wide table of live contexts. A [`PluginInstance`] removes its context from the
//!   table only after `destroy` returned; a callback with a token that is stopped or gone
//!   (a C plugin thread that outlived `stop`/`destroy`) is refused and counted in
//!   `camgate_plugin_late_callbacks_total{plugin}` — never served from freed memory. The
//!   token carries the plugin's index, so the count names the plugin even after destroy,
//!   and nothing is kept per destroyed instance.
//! - A frame is used only after its `size` (read alone) shows the whole `FrameRef` /
//!   `MediaFrameRef`; a media frame reaches the hub only through
//!   [`FrameSink::publish_media`], which checks it (refusals are counted in
//!   `camgate_frames_refused_total` and logged, rate-limited).
//! - Plugins of ABI v1 and v2 run side by side. Both get the same (v2) `HostCallbacks`:
//!   v2 only appended `on_media` (and, later within v2, the optional `on_skip`), so a v1
//!   plugin reads the prefix it knows and a v2 plugin built before `on_skip` never sees it.
//!   The vtable layout is the same in both; the handshake checks it equally strictly, with
//!   the plugin's own version.
//! - No host callback unwinds into plugin code: each catches panics.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::addr_of;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use prometheus::IntCounterVec;
use tokio::time::Instant;

use camgate_plugin_api::abi::{
    self, ABI_VERSION, EntryFn, ErrorSink, FrameRef, HostCallbacks, MediaFrameRef, PluginVTable,
    StrRef,
};

use super::error::{CallError, HandshakeError};
use crate::hub::{Codec, FrameSink, MediaIn, MediaRefused, StreamState};
use crate::redact::Redactor;
use crate::telemetry::LogBudget;

/// Where a plugin came from, for listings and error messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PluginOrigin {
    /// Linked into the gateway binary.
    Builtin,
    /// Loaded from a shared library.
    Library {
        /// The library file.
        path: std::path::PathBuf,
    },
}

impl std::fmt::Display for PluginOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginOrigin::Builtin => f.write_str("built-in"),
            PluginOrigin::Library { path } => write!(f, "{}", path.display()),
        }
    }
}

/// A plugin's identity as shown by `camgate plugins` and `GET /api/plugins`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginDescriptor {
    /// Name used in manifests.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One line about what it does.
    pub description: String,
    /// The ABI version it speaks.
    pub abi_version: u32,
    /// Built-in or the library path.
    pub origin: PluginOrigin,
}

/// A plugin that passed the handshake.
pub struct LoadedPlugin {
    vtable: PluginVTable,
    descriptor: PluginDescriptor,
}

// SAFETY: the vtable holds `extern "C"` function pointers and pointers to `'static` strings
// in a library that is never unloaded; the ABI requires its functions to be callable from any
// thread.
unsafe impl Send for LoadedPlugin {}
// SAFETY: as above; the vtable is never mutated after the handshake.
unsafe impl Sync for LoadedPlugin {}

/// Runs `f` with an [`ErrorSink`] that collects the text written to it.
fn collecting_errors<R>(f: impl FnOnce(ErrorSink) -> R) -> (R, String) {
    extern "C" fn append(ctx: *mut c_void, text: StrRef<'_>) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `ctx` is the `&mut String` below, alive for the call that received this
            // sink (the ABI forbids keeping the sink past the call); `text` is borrowed for
            // this call.
            let (buffer, text) = unsafe { (&mut *(ctx as *mut String), text.to_string_lossy()) };
            buffer.push_str(&text);
        }));
    }
    let mut buffer = String::new();
    let sink = ErrorSink {
        ctx: &mut buffer as *mut String as *mut c_void,
        write: append,
    };
    let result = f(sink);
    (result, buffer)
}

impl LoadedPlugin {
    /// Performs the handshake through `entry` (a built-in's function or a library symbol)
    /// at the current ABI version.
    pub fn handshake(entry: EntryFn, origin: PluginOrigin) -> Result<LoadedPlugin, HandshakeError> {
        Self::handshake_at(entry, ABI_VERSION, origin)
    }

    /// Performs the handshake at `abi_version` ([`ABI_VERSION`] or
    /// [`abi::ABI_VERSION_V1`]: the versions whose vtable is [`PluginVTable`]), the
    /// version the library reported.
    ///
    /// Nothing is built from the plugin's memory before it is checked: `size` and
    /// `abi_version` are read alone, then every function pointer is checked to be set.
    pub fn handshake_at(
        entry: EntryFn,
        abi_version: u32,
        origin: PluginOrigin,
    ) -> Result<LoadedPlugin, HandshakeError> {
        let expected_version = abi_version;
        if expected_version != ABI_VERSION && expected_version != abi::ABI_VERSION_V1 {
            return Err(HandshakeError::UnsupportedVersion(expected_version));
        }
        let buffer_size = std::mem::size_of::<PluginVTable>();
        let mut buffer = std::mem::MaybeUninit::<PluginVTable>::zeroed();
        let out = buffer.as_mut_ptr();
        let (status, message) =
            collecting_errors(|err| entry(expected_version, out, buffer_size, err));
        if status != abi::STATUS_OK {
            return Err(HandshakeError::Entry(CallError::from_status(
                status, message,
            )));
        }
        // SAFETY: `out` points to our zeroed buffer of `buffer_size` bytes; `size` and
        // `abi_version` are plain integers, valid for any bit pattern, read without forming
        // a reference to the (possibly incomplete) vtable.
        let (size, abi_version) = unsafe {
            (
                addr_of!((*out).size).read(),
                addr_of!((*out).abi_version).read(),
            )
        };
        if size < buffer_size {
            return Err(HandshakeError::VtableTooSmall {
                size,
                needed: buffer_size,
                version: expected_version,
            });
        }
        if size > buffer_size {
            return Err(HandshakeError::VtableTooLarge {
                size,
                buffer: buffer_size,
            });
        }
        if abi_version != expected_version {
            return Err(HandshakeError::VersionMismatch {
                reported: abi_version,
                asked: expected_version,
            });
        }
        // SAFETY: as above; each function pointer field is read as the pointer-sized integer
        // it is (an `extern "C" fn` has the size and layout of `usize`), never as a function
        // pointer, so a null one is just 0 here.
        let functions = unsafe {
            [
                ("validate", addr_of!((*out).validate).cast::<usize>().read()),
                ("create", addr_of!((*out).create).cast::<usize>().read()),
                ("start", addr_of!((*out).start).cast::<usize>().read()),
                ("stop", addr_of!((*out).stop).cast::<usize>().read()),
                ("destroy", addr_of!((*out).destroy).cast::<usize>().read()),
            ]
        };
        if let Some((name, _)) = functions.iter().find(|(_, address)| *address == 0) {
            return Err(HandshakeError::MissingFunction(name));
        }
        // SAFETY: the plugin wrote the whole vtable (`size` covers it); its integers and
        // string pointers are valid for any bit pattern and every function pointer was
        // checked non-null above.
        let vtable = unsafe { buffer.assume_init() };
        // SAFETY: the strings point to `'static` data in a library that is never unloaded.
        let (name, version, description) = unsafe {
            (
                vtable.name.to_string_lossy(),
                vtable.version.to_string_lossy(),
                vtable.description.to_string_lossy(),
            )
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(HandshakeError::InvalidName(name));
        }
        // The late-callback series exists (at 0) for every plugin that can run.
        LATE_CALLBACKS.with_label_values(&[&name]);
        Ok(LoadedPlugin {
            vtable,
            descriptor: PluginDescriptor {
                name,
                version,
                description,
                abi_version: vtable.abi_version,
                origin,
            },
        })
    }

    /// The plugin's identity.
    pub fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    /// Asks the plugin to check a JSON configuration. The plugin's text is not scrubbed
    /// here: the caller knows the options, and so the secrets.
    pub fn validate(&self, config_json: &str) -> Result<(), CallError> {
        let (status, message) =
            collecting_errors(|err| (self.vtable.validate)(StrRef::new(config_json), err));
        if status == abi::STATUS_OK {
            Ok(())
        } else {
            Err(CallError::from_status(status, message))
        }
    }
}

/// What the host keeps per plugin instance. Plugins reach it through a token (their `ctx`)
/// looked up in [`CONTEXTS`], never through a pointer.
pub struct HostContext {
    sink: FrameSink,
    stream: String,
    plugin: String,
    redactor: Redactor,
    log_budget: Mutex<LogBudget>,
    /// Set once the plugin's `stop` returned: any callback after that breaks the ABI.
    stopped: AtomicBool,
}

/// Callbacks that arrived after their instance's `stop` returned (ABI violations), by
/// plugin, over the life of the process: they are refused, and a non-zero value points at
/// a buggy plugin. Process-wide because contexts and plugins outlive any one registry;
/// [`late_callbacks_metric`] hands it to the gateway's registry.
static LATE_CALLBACKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    IntCounterVec::new(
        prometheus::Opts::new(
            "plugin_late_callbacks_total",
            "Plugin callbacks refused because they came after the instance was stopped or \
             destroyed (an ABI violation by the plugin).",
        )
        .namespace("camgate"),
        &["plugin"],
    )
    .expect("a valid metric definition")
});

/// The `camgate_plugin_late_callbacks_total{plugin}` counter, to register in a registry.
pub fn late_callbacks_metric() -> IntCounterVec {
    LATE_CALLBACKS.clone()
}

/// Warnings about late callbacks share one budget, so a rogue thread cannot flood the log.
static LATE_LOG_BUDGET: LazyLock<Mutex<LogBudget>> =
    LazyLock::new(|| Mutex::new(LogBudget::new(LOG_LINES_PER_WINDOW, LOG_WINDOW)));

/// Bits of a token that count instances; the plugin's index sits above them.
const TOKEN_SERIAL_BITS: u32 = 40;

/// The table behind the `ctx` tokens plugins hold.
///
/// Invariant: a token is never reused (a 40-bit serial per process), so a stale token can
/// only miss, never reach another instance's context.
struct Contexts {
    live: DashMap<u64, Arc<HostContext>>,
    /// Plugin names by index (the index is part of each token); bounded by the number of
    /// distinct plugin names, not by instances.
    plugins: Mutex<Vec<String>>,
    serial: AtomicU64,
}

static CONTEXTS: LazyLock<Contexts> = LazyLock::new(|| Contexts {
    live: DashMap::new(),
    plugins: Mutex::new(Vec::new()),
    serial: AtomicU64::new(0),
});

impl Contexts {
    /// Adds `host` and returns its new token.
    fn register(&self, host: Arc<HostContext>) -> u64 {
        let token = self.issue(&host.plugin);
        self.live.insert(token, host);
        token
    }

    /// A fresh token for an instance of `plugin` (never 0, never reused).
    fn issue(&self, plugin: &str) -> u64 {
        let index = {
            let mut plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
            match plugins.iter().position(|name| name == plugin) {
                Some(index) => index,
                None => {
                    plugins.push(plugin.to_owned());
                    plugins.len() - 1
                }
            }
        };
        let serial = self.serial.fetch_add(1, Ordering::Relaxed) + 1;
        ((index as u64) << TOKEN_SERIAL_BITS) | (serial & ((1 << TOKEN_SERIAL_BITS) - 1))
    }

    /// The plugin name a token was issued for.
    fn plugin_of(&self, token: u64) -> String {
        let index = usize::try_from(token >> TOKEN_SERIAL_BITS).unwrap_or(usize::MAX);
        let plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        plugins
            .get(index)
            .cloned()
            .unwrap_or_else(|| "unknown".to_owned())
    }
}

/// The `ctx` value a plugin gets for `token`: an opaque, non-null, pointer-sized value.
fn token_to_ctx(token: u64) -> *mut c_void {
    std::ptr::without_provenance_mut(usize::try_from(token).expect("64-bit targets"))
}

/// The host context behind `ctx`, if its instance is still running. A stopped or destroyed
/// one (or a forged token) is refused and counted as a late callback.
fn resolve(ctx: *mut c_void, callback: &'static str) -> Option<Arc<HostContext>> {
    let token = ctx.addr() as u64;
    let found = CONTEXTS
        .live
        .get(&token)
        .map(|entry| Arc::clone(entry.value()));
    match found {
        Some(host) if !host.stopped.load(Ordering::SeqCst) => Some(host),
        Some(host) => {
            count_late(&host.plugin, &host.stream, callback);
            None
        }
        None => {
            count_late(&CONTEXTS.plugin_of(token), "(destroyed instance)", callback);
            None
        }
    }
}

fn count_late(plugin: &str, stream: &str, callback: &'static str) {
    LATE_CALLBACKS.with_label_values(&[plugin]).inc();
    let (allowed, suppressed) = LATE_LOG_BUDGET
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take(Instant::now());
    if allowed {
        tracing::warn!(%stream, %plugin, callback, suppressed, "plugin called the host after stop returned (ABI violation); refused");
    }
}

impl HostContext {
    /// A context publishing into `sink`, scrubbing `redactor`'s secrets from every text.
    pub fn new(sink: FrameSink, plugin: &str, redactor: Redactor) -> Self {
        HostContext {
            stream: sink.stream_id(),
            sink,
            plugin: plugin.to_owned(),
            redactor,
            log_budget: Mutex::new(LogBudget::new(LOG_LINES_PER_WINDOW, LOG_WINDOW)),
            stopped: AtomicBool::new(false),
        }
    }

    /// A frame from the plugin was refused: a plugin bug its author must see (counted per
    /// stream, logged rate-limited: it may happen at the frame rate).
    fn refused(&self, why: &dyn std::fmt::Display) {
        self.sink.refused(&format!("plugin {}: {why}", self.plugin));
    }
}

/// Plugin log lines allowed per window; the rest are counted and summarised, so a chatty
/// plugin (or ffmpeg's stderr) cannot flood the logs.
const LOG_LINES_PER_WINDOW: u32 = 50;
const LOG_WINDOW: Duration = Duration::from_secs(10);

extern "C" fn on_frame(ctx: *mut c_void, frame: *const FrameRef<'_>) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        let Some(host) = resolve(ctx, "on_frame") else {
            return abi::STATUS_CLOSED;
        };
        if frame.is_null() {
            return abi::STATUS_ERROR;
        }
        // Growth rule: read `size` alone before anything else of the plugin's struct.
        // SAFETY: non-null, and the ABI says `frame` points to a `FrameRef` that starts with
        // its `size`, valid for this call; only that field is read.
        let size = unsafe { addr_of!((*frame).size).read() };
        let needed = std::mem::size_of::<FrameRef<'_>>();
        if size < needed {
            host.refused(&format_args!(
                "a FrameRef of {size} bytes, smaller than ABI v1's {needed}"
            ));
            return abi::STATUS_ABI_MISMATCH;
        }
        // SAFETY: the struct is at least as large as ours, so every field we read is there;
        // it is borrowed for this call.
        let frame = unsafe { &*frame };
        // SAFETY: the JPEG bytes are borrowed for this call; `publish` copies them.
        let jpeg = unsafe { frame.jpeg.as_slice() };
        if host
            .sink
            .publish(jpeg, frame.width, frame.height, frame.capture_time_us)
        {
            abi::STATUS_OK
        } else {
            abi::STATUS_CLOSED
        }
    }))
    .unwrap_or(abi::STATUS_ERROR)
}

extern "C" fn on_media(ctx: *mut c_void, frame: *const MediaFrameRef<'_>) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        let Some(host) = resolve(ctx, "on_media") else {
            return abi::STATUS_CLOSED;
        };
        if frame.is_null() {
            return abi::STATUS_ERROR;
        }
        // Growth rule: read `size` alone before anything else of the plugin's struct.
        // SAFETY: non-null, and the ABI says `frame` points to a `MediaFrameRef` that starts
        // with its `size`, valid for this call; only that field is read.
        let size = unsafe { addr_of!((*frame).size).read() };
        let needed = std::mem::size_of::<MediaFrameRef<'_>>();
        if size < needed {
            host.refused(&format_args!(
                "a MediaFrameRef of {size} bytes, smaller than ABI v2's {needed}"
            ));
            return abi::STATUS_ABI_MISMATCH;
        }
        // SAFETY: the struct is at least as large as ours, so every field we read is there;
        // it is borrowed for this call.
        let frame = unsafe { &*frame };
        let codec = match frame.codec {
            abi::CODEC_JPEG => Codec::Jpeg,
            abi::CODEC_H264 => Codec::H264,
            abi::CODEC_H265 => Codec::H265,
            other => {
                host.refused(&format!("unknown codec {other}"));
                return abi::STATUS_ERROR;
            }
        };
        if frame.flags & !abi::MEDIA_KEYFRAME != 0 {
            host.refused(&format!("unknown flag bits {:#x}", frame.flags));
            return abi::STATUS_ERROR;
        }
        // SAFETY: both slices are borrowed for this call; `publish_media` copies what it
        // keeps.
        let (data, config) = unsafe { (frame.data.as_slice(), frame.config.as_slice()) };
        let media = MediaIn {
            codec,
            keyframe: frame.flags & abi::MEDIA_KEYFRAME != 0,
            data,
            config: (!config.is_empty()).then_some(config),
            width: frame.width,
            height: frame.height,
            captured_at_us: frame.capture_time_us,
        };
        match host.sink.publish_media(&media) {
            Ok(()) => abi::STATUS_OK,
            Err(MediaRefused::Closed) => abi::STATUS_CLOSED,
            Err(refused) => {
                host.refused(&refused);
                abi::STATUS_ERROR
            }
        }
    }))
    .unwrap_or(abi::STATUS_ERROR)
}

extern "C" fn on_skip(ctx: *mut c_void, frames: u64) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        let Some(host) = resolve(ctx, "on_skip") else {
            return abi::STATUS_CLOSED;
        };
        if host.sink.skip(frames) {
            abi::STATUS_OK
        } else {
            abi::STATUS_CLOSED
        }
    }))
    .unwrap_or(abi::STATUS_ERROR)
}

extern "C" fn on_state(ctx: *mut c_void, state: u32, message: StrRef<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let Some(host) = resolve(ctx, "on_state") else {
            return;
        };
        // SAFETY: the message is borrowed for this call.
        let message = unsafe { message.to_string_lossy() };
        let state = match state {
            abi::STATE_CONNECTING => StreamState::Connecting,
            abi::STATE_LIVE => StreamState::Live,
            abi::STATE_RETRYING => StreamState::Retrying,
            abi::STATE_FAILED => StreamState::Failed,
            other => {
                tracing::warn!(stream = %host.stream, plugin = %host.plugin, state = other, "plugin reported an unknown state");
                return;
            }
        };
        let message = host.redactor.scrub(&message);
        tracing::info!(stream = %host.stream, plugin = %host.plugin, state = state.as_str(), message = %message, "source state");
        host.sink.set_state(state, &message);
    }));
}

extern "C" fn on_log(ctx: *mut c_void, level: u32, message: StrRef<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let Some(host) = resolve(ctx, "on_log") else {
            return;
        };
        // SAFETY: the message is borrowed for this call.
        let message = unsafe { message.to_string_lossy() };
        let (allowed, suppressed) = host
            .log_budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(Instant::now());
        if suppressed > 0 {
            tracing::warn!(stream = %host.stream, plugin = %host.plugin, suppressed, "plugin log lines suppressed (rate limit)");
        }
        if !allowed {
            return;
        }
        let message = host.redactor.scrub(&message);
        let (stream, plugin) = (&host.stream, &host.plugin);
        match level {
            abi::LOG_ERROR => {
                tracing::error!(target: "camgate::plugin", %stream, %plugin, "{message}")
            }
            abi::LOG_WARN => {
                tracing::warn!(target: "camgate::plugin", %stream, %plugin, "{message}")
            }
            abi::LOG_INFO => {
                tracing::info!(target: "camgate::plugin", %stream, %plugin, "{message}")
            }
            _ => tracing::debug!(target: "camgate::plugin", %stream, %plugin, "{message}"),
        }
    }));
}

/// One created plugin instance. Stops (if needed) and destroys it on drop.
pub struct PluginInstance {
    plugin: Arc<LoadedPlugin>,
    ptr: *mut c_void,
    /// This instance's context, also in [`CONTEXTS`] under `token` until `destroy` returned.
    host: Arc<HostContext>,
    token: u64,
    stopped: bool,
}

// SAFETY: the ABI lets the host call an instance's functions from any thread (not
// concurrently: `&mut self` on start/stop serialises them); the context is `Sync`.
unsafe impl Send for PluginInstance {}

impl PluginInstance {
    /// Creates an instance from a JSON configuration.
    pub fn create(
        plugin: Arc<LoadedPlugin>,
        config_json: &str,
        host: HostContext,
    ) -> Result<PluginInstance, CallError> {
        let host = Arc::new(host);
        let token = CONTEXTS.register(Arc::clone(&host));
        let callbacks = HostCallbacks {
            size: std::mem::size_of::<HostCallbacks>(),
            ctx: token_to_ctx(token),
            on_frame,
            on_state,
            on_log,
            on_media,
            on_skip: Some(on_skip),
        };
        let mut ptr: *mut c_void = std::ptr::null_mut();
        let (status, message) = collecting_errors(|err| {
            (plugin.vtable.create)(StrRef::new(config_json), &callbacks, &mut ptr, err)
        });
        if status != abi::STATUS_OK || ptr.is_null() {
            // No instance exists, so nothing may call back with this token any more.
            host.stopped.store(true, Ordering::SeqCst);
            CONTEXTS.live.remove(&token);
            return Err(CallError::from_status(status, message).scrubbed(&host.redactor));
        }
        Ok(PluginInstance {
            plugin,
            ptr,
            host,
            token,
            stopped: false,
        })
    }

    /// Starts the instance.
    pub fn start(&mut self) -> Result<(), CallError> {
        let (status, message) = collecting_errors(|err| (self.plugin.vtable.start)(self.ptr, err));
        if status == abi::STATUS_OK {
            Ok(())
        } else {
            Err(CallError::from_status(status, message).scrubbed(&self.host.redactor))
        }
    }

    /// Stops the instance (blocking, idempotent).
    pub fn stop(&mut self) -> Result<(), CallError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let (status, message) = collecting_errors(|err| (self.plugin.vtable.stop)(self.ptr, err));
        self.host.stopped.store(true, Ordering::SeqCst);
        if status == abi::STATUS_OK {
            Ok(())
        } else {
            Err(CallError::from_status(status, message).scrubbed(&self.host.redactor))
        }
    }
}

impl Drop for PluginInstance {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(stream = %self.host.stream, plugin = %self.host.plugin, error = %e, "plugin stop failed");
        }
        (self.plugin.vtable.destroy)(self.ptr);
        // From here on the token misses the table: a plugin thread that still calls back is
        // refused and counted, whatever this instance's memory becomes.
        CONTEXTS.live.remove(&self.token);
    }
}

#[cfg(test)]
mod tests {
    //! The handshake against C-style entry functions that break the contract in the ways a
    //! hand-written plugin can: nothing is called or built before it is checked.

    use std::ptr::addr_of_mut;

    use super::super::error::FailureKind;
    use super::*;

    /// A correct entry (testsrc's), to derive the broken ones from.
    fn fill(out: *mut PluginVTable, out_size: usize, err: ErrorSink) -> i32 {
        camgate_plugin_api::export::entry_fn::<camgate_testsrc::TestSrc>()(
            ABI_VERSION,
            out,
            out_size,
            err,
        )
    }

    extern "C" fn ok_without_filling(_: u32, _: *mut PluginVTable, _: usize, _: ErrorSink) -> i32 {
        abi::STATUS_OK
    }

    extern "C" fn smaller_vtable(_: u32, out: *mut PluginVTable, _: usize, _: ErrorSink) -> i32 {
        // An older, smaller vtable: only the header is written.
        // SAFETY: `out` is the host's buffer, large enough for a whole vtable.
        unsafe {
            addr_of_mut!((*out).size).write(16);
            addr_of_mut!((*out).abi_version).write(ABI_VERSION);
        }
        abi::STATUS_OK
    }

    extern "C" fn null_stop(_: u32, out: *mut PluginVTable, size: usize, err: ErrorSink) -> i32 {
        let status = fill(out, size, err);
        // SAFETY: as above; the field is overwritten as the integer 0, never called.
        unsafe { addr_of_mut!((*out).stop).cast::<usize>().write(0) };
        status
    }

    extern "C" fn oversized(_: u32, out: *mut PluginVTable, size: usize, err: ErrorSink) -> i32 {
        let status = fill(out, size, err);
        // SAFETY: as above.
        unsafe { addr_of_mut!((*out).size).write(size + 64) };
        status
    }

    extern "C" fn other_version(
        _: u32,
        out: *mut PluginVTable,
        size: usize,
        err: ErrorSink,
    ) -> i32 {
        let status = fill(out, size, err);
        // SAFETY: as above.
        unsafe { addr_of_mut!((*out).abi_version).write(ABI_VERSION + 1) };
        status
    }

    fn refusal(entry: EntryFn) -> HandshakeError {
        match LoadedPlugin::handshake(entry, PluginOrigin::Builtin) {
            Ok(plugin) => panic!("accepted {:?}", plugin.descriptor()),
            Err(error) => error,
        }
    }

    #[test]
    fn a_broken_vtable_is_refused_before_anything_is_built_from_it() {
        let needed = std::mem::size_of::<PluginVTable>();
        let unfilled = refusal(ok_without_filling);
        assert_eq!(
            unfilled,
            HandshakeError::VtableTooSmall {
                size: 0,
                needed,
                version: 2
            }
        );
        assert_eq!(
            unfilled.to_string(),
            format!(
                "plugin vtable is 0 bytes, ABI v2 needs {needed} (the entry returned OK without \
                 filling it in)"
            )
        );
        assert_eq!(
            refusal(smaller_vtable).to_string(),
            format!("plugin vtable is 16 bytes, ABI v2 needs {needed}")
        );
        assert_eq!(refusal(null_stop), HandshakeError::MissingFunction("stop"));
        assert_eq!(
            refusal(null_stop).to_string(),
            "plugin vtable has no `stop` function"
        );
        assert_eq!(
            refusal(oversized).to_string(),
            format!(
                "plugin claims a {}-byte vtable in a {needed}-byte buffer",
                needed + 64
            )
        );
        assert_eq!(
            refusal(other_version),
            HandshakeError::VersionMismatch {
                reported: 3,
                asked: 2
            }
        );
        assert_eq!(
            refusal(other_version).to_string(),
            "plugin reports ABI v3 in its vtable, but the handshake was at v2"
        );
        // The entry they were derived from passes.
        let good = LoadedPlugin::handshake(
            camgate_plugin_api::export::entry_fn::<camgate_testsrc::TestSrc>(),
            PluginOrigin::Builtin,
        )
        .unwrap();
        assert_eq!(good.descriptor().name, "testsrc");
    }

    #[test]
    fn the_handshake_runs_at_the_library_s_version_and_only_at_known_ones() {
        let testsrc = camgate_plugin_api::export::entry_fn::<camgate_testsrc::TestSrc>();
        // A v2 plugin asked for a v1 handshake refuses it itself: its entry's own failure.
        let refused =
            LoadedPlugin::handshake_at(testsrc, abi::ABI_VERSION_V1, PluginOrigin::Builtin)
                .err()
                .unwrap();
        let HandshakeError::Entry(call) = &refused else {
            panic!("not the entry's refusal: {refused:?}");
        };
        assert_eq!(call.kind, FailureKind::AbiMismatch);
        assert!(
            refused
                .to_string()
                .contains("built for camgate plugin ABI v2, but the host speaks v1"),
            "{refused}"
        );
        // An unknown version is refused before the entry is called.
        let unknown = LoadedPlugin::handshake_at(ok_without_filling, 7, PluginOrigin::Builtin)
            .err()
            .unwrap();
        assert_eq!(unknown, HandshakeError::UnsupportedVersion(7));
        assert_eq!(
            unknown.to_string(),
            "ABI v7 is not one this host speaks (v2, v1)"
        );
    }

    #[test]
    fn tokens_name_their_plugin_and_are_never_reused() {
        let a = CONTEXTS.issue("token-test-a");
        let b = CONTEXTS.issue("token-test-b");
        let a2 = CONTEXTS.issue("token-test-a");
        assert_ne!(a, a2);
        assert_ne!(a, 0);
        assert_eq!(CONTEXTS.plugin_of(a), "token-test-a");
        assert_eq!(CONTEXTS.plugin_of(a2), "token-test-a");
        assert_eq!(CONTEXTS.plugin_of(b), "token-test-b");
        assert_eq!(CONTEXTS.plugin_of(u64::MAX), "unknown");
        // A token that is not (or no longer) live is refused and counted.
        let before = LATE_CALLBACKS.with_label_values(&["token-test-a"]).get();
        assert!(resolve(token_to_ctx(a), "on_log").is_none());
        assert_eq!(
            LATE_CALLBACKS.with_label_values(&["token-test-a"]).get(),
            before + 1
        );
    }
}
