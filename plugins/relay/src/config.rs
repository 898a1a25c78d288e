//! The options of a `relay` source and their validation.
//!
//! [`RelayConfig`] is what the manifest says (strict: unknown keys are errors); [`Settings`]
//! is the checked form the supervisor runs with. `connect_timeout` and `stall_timeout` mean
//! what they mean for the camera plugins and are checked by the same shared rule
//! ([`camgate_plugin_common::camera::check_supervision_timeouts`]).
//!
//! The URL is another gateway's viewing URL: `ws://HOST[:PORT]/ws/streams/ID`, optionally
//! with `?variant=main|sub` and nothing else (the plugin adds `format=auto` itself). `wss://`
//! is refused with a clear message: the plugin has no TLS client (relays run inside a
//! cluster's network; TLS terminates at the balancer in front of it).
//!
//! Invariants: every problem is reported at once; no message and no `Debug` output contains
//! the token; a [`Settings`] always holds a URL the session can connect to as is.

use std::fmt;
use std::time::Duration;

use camgate_plugin_common::camera::{DurationText, check_supervision_timeouts};
use serde::Deserialize;

/// Options of a `relay` source: the manifest's `source` mapping minus `plugin`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// The upstream stream: `ws://HOST[:PORT]/ws/streams/ID[?variant=main|sub]`.
    pub url: String,
    /// A viewer token of the upstream gateway, sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub token: Option<String>,
    /// How long the TCP connect and the WebSocket upgrade may take (default `5s`).
    #[serde(default)]
    pub connect_timeout: Option<DurationText>,
    /// No frame for this long while the upstream says `live` → reconnect (default `10s`).
    #[serde(default)]
    pub stall_timeout: Option<DurationText>,
}

impl fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("connect_timeout", &self.connect_timeout)
            .field("stall_timeout", &self.stall_timeout)
            .finish()
    }
}

/// The upstream stream, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayUrl {
    /// Host as written in the URL (a name, an IPv4 literal or `[v6]`), lowercase.
    pub host: String,
    /// Port (80 when the URL gives none).
    pub port: u16,
    /// The upstream stream id.
    pub stream: String,
    /// `main` or `sub`, when the URL asks for one.
    pub variant: Option<String>,
}

impl RelayUrl {
    /// The URL for messages (no secret can be in it: the token travels apart).
    pub fn display(&self) -> String {
        let query = self
            .variant
            .as_ref()
            .map(|v| format!("?variant={v}"))
            .unwrap_or_default();
        format!(
            "ws://{}:{}/ws/streams/{}{query}",
            self.host, self.port, self.stream
        )
    }

    /// The URL the session requests: always `format=auto` (republish what comes).
    pub fn request(&self) -> String {
        let variant = self
            .variant
            .as_ref()
            .map(|v| format!("&variant={v}"))
            .unwrap_or_default();
        format!(
            "ws://{}:{}/ws/streams/{}?format=auto{variant}",
            self.host, self.port, self.stream
        )
    }

    /// `host:port` for connecting and probing.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A checked configuration, ready to run.
#[derive(Clone)]
pub struct Settings {
    /// The upstream stream.
    pub url: RelayUrl,
    /// The upstream token. Never shown.
    pub token: Option<String>,
    /// Budget for TCP connect + WebSocket upgrade.
    pub connect_timeout: Duration,
    /// Frame watchdog while the upstream is live.
    pub stall_timeout: Duration,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.url.display())
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("connect_timeout", &self.connect_timeout)
            .field("stall_timeout", &self.stall_timeout)
            .finish()
    }
}

impl Settings {
    /// Checks `config` and resolves defaults. On failure returns every problem found.
    pub fn from_config(config: &RelayConfig) -> Result<Settings, Vec<String>> {
        let mut problems = Vec::new();
        let (connect_timeout, stall_timeout) = check_supervision_timeouts(
            config.connect_timeout.as_ref(),
            config.stall_timeout.as_ref(),
            &mut problems,
        );
        if let Some(token) = &config.token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            problems.push(
                "token must be a non-empty run of visible ASCII characters (no spaces)".to_owned(),
            );
        }
        let url = check_url(&config.url, &mut problems);
        match url {
            Some(url) if problems.is_empty() => Ok(Settings {
                url,
                token: config.token.clone(),
                connect_timeout,
                stall_timeout,
            }),
            _ => Err(problems),
        }
    }
}

