//! Decoder configuration records (avcC for H.264, hvcC for H.265) turned into the
//! [`VideoConfig`] the hub shares between frames, and the check that an access unit is in
//! AVCC/HVCC form.
//!
//! A plugin hands the gateway the record as bytes; everything in it is untrusted. The
//! parsers here read it bounds-checked, never panic (a fuzz target, `codec_config`, holds
//! them to that) and refuse what a browser's decoder could not use:
//! - a configuration version other than 1, NAL unit lengths other than 4 bytes (the ABI
//!   fixes `lengthSizeMinusOne = 3`), a record with no sequence parameter set, arrays that
//!   run past the end;
//! - a sequence parameter set whose picture size cannot be read, or is 0 or larger than
//!   [`MAX_DIMENSION`].
//!
//! What comes out: the RFC 6381 codec string a browser's decoder asks for (`avc1.PPCCLL`
//! from the avcC's profile, compatibility and level bytes; `hvc1.…` per ISO/IEC 14496-15
//! Annex E from the hvcC's profile/tier/level fields), and the picture size from the SPS
//! after cropping (the conformance window): the size a viewer shows, e.g. 1920×1080 for a
//! stream coded as 1920×1088.

use bytes::Bytes;

use super::frame::{Codec, VideoConfig};

/// The largest width or height accepted from an SPS (8K is 7680×4320; level 6.2 allows
/// 8192×4320). Anything larger is a corrupt record, not a camera.
pub const MAX_DIMENSION: u32 = 16_384;

/// Why a configuration record or access unit was refused. The text names the problem for
/// the plugin author; it never contains the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The record ends before a field it announces.
    #[error("the {record} record is truncated (needs at least {needed} bytes, has {len})")]
    Truncated {
        /// `avcC` or `hvcC`.
        record: &'static str,
        /// Bytes needed to read the next field.
        needed: usize,
        /// The record's length.
        len: usize,
    },
    /// `configurationVersion` is not 1.
    #[error("the {record} record has configuration version {version}, expected 1")]
    Version {
        /// `avcC` or `hvcC`.
        record: &'static str,
        /// What it says.
        version: u8,
    },
    /// NAL unit lengths are not 4 bytes (the ABI's AVCC/HVCC form).
    #[error(
        "the {record} record says NAL unit lengths are {bytes} bytes; camgate frames use 4-byte lengths (lengthSizeMinusOne = 3)"
    )]
    LengthSize {
        /// `avcC` or `hvcC`.
        record: &'static str,
        /// The announced length size.
        bytes: u8,
    },
    /// No sequence parameter set in the record.
    #[error("the {record} record has no sequence parameter set")]
    NoSps {
        /// `avcC` or `hvcC`.
        record: &'static str,
    },
    /// The SPS could not be parsed.
    #[error("the {record} record's sequence parameter set is malformed: {reason}")]
    BadSps {
        /// `avcC` or `hvcC`.
        record: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The SPS gives an impossible picture size.
    #[error("the {record} record's sequence parameter set gives a {width}x{height} picture")]
    BadSize {
        /// `avcC` or `hvcC`.
        record: &'static str,
        /// Width after cropping.
        width: u32,
        /// Height after cropping.
        height: u32,
    },
}

/// Builds the [`VideoConfig`] for `codec` from its decoder configuration record.
///
/// `codec` must be [`Codec::H264`] (an avcC) or [`Codec::H265`] (an hvcC); JPEG has no
/// configuration and is refused as an avcC would be (`NoSps` on an empty record).
pub fn video_config(codec: Codec, record: &[u8]) -> Result<VideoConfig, ConfigError> {
    let parsed = match codec {
        Codec::H265 => parse_hvcc(record)?,
        Codec::H264 | Codec::Jpeg => parse_avcc(record)?,
    };
    Ok(VideoConfig {
        codec,
        codec_string: parsed.codec_string,
        width: parsed.width,
        height: parsed.height,
        description: Bytes::copy_from_slice(record),
    })
}

