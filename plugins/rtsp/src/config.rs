//! The options of an `rtsp` source and their validation.
//!
//! [`RtspConfig`] is what the manifest says (strict: unknown keys are errors); [`Settings`]
//! is the checked form the supervisor runs with. The option names and meanings are those of
//! `ffmpeg-mjpeg` where they overlap (`url`, `username`, `password`, `transport`,
//! `connect_timeout`, `stall_timeout`); the checks are the shared ones
//! ([`camgate_plugin_common::camera`]). Every problem is collected and reported at once, and
//! no message ever contains the password or the URL's userinfo.
//!
//! Invariants of a [`Settings`]: the URL is `rtsp://` with a host; the RTSP client gets the
//! display URL (no userinfo) and the credentials apart, so no request line carries them.

use std::fmt;
use std::time::Duration;

use camgate_plugin_common::camera::{
    CameraUrl, DurationText, Transport, check_camera_url, check_supervision_timeouts, mask_userinfo,
};
use serde::Deserialize;

/// The only scheme: the in-process client speaks plain RTSP (no RTSP over TLS).
pub const ALLOWED_SCHEMES: [&str; 1] = ["rtsp"];

/// Options of an `rtsp` source: the manifest's `source` mapping minus `plugin`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtspConfig {
    /// Camera URL (`rtsp://`); may carry `user:password@` (then no username/password).
    pub url: String,
    /// User name for the camera (Basic or Digest authentication, as the camera asks).
    #[serde(default)]
    pub username: Option<String>,
    /// Password for the camera.
    #[serde(default)]
    pub password: Option<String>,
    /// RTP transport: `tcp` (interleaved in the RTSP connection, default) or `udp`.
    #[serde(default)]
    pub transport: Transport,
    /// How long connecting (TCP, DESCRIBE, SETUP, PLAY) may take (default `5s`).
    #[serde(default)]
    pub connect_timeout: Option<DurationText>,
    /// No frame for this long → the session is dropped and reconnected (default `10s`).
    #[serde(default)]
    pub stall_timeout: Option<DurationText>,
}

impl fmt::Debug for RtspConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtspConfig")
            .field("url", &mask_userinfo(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("transport", &self.transport)
            .field("connect_timeout", &self.connect_timeout)
            .field("stall_timeout", &self.stall_timeout)
            .finish()
    }
}

/// A checked configuration, ready to run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The camera URL: display form, credentials and the secrets to scrub.
    pub url: CameraUrl,
    /// RTP transport.
    pub transport: Transport,
    /// Budget for TCP connect + DESCRIBE + SETUP + PLAY.
    pub connect_timeout: Duration,
    /// Frame watchdog.
    pub stall_timeout: Duration,
}

impl Settings {
    /// Checks `config` and resolves defaults. On failure returns every problem found.
    pub fn from_config(config: &RtspConfig) -> Result<Settings, Vec<String>> {
        let mut problems = Vec::new();
        let (connect_timeout, stall_timeout) = check_supervision_timeouts(
            config.connect_timeout.as_ref(),
            config.stall_timeout.as_ref(),
            &mut problems,
        );
        let url = if config
            .url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("rtsps://"))
        {
            problems.push(
                "url scheme `rtsps` is not supported by the rtsp plugin (its RTSP client has \
                 no TLS); use plugin ffmpeg-mjpeg for an rtsps camera"
                    .to_owned(),
            );
            None
        } else {
            check_camera_url(
                &config.url,
                config.username.as_deref(),
                config.password.as_deref(),
                &ALLOWED_SCHEMES,
                &mut problems,
            )
        };
        match url {
            Some(url) if problems.is_empty() => Ok(Settings {
                url,
                transport: config.transport,
                connect_timeout,
                stall_timeout,
            }),
            _ => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Settings, String> {
        let config: RtspConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Settings::from_config(&config).map_err(|p| p.join("; "))
    }

    #[test]
    fn defaults() {
        let s = parse(r#"{"url": "rtsp://127.0.0.1:8554/test"}"#).unwrap();
        assert_eq!(s.transport, Transport::Tcp);
        assert_eq!(s.connect_timeout, Duration::from_secs(5));
        assert_eq!(s.stall_timeout, Duration::from_secs(10));
        assert_eq!(s.url.display_url, "rtsp://127.0.0.1:8554/test");
        assert_eq!(s.url.credentials(), None);
        let s = parse(r#"{"url": "rtsp://c/x", "transport": "udp"}"#).unwrap();
        assert_eq!(s.transport, Transport::Udp);
    }

    #[test]
    fn unknown_and_ffmpeg_only_options_are_refused() {
        for (json, needle) in [
            (r#"{"url": "rtsp://h/x", "fsp": 3}"#, "unknown field `fsp`"),
            (r#"{"url": "rtsp://h/x", "fps": 5}"#, "unknown field `fps`"),
            (
                r#"{"url": "rtsp://h/x", "transport": "http"}"#,
                "unknown variant",
            ),
            (r#"{"username": "a"}"#, "missing field `url`"),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn only_rtsp_urls_are_accepted() {
        for (url, needle) in [
            (
                "http://cam/video.mjpg",
                "scheme `http` is not allowed (allowed: rtsp)",
            ),
            ("rtsps://u:s3cret@cam/x", "`rtsps` is not supported"),
            ("file:///etc/passwd", "scheme `file` is not allowed"),
            ("cam:554/x", "must look like rtsp://"),
            ("rtsp:///x", "no host"),
            ("", "must not be empty"),
        ] {
            let json = serde_json::json!({ "url": url }).to_string();
            let err = parse(&json).unwrap_err();
            assert!(err.contains(needle), "{url:?}: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        parse(r#"{"url": "RTSP://cam:554/Streaming/Channels/101"}"#).unwrap();
    }

    #[test]
    fn every_problem_is_reported_at_once_without_secrets() {
        let err = parse(
            r#"{"url": "rtsp://admin:s3cret@cam/x", "username": "u", "password": "p",
                "connect_timeout": "5", "stall_timeout": "1ms"}"#,
        )
        .unwrap_err();
        for needle in [
            "connect_timeout: duration needs a unit",
            "stall_timeout must be between",
            "already contains credentials",
        ] {
            assert!(err.contains(needle), "{needle} missing in: {err}");
        }
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn credentials_reach_the_client_apart_from_the_url() {
        let s =
            parse(r#"{"url": "rtsp://cam/x", "username": "admin", "password": "p@ss"}"#).unwrap();
        assert_eq!(s.url.display_url, "rtsp://cam/x");
        assert_eq!(s.url.credentials(), Some(("admin", "p@ss")));
        let s = parse(r#"{"url": "rtsp://admin:p%40ss@cam/x"}"#).unwrap();
        assert_eq!(s.url.display_url, "rtsp://cam/x");
        assert_eq!(s.url.credentials(), Some(("admin", "p@ss")));
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("p@ss") && !shown.contains("p%40ss"),
            "{shown}"
        );
    }
}
