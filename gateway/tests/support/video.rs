//! Real H.264/H.265 for tests: ffmpeg encodes a lavfi test pattern to an Annex B stream,
//! which is cut into access units in the hub's form (AVCC/HVCC: 4-byte lengths, parameter
//! sets moved out into an `avcC`/`hvcC` record), as a passthrough source delivers them.

use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use camgate::hub::{Codec, Frame, VideoConfig};

/// An encoded clip.
pub struct Clip {
    /// The decoder configuration every frame carries.
    pub config: Arc<VideoConfig>,
    /// Access units in order: (keyframe, AVCC/HVCC bytes).
    pub units: Vec<(bool, Bytes)>,
    /// The encoder's Annex B output, as it came.
    pub annex_b: Vec<u8>,
}

/// Whether this ffmpeg can encode `codec` (libx264 / libx265).
pub fn can_encode(codec: Codec) -> bool {
    let name = if codec == Codec::H265 {
        "libx265"
    } else {
        "libx264"
    };
    Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(name))
}

/// Encodes `frames` pictures of `testsrc2` at `width`x`height`, a keyframe every `gop`,
/// no B-frames.
pub fn encode(codec: Codec, width: u32, height: u32, frames: u32, gop: u32) -> Clip {
    let size = format!("testsrc2=size={width}x{height}:rate=25");
    let gop_s = gop.to_string();
    let x265 = format!("keyint={gop}:min-keyint={gop}:bframes=0:scenecut=0:log-level=error");
    let mut args: Vec<&str> = vec!["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"];
    args.push(&size);
    let count = frames.to_string();
    args.extend(["-frames:v", &count, "-pix_fmt", "yuv420p"]);
    match codec {
        Codec::H264 => args.extend([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
            "-g",
            &gop_s,
            "-sc_threshold",
            "0",
            "-f",
            "h264",
            "-",
        ]),
        _ => args.extend([
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            &x265,
            "-f",
            "hevc",
            "-",
        ]),
    }
    let out = Command::new("ffmpeg").args(&args).output().expect("ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clip = from_annex_b(codec, width, height, &out.stdout);
    assert_eq!(clip.units.len(), frames as usize, "access units");
    clip
}

/// NAL units of an Annex B stream (start codes of 3 or 4 bytes).
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let mut end = starts.get(n + 1).map_or(data.len(), |next| next - 3);
            // A 4-byte start code's leading zero (and trailing zero bytes) are not the NAL's.
            while end > start && data[end - 1] == 0 {
                end -= 1;
            }
            &data[start..end]
        })
        .collect()
}

