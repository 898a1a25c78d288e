//! Wiring: builds the hubs of a configuration with plugin-backed source factories, applies
//! reloads as per-stream diffs, runs the HTTP server, the reaper and the reloader, and shuts
//! everything down in order.
//!
//! Shutdown order: signal (viewers get 1001, listeners stop) → wait for connections within
//! the grace period → stop every source (plugins join their threads) → return.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::SubConfig;
use crate::config::{self, LoadedConfig, StreamConfig};
use crate::health;
use crate::http::ws::WsSettings;
use crate::hub::{Hub, Registry, SourceFactory, StreamInfo, Variant};
use crate::plugins::PluginCatalog;
use crate::reload::{self, Cause, Diff, ReloadOptions, ReloadTrigger};
use crate::telemetry::Metrics;
use crate::transcode::{DerivedSubFactory, FfmpegDeriver};

/// How `${VAR}` references are resolved on reload (the process environment in production).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The outcome of the last reload attempt, for `GET /api/config`.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// When it happened (RFC 3339).
    pub at: String,
    /// What triggered it.
    pub cause: Cause,
    /// `applied`, `unchanged` or `rejected`.
    pub result: &'static str,
    /// For `applied`: what changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<String>,
    /// For `rejected`: every problem, one per line, with file:line:column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The configuration's health as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigStatus {
    /// The operator's manifest.
    pub manifest: PathBuf,
    /// The API-managed streams file next to it.
    pub api_streams_file: PathBuf,
    /// When the configuration now running was applied (RFC 3339).
    pub applied_at: String,
    /// Whether the last reload attempt succeeded (or found nothing to do).
    pub last_reload_successful: bool,
    /// The last reload attempt, if any.
    pub last_reload: Option<ReloadReport>,
    /// Successful reloads that changed something.
    pub reloads_applied: u64,
    /// Rejected reloads (the previous configuration kept running).
    pub reloads_rejected: u64,
    /// Changed settings that only take effect after a gateway restart.
    pub restart_required: Vec<&'static str>,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Everything request handlers share.
pub struct AppState {
    /// Stream id → hub.
    pub registry: Arc<Registry>,
    /// Known source plugins.
    pub catalog: Arc<PluginCatalog>,
    /// The Prometheus metrics.
    pub metrics: Arc<Metrics>,
    config: RwLock<Arc<LoadedConfig>>,
    status: Mutex<ConfigStatus>,
    /// The files and bytes of the last rejected configuration: the same bytes are not
    /// retried (see [`AppState::reload`]).
    rejected_sources: Mutex<Option<config::SourceSet>>,
    /// Serialises reloads.
    reload_lock: tokio::sync::Mutex<()>,
    /// Serialises writes of the API-managed streams file.
    pub api_write_lock: tokio::sync::Mutex<()>,
    /// The wall's camera groups (`config/groups.rs`), beside the API streams file.
    pub groups: config::GroupStore,
    /// Browser sessions (cookie → token).
    pub sessions: crate::http::auth::Sessions,
    env: Env,
    /// WebSocket viewer tunables.
    pub ws: WsSettings,
    /// Connection slots and the login-body limit (`http/admission.rs`).
    pub admission: crate::http::admission::Admission,
    /// Turns true when the gateway shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Where hubs run their fan-out ([`GatewayOptions::fanout`]).
    fanout: Option<tokio::runtime::Handle>,
    /// How hubs' health monitors sample ([`GatewayOptions::health`]).
    health: Option<health::MonitorOptions>,
    /// Cluster mode: members, owners (`cluster/`); inert when the manifest has no `cluster:`.
    pub cluster: crate::cluster::ClusterState,
    /// The manifest the hubs run: the configuration's own, except that in a cluster the
    /// streams other nodes own are relays from them (`cluster::effective`).
    running: RwLock<Arc<config::Manifest>>,
    /// Set once the first configuration is applied: until then `/readyz` says `starting`
    /// (the listener serves from the start, so cluster members starting together see each
    /// other before any of them opens a camera).
    started: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// The configuration currently applied.
    pub fn config(&self) -> Arc<LoadedConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Who `credential` belongs to under the current configuration (`None`: nobody).
    pub fn principal(
        &self,
        credential: &crate::http::auth::Credential,
    ) -> Option<crate::http::auth::Principal> {
        crate::http::auth::principal(&self.config().manifest.auth, &self.sessions, credential)
    }

