//! The JSON API handlers (`/api/...`).

use std::sync::Arc;

use http::{Response, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};

use super::response::{self, Body};
use crate::app::AppState;
use crate::config::StreamConfig;
use crate::hub::{Hub, StreamState};
use crate::redact::public_options;

/// A stream as the API shows it: the manifest's field names plus status fields. Secrets
/// are never included (secret options are dropped, URL passwords masked).
#[derive(Debug, Serialize)]
pub struct StreamView {
    id: String,
    name: String,
    on_demand: bool,
    idle_timeout: String,
    source: Map<String, Value>,
    state: StreamState,
    message: String,
    viewers: usize,
    frames_in: u64,
}

fn stream_view(config: &StreamConfig, hub: &Hub) -> StreamView {
    let mut source = Map::new();
    source.insert("plugin".into(), Value::String(config.source.plugin.clone()));
    source.extend(public_options(&config.source.options));
    let status = hub.status();
    StreamView {
        id: config.id.clone(),
        name: config.name.clone(),
        on_demand: config.on_demand,
        idle_timeout: format!("{}s", config.idle_timeout.as_secs_f64()),
        source,
        state: status.state,
        message: status.message,
        viewers: hub.viewer_count(),
        frames_in: hub.frames_in(),
    }
}

/// `GET /api/streams`: every stream in manifest order.
pub fn list_streams(state: &Arc<AppState>) -> Response<Body> {
    let config = state.config();
    let streams: Vec<StreamView> = config
        .manifest
        .streams
        .iter()
        .filter_map(|config| {
            state
                .registry
                .get(&config.id)
                .map(|hub| stream_view(config, &hub))
        })
        .collect();
    response::json(StatusCode::OK, &serde_json::json!({ "streams": streams }))
}

/// `GET /api/config`: which files are loaded, the last reload and its result.
pub fn config_status(state: &Arc<AppState>) -> Response<Body> {
    response::json(StatusCode::OK, &state.config_status())
}

/// `GET /healthz`: the process is alive and serving.
pub fn healthz() -> Response<Body> {
    response::json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}
