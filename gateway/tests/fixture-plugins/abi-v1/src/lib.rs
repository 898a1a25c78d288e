//! Test fixture plugin `abi-v1`: a plugin library exactly as one built against ABI v1 is,
//! compiled from the frozen v1 definitions in `v1_abi.rs` (not from today's
//! camgate-plugin-api). It exports `camgate_plugin_abi_version` → 1 and
//! `camgate_plugin_entry_v1`, checks the host's structs the way v1 plugins do (a
//! `HostCallbacks` at least as large as v1's), and publishes a fixed 16x8 JPEG 20 times a
//! second on its own thread through `on_frame`, until `stop` joins it or the host says
//! `STATUS_CLOSED`. It takes no options (`{}`).

use std::ffi::c_void;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod v1_abi;

use v1_abi::{
    ABI_VERSION, ByteSlice, ErrorSink, FrameRef, HostCallbacks, PluginVTable, STATE_LIVE,
    STATUS_ABI_MISMATCH, STATUS_CLOSED, STATUS_ERROR, STATUS_INVALID_CONFIG, STATUS_OK, StrRef,
};

/// A real (decodable) 16x8 JPEG.
const JPEG: &[u8] = include_bytes!("tiny.jpg");

fn str_ref(s: &str) -> StrRef<'_> {
    StrRef {
        ptr: s.as_ptr(),
        len: s.len(),
        _marker: PhantomData,
    }
}

fn write_error(err: ErrorSink, text: &str) {
    (err.write)(err.ctx, str_ref(text));
}

/// The configuration must be the empty object.
fn check_config(config: StrRef<'_>, err: ErrorSink) -> i32 {
    // SAFETY: the host passes a string borrowed for this call (ABI v1).
    let bytes = unsafe { std::slice::from_raw_parts(config.ptr, config.len) };
    if bytes
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .eq(b"{}".iter())
    {
        STATUS_OK
    } else {
        write_error(err, "abi-v1 takes no options");
        STATUS_INVALID_CONFIG
    }
}

/// The host's callbacks, kept as a v1 plugin keeps them (ctx included).
#[derive(Clone, Copy)]
struct Callbacks(HostCallbacks);
// SAFETY: the ABI says the callbacks and their ctx may be used from any thread.
unsafe impl Send for Callbacks {}

struct Instance {
    callbacks: Callbacks,
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn produce(callbacks: Callbacks, running: &AtomicBool) {
    let cb = callbacks.0;
    (cb.on_state)(cb.ctx, STATE_LIVE, str_ref(""));
    while running.load(Ordering::SeqCst) {
        let capture_time_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let frame = FrameRef {
            size: std::mem::size_of::<FrameRef<'_>>(),
            jpeg: ByteSlice {
                ptr: JPEG.as_ptr(),
                len: JPEG.len(),
                _marker: PhantomData,
            },
            width: 16,
            height: 8,
            capture_time_us,
        };
        if (cb.on_frame)(cb.ctx, &frame) == STATUS_CLOSED {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

extern "C" fn validate(config: StrRef<'_>, err: ErrorSink) -> i32 {
    check_config(config, err)
}

extern "C" fn create(
    config: StrRef<'_>,
    host: *const HostCallbacks,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> i32 {
    let status = check_config(config, err);
    if status != STATUS_OK {
        return status;
    }
    if host.is_null() || out.is_null() {
        write_error(err, "null pointer");
        return STATUS_ERROR;
    }
    // SAFETY: the host passes a valid `HostCallbacks` (ABI v1); `size` is read alone first,
    // and only a struct at least as large as v1's is copied (its v1 prefix).
    let callbacks = unsafe {
        if std::ptr::addr_of!((*host).size).read() < std::mem::size_of::<HostCallbacks>() {
            write_error(err, "host callbacks smaller than ABI v1's");
            return STATUS_ABI_MISMATCH;
        }
        host.read()
    };
    let instance = Box::new(Instance {
        callbacks: Callbacks(callbacks),
        running: Arc::new(AtomicBool::new(false)),
        thread: None,
    });
    // SAFETY: `out` is the host's out-pointer, checked non-null.
    unsafe { out.write(Box::into_raw(instance).cast()) };
    STATUS_OK
}

extern "C" fn start(instance: *mut c_void, _err: ErrorSink) -> i32 {
    // SAFETY: the pointer `create` returned, not yet destroyed.
    let instance = unsafe { &mut *instance.cast::<Instance>() };
    instance.running.store(true, Ordering::SeqCst);
    let callbacks = instance.callbacks;
    let running = Arc::clone(&instance.running);
    instance.thread = Some(std::thread::spawn(move || produce(callbacks, &running)));
    STATUS_OK
}

extern "C" fn stop(instance: *mut c_void, _err: ErrorSink) -> i32 {
    // SAFETY: the pointer `create` returned, not yet destroyed.
    let instance = unsafe { &mut *instance.cast::<Instance>() };
    instance.running.store(false, Ordering::SeqCst);
    if let Some(thread) = instance.thread.take() {
        let _ = thread.join();
    }
    STATUS_OK
}

extern "C" fn destroy(instance: *mut c_void) {
    if !instance.is_null() {
        stop(
            instance,
            ErrorSink {
                ctx: std::ptr::null_mut(),
                write: ignore,
            },
        );
        // SAFETY: from `Box::into_raw` in `create`; the host destroys once.
        drop(unsafe { Box::from_raw(instance.cast::<Instance>()) });
    }
}

extern "C" fn ignore(_ctx: *mut c_void, _text: StrRef<'_>) {}

/// The version probe: this library speaks ABI v1.
#[unsafe(no_mangle)]
pub extern "C" fn camgate_plugin_abi_version() -> u32 {
    ABI_VERSION
}

/// The ABI v1 handshake.
#[unsafe(no_mangle)]
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn camgate_plugin_entry_v1(
    host_abi_version: u32,
    out: *mut PluginVTable,
    out_size: usize,
    err: ErrorSink,
) -> i32 {
    if host_abi_version != ABI_VERSION {
        write_error(
            err,
            &format!("abi-v1 was built for ABI v1, the host speaks v{host_abi_version}"),
        );
        return STATUS_ABI_MISMATCH;
    }
    if out.is_null() || out_size < std::mem::size_of::<PluginVTable>() {
        write_error(err, "vtable buffer too small");
        return STATUS_ABI_MISMATCH;
    }
    let vtable = PluginVTable {
        size: std::mem::size_of::<PluginVTable>(),
        abi_version: ABI_VERSION,
        name: str_ref("abi-v1"),
        version: str_ref("1.0.0"),
        description: str_ref("test fixture built from the frozen ABI v1"),
        validate,
        create,
        start,
        stop,
        destroy,
    };
    // SAFETY: checked non-null and large enough above; the host owns `out_size` bytes.
    unsafe { out.write(vtable) };
    STATUS_OK
}
