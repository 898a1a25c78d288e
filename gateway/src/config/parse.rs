//! Structural pass: walks the YAML [`Node`] tree, enforces the gateway-owned
//! schema strictly (unknown keys and wrong types are errors), applies `${VAR}`
//! substitution to every string value, and converts values (listen address,
//! durations, `plugins.dir`, source options to JSON). The result is a
//! [`Draft`] that still carries positions for the semantic checks in
//! `validate.rs`.
//!
//! Invariants: every problem is pushed to `Ctx::errors` and the walk goes on, so
//! one run reports all of them; a message never contains a value inserted from
//! the environment; `source` options other than `plugin` are not interpreted
//! (the plugin owns them), only converted.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;

use super::env::{EnvLookup, substitute};
use super::error::{ConfigError, Location};
use super::model::{PluginsConfig, ServerConfig, SourceOptions};
use super::node::{Node, Value};
use super::sources::ReadLog;
use camgate_plugin_api::text::parse_duration;

pub(crate) const TOP_KEYS: &[&str] = &[
    "server", "plugins", "defaults", "auth", "streams", "cluster",
];
pub(crate) const SERVER_KEYS: &[&str] = &[
    "listen",
    "allowed_origins",
    "allowed_hosts",
    "max_viewers_per_stream",
    "api_streams_file",
    "tls",
];
pub(crate) const PLUGINS_KEYS: &[&str] = &["dir"];
pub(crate) const DEFAULTS_KEYS: &[&str] = &["idle_timeout"];
pub(crate) const STREAM_KEYS: &[&str] = &[
    "id",
    "name",
    "on_demand",
    "idle_timeout",
    "health_rules",
    "source",
    "sub",
];
/// Keys that belong inside `source:`; misplacing them earns a hint.
const LIKELY_SOURCE_KEYS: &[&str] = &[
    "plugin", "url", "username", "password", "fps", "width", "height",
];

/// A substituted string with its position.
#[derive(Debug, Clone)]
pub(crate) struct Str {
    pub value: String,
    pub location: Location,
    /// Environment values inserted into `value` (possibly secrets).
    pub env_values: Vec<String>,
}

impl Str {
    /// Whether the value may be echoed in messages (nothing came from the env).
    pub fn showable(&self) -> Option<&str> {
        self.env_values.is_empty().then_some(self.value.as_str())
    }
}

/// The manifest after the structural pass; fields whose value was invalid or
/// absent are `None` / defaults (the corresponding error is already recorded).
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub server: ServerConfig,
    pub allowed_origins: Vec<Str>,
    pub allowed_hosts: Vec<Str>,
    pub plugins: PluginsConfig,
    pub default_idle_timeout: Option<(Duration, Location)>,
    pub auth: super::auth::AuthDraft,
    pub streams: Vec<StreamDraft>,
    /// `cluster:`, if present.
    pub cluster: Option<super::cluster::ClusterDraft>,
}

#[derive(Debug)]
pub(crate) struct StreamDraft {
    pub location: Location,
    pub id: Option<Str>,
    pub name: Option<Str>,
    pub on_demand: bool,
    pub idle_timeout: Option<(Duration, Location)>,
    pub health: crate::hub::HealthRules,
    pub source: Option<SourceDraft>,
    /// `sub:` (the low-resolution variant), if any.
    pub sub: Option<super::sub::SubDraft>,
}

#[derive(Debug)]
pub(crate) struct SourceDraft {
    pub plugin: Str,
    pub options: SourceOptions,
    /// Position of the `source:` key.
    pub location: Location,
    /// Environment values used anywhere in the source (for redaction).
    pub env_values: Vec<String>,
    /// False when an option could not be converted; the plugin check is then
    /// skipped, as it would judge incomplete options.
    pub complete: bool,
}

/// Walk state: where we are reading from, what went wrong so far, and which other files
/// (token files) were read.
pub(crate) struct Ctx<'a> {
    file: &'a Path,
    env: EnvLookup<'a>,
    pub errors: Vec<ConfigError>,
    /// Files read during the walk, for the configuration's fingerprint.
    pub reads: ReadLog,
}

