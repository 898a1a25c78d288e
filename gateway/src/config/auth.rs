//! The `auth` section: access tokens with roles and per-stream allow-lists.
//!
//! ```yaml
//! auth:
//!   tokens:
//!     - role: admin                       # admin | viewer | metrics
//!       token: ${CAMGATE_ADMIN_TOKEN}      # from the environment ...
//!     - role: viewer
//!       token_file: /run/secrets/lobby     # ... or from a file (trailing newline ignored)
//!       streams: [lobby]                   # viewer allow-list; omit for every stream
//!     - role: metrics                     # scrape-only: GET /metrics, nothing else
//!       token_file: /run/secrets/prometheus
//!   public_without_auth: false             # listen beyond loopback with no token at all
//! ```
//!
//! Invariants: token values never appear in errors, `Debug` output or logs (they are kept
//! in [`Secret`]); a token is at least [`MIN_TOKEN_LEN`] characters; two tokens are never
//! equal; an allow-list only names existing streams (checked in `validate.rs`).

use std::path::Path;

use super::error::{ConfigError, Location};
use super::node::Node;
use super::parse::{Ctx, Str};

/// Shortest accepted token: a guessable token is no protection.
pub const MIN_TOKEN_LEN: usize = 16;

pub(crate) const AUTH_KEYS: &[&str] = &["tokens", "public_without_auth"];
pub(crate) const TOKEN_KEYS: &[&str] = &["role", "token", "token_file", "streams"];

/// A secret string whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret read from the manifest.
    pub(crate) fn new(value: String) -> Self {
        Secret(value)
    }

    /// The secret itself (compare it in constant time; never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watch streams (all, or the allow-list).
    Viewer,
    /// Everything, including changing streams.
    Admin,
    /// Scrape-only: `GET /metrics` and nothing else, so a Prometheus server never holds a
    /// token that can watch cameras or change streams.
    Metrics,
}

/// One access token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenConfig {
    /// What it allows.
    pub role: Role,
    /// The token value.
    pub secret: Secret,
    /// For viewers: the streams it may watch (`None` = all).
    pub streams: Option<Vec<String>>,
    /// Where it is defined (for messages).
    pub location: Location,
}

/// The `auth` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthConfig {
    /// Accepted tokens; none means no authentication.
    pub tokens: Vec<TokenConfig>,
    /// Explicit opt-out: allow listening beyond loopback without any token.
    pub public_without_auth: bool,
}

impl AuthConfig {
    /// Whether requests must present a token.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }
}

/// The structural result, checked further in `validate.rs`.
#[derive(Debug, Default)]
pub(crate) struct AuthDraft {
    pub tokens: Vec<TokenDraft>,
    pub public_without_auth: bool,
}

#[derive(Debug)]
pub(crate) struct TokenDraft {
    pub role: Option<Role>,
    pub secret: Option<String>,
    pub streams: Option<Vec<Str>>,
    pub location: Location,
}

