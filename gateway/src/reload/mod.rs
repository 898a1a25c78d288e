//! Hot reload: watches the manifest's directory, debounces, re-reads, and applies good
//! edits as a per-stream diff; keeps the last good configuration on a bad edit.
//!
//! Invariants:
//! - The *directory* is watched, and events are never filtered by file name: editors save
//!   by writing a temp file and renaming it, and Kubernetes ConfigMaps swap a `..data`
//!   symlink — in both cases the manifest's own name may never appear in an event.
//! - Every trigger (file event, SIGHUP, the periodic fallback check) goes through the same
//!   path, [`AppState::reload`]: skip if the bytes of every file the running configuration
//!   came from (manifest, API file, token files) are unchanged, or are exactly the bytes of
//!   the last rejected attempt; otherwise parse + validate, then apply or report. SIGHUP is
//!   never skipped. API writes validate and apply their own candidate under the same lock.
//! - The debounce is trailing: a file event starts a quiet period of `debounce`, and every
//!   further event restarts it, so a slow writer (scp, a large file written in chunks) is
//!   read once it has finished, not half-way (a truncated `streams:` list is valid YAML and
//!   would remove streams). A directory that never goes quiet is still read after
//!   `debounce_max` from the first event. A SIGHUP arriving meanwhile ends the wait at once.
//! - Reloads are serialised: one at a time, in order of arrival.

mod diff;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Quiet time after the LAST file event before reading (editors and copies write in
    /// several steps); every event restarts it.
    pub debounce: Duration,
    /// Longest wait from the first file event of a burst, for directories that are never
    /// quiet (a log file next to the manifest).
    pub debounce_max: Duration,
    /// Interval of the fallback check.
    pub periodic: Duration,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            debounce: Duration::from_millis(250),
            debounce_max: Duration::from_secs(5),
            periodic: Duration::from_secs(10),
        }
    }
}

/// Asks the reloader to reload; cheap to clone.
#[derive(Clone)]
pub struct ReloadTrigger {
    tx: mpsc::Sender<Cause>,
    /// Set by a SIGHUP request. The queue is bounded and a full one drops requests (a busy
    /// directory fills it with file events while a reload runs); this flag is not dropped,
    /// so a SIGHUP is never lost nor downgraded to a skippable file event.
    signal: Arc<AtomicBool>,
}

impl ReloadTrigger {
    /// Requests a reload (coalesced with others that are pending).
    pub fn request(&self, cause: Cause) {
        if cause == Cause::Signal {
            self.signal.store(true, Ordering::SeqCst);
        }
        let _ = self.tx.try_send(cause);
    }
}

/// The reloader's end of [`ReloadTrigger`].
struct Requests {
    rx: mpsc::Receiver<Cause>,
    signal: Arc<AtomicBool>,
}

fn requests() -> (ReloadTrigger, Requests) {
    let (tx, rx) = mpsc::channel::<Cause>(16);
    let signal = Arc::new(AtomicBool::new(false));
    let trigger = ReloadTrigger {
        tx,
        signal: Arc::clone(&signal),
    };
    (trigger, Requests { rx, signal })
}

impl Requests {
    /// The cause to reload with, given the request that woke the loop: a file event waits
    /// for its burst to end, pending requests are folded in, and a SIGHUP requested
    /// meanwhile wins. `None` when every trigger is gone.
    async fn settle(&mut self, first: Cause, options: &ReloadOptions) -> Option<Cause> {
        let cause = if first == Cause::File {
            // Let the writer finish: fold the burst of events into one reload.
            settle_events(&mut self.rx, options).await?
        } else {
            strongest(first, drain(&mut self.rx))
        };
        Some(if self.signal.swap(false, Ordering::SeqCst) {
            Cause::Signal
        } else {
            cause
        })
    }
}

/// Waits for a burst of file events to end: until no event came for `debounce`, or
/// `debounce_max` after the first, or another cause arrives. Returns the cause to reload
/// with: `Signal` if any SIGHUP came in meanwhile (it must not be skipped), else the first
/// non-file cause, else `File`.
async fn settle_events(rx: &mut mpsc::Receiver<Cause>, options: &ReloadOptions) -> Option<Cause> {
    let give_up = tokio::time::Instant::now() + options.debounce_max;
    loop {
        let quiet_until = (tokio::time::Instant::now() + options.debounce).min(give_up);
        tokio::select! {
            _ = tokio::time::sleep_until(quiet_until) => return Some(Cause::File),
            cause = rx.recv() => match cause? {
                Cause::File => continue,
                other => return Some(strongest(other, drain(rx))),
            },
        }
    }
}

/// Empties the queue of pending requests (they are folded into the reload about to run)
/// and returns the strongest of them.
fn drain(rx: &mut mpsc::Receiver<Cause>) -> Option<Cause> {
    let mut strongest_seen = None;
    while let Ok(cause) = rx.try_recv() {
        strongest_seen = Some(strongest(cause, strongest_seen));
    }
    strongest_seen
}

/// `Signal` wins (it is never skipped), then any other non-file cause, then `File`.
fn strongest(cause: Cause, other: Option<Cause>) -> Cause {
    match (cause, other) {
        (Cause::Signal, _) | (_, Some(Cause::Signal)) => Cause::Signal,
        (Cause::File, Some(other)) => other,
        (cause, _) => cause,
    }
}

