//! The upstream gateway's messages, read as a viewer reads them (README, "Viewing
//! protocol"): pure functions from bytes to values, with no I/O and no clock, so every rule
//! is unit-tested and the whole module is fuzzed (`fuzz/src/bin/relay_protocol.rs`).
//!
//! - Text: `hello` and `state` (the upstream's state, message and outage cause), `config`
//!   (codec string, size, base64 avcC/hvcC); everything else (`health`, `dropped`, types a
//!   later gateway adds) is [`Text::Ignored`].
//! - Binary: a JPEG (`0xFF` first) with the Camgate APP11 tag right after SOI (sequence
//!   number, capture time), or a video frame (`0x01` first) with its 18-byte header
//!   (keyframe flag, sequence number, capture time) before one AVCC/HVCC access unit.
//! - [`strip_tag`] removes the upstream's tag from a JPEG in place (the host adds its own:
//!   an edge viewer's JPEG carries exactly one tag).
//!
//! Invariants: nothing here panics or allocates more than the input's size on any input;
//! a parsed video frame's access unit is non-empty; a parsed config's description is
//! non-empty.

use base64::Engine as _;
use camgate_plugin_api::Codec;
use serde::Deserialize;

/// Length of the APP11 segment the gateway puts after SOI (marker, length, `CAMG\0`, three
/// big-endian `u64`).
pub const TAG_LEN: usize = 2 + 2 + 5 + 24;
/// Length of a video message's header.
pub const VIDEO_HEADER_LEN: usize = 18;
const TAG_IDENT: &[u8; 5] = b"CAMG\0";
const KIND_VIDEO: u8 = 0x01;
const FLAG_KEYFRAME: u8 = 0x01;

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A text message that is not the JSON the protocol says.
    #[error("a text message that is not protocol JSON ({0})")]
    Json(String),
    /// A `config` message whose codec the relay does not know.
    #[error("a config message for codec `{0}` (known: avc1.*, hvc1.*, hev1.*)")]
    Codec(String),
    /// A `config` message whose description is not base64 of a non-empty record.
    #[error("a config message without a usable description")]
    Description,
    /// A binary message that is neither a JPEG nor a video frame.
    #[error("a binary message of {len} bytes that is neither a JPEG nor a video frame")]
    Binary {
        /// Its length.
        len: usize,
    },
}

/// The upstream stream's state as its messages say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamState {
    /// No source runs there.
    Stopped,
    /// Its source is starting.
    Connecting,
    /// Frames flow.
    Live,
    /// Its source lost its input and retries.
    Retrying,
    /// Its source gave up.
    Failed,
}

impl UpstreamState {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "stopped" => UpstreamState::Stopped,
            "connecting" => UpstreamState::Connecting,
            "live" => UpstreamState::Live,
            "retrying" => UpstreamState::Retrying,
            "failed" => UpstreamState::Failed,
            _ => return None,
        })
    }

    /// The protocol's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamState::Stopped => "stopped",
            UpstreamState::Connecting => "connecting",
            UpstreamState::Live => "live",
            UpstreamState::Retrying => "retrying",
            UpstreamState::Failed => "failed",
        }
    }
}

/// A `hello` or `state`: where the upstream stream stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Its state.
    pub state: UpstreamState,
    /// Its status message (may be empty).
    pub message: String,
    /// Its outage cause word, while retrying or failed.
    pub cause: Option<String>,
}

/// The decoder configuration the upstream announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// H.264 or H.265, from the RFC 6381 codec string.
    pub codec: Codec,
    /// Coded width.
    pub width: u32,
    /// Coded height.
    pub height: u32,
    /// The avcC/hvcC record.
    pub description: Vec<u8>,
}

/// A text message, as far as the relay cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// `hello`: the first message, with the current status.
    Hello(Status),
    /// `state`: a status change.
    State(Status),
    /// `config`: the video configuration for the frames that follow.
    Config(VideoConfig),
    /// Anything else (`health`, `dropped`, a state or type this relay does not know).
    Ignored,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum RawText {
    Hello {
        state: String,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        cause: Option<String>,
    },
    State {
        state: String,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        cause: Option<String>,
    },
    Config {
        codec: String,
        width: u32,
        height: u32,
        description: String,
    },
    #[serde(other)]
    Other,
}

