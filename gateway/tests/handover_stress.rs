//! Randomized stress test of the viewer hand-over between the hub's direct lane (the hub's
//! fan-out task writes frames itself) and the viewer's session task (which takes the socket
//! back for pings, pongs, state events, closes and frames the lane could not finish).
//!
//! A real gateway on 127.0.0.1:0 serves one stream whose source is the test itself: two
//! publisher threads at once (like a plugin's capture threads) publish bursts of random
//! JPEG-shaped frames, small ones (written with `writev`) and ones over 16 KiB (`sendfile` from a
//! sealed file), and reports random state changes. Viewers on sockets with small receive
//! buffers stall for random periods, ping, and close with random codes, then reconnect.
//!
//! Every viewer parses its byte stream with its own parser, independent of the gateway's
//! codec, and checks: every frame is a valid server frame (final, unmasked, shortest length,
//! known opcode); every binary message is exactly one published JPEG (SOI..EOI, the Camgate
//! tag, the bytes that were published), with strictly increasing sequence numbers; every
//! text message is JSON, `hello` first; pongs echo a ping the viewer sent; a close the
//! viewer started is answered with its code. At the end every viewer gets the last frame.
//!
//! Half the connections use credit (`{"type":"credit","frames":N}`, random grants): once
//! the gateway has acted on their first grant (a ping sent right after it is answered),
//! they never get more frames than they granted, whichever path (the publisher's lane or
//! the session) wrote them.
//! No assertion depends on the machine's speed: timing only changes which paths are taken.
//!
//! Reproduce a run with `STRESS_SEED=<seed>` (printed); run longer with
//! `STRESS_ITERATIONS=<rounds>` (default 4, a few seconds).

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate::app::GatewayOptions;
use camgate::http::ws::WsSettings;
use camgate::hub::{FrameSink, Hub, StreamState, read_tag};
use camgate::plugins::PluginCatalog;
use support::rng::{Rng, stress_iterations, stress_seed};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const VIEWERS: usize = 3;
/// Bursts of frames the publisher sends per round.
const BURSTS_PER_ROUND: u64 = 40;

/// What the publishers published, for the viewers to compare against.
#[derive(Default)]
struct Published {
    /// JPEG as published (before the hub tagged it), by the id in its first body bytes.
    frames: Mutex<HashMap<u64, Arc<Vec<u8>>>>,
    /// Sequence number of the last frame, once the publisher is done.
    last: AtomicU64,
    done: AtomicBool,
}

/// A JPEG-shaped frame of `len` bytes: SOI, the frame's id (8 bytes), random bytes, EOI
/// (the hub checks no more).
fn random_jpeg(rng: &mut Rng, id: u64, len: usize) -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8];
    jpeg.extend_from_slice(&id.to_be_bytes());
    jpeg.extend(rng.bytes(len - 12));
    jpeg.extend_from_slice(&[0xFF, 0xD9]);
    jpeg
}

/// The id [`random_jpeg`] put in a frame as viewers get it (after SOI and the 33-byte tag).
fn frame_id(tagged: &[u8]) -> u64 {
    u64::from_be_bytes(tagged[35..43].try_into().unwrap())
}

/// Records `jpeg` under its id, then publishes it (a viewer may get it at once).
fn publish(sink: &FrameSink, published: &Published, id: u64, jpeg: Vec<u8>) {
    published
        .frames
        .lock()
        .unwrap()
        .insert(id, Arc::new(jpeg.clone()));
    assert!(sink.publish(&jpeg, 0, 0, 0));
}

/// Publishers publishing at once, like several capture threads of one plugin.
const PUBLISHERS: u64 = 2;

/// Runs the publishers on threads of their own until their rounds are done, then publishes
/// one last frame (alone, so its number is known) that every viewer must get.
fn publish_all(hub: Arc<Hub>, sink: FrameSink, published: Arc<Published>, seed: u64, rounds: u64) {
    let mut seeds = Rng::new(seed);
    std::thread::scope(|scope| {
        for publisher_id in 0..PUBLISHERS {
            let (sink, published, seed) = (sink.clone(), Arc::clone(&published), seeds.next());
            scope.spawn(move || publisher(publisher_id, sink, published, seed, rounds));
        }
    });
    let last = random_jpeg(&mut seeds, u64::MAX, 40 * 1024);
    publish(&sink, &published, u64::MAX, last);
    let seq = hub.latest_frame().expect("published").seq;
    published.last.store(seq, Ordering::SeqCst);
    published.done.store(true, Ordering::SeqCst);
}

