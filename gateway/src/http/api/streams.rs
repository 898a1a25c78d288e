//! `/api/streams`: list, get, create, update, delete.
//!
//! Invariants:
//! - Responses never contain secrets: secret-named options are dropped and URL passwords
//!   masked (`redact::public_options`).
//! - The masked form never travels back as data. On update, an option the client was shown
//!   in a different form than it is stored (a secret-named option, which is hidden; a URL
//!   whose password is masked) is KEPT as stored when the body omits it or sends back
//!   exactly what was shown. A URL whose password is `***` is otherwise refused (422): the
//!   client is asked to type the password again instead of storing the mask.
//! - API input is data: it is stored escaped (`${` → `$${`), so it never reads the
//!   gateway's environment. Rewrites start from the API file's raw stored form, so an
//!   operator's `${VAR}` stays a reference and no substituted secret is written to disk.
//! - Writes go only to the API-managed streams file (never the operator's manifest), are
//!   validated exactly like the manifest (same parser, same plugin checks), and are applied
//!   through the normal reload path, so the running state always equals the files.
//! - Streams defined in the manifest are read-only here (409 with the file position).
//! - `sub` (the low-resolution variant) is shown and taken like `source`: a URL password
//!   masked, and kept as stored when sent back masked ([`merge_options`] serves both).

use std::sync::Arc;
use std::time::SystemTime;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::body::{ApiError, read_json};
use crate::app::{ApiCommitError, AppState};
use crate::config::{self, LoadedConfig, StoredStream, StreamConfig, SubConfig};
use crate::http::auth::Principal;
use crate::http::response::{self, Body};
use crate::hub::{HealthRules, Hub, OutageCause, PictureHealth, StreamState, Variant};
use crate::redact::{MASK, is_secret_key, public_options, public_value};

/// A stream as the API shows it: the manifest's field names plus status fields.
#[derive(Debug, Serialize)]
pub struct StreamView {
    id: String,
    name: String,
    on_demand: bool,
    idle_timeout: String,
    source: Map<String, Value>,
    /// The picture streams viewers may choose (`?variant=`): `["main"]` or
    /// `["main","sub"]`.
    variants: Vec<&'static str>,
    /// The manifest's `sub:` (URL password masked), when the stream has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<Map<String, Value>>,
    /// Created through the API (so PUT and DELETE are allowed).
    editable: bool,
    state: StreamState,
    message: String,
    /// Why the stream is down (`auth_failed`, `not_found`, `unreachable`, `stalled`,
    /// `error`), only while `retrying` or `failed` (`hub/outage.rs`); else null.
    cause: Option<OutageCause>,
    viewers: usize,
    fps: f64,
    bitrate: f64,
    width: Option<u32>,
    height: Option<u32>,
    frames_in: u64,
    /// Seconds since the source went live (only while live).
    uptime_seconds: Option<f64>,
    /// The source's own coding (`jpeg`, `h264`, `h265`), once it has sent a frame.
    codec: Option<&'static str>,
    /// Transcoders running for it (a passthrough stream's JPEGs for MJPEG consumers).
    transcoders: usize,
    /// Picture health: `ok`, `frozen`, `dark`, `late` or `unknown`.
    health: PictureHealth,
    /// When the current `health` began (RFC 3339, UTC, milliseconds).
    health_since: String,
    /// The thresholds `health` is judged by (the manifest's `health_rules`, every value
    /// in force, defaults included).
    health_rules: HealthRulesView,
}

/// [`HealthRules`] in the manifest's syntax.
#[derive(Debug, Serialize)]
struct HealthRulesView {
    enabled: bool,
    frozen_after: String,
    dark_after: String,
    dark_luma: f64,
    late_after: String,
    min_fps_ratio: f64,
}

impl From<&HealthRules> for HealthRulesView {
    fn from(rules: &HealthRules) -> Self {
        HealthRulesView {
            enabled: rules.enabled,
            frozen_after: shown_duration(rules.frozen_after),
            dark_after: shown_duration(rules.dark_after),
            dark_luma: rules.dark_luma,
            late_after: shown_duration(rules.late_after),
            min_fps_ratio: rules.min_fps_ratio,
        }
    }
}

