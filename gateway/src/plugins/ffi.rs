//! The host side of the plugin ABI: the handshake, safe wrappers around a plugin's vtable
//! and the host callbacks plugins call into.
//!
//! This module and `loader.rs` are the only gateway code allowed `unsafe`; each block says
//! why it is sound. Invariants:
//! - A [`LoadedPlugin`]'s vtable points into a library that is never unloaded.
//! - A [`PluginInstance`] owns its plugin instance pointer and the boxed [`HostContext`]
//!   whose address the plugin holds as `ctx`; it calls `stop` before `destroy` and frees the
//!   context only after `destroy` returned.
//! - No host callback unwinds into plugin code: each catches panics.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use camgate_plugin_api::abi::{
    self, ABI_VERSION, EntryFn, ErrorSink, FrameRef, HostCallbacks, PluginVTable, StrRef,
};

use crate::hub::{FrameSink, StreamState};
use crate::redact::Redactor;

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

/// Formats a status code with the plugin's message for people.
fn describe_failure(status: i32, message: String) -> String {
    let message = if message.is_empty() {
        "no details given".to_owned()
    } else {
        message
    };
    match status {
        abi::STATUS_PANIC => format!("plugin panicked: {message}"),
        abi::STATUS_ABI_MISMATCH => format!("ABI mismatch: {message}"),
        _ => message,
    }
}

impl LoadedPlugin {
    /// Performs the handshake through `entry` (a built-in's function or a library symbol).
    pub fn handshake(entry: EntryFn, origin: PluginOrigin) -> Result<LoadedPlugin, String> {
        let mut vtable = std::mem::MaybeUninit::<PluginVTable>::zeroed();
        let (status, message) = collecting_errors(|err| {
            entry(
                ABI_VERSION,
                vtable.as_mut_ptr(),
                std::mem::size_of::<PluginVTable>(),
                err,
            )
        });
        if status != abi::STATUS_OK {
            return Err(describe_failure(status, message));
        }
        // SAFETY: on STATUS_OK the entry function wrote a complete vtable (ABI rule).
        let vtable = unsafe { vtable.assume_init() };
        if vtable.abi_version != ABI_VERSION {
            return Err(format!(
                "plugin reports ABI v{} in its vtable, host speaks v{ABI_VERSION}",
                vtable.abi_version
            ));
        }
        if vtable.size < std::mem::size_of::<PluginVTable>() {
            return Err(format!(
                "plugin vtable is {} bytes, ABI v{ABI_VERSION} needs {}",
                vtable.size,
                std::mem::size_of::<PluginVTable>()
            ));
        }
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
            return Err(format!(
                "plugin name {name:?} is invalid (use lowercase letters, digits, '-' and '_')"
            ));
        }
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

    /// Asks the plugin to check a JSON configuration.
    pub fn validate(&self, config_json: &str) -> Result<(), String> {
        let (status, message) =
            collecting_errors(|err| (self.vtable.validate)(StrRef::new(config_json), err));
        if status == abi::STATUS_OK {
            Ok(())
        } else {
            Err(describe_failure(status, message))
        }
    }
}

/// What the host keeps per plugin instance; its address is the `ctx` of the callbacks.
pub struct HostContext {
    sink: FrameSink,
    stream: String,
    plugin: String,
    redactor: Redactor,
    log_budget: Mutex<LogBudget>,
    /// Set once the plugin's `stop` returned: any callback after that breaks the ABI.
    stopped: AtomicBool,
}

/// Callbacks that arrived after their instance's `stop` returned (ABI violations), over
/// the life of the process. They are refused; a non-zero value points at a buggy plugin.
static LATE_CALLBACKS: AtomicU64 = AtomicU64::new(0);

/// How many callbacks arrived after `stop` returned, process-wide (should stay 0).
pub fn late_callbacks() -> u64 {
    LATE_CALLBACKS.load(Ordering::SeqCst)
}

impl HostContext {
    /// A context publishing into `sink`, scrubbing `redactor`'s secrets from every text.
    pub fn new(sink: FrameSink, plugin: &str, redactor: Redactor) -> Self {
        HostContext {
            stream: sink.stream_id(),
            sink,
            plugin: plugin.to_owned(),
            redactor,
            log_budget: Mutex::new(LogBudget::default()),
            stopped: AtomicBool::new(false),
        }
    }
}

/// Plugin log lines allowed per window; the rest are counted and summarised, so a chatty
/// plugin (or ffmpeg's stderr) cannot flood the logs.
const LOG_LINES_PER_WINDOW: u32 = 50;
const LOG_WINDOW: Duration = Duration::from_secs(10);

