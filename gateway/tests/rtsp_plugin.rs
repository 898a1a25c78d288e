//! Tests of the built-in `rtsp` passthrough plugin against the real demo RTSP camera
//! (GStreamer), through the plugin API's test host: H.264 and H.265 access units with
//! their configuration first and a keyframe every second, MJPEG as whole JPEGs, Basic auth
//! right and wrong (no password in any text), a camera that dies and comes back, a server
//! that accepts and never answers, a stream that stalls, a prompt `stop`, UDP transport,
//! and the plugin's place among the gateway's built-ins.
//!
//! Every server a test starts is owned by a guard that kills and reaps it on drop. Only
//! 127.0.0.1 is bound. Timing assertions are generous bounds, never speed targets.

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives real processes and sockets, whose timing is the wall clock's"
)]

mod support;

use std::time::{Duration, Instant};

use camgate_plugin_api::testing::{RecordedMedia, TestHost};
use camgate_plugin_api::{Codec, Source, SourcePlugin, SourceState};
use camgate_rtsp::{Rtsp, RtspSource};
use support::rtsp::{RtspServer, wait_until};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A started `rtsp` source on `options` (JSON), reporting to a fresh test host.
fn start(options: serde_json::Value) -> (RtspSource, TestHost) {
    let test = TestHost::new();
    let config = serde_json::from_value(options).expect("valid options");
    Rtsp::check(&config).expect("options pass the plugin's checks");
    let mut source = Rtsp::create(config, test.host()).expect("create");
    source.start().expect("start");
    (source, test)
}

fn states(test: &TestHost) -> Vec<SourceState> {
    test.states().into_iter().map(|(state, _)| state).collect()
}

fn last_state(test: &TestHost) -> Option<(SourceState, String)> {
    test.states().pop()
}

/// Splits an AVCC/HVCC access unit into its NAL units; panics if the lengths do not tile
/// the data exactly.
fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        assert!(rest.len() >= 4, "truncated length prefix");
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert!(
            len > 0 && rest.len() >= 4 + len,
            "NAL length {len} overruns the data"
        );
        units.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    units
}

/// Waits for `count` media frames, stops the source, returns them.
fn media_frames(source: &mut RtspSource, test: &TestHost, count: usize) -> Vec<RecordedMedia> {
    let got = wait_until(SECS(20), || test.media().len() >= count);
    source.stop();
    assert!(
        got,
        "only {} video frames in 20 s; states: {:?}; logs: {:?}",
        test.media().len(),
        test.states(),
        test.logs()
    );
    test.media()
}

/// Keyframe positions must be about one second (`fps` frames) apart.
fn assert_keyframes_every_second(frames: &[RecordedMedia], fps: usize) {
    let keys: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].keyframe).collect();
    assert!(keys.len() >= 2, "keyframes at {keys:?}");
    assert_eq!(keys[0], 0, "the first frame out is a keyframe");
    for gap in keys.windows(2).map(|w| w[1] - w[0]) {
        assert!(
            (fps - 2..=fps + 2).contains(&gap),
            "keyframes {gap} frames apart, expected about {fps}: {keys:?}"
        );
    }
}

#[test]
fn h264_access_units_come_with_the_avcc_config_first_and_a_keyframe_each_second() {
    let server = RtspServer::start(&[]);
    let (mut source, test) = start(serde_json::json!({ "url": server.url("/test") }));
    // 640x360 at 15 fps (the fixture's size), GOP 1 s: 40 frames span 2+ keyframes.
    let frames = media_frames(&mut source, &test, 40);

    assert!(frames.iter().all(|f| f.codec == Some(Codec::H264)));
    let config = frames[0]
        .config
        .as_deref()
        .expect("config on the first frame");
    assert!(
        frames[1..].iter().all(|f| f.config.is_none()),
        "the config is sent again only when it changes"
    );
    // avcC: version 1, profile/compat/level, 0xFC|lengthSizeMinusOne = 3 (4-byte lengths),
    // then one SPS and one PPS.
    assert_eq!(config[0], 1, "configurationVersion");
    assert_eq!(config[4], 0xFF, "4-byte NAL lengths");
    assert_eq!(config[5] & 0x1F, 1, "one SPS");
    let sps_len = u16::from_be_bytes([config[6], config[7]]) as usize;
    assert_eq!(config[8] & 0x1F, 7, "an SPS NAL");
    assert_eq!(
        config[1..4],
        config[9..12],
        "profile/level copied from the SPS"
    );
    assert_eq!(config[8 + sps_len], 1, "one PPS");

    assert_keyframes_every_second(&frames, 15);
    for frame in &frames {
        let types: Vec<u8> = nal_units(&frame.data).iter().map(|n| n[0] & 0x1F).collect();
        assert!(
            !types.iter().any(|t| *t == 7 || *t == 8),
            "parameter sets travel in the config, not in-band: {types:?}"
        );
        assert_eq!(
            frame.keyframe,
            types.contains(&5),
            "keyframe = IDR: {types:?}"
        );
        // The coded size (640x360 is coded in 16-pixel macroblocks as 640x368).
        assert_eq!((frame.width, frame.height), (640, 368));
        assert!(frame.capture_time_us > 0);
    }
    assert!(
        test.frames().is_empty(),
        "no JPEG frames from an H.264 camera"
    );
    let seen = states(&test);
    assert_eq!(
        seen[..2],
        [SourceState::Connecting, SourceState::Live],
        "{seen:?}"
    );
}

