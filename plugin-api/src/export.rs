//! The C shims that turn a [`SourcePlugin`] into a [`PluginVTable`], and the
//! [`export_plugin!`](crate::export_plugin) macro that exports them from a `cdylib`.
//!
//! Invariants:
//! - No panic leaves a shim: each one runs the plugin's code under `catch_unwind` and turns a
//!   panic into [`STATUS_PANIC`] plus a message. (This requires plugins to be built with the
//!   default `panic = "unwind"`.)
//! - An instance pointer handed to the host is a `Box<Instance<P>>` leaked with
//!   `Box::into_raw`; only `destroy` turns it back into a box.
//! - `stop` is idempotent and closes the [`Host`] gate after the source's own `stop` returns,
//!   so no callback reaches the host afterwards.

use std::any::Any;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::abi::{
    ABI_VERSION, EntryFn, ErrorSink, HostCallbacks, PluginVTable, STATUS_ABI_MISMATCH,
    STATUS_ERROR, STATUS_INVALID_CONFIG, STATUS_OK, STATUS_PANIC, StrRef,
};
use crate::plugin::{Host, Source, SourcePlugin};

/// Exports a [`SourcePlugin`] from a `cdylib` under the versioned entry symbol.
///
/// ```ignore
/// camgate_plugin_api::export_plugin!(my_crate::MyPlugin);
/// ```
///
/// Use it once per shared library. Crates that are also linked into the gateway as a
/// built-in keep it in a separate `cdylib` crate, because two libraries exporting the same
/// unmangled symbol cannot be linked into one binary.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        /// The camgate plugin ABI v1 entry point (see `camgate_plugin_api::abi`).
        #[unsafe(no_mangle)]
        pub extern "C" fn camgate_plugin_entry_v1(
            host_abi_version: u32,
            out: *mut $crate::abi::PluginVTable,
            out_size: usize,
            err: $crate::abi::ErrorSink,
        ) -> i32 {
            $crate::export::entry::<$plugin>(host_abi_version, out, out_size, err)
        }

        /// The ABI version this library speaks; its signature never changes.
        #[unsafe(no_mangle)]
        pub extern "C" fn camgate_plugin_abi_version() -> u32 {
            $crate::abi::ABI_VERSION
        }
    };
}

/// The entry function of plugin `P`, for registering a built-in plugin through exactly the
/// same handshake a dynamically loaded one goes through.
pub fn entry_fn<P: SourcePlugin>() -> EntryFn {
    entry::<P>
}

/// Extracts a readable message from a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

fn write_error(err: ErrorSink, text: &str) {
    (err.write)(err.ctx, StrRef::new(text));
}

/// Runs `f`, converting a panic into [`STATUS_PANIC`] with a message naming the operation.
fn guarded<P: SourcePlugin>(err: ErrorSink, operation: &str, f: impl FnOnce() -> i32) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(status) => status,
        Err(payload) => {
            write_error(
                err,
                &format!(
                    "plugin `{}` panicked in {operation}: {}",
                    P::NAME,
                    panic_message(payload.as_ref())
                ),
            );
            STATUS_PANIC
        }
    }
}

/// Parses and checks a JSON configuration; on failure writes the reason and returns the
/// status to give back.
fn parse_config<P: SourcePlugin>(
    config_json: StrRef<'_>,
    err: ErrorSink,
) -> Result<P::Config, i32> {
    // SAFETY: the ABI guarantees `config_json` is readable for the duration of this call.
    let text = unsafe { config_json.to_string_lossy() };
    let config: P::Config = serde_json::from_str(&text).map_err(|e| {
        write_error(err, &strip_json_position(&e));
        STATUS_INVALID_CONFIG
    })?;
    P::check(&config).map_err(|message| {
        write_error(err, &message);
        STATUS_INVALID_CONFIG
    })?;
    Ok(config)
}

/// serde_json appends "at line 1 column 57" — a position in JSON the operator never wrote
/// (the gateway converted their YAML), so it is dropped; the host adds the YAML location.
fn strip_json_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(idx) => text[..idx].to_owned(),
        None => text,
    }
}

struct Instance<P: SourcePlugin> {
    source: Mutex<P::Source>,
    host: Host,
    stopped: AtomicBool,
}

impl<P: SourcePlugin> Instance<P> {
    /// # Safety
    /// `ptr` must come from `create::<P>` and not have been destroyed.
    unsafe fn from_ptr<'a>(ptr: *mut c_void) -> &'a Instance<P> {
        // SAFETY: guaranteed by the caller; the host never shares an instance across types.
        unsafe { &*(ptr as *const Instance<P>) }
    }
}

