//! What a viewer may say on its WebSocket: JSON text messages with a `type`. Two are defined:
//! - `{"type":"credit","frames":N}`, opt-in flow control (the session's policy is in
//!   `session.rs`, the credit itself is kept under the lane's lock in `lane.rs`);
//! - `{"type":"shown","frames":N,"age_ms":[a1,a2,...]}`, a viewer's freshness report: the
//!   frames it drew since its last report, and a sample of the pictures' ages (ms, capture
//!   to the moment each was drawn, on the gateway's clock as estimated from `hello`'s
//!   `server_time_us`). The gateway only measures with it (`camgate_viewer_*` metrics).
//!
//! Invariants:
//! - Text that is not a JSON object with a string `type`, and objects of a type this
//!   gateway does not know, are ignored: clients may speak newer versions of the protocol.
//! - A `credit` message must carry `frames` as an integer in `0..=`[`MAX_CREDIT`]; anything
//!   else (missing, negative, fractional, a string, larger) is a [`ControlError`], which
//!   ends the session with 1008 (policy violation): a wrong grant would change what the
//!   gateway sends.
//! - A `shown` report must carry `frames` as an integer in `0..=`[`MAX_SHOWN_FRAMES`] and
//!   `age_ms` as an array of at most [`MAX_SHOWN_AGES`] numbers, each in
//!   `0..=`[`MAX_SHOWN_AGE_MS`], and no more ages than frames. Anything else is a
//!   [`ControlError::Report`], which the session counts and ignores: a bad report loses a
//!   measurement, never the viewer's picture (a flood of them is bounded by the message
//!   size limit and costs a parse each). An accepted [`Shown`] is within those bounds.
//! - The same credit can be asked for in the upgrade's URL (`?credit=N`, same range), so a
//!   viewer is on credit from its first frame: a grant sent on open arrives only after the
//!   gateway may have sent frames freely. A bad value there is refused before the upgrade.

use std::borrow::Cow;

use serde::Deserialize;

/// The most credit a viewer can hold, and the most one message may grant: grants beyond it
/// saturate. A viewer needs a few frames of credit in flight, never a thousand.
pub const MAX_CREDIT: u32 = 1000;

/// The most frames one `shown` report may count: a report covers about five seconds, and
/// no display draws 2000 frames a second.
pub const MAX_SHOWN_FRAMES: u32 = 10_000;

/// The most ages one `shown` report may carry (a sample of the frames drawn).
pub const MAX_SHOWN_AGES: usize = 32;

/// The oldest picture age (ms) a report may carry: ten minutes. Beyond it the viewer's clock
/// estimate is wrong rather than its picture old.
pub const MAX_SHOWN_AGE_MS: f64 = 600_000.0;

/// A message from the viewer the session acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Send up to this many more frames (each the latest), then wait for more credit.
    Credit(u32),
    /// The viewer's freshness report.
    Shown(Shown),
}

/// A viewer's freshness report, within the bounds in the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// Frames the viewer drew since its previous report.
    pub frames: u32,
    /// Ages (ms) of a sample of those frames at the moment they were drawn.
    pub ages_ms: Vec<f64>,
}

/// What is wrong with a `shown` report (the report is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShownError {
    /// `frames` is not an integer in `0..=MAX_SHOWN_FRAMES`.
    #[error("frames must be an integer from 0 to {}", MAX_SHOWN_FRAMES)]
    Frames,
    /// `age_ms` is missing or not an array.
    #[error("age_ms must be an array of numbers")]
    NotAList,
    /// `age_ms` has more than `MAX_SHOWN_AGES` entries, or more than `frames`.
    #[error(
        "age_ms may hold at most {} ages, and no more than frames",
        MAX_SHOWN_AGES
    )]
    TooManyAges,
    /// An age is not a number in `0..=MAX_SHOWN_AGE_MS`.
    #[error(
        "each age must be a number of milliseconds from 0 to {}",
        MAX_SHOWN_AGE_MS
    )]
    Age,
}

/// A message the gateway understood but cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// `frames` of a credit message is not an integer in `0..=MAX_CREDIT`.
    #[error("credit frames must be an integer from 0 to {}", MAX_CREDIT)]
    BadCredit,
    /// The `credit` query parameter is not an integer in `0..=MAX_CREDIT`.
    #[error("credit must be an integer from 0 to {}", MAX_CREDIT)]
    BadInitialCredit,
    /// A `shown` report outside its bounds: ignored, the session goes on.
    #[error("bad shown report: {0}")]
    Report(#[from] ShownError),
}

