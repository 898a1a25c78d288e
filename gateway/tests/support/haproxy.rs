//! HAProxy running the shipped local configuration (`deploy/haproxy/haproxy.cfg`)
//! unchanged, its addresses from the environment variables the file documents
//! (`CAMGATE_LB_BIND`, `CAMGATE_NODE_A`…): the balancer of `tests/haproxy.rs` (stand-in
//! backends) and `tests/cluster.rs` (real gateways).
//!
//! Invariants: binds 127.0.0.1 only; the child is killed and reaped when the guard drops,
//! and gets SIGKILL if the thread that started it dies (`setpriv --pdeathsig`), so a
//! killed test run leaves no balancer behind; its log is a file in its own temporary
//! directory ([`Haproxy::log`]).

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives a real process, whose timing is the wall clock's"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running HAProxy; killed when dropped.
pub struct Haproxy {
    /// Where it listens (`CAMGATE_LB_BIND`).
    pub addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts it in front of `nodes` (server name → address; the file names a, b, c) on a
    /// loopback port that was free a moment ago.
    pub fn start(nodes: &[(&str, SocketAddr)]) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("haproxy.log");
        let addr = super::cluster::local(super::cluster::free_ports(1)[0]);
        let mut command = Command::new("/usr/bin/setpriv");
        command.args(["--pdeathsig", "KILL", "haproxy", "-f"]);
        command.arg(super::deploy_dir().join("haproxy/haproxy.cfg"));
        command.env("CAMGATE_LB_BIND", addr.to_string());
        for (name, node) in nodes {
            command.env(
                format!("CAMGATE_NODE_{}", name.to_ascii_uppercase()),
                node.to_string(),
            );
        }
        let file = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run haproxy ({e}): scripts/install-deps"));
        Haproxy {
            addr,
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
