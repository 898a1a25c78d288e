//! The `camgate` binary as a child process: started on `127.0.0.1:PORT` (0: the kernel
//! picks), its address read from its log, every log line kept for the test to read.
//!
//! Invariants: [`GatewayProcess`] kills (SIGKILL) and reaps its child when dropped, so no
//! test leaves a gateway behind, even when it fails; the log reader thread ends with the
//! child's stderr.

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives real processes, whose timing is the wall clock's"
)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `camgate` with `CAMGATE_LOG=info`.
pub fn camgate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_camgate"));
    command.env("CAMGATE_LOG", "info");
    command
}

/// Starts `camgate run` on 127.0.0.1:0 and returns the child, its address and a handle
/// collecting its log lines.
pub fn spawn_gateway(manifest: &Path) -> (Child, SocketAddr, Arc<Mutex<String>>) {
    let mut command = camgate();
    command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(manifest);
    spawn_command(command)
}

/// Starts `command` (a `camgate run` with `--listen 127.0.0.1:PORT`) and waits for its
/// address.
pub fn spawn_command(mut command: Command) -> (Child, SocketAddr, Arc<Mutex<String>>) {
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let logs = Arc::new(Mutex::new(String::new()));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let sink = Arc::clone(&logs);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("addr=").nth(1) {
                let _ = addr_tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("gateway logs its address")
        .parse()
        .unwrap();
    (child, addr, logs)
}

/// A `camgate run` child that is killed and reaped on drop.
pub struct GatewayProcess {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    logs: Arc<Mutex<String>>,
}

impl GatewayProcess {
    /// Runs `manifest` on `listen` (`127.0.0.1:0` for any port) with `env` added.
    pub fn start(manifest: &Path, listen: &str, env: &[(&str, &str)]) -> GatewayProcess {
        let mut command = camgate();
        command
            .args(["run", "--listen", listen, "--config"])
            .arg(manifest)
            .envs(env.iter().copied());
        let (child, addr, logs) = spawn_command(command);
        GatewayProcess {
            child: Some(child),
            addr,
            logs,
        }
    }

    /// Its process id (0 once stopped or killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL (no cleanup code runs in camgate), then reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// SIGTERM (a graceful shutdown: viewers get 1001), then waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
