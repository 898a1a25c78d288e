//! Semantic checks on the [`Draft`] produced by the structural pass, and
//! assembly of the final [`Manifest`]: stream id syntax and uniqueness, name
//! length, timeout ranges, origin shape, and the plugin's own check of its
//! source options (through the injected [`SourceValidator`]).
//!
//! Invariants: every problem is recorded (no early return), each at the
//! position of the offending key or value; values from the environment are
//! never echoed, and are redacted from plugin messages; the returned manifest
//! is only meaningful when no error was recorded.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::error::{ConfigError, Location};
use super::model::{Defaults, Manifest, SourceConfig, SourceValidator, StreamConfig};
use super::parse::{Draft, SourceDraft, Str};
use super::sub::{SubConfig, SubDraft};

/// Longest stream id: ids appear in URLs and log lines.
pub const MAX_ID_LEN: usize = 64;
/// Longest display name, in characters.
pub const MAX_NAME_LEN: usize = 200;
/// Longest idle timeout: a source idling longer is effectively always on,
/// which `on_demand: false` says more clearly.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// What replaces an environment value in a plugin's message (the same mask
/// the gateway's `redact` module uses).
use camgate_plugin_api::text::MASK;
/// Environment values shorter than this are not redacted from plugin
/// messages: replacing e.g. every `1` would garble the message.
const MIN_REDACT_LEN: usize = 4;

/// Runs the semantic checks, pushing problems to `errors`, and assembles the
/// manifest from whatever is valid.
pub(crate) fn validate(
    draft: Draft,
    path: &Path,
    plugins: &dyn SourceValidator,
    errors: &mut Vec<ConfigError>,
) -> Manifest {
    let mut defaults = Defaults::default();
    if let Some((timeout, location)) = draft.default_idle_timeout
        && check_timeout(timeout, &location, "idle_timeout", errors)
    {
        defaults.idle_timeout = timeout;
    }

    let mut server = draft.server;
    for origin in &draft.allowed_origins {
        check_origin(origin, errors);
    }
    server.allowed_origins = draft
        .allowed_origins
        .into_iter()
        .map(|origin| origin.value)
        .collect();
    for host in &draft.allowed_hosts {
        check_host(host, errors);
    }
    server.allowed_hosts = draft
        .allowed_hosts
        .into_iter()
        .map(|host| host.value.to_ascii_lowercase())
        .collect();

    let mut seen: HashMap<String, Location> = HashMap::new();
    let mut streams = Vec::new();
    for stream in draft.streams {
        if let Some(id) = &stream.id {
            check_id(id, errors);
            if let Some(first) = seen.get(&id.value) {
                let what = match id.showable() {
                    Some(v) => format!("duplicate stream id `{v}`"),
                    None => "duplicate stream id".to_owned(),
                };
                errors.push(ConfigError::at(
                    id.location.clone(),
                    format!(
                        "{what}: first defined at line {}, column {}",
                        first.line, first.column
                    ),
                ));
            } else {
                seen.insert(id.value.clone(), id.location.clone());
            }
        }
        if let Some(name) = &stream.name {
            check_name(name, errors);
        }
        let idle_timeout = match stream.idle_timeout {
            Some((timeout, location)) => {
                check_timeout(timeout, &location, "idle_timeout", errors);
                timeout
            }
            None => defaults.idle_timeout,
        };
        if let Some(source) = &stream.source {
            check_source(source, plugins, errors);
        }
        let sub = match (stream.sub, &stream.source) {
            (Some(sub), Some(source)) => sub_config(sub, source, plugins, errors),
            _ => None,
        };
        if let (Some(id), Some(source)) = (stream.id, stream.source) {
            streams.push(StreamConfig {
                name: stream.name.map_or_else(|| id.value.clone(), |n| n.value),
                id: id.value,
                on_demand: stream.on_demand,
                idle_timeout,
                health: stream.health,
                source: SourceConfig {
                    plugin: source.plugin.value,
                    options: source.options,
                    location: source.location,
                },
                sub,
                location: stream.location,
            });
        }
    }

    let ids: Vec<String> = streams
        .iter()
        .map(|s: &StreamConfig| s.id.clone())
        .collect();
    let auth = super::auth::validate_auth(draft.auth, &ids, errors);
    let cluster =
        super::cluster::validate_cluster(draft.cluster, &auth, server.tls.is_some(), errors);
    // The other nodes reach this one by its member URL (probes, relays): its host is a name
    // this gateway answers to, like an `allowed_hosts` entry.
    if let Some(own) = cluster
        .as_ref()
        .and_then(super::cluster::ClusterConfig::own_authority)
    {
        let own = own.to_ascii_lowercase();
        if !server.allowed_hosts.contains(&own) {
            server.allowed_hosts.push(own);
        }
    }
    Manifest {
        cluster,
        server,
        auth,
        plugins: draft.plugins,
        defaults,
        streams,
        path: path.to_path_buf(),
    }
}

fn check_timeout(
    timeout: Duration,
    location: &Location,
    what: &str,
    errors: &mut Vec<ConfigError>,
) -> bool {
    let problem = if timeout.is_zero() {
        format!("`{what}` must be greater than 0")
    } else if timeout > MAX_IDLE_TIMEOUT {
        format!("`{what}` must be at most 24h")
    } else {
        return true;
    };
    errors.push(ConfigError::at(location.clone(), problem));
    false
}

