//! Request routing: maps method and path to a handler, with JSON 404/405 answers.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use super::response::{self, Body};
use super::{api, viewer_page, ws};
use crate::app::AppState;

/// Routes one request.
pub async fn route(req: Request<Incoming>, state: Arc<AppState>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    let get_only = |handler: &dyn Fn() -> Response<Body>| {
        if method == Method::GET || method == Method::HEAD {
            handler()
        } else {
            method_not_allowed("GET")
        }
    };
    match segments.as_slice() {
        [""] => get_only(&viewer_page::index),
        ["healthz"] => get_only(&api::healthz),
        ["api", "streams"] => get_only(&|| api::list_streams(&state)),
        ["api", "config"] => get_only(&|| api::config_status(&state)),
        ["ws", "streams", id] if !id.is_empty() => {
            if method == Method::GET {
                ws::upgrade(req, state, id)
            } else {
                method_not_allowed("GET")
            }
        }
        _ => response::error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no route for {method} {path}"),
        ),
    }
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = response::error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("this endpoint accepts {allow}"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, http::HeaderValue::from_static(allow));
    response
}
