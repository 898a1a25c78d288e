//! A template Camgate source plugin: it publishes a small grey JPEG (carried pre-encoded,
//! so the template needs no image library) at a configurable rate. Replace `produce` with
//! your source (a camera SDK, a file reader, another protocol) and keep the structure:
//!
//! - `Config`: the manifest's `source` options, strict (`deny_unknown_fields`), checked in
//!   `check` so `camgate check` reports mistakes before anything runs;
//! - `create` builds, `start` spawns your thread(s) with `Host::spawn` (panics there become
//!   a `failed` state instead of a silent death), `stop` signals and joins them;
//! - frames go through `host.send_frame` (the host copies them), states and logs through
//!   the host too; never put secrets in messages;
//! - a source that already has H.264/H.265 (most IP cameras) sends its access units as
//!   they are with `host.send_media` instead: see `send_h264` below.

#![forbid(unsafe_code)]

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use camgate_plugin_api::{
    Codec, Frame, Host, MediaFrame, PluginError, SendError, Source, SourcePlugin, SourceState,
};
use serde::Deserialize;

/// An 8x8 mid-grey baseline JPEG (any complete JPEG works: SOI .. EOI).
const GREY_JPEG: &[u8] = include_bytes!("grey8x8.jpg");

/// The plugin (its name is what manifests write as `source.plugin`).
pub struct Template;

/// `source` options of this plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Frames per second.
    #[serde(default = "default_fps")]
    pub fps: f64,
}

fn default_fps() -> f64 {
    5.0
}

impl SourcePlugin for Template {
    const NAME: &'static str = "template";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Template plugin: a grey test picture (copy me)";
    type Config = Config;
    type Source = TemplateSource;

    fn check(config: &Config) -> Result<(), String> {
        if config.fps > 0.0 && config.fps <= 60.0 {
            Ok(())
        } else {
            Err(format!("fps must be > 0 and <= 60, got {}", config.fps))
        }
    }

    fn create(config: Config, host: Host) -> Result<TemplateSource, PluginError> {
        Ok(TemplateSource {
            config,
            host,
            running: None,
        })
    }
}

/// A running (or startable) template source.
pub struct TemplateSource {
    config: Config,
    host: Host,
    running: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl Source for TemplateSource {
    fn start(&mut self) -> Result<(), PluginError> {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let period = Duration::from_secs_f64(1.0 / self.config.fps);
        self.host.set_state(SourceState::Connecting, "");
        let thread = self
            .host
            .spawn("template", move |host| produce(&host, period, &stop_rx))
            .map_err(|e| PluginError(format!("cannot start the template thread: {e}")))?;
        self.running = Some((stop_tx, thread));
        Ok(())
    }

    fn stop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            drop(stop); // wakes the producer
            let _ = thread.join();
        }
    }
}

fn produce(host: &Host, period: Duration, stop: &mpsc::Receiver<()>) {
    host.set_state(SourceState::Live, "");
    loop {
        let frame = Frame {
            jpeg: GREY_JPEG,
            width: 8,
            height: 8,
            captured_at: SystemTime::now(),
        };
        match host.send_frame(&frame) {
            Ok(()) => {}
            Err(SendError::Closed) => return, // the host is stopping this source
            // The host could not take this one frame; keep going (a real plugin would log
            // it, rate-limited).
            Err(SendError::Rejected { .. }) => {}
        }
        match stop.recv_timeout(period) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// How a source with H.264 sends one access unit (this template has no video, so nothing
/// calls it; H.265 is the same with `Codec::H265` and an hvcC record). The gateway passes
/// the bytes through to viewers untouched, so it checks them and answers
/// `SendError::Rejected` (and logs why) for a frame that breaks these rules:
///
/// - `access_unit`: ONE access unit in AVCC form: every NAL unit prefixed by its length as
///   a 4-byte big-endian integer, no `00 00 01` start codes. SPS/PPS may be left out.
/// - `avcc`: the avcC record (`AVCDecoderConfigurationRecord`, 4-byte lengths) on the
///   first frame you send and whenever it changes (new SPS/PPS, new resolution), `None`
///   otherwise. A video frame before the first record is refused.
/// - `idr`: `true` for IDR access units; viewers start decoding at one.
#[allow(dead_code)]
fn send_h264(
    host: &Host,
    access_unit: &[u8],
    idr: bool,
    avcc: Option<&[u8]>,
    captured_at: SystemTime,
) -> Result<(), SendError> {
    host.send_media(&MediaFrame {
        codec: Codec::H264,
        keyframe: idr,
        data: access_unit,
        config: avcc,
        width: 0, // the coded size if you know it; 0 = take it from the SPS
        height: 0,
        captured_at,
    })
}

// The one line that makes this crate a loadable Camgate plugin.
camgate_plugin_api::export_plugin!(Template);