fn publisher(
    publisher_id: u64,
    sink: FrameSink,
    published: Arc<Published>,
    seed: u64,
    rounds: u64,
) {
    let mut rng = Rng::new(seed);
    let mut count = 0u64;
    for _ in 0..rounds * BURSTS_PER_ROUND {
        // A burst of frames back to back, then a pause.
        for _ in 0..rng.range(1, 8) {
            let len = if rng.chance(50) {
                rng.range(64, 8 * 1024)
            } else {
                rng.range(17 * 1024, 160 * 1024)
            };
            count += 1;
            let id = publisher_id << 32 | count;
            let jpeg = random_jpeg(&mut rng, id, len as usize);
            publish(&sink, &published, id, jpeg);
        }
        if rng.chance(10) {
            // The next frame sets the stream live again (on the session's path).
            let state = if rng.chance(50) {
                StreamState::Retrying
            } else {
                StreamState::Connecting
            };
            sink.set_state(state, &format!("stress {}", rng.next() % 1000));
        }
        #[expect(
            clippy::disallowed_methods,
            reason = "the publisher is a plugin-like thread, not a runtime thread"
        )]
        std::thread::sleep(Duration::from_millis(rng.range(1, 30)));
    }
}

/// One frame from the gateway, as this test's own parser reads it.
#[derive(Debug)]
struct WireFrame {
    opcode: u8,
    payload: Vec<u8>,
}

/// Parses one server frame from the front of `buffer`, checking RFC 6455's rules for what
/// a server sends; `None` if more bytes are needed.
fn parse_frame(buffer: &mut Vec<u8>) -> Option<WireFrame> {
    let b = &buffer[..];
    if b.len() < 2 {
        return None;
    }
    assert_eq!(b[0] & 0x80, 0x80, "server frames are final: {:#x}", b[0]);
    assert_eq!(b[0] & 0x70, 0, "no reserved bits");
    let opcode = b[0] & 0x0F;
    assert!(
        matches!(opcode, 0x1 | 0x2 | 0x8 | 0x9 | 0xA),
        "opcode {opcode:#x}"
    );
    assert_eq!(b[1] & 0x80, 0, "server frames are not masked");
    let (len, start) = match b[1] & 0x7F {
        126 if b.len() < 4 => return None,
        127 if b.len() < 10 => return None,
        126 => {
            let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
            assert!(len >= 126, "shortest length encoding");
            (len, 4)
        }
        127 => {
            let len = u64::from_be_bytes(b[2..10].try_into().unwrap());
            assert!(len > 0xFFFF && len < (1 << 32), "length {len}");
            (len as usize, 10)
        }
        short => (usize::from(short), 2),
    };
    if opcode & 0x8 != 0 {
        assert!(len <= 125, "control frames carry at most 125 bytes");
    }
    if b.len() < start + len {
        return None;
    }
    let payload = b[start..start + len].to_vec();
    buffer.drain(..start + len);
    Some(WireFrame { opcode, payload })
}

/// The tag's sequence number, read without the gateway's code: APP11 right after SOI,
/// `CAMG\0`, then the sequence number.
fn tag_seq(jpeg: &[u8]) -> u64 {
    assert!(jpeg.len() >= 2 + 33 + 2, "too short for a tagged JPEG");
    assert_eq!(jpeg[2..4], [0xFF, 0xEB], "APP11 tag after SOI");
    assert_eq!(u16::from_be_bytes([jpeg[4], jpeg[5]]), 31);
    assert_eq!(&jpeg[6..11], b"CAMG\0");
    u64::from_be_bytes(jpeg[11..19].try_into().unwrap())
}

/// The payload of the ping a credit viewer sends right after its first grant.
const CREDIT_SYNC: &[u8] = b"credit-sync";

/// A credit viewer's account.
#[derive(Default)]
struct CreditAccount {
    /// The pong for [`CREDIT_SYNC`] came: the first grant is in force.
    in_force: bool,
    /// Frames granted in all.
    granted: u64,
    /// Frames received since the first grant was in force.
    frames: u64,
}