impl ControlError {
    /// The close code that tells the viewer what it did wrong (for errors that end the
    /// session).
    pub fn close_code(&self) -> u16 {
        1008
    }
}

/// Reads the `credit` query parameter of the upgrade: `Ok(None)` without one, else the
/// viewer's credit before its first frame.
pub fn initial_credit(query: Option<&str>) -> Result<Option<u32>, ControlError> {
    let Some(value) = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("credit="))
    else {
        return Ok(None);
    };
    // Digits only: no sign, no fraction, no exponent (the JSON message's rule).
    value
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| value.parse::<u32>().ok())
        .flatten()
        .filter(|n| *n <= MAX_CREDIT)
        .map(Some)
        .ok_or(ControlError::BadInitialCredit)
}

/// The shape every viewer message shares; other fields are ignored.
#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    frames: Option<serde_json::Value>,
    #[serde(default)]
    age_ms: Option<serde_json::Value>,
}

/// `frames` as an integer in `0..=max` (no sign, fraction or exponent).
fn frames_up_to(frames: Option<&serde_json::Value>, max: u32) -> Option<u32> {
    frames
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n <= max)
}

/// Reads one text message: `Ok(None)` for anything this gateway does not act on.
pub fn parse(text: &[u8]) -> Result<Option<Control>, ControlError> {
    let Ok(raw) = serde_json::from_slice::<Raw<'_>>(text) else {
        return Ok(None);
    };
    match &*raw.kind {
        "credit" => frames_up_to(raw.frames.as_ref(), MAX_CREDIT)
            .map(|n| Some(Control::Credit(n)))
            .ok_or(ControlError::BadCredit),
        "shown" => Ok(Some(Control::Shown(shown(&raw)?))),
        _ => Ok(None),
    }
}