fn stream_view(config: &StreamConfig, editable: bool, hub: &Hub) -> StreamView {
    let mut source = Map::new();
    source.insert("plugin".into(), Value::String(config.source.plugin.clone()));
    source.extend(public_options(&config.source.options));
    let status = hub.status();
    let health = hub.health();
    let rate = hub.input_rate();
    let size = hub
        .latest_frame()
        .map(|f| (f.width, f.height))
        .or_else(|| hub.video_config().map(|c| (c.width, c.height)))
        .filter(|(width, height)| *width > 0 && *height > 0);
    let uptime_seconds = (status.state == StreamState::Live)
        .then(|| SystemTime::now().duration_since(status.since).ok())
        .flatten()
        .map(|d| d.as_secs_f64());
    let sub = config
        .sub
        .as_ref()
        .map(|sub| public_options(&sub_options(sub)));
    let variants = if sub.is_some() {
        vec![Variant::Main.as_str(), Variant::Sub.as_str()]
    } else {
        vec![Variant::Main.as_str()]
    };
    StreamView {
        id: config.id.clone(),
        name: config.name.clone(),
        on_demand: config.on_demand,
        idle_timeout: shown_duration(config.idle_timeout),
        source,
        variants,
        sub,
        editable,
        state: status.state,
        cause: status.cause(),
        message: status.message,
        viewers: hub.viewer_count(),
        fps: (rate.fps * 10.0).round() / 10.0,
        bitrate: rate.bitrate.round(),
        width: size.map(|(width, _)| width),
        height: size.map(|(_, height)| height),
        frames_in: hub.frames_in(),
        uptime_seconds,
        codec: hub.native_codec().map(|codec| codec.as_str()),
        transcoders: hub.transcoders(),
        health: health.health,
        health_since: humantime::format_rfc3339_millis(health.since).to_string(),
        health_rules: HealthRulesView::from(&config.health),
    }
}

/// A running `sub:` in the manifest's form (unmasked: callers mask it for display).
fn sub_options(sub: &SubConfig) -> Map<String, Value> {
    let mut options = Map::new();
    match sub {
        SubConfig::Url(source) => {
            if let Some(url) = source.options.get("url") {
                options.insert("url".into(), url.clone());
            }
        }
        SubConfig::Derived(derived) => {
            options.insert("width".into(), derived.width.into());
            if let Some(height) = derived.height {
                options.insert("height".into(), height.into());
            }
            options.insert("quality".into(), derived.quality.into());
            if let Some(fps) = derived.fps {
                options.insert("fps".into(), fps.into());
            }
        }
    }
    options
}

fn view_of(state: &AppState, config: &LoadedConfig, id: &str) -> Option<StreamView> {
    let stream = config.manifest.stream(id)?;
    let hub = state.registry.get(id)?;
    Some(stream_view(stream, config.is_api_stream(id), &hub))
}

/// `GET /api/streams`: every stream the caller may watch, in manifest order.
pub fn list(state: &Arc<AppState>, principal: Option<&Principal>) -> Response<Body> {
    let config = state.config();
    let streams: Vec<StreamView> = config
        .manifest
        .streams
        .iter()
        .filter(|s| principal.is_some_and(|p| p.can_view(&s.id)))
        .filter_map(|s| view_of(state, &config, &s.id))
        .collect();
    response::json(StatusCode::OK, &serde_json::json!({ "streams": streams }))
}

/// `GET /api/streams/{id}`.
pub fn get(state: &Arc<AppState>, id: &str) -> Response<Body> {
    match view_of(state, &state.config(), id) {
        Some(view) => response::json(StatusCode::OK, &view),
        None => response::stream_not_found(id),
    }
}

/// The body of `POST` and `PUT`: a stream in the manifest's field names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamInput {
    id: Option<String>,
    name: Option<String>,
    on_demand: Option<bool>,
    idle_timeout: Option<String>,
    /// Absent on `PUT`: the stored thresholds stay (a client that does not know them must
    /// not wipe them); `{}`: back to the defaults.
    health_rules: Option<Map<String, Value>>,
    source: Map<String, Value>,
    /// Absent on `PUT`: the stored sub stays; `null`: no sub; a mapping: the new one.
    #[serde(default, deserialize_with = "present")]
    sub: Option<Value>,
}

