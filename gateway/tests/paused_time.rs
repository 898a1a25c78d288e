//! Timers on tokio's paused clock: the idle reaper, the keepalive (ping / pong timeout) and
//! the write timeout, each at its production setting, checked against virtual time.
//!
//! These tests must not depend on how fast two shared cores are, so the clock is paused
//! (`start_paused`: it only moves when every task waits, straight to the next timer) and
//! frames come from a source the test drives itself (`support::ManualFactory`, swapped into a
//! real gateway's hub), never from a plugin thread running on the wall clock. Sockets are
//! real loopback sockets: data a peer wrote is readable at once, so waiting for it never
//! lets the paused clock jump past a deadline.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use camgate::app::{Gateway, GatewayOptions};
use camgate::http::ws::WsSettings;
use camgate::hub::{Hub, SourceFactory, StreamState};
use camgate::plugins::PluginCatalog;
use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// One on-demand stream; its testsrc factory is replaced by a [`ManualFactory`] before any
/// viewer arrives, so the testsrc plugin never runs.
const MANIFEST: &str = r#"
defaults:
  idle_timeout: 30s
streams:
  - id: cam
    source: { plugin: testsrc, width: 160, height: 90 }
"#;

/// A real 8x8 JPEG (decodable by viewers' decoders).
const GREY: &[u8] = include_bytes!("../../plugins/template/src/grey8x8.jpg");

/// [`GREY`] padded with comment segments to about `len` bytes: frames over 16 KiB take the
/// gateway's `sendfile` path, as camera frames do.
fn jpeg(len: usize) -> Vec<u8> {
    let mut out = GREY[..2].to_vec();
    let mut padding = len.saturating_sub(GREY.len());
    while padding > 4 {
        let chunk = (padding - 4).min(0xFFFF - 2);
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&u16::try_from(chunk + 2).unwrap().to_be_bytes());
        out.resize(out.len() + chunk, b'.');
        padding -= chunk + 4;
    }
    out.extend_from_slice(&GREY[2..]);
    out
}

/// Publishes a real JPEG of about `len` bytes through the running source's sink.
fn publish(factory: &ManualFactory, len: usize) {
    assert!(
        factory.sink().publish(&jpeg(len), 8, 8, 0),
        "the sink accepts frames"
    );
}

/// A gateway with production WebSocket timings (ping 15 s, pong 45 s, write 10 s) and
/// reaper interval, whose stream `cam` runs on a [`ManualFactory`].
async fn gateway() -> (Gateway, Arc<Hub>, Arc<ManualFactory>) {
    gateway_with(WsSettings::default()).await
}

/// [`gateway`] with other WebSocket settings.
async fn gateway_with(ws: WsSettings) -> (Gateway, Arc<Hub>, Arc<ManualFactory>) {
    let options = GatewayOptions {
        ws,
        watch_config: false,
        ..GatewayOptions::default()
    };
    let gateway = start_with(MANIFEST, PluginCatalog::with_builtins(), options).await;
    let hub = gateway.state().registry.get("cam").unwrap();
    let factory = Arc::new(ManualFactory::default());
    hub.reconfigure(hub.info(), Arc::clone(&factory) as Arc<dyn SourceFactory>)
        .await;
    assert_eq!(
        factory.starts.load(Ordering::SeqCst),
        0,
        "on demand: nothing runs"
    );
    (gateway, hub, factory)
}

