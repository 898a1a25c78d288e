//! End-to-end WebSocket viewer tests against a real gateway on 127.0.0.1:0 with real
//! testsrc sources: the protocol (hello first, one decodable JPEG per binary message,
//! increasing sequence numbers), keepalive, the closing handshake, protocol violations, errors
//! before the upgrade, and the slow-viewer policy.

mod support;

use std::time::Duration;

use camgate::app::GatewayOptions;
use camgate::http::ws::WsSettings;
use camgate::plugins::PluginCatalog;
use futures_util::SinkExt;
use support::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const SECS: fn(u64) -> Duration = Duration::from_secs;

const PATTERN: &str = r#"
streams:
  - id: pattern
    name: Test pattern
    source:
      plugin: testsrc
      width: 320
      height: 180
      fps: 20
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_comes_first_then_viewers_share_decodable_frames_in_sequence() {
    let gateway = start(PATTERN).await;
    let addr = gateway.local_addr();
    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(connect(addr, "/ws/streams/pattern").await);
    }
    for ws in &mut viewers {
        let first = next_message(ws, SECS(5)).await;
        let Message::Text(text) = first else {
            panic!("first message must be the hello, got {first:?}");
        };
        let hello: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(hello["type"], "hello");
        assert_eq!(hello["stream"], "pattern");
        assert_eq!(hello["name"], "Test pattern");
        assert_eq!(hello["fps"], 20.0);
    }
    for ws in &mut viewers {
        let mut last = 0;
        for _ in 0..10 {
            let frame = next_frame(ws, SECS(5)).await;
            assert_eq!((frame.width, frame.height), (320, 180));
            assert!(
                frame.seq > last,
                "sequence increases: {} after {last}",
                frame.seq
            );
            assert!(frame.captured_at_us > 0);
            last = frame.seq;
        }
    }
    // One source for all three viewers.
    let hub = gateway.state().registry.get("pattern").unwrap();
    assert_eq!(hub.viewer_count(), 3);
    drop(viewers);
    gateway.shutdown().await;
}