    /// Re-applies the configuration in force after the cluster's ready members changed:
    /// the streams whose owner changed restart under their viewers, nothing else moves.
    pub async fn reassign(&self) {
        let _serial = self.reload_lock.lock().await;
        let current = (*self.config()).clone();
        let diff = self.apply(current).await;
        if diff.touches_streams() {
            tracing::info!(changes = %diff.summary(), "cluster members changed; streams moved");
        }
    }

    /// Whether the first configuration has been applied (`/readyz`).
    pub fn started(&self) -> bool {
        self.started.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Resolves `${VAR}` as reloads do.
    pub fn env(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    /// The configuration's status (last reload, counters).
    pub fn config_status(&self) -> ConfigStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the configuration's files and applies them if valid; otherwise keeps the
    /// running configuration and reports why.
    ///
    /// A file event, the periodic check or an API-triggered reload is skipped when the bytes
    /// of every file the running configuration was read from (manifest, API file, token
    /// files) are unchanged, and also — quietly, without counting or logging again — when
    /// they are the very bytes of the last rejected attempt (a bad manifest next to a busy
    /// log file must not be re-rejected on every write). `Cause::Signal` is never skipped: an
    /// operator's SIGHUP always re-reads, re-parses, and logs the outcome.
    pub async fn reload(&self, cause: Cause) -> ReloadReport {
        let _serial = self.reload_lock.lock().await;
        if cause != Cause::Signal {
            if !self.config().sources.changed_on_disk() {
                tracing::debug!(?cause, "configuration files unchanged");
                // The files are the running configuration's again (a bad edit reverted): a
                // rejection no longer describes them, so the same bad bytes written again
                // are new and must be parsed and reported again.
                *self
                    .rejected_sources
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = None;
                let report = ReloadReport {
                    at: now_rfc3339(),
                    cause,
                    result: "unchanged",
                    changes: None,
                    error: None,
                };
                self.record(&report);
                return report;
            }
            let rejected = self
                .rejected_sources
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(rejected) = rejected
                && !rejected.changed_on_disk()
                && let Some(last) = self.config_status().last_reload
            {
                tracing::debug!(
                    ?cause,
                    "same bytes as the rejected configuration; not retrying"
                );
                return last;
            }
        }
        let path = self.config().manifest.path.clone();
        let (sources, result) = config::read_and_parse(&path, &*self.env, self.catalog.as_ref());
        let report = match result {
            Err(errors) => {
                *self
                    .rejected_sources
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(sources);
                self.rejected(cause, errors.to_string())
            }
            Ok(loaded) => self.settle(cause, loaded).await,
        };
        self.record(&report);
        report
    }

    /// Validates `streams` as the new content of the API-managed file together with the
    /// configuration on disk and, if good, writes the file and applies exactly what was
    /// validated (the same bytes: a concurrent edit of the manifest cannot slip in between
    /// the check and the apply; it is picked up by the next reload). If the write fails, the
    /// previous file is put back and nothing is applied.
    pub async fn commit_api_streams(
        &self,
        streams: &[config::StoredStream],
    ) -> Result<ReloadReport, ApiCommitError> {
        let _serial = self.reload_lock.lock().await;
        let path = self.config().manifest.path.clone();
        let candidate = config::api_file_text(streams);
        let (_, result) =
            config::load_with_api_candidate(&path, &candidate, &*self.env, self.catalog.as_ref());
        let loaded = result.map_err(ApiCommitError::Invalid)?;
        let previous = config::PreviousApiFile::capture(&loaded.api_file)?;
        if let Err(e) = config::write_api_file(&loaded.api_file, streams) {
            if let Err(restore) = previous.restore() {
                tracing::error!(error = %restore, "cannot restore the API streams file");
            }
            return Err(e.into());
        }
        let report = self.settle(Cause::Api, loaded).await;
        self.record(&report);
        Ok(report)
    }

    /// Applies a configuration that passed every check and reports it.
    async fn settle(&self, cause: Cause, loaded: LoadedConfig) -> ReloadReport {
        *self
            .rejected_sources
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        let old = self.config();
        let changed = old.manifest != loaded.manifest
            || old.api_file != loaded.api_file
            || old.api_streams != loaded.api_streams;
        // Applied even when equal: the new fingerprint replaces the old one.
        let diff = self.apply(loaded).await;
        if !changed {
            tracing::debug!(?cause, "configuration re-read, nothing changed");
            return ReloadReport {
                at: now_rfc3339(),
                cause,
                result: "unchanged",
                changes: None,
                error: None,
            };
        }
        tracing::info!(?cause, changes = %diff.summary(), "configuration reloaded");
        for setting in &diff.restart_required {
            tracing::warn!(setting, "changed setting takes effect after a restart");
        }
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.applied_at = now_rfc3339();
        status.reloads_applied += 1;
        status.restart_required = diff.restart_required.clone();
        ReloadReport {
            at: now_rfc3339(),
            cause,
            result: "applied",
            changes: Some(diff.summary()),
            error: None,
        }
    }

    /// Counts a reload attempt and makes it the last one reported.
    fn record(&self, report: &ReloadReport) {
        self.metrics.config_reload(report.result);
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.last_reload_successful = report.result != "rejected";
        status.last_reload = Some(report.clone());
        status.api_streams_file = self.config().api_file.clone();
    }

    fn rejected(&self, cause: Cause, error: String) -> ReloadReport {
        tracing::error!(
            ?cause,
            "configuration rejected, keeping the running one:\n{error}"
        );
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reloads_rejected += 1;
        ReloadReport {
            at: now_rfc3339(),
            cause,
            result: "rejected",
            changes: None,
            error: Some(error),
        }
    }

    /// Applies a validated configuration as a per-stream diff: unchanged streams and their
    /// viewers are not touched; changed sources restart under their viewers; removed streams
    /// close their viewers; new streams appear.
    pub async fn apply(&self, new: LoadedConfig) -> Diff {
        let old = self.config();
        let view = self.cluster.view();
        let (running, owners) = crate::cluster::effective(&new.manifest, view.as_deref());
        let before = Arc::clone(&self.running.read().unwrap_or_else(|e| e.into_inner()));
        let diff = reload::diff(&before, &running);
        // Presentation facts (fps for `hello`) come from the operator's stream, not the relay.
        let stream_info = |s: &StreamConfig| operator_info(&new.manifest, s);
        let sub_info = |s: &StreamConfig| sub_info(new.manifest.stream(&s.id).unwrap_or(s));
        for id in &diff.removed {
            self.registry.remove(id).await;
            self.metrics.remove_stream(id);
            self.metrics.remove_stream(&Variant::Sub.label(id));
        }
        for stream in &diff.added {
            if let Some(hub) = self.build_hub(stream, stream_info(stream)) {
                self.registry.insert(Arc::clone(&hub));
                self.apply_sub(stream, &hub, sub_info(stream)).await;
                hub.activate().await;
            }
        }
        for stream in &diff.restarted {
            match (
                self.registry.get(&stream.id),
                self.catalog
                    .factory(&stream.source.plugin, &stream.source.options),
            ) {
                (Some(hub), Ok(factory)) => {
                    hub.reconfigure(stream_info(stream), factory).await;
                    self.apply_sub(stream, &hub, sub_info(stream)).await;
                }
                (_, Err(e)) => {
                    tracing::error!(stream = %stream.id, error = %e, "cannot restart source")
                }
                (None, _) => {}
            }
        }
        for stream in &diff.updated {
            if let Some(hub) = self.registry.get(&stream.id) {
                hub.update_info(stream_info(stream)).await;
            }
            if let Some(sub) = self.registry.get_variant(&stream.id, Variant::Sub)
                && !diff.sub_changed.iter().any(|s| s.id == stream.id)
            {
                sub.update_info(sub_info(stream)).await;
            }
        }
        for stream in &diff.sub_changed {
            if let Some(hub) = self.registry.get(&stream.id) {
                self.apply_sub(stream, &hub, sub_info(stream)).await;
            }
        }
        self.registry
            .set_order(new.manifest.streams.iter().map(|s| s.id.clone()).collect());
        if let (Some(before), Some(now)) = (&old.manifest.server.tls, &new.manifest.server.tls)
            && before != now
        {
            // Picked by each handshake from the configuration (`http/tls.rs`).
            tracing::info!(cert = %now.cert.display(), "new TLS certificate in use for new connections");
        }
        let node = new.manifest.cluster.as_ref().map(|c| c.node.as_str());
        let owned = match node {
            Some(node) => owners.values().filter(|o| *o == node).count(),
            None => running.streams.len(),
        };
        let members = node.and(view.as_deref()).map(|v| {
            let ready = v.members.iter().filter(|m| m.ready).count();
            (ready, v.members.len() - ready)
        });
        let moved = self.cluster.set_owners(owners);
        self.metrics.cluster(members, owned, moved);
        *self.running.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(running);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        diff
    }

    /// Makes stream `main`'s sub hub follow `stream.sub`: a new factory under the existing
    /// sub's viewers (restarted), a new sub hub, or the sub removed (its viewers told).
    async fn apply_sub(&self, stream: &StreamConfig, main: &Arc<Hub>, info: StreamInfo) {
        let label = Variant::Sub.label(&stream.id);
        let existing = self.registry.get_variant(&stream.id, Variant::Sub);
        let factory = match &stream.sub {
            None => None,
            Some(SubConfig::Derived(derived)) => Some(Arc::new(DerivedSubFactory::new(
                Arc::clone(main),
                *derived,
                &label,
            )) as Arc<dyn SourceFactory>),
            Some(SubConfig::Url(source)) => {
                match self.catalog.factory(&source.plugin, &source.options) {
                    Ok(factory) => Some(factory),
                    Err(e) => {
                        tracing::error!(stream = %label, error = %e, "cannot create the sub");
                        None
                    }
                }
            }
        };
        match (existing, factory) {
            (Some(sub), Some(factory)) => sub.reconfigure(info, factory).await,
            (None, Some(factory)) => {
                let sub = Hub::for_variant(
                    &stream.id,
                    Variant::Sub,
                    info,
                    factory,
                    self.metrics.stream(&label),
                    self.fanout.clone(),
                );
                // A URL sub of a passthrough camera is video too: JPEG viewers need one.
                sub.set_jpeg_deriver(Some(Arc::new(FfmpegDeriver::new(&label))));
                self.registry.set_sub(&stream.id, Some(sub)).await;
            }
            (Some(_), None) => {
                self.registry.set_sub(&stream.id, None).await;
                self.metrics.remove_stream(&label);
            }
            (None, None) => {}
        }
    }

    fn build_hub(&self, stream: &StreamConfig, info: StreamInfo) -> Option<Arc<Hub>> {
        match self
            .catalog
            .factory(&stream.source.plugin, &stream.source.options)
        {
            Ok(factory) => {
                let hub = Hub::with_fanout_on(
                    &stream.id,
                    info,
                    factory,
                    self.metrics.stream(&stream.id),
                    self.fanout.clone(),
                );
                // JPEG consumers of a passthrough stream get pictures from one transcoder.
                hub.set_jpeg_deriver(Some(Arc::new(FfmpegDeriver::new(&stream.id))));
                // Ends by itself when the hub is dropped or the gateway shuts down.
                if let Some(options) = &self.health {
                    drop(health::spawn(&hub, options.clone(), self.shutdown.clone()));
                }
                Some(hub)
            }
            Err(e) => {
                tracing::error!(stream = %stream.id, error = %e, "cannot create stream");
                None
            }
        }
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
    /// Watch the manifest for changes (off for configurations that are not files).
    pub watch_config: bool,
    /// Reloader tunables.
    pub reload: ReloadOptions,
    /// Connection and request-body limits.
    pub limits: crate::http::admission::ConnectionLimits,
    /// The runtime that runs the hubs' fan-out (`camgate run` gives it its own pool of
    /// `SCHED_BATCH` threads, see `scheduling.rs`); `None`: the runtime that starts the
    /// sources (tests, whose paused clock must see every task).
    pub fanout: Option<tokio::runtime::Handle>,
    /// How the picture health monitors sample (`health/`); `None`: no monitor runs and
    /// every stream's health stays `unknown` unless recorded by hand (tests that drive a
    /// hub's verdict themselves, or run on a paused clock, where a monitor's blocking
    /// decodes and wall-clock frame ages would make them nondeterministic).
    pub health: Option<health::MonitorOptions>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            ws: WsSettings::default(),
            reaper_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(5),
            watch_config: true,
            reload: ReloadOptions::default(),
            limits: Default::default(),
            fanout: None,
            health: Some(health::MonitorOptions::default()),
        }
    }
}

/// Why an API write of the streams file was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApiCommitError {
    /// The configuration with the new streams is invalid (in the API file, or the manifest
    /// on disk is invalid itself); nothing was written.
    #[error("{0}")]
    Invalid(config::ConfigErrors),
    /// Reading or writing the file failed; the previous content was restored.
    #[error(transparent)]
    File(#[from] config::ApiFileError),
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Listening beyond loopback with no token configured, without the explicit opt-out.
    #[error(
        "refusing to listen on {0} without authentication: anyone who can reach it could watch every camera and change streams. Add tokens under `auth.tokens`, listen on 127.0.0.1, or set `auth.public_without_auth: true` if something in front of camgate does authentication"
    )]
    PublicWithoutAuth(SocketAddr),
    /// The listener's address could not be read.
    #[error("cannot read the listening address: {0}")]
    Listener(#[from] std::io::Error),
}

