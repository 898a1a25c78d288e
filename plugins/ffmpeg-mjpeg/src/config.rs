//! The options of an `ffmpeg-mjpeg` source and their validation.
//!
//! [`FfmpegMjpegConfig`] is what the manifest says (strict: unknown keys are errors);
//! [`Settings`] is the checked, resolved form the supervisor runs with. Every problem is
//! collected and reported at once, and no message ever contains the password or the
//! userinfo of the URL.
//!
//! Invariants of a [`Settings`]: the URL has an allowed scheme (rtsp, rtsps, http, https),
//! a host, no whitespace or control characters and cannot be mistaken for an ffmpeg option
//! or special input; `input_url` carries the credentials percent-encoded, `display_url`
//! never carries any.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

// The URL, credential, transport and duration rules every camera plugin shares.
pub use camgate_plugin_common::camera::{
    CameraUrl, DurationText, Transport, check_camera_url, check_duration,
    check_supervision_timeouts, human, mask_userinfo, parse_duration, scrub,
};

/// Schemes ffmpeg may open: cameras only — no `file:`, `pipe:`, `concat:`, `lavfi`...
pub const ALLOWED_SCHEMES: [&str; 4] = ["rtsp", "rtsps", "http", "https"];

/// Frame rate when `fps` is not given.
pub const DEFAULT_FPS: f64 = 10.0;

/// When to copy the camera's JPEGs instead of re-encoding them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Passthrough {
    /// Transcode the first run; if ffmpeg reports that the camera sends MJPEG and no
    /// `width`/`height` is set, switch to `-c:v copy` right after the first frame and keep
    /// it (falling back to transcoding if a copy run never produces a frame).
    #[default]
    Auto,
    /// Always `-c:v copy` (the camera must send MJPEG; `width`/`height` are refused).
    Always,
    /// Always re-encode.
    Never,
}

/// Options of an `ffmpeg-mjpeg` source: the manifest's `source` mapping minus `plugin`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FfmpegMjpegConfig {
    /// Camera URL (`rtsp://`, `rtsps://`, `http://`, `https://`).
    pub url: String,
    /// User name for the camera; inserted into the URL for ffmpeg.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for the camera; inserted percent-encoded into the URL for ffmpeg.
    #[serde(default)]
    pub password: Option<String>,
    /// Frames per second delivered (> 0 ..= 60; default 10).
    #[serde(default)]
    pub fps: Option<f64>,
    /// Output width; alone it keeps the aspect ratio.
    #[serde(default)]
    pub width: Option<u32>,
    /// Output height; alone it keeps the aspect ratio.
    #[serde(default)]
    pub height: Option<u32>,
    /// JPEG quality on ffmpeg's `-q:v` scale: 2 (best) ..= 31 (worst); default 5.
    #[serde(default = "default_quality")]
    pub quality: u8,
    /// RTSP transport: `tcp` (default) or `udp`.
    #[serde(default)]
    pub transport: Transport,
    /// How long connecting may take (default `5s`).
    #[serde(default)]
    pub connect_timeout: Option<DurationText>,
    /// No complete frame for this long → ffmpeg is killed and restarted (default `10s`).
    #[serde(default)]
    pub stall_timeout: Option<DurationText>,
    /// Passed to ffmpeg's `-hwaccel` when decoding (e.g. `vaapi`, `auto`).
    #[serde(default)]
    pub hwaccel: Option<String>,
    /// The ffmpeg binary: a name looked up in `PATH` or a path (default `ffmpeg`).
    #[serde(default)]
    pub ffmpeg_path: Option<String>,
    /// `auto` (default), `always` or `never`: see [`Passthrough`].
    #[serde(default)]
    pub passthrough: Passthrough,
}

fn default_quality() -> u8 {
    5
}