/// Starts the reloader for the manifest at `path`: a directory watcher, the fallback
/// timer and the loop that applies reloads to `state` until `shutdown`.
pub fn spawn(
    state: Arc<AppState>,
    path: PathBuf,
    options: ReloadOptions,
    mut shutdown: watch::Receiver<bool>,
) -> (ReloadTrigger, tokio::task::JoinHandle<()>) {
    let (trigger, mut requests) = requests();
    let api_file = state.config().api_file.clone();
    let watcher = start_watcher(&path, &api_file, trigger.clone());
    let task = tokio::spawn(async move {
        // Keep the watcher alive for as long as the loop runs.
        let _watcher = watcher;
        let mut periodic = tokio::time::interval(options.periodic);
        periodic.reset();
        loop {
            let cause = tokio::select! {
                _ = crate::hub::turned_true(&mut shutdown) => return,
                cause = requests.rx.recv() => match cause {
                    Some(cause) => cause,
                    None => return,
                },
                _ = periodic.tick() => Cause::Periodic,
            };
            let Some(cause) = requests.settle(cause, &options).await else {
                return;
            };
            state.reload(cause).await;
        }
    });
    (trigger, task)
}

/// The directory holding `file` (`.` for a bare file name).
fn dir_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Watches the manifest's directory (and the API file's, when `server.api_streams_file`
/// puts it elsewhere); any event there triggers a (debounced) reload. Files elsewhere (token
/// files, an API file moved by a later edit) are covered by the periodic check.
fn start_watcher(
    path: &Path,
    api_file: &Path,
    trigger: ReloadTrigger,
) -> Option<notify::RecommendedWatcher> {
    let dir = dir_of(path);
    let api_dir = dir_of(api_file);
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
        Ok(mut watcher) => {
            tracing::info!(dir = %dir.display(), "watching the manifest's directory for changes");
            if api_dir != dir {
                match watcher.watch(&api_dir, notify::RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        tracing::info!(dir = %api_dir.display(), "watching the API streams file's directory")
                    }
                    Err(e) => {
                        tracing::warn!(dir = %api_dir.display(), error = %e, "cannot watch the API streams file's directory; relying on the periodic check")
                    }
                }
            }
            Some(watcher)
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the manifest's directory; relying on SIGHUP and the periodic check");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ReloadOptions {
        ReloadOptions {
            debounce: Duration::from_millis(250),
            debounce_max: Duration::from_secs(5),
            periodic: Duration::from_secs(10),
        }
    }

    /// A writer that emits a file event every `gap` for `count` times, starting now.
    fn writer(tx: mpsc::Sender<Cause>, gap: Duration, count: u32) {
        tokio::spawn(async move {
            for _ in 0..count {
                tokio::time::sleep(gap).await;
                let _ = tx.send(Cause::File).await;
            }
        });
    }

    #[tokio::test(start_paused = true)]
    async fn the_debounce_waits_for_the_last_event_of_a_slow_writer() {
        let (tx, mut rx) = mpsc::channel(16);
        let start = tokio::time::Instant::now();
        // Chunks 100 ms apart for 1 s: a leading 250 ms debounce would read after 250 ms.
        writer(tx.clone(), Duration::from_millis(100), 10);
        assert_eq!(settle_events(&mut rx, &options()).await, Some(Cause::File));
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(1250) && waited < Duration::from_millis(1300),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_directory_that_is_never_quiet_is_still_read_after_the_cap() {
        let (tx, mut rx) = mpsc::channel(16);
        let start = tokio::time::Instant::now();
        writer(tx.clone(), Duration::from_millis(100), 1000);
        assert_eq!(settle_events(&mut rx, &options()).await, Some(Cause::File));
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sighup_is_not_lost_when_the_queue_is_full() {
        let (trigger, mut requests) = requests();
        // A reload is running and a busy directory (a log file) fills the queue.
        for _ in 0..100 {
            trigger.request(Cause::File);
        }
        trigger.request(Cause::Signal);
        let first = requests.rx.recv().await.unwrap();
        assert_eq!(
            requests.settle(first, &options()).await,
            Some(Cause::Signal),
            "the SIGHUP is never skipped as a file event"
        );
        // Taken once: the next burst is plain file events again.
        trigger.request(Cause::File);
        let first = requests.rx.recv().await.unwrap();
        assert_eq!(requests.settle(first, &options()).await, Some(Cause::File));
    }

    #[tokio::test(start_paused = true)]
    async fn a_signal_during_the_wait_ends_it_and_is_not_downgraded() {
        let (tx, mut rx) = mpsc::channel(16);
        let start = tokio::time::Instant::now();
        writer(tx.clone(), Duration::from_millis(100), 3);
        let signal = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            signal.send(Cause::Signal).await.unwrap();
        });
        assert_eq!(
            settle_events(&mut rx, &options()).await,
            Some(Cause::Signal)
        );
        assert_eq!(start.elapsed(), Duration::from_millis(150));
        // Pending requests fold into one reload; a SIGHUP among them wins.
        tx.send(Cause::File).await.unwrap();
        tx.send(Cause::Signal).await.unwrap();
        tx.send(Cause::Periodic).await.unwrap();
        assert_eq!(strongest(Cause::File, drain(&mut rx)), Cause::Signal);
        assert_eq!(strongest(Cause::File, drain(&mut rx)), Cause::File);
    }
}
