//! From the RTSP client's frames to the host: which frames go out, with which decoder
//! configuration, and the one place that publishes them ([`publish`]).
//!
//! [`Gate`] decides per frame, without any I/O (so its rules are unit-tested):
//! - nothing goes out before the first keyframe (a decoder cannot start elsewhere);
//! - a frame after lost RTP packets that is not a keyframe is dropped, and so is
//!   everything up to the next keyframe (its references may be broken); the loss is logged,
//!   rate-limited;
//! - H.264/H.265: the decoder configuration record (avcC/hvcC) goes with the first frame
//!   out and again with the first frame after it changes; `None` otherwise.
//!
//! Data format (the plugin API's media frame): H.264/H.265 → one access unit, each NAL unit
//! prefixed by its 4-byte big-endian length, parameter sets not repeated in it (they are in
//! the configuration); MJPEG → one complete JPEG per frame.
//!
//! Invariant: a [`Gate`] lives for one RTSP session: a new session starts over (waits for a
//! keyframe, sends the configuration again).

use std::time::{Duration, Instant, SystemTime};

use camgate_plugin_api::{Codec, Frame, Host, MediaFrame, SendError};
use camgate_plugin_common::ratelimit::LogLimiter;

/// At most one "packets lost" log line per this long (the first one at once).
pub const LOSS_LOG_EVERY: Duration = Duration::from_secs(10);

/// The codec of an SDP encoding name (lowercase, as the RTSP client reports it); `None`
/// for one this plugin does not pass through.
pub fn codec_of_encoding(name: &str) -> Option<Codec> {
    match name {
        "h264" => Some(Codec::H264),
        "h265" => Some(Codec::H265),
        "jpeg" => Some(Codec::Jpeg),
        _ => None,
    }
}

/// A short name of `codec` for messages.
pub fn codec_name(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 => "H.264",
        Codec::H265 => "H.265",
        Codec::Jpeg => "MJPEG",
    }
}

/// One frame on its way to the host.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The codec.
    pub codec: Codec,
    /// Decodable on its own (IDR/IRAP; every JPEG).
    pub keyframe: bool,
    /// The access unit (AVCC/HVCC) or the JPEG.
    pub data: &'a [u8],
    /// avcC/hvcC when it is new; always `None` for JPEG.
    pub config: Option<&'a [u8]>,
    /// Coded width in pixels.
    pub width: u32,
    /// Coded height in pixels.
    pub height: u32,
    /// Arrival time (wall clock).
    pub captured_at: SystemTime,
}

/// The one place frames leave the plugin: JPEGs as plain JPEG frames (what `ffmpeg-mjpeg`
/// publishes), video as media frames.
pub fn publish(host: &Host, frame: &Outgoing<'_>) -> Result<(), SendError> {
    match frame.codec {
        Codec::Jpeg => host.send_frame(&Frame {
            jpeg: frame.data,
            width: frame.width,
            height: frame.height,
            captured_at: frame.captured_at,
        }),
        Codec::H264 | Codec::H265 => host.send_media(&MediaFrame {
            codec: frame.codec,
            keyframe: frame.keyframe,
            data: frame.data,
            config: frame.config,
            width: frame.width,
            height: frame.height,
            captured_at: frame.captured_at,
        }),
    }
}

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Publish it.
    Publish,
    /// Drop it: no keyframe yet since the start or since a loss.
    Skip,
}

/// Per-session frame admission and configuration tracking (see the module docs).
#[derive(Debug)]
pub struct Gate {
    waiting_for_keyframe: bool,
    sent_config: Option<Vec<u8>>,
    loss_log: LogLimiter,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            waiting_for_keyframe: true,
            sent_config: None,
            loss_log: LogLimiter::new(LOSS_LOG_EVERY),
        }
    }
}

impl Gate {
    /// Decides about a frame that follows `loss` lost RTP packets. Returns the verdict and,
    /// when a loss line is due, the number of packets to report in it.
    pub fn admit(&mut self, keyframe: bool, loss: u16, now: Instant) -> (Verdict, Option<u64>) {
        let report = if loss > 0 {
            if !keyframe {
                self.waiting_for_keyframe = true;
            }
            self.loss_log.record(u64::from(loss), now)
        } else {
            None
        };
        if keyframe {
            self.waiting_for_keyframe = false;
        }
        let verdict = if self.waiting_for_keyframe {
            Verdict::Skip
        } else {
            Verdict::Publish
        };
        (verdict, report)
    }

    /// The configuration to send with the next frame: `config` if it differs from the last
    /// one the host took (or the host took none yet), else `None`.
    pub fn config_for<'a>(&self, config: &'a [u8]) -> Option<&'a [u8]> {
        (self.sent_config.as_deref() != Some(config)).then_some(config)
    }

    /// The host took a frame that carried `config`: later frames need not repeat it. (A
    /// frame the host rejected did not deliver its configuration: the next one carries it
    /// again.)
    pub fn config_delivered(&mut self, config: &[u8]) {
        self.sent_config = Some(config.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_goes_out_before_the_first_keyframe() {
        let now = Instant::now();
        let mut gate = Gate::default();
        assert_eq!(gate.admit(false, 0, now).0, Verdict::Skip);
        assert_eq!(gate.admit(false, 0, now).0, Verdict::Skip);
        assert_eq!(gate.admit(true, 0, now).0, Verdict::Publish);
        assert_eq!(gate.admit(false, 0, now).0, Verdict::Publish);
    }

    #[test]
    fn a_loss_skips_to_the_next_keyframe_and_is_logged_rate_limited() {
        let t0 = Instant::now();
        let mut gate = Gate::default();
        gate.admit(true, 0, t0);
        assert_eq!(gate.admit(false, 3, t0), (Verdict::Skip, Some(3)));
        assert_eq!(gate.admit(false, 0, t0), (Verdict::Skip, None));
        // A second loss within the interval is counted, not logged.
        assert_eq!(gate.admit(false, 2, t0), (Verdict::Skip, None));
        // A keyframe right after a loss is decodable: it goes out.
        assert_eq!(
            gate.admit(true, 1, t0 + LOSS_LOG_EVERY),
            (Verdict::Publish, Some(3))
        );
        assert_eq!(gate.admit(false, 0, t0).0, Verdict::Publish);
    }

    #[test]
    fn the_config_goes_with_the_first_frame_and_again_when_it_changes() {
        let mut gate = Gate::default();
        assert_eq!(gate.config_for(b"avcC-1"), Some(&b"avcC-1"[..]));
        // Not delivered (the host rejected the frame): still pending.
        assert_eq!(gate.config_for(b"avcC-1"), Some(&b"avcC-1"[..]));
        gate.config_delivered(b"avcC-1");
        assert_eq!(gate.config_for(b"avcC-1"), None);
        assert_eq!(gate.config_for(b"avcC-2"), Some(&b"avcC-2"[..]));
        gate.config_delivered(b"avcC-2");
        assert_eq!(gate.config_for(b"avcC-2"), None);
    }

    #[test]
    fn codecs_from_sdp_names() {
        assert_eq!(codec_of_encoding("h264"), Some(Codec::H264));
        assert_eq!(codec_of_encoding("h265"), Some(Codec::H265));
        assert_eq!(codec_of_encoding("jpeg"), Some(Codec::Jpeg));
        assert_eq!(codec_of_encoding("mp4v-es"), None);
    }
}
