//! The messages a viewer session has handed to its socket but the socket has not taken yet.
//!
//! Invariants:
//! - Payloads are shared `Bytes` (a frame's JPEG is the hub's buffer, never copied here);
//!   each message costs a 2–10 byte header and a vectored write.
//! - At most one pong waits: a newer ping replaces the payload of an unsent pong
//!   (RFC 6455 §5.5.3), so a client cannot grow the queue by pinging.
//! - The session decides what may be queued (at most one frame, see `session.rs`); the
//!   outbox only writes in order and says since when its head has been waiting.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::codec::{Header, Opcode};

/// Messages written per system call at most (two slices each).
const MESSAGES_PER_WRITE: usize = 4;

/// A frame's facts, reported to telemetry once all its bytes are written.
#[derive(Debug, Clone, Copy)]
pub struct FrameReceipt {
    /// JPEG bytes.
    pub bytes: usize,
    /// Capture time, µs since the Unix epoch.
    pub captured_at_us: u64,
}

/// One message on its way to the socket.
struct Outgoing {
    opcode: Opcode,
    header: Header,
    payload: Bytes,
    /// Bytes of header and payload already written.
    written: usize,
    receipt: Option<FrameReceipt>,
}

impl Outgoing {
    fn len(&self) -> usize {
        self.header.as_bytes().len() + self.payload.len()
    }
}

/// The per-session write queue.
pub struct Outbox {
    queue: VecDeque<Outgoing>,
    /// When the message at the head started waiting for the socket.
    head_since: Instant,
}

impl Outbox {
    /// An empty outbox (allocates nothing until the first message).
    pub fn new() -> Outbox {
        Outbox {
            queue: VecDeque::new(),
            head_since: Instant::now(),
        }
    }

    /// Messages waiting, including one partly written.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether everything handed over has been written.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Since when the head message has been waiting for the socket, if one is.
    pub fn waiting_since(&self) -> Option<Instant> {
        (!self.queue.is_empty()).then_some(self.head_since)
    }

    /// Queues a message; `receipt` marks a video frame.
    pub fn push(&mut self, opcode: Opcode, payload: Bytes, receipt: Option<FrameReceipt>) {
        if opcode == Opcode::Pong {
            // Only the newest ping needs an answer: reuse an unsent pong.
            if let Some(pong) = self
                .queue
                .iter_mut()
                .find(|m| m.opcode == Opcode::Pong && m.written == 0)
            {
                pong.header = Header::new(Opcode::Pong, payload.len());
                pong.payload = payload;
                return;
            }
        }
        if self.queue.is_empty() {
            self.head_since = Instant::now();
        }
        self.queue.push_back(Outgoing {
            opcode,
            header: Header::new(opcode, payload.len()),
            payload,
            written: 0,
            receipt,
        });
    }

    /// Writes what the socket takes without waiting. `sent` is called for each frame whose
    /// last byte was written. `Ok` with messages left means the socket is full: wait until
    /// it is writable.
    pub fn write_to(
        &mut self,
        socket: &TcpStream,
        mut sent: impl FnMut(FrameReceipt),
    ) -> io::Result<()> {
        while !self.queue.is_empty() {
            let mut slices = [IoSlice::new(&[]); 2 * MESSAGES_PER_WRITE];
            let mut count = 0;
            for message in self.queue.iter().take(MESSAGES_PER_WRITE) {
                let header = message.header.as_bytes();
                if message.written < header.len() {
                    slices[count] = IoSlice::new(&header[message.written..]);
                    slices[count + 1] = IoSlice::new(&message.payload);
                    count += 2;
                } else {
                    slices[count] =
                        IoSlice::new(&message.payload[message.written - header.len()..]);
                    count += 1;
                }
            }
            match socket.try_write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.advance(written, &mut sent),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn advance(&mut self, mut written: usize, sent: &mut impl FnMut(FrameReceipt)) {
        while let Some(head) = self.queue.front_mut() {
            let left = head.len() - head.written;
            if written < left {
                head.written += written;
                return;
            }
            written -= left;
            if let Some(receipt) = head.receipt {
                sent(receipt);
            }
            self.queue.pop_front();
            if !self.queue.is_empty() {
                self.head_since = Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn messages_reach_the_socket_in_order_and_frames_are_reported_once_written() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (mut client, server) = (client.unwrap(), accepted.unwrap().0);

        let mut outbox = Outbox::new();
        let jpeg = Bytes::from(vec![7u8; 200_000]);
        outbox.push(Opcode::Text, Bytes::from_static(b"{}"), None);
        let receipt = FrameReceipt {
            bytes: jpeg.len(),
            captured_at_us: 42,
        };
        outbox.push(Opcode::Binary, jpeg.clone(), Some(receipt));
        outbox.push(Opcode::Pong, Bytes::from_static(b"old"), None);
        outbox.push(Opcode::Pong, Bytes::from_static(b"new"), None);
        assert_eq!(
            outbox.len(),
            3,
            "an unsent pong is replaced, not queued twice"
        );

        let mut expected = b"\x81\x02{}".to_vec();
        expected.extend_from_slice(Header::new(Opcode::Binary, jpeg.len()).as_bytes());
        expected.extend_from_slice(&jpeg);
        expected.extend_from_slice(b"\x8a\x03new");

        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; expected.len()];
            client.read_exact(&mut got).await.unwrap();
            assert!(got == expected, "bytes on the wire differ");
        });
        let mut reported = Vec::new();
        while !outbox.is_empty() {
            outbox
                .write_to(&server, |r| reported.push(r.captured_at_us))
                .unwrap();
            if !outbox.is_empty() {
                server.writable().await.unwrap();
            }
        }
        reader.await.unwrap();
        assert_eq!(reported, [42]);
    }
}
