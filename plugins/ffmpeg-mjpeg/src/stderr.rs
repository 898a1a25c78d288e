//! Draining and understanding ffmpeg's stderr.
//!
//! An undrained stderr pipe blocks ffmpeg once the pipe buffer fills, so every run gets a
//! thread that reads it to the end. Each line is scrubbed of secrets first (URL userinfo
//! and the literal password, in every form), then
//! - classified: errors become one short, useful message for the stream status
//!   ("authentication failed (401 Unauthorized)", "connection refused", ...), kept in
//!   [`Diagnostics`];
//! - parsed for the input's video codec (so `passthrough: auto` can switch to copying);
//! - logged through the host at a level that matches ffmpeg's (`-loglevel level+info`
//!   tags every line), except known per-frame noise, which is only counted.
//!
//! Invariant: nothing leaves this module unscrubbed, and a line is at most
//! [`MAX_LINE`] bytes (longer ones are cut), so memory stays bounded whatever ffmpeg prints.

use std::io::Read;
use std::sync::{Arc, Mutex};

use camgate_plugin_api::LogLevel;

use crate::config::scrub;

/// Longest line kept; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 2048;

/// Lines ffmpeg prints for every frame or every start that say nothing useful.
const NOISE: [&str; 4] = [
    // swscale on yuvj formats (ffmpeg 5.x), once per frame when encoding MJPEG.
    "deprecated pixel format used",
    // Expected with `-probesize 32 -analyzeduration 0`.
    "not enough frames to estimate rate",
    // ffmpeg acknowledging our own SIGTERM (stop, restart).
    "Immediate exit requested",
    "received signal 15",
];

/// What the stderr of one ffmpeg run told us.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    /// The most useful error so far (already scrubbed), if any.
    pub error: Option<Classified>,
    /// The input's video codec as ffmpeg named it (`h264`, `mjpeg`, ...).
    pub input_codec: Option<String>,
    /// Lines read.
    pub lines: u64,
    /// Noise lines suppressed.
    pub noise: u64,
}

/// A classified error line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// The short message for operators.
    pub message: String,
    /// How sure the classification is; a more specific one replaces a vaguer one.
    pub kind: ErrorKind,
}

/// Kinds of errors, from vague to specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// Some other error line, shown as is.
    Other,
    /// "Invalid data found when processing input": garbage, a reset, or (ffmpeg 5.1) a
    /// handshake timeout — the supervisor decides which from the elapsed time.
    InvalidData,
    /// A recognised cause (refused, 401, 404, timeout...).
    Known,
}

/// Shared between the stderr thread and the supervisor.
pub type SharedDiagnostics = Arc<Mutex<Diagnostics>>;

/// ffmpeg's log level tag of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Error,
    Warning,
    Info,
    Other,
}

/// Reads `stderr` to the end, updating `diagnostics` and passing lines worth logging
/// (already scrubbed) to `log` — in the plugin, [`Host::log`](camgate_plugin_api::Host::log).
pub fn drain(
    mut stderr: impl Read,
    log: &mut impl FnMut(LogLevel, &str),
    secrets: &[String],
    diagnostics: &SharedDiagnostics,
) {
    let mut parser = LineParser::default();
    let mut chunk = [0u8; 8192];
    let mut line = Vec::with_capacity(256);
    loop {
        let n = match stderr.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for &byte in &chunk[..n] {
            if byte == b'\n' || byte == b'\r' {
                if !line.is_empty() {
                    parser.handle(&String::from_utf8_lossy(&line), log, secrets, diagnostics);
                    line.clear();
                }
            } else if line.len() < MAX_LINE {
                line.push(byte);
            }
        }
    }
    if !line.is_empty() {
        parser.handle(&String::from_utf8_lossy(&line), log, secrets, diagnostics);
    }
}

/// Per-run parsing state (which section of ffmpeg's stream dump we are in).
#[derive(Debug, Default)]
struct LineParser {
    in_input_section: bool,
}