#[test]
fn h265_access_units_come_with_the_hvcc_config_first() {
    let server = RtspServer::start(&[]);
    let (mut source, test) = start(serde_json::json!({ "url": server.url("/h265") }));
    let frames = media_frames(&mut source, &test, 20);
    assert!(frames.iter().all(|f| f.codec == Some(Codec::H265)));
    let config = frames[0]
        .config
        .as_deref()
        .expect("config on the first frame");
    assert_eq!(config[0], 1, "hvcC configurationVersion");
    assert_eq!(config[21] & 0x03, 3, "4-byte NAL lengths");
    assert!(frames[0].keyframe);
    assert!(frames[1..].iter().all(|f| f.config.is_none()));
    for frame in &frames {
        let types: Vec<u8> = nal_units(&frame.data)
            .iter()
            .map(|n| (n[0] >> 1) & 0x3F)
            .collect();
        // IRAP pictures are NAL types 16..=23.
        assert_eq!(
            frame.keyframe,
            types.iter().any(|t| (16..=23).contains(t)),
            "{types:?}"
        );
    }
}

#[test]
fn mjpeg_cameras_give_whole_jpegs() {
    let server = RtspServer::start(&[]);
    let (mut source, test) = start(serde_json::json!({ "url": server.url("/mjpeg") }));
    let got = wait_until(SECS(20), || test.frames().len() >= 10);
    source.stop();
    assert!(got, "states: {:?}", test.states());
    for frame in test.frames() {
        assert_eq!(frame.jpeg[..2], [0xFF, 0xD8], "SOI");
        assert_eq!(frame.jpeg[frame.jpeg.len() - 2..], [0xFF, 0xD9], "EOI");
        assert_eq!((frame.width, frame.height), (640, 360));
    }
    assert!(test.media().is_empty());
}

#[test]
fn udp_transport_works_too() {
    let server = RtspServer::start(&[]);
    let (mut source, test) = start(serde_json::json!({
        "url": server.url("/test"),
        "transport": "udp",
    }));
    let frames = media_frames(&mut source, &test, 10);
    assert!(frames[0].keyframe && frames[0].config.is_some());
}

#[test]
fn basic_auth_with_the_right_password_plays_and_a_wrong_one_retries_without_leaking_it() {
    let password = "s3cret-Pw";
    let server = RtspServer::start(&["--username", "admin", "--password", password]);

    let (mut source, test) = start(serde_json::json!({
        "url": server.url("/test"),
        "username": "admin",
        "password": password,
    }));
    media_frames(&mut source, &test, 5);

    let wrong = "wr0ng-Pw";
    let (mut source, test) = start(serde_json::json!({
        "url": format!("rtsp://admin:{wrong}@127.0.0.1:{}/test", server.port()),
    }));
    let retried = wait_until(SECS(10), || {
        last_state(&test).is_some_and(|(state, _)| state == SourceState::Retrying)
    });
    source.stop();
    assert!(retried, "states: {:?}", test.states());
    let (_, message) = last_state(&test).unwrap();
    assert!(
        message.contains("authentication failed (401 Unauthorized): check username and password"),
        "{message}"
    );
    assert!(test.media().is_empty());
    let texts = test
        .states()
        .into_iter()
        .map(|(_, m)| m)
        .chain(test.logs().into_iter().map(|(_, m)| m));
    for text in texts {
        assert!(!text.contains(wrong) && !text.contains(password), "{text}");
    }

    // No credentials at all: the message says what is missing.
    let (mut source, test) = start(serde_json::json!({ "url": server.url("/test") }));
    let retried = wait_until(SECS(10), || {
        last_state(&test).is_some_and(|(state, _)| state == SourceState::Retrying)
    });
    source.stop();
    assert!(retried, "states: {:?}", test.states());
    let (_, message) = last_state(&test).unwrap();
    assert!(
        message.contains("wants a username and password"),
        "{message}"
    );
}

