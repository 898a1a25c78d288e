//! RFC 6455 framing for the viewer WebSocket: server frames are built as a few header
//! bytes in front of a payload the caller already holds, so a JPEG shared by hundreds of
//! viewers is never copied per viewer; client frames are parsed incrementally from a
//! bounded buffer.
//!
//! Invariants:
//! - Server frames are final (FIN set), unmasked, and never fragmented.
//! - The decoder holds at most one frame (header + `max_message` payload bytes); a frame or
//!   fragmented message beyond `max_message` is a [`ProtocolError::TooLarge`], never a
//!   larger allocation. A fragmented *text* message is assembled (it is what a viewer says,
//!   e.g. a credit grant), so it holds at most `max_message` more; binary messages are
//!   never kept.
//! - Client frames must be masked and use known opcodes; control frames must be final and
//!   at most 125 bytes (RFC 6455 §5.1, §5.5).
//! - Text messages must be UTF-8 (§8.1), checked as fragments arrive: a character split
//!   across fragments is carried over in at most 3 bytes, so the check needs no buffer of
//!   its own. Close frames carry nothing or a valid code (§7.4) with a UTF-8 reason.

use bytes::{Buf, Bytes, BytesMut};

/// Frame opcodes (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// A later fragment of a data message.
    Continuation = 0x0,
    /// A UTF-8 text message (the protocol's JSON events).
    Text = 0x1,
    /// A binary message (one JPEG).
    Binary = 0x2,
    /// The closing handshake.
    Close = 0x8,
    /// A keepalive probe; the peer answers with a pong carrying the same payload.
    Ping = 0x9,
    /// The answer to a ping.
    Pong = 0xA,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// The header of a server frame: 2, 4 or 10 bytes, written just before the payload.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    bytes: [u8; 10],
    len: u8,
}

impl Header {
    /// The header of a final, unmasked frame carrying `payload_len` bytes.
    pub fn new(opcode: Opcode, payload_len: usize) -> Header {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | opcode as u8;
        let len = if payload_len < 126 {
            bytes[1] = payload_len as u8;
            2
        } else if let Ok(short) = u16::try_from(payload_len) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        };
        Header { bytes, len }
    }

    /// The encoded header.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The payload of a close frame: the code, then a UTF-8 reason (cut to fit 125 bytes).
pub fn close_payload(code: u16, reason: &str) -> Bytes {
    let mut reason_len = reason.len().min(123);
    while !reason.is_char_boundary(reason_len) {
        reason_len -= 1;
    }
    let mut payload = Vec::with_capacity(2 + reason_len);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..reason_len]);
    Bytes::from(payload)
}

/// What a client frame means to the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A ping: answer with a pong carrying this payload.
    Ping(Bytes),
    /// A pong (or any unsolicited one): proves the viewer is alive.
    Pong,
    /// The client starts (or answers) the closing handshake, with its code if it gave one
    /// (always a code RFC 6455 §7.4 lets an endpoint send).
    Close(Option<u16>),
    /// A complete text message (valid UTF-8, at most `max_message` bytes): what the viewer
    /// says (see `control.rs`).
    Text(Bytes),
    /// Any other data frame (binary, or a fragment of an unfinished message): only proof
    /// of life.
    Data,
}

/// Why a client's bytes cannot be a WebSocket conversation; each maps to a close code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Clients must mask every frame (RFC 6455 §5.1).
    #[error("client frame is not masked")]
    Unmasked,
    /// No extension was negotiated, so the reserved bits must be zero.
    #[error("reserved bits set without an extension")]
    ReservedBits,
    /// An opcode RFC 6455 does not define.
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// Control frames are final and carry at most 125 bytes.
    #[error("invalid control frame")]
    BadControlFrame,
    /// A continuation without a message to continue, or a new message inside another.
    #[error("unexpected fragment")]
    BadFragment,
    /// A frame or message larger than the session accepts.
    #[error("message larger than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A close frame with a 1-byte payload: a code is two bytes (§5.5.1).
    #[error("close frame with a 1-byte payload")]
    BadClosePayload,
    /// A close code an endpoint may not send (§7.4: reserved, internal-only or unassigned).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A text message or close reason that is not UTF-8 (§8.1).
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
}

