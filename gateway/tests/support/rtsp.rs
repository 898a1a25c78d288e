//! The demo RTSP server (`demo_rtsp_server/server.py`, GStreamer) as a test fixture, plus
//! small process helpers (signals, `/proc` scans) for the ffmpeg tests.
//!
//! Invariants: a server binds 127.0.0.1 only; dropping an [`RtspServer`] resumes (SIGCONT),
//! kills (SIGKILL) and reaps it, so no test leaves one behind even when it fails; the
//! server also dies with the thread that spawned it (its own parent-death signal). Each
//! server writes its RTSP session counts to a file in its own temporary directory
//! ([`RtspServer::sessions`]); its loop clips are cached under the build's temporary
//! directory (`CARGO_TARGET_TMPDIR`), never in the user's home.

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives real processes and sockets, whose timing is the wall clock's"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running demo RTSP server.
pub struct RtspServer {
    child: Option<Child>,
    port: u16,
    /// Holds `stats.json` (`--stats-file`); removed with the server.
    dir: tempfile::TempDir,
}

impl RtspServer {
    /// Starts a server on a port the kernel picks; `extra` are more `server.py` options.
    pub fn start(extra: &[&str]) -> RtspServer {
        Self::start_on(0, extra)
    }

    /// Starts a server on `port` (0: the kernel picks), waiting for its READY line.
    pub fn start_on(port: u16, extra: &[&str]) -> RtspServer {
        let script = workspace().join("demo_rtsp_server/server.py");
        // Debian's python has the GStreamer bindings (`gi`); a pyenv one on PATH may not.
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let dir = tempfile::tempdir().expect("a temporary directory for the stats file");
        let stats = dir.path().join("stats.json");
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-camera-cache");
        // A small, cheap picture keeps the 2-core test machine relaxed.
        let mut child = Command::new(python)
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--width", "640", "--height", "360", "--fps", "15"])
            .arg("--stats-file")
            .arg(&stats)
            .arg("--cache-dir")
            .arg(&cache)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading so the server never blocks on a full stdout pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("READY ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let mut server = RtspServer {
            child: Some(child),
            port: 0,
            dir,
        };
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => panic!(
                "the demo RTSP server did not print READY within 30 s (port {port}); is \
                 GStreamer installed? run demo_rtsp_server/install-deps.sh"
            ),
        };
        server.port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("unexpected READY line: {url}"));
        server
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// `rtsp://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}{path}", self.port)
    }

    /// The server's `--stats-file` as JSON (`sessions`, `total_sessions_opened`, `pipelines`,
    /// each an object with one count per mount); the server replaces it atomically.
    pub fn stats(&self) -> serde_json::Value {
        let path = self.dir.path().join("stats.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad stats file {text:?}: {e}"))
    }

    /// RTSP sessions open on `mount` (e.g. `/test`) right now, as the server counts them.
    pub fn sessions(&self, mount: &str) -> u64 {
        self.count("sessions", mount)
    }

    /// RTSP sessions ever opened on `mount`.
    pub fn sessions_opened(&self, mount: &str) -> u64 {
        self.count("total_sessions_opened", mount)
    }

    /// Media pipelines running for `mount` (shared by all its sessions: 0 or 1).
    pub fn pipelines(&self, mount: &str) -> u64 {
        self.count("pipelines", mount)
    }

    fn count(&self, what: &str, mount: &str) -> u64 {
        let stats = self.stats();
        stats[what][mount]
            .as_u64()
            .unwrap_or_else(|| panic!("no {what}[{mount}] in {stats}"))
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// Resumes a paused server (SIGCONT).
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// Kills the server and reaps it (the port is free again afterwards).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "CONT");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the gateway crate lives in the workspace")
        .to_owned()
}

/// Sends `SIG{name}` to `pid` with `kill(1)` (the tests have no libc binding).
pub fn signal(pid: u32, name: &str) {
    if pid == 0 {
        return;
    }
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A process as `/proc/PID/stat` and `/proc/PID/cmdline` describe it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// R, S, D, Z, T, ...
    pub state: char,
    pub comm: String,
    pub cmdline: String,
}

impl ProcInfo {
    /// Still running (not a zombie waiting to be reaped by someone else).
    pub fn is_alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads one process, if it exists.
pub fn proc_info(pid: u32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .split('\0')
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Some(ProcInfo {
        pid,
        ppid,
        state,
        comm,
        cmdline: cmdline.trim().to_owned(),
    })
}

/// Every process visible in `/proc`.
pub fn processes() -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_info)
        .collect()
}

/// Live ffmpeg processes whose parent is `parent` and whose command line contains
/// `needle` (a zombie has no command line: check remembered pids with [`proc_info`]).
pub fn ffmpeg_children(parent: u32, needle: &str) -> Vec<ProcInfo> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == parent && p.comm == "ffmpeg" && p.cmdline.contains(needle))
        .collect()
}

/// Polls `check` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
