//! Small text helpers shared by the gateway and plugins, so both speak the same duration
//! grammar in manifests and mask credentials the same way in every message.
//!
//! Invariants: durations need a unit and are whole numbers (`30s`, `500ms`, `2m`, `1h`,
//! `1h30m`); error messages never repeat the input (it may come from the environment and
//! be a secret). Masking keeps the user name and replaces only the password.

use std::time::Duration;

/// What replaces a secret in messages.
pub const MASK: &str = "***";

/// Parses `text` such as `30s` or `1h30m`. The error message does not repeat
/// the input (it may have come from the environment).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const HINT: &str =
        "expected a whole number with a unit (ms, s, m, h), like `30s`, `500ms`, `2m` or `1h`";
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty duration: {HINT}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!("invalid duration: {HINT}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| "duration is too large".to_owned())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let part = match unit {
            "ms" => Some(Duration::from_millis(number)),
            "s" => Some(Duration::from_secs(number)),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            "" => {
                return Err(format!(
                    "duration needs a unit: write `{number}s` (or ms, m, h)"
                ));
            }
            _ => return Err(format!("unknown duration unit: {HINT}")),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| "duration is too large".to_owned())?;
    }
    Ok(total)
}

/// Masks the password of every `scheme://user:password@host` occurrence in `text`
/// (`rtsp://admin:hunter2@cam` → `rtsp://admin:***@cam`). A user without password is kept.
pub fn mask_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(idx) = rest.find("://") {
        let (head, tail) = rest.split_at(idx + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#', quote or whitespace (ffmpeg
        // quotes URLs in its messages).
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c == '\'' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push(':');
                        out.push_str(MASK);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_units_and_compounds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1h 30 m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn rejects_with_hints() {
        assert_eq!(
            parse_duration("30").unwrap_err(),
            "duration needs a unit: write `30s` (or ms, m, h)"
        );
        assert_eq!(
            parse_duration("abc").unwrap_err(),
            "invalid duration: expected a whole number with a unit (ms, s, m, h), like `30s`, `500ms`, `2m` or `1h`"
        );
        assert!(parse_duration("1.5s").is_err());
        assert!(
            parse_duration("10days")
                .unwrap_err()
                .starts_with("unknown duration unit")
        );
        assert!(
            parse_duration("")
                .unwrap_err()
                .starts_with("empty duration")
        );
        assert_eq!(
            parse_duration("99999999999999999999s").unwrap_err(),
            "duration is too large"
        );
        assert_eq!(
            parse_duration("999999999999999999h").unwrap_err(),
            "duration is too large"
        );
    }

    #[test]
    fn masks_passwords_in_urls_anywhere_in_text() {
        assert_eq!(
            mask_url_credentials("failed rtsp://admin:hunter2@10.0.0.5:554/live?x=1 (401)"),
            "failed rtsp://admin:***@10.0.0.5:554/live?x=1 (401)"
        );
        assert_eq!(
            mask_url_credentials("rtsp://u:p@a/ and http://v:q@b"),
            "rtsp://u:***@a/ and http://v:***@b"
        );
        assert_eq!(
            mask_url_credentials("from 'rtsp://u:p@cam':"),
            "from 'rtsp://u:***@cam':"
        );
        assert_eq!(
            mask_url_credentials("rtsp://user@cam/x"),
            "rtsp://user@cam/x"
        );
        assert_eq!(mask_url_credentials("no url here"), "no url here");
        assert_eq!(
            mask_url_credentials("rtsp://cam:554/a@b"),
            "rtsp://cam:554/a@b"
        );
    }
}
