//! The files a configuration was read from, and a fingerprint of the exact bytes parsed.
//!
//! Invariants:
//! - Every file the loader reads (the manifest, the API-managed streams file, every
//!   `token_file`) goes through one [`ReadLog`], which hashes the very bytes that are then
//!   parsed. The fingerprint therefore describes what is running, not what is on disk a
//!   moment later (no read-then-reread window).
//! - A missing or unreadable file is part of the fingerprint too (as "absent"), so creating
//!   it is a change.
//! - [`SourceSet::changed_on_disk`] re-reads the same files in the same order; a configuration
//!   built in memory has no files and always counts as changed (it cannot be compared).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// Records every file read while loading a configuration.
#[derive(Debug, Default)]
pub(crate) struct ReadLog {
    entries: Vec<(PathBuf, Option<u64>)>,
}

impl ReadLog {
    /// Reads `path`, remembering the hash of its bytes (or that it could not be read).
    pub fn read(&mut self, path: &Path) -> std::io::Result<Vec<u8>> {
        let result = std::fs::read(path);
        self.record(path, result.as_deref().ok());
        result
    }

    /// Remembers that `bytes` (`None`: absent) were used as the content of `path`.
    pub fn record(&mut self, path: &Path, bytes: Option<&[u8]>) {
        self.entries.push((path.to_owned(), bytes.map(hash_bytes)));
    }

    /// Adds the entries of `other` after this log's.
    pub fn extend(&mut self, other: ReadLog) {
        self.entries.extend(other.entries);
    }

    /// The set of files read and their fingerprint.
    pub fn finish(self) -> SourceSet {
        let fingerprint = fingerprint_of(&self.entries);
        SourceSet {
            files: self.entries.into_iter().map(|(path, _)| path).collect(),
            fingerprint: Some(fingerprint),
        }
    }
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

fn fingerprint_of(entries: &[(PathBuf, Option<u64>)]) -> u64 {
    let mut hasher = DefaultHasher::new();
    entries.hash(&mut hasher);
    hasher.finish()
}

/// Every file a configuration was read from, with the fingerprint of the bytes that were
/// parsed: what "unchanged" is decided on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceSet {
    files: Vec<PathBuf>,
    /// `None` for a configuration that was not read from files.
    fingerprint: Option<u64>,
}

impl SourceSet {
    /// The files, in the order they were read.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The fingerprint of the bytes parsed (`None`: not read from files).
    pub fn fingerprint(&self) -> Option<u64> {
        self.fingerprint
    }

    /// Re-reads the files and tells whether any of them differs from what was parsed
    /// (always true for a configuration that was not read from files).
    pub fn changed_on_disk(&self) -> bool {
        let Some(fingerprint) = self.fingerprint else {
            return true;
        };
        let mut log = ReadLog::default();
        for file in &self.files {
            let _ = log.read(file);
        }
        fingerprint_of(&log.entries) != fingerprint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_covers_every_file_and_absence() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "one").unwrap();
        let mut log = ReadLog::default();
        assert_eq!(log.read(&a).unwrap(), b"one");
        assert!(log.read(&b).is_err());
        let set = log.finish();
        assert_eq!(set.files(), [a.clone(), b.clone()]);
        assert!(!set.changed_on_disk());
        std::fs::write(&b, "").unwrap();
        assert!(set.changed_on_disk(), "creating a file is a change");
        std::fs::remove_file(&b).unwrap();
        assert!(!set.changed_on_disk());
        std::fs::write(&a, "two").unwrap();
        assert!(set.changed_on_disk());
        assert!(SourceSet::default().changed_on_disk());
    }
}
