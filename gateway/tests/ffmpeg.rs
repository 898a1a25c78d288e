//! End-to-end tests of the default `ffmpeg-mjpeg` source with a real ffmpeg and a real
//! RTSP server (the GStreamer demo server): frames at the configured rate and size to
//! several viewers, MJPEG passthrough, recovery after a camera reboot, failures that keep
//! retrying with growing delays and a useful error, the stall watchdog, no orphaned
//! ffmpeg (also when the gateway binary is SIGKILLed), no password anywhere, and a clear
//! failure when ffmpeg is missing.
//!
//! Every child a test starts (RTSP servers, the gateway binary) is owned by a guard that
//! kills and reaps it on drop, so a failing test leaves nothing behind. Only 127.0.0.1 is
//! bound. Timing assertions are generous bounds, never speed targets.

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives real processes and sockets, whose timing is the wall clock's"
)]

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camgate::hub::StreamState;
use futures_util::StreamExt;
use support::binary::GatewayProcess;
use support::rtsp::{self, RtspServer};
use support::*;
use tokio_tungstenite::tungstenite::Message;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// What a viewer saw, with when it saw it.
#[derive(Debug)]
enum Seen {
    Frame(ReceivedFrame),
    State(String, String),
    Other(serde_json::Value),
}

/// Reads `ws` for up to `timeout` or until `done` says stop; returns everything seen.
async fn watch(
    ws: &mut Client,
    timeout: Duration,
    mut done: impl FnMut(&[(Instant, Seen)]) -> bool,
) -> Vec<(Instant, Seen)> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let message = match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => panic!("WebSocket error: {e}"),
            Ok(None) => panic!("WebSocket closed"),
            Err(_) => break,
        };
        let item = match message {
            Message::Binary(bytes) => Seen::Frame(decode_frame(&bytes)),
            Message::Text(text) => {
                let event: serde_json::Value = serde_json::from_str(&text).unwrap();
                match (event["type"].as_str(), event["state"].as_str()) {
                    (Some("state"), Some(state)) | (Some("hello"), Some(state)) => Seen::State(
                        state.to_owned(),
                        event["message"].as_str().unwrap_or("").to_owned(),
                    ),
                    _ => Seen::Other(event),
                }
            }
            _ => continue,
        };
        seen.push((Instant::now(), item));
    }
    seen
}