fn check_id(id: &Str, errors: &mut Vec<ConfigError>) {
    let value = &id.value;
    let problem = if value.is_empty() {
        "stream `id` must not be empty".to_owned()
    } else if value.len() > MAX_ID_LEN {
        format!(
            "stream `id` is {} characters long; at most {MAX_ID_LEN} are allowed",
            value.chars().count()
        )
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        let shown = id.showable().map(|v| format!(" `{v}`")).unwrap_or_default();
        format!(
            "stream id{shown} may only contain lowercase letters a-z, digits, `_` and `-` (it is used in URLs)"
        )
    } else {
        return;
    };
    errors.push(ConfigError::at(id.location.clone(), problem));
}

fn check_name(name: &Str, errors: &mut Vec<ConfigError>) {
    let chars = name.value.chars().count();
    let problem = if name.value.trim().is_empty() {
        "stream `name` must not be empty (omit it to use the id)".to_owned()
    } else if chars > MAX_NAME_LEN {
        format!("stream `name` is {chars} characters long; at most {MAX_NAME_LEN} are allowed")
    } else {
        return;
    };
    errors.push(ConfigError::at(name.location.clone(), problem));
}

/// Browsers send `Origin: scheme://host[:port]`, compared verbatim; anything
/// with a path, a trailing slash or a wildcard would never match, so it is an
/// error instead of a silent no-op.
fn check_origin(origin: &Str, errors: &mut Vec<ConfigError>) {
    let value = origin.value.as_str();
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let ok = rest.is_some_and(|host| {
        !host.is_empty()
            && !host
                .chars()
                .any(|c| matches!(c, '/' | '?' | '#' | '*' | '@') || c.is_whitespace())
    });
    if !ok {
        // Not echoed when it may hold credentials (`https://user:pw@host`).
        let found = origin
            .showable()
            .filter(|v| !v.contains('@'))
            .map(|v| format!(", found `{v}`"))
            .unwrap_or_default();
        errors.push(ConfigError::at(
            origin.location.clone(),
            format!(
                "allowed origin must be `http(s)://host[:port]` without path or trailing slash, like `https://example.com`{found}"
            ),
        ));
    }
}

/// An `allowed_hosts` entry: a host name or IP literal (IPv6 in brackets) with an optional
/// `:port`, exactly as browsers put it in the `Host` header.
fn check_host(host: &Str, errors: &mut Vec<ConfigError>) {
    let ok = crate::http::host::HostPort::parse(&host.value).is_some();
    if !ok {
        let found = host
            .showable()
            .filter(|v| !v.contains('@'))
            .map(|v| format!(", found `{v}`"))
            .unwrap_or_default();
        errors.push(ConfigError::at(
            host.location.clone(),
            format!(
                "allowed host must be a host name or IP address with an optional port, like `cams.example.com` or `cams.example.com:8443` (no scheme, no path){found}"
            ),
        ));
    }
}

fn check_source(
    source: &SourceDraft,
    plugins: &dyn SourceValidator,
    errors: &mut Vec<ConfigError>,
) {
    if source.plugin.value.trim().is_empty() {
        errors.push(ConfigError::at(
            source.plugin.location.clone(),
            "`plugin` must not be empty",
        ));
        return;
    }
    if !source.complete {
        return;
    }
    if let Err(message) = plugins.validate_source(&source.plugin.value, &source.options) {
        errors.push(ConfigError::at(
            source.location.clone(),
            redact(message, &source.env_values),
        ));
    }
}

/// The validated `sub:` of a stream whose source is `source`: a derived sub as read; a URL
/// sub is the main source with `url` replaced, refused (at the `url` value) when the main
/// source takes no `url`, and checked by the plugin like a source.
fn sub_config(
    sub: SubDraft,
    source: &SourceDraft,
    plugins: &dyn SourceValidator,
    errors: &mut Vec<ConfigError>,
) -> Option<SubConfig> {
    let (url, location) = match sub {
        SubDraft::Derived(derived) => return Some(SubConfig::Derived(derived)),
        SubDraft::Url { url, location } => (url, location),
    };
    if !source.options.contains_key("url") {
        errors.push(ConfigError::at(
            url.location.clone(),
            format!(
                "`sub.url` replaces the source's `url`, but plugin `{}` takes none here; derive the sub in the gateway instead (`sub: {{ width: 640 }}`)",
                source.plugin.value
            ),
        ));
        return None;
    }
    if url.value.trim().is_empty() {
        errors.push(ConfigError::at(
            url.location.clone(),
            "`sub.url` must not be empty",
        ));
        return None;
    }
    let mut options = source.options.clone();
    options.insert("url".to_owned(), serde_json::Value::String(url.value));
    if source.complete
        && let Err(message) = plugins.validate_source(&source.plugin.value, &options)
    {
        let secrets: Vec<String> = source
            .env_values
            .iter()
            .chain(&url.env_values)
            .cloned()
            .collect();
        errors.push(ConfigError::at(
            location.clone(),
            format!("`sub`: {}", redact(message, &secrets)),
        ));
        return None;
    }
    Some(SubConfig::Url(SourceConfig {
        plugin: source.plugin.value.clone(),
        options,
        location,
    }))
}

/// Replaces environment values in a plugin's message: plugins are outside
/// this module's control and might echo an option such as a password.
fn redact(mut message: String, secrets: &[String]) -> String {
    for secret in secrets {
        if secret.chars().count() >= MIN_REDACT_LEN {
            message = message.replace(secret.as_str(), MASK);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_long_secrets_only() {
        let secrets = vec!["hunter2".to_owned(), "1".to_owned()];
        assert_eq!(
            redact("bad password hunter2 for fps 1".to_owned(), &secrets),
            "bad password *** for fps 1"
        );
    }
}