impl ProtocolError {
    /// The close code that tells the client what it did wrong.
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolError::TooLarge { .. } => 1009,
            ProtocolError::InvalidUtf8 => 1007,
            _ => 1002,
        }
    }
}

/// Whether a peer may send `code` in a close frame (RFC 6455 §7.4.1 and the IANA registry):
/// the defined codes except those reserved for local use (1004 unassigned, 1005 "no code",
/// 1006 "abnormal", 1015 "TLS"), and the ranges for libraries (3000-3999) and applications
/// (4000-4999).
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// What a close frame's payload says: nothing, or a valid code and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<Option<u16>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::BadClosePayload),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !is_valid_close_code(code) {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(code))
        }
    }
}

/// Checks UTF-8 across the fragments of one text message without buffering the message:
/// only the bytes of a character cut by a fragment boundary (at most 3) are kept.
#[derive(Debug, Default, Clone)]
struct Utf8Check {
    pending: [u8; 4],
    pending_len: usize,
}

impl Utf8Check {
    /// Checks the next fragment; fails as soon as the bytes so far cannot be UTF-8.
    fn feed(&mut self, mut data: &[u8]) -> Result<(), ProtocolError> {
        if self.pending_len > 0 {
            // Complete the character the last fragment cut.
            let width = utf8_width(self.pending[0]);
            let take = (width - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            match std::str::from_utf8(&self.pending[..self.pending_len]) {
                Ok(_) => self.pending_len = 0,
                // Still cut (the fragment was shorter than the character): wait for more.
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(ProtocolError::InvalidUtf8),
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                // A valid start of a character that the next fragment must complete.
                let tail = &data[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len();
                Ok(())
            }
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }

    /// Checks that the message did not end inside a character.
    fn finish(&mut self) -> Result<(), ProtocolError> {
        let cut = std::mem::take(&mut self.pending_len);
        if cut == 0 {
            Ok(())
        } else {
            Err(ProtocolError::InvalidUtf8)
        }
    }
}

/// The length of the UTF-8 character that starts with `lead` (a lead byte the standard
/// library accepted as the start of an incomplete character: 2, 3 or 4).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

/// The data message in progress.
#[derive(Debug)]
struct Message {
    /// Payload bytes so far.
    len: usize,
    /// Set for text messages.
    utf8: Option<Utf8Check>,
    /// A text message's fragments so far (binary messages keep nothing).
    text: BytesMut,
}

/// An incremental parser of client frames: read socket bytes into [`Decoder::buffer`],
/// then take frames with [`Decoder::next`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Decoder {
    buffer: BytesMut,
    max_message: usize,
    /// The fragmented data message in progress, if one is.
    message: Option<Message>,
}

impl Decoder {
    /// A decoder accepting frames and messages of at most `max_message` payload bytes.
    /// `initial` holds bytes read before the session started (sent right after the
    /// handshake); `capacity` is the buffer reserved for reads.
    pub fn new(max_message: usize, initial: &[u8], capacity: usize) -> Decoder {
        let mut buffer = BytesMut::with_capacity(capacity.max(initial.len()));
        buffer.extend_from_slice(initial);
        Decoder {
            buffer,
            max_message,
            message: None,
        }
    }

    /// Where socket reads go. Reserve before reading if it is full.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }

    /// Makes room for at least `additional` more bytes of input.
    pub fn reserve(&mut self, additional: usize) {
        self.buffer.reserve(additional);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next(&mut self) -> Result<Option<Incoming>, ProtocolError> {
        let buf = &self.buffer[..];
        if buf.len() < 2 {
            return Ok(None);
        }
        let (first, second) = (buf[0], buf[1]);
        if first & 0x70 != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        let fin = first & 0x80 != 0;
        let opcode =
            Opcode::from_bits(first & 0x0F).ok_or(ProtocolError::UnknownOpcode(first & 0x0F))?;
        if second & 0x80 == 0 {
            return Err(ProtocolError::Unmasked);
        }
        let (len, len_bytes) = match second & 0x7F {
            126 if buf.len() < 4 => return Ok(None),
            126 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 2),
            127 if buf.len() < 10 => return Ok(None),
            127 => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&buf[2..10]);
                (u64::from_be_bytes(be), 8)
            }
            short => (u64::from(short), 0),
        };
        if opcode.is_control() && (!fin || len > 125) {
            return Err(ProtocolError::BadControlFrame);
        }
        let limit = self.max_message;
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= limit)
            .ok_or(ProtocolError::TooLarge { limit })?;
        let header_len = 2 + len_bytes + 4;
        let have = buf.len();
        if have < header_len + len {
            // Room for the whole frame, so the next read can complete it.
            self.buffer.reserve(header_len + len - have);
            return Ok(None);
        }
        let mask = [
            buf[header_len - 4],
            buf[header_len - 3],
            buf[header_len - 2],
            buf[header_len - 1],
        ];
        self.buffer.advance(header_len);
        let mut payload = self.buffer.split_to(len);
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
        self.frame(opcode, fin, payload.freeze())
    }

    fn frame(
        &mut self,
        opcode: Opcode,
        fin: bool,
        payload: Bytes,
    ) -> Result<Option<Incoming>, ProtocolError> {
        let limit = self.max_message;
        Ok(Some(match opcode {
            Opcode::Ping => Incoming::Ping(payload),
            Opcode::Pong => Incoming::Pong,
            Opcode::Close => Incoming::Close(parse_close(&payload)?),
            Opcode::Text | Opcode::Binary | Opcode::Continuation => {
                let mut message = match (opcode, self.message.take()) {
                    (Opcode::Continuation, Some(message)) => message,
                    (Opcode::Continuation, None) | (_, Some(_)) => {
                        return Err(ProtocolError::BadFragment);
                    }
                    (opcode, None) => Message {
                        len: 0,
                        utf8: (opcode == Opcode::Text).then(Utf8Check::default),
                        text: BytesMut::new(),
                    },
                };
                message.len += payload.len();
                if message.len > limit {
                    return Err(ProtocolError::TooLarge { limit });
                }
                let Some(utf8) = &mut message.utf8 else {
                    if !fin {
                        self.message = Some(message);
                    }
                    return Ok(Some(Incoming::Data));
                };
                utf8.feed(&payload)?;
                if !fin {
                    message.text.extend_from_slice(&payload);
                    self.message = Some(message);
                    return Ok(Some(Incoming::Data));
                }
                utf8.finish()?;
                if message.text.is_empty() {
                    // Unfragmented (the usual case): the payload is the message, no copy.
                    Incoming::Text(payload)
                } else {
                    message.text.extend_from_slice(&payload);
                    Incoming::Text(message.text.freeze())
                }
            }
        }))
    }

    /// Payload bytes of the fragmented message in progress (0 if none): with the buffer,
    /// what the decoder's memory bound is stated in.
    pub fn message_len(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.len)
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame, as a browser would send it.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn decode_all(bytes: &[u8], max: usize) -> Result<Vec<Incoming>, ProtocolError> {
        let mut decoder = Decoder::new(max, bytes, 16);
        let mut out = Vec::new();
        while let Some(frame) = decoder.next()? {
            out.push(frame);
        }
        Ok(out)
    }

    #[test]
    fn headers_use_the_shortest_length_encoding() {
        assert_eq!(Header::new(Opcode::Binary, 0).as_bytes(), [0x82, 0]);
        assert_eq!(Header::new(Opcode::Text, 125).as_bytes(), [0x81, 125]);
        assert_eq!(
            Header::new(Opcode::Binary, 126).as_bytes(),
            [0x82, 126, 0, 126]
        );
        assert_eq!(
            Header::new(Opcode::Binary, 65535).as_bytes(),
            [0x82, 126, 0xFF, 0xFF]
        );
        assert_eq!(
            Header::new(Opcode::Binary, 65536).as_bytes(),
            [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
        assert_eq!(Header::new(Opcode::Ping, 0).as_bytes(), [0x89, 0]);
        assert_eq!(Header::new(Opcode::Close, 2).as_bytes(), [0x88, 2]);
    }

    #[test]
    fn close_payloads_carry_the_code_and_a_reason_cut_on_a_char_boundary() {
        assert_eq!(&close_payload(4008, "slow")[..], b"\x0f\xa8slow");
        let long = "é".repeat(100);
        let payload = close_payload(1001, &long);
        assert!(payload.len() <= 125);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
    }

    #[test]
    fn masked_client_frames_are_decoded_at_every_split_point() {
        let mut bytes = client_frame(0x89, b"are you there");
        bytes.extend(client_frame(0x8A, b""));
        bytes.extend(client_frame(0x81, &[b'x'; 300]));
        bytes.extend(client_frame(0x88, b"\x03\xe8bye"));
        let expected = vec![
            Incoming::Ping(Bytes::from_static(b"are you there")),
            Incoming::Pong,
            Incoming::Text(Bytes::from(vec![b'x'; 300])),
            Incoming::Close(Some(1000)),
        ];
        assert_eq!(decode_all(&bytes, 1024).unwrap(), expected);
        // The same bytes arriving in two reads, split anywhere.
        for split in 0..bytes.len() {
            let mut decoder = Decoder::new(1024, &bytes[..split], 4);
            let mut got = Vec::new();
            while let Some(frame) = decoder.next().unwrap() {
                got.push(frame);
            }
            decoder.buffer().extend_from_slice(&bytes[split..]);
            while let Some(frame) = decoder.next().unwrap() {
                got.push(frame);
            }
            assert_eq!(got, expected, "split at {split}");
        }
    }

    #[test]
    fn fragmented_messages_are_followed_and_bounded() {
        let mut bytes = client_frame(0x01, b"hel");
        bytes.extend(client_frame(0x89, b"")); // a control frame between fragments is fine
        bytes.extend(client_frame(0x80, b"lo"));
        assert_eq!(
            decode_all(&bytes, 16).unwrap(),
            [
                Incoming::Data,
                Incoming::Ping(Bytes::new()),
                Incoming::Text(Bytes::from_static(b"hello"))
            ]
        );
        // A binary message is never kept: each fragment is only proof of life.
        let mut binary = client_frame(0x02, b"hel");
        binary.extend(client_frame(0x80, b"lo"));
        assert_eq!(
            decode_all(&binary, 16).unwrap(),
            [Incoming::Data, Incoming::Data]
        );
        // An assembled text message is bounded like any other.
        let mut long_text = client_frame(0x01, &[b'a'; 10]);
        long_text.extend(client_frame(0x80, &[b'a'; 7]));
        assert_eq!(
            decode_all(&long_text, 16),
            Err(ProtocolError::TooLarge { limit: 16 })
        );
        let mut too_long = client_frame(0x02, &[0; 10]);
        too_long.extend(client_frame(0x80, &[0; 10]));
        assert_eq!(
            decode_all(&too_long, 16),
            Err(ProtocolError::TooLarge { limit: 16 })
        );
        assert_eq!(
            decode_all(&client_frame(0x80, b"x"), 16),
            Err(ProtocolError::BadFragment)
        );
        let mut nested = client_frame(0x01, b"a");
        nested.extend(client_frame(0x81, b"b"));
        assert_eq!(decode_all(&nested, 16), Err(ProtocolError::BadFragment));
    }

    #[test]
    fn bad_frames_get_the_right_close_code() {
        let unmasked = [0x81, 0x01, b'x'];
        assert_eq!(decode_all(&unmasked, 16), Err(ProtocolError::Unmasked));
        assert_eq!(
            decode_all(&client_frame(0xC1, b"x"), 16),
            Err(ProtocolError::ReservedBits)
        );
        assert_eq!(
            decode_all(&client_frame(0x83, b"x"), 16),
            Err(ProtocolError::UnknownOpcode(3))
        );
        assert_eq!(
            decode_all(&client_frame(0x09, b""), 16),
            Err(ProtocolError::BadControlFrame)
        );
        let error = decode_all(&client_frame(0x89, &[0; 126]), 1024).unwrap_err();
        assert_eq!(error, ProtocolError::BadControlFrame);
        assert_eq!(error.close_code(), 1002);
        // An oversized frame is refused from its header alone: nothing is buffered for it.
        let mut decoder = Decoder::new(1000, &client_frame(0x82, &[0; 70_000])[..14], 16);
        let error = decoder.next().unwrap_err();
        assert_eq!(error, ProtocolError::TooLarge { limit: 1000 });
        assert_eq!(error.close_code(), 1009);
    }

    #[test]
    fn text_must_be_utf8_even_when_a_character_spans_fragments() {
        let bad = decode_all(&client_frame(0x81, b"caf\xc3("), 64).unwrap_err();
        assert_eq!(bad, ProtocolError::InvalidUtf8);
        assert_eq!(bad.close_code(), 1007);
        // Binary messages are not text: any bytes go.
        assert_eq!(
            decode_all(&client_frame(0x82, b"\xff\xfe"), 64).unwrap(),
            [Incoming::Data]
        );
        // "aé€😀" cut into two fragments at every byte, and into one fragment per byte.
        let text = "aé€😀".as_bytes();
        for cut in 0..=text.len() {
            let mut bytes = client_frame(0x01, &text[..cut]);
            bytes.extend(client_frame(0x89, b"")); // a control frame in between
            bytes.extend(client_frame(0x80, &text[cut..]));
            assert_eq!(decode_all(&bytes, 64).unwrap().len(), 3, "cut at {cut}");
        }
        let mut one_by_one = Vec::new();
        for (i, byte) in text.iter().enumerate() {
            let fin = if i + 1 == text.len() { 0x80 } else { 0 };
            let opcode = if i == 0 { 0x01 } else { 0x00 };
            one_by_one.extend(client_frame(fin | opcode, &[*byte]));
        }
        assert_eq!(decode_all(&one_by_one, 64).unwrap().len(), text.len());
        // A message that ends inside a character, and a bad byte after a cut one.
        let mut truncated = client_frame(0x01, b"ok\xe2\x82");
        truncated.extend(client_frame(0x80, b""));
        assert_eq!(decode_all(&truncated, 64), Err(ProtocolError::InvalidUtf8));
        let mut broken = client_frame(0x01, b"\xe2");
        broken.extend(client_frame(0x80, b"\x82("));
        assert_eq!(decode_all(&broken, 64), Err(ProtocolError::InvalidUtf8));
        // Fails fast: the first fragment alone is already not UTF-8 (a surrogate).
        let mut decoder = Decoder::new(64, &client_frame(0x01, b"\xed\xa0\x80"), 16);
        assert_eq!(decoder.next(), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn close_frames_carry_nothing_or_a_valid_code_and_a_utf8_reason() {
        let close = |payload: &[u8]| decode_all(&client_frame(0x88, payload), 64);
        assert_eq!(close(b""), Ok(vec![Incoming::Close(None)]));
        assert_eq!(close(b"\x03"), Err(ProtocolError::BadClosePayload));
        assert_eq!(ProtocolError::BadClosePayload.close_code(), 1002);
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
        ] {
            let payload = close_payload(code, "fine");
            assert_eq!(
                close(&payload),
                Ok(vec![Incoming::Close(Some(code))]),
                "{code}"
            );
        }
        for code in [
            0u16,
            999,
            1004,
            1005,
            1006,
            1015,
            1016,
            2999,
            5000,
            u16::MAX,
        ] {
            let error = close(&code.to_be_bytes()).unwrap_err();
            assert_eq!(error, ProtocolError::InvalidCloseCode(code));
            assert_eq!(error.close_code(), 1002);
        }
        let mut bad_reason = 1000u16.to_be_bytes().to_vec();
        bad_reason.extend_from_slice(b"bye\xc0");
        let error = close(&bad_reason).unwrap_err();
        assert_eq!(error, ProtocolError::InvalidUtf8);
        assert_eq!(error.close_code(), 1007);
    }
}
