//! Test fixture plugin `misbehaving`: does what its configuration asks, including the things
//! a plugin must never do, so tests can prove the gateway contains them.
//!
//! Options: `panic_in`: `create` | `start` | `stop` | `thread` (panic there);
//! `ignore_stop`: keep a thread sending frames after `stop` returned (it is not joined),
//! which the plugin API's gate must silence; `url`/`password` with `leak: true`: put the
//! credentials in every log line and state message, which the host must scrub.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use camgate_plugin_api::{Frame, Host, PluginError, Source, SourcePlugin, SourceState};
use serde::Deserialize;

/// A minimal valid JPEG-shaped frame (SOI ... EOI); the hub checks only the markers.
const FRAME: &[u8] = &[0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x04, b'h', b'i', 0xFF, 0xD9];

/// The plugin: breaks the ABI contract in the ways its `Config` asks for.
pub struct Misbehaving;

/// Which misbehaviour to show.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    panic_in: Option<String>,
    #[serde(default)]
    ignore_stop: bool,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    leak: bool,
}

impl SourcePlugin for Misbehaving {
    const NAME: &'static str = "misbehaving";
    const VERSION: &'static str = "0.0.1";
    const DESCRIPTION: &'static str = "test fixture that panics on request";
    type Config = Config;
    type Source = MisbehavingSource;

    fn check(config: &Config) -> Result<(), String> {
        match config.panic_in.as_deref() {
            None | Some("create" | "start" | "stop" | "thread") => Ok(()),
            Some(other) => Err(format!(
                "panic_in must be create|start|stop|thread, got {other:?}"
            )),
        }
    }

    fn create(config: Config, host: Host) -> Result<MisbehavingSource, PluginError> {
        if config.panic_in.as_deref() == Some("create") {
            panic!("asked to panic in create");
        }
        Ok(MisbehavingSource {
            config,
            host,
            running: Arc::new(AtomicBool::new(false)),
            thread: None,
        })
    }
}

/// A running misbehaving source.
pub struct MisbehavingSource {
    config: Config,
    host: Host,
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Source for MisbehavingSource {
    fn start(&mut self) -> Result<(), PluginError> {
        if self.config.panic_in.as_deref() == Some("start") {
            panic!("asked to panic in start");
        }
        self.running.store(true, Ordering::SeqCst);
        let running = Arc::clone(&self.running);
        let ignore_stop = self.config.ignore_stop;
        let panic_in_thread = self.config.panic_in.as_deref() == Some("thread");
        let leak = self.config.leak.then(|| {
            format!(
                "connecting to {} with password {}",
                self.config.url.clone().unwrap_or_default(),
                self.config.password.clone().unwrap_or_default()
            )
        });
        let thread = self
            .host
            .spawn("misbehaving", move |host| {
                if let Some(leak) = &leak {
                    host.log(camgate_plugin_api::LogLevel::Error, leak);
                    host.set_state(SourceState::Retrying, leak);
                }
                host.set_state(SourceState::Live, "");
                let mut sent = 0u32;
                while ignore_stop || running.load(Ordering::SeqCst) {
                    let frame = Frame {
                        jpeg: FRAME,
                        width: 1,
                        height: 1,
                        captured_at: SystemTime::now(),
                    };
                    // A well-behaved plugin stops on Err(Closed); this one ignores it.
                    let _ = host.send_frame(&frame);
                    sent += 1;
                    if panic_in_thread && sent == 3 {
                        panic!("asked to panic in its thread");
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
            .map_err(|e| PluginError(e.to_string()))?;
        self.thread = Some(thread);
        Ok(())
    }

    fn stop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
        if self.config.panic_in.as_deref() == Some("stop") {
            panic!("asked to panic in stop");
        }
        if let Some(thread) = self.thread.take() {
            if self.config.ignore_stop {
                // Deliberately leave the thread running (a plugin bug).
                drop(thread);
            } else {
                let _ = thread.join();
            }
        }
    }
}

camgate_plugin_api::export_plugin!(Misbehaving);
