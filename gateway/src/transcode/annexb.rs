//! AVCC/HVCC access units → Annex B byte stream, what ffmpeg's raw `h264`/`hevc` demuxers
//! read from a pipe.
//!
//! The hub carries H.264/H.265 the way MP4 and RTSP depacketisers hand it over: each NAL
//! unit prefixed by its big-endian length, parameter sets in the decoder configuration
//! record (`avcC`/`hvcC`, [`VideoConfig::description`]). A raw decoder wants start codes
//! (`00 00 00 01`) instead, and the parameter sets in band. [`AnnexBWriter`] does both:
//!
//! - every NAL unit of an access unit is written after a 4-byte start code, in order;
//! - before a keyframe, the record's VPS (H.265), SPS and PPS are written, so a decoder can
//!   start at ANY keyframe (a transcoder started mid-stream, a snapshot of one GOP);
//! - every access unit is *followed* by an access unit delimiter (AUD). ffmpeg's parsers
//!   only know that an access unit is complete when they see the start of the next one; a
//!   trailing AUD (which the standards place first in the next access unit, where it is
//!   legal) makes ffmpeg decode each picture as soon as its last byte arrives instead of
//!   one frame later. AUDs already in the input are dropped (two in a row would be invalid).
//!
//! Invariants: strict and total on untrusted bytes — a malformed record or access unit is
//! a typed [`AnnexBError`], never a panic, and nothing is read past the end of the input
//! (every length is checked before it is used); on error the output buffer is left as it
//! was. Emulation prevention needs no work: AVCC NAL units already carry it.

use crate::hub::{Codec, VideoConfig};

/// The 4-byte start code written before every NAL unit.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// H.264 access unit delimiter: NAL type 9, `primary_pic_type` 7 (any slice type).
const AUD_H264: [u8; 2] = [0x09, 0xF0];
/// H.265 access unit delimiter: NAL type 35, layer 0, tid 1, `pic_type` 2 (any).
const AUD_H265: [u8; 3] = [0x46, 0x01, 0x50];