impl Ctx<'_> {
    pub(super) fn auth(&mut self, node: &Node) -> AuthDraft {
        let mut auth = AuthDraft::default();
        let Some(entries) = self.mapping(node, "`auth`") else {
            return auth;
        };
        for (key, _, value) in self.keys(entries, "in `auth`", AUTH_KEYS) {
            match key {
                "tokens" => {
                    auth.tokens = self
                        .list(value, "`auth.tokens`")
                        .iter()
                        .filter_map(|item| self.token(item))
                        .collect();
                }
                "public_without_auth" => {
                    auth.public_without_auth =
                        self.boolean(value, "public_without_auth").unwrap_or(false);
                }
                _ => unreachable!("keys() only yields allowed keys"),
            }
        }
        auth
    }

    fn token(&mut self, node: &Node) -> Option<TokenDraft> {
        let entries = self.mapping(node, "each entry of `auth.tokens`")?;
        let mut token = TokenDraft {
            role: None,
            secret: None,
            streams: None,
            location: self.loc(node),
        };
        let mut sources = 0;
        let mut role_seen = false;
        for (key, _, value) in self.keys(entries, "in an auth token", TOKEN_KEYS) {
            match key {
                "role" => {
                    role_seen = true;
                    token.role = match self
                        .string(value, "role")
                        .as_ref()
                        .map(|s| s.value.as_str())
                    {
                        Some("admin") => Some(Role::Admin),
                        Some("viewer") => Some(Role::Viewer),
                        Some("metrics") => Some(Role::Metrics),
                        Some(_) => {
                            self.error(value, "`role` must be `admin`, `viewer` or `metrics`");
                            None
                        }
                        None => None,
                    }
                }
                "token" => {
                    sources += 1;
                    token.secret = self.string(value, "token").map(|s| s.value);
                }
                "token_file" => {
                    sources += 1;
                    if let Some(path) = self.string(value, "token_file") {
                        let path = super::parse::resolve_dir(self.file(), Path::new(&path.value));
                        // Read through the context: the bytes count in the fingerprint, so
                        // rotating the file is a configuration change.
                        let read = self.read_file(&path).and_then(|bytes| {
                            String::from_utf8(bytes).map_err(|_| {
                                std::io::Error::new(
                                    std::io::ErrorKind::InvalidData,
                                    "not UTF-8 text",
                                )
                            })
                        });
                        match read {
                            Ok(text) => {
                                token.secret = Some(text.trim_end_matches(['\n', '\r']).to_owned())
                            }
                            Err(e) => self.error(
                                value,
                                format!("cannot read token_file {}: {e}", path.display()),
                            ),
                        }
                    }
                }
                "streams" => {
                    token.streams = Some(
                        self.list(value, "`streams`")
                            .iter()
                            .filter_map(|item| self.string(item, "streams entry"))
                            .collect(),
                    );
                }
                _ => unreachable!("keys() only yields allowed keys"),
            }
        }
        if !role_seen {
            self.error(
                node,
                "auth token is missing `role` (`admin`, `viewer` or `metrics`)",
            );
        }
        if sources != 1 {
            self.error(
                node,
                "an auth token needs exactly one of `token` and `token_file`",
            );
        }
        Some(token)
    }
}

/// Semantic checks of the `auth` section against the stream ids.
pub(crate) fn validate_auth(
    draft: AuthDraft,
    stream_ids: &[String],
    errors: &mut Vec<ConfigError>,
) -> AuthConfig {
    let mut tokens: Vec<TokenConfig> = Vec::new();
    for token in draft.tokens {
        if let Some(list) = &token.streams {
            for id in list.iter().filter(|id| !stream_ids.contains(&id.value)) {
                errors.push(ConfigError::at(
                    id.location.clone(),
                    format!("`streams` names unknown stream `{}`", id.value),
                ));
            }
        }
        let (Some(role), Some(secret)) = (token.role, token.secret) else {
            continue;
        };
        if secret.chars().count() < MIN_TOKEN_LEN {
            errors.push(ConfigError::at(
                token.location.clone(),
                format!("auth token is too short: use at least {MIN_TOKEN_LEN} random characters"),
            ));
            continue;
        }
        if let Some(first) = tokens.iter().find(|t| t.secret.expose() == secret) {
            errors.push(ConfigError::at(
                token.location.clone(),
                format!(
                    "this auth token has the same value as the one at line {}",
                    first.location.line
                ),
            ));
            continue;
        }
        if role != Role::Viewer && token.streams.is_some() {
            errors.push(ConfigError::at(
                token.location.clone(),
                "`streams` limits viewer tokens only; an admin token sees every stream and a metrics token none",
            ));
        }
        tokens.push(TokenConfig {
            role,
            secret: Secret(secret),
            streams: token
                .streams
                .map(|list| list.into_iter().map(|s| s.value).collect()),
            location: token.location,
        });
    }
    AuthConfig {
        tokens,
        public_without_auth: draft.public_without_auth,
    }
}