/// Refuses to serve beyond loopback without authentication unless the manifest opts out
/// explicitly. Call it before binding, too.
pub fn check_exposure(addr: SocketAddr, auth: &config::AuthConfig) -> Result<(), StartError> {
    if addr.ip().is_loopback() || auth.enabled() || auth.public_without_auth {
        Ok(())
    } else {
        Err(StartError::PublicWithoutAuth(addr))
    }
}

/// The facts a hub needs from a stream's configuration.
pub fn stream_info(config: &StreamConfig) -> StreamInfo {
    StreamInfo {
        name: config.name.clone(),
        on_demand: config.on_demand,
        idle_timeout: config.idle_timeout,
        fps: config.source.options.get("fps").and_then(|v| v.as_f64()),
        health: config.health,
    }
}

/// [`stream_info`] of the stream `running` runs, with the presentation facts (fps) of the
/// operator's stream of the same id: a relay's options say nothing about the picture.
fn operator_info(operator: &config::Manifest, running: &StreamConfig) -> StreamInfo {
    StreamInfo {
        on_demand: running.on_demand,
        ..stream_info(operator.stream(&running.id).unwrap_or(running))
    }
}

/// The facts a stream's sub hub needs: the stream's, always on demand (a sub runs only
/// while someone watches it, whatever the main does), at the sub's configured rate.
pub fn sub_info(config: &StreamConfig) -> StreamInfo {
    let main = stream_info(config);
    let fps = match &config.sub {
        Some(SubConfig::Url(source)) => source.options.get("fps").and_then(|v| v.as_f64()),
        _ => main.fps,
    };
    StreamInfo {
        on_demand: true,
        fps,
        ..main
    }
}