/// What the parsers read out of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedConfig {
    /// RFC 6381 codec string.
    pub codec_string: String,
    /// Picture width after cropping.
    pub width: u32,
    /// Picture height after cropping.
    pub height: u32,
}

/// A bounds-checked reader over a record's bytes.
struct Cursor<'a> {
    record: &'static str,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(record: &'static str, data: &'a [u8]) -> Self {
        Cursor {
            record,
            data,
            pos: 0,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ConfigError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.data.len());
        let Some(end) = end else {
            return Err(ConfigError::Truncated {
                record: self.record,
                needed: self.pos.saturating_add(n),
                len: self.data.len(),
            });
        };
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, ConfigError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ConfigError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A `u16` length followed by that many bytes (one parameter set).
    fn nal_unit(&mut self) -> Result<&'a [u8], ConfigError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }
}

/// Parses an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1).
pub fn parse_avcc(record: &[u8]) -> Result<ParsedConfig, ConfigError> {
    const NAME: &str = "avcC";
    let mut r = Cursor::new(NAME, record);
    let version = r.u8()?;
    if version != 1 {
        return Err(ConfigError::Version {
            record: NAME,
            version,
        });
    }
    let profile_compat_level = r.take(3)?;
    let length_size = (r.u8()? & 0b11) + 1;
    if length_size != 4 {
        return Err(ConfigError::LengthSize {
            record: NAME,
            bytes: length_size,
        });
    }
    let sps_count = r.u8()? & 0b1_1111;
    let mut first_sps = None;
    for _ in 0..sps_count {
        let sps = r.nal_unit()?;
        first_sps.get_or_insert(sps);
    }
    let pps_count = r.u8()?;
    for _ in 0..pps_count {
        r.nal_unit()?;
    }
    // Optional trailing fields (chroma format, bit depths, SPS extensions for the high
    // profiles) are not needed here and are passed on to the decoder untouched.
    let sps = first_sps.ok_or(ConfigError::NoSps { record: NAME })?;
    let (width, height) = h264_sps_size(sps)?;
    checked_size(NAME, width, height)?;
    Ok(ParsedConfig {
        codec_string: format!(
            "avc1.{:02x}{:02x}{:02x}",
            profile_compat_level[0], profile_compat_level[1], profile_compat_level[2]
        ),
        width,
        height,
    })
}

/// The cropped picture size from an H.264 SPS NAL unit (header byte included).
fn h264_sps_size(sps: &[u8]) -> Result<(u32, u32), ConfigError> {
    use h264_reader::nal::{Nal, RefNal, UnitType, sps::SeqParameterSet};
    let bad = |reason: String| ConfigError::BadSps {
        record: "avcC",
        reason,
    };
    let nal = RefNal::new(sps, &[], true);
    match nal.header() {
        Ok(header) if header.nal_unit_type() == UnitType::SeqParameterSet => {}
        Ok(header) => {
            return Err(bad(format!(
                "NAL unit type {} where an SPS (7) belongs",
                header.nal_unit_type().id()
            )));
        }
        Err(e) => return Err(bad(format!("{e:?}"))),
    }
    let sps = SeqParameterSet::from_bits(nal.rbsp_bits()).map_err(|e| bad(format!("{e:?}")))?;
    sps.pixel_dimensions().map_err(|e| bad(format!("{e:?}")))
}

