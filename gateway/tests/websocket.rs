//! End-to-end WebSocket viewer tests against a real gateway on 127.0.0.1:0 with real
//! testsrc sources: the protocol (hello first, one decodable JPEG per binary message,
//! increasing sequence numbers), pings, the closing handshake, protocol violations, errors
//! before the upgrade. What depends on timers (keepalive, write timeout, slow viewers,
//! `max_fps`, lane hand-overs) runs on tokio's paused clock in `tests/paused_time.rs`.

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
        &upgrade_headers(KEY, &[("Origin", "http://evil.example")]),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("origin_not_allowed"), "{body}");
    // A bad rate limit.
    let (status, body) = http_get(
        addr,
        "/ws/streams/pattern?max_fps=0",
        &upgrade_headers(KEY, &[]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("max_fps"), "{body}");
    // A bad initial credit.
    for query in ["credit=-1", "credit=1001", "credit=1.5", "credit="] {
        let (status, body) = http_get(
            addr,
            &format!("/ws/streams/pattern?{query}"),
            &upgrade_headers(KEY, &[]),
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body.contains("credit must be an integer from 0 to 1000"),
            "{body}"
        );
    }
    // Keys that are not the base64 of 16 bytes (RFC 6455 §4.1).
    for key in [
        "",
        "hello",
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbXBsZSBub25jZXM=",
    ] {
        let (status, body) =
            http_get(addr, "/ws/streams/pattern", &upgrade_headers(key, &[])).await;
        assert_eq!(status, 400, "key {key:?}: {body}");
        assert!(body.contains("websocket_key"), "{body}");
    }
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
async fn pings_are_answered_with_their_payload_and_the_gateway_pings_by_itself() {
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

    // The gateway pings on its own (when a viewer that never answers is closed, on tokio's
    // paused clock: tests/paused_time.rs).
    let ping = viewer.next_of(0x9, SECS(5)).await;
    assert!(ping.payload.is_empty());
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

/// Now, in µs since the Unix epoch (the gateway's timestamps).
fn unix_us_now() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

/// The next `health` message (frames and other messages skipped).
async fn next_health(ws: &mut Client) -> serde_json::Value {
    loop {
        let event = next_event(ws, SECS(5)).await;
        if event["type"] == "health" {
            let since = event["since"].as_str().expect("since is a string");
            humantime::parse_rfc3339(since).expect("since is RFC 3339");
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_carries_the_gateway_clock_and_health_follows_it_then_each_verdict() {
    // No monitor: the verdicts below are the test's own, not raced by the monitor's.
    let options = GatewayOptions {
        health: None,
        ..fast_options()
    };
    let gateway = start_with(PATTERN, PluginCatalog::with_builtins(), options).await;
    let addr = gateway.local_addr();
    let before = unix_us_now();
    let mut ws = connect(addr, "/ws/streams/pattern").await;
    let hello = next_event(&mut ws, SECS(5)).await;
    let after = unix_us_now();
    assert_eq!(hello["type"], "hello");
    let server_time = hello["server_time_us"]
        .as_u64()
        .expect("server_time_us is an integer");
    assert!(
        (before..=after).contains(&server_time),
        "{before} <= {server_time} <= {after}"
    );
    // Every field the hello had before is still there.
    for field in [
        "stream", "name", "fps", "width", "height", "state", "message", "codec", "format",
    ] {
        assert!(hello.get(field).is_some(), "hello lacks {field}: {hello}");
    }
    // `health` right after the hello: nothing judged yet.
    let first = next_event(&mut ws, SECS(5)).await;
    assert_eq!(first["type"], "health", "{first}");
    assert_eq!(first["health"], "unknown", "{first}");

    // Each verdict the hub records reaches the viewer.
    next_frame(&mut ws, SECS(5)).await;
    let hub = gateway.state().registry.get("pattern").unwrap();
    hub.set_health(camgate::hub::PictureHealth::Frozen);
    let since = hub.health().since;
    let frozen = next_health(&mut ws).await;
    assert_eq!(frozen["health"], "frozen");
    assert_eq!(
        frozen["since"],
        humantime::format_rfc3339_millis(since).to_string()
    );
    hub.set_health(camgate::hub::PictureHealth::Ok);
    assert_eq!(next_health(&mut ws).await["health"], "ok");
    drop(ws);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shown_reports_fill_the_viewer_metrics_and_bad_ones_are_ignored_without_a_disconnect() {
    let gateway = start(PATTERN).await;
    let addr = gateway.local_addr();
    let mut ws = connect(addr, "/ws/streams/pattern").await;
    next_frame(&mut ws, SECS(5)).await;
    let shown = r#"camgate_viewer_frames_shown_total{stream="pattern"}"#;
    let count = r#"camgate_viewer_frame_age_seconds_count{stream="pattern"}"#;
    let before = Scrape::of(addr, &[]).await;
    assert_eq!(before.value(shown), 0.0);
    assert_eq!(before.value(count), 0.0);

    send_and_sync(
        &mut ws,
        r#"{"type":"shown","frames":50,"age_ms":[10,30,120,800]}"#,
    )
    .await;
    let bad = [
        r#"{"type":"shown","frames":-1,"age_ms":[]}"#,
        r#"{"type":"shown","frames":10001,"age_ms":[]}"#,
        r#"{"type":"shown","frames":5}"#,
        r#"{"type":"shown","frames":1,"age_ms":[1,2]}"#,
        r#"{"type":"shown","frames":5,"age_ms":[-3]}"#,
        r#"{"type":"shown","frames":5,"age_ms":[600001]}"#,
        r#"{"type":"shown","frames":5,"age_ms":["7"]}"#,
    ];
    for text in bad {
        send_and_sync(&mut ws, text).await;
    }
    // Still open, still served.
    for _ in 0..3 {
        next_frame(&mut ws, SECS(5)).await;
    }

    let scrape = Scrape::of(addr, &[]).await;
    assert_eq!(scrape.value(shown), 50.0);
    let bucket = |le: &str| {
        scrape.value(&format!(
            r#"camgate_viewer_frame_age_seconds_bucket{{stream="pattern",le="{le}"}}"#
        ))
    };
    assert_eq!(
        [
            bucket("0.02"),
            bucket("0.05"),
            bucket("0.1"),
            bucket("0.15"),
            bucket("0.75"),
            bucket("1"),
            bucket("10"),
            bucket("+Inf")
        ],
        [1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0]
    );
    assert_eq!(scrape.value(count), 4.0);
    let sum = scrape.value(r#"camgate_viewer_frame_age_seconds_sum{stream="pattern"}"#);
    assert!((sum - 0.96).abs() < 1e-9, "{sum}");
    let ignored = |reason: &str| {
        scrape.value(&format!(
            r#"camgate_viewer_reports_ignored_total{{reason="{reason}",stream="pattern"}}"#
        ))
    };
    assert_eq!(ignored("invalid"), bad.len() as f64);
    assert_eq!(ignored("rate_limited"), 0.0);
    drop(ws);
    gateway.shutdown().await;
}