/// One viewer connection's view of the conversation.
struct Conversation {
    credit: Option<CreditAccount>,
    frames_seen: u64,
    last_seq: u64,
    texts: u64,
    pings_sent: Vec<Vec<u8>>,
    pongs_matched: usize,
    close_sent: Option<u16>,
    close_received: Option<Vec<u8>>,
}

impl Conversation {
    fn new() -> Conversation {
        Conversation {
            credit: None,
            frames_seen: 0,
            last_seq: 0,
            texts: 0,
            pings_sent: Vec::new(),
            pongs_matched: 0,
            close_sent: None,
            close_received: None,
        }
    }

    /// Checks one frame against everything the protocol promises.
    fn check(&mut self, frame: WireFrame, published: &Published, who: &str) {
        assert!(
            self.close_received.is_none(),
            "{who}: a frame after the close frame"
        );
        if self.texts == 0 {
            assert_eq!(frame.opcode, 0x1, "{who}: hello comes first");
        }
        match frame.opcode {
            0x1 => {
                let json: serde_json::Value = serde_json::from_slice(&frame.payload)
                    .unwrap_or_else(|e| panic!("{who}: text is not JSON ({e})"));
                let kind = json["type"].as_str().unwrap_or_default();
                if self.texts == 0 {
                    assert_eq!(kind, "hello", "{who}");
                } else {
                    assert!(
                        matches!(kind, "health" | "state" | "dropped"),
                        "{who}: {json}"
                    );
                }
                self.texts += 1;
            }
            0x2 => {
                let jpeg = &frame.payload;
                assert_eq!(jpeg[..2], [0xFF, 0xD8], "{who}: SOI");
                assert_eq!(jpeg[jpeg.len() - 2..], [0xFF, 0xD9], "{who}: EOI");
                let seq = tag_seq(jpeg);
                assert_eq!(read_tag(jpeg).map(|t| t.seq), Some(seq));
                assert!(
                    seq > self.last_seq,
                    "{who}: frame {seq} after {}",
                    self.last_seq
                );
                let id = frame_id(jpeg);
                let original = published.frames.lock().unwrap().get(&id).cloned();
                let original = original.unwrap_or_else(|| panic!("{who}: unknown frame {id}"));
                assert_eq!(jpeg.len(), original.len() + 33, "{who}: frame {seq} length");
                assert!(
                    jpeg[35..] == original[2..],
                    "{who}: frame {seq} bytes differ"
                );
                self.last_seq = seq;
                self.frames_seen += 1;
                if let Some(credit) = self.credit.as_mut().filter(|c| c.in_force) {
                    credit.frames += 1;
                    assert!(
                        credit.frames <= credit.granted,
                        "{who}: frame {seq} is frame {} on credit, {} granted",
                        credit.frames,
                        credit.granted
                    );
                }
            }
            0x8 => {
                if let [high, low, reason @ ..] = &frame.payload[..] {
                    let code = u16::from_be_bytes([*high, *low]);
                    assert!(std::str::from_utf8(reason).is_ok(), "{who}: close reason");
                    if let Some(sent) = self.close_sent {
                        // Our close is echoed, unless the gateway had closed for its own
                        // reason first (too slow: a stall longer than the write timeout).
                        assert!(
                            code == sent || code == 4008,
                            "{who}: close {code} for {sent}"
                        );
                    }
                } else {
                    assert!(frame.payload.is_empty(), "{who}: 1-byte close payload");
                }
                self.close_received = Some(frame.payload);
            }
            0x9 => {}
            0xA => {
                if let Some(credit) = self
                    .credit
                    .as_mut()
                    .filter(|_| frame.payload == CREDIT_SYNC)
                {
                    credit.in_force = true;
                }
                let at = self.pings_sent[self.pongs_matched..]
                    .iter()
                    .position(|p| *p == frame.payload)
                    .unwrap_or_else(|| panic!("{who}: pong for no ping"));
                self.pongs_matched += at + 1;
            }
            _ => unreachable!(),
        }
    }
}

