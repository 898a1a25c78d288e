//! One upstream connection's messages, turned into host calls: the upstream's state as this
//! source's state, its frames republished as they came.
//!
//! - `hello`/`state`: `retrying` and `failed` upstream → [`SourceState::Retrying`] with
//!   `upstream: <its message>` (the gateway's outage classifier sees through the prefix, so
//!   the downstream cause is the upstream's); `connecting`/`stopped` → `Connecting` the same
//!   way; `live` → nothing yet: the next frame reports `Live`.
//! - `config`: kept, and sent with the next video frame (the host parses a record once and
//!   ignores an unchanged one).
//! - JPEG: the upstream's tag is stripped in place (the host adds its own: one tag per
//!   edge JPEG), its capture time becomes the frame's.
//! - Video: keyframe flag, capture time and access unit as they came.
//! - Sequence numbers: a jump within one track of one connection is told to the host
//!   ([`Host::skipped`]) right before the frame after it, so edge viewers see the same gap.
//!   Numbers are not compared across connections (frames lost while reconnecting are
//!   not counted: the gap is unknown, and a restarted upstream numbers from 1 again).
//!
//! Invariants: no I/O and no clock (the caller passes `now`), so every rule is tested with
//! `camgate_plugin_api::testing::TestHost`; a malformed message is logged (rate-limited)
//! and skipped, never fatal; `Live` is reported only after the host took a frame.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use camgate_plugin_api::{Frame, Host, LogLevel, MediaFrame, SendError, SourceState};
use camgate_plugin_common::ratelimit::LogLimiter;

use crate::protocol::{self, Binary, Status, Text, UpstreamState, VideoConfig};

/// What a relay puts before its upstream's status message (the outage classifier's
/// contract, `gateway/src/hub/outage.rs`).
pub const UPSTREAM_PREFIX: &str = "upstream: ";

/// At most one line per this long about frames the host rejected or messages that could
/// not be read.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The host took a frame.
    Published,
    /// Nothing to publish (a status, a skipped or rejected frame).
    Nothing,
    /// The host closed this source: stop.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Track {
    Jpeg,
    Video,
}

/// One connection's republishing state (see the module docs).
pub struct Republisher<'h> {
    host: &'h Host,
    upstream: Option<UpstreamState>,
    reported_live: bool,
    config: Option<VideoConfig>,
    config_sent: bool,
    last: Option<(Track, u64)>,
    rejected_log: LogLimiter,
    bad_log: LogLimiter,
}

