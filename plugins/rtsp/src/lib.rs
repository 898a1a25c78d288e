//! `rtsp`: the passthrough source plugin. It reads an RTSP camera's H.264, H.265 or MJPEG
//! video in-process (the `retina` RTSP client) and publishes the camera's own frames —
//! never decoded, never re-encoded: one H.264/H.265 access unit (AVCC/HVCC, with the
//! avcC/hvcC configuration when it is new) or one JPEG per frame.
//!
//! Pieces, one purpose each:
//! - [`config`]: the options (strict; `ffmpeg-mjpeg`'s names where they overlap);
//! - [`supervisor`]: the thread with its own current-thread tokio runtime that runs
//!   sessions, reports states and reconnects with backoff (shared with `ffmpeg-mjpeg`
//!   through `camgate-plugin-common`);
//! - [`session`]: one RTSP session, its connect timeout and its stall watchdog;
//! - [`media`]: which frames go out (from a keyframe on; after packet loss, from the next
//!   keyframe), with which configuration, and the one call that publishes them.
//!
//! States: `connecting` (every session; while reconnecting the message keeps the last
//! error) → `live` (first frame the host took) → `retrying` (any end of a session: error,
//! 401, stream ended, stall) → `connecting` ... forever. `failed` only for invalid options
//! (refused before start) or a thread that cannot run.
//!
//! Invariants: no `unsafe`; `start` only spawns the supervisor thread and returns; `stop`
//! is prompt (see [`supervisor`]), idempotent, and joins the thread, so nothing calls the
//! host after it returns; no text this plugin emits contains the password or the URL's
//! userinfo, and the RTSP client never sees the userinfo in the URL either.

#![forbid(unsafe_code)]

pub mod config;
pub mod media;
pub mod session;
pub mod supervisor;

use camgate_plugin_api::{Host, PluginError, Source, SourcePlugin};
use camgate_plugin_common::runtime::SupervisorThread;

pub use config::{RtspConfig, Settings};
use supervisor::Supervisor;

/// The plugin type: registered as a built-in, or exported with `export_plugin!` (cdylib/).
pub struct Rtsp;

impl SourcePlugin for Rtsp {
    const NAME: &'static str = "rtsp";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "RTSP H.264/H.265/MJPEG cameras passed through without decoding (in-process client)";
    type Config = RtspConfig;
    type Source = RtspSource;

    fn check(config: &RtspConfig) -> Result<(), String> {
        Settings::from_config(config)
            .map(|_| ())
            .map_err(|problems| problems.join("; "))
    }

    fn create(config: RtspConfig, host: Host) -> Result<RtspSource, PluginError> {
        let settings =
            Settings::from_config(&config).map_err(|problems| PluginError(problems.join("; ")))?;
        Ok(RtspSource {
            settings,
            host,
            running: None,
        })
    }
}

/// A running (or startable) RTSP source.
pub struct RtspSource {
    settings: Settings,
    host: Host,
    running: Option<SupervisorThread>,
}

impl Source for RtspSource {
    /// Starts the supervisor thread and returns at once.
    fn start(&mut self) -> Result<(), PluginError> {
        if self.running.is_some() {
            return Ok(());
        }
        let (settings, host) = (self.settings.clone(), self.host.clone());
        self.running = Some(SupervisorThread::spawn(
            &self.host,
            "rtsp-supervisor",
            move |stop| {
                Supervisor::new(settings, host, stop).run();
            },
        )?);
        Ok(())
    }

    /// Signals the supervisor (ends the session or the backoff wait) and joins it.
    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop(&self.host);
        }
    }
}

impl Drop for RtspSource {
    fn drop(&mut self) {
        self.stop();
    }
}