/// The codec of an RFC 6381 codec string, `None` for one the relay does not carry.
pub fn codec_of(codec_string: &str) -> Option<Codec> {
    let family = codec_string.split('.').next().unwrap_or_default();
    match family {
        "avc1" | "avc3" => Some(Codec::H264),
        "hvc1" | "hev1" => Some(Codec::H265),
        _ => None,
    }
}

/// Reads a text message.
pub fn parse_text(text: &str) -> Result<Text, ProtocolError> {
    let raw: RawText =
        serde_json::from_str(text).map_err(|e| ProtocolError::Json(e.to_string()))?;
    let status = |state: String, message: Option<String>, cause: Option<String>| {
        UpstreamState::parse(&state).map(|state| Status {
            state,
            message: message.unwrap_or_default(),
            cause,
        })
    };
    Ok(match raw {
        RawText::Hello {
            state,
            message,
            cause,
        } => status(state, message, cause).map_or(Text::Ignored, Text::Hello),
        RawText::State {
            state,
            message,
            cause,
        } => status(state, message, cause).map_or(Text::Ignored, Text::State),
        RawText::Config {
            codec,
            width,
            height,
            description,
        } => {
            let Some(kind) = codec_of(&codec) else {
                return Err(ProtocolError::Codec(codec.chars().take(40).collect()));
            };
            let description = base64::engine::general_purpose::STANDARD
                .decode(description.as_bytes())
                .ok()
                .filter(|d| !d.is_empty())
                .ok_or(ProtocolError::Description)?;
            Text::Config(VideoConfig {
                codec: kind,
                width,
                height,
                description,
            })
        }
        RawText::Other => Text::Ignored,
    })
}

/// The upstream's APP11 tag of a JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// The upstream's sequence number.
    pub seq: u64,
    /// Capture time, µs since the Unix epoch.
    pub captured_at_us: u64,
}

/// A binary message, as far as the relay cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary<'a> {
    /// A JPEG (with its upstream tag, if it has one: see [`strip_tag`]).
    Jpeg {
        /// The upstream's tag.
        tag: Option<Tag>,
        /// Picture size from its frame header (0 × 0 when it has none).
        width: u32,
        /// Height, see `width`.
        height: u32,
    },
    /// One video access unit.
    Video {
        /// Decodable on its own.
        keyframe: bool,
        /// The upstream's sequence number.
        seq: u64,
        /// Capture time, µs since the Unix epoch.
        captured_at_us: u64,
        /// The access unit (AVCC/HVCC), non-empty.
        data: &'a [u8],
    },
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(word)
}

/// Reads the tag right after SOI, if the JPEG has one.
pub fn read_tag(jpeg: &[u8]) -> Option<Tag> {
    let segment = jpeg.get(2..2 + TAG_LEN)?;
    let length_ok = u16::from_be_bytes([segment[2], segment[3]]) as usize == TAG_LEN - 2;
    if jpeg[..2] != [0xFF, 0xD8] || segment[..2] != [0xFF, 0xEB] || !length_ok {
        return None;
    }
    if &segment[4..9] != TAG_IDENT {
        return None;
    }
    Some(Tag {
        seq: be_u64(&segment[9..]),
        captured_at_us: be_u64(&segment[17..]),
    })
}

