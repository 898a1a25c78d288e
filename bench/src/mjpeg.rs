//! An incremental parser for `multipart/x-mixed-replace` (MJPEG over HTTP) bodies.
//!
//! Lenient on purpose, because it also reads other servers' streams: the boundary may be
//! declared with or without leading dashes, a part may or may not carry `Content-Length`
//! (without one, the part ends at the next boundary), and bytes before the JPEG's SOI in a
//! part are skipped.

use bytes::{Buf, Bytes, BytesMut};

/// Extracts the boundary from a `Content-Type` header value.
pub fn boundary_of(content_type: &str) -> Option<String> {
    let value = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?;
    let value = value.trim_matches('"').trim_start_matches("--");
    (!value.is_empty()).then(|| value.to_owned())
}

enum State {
    /// Looking for the boundary line.
    Boundary,
    /// After the boundary line, reading part headers.
    Headers,
    /// Reading a part body: `Some(n)` bytes if the part said so, else up to the boundary.
    Body(Option<usize>),
}

/// Splits a multipart body into its parts (the JPEGs).
pub struct MultipartParser {
    boundary: Vec<u8>,
    buf: BytesMut,
    state: State,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl MultipartParser {
    /// A parser for parts separated by `--boundary` (or `boundary`).
    pub fn new(boundary: &str) -> Self {
        MultipartParser {
            boundary: boundary.as_bytes().to_vec(),
            buf: BytesMut::new(),
            state: State::Boundary,
        }
    }

    /// Feeds a chunk of the body and returns the parts it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        self.buf.extend_from_slice(chunk);
        let mut parts = Vec::new();
        loop {
            match self.state {
                State::Boundary => {
                    let Some(at) = find(&self.buf, &self.boundary) else {
                        // Keep a tail that may hold the start of a boundary.
                        let keep = self.boundary.len().min(self.buf.len());
                        let drop = self.buf.len() - keep;
                        self.buf.advance(drop);
                        break;
                    };
                    let Some(eol) = find(&self.buf[at..], b"\n") else {
                        break;
                    };
                    self.buf.advance(at + eol + 1);
                    self.state = State::Headers;
                }
                State::Headers => {
                    // Headers end at an empty line (CRLF CRLF, or bare LF LF).
                    let (end, skip) = match (find(&self.buf, b"\r\n\r\n"), find(&self.buf, b"\n\n"))
                    {
                        (Some(a), Some(b)) if b < a => (b, 2),
                        (Some(a), _) => (a, 4),
                        (None, Some(b)) => (b, 2),
                        (None, None) if self.buf.starts_with(b"\r\n") => (0, 2),
                        (None, None) => break,
                    };
                    let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                    let length = head.lines().find_map(|l| {
                        l.strip_prefix("content-length:")
                            .and_then(|v| v.trim().parse::<usize>().ok())
                    });
                    self.buf.advance(end + skip);
                    self.state = State::Body(length);
                }
                State::Body(Some(length)) => {
                    if self.buf.len() < length {
                        break;
                    }
                    parts.push(trim_to_soi(self.buf.split_to(length).freeze()));
                    self.state = State::Boundary;
                }
                State::Body(None) => {
                    let Some(at) = find(&self.buf, &self.boundary) else {
                        break;
                    };
                    let mut part = self.buf.split_to(at).freeze();
                    // Drop the "\r\n--" in front of the boundary.
                    while part
                        .last()
                        .is_some_and(|b| matches!(b, b'-' | b'\r' | b'\n'))
                    {
                        part.truncate(part.len() - 1);
                    }
                    parts.push(trim_to_soi(part));
                    self.state = State::Boundary;
                }
            }
        }
        parts.retain(|p| !p.is_empty());
        parts
    }
}

fn trim_to_soi(part: Bytes) -> Bytes {
    match find(&part, &[0xFF, 0xD8]) {
        Some(0) | None => part,
        Some(at) => part.slice(at..),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(with_length: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for jpeg in [
            &[0xFF, 0xD8, 1, 0xFF, 0xD9][..],
            &[0xFF, 0xD8, 2, 2, 0xFF, 0xD9][..],
        ] {
            out.extend_from_slice(b"\r\n--frame\r\nContent-Type: image/jpeg\r\n");
            if with_length {
                out.extend_from_slice(format!("Content-Length: {}\r\n", jpeg.len()).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(jpeg);
        }
        out.extend_from_slice(b"\r\n--frame\r\n");
        out
    }

    #[test]
    fn parts_do_not_depend_on_chunking() {
        for with_length in [true, false] {
            let data = body(with_length);
            for chunk in [1, 3, 7, data.len()] {
                let mut parser = MultipartParser::new("frame");
                let parts: Vec<Bytes> = data.chunks(chunk).flat_map(|c| parser.push(c)).collect();
                assert_eq!(parts.len(), 2, "chunk {chunk}, length {with_length}");
                assert_eq!(&parts[0][..], &[0xFF, 0xD8, 1, 0xFF, 0xD9]);
                assert_eq!(&parts[1][..], &[0xFF, 0xD8, 2, 2, 0xFF, 0xD9]);
            }
        }
    }

    #[test]
    fn boundary_from_content_type() {
        assert_eq!(
            boundary_of("multipart/x-mixed-replace; boundary=frame").as_deref(),
            Some("frame")
        );
        assert_eq!(
            boundary_of("multipart/x-mixed-replace;boundary=\"--abc\"").as_deref(),
            Some("abc")
        );
        assert_eq!(boundary_of("image/jpeg"), None);
    }
}