/// Parses an `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3.1).
pub fn parse_hvcc(record: &[u8]) -> Result<ParsedConfig, ConfigError> {
    const NAME: &str = "hvcC";
    let mut r = Cursor::new(NAME, record);
    let version = r.u8()?;
    if version != 1 {
        return Err(ConfigError::Version {
            record: NAME,
            version,
        });
    }
    let ptl = r.u8()?;
    let compatibility = r.take(4)?;
    let constraints = r.take(6)?;
    let level_idc = r.u8()?;
    // min_spatial_segmentation (2), parallelism (1), chroma (1), bit depths (2), frame rate (2)
    r.take(8)?;
    let length_size = (r.u8()? & 0b11) + 1;
    if length_size != 4 {
        return Err(ConfigError::LengthSize {
            record: NAME,
            bytes: length_size,
        });
    }
    let arrays = r.u8()?;
    let mut first_sps = None;
    for _ in 0..arrays {
        let nal_type = r.u8()? & 0b11_1111;
        let count = r.u16()?;
        for _ in 0..count {
            let unit = r.nal_unit()?;
            if nal_type == HEVC_NAL_SPS {
                first_sps.get_or_insert(unit);
            }
        }
    }
    let sps = first_sps.ok_or(ConfigError::NoSps { record: NAME })?;
    let (width, height) = hevc_sps_size(sps).map_err(|reason| ConfigError::BadSps {
        record: NAME,
        reason: reason.to_owned(),
    })?;
    checked_size(NAME, width, height)?;
    let compatibility = u32::from_be_bytes([
        compatibility[0],
        compatibility[1],
        compatibility[2],
        compatibility[3],
    ]);
    Ok(ParsedConfig {
        codec_string: hvc1_codec_string(ptl, compatibility, level_idc, constraints),
        width,
        height,
    })
}

/// `hvc1.<space><profile>.<compat>.<tier><level>[.<constraint bytes>]` (ISO/IEC 14496-15
/// Annex E.3): profile space as nothing/A/B/C, the 32 compatibility flags in reverse bit
/// order as hex without leading zeros, tier L/H with the level number, then each
/// constraint byte in hex with trailing zero bytes left out.
fn hvc1_codec_string(ptl: u8, compatibility: u32, level_idc: u8, constraints: &[u8]) -> String {
    let space = ["", "A", "B", "C"][usize::from(ptl >> 6)];
    let tier = if ptl & 0b10_0000 != 0 { 'H' } else { 'L' };
    let profile = ptl & 0b1_1111;
    let mut codec = format!(
        "hvc1.{space}{profile}.{:x}.{tier}{level_idc}",
        compatibility.reverse_bits()
    );
    let used = constraints
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1);
    for byte in &constraints[..used] {
        codec.push_str(&format!(".{byte:X}"));
    }
    codec
}

/// The HEVC NAL unit type of a sequence parameter set.
const HEVC_NAL_SPS: u8 = 33;

fn checked_size(record: &'static str, width: u32, height: u32) -> Result<(), ConfigError> {
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(ConfigError::BadSize {
            record,
            width,
            height,
        });
    }
    Ok(())
}

/// The cropped picture size from an HEVC SPS NAL unit (2-byte header included), per
/// ITU-T H.265 §7.3.2.2: everything before the conformance window is read, nothing after.
fn hevc_sps_size(sps: &[u8]) -> Result<(u32, u32), &'static str> {
    if sps.len() < 2 {
        return Err("shorter than its NAL unit header");
    }
    if (sps[0] >> 1) & 0b11_1111 != HEVC_NAL_SPS {
        return Err("the NAL unit is not an SPS (type 33)");
    }
    let rbsp = unescape(&sps[2..]);
    let mut bits = BitReader::new(&rbsp);
    bits.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = bits.bits(3)?;
    bits.skip(1)?; // sps_temporal_id_nesting_flag
    skip_profile_tier_level(&mut bits, max_sub_layers_minus1)?;
    bits.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = bits.ue()?;
    if chroma_format_idc > 3 {
        return Err("chroma_format_idc above 3");
    }
    let separate_colour_planes = chroma_format_idc == 3 && bits.bits(1)? == 1;
    let width = bits.ue()?;
    let height = bits.ue()?;
    let (mut width, mut height) = (width, height);
    if bits.bits(1)? == 1 {
        // conformance_window_flag: offsets are in chroma sample units (Table 6-1).
        let (sub_width, sub_height) = match (chroma_format_idc, separate_colour_planes) {
            (1, _) => (2, 2),
            (2, _) => (2, 1),
            _ => (1, 1),
        };
        let left = bits.ue()?;
        let right = bits.ue()?;
        let top = bits.ue()?;
        let bottom = bits.ue()?;
        let crop_w = left
            .checked_add(right)
            .and_then(|c| c.checked_mul(sub_width));
        let crop_h = top
            .checked_add(bottom)
            .and_then(|c| c.checked_mul(sub_height));
        width = crop_w
            .and_then(|c| width.checked_sub(c))
            .ok_or("the conformance window is wider than the picture")?;
        height = crop_h
            .and_then(|c| height.checked_sub(c))
            .ok_or("the conformance window is taller than the picture")?;
    }
    Ok((width, height))
}

