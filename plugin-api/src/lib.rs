//! # Camgate plugin API
//!
//! Source plugins produce frames for the Camgate gateway: JPEG images, or H.264/H.265
//! access units that the gateway passes through to viewers. A plugin author implements the
//! safe traits [`SourcePlugin`] and [`Source`] and exports them with [`export_plugin!`]; the
//! gateway loads the shared library and talks to it through a small, versioned C ABI
//! ([`abi`]). Built-in plugins go through exactly the same ABI (see [`export::entry_fn`]).
//!
//! ## ABI rules (version 2)
//!
//! 1. **Versioned entry.** A library exports `camgate_plugin_entry_v2` ([`abi::EntryFn`]) and
//!    `camgate_plugin_abi_version` ([`abi::AbiVersionFn`], whose signature never changes).
//!    The host reads the version first and refuses one it does not speak with a message
//!    naming both; then it calls the entry with the library's version (the handshake), and
//!    the plugin refuses too if it differs. Any incompatible change bumps
//!    [`abi::ABI_VERSION`] and the symbol name.
//! 2. **Old plugins keep loading.** The host also loads version 1 libraries
//!    (`camgate_plugin_entry_v1`, JPEG frames through `on_frame` only), unchanged, next to
//!    version 2 ones: version 2 only appended `on_media` to [`abi::HostCallbacks`] and added
//!    [`abi::MediaFrameRef`], so a v1 plugin finds everything it knows where it was. A
//!    version the host does not know (3 and later, or 0) is refused.
//! 3. **Only C types cross.** `#[repr(C)]` structs, integers, borrowed pointer+length
//!    strings and byte slices, `extern "C"` function pointers. No Rust std types, trait
//!    objects, allocations or async runtimes cross the boundary, so host and plugin may be
//!    built by different compiler versions.
//! 4. **Borrowed for the call.** Every string/slice is valid only during the call that
//!    passes it; the receiver copies (the host copies each frame into a refcounted buffer).
//!    Static metadata (name, version, description) is the exception: libraries are never
//!    unloaded.
//! 5. **Sized structs, growth by appending.** Growable structs start with their `size`. A
//!    reader accepts a struct at least as large as the one it was built for and reads only
//!    the fields it knows; a smaller one is refused (`STATUS_ABI_MISMATCH`). It reads
//!    `size` alone, through the raw pointer, before anything else. So the host may append
//!    fields to `HostCallbacks` without breaking plugins; a change to a struct plugins
//!    write (`PluginVTable`, `FrameRef`, `MediaFrameRef`) that the host relies on bumps
//!    the ABI version. See [`abi`] for the vtable buffer. Optional callbacks may be
//!    appended to `HostCallbacks` within a version ([`abi::HostCallbacks::on_skip`]): a
//!    plugin accepts a struct of at least [`abi::HOST_CALLBACKS_V2_SIZE`] bytes and calls
//!    an optional callback only when `size` covers it ([`Host::skipped`] does this).
//! 6. **Status codes, not panics.** Every call returns an `i32` status (`abi::STATUS_*`);
//!    details go to an [`abi::ErrorSink`] as text. Panics in plugin code are caught at every
//!    crossing and become [`abi::STATUS_PANIC`]; a panicking plugin fails its stream, never
//!    the gateway. Plugins must be built with `panic = "unwind"` (the default).
//! 7. **Lifecycle.** `validate(json)` any time; `create(json, host) → start → (frames, state
//!    and log callbacks from any plugin thread) → stop → destroy`. `start` returns promptly
//!    (work happens on the plugin's own threads — no shared tokio runtime). `stop` blocks,
//!    is idempotent and joins the plugin's threads; after it returns no callback for that
//!    instance reaches the host (this crate enforces it with a gate in [`Host`]; the host
//!    also refuses and counts late calls, even after `destroy`, so a C plugin that breaks
//!    the rule cannot crash it). `destroy` frees the instance. Callbacks may come from
//!    several plugin threads at once (memory-safe; frames from concurrent threads are not
//!    ordered).
//! 8. **Frames say what they are.** [`Host::send_frame`] publishes one JPEG.
//!    [`Host::send_media`] publishes a [`MediaFrame`] of any [`Codec`]:
//!    - JPEG: `data` is one whole JPEG (SOI to EOI), exactly as `send_frame` (same path in
//!      the host, same cost).
//!    - H.264 / H.265: `data` is ONE access unit in AVCC/HVCC form — every NAL unit
//!      prefixed by its length as a 4-byte big-endian integer, no Annex B start codes;
//!      parameter sets may be left out of it. `config` is the decoder configuration record
//!      (avcC / hvcC, ISO/IEC 14496-15, with 4-byte lengths), REQUIRED on the first video
//!      frame and whenever it changes, `None` otherwise. `keyframe` is `true` for IDR
//!      (H.264) / IRAP (H.265) access units; `width`/`height` are the coded size.
//!
//!    The host checks every frame (known codec, JPEG markers, AVCC length prefixes that
//!    add up, a configuration before the first video frame, a configuration record it can
//!    parse) and refuses a bad one with [`SendError::Rejected`], logging why
//!    (rate-limited); it never trusts the plugin's bytes.
//! 9. **Skipped frames.** A source that knows frames were skipped before they reached it
//!    (a relay of another gateway) calls [`Host::skipped`] before the next frame; the host
//!    numbers that frame past the gap, so viewers count the missing frames.
//! 10. **The host owns observability.** Plugins log and report state through the host
//!     callbacks; the host adds context, metrics and rate limits. Messages never contain
//!     secrets (passwords, tokens): mask them before reporting.
//! 11. **Configuration is JSON.** The manifest's `source` mapping minus `plugin` arrives as
//!     a JSON object. Validate strictly (`#[serde(deny_unknown_fields)]`).
//! 12. **Closed is not rejected.** [`Host::send_frame`] and [`Host::send_media`] return
//!     [`SendError::Closed`] when the host stops the instance (end the producer) and
//!     [`SendError::Rejected`] when it could not take one frame (log it, rate-limited, and
//!     keep producing). A source must not report `Live` while it has stopped publishing.
//!
//! ## A minimal plugin
//!
//! ```ignore
//! use camgate_plugin_api::{Host, PluginError, Source, SourcePlugin};
//!
//! pub struct MyPlugin;
//! impl SourcePlugin for MyPlugin {
//!     const NAME: &'static str = "my-plugin";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     const DESCRIPTION: &'static str = "Does something useful";
//!     type Config = MyConfig;          // serde::Deserialize, deny_unknown_fields
//!     type Source = MySource;          // impl Source { start, stop }
//!     fn create(config: MyConfig, host: Host) -> Result<MySource, PluginError> { /* ... */ }
//! }
//! camgate_plugin_api::export_plugin!(MyPlugin);   // in a crate with crate-type = ["cdylib"]
//! ```
//!
//! This crate contains all the `unsafe` code a plugin needs: the plugin's own crate can
//! `#![forbid(unsafe_code)]`, and only the small `cdylib` crate that invokes
//! [`export_plugin!`] carries the unsafe `#[no_mangle]` attribute.

