//! Stream variants end to end with real parts: `sub` derived in the gateway from a JPEG main
//! (testsrc) and from the demo RTSP camera's H.264 through the `rtsp` passthrough plugin
//! (one camera session for main and sub together), a camera's own sub-stream (`sub.url`, a
//! second session), the sub's on-demand life with its main, its state following the main's,
//! `?variant=` on the WebSocket, MJPEG and snapshot routes, the API's `variants`/`sub`, and
//! a reload that changes only the sub.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use camgate::hub::read_tag;
use support::rtsp::{RtspServer, ffmpeg_children, proc_info};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// ffmpeg children of this test process that scale to `width` (a sub's transcoder; the
/// health monitor's decoders scale to 96:54 and are not counted). Tests run in parallel in
/// this process: each gives its sub a width no other test uses.
fn sub_ffmpegs(width: u32) -> usize {
    ffmpeg_children(std::process::id(), &format!("scale={width}:")).len()
}

/// Reads `ws` until a `state` event with `state`; returns it.
async fn state_event(ws: &mut Client, state: &str) -> serde_json::Value {
    loop {
        let event = next_event(ws, SECS(20)).await;
        if event["type"] == "state" && event["state"] == state {
            return event;
        }
    }
}

/// The first complete part of `/api/streams/{id}/mjpeg?{query}`.
async fn first_mjpeg_part(addr: std::net::SocketAddr, id: &str, query: &str) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET /api/streams/{id}/mjpeg?{query} HTTP/1.0\r\nHost: {addr}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let n = tokio::time::timeout(SECS(10), stream.read(&mut chunk))
            .await
            .expect("an MJPEG part in time")
            .unwrap();
        assert!(n > 0, "MJPEG stream ended early");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(part) = mjpeg_parts(&buf).into_iter().next() {
            return part;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derived_sub_of_a_jpeg_stream_has_the_configured_width_and_the_main_capture_times() {
    let gateway = start(
        r#"
streams:
  - id: cam
    source: { plugin: testsrc, width: 1280, height: 720, fps: 10 }
    sub: { width: 256 }
  - id: plain
    source: { plugin: testsrc, width: 160, height: 90, fps: 10 }
"#,
    )
    .await;
    let addr = gateway.local_addr();

    let (status, api) = http_json(addr, "GET", "/api/streams/cam", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(api["variants"], serde_json::json!(["main", "sub"]), "{api}");
    assert_eq!(api["sub"], serde_json::json!({"width": 256, "quality": 5}));
    let (_, plain) = http_json(addr, "GET", "/api/streams/plain", &[], None).await;
    assert_eq!(plain["variants"], serde_json::json!(["main"]));
    assert!(plain.get("sub").is_none(), "{plain}");

    let mut main = connect(addr, "/ws/streams/cam").await;
    let mut sub = connect(addr, "/ws/streams/cam?variant=sub").await;
    let hello = next_hello(&mut sub, SECS(5)).await;
    assert_eq!(
        (hello["stream"].as_str(), hello["variant"].as_str()),
        (Some("cam"), Some("sub"))
    );
    assert_eq!(next_hello(&mut main, SECS(5)).await["variant"], "main");

    // The main's capture times, to find the sub's among them.
    let mut captured = Vec::new();
    for _ in 0..20 {
        let frame = next_frame(&mut main, SECS(5)).await;
        assert_eq!((frame.width, frame.height), (1280, 720));
        captured.push(frame.captured_at_us);
    }
    let mut matched = 0;
    for _ in 0..5 {
        let message = loop {
            if let tokio_tungstenite::tungstenite::Message::Binary(bytes) =
                next_message(&mut sub, SECS(10)).await
            {
                break bytes;
            }
        };
        let frame = decode_frame(&message);
        assert_eq!((frame.width, frame.height), (256, 144), "aspect ratio kept");
        let tag = read_tag(&message).unwrap();
        assert!(tag.captured_at_us < tag.published_at_us);
        if captured.contains(&frame.captured_at_us) {
            matched += 1;
        }
    }
    assert!(
        matched > 0,
        "sub pictures carry the capture time of the main frame they show"
    );
    // One decode for the sub: one ffmpeg, reduced-IDCT at a quarter (1280 → 320 ≥ 256).
    let children = ffmpeg_children(std::process::id(), "scale=256:-2");
    assert_eq!(children.len(), 1, "{children:?}");
    assert!(
        children[0].cmdline.contains("-lowres 2"),
        "{:?}",
        children[0]
    );

    // Snapshot and MJPEG of the sub.
    let (status, _, jpeg) = http(
        addr,
        "GET",
        "/api/streams/cam/snapshot.jpg?variant=sub",
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(decode_frame(&jpeg).width, 256);
    let part = first_mjpeg_part(addr, "cam", "variant=sub").await;
    assert_eq!(decode_frame(&part).width, 256);
    let part = first_mjpeg_part(addr, "cam", "variant=main").await;
    assert_eq!(decode_frame(&part).width, 1280);

    // Refusals.
    for (path, status, code) in [
        (
            "/api/streams/plain/snapshot.jpg?variant=sub",
            404,
            "no_such_variant",
        ),
        (
            "/api/streams/plain/mjpeg?variant=sub",
            404,
            "no_such_variant",
        ),
        ("/ws/streams/plain?variant=sub", 404, "no_such_variant"),
        ("/api/streams/cam/snapshot.jpg?variant=hd", 400, "bad_query"),
        ("/ws/streams/cam?variant=", 400, "bad_query"),
        (
            "/api/streams/ghost/mjpeg?variant=sub",
            404,
            "stream_not_found",
        ),
    ] {
        let (got, body) = http_json(addr, "GET", path, &upgrade_headers(KEY, &[]), None).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
        if code == "no_such_variant" {
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("`plain`"),
                "{body}"
            );
        }
    }
    // `format` means what it means on the main: `auto` is the variant's own coding, JPEG
    // for a derived sub.
    let mut auto = connect(addr, "/ws/streams/cam?variant=sub&format=auto").await;
    let hello = next_hello(&mut auto, SECS(5)).await;
    assert_eq!(
        (hello["variant"].as_str(), hello["format"].as_str()),
        (Some("sub"), Some("mjpeg")),
        "{hello}"
    );
    drop(auto);

    // Metrics carry the sub as `<id>/sub`.
    let scrape = Scrape::of(addr, &[]).await;
    assert!(
        scrape.value(r#"camgate_frames_received_total{stream="cam/sub"}"#) > 0.0,
        "the sub's frames are counted under cam/sub"
    );
    drop((main, sub));
    gateway.shutdown().await;
    assert!(
        support::rtsp::wait_until(SECS(5), || sub_ffmpegs(256) == 0),
        "ffmpeg is reaped at shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derived_sub_with_fps_keeps_at_most_that_many_pictures_a_second() {
    let gateway = start(
        r#"
streams:
  - id: cam
    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }
    sub: { width: 208, fps: 4 }
"#,
    )
    .await;
    let addr = gateway.local_addr();
    let (_, api) = http_json(addr, "GET", "/api/streams/cam", &[], None).await;
    assert_eq!(
        api["sub"],
        serde_json::json!({"width": 208, "quality": 5, "fps": 4})
    );

    let mut sub = connect(addr, "/ws/streams/cam?variant=sub").await;
    let mut captured = Vec::new();
    while captured.len() < 12 {
        let frame = next_frame(&mut sub, SECS(10)).await;
        assert_eq!(frame.width, 208);
        captured.push(frame.captured_at_us);
    }
    // By capture time (the cap never looks at this machine's clock): each kept picture
    // starts a slot of 250 ms, so twelve span at least eleven slots (uncapped, a 10 fps
    // main gives eleven intervals of 100 ms). One main frame (100 ms) of slack: the capture
    // time a picture carries out of ffmpeg is the transcoder's bookkeeping, not this
    // module's (`transcode::pace` is checked exactly by its unit tests).
    let span = captured[11] - captured[0];
    assert!(span >= 11 * 250_000 - 100_000, "{captured:?}");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_viewer_starts_its_main_and_both_stop_after_it_leaves() {
    let gateway = start(
        r#"
streams:
  - id: cam
    idle_timeout: 1s
    source: { plugin: testsrc, width: 640, height: 360, fps: 10 }
    sub: { width: 160, height: 90 }
"#,
    )
    .await;
    let addr = gateway.local_addr();
    let state = gateway.state();
    let main = state.registry.get("cam").unwrap();
    let sub_hub = state
        .registry
        .get_variant("cam", camgate::hub::Variant::Sub)
        .unwrap();
    assert_eq!(main.status().state, camgate::hub::StreamState::Stopped);

    let asked = tokio::time::Instant::now();
    let mut sub = connect(addr, "/ws/streams/cam?variant=sub").await;
    let frame = next_frame(&mut sub, SECS(10)).await;
    assert_eq!((frame.width, frame.height), (160, 90));
    println!(
        "first sub picture of a cold on-demand stream after {:?}",
        asked.elapsed()
    );
    let (_, api) = http_json(addr, "GET", "/api/streams/cam", &[], None).await;
    assert_eq!(api["state"], "live", "the sub started its main: {api}");
    assert_eq!(
        api["viewers"], 1,
        "the derived sub is the main's one viewer: {api}"
    );
    let pids: Vec<u32> = ffmpeg_children(std::process::id(), "scale=160:90")
        .iter()
        .map(|p| p.pid)
        .collect();
    assert_eq!(pids.len(), 1);

    drop(sub);
    eventually(SECS(10), "the sub and then the main stop", || {
        sub_hub.status().state == camgate::hub::StreamState::Stopped
            && main.status().state == camgate::hub::StreamState::Stopped
    })
    .await;
    assert_eq!(sub_ffmpegs(160), 0, "no ffmpeg left");
    assert!(
        pids.iter()
            .all(|pid| proc_info(*pid).is_none_or(|p| p.ppid != std::process::id())),
        "the sub's ffmpeg was reaped, not left a zombie"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_says_what_its_retrying_main_says() {
    // Nothing listens on port 1: the camera plugin retries.
    let gateway = start(
        r#"
streams:
  - id: cam
    source: { plugin: rtsp, url: "rtsp://127.0.0.1:1/main", connect_timeout: 1s }
    sub: { width: 320 }
"#,
    )
    .await;
    let addr = gateway.local_addr();
    let mut sub = connect(addr, "/ws/streams/cam?variant=sub").await;
    let hello = next_hello(&mut sub, SECS(5)).await;
    assert_eq!(hello["variant"], "sub");
    let retrying = if hello["state"] == "retrying" {
        hello
    } else {
        state_event(&mut sub, "retrying").await
    };
    let (_, api) = http_json(addr, "GET", "/api/streams/cam", &[], None).await;
    assert_eq!(api["state"], "retrying", "{api}");
    assert_eq!(
        retrying["message"], api["message"],
        "the main's message: {api}"
    );
    assert!(!retrying["message"].as_str().unwrap().is_empty());
    drop(sub);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derived_sub_of_a_passthrough_camera_is_its_only_decode_on_one_session() {
    let camera = RtspServer::start(&["--width", "320", "--height", "240", "--fps", "10"]);
    let gateway = start(&format!(
        r#"
defaults:
  idle_timeout: 2s
streams:
  - id: cam
    source: {{ plugin: rtsp, url: "{}" }}
    sub: {{ width: 176 }}
"#,
        camera.url("/test")
    ))
    .await;
    let addr = gateway.local_addr();

    let mut video = connect(addr, "/ws/streams/cam?format=h264").await;
    let mut sub = connect(addr, "/ws/streams/cam?variant=sub").await;
    for _ in 0..3 {
        let frame = next_frame(&mut sub, SECS(20)).await;
        assert_eq!((frame.width, frame.height), (176, 132));
    }
    // The H.264 viewer is served meanwhile (read what queued up).
    let mut binary = 0;
    while binary < 3 {
        if let tokio_tungstenite::tungstenite::Message::Binary(_) =
            next_message(&mut video, SECS(10)).await
        {
            binary += 1;
        }
    }
    assert_eq!(
        camera.sessions("/test"),
        1,
        "main and sub on one camera session"
    );
    assert_eq!(camera.sessions_opened("/test"), 1);
    let (_, api) = http_json(addr, "GET", "/api/streams/cam", &[], None).await;
    assert_eq!(api["transcoders"], 0, "the main derives nothing: {api}");
    // The only decode of the camera (health thumbnails aside): the sub's one ffmpeg, on
    // the H.264 itself (tests run in parallel in this process: found by its size).
    let decoders = ffmpeg_children(std::process::id(), "scale=176:-2");
    assert_eq!(decoders.len(), 1, "{decoders:?}");
    assert!(decoders[0].cmdline.contains("-f h264"), "{decoders:?}");
    let decoder = decoders[0].pid;

    // An MJPEG client of the main starts the main's own JPEG deriver, whose pictures enter
    // the main's JPEG track: the sub must go on following the H.264 (not switch to those
    // JPEGs and back on every frame, restarting its ffmpeg each time).
    let part = first_mjpeg_part(addr, "cam", "").await;
    assert!(part.starts_with(&[0xFF, 0xD8]));
    let (_, api) = http_json(addr, "GET", "/api/streams/cam", &[], None).await;
    assert_eq!(api["transcoders"], 1, "the main's deriver runs: {api}");
    for _ in 0..20 {
        let frame = next_frame(&mut sub, SECS(10)).await;
        assert_eq!((frame.width, frame.height), (176, 132));
    }
    let decoders = ffmpeg_children(std::process::id(), "scale=176:-2");
    assert_eq!(
        decoders.iter().map(|d| d.pid).collect::<Vec<_>>(),
        [decoder],
        "the sub's ffmpeg is the same one: {decoders:?}"
    );
    drop((video, sub));
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_sub_is_a_second_camera_session() {
    let camera = RtspServer::start(&["--width", "320", "--height", "240", "--fps", "10"]);
    let gateway = start(&format!(
        r#"
streams:
  - id: cam
    source: {{ plugin: rtsp, url: "{}" }}
    sub: {{ url: "{}" }}
"#,
        camera.url("/test"),
        camera.url("/test?channel=102"),
    ))
    .await;
    let addr = gateway.local_addr();
    let (_, api) = http_json(addr, "GET", "/api/streams/cam", &[], None).await;
    assert_eq!(api["variants"], serde_json::json!(["main", "sub"]));
    assert_eq!(api["sub"]["url"], camera.url("/test?channel=102"));

    let mut sub = connect(addr, "/ws/streams/cam?variant=sub").await;
    let frame = next_frame(&mut sub, SECS(20)).await;
    assert_eq!((frame.width, frame.height), (320, 240));
    let mut main = connect(addr, "/ws/streams/cam?format=h264").await;
    assert_eq!(next_hello(&mut main, SECS(5)).await["variant"], "main");
    eventually(SECS(20), "two sessions", || camera.sessions("/test") == 2).await;
    let by_url = camera.stats()["sessions_by_url"].clone();
    assert_eq!(by_url["/test"], 1, "{by_url}");
    assert_eq!(by_url["/test?channel=102"], 1, "{by_url}");
    drop((sub, main));
    gateway.shutdown().await;
}

fn manifest_dir(content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("camgate.yaml");
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

fn api_file(manifest: &Path) -> String {
    std::fs::read_to_string(manifest.with_file_name("camgate.api.yaml")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_masks_and_keeps_a_sub_url_like_the_source_url() {
    let (_dir, path) = manifest_dir("streams: []\n");
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let create = r#"{"id": "gate", "source": {"plugin": "rtsp", "url": "rtsp://viewer:s3cret-pw@127.0.0.1:1/101"}, "sub": {"url": "rtsp://viewer:s3cret-pw@127.0.0.1:1/102"}}"#;
    let (status, created) = http_json(addr, "POST", "/api/streams", &[], Some(create)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["variants"], serde_json::json!(["main", "sub"]));
    let shown_sub = created["sub"]["url"].as_str().unwrap().to_owned();
    assert_eq!(shown_sub, "rtsp://viewer:***@127.0.0.1:1/102");
    assert!(!created.to_string().contains("s3cret-pw"), "{created}");

    // Sent back as shown: the stored password stays.
    let put = format!(
        r#"{{"source": {}, "sub": {{"url": "{shown_sub}"}}}}"#,
        created["source"]
    );
    let (status, updated) = http_json(addr, "PUT", "/api/streams/gate", &[], Some(&put)).await;
    assert_eq!(status, 200, "{updated}");
    assert!(api_file(&path).contains("rtsp://viewer:s3cret-pw@127.0.0.1:1/102"));
    // Omitted: the stored sub stays.
    let put = format!(r#"{{"source": {}}}"#, created["source"]);
    let (status, kept) = http_json(addr, "PUT", "/api/streams/gate", &[], Some(&put)).await;
    assert_eq!((status, &kept["sub"]["url"]), (200, &created["sub"]["url"]));
    // A masked password with another host is refused, naming the field.
    let put = format!(
        r#"{{"source": {}, "sub": {{"url": "rtsp://viewer:***@127.0.0.2:1/102"}}}}"#,
        created["source"]
    );
    let (status, refused) = http_json(addr, "PUT", "/api/streams/gate", &[], Some(&put)).await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (422, Some("sub.url")),
        "{refused}"
    );
    // A derived sub replaces the URL (which is not kept next to `width`).
    let put = format!(
        r#"{{"source": {}, "sub": {{"width": 640}}}}"#,
        created["source"]
    );
    let (status, derived) = http_json(addr, "PUT", "/api/streams/gate", &[], Some(&put)).await;
    assert_eq!(status, 200, "{derived}");
    assert_eq!(
        derived["sub"],
        serde_json::json!({"width": 640, "quality": 5})
    );
    // `null` removes it.
    let put = format!(r#"{{"source": {}, "sub": null}}"#, created["source"]);
    let (status, none) = http_json(addr, "PUT", "/api/streams/gate", &[], Some(&put)).await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(none["variants"], serde_json::json!(["main"]));
    assert!(none.get("sub").is_none());
    assert!(
        gateway
            .state()
            .registry
            .get_variant("gate", camgate::hub::Variant::Sub)
            .is_none()
    );
    // A URL sub needs a source with a URL.
    let (status, refused) = http_json(
        addr,
        "POST",
        "/api/streams",
        &[],
        Some(r#"{"id": "pattern", "source": {"plugin": "testsrc"}, "sub": {"url": "rtsp://127.0.0.1:1/102"}}"#),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (422, Some("sub.url")),
        "{refused}"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_only_the_sub_leaves_the_main_alone() {
    let manifest = |sub_width: u32| {
        format!(
            "streams:\n  - id: cam\n    on_demand: false\n    source: {{ plugin: testsrc, width: 640, height: 360, fps: 10 }}\n    sub: {{ width: {sub_width} }}\n"
        )
    };
    let (_dir, path) = manifest_dir(&manifest(336));
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let mut main = connect(addr, "/ws/streams/cam").await;
    let mut sub = connect(addr, "/ws/streams/cam?variant=sub").await;
    assert_eq!(next_frame(&mut sub, SECS(10)).await.width, 336);
    let before = next_frame(&mut main, SECS(5)).await;
    let starts = r#"camgate_source_starts_total{reason="reconfigured",stream="cam"}"#;
    assert_eq!(Scrape::of(addr, &[]).await.value(starts), 0.0);

    std::fs::write(&path, manifest(272)).unwrap();
    let report = gateway.state().reload(camgate::reload::Cause::Signal).await;
    assert_eq!(report.result, "applied", "{report:?}");
    loop {
        if next_frame(&mut sub, SECS(10)).await.width == 272 {
            break;
        }
    }
    // The main viewer saw frames only, in sequence, and no state change.
    let mut last = before.seq;
    for _ in 0..10 {
        match next_message(&mut main, SECS(5)).await {
            tokio_tungstenite::tungstenite::Message::Binary(bytes) => {
                let frame = decode_frame(&bytes);
                assert!(frame.seq > last);
                last = frame.seq;
            }
            tokio_tungstenite::tungstenite::Message::Text(text) => {
                assert!(
                    !text.contains("\"state\""),
                    "the main did not restart: {text}"
                );
            }
            tokio_tungstenite::tungstenite::Message::Ping(_) => {}
            other => panic!("{other:?}"),
        }
    }
    let scrape = Scrape::of(addr, &[]).await;
    assert_eq!(scrape.value(starts), 0.0, "no main restart");
    assert_eq!(
        scrape.value(r#"camgate_source_starts_total{reason="reconfigured",stream="cam/sub"}"#),
        1.0,
        "the sub restarted"
    );
    drop((main, sub));
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_slots_are_counted_per_variant() {
    let gateway = start(
        r#"
server: { max_viewers_per_stream: 2 }
streams:
  - id: cam
    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }
    sub: { width: 112 }
"#,
    )
    .await;
    let addr = gateway.local_addr();
    let _a = connect(addr, "/ws/streams/cam").await;
    let _b = connect(addr, "/ws/streams/cam").await;
    let (status, body) = http_json(
        addr,
        "GET",
        "/ws/streams/cam",
        &upgrade_headers(KEY, &[]),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("too_many_viewers"))
    );
    // The sub has slots of its own (its derived source is let in to the full main).
    let mut sub = connect(addr, "/ws/streams/cam?variant=sub").await;
    assert_eq!(next_frame(&mut sub, SECS(10)).await.width, 112);
    let _c = connect(addr, "/ws/streams/cam?variant=sub").await;
    let (status, _) = http_json(
        addr,
        "GET",
        "/ws/streams/cam?variant=sub",
        &upgrade_headers(KEY, &[]),
        None,
    )
    .await;
    assert_eq!(status, 503);
    drop(sub);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_sub_or_the_stream_closes_the_right_viewers() {
    let with_sub = "streams:\n  - id: cam\n    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }\n    sub: { width: 144 }\n";
    let without_sub = "streams:\n  - id: cam\n    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }\n";
    let (_dir, path) = manifest_dir(with_sub);
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let mut main = connect(addr, "/ws/streams/cam").await;
    let mut sub = connect(addr, "/ws/streams/cam?variant=sub").await;
    assert_eq!(next_frame(&mut sub, SECS(10)).await.width, 144);
    let sub_series = r#"camgate_frames_received_total{stream="cam/sub"}"#;
    assert!(Scrape::of(addr, &[]).await.0.contains(sub_series));

    std::fs::write(&path, without_sub).unwrap();
    let report = gateway.state().reload(camgate::reload::Cause::Signal).await;
    assert_eq!(report.result, "applied", "{report:?}");
    assert_eq!(
        closed_with(&mut sub, SECS(5)).await,
        Some(4004),
        "the sub was removed"
    );
    assert!(
        !Scrape::of(addr, &[]).await.0.contains(sub_series),
        "its series went with it"
    );
    let (_, api) = http_json(addr, "GET", "/api/streams/cam", &[], None).await;
    assert_eq!(api["variants"], serde_json::json!(["main"]));
    next_frame(&mut main, SECS(5)).await;

    std::fs::write(&path, with_sub).unwrap();
    gateway.state().reload(camgate::reload::Cause::Signal).await;
    let mut sub = connect(addr, "/ws/streams/cam?variant=sub").await;
    assert_eq!(next_frame(&mut sub, SECS(10)).await.width, 144);
    std::fs::write(&path, "streams: []\n").unwrap();
    gateway.state().reload(camgate::reload::Cause::Signal).await;
    assert_eq!(closed_with(&mut sub, SECS(5)).await, Some(4004));
    assert_eq!(closed_with(&mut main, SECS(5)).await, Some(4004));
    assert_eq!(sub_ffmpegs(144), 0, "the sub's ffmpeg is gone with it");
    gateway.shutdown().await;
}
