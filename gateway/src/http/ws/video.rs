//! The passthrough formats of the viewing protocol: a viewer that asks for `format=h264`,
//! `h265` or `auto` gets the camera's own coding instead of JPEGs.
//!
//! Messages (README, "Viewing protocol"):
//! - `{"type":"config","codec":"<RFC 6381>","width":W,"height":H,"description":"<base64>"}`
//!   before the first frame and again whenever the stream's configuration changes;
//! - binary: an 18-byte header (kind `0x01`, flags with bit 0 = keyframe, sequence number
//!   and capture time as big-endian `u64`), then the access unit as the hub holds it
//!   (AVCC/HVCC: a 4-byte big-endian length before each NAL unit).
//!
//! Invariants:
//! - A viewer's frames run from a keyframe without a gap: it is sent the hub's current GOP
//!   when it joins, then each frame in order; one that falls behind skips to the next
//!   keyframe (`hub::Gop::catch_up`), and the skip is reported as `dropped`.
//! - A frame's message is made once and shared by every viewer (a frame representation,
//!   `hub::Derived`): the copy is per frame, not per viewer.
//! - `auto` resolves to the stream's native codec when it is H.264/H.265, else to MJPEG;
//!   while the stream has not said (its first frame), the viewer is sent no frame.

use std::sync::Arc;

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::hub::{Codec, Frame, VideoConfig};

/// Bytes before the access unit in a video message.
pub const VIDEO_HEADER_LEN: usize = 18;
/// First byte of a video message (a JPEG message starts with `0xFF`).
pub const KIND_VIDEO: u8 = 0x01;
/// Flag bit: the frame is a keyframe.
pub const FLAG_KEYFRAME: u8 = 0x01;

/// What a viewer asked for with `format=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// JPEG frames (the default, today's protocol).
    Mjpeg,
    /// The native codec if it is a video codec, else JPEG.
    Auto,
    /// H.264 passthrough only.
    H264,
    /// H.265 passthrough only.
    H265,
}

/// What a socket carries, once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG frames.
    Mjpeg,
    /// The stream's own video coding.
    Video(Codec),
}

impl Format {
    /// The name in `hello`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Mjpeg => "mjpeg",
            Format::Video(codec) => codec.as_str(),
        }
    }
}

/// A `format` query parameter that names no format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("format must be one of auto, h264, h265, mjpeg")]
pub struct BadFormat;

/// The stream's codec is not the one the viewer insisted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stream is {}, not {}", native.as_str(), wanted.as_str())]
pub struct Unavailable {
    /// What the viewer asked for.
    pub wanted: Codec,
    /// What the stream is.
    pub native: Codec,
}

impl Unavailable {
    /// The close reason (a `'static` text, as close reasons are).
    pub fn reason(self) -> &'static str {
        match (self.wanted, self.native) {
            (Codec::H264, Codec::H265) => "format unavailable: the stream is h265",
            (Codec::H265, Codec::H264) => "format unavailable: the stream is h264",
            _ => "format unavailable: the stream is jpeg",
        }
    }
}

/// Reads the `format` query parameter (`mjpeg` when absent).
pub fn parse_format(query: Option<&str>) -> Result<Requested, BadFormat> {
    let value = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("format="));
    match value {
        None | Some("mjpeg") => Ok(Requested::Mjpeg),
        Some("auto") => Ok(Requested::Auto),
        Some("h264") => Ok(Requested::H264),
        Some("h265") => Ok(Requested::H265),
        Some(_) => Err(BadFormat),
    }
}

impl Requested {
    /// What the socket carries for a stream whose native codec is `native` (`Ok(None)`:
    /// not known yet, decide on the first frame).
    pub fn resolve(self, native: Option<Codec>) -> Result<Option<Format>, Unavailable> {
        let wanted = match self {
            Requested::Mjpeg => return Ok(Some(Format::Mjpeg)),
            Requested::Auto => {
                return Ok(native.map(|codec| match codec {
                    Codec::Jpeg => Format::Mjpeg,
                    video => Format::Video(video),
                }));
            }
            Requested::H264 => Codec::H264,
            Requested::H265 => Codec::H265,
        };
        match native {
            None => Ok(None),
            Some(native) if native == wanted => Ok(Some(Format::Video(wanted))),
            Some(native) => Err(Unavailable { wanted, native }),
        }
    }
}

/// The `config` message.
#[derive(Serialize)]
struct ConfigMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    codec: &'a str,
    width: u32,
    height: u32,
    description: String,
}