#[tokio::test]
async fn unknown_stream_is_refused_with_404_before_the_upgrade() {
    let gateway = start(PATTERN).await;
    let url = format!("ws://{}/ws/streams/nope", gateway.local_addr());
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 404);
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("no stream with id `nope`"), "{body}");
        }
        other => panic!("expected an HTTP 404, got {other}"),
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn plain_http_foreign_origins_and_bad_keys_are_refused() {
    let gateway = start(PATTERN).await;
    let addr = gateway.local_addr();
    // Not an upgrade request.
    let (status, body) = http_get(addr, "/ws/streams/pattern", &[]).await;
    assert_eq!(status, 426, "{body}");
    assert!(body.contains("\"code\":\"websocket_required\""), "{body}");
    // A browser page from another site.
    let (status, body) = http_get(
        addr,
        "/ws/streams/pattern",
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Origin", "http://evil.example"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("origin_not_allowed"), "{body}");
    // A bad rate limit.
    let (status, body) = http_get(
        addr,
        "/ws/streams/pattern?max_fps=0",
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("max_fps"), "{body}");
    // Keys that are not the base64 of 16 bytes (RFC 6455 §4.1).
    for key in [
        "",
        "hello",
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbXBsZSBub25jZXM=",
    ] {
        let (status, body) = http_get(
            addr,
            "/ws/streams/pattern",
            &[
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", key),
            ],
        )
        .await;
        assert_eq!(status, 400, "key {key:?}: {body}");
        assert!(body.contains("websocket_key"), "{body}");
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_never_reads_does_not_slow_the_others_and_is_disconnected() {
    let gateway = start(
        r#"
streams:
  - id: big
    source:
      plugin: testsrc
      width: 1280
      height: 720
      fps: 15
      quality: 2
"#,
    )
    .await;
    let addr = gateway.local_addr();

    // The stalled viewer: a real WebSocket handshake on a socket with a tiny receive buffer,
    // then never another read, so the server's writes back up almost at once.
    let mut stalled = connect_with_rcvbuf(addr, "/ws/streams/big", 4096).await;
    let hub = gateway.state().registry.get("big").unwrap();

    let mut healthy = connect(addr, "/ws/streams/big").await;
    let mut frames = Vec::new();
    let mut dropped_notices = 0;
    while frames.len() < 40 {
        match next_message(&mut healthy, SECS(5)).await {
            Message::Binary(bytes) => frames.push(decode_frame(&bytes).seq),
            Message::Text(text) if text.contains("\"dropped\"") => dropped_notices += 1,
            _ => {}
        }
    }
    // The healthy viewer got a continuous run of frames: nothing was skipped on its behalf.
    let skipped: u64 = frames.windows(2).map(|w| w[1] - w[0] - 1).sum();
    assert!(
        skipped <= 2,
        "healthy viewer skipped {skipped} frames while another viewer stalled: {frames:?}"
    );
    assert_eq!(dropped_notices, 0);

    // The stalled viewer is cut off after the write timeout (1 s in these tests).
    eventually(SECS(10), "stalled viewer disconnected", || {
        hub.viewer_count() == 1
    })
    .await;
    let _ = stalled.send(Message::Close(None)).await;
    // The healthy one is still served.
    next_frame(&mut healthy, SECS(5)).await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_gets_recent_frames_and_is_told_what_it_missed() {
    // Large frames, so the kernel buffers between gateway and viewer hold only a few.
    let mut options = fast_options();
    options.ws.write_timeout = SECS(10);
    let gateway = start_with(
        r#"
streams:
  - id: pattern
    source: { plugin: testsrc, width: 1280, height: 720, fps: 10, quality: 2 }
"#,
        camgate::plugins::PluginCatalog::with_builtins(),
        options,
    )
    .await;
    let hub = gateway.state().registry.get("pattern").unwrap();
    // A viewer whose receive buffer does not balloon (fixed SO_RCVBUF turns off the
    // kernel's receive autotuning), like a viewer on a slow link: the backlog can then only
    // build up on the gateway's side, which is what the gateway must prevent.
    let mut ws = connect_with_rcvbuf(gateway.local_addr(), "/ws/streams/pattern", 16 * 1024).await;
    next_event(&mut ws, SECS(5)).await; // hello
    // Take one frame every 400 ms (a viewer slower than the source) for a while; control
    // and text messages in between are read at once, as any client does.
    let mut dropped = 0;
    let mut lags = Vec::new();
    for _ in 0..10 {
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
    assert!(dropped > 0, "skipped frames are reported");
    // Latest frame wins all the way to the wire: what the viewer reads stays recent instead
    // of a growing backlog. The lag is bounded by the few frames in flight (here ~2, each
    // taken 400 ms apart at 10 fps: ≈ 4-9 frames); without TCP_NOTSENT_LOWAT the gateway's
    // send buffer grows to megabytes, nothing is ever skipped and the lag grows without bound.
    let worst = lags.iter().skip(3).max().copied().unwrap_or(0);
    assert!(
        worst <= 16,
        "viewer fell behind by {worst} frames: {lags:?}"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_fps_thins_frames_for_one_viewer_only() {
    let gateway = start(PATTERN).await;
    let addr = gateway.local_addr();
    let mut thumb = connect(addr, "/ws/streams/pattern?max_fps=2").await;
    let mut full = connect(addr, "/ws/streams/pattern").await;
    next_event(&mut thumb, SECS(5)).await;
    next_event(&mut full, SECS(5)).await;
    let a = next_frame(&mut thumb, SECS(5)).await;
    let b = next_frame(&mut thumb, SECS(5)).await;
    let c = next_frame(&mut thumb, SECS(5)).await;
    // At 20 fps with max_fps=2, consecutive deliveries are ~10 sequence numbers apart.
    assert!(
        b.seq - a.seq >= 5 && c.seq - b.seq >= 5,
        "{} {} {}",
        a.seq,
        b.seq,
        c.seq
    );
    let x = next_frame(&mut full, SECS(5)).await;
    let y = next_frame(&mut full, SECS(5)).await;
    assert!(y.seq - x.seq <= 2, "the other viewer is not thinned");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_stream_closes_its_viewers_with_4004_and_shutdown_with_1001() {
    let gateway = start(
        r#"
streams:
  - id: a
    source: { plugin: testsrc, width: 160, height: 90 }
  - id: b
    source: { plugin: testsrc, width: 160, height: 90 }
"#,
    )
    .await;
    let addr = gateway.local_addr();
    let mut a = connect(addr, "/ws/streams/a").await;
    let mut b = connect(addr, "/ws/streams/b").await;
    next_frame(&mut a, SECS(5)).await;
    next_frame(&mut b, SECS(5)).await;

    gateway.state().registry.remove("a").await;
    assert_eq!(closed_with(&mut a, SECS(5)).await, Some(4004));
    // Stream b is untouched.
    next_frame(&mut b, SECS(5)).await;

    let shutdown = tokio::spawn(gateway.shutdown());
    assert_eq!(closed_with(&mut b, SECS(5)).await, Some(1001));
    shutdown.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_viewer_gets_the_cached_frame_at_once() {
    let gateway = start(
        r#"
streams:
  - id: slow
    on_demand: false
    source: { plugin: testsrc, width: 160, height: 90, fps: 0.2 }
"#,
    )
    .await;
    let hub = gateway.state().registry.get("slow").unwrap();
    eventually(SECS(5), "first frame", || hub.latest_frame().is_some()).await;
    // The next frame is 5 s away; a new viewer still gets a picture immediately.
    let mut ws = connect(gateway.local_addr(), "/ws/streams/slow").await;
    let hello = next_event(&mut ws, SECS(2)).await;
    assert_eq!(hello["width"], 160);
    assert_eq!(hello["state"], "live");
    let frame = next_frame(&mut ws, SECS(2)).await;
    assert_eq!(frame.seq, 1);
    drop(ws);
    gateway.shutdown().await;
}

#[tokio::test]
async fn stream_list_reports_state_and_viewers() {
    let gateway = start(PATTERN).await;
    let addr = gateway.local_addr();
    let mut ws = connect(addr, "/ws/streams/pattern").await;
    next_frame(&mut ws, SECS(5)).await;
    let (status, body) = http_get(addr, "/api/streams", &[]).await;
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let stream = &list["streams"][0];
    assert_eq!(stream["id"], "pattern");
    assert_eq!(stream["name"], "Test pattern");
    assert_eq!(stream["source"]["plugin"], "testsrc");
    assert_eq!(stream["state"], "live");
    assert_eq!(stream["viewers"], 1);
    let (status, body) = http_get(addr, "/api/nothing", &[]).await;
    assert_eq!(status, 404);
    assert!(body.contains("\"error\""), "{body}");
    drop(ws);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_and_a_viewer_that_never_answers_is_closed_with_4008() {
    let options = GatewayOptions {
        ws: WsSettings {
            ping_interval: Duration::from_millis(300),
            pong_timeout: Duration::from_millis(1500),
            ..fast_options().ws
        },
        ..fast_options()
    };
    let gateway = start_with(PATTERN, PluginCatalog::with_builtins(), options).await;
    let mut viewer = RawViewer::connect(gateway.local_addr(), "/ws/streams/pattern").await;
    let hello = viewer.next_of(0x1, SECS(5)).await;
    assert!(String::from_utf8_lossy(&hello.payload).contains("\"hello\""));

    // A ping is answered with a pong carrying the same payload.
    viewer.send(0x89, b"are you there", true).await;
    let pong = viewer.next_of(0xA, SECS(5)).await;
    assert_eq!(pong.payload, b"are you there");

    // The gateway pings on its own; this viewer never answers and is cut off with 4008.
    let ping = viewer.next_of(0x9, SECS(5)).await;
    assert!(ping.payload.is_empty());
    let close = viewer.next_of(0x8, SECS(10)).await;
    assert_eq!(close.close_code(), Some(4008));
    assert!(String::from_utf8_lossy(&close.payload).contains("ping"));
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_close_with_1002_or_1009_and_other_viewers_go_on() {
    let gateway = start(PATTERN).await;
    let addr = gateway.local_addr();
    let mut bystander = connect(addr, "/ws/streams/pattern").await;

    let mut unmasked = RawViewer::connect(addr, "/ws/streams/pattern").await;
    unmasked.send(0x81, b"{}", false).await;
    let close = unmasked.next_of(0x8, SECS(5)).await;
    assert_eq!(close.close_code(), Some(1002));

    let mut oversized = RawViewer::connect(addr, "/ws/streams/pattern").await;
    oversized.send_header_only(0x82, 1 << 40).await;
    let close = oversized.next_of(0x8, SECS(5)).await;
    assert_eq!(close.close_code(), Some(1009));

    let mut bad_control = RawViewer::connect(addr, "/ws/streams/pattern").await;
    bad_control.send(0x09, b"", true).await; // a fragmented ping
    let close = bad_control.next_of(0x8, SECS(5)).await;
    assert_eq!(close.close_code(), Some(1002));

    // Fragmented messages from a viewer are fine (and ignored).
    let mut chatty = RawViewer::connect(addr, "/ws/streams/pattern").await;
    chatty.send(0x01, b"{\"hel", true).await;
    chatty.send(0x80, b"lo\"}", true).await;
    chatty.next_of(0x2, SECS(5)).await;
    chatty.next_of(0x2, SECS(5)).await;

    for _ in 0..3 {
        next_frame(&mut bystander, SECS(5)).await;
    }
    gateway.shutdown().await;
}

/// RFC 6455 §8.1, §5.5.1, §7.4: what a viewer sends must be well-formed text and close
/// frames; the gateway answers with 1007 (not UTF-8) or 1002 (a malformed close).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_text_and_bad_close_frames_close_with_1007_or_1002() {
    let gateway = start(PATTERN).await;
    let addr = gateway.local_addr();
    /// What a case is called, the frames (first byte, payload) it sends, the close it gets.
    type Case = (&'static str, &'static [(u8, &'static [u8])], u16);
    let cases: [Case; 6] = [
        ("text that is not UTF-8", &[(0x81, b"caf\xc3(")], 1007),
        (
            "a message that ends inside a character",
            &[(0x01, b"\xe2\x82"), (0x80, b"")],
            1007,
        ),
        ("a 1-byte close payload", &[(0x88, b"\x03")], 1002),
        ("close code 1005 (never sent)", &[(0x88, b"\x03\xed")], 1002),
        ("close code 2999 (unassigned)", &[(0x88, b"\x0b\xb7")], 1002),
        (
            "a close reason that is not UTF-8",
            &[(0x88, b"\x03\xe8\xff")],
            1007,
        ),
    ];
    for (what, frames, code) in cases {
        let mut viewer = RawViewer::connect(addr, "/ws/streams/pattern").await;
        for (first, payload) in frames {
            viewer.send(*first, payload, true).await;
        }
        let close = viewer.next_of(0x8, SECS(5)).await;
        assert_eq!(close.close_code(), Some(code), "{what}");
    }
    // A character cut across fragments (with a ping between them) is fine.
    let mut viewer = RawViewer::connect(addr, "/ws/streams/pattern").await;
    let text = "{\"hi\":\"é€😀\"}".as_bytes();
    viewer.send(0x01, &text[..9], true).await;
    viewer.send(0x89, b"", true).await;
    viewer.send(0x00, &text[9..13], true).await;
    viewer.send(0x80, &text[13..], true).await;
    viewer.next_of(0xA, SECS(5)).await;
    viewer.next_of(0x2, SECS(5)).await;
    viewer.next_of(0x2, SECS(5)).await;
    gateway.shutdown().await;
}

/// RFC 6455 §5.5.1: the answer to a viewer's close echoes its code, and a close without a
/// code is answered without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_close_is_answered_with_its_own_code_or_none() {
    let gateway = start(PATTERN).await;
    let hub = gateway.state().registry.get("pattern").unwrap();
    let addr = gateway.local_addr();
    for code in [1001u16, 3000, 4321] {
        let mut viewer = RawViewer::connect(addr, "/ws/streams/pattern").await;
        viewer.next_of(0x2, SECS(5)).await;
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(b"leaving");
        viewer.send(0x88, &payload, true).await;
        let close = viewer.next_of(0x8, SECS(5)).await;
        assert_eq!(close.close_code(), Some(code));
        assert_eq!(close.payload.len(), 2, "the code alone, no reason");
        assert!(viewer.next(SECS(5)).await.is_none(), "the gateway hangs up");
    }
    let mut viewer = RawViewer::connect(addr, "/ws/streams/pattern").await;
    viewer.next_of(0x2, SECS(5)).await;
    viewer.send(0x88, b"", true).await;
    let close = viewer.next_of(0x8, SECS(5)).await;
    assert!(close.payload.is_empty(), "{:?}", close.payload);
    eventually(SECS(5), "viewers detached", || hub.viewer_count() == 0).await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_closing_gets_its_close_answered_and_is_detached() {
    let gateway = start(PATTERN).await;
    let hub = gateway.state().registry.get("pattern").unwrap();
    let mut viewer = connect(gateway.local_addr(), "/ws/streams/pattern").await;
    next_frame(&mut viewer, SECS(5)).await;
    viewer
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
    assert_eq!(closed_with(&mut viewer, SECS(5)).await, Some(1000));
    eventually(SECS(5), "viewer detached", || hub.viewer_count() == 0).await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testsrc_loop_frames_repeats_its_pictures_with_fresh_tags() {
    let gateway = start(
        r#"
streams:
  - id: loop
    source: { plugin: testsrc, width: 160, height: 96, fps: 20, loop_frames: 3 }
"#,
    )
    .await;
    let mut viewer = RawViewer::connect(gateway.local_addr(), "/ws/streams/loop").await;
    let mut frames = Vec::new();
    while frames.len() < 7 {
        let message = viewer.next_of(0x2, SECS(5)).await;
        let frame = decode_frame(&message.payload);
        let mut pixels = jpeg_decoder::Decoder::new(&message.payload[..]);
        frames.push((frame.seq, pixels.decode().unwrap()));
    }
    // Consecutive frames differ (the box moves); frames three apart are the same picture.
    let (first, rest) = frames.split_first().unwrap();
    assert!(
        rest.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "no frame skipped"
    );
    assert_ne!(first.1, rest[0].1);
    assert_eq!(first.1, rest[2].1);
    assert_eq!(rest[0].1, rest[3].1);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_keeps_up_gets_every_frame_across_lane_hand_overs() {
    // Pings every 50 ms (and the viewer's own pings) make the session take the socket back
    // from the publisher's direct lane and give it again many times per second; large
    // frames go out with `sendfile` from the publisher's thread.
    let options = GatewayOptions {
        ws: WsSettings {
            ping_interval: Duration::from_millis(50),
            ..fast_options().ws
        },
        ..fast_options()
    };
    let gateway = start_with(
        r#"
streams:
  - id: pattern
    source: { plugin: testsrc, width: 1280, height: 720, fps: 20, quality: 2, loop_frames: 10 }
"#,
        PluginCatalog::with_builtins(),
        options,
    )
    .await;
    let hub = gateway.state().registry.get("pattern").unwrap();
    let mut ws = connect(gateway.local_addr(), "/ws/streams/pattern").await;
    let mut last = next_frame(&mut ws, SECS(5)).await.seq;
    assert_eq!(
        hub.direct_viewer_count(),
        1,
        "the viewer is attached to the lane"
    );
    for i in 0..60 {
        if i % 7 == 0 {
            ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
        }
        let frame = next_frame(&mut ws, SECS(5)).await;
        assert!(frame.bytes > 16 * 1024, "large enough for sendfile");
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