/// A running gateway.
pub struct Gateway {
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    reload: Option<ReloadTrigger>,
}

impl Gateway {
    /// Builds the hubs of `config`, starts always-on sources, serves `listener` and (if
    /// enabled) watches the manifest. `env` resolves `${VAR}` on reloads.
    pub async fn start(
        config: LoadedConfig,
        catalog: PluginCatalog,
        listener: TcpListener,
        env: Env,
        options: GatewayOptions,
    ) -> Result<Gateway, StartError> {
        let addr = listener.local_addr()?;
        check_exposure(addr, &config.manifest.auth)?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // The fingerprint is the one `config` carries: of the bytes that were parsed, not
        // of whatever the files hold now (an edit made since is picked up by the next check).
        let path = config.manifest.path.clone();
        let status = ConfigStatus {
            manifest: path.clone(),
            api_streams_file: config.api_file.clone(),
            applied_at: now_rfc3339(),
            last_reload_successful: true,
            last_reload: None,
            reloads_applied: 0,
            reloads_rejected: 0,
            restart_required: Vec::new(),
        };
        let empty = LoadedConfig {
            manifest: config::Manifest {
                streams: Vec::new(),
                ..config.manifest.clone()
            },
            api_streams: Default::default(),
            api_file: config.api_file.clone(),
            sources: config::SourceSet::default(),
        };
        let metrics = Metrics::new();
        for plugin in catalog.descriptors() {
            metrics.plugin_loaded(
                &plugin.name,
                &plugin.version,
                plugin.abi_version,
                plugin.origin == crate::plugins::PluginOrigin::Builtin,
            );
        }
        let admission =
            crate::http::admission::Admission::new(options.limits.clone(), Arc::clone(&metrics));
        let state = Arc::new(AppState {
            registry: Arc::new(Registry::new()),
            catalog: Arc::new(catalog),
            metrics,
            config: RwLock::new(Arc::new(empty)),
            status: Mutex::new(status),
            rejected_sources: Mutex::new(None),
            reload_lock: tokio::sync::Mutex::new(()),
            api_write_lock: tokio::sync::Mutex::new(()),
            groups: config::GroupStore::default(),
            sessions: Default::default(),
            env,
            ws: options.ws.clone(),
            admission,
            shutdown: shutdown_rx.clone(),
            fanout: options.fanout.clone(),
            health: options.health.clone(),
            cluster: Default::default(),
            running: RwLock::new(Arc::new(config::Manifest {
                streams: Vec::new(),
                ..config.manifest.clone()
            })),
            started: std::sync::atomic::AtomicBool::new(false),
        });
        // Served from the start: `/readyz` says `starting` until the configuration is
        // applied, and names the node, so members starting together count each other.
        let mut tasks = vec![tokio::spawn(crate::http::serve(
            listener,
            Arc::clone(&state),
            shutdown_rx.clone(),
            options.shutdown_grace,
        ))];
        // A node sees the others before it starts a stream, and they see it first: it
        // answers `starting` for one of their probing periods before it takes over any
        // camera, so the camera's previous owner has let it go (`cluster/`).
        if let Some(cluster) = &config.manifest.cluster {
            tokio::time::sleep(crate::cluster::joining_wait(cluster.probe_interval)).await;
            state.cluster.probe(cluster).await;
        }
        // The initial configuration is applied like any reload: every stream is "added".
        state.apply(config).await;
        state
            .started
            .store(true, std::sync::atomic::Ordering::Release);

        tasks.push(
            Arc::clone(&state.registry).spawn_reaper(options.reaper_interval, shutdown_rx.clone()),
        );
        if state.config().manifest.cluster.is_some() {
            tasks.push(crate::cluster::spawn(
                Arc::clone(&state),
                shutdown_rx.clone(),
            ));
        }
        let reload = if options.watch_config {
            let (trigger, task) = reload::spawn(
                Arc::clone(&state),
                path,
                options.reload.clone(),
                shutdown_rx.clone(),
            );
            tasks.push(task);
            Some(trigger)
        } else {
            None
        };
        drop(shutdown_rx);
        tracing::info!(
            %addr,
            https = state.config().manifest.server.tls.is_some(),
            streams = state.registry.all().len(),
            "camgate listening"
        );
        Ok(Gateway {
            addr,
            state,
            shutdown_tx,
            tasks,
            reload,
        })
    }