impl fmt::Debug for FfmpegMjpegConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FfmpegMjpegConfig")
            .field("url", &mask_userinfo(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("fps", &self.fps)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("quality", &self.quality)
            .field("transport", &self.transport)
            .field("connect_timeout", &self.connect_timeout)
            .field("stall_timeout", &self.stall_timeout)
            .field("hwaccel", &self.hwaccel)
            .field("ffmpeg_path", &self.ffmpeg_path)
            .field("passthrough", &self.passthrough)
            .finish()
    }
}

/// Output scaling requested by `width` / `height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Keep the camera's size.
    Native,
    /// This width, height following the aspect ratio (even).
    Width(u32),
    /// This height, width following the aspect ratio (even).
    Height(u32),
    /// Exactly this size.
    Exact(u32, u32),
}

/// A checked configuration, ready to run.
#[derive(Clone)]
pub struct Settings {
    /// The URL handed to ffmpeg, credentials included (percent-encoded). Never shown.
    pub input_url: String,
    /// The URL without any userinfo: safe for messages.
    pub display_url: String,
    /// The URL's scheme (lowercase).
    pub scheme: String,
    /// Exact secret strings to scrub from any text (password, its encoded form, userinfo).
    pub secrets: Vec<String>,
    /// Target frame rate.
    pub fps: f64,
    /// Output scaling.
    pub scale: Scale,
    /// `-q:v`.
    pub quality: u8,
    /// `-rtsp_transport`.
    pub transport: Transport,
    /// Connect/handshake timeout (`-timeout`).
    pub connect_timeout: Duration,
    /// Frame watchdog.
    pub stall_timeout: Duration,
    /// `-hwaccel`, if any.
    pub hwaccel: Option<String>,
    /// The ffmpeg binary as configured.
    pub ffmpeg_path: String,
    /// Passthrough policy.
    pub passthrough: Passthrough,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("display_url", &self.display_url)
            .field("fps", &self.fps)
            .field("scale", &self.scale)
            .field("quality", &self.quality)
            .field("transport", &self.transport)
            .field("connect_timeout", &self.connect_timeout)
            .field("stall_timeout", &self.stall_timeout)
            .field("hwaccel", &self.hwaccel)
            .field("ffmpeg_path", &self.ffmpeg_path)
            .field("passthrough", &self.passthrough)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Checks `config` and resolves defaults. On failure returns every problem found.
    pub fn from_config(config: &FfmpegMjpegConfig) -> Result<Settings, Vec<String>> {
        let mut problems = Vec::new();

        let fps = config.fps.unwrap_or(DEFAULT_FPS);
        if !(fps > 0.0 && fps <= 60.0) {
            problems.push(format!("fps must be > 0 and <= 60, got {fps}"));
        }
        for (name, value) in [("width", config.width), ("height", config.height)] {
            if let Some(v) = value
                && !(16..=7680).contains(&v)
            {
                problems.push(format!("{name} must be 16..=7680, got {v}"));
            }
        }
        let scale = match (config.width, config.height) {
            (None, None) => Scale::Native,
            (Some(w), None) => Scale::Width(w),
            (None, Some(h)) => Scale::Height(h),
            (Some(w), Some(h)) => Scale::Exact(w, h),
        };
        if config.passthrough == Passthrough::Always && scale != Scale::Native {
            problems.push(
                "width/height cannot be used with passthrough: always (copying JPEGs cannot \
                 resize them); remove them or use passthrough: auto"
                    .to_owned(),
            );
        }
        if !(2..=31).contains(&config.quality) {
            problems.push(format!(
                "quality must be 2 (best) ..= 31 (worst), got {}",
                config.quality
            ));
        }
        let (connect_timeout, stall_timeout) = check_supervision_timeouts(
            config.connect_timeout.as_ref(),
            config.stall_timeout.as_ref(),
            &mut problems,
        );
        if let Some(hwaccel) = &config.hwaccel
            && !is_plain_word(hwaccel)
        {
            problems.push(
                "hwaccel must be a plain name like `auto`, `vaapi` or `cuda` (letters, digits, \
                 `_`, `-`; not starting with `-`)"
                    .to_owned(),
            );
        }
        let ffmpeg_path = config
            .ffmpeg_path
            .clone()
            .unwrap_or_else(|| "ffmpeg".to_owned());
        if ffmpeg_path.is_empty()
            || ffmpeg_path.starts_with('-')
            || ffmpeg_path.chars().any(char::is_control)
        {
            problems.push(
                "ffmpeg_path must be a program name or a path (not empty, not starting with `-`)"
                    .to_owned(),
            );
        }
        let url = check_camera_url(
            &config.url,
            config.username.as_deref(),
            config.password.as_deref(),
            &ALLOWED_SCHEMES,
            &mut problems,
        );

        match url {
            Some(CameraUrl {
                input_url,
                display_url,
                scheme,
                secrets,
                ..
            }) if problems.is_empty() => Ok(Settings {
                input_url,
                display_url,
                scheme,
                secrets,
                fps,
                scale,
                quality: config.quality,
                transport: config.transport,
                connect_timeout,
                stall_timeout,
                hwaccel: config.hwaccel.clone(),
                ffmpeg_path,
                passthrough: config.passthrough,
            }),
            _ => Err(problems),
        }
    }