/// Groups an Annex B stream into access units; parameter sets go to the record.
pub fn from_annex_b(codec: Codec, width: u32, height: u32, data: &[u8]) -> Clip {
    let h265 = codec == Codec::H265;
    let kind = |nal: &[u8]| {
        if h265 {
            (nal[0] >> 1) & 0x3F
        } else {
            nal[0] & 0x1F
        }
    };
    let is_vcl = |t: u8| if h265 { t < 32 } else { (1..=5).contains(&t) };
    let first_in_picture = |nal: &[u8]| {
        if h265 {
            nal[2] & 0x80 != 0
        } else {
            nal[1] & 0x80 != 0
        }
    };
    let is_keyframe = |t: u8| if h265 { (16..=23).contains(&t) } else { t == 5 };
    let (vps_t, sps_t, pps_t) = if h265 { (32, 33, 34) } else { (255, 7, 8) };
    let aud_t = if h265 { 35 } else { 9 };

    let (mut vps, mut sps, mut pps) = (None, None, None);
    let mut units: Vec<(bool, Vec<u8>)> = Vec::new();
    let mut current: Option<(bool, Vec<u8>, bool)> = None; // (keyframe, bytes, has VCL)
    for nal in nal_units(data) {
        let t = kind(nal);
        let starts_new = if is_vcl(t) {
            first_in_picture(nal)
        } else {
            true
        };
        if starts_new && current.as_ref().is_some_and(|c| c.2) {
            let (key, bytes, _) = current.take().unwrap();
            units.push((key, bytes));
        }
        if t == vps_t {
            vps.get_or_insert_with(|| nal.to_vec());
            continue;
        }
        if t == sps_t {
            sps.get_or_insert_with(|| nal.to_vec());
            continue;
        }
        if t == pps_t {
            pps.get_or_insert_with(|| nal.to_vec());
            continue;
        }
        if t == aud_t {
            continue;
        }
        let unit = current.get_or_insert_with(|| (false, Vec::new(), false));
        unit.1.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        unit.1.extend_from_slice(nal);
        if is_vcl(t) {
            unit.2 = true;
            unit.0 |= is_keyframe(t);
        }
    }
    if let Some((key, bytes, true)) = current {
        units.push((key, bytes));
    }
    let sps = sps.expect("an SPS");
    let pps = pps.expect("a PPS");
    let (description, codec_string) = if h265 {
        (
            hvcc(&vps.expect("a VPS"), &sps, &pps),
            "hvc1.1.6.L93.B0".to_owned(),
        )
    } else {
        (
            avcc(&sps, &pps),
            format!("avc1.{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3]),
        )
    };
    Clip {
        config: Arc::new(VideoConfig {
            codec,
            codec_string,
            width,
            height,
            description: Bytes::from(description),
        }),
        units: units
            .into_iter()
            .map(|(key, bytes)| (key, Bytes::from(bytes)))
            .collect(),
        annex_b: data.to_vec(),
    }
}

fn put_nal(out: &mut Vec<u8>, nal: &[u8]) {
    out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
    out.extend_from_slice(nal);
}

/// An `avcC` record with one SPS and one PPS, 4-byte lengths.
pub fn avcc(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut out = vec![1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
    put_nal(&mut out, sps);
    out.push(1);
    put_nal(&mut out, pps);
    out
}

/// An `hvcC` record (profile fields from the SPS) with VPS, SPS and PPS arrays, 4-byte
/// lengths.
pub fn hvcc(vps: &[u8], sps: &[u8], pps: &[u8]) -> Vec<u8> {
    // profile_tier_level follows the 2-byte header and one byte of SPS fields; remove
    // emulation prevention bytes from it first.
    let mut ptl = Vec::new();
    let mut zeros = 0;
    for &b in &sps[3..] {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        ptl.push(b);
        if ptl.len() == 12 {
            break;
        }
    }
    let mut out = vec![1];
    out.extend_from_slice(&ptl[..12]); // profile, compatibility (4), constraints (6), level
    out.extend_from_slice(&[0xF0, 0x00, 0xFC, 0xFD, 0xF8, 0xF8, 0x00, 0x00, 0x0F, 3]);
    for (kind, nal) in [(32u8, vps), (33, sps), (34, pps)] {
        out.push(0x80 | kind);
        out.extend_from_slice(&1u16.to_be_bytes());
        put_nal(&mut out, nal);
    }
    out
}

/// The clip as hub frames: sequence numbers from 1, capture times 40 ms apart from
/// `start_us`.
pub fn frames(clip: &Clip, start_us: u64) -> Vec<Frame> {
    clip.units
        .iter()
        .enumerate()
        .map(|(i, (keyframe, data))| Frame {
            seq: i as u64 + 1,
            captured_at_us: start_us + i as u64 * 40_000,
            published_at_us: start_us + i as u64 * 40_000,
            width: clip.config.width,
            height: clip.config.height,
            codec: clip.config.codec,
            keyframe: *keyframe,
            config: Some(Arc::clone(&clip.config)),
            data: data.clone(),
            derived: Arc::default(),
        })
        .collect()
}

/// Whether process `pid` still exists (running or a zombie nobody reaped).
pub fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
