//! Request routing: maps method and path to a handler, checks access, and counts every
//! request by route template (never by raw path, so metric labels stay bounded).
//!
//! Order of checks: a reserve connection's restrictions (`admission.rs`), then `Host`,
//! `Origin` and `Content-Type` (`guard.rs`, before any credential is looked at), then
//! access, then the per-stream viewer slot, reserved before the handler answers (so
//! concurrent upgrades cannot overrun `max_viewers_per_stream`). Media routes resolve the
//! hub by stream id and `?variant=` (`variant.rs`); slots and limits are per hub.
//!
//! The route table ([`ROUTES`]) is the single list of endpoints: the OpenAPI document is
//! checked against it by a test.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use super::api::{cluster, groups, media, retry, streams, system};
use super::auth::{self, Principal};
use super::guard;
use super::pacing::parse_max_fps;
use super::response::{self, Body};
use super::{ConnectionGuard, ui, variant, ws};
use crate::app::AppState;
use crate::hub::Variant;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health checks, the UI's static files, login, the API description).
    Public,
    /// Any authenticated principal (lists are filtered by allow-list).
    Viewer,
    /// A principal allowed to watch the stream in the path.
    Stream,
    /// Admins and scrape-only `metrics` tokens.
    Metrics,
    /// Admins only.
    Admin,
}

/// One endpoint: method, path template, access rule.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path template, OpenAPI style (`/api/streams/{id}`).
    pub template: &'static str,
    /// Who may call it.
    pub access: Access,
}

const fn route(method: &'static str, template: &'static str, access: Access) -> Route {
    Route {
        method,
        template,
        access,
    }
}

/// Every endpoint of the gateway (the UI's static files are served for other GET paths).
pub const ROUTES: &[Route] = &[
    route("GET", "/healthz", Access::Public),
    route("GET", "/readyz", Access::Public),
    route("GET", "/metrics", Access::Metrics),
    route("GET", "/api/openapi.json", Access::Public),
    route("GET", "/api/session", Access::Public),
    route("POST", "/api/session", Access::Public),
    route("DELETE", "/api/session", Access::Public),
    route("GET", "/api/streams", Access::Viewer),
    route("POST", "/api/streams", Access::Admin),
    route("GET", "/api/streams/{id}", Access::Stream),
    route("PUT", "/api/streams/{id}", Access::Admin),
    route("DELETE", "/api/streams/{id}", Access::Admin),
    route("GET", "/api/streams/{id}/snapshot.jpg", Access::Stream),
    route("GET", "/api/streams/{id}/mjpeg", Access::Stream),
    route("POST", "/api/streams/{id}/retry", Access::Admin),
    route("GET", "/api/groups", Access::Viewer),
    route("PUT", "/api/groups/{id}", Access::Admin),
    route("DELETE", "/api/groups/{id}", Access::Admin),
    route("GET", "/api/cluster", Access::Viewer),
    route("GET", "/api/plugins", Access::Viewer),
    route("GET", "/api/config", Access::Admin),
    route("GET", "/ws/streams/{id}", Access::Stream),
];

/// Matches `path` against a template; returns the `{id}` segment if any.
pub(crate) fn matches<'p>(template: &str, path: &'p str) -> Option<Option<&'p str>> {
    let mut id = None;
    let mut t = template.trim_start_matches('/').split('/');
    let mut p = path.trim_start_matches('/').split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(id),
            (Some("{id}"), Some(segment)) if !segment.is_empty() => id = Some(segment),
            (Some(a), Some(b)) if a == b => {}
            _ => return None,
        }
    }
}

/// Routes one request and records it in the metrics.
pub async fn route_request(req: Request<Incoming>, state: Arc<AppState>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let (template, response) = dispatch(req, &state, &method, &path).await;
    state
        .metrics
        .http_request(template, method.as_str(), response.status().as_u16());
    response
}

/// The routes a reserve connection may use (bodiless `GET`/`HEAD` only): health checks,
/// metrics and media, so monitoring and viewers get through a flood.
const RESERVE_ROUTES: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/ws/streams/{id}",
    "/api/streams/{id}/mjpeg",
    "/api/streams/{id}/snapshot.jpg",
];

/// Whether a reserve connection may make this request.
fn reserve_may_serve(req: &Request<Incoming>, route: Option<&Route>) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD)
        && !guard::has_body(req)
        && route.is_some_and(|r| RESERVE_ROUTES.contains(&r.template))
}

