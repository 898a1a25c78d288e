//! Gateways that relay gateways, with real parts: a core gateway serving a stream (testsrc,
//! the demo RTSP camera through the `rtsp` plugin, a test-driven source) and an edge
//! gateway whose source is the built-in `relay` plugin reading the core's viewing protocol.
//! Cores run in this process or as the real `camgate` binary (restarts, log capture).
//!
//! Timing: these drive real sockets, threads and processes, so they use the wall clock
//! with generous bounds and never assert on rates: only on what arrives, in order.

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives real processes and sockets, whose timing is the wall clock's"
)]

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use support::binary::GatewayProcess;
use support::rtsp::RtspServer;
use support::*;
use tokio_tungstenite::tungstenite::Message;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn core_yaml(source: &str) -> String {
    format!("defaults:\n  idle_timeout: 2s\nstreams:\n  - id: cam\n    source: {source}\n")
}

fn edge_yaml(core: SocketAddr, extra: &str) -> String {
    format!(
        "defaults:\n  idle_timeout: 2s\nstreams:\n  - id: cam\n    source: {{ plugin: relay, \
         url: \"ws://{core}/ws/streams/cam\"{extra} }}\n"
    )
}

/// How many Camgate tags a JPEG carries.
fn tags(jpeg: &[u8]) -> usize {
    jpeg.windows(5).filter(|w| w == b"CAMG\0").count()
}

/// A JPEG without its tag: what identifies one picture at the core and at the edge.
fn picture(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&jpeg[2 + camgate::hub::TAG_LEN..]);
    out
}

