//! Large frames as WebSocket messages in sealed in-memory files, sent with `sendfile(2)`.
//!
//! Why: with `write`, the kernel copies every frame into every viewer's socket — at 500
//! viewers that copy was a quarter of the gateway's CPU. A server frame's bytes (2–10 byte
//! header + JPEG) are the same for every viewer, so the first viewer to send a frame writes
//! them once into a [`SealedFile`] kept with the frame; `sendfile` then makes each socket
//! reference the file's pages instead of copying them.
//!
//! Invariant: only frames of at least [`SENDFILE_MIN_BYTES`] get a file (below that,
//! copying is cheaper than managing pages); when no file can be made, viewers send the
//! frame from memory, so a file is an optimisation, never a requirement.

use std::io;
use std::sync::Arc;

use tokio::io::Interest;
use tokio::net::TcpStream;

use super::codec::{Header, Opcode};
use crate::http::sealed_file::SealedFile;
use crate::hub::Frame;

/// Frames smaller than this are written from memory (measured: at 5.5 KB, `sendfile`
/// saves nothing).
pub const SENDFILE_MIN_BYTES: usize = 16 * 1024;

/// The sealed file holding `frame` as a binary message (header, then JPEG), made on first
/// use and shared by all viewers. `None` for small frames or if no file could be made (out
/// of file descriptors or over the file budget): the caller then writes the JPEG itself.
/// Borrowed, so the direct pass touches no refcount per viewer; clone it to keep it.
pub fn message_file(frame: &Frame) -> Option<&Arc<SealedFile>> {
    if frame.data.len() < SENDFILE_MIN_BYTES {
        return None;
    }
    let message = frame.derived.get_or_init(|| {
        let header = Header::new(Opcode::Binary, frame.data.len());
        match SealedFile::create(&[header.as_bytes(), &frame.data]) {
            Ok(file) => WsMessage(Some(Arc::new(file))),
            Err(error) => {
                tracing::debug!(%error, "no frame file; viewers write this frame from memory");
                WsMessage(None)
            }
        }
    })?;
    message.0.as_ref()
}

/// The WebSocket transport's representation of a frame, kept in the frame's
/// [`Derived`](crate::hub::Derived) slots: its binary message in a sealed file, or `None`
/// when none could be made (then nobody tries again for this frame).
struct WsMessage(Option<Arc<SealedFile>>);

/// Sends bytes `from..` of `sealed` to `socket` without waiting: how many were taken, or
/// `WouldBlock` (which clears the socket's write readiness, like any tokio `try_` call).
pub fn send(socket: &TcpStream, sealed: &SealedFile, from: usize) -> io::Result<usize> {
    socket.try_io(Interest::WRITABLE, || {
        let mut offset = from as u64;
        rustix::fs::sendfile(
            socket,
            sealed.file(),
            Some(&mut offset),
            sealed.len() - from,
        )
        .map_err(io::Error::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    fn frame(len: usize) -> Frame {
        Frame::for_test(1, bytes::Bytes::from(vec![9u8; len]))
    }

    #[test]
    fn a_large_frame_gets_one_file_holding_the_whole_message() {
        let frame = frame(70_000);
        let sealed = message_file(&frame).expect("memfd works here");
        let clone = frame.clone();
        let again = message_file(&clone).unwrap();
        assert!(Arc::ptr_eq(sealed, again), "made once, shared by clones");

        let mut content = Vec::new();
        let mut file = sealed.file();
        file.rewind().unwrap();
        file.read_to_end(&mut content).unwrap();
        let header = Header::new(Opcode::Binary, 70_000);
        assert_eq!(&content[..header.as_bytes().len()], header.as_bytes());
        assert_eq!(&content[header.as_bytes().len()..], &frame.data[..]);
        assert_eq!(sealed.len(), content.len());
    }

    #[test]
    fn small_frames_are_written_from_memory() {
        assert!(message_file(&frame(SENDFILE_MIN_BYTES - 1)).is_none());
    }
}
