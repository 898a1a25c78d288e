//! The options every camera plugin shares — the URL with its credentials, the RTSP
//! transport, durations written as text — and the scrubbing of secrets from any text.
//!
//! [`check_camera_url`] validates a URL against a plugin's allowed schemes and merges the
//! `username` / `password` options into it; the result, [`CameraUrl`], keeps the URL with
//! credentials (for the code that connects) apart from the display URL (for every message)
//! and lists the exact secret strings [`scrub`] removes from text that may echo them.
//!
//! Invariants: no problem message ever contains the password or the URL's userinfo; a
//! [`CameraUrl`] has an allowed scheme, a host, and no whitespace or control characters;
//! `display_url` never carries any userinfo.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

// One duration grammar and one way of masking credentials, shared with the gateway.
pub use camgate_plugin_api::text::{mask_url_credentials as mask_userinfo, parse_duration};

/// How RTSP carries the media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RTP interleaved in the RTSP TCP connection (works through NAT and firewalls).
    #[default]
    Tcp,
    /// RTP over UDP (lower overhead on a clean LAN).
    Udp,
}

impl Transport {
    /// `tcp` or `udp` (ffmpeg's `-rtsp_transport` value, and the manifest's spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// A duration written as text (`"5s"`, `"500ms"`, `"1m"`, `"1m30s"`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DurationText(pub String);

impl fmt::Debug for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The supervision timeouts every camera plugin takes, checked the same way: how long to
/// wait for a camera to answer (`connect_timeout`, default 5 s, 100 ms to 5 min) and for a
/// frame before the stream counts as stalled (`stall_timeout`, default 10 s, 500 ms to
/// 1 h). Returns `(connect, stall)`.
pub fn check_supervision_timeouts(
    connect_timeout: Option<&DurationText>,
    stall_timeout: Option<&DurationText>,
    problems: &mut Vec<String>,
) -> (Duration, Duration) {
    let connect = check_duration(
        "connect_timeout",
        connect_timeout,
        Duration::from_secs(5),
        Duration::from_millis(100)..=Duration::from_secs(300),
        problems,
    );
    let stall = check_duration(
        "stall_timeout",
        stall_timeout,
        Duration::from_secs(10),
        Duration::from_millis(500)..=Duration::from_secs(3600),
        problems,
    );
    (connect, stall)
}

/// Parses an optional duration option: `default` when absent; a problem (and `default`)
/// when it does not parse or lies outside `range`.
pub fn check_duration(
    name: &str,
    value: Option<&DurationText>,
    default: Duration,
    range: std::ops::RangeInclusive<Duration>,
    problems: &mut Vec<String>,
) -> Duration {
    let Some(DurationText(text)) = value else {
        return default;
    };
    match parse_duration(text) {
        Ok(d) if range.contains(&d) => d,
        Ok(d) => {
            problems.push(format!(
                "{name} must be between {:?} and {:?}, got {d:?}",
                range.start(),
                range.end()
            ));
            default
        }
        Err(e) => {
            problems.push(format!("{name}: {e}"));
            default
        }
    }
}

/// A duration as the manifest writes it, for messages: `2s`, `1.5s`, `500ms`.
pub fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A checked camera URL with its credentials.
#[derive(Clone)]
pub struct CameraUrl {
    /// The URL with the credentials in its userinfo (percent-encoded). Never shown.
    pub input_url: String,
    /// The URL without any userinfo: safe for messages (and for clients that take the
    /// credentials apart, see [`CameraUrl::credentials`]).
    pub display_url: String,
    /// The URL's scheme (lowercase).
    pub scheme: String,
    /// Exact secret strings to scrub from any text (password, its encoded form, userinfo),
    /// longest first.
    pub secrets: Vec<String>,
    /// The user name and password, decoded, from the options or the URL's userinfo.
    credentials: Option<(String, String)>,
}

impl CameraUrl {
    /// The user name and password (decoded; the password is empty when only a user name
    /// was given), `None` without credentials.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }
}

impl fmt::Debug for CameraUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CameraUrl")
            .field("display_url", &self.display_url)
            .field(
                "username",
                &self.credentials.as_ref().map(|(user, _)| user.as_str()),
            )
            .finish_non_exhaustive()
    }
}

/// Validates `raw` (a scheme of `allowed`, a host, nothing an ffmpeg-like client could take
/// for an option or a special input), merges `username` / `password` into it, and returns
/// the [`CameraUrl`]; on failure pushes the problems (none of which contains a secret).
/// Also checks the credential options themselves (a password needs a user name, no control
/// characters, not both in the URL and as options).
pub fn check_camera_url(
    raw: &str,
    username: Option<&str>,
    password: Option<&str>,
    allowed: &[&str],
    problems: &mut Vec<String>,
) -> Option<CameraUrl> {
    let before = problems.len();
    if password.is_some() && username.is_none() {
        problems.push("password is set but username is not: set both".to_owned());
    }
    for (name, value) in [("username", username), ("password", password)] {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            problems.push(format!("{name} must not contain control characters"));
        }
    }
    let checked = check_url(raw, username, password, allowed, problems);
    if problems.len() == before {
        checked
    } else {
        None
    }
}

