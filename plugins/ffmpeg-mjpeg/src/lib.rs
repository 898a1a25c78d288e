//! `ffmpeg-mjpeg`: the default source plugin. It runs `ffmpeg` against a camera URL
//! (RTSP, RTSPS, HTTP, HTTPS) and publishes one complete JPEG per frame.
//!
//! Pieces, one purpose each:
//! - [`config`]: the options (strict), their checks and the secret scrubbing;
//! - [`command`]: the ffmpeg command line, wrapped in `setpriv --pdeathsig KILL`;
//! - [`supervisor`]: the long-lived thread that runs ffmpeg, watches it (stall watchdog),
//!   restarts it with [`backoff`] and reports states;
//! - [`retry`]: the wait between runs, cut short by a cheap TCP probe when the camera's
//!   port comes back;
//! - [`reader`] + [`splitter`]: stdout → complete JPEGs → host;
//! - [`stderr`]: drains ffmpeg's stderr, logs it and turns errors into short messages.
//!
//! Behaviour in short: states go `connecting` (every spawn) → `live` (first frame) →
//! `retrying` (with the last useful error; after ANY ffmpeg exit, a failed connect — also
//! the very first — or a stall) → `connecting` ... forever, with exponential backoff; while
//! waiting, the camera's port is probed once a second and ffmpeg starts as soon as a silent
//! port answers again (a camera back from a reboot is live again about a second later).
//! `failed` is only reported for what no retry can fix: invalid options (refused before
//! start) or a missing ffmpeg binary (refused by `start`).
//!
//! `passthrough: auto` (the default): the first run transcodes; if ffmpeg reports that the
//! camera's video is MJPEG and neither `width` nor `height` is set, ffmpeg is restarted
//! right after the first frame with `-c:v copy` and stays so for the life of the source
//! (frames are then paced to `fps` by dropping whole JPEGs); a copy run that never yields
//! a frame falls back to transcoding.
//!
//! Invariants: no `unsafe`; `stop` is prompt (bounded by ffmpeg's 0.5 s SIGTERM grace, or
//! one reachability probe during a backoff, plus thread joins), idempotent and joins every thread, so nothing calls the host after it
//! returns; no text this plugin emits contains the password or URL userinfo (ffmpeg's
//! command line necessarily does: ffmpeg has no other way to receive it).

#![forbid(unsafe_code)]

pub mod command;
pub mod config;
pub mod reader;
pub mod splitter;
pub mod stderr;
pub mod supervisor;

// Shared with the `rtsp` plugin (one backoff, one reconnect wait for every camera).
pub use camgate_plugin_common::{backoff, retry};

use std::sync::mpsc;
use std::thread::JoinHandle;

use camgate_plugin_api::{Host, LogLevel, PluginError, Source, SourcePlugin};

pub use config::{FfmpegMjpegConfig, Settings};
use supervisor::{Event, Supervisor};

/// The plugin type: register it as a built-in or export it with `export_plugin!`.
pub struct FfmpegMjpeg;

impl SourcePlugin for FfmpegMjpeg {
    const NAME: &'static str = "ffmpeg-mjpeg";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "RTSP/HTTP cameras through ffmpeg: one JPEG per frame, transcoded or passed through";
    type Config = FfmpegMjpegConfig;
    type Source = FfmpegMjpegSource;

    fn check(config: &FfmpegMjpegConfig) -> Result<(), String> {
        Settings::from_config(config)
            .map(|_| ())
            .map_err(|problems| problems.join("; "))
    }

    fn create(config: FfmpegMjpegConfig, host: Host) -> Result<FfmpegMjpegSource, PluginError> {
        let settings =
            Settings::from_config(&config).map_err(|problems| PluginError(problems.join("; ")))?;
        Ok(FfmpegMjpegSource {
            settings,
            host,
            running: None,
        })
    }
}

/// A running (or startable) ffmpeg source.
pub struct FfmpegMjpegSource {
    settings: Settings,
    host: Host,
    running: Option<Running>,
}

struct Running {
    events: mpsc::Sender<Event>,
    thread: JoinHandle<()>,
}

impl Source for FfmpegMjpegSource {
    /// Resolves the ffmpeg binary (a missing one is the only start failure) and starts
    /// the supervisor thread. Returns at once.
    fn start(&mut self) -> Result<(), PluginError> {
        if self.running.is_some() {
            return Ok(());
        }
        let ffmpeg = command::resolve_ffmpeg(&self.settings.ffmpeg_path).map_err(PluginError)?;
        let (events_tx, events_rx) = mpsc::channel();
        let supervisor = Supervisor::new(
            self.settings.clone(),
            ffmpeg,
            self.host.clone(),
            events_rx,
            events_tx.clone(),
        );
        let thread = self
            .host
            .spawn("ffmpeg-supervisor", move |_host| supervisor.run())
            .map_err(|e| PluginError(format!("cannot start the ffmpeg supervisor thread: {e}")))?;
        self.running = Some(Running {
            events: events_tx,
            thread,
        });
        Ok(())
    }

    /// Stops ffmpeg (SIGTERM, SIGKILL after 0.5 s), reaps it and joins every thread.
    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.events.send(Event::Stop);
            if running.thread.join().is_err() {
                self.host.log(
                    LogLevel::Error,
                    "ffmpeg supervisor thread ended with a panic",
                );
            }
        }
    }
}

impl Drop for FfmpegMjpegSource {
    fn drop(&mut self) {
        self.stop();
    }
}
