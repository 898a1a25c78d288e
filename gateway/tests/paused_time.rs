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
use camgate::hub::{Hub, StreamState};
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
        ..GatewayOptions::default()
    };
    manual_gateway(MANIFEST, "cam", options).await
}

/// Waits (in virtual time) until the hub has `n` viewers and, with any, its source runs.
async fn viewers(hub: &Hub, factory: &ManualFactory, n: usize) {
    manual_viewers(hub, factory, n).await;
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

// Credit (`{"type":"credit","frames":N}`): opt-in flow control for viewers slower than the
// stream. Frames carry a capture time on the virtual clock where age matters.

/// Sends a credit grant and waits until the session has acted on it (`send_and_sync`).
/// Returns what arrived before (pings and pongs left out).
async fn grant(ws: &mut Client, frames: i64) -> Vec<Message> {
    let text = format!(r#"{{"type":"credit","frames":{frames}}}"#);
    send_and_sync(ws, &text).await
}

/// Everything (but pings and pongs) that arrives within `window` of virtual time.
async fn messages_within(ws: &mut Client, window: Duration) -> Vec<Message> {
    let deadline = Instant::now() + window;
    let mut got = Vec::new();
    while let Ok(message) = tokio::time::timeout_at(deadline, ws.next()).await {
        match message
            .expect("still connected")
            .expect("no WebSocket error")
        {
            Message::Ping(_) | Message::Pong(_) => {}
            message => got.push(message),
        }
    }
    got
}

/// The frames among `messages`.
fn frames_in(messages: &[Message]) -> Vec<ReceivedFrame> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Binary(bytes) => Some(decode_frame(bytes)),
            _ => None,
        })
        .collect()
}

/// The `type` of each JSON text message among `messages`.
fn event_types(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Text(text) => {
                let event: serde_json::Value = serde_json::from_str(text).unwrap();
                Some(event["type"].as_str().unwrap().to_owned())
            }
            _ => None,
        })
        .collect()
}

/// The latest frame's sequence number.
fn latest_seq(hub: &Hub) -> u64 {
    hub.latest_frame().expect("a frame was published").seq
}

/// Virtual microseconds since `epoch` (plus one: a capture time of 0 means "now").
fn virtual_us(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap() + 1
}

/// A gateway, a viewer on `path` that has had its `hello` (and `health`), and the stream
/// running.
async fn credit_viewer(path: &str) -> (Gateway, Arc<Hub>, Arc<ManualFactory>, Client) {
    let (gateway, hub, factory) = gateway().await;
    let mut ws = connect(gateway.local_addr(), path).await;
    viewers(&hub, &factory, 1).await;
    next_hello(&mut ws, SECS(5)).await;
    (gateway, hub, factory, ws)
}

