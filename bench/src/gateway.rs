//! `--spawn-gateway`: starts a camgate binary on 127.0.0.1:0 for the run and stops it
//! afterwards, so a documented benchmark is one command.
//!
//! The gateway is started as `PATH run --config FILE --listen 127.0.0.1:0`; its address is
//! read from the `camgate listening addr=...` log line on stderr. Its stderr keeps being
//! drained (an undrained pipe would block it) and the last lines are kept for error
//! messages. Dropping the [`SpawnedGateway`] terminates it (SIGTERM, then SIGKILL) and
//! reaps it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A gateway process owned by the load tool.
pub struct SpawnedGateway {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log_tail: Arc<Mutex<VecDeque<String>>>,
}

impl SpawnedGateway {
    /// Starts `binary` with `manifest` and waits (up to 30 s) for its listening address.
    pub fn start(binary: &Path, manifest: &Path) -> anyhow::Result<SpawnedGateway> {
        let mut child = Command::new(binary)
            .args(["run", "--config"])
            .arg(manifest)
            .args(["--listen", "127.0.0.1:0"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stderr = child.stderr.take().context("gateway stderr")?;
        let log_tail = Arc::new(Mutex::new(VecDeque::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let tail = Arc::clone(&log_tail);
        std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("camgate listening")
                    && let Some(addr) = parse_addr(&line)
                    && let Some(tx) = addr_tx.take()
                {
                    let _ = tx.send(addr);
                }
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == 20 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let mut gateway = SpawnedGateway {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log_tail,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(addr) = addr_rx.recv_timeout(Duration::from_millis(50)) {
                gateway.addr = addr;
                return Ok(gateway);
            }
            if let Ok(Some(status)) = gateway.child.try_wait() {
                bail!(
                    "the gateway exited ({status}) before listening:\n{}",
                    gateway.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the gateway did not report its address within 30 s:\n{}",
                    gateway.log_tail()
                );
            }
        }
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its last log lines.
    pub fn log_tail(&self) -> String {
        let tail = self.log_tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// Finds `addr=HOST:PORT` in a log line (text or JSON logs).
fn parse_addr(line: &str) -> Option<SocketAddr> {
    let start = line
        .find("addr=")
        .map(|i| i + 5)
        .or_else(|| line.find("\"addr\":\"").map(|i| i + 8))?;
    let value: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != ',')
        .collect();
    value.parse().ok()
}

impl Drop for SpawnedGateway {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // Our own child, not reaped yet: its pid cannot have been reused.
        if let Some(pid) = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_from_text_and_json_logs() {
        let text = "2025-01-01T00:00:00Z  INFO camgate::app: camgate listening addr=127.0.0.1:4321 streams=1";
        assert_eq!(parse_addr(text), Some("127.0.0.1:4321".parse().unwrap()));
        let json = r#"{"fields":{"message":"camgate listening","addr":"127.0.0.1:99"}}"#;
        assert_eq!(parse_addr(json), Some("127.0.0.1:99".parse().unwrap()));
    }
}