#[derive(Default)]
struct LogBudget {
    window_start: Option<Instant>,
    used: u32,
    suppressed: u32,
}

impl LogBudget {
    /// Returns whether a line may be logged now, and how many were suppressed in the window
    /// that just ended (to report once).
    fn take(&mut self, now: Instant) -> (bool, u32) {
        let mut ended_suppressed = 0;
        match self.window_start {
            Some(start) if now.duration_since(start) < LOG_WINDOW => {}
            _ => {
                ended_suppressed = self.suppressed;
                self.window_start = Some(now);
                self.used = 0;
                self.suppressed = 0;
            }
        }
        if self.used < LOG_LINES_PER_WINDOW {
            self.used += 1;
            (true, ended_suppressed)
        } else {
            self.suppressed += 1;
            (false, ended_suppressed)
        }
    }
}

/// # Safety
/// `ctx` must be the `HostContext` pointer given to `create`, still alive.
unsafe fn context<'a>(ctx: *mut c_void) -> &'a HostContext {
    // SAFETY: guaranteed by the caller.
    unsafe { &*(ctx as *const HostContext) }
}

impl HostContext {
    /// Refuses (and counts) a callback that arrives after `stop` returned.
    fn refuse_if_stopped(&self, callback: &str) -> bool {
        if !self.stopped.load(Ordering::SeqCst) {
            return false;
        }
        LATE_CALLBACKS.fetch_add(1, Ordering::SeqCst);
        tracing::warn!(stream = %self.stream, plugin = %self.plugin, callback, "plugin called the host after stop returned (ABI violation); ignored");
        true
    }
}

extern "C" fn on_frame(ctx: *mut c_void, frame: *const FrameRef<'_>) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the plugin passes back our ctx (alive until destroy returns) and a frame
        // pointer valid for this call.
        let (host, frame) = unsafe { (context(ctx), frame.as_ref()) };
        let Some(frame) = frame else {
            return abi::STATUS_ERROR;
        };
        if host.refuse_if_stopped("on_frame") {
            return abi::STATUS_CLOSED;
        }
        if frame.size < std::mem::size_of::<FrameRef<'_>>() {
            return abi::STATUS_ABI_MISMATCH;
        }
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

extern "C" fn on_state(ctx: *mut c_void, state: u32, message: StrRef<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `on_frame`; the message is borrowed for this call.
        let (host, message) = unsafe { (context(ctx), message.to_string_lossy()) };
        if host.refuse_if_stopped("on_state") {
            return;
        }
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
        // SAFETY: as in `on_frame`; the message is borrowed for this call.
        let (host, message) = unsafe { (context(ctx), message.to_string_lossy()) };
        if host.refuse_if_stopped("on_log") {
            return;
        }
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
    /// The plugin holds this address as `ctx`; boxed so it never moves.
    host: Box<HostContext>,
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
    ) -> Result<PluginInstance, String> {
        let host = Box::new(host);
        let callbacks = HostCallbacks {
            size: std::mem::size_of::<HostCallbacks>(),
            ctx: &*host as *const HostContext as *mut c_void,
            on_frame,
            on_state,
            on_log,
        };
        let mut ptr: *mut c_void = std::ptr::null_mut();
        let (status, message) = collecting_errors(|err| {
            (plugin.vtable.create)(StrRef::new(config_json), &callbacks, &mut ptr, err)
        });
        if status != abi::STATUS_OK || ptr.is_null() {
            return Err(host.redactor.scrub(&describe_failure(status, message)));
        }
        Ok(PluginInstance {
            plugin,
            ptr,
            host,
            stopped: false,
        })
    }

    /// Starts the instance.
    pub fn start(&mut self) -> Result<(), String> {
        let (status, message) = collecting_errors(|err| (self.plugin.vtable.start)(self.ptr, err));
        if status == abi::STATUS_OK {
            Ok(())
        } else {
            Err(self.host.redactor.scrub(&describe_failure(status, message)))
        }
    }

    /// Stops the instance (blocking, idempotent).
    pub fn stop(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let (status, message) = collecting_errors(|err| (self.plugin.vtable.stop)(self.ptr, err));
        self.host.stopped.store(true, Ordering::SeqCst);
        if status == abi::STATUS_OK {
            Ok(())
        } else {
            Err(self.host.redactor.scrub(&describe_failure(status, message)))
        }
    }
}

impl Drop for PluginInstance {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(stream = %self.host.stream, plugin = %self.host.plugin, error = %e, "plugin stop failed");
        }
        (self.plugin.vtable.destroy)(self.ptr);
        // `self.host` is freed after this, once the plugin can no longer reach it.
    }
}
