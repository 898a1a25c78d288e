//! The `relay` plugin exported as a shared library, loadable from a plugins folder.
//!
//! It is a separate crate from `camgate-relay` because the gateway links that one in as a
//! built-in: two libraries exporting the same unmangled entry symbol cannot share a binary.

camgate_plugin_api::export_plugin!(camgate_relay::Relay);