impl<'a> Ctx<'a> {
    /// `number` if it is in `min..=max`, else an error at `node` naming the range (the one
    /// wording for every bounded number of the manifest).
    pub(super) fn within<T: Copy + PartialOrd + std::fmt::Display>(
        &mut self,
        node: &Node,
        what: &str,
        number: T,
        min: T,
        max: T,
    ) -> Option<T> {
        if (min..=max).contains(&number) {
            Some(number)
        } else {
            self.error(
                node,
                format!("`{what}` must be from {min} to {max}, found {number}"),
            );
            None
        }
    }

    pub fn new(file: &'a Path, env: EnvLookup<'a>) -> Self {
        Self {
            file,
            env,
            errors: Vec::new(),
            reads: ReadLog::default(),
        }
    }

    /// Reads a file the manifest refers to (a `token_file`), recording its bytes in the
    /// configuration's fingerprint.
    pub(super) fn read_file(&mut self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.reads.read(path)
    }

    pub(super) fn file(&self) -> &Path {
        self.file
    }

    pub(super) fn loc(&self, node: &Node) -> Location {
        node.location(self.file)
    }

    pub(super) fn error(&mut self, node: &Node, message: impl Into<String>) {
        let location = self.loc(node);
        self.errors.push(ConfigError::at(location, message));
    }

    /// Converts the whole document (`None` = empty file).
    pub fn manifest(&mut self, root: Option<&Node>) -> Draft {
        let mut draft = Draft::default();
        let Some(root) = root else {
            return draft;
        };
        let Some(entries) = self.mapping(root, "the manifest") else {
            return draft;
        };
        for (key, key_node, value) in self.keys(entries, "at the top level", TOP_KEYS) {
            match key {
                "cluster" => draft.cluster = Some(self.cluster(key_node, value)),
                "server" => self.server(value, &mut draft),
                "plugins" => draft.plugins = self.plugins(value),
                "defaults" => draft.default_idle_timeout = self.defaults(value),
                "auth" => draft.auth = self.auth(value),
                "streams" => draft.streams = self.streams(value),
                _ => unreachable!("keys() only yields allowed keys"),
            }
        }
        draft
    }

    fn server(&mut self, node: &Node, draft: &mut Draft) {
        let Some(entries) = self.mapping(node, "`server`") else {
            return;
        };
        for (key, _, value) in self.keys(entries, "in `server`", SERVER_KEYS) {
            match key {
                "listen" => {
                    if let Some(listen) = self.string(value, "listen") {
                        match listen.value.trim().parse::<SocketAddr>() {
                            Ok(addr) => draft.server.listen = addr,
                            Err(_) => {
                                let found = match listen.showable() {
                                    Some(v) => format!("found `{v}`"),
                                    None => "the value from the environment is not one".to_owned(),
                                };
                                self.error(
                                    value,
                                    format!(
                                        "`listen` must be an IP address and port like `127.0.0.1:8000` or `[::]:8000` (host names are not resolved); {found}"
                                    ),
                                );
                            }
                        }
                    }
                }
                "max_viewers_per_stream" => match value.value {
                    Value::Int(n) if n > 0 => draft.server.max_viewers_per_stream = n as usize,
                    Value::UInt(n) if n > 0 => draft.server.max_viewers_per_stream = n as usize,
                    ref other => self.error(
                        value,
                        format!(
                            "`max_viewers_per_stream` must be a positive integer, found {}",
                            other.kind()
                        ),
                    ),
                },
                "api_streams_file" => {
                    if let Some(file) = self.string(value, "api_streams_file") {
                        if file.value.trim().is_empty() {
                            self.error(
                                value,
                                "`api_streams_file` must not be empty (omit it to use the default next to the manifest)",
                            );
                        } else {
                            draft.server.api_streams_file =
                                Some(resolve_dir(self.file, Path::new(&file.value)));
                        }
                    }
                }
                "tls" => draft.server.tls = self.tls(value),
                "allowed_origins" => {
                    draft.allowed_origins = self
                        .list(value, "`allowed_origins`")
                        .iter()
                        .filter_map(|item| self.string(item, "allowed_origins entry"))
                        .collect();
                }
                "allowed_hosts" => {
                    draft.allowed_hosts = self
                        .list(value, "`allowed_hosts`")
                        .iter()
                        .filter_map(|item| self.string(item, "allowed_hosts entry"))
                        .collect();
                }
                _ => unreachable!(),
            }
        }
    }