/// Deserializes a field that is there, `null` included (absent stays `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Source URL schemes the API accepts: ffmpeg must not become a file reader or an SSRF
/// tool for arbitrary protocols.
const URL_SCHEMES: [&str; 4] = ["rtsp", "rtsps", "http", "https"];

/// Checks what only the API restricts (the manifest is trusted operator input).
fn check_api_source(source: &Map<String, Value>) -> Result<(), ApiError> {
    check_api_options("source", source)
}

/// [`check_api_source`] for the options under `field` (`source`, `sub`).
fn check_api_options(field: &str, source: &Map<String, Value>) -> Result<(), ApiError> {
    for (key, value) in source {
        if key.ends_with("_path") || key.ends_with("_dir") {
            return Err(ApiError::invalid(
                &format!("{field}.{key}"),
                &format!("option `{key}` can only be set in the operator's manifest"),
            ));
        }
        if let Value::String(text) = value
            && text.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                &format!("{field}.{key}"),
                "control characters are not allowed",
            ));
        }
    }
    if let Some(url) = source.get("url") {
        let url = url.as_str().unwrap_or_default();
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let allowed = scheme.as_deref().is_some_and(|s| URL_SCHEMES.contains(&s));
        if !allowed || url.starts_with('-') || url.chars().any(char::is_whitespace) {
            return Err(ApiError::invalid(
                &format!("{field}.url"),
                &format!(
                    "url must be an {} URL without spaces",
                    URL_SCHEMES.join("://, ") + "://"
                ),
            ));
        }
    }
    Ok(())
}

/// The raw streams of the API file: rewrites start from them, never from the substituted
/// running configuration.
fn stored_api_streams(config: &LoadedConfig) -> Result<Vec<StoredStream>, ApiError> {
    config::read_stored_streams(&config.api_file).map_err(|e| ApiError::internal(&e.to_string()))
}

const MASKED_PASSWORD: &str = "the password is masked; type it again or use the password field";

/// Escapes every string in an input value so it is stored as data (`${` → `$${`).
fn escaped(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(config::escape(s)),
        Value::Array(items) => Value::Array(items.iter().map(escaped).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), escaped(v))).collect())
        }
        other => other.clone(),
    }
}

/// Whether `value` holds a URL whose password is exactly the mask.
fn has_masked_password(value: &Value) -> bool {
    match value {
        Value::String(s) => crate::redact::url_passwords(s).any(|p| p == MASK),
        Value::Array(items) => items.iter().any(has_masked_password),
        Value::Object(map) => map.values().any(has_masked_password),
        _ => false,
    }
}

