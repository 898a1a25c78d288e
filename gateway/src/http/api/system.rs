//! Operational endpoints: plugins, configuration status, health, readiness, metrics and
//! the browser session.

use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde::Deserialize;

use super::body::read_json;
use crate::app::AppState;
use crate::http::auth::{self, Credential};
use crate::http::response::{self, Body};

/// `GET /api/plugins`.
pub fn plugins(state: &Arc<AppState>) -> Response<Body> {
    response::json(
        StatusCode::OK,
        &serde_json::json!({ "plugins": state.catalog.descriptors() }),
    )
}

/// `GET /api/config`: which files are loaded, the last reload and its result.
pub fn config_status(state: &Arc<AppState>) -> Response<Body> {
    response::json(StatusCode::OK, &state.config_status())
}

/// `GET /healthz`: the process is alive and serving.
pub fn healthz() -> Response<Body> {
    response::json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: a configuration is applied and the listener is up; 503 while shutting
/// down, so load balancers stop sending traffic first. A cluster node also says its
/// `node` name: members learn each other's names from it (`cluster/membership.rs`).
pub fn readyz(state: &Arc<AppState>) -> Response<Body> {
    if *state.shutdown.borrow() {
        return response::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the gateway is shutting down",
        );
    }
    response::json(
        StatusCode::OK,
        &serde_json::json!({
            "status": "ready",
            "streams": state.registry.all().len(),
            "last_reload_successful": state.config_status().last_reload_successful,
            "node": state.config().manifest.cluster.as_ref().map(|c| c.node.as_str()),
        }),
    )
}

/// `GET /metrics`: Prometheus text format.
pub fn metrics(state: &Arc<AppState>) -> Response<Body> {
    let mut response = Response::new(response::full(state.metrics.render()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /api/session`: whether authentication is on and who the caller is.
pub fn session(state: &Arc<AppState>, credential: &Credential) -> Response<Body> {
    let config = state.config();
    let principal = state.principal(credential);
    response::json(
        StatusCode::OK,
        &serde_json::json!({
            "auth_required": config.manifest.auth.enabled(),
            "authenticated": principal.is_some(),
            "role": principal.map(|p| p.role),
            "cluster_node": config.manifest.cluster.as_ref().map(|c| c.node.as_str()),
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    token: String,
}

/// `POST /api/session` `{"token": "..."}`: exchanges a token for a session cookie.
pub async fn login(state: &Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    let login: Login = match read_json(req).await {
        Ok(login) => login,
        Err(e) => return e.into_response(),
    };
    let credential = Credential::Token(login.token.clone());
    if state.principal(&credential).is_none() {
        return auth::unauthorized();
    }
    let signed = state.config().manifest.cluster.is_some();
    match state.sessions.open(&login.token, signed) {
        Ok(id) => {
            let mut response = Response::new(response::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
                .headers_mut()
                .insert(header::SET_COOKIE, auth::session_cookie(Some(&id)));
            response
        }
        Err(e) => response::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("cannot create a session: {e}"),
        ),
    }
}

/// `DELETE /api/session`: logs out.
pub fn logout(state: &Arc<AppState>, credential: &Credential) -> Response<Body> {
    if let Credential::Session(id) = credential {
        state.sessions.close(id);
    }
    let mut response = Response::new(response::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, auth::session_cookie(None));
    response
}