#[tokio::test(start_paused = true)]
async fn credit_zero_sends_no_frame_however_many_are_published_but_every_status_event() {
    let (gateway, hub, factory, mut ws) = credit_viewer("/ws/streams/cam").await;
    assert!(grant(&mut ws, 0).await.is_empty());
    for _ in 0..30 {
        publish(&factory, 64 * 1024);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    factory
        .sink()
        .set_state(StreamState::Retrying, "camera gone");
    let got = messages_within(&mut ws, SECS(5)).await;
    assert!(frames_in(&got).is_empty(), "no credit, no frame");
    assert_eq!(event_types(&got), ["state", "state"], "live, then retrying");
    assert_eq!(latest_seq(&hub), 30);
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn credit_asked_for_in_the_url_holds_from_the_first_frame() {
    let (gateway, hub, factory) = gateway().await;
    let addr = gateway.local_addr();
    // A viewer without credit starts the stream, which has a picture before the others come.
    let mut free = connect(addr, "/ws/streams/cam").await;
    viewers(&hub, &factory, 1).await;
    publish(&factory, 64 * 1024);
    next_frame(&mut free, SECS(5)).await;

    // `credit=0`: `hello` (with the picture's size), and not a single frame, however many
    // are published; a grant sent long after still gets the latest at once.
    let mut none = connect(addr, "/ws/streams/cam?credit=0").await;
    let hello = next_event(&mut none, SECS(5)).await;
    assert_eq!(
        (hello["type"].as_str(), hello["width"].as_u64()),
        (Some("hello"), Some(8))
    );
    // Its work is done (and unread, it would drop frames, which the end checks).
    drop(free);
    for _ in 0..5 {
        publish(&factory, 64 * 1024);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(frames_in(&messages_within(&mut none, SECS(1)).await).is_empty());
    let mut got = grant(&mut none, 1).await;
    got.extend(messages_within(&mut none, SECS(1)).await);
    let seqs: Vec<u64> = frames_in(&got).iter().map(|f| f.seq).collect();
    assert_eq!(seqs, [latest_seq(&hub)], "the latest, at once, and only it");

    // `credit=1`: the greeting frame spends it; nothing more until the next grant.
    let mut one = connect(addr, "/ws/streams/cam?credit=1").await;
    assert_eq!(next_event(&mut one, SECS(5)).await["type"], "hello");
    assert_eq!(next_frame(&mut one, SECS(5)).await.seq, latest_seq(&hub));
    for _ in 0..5 {
        publish(&factory, 64 * 1024);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(frames_in(&messages_within(&mut one, SECS(1)).await).is_empty());
    let mut got = grant(&mut one, 1).await;
    got.extend(messages_within(&mut one, SECS(1)).await);
    let seqs: Vec<u64> = frames_in(&got).iter().map(|f| f.seq).collect();
    assert_eq!(seqs, [latest_seq(&hub)]);

    // Nothing withheld on request was counted as dropped.
    let metrics = gateway.state().metrics.render();
    assert!(
        metrics.contains("camgate_frames_dropped_total{stream=\"cam\"} 0"),
        "{metrics}"
    );
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn credit_after_withheld_frames_sends_the_latest_at_once_and_then_waits() {
    let (gateway, _hub, factory, mut ws) = credit_viewer("/ws/streams/cam").await;
    grant(&mut ws, 0).await;
    for _ in 0..5 {
        publish(&factory, 64 * 1024);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(frames_in(&messages_within(&mut ws, SECS(1)).await).is_empty());

    // One credit: the latest frame at once (not the next one), then nothing.
    let mut got = grant(&mut ws, 1).await;
    got.extend(messages_within(&mut ws, SECS(1)).await);
    let seqs: Vec<u64> = frames_in(&got).iter().map(|f| f.seq).collect();
    assert_eq!(seqs, [5], "exactly the latest of the withheld frames");
    for _ in 0..3 {
        publish(&factory, 64 * 1024);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(frames_in(&messages_within(&mut ws, SECS(1)).await).is_empty());

    // The next credit gets the latest again.
    let mut got = grant(&mut ws, 1).await;
    got.extend(messages_within(&mut ws, SECS(1)).await);
    assert_eq!(
        frames_in(&got).iter().map(|f| f.seq).collect::<Vec<_>>(),
        [8]
    );

    // Credit for a viewer that has the latest waits for the next frame.
    let mut got = grant(&mut ws, 1).await;
    got.extend(messages_within(&mut ws, SECS(1)).await);
    assert!(frames_in(&got).is_empty(), "frame 8 is not sent twice");
    publish(&factory, 1000);
    assert_eq!(next_frame(&mut ws, SECS(5)).await.seq, 9);

    // Withheld frames were the viewer's choice: not dropped, not reported as dropped.
    assert!(!event_types(&got).contains(&"dropped".to_owned()));
    let metrics = gateway.state().metrics.render();
    assert!(
        metrics.contains("camgate_frames_dropped_total{stream=\"cam\"} 0"),
        "{metrics}"
    );
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn credit_for_n_frames_sends_at_most_n_each_the_latest_and_never_a_backlog() {
    let (gateway, hub, factory, mut ws) = credit_viewer("/ws/streams/cam").await;
    grant(&mut ws, 0).await;
    for _ in 0..5 {
        publish(&factory, 64 * 1024);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut got = grant(&mut ws, 3).await;
    got.extend(messages_within(&mut ws, SECS(1)).await);
    assert_eq!(
        frames_in(&got).iter().map(|f| f.seq).collect::<Vec<_>>(),
        [5]
    );
    // Two credits left: each new frame goes out as it is published (through the lane: the
    // viewer is up to date), then the credit is spent and nothing more goes.
    for expected in [6, 7] {
        publish(&factory, 64 * 1024);
        assert_eq!(next_frame(&mut ws, SECS(5)).await.seq, expected);
        assert_eq!(latest_seq(&hub), expected, "the latest at the time");
    }
    for _ in 0..10 {
        publish(&factory, 64 * 1024);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(frames_in(&messages_within(&mut ws, SECS(2)).await).is_empty());

    // A viewer that does not read for a while: however many frames are published, it
    // finds at most its credit waiting, never a backlog.
    grant(&mut ws, 4).await;
    let frames_before = latest_seq(&hub);
    for _ in 0..30 {
        publish(&factory, 64 * 1024);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = frames_in(&messages_within(&mut ws, SECS(1)).await);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0].seq, frames_before, "the latest when the credit came");
    assert_eq!(latest_seq(&hub), frames_before + 30);
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_credit_viewer_that_keeps_up_is_served_by_the_direct_pass() {
    let (gateway, hub, factory, mut ws) = credit_viewer("/ws/streams/cam").await;
    grant(&mut ws, 1).await;
    // Frame by frame, like a player that grants one more for each picture it shows: the
    // lane closes when the credit runs out and opens again with the next grant, so every
    // frame after the first goes out through the direct pass.
    for _ in 0..10 {
        publish(&factory, 64 * 1024);
        let frame = next_frame(&mut ws, SECS(5)).await;
        assert_eq!(frame.seq, latest_seq(&hub));
        grant(&mut ws, 1).await;
    }
    let metrics = gateway.state().metrics.render();
    let direct = metrics
        .lines()
        .find_map(|l| l.strip_prefix("camgate_direct_frames_total{stream=\"cam\"} "))
        .unwrap_or("0");
    assert_eq!(direct, "9", "all but the first of 10 frames went direct");
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_one_frame_per_second_consumer_on_credit_always_shows_a_picture_under_a_second_old() {
    let (gateway, _hub, factory, mut ws) = credit_viewer("/ws/streams/cam").await;
    let epoch = Instant::now();
    // A 10 fps source whose frames carry their capture time on the virtual clock.
    let source = {
        let factory = Arc::clone(&factory);
        tokio::spawn(async move {
            loop {
                let jpeg = jpeg(32 * 1024);
                assert!(factory.sink().publish(&jpeg, 8, 8, virtual_us(epoch)));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // The consumer takes a second per picture (a busy tab, a slow decoder) and asks for
    // the next one only when done with the last: it never holds more than it asked for,
    // whatever its receive buffer (here the kernel's default, autotuned).
    grant(&mut ws, 1).await;
    let mut ages = Vec::new();
    for _ in 0..30 {
        let frame = next_frame(&mut ws, SECS(5)).await;
        ages.push(Duration::from_micros(
            virtual_us(epoch) - frame.captured_at_us,
        ));
        tokio::time::sleep(SECS(1)).await;
        ws.send(Message::text(r#"{"type":"credit","frames":1}"#))
            .await
            .unwrap();
    }
    source.abort();
    let oldest = ages.iter().max().unwrap();
    // At most one frame interval: the frame it gets is the latest when it asks.
    assert!(
        *oldest <= Duration::from_millis(100),
        "ages: {ages:?} (oldest {oldest:?})"
    );
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_bad_credit_message_closes_with_1008_and_other_text_is_ignored() {
    let (gateway, hub, factory) = gateway().await;
    let addr = gateway.local_addr();
    for bad in [
        r#"{"type":"credit","frames":-1}"#,
        r#"{"type":"credit","frames":1.5}"#,
        r#"{"type":"credit","frames":"3"}"#,
        r#"{"type":"credit","frames":1001}"#,
        r#"{"type":"credit","frames":18446744073709551616}"#,
        r#"{"type":"credit"}"#,
    ] {
        let mut ws = connect(addr, "/ws/streams/cam").await;
        next_event(&mut ws, SECS(5)).await;
        ws.send(Message::text(bad)).await.unwrap();
        assert_eq!(closed_with(&mut ws, SECS(5)).await, Some(1008), "{bad}");
    }
    viewers(&hub, &factory, 0).await;

    // Unknown types and text that is not JSON are ignored: a viewer that sends them (and
    // no credit) is served every frame, as before.
    let mut ws = connect(addr, "/ws/streams/cam").await;
    viewers(&hub, &factory, 1).await;
    next_hello(&mut ws, SECS(5)).await;
    for other in [
        r#"{"type":"ack","seq":3}"#,
        r#"{"type":"Credit","frames":-1}"#,
        "not json",
        "[1,2,3]",
    ] {
        assert!(send_and_sync(&mut ws, other).await.is_empty(), "{other}");
    }
    for _ in 0..5 {
        publish(&factory, 1000);
        next_frame(&mut ws, SECS(5)).await;
    }
    // Credit saturates at its maximum instead of failing.
    for _ in 0..3 {
        grant(&mut ws, 1000).await;
    }
    publish(&factory, 1000);
    next_frame(&mut ws, SECS(5)).await;
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn credit_composes_with_max_fps() {
    let (gateway, _hub, factory, mut ws) = credit_viewer("/ws/streams/cam?max_fps=2").await;
    grant(&mut ws, 0).await;
    let epoch = Instant::now();
    let source = {
        let factory = Arc::clone(&factory);
        tokio::spawn(async move {
            loop {
                let jpeg = jpeg(2000);
                assert!(factory.sink().publish(&jpeg, 8, 8, virtual_us(epoch)));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Three credits at 2 fps: three frames, half a second apart, then nothing.
    let mut got = grant(&mut ws, 3).await;
    got.extend(messages_within(&mut ws, SECS(4)).await);
    let frames = frames_in(&got);
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert!(
        frames
            .windows(2)
            .all(|w| w[1].captured_at_us - w[0].captured_at_us >= 450_000),
        "{frames:?}"
    );
    // Plenty of credit: max_fps still caps the rate.
    let mut got = grant(&mut ws, 100).await;
    got.extend(messages_within(&mut ws, SECS(3)).await);
    let frames = frames_in(&got);
    assert!((5..=7).contains(&frames.len()), "{frames:?}");
    source.abort();
    gateway.shutdown().await;
}

// Viewer freshness (`shown` reports) and picture health (`health` messages).

#[tokio::test(start_paused = true)]
async fn a_flood_of_shown_reports_is_rate_limited_per_viewer() {
    let (gateway, hub, factory, mut ws) = credit_viewer("/ws/streams/cam").await;
    let addr = gateway.local_addr();
    let report = r#"{"type":"shown","frames":10,"age_ms":[40]}"#;
    for _ in 0..10 {
        ws.send(Message::text(report)).await.unwrap();
    }
    send_and_sync(&mut ws, report).await;
    let shown = r#"camgate_viewer_frames_shown_total{stream="cam"}"#;
    let count = r#"camgate_viewer_frame_age_seconds_count{stream="cam"}"#;
    let limited = r#"camgate_viewer_reports_ignored_total{reason="rate_limited",stream="cam"}"#;
    let scrape = Scrape::of(addr, &[]).await;
    assert_eq!(
        (
            scrape.value(shown),
            scrape.value(count),
            scrape.value(limited)
        ),
        (10.0, 1.0, 10.0),
        "one report of eleven counted"
    );

    // Another viewer is limited on its own.
    let mut other = connect(addr, "/ws/streams/cam").await;
    viewers(&hub, &factory, 2).await;
    send_and_sync(&mut other, report).await;
    // The first viewer again, once the interval has passed (and not a moment before).
    tokio::time::sleep(Duration::from_millis(1999)).await;
    send_and_sync(&mut ws, report).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    send_and_sync(&mut ws, report).await;
    let scrape = Scrape::of(addr, &[]).await;
    assert_eq!(
        (
            scrape.value(shown),
            scrape.value(count),
            scrape.value(limited)
        ),
        (30.0, 3.0, 11.0)
    );
    // Neither viewer was disconnected.
    publish(&factory, 1000);
    next_frame(&mut ws, SECS(5)).await;
    next_frame(&mut other, SECS(5)).await;
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn health_follows_hello_unknown_before_frames_then_each_verdict_once() {
    let (gateway, hub, factory) = gateway().await;
    let mut ws = connect(gateway.local_addr(), "/ws/streams/cam").await;
    viewers(&hub, &factory, 1).await;
    assert_eq!(next_event(&mut ws, SECS(5)).await["type"], "hello");
    let first = next_event(&mut ws, SECS(5)).await;
    assert_eq!(
        (&first["type"], &first["health"]),
        (&"health".into(), &"unknown".into()),
        "{first}"
    );
    // Before the source is live no verdict but `unknown` is taken.
    hub.set_health(camgate::hub::PictureHealth::Dark);
    assert!(event_types(&send_and_sync(&mut ws, "{}").await).is_empty());

    publish(&factory, 1000);
    assert_eq!(hub.status().state, StreamState::Live);
    hub.set_health(camgate::hub::PictureHealth::Frozen);
    let got = send_and_sync(&mut ws, "{}").await;
    assert_eq!(event_types(&got), ["state", "health"]);
    let Message::Text(text) = &got[1] else {
        unreachable!()
    };
    let health: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(health["health"], "frozen");
    assert_eq!(
        health["since"],
        humantime::format_rfc3339_millis(hub.health().since).to_string()
    );
    // A repeated verdict is not news.
    hub.set_health(camgate::hub::PictureHealth::Frozen);
    assert!(event_types(&send_and_sync(&mut ws, "{}").await).is_empty());
    // A new viewer hears the current verdict right after its hello.
    let mut late = connect(gateway.local_addr(), "/ws/streams/cam").await;
    assert_eq!(next_event(&mut late, SECS(5)).await["type"], "hello");
    assert_eq!(next_event(&mut late, SECS(5)).await["health"], "frozen");
    gateway.shutdown().await;
}
