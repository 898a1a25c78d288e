//! `GET /`: a minimal built-in viewer page (a grid of live streams over WebSocket).
//!
//! It exists so the gateway is watchable in a browser with nothing else installed; the full
//! React viewer (`ui/`) replaces it when built. It uses only the public API and protocol.

use http::{HeaderValue, Response, header};

use super::response::{self, Body};

const PAGE: &str = include_str!("viewer_page.html");

/// Serves the page (never cached, so upgrades show at once).
pub fn index() -> Response<Body> {
    let mut response = Response::new(response::full(PAGE));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
