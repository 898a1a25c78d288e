//! `/api/streams`: list, get, create, update, delete.
//!
//! Invariants:
//! - Responses never contain secrets: secret-named options are dropped and URL passwords
//!   masked (`redact::public_options`).
//! - Writes go only to the API-managed streams file (never the operator's manifest), are
//!   validated exactly like the manifest (same parser, same plugin checks), and are applied
//!   through the normal reload path, so the running state always equals the files.
//! - Streams defined in the manifest are read-only here (409 with the file position).

use std::sync::Arc;
use std::time::SystemTime;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::body::{ApiError, read_json};
use crate::app::AppState;
use crate::config::{self, LoadedConfig, StoredStream, StreamConfig};
use crate::http::auth::Principal;
use crate::http::response::{self, Body};
use crate::hub::{Hub, StreamState};
use crate::redact::public_options;
use crate::reload::Cause;

/// A stream as the API shows it: the manifest's field names plus status fields.
#[derive(Debug, Serialize)]
pub struct StreamView {
    id: String,
    name: String,
    on_demand: bool,
    idle_timeout: String,
    source: Map<String, Value>,
    /// Created through the API (so PUT and DELETE are allowed).
    editable: bool,
    state: StreamState,
    message: String,
    viewers: usize,
    fps: f64,
    bitrate: f64,
    width: Option<u32>,
    height: Option<u32>,
    frames_in: u64,
    /// Seconds since the source went live (only while live).
    uptime_seconds: Option<f64>,
}

fn stream_view(config: &StreamConfig, editable: bool, hub: &Hub) -> StreamView {
    let mut source = Map::new();
    source.insert("plugin".into(), Value::String(config.source.plugin.clone()));
    source.extend(public_options(&config.source.options));
    let status = hub.status();
    let rate = hub.input_rate();
    let frame = hub.latest_frame().filter(|f| f.width > 0 && f.height > 0);
    let uptime_seconds = (status.state == StreamState::Live)
        .then(|| SystemTime::now().duration_since(status.since).ok())
        .flatten()
        .map(|d| d.as_secs_f64());
    StreamView {
        id: config.id.clone(),
        name: config.name.clone(),
        on_demand: config.on_demand,
        idle_timeout: humantime::format_duration(config.idle_timeout).to_string(),
        source,
        editable,
        state: status.state,
        message: status.message,
        viewers: hub.viewer_count(),
        fps: (rate.fps * 10.0).round() / 10.0,
        bitrate: rate.bitrate.round(),
        width: frame.as_ref().map(|f| f.width),
        height: frame.as_ref().map(|f| f.height),
        frames_in: hub.frames_in(),
        uptime_seconds,
    }
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
    source: Map<String, Value>,
}

/// Source URL schemes the API accepts: ffmpeg must not become a file reader or an SSRF
/// tool for arbitrary protocols.
const URL_SCHEMES: [&str; 4] = ["rtsp", "rtsps", "http", "https"];

/// Checks what only the API restricts (the manifest is trusted operator input).
fn check_api_source(source: &Map<String, Value>) -> Result<(), ApiError> {
    for (key, value) in source {
        if key.ends_with("_path") || key.ends_with("_dir") {
            return Err(ApiError::invalid(
                &format!("source.{key}"),
                &format!("option `{key}` can only be set in the operator's manifest"),
            ));
        }
        if let Value::String(text) = value
            && text.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                &format!("source.{key}"),
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
                "source.url",
                &format!(
                    "url must be an {} URL without spaces",
                    URL_SCHEMES.join("://, ") + "://"
                ),
            ));
        }
    }
    Ok(())
}

/// The stored streams of the API file, from the running configuration.
fn stored_api_streams(config: &LoadedConfig) -> Vec<StoredStream> {
    config
        .manifest
        .streams
        .iter()
        .filter(|s| config.is_api_stream(&s.id))
        .map(StoredStream::from_config)
        .collect()
}

fn to_stored(
    id: String,
    input: StreamInput,
    defaults: &config::Defaults,
    previous: Option<&StoredStream>,
) -> Result<StoredStream, ApiError> {
    let Some(plugin) = input.source.get("plugin").and_then(Value::as_str) else {
        return Err(ApiError::invalid(
            "source.plugin",
            "source.plugin is required",
        ));
    };
    let mut source = Map::new();
    source.insert("plugin".into(), Value::String(plugin.to_owned()));
    for (key, value) in &input.source {
        if key == "plugin" {
            continue;
        }
        // An empty secret in an update means "keep the stored one" (clients never get
        // passwords back, so they cannot resend them).
        let blank = value.as_str().is_some_and(str::is_empty);
        if blank && crate::redact::is_secret_key(key) {
            continue;
        }
        source.insert(key.clone(), value.clone());
    }
    if let Some(previous) = previous {
        for (key, value) in &previous.source {
            if crate::redact::is_secret_key(key) && !source.contains_key(key) {
                source.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(StoredStream {
        name: input.name.unwrap_or_else(|| id.clone()),
        id,
        on_demand: input.on_demand.unwrap_or(true),
        idle_timeout: input
            .idle_timeout
            .unwrap_or_else(|| format!("{}ms", defaults.idle_timeout.as_millis())),
        source,
    })
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
    let indent = target.len() - target.trim_start().len();
    // Stream fields sit at indent 6 in `{"streams": [{...}]}`; source options at 8.
    match indent {
        6 => Some(key),
        8 => Some(format!("source.{key}")),
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

/// Validates `streams` as the new API file and, if good, writes it and applies it.
async fn commit(state: &Arc<AppState>, streams: &[StoredStream]) -> Result<(), ApiError> {
    let config = state.config();
    let manifest_path = config.manifest.path.clone();
    let candidate = config::api_file_text(streams);
    let main = std::fs::read(&manifest_path)
        .map_err(|e| ApiError::internal(&format!("cannot read the manifest: {e}")))?;
    let parsed = config::parse_with_api_file(
        &manifest_path,
        &main,
        Some(candidate.as_bytes()),
        &|name| state.env(name),
        state.catalog.as_ref(),
    );
    if let Err(errors) = parsed {
        let first = errors.0.first();
        let api_file = config::api_file_path(&manifest_path);
        let field = first
            .and_then(|e| e.location.as_ref())
            .filter(|l| l.file == api_file)
            .and_then(|l| field_at(&candidate, l.line));
        let message = errors
            .0
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; ");
        let field = match field.as_deref() {
            Some("source") => {
                Some(source_field(&message, streams).unwrap_or_else(|| "source".into()))
            }
            _ => field,
        };
        return Err(ApiError::Invalid { field, message });
    }
    config::write_api_file(&config.api_file, streams)
        .map_err(|e| ApiError::internal(&format!("cannot write the API streams file: {e}")))?;
    let report = state.reload(Cause::Api).await;
    if report.result == "rejected" {
        return Err(ApiError::internal(
            "the configuration changed on disk meanwhile and is invalid; see GET /api/config",
        ));
    }
    Ok(())
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
        let mut streams = stored_api_streams(&config);
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
        let mut streams = stored_api_streams(&config);
        let Some(index) = streams.iter().position(|s| s.id == id) else {
            return Err(ApiError::NotFound(id.to_owned()));
        };
        let updated = to_stored(
            id.to_owned(),
            input,
            &config.manifest.defaults,
            Some(&streams[index]),
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
        let streams: Vec<StoredStream> = stored_api_streams(&config)
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
            name: "X".into(),
            on_demand: true,
            idle_timeout: "5s".into(),
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
        assert_eq!(field_at(&text, 1), None);
    }
}