/// The stored form of a create (`previous` = `None`) or an update.
///
/// `previous` is the stream's raw stored form and `running` its running (substituted)
/// configuration, which is what the client was shown (through `public_value`).
fn to_stored(
    id: String,
    input: StreamInput,
    defaults: &config::Defaults,
    previous: Option<(&StoredStream, &StreamConfig)>,
) -> Result<StoredStream, ApiError> {
    let Some(plugin) = input.source.get("plugin").and_then(Value::as_str) else {
        return Err(ApiError::invalid(
            "source.plugin",
            "source.plugin is required",
        ));
    };
    let mut source = Map::new();
    source.insert("plugin".into(), Value::String(config::escape(plugin)));
    let mut options = input.source.clone();
    options.remove("plugin");
    source.extend(merge_options(
        "source",
        &options,
        previous.map(|(stored, running)| (&stored.source, &running.source.options)),
    )?);
    let sub = match &input.sub {
        // Omitted: the stored sub stays.
        None => previous.and_then(|(stored, _)| stored.sub.clone()),
        Some(Value::Null) => None,
        Some(Value::Object(given)) => {
            check_api_options("sub", given)?;
            // Only a URL sub has something to keep: a client switching to a derived sub
            // must not get the stored (masked) URL back next to its `width`.
            let previous = previous.filter(|_| given.contains_key("url"));
            let running = previous.and_then(|(_, running)| running.sub.as_ref().map(sub_options));
            let stored = previous.and_then(|(stored, _)| stored.sub.as_ref());
            Some(merge_options("sub", given, stored.zip(running.as_ref()))?)
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "sub",
                "sub must be a mapping (`url`, or `width` with optional `height`, `quality` and `fps`) or null",
            ));
        }
    };
    let unchanged = |shown: &str, given: &str| shown == given;
    let name = match (input.name, previous) {
        (Some(name), Some((stored, running))) if unchanged(&running.name, &name) => {
            stored.name.clone()
        }
        (name, _) => name.map(|n| config::escape(&n)),
    };
    let idle_timeout = match (input.idle_timeout, previous) {
        (Some(given), Some((stored, running)))
            if unchanged(&shown_duration(running.idle_timeout), &given) =>
        {
            stored.idle_timeout.clone()
        }
        (Some(given), _) => Some(config::escape(&given)),
        (None, _) => Some(format!("{}ms", defaults.idle_timeout.as_millis())),
    };
    let health_rules = match input.health_rules {
        None => previous.and_then(|(stored, _)| stored.health_rules.clone()),
        Some(rules) if rules.is_empty() => None,
        Some(rules) => match escaped(&Value::Object(rules)) {
            Value::Object(rules) => Some(rules),
            _ => unreachable!("an object escapes to an object"),
        },
    };
    Ok(StoredStream {
        name,
        id,
        on_demand: Some(input.on_demand.unwrap_or(true)),
        idle_timeout,
        health_rules,
        source,
        sub,
    })
}

/// Options as stored (raw) and as running (substituted, what the client was shown masked).
type StoredAndShown<'a> = (&'a Map<String, Value>, &'a Map<String, Value>);

/// The stored form of options a client sent (`given`) for `field` (`source`, `sub`), on an
/// update with `previous` = (the raw stored options, the running ones the client was shown
/// through `public_value`):
/// - an option sent back exactly as shown keeps its stored form (the real password, an
///   operator's `${VAR}`); an empty secret-named option keeps the stored one;
/// - an omitted option the client could not see as stored (a secret, a masked URL) is kept;
/// - a URL whose password is the mask is refused otherwise; everything else is stored
///   escaped (data, never an environment reference).
fn merge_options(
    field: &str,
    given: &Map<String, Value>,
    previous: Option<StoredAndShown<'_>>,
) -> Result<Map<String, Value>, ApiError> {
    let mut merged = Map::new();
    // An option as stored and as shown, when the stream exists and has it.
    let known = |key: &str| -> Option<(&Value, Value)> {
        let (stored, running) = previous?;
        let raw = stored.get(key)?;
        let shown = running.get(key).map(public_value)?;
        Some((raw, shown))
    };
    for (key, value) in given {
        // An empty secret in an update means "keep the stored one" (clients never get
        // passwords back, so they cannot resend them).
        let blank = value.as_str().is_some_and(str::is_empty);
        if blank && is_secret_key(key) {
            continue;
        }
        match known(key) {
            // Sent back exactly as shown: keep the stored form (the real password, or an
            // operator's `${VAR}`).
            Some((raw, shown)) if !is_secret_key(key) && *value == shown => {
                merged.insert(key.clone(), raw.clone());
            }
            _ if has_masked_password(value) => {
                return Err(ApiError::invalid(
                    &format!("{field}.{key}"),
                    MASKED_PASSWORD,
                ));
            }
            _ => {
                merged.insert(key.clone(), escaped(value));
            }
        }
    }
    if let Some((stored, running)) = previous {
        // Omitted options the client could not see as stored are kept.
        for (key, raw) in stored {
            if key == "plugin" || merged.contains_key(key) {
                continue;
            }
            let hidden =
                is_secret_key(key) || running.get(key).is_some_and(|v| public_value(v) != *v);
            if hidden {
                merged.insert(key.clone(), raw.clone());
            }
        }
    }
    Ok(merged)
}

