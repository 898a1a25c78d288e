//! Hot reload: watches the manifest's directory, debounces, re-reads, and applies good
//! edits as a per-stream diff; keeps the last good configuration on a bad edit.
//!
//! Invariants:
//! - The *directory* is watched, and events are never filtered by file name: editors save
//!   by writing a temp file and renaming it, and Kubernetes ConfigMaps swap a `..data`
//!   symlink — in both cases the manifest's own name may never appear in an event.
//! - Every trigger (file event, SIGHUP, the periodic fallback check, an API write) goes
//!   through the same path: read both files, skip if their bytes are unchanged since the
//!   last successful apply, parse + validate, then apply or report.
//! - Reloads are serialised: one at a time, in order of arrival.

mod diff;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;
use tokio::sync::{mpsc, watch};

pub use diff::{Diff, diff};

use crate::app::AppState;

/// What asked for a reload (reported in the config status and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// A file-system event in the manifest's directory.
    File,
    /// SIGHUP.
    Signal,
    /// The periodic fallback check (file systems without events).
    Periodic,
    /// A change made through the HTTP API.
    Api,
}

/// Tunables of the reloader.
#[derive(Debug, Clone)]
pub struct ReloadOptions {
    /// Quiet time after a file event before reading (editors write in several steps).
    pub debounce: Duration,
    /// Interval of the fallback check.
    pub periodic: Duration,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            debounce: Duration::from_millis(250),
            periodic: Duration::from_secs(10),
        }
    }
}

/// Asks the reloader to reload; cheap to clone.
#[derive(Clone)]
pub struct ReloadTrigger(mpsc::Sender<Cause>);

impl ReloadTrigger {
    /// Requests a reload (coalesced with others that are pending).
    pub fn request(&self, cause: Cause) {
        let _ = self.0.try_send(cause);
    }
}

/// A fingerprint of the raw bytes of the manifest and its API file.
pub fn fingerprint(main: &[u8], api: Option<&[u8]>) -> u64 {
    let mut hasher = DefaultHasher::new();
    main.hash(&mut hasher);
    api.hash(&mut hasher);
    hasher.finish()
}

/// Starts the reloader for the manifest at `path`: a directory watcher, the fallback
/// timer and the loop that applies reloads to `state` until `shutdown`.
pub fn spawn(
    state: Arc<AppState>,
    path: PathBuf,
    options: ReloadOptions,
    mut shutdown: watch::Receiver<bool>,
) -> (ReloadTrigger, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Cause>(16);
    let trigger = ReloadTrigger(tx);
    let watcher = start_watcher(&path, trigger.clone());
    let task = tokio::spawn(async move {
        // Keep the watcher alive for as long as the loop runs.
        let _watcher = watcher;
        let mut periodic = tokio::time::interval(options.periodic);
        periodic.reset();
        loop {
            let cause = tokio::select! {
                _ = crate::hub::turned_true(&mut shutdown) => return,
                cause = rx.recv() => match cause {
                    Some(cause) => cause,
                    None => return,
                },
                _ = periodic.tick() => Cause::Periodic,
            };
            if cause == Cause::File {
                // Let the writer finish, then fold the burst of events into one reload.
                tokio::time::sleep(options.debounce).await;
            }
            while rx.try_recv().is_ok() {}
            state.reload(cause).await;
        }
    });
    (trigger, task)
}

/// Watches the manifest's directory; any event there triggers a (debounced) reload.
fn start_watcher(path: &Path, trigger: ReloadTrigger) -> Option<notify::RecommendedWatcher> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let handler = move |event: notify::Result<notify::Event>| match event {
        Ok(event) if !matches!(event.kind, notify::EventKind::Access(_)) => {
            trigger.request(Cause::File)
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "manifest watcher error"),
    };
    let watcher = notify::recommended_watcher(handler).and_then(|mut watcher| {
        watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
        Ok(watcher)
    });
    match watcher {
        Ok(watcher) => {
            tracing::info!(dir = %dir.display(), "watching the manifest's directory for changes");
            Some(watcher)
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the manifest's directory; relying on SIGHUP and the periodic check");
            None
        }
    }
}
