//! Camgate: a plugin-oriented edge gateway that lets people watch RTSP cameras in a web
//! browser.
//!
//! Data flow: a source plugin (built-in or loaded from a folder, always through the plugin
//! ABI in [`plugins`]) publishes JPEG frames into a per-stream [`hub`]; the [`http`] server
//! fans them out to WebSocket viewers. [`config`] reads the YAML manifest, [`app`] wires it
//! all together. See `docs/ARCHITECTURE.md`.
//!
//! `unsafe` is denied everywhere except the plugin ABI boundary (`plugins::ffi` and
//! `plugins::loader`), where each block carries a `SAFETY:` comment.

#![deny(unsafe_code)]

pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod http;
pub mod hub;
pub mod limits;
pub mod plugins;
pub mod redact;
pub mod reload;
pub mod scheduling;
pub mod telemetry;
pub mod transcode;