/// A duration as the API shows it.
fn shown_duration(duration: std::time::Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Maps a configuration error in the candidate API file back to the field it is about,
/// using the pretty-printed JSON layout (one key per line).
fn field_at(text: &str, line: usize) -> Option<String> {
    let target = text.lines().nth(line.checked_sub(1)?)?;
    let key = target
        .trim_start()
        .strip_prefix('"')?
        .split('"')
        .next()?
        .to_owned();
    let indent = |line: &str| line.len() - line.trim_start().len();
    // Stream fields sit at indent 6 in `{"streams": [{...}]}`; the keys of `source` and
    // `health_rules` at 8, under their parent's line.
    match indent(target) {
        6 => Some(key),
        8 => {
            let parent = text
                .lines()
                .take(line - 1)
                .filter(|l| indent(l) == 6)
                .last()?
                .trim_start()
                .strip_prefix('"')?
                .split('"')
                .next()?;
            Some(format!("{parent}.{key}"))
        }
        _ => None,
    }
}

/// Plugins report problems at the `source` key; name the option when the message does
/// (serde's "unknown field `x`", or a message that starts with an option's name).
fn source_field(message: &str, streams: &[StoredStream]) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        return rest.split('`').next().map(|key| format!("source.{key}"));
    }
    let first_word = message.split([' ', ':']).next()?;
    streams
        .iter()
        .flat_map(|s| s.source.keys())
        .find(|key| key.as_str() == first_word)
        .map(|key| format!("source.{key}"))
}

/// Validates `streams` as the new API file and, if good, writes it and applies it (both in
/// one step, see [`AppState::commit_api_streams`]).
async fn commit(state: &Arc<AppState>, streams: &[StoredStream]) -> Result<(), ApiError> {
    let api_file = state.config().api_file.clone();
    match state.commit_api_streams(streams).await {
        Ok(_) => Ok(()),
        Err(ApiCommitError::File(e)) => Err(ApiError::internal(&e.to_string())),
        Err(ApiCommitError::Invalid(errors)) => {
            let message = errors
                .0
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            let in_api_file =
                |e: &config::ConfigError| e.location.as_ref().is_some_and(|l| l.file == api_file);
            if !errors.0.iter().any(in_api_file) {
                // The manifest on disk is broken (edited meanwhile): nothing was changed.
                return Err(ApiError::Conflict {
                    field: None,
                    message: format!(
                        "the configuration on disk is invalid, so nothing was changed; fix it first (GET /api/config shows where): {message}"
                    ),
                });
            }
            let candidate = config::api_file_text(streams);
            let field = errors
                .0
                .iter()
                .find(|e| in_api_file(e))
                .and_then(|e| e.location.as_ref())
                .and_then(|l| field_at(&candidate, l.line));
            let field = match field.as_deref() {
                Some("source") => {
                    Some(source_field(&message, streams).unwrap_or_else(|| "source".into()))
                }
                _ => field,
            };
            Err(ApiError::Invalid { field, message })
        }
    }
}

/// `POST /api/streams`.
pub async fn create(state: &Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    let result = async {
        let input: StreamInput = read_json(req).await?;
        check_api_source(&input.source)?;
        let Some(id) = input.id.clone() else {
            return Err(ApiError::invalid("id", "id is required"));
        };
        let _serial = state.api_write_lock.lock().await;
        let config = state.config();
        if let Some(existing) = config.manifest.stream(&id) {
            return Err(ApiError::Conflict {
                field: Some("id".to_owned()),
                message: format!(
                    "a stream with id `{id}` already exists (defined {})",
                    public_location(&config, existing)
                ),
            });
        }
        let mut streams = stored_api_streams(&config)?;
        streams.push(to_stored(
            id.clone(),
            input,
            &config.manifest.defaults,
            None,
        )?);
        commit(state, &streams).await?;
        Ok(id)
    }
    .await;
    match result {
        Ok(id) => view_of(state, &state.config(), &id)
            .map(|view| response::json(StatusCode::CREATED, &view))
            .unwrap_or_else(|| response::stream_not_found(&id)),
        Err(e) => e.into_response(),
    }
}

/// Where a stream is defined, for messages (the manifest path is operator information,
/// not a secret).
fn public_location(config: &LoadedConfig, stream: &StreamConfig) -> String {
    if config.is_api_stream(&stream.id) {
        "through the API".to_owned()
    } else {
        format!("at {}", stream.location)
    }
}