    /// `server.tls`: reads both files (through the read log: they count in the
    /// fingerprint) and checks that they hold a certificate and its key. Every problem is
    /// reported at the field's value, named by field and path, never quoting the files.
    fn tls(&mut self, node: &Node) -> Option<super::tls::TlsConfig> {
        let entries = self.mapping(node, "`server.tls`")?;
        let mut files: [Option<(PathBuf, Vec<u8>, &Node)>; 2] = [None, None];
        let mut seen = [false; 2];
        for (key, _, value) in self.keys(entries, "in `server.tls`", super::tls::TLS_KEYS) {
            let slot = usize::from(key == "key");
            seen[slot] = true;
            let Some(path) = self.string(value, key) else {
                continue;
            };
            if path.value.trim().is_empty() {
                self.error(value, format!("`server.tls.{key}` must not be empty"));
                continue;
            }
            let path = resolve_dir(self.file, Path::new(&path.value));
            match self.read_file(&path) {
                Ok(bytes) => files[slot] = Some((path, bytes, value)),
                Err(e) => self.error(
                    value,
                    format!("`server.tls.{key}`: cannot read {}: {e}", path.display()),
                ),
            }
        }
        for (slot, name) in ["cert", "key"].into_iter().enumerate() {
            if !seen[slot] {
                self.error(
                    node,
                    format!("`server.tls` is missing `{name}` (the path of a PEM file)"),
                );
            }
        }
        let [
            Some((cert, cert_pem, cert_node)),
            Some((key, key_pem, key_node)),
        ] = files
        else {
            return None;
        };
        match super::tls::TlsConfig::from_pem(cert.clone(), &cert_pem, key.clone(), &key_pem) {
            Ok(tls) => Some(tls),
            Err(e) => {
                let (node, path) = match e.field() {
                    "cert" => (cert_node, cert),
                    _ => (key_node, key),
                };
                self.error(
                    node,
                    format!("`server.tls.{}`: {} {e}", e.field(), path.display()),
                );
                None
            }
        }
    }

    fn plugins(&mut self, node: &Node) -> PluginsConfig {
        let mut plugins = PluginsConfig::default();
        let Some(entries) = self.mapping(node, "`plugins`") else {
            return plugins;
        };
        for (_, _, value) in self.keys(entries, "in `plugins`", PLUGINS_KEYS) {
            let Some(dir) = self.string(value, "dir") else {
                continue;
            };
            if dir.value.is_empty() {
                self.error(
                    value,
                    "`dir` must not be empty (omit it to use no plugin directory)",
                );
                continue;
            }
            plugins.dir = Some(resolve_dir(self.file, Path::new(&dir.value)));
        }
        plugins
    }

    fn defaults(&mut self, node: &Node) -> Option<(Duration, Location)> {
        let entries = self.mapping(node, "`defaults`")?;
        let mut idle = None;
        for (_, _, value) in self.keys(entries, "in `defaults`", DEFAULTS_KEYS) {
            idle = self.duration(value, "idle_timeout");
        }
        idle
    }

    fn streams(&mut self, node: &Node) -> Vec<StreamDraft> {
        self.list(node, "`streams`")
            .iter()
            .filter_map(|item| self.stream(item))
            .collect()
    }