fn at_micros(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

impl<'h> Republisher<'h> {
    /// The state of a connection that has just been opened.
    pub fn new(host: &'h Host) -> Self {
        Republisher {
            host,
            upstream: None,
            reported_live: false,
            config: None,
            config_sent: false,
            last: None,
            rejected_log: LogLimiter::new(LOG_EVERY),
            bad_log: LogLimiter::new(LOG_EVERY),
        }
    }

    /// Whether the upstream said it is live (the stall watchdog applies only then).
    pub fn upstream_live(&self) -> bool {
        self.upstream == Some(UpstreamState::Live)
    }

    /// Handles a text message.
    pub fn text(&mut self, text: &str, now: Instant) -> Outcome {
        match protocol::parse_text(text) {
            Ok(Text::Hello(status) | Text::State(status)) => self.status(status),
            Ok(Text::Config(config)) => {
                if self.config.as_ref() != Some(&config) {
                    self.config = Some(config);
                    self.config_sent = false;
                }
            }
            Ok(Text::Ignored) => {}
            Err(e) => self.bad(&e, now),
        }
        Outcome::Nothing
    }

    fn status(&mut self, status: Status) {
        let was = self.upstream.replace(status.state);
        let state = match status.state {
            UpstreamState::Live => return,
            UpstreamState::Retrying | UpstreamState::Failed => SourceState::Retrying,
            UpstreamState::Connecting | UpstreamState::Stopped => SourceState::Connecting,
        };
        if was == Some(status.state) && status.message.is_empty() {
            return;
        }
        let message = if status.message.is_empty() {
            status.state.as_str()
        } else {
            &status.message
        };
        self.reported_live = false;
        self.host
            .set_state(state, &format!("{UPSTREAM_PREFIX}{message}"));
    }

    /// Handles a binary message (owned: a JPEG's tag is stripped in place).
    pub fn binary(&mut self, mut bytes: Vec<u8>, now: Instant) -> Outcome {
        let parsed = match protocol::parse_binary(&bytes) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.bad(&e, now);
                return Outcome::Nothing;
            }
        };
        let sent = match parsed {
            Binary::Jpeg { tag, width, height } => {
                if let Some(tag) = tag {
                    self.follow(Track::Jpeg, tag.seq);
                }
                let captured_at = tag.map_or_else(SystemTime::now, |t| at_micros(t.captured_at_us));
                let jpeg = protocol::strip_tag(&mut bytes);
                self.host.send_frame(&Frame {
                    jpeg,
                    width,
                    height,
                    captured_at,
                })
            }
            Binary::Video {
                keyframe,
                seq,
                captured_at_us,
                data,
            } => {
                if self.config.is_none() {
                    self.bad(&"a video frame before any config message", now);
                    return Outcome::Nothing;
                }
                self.follow(Track::Video, seq);
                let Some(config) = self.config.as_ref() else {
                    return Outcome::Nothing;
                };
                let sent = self.host.send_media(&MediaFrame {
                    codec: config.codec,
                    keyframe,
                    data,
                    config: (!self.config_sent).then_some(config.description.as_slice()),
                    width: config.width,
                    height: config.height,
                    captured_at: at_micros(captured_at_us),
                });
                if sent.is_ok() {
                    self.config_sent = true;
                }
                sent
            }
        };
        match sent {
            Ok(()) => {
                if !self.reported_live {
                    self.reported_live = true;
                    self.host.set_state(SourceState::Live, "");
                }
                Outcome::Published
            }
            Err(SendError::Closed) => Outcome::Closed,
            Err(SendError::Rejected { status }) => {
                if let Some(count) = self.rejected_log.record(1, now) {
                    self.host.log(
                        LogLevel::Warn,
                        &format!(
                            "the gateway rejected {count} relayed frame(s) (status {status}); \
                             still relaying"
                        ),
                    );
                }
                Outcome::Nothing
            }
        }
    }

    /// Notes frame `seq` of `track` and tells the host about a gap before it.
    fn follow(&mut self, track: Track, seq: u64) {
        let last = self.last.filter(|(t, _)| *t == track).map(|(_, s)| s);
        let skipped = protocol::gap(last, seq);
        if skipped > 0 {
            self.host.skipped(skipped);
        }
        self.last = Some((track, seq));
    }

    fn bad(&mut self, what: &dyn std::fmt::Display, now: Instant) {
        if let Some(count) = self.bad_log.record(1, now) {
            self.host.log(
                LogLevel::Warn,
                &format!(
                    "skipped {count} message(s) from the upstream gateway that could not be \
                     used; last: {what}"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use camgate_plugin_api::Codec;
    use camgate_plugin_api::testing::{Event, TestHost};

    use super::*;

    fn tagged(seq: u64, captured: u64) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xEB, 0, 31];
        out.extend_from_slice(b"CAMG\0");
        for word in [seq, captured, captured + 5] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, 0, 4, 0, 8, 1, 1, 0x11, 0, 0xFF, 0xD9]);
        out
    }

    fn video(keyframe: bool, seq: u64, captured: u64) -> Vec<u8> {
        let mut out = vec![0x01, u8::from(keyframe)];
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&captured.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 2, 0x65, 0x88]);
        out
    }

    const CONFIG: &str = r#"{"type":"config","codec":"avc1.42c01f","width":640,"height":360,"description":"AULAHw=="}"#;

    #[test]
    fn jpegs_go_out_untagged_with_the_upstream_capture_time_and_its_gaps() {
        let test = TestHost::new();
        let host = test.host();
        let now = Instant::now();
        let mut relay = Republisher::new(&host);
        relay.text(r#"{"type":"hello","state":"live","message":""}"#, now);
        assert!(relay.upstream_live());
        for seq in [5, 6, 9] {
            assert_eq!(
                relay.binary(tagged(seq, 1_000 + seq), now),
                Outcome::Published
            );
        }
        // Without `on_skip` the edge would number 1, 2, 3: the gap before 9 would vanish.
        assert_eq!(
            test.events(),
            [
                Event::Frame(0),
                Event::Frame(1),
                Event::Skip(2),
                Event::Frame(2)
            ]
        );
        let frames = test.frames();
        assert_eq!(frames[2].capture_time_us, 1_009);
        assert_eq!((frames[2].width, frames[2].height), (8, 4));
        assert_eq!(
            &frames[2].jpeg[..4],
            &[0xFF, 0xD8, 0xFF, 0xC0],
            "no upstream tag left"
        );
        assert_eq!(test.states(), [(SourceState::Live, String::new())]);
    }

    #[test]
    fn video_goes_out_with_its_config_once_keyframes_capture_times_and_gaps() {
        let test = TestHost::new();
        let host = test.host();
        let now = Instant::now();
        let mut relay = Republisher::new(&host);
        assert_eq!(
            relay.binary(video(true, 1, 10), now),
            Outcome::Nothing,
            "no config yet"
        );
        relay.text(CONFIG, now);
        relay.binary(video(true, 2, 20), now);
        relay.binary(video(false, 3, 30), now);
        relay.binary(video(true, 8, 80), now);
        let media = test.media();
        assert_eq!(media.len(), 3);
        assert_eq!(media[0].codec, Some(Codec::H264));
        assert_eq!(media[0].config.as_deref(), Some(&[1, 0x42, 0xc0, 0x1f][..]));
        assert!(media[0].keyframe && !media[1].keyframe && media[2].keyframe);
        assert_eq!(media[1].config, None, "an unchanged config is not repeated");
        assert_eq!(
            media.iter().map(|m| m.capture_time_us).collect::<Vec<_>>(),
            [20, 30, 80]
        );
        assert_eq!((media[0].width, media[0].height), (640, 360));
        assert_eq!(
            test.events(),
            [
                Event::Media(0),
                Event::Media(1),
                Event::Skip(4),
                Event::Media(2)
            ]
        );
        assert!(
            test.logs()
                .iter()
                .any(|(_, l)| l.contains("before any config")),
            "{:?}",
            test.logs()
        );
    }

    #[test]
    fn upstream_outages_are_reported_with_the_upstream_message() {
        let test = TestHost::new();
        let host = test.host();
        let now = Instant::now();
        let mut relay = Republisher::new(&host);
        relay.text(
            r#"{"type":"hello","state":"retrying","message":"connection refused; retrying in 1.0s (attempt 1)","cause":"unreachable"}"#,
            now,
        );
        assert!(!relay.upstream_live());
        relay.text(
            r#"{"type":"state","state":"failed","message":"gave up","cause":"error"}"#,
            now,
        );
        relay.text(r#"{"type":"state","state":"stopped","message":""}"#, now);
        relay.text(
            r#"{"type":"state","state":"connecting","message":"connecting to rtsp://cam/x"}"#,
            now,
        );
        relay.text(r#"{"type":"state","state":"live","message":""}"#, now);
        relay.binary(tagged(1, 1), now);
        assert_eq!(
            test.states(),
            [
                (
                    SourceState::Retrying,
                    "upstream: connection refused; retrying in 1.0s (attempt 1)".to_owned()
                ),
                (SourceState::Retrying, "upstream: gave up".to_owned()),
                (SourceState::Connecting, "upstream: stopped".to_owned()),
                (
                    SourceState::Connecting,
                    "upstream: connecting to rtsp://cam/x".to_owned()
                ),
                (SourceState::Live, String::new()),
            ]
        );
    }

    #[test]
    fn bad_messages_are_skipped_and_logged_rate_limited() {
        let test = TestHost::new();
        let host = test.host();
        let now = Instant::now();
        let mut relay = Republisher::new(&host);
        for _ in 0..3 {
            assert_eq!(relay.binary(vec![0x02, 1, 2], now), Outcome::Nothing);
            relay.text("{", now);
        }
        assert_eq!(test.logs().len(), 1, "{:?}", test.logs());
        assert!(relay.binary(tagged(1, 1), now) == Outcome::Published);
    }

    #[test]
    fn a_closed_host_ends_the_run() {
        let test = TestHost::new();
        test.answer_frames_with([camgate_plugin_api::abi::STATUS_CLOSED]);
        let host = test.host();
        let mut relay = Republisher::new(&host);
        assert_eq!(relay.binary(tagged(1, 1), Instant::now()), Outcome::Closed);
    }
}