/// Refuses changes to streams the operator wrote by hand.
fn ensure_editable(config: &LoadedConfig, id: &str) -> Result<(), ApiError> {
    match config.manifest.stream(id) {
        None => Err(ApiError::NotFound(id.to_owned())),
        Some(stream) if !config.is_api_stream(id) => Err(ApiError::Conflict {
            field: None,
            message: format!(
                "stream `{id}` is defined in the operator's manifest ({}); change it there",
                stream.location
            ),
        }),
        Some(_) => Ok(()),
    }
}

/// `PUT /api/streams/{id}`.
pub async fn update(state: &Arc<AppState>, id: &str, req: Request<Incoming>) -> Response<Body> {
    let result = async {
        let input: StreamInput = read_json(req).await?;
        check_api_source(&input.source)?;
        if input.id.as_deref().is_some_and(|given| given != id) {
            return Err(ApiError::invalid(
                "id",
                "the id in the body must match the URL (ids cannot be renamed)",
            ));
        }
        let _serial = state.api_write_lock.lock().await;
        let config = state.config();
        ensure_editable(&config, id)?;
        let mut streams = stored_api_streams(&config)?;
        let (Some(index), Some(running)) = (
            streams.iter().position(|s| s.id == id),
            config.manifest.stream(id),
        ) else {
            return Err(ApiError::NotFound(id.to_owned()));
        };
        let updated = to_stored(
            id.to_owned(),
            input,
            &config.manifest.defaults,
            Some((&streams[index], running)),
        )?;
        streams[index] = updated;
        commit(state, &streams).await
    }
    .await;
    match result {
        Ok(()) => get(state, id),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /api/streams/{id}`.
pub async fn delete(state: &Arc<AppState>, id: &str) -> Response<Body> {
    let result = async {
        let _serial = state.api_write_lock.lock().await;
        let config = state.config();
        ensure_editable(&config, id)?;
        let streams: Vec<StoredStream> = stored_api_streams(&config)?
            .into_iter()
            .filter(|s| s.id != id)
            .collect();
        commit(state, &streams).await
    }
    .await;
    match result {
        Ok(()) => {
            let mut response = Response::new(response::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_schemes_and_path_options_are_restricted() {
        let source = |json: &str| -> Map<String, Value> { serde_json::from_str(json).unwrap() };
        assert!(
            check_api_source(&source(r#"{"plugin":"ffmpeg-mjpeg","url":"rtsp://cam/x"}"#)).is_ok()
        );
        for bad in [
            r#"{"url":"file:///etc/passwd"}"#,
            r#"{"url":"concat:a|b"}"#,
            r#"{"url":"-i"}"#,
            r#"{"url":"rtsp://cam/x -f null"}"#,
            r#"{"url":"pipe:0"}"#,
        ] {
            assert!(check_api_source(&source(bad)).is_err(), "{bad}");
        }
        let err = check_api_source(&source(r#"{"ffmpeg_path":"/bin/sh"}"#)).unwrap_err();
        assert!(
            matches!(err, ApiError::Invalid { field: Some(f), .. } if f == "source.ffmpeg_path")
        );
    }

    #[test]
    fn error_lines_map_back_to_fields() {
        let text = config::api_file_text(&[StoredStream {
            id: "x".into(),
            name: Some("X".into()),
            on_demand: Some(true),
            idle_timeout: Some("5s".into()),
            health_rules: serde_json::from_str(r#"{"dark_luma":300}"#).unwrap(),
            sub: None,
            source: serde_json::from_str(r#"{"plugin":"testsrc","fps":0}"#).unwrap(),
        }]);
        let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert_eq!(field_at(&text, line_of("\"id\"")).as_deref(), Some("id"));
        assert_eq!(
            field_at(&text, line_of("\"fps\"")).as_deref(),
            Some("source.fps")
        );
        assert_eq!(
            field_at(&text, line_of("\"source\"")).as_deref(),
            Some("source")
        );
        assert_eq!(
            field_at(&text, line_of("\"dark_luma\"")).as_deref(),
            Some("health_rules.dark_luma")
        );
        assert_eq!(field_at(&text, 1), None);
    }
}
