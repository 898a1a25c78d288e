//! `testsrc`: a synthetic camera. It draws a moving test pattern with the frame counter and
//! the capture time, encodes it as JPEG in pure Rust and publishes it at a steady rate.
//!
//! It needs nothing outside the process, so it is the default demo stream and the workhorse
//! of the gateway's tests. It is a normal plugin: the gateway reaches it only through the
//! plugin ABI, as a built-in (this crate) or as a shared library (`cdylib/`).
//!
//! Invariant: the producer thread is the only thread the source starts; `stop` signals it
//! and joins it, so nothing runs after `stop` returns.

#![forbid(unsafe_code)]

mod pattern;

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use camgate_plugin_api::{Frame, Host, LogLevel, PluginError, Source, SourcePlugin, SourceState};
use serde::Deserialize;

pub use pattern::PatternRenderer;

/// The plugin type: register it as a built-in or export it with `export_plugin!`.
pub struct TestSrc;

/// Options of a `testsrc` source (the manifest's `source` mapping minus `plugin`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSrcConfig {
    /// Picture width in pixels.
    #[serde(default = "default_width")]
    pub width: u32,
    /// Picture height in pixels.
    #[serde(default = "default_height")]
    pub height: u32,
    /// Frames per second.
    #[serde(default = "default_fps")]
    pub fps: f64,
    /// JPEG quality on ffmpeg's `-q:v` scale, as for the ffmpeg plugin: 2 (best) .. 31 (worst).
    #[serde(default = "default_quality")]
    pub quality: u8,
    /// Encode this many frames once and then repeat them (0: encode every frame). For
    /// benchmarks: the gateway process then spends its CPU on fan-out, not on JPEG
    /// encoding, as it does with a real camera (whose encoding happens in ffmpeg).
    #[serde(default)]
    pub loop_frames: u32,
}

/// Most frames `loop_frames` may keep (a minute at 10 fps; ~27 MB at 720p).
const MAX_LOOP_FRAMES: u32 = 600;

fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    360
}
fn default_fps() -> f64 {
    10.0
}
fn default_quality() -> u8 {
    5
}

impl TestSrcConfig {
    /// Maps the ffmpeg-style `-q:v` scale (2 best .. 31 worst) to a JPEG quality (95 .. 20).
    fn jpeg_quality(&self) -> u8 {
        let q = f64::from(self.quality.clamp(2, 31));
        (95.0 - (q - 2.0) * 75.0 / 29.0).round() as u8
    }
}

impl SourcePlugin for TestSrc {
    const NAME: &'static str = "testsrc";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Synthetic moving test pattern with frame counter and clock (no external dependencies)";
    type Config = TestSrcConfig;
    type Source = TestSrcSource;

    fn check(config: &TestSrcConfig) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(16..=3840).contains(&config.width) {
            problems.push(format!("width must be 16..=3840, got {}", config.width));
        }
        if !(16..=2160).contains(&config.height) {
            problems.push(format!("height must be 16..=2160, got {}", config.height));
        }
        if !(config.fps > 0.0 && config.fps <= 60.0) {
            problems.push(format!("fps must be > 0 and <= 60, got {}", config.fps));
        }
        if !(2..=31).contains(&config.quality) {
            problems.push(format!(
                "quality must be 2 (best) ..= 31 (worst), got {}",
                config.quality
            ));
        }
        if config.loop_frames > MAX_LOOP_FRAMES {
            problems.push(format!(
                "loop_frames must be 0 (off) ..= {MAX_LOOP_FRAMES}, got {}",
                config.loop_frames
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn create(config: TestSrcConfig, host: Host) -> Result<TestSrcSource, PluginError> {
        Ok(TestSrcSource {
            config,
            host,
            running: None,
        })
    }
}

/// A running (or startable) test pattern.
pub struct TestSrcSource {
    config: TestSrcConfig,
    host: Host,
    running: Option<Running>,
}

struct Running {
    /// Dropping the sender wakes the producer immediately.
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Source for TestSrcSource {
    fn start(&mut self) -> Result<(), PluginError> {
        if self.running.is_some() {
            return Ok(());
        }
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let config = self.config.clone();
        self.host.set_state(SourceState::Connecting, "");
        let thread = self
            .host
            .spawn("testsrc", move |host| produce(&config, &host, &stop_rx))
            .map_err(|e| PluginError(format!("cannot start testsrc thread: {e}")))?;
        self.running = Some(Running {
            stop: stop_tx,
            thread,
        });
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            drop(running.stop);
            if running.thread.join().is_err() {
                self.host
                    .log(LogLevel::Error, "testsrc thread ended with a panic");
            }
        }
    }
}

/// The producer loop: renders on absolute deadlines so the rate does not drift, and skips
/// ahead (instead of bursting) when it falls more than a frame behind.
fn produce(config: &TestSrcConfig, host: &Host, stop: &mpsc::Receiver<()>) {
    let mut renderer = PatternRenderer::new(config.width, config.height, config.jpeg_quality());
    let period = Duration::from_secs_f64(1.0 / config.fps);
    let mut next = Instant::now();
    let mut frame_number: u64 = 0;
    // With `loop_frames`, the first pass encodes and keeps each frame; later passes reuse.
    let mut encoded: Vec<Vec<u8>> = Vec::new();
    let loop_frames = usize::try_from(config.loop_frames).unwrap_or(0);
    loop {
        let captured_at = SystemTime::now();
        let fresh;
        let jpeg: &[u8] = match loop_frames {
            0 => {
                fresh = renderer.render(frame_number, captured_at);
                &fresh
            }
            n => {
                let index = usize::try_from(frame_number).unwrap_or(0) % n;
                if index == encoded.len() {
                    encoded.push(renderer.render(frame_number, captured_at));
                }
                &encoded[index]
            }
        };
        let frame = Frame {
            jpeg,
            width: config.width,
            height: config.height,
            captured_at,
        };
        // Only `Closed` ends the producer; a rejected frame is skipped.
        if host.send_frame(&frame).is_err_and(|e| e.is_closed()) {
            return;
        }
        if frame_number == 0 {
            host.set_state(SourceState::Live, "");
        }
        frame_number += 1;
        next += period;
        let now = Instant::now();
        if next < now {
            next = now;
        }
        match stop.recv_timeout(next - now) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<TestSrcConfig, String> {
        let config: TestSrcConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        TestSrc::check(&config)?;
        Ok(config)
    }

    #[test]
    fn defaults_are_valid() {
        let config = parse("{}").unwrap();
        assert_eq!((config.width, config.height, config.fps), (640, 360, 10.0));
    }

    #[test]
    fn unknown_option_is_refused() {
        let err = parse(r#"{"widht": 320}"#).unwrap_err();
        assert!(err.contains("unknown field `widht`"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_all_reported() {
        let err =
            parse(r#"{"width": 8, "fps": 0, "quality": 40, "loop_frames": 601}"#).unwrap_err();
        assert!(err.contains("width must be 16..=3840, got 8"), "{err}");
        assert!(err.contains("fps must be > 0"), "{err}");
        assert!(err.contains("quality must be 2"), "{err}");
        assert!(
            err.contains("loop_frames must be 0 (off) ..= 600, got 601"),
            "{err}"
        );
    }

    #[test]
    fn quality_maps_onto_jpeg_scale() {
        let with = |quality| TestSrcConfig {
            quality,
            ..parse("{}").unwrap()
        };
        assert_eq!(with(2).jpeg_quality(), 95);
        assert_eq!(with(31).jpeg_quality(), 20);
        assert!(with(5).jpeg_quality() > with(10).jpeg_quality());
    }
}
