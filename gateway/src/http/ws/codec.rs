//! RFC 6455 framing for the viewer WebSocket: server frames are built as a few header
//! bytes in front of a payload the caller already holds, so a JPEG shared by hundreds of
//! viewers is never copied per viewer; client frames are parsed incrementally from a
//! bounded buffer.
//!
//! Invariants:
//! - Server frames are final (FIN set), unmasked, and never fragmented.
//! - The decoder holds at most one frame (header + `max_message` payload bytes); a frame or
//!   fragmented message beyond `max_message` is a [`ProtocolError::TooLarge`], never a
//!   larger allocation.
//! - Client frames must be masked and use known opcodes; control frames must be final and
//!   at most 125 bytes (RFC 6455 §5.1, §5.5).

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
    /// The client starts (or answers) the closing handshake, with its code if it gave one.
    Close(Option<u16>),
    /// A data frame (text, binary or a fragment). Viewers have nothing to say yet, so the
    /// content is only proof of life.
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
}

impl ProtocolError {
    /// The close code that tells the client what it did wrong.
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolError::TooLarge { .. } => 1009,
            _ => 1002,
        }
    }
}

/// An incremental parser of client frames: read socket bytes into [`Decoder::buffer`],
/// then take frames with [`Decoder::next`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Decoder {
    buffer: BytesMut,
    max_message: usize,
    /// Bytes of the fragmented data message in progress, if one is.
    message_so_far: Option<usize>,
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
            message_so_far: None,
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
            Opcode::Close => Incoming::Close(
                (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
            ),
            Opcode::Text | Opcode::Binary | Opcode::Continuation => {
                let so_far = match (opcode, self.message_so_far) {
                    (Opcode::Continuation, Some(so_far)) => so_far,
                    (Opcode::Continuation, None) | (_, Some(_)) => {
                        return Err(ProtocolError::BadFragment);
                    }
                    _ => 0,
                };
                let total = so_far + payload.len();
                if total > limit {
                    return Err(ProtocolError::TooLarge { limit });
                }
                self.message_so_far = (!fin).then_some(total);
                Incoming::Data
            }
        }))
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
            Incoming::Data,
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
            [Incoming::Data, Incoming::Ping(Bytes::new()), Incoming::Data]
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
}