/// Waits (in virtual time) until the hub has `n` viewers and, with any, its source runs
/// (a viewer counts itself in before it asks for the source).
async fn viewers(hub: &Hub, factory: &ManualFactory, n: usize) {
    eventually(SECS(5), &format!("{n} viewers"), || {
        hub.viewer_count() == n && (n == 0 || factory.running.load(Ordering::SeqCst) == 1)
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_viewer_that_answers_pings_stays_and_one_that_does_not_is_closed_after_the_pong_timeout()
{
    let (gateway, hub, factory) = gateway().await;
    let settings = WsSettings::default();
    let addr = gateway.local_addr();

    // A viewer that answers every ping is still there ten (virtual) minutes later.
    let mut polite = RawViewer::connect(addr, "/ws/streams/cam").await;
    let pings = stay(&mut polite, SECS(600)).await;
    assert!(pings >= 600 / 15 - 1, "pinged every 15 s: {pings} pings");
    viewers(&hub, &factory, 1).await;

    // A viewer that never answers: pinged after the interval, closed after the timeout.
    let mut silent = RawViewer::connect(addr, "/ws/streams/cam").await;
    let started = Instant::now();
    silent.next_of(0x9, SECS(60)).await;
    let first_ping = started.elapsed();
    assert!(
        first_ping >= settings.ping_interval && first_ping < settings.ping_interval + SECS(1),
        "first ping after {first_ping:?}"
    );
    let close = silent.next_of(0x8, SECS(300)).await;
    let closed = started.elapsed();
    assert_eq!(close.close_code(), Some(4008));
    assert!(
        closed >= settings.pong_timeout && closed <= settings.pong_timeout + settings.ping_interval,
        "closed after {closed:?}"
    );
    drop(polite);
    gateway.shutdown().await;
}

/// Keeps `viewer` connected for `how_long` (virtual), answering every ping as a browser
/// does; returns how many pings it answered.
async fn stay(viewer: &mut RawViewer, how_long: Duration) -> usize {
    let until = Instant::now() + how_long;
    let mut pings = 0;
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        let Ok(frame) = tokio::time::timeout(left, viewer.next(SECS(3600))).await else {
            break;
        };
        let frame = frame.expect("still connected");
        if frame.opcode == 0x9 {
            pings += 1;
            viewer.send(0x8A, &frame.payload, true).await;
        }
    }
    pings
}

/// Connects a viewer with a tiny receive buffer, completes the handshake, and from then on
/// never reads: whatever the gateway sends backs up in the socket at once.
async fn stalled_viewer(addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET /ws/streams/cam HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1);
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    stream
}

#[tokio::test(start_paused = true)]
async fn a_stalled_viewer_never_delays_another_and_is_closed_after_the_write_timeout() {
    let (gateway, hub, factory) = gateway().await;
    let write_timeout = WsSettings::default().write_timeout;
    let addr = gateway.local_addr();
    let _stalled = stalled_viewer(addr).await;
    let mut healthy = connect(addr, "/ws/streams/cam").await;
    viewers(&hub, &factory, 2).await;
    next_event(&mut healthy, SECS(5)).await; // hello

    // Large frames fill the stalled socket within a few frames. The healthy viewer gets
    // every one of them, in order: nothing waits on the stalled socket, and nothing is
    // skipped on the healthy viewer's behalf.
    let mut last = 0;
    for _ in 0..40 {
        publish(&factory, 256 * 1024);
        let frame = next_frame(&mut healthy, SECS(5)).await;
        assert!(
            last == 0 || frame.seq == last + 1,
            "frame {} after {last}",
            frame.seq
        );
        last = frame.seq;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(hub.status().state, StreamState::Live);

    // The stalled viewer is cut once its socket has taken nothing for the write timeout
    // (it started waiting during the frames above), and counted as a slow viewer.
    let waiting_since = Instant::now();
    eventually(write_timeout + SECS(5), "the stalled viewer is cut", || {
        hub.viewer_count() == 1
    })
    .await;
    assert!(waiting_since.elapsed() <= write_timeout + SECS(2));
    let metrics = gateway.state().metrics.render();
    assert!(
        metrics.contains("camgate_slow_viewer_disconnects_total{stream=\"cam\"} 1"),
        "{metrics}"
    );
    // The healthy one is still served.
    publish(&factory, 256 * 1024);
    assert_eq!(next_frame(&mut healthy, SECS(5)).await.seq, last + 1);
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_write_timeout_runs_from_when_a_write_starts_waiting() {
    let (gateway, hub, factory) = gateway().await;
    let write_timeout = WsSettings::default().write_timeout;
    let _stalled = stalled_viewer(gateway.local_addr()).await;
    viewers(&hub, &factory, 1).await;
    for _ in 0..40 {
        publish(&factory, 256 * 1024);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiting_since = Instant::now();
    tokio::time::sleep(write_timeout - SECS(1)).await;
    assert_eq!(hub.viewer_count(), 1, "not cut before the write timeout");
    eventually(SECS(5), "the stalled viewer is cut", || {
        hub.viewer_count() == 0
    })
    .await;
    assert!(waiting_since.elapsed() <= write_timeout + SECS(2));
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_viewer_that_keeps_up_gets_every_frame_across_lane_hand_overs() {
    // Pings every 50 ms (and the viewer's own pings) make the session take the socket back
    // from the publisher's direct lane and give it again many times per frame; large
    // frames go out with `sendfile` from the publisher's thread.
    let (gateway, hub, factory) = gateway_with(WsSettings {
        ping_interval: Duration::from_millis(50),
        ..WsSettings::default()
    })
    .await;
    let mut ws = connect(gateway.local_addr(), "/ws/streams/cam").await;
    viewers(&hub, &factory, 1).await;
    publish(&factory, 64 * 1024);
    let mut last = next_frame(&mut ws, SECS(5)).await.seq;
    assert_eq!(
        hub.direct_viewer_count(),
        1,
        "the viewer is attached to the lane"
    );
    for i in 0..200 {
        if i % 7 == 0 {
            ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
        }
        // Between frames the session pings (and answers pings), taking the socket back.
        tokio::time::sleep(Duration::from_millis(20 + (i % 5) * 15)).await;
        publish(&factory, if i % 3 == 0 { 1000 } else { 64 * 1024 });
        let frame = next_frame(&mut ws, SECS(5)).await;
        assert_eq!(frame.seq, last + 1, "no frame lost or repeated");
        last = frame.seq;
    }
    drop(ws);
    eventually(SECS(5), "the lane is detached", || {
        hub.direct_viewer_count() == 0
    })
    .await;
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn max_fps_thins_frames_for_one_viewer_only() {
    let (gateway, hub, factory) = gateway().await;
    let addr = gateway.local_addr();
    let mut thumb = connect(addr, "/ws/streams/cam?max_fps=2").await;
    let mut full = connect(addr, "/ws/streams/cam").await;
    viewers(&hub, &factory, 2).await;
    next_event(&mut thumb, SECS(5)).await;
    next_event(&mut full, SECS(5)).await;
    // A 20 fps source for 3 s: the full viewer gets every frame, the thumbnail one every
    // half second (about every tenth).
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while let Ok(message) = tokio::time::timeout(SECS(1), thumb.next()).await {
            if let Some(Ok(Message::Binary(bytes))) = message {
                seqs.push(decode_frame(&bytes).seq);
            }
        }
        seqs
    });
    let mut full_seqs = Vec::new();
    for _ in 0..60 {
        publish(&factory, 2000);
        full_seqs.push(next_frame(&mut full, SECS(5)).await.seq);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let thumb_seqs = reader.await.unwrap();
    assert!(
        full_seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "{full_seqs:?}"
    );
    assert!((6..=8).contains(&thumb_seqs.len()), "{thumb_seqs:?}");
    assert!(
        thumb_seqs
            .windows(2)
            .all(|w| (9..=11).contains(&(w[1] - w[0]))),
        "about every tenth frame: {thumb_seqs:?}"
    );
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_gets_recent_frames_and_is_told_what_it_missed() {
    let (gateway, hub, factory) = gateway().await;
    // A viewer whose receive buffer does not balloon (a fixed SO_RCVBUF turns off the
    // kernel's receive autotuning), like a viewer on a slow link: a backlog can then only
    // build up on the gateway's side, which is what the gateway must prevent.
    let mut ws = connect_with_rcvbuf(gateway.local_addr(), "/ws/streams/cam", 16 * 1024).await;
    viewers(&hub, &factory, 1).await;
    next_event(&mut ws, SECS(5)).await; // hello
    // A 10 fps source of large frames, and a viewer that takes one every 400 ms; control
    // and text messages in between are read at once, as any client does.
    let source = {
        let factory = Arc::clone(&factory);
        tokio::spawn(async move {
            loop {
                publish(&factory, 128 * 1024);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut dropped = 0;
    let mut lags = Vec::new();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        loop {
            match next_message(&mut ws, SECS(5)).await {
                Message::Text(text) => {
                    let event: serde_json::Value = serde_json::from_str(&text).unwrap();
                    if event["type"] == "dropped" {
                        dropped += event["frames"].as_u64().unwrap();
                    }
                }
                Message::Binary(bytes) => {
                    let frame = decode_frame(&bytes);
                    lags.push(hub.latest_frame().unwrap().seq - frame.seq);
                    break;
                }
                _ => {}
            }
        }
    }
    source.abort();
    assert!(dropped > 0, "skipped frames are reported");
    // Latest frame wins all the way to the wire: what the viewer reads stays recent
    // instead of a growing backlog. The lag is bounded by the frames in flight (here about
    // two, each taken 400 ms apart at 10 fps); without TCP_NOTSENT_LOWAT the gateway's send
    // buffer grows to megabytes, nothing is skipped and the lag grows without bound.
    let worst = lags.iter().skip(3).max().copied().unwrap_or(0);
    assert!(
        worst <= 12,
        "viewer fell behind by {worst} frames: {lags:?}"
    );
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_reaper_stops_an_idle_source_after_its_grace_and_a_viewer_in_the_grace_reuses_it() {
    let (gateway, hub, factory) = gateway().await;
    let idle_timeout = hub.info().idle_timeout;
    assert_eq!(idle_timeout, SECS(30));
    let addr = gateway.local_addr();
    let running = || factory.running.load(Ordering::SeqCst);

    let viewer = RawViewer::connect(addr, "/ws/streams/cam").await;
    viewers(&hub, &factory, 1).await;
    assert_eq!((factory.starts.load(Ordering::SeqCst), running()), (1, 1));
    drop(viewer);
    viewers(&hub, &factory, 0).await;

    // Within the grace period the source keeps running, and a new viewer reuses it.
    tokio::time::sleep(idle_timeout - SECS(2)).await;
    assert_eq!(running(), 1, "still within the grace period");
    let mut viewer = RawViewer::connect(addr, "/ws/streams/cam").await;
    viewers(&hub, &factory, 1).await;
    assert_eq!(
        factory.starts.load(Ordering::SeqCst),
        1,
        "the running source is reused"
    );

    // A viewer keeps it alive however long it stays.
    stay(&mut viewer, idle_timeout * 4).await;
    assert_eq!(running(), 1);
    drop(viewer);
    viewers(&hub, &factory, 0).await;
    let left = Instant::now();

    // The reaper stops it once the grace period after the last viewer has passed (it
    // looks once a second), and not before.
    tokio::time::sleep(idle_timeout - SECS(1)).await;
    assert_eq!(running(), 1, "stopped before its grace period ended");
    eventually(SECS(5), "the idle source is stopped", || running() == 0).await;
    let stopped_after = left.elapsed();
    assert!(
        stopped_after <= idle_timeout + SECS(2),
        "stopped after {stopped_after:?}"
    );
    assert_eq!(hub.status().state, StreamState::Stopped);
    assert_eq!(factory.starts.load(Ordering::SeqCst), 1);
    gateway.shutdown().await;
}
