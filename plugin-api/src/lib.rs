//! # Camgate plugin API
//!
//! Source plugins produce JPEG frames for the Camgate gateway. A plugin author implements the
//! safe traits [`SourcePlugin`] and [`Source`] and exports them with [`export_plugin!`]; the
//! gateway loads the shared library and talks to it through a small, versioned C ABI
//! ([`abi`]). Built-in plugins go through exactly the same ABI (see [`export::entry_fn`]).
//!
//! ## ABI rules (version 1)
//!
//! 1. **Versioned entry.** A library exports `camgate_plugin_entry_v1` ([`abi::EntryFn`]) and
//!    `camgate_plugin_abi_version` ([`abi::AbiVersionFn`], whose signature never changes).
//!    The host reads the version first and refuses a mismatch with a message naming both
//!    versions; then it calls the entry with its own version (the handshake), and the plugin
//!    refuses too if they differ. Any incompatible change bumps [`abi::ABI_VERSION`] and the
//!    symbol name.
//! 2. **Only C types cross.** `#[repr(C)]` structs, integers, borrowed pointer+length
//!    strings and byte slices, `extern "C"` function pointers. No Rust std types, trait
//!    objects, allocations or async runtimes cross the boundary, so host and plugin may be
//!    built by different compiler versions.
//! 3. **Borrowed for the call.** Every string/slice is valid only during the call that
//!    passes it; the receiver copies (the host copies each JPEG into a refcounted buffer).
//!    Static metadata (name, version, description) is the exception: libraries are never
//!    unloaded.
//! 4. **Sized structs, growth by appending.** Growable structs start with their `size`. A
//!    reader accepts a struct at least as large as the one it was built for and reads only
//!    the fields it knows; a smaller one is refused (`STATUS_ABI_MISMATCH`). It reads
//!    `size` alone, through the raw pointer, before anything else. So the host may append
//!    fields to `HostCallbacks` without breaking plugins; a change to a struct plugins
//!    write (`PluginVTable`, `FrameRef`) that the host relies on bumps the ABI version.
//!    See [`abi`] for the vtable buffer.
//! 5. **Status codes, not panics.** Every call returns an `i32` status (`abi::STATUS_*`);
//!    details go to an [`abi::ErrorSink`] as text. Panics in plugin code are caught at every
//!    crossing and become [`abi::STATUS_PANIC`]; a panicking plugin fails its stream, never
//!    the gateway. Plugins must be built with `panic = "unwind"` (the default).
//! 6. **Lifecycle.** `validate(json)` any time; `create(json, host) → start → (frames, state
//!    and log callbacks from any plugin thread) → stop → destroy`. `start` returns promptly
//!    (work happens on the plugin's own threads — no shared tokio runtime). `stop` blocks,
//!    is idempotent and joins the plugin's threads; after it returns no callback for that
//!    instance reaches the host (this crate enforces it with a gate in [`Host`]; the host
//!    also refuses and counts late calls, even after `destroy`, so a C plugin that breaks
//!    the rule cannot crash it). `destroy` frees the instance. Callbacks may come from
//!    several plugin threads at once (memory-safe; frames from concurrent threads are not
//!    ordered).
//! 7. **The host owns observability.** Plugins log and report state through the host
//!    callbacks; the host adds context, metrics and rate limits. Messages never contain
//!    secrets (passwords, tokens): mask them before reporting.
//! 8. **Configuration is JSON.** The manifest's `source` mapping minus `plugin` arrives as
//!    a JSON object. Validate strictly (`#[serde(deny_unknown_fields)]`).
//! 9. **Closed is not rejected.** [`Host::send_frame`] returns [`SendError::Closed`] when
//!    the host stops the instance (end the producer) and [`SendError::Rejected`] when it
//!    could not take one frame (log it, rate-limited, and keep producing). A source must
//!    not report `Live` while it has stopped publishing.
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
    Frame, Host, LogLevel, PluginError, SendError, Source, SourcePlugin, SourceState,
};

#[cfg(test)]
mod tests {
    use super::abi;

    #[test]
    fn symbol_names_match_the_macro() {
        // export_plugin! spells the names literally; keep them in sync with the constants.
        assert_eq!(abi::ENTRY_SYMBOL, b"camgate_plugin_entry_v1\0");
        assert_eq!(abi::ABI_VERSION_SYMBOL, b"camgate_plugin_abi_version\0");
        assert!(
            std::str::from_utf8(abi::ENTRY_SYMBOL)
                .unwrap()
                .contains(&format!("_v{}\0", abi::ABI_VERSION))
        );
    }
}
