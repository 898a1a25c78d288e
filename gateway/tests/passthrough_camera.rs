//! Passthrough end to end with real parts: the demo RTSP camera (GStreamer, H.264 with a
//! 1 s GOP, H.265) → the built-in `rtsp` plugin (retina, through ABI v2's `on_media`) →
//! the hub → WebSocket viewers on `format=h264|h265` and JPEG viewers served by one
//! transcoder — and exactly one RTSP session at the camera whatever the mix.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use support::rtsp::RtspServer;
use support::*;
use tokio_tungstenite::tungstenite::Message;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn manifest(url: &str) -> String {
    format!(
        r#"
defaults:
  idle_timeout: 2s
streams:
  - id: cam
    source: {{ plugin: rtsp, url: "{url}" }}
"#
    )
}

/// Reads until a `config` message; returns it.
async fn config(ws: &mut Client) -> serde_json::Value {
    loop {
        let event = next_event(ws, SECS(20)).await;
        if event["type"] == "config" {
            return event;
        }
    }
}

/// The next `n` video frames: (keyframe, seq, access unit length).
async fn video_frames(ws: &mut Client, n: usize) -> Vec<(bool, u64, usize)> {
    let mut frames = Vec::new();
    while frames.len() < n {
        match next_message(ws, SECS(10)).await {
            Message::Binary(b) => {
                assert_eq!(b[0], 0x01, "a video message");
                let seq = u64::from_be_bytes(b[2..10].try_into().unwrap());
                // The access unit is whole AVCC: lengths tile it exactly.
                let unit = &b[18..];
                let mut at = 0;
                while at < unit.len() {
                    let len = u32::from_be_bytes(unit[at..at + 4].try_into().unwrap()) as usize;
                    at += 4 + len;
                }
                assert_eq!(at, unit.len(), "AVCC lengths tile the access unit");
                frames.push((b[1] & 1 == 1, seq, unit.len()));
            }
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_from_the_camera_reaches_viewers_untouched_and_jpeg_viewers_share_one_transcoder() {
    let camera = RtspServer::start(&["--width", "320", "--height", "240", "--fps", "10"]);
    let gateway = start(&manifest(&camera.url("/test"))).await;
    let addr = gateway.local_addr();

    let mut video = connect(addr, "/ws/streams/cam?format=auto").await;
    let config = config(&mut video).await;
    assert!(
        config["codec"].as_str().unwrap().starts_with("avc1."),
        "{config}"
    );
    assert!(!config["description"].as_str().unwrap().is_empty());
    let frames = video_frames(&mut video, 25).await;
    assert!(frames[0].0, "the first frame a viewer gets is a keyframe");
    assert!(
        frames.windows(2).all(|w| w[1].1 == w[0].1 + 1),
        "every frame, in order: {frames:?}"
    );
    assert!(
        frames.iter().skip(1).any(|f| f.0),
        "a keyframe every second (GOP 1 s)"
    );
    let api = http_json(addr, "GET", "/api/streams/cam", &[], None)
        .await
        .1;
    assert_eq!(
        (
            api["codec"].as_str(),
            api["state"].as_str(),
            api["transcoders"].as_u64()
        ),
        (Some("h264"), Some("live"), Some(0)),
        "{api}"
    );

    // A joining viewer's first frames: the GOP at once, starting with its keyframe.
    let joined = tokio::time::Instant::now();
    let mut late = connect(addr, "/ws/streams/cam?format=h264").await;
    config_then_keyframe(&mut late).await;
    let first_picture = joined.elapsed();

    // A JPEG viewer (today's protocol) gets decodable JPEGs from one transcoder.
    let mut jpeg = connect(addr, "/ws/streams/cam").await;
    let a = next_frame(&mut jpeg, SECS(20)).await;
    let b = next_frame(&mut jpeg, SECS(10)).await;
    assert!(b.seq > a.seq);
    assert_eq!((a.width, a.height), (320, 240));
    let api = http_json(addr, "GET", "/api/streams/cam", &[], None)
        .await
        .1;
    assert_eq!(api["transcoders"], 1, "{api}");

    // Whatever the mix, the camera sees one session.
    assert_eq!(camera.sessions("/test"), 1);
    assert_eq!(camera.sessions_opened("/test"), 1);

    // The passthrough viewers kept every frame in order meanwhile (read what queued up).
    let more = video_frames(&mut video, 10).await;
    assert!(more.windows(2).all(|w| w[1].1 == w[0].1 + 1));
    drop(jpeg);
    let deadline = tokio::time::Instant::now() + SECS(15);
    loop {
        let api = http_json(addr, "GET", "/api/streams/cam", &[], None)
            .await
            .1;
        if api["transcoders"] == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the transcoder never stopped: {api}"
        );
        // Keep reading the passthrough viewers so they do not fall behind meanwhile.
        let _ = tokio::time::timeout(Duration::from_millis(200), video.next()).await;
        let _ = tokio::time::timeout(Duration::from_millis(10), late.next()).await;
    }
    assert_eq!(camera.sessions_opened("/test"), 1, "still the one session");
    println!("first frames of a joining H.264 viewer after {first_picture:?}");
    gateway.shutdown().await;
}

/// Reads `hello` and `config`, then expects the first binary message to be a keyframe.
async fn config_then_keyframe(ws: &mut Client) {
    config(ws).await;
    let frames = video_frames(ws, 1).await;
    assert!(frames[0].0, "a joining viewer starts at a keyframe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_passes_through_and_asking_for_h264_is_refused_with_4006() {
    let camera = RtspServer::start(&["--width", "320", "--height", "240", "--fps", "10"]);
    let gateway = start(&manifest(&camera.url("/h265"))).await;
    let addr = gateway.local_addr();
    let mut video = connect(addr, "/ws/streams/cam?format=h265").await;
    let config = config(&mut video).await;
    assert!(
        config["codec"].as_str().unwrap().starts_with("hvc1."),
        "{config}"
    );
    let frames = video_frames(&mut video, 5).await;
    assert!(frames[0].0);
    let mut wrong = connect(addr, "/ws/streams/cam?format=h264").await;
    assert_eq!(closed_with(&mut wrong, SECS(10)).await, Some(4006));
    gateway.shutdown().await;
}

/// The binary runs the hubs' fan-out on a runtime of its own without an I/O or timer
/// driver (`scheduling::fanout_runtime`), and the hub starts a JPEG viewer's transcoder
/// from its fan-out task: the transcoder (ffmpeg and its pipes) must still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jpeg_viewers_get_pictures_when_the_fanout_has_a_runtime_of_its_own() {
    let camera = RtspServer::start(&[]);
    let fanout = camgate::scheduling::fanout_runtime(1).expect("a fan-out runtime");
    let options = camgate::app::GatewayOptions {
        fanout: Some(fanout.handle().clone()),
        ..fast_options()
    };
    let gateway = start_with(
        &manifest(&camera.url("/loop264")),
        camgate::plugins::PluginCatalog::with_builtins(),
        options,
    )
    .await;
    let mut jpeg = connect(gateway.local_addr(), "/ws/streams/cam").await;
    let a = next_frame(&mut jpeg, SECS(30)).await;
    let b = next_frame(&mut jpeg, SECS(10)).await;
    assert!(b.seq > a.seq, "JPEGs keep coming");
    drop(jpeg);
    gateway.shutdown().await;
    fanout.shutdown_background();
}
