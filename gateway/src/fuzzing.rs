//! Entry points for the coverage-guided fuzz targets in `fuzz/` (cargo-afl) and for the
//! tests that replay their corpora (`tests/fuzz_corpus.rs`). Not an API: hidden from the
//! docs, it exists so the internals under test stay private to the crate.
//!
//! Each target takes arbitrary bytes and must return normally for every input. It panics
//! (a crash to the fuzzer, a failure to the tests) when the code under test panics or
//! breaks one of the invariants checked here:
//! - `ws_decoder`: the frames decoded do not depend on how the bytes arrive, and the
//!   decoder never holds more than one frame (header + `max_message`) once drained.
//! - `manifest`: parsing any text with the real plugin catalog's validators returns a
//!   manifest or errors, and the errors render.
//! - `jpeg_splitter`: every frame is one whole JPEG (SOI..EOI) within the cap, the frames
//!   do not depend on chunking, and between pushes the splitter holds at most the cap.
//! - `annexb`: the AVCC/HVCC → Annex B conversion accepts any record and access unit: a
//!   writer or a typed error, never a panic; on success every input NAL unit (but
//!   delimiters) appears in order after a start code, the parameter sets only before a
//!   keyframe, and one delimiter ends the unit; on error the output is untouched.
//! - `codec_config`: the avcC and hvcC parsers and the AVCC access-unit check return for
//!   any bytes; what they accept is sane (a size within `1..=MAX_DIMENSION`, a codec string
//!   of the right family, the record kept whole as the description), and an accepted
//!   access unit is covered exactly by its length-prefixed NAL units.
//! - `request`: route matching, `max_fps` parsing, credential extraction, the
//!   `Sec-WebSocket-Key` check and the `Host` check (the DNS-rebinding defence) accept any
//!   URI and header bytes; what they extract is a part of the input, and a `Host` is
//!   accepted only when it names the gateway.
//! - `control`: the viewer's WebSocket text messages (`credit`, `shown`) and the upgrade's
//!   `credit` query parameter parse any bytes; what they accept is within the protocol's
//!   bounds (credit ≤ `MAX_CREDIT`; a report's frames ≤ `MAX_SHOWN_FRAMES`, at most
//!   `MAX_SHOWN_AGES` ages and no more than its frames, each finite in
//!   `0..=MAX_SHOWN_AGE_MS`), and an accepted query credit is digits from the input.
//! - `relay_protocol`: the `relay` plugin's reading of an upstream gateway's messages
//!   (`camgate_relay::protocol`: text messages, JPEG and video binary messages, the JPEG
//!   frame header scan, tag stripping) returns for any bytes; an accepted video frame is
//!   the input after its 18-byte header, a stripped JPEG is the input without exactly its
//!   33-byte tag, still SOI..EOI, and a config's description is non-empty.
//! - `thumbnail`: the picture-health reduction of a JPEG (scaled decode, luma averaging)
//!   returns a thumbnail or a typed error for any bytes; a thumbnail's mean lies in
//!   `0..=255`, its spread is finite and non-negative, and it does not differ from itself.

use std::path::Path;
use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue, Uri, header};

use crate::config::{self, AuthConfig};
use crate::http::auth::{self, Credential};
use crate::http::host::{HostPort, host_allowed};
use crate::http::pacing::parse_max_fps;
use crate::http::router::{ROUTES, matches};
use crate::http::ws::codec::{Decoder, Incoming, ProtocolError};
use crate::http::ws::control::{
    self, Control, MAX_CREDIT, MAX_SHOWN_AGE_MS, MAX_SHOWN_AGES, MAX_SHOWN_FRAMES,
};
use crate::http::ws::is_valid_key;
use crate::plugins::PluginCatalog;

/// A fuzz target: arbitrary bytes in, a panic on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name of its binary in `fuzz/` and its corpus in `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("ws_decoder", ws_decoder),
    ("manifest", manifest),
    ("jpeg_splitter", jpeg_splitter),
    ("request", request),
    ("annexb", annexb),
    ("codec_config", codec_config),
    ("control", control),
    ("thumbnail", thumbnail),
    ("relay_protocol", relay_protocol),
];

