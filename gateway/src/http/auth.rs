//! Access control: who is asking (a token, a browser session cookie, or nobody) and what
//! they may do.
//!
//! Design (documented in `docs/security.md`):
//! - Roles `viewer`, `admin` and `metrics` (scrape-only: `GET /metrics`, nothing else);
//!   tokens come from the manifest (`auth.tokens`, usually
//!   `${ENV}` or `token_file`). No token configured = no authentication, which the gateway
//!   only accepts on a loopback address unless `auth.public_without_auth` says otherwise.
//! - API clients send `Authorization: Bearer <token>` (the scheme is case-insensitive, as
//!   RFC 9110 §11.1 says). Browsers exchange a token once for an
//!   HttpOnly `SameSite=Strict` session cookie (`POST /api/session`); the cookie then works
//!   for the API, WebSocket, MJPEG and snapshot URLs. Clients that can send neither (VLC,
//!   `<img>` in another app) may put `access_token=<token>` in the query of the media URLs
//!   only (never logged by the gateway; mind proxies that log query strings).
//! - There is no localhost bypass: with tokens configured, every request needs one.
//!
//! Invariants: tokens and session ids are compared in constant time and never logged;
//! credentials are re-checked against the current configuration, so a token removed by a
//! reload stops working at once (open viewers are closed with 4001 at their next keepalive).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use super::response::{self, Body};
use crate::config::{AuthConfig, Role};

/// Name of the browser session cookie.
pub const SESSION_COOKIE: &str = "camgate_session";
/// How long a browser session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// What a request proved about its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Authentication is off: everyone is admin.
    Open,
    /// A token, from a header or the query.
    Token(String),
    /// A browser session id.
    Session(String),
    /// Nothing (or something invalid).
    None,
}

/// Someone allowed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What they may do.
    pub role: Role,
    /// For viewers with an allow-list: the streams they may watch.
    pub streams: Option<Vec<String>>,
}

impl Principal {
    /// May watch stream `id`.
    pub fn can_view(&self, id: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Viewer => self
                .streams
                .as_ref()
                .is_none_or(|list| list.iter().any(|s| s == id)),
            Role::Metrics => false,
        }
    }

    /// May list streams and plugins (every role that watches).
    pub fn can_browse(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Viewer)
    }

    /// May read `GET /metrics`.
    pub fn can_scrape(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Metrics)
    }

    /// May change the configuration.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

struct Session {
    /// The token the session was opened with (re-checked, so revoking the token ends it).
    token: String,
    expires: Instant,
}

/// Browser sessions: in memory on a single gateway (a restart logs browsers out); signed
/// ids any node can check in a cluster (`signed_session.rs`), with the ids signed out here
/// remembered until they would have expired.
#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session for `token`; returns its id. `signed`: a cluster node's id, which
    /// every node with the same tokens accepts.
    pub fn open(&self, token: &str, signed: bool) -> std::io::Result<String> {
        let mut raw = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
        if signed {
            let expires = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                + SESSION_TTL.as_secs();
            let mut nonce = [0u8; 16];
            nonce.copy_from_slice(&raw[..16]);
            return Ok(super::signed_session::sign(token, expires, &nonce));
        }
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(
            id.clone(),
            Session {
                token: token.to_owned(),
                expires: now + SESSION_TTL,
            },
        );
        Ok(id)
    }

    /// Ends a session (a signed one on this node: see `signed_session.rs`).
    pub fn close(&self, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if id.starts_with(super::signed_session::PREFIX) {
            // Remembered as signed out (with no token) until it would have expired.
            let now = Instant::now();
            sessions.retain(|_, s| s.expires > now);
            sessions.insert(
                id.to_owned(),
                Session {
                    token: String::new(),
                    expires: now + SESSION_TTL,
                },
            );
        } else {
            sessions.remove(id);
        }
    }

    fn token_of(&self, id: &str, auth: &AuthConfig) -> Option<String> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let known = sessions
            .iter()
            .find(|(key, session)| constant_time_eq(key, id) && session.expires > Instant::now())
            .map(|(_, session)| session.token.clone());
        if id.starts_with(super::signed_session::PREFIX) {
            if known.is_some() {
                return None; // signed out here
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let tokens = auth.tokens.iter().map(|t| t.secret.expose());
            return super::signed_session::verify(id, now, tokens).map(str::to_owned);
        }
        known
    }
}

