//! `relay`: a source plugin whose input is another Camgate gateway's stream, read over the
//! public viewing protocol (`GET /ws/streams/{id}?format=auto`) as one viewer of it. What
//! arrives is republished as it is — JPEGs (the upstream's tag exchanged for the host's),
//! H.264/H.265 access units with their `config` — with the upstream's capture times and
//! sequence gaps, so an edge gateway's viewers see what the core's viewers see. However
//! many viewers the edge has, the core sees one (the hub runs one source per stream).
//!
//! Pieces, one purpose each:
//! - [`config`]: the options (strict; `url`, `token`, and the camera plugins' timeouts);
//! - [`supervisor`]: the thread with its own current-thread tokio runtime that runs
//!   connections, reports states and reconnects with backoff (`camgate-plugin-common`);
//! - [`session`]: one connection: connect, upgrade, watchdogs, how each failure is worded;
//! - [`republish`]: the upstream's messages turned into host calls (states, frames, skips);
//! - [`protocol`]: the upstream's messages parsed (pure; fuzzed).
//!
//! States: `connecting` → `live` (first frame the host took) → `retrying` (the connection
//! failed or ended: backoff; or the upstream itself is retrying/failed: `upstream: <its
//! message>`, connection kept) → ... `failed` only for a thread that cannot run.
//!
//! Invariants: no `unsafe`; `start` only spawns the supervisor thread; `stop` is prompt,
//! idempotent and joins the thread, so nothing calls the host after it returns; the token
//! appears in no text this plugin emits.

#![forbid(unsafe_code)]

pub mod config;
pub mod protocol;
pub mod republish;
pub mod session;
pub mod supervisor;

use camgate_plugin_api::{Host, PluginError, Source, SourcePlugin};
use camgate_plugin_common::runtime::SupervisorThread;

pub use config::{RelayConfig, Settings};
use supervisor::Supervisor;

/// The plugin type: registered as a built-in, or exported with `export_plugin!` (cdylib/).
pub struct Relay;

impl SourcePlugin for Relay {
    const NAME: &'static str = "relay";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "another Camgate gateway's stream as a source (ws://HOST:PORT/ws/streams/ID)";
    type Config = RelayConfig;
    type Source = RelaySource;

    fn check(config: &RelayConfig) -> Result<(), String> {
        Settings::from_config(config)
            .map(|_| ())
            .map_err(|problems| problems.join("; "))
    }

    fn create(config: RelayConfig, host: Host) -> Result<RelaySource, PluginError> {
        let settings =
            Settings::from_config(&config).map_err(|problems| PluginError(problems.join("; ")))?;
        Ok(RelaySource {
            settings,
            host,
            running: None,
        })
    }
}

/// A running (or startable) relay source.
pub struct RelaySource {
    settings: Settings,
    host: Host,
    running: Option<SupervisorThread>,
}

impl Source for RelaySource {
    /// Starts the supervisor thread and returns at once.
    fn start(&mut self) -> Result<(), PluginError> {
        if self.running.is_some() {
            return Ok(());
        }
        let (settings, host) = (self.settings.clone(), self.host.clone());
        self.running = Some(SupervisorThread::spawn(
            &self.host,
            "relay-supervisor",
            move |stop| {
                Supervisor::new(settings, host, stop).run();
            },
        )?);
        Ok(())
    }

    /// Signals the supervisor (ends the connection or the backoff wait) and joins it.
    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop(&self.host);
        }
    }
}

impl Drop for RelaySource {
    fn drop(&mut self) {
        self.stop();
    }
}
