//! A frame's bytes in a sealed in-memory file, so sockets can `sendfile` them.
//!
//! Why: `sendfile` makes a socket reference the file's pages instead of copying the bytes,
//! so a frame written once can go to hundreds of viewers without a copy per viewer in the
//! kernel. A transport decides what the file holds (e.g. the WebSocket header, then the
//! JPEG) and keeps it with the frame ([`Frame::derived`](crate::hub::Frame::derived)).
//!
//! Invariants:
//! - A file is sealed (no write, grow or shrink; seals sealed) before anyone can send it, so
//!   pages a socket still holds for a slow viewer never change. When the last holder drops
//!   the file, those pages live on until the sockets release them.
//! - At most [`MAX_LIVE_FILES`] exist at once in the process (each is a file descriptor, and
//!   viewer sockets need them more): beyond that, [`SealedFile::create`] refuses and callers
//!   send from memory. A failed creation gives its slot back.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::{MemfdFlags, SealFlags};

/// Most sealed files alive at once. Normally a handful per stream (the latest frame and
/// the ones slow viewers are still sending); many stalled viewers on many streams could
/// otherwise hold thousands.
pub const MAX_LIVE_FILES: usize = 512;

/// How many sealed files may be alive at once, and how many are.
#[derive(Debug)]
pub struct FileBudget {
    max: usize,
    live: AtomicUsize,
}

/// The process-wide budget of [`SealedFile::create`].
static BUDGET: FileBudget = FileBudget::new(MAX_LIVE_FILES);

impl FileBudget {
    /// A budget of `max` files.
    pub const fn new(max: usize) -> FileBudget {
        FileBudget {
            max,
            live: AtomicUsize::new(0),
        }
    }

    /// Files of this budget alive right now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

/// An immutable in-memory file (a sealed `memfd`).
#[derive(Debug)]
pub struct SealedFile {
    file: File,
    len: usize,
    /// Its place in the budget, given back when the file is dropped.
    _slot: Slot,
}

impl SealedFile {
    /// A file holding `parts` one after the other, sealed, counted in the process budget.
    pub fn create(parts: &[&[u8]]) -> io::Result<SealedFile> {
        SealedFile::create_within(&BUDGET, parts)
    }

    /// The same within `budget`.
    pub fn create_within(budget: &'static FileBudget, parts: &[&[u8]]) -> io::Result<SealedFile> {
        if budget.live.fetch_add(1, Ordering::Relaxed) >= budget.max {
            budget.live.fetch_sub(1, Ordering::Relaxed);
            return Err(io::Error::other(format!(
                "{} sealed frame files are alive already",
                budget.max
            )));
        }
        // From here on the slot is given back on drop: with the file, or here on error.
        let slot = Slot(budget);
        let fd = rustix::fs::memfd_create(
            "camgate-frame",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        let mut file = File::from(fd);
        for part in parts {
            file.write_all(part)?;
        }
        rustix::fs::fcntl_add_seals(
            &file,
            SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
        )?;
        Ok(SealedFile {
            file,
            len: parts.iter().map(|p| p.len()).sum(),
            _slot: slot,
        })
    }

    /// The file, to send from.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One file's place in a budget; given back on drop.
#[derive(Debug)]
struct Slot(&'static FileBudget);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    #[test]
    fn holds_the_parts_in_order_and_cannot_change() {
        let sealed = SealedFile::create(&[b"head", &[7u8; 70_000]]).unwrap();
        assert_eq!(sealed.len(), 70_004);
        let mut file = sealed.file();
        let mut content = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut content).unwrap();
        assert_eq!(&content[..4], b"head");
        assert!(content[4..].iter().all(|b| *b == 7));
        assert!(file.write_all(b"x").is_err(), "sealed against writes");
        assert!(
            sealed.file().set_len(1).is_err(),
            "sealed against shrinking"
        );
    }

    #[test]
    fn the_number_alive_at_once_is_bounded() {
        let budget: &'static FileBudget = Box::leak(Box::new(FileBudget::new(3)));
        let mut held: Vec<_> = (0..3)
            .map(|_| SealedFile::create_within(budget, &[b"x"]).unwrap())
            .collect();
        let refused = SealedFile::create_within(budget, &[b"x"]).unwrap_err();
        assert!(
            refused.to_string().contains("3 sealed frame files"),
            "{refused}"
        );
        assert_eq!(budget.live(), 3);
        held.pop();
        assert_eq!(budget.live(), 2, "a dropped file gives its slot back");
        assert!(SealedFile::create_within(budget, &[b"x"]).is_ok());
        assert_eq!(budget.live(), 2);
    }
}