/// The handshake: checks the host's ABI version and fills in the vtable.
///
/// It has the plain (safe) [`EntryFn`] type because that is what `dlsym` hands the host;
/// the ABI contract (a writable `out` of `out_size` bytes) is checked as far as it can be.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn entry<P: SourcePlugin>(
    host_abi_version: u32,
    out: *mut PluginVTable,
    out_size: usize,
    err: ErrorSink,
) -> i32 {
    guarded::<P>(err, "entry", || {
        if host_abi_version != ABI_VERSION {
            write_error(
                err,
                &format!(
                    "plugin `{}` was built for camgate plugin ABI v{ABI_VERSION}, but the host speaks v{host_abi_version}",
                    P::NAME
                ),
            );
            return STATUS_ABI_MISMATCH;
        }
        if out.is_null() || out_size < std::mem::size_of::<PluginVTable>() {
            write_error(
                err,
                &format!(
                    "plugin `{}`: host vtable buffer is {out_size} bytes, need {}",
                    P::NAME,
                    std::mem::size_of::<PluginVTable>()
                ),
            );
            return STATUS_ABI_MISMATCH;
        }
        let vtable = PluginVTable {
            size: std::mem::size_of::<PluginVTable>(),
            abi_version: ABI_VERSION,
            name: StrRef::new(P::NAME),
            version: StrRef::new(P::VERSION),
            description: StrRef::new(P::DESCRIPTION),
            validate: validate::<P>,
            create: create::<P>,
            start: start::<P>,
            stop: stop::<P>,
            destroy: destroy::<P>,
        };
        // SAFETY: `out` is non-null and the host says it has room for `out_size` bytes,
        // which we checked covers a whole `PluginVTable`.
        unsafe { out.write(vtable) };
        STATUS_OK
    })
}

extern "C" fn validate<P: SourcePlugin>(config_json: StrRef<'_>, err: ErrorSink) -> i32 {
    guarded::<P>(err, "validate", || {
        match parse_config::<P>(config_json, err) {
            Ok(_) => STATUS_OK,
            Err(status) => status,
        }
    })
}

extern "C" fn create<P: SourcePlugin>(
    config_json: StrRef<'_>,
    host: *const HostCallbacks,
    out: *mut *mut c_void,
    err: ErrorSink,
) -> i32 {
    guarded::<P>(err, "create", || {
        if host.is_null() || out.is_null() {
            write_error(err, "host passed a null pointer to create");
            return STATUS_ERROR;
        }
        // SAFETY: non-null, and the ABI says it points to a `HostCallbacks` of at least
        // `size` bytes; we read `size` first and refuse smaller structs.
        let callbacks = unsafe {
            let size = (*host).size;
            if size < std::mem::size_of::<HostCallbacks>() {
                write_error(err, "host callbacks struct is smaller than ABI v1 requires");
                return STATUS_ABI_MISMATCH;
            }
            *host
        };
        let config = match parse_config::<P>(config_json, err) {
            Ok(config) => config,
            Err(status) => return status,
        };
        let host = Host::new(callbacks);
        match P::create(config, host.clone()) {
            Ok(source) => {
                let instance = Box::new(Instance::<P> {
                    source: Mutex::new(source),
                    host,
                    stopped: AtomicBool::new(false),
                });
                // SAFETY: `out` is non-null (checked above) and points to host memory.
                unsafe { out.write(Box::into_raw(instance) as *mut c_void) };
                STATUS_OK
            }
            Err(e) => {
                write_error(err, &e.0);
                STATUS_ERROR
            }
        }
    })
}

extern "C" fn start<P: SourcePlugin>(instance: *mut c_void, err: ErrorSink) -> i32 {
    guarded::<P>(err, "start", || {
        // SAFETY: the host passes back the pointer `create` produced, before `destroy`.
        let instance = unsafe { Instance::<P>::from_ptr(instance) };
        let mut source = instance.source.lock().unwrap_or_else(|e| e.into_inner());
        match source.start() {
            Ok(()) => STATUS_OK,
            Err(e) => {
                write_error(err, &e.0);
                STATUS_ERROR
            }
        }
    })
}

extern "C" fn stop<P: SourcePlugin>(instance: *mut c_void, err: ErrorSink) -> i32 {
    // SAFETY: the host passes back the pointer `create` produced, before `destroy`.
    let instance = unsafe { Instance::<P>::from_ptr(instance) };
    if instance.stopped.swap(true, Ordering::SeqCst) {
        return STATUS_OK;
    }
    let status = guarded::<P>(err, "stop", || {
        instance
            .source
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stop();
        STATUS_OK
    });
    // Whatever happened, nothing may call the host after this function returns.
    instance.host.close();
    status
}

/// An error sink that discards text, for the `stop` that `destroy` performs on its own.
fn discard_errors() -> ErrorSink {
    extern "C" fn discard(_ctx: *mut c_void, _text: StrRef<'_>) {}
    ErrorSink {
        ctx: std::ptr::null_mut(),
        write: discard,
    }
}

extern "C" fn destroy<P: SourcePlugin>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: the host passes back the pointer `create` produced, before `destroy`.
        let stopped = unsafe { Instance::<P>::from_ptr(instance) }
            .stopped
            .load(Ordering::SeqCst);
        if !stopped {
            // Destroy without stop: stop first so threads are joined before memory goes.
            stop::<P>(instance, discard_errors());
        }
        // SAFETY: `instance` came from `Box::into_raw` in `create::<P>`; the host calls
        // `destroy` exactly once and never uses the pointer afterwards.
        drop(unsafe { Box::from_raw(instance as *mut Instance<P>) });
    });
}
