//! Smoke test of the load tool (`camgate-bench`, used as a library): a short run with three
//! WebSocket viewers and a probe against a real gateway, the same skimming and with credit
//! flow control, then a short MJPEG-over-HTTP run; and the passthrough protocol's video
//! reader (`--format h264`) against the demo RTSP camera through the `rtsp` plugin.
//! It checks that frames arrive and that the report is complete and well-formed; it does
//! not judge performance (benchmarks are documented in `docs/performance.md`, not timed
//! here).

mod support;

use std::time::Duration;

use support::rtsp::RtspServer;

use clap::Parser;

const MANIFEST: &str = r#"
streams:
  - id: smoke
    name: Smoke
    on_demand: false
    source:
      plugin: testsrc
      width: 320
      height: 180
      fps: 10
"#;

fn args(extra: &[&str]) -> camgate_bench::Args {
    let mut argv = vec!["camgate-bench"];
    argv.extend_from_slice(extra);
    camgate_bench::Args::parse_from(argv)
}

/// Three WebSocket viewers for 2 s and two probes against `url`, sampling `pid`.
fn ws_args_list<'a>(url: &'a str, pid: &'a str) -> Vec<&'a str> {
    vec![
        "--url",
        url,
        "--viewers",
        "3",
        "--duration",
        "2s",
        "--warmup",
        "300ms",
        "--baseline",
        "0s",
        "--pid",
        pid,
        "--probes",
        "2",
        "--probe-interval",
        "200ms",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_tool_reports_frames_from_a_live_gateway() {
    let gateway = support::start(MANIFEST).await;
    let addr = gateway.local_addr();
    let pid = std::process::id().to_string();

    // The tool's tag reader agrees with the gateway's on a real frame.
    let mut ws = support::connect(addr, "/ws/streams/smoke").await;
    let jpeg = loop {
        if let tokio_tungstenite::tungstenite::Message::Binary(b) =
            support::next_message(&mut ws, Duration::from_secs(5)).await
        {
            break b;
        }
    };
    let theirs = camgate::hub::read_tag(&jpeg).expect("gateway tag");
    let ours = camgate_bench::tag::read_tag(&jpeg).expect("bench reads the tag");
    assert_eq!(
        (ours.seq, ours.captured_at_us, ours.published_at_us),
        (theirs.seq, theirs.captured_at_us, theirs.published_at_us)
    );
    drop(ws);

    let url = format!("ws://{addr}/ws/streams/smoke");
    let ws_args = args(&ws_args_list(&url, &pid));
    let report = camgate_bench::run(&ws_args)
        .await
        .expect("the run completes");
    let json = serde_json::to_value(&report).expect("the report serialises");
    for field in [
        "tool",
        "command",
        "nproc",
        "loadavg_start",
        "mode",
        "targets",
        "window_s",
        "normal",
        "spread_ms",
        "probe_ttff_ms",
        "gateway",
        "bench_cores",
        "errors",
    ] {
        assert!(json.get(field).is_some(), "report has `{field}`: {json:#}");
    }
    let normal = &json["normal"];
    assert_eq!(normal["connected"], 3, "{json:#}");
    assert!(
        normal["frames"].as_u64().unwrap() > 0,
        "frames arrived: {json:#}"
    );
    assert!(normal["share"]["min"].as_f64().unwrap() > 0.0, "{json:#}");
    assert!(
        normal["latency_ms"]["p50"].as_f64().unwrap() >= 0.0,
        "{json:#}"
    );
    assert_eq!(normal["untagged_frames"], 0);
    // Kernel receive timestamps give a second spread, at the viewers' sockets.
    let at_socket = json["spread_arrival_ms"]["n"].as_u64();
    assert!(at_socket.is_some_and(|n| n > 0), "{json:#}");
    assert_eq!(
        json["probe_ttff_each_ms"].as_array().unwrap().len(),
        2,
        "{json:#}"
    );
    assert!(json["gateway"]["rss_end_kib"].as_u64().unwrap() > 0);
    assert!(json["errors"].as_array().unwrap().is_empty(), "{json:#}");
    assert!(report.table().contains("share"));
    let full_frame_bytes = report.normal.bytes / report.normal.frames;

    // Skimming viewers read only each frame's head yet see and count whole frames.
    let mut skim_argv = vec!["--skim"];
    skim_argv.extend(ws_args_list(&url, &pid));
    let report = camgate_bench::run(&args(&skim_argv))
        .await
        .expect("the skimming run completes");
    let normal = &report.normal;
    assert!(normal.frames > 0, "{}", report.table());
    assert_eq!(normal.untagged_frames, 0, "the tag is in the head");
    assert!(normal.share.as_ref().is_some_and(|s| s.min > 0.0));
    let skim_frame_bytes = normal.bytes / normal.frames;
    assert!(
        skim_frame_bytes * 2 > full_frame_bytes && skim_frame_bytes < full_frame_bytes * 2,
        "whole frames are counted: {skim_frame_bytes} vs {full_frame_bytes} bytes per frame"
    );

    // Credit flow control (`--credit`): normal and slow viewers grant frames and still get
    // them; the report says so and has the shown picture's age and the direct-pass field.
    let mut credit_argv = vec!["--credit", "1", "--slow", "1", "--slow-fps", "5"];
    credit_argv.extend(ws_args_list(&url, &pid));
    let report = camgate_bench::run(&args(&credit_argv))
        .await
        .expect("the credit run completes");
    let json = serde_json::to_value(&report).expect("the report serialises");
    assert_eq!(json["credit"], 1, "{json:#}");
    assert!(json.get("direct").is_some(), "{json:#}");
    for group in ["normal", "slow"] {
        let g = &json[group];
        assert!(g["frames"].as_u64().unwrap() > 0, "{group}: {json:#}");
        assert!(
            g["credit_granted"].as_u64().unwrap() > 0,
            "{group}: {json:#}"
        );
        assert!(
            g["shown_age_ms"]["n"].as_u64().unwrap() > 0,
            "{group}: {json:#}"
        );
    }
    assert!(json["errors"].as_array().unwrap().is_empty(), "{json:#}");

    // The same numbers over MJPEG-over-HTTP (the mode used for other servers).
    let mjpeg_url = format!("http://{addr}/api/streams/smoke/mjpeg");
    let mjpeg_args = args(&[
        "--mode",
        "mjpeg-http",
        "--url",
        &mjpeg_url,
        "--viewers",
        "2",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--baseline",
        "0s",
    ]);
    let report = camgate_bench::run(&mjpeg_args)
        .await
        .expect("the MJPEG run completes");
    assert!(report.normal.frames > 0, "{}", report.table());
    assert!(
        report.normal.share.as_ref().is_some_and(|s| s.min > 0.0),
        "{}",
        report.table()
    );

    gateway.shutdown().await;
}

/// `--format h264` against the demo camera's encoding-free `/loop264` mount (640x360, 15 fps,
/// 1 s GOP) through the built-in `rtsp` plugin: viewers read the video messages (frames,
/// bytes, latency, sequence gaps) and probes time the GOP a joining viewer gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_tool_reads_passthrough_video_from_the_demo_camera() {
    let camera = RtspServer::start(&[]);
    let manifest = format!(
        r#"
streams:
  - id: cam
    on_demand: false
    source: {{ plugin: rtsp, url: "{}" }}
"#,
        camera.url("/loop264")
    );
    let gateway = support::start(&manifest).await;
    let addr = gateway.local_addr();
    let pid = std::process::id().to_string();

    // The tool's header reader agrees with what a viewer of the gateway sees: the first
    // frame a new viewer gets is a keyframe, captured moments ago.
    let mut ws = support::connect(addr, "/ws/streams/cam?format=h264").await;
    let message = loop {
        if let tokio_tungstenite::tungstenite::Message::Binary(b) =
            support::next_message(&mut ws, Duration::from_secs(20)).await
        {
            break b;
        }
    };
    let header = camgate_bench::tag::read_video_header(&message).expect("a video message");
    assert!(header.keyframe, "a joining viewer starts at a keyframe");
    assert_eq!(
        header.seq,
        u64::from_be_bytes(message[2..10].try_into().unwrap())
    );
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let age_us = now_us.saturating_sub(header.captured_at_us);
    assert!(age_us < 10_000_000, "captured {age_us} us ago");
    assert!(
        camgate_bench::tag::read_tag(&message).is_none(),
        "not a JPEG"
    );
    drop(ws);

    let url = format!("ws://{addr}/ws/streams/cam");
    let argv = [
        "--format",
        "h264",
        "--url",
        &url,
        "--viewers",
        "3",
        "--duration",
        "2s",
        "--warmup",
        "300ms",
        "--baseline",
        "0s",
        "--pid",
        &pid,
        "--probes",
        "3",
        "--probe-interval",
        "200ms",
    ];
    let report = camgate_bench::run(&args(&argv))
        .await
        .expect("the video run completes");
    let table = report.table();
    let json = serde_json::to_value(&report).expect("the report serialises");
    assert_eq!(json["format"], "h264", "{json:#}");
    assert!(
        json["targets"][0]
            .as_str()
            .unwrap()
            .ends_with("/ws/streams/cam?format=h264"),
        "{json:#}"
    );
    let normal = &report.normal;
    assert_eq!(normal.connected, 3, "{table}");
    assert!(normal.frames > 0, "{table}");
    assert_eq!(normal.untagged_frames, 0, "every video message is read");
    assert!(
        normal.config_messages >= 3,
        "one config per viewer: {table}"
    );
    assert!(
        normal.share.as_ref().is_some_and(|s| s.min > 0.0),
        "{table}"
    );
    assert!(normal.latency_ms.is_some(), "{table}");
    assert!(json["normal"].get("skipped_frames").is_some(), "{json:#}");
    assert!(normal.bytes > normal.frames * 18, "whole messages count");
    assert_eq!(report.probe_gop_each_ms.len(), 3, "{table}");
    assert_eq!(report.probe_gop_frames_each.len(), 3, "{table}");
    assert!(
        report.probe_gop_frames_each.iter().all(|&n| n >= 1),
        "{table}"
    );
    for (ttff, gop) in report
        .probe_ttff_each_ms
        .iter()
        .zip(&report.probe_gop_each_ms)
    {
        assert!(ttff <= gop, "the keyframe arrives first: {table}");
    }
    assert!(table.contains("probe GOP ms"), "{table}");
    assert!(report.errors.is_empty(), "{table}");

    gateway.shutdown().await;
    drop(camera);
}