fn frames(seen: &[(Instant, Seen)]) -> Vec<&ReceivedFrame> {
    seen.iter()
        .filter_map(|(_, s)| match s {
            Seen::Frame(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn states(seen: &[(Instant, Seen)]) -> Vec<(Instant, &str, &str)> {
    seen.iter()
        .filter_map(|(at, s)| match s {
            Seen::State(state, message) => Some((*at, state.as_str(), message.as_str())),
            _ => None,
        })
        .collect()
}

/// Frames per second by capture timestamps.
fn capture_rate(frames: &[&ReceivedFrame]) -> f64 {
    let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
        return 0.0;
    };
    let span = (last.captured_at_us - first.captured_at_us) as f64 / 1e6;
    (frames.len() - 1) as f64 / span
}

/// `true` if `wanted` occurs in order (not necessarily adjacent) in `states`.
fn has_subsequence(states: &[&str], wanted: &[&str]) -> bool {
    let mut want = wanted.iter().peekable();
    for state in states {
        if want.peek() == Some(&state) {
            want.next();
        }
    }
    want.peek().is_none()
}

/// A manifest with one stream `cam` reading `url` at 5 fps, 320 px wide, plus `extra`
/// source option lines (indented six spaces).
fn camera_manifest(url: &str, extra: &str) -> String {
    format!(
        "streams:\n  - id: cam\n    source:\n      plugin: ffmpeg-mjpeg\n      url: {url}\n      fps: 5\n      width: 320\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_camera_reaches_two_viewers_at_the_configured_rate_and_size() {
    let server = RtspServer::start(&[]);
    // The query marks this test's ffmpeg: tests share a process, and another test's
    // ffmpeg may retry a port of its own that the kernel has given to this server since.
    let url = server.url(&format!("/test?t={}", line!()));
    let gateway = start(&camera_manifest(&url, "")).await;
    let addr = gateway.local_addr();
    let mut a = connect(addr, "/ws/streams/cam").await;
    let mut b = connect(addr, "/ws/streams/cam").await;
    // Cold start, then about four seconds of frames on both.
    for ws in [&mut a, &mut b] {
        next_frame(ws, SECS(30)).await;
    }
    let (seen_a, seen_b) = tokio::join!(
        watch(&mut a, SECS(4), |_| false),
        watch(&mut b, SECS(4), |_| false)
    );
    for seen in [&seen_a, &seen_b] {
        let frames = frames(seen);
        assert!(frames.len() >= 10, "too few frames: {}", frames.len());
        for frame in &frames {
            assert_eq!((frame.width, frame.height), (320, 180));
        }
        let rate = capture_rate(&frames);
        assert!(
            (3.5..=6.5).contains(&rate),
            "rate {rate:.2} fps, want 5 ± 30%"
        );
        assert!(frames.windows(2).all(|w| w[1].seq > w[0].seq));
    }
    // One ffmpeg for both viewers.
    let ours = rtsp::ffmpeg_children(std::process::id(), &url);
    assert_eq!(ours.len(), 1, "{ours:?}");
    drop((a, b));
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mjpeg_camera_is_passed_through_always_or_after_auto_detection() {
    let server = RtspServer::start(&[]);
    let gateway = start(&format!(
        r#"
streams:
  - id: always
    source:
      plugin: ffmpeg-mjpeg
      url: {url}
      fps: 5
      passthrough: always
  - id: auto
    source:
      plugin: ffmpeg-mjpeg
      url: {url}
      fps: 5
"#,
        url = server.url("/mjpeg")
    ))
    .await;
    let addr = gateway.local_addr();
    let mut always = connect(addr, "/ws/streams/always").await;
    let mut auto = connect(addr, "/ws/streams/auto").await;

    let seen = watch(&mut always, SECS(30), |seen| frames(seen).len() >= 15).await;
    let got = frames(&seen);
    assert!(got.len() >= 15, "too few frames: {seen:?}");
    assert!(got.iter().all(|f| (f.width, f.height) == (640, 360)));
    // The camera sends 15 fps; the plugin paces copied JPEGs to the configured 5.
    let rate = capture_rate(&got[1..]);
    assert!(
        (3.5..=6.5).contains(&rate),
        "rate {rate:.2} fps, want 5 ± 30%"
    );

    // auto: transcodes first, sees MJPEG, restarts once in copy mode and stays there.
    let seen = watch(&mut auto, SECS(40), |seen| {
        let switched = states(seen)
            .iter()
            .position(|(_, _, m)| m.contains("switching to passthrough"));
        switched.is_some_and(|at| {
            seen[at..]
                .iter()
                .filter(|(_, s)| matches!(s, Seen::Frame(_)))
                .count()
                >= 5
        })
    })
    .await;
    let switched = states(&seen)
        .iter()
        .any(|(_, _, m)| m.contains("switching to passthrough"));
    assert!(switched, "auto did not switch to passthrough: {seen:?}");
    assert!(
        frames(&seen)
            .iter()
            .all(|f| (f.width, f.height) == (640, 360))
    );
    drop((always, auto));
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_reboot_resumes_frames_on_the_same_connections() {
    let mut server = RtspServer::start(&[]);
    let port = server.port();
    let url = server.url(&format!("/test?t={}", line!())); // marks our ffmpeg (see above)
    let gateway = start(&camera_manifest(&url, "")).await;
    let addr = gateway.local_addr();
    let mut viewers = vec![
        connect(addr, "/ws/streams/cam").await,
        connect(addr, "/ws/streams/cam").await,
    ];
    let mut before = Vec::new();
    for ws in &mut viewers {
        before.push(watch(ws, SECS(30), |seen| !frames(seen).is_empty()).await);
    }
    let needle = url.clone();
    let first_ffmpeg = rtsp::ffmpeg_children(std::process::id(), &needle);
    assert_eq!(first_ffmpeg.len(), 1, "{first_ffmpeg:?}");

    // Reboot: the camera disappears, then comes back on the same port.
    server.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _server = RtspServer::start_on(port, &[]);

    for (ws, before) in viewers.iter_mut().zip(before) {
        let last_seq = frames(&before).last().map(|f| f.seq).unwrap_or(0);
        let after = watch(ws, SECS(40), |seen| {
            let names: Vec<&str> = states(seen).iter().map(|(_, s, _)| *s).collect();
            has_subsequence(&names, &["retrying", "live"])
                && frames(seen).iter().any(|f| f.seq > last_seq)
        })
        .await;
        let mut all: Vec<&str> = states(&before).iter().map(|(_, s, _)| *s).collect();
        all.extend(states(&after).iter().map(|(_, s, _)| *s));
        assert!(
            has_subsequence(&all, &["live", "retrying", "live"]),
            "states: {all:?}"
        );
        let resumed = frames(&after);
        assert!(
            resumed.iter().any(|f| f.seq > last_seq),
            "no frame after the reboot: {after:?}"
        );
        let message = states(&after)
            .iter()
            .find(|(_, s, _)| *s == "retrying")
            .map(|(_, _, m)| m.to_string())
            .unwrap_or_default();
        assert!(message.contains("retrying in"), "{message}");
    }
    // The first ffmpeg was reaped; exactly one runs now.
    let me = std::process::id();
    assert!(
        rtsp::proc_info(first_ffmpeg[0].pid).is_none_or(|p| p.ppid != me),
        "the first ffmpeg is still our child"
    );
    assert_eq!(rtsp::ffmpeg_children(me, &needle).len(), 1);
    drop(viewers);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_back_from_a_long_outage_is_live_again_before_its_backoff_ends() {
    let mut server = RtspServer::start(&[]);
    let port = server.port();
    let gateway = start(&camera_manifest(&server.url("/test"), "")).await;
    let mut ws = connect(gateway.local_addr(), "/ws/streams/cam").await;
    watch(&mut ws, SECS(30), |seen| !frames(seen).is_empty()).await;

    // A long outage: wait until the backoff announces a delay of at least 8 s.
    server.stop();
    let seen = watch(&mut ws, SECS(60), |seen| {
        states(seen).iter().any(|(_, s, m)| {
            *s == "retrying" && retry_plan(m).is_some_and(|(delay, _)| delay >= 8.0)
        })
    })
    .await;
    let (announced_at, delay) = states(&seen)
        .iter()
        .find_map(|(at, s, m)| {
            let (delay, _) = retry_plan(m).filter(|_| *s == "retrying")?;
            (delay >= 8.0).then_some((*at, Duration::from_secs_f64(delay)))
        })
        .unwrap_or_else(|| panic!("the backoff never reached 8 s: {seen:?}"));

    // The camera comes back (start_on returns once it accepts connections).
    let _server = RtspServer::start_on(port, &[]);
    let back = Instant::now();
    let seen = watch(&mut ws, SECS(60), |seen| !frames(seen).is_empty()).await;
    let (first_frame_at, _) = seen
        .iter()
        .find(|(_, s)| matches!(s, Seen::Frame(_)))
        .unwrap_or_else(|| panic!("no frame after the camera came back: {seen:?}"));
    let recovery = first_frame_at.duration_since(back);
    eprintln!(
        "camera accepting → first frame at the viewer: {:.2} s (backoff announced {:.1} s)",
        recovery.as_secs_f64(),
        delay.as_secs_f64()
    );
    // Without the probe, ffmpeg would only start when the announced delay ends.
    assert!(
        *first_frame_at < announced_at + delay,
        "the picture came back only after the backoff ({recovery:?} after the camera)"
    );
    let names: Vec<&str> = states(&seen).iter().map(|(_, s, _)| *s).collect();
    assert!(
        has_subsequence(&names, &["connecting", "live"]),
        "{names:?}"
    );
    drop(ws);
    gateway.shutdown().await;
}

/// Parses "...; retrying in 1.2s (attempt 3)" into (delay, attempt).
fn retry_plan(message: &str) -> Option<(f64, u32)> {
    let rest = message.split("retrying in ").nth(1)?;
    let (delay, rest) = rest.split_once("s (attempt ")?;
    let attempt = rest.trim_end_matches(')').parse().ok()?;
    Some((delay.parse().ok()?, attempt))
}

/// Watches a failing stream until it has retried `retries` times; checks the error text
/// and that the announced delays grow. (That each delay is really waited, and how fast it
/// grows, is unit-tested on a fake clock in the plugin's `retry` and `backoff` modules:
/// here arrival times of WebSocket messages on shared cores would make it flaky.)
async fn assert_keeps_retrying(ws: &mut Client, expected: &str, retries: usize) {
    let seen = watch(ws, SECS(60), |seen| {
        states(seen)
            .iter()
            .filter(|(_, s, _)| *s == "retrying")
            .count()
            >= retries
    })
    .await;
    let all = states(&seen);
    let retrying: Vec<_> = all.iter().filter(|(_, s, _)| *s == "retrying").collect();
    assert!(
        retrying.len() >= retries,
        "{expected}: only {} retries: {all:?}",
        retrying.len()
    );
    assert!(
        !all.iter().any(|(_, s, _)| *s == "failed" || *s == "live"),
        "{all:?}"
    );
    let mut plans = Vec::new();
    for (_, _, message) in &retrying {
        assert!(
            message.contains(expected),
            "want `{expected}` in `{message}`"
        );
        let plan = retry_plan(message).unwrap_or_else(|| panic!("no retry plan in `{message}`"));
        plans.push(plan);
    }
    for pair in plans.windows(2) {
        let ((delay0, attempt0), (delay1, attempt1)) = (pair[0], pair[1]);
        assert!(attempt1 > attempt0, "{plans:?}");
        assert!(delay1 >= delay0, "delays must not shrink: {plans:?}");
    }
    let (first, last) = (plans[0], plans[plans.len() - 1]);
    assert!(
        last.1 >= first.1 + 2 && last.0 > first.0,
        "delays must grow: {plans:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_not_found_and_silent_servers_keep_retrying_with_growing_delays() {
    let server = RtspServer::start(&[]);
    // A port nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    // A server that accepts TCP connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let gateway = start(&format!(
        r#"
streams:
  - id: refused
    source:
      plugin: ffmpeg-mjpeg
      url: rtsp://127.0.0.1:{closed}/test
      connect_timeout: 1s
  - id: notfound
    source:
      plugin: ffmpeg-mjpeg
      url: {notfound}
      connect_timeout: 1s
  - id: silent
    source:
      plugin: ffmpeg-mjpeg
      url: rtsp://127.0.0.1:{silent_port}/test
      connect_timeout: 1s
"#,
        notfound = server.url("/nope"),
    ))
    .await;
    let addr = gateway.local_addr();
    let mut refused = connect(addr, "/ws/streams/refused").await;
    let mut notfound = connect(addr, "/ws/streams/notfound").await;
    let mut silent = connect(addr, "/ws/streams/silent").await;
    tokio::join!(
        assert_keeps_retrying(&mut refused, "connection refused", 4),
        assert_keeps_retrying(&mut notfound, "stream not found (404)", 4),
        assert_keeps_retrying(&mut silent, "connection timed out", 3),
    );
    // The status (API) keeps the last error, also while reconnecting.
    let body = http_get(addr, "/api/streams", &[]).await.1;
    for (id, expected) in [
        ("refused", "connection refused"),
        ("notfound", "stream not found (404)"),
        ("silent", "connection timed out"),
    ] {
        let status = gateway.state().registry.get(id).unwrap().status();
        assert!(
            matches!(
                status.state,
                StreamState::Retrying | StreamState::Connecting
            ) && status.message.contains(expected),
            "{id}: {status:?}"
        );
        assert!(body.contains(expected), "{body}");
    }
    holder.abort();
    drop((refused, notfound, silent));
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_camera_is_caught_by_the_watchdog_and_recovers() {
    let server = RtspServer::start(&[]);
    let gateway = start(&camera_manifest(
        &server.url("/test"),
        "      stall_timeout: 2s\n      connect_timeout: 2s\n",
    ))
    .await;
    let addr = gateway.local_addr();
    let mut ws = connect(addr, "/ws/streams/cam").await;
    watch(&mut ws, SECS(30), |seen| frames(seen).len() >= 3).await;

    server.pause();
    let paused = Instant::now();
    let seen = watch(&mut ws, SECS(20), |seen| {
        states(seen)
            .iter()
            .any(|(_, s, m)| *s == "retrying" && m.contains("no frame for"))
    })
    .await;
    let (at, _, message) = states(&seen)
        .into_iter()
        .find(|(_, s, m)| *s == "retrying" && m.contains("no frame for"))
        .unwrap_or_else(|| panic!("watchdog did not fire: {seen:?}"));
    assert!(message.contains("no frame for 2s"), "{message}");
    let waited = at.duration_since(paused);
    assert!(
        waited >= Duration::from_millis(1500) && waited <= SECS(10),
        "watchdog fired after {waited:?} (stall_timeout 2s)"
    );

    server.resume();
    let seen = watch(&mut ws, SECS(60), |seen| {
        states(seen).iter().any(|(_, s, _)| *s == "live") && !frames(seen).is_empty()
    })
    .await;
    assert!(
        !frames(&seen).is_empty(),
        "no recovery after SIGCONT: {seen:?}"
    );
    drop(ws);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_source_leaves_no_ffmpeg_behind() {
    let server = RtspServer::start(&[]);
    let url = server.url(&format!("/test?t={}", line!())); // marks our ffmpeg (see above)
    let gateway = start(&camera_manifest(&url, "")).await;
    let addr = gateway.local_addr();
    let mut ws = connect(addr, "/ws/streams/cam").await;
    next_frame(&mut ws, SECS(30)).await;
    let me = std::process::id();
    let needle = url.clone();
    let running = rtsp::ffmpeg_children(me, &needle);
    assert_eq!(running.len(), 1, "{running:?}");

    let hub = gateway.state().registry.get("cam").unwrap();
    let stopping = Instant::now();
    hub.stop_source().await;
    assert!(
        stopping.elapsed() < SECS(3),
        "stop took {:?}",
        stopping.elapsed()
    );
    // Killed *and reaped* by the time stop returns: not even a zombie is left.
    for process in &running {
        let now = rtsp::proc_info(process.pid);
        assert!(
            now.as_ref().is_none_or(|p| p.ppid != me),
            "ffmpeg {} survived stop: {now:?}",
            process.pid
        );
    }
    assert!(rtsp::ffmpeg_children(me, &needle).is_empty());
    drop(ws);
    gateway.shutdown().await;
}

#[test]
fn a_sigkilled_gateway_takes_its_ffmpeg_with_it() {
    let server = RtspServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("camgate.yaml");
    std::fs::write(
        &manifest,
        format!(
            "streams:\n  - id: cam\n    on_demand: false\n    source:\n      plugin: \
             ffmpeg-mjpeg\n      url: {}\n      fps: 5\n      width: 320\n",
            server.url("/test")
        ),
    )
    .unwrap();
    let mut gateway = GatewayProcess::start(&manifest, "127.0.0.1:0", &[("CAMGATE_LOG", "debug")]);
    let needle = format!(":{}/", server.port());
    let mut ffmpeg = Vec::new();
    let found = rtsp::wait_until(SECS(30), || {
        ffmpeg = rtsp::ffmpeg_children(gateway.pid(), &needle);
        !ffmpeg.is_empty()
    });
    assert!(found, "no ffmpeg child of camgate: {}", gateway.logs());
    assert_eq!(ffmpeg.len(), 1, "{ffmpeg:?}");
    let pid = ffmpeg[0].pid;

    gateway.kill(); // SIGKILL: no cleanup code runs in camgate
    let gone = rtsp::wait_until(SECS(5), || {
        rtsp::proc_info(pid).is_none_or(|p| !p.is_alive() || p.comm != "ffmpeg")
    });
    assert!(
        gone,
        "ffmpeg {pid} outlived the gateway: {:?}",
        rtsp::proc_info(pid)
    );
}

#[test]
fn passwords_never_leak_into_logs_api_or_websocket_messages() {
    const USER: &str = "admin";
    const GOOD: &str = "G00d:S3cret@Pw/1";
    const WRONG: &str = "Wr0ng-S3cret-Pw";
    const IN_URL: &str = "Url-S3cret-Pw";
    let server = RtspServer::start(&["--username", USER, "--password", GOOD]);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("camgate.yaml");
    let url = server.url("/test");
    std::fs::write(
        &manifest,
        format!(
            r#"
streams:
  - id: good
    on_demand: false
    source:
      plugin: ffmpeg-mjpeg
      url: {url}
      username: {USER}
      password: ${{GOOD_PASSWORD}}
      fps: 5
      width: 320
  - id: wrong
    on_demand: false
    source:
      plugin: ffmpeg-mjpeg
      url: {url}
      username: {USER}
      password: {WRONG}
  - id: inurl
    on_demand: false
    source:
      plugin: ffmpeg-mjpeg
      url: rtsp://{USER}:{IN_URL}@127.0.0.1:{closed}/test
      connect_timeout: 1s
"#
        ),
    )
    .unwrap();
    let gateway = GatewayProcess::start(
        &manifest,
        "127.0.0.1:0",
        &[("CAMGATE_LOG", "debug"), ("GOOD_PASSWORD", GOOD)],
    );
    let addr = gateway.addr;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut texts = Vec::new();
    runtime.block_on(async {
        let mut good = connect(addr, "/ws/streams/good").await;
        let mut wrong = connect(addr, "/ws/streams/wrong").await;
        let mut inurl = connect(addr, "/ws/streams/inurl").await;
        let (good_seen, wrong_seen, inurl_seen) = tokio::join!(
            watch(&mut good, SECS(40), |seen| frames(seen).len() >= 3),
            watch(&mut wrong, SECS(40), |seen| {
                states(seen)
                    .iter()
                    .filter(|(_, s, _)| *s == "retrying")
                    .count()
                    >= 2
            }),
            watch(&mut inurl, SECS(40), |seen| {
                states(seen)
                    .iter()
                    .filter(|(_, s, _)| *s == "retrying")
                    .count()
                    >= 2
            }),
        );
        assert!(frames(&good_seen).len() >= 3, "{good_seen:?}");
        let wrong_states = states(&wrong_seen);
        assert!(
            wrong_states.iter().any(|(_, s, m)| *s == "retrying"
                && m.contains("authentication failed (401 Unauthorized)")),
            "{wrong_states:?}"
        );
        let inurl_states = states(&inurl_seen);
        assert!(
            inurl_states
                .iter()
                .any(|(_, s, m)| *s == "retrying" && m.contains("connection refused")),
            "{inurl_states:?}"
        );
        for seen in [&good_seen, &wrong_seen, &inurl_seen] {
            for (_, item) in seen.iter() {
                match item {
                    Seen::State(state, message) => texts.push(format!("{state} {message}")),
                    Seen::Other(value) => texts.push(value.to_string()),
                    Seen::Frame(_) => {}
                }
            }
        }
        texts.push(http_get(addr, "/api/streams", &[]).await.1);
        for id in ["good", "wrong", "inurl"] {
            texts.push(http_get(addr, &format!("/api/streams/{id}"), &[]).await.1);
        }
        texts.push(http_get(addr, "/api/config", &[]).await.1);
        // ffmpeg inherits only what it needs: not the variable the password came from.
        let ffmpegs: Vec<_> = rtsp::processes()
            .into_iter()
            .filter(|p| p.ppid == gateway.pid() && p.comm == "ffmpeg")
            .collect();
        assert!(!ffmpegs.is_empty(), "no ffmpeg running");
        for ffmpeg in ffmpegs {
            let environ = std::fs::read(format!("/proc/{}/environ", ffmpeg.pid)).unwrap();
            let environ = String::from_utf8_lossy(&environ).replace('\0', "\n");
            for absent in ["GOOD_PASSWORD=", GOOD, "CAMGATE_LOG="] {
                assert!(
                    !environ.contains(absent),
                    "`{absent}` in ffmpeg's environment"
                );
            }
            assert!(environ.lines().any(|l| l.starts_with("PATH=")), "{environ}");
        }
    });
    // Let the last log lines arrive, then look everywhere.
    std::thread::sleep(Duration::from_millis(300));
    let logs = gateway.logs();
    assert!(
        logs.contains("401"),
        "the 401 was not logged at all:\n{logs}"
    );
    let encoded_good = "G00d%3AS3cret%40Pw%2F1";
    for secret in [GOOD, WRONG, IN_URL, encoded_good] {
        assert!(
            !logs.contains(secret),
            "`{secret}` leaked into the logs:\n{logs}"
        );
        for text in &texts {
            assert!(!text.contains(secret), "`{secret}` leaked: {text}");
        }
    }
    drop(gateway);
}

/// Serves `files` (path → body) over HTTP/1.1 on 127.0.0.1 (`*.mjpg` as a multipart MJPEG
/// camera), plus `/redirect`, which answers 302 to `redirect_to`. One request per
/// connection.
async fn serve_http(
    files: Vec<(&'static str, Vec<u8>)>,
    redirect_to: String,
) -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let files = Arc::new(files);
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let files = Arc::clone(&files);
            let redirect_to = redirect_to.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = if path == "/redirect" {
                    format!("HTTP/1.1 302 Found\r\nLocation: {redirect_to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()
                } else if let Some((_, body)) = files.iter().find(|(p, _)| *p == path) {
                    let kind = if path.ends_with(".mjpg") {
                        "multipart/x-mixed-replace;boundary=ffmpeg"
                    } else {
                        "application/octet-stream"
                    };
                    let mut response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    response.extend_from_slice(body);
                    response
                } else {
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_vec()
                };
                let _ = socket.write_all(&response).await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_camera_works_but_nothing_behind_its_url_may_open_a_local_file() {
    // A short MPEG-TS clip, served over HTTP (a camera), and also referenced as a
    // local file by an HLS playlist and a redirect, both served over HTTP.
    let dir = tempfile::tempdir().unwrap();
    // Three seconds of test pattern in `codec`, muxed as `format` into `name`.
    let encode = |codec: &str, format: &str, name: &str| {
        let path = dir.path().join(name);
        let made = Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
            ])
            .args([
                "-i",
                "testsrc=size=160x120:rate=10",
                "-t",
                "3",
                "-c:v",
                codec,
            ])
            .args(["-f", format, "-y"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        path
    };
    let clip = encode("mpeg2video", "mpegts", "clip.ts");
    // And what an HTTP MJPEG camera sends: multipart JPEGs.
    let mjpeg = encode("mjpeg", "mpjpeg", "cam.mjpg");
    let file_url = format!("file://{}", clip.display());
    let playlist = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXTINF:3.0,\n{file_url}\n#EXT-X-ENDLIST\n"
    );
    let (port, server) = serve_http(
        vec![
            ("/clip.ts", std::fs::read(&clip).unwrap()),
            ("/cam.mjpg", std::fs::read(&mjpeg).unwrap()),
            ("/live.m3u8", playlist.into_bytes()),
        ],
        file_url,
    )
    .await;
    let gateway = start(&format!(
        r#"
streams:
  - id: camera
    on_demand: false
    source: {{ plugin: ffmpeg-mjpeg, url: "http://127.0.0.1:{port}/clip.ts", connect_timeout: 2s }}
  - id: mjpeg
    on_demand: false
    source: {{ plugin: ffmpeg-mjpeg, url: "http://127.0.0.1:{port}/cam.mjpg", connect_timeout: 2s }}
  - id: playlist
    on_demand: false
    source: {{ plugin: ffmpeg-mjpeg, url: "http://127.0.0.1:{port}/live.m3u8", connect_timeout: 2s }}
  - id: redirect
    on_demand: false
    source: {{ plugin: ffmpeg-mjpeg, url: "http://127.0.0.1:{port}/redirect", connect_timeout: 2s }}
"#
    ))
    .await;
    let registry = Arc::clone(&gateway.state().registry);
    let camera = registry.get("camera").unwrap();
    eventually(SECS(30), "frames from the HTTP camera", || {
        camera.frames_in() > 0
    })
    .await;
    let mjpeg = registry.get("mjpeg").unwrap();
    eventually(SECS(30), "frames from the HTTP MJPEG camera", || {
        mjpeg.frames_in() > 0
    })
    .await;
    let retried = |id: &str| {
        let hub = registry.get(id).unwrap();
        move || hub.status().state == StreamState::Retrying
    };
    eventually(SECS(30), "playlist retrying", retried("playlist")).await;
    eventually(SECS(30), "redirect retrying", retried("redirect")).await;
    for id in ["playlist", "redirect"] {
        let hub = registry.get(id).unwrap();
        assert_eq!(
            hub.frames_in(),
            0,
            "{id}: a local file was read: {:?}",
            hub.status()
        );
    }
    server.abort();
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ffmpeg_fails_with_a_message_naming_the_option() {
    let gateway = start(
        r#"
streams:
  - id: cam
    source:
      plugin: ffmpeg-mjpeg
      url: rtsp://127.0.0.1:9/test
      ffmpeg_path: /nonexistent/ffmpeg
"#,
    )
    .await;
    let mut ws = connect(gateway.local_addr(), "/ws/streams/cam").await;
    let seen = watch(&mut ws, SECS(10), |seen| {
        states(seen).iter().any(|(_, s, _)| *s == "failed")
    })
    .await;
    let (_, _, message) = states(&seen)
        .into_iter()
        .find(|(_, s, _)| *s == "failed")
        .unwrap_or_else(|| panic!("never failed: {seen:?}"));
    assert!(
        message.contains("ffmpeg not found: looked for `/nonexistent/ffmpeg`")
            && message.contains("install ffmpeg or set source.ffmpeg_path"),
        "{message}"
    );
    drop(ws);
    gateway.shutdown().await;
}

#[test]
fn helpers_parse_what_they_should() {
    assert_eq!(
        retry_plan("connection refused; retrying in 1.2s (attempt 3)"),
        Some((1.2, 3))
    );
    assert!(has_subsequence(
        &[
            "connecting",
            "live",
            "live",
            "retrying",
            "connecting",
            "live"
        ],
        &["live", "retrying", "live"]
    ));
    assert!(!has_subsequence(
        &["live", "retrying"],
        &["live", "retrying", "live"]
    ));
}