/// The picture size from a JPEG's frame header (SOFn), scanning the segments before the
/// scan data; `None` if there is none where it should be.
pub fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    loop {
        let marker = jpeg.get(at..at + 2)?;
        if marker[0] != 0xFF {
            return None;
        }
        let kind = marker[1];
        if kind == 0xFF {
            at += 1; // fill byte
            continue;
        }
        if kind == 0xDA || kind == 0xD9 {
            return None; // scan data or the end before any frame header
        }
        let length = usize::from(u16::from_be_bytes(
            jpeg.get(at + 2..at + 4)?.try_into().ok()?,
        ));
        let is_sof = matches!(kind, 0xC0..=0xCF) && !matches!(kind, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let header = jpeg.get(at + 4..at + 9)?;
            let height = u16::from_be_bytes([header[1], header[2]]);
            let width = u16::from_be_bytes([header[3], header[4]]);
            return Some((u32::from(width), u32::from(height)));
        }
        if length < 2 {
            return None;
        }
        at += 2 + length;
    }
}

/// Reads a binary message.
pub fn parse_binary(bytes: &[u8]) -> Result<Binary<'_>, ProtocolError> {
    let refuse = || ProtocolError::Binary { len: bytes.len() };
    match bytes.first() {
        Some(0xFF) => {
            let whole = bytes.len() >= 4
                && bytes[..2] == [0xFF, 0xD8]
                && bytes[bytes.len() - 2..] == [0xFF, 0xD9];
            if !whole {
                return Err(refuse());
            }
            let tag = read_tag(bytes);
            let body = if tag.is_some() { TAG_LEN } else { 0 };
            let (width, height) = jpeg_size(&bytes[body..]).unwrap_or((0, 0));
            Ok(Binary::Jpeg { tag, width, height })
        }
        Some(&KIND_VIDEO) if bytes.len() > VIDEO_HEADER_LEN => Ok(Binary::Video {
            keyframe: bytes[1] & FLAG_KEYFRAME != 0,
            seq: be_u64(&bytes[2..]),
            captured_at_us: be_u64(&bytes[10..]),
            data: &bytes[VIDEO_HEADER_LEN..],
        }),
        _ => Err(refuse()),
    }
}

/// The JPEG without its upstream tag, made in place: SOI is written over the end of the tag
/// and the JPEG starts there. A JPEG without a tag is returned whole.
pub fn strip_tag(jpeg: &mut [u8]) -> &[u8] {
    if read_tag(jpeg).is_none() {
        return jpeg;
    }
    jpeg[TAG_LEN..TAG_LEN + 2].copy_from_slice(&[0xFF, 0xD8]);
    &jpeg[TAG_LEN..]
}