/// Chunk lengths taken from the input: each chunk is 1 to 64 bytes long, cycling through
/// `pattern` (a chunk of every length the fuzzer likes, reproducibly).
fn chunks<'a>(data: &'a [u8], pattern: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = data;
    let mut lengths = pattern.iter().copied().cycle();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = (usize::from(lengths.next().unwrap_or(0) % 64) + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        rest = tail;
        Some(chunk)
    })
}

/// Splits the fuzz input into a 2-byte configuration and the bytes under test.
fn settings(data: &[u8]) -> (u8, &[u8], &[u8]) {
    match data {
        [size, pattern_len, rest @ ..] => {
            let pattern_len = usize::from(*pattern_len % 8).min(rest.len());
            let (pattern, input) = rest.split_at(pattern_len);
            (*size, pattern, input)
        }
        _ => (0, &[], data),
    }
}

/// Decodes frames until the decoder needs more bytes or fails; checks the memory bound.
fn drain(
    decoder: &mut Decoder,
    max_message: usize,
    out: &mut Vec<Incoming>,
) -> Result<(), ProtocolError> {
    while let Some(frame) = decoder.next()? {
        out.push(frame);
    }
    // A drained decoder holds less than one frame: a header (at most 14 bytes) and its
    // payload, which is at most `max_message`.
    assert!(
        decoder.buffered() < 14 + max_message,
        "decoder holds {} bytes with max_message {max_message}",
        decoder.buffered()
    );
    assert!(decoder.message_len() <= max_message);
    Ok(())
}

/// The WebSocket decoder, fed the input whole and in chunks: same frames, same verdict.
pub fn ws_decoder(data: &[u8]) {
    let (size, pattern, input) = settings(data);
    // Small limits reach the size checks; 255 is the session's real limit.
    let max_message = if size == 255 {
        64 * 1024
    } else {
        usize::from(size)
    };
    let mut whole = Decoder::new(max_message, input, 16);
    let mut expected = Vec::new();
    let expected_end = drain(&mut whole, max_message, &mut expected);

    let mut chunked = Decoder::new(max_message, &[], 16);
    let mut got = Vec::new();
    let mut end = Ok(());
    for chunk in chunks(input, pattern) {
        chunked.buffer().extend_from_slice(chunk);
        end = drain(&mut chunked, max_message, &mut got);
        if end.is_err() {
            break;
        }
    }
    assert_eq!(got, expected, "frames depend on how the bytes arrive");
    assert_eq!(
        end, expected_end,
        "the verdict depends on how the bytes arrive"
    );
    if let Err(error) = end {
        assert!(matches!(error.close_code(), 1002 | 1007 | 1009));
    }
    for frame in got {
        if let Incoming::Close(Some(code)) = frame {
            assert!(crate::http::ws::codec::is_valid_close_code(code));
        }
    }
}

/// The real built-in plugins, registered once per process.
fn catalog() -> &'static PluginCatalog {
    static CATALOG: OnceLock<PluginCatalog> = OnceLock::new();
    CATALOG.get_or_init(PluginCatalog::with_builtins)
}

/// The manifest parser, with the built-in plugins validating each stream's `source`.
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let env = |name: &str| match name {
        "CAMGATE_FUZZ_TOKEN" => Some("0123456789abcdef0123".to_owned()),
        "CAMGATE_FUZZ_URL" => Some("rtsp://user:pass@127.0.0.1:8554/cam".to_owned()),
        _ => None,
    };
    let path = Path::new("/fuzz/camgate.yaml");
    match config::parse(&text, path, &env, catalog()) {
        Ok(manifest) => {
            let _ = format!("{manifest:?}");
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error result without errors");
            let _ = errors.to_string();
        }
    }
}