/// Why a decoder configuration record or an access unit cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnexBError {
    /// The frame or config is not H.264/H.265 (a JPEG has nothing to convert).
    #[error("not an H.264/H.265 stream ({0})")]
    NotVideo(&'static str),
    /// The record ends before a field it must have.
    #[error("the {record} record is truncated at byte {at}")]
    RecordTruncated {
        /// `avcC` or `hvcC`.
        record: &'static str,
        /// Where the missing field starts.
        at: usize,
    },
    /// `configurationVersion` is not 1.
    #[error("the {record} record has version {version}, not 1")]
    RecordVersion {
        /// `avcC` or `hvcC`.
        record: &'static str,
        /// The version found.
        version: u8,
    },
    /// A length size other than 1, 2 or 4 bytes.
    #[error("NAL unit length size {0} is not 1, 2 or 4")]
    LengthSize(u8),
    /// The record lacks a parameter set a decoder needs.
    #[error("the decoder configuration has no {0}")]
    MissingParameterSet(&'static str),
    /// A NAL unit in the record has the wrong type for its place.
    #[error("the decoder configuration holds NAL type {found} where {expected} belongs")]
    ParameterSetType {
        /// What the place calls for (`SPS`, `PPS`, `VPS`).
        expected: &'static str,
        /// The NAL unit type found.
        found: u8,
    },
    /// A NAL unit of length zero (in the record or the access unit).
    #[error("empty NAL unit at byte {at}")]
    EmptyNal {
        /// Offset of its length prefix.
        at: usize,
    },
    /// A length prefix runs past the end of the data.
    #[error("NAL unit at byte {at} declares {declared} bytes, {available} left")]
    NalTruncated {
        /// Offset of the length prefix.
        at: usize,
        /// The declared length (0 when the prefix itself is cut).
        declared: usize,
        /// Bytes left after the prefix.
        available: usize,
    },
    /// An access unit without a single NAL unit (besides delimiters).
    #[error("empty access unit")]
    EmptyAccessUnit,
}

/// Converts the access units of one stream (one [`VideoConfig`]) to Annex B.
#[derive(Debug, Clone)]
pub struct AnnexBWriter {
    codec: Codec,
    length_size: usize,
    /// VPS/SPS/PPS, each after a start code: written before every keyframe.
    parameter_sets: Vec<u8>,
}

impl AnnexBWriter {
    /// A writer for access units coded with `config`; checks the record strictly.
    pub fn new(config: &VideoConfig) -> Result<AnnexBWriter, AnnexBError> {
        let record = config.description.as_ref();
        let (length_size, parameter_sets) = match config.codec {
            Codec::H264 => parse_avcc(record)?,
            Codec::H265 => parse_hvcc(record)?,
            Codec::Jpeg => return Err(AnnexBError::NotVideo("jpeg")),
        };
        Ok(AnnexBWriter {
            codec: config.codec,
            length_size,
            parameter_sets,
        })
    }

    /// H.264 or H.265.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Bytes of each NAL unit's length prefix (1, 2 or 4), from the record.
    pub fn length_size(&self) -> usize {
        self.length_size
    }

    /// The parameter sets written before each keyframe, in Annex B form.
    pub fn parameter_sets(&self) -> &[u8] {
        &self.parameter_sets
    }

    /// Appends `access_unit` (length-prefixed NAL units) to `out` in Annex B form: the
    /// parameter sets first if `keyframe`, then each NAL unit, then a delimiter. On error
    /// `out` is unchanged.
    pub fn write(
        &self,
        access_unit: &[u8],
        keyframe: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), AnnexBError> {
        let start = out.len();
        out.reserve(access_unit.len() + self.parameter_sets.len() + 16);
        if keyframe {
            out.extend_from_slice(&self.parameter_sets);
        }
        let mut nals = 0usize;
        let result = for_each_nal(access_unit, self.length_size, |nal| {
            if !is_delimiter(self.codec, nal) {
                out.extend_from_slice(&START_CODE);
                out.extend_from_slice(nal);
                nals += 1;
            }
        });
        let result = match result {
            Ok(()) if nals == 0 => Err(AnnexBError::EmptyAccessUnit),
            other => other,
        };
        if let Err(error) = result {
            out.truncate(start);
            return Err(error);
        }
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(match self.codec {
            Codec::H265 => &AUD_H265,
            _ => &AUD_H264,
        });
        Ok(())
    }
}

/// Calls `each` with every NAL unit of a length-prefixed sequence, checking each length
/// before reading what it covers.
pub fn for_each_nal(
    data: &[u8],
    length_size: usize,
    mut each: impl FnMut(&[u8]),
) -> Result<(), AnnexBError> {
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        let Some(prefix) = rest.get(..length_size) else {
            return Err(AnnexBError::NalTruncated {
                at,
                declared: 0,
                available: rest.len(),
            });
        };
        let declared = prefix
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        let body = &rest[length_size..];
        if declared == 0 {
            return Err(AnnexBError::EmptyNal { at });
        }
        let Some(nal) = body.get(..declared) else {
            return Err(AnnexBError::NalTruncated {
                at,
                declared,
                available: body.len(),
            });
        };
        each(nal);
        at += length_size + declared;
    }
    Ok(())
}

fn is_delimiter(codec: Codec, nal: &[u8]) -> bool {
    match codec {
        Codec::H264 => nal[0] & 0x1F == 9,
        _ => (nal[0] >> 1) & 0x3F == 35,
    }
}

/// A cursor over a configuration record that reports where it ran out.
struct Record<'a> {
    name: &'static str,
    data: &'a [u8],
    at: usize,
}

impl<'a> Record<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AnnexBError> {
        let out = self
            .data
            .get(self.at..)
            .and_then(|rest| rest.get(..n))
            .ok_or(AnnexBError::RecordTruncated {
                record: self.name,
                at: self.at,
            })?;
        self.at += n;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, AnnexBError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, AnnexBError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    /// One `u16 length, NAL unit` entry.
    fn nal(&mut self) -> Result<&'a [u8], AnnexBError> {
        let at = self.at;
        let len = self.u16()?;
        if len == 0 {
            return Err(AnnexBError::EmptyNal { at });
        }
        self.take(len)
    }

    fn version(&mut self) -> Result<(), AnnexBError> {
        match self.u8()? {
            1 => Ok(()),
            version => Err(AnnexBError::RecordVersion {
                record: self.name,
                version,
            }),
        }
    }
}

