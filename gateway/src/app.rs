//! Wiring: builds the hubs of a manifest with plugin-backed source factories, runs the HTTP
//! server and the reaper, and shuts everything down in order.
//!
//! Shutdown order: signal (viewers get 1001, listeners stop) → wait for connections within
//! the grace period → stop every source (plugins join their threads) → return.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Manifest, StreamConfig};
use crate::http::ws::WsSettings;
use crate::hub::{Hub, Registry, StreamInfo};
use crate::plugins::PluginCatalog;

/// Settings of the HTTP side taken from the manifest's `server` section.
#[derive(Debug, Clone, Default)]
pub struct ServerSettings {
    /// Extra `Origin`s allowed to open viewer WebSockets (same-origin always is).
    pub allowed_origins: Vec<String>,
}

/// Everything request handlers share.
pub struct AppState {
    /// Stream id → hub.
    pub registry: Arc<Registry>,
    /// Known source plugins.
    pub catalog: Arc<PluginCatalog>,
    manifest: RwLock<Arc<Manifest>>,
    /// HTTP settings.
    pub server: ServerSettings,
    /// WebSocket viewer tunables.
    pub ws: WsSettings,
    /// Turns true when the gateway shuts down.
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// The manifest currently applied.
    pub fn manifest(&self) -> Arc<Manifest> {
        Arc::clone(&self.manifest.read().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Tunables that tests and operators may change.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// WebSocket viewer tunables.
    pub ws: WsSettings,
    /// How often the idle reaper runs.
    pub reaper_interval: Duration,
    /// How long shutdown waits for connections to finish.
    pub shutdown_grace: Duration,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            ws: WsSettings::default(),
            reaper_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A stream names a plugin the catalog lacks (the manifest was not validated against
    /// this catalog).
    #[error("stream `{stream}`: {message}")]
    Source {
        /// The stream id.
        stream: String,
        /// Why.
        message: String,
    },
    /// The listener's address could not be read.
    #[error("cannot read the listening address: {0}")]
    Listener(#[from] std::io::Error),
}

/// The facts a hub needs from a stream's configuration.
pub fn stream_info(config: &StreamConfig) -> StreamInfo {
    StreamInfo {
        name: config.name.clone(),
        on_demand: config.on_demand,
        idle_timeout: config.idle_timeout,
        fps: config.source.options.get("fps").and_then(|v| v.as_f64()),
    }
}

/// A running gateway.
pub struct Gateway {
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown_tx: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    reaper: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Builds the hubs of `manifest`, starts always-on sources and serves `listener`.
    pub async fn start(
        manifest: Manifest,
        catalog: PluginCatalog,
        listener: TcpListener,
        options: GatewayOptions,
    ) -> Result<Gateway, StartError> {
        let addr = listener.local_addr()?;
        let registry = Arc::new(Registry::new());
        for stream in &manifest.streams {
            let factory = catalog
                .factory(&stream.source.plugin, &stream.source.options)
                .map_err(|message| StartError::Source {
                    stream: stream.id.clone(),
                    message,
                })?;
            registry.insert(Hub::new(&stream.id, stream_info(stream), factory));
        }
        for hub in registry.all() {
            hub.activate().await;
        }
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let state = Arc::new(AppState {
            registry: Arc::clone(&registry),
            catalog: Arc::new(catalog),
            server: ServerSettings {
                allowed_origins: manifest.server.allowed_origins.clone(),
            },
            manifest: RwLock::new(Arc::new(manifest)),
            ws: options.ws.clone(),
            shutdown: shutdown_rx.clone(),
        });
        let reaper =
            Arc::clone(&registry).spawn_reaper(options.reaper_interval, shutdown_rx.clone());
        let server = tokio::spawn(crate::http::serve(
            listener,
            Arc::clone(&state),
            shutdown_rx,
            options.shutdown_grace,
        ));
        tracing::info!(%addr, streams = registry.all().len(), "camgate listening");
        Ok(Gateway {
            addr,
            state,
            shutdown_tx,
            server,
            reaper,
        })
    }

    /// The address the server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (registry, catalog, manifest).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Graceful shutdown: viewers are closed with 1001, connections drained within the
    /// grace period, then every source is stopped.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.shutdown_tx.send_replace(true);
        let _ = self.server.await;
        let _ = self.reaper.await;
        self.state.registry.stop_all().await;
        tracing::info!("shutdown complete");
    }
}