/// The `config` message for `config` (JSON text).
pub fn config_message(config: &VideoConfig) -> Bytes {
    let message = ConfigMessage {
        kind: "config",
        codec: &config.codec_string,
        width: config.width,
        height: config.height,
        description: base64::engine::general_purpose::STANDARD.encode(&config.description),
    };
    Bytes::from(serde_json::to_vec(&message).unwrap_or_default())
}

/// A frame's video message (header and access unit), made once per frame and shared.
struct VideoMessage(Bytes);

/// The binary message for a video `frame`: made on first use, shared by every viewer.
pub fn frame_message(frame: &Frame) -> Bytes {
    let make = || {
        let mut out = BytesMut::with_capacity(VIDEO_HEADER_LEN + frame.data.len());
        out.put_u8(KIND_VIDEO);
        out.put_u8(if frame.keyframe { FLAG_KEYFRAME } else { 0 });
        out.put_u64(frame.seq);
        out.put_u64(frame.captured_at_us);
        out.put_slice(&frame.data);
        VideoMessage(out.freeze())
    };
    match frame.derived.get_or_init(make) {
        Some(message) => message.0.clone(),
        // Every slot taken by other representations: make it for this viewer alone.
        None => make().0,
    }
}

/// Whether `config` is the one a viewer was last sent (the same shared value, or equal).
pub fn same_config(sent: Option<&Arc<VideoConfig>>, config: &Arc<VideoConfig>) -> bool {
    sent.is_some_and(|sent| Arc::ptr_eq(sent, config) || **sent == **config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_parameter_names_a_format_and_defaults_to_mjpeg() {
        assert_eq!(parse_format(None), Ok(Requested::Mjpeg));
        assert_eq!(parse_format(Some("max_fps=5")), Ok(Requested::Mjpeg));
        assert_eq!(
            parse_format(Some("format=auto&credit=1")),
            Ok(Requested::Auto)
        );
        assert_eq!(parse_format(Some("x=1&format=h264")), Ok(Requested::H264));
        assert_eq!(parse_format(Some("format=h265")), Ok(Requested::H265));
        assert_eq!(parse_format(Some("format=mjpeg")), Ok(Requested::Mjpeg));
        for bad in ["format=", "format=H264", "format=vp8", "format=auto "] {
            assert_eq!(parse_format(Some(bad)), Err(BadFormat), "{bad}");
        }
    }

    #[test]
    fn auto_follows_the_native_codec_and_explicit_codecs_must_match() {
        use Codec::*;
        assert_eq!(Requested::Auto.resolve(None), Ok(None));
        assert_eq!(Requested::Auto.resolve(Some(Jpeg)), Ok(Some(Format::Mjpeg)));
        assert_eq!(
            Requested::Auto.resolve(Some(H265)),
            Ok(Some(Format::Video(H265)))
        );
        assert_eq!(
            Requested::Mjpeg.resolve(Some(H264)),
            Ok(Some(Format::Mjpeg))
        );
        assert_eq!(Requested::H264.resolve(None), Ok(None));
        assert_eq!(
            Requested::H264.resolve(Some(H264)),
            Ok(Some(Format::Video(H264)))
        );
        let wrong = Requested::H264.resolve(Some(H265)).unwrap_err();
        assert_eq!(wrong.reason(), "format unavailable: the stream is h265");
        let wrong = Requested::H265.resolve(Some(Jpeg)).unwrap_err();
        assert_eq!(wrong.reason(), "format unavailable: the stream is jpeg");
    }

    #[test]
    fn a_frame_message_is_the_header_then_the_access_unit_made_once() {
        let mut frame = Frame::for_test(0x0102, Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]));
        frame.codec = Codec::H264;
        frame.keyframe = true;
        frame.captured_at_us = 0x1122_3344_5566;
        let message = frame_message(&frame);
        assert_eq!(message.len(), VIDEO_HEADER_LEN + 6);
        assert_eq!(&message[..2], &[KIND_VIDEO, FLAG_KEYFRAME]);
        assert_eq!(&message[2..10], &0x0102u64.to_be_bytes());
        assert_eq!(&message[10..18], &0x1122_3344_5566u64.to_be_bytes());
        assert_eq!(&message[18..], &frame.data[..]);
        // Shared: the second viewer gets the same buffer.
        assert_eq!(frame_message(&frame).as_ptr(), message.as_ptr());
    }

    #[test]
    fn the_config_message_carries_the_description_in_base64() {
        let config = VideoConfig {
            codec: Codec::H264,
            codec_string: "avc1.64001f".into(),
            width: 1280,
            height: 720,
            description: Bytes::from_static(&[1, 0x64, 0, 0x1f]),
        };
        let json: serde_json::Value = serde_json::from_slice(&config_message(&config)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "config", "codec": "avc1.64001f", "width": 1280, "height": 720, "description": "AWQAHw=="})
        );
    }
}
