//! Why a stream is down, in one word a viewer can act on: the outage *cause* the API and the
//! WebSocket `state` message carry next to the state (`auth_failed`, `not_found`,
//! `unreachable`, `stalled`, `error`).
//!
//! The cause is read from the source's own status message, in this one place, by a
//! documented contract with plugin authors (docs/plugin-authors.md, "Outage causes"): the
//! message's first clause — the text before the first `"; "`, so the `"; retrying in 2.0s
//! (attempt 3)"` that `camgate_plugin_common::retry::retrying_message` appends, or the
//! `"; last ffmpeg error: ..."` after a stall, never changes the verdict — is matched,
//! case-insensitively, against a short list of prefixes. Both camera plugins (rtsp and
//! ffmpeg-mjpeg) word their failures that way; their exact messages are the unit tests
//! below.
//!
//! A relay (a source fed by another gateway's stream, `plugins/relay`) reports the
//! upstream's outage as `upstream: <the upstream's message>`: leading `upstream: ` prefixes
//! are set aside before matching, so the downstream cause is the upstream's, through any
//! number of hops.
//!
//! Invariants: pure (no state, no clock); a cause exists only while the state is
//! `retrying` or `failed` (a live, connecting or stopped stream has none, whatever its
//! message says); anything not recognised is `error`, never a guess.

use serde::Serialize;

use super::stream_hub::StreamState;

/// The reason of an outage, as a headline word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageCause {
    /// The camera refused the credentials (401) or the access (403).
    AuthFailed,
    /// The camera answered but has no such stream (404: a wrong path or channel).
    NotFound,
    /// The camera did not answer: connection refused or timed out, no route, no DNS name.
    Unreachable,
    /// Connected, but the pictures stopped (or never came, or the camera ended the stream).
    Stalled,
    /// Anything else (the message says what).
    Error,
}

impl OutageCause {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            OutageCause::AuthFailed => "auth_failed",
            OutageCause::NotFound => "not_found",
            OutageCause::Unreachable => "unreachable",
            OutageCause::Stalled => "stalled",
            OutageCause::Error => "error",
        }
    }
}

/// First-clause prefixes (lowercase) and the cause each means: the contract with plugin
/// authors, documented in docs/plugin-authors.md. Checked in order.
const PREFIXES: &[(&str, OutageCause)] = &[
    ("authentication failed", OutageCause::AuthFailed),
    ("access denied", OutageCause::AuthFailed),
    ("stream not found", OutageCause::NotFound),
    ("connection refused", OutageCause::Unreachable),
    ("connection timed out", OutageCause::Unreachable),
    ("no route to host", OutageCause::Unreachable),
    ("network unreachable", OutageCause::Unreachable),
    ("camera host name not found", OutageCause::Unreachable),
    ("host name not found", OutageCause::Unreachable),
    ("no frame for", OutageCause::Stalled),
    ("the camera ended the stream", OutageCause::Stalled),
    ("stream ended", OutageCause::Stalled),
];

/// What a relay puts before an upstream's message (see the module docs).
pub const UPSTREAM: &str = "upstream: ";

/// The cause of an outage in `state` with status `message`; `None` unless the state is
/// `retrying` or `failed`.
pub fn outage_cause(state: StreamState, message: &str) -> Option<OutageCause> {
    if !matches!(state, StreamState::Retrying | StreamState::Failed) {
        return None;
    }
    let mut first = message.split("; ").next().unwrap_or_default().trim_start();
    while first
        .get(..UPSTREAM.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(UPSTREAM))
    {
        first = first[UPSTREAM.len()..].trim_start();
    }
    let cause = PREFIXES
        .iter()
        .find(|(prefix, _)| {
            first
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        })
        .map_or(OutageCause::Error, |(_, cause)| *cause);
    Some(cause)
}

#[cfg(test)]
mod tests {
    //! The exact messages both camera plugins produce, taken from the plugins themselves
    //! where they are public (the rtsp plugin's `RunError`, the ffmpeg-mjpeg plugin's
    //! stderr classifier fed real ffmpeg lines, the shared `retrying_message`), and as
    //! written in the ffmpeg-mjpeg supervisor where they are built inline.

    use std::time::Duration;

    use camgate_ffmpeg_mjpeg::retry::retrying_message;
    use camgate_ffmpeg_mjpeg::stderr::{SharedDiagnostics, drain};
    use camgate_rtsp::session::RunError;

    use super::*;

    fn retrying(message: &str) -> Option<OutageCause> {
        outage_cause(
            StreamState::Retrying,
            &retrying_message(message, Duration::from_millis(10_900), 3),
        )
    }

    /// What the ffmpeg-mjpeg plugin makes of ffmpeg's stderr lines.
    fn ffmpeg_message(lines: &[&str]) -> String {
        let diagnostics = SharedDiagnostics::default();
        drain(
            lines.join("\n").as_bytes(),
            &mut |_, _: &str| {},
            &[],
            &diagnostics,
        );
        let error = diagnostics.lock().unwrap().error.clone();
        error.expect("classified").message
    }