fn check_url(
    raw: &str,
    username: Option<&str>,
    password: Option<&str>,
    allowed: &[&str],
    problems: &mut Vec<String>,
) -> Option<CameraUrl> {
    let shown = mask_userinfo(raw);
    if raw.is_empty() {
        problems.push("url must not be empty".to_owned());
        return None;
    }
    if raw.starts_with('-') {
        problems.push("url must not start with `-` (it would be read as an ffmpeg option)".into());
        return None;
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        problems.push("url must not contain whitespace or control characters".to_owned());
        return None;
    }
    let scheme_end = raw.find("://");
    let scheme = scheme_end.map(|i| raw[..i].to_ascii_lowercase());
    match scheme.as_deref() {
        Some(s) if allowed.contains(&s) => {}
        Some(s)
            if s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            problems.push(format!(
                "url scheme `{s}` is not allowed (allowed: {})",
                allowed.join(", ")
            ));
            return None;
        }
        _ => {
            problems.push(format!(
                "url must look like rtsp://host[:port]/path (allowed schemes: {}), got `{shown}`",
                allowed.join(", ")
            ));
            return None;
        }
    }
    let mut url = match Url::parse(raw) {
        Ok(url) => url,
        Err(e) => {
            problems.push(format!("url is not valid ({e}): `{shown}`"));
            return None;
        }
    };
    if url.host_str().is_none_or(str::is_empty) {
        problems.push(format!("url has no host: `{shown}`"));
        return None;
    }
    // Located by position, like the masking: whatever the URL parser made of it.
    let mut secrets: Vec<String> = camgate_plugin_api::text::url_password_ranges(raw)
        .into_iter()
        .map(|r| raw[r].to_owned())
        .collect();
    let url_has_credentials = !url.username().is_empty() || url.password().is_some();
    let mut credentials = None;
    if url_has_credentials {
        let user = percent_decode(url.username()).unwrap_or_else(|_| url.username().to_owned());
        let pass = match url.password() {
            Some(password) => {
                secrets.push(password.to_owned());
                let decoded = percent_decode(password).unwrap_or_else(|_| password.to_owned());
                secrets.push(decoded.clone());
                decoded
            }
            None => String::new(),
        };
        credentials = Some((user, pass));
    }
    if url_has_credentials && username.is_some() {
        problems.push(
            "url already contains credentials: remove them from the url or drop \
             username/password"
                .to_owned(),
        );
        return None;
    }
    if let Some(username) = username {
        if url.set_username(username).is_err() {
            problems.push(format!("url `{shown}` cannot carry a username"));
            return None;
        }
        if let Some(password) = password {
            if url.set_password(Some(password)).is_err() {
                problems.push(format!("url `{shown}` cannot carry a password"));
                return None;
            }
            secrets.push(password.to_owned());
            if let Some(encoded) = url.password() {
                secrets.push(encoded.to_owned());
            }
        }
        credentials = Some((username.to_owned(), password.unwrap_or_default().to_owned()));
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    let mut display = url.clone();
    // Cannot fail: the URL has a host (checked above).
    let _ = display.set_password(None);
    let _ = display.set_username("");
    Some(CameraUrl {
        input_url: url.to_string(),
        display_url: display.to_string(),
        scheme: url.scheme().to_owned(),
        secrets,
        credentials,
    })
}

/// Decodes `%XX` escapes (used to learn the literal form of a password given in a URL).
fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(value) = u8::from_str_radix(hex, 16)
        {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
}

/// Masks URL userinfo and every exact secret in `text`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = mask_userinfo(text);
    for secret in secrets {
        if !secret.is_empty() && out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTSP_ONLY: [&str; 2] = ["rtsp", "rtsps"];

    fn check(raw: &str, user: Option<&str>, pass: Option<&str>) -> Result<CameraUrl, String> {
        let mut problems = Vec::new();
        check_camera_url(raw, user, pass, &RTSP_ONLY, &mut problems).ok_or(problems.join("; "))
    }

    #[test]
    fn durations_read_like_the_manifest() {
        assert_eq!(human(Duration::from_secs(2)), "2s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn options_go_into_the_url_encoded_and_come_out_decoded() {
        let url = check("rtsp://cam:554/x", Some("admin"), Some("p@ss:w/rd")).unwrap();
        assert_eq!(url.input_url, "rtsp://admin:p%40ss%3Aw%2Frd@cam:554/x");
        assert_eq!(url.display_url, "rtsp://cam:554/x");
        assert_eq!(url.credentials(), Some(("admin", "p@ss:w/rd")));
        let scrubbed = scrub(&format!("{url:?} {}", url.input_url), &url.secrets);
        assert!(
            !scrubbed.contains("p@ss") && !scrubbed.contains("p%40ss"),
            "{scrubbed}"
        );
    }

    #[test]
    fn userinfo_in_the_url_is_decoded_and_masked() {
        let url = check("rtsp://us%20er:s%40cret@cam/x", None, None).unwrap();
        assert_eq!(url.credentials(), Some(("us er", "s@cret")));
        assert_eq!(url.display_url, "rtsp://cam/x");
        assert!(url.secrets.contains(&"s@cret".to_owned()));
        let user_only = check("rtsp://cam/x", Some("viewer"), None).unwrap();
        assert_eq!(user_only.credentials(), Some(("viewer", "")));
        assert_eq!(
            check("rtsp://cam/x", None, None).unwrap().credentials(),
            None
        );
    }

    #[test]
    fn schemes_outside_the_list_and_mixed_credentials_are_refused_without_secrets() {
        let err = check("http://admin:s3cret@cam/x", None, None).unwrap_err();
        assert!(err.contains("scheme `http` is not allowed"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = check("rtsp://admin:s3cret@cam/x", Some("u"), Some("p")).unwrap_err();
        assert!(err.contains("already contains credentials"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = check("rtsp://cam/x", None, Some("p")).unwrap_err();
        assert!(err.contains("username is not"), "{err}");
        let err = check("rtsp://cam/x", Some("a\nb"), None).unwrap_err();
        assert!(err.contains("username must not contain control"), "{err}");
    }
}