/// 503 that also closes the connection (hyper honours `Connection: close`).
fn busy(message: &str) -> Response<Body> {
    let mut response = response::error(StatusCode::SERVICE_UNAVAILABLE, "server_busy", message);
    response
        .headers_mut()
        .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    response
}

async fn dispatch(
    req: Request<Incoming>,
    state: &Arc<AppState>,
    method: &Method,
    path: &str,
) -> (&'static str, Response<Body>) {
    let candidates: Vec<(&Route, Option<&str>)> = ROUTES
        .iter()
        .filter_map(|r| matches(r.template, path).map(|id| (r, id)))
        .collect();
    let matched = candidates.iter().find(|(r, _)| {
        r.method == method.as_str() || (r.method == "GET" && method == Method::HEAD)
    });
    let label = match (matched, candidates.first()) {
        (Some((route, _)), _) | (None, Some((route, _))) => route.template,
        (None, None) if path.starts_with("/api/") || path.starts_with("/ws/") || path == "/api" => {
            "unmatched"
        }
        (None, None) => "ui",
    };
    let connection = req.extensions().get::<ConnectionGuard>().cloned();
    if connection.as_ref().is_some_and(ConnectionGuard::is_reserve)
        && !reserve_may_serve(&req, matched.map(|(r, _)| *r))
    {
        return (
            label,
            busy(
                "the gateway is at its connection limit; only health checks, metrics and viewers are served now",
            ),
        );
    }
    let config = state.config();
    let tls = connection.as_ref().is_some_and(ConnectionGuard::is_tls);
    if let Err(refused) = guard::screen(
        &req,
        &config.manifest.server,
        label == "/ws/streams/{id}",
        tls,
    ) {
        return (label, refused.into_response());
    }
    let Some(&(route, id)) = matched else {
        if let Some((first, _)) = candidates.first() {
            let allow: Vec<&str> = candidates.iter().map(|(r, _)| r.method).collect();
            return (first.template, method_not_allowed(&allow.join(", ")));
        }
        if label == "unmatched" {
            let message = format!("no route for {method} {path}");
            return (
                "unmatched",
                response::error(StatusCode::NOT_FOUND, "not_found", &message),
            );
        }
        return if method == Method::GET || method == Method::HEAD {
            ("ui", ui::serve(path))
        } else {
            ("ui", method_not_allowed("GET"))
        };
    };
    let id = id.map(str::to_owned);

    // Who is asking, and may they?
    let media = matches!(
        route.template,
        "/ws/streams/{id}" | "/api/streams/{id}/mjpeg" | "/api/streams/{id}/snapshot.jpg"
    );
    let credential = auth::credential(
        &config.manifest.auth,
        req.headers(),
        req.uri().query(),
        media,
    );
    let principal = state.principal(&credential);
    if let Some(denied) = denied(route.access, principal.as_ref(), id.as_deref()) {
        return (route.template, denied);
    }
    // Media routes serve one variant (`?variant=main|sub`).
    let variant = match media.then(|| variant::parse_variant(req.uri().query())) {
        Some(Err(e)) => {
            let refused = response::error(StatusCode::BAD_REQUEST, "bad_query", &e.to_string());
            return (route.template, refused);
        }
        Some(Ok(variant)) => variant,
        None => Variant::Main,
    };
    // Stream routes answer 404 for unknown ids (after access, so allow-lists do not reveal
    // which ids exist).
    let hub = match &id {
        Some(id) if route.method == "GET" => match state.registry.get_variant(id, variant) {
            Some(hub) => Some(hub),
            None if state.registry.get(id).is_some() => {
                return (route.template, variant::no_such_variant(id, variant));
            }
            None => return (route.template, response::stream_not_found(id)),
        },
        _ => None,
    };
    let id = id.unwrap_or_default();
    // A viewer's slot is taken now, before the handler answers (101 or the MJPEG head), and
    // given back if the viewer never attaches.
    let limit = config.manifest.server.max_viewers_per_stream;
    let reservation = match &hub {
        Some(hub)
            if matches!(
                route.template,
                "/ws/streams/{id}" | "/api/streams/{id}/mjpeg"
            ) =>
        {
            match hub.try_reserve_viewer(limit) {
                Some(reservation) => Some(reservation),
                None => {
                    let message = format!(
                        "stream `{id}` has its maximum of {limit} viewers (server.max_viewers_per_stream)"
                    );
                    return (
                        route.template,
                        response::error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "too_many_viewers",
                            &message,
                        ),
                    );
                }
            }
        }
        _ => None,
    };
    let in_cluster = state.config().manifest.cluster.is_some();
    let response = match (route.method, route.template) {
        ("POST", "/api/streams") | ("PUT" | "DELETE", "/api/streams/{id}" | "/api/groups/{id}")
            if in_cluster =>
        {
            cluster::read_only()
        }
        (_, "/healthz") => system::healthz(),
        (_, "/readyz") => system::readyz(state),
        (_, "/metrics") => system::metrics(state),
        (_, "/api/openapi.json") => super::openapi::document(),
        ("GET", "/api/session") => system::session(state, &credential),
        ("POST", "/api/session") => match state.admission.login_body() {
            Some(permit) => {
                let response = system::login(state, req).await;
                drop(permit);
                response
            }
            None => busy("too many logins in progress; try again"),
        },
        ("DELETE", "/api/session") => system::logout(state, &credential),
        ("GET", "/api/streams") => streams::list(state, principal.as_ref()),
        ("POST", "/api/streams") => streams::create(state, req).await,
        ("GET", "/api/streams/{id}") => streams::get(state, &id),
        ("PUT", "/api/streams/{id}") => streams::update(state, &id, req).await,
        ("DELETE", "/api/streams/{id}") => streams::delete(state, &id).await,
        (_, "/api/streams/{id}/snapshot.jpg") => match hub {
            Some(hub) => media::snapshot(hub).await,
            None => response::stream_not_found(&id),
        },
        (_, "/api/streams/{id}/mjpeg") => match (reservation, parse_max_fps(req.uri().query())) {
            (Some(reservation), Ok(max_fps)) => {
                let stalled = connection.as_ref().map(ConnectionGuard::write_stalled);
                media::mjpeg(reservation, max_fps, stalled).await
            }
            (_, Err(message)) => response::error(StatusCode::BAD_REQUEST, "bad_query", &message),
            (None, _) => response::stream_not_found(&id),
        },
        ("POST", "/api/streams/{id}/retry") => retry::retry(state, &id).await,
        ("GET", "/api/groups") => groups::list(state, principal.as_ref()).await,
        ("PUT", "/api/groups/{id}") => groups::put(state, &id, req).await,
        ("DELETE", "/api/groups/{id}") => groups::delete(state, &id).await,
        ("GET", "/api/cluster") => cluster::get(state, principal.as_ref()),
        ("GET", "/api/plugins") => system::plugins(state),
        ("GET", "/api/config") => system::config_status(state),
        (_, "/ws/streams/{id}") => match reservation {
            Some(reservation) => ws::upgrade(req, Arc::clone(state), reservation, credential),
            None => response::stream_not_found(&id),
        },
        _ => response::error(StatusCode::NOT_FOUND, "not_found", "no such route"),
    };
    (route.template, response)
}