    /// The address the server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (registry, catalog, configuration).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Asks for a reload (SIGHUP does this); no-op when the manifest is not watched.
    pub fn request_reload(&self, cause: Cause) {
        if let Some(trigger) = &self.reload {
            trigger.request(cause);
        }
    }

    /// Graceful shutdown: viewers are closed with 1001, connections drained within the
    /// grace period, then every source is stopped.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.shutdown_tx.send_replace(true);
        self.state
            .registry
            .dismiss_all_viewers(crate::hub::Closing::ShuttingDown);
        for task in self.tasks {
            let _ = task.await;
        }
        self.state.registry.stop_all().await;
        tracing::info!("shutdown complete");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_need_auth_or_an_explicit_opt_out() {
        let public: SocketAddr = "0.0.0.0:8000".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let v6_loopback: SocketAddr = "[::1]:8000".parse().unwrap();
        let none = config::AuthConfig::default();
        assert!(check_exposure(loopback, &none).is_ok());
        assert!(check_exposure(v6_loopback, &none).is_ok());
        let err = check_exposure(public, &none).unwrap_err().to_string();
        assert!(
            err.contains("refusing to listen on 0.0.0.0:8000 without authentication"),
            "{err}"
        );
        let opted_out = config::AuthConfig {
            public_without_auth: true,
            ..Default::default()
        };
        assert!(check_exposure(public, &opted_out).is_ok());
    }
}