/// How many frames the upstream skipped between `last` and `seq` (0 for the first frame,
/// the next one, or a number that does not move forward).
pub fn gap(last: Option<u64>, seq: u64) -> u64 {
    last.map_or(0, |last| seq.saturating_sub(last).saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tagged JPEG as the gateway sends it: SOI, APP11 tag, an 8×4 frame header, EOI.
    fn tagged(seq: u64, captured: u64) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xEB, 0, 31];
        out.extend_from_slice(TAG_IDENT);
        for word in [seq, captured, captured + 5] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&[0xFF, 0xE0, 0, 4, b'J', b'F']);
        out.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, 0, 4, 0, 8, 1, 1, 0x11, 0]);
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    #[test]
    fn a_tagged_jpeg_gives_its_numbers_size_and_untagged_bytes() {
        let mut jpeg = tagged(41, 1_767_225_600_000_000);
        match parse_binary(&jpeg).unwrap() {
            Binary::Jpeg { tag, width, height } => {
                assert_eq!(
                    tag,
                    Some(Tag {
                        seq: 41,
                        captured_at_us: 1_767_225_600_000_000
                    })
                );
                assert_eq!((width, height), (8, 4));
            }
            other => panic!("{other:?}"),
        }
        let expected: Vec<u8> = [&[0xFF, 0xD8][..], &jpeg[2 + TAG_LEN..]].concat();
        let stripped = strip_tag(&mut jpeg).to_vec();
        assert_eq!(stripped, expected);
        assert_eq!(read_tag(&stripped), None, "exactly one tag is gone");
        assert_eq!(jpeg_size(&stripped), Some((8, 4)));
        // Untagged: unchanged.
        let mut plain = stripped.clone();
        assert_eq!(strip_tag(&mut plain), &stripped[..]);
    }

    #[test]
    fn a_video_message_gives_its_header_and_access_unit() {
        let mut message = vec![0x01, 0x01];
        message.extend_from_slice(&7u64.to_be_bytes());
        message.extend_from_slice(&99u64.to_be_bytes());
        message.extend_from_slice(&[0, 0, 0, 1, 0x65]);
        assert_eq!(
            parse_binary(&message).unwrap(),
            Binary::Video {
                keyframe: true,
                seq: 7,
                captured_at_us: 99,
                data: &[0, 0, 0, 1, 0x65]
            }
        );
        message[1] = 0;
        assert!(matches!(
            parse_binary(&message).unwrap(),
            Binary::Video {
                keyframe: false,
                ..
            }
        ));
        // A header alone, other kinds, a cut JPEG: refused.
        for bad in [
            &message[..18],
            &[0x02, 0, 0][..],
            &[0xFF, 0xD8, 0xFF][..],
            &[][..],
        ] {
            assert!(parse_binary(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_messages_say_state_cause_and_config() {
        let hello = r#"{"type":"hello","stream":"a","name":"A","fps":10,"width":8,"height":4,
            "state":"retrying","message":"connection refused; retrying in 1.0s (attempt 1)",
            "cause":"unreachable","codec":null,"format":null,"variant":"main",
            "server_time_us":1}"#;
        assert_eq!(
            parse_text(hello).unwrap(),
            Text::Hello(Status {
                state: UpstreamState::Retrying,
                message: "connection refused; retrying in 1.0s (attempt 1)".into(),
                cause: Some("unreachable".into()),
            })
        );
        assert_eq!(
            parse_text(r#"{"type":"state","state":"live","message":"","cause":null}"#).unwrap(),
            Text::State(Status {
                state: UpstreamState::Live,
                message: String::new(),
                cause: None
            })
        );
        let config = r#"{"type":"config","codec":"avc1.42c01f","width":640,"height":360,
            "description":"AULAHw=="}"#;
        assert_eq!(
            parse_text(config).unwrap(),
            Text::Config(VideoConfig {
                codec: Codec::H264,
                width: 640,
                height: 360,
                description: vec![1, 0x42, 0xc0, 0x1f],
            })
        );
        for ignored in [
            r#"{"type":"health","health":"ok","since":"x"}"#,
            r#"{"type":"dropped","frames":3}"#,
            r#"{"type":"state","state":"sleeping"}"#,
            r#"{"type":"future","x":1}"#,
        ] {
            assert_eq!(parse_text(ignored).unwrap(), Text::Ignored, "{ignored}");
        }
        assert!(matches!(
            parse_text(
                r#"{"type":"config","codec":"vp09.00","width":1,"height":1,"description":"AA=="}"#
            ),
            Err(ProtocolError::Codec(_))
        ));
        assert_eq!(
            parse_text(
                r#"{"type":"config","codec":"hev1.1","width":1,"height":1,"description":"!"}"#
            ),
            Err(ProtocolError::Description)
        );
        assert!(parse_text("not json").is_err());
        assert!(parse_text(r#"{"state":"live"}"#).is_err());
    }

    #[test]
    fn gaps_count_the_numbers_in_between() {
        assert_eq!(gap(None, 50), 0, "the first frame has no gap");
        assert_eq!(gap(Some(4), 5), 0);
        assert_eq!(gap(Some(4), 9), 4);
        assert_eq!(gap(Some(9), 9), 0);
        assert_eq!(
            gap(Some(9), 3),
            0,
            "numbers going back (a restarted upstream)"
        );
        assert_eq!(gap(Some(0), u64::MAX), u64::MAX - 1);
    }

    #[test]
    fn codec_strings() {
        assert_eq!(codec_of("avc1.64001f"), Some(Codec::H264));
        assert_eq!(codec_of("hvc1.1.6.L93.B0"), Some(Codec::H265));
        assert_eq!(codec_of("hev1.1"), Some(Codec::H265));
        assert_eq!(codec_of("jpeg"), None);
    }
}