impl LineParser {
    fn handle(
        &mut self,
        raw: &str,
        log: &mut impl FnMut(LogLevel, &str),
        secrets: &[String],
        diagnostics: &SharedDiagnostics,
    ) {
        let line = scrub(raw, secrets);
        let (level, text) = split_level(&line);
        let text = text.trim_end();
        let mut d = diagnostics.lock().unwrap_or_else(|e| e.into_inner());
        d.lines += 1;
        if NOISE.iter().any(|n| text.contains(n)) {
            d.noise += 1;
            return;
        }
        let trimmed = text.trim_start();
        if trimmed.starts_with("Input #") {
            self.in_input_section = true;
        } else if trimmed.starts_with("Output #") || trimmed.starts_with("Stream mapping") {
            self.in_input_section = false;
        }
        let mut log_level = match level {
            Level::Error => Some(LogLevel::Error),
            // Untagged lines do not come from ffmpeg's logger (e.g. setpriv failing to
            // exec it): worth seeing.
            Level::Warning | Level::Other => Some(LogLevel::Warn),
            Level::Info => None,
        };
        if self.in_input_section
            && trimmed.starts_with("Stream #")
            && let Some(codec) = video_codec(trimmed)
        {
            d.input_codec = Some(codec);
            log_level = Some(LogLevel::Info);
        }
        if level != Level::Info
            && let Some(classified) = classify(text, level)
            && d.error
                .as_ref()
                .is_none_or(|old| classified.kind >= old.kind)
        {
            d.error = Some(classified);
        }
        drop(d);
        if let Some(log_level) = log_level {
            log(log_level, &format!("ffmpeg: {trimmed}"));
        }
    }
}

/// Strips `[name @ 0x...] ` context prefixes and the `[level] ` tag.
fn split_level(line: &str) -> (Level, &str) {
    let mut rest = line;
    loop {
        let Some(inner_end) = rest.strip_prefix('[').and_then(|r| r.find(']')) else {
            return (Level::Other, rest);
        };
        let inner = &rest[1..=inner_end];
        let after = rest[inner_end + 2..].trim_start_matches(' ');
        if inner.contains(" @ ") {
            rest = after;
            continue;
        }
        let level = match inner {
            "error" | "fatal" | "panic" => Level::Error,
            "warning" => Level::Warning,
            "info" | "verbose" | "debug" | "trace" => Level::Info,
            _ => return (Level::Other, rest),
        };
        return (level, after);
    }
}

/// `Stream #0:0: Video: mjpeg (Baseline), ...` → `mjpeg`.
fn video_codec(line: &str) -> Option<String> {
    let after = line.split_once(": Video: ")?.1;
    let codec: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!codec.is_empty()).then_some(codec)
}

