//! Picture health against real sources: the demo RTSP camera's misbehaving mounts
//! (`/frozen`, `/dark`, `/still`) through both camera plugins (`rtsp`: H.264 passthrough,
//! judged on keyframes decoded by the health ffmpeg; `ffmpeg-mjpeg`: JPEGs judged in
//! process), read back through the API and `/metrics` as an operator would.
//!
//! Timing: the camera's phases are exact in stream time; the checks poll with generous
//! deadlines and assert the order of verdicts, never how fast two busy cores reach them.

mod support;

use std::time::Duration;

use support::rtsp::RtspServer;
use support::*;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A small, slow camera: cheap enough to run beside the other tests.
fn camera() -> RtspServer {
    RtspServer::start(&["--width", "320", "--height", "180", "--fps", "10"])
}

fn manifest(streams: &[(&str, &str, &str, &str)]) -> String {
    let mut yaml = String::from("streams:\n");
    for (id, plugin, url, health) in streams {
        yaml.push_str(&format!(
            "  - id: {id}\n    on_demand: false\n    health_rules: {{ {health} }}\n    source: {{ plugin: {plugin}, url: \"{url}\" }}\n"
        ));
    }
    yaml
}

/// The stream's `health` as the API reports it.
async fn health(addr: std::net::SocketAddr, id: &str) -> String {
    let (status, body) = http_json(addr, "GET", &format!("/api/streams/{id}"), &[], None).await;
    assert_eq!(status, 200, "{body}");
    body["health"]
        .as_str()
        .expect("health is a string")
        .to_owned()
}

/// Polls the API until the stream's health is `want`; returns every verdict seen on the way.
async fn wait_for(
    addr: std::net::SocketAddr,
    id: &str,
    want: &str,
    within: Duration,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let now = health(addr, id).await;
        if seen.last() != Some(&now) {
            seen.push(now.clone());
        }
        if now == want {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id}: no `{want}` within {within:?}; saw {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `camgate_stream_health{stream=id,health=...}` values from a live scrape.
async fn health_gauges(addr: std::net::SocketAddr, id: &str) -> Vec<(String, String)> {
    let (status, text) = http_get(addr, "/metrics", &[]).await;
    assert_eq!(status, 200);
    let prefix = "camgate_stream_health{health=\"";
    text.lines()
        .filter(|line| line.starts_with(prefix) && line.contains(&format!("stream=\"{id}\"")))
        .map(|line| {
            let health = line[prefix.len()..].split('"').next().unwrap().to_owned();
            let value = line.rsplit(' ').next().unwrap().to_owned();
            (health, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_picture_is_reported_and_clears_when_it_moves_again_on_both_paths() {
    let camera = camera();
    let url = camera.url("/frozen?live=4&frozen=9");
    let gateway = start(&manifest(&[
        ("h264", "rtsp", &url, "frozen_after: 3s"),
        ("mjpeg", "ffmpeg-mjpeg", &url, "frozen_after: 3s"),
    ]))
    .await;
    let addr = gateway.local_addr();
    let (h264, mjpeg) = tokio::join!(
        wait_for(addr, "h264", "frozen", SECS(30)),
        wait_for(addr, "mjpeg", "frozen", SECS(30)),
    );
    for (id, seen) in [("h264", h264), ("mjpeg", mjpeg)] {
        assert!(
            seen.contains(&"ok".to_owned()),
            "{id}: ok before frozen: {seen:?}"
        );
        let (_, body) = http_json(addr, "GET", &format!("/api/streams/{id}"), &[], None).await;
        let since = body["health_since"].as_str().unwrap();
        humantime::parse_rfc3339(since).unwrap_or_else(|e| panic!("{since}: {e}"));
        let gauges = health_gauges(addr, id).await;
        assert_eq!(gauges.len(), 5, "{gauges:?}");
        for (health, value) in &gauges {
            let want = if health == "frozen" { "1" } else { "0" };
            assert_eq!(value, want, "{id} {health}: {gauges:?}");
        }
    }
    for id in ["h264", "mjpeg"] {
        wait_for(addr, id, "ok", SECS(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_picture_is_dark_and_clears_when_the_light_returns_on_both_paths() {
    let camera = camera();
    let url = camera.url("/dark?live=4&dark=9");
    let gateway = start(&manifest(&[
        ("h264", "rtsp", &url, "dark_after: 3s"),
        ("mjpeg", "ffmpeg-mjpeg", &url, "dark_after: 3s"),
    ]))
    .await;
    let addr = gateway.local_addr();
    let (h264, mjpeg) = tokio::join!(
        wait_for(addr, "h264", "dark", SECS(30)),
        wait_for(addr, "mjpeg", "dark", SECS(30)),
    );
    for (id, seen) in [("h264", h264), ("mjpeg", mjpeg)] {
        assert!(
            !seen.contains(&"frozen".to_owned()),
            "{id}: dark wins over frozen: {seen:?}"
        );
    }
    for id in ["h264", "mjpeg"] {
        wait_for(addr, id, "ok", SECS(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_still_scene_with_sensor_noise_is_never_frozen() {
    let camera = camera();
    let url = camera.url("/still");
    let gateway = start(&manifest(&[
        ("h264", "rtsp", &url, "frozen_after: 2s"),
        ("mjpeg", "ffmpeg-mjpeg", &url, "frozen_after: 2s"),
    ]))
    .await;
    let addr = gateway.local_addr();
    for id in ["h264", "mjpeg"] {
        wait_for(addr, id, "ok", SECS(20)).await;
    }
    // Several times `frozen_after`, sampled once a second.
    for _ in 0..10 {
        tokio::time::sleep(SECS(1)).await;
        for id in ["h264", "mjpeg"] {
            assert_eq!(health(addr, id).await, "ok", "{id}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_stop_are_late_and_a_source_that_is_down_is_unknown() {
    let mut camera = camera();
    let url = camera.url("/test");
    let gateway = start(&manifest(&[("cam", "rtsp", &url, "late_after: 2s")])).await;
    let addr = gateway.local_addr();
    wait_for(addr, "cam", "ok", SECS(20)).await;
    // Connections stay open, nothing arrives: the newest frame ages.
    camera.pause();
    wait_for(addr, "cam", "late", SECS(20)).await;
    let (_, text) = http_get(addr, "/metrics", &[]).await;
    let age: f64 = text
        .lines()
        .find(|l| l.starts_with("camgate_stream_frame_age_seconds{stream=\"cam\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("a frame age while the source is live");
    assert!(age > 2.0, "{age}");
    // Gone for good: the source gives up on it, and there is nothing left to judge.
    camera.stop();
    wait_for(addr, "cam", "unknown", SECS(60)).await;
}
