//! Frames as WebSocket messages in sealed in-memory files, sent with `sendfile(2)`.
//!
//! Why: with `write`, the kernel copies every frame into every viewer's socket — at 500
//! viewers that copy was a quarter of the gateway's CPU. A server frame's bytes (2–10 byte
//! header + JPEG) are the same for every viewer, so the first viewer to send a frame writes
//! them once into a `memfd`; `sendfile` then makes each socket reference the file's pages
//! instead of copying them.
//!
//! Invariants:
//! - A file is sealed (no write, grow or shrink; seals sealed) before any viewer sends it,
//!   so pages the kernel still holds for a slow viewer can never change under it. When the
//!   last holder drops the file, those pages live on until the sockets release them.
//! - Only frames of at least [`SENDFILE_MIN_BYTES`] get a file: below that, copying is
//!   cheaper than managing pages.

use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;

use rustix::fs::{MemfdFlags, SealFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::codec::{Header, Opcode};
use crate::hub::Frame;

/// Frames smaller than this are written from memory (measured: at 5.5 KB, `sendfile`
/// saves nothing).
pub const SENDFILE_MIN_BYTES: usize = 16 * 1024;

/// The sealed file holding `frame` as a binary message (header, then JPEG), made on first
/// use and shared by all viewers. `None` for small frames or if no file could be made
/// (e.g. out of file descriptors): the caller then writes the JPEG itself.
pub fn message_file(frame: &Frame) -> Option<Arc<File>> {
    if frame.jpeg.len() < SENDFILE_MIN_BYTES {
        return None;
    }
    frame
        .ws_message
        .get_or_init(|| match sealed_message(&frame.jpeg) {
            Ok(file) => Some(Arc::new(file)),
            Err(error) => {
                tracing::debug!(%error, "cannot make a frame file; writing frames from memory");
                None
            }
        })
        .clone()
}

fn sealed_message(jpeg: &[u8]) -> io::Result<File> {
    let fd = rustix::fs::memfd_create(
        "camgate-frame",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut file = File::from(fd);
    file.write_all(Header::new(Opcode::Binary, jpeg.len()).as_bytes())?;
    file.write_all(jpeg)?;
    rustix::fs::fcntl_add_seals(
        &file,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )?;
    Ok(file)
}

/// Sends bytes `from..len` of `file` to `socket` without waiting: how many were taken, or
/// `WouldBlock` (which clears the socket's write readiness, like any tokio `try_` call).
pub fn send(socket: &TcpStream, file: &File, from: usize, len: usize) -> io::Result<usize> {
    socket.try_io(Interest::WRITABLE, || {
        let mut offset = from as u64;
        rustix::fs::sendfile(socket, file, Some(&mut offset), len - from).map_err(io::Error::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    fn frame(len: usize) -> Frame {
        Frame {
            seq: 1,
            captured_at_us: 0,
            published_at_us: 0,
            width: 0,
            height: 0,
            jpeg: bytes::Bytes::from(vec![9u8; len]),
            ws_message: Arc::default(),
        }
    }

    #[test]
    fn a_large_frame_gets_one_sealed_file_holding_the_whole_message() {
        let frame = frame(70_000);
        let file = message_file(&frame).expect("memfd works here");
        let again = message_file(&frame.clone()).unwrap();
        assert!(Arc::ptr_eq(&file, &again), "made once, shared by clones");

        let mut content = Vec::new();
        (&*file).rewind().unwrap();
        (&*file).read_to_end(&mut content).unwrap();
        let header = Header::new(Opcode::Binary, 70_000);
        assert_eq!(&content[..header.as_bytes().len()], header.as_bytes());
        assert_eq!(&content[header.as_bytes().len()..], &frame.jpeg[..]);
        // Sealed: nobody can change the pages a socket may still reference.
        assert!((&*file).write_all(b"x").is_err());
        assert!(file.set_len(1).is_err());
    }

    #[test]
    fn small_frames_are_written_from_memory() {
        assert!(message_file(&frame(SENDFILE_MIN_BYTES - 1)).is_none());
    }
}
