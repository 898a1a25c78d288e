//! The stream manifest: the YAML file that tells the gateway where to listen
//! and which cameras (streams) to serve. This module reads it, substitutes
//! `${VAR}` references, checks it, and hands out a validated [`Manifest`].
//!
//! # Why `serde-saphyr`
//!
//! `serde_yaml` is unmaintained. We use `serde-saphyr` (pure Rust, panic-free,
//! maintained) because its `Spanned<T>` wrapper gives the line and column of
//! *every* node, keys included, not only of the first syntax error. That lets
//! one tree walk (`parse.rs`) report unknown keys, wrong types and semantic
//! problems (duplicate id at line N, unknown plugin at the `source:` line) with
//! exact positions, and report all of them at once instead of stopping at the
//! first like `#[serde(deny_unknown_fields)]` would. `serde_yaml_ng` only
//! locates the first deserialization error and its `Value` has no spans, so
//! semantic errors would have had no position. The parser also rejects
//! duplicate keys and bounds alias expansion ("billion laughs") by default.
//!
//! # Pipeline and invariants
//!
//! 1. `node.rs`: YAML text to a tree of positioned nodes (syntax errors stop
//!    here, with line:column).
//! 2. `parse.rs`: strict structural walk over the gateway-owned keys (unknown
//!    key or wrong type = error naming the key and the allowed keys),
//!    `${VAR}` substitution (`env.rs`) in every string value *after* parsing,
//!    so a variable can never inject YAML structure, and conversions
//!    (durations via `duration.rs`, listen address, `plugins.dir`).
//! 3. `validate.rs`: semantic rules and the plugin's check of its options.
//!
//! Every problem from steps 2 and 3 is collected and returned together, in
//! file order. Error messages never contain a value that came from the
//! environment (it may be a password). YAML uses 1.2 core scalars: `yes`/`no`
//! are strings and `on_demand: yes` is an error, not `true`.

mod api_file;
mod atomic;
mod auth;
mod cluster;
mod env;
mod error;
mod groups;
mod health;
mod model;
mod node;
mod parse;
mod sources;
mod sub;
pub mod tls;
mod validate;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use api_file::{
    ApiFileError, LoadedConfig, PreviousApiFile, StoredStream, api_file_path, api_file_text,
    load_with_api_candidate, load_with_api_file, read_and_parse, read_stored_streams,
    write_api_file,
};
pub use auth::{AuthConfig, MIN_TOKEN_LEN, Role, Secret, TokenConfig};
pub use cluster::{ClusterConfig, DEFAULT_PROBE_INTERVAL, MAX_NODE_NAME, Member, Membership};
pub(crate) use env::escape;
pub use env::{EnvLookup, process_env};
pub use error::{ConfigError, ConfigErrors, Location};
pub use groups::{
    Group, GroupError, GroupStore, GroupsFileError, MAX_GROUP_NAME, MAX_GROUP_STREAMS, MAX_GROUPS,
    groups_file_path, read_groups, validate as validate_group,
};
pub use model::{
    AnySource, Defaults, Manifest, PluginsConfig, ServerConfig, SourceConfig, SourceOptions,
    SourceValidator, StreamConfig,
};
pub use sources::SourceSet;
pub use sub::{DEFAULT_SUB_QUALITY, DerivedSub, MAX_SUB_SIDE, MIN_SUB_SIDE, SubConfig};
pub use tls::{TlsConfig, TlsError};
pub use validate::{MAX_ID_LEN, MAX_IDLE_TIMEOUT, MAX_NAME_LEN};

/// Every key the gateway itself parses, as `section.key` paths (`streams[].source` is the
/// mapping handed to the plugin). `docs/configuration.md` is checked against this list.
pub fn documented_keys() -> Vec<String> {
    let mut keys: Vec<String> = parse::TOP_KEYS.iter().map(|k| (*k).to_owned()).collect();
    let sections: [(&str, &[&str]); 11] = [
        ("cluster", cluster::CLUSTER_KEYS),
        ("cluster.members[]", cluster::MEMBER_KEYS),
        ("server", parse::SERVER_KEYS),
        ("server.tls", tls::TLS_KEYS),
        ("auth", auth::AUTH_KEYS),
        ("auth.tokens[]", auth::TOKEN_KEYS),
        ("plugins", parse::PLUGINS_KEYS),
        ("defaults", parse::DEFAULTS_KEYS),
        ("streams[]", parse::STREAM_KEYS),
        ("streams[].health_rules", health::HEALTH_KEYS),
        ("streams[].sub", sub::SUB_KEYS),
    ];
    for (section, section_keys) in sections {
        keys.extend(section_keys.iter().map(|k| format!("{section}.{k}")));
    }
    keys.push("streams[].source.plugin".to_owned());
    keys
}

/// Reads, parses, substitutes and validates the manifest at `path`.
///
/// `env` looks up `${VAR}` references (pass `&process_env` in production);
/// `plugins` checks each stream's source options. Returns every problem found.
pub fn load(
    path: &Path,
    env: EnvLookup<'_>,
    plugins: &dyn SourceValidator,
) -> Result<Manifest, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        ConfigError::whole_file(format!("cannot read manifest {}: {err}", path.display()))
    })?;
    parse(&text, path, env, plugins)
}

/// Same as [`load`] but from text already in memory. `path` is used in error
/// locations and to resolve a relative `plugins.dir`; it is not read.
pub fn parse(
    text: &str,
    path: &Path,
    env: EnvLookup<'_>,
    plugins: &dyn SourceValidator,
) -> Result<Manifest, ConfigErrors> {
    parse_recorded(text, path, env, plugins).result
}

/// What [`parse_recorded`] found.
pub(crate) struct Parsed {
    /// The manifest, or every problem.
    pub result: Result<Manifest, ConfigErrors>,
    /// `server.api_streams_file` as far as it could be read, even when other parts of the
    /// manifest are invalid (so the API file that belongs to it is still found).
    pub api_streams_file: Option<std::path::PathBuf>,
    /// The other files read (token files), for the fingerprint.
    pub reads: sources::ReadLog,
}

/// [`parse`], also reporting which files were read and the API file's configured path.
pub(crate) fn parse_recorded(
    text: &str,
    path: &Path,
    env: EnvLookup<'_>,
    plugins: &dyn SourceValidator,
) -> Parsed {
    let root = match node::parse_yaml(text, path) {
        Ok(root) => root,
        Err(errors) => {
            return Parsed {
                result: Err(ConfigErrors(vec![errors])),
                api_streams_file: None,
                reads: Default::default(),
            };
        }
    };
    let mut ctx = parse::Ctx::new(path, env);
    let draft = ctx.manifest(root.as_ref());
    let api_streams_file = draft.server.api_streams_file.clone();
    let mut errors = ctx.errors;
    let manifest = validate::validate(draft, path, plugins, &mut errors);
    let result = if errors.is_empty() {
        Ok(manifest)
    } else {
        // Stable: problems at the same position keep their discovery order.
        errors.sort_by_key(|e| e.location.as_ref().map(|l| (l.line, l.column)));
        Err(ConfigErrors(errors))
    };
    Parsed {
        result,
        api_streams_file,
        reads: ctx.reads,
    }
}