/// Turns an error or warning line into a short message.
fn classify(text: &str, level: Level) -> Option<Classified> {
    let lower = text.to_ascii_lowercase();
    let known = |message: &str| {
        Some(Classified {
            message: message.to_owned(),
            kind: ErrorKind::Known,
        })
    };
    if lower.contains("401") && (lower.contains("unauthorized") || lower.contains("authoriz")) {
        return known("authentication failed (401 Unauthorized)");
    }
    if lower.contains("403 forbidden") {
        return known("access denied (403 Forbidden)");
    }
    if lower.contains("404 not found") {
        return known("stream not found (404)");
    }
    if lower.contains("connection refused") {
        return known("connection refused");
    }
    if lower.contains("timed out") || lower.contains("timeout") {
        return known("connection timed out");
    }
    if lower.contains("no route to host") {
        return known("no route to host");
    }
    if lower.contains("network is unreachable") {
        return known("network unreachable");
    }
    if lower.contains("failed to resolve hostname")
        || lower.contains("name or service not known")
        || lower.contains("temporary failure in name resolution")
    {
        return known("camera host name not found (DNS)");
    }
    if lower.contains("connection reset by peer") {
        return known("connection reset by the camera");
    }
    if let Some((_, status)) = text.split_once("method ")
        && let Some((_, status)) = status.split_once(" failed: ")
    {
        return known(&format!(
            "the camera refused the request ({})",
            status.trim()
        ));
    }
    if lower.contains("invalid data found when processing input") {
        return Some(Classified {
            message: "invalid data from the camera".to_owned(),
            kind: ErrorKind::InvalidData,
        });
    }
    if matches!(level, Level::Error | Level::Other) {
        return Some(Classified {
            message: text.trim().to_owned(),
            kind: ErrorKind::Other,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_lines(lines: &[&str]) -> Diagnostics {
        let diagnostics = SharedDiagnostics::default();
        let secrets = vec!["hunter2".to_owned()];
        let text = lines.join("\n");
        let mut logged = Vec::new();
        drain(
            text.as_bytes(),
            &mut |_, line: &str| logged.push(line.to_owned()),
            &secrets,
            &diagnostics,
        );
        for line in &logged {
            assert!(!line.contains("hunter2"), "{line}");
        }
        diagnostics.lock().unwrap().clone()
    }

    fn message(lines: &[&str]) -> String {
        classify_lines(lines)
            .error
            .map(|c| c.message)
            .unwrap_or_default()
    }

    #[test]
    fn real_ffmpeg_errors_are_classified() {
        // Lines captured from ffmpeg 5.1 with `-loglevel level+info`.
        assert_eq!(
            message(&[
                "[tcp @ 0x564b00b34cc0] [error] Connection to tcp://127.0.0.1:1?timeout=2000000 failed: Connection refused",
                "[error] rtsp://127.0.0.1:1/x: Connection refused",
            ]),
            "connection refused"
        );
        assert_eq!(
            message(&[
                "[rtsp @ 0x55dce5e44a80] [error] method DESCRIBE failed: 404 Not Found",
                "[error] rtsp://127.0.0.1:18554/nope: Server returned 404 Not Found",
            ]),
            "stream not found (404)"
        );
        assert_eq!(
            message(&[
                "[rtsp @ 0x5604edd87ac0] [error] method DESCRIBE failed: 401 Unauthorized",
                "[error] rtsp://admin:hunter2@127.0.0.1:18555/test: Server returned 401 Unauthorized (authorization failed)",
            ]),
            "authentication failed (401 Unauthorized)"
        );
        assert_eq!(
            message(&[
                "[error] rtsp://127.0.0.1:18999/x: Invalid data found when processing input"
            ]),
            "invalid data from the camera"
        );
        assert_eq!(
            message(&["[rtsp @ 0x1] [error] method SETUP failed: 461 Unsupported transport"]),
            "the camera refused the request (461 Unsupported transport)"
        );
        assert_eq!(
            message(&["[error] something new went wrong"]),
            "something new went wrong"
        );
        // Info lines are never errors; untagged lines (not from ffmpeg's logger) are.
        assert_eq!(
            message(&["[info] Connection refused? no, just chatter"]),
            ""
        );
        assert_eq!(
            message(&["setpriv: failed to execute /usr/bin/ffmpeg: No such file or directory"]),
            "setpriv: failed to execute /usr/bin/ffmpeg: No such file or directory"
        );
    }

    #[test]
    fn a_specific_error_is_not_replaced_by_a_vaguer_one() {
        assert_eq!(
            message(&[
                "[error] method DESCRIBE failed: 401 Unauthorized",
                "[error] Conversion failed!",
            ]),
            "authentication failed (401 Unauthorized)"
        );
    }

    #[test]
    fn secrets_are_scrubbed_before_anything() {
        let d = classify_lines(&["[error] rtsp://admin:hunter2@cam/x: weird hunter2 failure"]);
        let message = d.error.unwrap().message;
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("rtsp://admin:***@cam/x"), "{message}");
    }

    #[test]
    fn input_codec_comes_from_the_input_section_only() {
        let d = classify_lines(&[
            "[info] Input #0, rtsp, from 'rtsp://127.0.0.1:18554/test':",
            "[info]   Stream #0:0: Video: h264 (Constrained Baseline), yuv420p(tv, bt709, progressive), 1280x720",
            "[info] Stream mapping:",
            "[info] Output #0, mjpeg, to 'pipe:1':",
            "[info]   Stream #0:0: Video: mjpeg, yuvj420p(pc, bt709, progressive), 1280x720",
        ]);
        assert_eq!(d.input_codec.as_deref(), Some("h264"));
        let d = classify_lines(&[
            "[info] Input #0, rtsp, from 'rtsp://127.0.0.1:18554/mjpeg':",
            "[info]   Stream #0:0: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 1280x720",
        ]);
        assert_eq!(d.input_codec.as_deref(), Some("mjpeg"));
    }

    #[test]
    fn noise_is_counted_not_kept_and_lines_are_bounded() {
        let noise = "[swscaler @ 0x1] [swscaler @ 0x2] [warning] deprecated pixel format used, make sure you did set range correctly";
        let long = format!("[error] {}", "x".repeat(10 * MAX_LINE));
        let d = classify_lines(&[noise, noise, "\r", &long]);
        assert_eq!(d.noise, 2);
        let message = d.error.unwrap().message;
        assert!(message.len() <= MAX_LINE, "{}", message.len());
    }

    #[test]
    fn levels_and_prefixes() {
        assert_eq!(
            split_level("[tcp @ 0x5] [error] boom"),
            (Level::Error, "boom")
        );
        assert_eq!(split_level("[warning] w"), (Level::Warning, "w"));
        assert_eq!(split_level("[info]   Stream"), (Level::Info, "Stream"));
        assert_eq!(split_level("plain"), (Level::Other, "plain"));
        assert_eq!(split_level("[odd] x"), (Level::Other, "[odd] x"));
    }
}