    /// `true` for RTSP inputs (`-rtsp_transport` applies).
    pub fn is_rtsp(&self) -> bool {
        self.scheme == "rtsp" || self.scheme == "rtsps"
    }
}

/// Letters, digits, `_` and `-`, not starting with `-`.
fn is_plain_word(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Settings, String> {
        let config: FfmpegMjpegConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Settings::from_config(&config).map_err(|p| p.join("; "))
    }

    #[test]
    fn defaults() {
        let s = parse(r#"{"url": "rtsp://127.0.0.1:8554/test"}"#).unwrap();
        assert_eq!(s.fps, 10.0);
        assert_eq!(s.quality, 5);
        assert_eq!(s.transport, Transport::Tcp);
        assert_eq!(s.connect_timeout, Duration::from_secs(5));
        assert_eq!(s.stall_timeout, Duration::from_secs(10));
        assert_eq!(s.ffmpeg_path, "ffmpeg");
        assert_eq!(s.passthrough, Passthrough::Auto);
        assert_eq!(s.scale, Scale::Native);
        assert_eq!(s.input_url, "rtsp://127.0.0.1:8554/test");
        assert!(s.is_rtsp());
    }

    #[test]
    fn unknown_option_is_refused() {
        let err = parse(r#"{"url": "rtsp://h/x", "fsp": 3}"#).unwrap_err();
        assert!(err.contains("unknown field `fsp`"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = parse(
            r#"{"url": "rtsp://h/x", "fps": 0, "quality": 40, "width": 2,
                "connect_timeout": "5", "stall_timeout": "1h2x", "hwaccel": "-x"}"#,
        )
        .unwrap_err();
        for needle in [
            "fps must be > 0",
            "quality must be 2",
            "width must be 16..=7680, got 2",
            "connect_timeout: duration needs a unit",
            "stall_timeout: unknown duration unit",
            "hwaccel must be a plain name",
        ] {
            assert!(err.contains(needle), "{needle} missing in: {err}");
        }
    }

    #[test]
    fn dangerous_urls_are_refused() {
        for (url, needle) in [
            ("file:///etc/passwd", "scheme `file` is not allowed"),
            ("-", "must not start with `-`"),
            ("-i", "must not start with `-`"),
            ("pipe:0", "must look like rtsp://"),
            ("concat:a|b", "must look like rtsp://"),
            ("/etc/passwd", "must look like rtsp://"),
            ("rtsp://cam/x y", "whitespace"),
            ("rtsp://cam/x\ny", "whitespace or control"),
            ("rtsp:///path", "no host"),
            ("gopher://cam/", "scheme `gopher` is not allowed"),
            ("", "must not be empty"),
        ] {
            let json = serde_json::json!({ "url": url }).to_string();
            let err = parse(&json).unwrap_err();
            assert!(err.contains(needle), "{url:?}: {err}");
        }
        for ok in [
            "rtsp://cam/x",
            "RTSP://cam:554/Streaming/Channels/101?transportmode=unicast",
            "rtsps://cam/x",
            "http://cam/video.mjpg",
            "https://cam/video.mjpg",
        ] {
            let json = serde_json::json!({ "url": ok }).to_string();
            parse(&json).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn credentials_go_into_the_url_encoded_and_never_into_messages() {
        let s = parse(
            r#"{"url": "rtsp://127.0.0.1:8554/test", "username": "admin",
                "password": "p@ss:w/rd"}"#,
        )
        .unwrap();
        assert_eq!(
            s.input_url,
            "rtsp://admin:p%40ss%3Aw%2Frd@127.0.0.1:8554/test"
        );
        assert_eq!(s.display_url, "rtsp://127.0.0.1:8554/test");
        assert!(s.secrets.contains(&"p@ss:w/rd".to_owned()));
        assert!(s.secrets.contains(&"p%40ss%3Aw%2Frd".to_owned()));
        let text = format!("{s:?} failed on {}", s.input_url);
        let scrubbed = scrub(&text, &s.secrets);
        assert!(!scrubbed.contains("p@ss"), "{scrubbed}");
        assert!(!scrubbed.contains("p%40ss"), "{scrubbed}");
    }

    #[test]
    fn credentials_in_the_url_work_and_are_masked() {
        let s = parse(r#"{"url": "rtsp://admin:s%40cret@cam/x"}"#).unwrap();
        assert_eq!(s.input_url, "rtsp://admin:s%40cret@cam/x");
        assert_eq!(s.display_url, "rtsp://cam/x");
        assert!(s.secrets.contains(&"s@cret".to_owned()));
        let err = parse(
            r#"{"url": "rtsp://admin:s3cret@cam/x", "username": "u", "password": "p", "fps": 0}"#,
        )
        .unwrap_err();
        assert!(err.contains("already contains credentials"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = parse(r#"{"url": "ftp://admin:s3cret@cam/x"}"#).unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
        let err = parse(r#"{"url": "rtsp://cam/x", "password": "p"}"#).unwrap_err();
        assert!(err.contains("username is not"), "{err}");
    }

    #[test]
    fn scale_and_passthrough_rules() {
        let s = parse(r#"{"url": "rtsp://c/x", "width": 320}"#).unwrap();
        assert_eq!(s.scale, Scale::Width(320));
        let s = parse(r#"{"url": "rtsp://c/x", "height": 240}"#).unwrap();
        assert_eq!(s.scale, Scale::Height(240));
        let s = parse(r#"{"url": "rtsp://c/x", "width": 320, "height": 240}"#).unwrap();
        assert_eq!(s.scale, Scale::Exact(320, 240));
        let err =
            parse(r#"{"url": "rtsp://c/x", "width": 320, "passthrough": "always"}"#).unwrap_err();
        assert!(err.contains("passthrough: always"), "{err}");
        let err = parse(r#"{"url": "rtsp://c/x", "passthrough": "sometimes"}"#).unwrap_err();
        assert!(err.contains("unknown variant `sometimes`"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("").is_err());
        let err = parse(r#"{"url": "rtsp://c/x", "stall_timeout": "100ms"}"#).unwrap_err();
        assert!(err.contains("stall_timeout must be between"), "{err}");
    }

    #[test]
    fn mask_userinfo_handles_many_urls() {
        assert_eq!(
            mask_userinfo("a rtsp://u:p@h/x and 'http://v:q@h2:80/y'"),
            "a rtsp://u:***@h/x and 'http://v:***@h2:80/y'"
        );
        assert_eq!(mask_userinfo("rtsp://u@h/x"), "rtsp://u@h/x");
        assert_eq!(mask_userinfo("no url"), "no url");
    }
}
