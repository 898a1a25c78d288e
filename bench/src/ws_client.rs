//! A lean WebSocket client for the load tool: the opening handshake, then server frames
//! parsed straight out of one growing read buffer.
//!
//! Why not tungstenite: its reader zero-fills its whole read buffer before every read; with
//! 500 viewers receiving 720p frames that was 38 % of the load tool's CPU, and a load tool
//! that burns the cores it shares with the gateway distorts what it measures (latency,
//! fan-out spread). Here reads go into spare capacity (`recvmsg` in `rx_time`, no zeroing,
//! with the kernel's receive time) and a message's payload is handed out as `Bytes` split
//! off the buffer, not copied.
//!
//! With [`Reading::Skim`] a viewer reads only the first bytes of each large binary message
//! (the Camgate tag sits right after SOI) and has the kernel discard the rest without
//! copying it (`MSG_TRUNC`): receiving 500 × 45 KB per frame then costs the shared cores a
//! third less, and the bytes still cross the socket and are counted.
//!
//! Invariants: pings are answered with a pong before the next message is returned;
//! each message's arrival time is the kernel's receive time of its last read (`rx_time`);
//! fragmented messages are reassembled; a message larger than [`MAX_MESSAGE`] is an error.

use anyhow::{Context, bail};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::viewer::Target;

/// Largest message accepted (a 4K JPEG is well below).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Bytes reserved per read for normal viewers.
pub const READ_CHUNK: usize = 64 * 1024;
/// Bytes of a binary message a skimming viewer keeps (the tag needs 35).
pub const SKIM_HEAD: usize = 64;
/// Bytes per read of a skimming viewer: a header and a message's head, not its body.
const SKIM_READ: usize = 256;

/// How a client takes messages off its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Every byte, at most this many per read.
    Full(usize),
    /// The first [`SKIM_HEAD`] bytes of unfragmented binary messages longer than that; the
    /// kernel discards the rest. Everything else is read in full.
    Skim,
}

/// A complete message from the server.
#[derive(Debug)]
pub enum Incoming {
    /// A binary message (one JPEG for Camgate): its bytes (only the first [`SKIM_HEAD`]
    /// when skimming) and its full length.
    Binary {
        /// The message's bytes (or its first [`SKIM_HEAD`] when skimming).
        head: Bytes,
        /// Its full length.
        len: usize,
    },
    /// A text message.
    Text(Bytes),
    /// The server closed, with its code if it gave one.
    Close(Option<u16>),
}

/// One client connection after a successful handshake.
pub struct WsClient {
    stream: TcpStream,
    buffer: BytesMut,
    /// Opcode and payload of a fragmented message in progress.
    partial: Option<(u8, BytesMut)>,
    mask: [u8; 4],
    reading: Reading,
    /// Kernel receive time of the newest bytes read (see `rx_time`).
    arrived_us: Option<u64>,
}

