//! Randomized stress of connection admission under pressure: more clients than slots, of
//! every kind at once — connections that say nothing, real requests, headers dribbled a
//! few bytes at a time, WebSocket viewers — so evictions, refusals and ordinary releases
//! race each other (`http/eviction.rs`, `http/admission.rs`).
//!
//! What must hold whatever the interleaving:
//! - every answer is a whole `200` (a request is served, or its connection closed
//!   unanswered: refused, or evicted while its headers were incomplete);
//! - a viewer that got its `101` is never cut: it receives every frame it waits for (past
//!   its headers, a connection is never evicted);
//! - no slot leaks or is made: when every client is gone the gateway holds no connection,
//!   and then exactly `max_connections + reserve_connections` viewers fit at once.
//!
//! No assertion depends on the machine's speed: timing only changes who gets a slot.
//! Reproduce a run with `STRESS_SEED=<seed>` (printed); more clients with
//! `STRESS_ITERATIONS=<waves>` (default 6 waves of 40).

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use camgate::app::GatewayOptions;
use camgate::http::admission::ConnectionLimits;
use camgate::plugins::PluginCatalog;
use support::rng::{Rng, stress_iterations, stress_seed};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GENERAL: usize = 6;
const RESERVE: usize = 2;
const CLIENTS_PER_WAVE: usize = 40;

/// Outcomes, for the report (not asserted: they depend on timing).
#[derive(Default)]
struct Tally {
    served: AtomicU64,
    closed_unanswered: AtomicU64,
    viewers: AtomicU64,
    viewers_refused: AtomicU64,
}

/// Reads until the peer closes: `Some(status)` of a whole response, `None` if it closed
/// without one. Panics on anything that is not a complete `200`.
async fn response(stream: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut chunk))
            .await
            .expect("an answer or a close within a minute")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if buf.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200 "), "not a 200: {text}");
    assert!(text.contains("\r\n\r\n"), "a cut response: {text}");
    Some(200)
}

/// One client of a random kind.
async fn client(addr: SocketAddr, seed: u64, tally: Arc<Tally>) {
    let mut rng = Rng::new(seed);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    match rng.range(0, 9) {
        // Silent: connects, says nothing for a while, then leaves or finally asks.
        0..=2 => {
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                return;
            };
            tokio::time::sleep(Duration::from_millis(rng.range(0, 200))).await;
            if rng.chance(50) && stream.write_all(request.as_bytes()).await.is_ok() {
                record(&tally, response(&mut stream).await);
            }
        }
        // Real: the whole request at once.
        3..=5 => {
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                return;
            };
            if stream.write_all(request.as_bytes()).await.is_ok() {
                record(&tally, response(&mut stream).await);
            }
        }
        // Slowloris: the request a few bytes at a time.
        6..=7 => {
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                return;
            };
            stream.set_nodelay(true).unwrap();
            let bytes = request.as_bytes();
            let mut sent = 0;
            while sent < bytes.len() {
                let n = (rng.range(1, 12) as usize).min(bytes.len() - sent);
                if stream.write_all(&bytes[sent..sent + n]).await.is_err() {
                    break; // evicted meanwhile
                }
                sent += n;
                tokio::time::sleep(Duration::from_millis(rng.range(1, 20))).await;
            }
            if sent == bytes.len() {
                record(&tally, response(&mut stream).await);
            }
        }
        // A viewer: once admitted past its headers, never cut.
        _ => {
            let url = format!("ws://{addr}/ws/streams/a");
            match tokio_tungstenite::connect_async(url).await {
                Ok((mut ws, response)) => {
                    assert_eq!(response.status(), 101);
                    tally.viewers.fetch_add(1, Ordering::Relaxed);
                    for _ in 0..rng.range(1, 3) {
                        next_frame(&mut ws, Duration::from_secs(30)).await;
                    }
                }
                // Refused, or evicted before its upgrade request was read.
                Err(_) => {
                    tally.viewers_refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

fn record(tally: &Tally, outcome: Option<u16>) {
    match outcome {
        Some(_) => tally.served.fetch_add(1, Ordering::Relaxed),
        None => tally.closed_unanswered.fetch_add(1, Ordering::Relaxed),
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_evictions_refusals_and_releases_serve_whole_answers_and_leak_no_slot() {
    let seed = stress_seed();
    let waves = stress_iterations(6);
    println!("eviction stress: STRESS_SEED={seed} STRESS_ITERATIONS={waves}");
    let gateway = start_with(
        "streams:\n  - id: a\n    source: { plugin: testsrc, width: 160, height: 90, fps: 25 }\n",
        PluginCatalog::with_builtins(),
        GatewayOptions {
            limits: ConnectionLimits {
                max_connections: GENERAL,
                reserve_connections: RESERVE,
                // Long: only eviction and the clients themselves free slots.
                header_timeout: Duration::from_secs(600),
                reserve_header_timeout: Duration::from_secs(600),
                // Any silent connection may go: the most races.
                evict_after: Duration::ZERO,
                ..ConnectionLimits::default()
            },
            ..fast_options()
        },
    )
    .await;
    let addr = gateway.local_addr();
    let state = gateway.state();
    let tally = Arc::new(Tally::default());
    let mut seeds = Rng::new(seed);
    for _ in 0..waves {
        let clients: Vec<_> = (0..CLIENTS_PER_WAVE)
            .map(|_| tokio::spawn(client(addr, seeds.next(), Arc::clone(&tally))))
            .collect();
        for client in clients {
            client.await.expect("a client panicked: see above");
        }
    }
    let metrics = &state.metrics;
    println!(
        "eviction stress: served {}, closed unanswered {}, viewers {} (refused {}); gateway: {} admitted, {} evicted, {} refused",
        tally.served.load(Ordering::Relaxed),
        tally.closed_unanswered.load(Ordering::Relaxed),
        tally.viewers.load(Ordering::Relaxed),
        tally.viewers_refused.load(Ordering::Relaxed),
        metrics.connections_total.get(),
        metrics.connections_evicted.get(),
        metrics.connections_refused.get(),
    );
    // Every client is gone: so is every slot...
    eventually(Duration::from_secs(30), "no connection is left", || {
        metrics.connections.get() == 0
    })
    .await;
    // ...and every slot is there again, no more: exactly GENERAL + RESERVE viewers fit.
    let mut viewers = Vec::new();
    for _ in 0..GENERAL + RESERVE {
        let mut ws = connect(addr, "/ws/streams/a").await;
        next_frame(&mut ws, Duration::from_secs(10)).await;
        viewers.push(ws);
    }
    let refused = metrics.connections_refused.get();
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let mut sink = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), extra.read(&mut sink))
        .await
        .expect("closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0, "a slot too many");
    assert_eq!(metrics.connections_refused.get(), refused + 1);
    for ws in &mut viewers {
        next_frame(ws, Duration::from_secs(10)).await;
    }
    gateway.shutdown().await;
}