/// The ffmpeg plugin's JPEG splitter, fed the input whole and in chunks.
pub fn jpeg_splitter(data: &[u8]) {
    use camgate_ffmpeg_mjpeg::splitter::JpegSplitter;
    let (size, pattern, input) = settings(data);
    let max_frame = usize::from(size) * 4;
    let split = |chunked: bool| {
        let mut splitter = JpegSplitter::new(max_frame);
        let mut frames = Vec::new();
        let pieces: Box<dyn Iterator<Item = &[u8]>> = if chunked {
            Box::new(chunks(input, pattern))
        } else {
            Box::new(std::iter::once(input))
        };
        for piece in pieces {
            splitter.push(piece, |frame| {
                assert!(frame.jpeg.starts_with(&[0xFF, 0xD8]), "frame without SOI");
                assert!(frame.jpeg.ends_with(&[0xFF, 0xD9]), "frame without EOI");
                assert!(frame.jpeg.len() <= max_frame.max(4), "frame over the cap");
                frames.push((frame.jpeg.to_vec(), frame.width, frame.height));
            });
            // It never waits for bytes past the cap, so between pushes it holds no more.
            assert!(
                splitter.buffered() <= max_frame.max(4),
                "splitter holds {} bytes",
                splitter.buffered()
            );
        }
        frames
    };
    assert_eq!(
        split(true),
        split(false),
        "frames depend on how the bytes arrive"
    );
}

/// The decoder configuration parsers (`hub::codec_config`), both on every input, and the
/// access-unit check.
pub fn codec_config(data: &[u8]) {
    use crate::hub::Codec;
    use crate::hub::codec_config::{MAX_DIMENSION, check_access_unit, video_config};
    for (codec, family) in [(Codec::H264, "avc1."), (Codec::H265, "hvc1.")] {
        if let Ok(config) = video_config(codec, data) {
            assert!(config.codec_string.starts_with(family), "{config:?}");
            assert!((1..=MAX_DIMENSION).contains(&config.width), "{config:?}");
            assert!((1..=MAX_DIMENSION).contains(&config.height), "{config:?}");
            assert_eq!(config.description, data, "the record is kept whole");
        }
    }
    if check_access_unit(data, usize::MAX).is_ok() {
        let mut offset = 0;
        while offset < data.len() {
            let prefix = [
                data[offset],
                data[offset + 1],
                data[offset + 2],
                data[offset + 3],
            ];
            offset += 4 + u32::from_be_bytes(prefix) as usize;
        }
        assert_eq!(offset, data.len(), "NAL units do not cover the access unit");
    }
}

/// An auth configuration with tokens, parsed like any manifest's.
fn auth_config() -> &'static AuthConfig {
    static AUTH: OnceLock<AuthConfig> = OnceLock::new();
    AUTH.get_or_init(|| {
        let yaml = "auth:\n  tokens:\n    - { role: viewer, token: fuzz-viewer-token-0123 }\n";
        let manifest = config::parse(yaml, Path::new("/fuzz/auth.yaml"), &|_| None, catalog())
            .expect("the fuzz auth manifest is valid");
        manifest.auth
    })
}

/// Request handling before a handler runs. The input is up to five parts separated by
/// NUL bytes: the request target (URI), `Authorization`, `Cookie`, `Sec-WebSocket-Key`,
/// `Host`.
pub fn request(data: &[u8]) {
    let mut parts = data.splitn(5, |b| *b == 0);
    let target = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for name in [
        header::AUTHORIZATION,
        header::COOKIE,
        header::SEC_WEBSOCKET_KEY,
    ] {
        if let Some(value) = parts.next().and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.insert(name, value);
        }
    }
    if let Some(host) = parts.next().and_then(|v| std::str::from_utf8(v).ok()) {
        check_host(host);
    }
    if let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) {
        let valid = is_valid_key(key.as_bytes());
        assert!(
            !valid || key.len() == 24,
            "a key of {} bytes passed",
            key.len()
        );
    }
    let Ok(uri) = Uri::try_from(target) else {
        return;
    };
    let (path, query) = (uri.path(), uri.query());
    for route in ROUTES {
        if let Some(id) = matches(route.template, path) {
            assert_eq!(route.template.contains("{id}"), id.is_some());
            if let Some(id) = id {
                assert!(
                    !id.is_empty() && !id.contains('/'),
                    "id {id:?} from {path:?}"
                );
                assert!(path.contains(id));
            }
        }
    }
    if let Ok(Some(fps)) = parse_max_fps(query) {
        assert!(
            fps.is_finite() && fps > 0.0 && fps <= 120.0,
            "max_fps {fps}"
        );
    }
    // `variant=` is `main` (also when absent) or `sub`, and only when the query says so.
    if let Ok(variant) = crate::http::variant::parse_variant(query) {
        assert!(
            variant == crate::hub::Variant::Main
                || query.is_some_and(|q| q.split('&').any(|pair| pair == "variant=sub")),
            "{variant:?} from {query:?}"
        );
    }
    for allow_query in [false, true] {
        match auth::credential(auth_config(), &headers, query, allow_query) {
            Credential::Token(token) => {
                let from_header = headers
                    .get(header::AUTHORIZATION)
                    .is_some_and(|v| contains(v.as_bytes(), token.as_bytes()));
                assert!(
                    from_header || (allow_query && query.is_some_and(|q| q.contains(&token))),
                    "a token that is not in the request"
                );
            }
            Credential::Session(id) => {
                let cookie = headers.get(header::COOKIE).map(HeaderValue::as_bytes);
                assert!(cookie.is_some_and(|c| contains(c, id.as_bytes())));
                check_signed_session(&id);
            }
            Credential::None => {}
            Credential::Open => panic!("auth is enabled"),
        }
    }
}

