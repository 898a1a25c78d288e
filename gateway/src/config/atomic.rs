//! Atomic file replacement for the files the gateway writes itself (the API-managed
//! streams file, the groups file).
//!
//! Invariants: a reader — the gateway's own watcher, an operator's `cat`, a crash at any
//! point — sees the old content or the new, never half of it (temp file in the same
//! directory, fsync, rename, fsync of the directory); a new file is created with mode 0600
//! (these files may hold camera passwords, or say which cameras exist); a failed write
//! leaves no temp file behind. Callers serialise writes to one path (the temp file's name
//! is per process, not per call).

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes` atomically, creating it with mode 0600.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // Make the rename itself durable.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