/// `profile_tier_level(1, max_sub_layers_minus1)` (H.265 §7.3.3), skipped.
fn skip_profile_tier_level(
    bits: &mut BitReader<'_>,
    max_sub_layers_minus1: u32,
) -> Result<(), &'static str> {
    // general_profile_space .. general_level_idc: 2+1+5+32+4+43+1+8 bits.
    bits.skip(96)?;
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    for i in 0..max_sub_layers_minus1 as usize {
        profile_present[i] = bits.bits(1)? == 1;
        level_present[i] = bits.bits(1)? == 1;
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            bits.skip(2)?; // reserved_zero_2bits
        }
    }
    for i in 0..max_sub_layers_minus1 as usize {
        if profile_present[i] {
            bits.skip(88)?;
        }
        if level_present[i] {
            bits.skip(8)?;
        }
    }
    Ok(())
}

/// The RBSP of a NAL unit payload: every `00 00 03` loses its emulation-prevention `03`.
fn unescape(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len());
    let mut zeros = 0;
    for &byte in payload {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

/// An MSB-first bit reader with Exp-Golomb codes, failing (never panicking) at the end.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    fn skip(&mut self, n: usize) -> Result<(), &'static str> {
        let end = self.pos.checked_add(n).ok_or("too long")?;
        if end > self.data.len() * 8 {
            return Err("ends early");
        }
        self.pos = end;
        Ok(())
    }

    /// Up to 32 bits.
    fn bits(&mut self, n: u32) -> Result<u32, &'static str> {
        let mut value = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8).ok_or("ends early")?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            value = (value << 1) | u32::from(bit);
            self.pos += 1;
        }
        Ok(value)
    }

    /// `ue(v)`: unsigned Exp-Golomb, up to 2^32 - 2.
    fn ue(&mut self) -> Result<u32, &'static str> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err("an Exp-Golomb code longer than 32 bits");
            }
        }
        let rest = self.bits(zeros)?;
        // 2^zeros - 1 + rest, computed in u64: at zeros = 31 it can exceed u32.
        let value = (1u64 << zeros) - 1 + u64::from(rest);
        u32::try_from(value).map_err(|_| "an Exp-Golomb value above 2^32 - 2")
    }
}

/// Why an access unit is not in AVCC/HVCC form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessUnitError {
    /// No bytes.
    #[error("the access unit is empty")]
    Empty,
    /// Larger than a frame may be.
    #[error("the access unit is {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A length prefix is cut off, zero, or runs past the end.
    #[error(
        "bad NAL unit length prefix at byte {offset} (the access unit must be 4-byte big-endian lengths, each followed by that many bytes, not Annex B start codes)"
    )]
    BadLength {
        /// Where the prefix starts.
        offset: usize,
    },
    /// A NAL unit whose header has the forbidden zero bit set.
    #[error("the NAL unit at byte {offset} has its forbidden_zero_bit set")]
    ForbiddenBit {
        /// Where the NAL unit's length prefix starts.
        offset: usize,
    },
}

