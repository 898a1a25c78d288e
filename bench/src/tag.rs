//! Reads the Camgate APP11 segment (`CAMG\0` + seq, capture µs, publish µs as big-endian
//! `u64`) that the gateway inserts right after SOI of every JPEG it fans out, and the
//! 18-byte header of the passthrough protocol's video messages.
//!
//! This mirrors `camgate::hub::read_tag` and the gateway's video header on purpose: the
//! load tool must not depend on the gateway crate (it also measures other servers), and the
//! gateway's smoke test checks that the readers agree on real frames.

/// The values the segment carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTag {
    /// The hub's per-stream sequence number (1, 2, 3, ...).
    pub seq: u64,
    /// Capture time, µs since the Unix epoch.
    pub captured_at_us: u64,
    /// Time the hub published the frame, µs since the Unix epoch.
    pub published_at_us: u64,
}

/// Length of the segment: marker (2) + length (2) + `CAMG\0` (5) + three `u64`.
pub const TAG_LEN: usize = 2 + 2 + 5 + 24;

/// The tag of `jpeg`, or `None` for a JPEG without one (e.g. from another server).
pub fn read_tag(jpeg: &[u8]) -> Option<FrameTag> {
    let segment = jpeg.get(2..2 + TAG_LEN)?;
    if jpeg[..2] != [0xFF, 0xD8] || segment[..2] != [0xFF, 0xEB] || &segment[4..9] != b"CAMG\0" {
        return None;
    }
    let word = |i: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&segment[9 + i * 8..17 + i * 8]);
        u64::from_be_bytes(bytes)
    };
    Some(FrameTag {
        seq: word(0),
        captured_at_us: word(1),
        published_at_us: word(2),
    })
}

/// First byte of a video message of the passthrough protocol (a JPEG starts with `0xFF`).
pub const VIDEO_KIND: u8 = 0x01;
/// Bytes before the access unit in a video message.
pub const VIDEO_HEADER_LEN: usize = 18;

/// The header of a video message (`?format=h264|h265|auto`, README "Passthrough"): byte 0
/// `0x01`, byte 1 flags (bit 0 keyframe), sequence number and capture time (µs since the
/// Unix epoch) as big-endian `u64`, then the access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoHeader {
    /// The frame is a keyframe (IDR / IRAP).
    pub keyframe: bool,
    /// The stream's video sequence number (a gap = frames this viewer skipped).
    pub seq: u64,
    /// Capture time, µs since the Unix epoch.
    pub captured_at_us: u64,
}

/// The header of `message` if it is a video message (starts with [`VIDEO_KIND`] and is
/// long enough), else `None` (a JPEG, or something else).
pub fn read_video_header(message: &[u8]) -> Option<VideoHeader> {
    let header = message.get(..VIDEO_HEADER_LEN)?;
    if header[0] != VIDEO_KIND {
        return None;
    }
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&header[at..at + 8]);
        u64::from_be_bytes(bytes)
    };
    Some(VideoHeader {
        keyframe: header[1] & 0x01 != 0,
        seq: word(2),
        captured_at_us: word(10),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tag_and_refuses_other_jpegs() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xEB, 0, 31];
        jpeg.extend_from_slice(b"CAMG\0");
        for v in [7u64, 1_000, 2_000] {
            jpeg.extend_from_slice(&v.to_be_bytes());
        }
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(
            read_tag(&jpeg),
            Some(FrameTag {
                seq: 7,
                captured_at_us: 1_000,
                published_at_us: 2_000
            })
        );
        assert_eq!(read_tag(&[0xFF, 0xD8, 0xFF, 0xD9]), None);
        jpeg[5] = b'X';
        jpeg[6] = b'X';
        assert_eq!(read_tag(&jpeg), None);
    }

    #[test]
    fn reads_a_video_header_and_refuses_jpegs_and_short_messages() {
        let mut message = vec![VIDEO_KIND, 0x01];
        message.extend_from_slice(&42u64.to_be_bytes());
        message.extend_from_slice(&1_700_000_000_000_000u64.to_be_bytes());
        message.extend_from_slice(&[0, 0, 0, 1, 0x65]);
        let header = VideoHeader {
            keyframe: true,
            seq: 42,
            captured_at_us: 1_700_000_000_000_000,
        };
        assert_eq!(read_video_header(&message), Some(header));
        message[1] = 0x02;
        assert_eq!(
            read_video_header(&message).map(|h| h.keyframe),
            Some(false),
            "only bit 0 is the keyframe flag"
        );
        assert_eq!(read_video_header(&message[..VIDEO_HEADER_LEN - 1]), None);
        assert_eq!(read_video_header(&[0xFF, 0xD8, 0xFF, 0xD9]), None);
        message[0] = 0xFF;
        assert_eq!(read_video_header(&message), None);
    }
}
