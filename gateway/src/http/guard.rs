//! Checks every request passes before authentication and its handler (`docs/security.md`,
//! "Cross-site requests and DNS rebinding"):
//!
//! 1. `Host` names this gateway ([`super::host`]), with or without tokens: a DNS-rebinding
//!    page carries its own name and gets `421 host_not_allowed`.
//! 2. A state-changing request (`POST`, `PUT`, `DELETE`, `PATCH`) or a WebSocket upgrade
//!    that carries an `Origin` is same-origin (the `Origin`'s host equals `Host`; over
//!    HTTPS its scheme must be `https`, see [`origin_allowed`]) or in
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

/// Why a request was refused before authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `Host` does not name the gateway: 421.
    #[error(
        "the Host header does not name this gateway (DNS rebinding is refused); add the name to server.allowed_hosts"
    )]
    HostNotAllowed,
    /// A foreign `Origin` on a state-changing request or WebSocket upgrade: 403.
    #[error(
        "this Origin may not make this request (same-origin only; add it to server.allowed_origins)"
    )]
    OriginNotAllowed,
    /// A body not declared `application/json`: 415.
    #[error("send the body with `Content-Type: application/json`")]
    UnsupportedMediaType,
}

impl Refusal {
    /// The JSON error response.
    pub fn into_response(self) -> Response {
        let (status, code) = match self {
            Refusal::HostNotAllowed => (StatusCode::MISDIRECTED_REQUEST, "host_not_allowed"),
            Refusal::OriginNotAllowed => (StatusCode::FORBIDDEN, "origin_not_allowed"),
            Refusal::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
        };
        response::error(status, code, &self.to_string())
    }
}

/// Runs the checks; `Err` says why the request is refused. `websocket` marks the viewer WebSocket
/// route (an upgrade is a `GET` that browsers send cross-site with cookies); `tls` says the
/// request came over the gateway's own HTTPS (`server.tls`).
pub fn screen(
    req: &Request<Incoming>,
    server: &ServerConfig,
    websocket: bool,
    tls: bool,
) -> Result<(), Refusal> {
    let headers = req.headers();
    // The absolute-form target wins over `Host` (RFC 9112 §3.2.2); two `Host`s or one that
    // is not text are refused like a foreign one.
    let host = match req.uri().authority() {
        Some(authority) => Some(Some(authority.as_str())),
        None if headers.get_all(header::HOST).iter().count() > 1 => Some(None),
        None => headers.get(header::HOST).map(|v| v.to_str().ok()),
    };
    match host {
        None => {}
        Some(Some(host)) if host_allowed(host, &server.allowed_hosts) => {}
        Some(_) => return Err(Refusal::HostNotAllowed),
    }
    let state_changing = is_state_changing(req.method());
    if (state_changing || websocket) && !origin_allowed(headers, &server.allowed_origins, tls) {
        return Err(Refusal::OriginNotAllowed);
    }
    if state_changing && has_body(req) && !is_json(headers) {
        return Err(Refusal::UnsupportedMediaType);
    }
    Ok(())
}

/// The response type of a refusal.
type Response = http::Response<Body>;

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
///
/// Same-origin compares scheme too where the gateway knows it: on its own HTTPS (`tls`)
/// only `https://<Host>` is; over plain HTTP both `http://` and `https://` are, because a
/// TLS-terminating reverse proxy in front forwards plain HTTP with the page's `https`
/// origin (and no page can come from `https://` on a port that speaks plain HTTP).
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String], tls: bool) -> bool {
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
    let origin_host = match origin.strip_prefix("https://") {
        Some(host) => Some(host),
        None if tls => None,
        None => origin.strip_prefix("http://"),
    };
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
        assert!(origin_allowed(&h, &[], false), "no Origin: not a browser");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8000"),
        );
        assert!(origin_allowed(&h, &[], false));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8001"),
        );
        assert!(
            !origin_allowed(&h, &[], false),
            "another port is another origin"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!origin_allowed(&h, &[], false));
        assert!(origin_allowed(
            &h,
            &["http://evil.example".to_owned()],
            false
        ));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!origin_allowed(&h, &[], false));
    }

    #[test]
    fn over_https_only_an_https_origin_is_same_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("cams.lan:8443"));
        assert!(origin_allowed(&h, &[], true), "no Origin: not a browser");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://cams.lan:8443"),
        );
        assert!(origin_allowed(&h, &[], true));
        assert!(origin_allowed(&h, &[], false), "behind a TLS proxy");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://cams.lan:8443"),
        );
        assert!(
            !origin_allowed(&h, &[], true),
            "another scheme is another origin"
        );
        assert!(origin_allowed(&h, &[], false));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://cams.lan:8444"),
        );
        assert!(!origin_allowed(&h, &[], true));
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for ok in ["application/json", "Application/JSON; charset=utf-8"] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ok));
            assert!(is_json(&h), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "application/x-www-form-urlencoded",
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(bad));
            assert!(!is_json(&h), "{bad}");
        }
    }
}