    fn stream(&mut self, node: &Node) -> Option<StreamDraft> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node,
                format!(
                    "each entry of `streams` must be a mapping with `id` and `source`, found {}",
                    node.value.kind()
                ),
            );
            return None;
        };
        let mut stream = StreamDraft {
            location: self.loc(node),
            id: None,
            name: None,
            on_demand: true,
            idle_timeout: None,
            health: crate::hub::HealthRules::DEFAULT,
            source: None,
            sub: None,
        };
        let mut id_seen = false;
        let mut source_seen = false;
        for (key, key_node, value) in self.keys(entries, "in a stream", STREAM_KEYS) {
            match key {
                "id" => {
                    id_seen = !matches!(value.value, Value::Null);
                    if id_seen {
                        stream.id = self.string(value, "id");
                    }
                }
                "name" => stream.name = self.string(value, "name"),
                "on_demand" => {
                    if let Some(b) = self.boolean(value, "on_demand") {
                        stream.on_demand = b;
                    }
                }
                "idle_timeout" => stream.idle_timeout = self.duration(value, "idle_timeout"),
                "health_rules" => stream.health = self.health_rules(value),
                "source" => {
                    source_seen = !matches!(value.value, Value::Null);
                    stream.source = self.source(key_node, value);
                }
                "sub" => stream.sub = self.sub(key_node, value),
                _ => unreachable!(),
            }
        }
        if !id_seen {
            self.error(node, "stream is missing `id`");
        }
        if !source_seen {
            self.error(
                node,
                "stream is missing `source` (a mapping with at least `plugin`)",
            );
        }
        Some(stream)
    }

    fn source(&mut self, key_node: &Node, node: &Node) -> Option<SourceDraft> {
        let location = self.loc(key_node);
        let Value::Map(entries) = &node.value else {
            if !matches!(node.value, Value::Null) {
                self.error(
                    node,
                    format!(
                        "`source` must be a mapping with at least `plugin`, found {}",
                        node.value.kind()
                    ),
                );
            }
            return None;
        };
        let errors_before = self.errors.len();
        let mut plugin = None;
        let mut options = SourceOptions::new();
        let mut env_values = Vec::new();
        for (k, v) in entries {
            let Some(key) = self.key_str(k) else {
                continue;
            };
            if key == "plugin" {
                plugin = self.string(v, "plugin");
                if let Some(p) = &plugin {
                    env_values.extend(p.env_values.iter().cloned());
                }
            } else {
                let json = self.option_json(v, &mut env_values);
                options.insert(key.to_owned(), json);
            }
        }
        let complete = self.errors.len() == errors_before;
        let Some(plugin) = plugin else {
            if complete {
                self.errors.push(ConfigError::at(
                    location,
                    "`source` is missing `plugin` (the name of the source plugin, e.g. `testsrc`)",
                ));
            }
            return None;
        };
        Some(SourceDraft {
            plugin,
            options,
            location,
            env_values,
            complete,
        })
    }

    /// Converts a source option value to JSON, substituting strings.
    fn option_json(&mut self, node: &Node, env_values: &mut Vec<String>) -> Json {
        match &node.value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::UInt(u) => Json::from(*u),
            Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => Json::Number(n),
                None => {
                    self.error(node, "non-finite numbers are not allowed in source options");
                    Json::Null
                }
            },
            Value::Str(_) => match self.string(node, "source option") {
                Some(s) => {
                    env_values.extend(s.env_values);
                    Json::String(s.value)
                }
                None => Json::Null,
            },
            Value::Seq(items) => Json::Array(
                items
                    .iter()
                    .map(|item| self.option_json(item, env_values))
                    .collect(),
            ),
            Value::Map(entries) => {
                let mut map = SourceOptions::new();
                for (k, v) in entries {
                    if let Some(key) = self.key_str(k) {
                        let value = self.option_json(v, env_values);
                        map.insert(key.to_owned(), value);
                    }
                }
                Json::Object(map)
            }
        }
    }

    /// A mapping's entries; `null` (e.g. `server:` with nothing under it)
    /// counts as an empty mapping. `what` is the subject as shown to the user.
    pub(super) fn mapping<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &node.value {
            Value::Map(entries) => Some(entries),
            Value::Null => Some(&[]),
            other => {
                self.error(
                    node,
                    format!("{what} must be a mapping, found {}", other.kind()),
                );
                None
            }
        }
    }

    /// A list's items; `null` counts as an empty list.
    pub(super) fn list<'n>(&mut self, node: &'n Node, what: &str) -> &'n [Node] {
        match &node.value {
            Value::Seq(items) => items,
            Value::Null => &[],
            other => {
                self.error(
                    node,
                    format!("{what} must be a list, found {}", other.kind()),
                );
                &[]
            }
        }
    }

    fn key_str<'n>(&mut self, key: &'n Node) -> Option<&'n str> {
        match &key.value {
            Value::Str(s) => Some(s),
            other => {
                self.error(key, format!("keys must be strings, found {}", other.kind()));
                None
            }
        }
    }

    /// The entries whose key is in `allowed`, as `(key, key node, value)`;
    /// reports the others. Entries with a `null` value are skipped (an empty
    /// optional key means "use the default"), except where the caller needs
    /// to see them (`id`, `source`).
    pub(super) fn keys<'n>(
        &mut self,
        entries: &'n [(Node, Node)],
        section: &str,
        allowed: &[&'static str],
    ) -> Vec<(&'static str, &'n Node, &'n Node)> {
        let mut out = Vec::new();
        for (k, v) in entries {
            let Some(key) = self.key_str(k) else {
                continue;
            };
            if let Some(known) = allowed.iter().find(|a| **a == key) {
                let keep_null = matches!(*known, "id" | "source");
                if keep_null || !matches!(v.value, Value::Null) {
                    out.push((*known, k, v));
                }
                continue;
            }
            let allowed_list = allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let hint = if allowed == STREAM_KEYS && LIKELY_SOURCE_KEYS.contains(&key) {
                "; source plugin options go under `source:`"
            } else {
                ""
            };
            self.error(
                k,
                format!("unknown key `{key}` {section}; allowed keys: {allowed_list}{hint}"),
            );
        }
        out
    }

    /// A string value after `${VAR}` substitution.
    pub(super) fn string(&mut self, node: &Node, what: &str) -> Option<Str> {
        let Value::Str(raw) = &node.value else {
            let hint = match node.value {
                Value::Int(_) | Value::UInt(_) | Value::Float(_) | Value::Bool(_) => {
                    " (quote it to use it as text)"
                }
                _ => "",
            };
            self.error(
                node,
                format!(
                    "`{what}` must be a string, found {}{hint}",
                    node.value.kind()
                ),
            );
            return None;
        };
        match substitute(raw, self.env) {
            Ok(s) => Some(Str {
                value: s.value,
                location: self.loc(node),
                env_values: s.env_values,
            }),
            Err(err) => {
                self.error(node, err.to_string());
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            ref other => {
                self.error(
                    node,
                    format!("`{what}` must be true or false, found {}", other.kind()),
                );
                None
            }
        }
    }

    pub(super) fn duration(&mut self, node: &Node, what: &str) -> Option<(Duration, Location)> {
        let location = self.loc(node);
        match &node.value {
            Value::Str(_) => {
                let s = self.string(node, what)?;
                match parse_duration(&s.value) {
                    Ok(d) => Some((d, location)),
                    Err(msg) => {
                        let msg = if s.showable().is_some() {
                            format!("`{what}`: {msg}")
                        } else {
                            format!(
                                "`{what}`: the value from the environment is not a duration like `30s`"
                            )
                        };
                        self.error(node, msg);
                        None
                    }
                }
            }
            Value::Int(_) | Value::UInt(_) => {
                let n = match node.value {
                    Value::Int(i) => i.to_string(),
                    Value::UInt(u) => u.to_string(),
                    _ => unreachable!(),
                };
                self.error(
                    node,
                    format!("`{what}` needs a unit: write `{n}s` (or ms, m, h)"),
                );
                None
            }
            other => {
                self.error(
                    node,
                    format!(
                        "`{what}` must be a duration like `30s`, `500ms`, `2m` or `1h`, found {}",
                        other.kind()
                    ),
                );
                None
            }
        }
    }
}

/// Joins a relative `dir` to the manifest's directory, dropping `.`
/// components so `./plugins` does not show up as `dir/./plugins`.
pub(crate) fn resolve_dir(manifest: &Path, dir: &Path) -> PathBuf {
    let joined = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        manifest.parent().unwrap_or(Path::new("")).join(dir)
    };
    joined
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_dir_joins_relative_paths() {
        let m = Path::new("/etc/camgate/manifest.yaml");
        assert_eq!(
            resolve_dir(m, Path::new("./plugins")),
            PathBuf::from("/etc/camgate/plugins")
        );
        assert_eq!(
            resolve_dir(m, Path::new("../lib/p")),
            PathBuf::from("/etc/camgate/../lib/p")
        );
        assert_eq!(resolve_dir(m, Path::new("/opt/p")), PathBuf::from("/opt/p"));
        assert_eq!(
            resolve_dir(Path::new("manifest.yaml"), Path::new("./plugins")),
            PathBuf::from("plugins")
        );
    }
}