    #[test]
    fn the_rtsp_plugins_failures_have_their_causes() {
        let cases = [
            (
                RunError::Unauthorized("check username and password"),
                OutageCause::AuthFailed,
            ),
            (
                RunError::Unauthorized("the camera wants a username and password"),
                OutageCause::AuthFailed,
            ),
            (RunError::NotFound, OutageCause::NotFound),
            (RunError::Refused, OutageCause::Unreachable),
            (
                RunError::ConnectTimeout("5s".into()),
                OutageCause::Unreachable,
            ),
            (RunError::NoFirstFrame("10s".into()), OutageCause::Stalled),
            (RunError::Stalled("10s".into()), OutageCause::Stalled),
            (RunError::Ended, OutageCause::Stalled),
            (
                RunError::NoVideo("audio mpeg4-generic".into()),
                OutageCause::Error,
            ),
            (
                RunError::Rtsp("invalid url: empty host".into()),
                OutageCause::Error,
            ),
        ];
        for (error, cause) in cases {
            let message = error.to_string();
            assert_eq!(retrying(&message), Some(cause), "{message}");
            assert_eq!(
                outage_cause(StreamState::Failed, &message),
                Some(cause),
                "{message}"
            );
        }
    }

    #[test]
    fn the_ffmpeg_plugins_failures_have_their_causes() {
        let cases: [(&[&str], OutageCause); 9] = [
            (
                &["[rtsp @ 0x1] [error] method DESCRIBE failed: 401 Unauthorized"],
                OutageCause::AuthFailed,
            ),
            (
                &["[rtsp @ 0x1] [error] method DESCRIBE failed: 403 Forbidden"],
                OutageCause::AuthFailed,
            ),
            (
                &["[error] rtsp://127.0.0.1:18554/nope: Server returned 404 Not Found"],
                OutageCause::NotFound,
            ),
            (
                &["[error] rtsp://127.0.0.1:1/x: Connection refused"],
                OutageCause::Unreachable,
            ),
            (
                &["[error] rtsp://10.0.0.9/x: Connection timed out"],
                OutageCause::Unreachable,
            ),
            (
                &["[error] rtsp://10.0.0.9/x: No route to host"],
                OutageCause::Unreachable,
            ),
            (
                &["[error] rtsp://10.0.0.9/x: Network is unreachable"],
                OutageCause::Unreachable,
            ),
            (
                &["[tcp @ 0x1] [error] Failed to resolve hostname cam.invalid"],
                OutageCause::Unreachable,
            ),
            (
                &["[rtsp @ 0x1] [error] method SETUP failed: 461 Unsupported transport"],
                OutageCause::Error,
            ),
        ];
        for (lines, cause) in cases {
            let message = ffmpeg_message(lines);
            assert_eq!(retrying(&message), Some(cause), "{message}");
        }
        // Built by the ffmpeg-mjpeg supervisor (plugins/ffmpeg-mjpeg/src/supervisor.rs).
        for (message, cause) in [
            (
                "connection timed out (no answer within 5s)",
                OutageCause::Unreachable,
            ),
            (
                "no frame for 10s after starting ffmpeg",
                OutageCause::Stalled,
            ),
            (
                "no frame for 10s (stream stalled); the gateway rejected 3 frame(s); last ffmpeg error: connection refused",
                OutageCause::Stalled,
            ),
            (
                "stream ended (ffmpeg exited: exit status: 0)",
                OutageCause::Stalled,
            ),
            (
                "ffmpeg exited before the first frame (exit status: 1)",
                OutageCause::Error,
            ),
            (
                "cannot run ffmpeg (`/nope/ffmpeg`): not found; install ffmpeg or set source.ffmpeg_path",
                OutageCause::Error,
            ),
            ("invalid data from the camera", OutageCause::Error),
        ] {
            assert_eq!(retrying(message), Some(cause), "{message}");
        }
    }

    #[test]
    fn a_relay_reports_its_upstream_s_cause() {
        for (message, cause) in [
            (
                "upstream: connection refused; retrying in 1.2s (attempt 2)",
                OutageCause::Unreachable,
            ),
            (
                "upstream: upstream: authentication failed (401 Unauthorized): check username \
                 and password; retrying in 10.9s (attempt 3)",
                OutageCause::AuthFailed,
            ),
            (
                "Upstream: no frame for 10s (stream stalled)",
                OutageCause::Stalled,
            ),
            ("upstream: ", OutageCause::Error),
            ("upstream: camera busy", OutageCause::Error),
            // Only a leading prefix counts.
            ("relay upstream: connection refused", OutageCause::Error),
        ] {
            assert_eq!(retrying(message), Some(cause), "{message}");
        }
    }

    #[test]
    fn only_an_outage_has_a_cause() {
        let message = RunError::Refused.to_string();
        for state in [
            StreamState::Stopped,
            StreamState::Connecting,
            StreamState::Live,
        ] {
            assert_eq!(outage_cause(state, &message), None, "{state:?}");
        }
        // An outage whose message says nothing known is an error, not a guess.
        assert_eq!(
            outage_cause(StreamState::Failed, ""),
            Some(OutageCause::Error)
        );
        assert_eq!(
            outage_cause(StreamState::Failed, "source start aborted: panic"),
            Some(OutageCause::Error)
        );
        // Case does not matter; a later clause does not count.
        assert_eq!(
            outage_cause(StreamState::Retrying, "Connection Refused"),
            Some(OutageCause::Unreachable)
        );
        assert_eq!(
            outage_cause(StreamState::Retrying, "camera busy; connection refused"),
            Some(OutageCause::Error)
        );
        assert_eq!(OutageCause::AuthFailed.as_str(), "auth_failed");
        assert_eq!(
            serde_json::to_string(&OutageCause::NotFound).unwrap(),
            "\"not_found\""
        );
    }
}