/// The next binary message.
async fn next_binary(ws: &mut Client, timeout: Duration) -> Vec<u8> {
    loop {
        match next_message(ws, timeout).await {
            Message::Binary(bytes) => return bytes.to_vec(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

/// The next `state` message whose state is `state`.
async fn next_state(ws: &mut Client, state: &str, timeout: Duration) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = next_event(ws, left).await;
        if event["type"] == "state" && event["state"] == state {
            return event;
        }
    }
}

/// What identifies a picture in a binary message, and its capture time.
type PictureKey = fn(&[u8]) -> (Vec<u8>, u64);

/// Reads `core` and `edge` (each on its own task, so neither waits for the other) until
/// `n` pictures — identified by `key`, which also gives the capture time — were seen on
/// both; returns their (core, edge) capture times. Fails after 30 s.
async fn same_pictures(core: Client, edge: Client, key: PictureKey, n: usize) -> Vec<(u64, u64)> {
    type Seen = std::sync::Arc<std::sync::Mutex<HashMap<Vec<u8>, u64>>>;
    let read = |mut ws: Client, seen: Seen| {
        tokio::spawn(async move {
            loop {
                let message = next_binary(&mut ws, SECS(10)).await;
                let (k, captured) = key(&message);
                seen.lock().unwrap().insert(k, captured);
            }
        })
    };
    let (at_core, at_edge): (Seen, Seen) = Default::default();
    let tasks = [
        read(core, std::sync::Arc::clone(&at_core)),
        read(edge, std::sync::Arc::clone(&at_edge)),
    ];
    let common = || {
        let (core, edge) = (at_core.lock().unwrap(), at_edge.lock().unwrap());
        core.iter()
            .filter_map(|(k, c)| edge.get(k).map(|e| (*c, *e)))
            .collect::<Vec<_>>()
    };
    eventually(
        SECS(30),
        "pictures seen at both the core and the edge",
        || common().len() >= n || tasks.iter().any(|t| t.is_finished()),
    )
    .await;
    let found = common();
    for task in tasks {
        if task.is_finished() {
            task.await.expect("a reader failed");
        }
        task.abort();
    }
    found
}

async fn stream_json(addr: SocketAddr, headers: &[(&str, &str)]) -> serde_json::Value {
    let (status, json) = http_json(addr, "GET", "/api/streams/cam", headers, None).await;
    assert_eq!(status, 200, "{json}");
    json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_edge_viewers_are_one_core_viewer_and_see_the_core_s_capture_times() {
    let core = start(&core_yaml(
        "{ plugin: testsrc, width: 160, height: 90, fps: 10 }",
    ))
    .await;
    let edge = start(&edge_yaml(core.local_addr(), "")).await;

    let mut viewers = Vec::new();
    for _ in 0..50 {
        let mut ws = connect(edge.local_addr(), "/ws/streams/cam").await;
        next_hello(&mut ws, SECS(10)).await;
        viewers.push(ws);
    }
    for ws in &mut viewers {
        let jpeg = next_binary(ws, SECS(20)).await;
        decode_frame(&jpeg);
        assert_eq!(tags(&jpeg), 1, "an edge JPEG carries exactly one tag");
    }
    let at_core = stream_json(core.local_addr(), &[]).await;
    assert_eq!(at_core["viewers"], 1, "one upstream connection: {at_core}");
    assert_eq!(stream_json(edge.local_addr(), &[]).await["viewers"], 50);

    // The same pictures seen at the core and at the edge carry the same capture time.
    let mut direct = connect(core.local_addr(), "/ws/streams/cam").await;
    next_hello(&mut direct, SECS(10)).await;
    let edge_viewer = viewers.swap_remove(0);
    let jpeg_key = |m: &[u8]| (picture(m), decode_frame(m).captured_at_us);
    for (at_core, at_edge) in same_pictures(direct, edge_viewer, jpeg_key, 5).await {
        assert_eq!(at_edge, at_core, "the core's capture time");
    }
    drop(viewers);
    edge.shutdown().await;
    core.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_gaps_at_the_core_reach_edge_viewers() {
    let (core, hub, factory) = manual_gateway(
        &core_yaml("{ plugin: testsrc, width: 160, height: 90 }"),
        "cam",
        fast_options(),
    )
    .await;
    let edge = start(&edge_yaml(core.local_addr(), "")).await;
    let mut viewer = connect(edge.local_addr(), "/ws/streams/cam").await;
    next_hello(&mut viewer, SECS(10)).await;
    manual_viewers(&hub, &factory, 1).await;
    let sink = factory.sink();
    // One frame at a time, each awaited at the edge: nobody skips on their own.
    let mut seqs = Vec::new();
    for skip in [0, 0, 4, 0, 2] {
        if skip > 0 {
            assert!(sink.skip(skip));
        }
        assert!(sink.publish(GREY, 8, 8, 0));
        seqs.push(decode_frame(&next_binary(&mut viewer, SECS(10)).await).seq);
    }
    let steps: Vec<u64> = seqs.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(steps, [1, 5, 1, 3], "edge sequence numbers: {seqs:?}");
    drop(viewer);
    edge.shutdown().await;
    core.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_restart_shows_as_retrying_then_live_and_edge_viewers_stay() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("core.yaml");
    std::fs::write(
        &manifest,
        core_yaml("{ plugin: testsrc, width: 160, height: 90, fps: 10 }"),
    )
    .unwrap();
    let mut core = GatewayProcess::start(&manifest, "127.0.0.1:0", &[]);
    let addr = core.addr;
    let edge = start(&edge_yaml(addr, "")).await;
    let mut viewer = connect(edge.local_addr(), "/ws/streams/cam").await;
    next_hello(&mut viewer, SECS(10)).await;
    next_binary(&mut viewer, SECS(20)).await;

    core.stop();
    let retrying = next_state(&mut viewer, "retrying", SECS(20)).await;
    assert!(
        ["stalled", "unreachable"].contains(&retrying["cause"].as_str().unwrap()),
        "{retrying}"
    );
    let core = GatewayProcess::start(&manifest, &addr.to_string(), &[]);
    assert_eq!(core.addr, addr);
    next_state(&mut viewer, "live", SECS(30)).await;
    // Frames again, on the same socket (a closed one fails `next_binary`).
    let jpeg = next_binary(&mut viewer, SECS(20)).await;
    assert_eq!(tags(&jpeg), 1);
    drop(viewer);
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_video_crosses_a_relay_and_the_camera_sees_one_session() {
    let camera = RtspServer::start(&["--width", "320", "--height", "240", "--fps", "10"]);
    let core = start(&core_yaml(&format!(
        "{{ plugin: rtsp, url: \"{}\" }}",
        camera.url("/test")
    )))
    .await;
    let edge = start(&edge_yaml(core.local_addr(), "")).await;

    let mut video = connect(edge.local_addr(), "/ws/streams/cam?format=auto").await;
    let hello = next_hello(&mut video, SECS(20)).await;
    let mut direct = connect(core.local_addr(), "/ws/streams/cam?format=auto").await;
    next_hello(&mut direct, SECS(20)).await;
    let config = loop {
        let event = next_event(&mut video, SECS(20)).await;
        if event["type"] == "config" {
            break event;
        }
    };
    assert!(
        config["codec"].as_str().unwrap().starts_with("avc1."),
        "{config} after {hello}"
    );
    // The same access units at the core and at the edge carry the same capture time.
    let video_key = |m: &[u8]| {
        assert_eq!(m[0], 0x01, "a video message");
        (
            m[18..].to_vec(),
            u64::from_be_bytes(m[10..18].try_into().unwrap()),
        )
    };
    for (at_core, at_edge) in same_pictures(direct, video, video_key, 10).await {
        assert_eq!(at_edge, at_core, "the core's capture time");
    }
    // A JPEG viewer at the edge gets pictures made at the edge from the relayed video.
    let mut mjpeg = connect(edge.local_addr(), "/ws/streams/cam").await;
    next_hello(&mut mjpeg, SECS(20)).await;
    let jpeg = next_binary(&mut mjpeg, SECS(30)).await;
    let frame = decode_frame(&jpeg);
    assert_eq!((frame.width, frame.height), (320, 240));
    assert_eq!(tags(&jpeg), 1);
    assert_eq!(camera.sessions("/test"), 1, "{}", camera.stats());
    drop(mjpeg);
    edge.shutdown().await;
    core.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_auth_failed_at_the_edge_and_the_token_shows_nowhere() {
    const GOOD: &str = "viewer-token-relay-0123456789";
    const WRONG: &str = "wrong-relay-token-s3cret-987654";
    let core = start(&format!(
        "auth:\n  tokens:\n    - role: viewer\n      token: {GOOD}\n{}",
        core_yaml("{ plugin: testsrc, width: 160, height: 90, fps: 10 }")
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("edge.yaml");
    let yaml = edge_yaml(core.local_addr(), ", token: \"${RELAY_TOKEN}\"");
    std::fs::write(&manifest, yaml).unwrap();
    let edge = GatewayProcess::start(&manifest, "127.0.0.1:0", &[("RELAY_TOKEN", WRONG)]);

    let mut viewer = connect(edge.addr, "/ws/streams/cam").await;
    let mut seen = Vec::new();
    let outage = loop {
        let message = next_message(&mut viewer, SECS(20)).await;
        if let Message::Text(text) = &message {
            seen.push(text.to_string());
            let event: serde_json::Value = serde_json::from_str(text).unwrap();
            if event["state"] == "retrying" {
                break event;
            }
        }
    };
    assert_eq!(outage["cause"], "auth_failed", "{outage}");
    let api = stream_json(edge.addr, &[]).await;
    assert_eq!(api["cause"], "auth_failed", "{api}");
    let (_, all) = http_get(edge.addr, "/api/streams", &[]).await;
    let (_, config) = http_get(edge.addr, "/api/config", &[]).await;
    let logs = edge.logs();
    assert!(logs.contains("401"), "the edge logged the refusal:\n{logs}");
    for (what, text) in [
        ("ws messages", seen.join("\n")),
        ("api", api.to_string()),
        ("api list", all),
        ("api config", config),
        ("logs", logs),
    ] {
        assert!(
            !text.contains(WRONG),
            "the token leaked in the edge's {what}: {text}"
        );
    }
    drop(viewer);
    drop(edge);
    core.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_camera_outage_shows_at_the_edge_with_its_cause() {
    // Nothing listens on the camera's port: the core's source retries, "connection refused".
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let core = start(&core_yaml(&format!(
        "{{ plugin: rtsp, url: \"rtsp://127.0.0.1:{closed_port}/x\" }}"
    )))
    .await;
    let edge = start(&edge_yaml(core.local_addr(), "")).await;
    let mut viewer = connect(edge.local_addr(), "/ws/streams/cam").await;
    let hello = next_hello(&mut viewer, SECS(10)).await;
    let outage = if hello["state"] == "retrying"
        && hello["message"].as_str().unwrap().starts_with("upstream: ")
    {
        hello
    } else {
        loop {
            let event = next_state(&mut viewer, "retrying", SECS(20)).await;
            if event["message"].as_str().unwrap().starts_with("upstream: ") {
                break event;
            }
        }
    };
    assert_eq!(outage["cause"], "unreachable", "{outage}");
    assert!(
        outage["message"]
            .as_str()
            .unwrap()
            .starts_with("upstream: connection refused"),
        "{outage}"
    );
    let at_core = stream_json(core.local_addr(), &[]).await;
    assert_eq!(at_core["cause"], outage["cause"], "{at_core}");
    drop(viewer);
    edge.shutdown().await;
    core.shutdown().await;
}
