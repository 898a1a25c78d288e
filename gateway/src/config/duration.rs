//! Parsing of human-written durations (`30s`, `500ms`, `2m`, `1h`, `1h30m`;
//! spaces between parts are allowed: `1h 30m`, `30 s`).
//!
//! Invariants: a unit is mandatory (a bare `30` is ambiguous, so it is an error
//! with a hint); only whole numbers; units are `ms`, `s`, `m`, `h`; the result
//! never overflows (overflow is an error). Range checks (> 0, <= 24h) are the
//! validator's job, not this parser's.

use std::time::Duration;

/// Parses `text` such as `30s` or `1h30m`. The error message does not repeat
/// the input (it may have come from the environment).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
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
}
