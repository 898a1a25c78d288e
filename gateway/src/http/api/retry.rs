//! `POST /api/streams/{id}/retry` (admin): "Retry now" — ends the source's current
//! attempt or backoff wait and starts a fresh attempt at once (`Hub::retry_now`, which
//! logs and counts it as a `manual` start). Viewers stay connected.
//!
//! Answers: 202 `{"state": "<state after the restart>"}` (usually `connecting`); 409
//! `not_running` when no source runs (an idle on-demand stream starts when someone
//! watches); 404 `stream_not_found`.

use std::sync::Arc;

use http::{Response, StatusCode};

use crate::app::AppState;
use crate::http::response::{self, Body};

/// `POST /api/streams/{id}/retry`.
pub async fn retry(state: &Arc<AppState>, id: &str) -> Response<Body> {
    let Some(hub) = state.registry.get(id) else {
        return response::stream_not_found(id);
    };
    match hub.retry_now().await {
        Ok(new_state) => response::json(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "state": new_state }),
        ),
        Err(not_running) => response::error(
            StatusCode::CONFLICT,
            "not_running",
            &format!("stream `{id}`: {not_running}"),
        ),
    }
}