/// Whether `id` is a stream id the gateway accepts (`[a-z0-9_-]+`).
fn valid_stream_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn check_url(raw: &str, problems: &mut Vec<String>) -> Option<RelayUrl> {
    const SHAPE: &str = "must look like ws://HOST:PORT/ws/streams/ID";
    if raw.is_empty() {
        problems.push("url must not be empty".to_owned());
        return None;
    }
    let parsed = match url::Url::parse(raw) {
        Ok(parsed) => parsed,
        Err(e) => {
            problems.push(format!("url {SHAPE} ({e})"));
            return None;
        }
    };
    match parsed.scheme() {
        "ws" => {}
        "wss" => {
            problems.push(
                "url scheme `wss` is not supported by the relay plugin (it has no TLS client): \
                 relay over ws:// on the gateways' own network"
                    .to_owned(),
            );
            return None;
        }
        other => {
            problems.push(format!("url scheme `{other}` is not allowed (allowed: ws)"));
            return None;
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        problems.push("url must not carry credentials: put the token in `token`".to_owned());
        return None;
    }
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        problems.push(format!("url has no host: it {SHAPE}"));
        return None;
    };
    let stream = parsed
        .path()
        .strip_prefix("/ws/streams/")
        .filter(|id| valid_stream_id(id));
    let Some(stream) = stream else {
        problems.push(format!(
            "url path `{}` is not a stream's viewing path: the url {SHAPE} (ID: lowercase \
             letters, digits, '-' and '_')",
            parsed.path()
        ));
        return None;
    };
    if parsed.fragment().is_some() {
        problems.push("url must not have a fragment (#...)".to_owned());
        return None;
    }
    let mut variant = None;
    for (key, value) in parsed.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("variant", "main" | "sub") if variant.is_none() => variant = Some(value.into_owned()),
            ("variant", _) => {
                problems.push("url: variant must be given once, as main or sub".to_owned());
                return None;
            }
            (key, _) => {
                problems.push(format!(
                    "url query `{key}` is not allowed: only variant=main|sub (the relay asks \
                     for format=auto itself)"
                ));
                return None;
            }
        }
    }
    Some(RelayUrl {
        host: host.to_ascii_lowercase(),
        port: parsed.port().unwrap_or(80),
        stream: stream.to_owned(),
        variant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Settings, String> {
        let config: RelayConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Settings::from_config(&config).map_err(|p| p.join("; "))
    }

    #[test]
    fn defaults_and_the_urls_it_builds() {
        let s = parse(r#"{"url": "ws://127.0.0.1:8000/ws/streams/front"}"#).unwrap();
        assert_eq!(s.connect_timeout, Duration::from_secs(5));
        assert_eq!(s.stall_timeout, Duration::from_secs(10));
        assert_eq!(s.token, None);
        assert_eq!(s.url.display(), "ws://127.0.0.1:8000/ws/streams/front");
        assert_eq!(
            s.url.request(),
            "ws://127.0.0.1:8000/ws/streams/front?format=auto"
        );
        let s = parse(r#"{"url": "WS://Core.Local/ws/streams/a_b-1?variant=sub", "token": "t0k"}"#)
            .unwrap();
        assert_eq!(s.url.authority(), "core.local:80");
        assert_eq!(
            s.url.request(),
            "ws://core.local:80/ws/streams/a_b-1?format=auto&variant=sub"
        );
        assert_eq!(
            s.url.display(),
            "ws://core.local:80/ws/streams/a_b-1?variant=sub"
        );
        let s = parse(r#"{"url": "ws://[::1]:9/ws/streams/x"}"#).unwrap();
        assert_eq!(s.url.authority(), "[::1]:9");
    }

    #[test]
    fn only_a_viewing_url_is_accepted() {
        for (url, needle) in [
            ("wss://core/ws/streams/a", "`wss` is not supported"),
            (
                "http://core/ws/streams/a",
                "scheme `http` is not allowed (allowed: ws)",
            ),
            ("rtsp://core/a", "scheme `rtsp` is not allowed"),
            ("ws://core/api/streams/a", "is not a stream's viewing path"),
            ("ws://core/ws/streams/", "is not a stream's viewing path"),
            (
                "ws://core/ws/streams/Front",
                "is not a stream's viewing path",
            ),
            ("ws://core/ws/streams/a/b", "is not a stream's viewing path"),
            (
                "ws://core/ws/streams/a?format=h264",
                "query `format` is not allowed",
            ),
            (
                "ws://core/ws/streams/a?variant=hd",
                "variant must be given once",
            ),
            (
                "ws://core/ws/streams/a?variant=sub&variant=sub",
                "variant must be given once",
            ),
            ("ws://core/ws/streams/a#x", "fragment"),
            (
                "ws://u:s3cret@core/ws/streams/a",
                "must not carry credentials",
            ),
            ("core:8000/ws/streams/a", "scheme `core` is not allowed"),
            ("/ws/streams/a", "must look like ws://"),
            ("", "must not be empty"),
        ] {
            let json = serde_json::json!({ "url": url }).to_string();
            let err = parse(&json).unwrap_err();
            assert!(err.contains(needle), "{url:?}: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn unknown_options_bad_tokens_and_timeouts_are_refused_without_the_token() {
        let err = parse(r#"{"url": "ws://h/ws/streams/a", "tokn": "x"}"#).unwrap_err();
        assert!(err.contains("unknown field `tokn`"), "{err}");
        let err = parse(
            r#"{"url": "ws://h/ws/streams/a", "token": "sec ret", "stall_timeout": "1ms",
                "connect_timeout": "5"}"#,
        )
        .unwrap_err();
        for needle in [
            "token must be a non-empty run",
            "stall_timeout must be between",
            "connect_timeout: duration needs a unit",
        ] {
            assert!(err.contains(needle), "{needle} missing in: {err}");
        }
        assert!(!err.contains("sec ret"), "{err}");
        assert!(parse(r#"{"url": "ws://h/ws/streams/a", "token": ""}"#).is_err());
    }

    #[test]
    fn the_token_is_never_in_debug_output() {
        let config: RelayConfig =
            serde_json::from_str(r#"{"url": "ws://h/ws/streams/a", "token": "s3cret-token"}"#)
                .unwrap();
        let settings = Settings::from_config(&config).unwrap();
        for shown in [format!("{config:?}"), format!("{settings:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }
}