/// Checks that `data` is one access unit in AVCC/HVCC form: a sequence of 4-byte
/// big-endian lengths, each non-zero and followed by exactly that many bytes, covering the
/// whole buffer; each NAL unit's header has the forbidden zero bit clear. O(number of NAL
/// units): it jumps from prefix to prefix and never scans the payload.
pub fn check_access_unit(data: &[u8], max: usize) -> Result<(), AccessUnitError> {
    if data.is_empty() {
        return Err(AccessUnitError::Empty);
    }
    if data.len() > max {
        return Err(AccessUnitError::TooLarge {
            len: data.len(),
            max,
        });
    }
    let mut offset = 0;
    while offset < data.len() {
        let Some(prefix) = data.get(offset..offset + 4) else {
            return Err(AccessUnitError::BadLength { offset });
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        let start = offset + 4;
        if len == 0 || len > data.len() - start {
            return Err(AccessUnitError::BadLength { offset });
        }
        if data[start] & 0x80 != 0 {
            return Err(AccessUnitError::ForbiddenBit { offset });
        }
        offset = start + len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Real records: from the demo camera (`ffmpeg -rtsp_transport tcp -i rtsp://…/test
    //! -c copy -t 1 out.mp4`, avcC box read from the mp4) and from ffmpeg's libx264/libx265
    //! on `testsrc` (see `gateway/tests/fixtures/codec/README.md`).

    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/codec");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
    }

    fn parsed(codec_string: &str, width: u32, height: u32) -> ParsedConfig {
        ParsedConfig {
            codec_string: codec_string.to_owned(),
            width,
            height,
        }
    }

    #[test]
    fn real_avcc_records_give_the_codec_string_and_the_cropped_size() {
        // The demo camera: x264 constrained baseline, level 3.1, 1280x720.
        assert_eq!(
            parse_avcc(&fixture("demo_camera.avcC")),
            Ok(parsed("avc1.42c01f", 1280, 720))
        );
        assert_eq!(
            parse_avcc(&fixture("h264_240.avcC")),
            Ok(parsed("avc1.42c00d", 320, 240))
        );
        // High profile 1080p: coded as 1088 lines, cropped to 1080.
        assert_eq!(
            parse_avcc(&fixture("h264_1080.avcC")),
            Ok(parsed("avc1.640028", 1920, 1080))
        );
    }

    #[test]
    fn real_hvcc_records_give_the_codec_string_and_the_cropped_size() {
        // Main, level 2.1 (63), progressive + frame-only constraint flags (0x90); 650x362
        // is coded as 656x368 with a conformance window.
        assert_eq!(
            parse_hvcc(&fixture("h265_650.hvcC")),
            Ok(parsed("hvc1.1.6.L63.90", 650, 362))
        );
        // Main 10 (profile 2, compatibility flag 2 → reversed 0x4), level 3.1 (93).
        assert_eq!(
            parse_hvcc(&fixture("h265_720_main10.hvcC")),
            Ok(parsed("hvc1.2.4.L93.90", 1280, 720))
        );
    }

    #[test]
    fn hvc1_strings_follow_annex_e() {
        // The examples of ISO/IEC 14496-15 Annex E.
        let constraints = [0xB0, 0, 0, 0, 0, 0];
        assert_eq!(
            hvc1_codec_string(0x01, 0x6000_0000, 93, &constraints),
            "hvc1.1.6.L93.B0"
        );
        assert_eq!(
            hvc1_codec_string(0x22, 0x2000_0000, 120, &constraints),
            "hvc1.2.4.H120.B0"
        );
        // Profile space 1 is "A"; all-zero constraints leave the field out; inner zero
        // bytes are kept.
        assert_eq!(
            hvc1_codec_string(0x41, 0x4000_0000, 90, &[0; 6]),
            "hvc1.A1.2.L90"
        );
        assert_eq!(
            hvc1_codec_string(0x01, 0x6000_0000, 93, &[0x90, 0, 0x01, 0, 0, 0]),
            "hvc1.1.6.L93.90.0.1"
        );
    }

    #[test]
    fn video_config_keeps_the_record_as_the_description() {
        let record = fixture("demo_camera.avcC");
        let config = video_config(Codec::H264, &record).unwrap();
        assert_eq!(config.codec, Codec::H264);
        assert_eq!(config.codec_string, "avc1.42c01f");
        assert_eq!((config.width, config.height), (1280, 720));
        assert_eq!(config.description, record);
        // The record of the other codec is refused, not misread.
        assert!(video_config(Codec::H265, &record).is_err());
        assert!(video_config(Codec::H264, &fixture("h265_650.hvcC")).is_err());
    }

    #[test]
    fn broken_records_are_refused_with_the_reason() {
        let good = fixture("demo_camera.avcC");
        let mut other_version = good.clone();
        other_version[0] = 2;
        assert_eq!(
            parse_avcc(&other_version),
            Err(ConfigError::Version {
                record: "avcC",
                version: 2
            })
        );
        let mut two_byte_lengths = good.clone();
        two_byte_lengths[4] = 0xFD;
        assert_eq!(
            parse_avcc(&two_byte_lengths),
            Err(ConfigError::LengthSize {
                record: "avcC",
                bytes: 2
            })
        );
        let mut no_sps = good[..6].to_vec();
        no_sps[5] = 0xE0;
        no_sps.push(0);
        assert_eq!(
            parse_avcc(&no_sps),
            Err(ConfigError::NoSps { record: "avcC" })
        );
        assert!(matches!(
            parse_avcc(&good[..20]),
            Err(ConfigError::Truncated { .. })
        ));
        // An SPS that is a PPS.
        let mut wrong_type = good.clone();
        wrong_type[8] = 0x68;
        assert!(matches!(
            parse_avcc(&wrong_type),
            Err(ConfigError::BadSps { .. })
        ));
        let hvcc = fixture("h265_650.hvcC");
        assert!(matches!(
            parse_hvcc(&hvcc[..100]),
            Err(ConfigError::Truncated { .. })
        ));
        assert!(parse_hvcc(&[]).is_err());
        assert!(parse_avcc(&[]).is_err());
    }

    #[test]
    fn every_prefix_of_a_real_record_is_refused_or_parsed_without_panicking() {
        for name in [
            "demo_camera.avcC",
            "h264_240.avcC",
            "h264_1080.avcC",
            "h265_650.hvcC",
            "h265_720_main10.hvcC",
        ] {
            let record = fixture(name);
            for end in 0..record.len() {
                let _ = parse_avcc(&record[..end]);
                let _ = parse_hvcc(&record[..end]);
            }
        }
    }

    #[test]
    fn exp_golomb_codes_read_back() {
        // 1 → 0, 010 → 1, 011 → 2, 00100 → 3, then 32 zero bits: too long.
        let data = [0b1010_0110, 0b0100_0000, 0, 0, 0, 0];
        let mut bits = BitReader::new(&data);
        assert_eq!(bits.ue(), Ok(0));
        assert_eq!(bits.ue(), Ok(1));
        assert_eq!(bits.ue(), Ok(2));
        assert_eq!(bits.ue(), Ok(3));
        assert!(bits.ue().is_err());
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }

    #[test]
    fn access_units_must_be_whole_length_prefixed_nal_units() {
        let idr = [0, 0, 0, 3, 0x65, 0x88, 0x84, 0, 0, 0, 1, 0x06];
        assert_eq!(check_access_unit(&idr, 1 << 20), Ok(()));
        assert_eq!(check_access_unit(&[], 1 << 20), Err(AccessUnitError::Empty));
        assert_eq!(
            check_access_unit(&idr, 8),
            Err(AccessUnitError::TooLarge { len: 12, max: 8 })
        );
        // Annex B start codes instead of lengths.
        assert_eq!(
            check_access_unit(&[0, 0, 1, 0x65, 0x88, 0x84], 1 << 20),
            Err(AccessUnitError::BadLength { offset: 0 })
        );
        assert_eq!(
            check_access_unit(&[0, 0, 0, 1, 0x65, 0x88], 1 << 20),
            Err(AccessUnitError::BadLength { offset: 5 })
        );
        // A length past the end, a cut-off second prefix, a zero length.
        assert_eq!(
            check_access_unit(&idr[..11], 1 << 20),
            Err(AccessUnitError::BadLength { offset: 7 })
        );
        assert_eq!(
            check_access_unit(&idr[..9], 1 << 20),
            Err(AccessUnitError::BadLength { offset: 7 })
        );
        assert_eq!(
            check_access_unit(&[0, 0, 0, 0], 1 << 20),
            Err(AccessUnitError::BadLength { offset: 0 })
        );
        assert_eq!(
            check_access_unit(&[0, 0, 0, 1, 0xE5], 1 << 20),
            Err(AccessUnitError::ForbiddenBit { offset: 0 })
        );
    }
}