#[test]
fn a_camera_that_dies_is_retried_with_growing_delays_and_is_live_again_when_back() {
    let mut server = RtspServer::start(&[]);
    let port = server.port();
    let (mut source, test) = start(serde_json::json!({ "url": server.url("/test") }));
    assert!(wait_until(SECS(20), || !test.media().is_empty()));

    server.stop();
    // Down for a while: several attempts, each reported with its delay.
    let retried = wait_until(SECS(15), || {
        test.states()
            .iter()
            .filter(|(s, _)| *s == SourceState::Retrying)
            .count()
            >= 3
    });
    assert!(retried, "states: {:?}", test.states());
    let retrying: Vec<String> = test
        .states()
        .into_iter()
        .filter(|(s, _)| *s == SourceState::Retrying)
        .map(|(_, m)| m)
        .collect();
    assert!(retrying[0].contains("retrying in"), "{retrying:?}");
    assert!(retrying[1].contains("(attempt 2)"), "{retrying:?}");
    assert!(
        retrying[1..]
            .iter()
            .all(|m| m.contains("connection refused")),
        "{retrying:?}"
    );

    let frames_before = test.media().len();
    let _server = RtspServer::start_on(port, &[]);
    let back = Instant::now();
    let live_again = wait_until(SECS(15), || test.media().len() > frames_before);
    source.stop();
    assert!(live_again, "states: {:?}", test.states());
    assert!(back.elapsed() < SECS(15));
    assert_eq!(last_state(&test).map(|(s, _)| s), Some(SourceState::Live));
    // The new session starts over: its first frame carries the config again.
    let after = &test.media()[frames_before..];
    assert!(after[0].keyframe && after[0].config.is_some());
}

#[test]
fn a_server_that_accepts_and_never_answers_times_out_and_stop_is_prompt_meanwhile() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (mut source, test) = start(serde_json::json!({
        "url": format!("rtsp://127.0.0.1:{port}/x"),
        "connect_timeout": "500ms",
    }));
    let timed_out = wait_until(SECS(10), || {
        last_state(&test).is_some_and(|(s, _)| s == SourceState::Retrying)
    });
    assert!(timed_out, "states: {:?}", test.states());
    let (_, message) = last_state(&test).unwrap();
    assert!(
        message.contains("connection timed out (no answer within 500ms)"),
        "{message}"
    );
    // Stuck in the next connect (the listener's backlog holds the connection): stop at once.
    assert!(wait_until(SECS(10), || {
        last_state(&test).is_some_and(|(s, _)| s == SourceState::Connecting)
    }));
    let stopping = Instant::now();
    source.stop();
    assert!(
        stopping.elapsed() < SECS(1),
        "stop took {:?}",
        stopping.elapsed()
    );
    drop(listener);
}

#[test]
fn a_stream_that_stalls_is_reconnected_by_the_watchdog() {
    let server = RtspServer::start(&[]);
    let (mut source, test) = start(serde_json::json!({
        "url": server.url("/test"),
        "stall_timeout": "1s",
        "connect_timeout": "1s",
    }));
    assert!(wait_until(SECS(20), || !test.media().is_empty()));
    server.pause();
    let stalled = wait_until(SECS(10), || {
        last_state(&test).is_some_and(|(s, _)| s == SourceState::Retrying)
    });
    server.resume();
    let stopping = Instant::now();
    source.stop();
    assert!(
        stopping.elapsed() < SECS(2),
        "stop took {:?}",
        stopping.elapsed()
    );
    assert!(stalled, "states: {:?}", test.states());
    let (_, message) = test
        .states()
        .into_iter()
        .find(|(s, _)| *s == SourceState::Retrying)
        .unwrap();
    assert!(
        message.contains("no frame for 1s (stream stalled)"),
        "{message}"
    );
}

#[test]
fn stop_while_live_is_prompt_and_nothing_reaches_the_host_afterwards() {
    let server = RtspServer::start(&[]);
    let (mut source, test) = start(serde_json::json!({ "url": server.url("/test") }));
    assert!(wait_until(SECS(20), || test.media().len() >= 3));
    let stopping = Instant::now();
    source.stop();
    assert!(
        stopping.elapsed() < SECS(1),
        "stop took {:?}",
        stopping.elapsed()
    );
    let (frames, states, logs) = (test.media().len(), test.states().len(), test.logs().len());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        (test.media().len(), test.states().len(), test.logs().len()),
        (frames, states, logs)
    );
    source.stop(); // idempotent
}

#[test]
fn the_gateway_has_rtsp_built_in_and_checks_its_options() {
    let catalog = camgate::plugins::PluginCatalog::with_builtins();
    let plugin = catalog.get("rtsp").expect("rtsp is a built-in plugin");
    let problem = plugin
        .validate(r#"{"url": "rtsp://cam/x", "fps": 5}"#)
        .unwrap_err();
    assert_eq!(problem.kind, camgate::plugins::FailureKind::InvalidConfig);
    assert!(problem.message.contains("unknown field `fps`"), "{problem}");
    let problem = plugin
        .validate(r#"{"url": "rtsps://admin:s3cret@cam/x"}"#)
        .unwrap_err();
    let text = problem.to_string();
    assert!(text.contains("`rtsps` is not supported"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    plugin.validate(r#"{"url": "rtsp://cam/x"}"#).unwrap();
}