/// Opens a viewer connection with a small receive buffer; returns the socket and any
/// bytes that came with the 101.
async fn open(addr: SocketAddr, rcvbuf: u32) -> (TcpStream, Vec<u8>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(rcvbuf).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET /ws/streams/stress HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = Vec::new();
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            buffer.drain(..end + 4);
            return (stream, buffer);
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed during the handshake");
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// A masked client frame.
fn client_frame(rng: &mut Rng, first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = rng.next().to_be_bytes();
    let mut frame = vec![first, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask[..4]);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Sends a credit grant (and records it before the gateway can act on it).
async fn grant(
    stream: &mut TcpStream,
    rng: &mut Rng,
    conversation: &mut Conversation,
    frames: u64,
) -> bool {
    let text = format!(r#"{{"type":"credit","frames":{frames}}}"#);
    if let Some(credit) = conversation.credit.as_mut() {
        credit.granted += frames;
    }
    stream
        .write_all(&client_frame(rng, 0x81, text.as_bytes()))
        .await
        .is_ok()
}

/// Statistics of one viewer over the whole run.
#[derive(Default, Debug)]
struct ViewerStats {
    connections: u64,
    credit_connections: u64,
    frames: u64,
    stalls: u64,
    pings: u64,
    closes: u64,
}

/// [`read_some`] as a viewer that reads freely: large reads, 100 ms at most per read.
async fn read_freely(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    conversation: &mut Conversation,
    published: &Published,
    who: &str,
) -> bool {
    let wait = Duration::from_millis(100);
    read_some(
        stream,
        buffer,
        conversation,
        published,
        64 * 1024,
        wait,
        who,
    )
    .await
}

/// Reads whatever arrives within `wait` and checks it; `false` once the connection ended.
async fn read_some(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    conversation: &mut Conversation,
    published: &Published,
    read_size: usize,
    wait: Duration,
    who: &str,
) -> bool {
    let mut chunk = vec![0u8; read_size];
    let open = match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
        Err(_) => true,
        Ok(Ok(0)) | Ok(Err(_)) => false,
        Ok(Ok(n)) => {
            buffer.extend_from_slice(&chunk[..n]);
            true
        }
    };
    while let Some(frame) = parse_frame(buffer) {
        conversation.check(frame, published, who);
    }
    if !open {
        assert!(
            buffer.is_empty(),
            "{who}: the connection ended inside a frame"
        );
    }
    open
}

async fn viewer(addr: SocketAddr, id: usize, seed: u64, published: Arc<Published>) -> ViewerStats {
    let mut rng = Rng::new(seed);
    let mut stats = ViewerStats::default();
    loop {
        stats.connections += 1;
        let who = format!("viewer {id} connection {}", stats.connections);
        let (mut stream, mut buffer) = open(addr, rng.range(4, 32) as u32 * 1024).await;
        let mut conversation = Conversation::new();
        let read_size = rng.range(512, 16 * 1024) as usize;
        let mut open = true;
        if rng.chance(50) {
            // A credit viewer: nothing until it asks; the ping tells when that took effect.
            conversation.credit = Some(CreditAccount::default());
            open = grant(&mut stream, &mut rng, &mut conversation, 0).await;
            let ping = client_frame(&mut rng, 0x89, CREDIT_SYNC);
            conversation.pings_sent.push(CREDIT_SYNC.to_vec());
            open = open && stream.write_all(&ping).await.is_ok();
        }
        // Random behaviour until the publisher is done (or this viewer closes).
        while open && !published.done.load(Ordering::SeqCst) {
            if conversation.credit.is_some() && rng.chance(5) {
                // Fewer frames than are published (so credit runs out often); sometimes
                // enough for the lane to stay open over a burst.
                let frames = if rng.chance(70) {
                    rng.range(0, 2)
                } else {
                    rng.range(5, 20)
                };
                open = grant(&mut stream, &mut rng, &mut conversation, frames).await;
                continue;
            }
            match rng.range(0, 199) {
                0..=159 => {
                    let wait = Duration::from_millis(rng.range(1, 20));
                    open = read_some(
                        &mut stream,
                        &mut buffer,
                        &mut conversation,
                        &published,
                        read_size,
                        wait,
                        &who,
                    )
                    .await;
                }
                160..=179 => {
                    stats.stalls += 1;
                    tokio::time::sleep(Duration::from_millis(rng.range(5, 150))).await;
                }
                180..=197 => {
                    let len = rng.range(0, 125) as usize;
                    let payload = rng.bytes(len);
                    let frame = client_frame(&mut rng, 0x89, &payload);
                    conversation.pings_sent.push(payload);
                    stats.pings += 1;
                    open = stream.write_all(&frame).await.is_ok();
                }
                _ => {
                    let code = [1000, 1001, 3000, 4000, 4999][rng.range(0, 4) as usize];
                    let frame = client_frame(&mut rng, 0x88, &u16::to_be_bytes(code));
                    conversation.close_sent = Some(code);
                    stats.closes += 1;
                    let _ = stream.write_all(&frame).await;
                    break;
                }
            }
        }
        stats.credit_connections += u64::from(conversation.credit.is_some());
        if conversation.close_sent.is_some() || !open {
            // Read to the end: the close answer, then EOF.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while read_freely(
                &mut stream,
                &mut buffer,
                &mut conversation,
                &published,
                &who,
            )
            .await
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{who}: never closed"
                );
            }
            assert!(
                conversation.close_received.is_some(),
                "{who}: no close frame before EOF"
            );
            stats.frames += conversation.frames_seen;
            if published.done.load(Ordering::SeqCst) {
                return stats;
            }
            continue;
        }
        // The publisher is done: latest frame wins, so the last frame reaches this viewer
        // (a credit viewer asks for it).
        if conversation.credit.is_some() {
            grant(&mut stream, &mut rng, &mut conversation, 1000).await;
        }
        let last = published.last.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while conversation.last_seq < last && conversation.close_received.is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{who}: the last frame {last} never came (at {})",
                conversation.last_seq
            );
            read_freely(
                &mut stream,
                &mut buffer,
                &mut conversation,
                &published,
                &who,
            )
            .await;
        }
        if conversation.close_received.is_none() {
            assert_eq!(conversation.last_seq, last, "{who}");
        }
        stats.frames += conversation.frames_seen;
        return stats;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_stalls_pings_states_closes_and_bursts_keep_every_stream_well_formed() {
    let seed = stress_seed();
    let rounds = stress_iterations(4);
    println!("handover stress: STRESS_SEED={seed} STRESS_ITERATIONS={rounds}");

    // Pings every 20 ms make the session take the socket back from the lane and give it
    // again all the time; timeouts are long so that only the protocol ends a session.
    let options = GatewayOptions {
        ws: WsSettings {
            ping_interval: Duration::from_millis(20),
            pong_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(20),
            dropped_report_interval: Duration::from_millis(50),
            ..fast_options().ws
        },
        ..fast_options()
    };
    let gateway = start_with(
        r#"
streams:
  - id: stress
    on_demand: false
    source: { plugin: testsrc, width: 64, height: 48, fps: 1 }
"#,
        PluginCatalog::with_builtins(),
        options,
    )
    .await;
    let hub = gateway.state().registry.get("stress").unwrap();
    let factory = Arc::new(ManualFactory::default());
    hub.reconfigure(hub.info(), factory.clone()).await;
    let sink = factory.sink();

    let published = Arc::new(Published::default());
    let mut seeds = Rng::new(seed);
    let viewers: Vec<_> = (0..VIEWERS)
        .map(|id| {
            let viewer_seed = seeds.next();
            tokio::spawn(viewer(
                gateway.local_addr(),
                id,
                viewer_seed,
                Arc::clone(&published),
            ))
        })
        .collect();
    let publisher_seed = seeds.next();
    let publishing = {
        let (hub, published) = (Arc::clone(&hub), Arc::clone(&published));
        std::thread::spawn(move || publish_all(hub, sink, published, publisher_seed, rounds))
    };
    let mut totals = ViewerStats::default();
    for viewer in viewers {
        let stats = viewer.await.expect("a viewer failed its checks");
        println!("{stats:?}");
        totals.connections += stats.connections;
        totals.credit_connections += stats.credit_connections;
        totals.frames += stats.frames;
        totals.stalls += stats.stalls;
        totals.pings += stats.pings;
        totals.closes += stats.closes;
    }
    publishing.join().expect("the publisher failed");
    let published_count = published.frames.lock().unwrap().len();
    println!("published {published_count} frames; viewers in total: {totals:?}");
    assert!(totals.frames > 0);
    eventually(Duration::from_secs(10), "every viewer detached", || {
        hub.viewer_count() == 0 && hub.direct_viewer_count() == 0
    })
    .await;
    gateway.shutdown().await;
}
