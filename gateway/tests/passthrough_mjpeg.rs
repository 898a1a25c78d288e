//! JPEGs of a passthrough stream, made only while someone needs them (issue 14, item 4):
//! a real H.264 stream (libx264 through ffmpeg, cut into access units as a passthrough
//! source delivers them) is published into a real gateway; MJPEG consumers make the hub
//! start exactly one real ffmpeg transcoder, fed from the hub, which the reaper stops after
//! the idle timeout; snapshots decode the GOP without one.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use camgate::app::GatewayOptions;
use camgate::hub::{Codec, VideoIn};
use support::video::{Clip, encode};
use support::*;

const SECS: fn(u64) -> Duration = Duration::from_secs;

const MANIFEST: &str = r#"
defaults:
  idle_timeout: 2s
streams:
  - id: cam
    source: { plugin: testsrc, width: 160, height: 90 }
"#;

/// Publishes `clip` in a loop at 25 fps through the manual source until `stop` is set.
fn play(
    factory: Arc<ManualFactory>,
    clip: Clip,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut first = true;
        while !stop.load(Ordering::SeqCst) {
            for (keyframe, data) in &clip.units {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                factory.sink().publish_video(VideoIn {
                    codec: Codec::H264,
                    keyframe: *keyframe,
                    data,
                    config: first.then(|| Arc::clone(&clip.config)),
                    width: clip.config.width,
                    height: clip.config.height,
                    captured_at_us: 0,
                });
                first = false;
                #[expect(
                    clippy::disallowed_methods,
                    reason = "a camera's own clock, on its own thread"
                )]
                std::thread::sleep(Duration::from_millis(40));
            }
        }
    })
}

/// ffmpeg processes that are children of this test process (running or unreaped), but
/// the health monitor's keyframe decoders (their 96x54 thumbnails), which live as long as
/// a passthrough stream does.
fn ffmpeg_children() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "ffmpeg")
                && !std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmd| cmd.windows(11).any(|w| w == b"scale=96:54"))
        })
        .count()
}

async fn stream_field(addr: std::net::SocketAddr, field: &str) -> serde_json::Value {
    http_json(addr, "GET", "/api/streams/cam", &[], None)
        .await
        .1[field]
        .clone()
}

/// The tests count this process's ffmpeg children: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A runtime like the gateway's I/O runtime.
fn io_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn mjpeg_consumers_share_one_transcoder_that_stops_when_they_leave_and_snapshots_need_none() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    io_runtime().block_on(share_one_transcoder(None));
}

/// As `camgate run` does it: the fan-out on a runtime of its own (no I/O driver, no
/// timers), where the transcoder must not run.
#[test]
fn with_the_fanout_on_its_own_runtime_the_transcoder_still_runs() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let fanout = camgate::scheduling::fanout_runtime(1).unwrap();
    io_runtime().block_on(share_one_transcoder(Some(fanout.handle().clone())));
    fanout.shutdown_background();
}

async fn share_one_transcoder(fanout: Option<tokio::runtime::Handle>) {
    let clip = encode(Codec::H264, 320, 240, 50, 25);
    let options = GatewayOptions {
        reaper_interval: Duration::from_millis(100),
        fanout,
        ..GatewayOptions::default()
    };
    let (gateway, hub, factory) = manual_gateway(MANIFEST, "cam", options).await;
    let addr = gateway.local_addr();
    let before = ffmpeg_children();

    // A passthrough viewer starts the source: no transcoder for it.
    let mut video = connect(addr, "/ws/streams/cam?format=auto").await;
    manual_viewers(&hub, &factory, 1).await;
    let stop = Arc::new(AtomicBool::new(false));
    let player = play(Arc::clone(&factory), clip, Arc::clone(&stop));
    loop {
        let event = next_event(&mut video, SECS(10)).await;
        if event["type"] == "config" {
            break;
        }
    }
    // Read it all along, counting its frames (it must never be held up).
    let video_frames = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = {
        let count = Arc::clone(&video_frames);
        tokio::spawn(async move {
            while let Some(Ok(message)) = futures_util::StreamExt::next(&mut video).await {
                match message {
                    tokio_tungstenite::tungstenite::Message::Binary(b) if b.first() == Some(&1) => {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio_tungstenite::tungstenite::Message::Close(_) => break,
                    _ => {}
                }
            }
        })
    };
    assert_eq!(stream_field(addr, "codec").await, "h264");
    assert_eq!(stream_field(addr, "transcoders").await, 0);

    // A snapshot decodes the current GOP with a one-shot ffmpeg: no transcoder stays.
    let (status, headers, body) =
        http(addr, "GET", "/api/streams/cam/snapshot.jpg", &[], None).await;
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "image/jpeg")
    );
    assert_eq!(
        jpeg_size(&body),
        Some((320, 240)),
        "a whole picture of the stream's size"
    );
    assert_eq!(stream_field(addr, "transcoders").await, 0);

    // Two JPEG viewers (WebSocket without a format: today's protocol): one transcoder.
    let mut first = connect(addr, "/ws/streams/cam").await;
    let mut second = connect(addr, "/ws/streams/cam?format=mjpeg").await;
    for ws in [&mut first, &mut second] {
        let hello = next_event(ws, SECS(5)).await;
        assert_eq!(
            (hello["codec"].as_str(), hello["format"].as_str()),
            (Some("h264"), Some("mjpeg"))
        );
        let a = next_frame(ws, SECS(10)).await;
        let b = next_frame(ws, SECS(10)).await;
        assert!(b.seq > a.seq, "JPEGs keep coming");
        assert_eq!((a.width, a.height), (320, 240));
    }
    assert_eq!(stream_field(addr, "transcoders").await, 1);
    assert_eq!(
        ffmpeg_children(),
        before + 1,
        "exactly one transcoder process"
    );

    // They leave: the reaper stops the transcoder after the idle timeout (2 s), not before.
    drop(first);
    drop(second);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stream_field(addr, "transcoders").await,
        1,
        "stopped before its grace period"
    );
    eventually(SECS(10), "the idle transcoder stops", || {
        hub.transcoders() == 0
    })
    .await;
    eventually(SECS(10), "its ffmpeg is reaped", || {
        ffmpeg_children() == before
    })
    .await;
    // The passthrough viewer never noticed: still open, still getting frames.
    let seen = video_frames.load(Ordering::SeqCst);
    eventually(SECS(10), "the video viewer gets more frames", || {
        video_frames.load(Ordering::SeqCst) > seen + 10
    })
    .await;
    assert!(!reader.is_finished(), "the video viewer is still connected");

    stop.store(true, Ordering::SeqCst);
    player.join().unwrap();
    gateway.shutdown().await;
    reader.abort();
    eventually(SECS(10), "no ffmpeg left", || ffmpeg_children() == before).await;
}

/// The size in a JPEG's SOF segment, if it is a whole JPEG.
fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) || !jpeg.ends_with(&[0xFF, 0xD9]) {
        return None;
    }
    let sof = jpeg
        .windows(2)
        .position(|w| w[0] == 0xFF && (0xC0..=0xC2).contains(&w[1]))?;
    let at = |i: usize| u32::from(*jpeg.get(sof + i).unwrap_or(&0));
    Some(((at(7) << 8) | at(8), (at(5) << 8) | at(6)))
}
