//! The messages a viewer session has handed to its socket but the socket has not taken yet.
//!
//! Invariants:
//! - Payloads are shared: a frame's JPEG is the hub's buffer (one vectored write of header
//!   and payload) or, for large frames, the frame's sealed message file (`sendfile`, see
//!   `sealed.rs`). Nothing is copied per viewer here.
//! - At most one pong waits: a newer ping replaces the payload of an unsent pong
//!   (RFC 6455 §5.5.3), so a client cannot grow the queue by pinging.
//! - The session decides what may be queued (at most one frame, see `session.rs`); the
//!   outbox only writes in order and says since when its head has been waiting.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::codec::{Header, Opcode};
use super::sealed;
use crate::http::sealed_file::SealedFile;

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
    /// The same message (header and payload) in a sealed file, sent with `sendfile`.
    file: Option<Arc<SealedFile>>,
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

    /// Queues a video frame: `jpeg`, or the same message in `file` when there is one.
    pub fn push_frame(
        &mut self,
        jpeg: Bytes,
        file: Option<Arc<SealedFile>>,
        receipt: FrameReceipt,
    ) {
        self.enqueue(Opcode::Binary, jpeg, file, Some(receipt));
    }

    /// Puts a frame whose first `written` bytes another writer already sent (the direct
    /// fan-out, see `lane.rs`) at the head of the queue: its remainder goes out first.
    pub fn push_started_frame(
        &mut self,
        jpeg: Bytes,
        file: Option<Arc<SealedFile>>,
        receipt: FrameReceipt,
        written: usize,
    ) {
        self.head_since = Instant::now();
        self.queue.push_front(Outgoing {
            opcode: Opcode::Binary,
            header: Header::new(Opcode::Binary, jpeg.len()),
            payload: jpeg,
            file,
            written,
            receipt: Some(receipt),
        });
    }

    /// Queues a control or text message.
    pub fn push(&mut self, opcode: Opcode, payload: Bytes) {
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
        self.enqueue(opcode, payload, None, None);
    }

    fn enqueue(
        &mut self,
        opcode: Opcode,
        payload: Bytes,
        file: Option<Arc<SealedFile>>,
        receipt: Option<FrameReceipt>,
    ) {
        if self.queue.is_empty() {
            self.head_since = Instant::now();
        }
        self.queue.push_back(Outgoing {
            opcode,
            header: Header::new(opcode, payload.len()),
            payload,
            file,
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
        while let Some(head) = self.queue.front() {
            let result = match &head.file {
                Some(file) => sealed::send(socket, file, head.written),
                None => self.write_from_memory(socket),
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.advance(written, &mut sent),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes the start of one frame message to an idle socket without waiting, from its
    /// sealed file if it has one (the direct fan-out's single write): bytes taken, or
    /// `WouldBlock`.
    pub fn write_frame(
        socket: &TcpStream,
        jpeg: &[u8],
        file: Option<&SealedFile>,
    ) -> io::Result<usize> {
        match file {
            Some(file) => sealed::send(socket, file, 0),
            None => {
                let header = Header::new(Opcode::Binary, jpeg.len());
                socket.try_write_vectored(&[IoSlice::new(header.as_bytes()), IoSlice::new(jpeg)])
            }
        }
    }

    /// One vectored write of the messages at the head that are not in files.
    fn write_from_memory(&self, socket: &TcpStream) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); 2 * MESSAGES_PER_WRITE];
        let mut count = 0;
        for message in self
            .queue
            .iter()
            .take(MESSAGES_PER_WRITE)
            .take_while(|m| m.file.is_none())
        {
            let header = message.header.as_bytes();
            if message.written < header.len() {
                slices[count] = IoSlice::new(&header[message.written..]);
                slices[count + 1] = IoSlice::new(&message.payload);
                count += 2;
            } else {
                slices[count] = IoSlice::new(&message.payload[message.written - header.len()..]);
                count += 1;
            }
        }
        socket.try_write_vectored(&slices[..count])
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
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn messages_reach_the_socket_in_order_and_frames_are_reported_once_written() {
        let (mut client, server) = super::super::loopback_pair().await;

        let frame = |len: usize, captured_at_us: u64| crate::hub::Frame {
            captured_at_us,
            ..crate::hub::Frame::for_test(1, Bytes::from(vec![captured_at_us as u8; len]))
        };
        let receipt = |f: &crate::hub::Frame| FrameReceipt {
            bytes: f.data.len(),
            captured_at_us: f.captured_at_us,
        };
        // A large frame goes through its sealed file, a small one from memory.
        let (large, small) = (frame(200_000, 42), frame(300, 43));
        let file = sealed::message_file(&large).cloned();
        assert!(file.is_some());
        assert!(sealed::message_file(&small).is_none());

        let mut outbox = Outbox::new();
        outbox.push(Opcode::Text, Bytes::from_static(b"{}"));
        outbox.push_frame(large.data.clone(), file, receipt(&large));
        outbox.push(Opcode::Pong, Bytes::from_static(b"old"));
        outbox.push(Opcode::Pong, Bytes::from_static(b"new"));
        outbox.push_frame(small.data.clone(), None, receipt(&small));
        assert_eq!(
            outbox.len(),
            4,
            "an unsent pong is replaced, not queued twice"
        );

        let mut expected = b"\x81\x02{}".to_vec();
        for (jpeg, pong) in [(&large.data, true), (&small.data, false)] {
            expected.extend_from_slice(Header::new(Opcode::Binary, jpeg.len()).as_bytes());
            expected.extend_from_slice(jpeg);
            if pong {
                expected.extend_from_slice(b"\x8a\x03new");
            }
        }

        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; expected.len()];
            client.read_exact(&mut got).await.unwrap();
            assert!(got == expected, "bytes on the wire differ");
            let mut more = [0u8; 1];
            let extra = tokio::time::timeout(Duration::from_millis(100), client.read(&mut more));
            assert!(extra.await.is_err(), "nothing after the last message");
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
        assert_eq!(reported, [42, 43]);
    }
}