impl WsClient {
    /// Performs the opening handshake for `target` on `stream`; later reads follow
    /// `reading` (slow viewers read in small bites, like a slow link).
    pub async fn handshake(
        mut stream: TcpStream,
        target: &Target,
        reading: Reading,
    ) -> anyhow::Result<WsClient> {
        let key = generate_key();
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n",
            target.path, target.host
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buffer = BytesMut::with_capacity(READ_CHUNK);
        let end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            if buffer.len() > 16 * 1024 {
                bail!("handshake response headers too long");
            }
            if stream.read_buf(&mut buffer).await? == 0 {
                bail!("connection closed during the handshake");
            }
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        let status = head.split_whitespace().nth(1).unwrap_or("");
        if status != "101" {
            bail!("handshake answered {status}");
        }
        let accept = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("sec-websocket-accept")
                    .then(|| value.trim().to_owned())
            })
            .context("handshake response without Sec-WebSocket-Accept")?;
        if accept != derive_accept_key(key.as_bytes()) {
            bail!("handshake response has a wrong Sec-WebSocket-Accept");
        }
        buffer.advance(end);
        crate::rx_time::enable(&stream).context("cannot enable receive timestamps")?;
        let seed = key.as_bytes();
        Ok(WsClient {
            stream,
            buffer,
            partial: None,
            mask: [seed[0], seed[1], seed[2], seed[3]],
            reading,
            arrived_us: None,
        })
    }

    /// The next message; `Ok(None)` when the server closed the connection without a close
    /// frame.
    pub async fn next(&mut self) -> anyhow::Result<Option<Incoming>> {
        loop {
            if self.reading == Reading::Skim
                && let Some(skimmed) = self.skim().await?
            {
                return Ok(skimmed);
            }
            // One message at a time, so a skimming viewer looks at each message's head first.
            if let Some((fin, opcode, payload)) = self.parse()? {
                match opcode {
                    0x9 => self.send(0xA, &payload).await?,
                    0xA => {}
                    0x8 => {
                        let code = (payload.len() >= 2)
                            .then(|| u16::from_be_bytes([payload[0], payload[1]]));
                        return Ok(Some(Incoming::Close(code)));
                    }
                    0x0 => {
                        let Some((first, mut so_far)) = self.partial.take() else {
                            bail!("continuation frame without a message");
                        };
                        if so_far.len() + payload.len() > MAX_MESSAGE {
                            bail!("message larger than {MAX_MESSAGE} bytes");
                        }
                        so_far.extend_from_slice(&payload);
                        if fin {
                            return Ok(Some(message(first, so_far.freeze())));
                        }
                        self.partial = Some((first, so_far));
                    }
                    0x1 | 0x2 if fin => return Ok(Some(message(opcode, payload))),
                    0x1 | 0x2 => self.partial = Some((opcode, BytesMut::from(&payload[..]))),
                    other => bail!("unknown opcode {other:#x}"),
                }
                continue;
            }
            let chunk = match self.reading {
                Reading::Full(chunk) => chunk,
                Reading::Skim => SKIM_READ,
            };
            let (read, arrived_us) =
                crate::rx_time::read(&self.stream, &mut self.buffer, chunk).await?;
            if read == 0 {
                return Ok(None);
            }
            self.arrived_us = arrived_us;
        }
    }

    /// When the kernel received the last bytes of the message [`next`](Self::next) returned
    /// (µs since the Unix epoch): the arrival at the viewer's socket, free of the load
    /// tool's own scheduling delay.
    pub fn arrived_us(&self) -> Option<u64> {
        self.arrived_us
    }

    /// Sends a text message (short ones only: control-sized, < 126 bytes, such as the
    /// protocol's credit message).
    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.send(0x1, text.as_bytes()).await
    }

    /// Sends a close frame (best effort; the caller drops the connection afterwards).
    pub async fn close(&mut self) {
        let _ = self.send(0x8, &1000u16.to_be_bytes()).await;
    }

    /// When the buffer starts with an unfragmented binary message longer than
    /// [`SKIM_HEAD`] and holds its head: that head, after discarding the rest of the message
    /// (`Ok(Some(None))` if the server closed meanwhile). `Ok(None)` otherwise.
    async fn skim(&mut self) -> anyhow::Result<Option<Option<Incoming>>> {
        let b = &self.buffer[..];
        if b.len() < 2 || b[0] != 0x82 || b[1] & 0x80 != 0 {
            return Ok(None);
        }
        let (len, start) = match b[1] {
            126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => (
                usize::try_from(u64::from_be_bytes(b[2..10].try_into()?))?,
                10,
            ),
            126 | 127 => return Ok(None),
            n => (usize::from(n), 2),
        };
        if len <= SKIM_HEAD || b.len() < start + SKIM_HEAD {
            return Ok(None);
        }
        if len > MAX_MESSAGE {
            bail!("message larger than {MAX_MESSAGE} bytes");
        }
        self.buffer.advance(start);
        let head = self.buffer.split_to(SKIM_HEAD).freeze();
        let buffered = (len - SKIM_HEAD).min(self.buffer.len());
        self.buffer.advance(buffered);
        let mut left = len - SKIM_HEAD - buffered;
        while left > 0 {
            let (n, arrived_us) = crate::rx_time::discard(&self.stream, left).await?;
            if n == 0 {
                return Ok(Some(None));
            }
            left -= n;
            self.arrived_us = arrived_us;
        }
        Ok(Some(Some(Incoming::Binary { head, len })))
    }

    /// One complete frame from the buffer: (fin, opcode, payload).
    fn parse(&mut self) -> anyhow::Result<Option<(bool, u8, Bytes)>> {
        let b = &self.buffer[..];
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, opcode, masked) = (b[0] & 0x80 != 0, b[0] & 0x0F, b[1] & 0x80 != 0);
        let (len, mut start) = match b[1] & 0x7F {
            126 if b.len() < 4 => return Ok(None),
            126 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() < 10 => return Ok(None),
            127 => (u64::from_be_bytes(b[2..10].try_into()?), 10),
            n => (u64::from(n), 2),
        };
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= MAX_MESSAGE)
            .with_context(|| format!("frame larger than {MAX_MESSAGE} bytes"))?;
        let mask_key = masked.then_some(start);
        if masked {
            start += 4;
        }
        if b.len() < start + len {
            self.buffer.reserve(start + len - b.len());
            return Ok(None);
        }
        let mask: Option<[u8; 4]> = mask_key.map(|at| [b[at], b[at + 1], b[at + 2], b[at + 3]]);
        self.buffer.advance(start);
        let mut payload = self.buffer.split_to(len);
        if let Some(mask) = mask {
            // Servers must not mask, but unmasking costs nothing to support.
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= mask[i % 4];
            }
        }
        Ok(Some((fin, opcode, payload.freeze())))
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) -> anyhow::Result<()> {
        anyhow::ensure!(
            payload.len() < 126,
            "payload too long for a one-byte length"
        );
        let mut frame = Vec::with_capacity(6 + payload.len());
        frame.extend_from_slice(&[0x80 | opcode, 0x80 | payload.len() as u8]);
        frame.extend_from_slice(&self.mask);
        frame.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ self.mask[i % 4]),
        );
        self.stream.write_all(&frame).await?;
        Ok(())
    }
}

