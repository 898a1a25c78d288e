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
    ABI_VERSION, EntryFn, ErrorSink, HOST_CALLBACKS_V2_SIZE, HostCallbacks, PluginVTable,
    STATUS_ABI_MISMATCH, STATUS_ERROR, STATUS_INVALID_CONFIG, STATUS_OK, STATUS_PANIC, StrRef,
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
        /// The camgate plugin ABI v2 entry point (see `camgate_plugin_api::abi`).
        #[unsafe(no_mangle)]
        pub extern "C" fn camgate_plugin_entry_v2(
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
        // Growth rule (abi.rs): the host's buffer must hold at least our vtable; a larger
        // buffer (a newer host) is fine, and we write only our own `size` bytes into it.
        if out.is_null() || out_size < std::mem::size_of::<PluginVTable>() {
            write_error(
                err,
                &format!(
                    "plugin `{}`: host vtable buffer is {out_size} bytes, need at least {}",
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
        // which we checked covers a whole `PluginVTable`; nothing past it is written.
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

/// Copies the host's callbacks: `size` bytes of them at most (and at most our struct),
/// the rest zero (absent optional callbacks).
///
/// # Safety
/// `host` points to at least `size` readable bytes, `size >= HOST_CALLBACKS_V2_SIZE`, and
/// every field of [`HostCallbacks`] at or past `HOST_CALLBACKS_V2_SIZE` is an `Option` of a
/// function pointer (zero is `None`).
unsafe fn read_callbacks(host: *const HostCallbacks, size: usize) -> HostCallbacks {
    let ours = std::mem::size_of::<HostCallbacks>();
    let mut callbacks = std::mem::MaybeUninit::<HostCallbacks>::zeroed();
    // SAFETY: source readable for `min(size, ours)` bytes (caller), destination is our own
    // struct of `ours` bytes; they do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            host.cast::<u8>(),
            callbacks.as_mut_ptr().cast::<u8>(),
            size.min(ours),
        );
    }
    // SAFETY: the v2 prefix was copied from a valid struct; the zeroed tail holds only
    // optional function pointers, valid as `None` (caller).
    let mut callbacks = unsafe { callbacks.assume_init() };
    callbacks.size = size.min(ours);
    callbacks
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
        // Growth rule (abi.rs): read `size` alone first, refuse a struct smaller than v2's,
        // accept a larger one and copy only the fields this version knows and the host
        // wrote (optional callbacks appended within v2 then read as absent).
        // SAFETY: `host` is non-null and the ABI says it points to a `HostCallbacks` that
        // starts with its `size`; only that field is read here.
        let size = unsafe { std::ptr::addr_of!((*host).size).read() };
        if size < HOST_CALLBACKS_V2_SIZE {
            write_error(
                err,
                &format!(
                    "host callbacks struct is {size} bytes, ABI v{ABI_VERSION} needs at least \
                     {HOST_CALLBACKS_V2_SIZE}"
                ),
            );
            return STATUS_ABI_MISMATCH;
        }
        // SAFETY: the host wrote at least `size` bytes (≥ the v2 prefix); we copy no more
        // than that and no more than our struct into a zeroed one. Every field past the
        // copied prefix is an optional callback (`Option` of a function pointer), for which
        // zero is the valid `None`.
        let callbacks = unsafe { read_callbacks(host, size) };
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

#[cfg(test)]
mod tests {
    //! The struct-growth rule on the plugin side: a larger host struct or buffer is
    //! accepted (only the known fields are used), a smaller one is refused.

    use super::*;
    use crate::abi::{FrameRef, MediaFrameRef, STATUS_OK};
    use crate::{Host, PluginError, Source, SourcePlugin};

    struct Tiny;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoOptions {}
    struct TinySource;
    impl Source for TinySource {
        fn start(&mut self) -> Result<(), PluginError> {
            Ok(())
        }
        fn stop(&mut self) {}
    }
    impl SourcePlugin for Tiny {
        const NAME: &'static str = "tiny";
        const VERSION: &'static str = "0";
        const DESCRIPTION: &'static str = "test";
        type Config = NoOptions;
        type Source = TinySource;
        fn create(_: NoOptions, _: Host) -> Result<TinySource, PluginError> {
            Ok(TinySource)
        }
    }

    fn collect(f: impl FnOnce(ErrorSink) -> i32) -> (i32, String) {
        extern "C" fn append(ctx: *mut c_void, text: StrRef<'_>) {
            // SAFETY: `ctx` is the `String` below, alive for the call; `text` is borrowed.
            unsafe { (*(ctx as *mut String)).push_str(&text.to_string_lossy()) };
        }
        let mut text = String::new();
        let sink = ErrorSink {
            ctx: &mut text as *mut String as *mut c_void,
            write: append,
        };
        let status = f(sink);
        (status, text)
    }

    /// A vtable buffer from a newer host: ours plus fields we do not know.
    #[repr(C)]
    struct GrownVTable {
        ours: PluginVTable,
        later: [usize; 4],
    }

    #[test]
    fn a_larger_vtable_buffer_is_accepted_and_a_smaller_one_refused() {
        let mut grown = std::mem::MaybeUninit::<GrownVTable>::zeroed();
        let (status, message) = collect(|err| {
            entry::<Tiny>(
                ABI_VERSION,
                grown.as_mut_ptr().cast(),
                std::mem::size_of::<GrownVTable>(),
                err,
            )
        });
        assert_eq!(status, STATUS_OK, "{message}");
        // SAFETY: zeroed, then the entry wrote a whole vtable at the start.
        let grown = unsafe { grown.assume_init() };
        assert_eq!(grown.ours.size, std::mem::size_of::<PluginVTable>());
        assert_eq!(grown.later, [0; 4], "wrote past its own vtable");

        let mut small = std::mem::MaybeUninit::<PluginVTable>::zeroed();
        let (status, message) = collect(|err| {
            entry::<Tiny>(
                ABI_VERSION,
                small.as_mut_ptr(),
                std::mem::size_of::<PluginVTable>() - 8,
                err,
            )
        });
        assert_eq!(status, STATUS_ABI_MISMATCH);
        assert!(message.contains("need at least"), "{message}");
    }

    extern "C" fn frame_ok(_: *mut c_void, _: *const FrameRef<'_>) -> i32 {
        STATUS_OK
    }
    extern "C" fn media_ok(_: *mut c_void, _: *const MediaFrameRef<'_>) -> i32 {
        STATUS_OK
    }
    extern "C" fn skip_ok(_: *mut c_void, _: u64) -> i32 {
        STATUS_OK
    }
    extern "C" fn state_ignored(_: *mut c_void, _: u32, _: StrRef<'_>) {}
    extern "C" fn log_ignored(_: *mut c_void, _: u32, _: StrRef<'_>) {}

    /// Host callbacks from a newer host: ours plus a field we do not know.
    #[repr(C)]
    struct GrownCallbacks {
        current: HostCallbacks,
        later: usize,
    }

    fn create_with(callbacks: *const HostCallbacks) -> (i32, String) {
        let mut instance: *mut c_void = std::ptr::null_mut();
        let result =
            collect(|err| create::<Tiny>(StrRef::new("{}"), callbacks, &mut instance, err));
        if !instance.is_null() {
            destroy::<Tiny>(instance);
        }
        result
    }

    #[test]
    fn larger_host_callbacks_are_accepted_and_smaller_ones_refused() {
        let ours = HostCallbacks {
            size: std::mem::size_of::<HostCallbacks>(),
            ctx: std::ptr::null_mut(),
            on_frame: frame_ok,
            on_state: state_ignored,
            on_log: log_ignored,
            on_media: media_ok,
            on_skip: Some(skip_ok),
        };
        let grown = GrownCallbacks {
            current: HostCallbacks {
                size: std::mem::size_of::<GrownCallbacks>(),
                ..ours
            },
            later: 7,
        };
        assert_eq!(grown.later, 7);
        let (status, message) = create_with(&grown.current);
        assert_eq!(status, STATUS_OK, "{message}");

        // A v2 host from before `on_skip` was appended: accepted, without it.
        let before_skip = HostCallbacks {
            size: HOST_CALLBACKS_V2_SIZE,
            ..ours
        };
        let (status, message) = create_with(&before_skip);
        assert_eq!(status, STATUS_OK, "{message}");
        // SAFETY: a whole struct whose `size` says less: only that prefix is copied.
        let copied = unsafe { read_callbacks(&before_skip, before_skip.size) };
        assert_eq!(copied.size, HOST_CALLBACKS_V2_SIZE);
        assert!(
            copied.on_skip.is_none(),
            "a field past `size` reads as absent"
        );
        // SAFETY: as above, with the whole struct.
        let copied = unsafe { read_callbacks(&grown.current, grown.current.size) };
        assert_eq!(copied.size, std::mem::size_of::<HostCallbacks>());
        assert!(copied.on_skip.is_some());

        let smaller = HostCallbacks {
            size: HOST_CALLBACKS_V2_SIZE - 8,
            ..ours
        };
        let (status, message) = create_with(&smaller);
        assert_eq!(status, STATUS_ABI_MISMATCH);
        assert!(message.contains("needs at least"), "{message}");

        // A v1 host's struct (no `on_media`) is too small for a v2 plugin.
        let v1_host = HostCallbacks {
            size: crate::abi::HOST_CALLBACKS_V1_SIZE,
            ..ours
        };
        let (status, message) = create_with(&v1_host);
        assert_eq!(status, STATUS_ABI_MISMATCH);
        assert!(message.contains("ABI v2 needs at least"), "{message}");
    }
}