/// The refusal for a caller that may not use a route (`None`: allowed).
fn denied(
    access: Access,
    principal: Option<&Principal>,
    id: Option<&str>,
) -> Option<Response<Body>> {
    if access == Access::Public {
        return None;
    }
    let Some(principal) = principal else {
        return Some(auth::unauthorized());
    };
    match access {
        Access::Admin if !principal.is_admin() => {
            Some(auth::forbidden("this needs an admin token"))
        }
        Access::Metrics if !principal.can_scrape() => {
            Some(auth::forbidden("this needs an admin or metrics token"))
        }
        Access::Viewer if !principal.can_browse() => {
            Some(auth::forbidden("a metrics token may only read /metrics"))
        }
        Access::Stream if !id.is_some_and(|id| principal.can_view(id)) => {
            Some(auth::forbidden("this token may not watch this stream"))
        }
        _ => None,
    }
}

fn method_not_allowed(allow: &str) -> Response<Body> {
    let mut response = response::error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("this endpoint accepts {allow}"),
    );
    if let Ok(value) = http::HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_paths() {
        assert_eq!(
            matches("/api/streams/{id}", "/api/streams/lobby"),
            Some(Some("lobby"))
        );
        assert_eq!(matches("/api/streams/{id}", "/api/streams/"), None);
        assert_eq!(matches("/api/streams/{id}", "/api/streams/a/b"), None);
        assert_eq!(matches("/healthz", "/healthz"), Some(None));
        assert_eq!(
            matches("/api/streams/{id}/mjpeg", "/api/streams/x/mjpeg"),
            Some(Some("x"))
        );
    }
}