pub mod abi;
pub mod export;
mod plugin;
pub mod testing;
pub mod text;

/// `Err(Closed)` keeps matching what it always meant: the host is stopping this source.
pub use plugin::SendError::Closed;
pub use plugin::{
    Codec, Frame, Host, LogLevel, MediaFrame, PluginError, SendError, Source, SourcePlugin,
    SourceState,
};

#[cfg(test)]
mod tests {
    use super::abi;

    #[test]
    fn symbol_names_match_the_macro() {
        // export_plugin! spells the names literally; keep them in sync with the constants.
        assert_eq!(abi::ENTRY_SYMBOL, b"camgate_plugin_entry_v2\0");
        assert_eq!(abi::ENTRY_SYMBOL_V1, b"camgate_plugin_entry_v1\0");
        assert_eq!(abi::ABI_VERSION_SYMBOL, b"camgate_plugin_abi_version\0");
        assert!(
            std::str::from_utf8(abi::ENTRY_SYMBOL)
                .unwrap()
                .contains(&format!("_v{}\0", abi::ABI_VERSION))
        );
    }

    /// The v1 `HostCallbacks` as version 1 of this crate defined it: v2 only appends, so a
    /// v1 plugin finds every field it knows at the same offset.
    #[repr(C)]
    struct HostCallbacksV1 {
        size: usize,
        ctx: *mut std::ffi::c_void,
        on_frame: extern "C" fn(*mut std::ffi::c_void, *const abi::FrameRef<'_>) -> i32,
        on_state: extern "C" fn(*mut std::ffi::c_void, u32, abi::StrRef<'_>),
        on_log: extern "C" fn(*mut std::ffi::c_void, u32, abi::StrRef<'_>),
    }

    #[test]
    fn version_2_only_appends_to_the_host_callbacks() {
        use std::mem::{offset_of, size_of};
        assert_eq!(abi::HOST_CALLBACKS_V1_SIZE, size_of::<HostCallbacksV1>());
        assert_eq!(
            offset_of!(abi::HostCallbacks, on_frame),
            offset_of!(HostCallbacksV1, on_frame)
        );
        assert_eq!(
            offset_of!(abi::HostCallbacks, on_state),
            offset_of!(HostCallbacksV1, on_state)
        );
        assert_eq!(
            offset_of!(abi::HostCallbacks, on_log),
            offset_of!(HostCallbacksV1, on_log)
        );
        assert!(size_of::<abi::HostCallbacks>() > abi::HOST_CALLBACKS_V1_SIZE);
    }
}