fn message(opcode: u8, payload: Bytes) -> Incoming {
    match opcode {
        0x2 => Incoming::Binary {
            len: payload.len(),
            head: payload,
        },
        _ => Incoming::Text(payload),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Accepts one WebSocket client on `listener` and answers its handshake (a
    /// hand-written server for the client's tests, here and in `viewer.rs`).
    pub(crate) async fn accept_handshake(listener: TcpListener) -> tokio::net::TcpStream {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            socket.read_exact(&mut byte).await.unwrap();
            request.push(byte[0]);
        }
        let request = String::from_utf8(request).unwrap();
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        socket.write_all(response.as_bytes()).await.unwrap();
        socket
    }

    /// A hand-written server: answers the handshake, then sends `frames` and returns what
    /// the client sent back.
    async fn serve(listener: TcpListener, frames: Vec<u8>) -> Vec<u8> {
        let mut socket = accept_handshake(listener).await;
        socket.write_all(&frames).await.unwrap();
        let mut back = Vec::new();
        let _ = socket.read_to_end(&mut back).await;
        back
    }

    /// A client reading as `reading` from [`serve`] sending `frames`.
    async fn connect(
        listener: TcpListener,
        frames: Vec<u8>,
        reading: Reading,
    ) -> (tokio::task::JoinHandle<Vec<u8>>, WsClient) {
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, frames));
        let target = Target {
            url: format!("ws://{addr}/ws/streams/x"),
            addr,
            host: addr.to_string(),
            path: "/ws/streams/x".into(),
        };
        let stream = TcpStream::connect(addr).await.unwrap();
        let client = WsClient::handshake(stream, &target, reading).await.unwrap();
        (server, client)
    }

    #[tokio::test]
    async fn reassembles_fragments_answers_pings_and_reports_the_close_code() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut frames = vec![0x01, 3, b'{', b'"', b'a'];
        frames.extend_from_slice(&[0x89, 2, b'h', b'i']); // a ping between fragments
        frames.extend_from_slice(&[0x80, 2, b'"', b'}']);
        frames.extend_from_slice(&[0x82, 126, 0x01, 0x00]);
        frames.extend(std::iter::repeat_n(7u8, 256));
        frames.extend_from_slice(&[0x88, 2, 0x0f, 0xa8]);
        let (server, mut client) = connect(listener, frames, Reading::Full(7)).await;
        match client.next().await.unwrap() {
            Some(Incoming::Text(text)) => assert_eq!(&text[..], b"{\"a\"}"),
            other => panic!("expected the reassembled text, got {other:?}"),
        }
        match client.next().await.unwrap() {
            Some(Incoming::Binary { head, len }) => {
                assert_eq!((&head[..], len), (&[7u8; 256][..], 256));
            }
            other => panic!("expected a binary message, got {other:?}"),
        }
        assert!(matches!(
            client.next().await.unwrap(),
            Some(Incoming::Close(Some(4008)))
        ));
        drop(client);
        // The pong went back masked, with the ping's payload.
        let back = server.await.unwrap();
        assert_eq!(&back[..2], &[0x8A, 0x82]);
        let mask = &back[2..6];
        assert_eq!([back[6] ^ mask[0], back[7] ^ mask[1]], *b"hi");
    }

    #[tokio::test]
    async fn a_skimming_client_keeps_heads_of_large_binaries_and_everything_else() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut frames = vec![0x81, 2, b'{', b'}'];
        let large: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        frames.extend_from_slice(&[0x82, 127]);
        frames.extend_from_slice(&(large.len() as u64).to_be_bytes());
        frames.extend_from_slice(&large);
        frames.extend_from_slice(&[0x89, 2, b'h', b'i']);
        frames.extend_from_slice(&[0x82, 3, 1, 2, 3]);
        frames.extend_from_slice(&[0x82, 126, 0x01, 0x00]);
        frames.extend(std::iter::repeat_n(5u8, 256));
        frames.extend_from_slice(&[0x88, 2, 0x03, 0xe8]);
        let (server, mut client) = connect(listener, frames, Reading::Skim).await;
        let mut got = Vec::new();
        while let Some(message) = client.next().await.unwrap() {
            let end = matches!(message, Incoming::Close(_));
            got.push(message);
            if end {
                break;
            }
        }
        match &got[..] {
            [
                Incoming::Text(text),
                Incoming::Binary {
                    head: a,
                    len: 70_000,
                },
                Incoming::Binary { head: b, len: 3 },
                Incoming::Binary { head: c, len: 256 },
                Incoming::Close(Some(1000)),
            ] => {
                assert_eq!(&text[..], b"{}");
                assert_eq!(&a[..], &large[..SKIM_HEAD], "the head, in order");
                assert_eq!(&b[..], &[1, 2, 3], "small messages are kept whole");
                assert_eq!(&c[..], &[5u8; SKIM_HEAD][..]);
            }
            other => panic!("unexpected messages: {other:?}"),
        }
        drop(client);
        let back = server.await.unwrap();
        assert_eq!(&back[..2], &[0x8A, 0x82], "the ping was answered");
    }
}
