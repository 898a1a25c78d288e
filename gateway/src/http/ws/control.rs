//! What a viewer may say on its WebSocket: JSON text messages with a `type`. One is defined:
//! `{"type":"credit","frames":N}`, opt-in flow control (the session's policy is in
//! `session.rs`, the credit itself is kept under the lane's lock in `lane.rs`).
//!
//! Invariants:
//! - Text that is not a JSON object with a string `type`, and objects of a type this
//!   gateway does not know, are ignored: clients may speak newer versions of the protocol.
//! - A `credit` message must carry `frames` as an integer in `0..=`[`MAX_CREDIT`]; anything
//!   else (missing, negative, fractional, a string, larger) is a [`ControlError`], which
//!   ends the session with 1008 (policy violation).
//! - The same credit can be asked for in the upgrade's URL (`?credit=N`, same range), so a
//!   viewer is on credit from its first frame: a grant sent on open arrives only after the
//!   gateway may have sent frames freely. A bad value there is refused before the upgrade.

use std::borrow::Cow;

use serde::Deserialize;

/// The most credit a viewer can hold, and the most one message may grant: grants beyond it
/// saturate. A viewer needs a few frames of credit in flight, never a thousand.
pub const MAX_CREDIT: u32 = 1000;

/// A message from the viewer the session acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Send up to this many more frames (each the latest), then wait for more credit.
    Credit(u32),
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
}

impl ControlError {
    /// The close code that tells the viewer what it did wrong.
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
}

/// Reads one text message: `Ok(None)` for anything this gateway does not act on.
pub fn parse(text: &[u8]) -> Result<Option<Control>, ControlError> {
    let Ok(raw) = serde_json::from_slice::<Raw<'_>>(text) else {
        return Ok(None);
    };
    if raw.kind != "credit" {
        return Ok(None);
    }
    raw.frames
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n <= MAX_CREDIT)
        .map(|n| Some(Control::Credit(n)))
        .ok_or(ControlError::BadCredit)
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
        ] {
            assert_eq!(parse(other.as_bytes()), Ok(None), "{other}");
        }
    }
}
