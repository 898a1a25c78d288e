//! Small text helpers shared by the gateway and plugins, so both speak the same duration
//! grammar in manifests and mask credentials the same way in every message.
//!
//! Invariants: durations need a unit and are whole numbers (`30s`, `500ms`, `2m`, `1h`,
//! `1h30m`); error messages never repeat the input (it may come from the environment and
//! be a secret). Masking finds URL passwords by their position in the text, never by
//! parsing the URL, so it holds for every string a user can type; it keeps the user name and
//! may hide more than the password, never less.

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

/// The byte ranges of the URL passwords in `text`, found by POSITION, never by parsing.
///
/// After each `scheme://`, the candidate userinfo runs to the LAST `@` before the token ends
/// (whitespace or the end of `text`; NOT `/ ? # '`, which may all be part of a password
/// someone typed without percent-encoding). If that candidate contains `:`, everything after
/// its first `:` up to that `@` is a password range. Scanning resumes after that `@`.
///
/// This over-matches on purpose: in `rtsp://cam:554/a@b` the range is `554/a`. Hiding a
/// port or a path by mistake is harmless; showing a password because it contained a
/// character that a URL parser treats as a delimiter is not. Every place that locates a URL
/// password (masking, the gateway's redactor, the ffmpeg plugin's secrets) uses this one
/// function, so they agree on what a password is.
pub fn url_password_ranges(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        let token_end = text[start..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| start + i);
        let token = &text[start..token_end];
        match token.rfind('@') {
            Some(at) => {
                if let Some(colon) = token[..at].find(':') {
                    ranges.push(start + colon + 1..start + at);
                }
                from = start + at + 1;
            }
            None => from = start,
        }
    }
    ranges
}

/// Masks the password of every `scheme://user:password@host` occurrence in `text`
/// (`rtsp://admin:hunter2@cam` → `rtsp://admin:***@cam`). A user without password is kept.
///
/// Works by position ([`url_password_ranges`]), so it holds for every string, including
/// URLs that do not parse (a password with `/`, `#`, `?`, `'` or `@`). It may mask more than
/// the password (`rtsp://cam:554/a@b` → `rtsp://cam:***@b`): safer than leaking. Idempotent.
pub fn mask_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for range in url_password_ranges(text) {
        out.push_str(&text[last..range.start]);
        out.push_str(MASK);
        last = range.end;
    }
    out.push_str(&text[last..]);
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
        // Over-masking by position: the `@` in the path makes `554/a` look like a password.
        // Hiding a port is harmless; a parser-based rule would leak `p/w` below.
        assert_eq!(
            mask_url_credentials("rtsp://cam:554/a@b"),
            "rtsp://cam:***@b"
        );
        assert_eq!(
            mask_url_credentials("GET rtsp://admin:Raw'Pw9x@10.0.0.5/x ok"),
            "GET rtsp://admin:***@10.0.0.5/x ok"
        );
        assert_eq!(
            mask_url_credentials("url `rtsp://u:p/w#?x@cam/live` bad"),
            "url `rtsp://u:***@cam/live` bad"
        );
        assert_eq!(
            mask_url_credentials("rtsp://u:a://b@c@host/x"),
            "rtsp://u:***@host/x"
        );
    }

    /// Masking holds for generated passwords full of URL delimiters and any text around
    /// them.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Printable ASCII without whitespace, rich in URL delimiters.
        fn password() -> impl Strategy<Value = String> {
            proptest::string::string_regex("[!-~]{4,24}").unwrap()
        }

        fn text() -> impl Strategy<Value = String> {
            proptest::string::string_regex("[ -~]{0,30}").unwrap()
        }

        fn user() -> impl Strategy<Value = String> {
            proptest::string::string_regex("[a-zA-Z0-9._~!$&'()*+,;=%-]{0,10}").unwrap()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn the_password_never_survives_masking(
                before in text(),
                scheme in prop::sample::select(vec!["rtsp", "rtsps", "http", "https", "x"]),
                user in user(),
                password in password(),
                host in proptest::string::string_regex("[a-z0-9.:\\[\\]]{0,20}").unwrap(),
                after in text(),
            ) {
                let url = format!("{scheme}://{user}:{password}@{host}");
                let template = format!("{before}{url}{after}");
                let masked_template = format!("{before}{scheme}://{user}:{MASK}@{host}{after}");
                // A password that also appears elsewhere cannot be told apart from text.
                prop_assume!(!masked_template.contains(&password));
                let masked = mask_url_credentials(&template);
                prop_assert!(!masked.contains(&password), "{template} -> {masked}");
                prop_assert_eq!(mask_url_credentials(&masked), masked.clone());
                // The range helper finds a range covering the whole password.
                let at = before.len() + scheme.len() + 3 + user.len() + 1;
                prop_assert!(url_password_ranges(&template)
                    .iter()
                    .any(|r| r.start <= at && r.end >= at + password.len()));
            }

            #[test]
            fn masking_is_idempotent_on_any_text(text in "\\PC{0,80}") {
                let once = mask_url_credentials(&text);
                prop_assert_eq!(mask_url_credentials(&once), once.clone());
            }
        }
    }
}