fn length_size(minus_one: u8) -> Result<usize, AnnexBError> {
    match minus_one & 0x03 {
        0 => Ok(1),
        1 => Ok(2),
        3 => Ok(4),
        other => Err(AnnexBError::LengthSize(other + 1)),
    }
}

fn push_nal(out: &mut Vec<u8>, nal: &[u8]) {
    out.extend_from_slice(&START_CODE);
    out.extend_from_slice(nal);
}

/// `avcC` (ISO/IEC 14496-15 §5.3.3): version, profile, compatibility, level,
/// `lengthSizeMinusOne`, SPS list, PPS list (any high-profile extension is ignored).
fn parse_avcc(data: &[u8]) -> Result<(usize, Vec<u8>), AnnexBError> {
    let mut record = Record {
        name: "avcC",
        data,
        at: 0,
    };
    record.version()?;
    record.take(3)?;
    let length_size = length_size(record.u8()?)?;
    let mut out = Vec::new();
    for (name, nal_type, count_mask) in [("SPS", 7u8, 0x1Fu8), ("PPS", 8, 0xFF)] {
        let count = record.u8()? & count_mask;
        if count == 0 {
            return Err(AnnexBError::MissingParameterSet(name));
        }
        for _ in 0..count {
            let nal = record.nal()?;
            if nal[0] & 0x1F != nal_type {
                return Err(AnnexBError::ParameterSetType {
                    expected: name,
                    found: nal[0] & 0x1F,
                });
            }
            push_nal(&mut out, nal);
        }
    }
    Ok((length_size, out))
}