/// Validates a `shown` report (bounds in the module docs).
fn shown(raw: &Raw<'_>) -> Result<Shown, ShownError> {
    let frames = frames_up_to(raw.frames.as_ref(), MAX_SHOWN_FRAMES).ok_or(ShownError::Frames)?;
    let ages = raw
        .age_ms
        .as_ref()
        .and_then(serde_json::Value::as_array)
        .ok_or(ShownError::NotAList)?;
    if ages.len() > MAX_SHOWN_AGES || ages.len() > frames as usize {
        return Err(ShownError::TooManyAges);
    }
    let ages_ms = ages
        .iter()
        .map(|age| {
            age.as_f64()
                .filter(|ms| ms.is_finite() && (0.0..=MAX_SHOWN_AGE_MS).contains(ms))
                .ok_or(ShownError::Age)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Shown { frames, ages_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credit_query_parameter_is_an_integer_up_to_the_maximum() {
        assert_eq!(initial_credit(None), Ok(None));
        assert_eq!(initial_credit(Some("max_fps=5")), Ok(None));
        assert_eq!(initial_credit(Some("credit=0")), Ok(Some(0)));
        assert_eq!(initial_credit(Some("max_fps=5&credit=2")), Ok(Some(2)));
        assert_eq!(initial_credit(Some("credit=1000")), Ok(Some(1000)));
        for bad in [
            "credit=",
            "credit=-1",
            "credit=+1",
            "credit=1.5",
            "credit=1e3",
            "credit=1001",
            "credit=4294967297",
            "credit=x",
        ] {
            assert_eq!(
                initial_credit(Some(bad)),
                Err(ControlError::BadInitialCredit),
                "{bad}"
            );
        }
    }

    #[test]
    fn credit_messages_carry_an_integer_up_to_the_maximum() {
        let parse = |text: &str| parse(text.as_bytes());
        assert_eq!(
            parse(r#"{"type":"credit","frames":2}"#),
            Ok(Some(Control::Credit(2)))
        );
        assert_eq!(
            parse(r#"{"frames":0,"type":"credit","extra":[1]}"#),
            Ok(Some(Control::Credit(0)))
        );
        assert_eq!(
            parse(r#"{"type":"credit","frames":1000}"#),
            Ok(Some(Control::Credit(MAX_CREDIT)))
        );
        for bad in [
            r#"{"type":"credit"}"#,
            r#"{"type":"credit","frames":null}"#,
            r#"{"type":"credit","frames":-1}"#,
            r#"{"type":"credit","frames":1.5}"#,
            r#"{"type":"credit","frames":1.0}"#,
            r#"{"type":"credit","frames":"3"}"#,
            r#"{"type":"credit","frames":1001}"#,
            r#"{"type":"credit","frames":4294967297}"#,
            r#"{"type":"credit","frames":18446744073709551616}"#,
            r#"{"type":"credit","frames":1e3}"#,
        ] {
            assert_eq!(parse(bad), Err(ControlError::BadCredit), "{bad}");
        }
    }

    #[test]
    fn shown_reports_carry_bounded_frames_and_ages() {
        let parse = |text: &str| parse(text.as_bytes());
        assert_eq!(
            parse(r#"{"type":"shown","frames":3,"age_ms":[12,40.5,0]}"#),
            Ok(Some(Control::Shown(Shown {
                frames: 3,
                ages_ms: vec![12.0, 40.5, 0.0]
            })))
        );
        assert_eq!(
            parse(r#"{"age_ms":[],"frames":0,"type":"shown","extra":{"a":1}}"#),
            Ok(Some(Control::Shown(Shown {
                frames: 0,
                ages_ms: vec![]
            })))
        );
        let full = format!(
            r#"{{"type":"shown","frames":10000,"age_ms":[{}]}}"#,
            vec!["600000"; MAX_SHOWN_AGES].join(",")
        );
        assert_eq!(
            parse(&full),
            Ok(Some(Control::Shown(Shown {
                frames: MAX_SHOWN_FRAMES,
                ages_ms: vec![MAX_SHOWN_AGE_MS; MAX_SHOWN_AGES]
            })))
        );
        let too_many = format!(
            r#"{{"type":"shown","frames":100,"age_ms":[{}]}}"#,
            vec!["1"; MAX_SHOWN_AGES + 1].join(",")
        );
        for (bad, why) in [
            (r#"{"type":"shown","age_ms":[]}"#, ShownError::Frames),
            (
                r#"{"type":"shown","frames":-1,"age_ms":[]}"#,
                ShownError::Frames,
            ),
            (
                r#"{"type":"shown","frames":1.5,"age_ms":[]}"#,
                ShownError::Frames,
            ),
            (
                r#"{"type":"shown","frames":"2","age_ms":[]}"#,
                ShownError::Frames,
            ),
            (
                r#"{"type":"shown","frames":10001,"age_ms":[]}"#,
                ShownError::Frames,
            ),
            (
                r#"{"type":"shown","frames":4294967296,"age_ms":[]}"#,
                ShownError::Frames,
            ),
            (r#"{"type":"shown","frames":2}"#, ShownError::NotAList),
            (
                r#"{"type":"shown","frames":2,"age_ms":null}"#,
                ShownError::NotAList,
            ),
            (
                r#"{"type":"shown","frames":2,"age_ms":5}"#,
                ShownError::NotAList,
            ),
            (
                r#"{"type":"shown","frames":2,"age_ms":{"0":5}}"#,
                ShownError::NotAList,
            ),
            (
                r#"{"type":"shown","frames":1,"age_ms":[1,2]}"#,
                ShownError::TooManyAges,
            ),
            (&too_many, ShownError::TooManyAges),
            (
                r#"{"type":"shown","frames":2,"age_ms":[-1]}"#,
                ShownError::Age,
            ),
            (
                r#"{"type":"shown","frames":2,"age_ms":[-0.001]}"#,
                ShownError::Age,
            ),
            (
                r#"{"type":"shown","frames":2,"age_ms":[600000.5]}"#,
                ShownError::Age,
            ),
            (
                r#"{"type":"shown","frames":2,"age_ms":["5"]}"#,
                ShownError::Age,
            ),
            (
                r#"{"type":"shown","frames":2,"age_ms":[null]}"#,
                ShownError::Age,
            ),
            (
                r#"{"type":"shown","frames":2,"age_ms":[[1]]}"#,
                ShownError::Age,
            ),
        ] {
            assert_eq!(parse(bad), Err(ControlError::Report(why)), "{bad}");
        }
    }

    #[test]
    fn other_text_is_ignored() {
        for other in [
            "",
            "credit",
            "not json",
            "[1,2]",
            "42",
            r#"{"frames":3}"#,
            r#"{"type":7,"frames":3}"#,
            r#"{"type":"Credit","frames":-1}"#,
            r#"{"type":"ack","seq":12}"#,
            r#"{"type":"credit","frames":2"#,
            r#"{"type":"Shown","frames":-1}"#,
            r#"{"type":"shown","frames":2,"age_ms":[1e400]}"#,
        ] {
            assert_eq!(parse(other.as_bytes()), Ok(None), "{other}");
        }
    }
}
