//! Test fixture plugin `raw-abi`: written against `camgate_plugin_api::abi` alone, the way a
//! C plugin would be — no `Host` handle, no gate, no shims — so tests can prove the *host*
//! contains what such a plugin does wrong.
//!
//! The configuration is one JSON object with a `mode`:
//! - `"late_calls"`: frames flow normally; `stop` returns at once and leaves a raw thread
//!   that keeps calling `on_frame`/`on_state`/`on_log` with the saved `ctx` after `stop` and
//!   after `destroy`, for `late_for_ms` (default 2000) — the host must refuse and count
//!   every call, and nothing may crash;
//! - `"small_frame"`: sends `FrameRef`s whose `size` covers only the `size` field (an
//!   older, smaller struct, allocated at exactly that size); the host must refuse them with
//!   `STATUS_ABI_MISMATCH`. The plugin reports the status it got as a `failed` state;
//! - `"grown_frame"`: sends `FrameRef`s from a "newer" plugin, with an extra field
//!   appended and `size` covering it; the host must accept them (growth rule).
//!
//! Options are parsed by hand (no serde): the fixture stays as close to C as it can.

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use camgate_plugin_api::abi::{
    ABI_VERSION, ByteSlice, ErrorSink, FrameRef, HostCallbacks, LOG_WARN, PluginVTable,
    STATE_FAILED, STATE_LIVE, STATUS_ABI_MISMATCH, STATUS_INVALID_CONFIG, STATUS_OK, StrRef,
};

/// A minimal JPEG-shaped frame (SOI ... EOI); the hub checks only the markers.
const FRAME: &[u8] = &[0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x04, b'h', b'i', 0xFF, 0xD9];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    LateCalls,
    SmallFrame,
    GrownFrame,
}

struct Options {
    mode: Mode,
    late_for: Duration,
}

fn parse(json: &str) -> Result<Options, String> {
    let mode = if json.contains("\"late_calls\"") {
        Mode::LateCalls
    } else if json.contains("\"small_frame\"") {
        Mode::SmallFrame
    } else if json.contains("\"grown_frame\"") {
        Mode::GrownFrame
    } else {
        return Err("mode must be late_calls, small_frame or grown_frame".to_owned());
    };
    let late_for = json
        .split("\"late_for_ms\"")
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(2));
    Ok(Options { mode, late_for })
}

fn write_error(err: ErrorSink, text: &str) {
    (err.write)(err.ctx, StrRef::new(text));
}

/// What a C plugin would keep: a copy of the host's callbacks (including its `ctx`).
#[derive(Clone, Copy)]
struct Callbacks(HostCallbacks);
// SAFETY: the ABI says the callbacks and their ctx may be used from any thread.
unsafe impl Send for Callbacks {}

struct Instance {
    callbacks: Callbacks,
    options: Options,
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// `FrameRef` as an older plugin would have it: nothing but the header.
#[repr(C)]
struct SmallFrame {
    size: usize,
}

/// `FrameRef` as a newer plugin would have it: v1 plus a field appended.
#[repr(C)]
struct GrownFrame<'a> {
    v1: FrameRef<'a>,
    exposure_us: u64,
}

fn frame_v1(size: usize) -> FrameRef<'static> {
    FrameRef {
        size,
        jpeg: ByteSlice::new(FRAME),
        width: 1,
        height: 1,
        capture_time_us: 0,
    }
}

