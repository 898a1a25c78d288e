//! The Camgate APP11 segment that carries a frame's sequence number and timestamps inside
//! the JPEG itself.
//!
//! A WebSocket binary message must be exactly one JPEG, yet viewers want the sequence number
//! (to count drops) and the capture time (to pace playback and measure latency). An APPn
//! segment right after SOI carries them: every JPEG decoder skips unknown APP segments, and
//! the hub inserts it while making its one copy of the frame, so it costs nothing extra.
//!
//! Layout after `FF EB` (APP11): length `u16` BE (= 2 + 5 + 24), the identifier `CAMG\0`,
//! then `seq`, `captured_at_us` and `published_at_us`, each `u64` big-endian.

use bytes::{BufMut, BytesMut};

const MARKER: [u8; 2] = [0xFF, 0xEB];
const IDENT: &[u8; 5] = b"CAMG\0";
const PAYLOAD_LEN: usize = IDENT.len() + 24;
/// Bytes the segment adds to a JPEG.
pub const TAG_LEN: usize = 2 + 2 + PAYLOAD_LEN;

/// The values carried by the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTag {
    /// The hub's sequence number.
    pub seq: u64,
    /// Capture time, µs since the Unix epoch.
    pub captured_at_us: u64,
    /// Publication time at the hub, µs since the Unix epoch.
    pub published_at_us: u64,
}

/// Where the sequence number sits in a tagged JPEG: after SOI, marker, length and ident.
const SEQ_AT: usize = 2 + 2 + 2 + IDENT.len();

/// Copies `jpeg` (which must start with SOI) into a new buffer with the tag inserted after
/// SOI. The copy is the expensive part of publishing, so the hub makes it before it numbers
/// the frame; [`set_seq`] then fixes the number in place.
pub fn tagged_copy(jpeg: &[u8], tag: FrameTag) -> BytesMut {
    let mut out = BytesMut::with_capacity(jpeg.len() + TAG_LEN);
    out.put_slice(&jpeg[..2]);
    out.put_slice(&MARKER);
    out.put_u16((2 + PAYLOAD_LEN) as u16);
    out.put_slice(IDENT);
    out.put_u64(tag.seq);
    out.put_u64(tag.captured_at_us);
    out.put_u64(tag.published_at_us);
    out.put_slice(&jpeg[2..]);
    out
}

/// Rewrites the sequence number of a JPEG made by [`tagged_copy`].
pub fn set_seq(tagged: &mut [u8], seq: u64) {
    tagged[SEQ_AT..SEQ_AT + 8].copy_from_slice(&seq.to_be_bytes());
}

/// Reads the tag from a JPEG produced by [`tagged_copy`]; `None` if it has none.
pub fn read_tag(jpeg: &[u8]) -> Option<FrameTag> {
    let segment = jpeg.get(2..2 + TAG_LEN)?;
    if segment[..2] != MARKER || &segment[4..9] != IDENT {
        return None;
    }
    let word = |i: usize| -> Option<u64> {
        Some(u64::from_be_bytes(
            segment[9 + i * 8..17 + i * 8].try_into().ok()?,
        ))
    };
    Some(FrameTag {
        seq: word(0)?,
        captured_at_us: word(1)?,
        published_at_us: word(2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x02, 0xFF, 0xD9];
        let tag = FrameTag {
            seq: 7,
            captured_at_us: 1_700_000_000_000_000,
            published_at_us: 1_700_000_000_000_500,
        };
        let mut tagged = tagged_copy(&jpeg, FrameTag { seq: 0, ..tag });
        set_seq(&mut tagged, 7);
        assert_eq!(tagged.len(), jpeg.len() + TAG_LEN);
        assert_eq!(&tagged[..2], &[0xFF, 0xD8]);
        assert_eq!(&tagged[2 + TAG_LEN..], &jpeg[2..]);
        assert_eq!(read_tag(&tagged), Some(tag));
    }

    #[test]
    fn untagged_jpeg_has_no_tag() {
        assert_eq!(read_tag(&[0xFF, 0xD8, 0xFF, 0xD9]), None);
        let mut other = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 31];
        other.extend_from_slice(&[0; 40]);
        assert_eq!(read_tag(&other), None);
    }
}
