//! Helpers of the cluster test (`tests/cluster.rs`; nodes are `binary::GatewayProcess`,
//! the balancer `haproxy::Haproxy`): free loopback ports picked up front (member URLs must
//! be known before any node starts); a non-panicking JSON GET for polling nodes that may
//! be starting or dead; and the cluster's rendezvous function, to predict owners
//! independently of the gateway.
//!
//! Invariants: everything binds or connects to 127.0.0.1; no helper panics on a node that
//! does not answer (the caller's deadline decides).

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives real processes and sockets, whose timing is the wall clock's"
)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `n` distinct free loopback ports (bound, then released: nothing else on this machine
/// picks ports in the range the kernel hands out for port 0 at that moment but other tests,
/// whose ports the kernel does not reuse at once).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A GET that never panics: status and JSON body, or `None` when the node does not answer
/// (refused, reset, timed out, not JSON).
pub async fn get_json(addr: SocketAddr, path: &str) -> Option<(u16, serde_json::Value)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&raw[..split]).ok()?;
        let status = head.get(9..12)?.parse().ok()?;
        let mut body = &raw[split + 4..];
        let chunked = head.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("transfer-encoding:") && l.contains("chunked")
        });
        let dechunked;
        if chunked {
            dechunked = dechunk(body);
            body = &dechunked;
        }
        let json = if body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(body).ok()?
        };
        Some((status, json))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// The cluster's score of member `name` for stream `stream` (COMMON16 "Cluster mode":
/// `splitmix64_finalize(fnv1a64(name ++ [0] ++ stream))`), written here independently of
/// the gateway so the test checks the owners the nodes report against the definition.
pub fn score(name: &str, stream: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name
        .as_bytes()
        .iter()
        .chain([0u8].iter())
        .chain(stream.as_bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The owner of `stream` among `members` (highest score, ties to the smaller name).
pub fn owner<'a>(members: &[&'a str], stream: &str) -> &'a str {
    members
        .iter()
        .copied()
        .max_by(|a, b| score(a, stream).cmp(&score(b, stream)).then(b.cmp(a)))
        .expect("at least one member")
}