/// A `Host` is accepted only when it may name the gateway: an IP literal, `localhost` or
/// an allowed name, never another name (the DNS-rebinding defence); a parsed one is a plain
/// lowercase host.
fn check_host(host: &str) {
    let allowed = ["cams.example.com".to_owned()];
    let parsed = HostPort::parse(host);
    if let Some(parsed) = &parsed {
        assert!(!parsed.host.is_empty(), "empty host from {host:?}");
        assert_eq!(parsed.host, parsed.host.to_ascii_lowercase());
        assert!(
            !parsed.host.contains(['/', '@', '?', '#', ' ']),
            "{parsed:?} from {host:?}"
        );
    }
    if host_allowed(host, &allowed) {
        let parsed = parsed.expect("an accepted Host parses");
        let names_gateway = parsed.host == "localhost"
            || parsed.host == "cams.example.com"
            || parsed.host.parse::<std::net::IpAddr>().is_ok();
        assert!(
            names_gateway,
            "accepted Host {host:?} is a name that is not allowed"
        );
    }
}

/// A cluster session id is accepted only when it is exactly what the token signs for its
/// expiry and nonce: nothing else verifies, whatever the bytes.
fn check_signed_session(id: &str) {
    use crate::http::signed_session::{sign, verify};
    const TOKEN: &str = "fuzz-token-0123456789";
    if verify(id, 0, [TOKEN]).is_some() {
        let rest = id.strip_prefix("c1.").expect("a signed id");
        let mut parts = rest.split('.');
        let expires: u64 = parts.next().and_then(|e| e.parse().ok()).expect("expiry");
        let hex = parts.next().expect("nonce");
        let mut nonce = [0u8; 16];
        for (i, byte) in nonce.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex nonce");
        }
        assert_eq!(sign(TOKEN, expires, &nonce), id);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The AVCC/HVCC → Annex B writer. Input: a flags byte (bit 0: H.265, bit 1: keyframe),
/// a record length byte, the record, then the access unit.
pub fn annexb(data: &[u8]) {
    use crate::hub::{Codec, VideoConfig};
    use crate::transcode::annexb::{AnnexBWriter, START_CODE, for_each_nal};
    let [flags, record_len, rest @ ..] = data else {
        return;
    };
    let (record, unit) = rest.split_at(usize::from(*record_len).min(rest.len()));
    let codec = if flags & 1 == 1 {
        Codec::H265
    } else {
        Codec::H264
    };
    let keyframe = flags & 2 == 2;
    let config = VideoConfig {
        codec,
        codec_string: String::new(),
        width: 0,
        height: 0,
        description: bytes::Bytes::copy_from_slice(record),
    };
    let Ok(writer) = AnnexBWriter::new(&config) else {
        return;
    };
    let mut out = b"prefix".to_vec();
    match writer.write(unit, keyframe, &mut out) {
        Err(error) => {
            assert_eq!(out, b"prefix", "output changed on error");
            let _ = error.to_string();
        }
        Ok(()) => {
            let mut rest = &out[6..];
            if keyframe {
                rest = rest
                    .strip_prefix(writer.parameter_sets())
                    .expect("parameter sets first");
            }
            let mut expected = Vec::new();
            for_each_nal(unit, writer.length_size(), |nal| {
                let delimiter = match codec {
                    Codec::H265 => (nal[0] >> 1) & 0x3F == 35,
                    _ => nal[0] & 0x1F == 9,
                };
                if !delimiter {
                    expected.extend_from_slice(&START_CODE);
                    expected.extend_from_slice(nal);
                }
            })
            .expect("the writer accepted what the parser refuses");
            assert!(!expected.is_empty(), "an empty access unit accepted");
            let aud: &[u8] = if codec == Codec::H265 {
                &[0, 0, 0, 1, 0x46, 0x01, 0x50]
            } else {
                &[0, 0, 0, 1, 0x09, 0xF0]
            };
            assert_eq!(
                rest,
                [&expected[..], aud].concat(),
                "not the input's NAL units and a delimiter"
            );
        }
    }
}

/// The `control` target (see the module docs).
pub fn control(data: &[u8]) {
    match control::parse(data) {
        Ok(Some(Control::Credit(n))) => assert!(n <= MAX_CREDIT, "credit {n}"),
        Ok(Some(Control::Shown(report))) => {
            assert!(
                report.frames <= MAX_SHOWN_FRAMES,
                "frames {}",
                report.frames
            );
            assert!(report.ages_ms.len() <= MAX_SHOWN_AGES);
            assert!(report.ages_ms.len() <= report.frames as usize);
            for age in &report.ages_ms {
                assert!(
                    age.is_finite() && (0.0..=MAX_SHOWN_AGE_MS).contains(age),
                    "age {age}"
                );
            }
        }
        Ok(None) | Err(_) => {}
    }
    let query = String::from_utf8_lossy(data);
    if let Ok(Some(n)) = control::initial_credit(Some(&query)) {
        assert!(n <= MAX_CREDIT, "query credit {n}");
        assert!(query.contains("credit=") && query.contains(&n.to_string()));
    }
}

/// The health monitor's JPEG reduction (`health::thumbnail`), with a small pixel limit so
/// that a header claiming a huge picture is refused rather than allocated.
pub fn thumbnail(data: &[u8]) {
    use crate::health::thumbnail::Thumbnail;
    if let Ok(thumbnail) = Thumbnail::from_jpeg_within(data, 1 << 20) {
        let mean = thumbnail.mean();
        assert!((0.0..=255.0).contains(&mean), "mean {mean}");
        let spread = thumbnail.spread();
        assert!(spread.is_finite() && spread >= 0.0, "spread {spread}");
        assert_eq!(thumbnail.difference(&thumbnail), 0.0);
    }
}

/// The `relay_protocol` target (see the module docs).
pub fn relay_protocol(data: &[u8]) {
    use camgate_relay::protocol::{
        Binary, TAG_LEN, Text, VIDEO_HEADER_LEN, jpeg_size, parse_binary, parse_text, strip_tag,
    };
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(Text::Config(config)) = parse_text(text)
    {
        assert!(!config.description.is_empty(), "an empty description");
    }
    if let Some((width, height)) = jpeg_size(data) {
        assert!(width <= 0xFFFF && height <= 0xFFFF);
    }
    match parse_binary(data) {
        Ok(Binary::Video { data: unit, .. }) => {
            assert!(!unit.is_empty(), "an empty access unit");
            assert_eq!(
                unit,
                &data[VIDEO_HEADER_LEN..],
                "not the input after its header"
            );
        }
        Ok(Binary::Jpeg { tag, .. }) => {
            let mut copy = data.to_vec();
            let stripped = strip_tag(&mut copy);
            assert_eq!(&stripped[..2], &[0xFF, 0xD8], "no SOI after stripping");
            assert_eq!(&stripped[stripped.len() - 2..], &[0xFF, 0xD9], "no EOI");
            if tag.is_some() {
                assert_eq!(
                    &stripped[2..],
                    &data[2 + TAG_LEN..],
                    "not the input without its tag"
                );
            } else {
                assert_eq!(stripped, data, "an untagged JPEG changed");
            }
        }
        Err(_) => {}
    }
}
