//! The validated manifest model the rest of the gateway consumes, and the
//! [`SourceValidator`] hook through which plugins check their own options.
//!
//! Invariants: a value of these types only comes out of [`super::parse`] /
//! [`super::load`] after every check passed, so consumers never re-validate:
//! ids are unique and URL-safe, timeouts are in `(0, 24h]`, `${VAR}` references
//! are already substituted and `plugins.dir` is already resolved.
//!
//! Equality ignores `location` fields on purpose (see [`StreamConfig`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::error::Location;

/// Options handed to a source plugin: the `source` mapping minus `plugin`.
pub type SourceOptions = serde_json::Map<String, serde_json::Value>;

/// A fully parsed, substituted and validated stream manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// `server:` section.
    pub server: ServerConfig,
    /// `auth:` section: access tokens (none: no authentication).
    pub auth: super::auth::AuthConfig,
    /// `plugins:` section.
    pub plugins: PluginsConfig,
    /// `defaults:` section (values streams inherit).
    pub defaults: Defaults,
    /// `streams:` in file order; may be empty.
    pub streams: Vec<StreamConfig>,
    /// `cluster:`: this gateway is one node of several sharing this manifest (`None`: it
    /// runs alone).
    pub cluster: Option<super::cluster::ClusterConfig>,
    /// The manifest path the model was read from (as given by the caller).
    pub path: PathBuf,
}

impl Manifest {
    /// Looks a stream up by id (ids are unique, so at most one matches).
    pub fn stream(&self, id: &str) -> Option<&StreamConfig> {
        self.streams.iter().find(|s| s.id == id)
    }
}

/// `server:` section: where the gateway listens and which cross-origin pages may
/// open WebSockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// HTTP listen address; default `127.0.0.1:8000` (loopback, so a fresh
    /// install is not exposed to the network by accident).
    pub listen: SocketAddr,
    /// Extra WebSocket `Origin`s accepted besides same-origin, exactly as
    /// written (`scheme://host[:port]`). Empty = same-origin only.
    pub allowed_origins: Vec<String>,
    /// Extra `Host` header values accepted besides the listen address and the loopback
    /// names (DNS-rebinding defence), lowercase: `name` (any port) or `name:port`.
    pub allowed_hosts: Vec<String>,
    /// Most viewers (WebSocket + MJPEG) one stream accepts; more get 503.
    pub max_viewers_per_stream: usize,
    /// Where the HTTP API keeps the streams it manages (`server.api_streams_file`, already
    /// joined to the manifest's directory). `None`: `<manifest stem>.api.yaml` next to the
    /// manifest. Set it when the manifest's directory is read-only (a ConfigMap).
    pub api_streams_file: Option<PathBuf>,
    /// `server.tls`: serve HTTPS (only) on `listen` with this certificate. `None`: plain
    /// HTTP. Turning it on or off needs a restart; a new certificate or key (other paths,
    /// or new bytes at the same paths) is used for new connections after a reload.
    pub tls: Option<super::tls::TlsConfig>,
}

impl ServerConfig {
    /// Default of `max_viewers_per_stream`.
    pub const MAX_VIEWERS_PER_STREAM: usize = 2000;
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_viewers_per_stream: Self::MAX_VIEWERS_PER_STREAM,
            api_streams_file: None,
            tls: None,
        }
    }
}

/// `plugins:` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginsConfig {
    /// Directory of extra plugin shared libraries. A relative path in the file
    /// is already joined to the manifest's directory (so moving the gateway's
    /// working directory does not change it, unless the manifest path itself
    /// was relative); `.` components are dropped, nothing else is normalized.
    pub dir: Option<PathBuf>,
}

/// `defaults:` section: values a stream uses when it does not set its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// How long an on-demand source keeps running after its last viewer left.
    pub idle_timeout: Duration,
}

impl Defaults {
    /// `idle_timeout` used when the manifest sets none.
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            idle_timeout: Self::IDLE_TIMEOUT,
        }
    }
}

/// One entry of `streams:`.
///
/// `PartialEq` compares settings only and ignores [`StreamConfig::location`]:
/// hot reload diffs old and new manifests stream by stream, and a stream that
/// merely moved because a line was added above it must not be restarted.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Unique, URL-safe id (`[a-z0-9_-]{1,64}`).
    pub id: String,
    /// Display name; the id when the manifest gives none.
    pub name: String,
    /// `true` (default): the source runs only while someone watches.
    /// `false`: the source is always on.
    pub on_demand: bool,
    /// Effective idle timeout: the stream's own `idle_timeout`, else
    /// `defaults.idle_timeout`. Resolved here so consumers (and the hot-reload
    /// diff) see the value that is actually in force.
    pub idle_timeout: Duration,
    /// What the picture's health is judged by (`health_rules:`; defaults when absent).
    pub health: crate::hub::HealthRules,
    /// Source plugin and its options.
    pub source: SourceConfig,
    /// The low-resolution variant (`sub:`), if the stream offers one.
    pub sub: Option<super::sub::SubConfig>,
    /// Where the stream entry starts (its first key), for runtime messages.
    pub location: Location,
}

impl PartialEq for StreamConfig {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.name == other.name
            && self.on_demand == other.on_demand
            && self.idle_timeout == other.idle_timeout
            && self.health == other.health
            && self.source == other.source
            && self.sub == other.sub
    }
}

/// A stream's `source:` mapping, split into the plugin name and its options.
///
/// `PartialEq` ignores [`SourceConfig::location`] (see [`StreamConfig`]).
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Plugin name, e.g. `ffmpeg-mjpeg` or `testsrc`.
    pub plugin: String,
    /// Everything else in the mapping, `${VAR}`-substituted, for the plugin to
    /// interpret. YAML ints stay JSON ints, floats floats, bools bools.
    pub options: SourceOptions,
    /// Position of the stream's `source:` key, used to prefix messages about
    /// the source (including the plugin's own at start-up).
    pub location: Location,
}

impl PartialEq for SourceConfig {
    fn eq(&self, other: &Self) -> bool {
        self.plugin == other.plugin && self.options == other.options
    }
}

/// Accepts any source: for a pass that does not judge sources (the first read of a
/// manifest, for `plugins.dir`, before the plugins are known; tests of other rules).
pub struct AnySource;

impl SourceValidator for AnySource {
    fn validate_source(&self, _plugin: &str, _options: &SourceOptions) -> Result<(), String> {
        Ok(())
    }
}

/// Checks a source's plugin name and options while the manifest is validated,
/// so a typo in a camera URL fails at load (with a file position) instead of
/// when the first viewer arrives. Implemented by the plugin registry; tests use
/// fakes.
pub trait SourceValidator {
    /// Returns Err(message) when the plugin is unknown or rejects the options.
    /// The message is shown to the operator prefixed with the location of the
    /// stream's `source` key. Messages should not echo option values; values
    /// substituted from the environment are redacted anyway.
    fn validate_source(&self, plugin: &str, options: &SourceOptions) -> Result<(), String>;
}
