//! One ffmpeg child with piped stdin/stdout/stderr, as the transcoder and the snapshot use
//! it.
//!
//! Invariants:
//! - the child is spawned with `kill_on_drop`, so dropping an [`Ffmpeg`] (a cancelled
//!   task, a runtime shutting down) kills it; [`Ffmpeg::kill`] also waits for it, so a
//!   caller that stops it properly leaves no zombie behind;
//! - stderr is always drained (an undrained pipe blocks ffmpeg) on a blocking thread by the
//!   ffmpeg plugin's parser ([`camgate_ffmpeg_mjpeg::stderr`]), which classifies errors into
//!   a short message; lines worth logging go to `tracing` under a [`LogBudget`], so a
//!   broken input cannot flood the log.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate_ffmpeg_mjpeg::stderr::{Diagnostics, SharedDiagnostics, drain};
use camgate_plugin_api::LogLevel;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::telemetry::LogBudget;

/// At most this many ffmpeg log lines per [`LOG_WINDOW`] for one child.
const LOG_LINES: u32 = 20;
/// The window of [`LOG_LINES`].
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// A running ffmpeg: its pipes and what its stderr said.
#[derive(Debug)]
pub(crate) struct Ffmpeg {
    child: Child,
    /// Its standard input (taken by the writer).
    pub stdin: Option<ChildStdin>,
    /// Its standard output (taken by the reader).
    pub stdout: Option<ChildStdout>,
    diagnostics: SharedDiagnostics,
    stderr: Option<JoinHandle<()>>,
}

impl Ffmpeg {
    /// Starts `program` with `args`; `label` names the child in log lines (a stream id).
    pub fn spawn(program: &Path, args: &[OsString], label: &str) -> io::Result<Ffmpeg> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let diagnostics: SharedDiagnostics = Arc::new(Mutex::new(Diagnostics::default()));
        let stderr = match child.stderr.take().map(|s| s.into_owned_fd()) {
            Some(Ok(fd)) => {
                let file = std::fs::File::from(fd);
                let shared = Arc::clone(&diagnostics);
                let label = label.to_owned();
                Some(tokio::task::spawn_blocking(move || {
                    let mut budget = LogBudget::new(LOG_LINES, LOG_WINDOW);
                    let mut log = |level: LogLevel, line: &str| {
                        let (allowed, suppressed) = budget.take(Instant::now());
                        if suppressed > 0 {
                            tracing::warn!(stream = %label, suppressed, "ffmpeg (transcoder) log lines suppressed (rate limit)");
                        }
                        if !allowed {
                            return;
                        }
                        match level {
                            LogLevel::Error => {
                                tracing::error!(stream = %label, "transcoder {line}")
                            }
                            LogLevel::Warn => tracing::warn!(stream = %label, "transcoder {line}"),
                            _ => tracing::debug!(stream = %label, "transcoder {line}"),
                        }
                    };
                    drain(file, &mut log, &[], &shared);
                }))
            }
            _ => None,
        };
        Ok(Ffmpeg {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            child,
            diagnostics,
            stderr,
        })
    }

    /// The operating system's process id (for tests and logs).
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the child (if it still runs), waits for it and for its stderr to be read to
    /// the end; returns how it ended and the most useful error line it printed.
    pub async fn kill(mut self) -> (Option<ExitStatus>, Option<String>) {
        drop(self.stdin.take());
        let _ = self.child.start_kill();
        let status = self.child.wait().await.ok();
        self.finish(status).await
    }

    /// Waits for the child to exit by itself (its stdin closed), then as [`Ffmpeg::kill`].
    pub async fn wait(mut self) -> (Option<ExitStatus>, Option<String>) {
        drop(self.stdin.take());
        let status = self.child.wait().await.ok();
        self.finish(status).await
    }

    async fn finish(mut self, status: Option<ExitStatus>) -> (Option<ExitStatus>, Option<String>) {
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.await;
        }
        let message = self
            .diagnostics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .error
            .as_ref()
            .map(|e| e.message.clone());
        (status, message)
    }
}
