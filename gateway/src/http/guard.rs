//! Checks every request passes before authentication and its handler (`docs/security.md`,
//! "Cross-site requests and DNS rebinding"):
//!
//! 1. `Host` names this gateway ([`super::host`]), with or without tokens: a DNS-rebinding
//!    page carries its own name and gets `421 host_not_allowed`.
//! 2. A state-changing request (`POST`, `PUT`, `DELETE`, `PATCH`) or a WebSocket upgrade
//!    that carries an `Origin` is same-origin (the `Origin`'s host equals `Host`) or in
//!    `server.allowed_origins`; otherwise `403 origin_not_allowed`, before any credential
//!    is looked at (a browser sends the session cookie cross-site between ports of one
//!    host: SameSite does not separate ports). Clients without `Origin` (curl, scripts) are
//!    not browsers and pass.
//! 3. A state-changing request with a body says `Content-Type: application/json`; otherwise
//!    `415 unsupported_media_type` (a cross-site `<form>` or "simple" `fetch` cannot send
//!    that type without a CORS preflight, which the gateway never grants).

use http::{HeaderMap, Method, Request, StatusCode, header};
use hyper::body::Body as _;
use hyper::body::Incoming;

use super::host::host_allowed;
use super::response::{self, Body};
use crate::config::ServerConfig;

/// Methods that change state (and so need the Origin and Content-Type checks).
pub fn is_state_changing(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    )
}

/// Whether the request carries a body (a positive `Content-Length` or chunked).
pub fn has_body(req: &Request<Incoming>) -> bool {
    !req.body().is_end_stream()
}

/// Runs the checks; `Err` is the refusal to send. `websocket` marks the viewer WebSocket
/// route (an upgrade is a `GET` that browsers send cross-site with cookies).
pub fn screen(
    req: &Request<Incoming>,
    server: &ServerConfig,
    local: Option<std::net::SocketAddr>,
    websocket: bool,
) -> Result<(), Response> {
    let headers = req.headers();
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()));
    if let Some(host) = host
        && !host_allowed(host, local, &server.allowed_hosts)
    {
        return Err(response::error(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "the Host header does not name this gateway (DNS rebinding is refused); add the name to server.allowed_hosts",
        ));
    }
    let state_changing = is_state_changing(req.method());
    if (state_changing || websocket) && !origin_allowed(headers, &server.allowed_origins) {
        return Err(response::error(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this Origin may not make this request (same-origin only; add it to server.allowed_origins)",
        ));
    }
    if state_changing && has_body(req) && !is_json(headers) {
        return Err(unsupported_media_type());
    }
    Ok(())
}

/// The response type of a refusal.
type Response = http::Response<Body>;

/// 415 for a body that is not declared `application/json`.
pub fn unsupported_media_type() -> Response {
    response::error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body with `Content-Type: application/json`",
    )
}

/// Whether `Content-Type` is `application/json` (parameters such as `charset` allowed).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// Browsers always send `Origin` on cross-site state-changing requests and WebSocket
/// upgrades; it must be our own host or in the allow-list. Clients without `Origin` (not
/// browsers) are not subject to cross-site attacks and pass.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn origin_must_match_host_or_allow_list() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8000"));
        assert!(origin_allowed(&h, &[]), "no Origin: not a browser");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8000"),
        );
        assert!(origin_allowed(&h, &[]));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8001"),
        );
        assert!(!origin_allowed(&h, &[]), "another port is another origin");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!origin_allowed(&h, &[]));
        assert!(origin_allowed(&h, &["http://evil.example".to_owned()]));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!origin_allowed(&h, &[]));
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for ok in ["application/json", "Application/JSON; charset=utf-8"] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ok));
            assert!(is_json(&h), "{ok}");
        }
        for bad in ["text/plain", "application/jsonx", "application/x-www-form-urlencoded"] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(bad));
            assert!(!is_json(&h), "{bad}");
        }
    }
}