/// `hvcC` (ISO/IEC 14496-15 §8.3.3): 21 bytes of profile and format fields, the byte with
/// `lengthSizeMinusOne`, then arrays of NAL units by type. VPS, SPS and PPS are kept (in
/// that order, as a decoder wants them); other arrays (SEI) are skipped.
fn parse_hvcc(data: &[u8]) -> Result<(usize, Vec<u8>), AnnexBError> {
    let mut record = Record {
        name: "hvcC",
        data,
        at: 0,
    };
    record.version()?;
    record.take(20)?;
    let length_size = length_size(record.u8()?)?;
    let arrays = record.u8()?;
    let mut sets: [Vec<u8>; 3] = Default::default();
    for _ in 0..arrays {
        let array_type = record.u8()? & 0x3F;
        let count = record.u16()?;
        for _ in 0..count {
            let nal = record.nal()?;
            let Some(slot) = array_type.checked_sub(32).filter(|i| *i < 3) else {
                continue;
            };
            let name = ["VPS", "SPS", "PPS"][usize::from(slot)];
            let found = (nal[0] >> 1) & 0x3F;
            if found != array_type {
                return Err(AnnexBError::ParameterSetType {
                    expected: name,
                    found,
                });
            }
            push_nal(&mut sets[usize::from(slot)], nal);
        }
    }
    for (set, name) in sets.iter().zip(["VPS", "SPS", "PPS"]) {
        if set.is_empty() {
            return Err(AnnexBError::MissingParameterSet(name));
        }
    }
    Ok((length_size, sets.concat()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const SPS: &[u8] = &[0x67, 0x42, 0xC0, 0x1F, 0xAB];
    const PPS: &[u8] = &[0x68, 0xCE, 0x3C, 0x80];

    fn avcc(length_minus_one: u8, sps: &[&[u8]], pps: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![1, 0x42, 0xC0, 0x1F, 0xFC | length_minus_one];
        out.push(0xE0 | sps.len() as u8);
        for nal in sps {
            out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            out.extend_from_slice(nal);
        }
        out.push(pps.len() as u8);
        for nal in pps {
            out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            out.extend_from_slice(nal);
        }
        out
    }

    fn config(codec: Codec, description: Vec<u8>) -> VideoConfig {
        VideoConfig {
            codec,
            codec_string: String::new(),
            width: 16,
            height: 16,
            description: Bytes::from(description),
        }
    }

    fn au(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|nal| {
                let mut v = (nal.len() as u32).to_be_bytes().to_vec();
                v.extend_from_slice(nal);
                v
            })
            .collect()
    }

    fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|nal| [&START_CODE[..], nal].concat())
            .collect()
    }

    #[test]
    fn keyframes_get_the_parameter_sets_and_every_unit_a_trailing_delimiter() {
        let writer = AnnexBWriter::new(&config(Codec::H264, avcc(3, &[SPS], &[PPS]))).unwrap();
        let idr: &[u8] = &[0x65, 0x88, 0x80, 0x00, 0x00, 0x03];
        let sei: &[u8] = &[0x06, 0x05, 0x01];
        let mut out = Vec::new();
        writer.write(&au(&[sei, idr]), true, &mut out).unwrap();
        assert_eq!(out, annexb(&[SPS, PPS, sei, idr, &AUD_H264]));
        let p: &[u8] = &[0x41, 0x9A, 0x02];
        out.clear();
        // An AUD in the input is dropped (ours follows the unit).
        writer.write(&au(&[&AUD_H264, p]), false, &mut out).unwrap();
        assert_eq!(out, annexb(&[p, &AUD_H264]));
    }

    #[test]
    fn short_length_prefixes_are_read_by_the_record_s_size() {
        let writer = AnnexBWriter::new(&config(Codec::H264, avcc(1, &[SPS], &[PPS]))).unwrap();
        let mut out = Vec::new();
        writer
            .write(&[0, 3, 0x41, 0x9A, 0x02], false, &mut out)
            .unwrap();
        assert_eq!(out, annexb(&[&[0x41, 0x9A, 0x02], &AUD_H264]));
        let writer = AnnexBWriter::new(&config(Codec::H264, avcc(0, &[SPS], &[PPS]))).unwrap();
        out.clear();
        writer.write(&[2, 0x41, 0x9A], false, &mut out).unwrap();
        assert_eq!(out, annexb(&[&[0x41, 0x9A], &AUD_H264]));
    }

    #[test]
    fn malformed_access_units_are_typed_errors_and_leave_the_output_alone() {
        let writer = AnnexBWriter::new(&config(Codec::H264, avcc(3, &[SPS], &[PPS]))).unwrap();
        let mut out = b"kept".to_vec();
        let cases: [(&[u8], AnnexBError); 5] = [
            (&[], AnnexBError::EmptyAccessUnit),
            (
                &[0, 0, 0],
                AnnexBError::NalTruncated {
                    at: 0,
                    declared: 0,
                    available: 3,
                },
            ),
            (
                &[0, 0, 0, 5, 0x41, 0x9A],
                AnnexBError::NalTruncated {
                    at: 0,
                    declared: 5,
                    available: 2,
                },
            ),
            (
                &[0, 0, 0, 1, 0x41, 0, 0, 0, 0],
                AnnexBError::EmptyNal { at: 5 },
            ),
            (&[0, 0, 0, 2, 0x09, 0xF0], AnnexBError::EmptyAccessUnit),
        ];
        for (input, error) in cases {
            for keyframe in [false, true] {
                assert_eq!(writer.write(input, keyframe, &mut out), Err(error.clone()));
                assert_eq!(out, b"kept");
            }
        }
        // A huge declared length is refused without reading or allocating it.
        let huge = [0xFF, 0xFF, 0xFF, 0xFF, 0x41];
        assert!(matches!(
            writer.write(&huge, false, &mut out),
            Err(AnnexBError::NalTruncated {
                declared: 0xFFFF_FFFF,
                available: 1,
                ..
            })
        ));
    }

    #[test]
    fn malformed_avcc_records_are_refused() {
        let h264 = |record: Vec<u8>| AnnexBWriter::new(&config(Codec::H264, record)).err();
        assert_eq!(
            h264(vec![]),
            Some(AnnexBError::RecordTruncated {
                record: "avcC",
                at: 0
            })
        );
        let mut v0 = avcc(3, &[SPS], &[PPS]);
        v0[0] = 0;
        assert_eq!(
            h264(v0),
            Some(AnnexBError::RecordVersion {
                record: "avcC",
                version: 0
            })
        );
        assert_eq!(
            h264(avcc(2, &[SPS], &[PPS])),
            Some(AnnexBError::LengthSize(3))
        );
        assert_eq!(
            h264(avcc(3, &[], &[PPS])),
            Some(AnnexBError::MissingParameterSet("SPS"))
        );
        assert_eq!(
            h264(avcc(3, &[SPS], &[])),
            Some(AnnexBError::MissingParameterSet("PPS"))
        );
        assert_eq!(
            h264(avcc(3, &[PPS], &[PPS])),
            Some(AnnexBError::ParameterSetType {
                expected: "SPS",
                found: 8
            })
        );
        let full = avcc(3, &[SPS], &[PPS]);
        for cut in 0..full.len() {
            assert!(
                matches!(
                    h264(full[..cut].to_vec()),
                    Some(AnnexBError::RecordTruncated { .. })
                ),
                "cut at {cut}"
            );
        }
        assert_eq!(
            AnnexBWriter::new(&config(Codec::Jpeg, full)).err(),
            Some(AnnexBError::NotVideo("jpeg"))
        );
    }

    fn hvcc(arrays: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = vec![1];
        out.extend_from_slice(&[0; 20]);
        out.push(0x0F);
        out.push(arrays.len() as u8);
        for (kind, nal) in arrays {
            out.push(0x80 | kind);
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            out.extend_from_slice(nal);
        }
        out
    }

    #[test]
    fn hvcc_parameter_sets_come_out_vps_sps_pps_and_other_arrays_are_skipped() {
        let vps: &[u8] = &[0x40, 0x01, 0x0C];
        let sps: &[u8] = &[0x42, 0x01, 0x01];
        let pps: &[u8] = &[0x44, 0x01, 0xC1];
        let sei: &[u8] = &[0x4E, 0x01, 0x05];
        let record = hvcc(&[(33, sps), (39, sei), (34, pps), (32, vps)]);
        let writer = AnnexBWriter::new(&config(Codec::H265, record)).unwrap();
        assert_eq!(writer.parameter_sets(), annexb(&[vps, sps, pps]));
        let idr: &[u8] = &[0x26, 0x01, 0xAF];
        let mut out = Vec::new();
        writer
            .write(&au(&[&AUD_H265, idr]), true, &mut out)
            .unwrap();
        assert_eq!(out, annexb(&[vps, sps, pps, idr, &AUD_H265]));

        let h265 = |record: Vec<u8>| AnnexBWriter::new(&config(Codec::H265, record)).err();
        assert_eq!(
            h265(hvcc(&[(33, sps), (34, pps)])),
            Some(AnnexBError::MissingParameterSet("VPS"))
        );
        assert_eq!(
            h265(hvcc(&[(32, vps), (33, pps), (34, pps)])),
            Some(AnnexBError::ParameterSetType {
                expected: "SPS",
                found: 34
            })
        );
        let full = hvcc(&[(32, vps), (33, sps), (34, pps)]);
        for cut in 0..full.len() {
            assert!(h265(full[..cut].to_vec()).is_some(), "cut at {cut}");
        }
    }

    proptest::proptest! {
        /// Random access units against valid and mutated records, through the fuzz
        /// target's checks (a writer or a typed error; exact output; untouched on error).
        #[test]
        fn any_bytes_convert_exactly_or_fail_cleanly(
            flags in 0u8..4,
            length_minus_one in 0u8..4,
            flip in proptest::option::of((0usize..40, proptest::num::u8::ANY)),
            unit in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            lengths in proptest::collection::vec(1u8..6, 0..6),
        ) {
            let mut record = if flags & 1 == 1 {
                hvcc(&[(32, &[0x40, 0x01, 0x0C]), (33, &[0x42, 0x01, 0x01]), (34, &[0x44, 0x01])])
            } else {
                avcc(length_minus_one, &[SPS], &[PPS])
            };
            if let Some((at, byte)) = flip && at < record.len() {
                record[at] = byte;
            }
            // Mostly well-formed units: NAL units of the given lengths cut from `unit`.
            let mut au_bytes = Vec::new();
            let mut rest = &unit[..];
            for len in lengths {
                let len = usize::from(len).min(rest.len());
                au_bytes.extend_from_slice(&(len as u32).to_be_bytes());
                au_bytes.extend_from_slice(&rest[..len]);
                rest = &rest[len..];
            }
            au_bytes.extend_from_slice(rest);
            let mut input = vec![flags, record.len() as u8];
            input.extend_from_slice(&record);
            input.extend_from_slice(&au_bytes);
            crate::fuzzing::annexb(&input);
        }
    }
}