/// Compares secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Extracts the credential of a request. `allow_query` permits `access_token=` (media
/// URLs only).
pub fn credential(
    auth: &AuthConfig,
    headers: &HeaderMap,
    query: Option<&str>,
    allow_query: bool,
) -> Credential {
    if !auth.enabled() {
        return Credential::Open;
    }
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
    {
        return Credential::Token(token.to_owned());
    }
    if let Some(id) = cookie(headers, SESSION_COOKIE) {
        return Credential::Session(id);
    }
    if allow_query
        && let Some(token) = query
            .unwrap_or("")
            .split('&')
            .find_map(|pair| pair.strip_prefix("access_token="))
    {
        return Credential::Token(token.to_owned());
    }
    Credential::None
}

/// The token of an `Authorization: Bearer <token>` value; the scheme name is matched
/// case-insensitively (`bearer`, `BEARER`).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Resolves a credential against the current configuration.
pub fn principal(
    auth: &AuthConfig,
    sessions: &Sessions,
    credential: &Credential,
) -> Option<Principal> {
    let token = match credential {
        Credential::Open => {
            return Some(Principal {
                role: Role::Admin,
                streams: None,
            });
        }
        Credential::None => return None,
        Credential::Token(token) => token.clone(),
        Credential::Session(id) => sessions.token_of(id, auth)?,
    };
    auth.tokens
        .iter()
        .find(|t| constant_time_eq(t.secret.expose(), &token))
        .map(|t| Principal {
            role: t.role,
            streams: t.streams.clone(),
        })
}

/// 401: no valid credential.
pub fn unauthorized() -> Response<Body> {
    let mut response = response::error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a valid token is required: send `Authorization: Bearer <token>` or log in (POST /api/session)",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// 403: valid credential, not allowed.
pub fn forbidden(what: &str) -> Response<Body> {
    response::error(StatusCode::FORBIDDEN, "forbidden", what)
}

/// The `Set-Cookie` value that opens (`Some(id)`) or clears (`None`) the session cookie.
pub fn session_cookie(id: Option<&str>) -> HeaderValue {
    let value = match id {
        Some(id) => format!(
            "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            SESSION_TTL.as_secs()
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }

    #[test]
    fn viewer_allow_lists() {
        let viewer = Principal {
            role: Role::Viewer,
            streams: Some(vec!["a".into()]),
        };
        assert!(viewer.can_view("a") && !viewer.can_view("b") && !viewer.is_admin());
        let all = Principal {
            role: Role::Viewer,
            streams: None,
        };
        assert!(all.can_view("b"));
    }

    #[test]
    fn metrics_role_scrapes_and_nothing_else() {
        let metrics = Principal {
            role: Role::Metrics,
            streams: None,
        };
        assert!(metrics.can_scrape());
        assert!(!metrics.can_view("a") && !metrics.can_browse() && !metrics.is_admin());
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for value in ["Bearer tok", "bearer tok", "BEARER tok", "  beArer   tok "] {
            assert_eq!(bearer_token(value), Some("tok"), "{value}");
        }
        assert_eq!(bearer_token("Basic tok"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearertok"), None);
    }

    #[test]
    fn without_tokens_everyone_is_open() {
        let auth = AuthConfig {
            tokens: vec![],
            public_without_auth: false,
        };
        let headers = HeaderMap::new();
        assert_eq!(credential(&auth, &headers, None, false), Credential::Open);
    }
}
