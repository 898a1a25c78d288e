//! Reads the Camgate APP11 segment (`CAMG\0` + seq, capture µs, publish µs as big-endian
//! `u64`) that the gateway inserts right after SOI of every JPEG it fans out.
//!
//! This mirrors `camgate::hub::read_tag` on purpose: the load tool must not depend on the
//! gateway crate (it also measures other servers), and the gateway's smoke test checks that
//! both readers agree on real frames.

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
}