fn produce(callbacks: Callbacks, options: &Options, running: &AtomicBool) {
    let cb = callbacks.0;
    (cb.on_state)(cb.ctx, STATE_LIVE, StrRef::new(""));
    let mut stopped_at: Option<Instant> = None;
    loop {
        if !running.load(Ordering::SeqCst) {
            if options.mode != Mode::LateCalls {
                return;
            }
            // A C plugin with a bug: it ignores stop for a while and keeps calling.
            let since = *stopped_at.get_or_insert_with(Instant::now);
            if since.elapsed() >= options.late_for {
                return;
            }
            (cb.on_log)(cb.ctx, LOG_WARN, StrRef::new("still here after stop"));
            (cb.on_state)(cb.ctx, STATE_LIVE, StrRef::new("still here"));
        }
        let status = match options.mode {
            Mode::LateCalls => {
                (cb.on_frame)(cb.ctx, &frame_v1(std::mem::size_of::<FrameRef<'_>>()))
            }
            Mode::SmallFrame => {
                // Allocated at exactly the smaller size, so reading past it would leave it.
                let small = Box::new(SmallFrame {
                    size: std::mem::size_of::<SmallFrame>(),
                });
                (cb.on_frame)(cb.ctx, (&*small as *const SmallFrame).cast())
            }
            Mode::GrownFrame => {
                let grown = GrownFrame {
                    v1: frame_v1(std::mem::size_of::<GrownFrame<'_>>()),
                    exposure_us: 1000,
                };
                (cb.on_frame)(cb.ctx, &grown.v1)
            }
        };
        if options.mode == Mode::SmallFrame && status != STATUS_OK {
            let message = format!("the host refused the frame with status {status}");
            (cb.on_state)(cb.ctx, STATE_FAILED, StrRef::new(&message));
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

extern "C" fn validate(config: StrRef<'_>, err: ErrorSink) -> i32 {
    // SAFETY: borrowed for this call (ABI).
    let json = unsafe { config.to_string_lossy() };
    match parse(&json) {
        Ok(_) => STATUS_OK,
        Err(e) => {
            write_error(err, &e);
            STATUS_INVALID_CONFIG
        }
    }
}

extern "C" fn create(
    config: StrRef<'_>,
    host: *const HostCallbacks,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> i32 {
    // SAFETY: borrowed for this call (ABI).
    let json = unsafe { config.to_string_lossy() };
    let options = match parse(&json) {
        Ok(options) => options,
        Err(e) => {
            write_error(err, &e);
            return STATUS_INVALID_CONFIG;
        }
    };
    // SAFETY: the host passes valid pointers (ABI); `size` is read alone first.
    let callbacks = unsafe {
        if std::ptr::addr_of!((*host).size).read() < std::mem::size_of::<HostCallbacks>() {
            return STATUS_ABI_MISMATCH;
        }
        host.read()
    };
    let instance = Box::new(Instance {
        callbacks: Callbacks(callbacks),
        options,
        running: Arc::new(AtomicBool::new(false)),
        thread: None,
    });
    // SAFETY: `out` is the host's out-pointer.
    unsafe { out.write(Box::into_raw(instance).cast()) };
    STATUS_OK
}

extern "C" fn start(instance: *mut c_void, _err: ErrorSink) -> i32 {
    // SAFETY: the pointer `create` returned, not yet destroyed.
    let instance = unsafe { &mut *instance.cast::<Instance>() };
    instance.running.store(true, Ordering::SeqCst);
    let callbacks = instance.callbacks;
    let options = Options {
        mode: instance.options.mode,
        late_for: instance.options.late_for,
    };
    let running = Arc::clone(&instance.running);
    instance.thread = Some(std::thread::spawn(move || {
        produce(callbacks, &options, &running)
    }));
    STATUS_OK
}

extern "C" fn stop(instance: *mut c_void, _err: ErrorSink) -> i32 {
    // SAFETY: the pointer `create` returned, not yet destroyed.
    let instance = unsafe { &mut *instance.cast::<Instance>() };
    instance.running.store(false, Ordering::SeqCst);
    if let Some(thread) = instance.thread.take() {
        if instance.options.mode == Mode::LateCalls {
            drop(thread); // the bug: never joined, keeps calling back
        } else {
            let _ = thread.join();
        }
    }
    STATUS_OK
}

extern "C" fn destroy(instance: *mut c_void) {
    if !instance.is_null() {
        // SAFETY: from `Box::into_raw` in `create`; the host destroys once.
        drop(unsafe { Box::from_raw(instance.cast::<Instance>()) });
    }
}

/// The ABI probe.
#[unsafe(no_mangle)]
pub extern "C" fn camgate_plugin_abi_version() -> u32 {
    ABI_VERSION
}

/// The handshake, by hand (the `EntryFn` type is a plain `extern "C" fn`, as `dlsym` sees it).
#[unsafe(no_mangle)]
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn camgate_plugin_entry_v2(
    host_abi_version: u32,
    out: *mut PluginVTable,
    out_size: usize,
    err: ErrorSink,
) -> i32 {
    if host_abi_version != ABI_VERSION
        || out.is_null()
        || out_size < std::mem::size_of::<PluginVTable>()
    {
        write_error(err, "raw-abi fixture: unsupported host");
        return STATUS_ABI_MISMATCH;
    }
    let vtable = PluginVTable {
        size: std::mem::size_of::<PluginVTable>(),
        abi_version: ABI_VERSION,
        name: StrRef::new("raw-abi"),
        version: StrRef::new("0.0.1"),
        description: StrRef::new("test fixture written against the raw ABI"),
        validate,
        create,
        start,
        stop,
        destroy,
    };
    // SAFETY: checked non-null and large enough above; the host owns a buffer of `out_size` bytes.
    unsafe { out.write(vtable) };
    STATUS_OK
}
