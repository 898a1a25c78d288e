//! The health monitor's keyframe decoder lives only while its passthrough stream is live:
//! an on-demand stream that stops, or a gateway that shuts down, leaves no ffmpeg behind
//! (killed and reaped, not a zombie). Its own test binary, so that no other test's
//! decoders are counted among this process's children.

mod support;

use std::time::Duration;

use support::rtsp::{RtspServer, ffmpeg_children, proc_info, wait_until};
use support::*;

const SECS: fn(u64) -> Duration = Duration::from_secs;
/// What only the health decoder's command line has.
const THUMBNAIL: &str = "scale=96:54";

fn decoders() -> Vec<u32> {
    ffmpeg_children(std::process::id(), THUMBNAIL)
        .into_iter()
        .map(|p| p.pid)
        .collect()
}

fn gone(pids: &[u32]) -> bool {
    pids.iter()
        .all(|pid| proc_info(*pid).is_none_or(|p| !p.is_alive() && p.ppid != std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyframe_decoder_runs_only_while_the_stream_is_live() {
    let camera = RtspServer::start(&["--width", "320", "--height", "180", "--fps", "10"]);
    let yaml = format!(
        "streams:\n  - id: cam\n    idle_timeout: 1s\n    source: {{ plugin: rtsp, url: \"{}\" }}\n",
        camera.url("/test")
    );
    let gateway = start(&yaml).await;
    let addr = gateway.local_addr();
    assert!(decoders().is_empty(), "nothing runs before a viewer");

    let viewer = connect(addr, "/ws/streams/cam?format=h264").await;
    let mut first = Vec::new();
    assert!(
        wait_until(SECS(20), || {
            first = decoders();
            first.len() == 1
        }),
        "one decoder while live: {first:?}"
    );
    let (_, body) = http_json(addr, "GET", "/api/streams/cam", &[], None).await;
    assert_eq!(body["state"], "live", "{body}");

    drop(viewer);
    assert!(
        wait_until(SECS(20), || gone(&first)),
        "the decoder is reaped once the idle stream stops"
    );
    let (_, body) = http_json(addr, "GET", "/api/streams/cam", &[], None).await;
    assert_eq!(body["state"], "stopped", "{body}");
    assert_eq!(body["health"], "unknown", "{body}");

    // Live again, then the gateway shuts down under it.
    let _viewer = connect(addr, "/ws/streams/cam?format=h264").await;
    let mut second = Vec::new();
    assert!(
        wait_until(SECS(20), || {
            second = decoders();
            second.len() == 1
        }),
        "a new decoder for the new session: {second:?}"
    );
    gateway.shutdown().await;
    assert!(
        wait_until(SECS(20), || gone(&second)),
        "shutdown reaps the decoder"
    );
}
