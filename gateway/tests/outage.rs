//! The outage headline and "Retry now", end to end over real HTTP and WebSockets:
//! - the built-in `rtsp` plugin against the real demo RTSP camera (GStreamer) — a wrong
//!   password (401), a path that does not exist (404), a port nothing listens on — gives
//!   `cause` `auth_failed`, `not_found`, `unreachable` in `GET /api/streams[/{id}]`, in the
//!   WebSocket `hello` and in its `state` messages; the `ffmpeg-mjpeg` plugin (real
//!   ffmpeg) gives the same causes for the same 401 and 404;
//! - `POST /api/streams/{id}/retry`: the access matrix, 202/409/404, the restart counted as
//!   a `manual` start, and a viewer's socket that stays open through it (connecting →
//!   live, frames again).
//!
//! Every server a test starts is owned by a guard that kills and reaps it on drop; only
//! 127.0.0.1 is bound. Timing bounds are generous, never speed targets.

mod support;

use std::time::Duration;

use support::rtsp::RtspServer;
use support::*;

const SECS: fn(u64) -> Duration = Duration::from_secs;

const ADMIN: &str = "admin-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789";
const METRICS: &str = "metrics-token-0123456789";

fn write_manifest(content: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("camgate.yaml");
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Reads WebSocket events until a `state` message (skipping `health` and others).
async fn next_state(ws: &mut Client) -> serde_json::Value {
    loop {
        let event = next_event(ws, SECS(20)).await;
        if event["type"] == "state" {
            return event;
        }
    }
}

/// Reads `state` messages until one that is not `connecting` (those have no cause) and
/// checks it is `retrying`.
async fn until_outage(ws: &mut Client) -> serde_json::Value {
    loop {
        let state = next_state(ws).await;
        if state["state"] != "connecting" {
            assert_eq!(state["state"], "retrying", "{state}");
            return state;
        }
        assert!(state["cause"].is_null(), "{state}");
    }
}

/// Polls `GET /api/streams/{id}` until its state is `state`; returns the stream.
async fn stream_in_state(addr: std::net::SocketAddr, id: &str, state: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + SECS(20);
    loop {
        let (status, stream) =
            http_json(addr, "GET", &format!("/api/streams/{id}"), &[], None).await;
        assert_eq!(status, 200, "{stream}");
        if stream["state"] == state {
            return stream;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never became {state}: {stream}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_causes_of_both_camera_plugins_reach_the_api_and_the_state_messages() {
    let server = RtspServer::start(&["--username", "admin", "--password", "right-pw"]);
    let port = server.port();
    let unreachable = free_port();
    let (_dir, path) = write_manifest(&format!(
        r#"
streams:
  - id: auth
    on_demand: false
    source: {{ plugin: rtsp, url: "rtsp://admin:wrong-pw@127.0.0.1:{port}/test" }}
  - id: nowhere
    on_demand: false
    source: {{ plugin: rtsp, url: "rtsp://127.0.0.1:{unreachable}/test" }}
  - id: missing
    source: {{ plugin: rtsp, url: "rtsp://admin:right-pw@127.0.0.1:{port}/nope" }}
  - id: ff-auth
    on_demand: false
    source: {{ plugin: ffmpeg-mjpeg, url: "rtsp://admin:wrong-pw@127.0.0.1:{port}/test" }}
  - id: ff-missing
    on_demand: false
    source: {{ plugin: ffmpeg-mjpeg, url: "rtsp://admin:right-pw@127.0.0.1:{port}/nope" }}
"#
    ));
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();

    // The always-on streams fail at once; the API names the cause.
    let auth = stream_in_state(addr, "auth", "retrying").await;
    assert_eq!(auth["cause"], "auth_failed", "{auth}");
    let nowhere = stream_in_state(addr, "nowhere", "retrying").await;
    assert_eq!(nowhere["cause"], "unreachable", "{nowhere}");
    // The ffmpeg-mjpeg plugin words the same failures the same way.
    let ff_auth = stream_in_state(addr, "ff-auth", "retrying").await;
    assert_eq!(ff_auth["cause"], "auth_failed", "{ff_auth}");
    let ff_missing = stream_in_state(addr, "ff-missing", "retrying").await;
    assert_eq!(ff_missing["cause"], "not_found", "{ff_missing}");
    // An idle on-demand stream has no cause (it is not down, it is stopped).
    let (_, missing) = http_json(addr, "GET", "/api/streams/missing", &[], None).await;
    assert_eq!(missing["state"], "stopped");
    assert!(missing["cause"].is_null(), "{missing}");
    let (status, list) = http_json(addr, "GET", "/api/streams", &[], None).await;
    assert_eq!(status, 200);
    let causes: Vec<(&str, &serde_json::Value)> = list["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), &s["cause"]))
        .collect();
    assert_eq!(
        causes,
        [
            ("auth", &serde_json::json!("auth_failed")),
            ("nowhere", &serde_json::json!("unreachable")),
            ("missing", &serde_json::Value::Null),
            ("ff-auth", &serde_json::json!("auth_failed")),
            ("ff-missing", &serde_json::json!("not_found")),
        ]
    );
    for text in [auth.to_string(), ff_auth.to_string(), list.to_string()] {
        assert!(!text.contains("wrong-pw"), "{text}");
    }

    // A viewer of a failing stream is told the cause in its hello.
    let mut ws = connect(addr, "/ws/streams/auth").await;
    let hello = next_hello(&mut ws, SECS(10)).await;
    assert_eq!(hello["state"], "retrying", "{hello}");
    assert_eq!(hello["cause"], "auth_failed", "{hello}");

    // The first viewer starts the on-demand stream: connecting (no cause), then the
    // outage with its cause, in a `state` message (or already in the hello, if the
    // camera answered 404 before it was written).
    let mut ws = connect(addr, "/ws/streams/missing").await;
    let hello = next_hello(&mut ws, SECS(10)).await;
    let outage = if hello["state"] == "retrying" {
        hello
    } else {
        assert!(hello["cause"].is_null(), "{hello}");
        until_outage(&mut ws).await
    };
    assert_eq!(outage["cause"], "not_found", "{outage}");

    // Retry now: a new attempt at once; the viewer stays and sees the outage again.
    let (status, body) = http_json(addr, "POST", "/api/streams/missing/retry", &[], None).await;
    assert_eq!(status, 202, "{body}");
    let outage = until_outage(&mut ws).await;
    assert_eq!(outage["cause"], "not_found", "{outage}");
    let scrape = Scrape::of(addr, &[]).await;
    assert_eq!(
        scrape.value(r#"camgate_source_starts_total{reason="manual",stream="missing"}"#),
        1.0
    );
    assert_eq!(
        scrape.value(r#"camgate_source_starts_total{reason="manual",stream="auth"}"#),
        0.0
    );
    drop(ws);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_now_is_for_admins_restarts_a_running_source_and_keeps_its_viewers() {
    let (_dir, path) = write_manifest(&format!(
        r#"
auth:
  tokens:
    - role: admin
      token: {ADMIN}
    - role: viewer
      token: {VIEWER}
    - role: metrics
      token: {METRICS}
streams:
  - id: always
    on_demand: false
    source: {{ plugin: testsrc, width: 160, height: 90, fps: 10 }}
  - id: idle
    source: {{ plugin: testsrc, width: 160, height: 90, fps: 10 }}
"#
    ));
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let bearer = |token: &str| format!("Bearer {token}");
    let retry = |path: &'static str, credential: Option<String>| async move {
        let headers: Vec<(&str, &str)> = credential
            .as_deref()
            .map(|c| vec![("Authorization", c)])
            .unwrap_or_default();
        http_json(addr, "POST", path, &headers, None).await
    };

    // Only admins.
    for (credential, expected) in [
        (None, 401),
        (Some(bearer(VIEWER)), 403),
        (Some(bearer(METRICS)), 403),
    ] {
        let (status, body) = retry("/api/streams/always/retry", credential).await;
        assert_eq!(status, expected, "{body}");
    }
    // Unknown stream; an idle on-demand stream has nothing to retry.
    let (status, body) = retry("/api/streams/ghost/retry", Some(bearer(ADMIN))).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &serde_json::json!("stream_not_found"))
    );
    let (status, body) = retry("/api/streams/idle/retry", Some(bearer(ADMIN))).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_running");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("starts when someone watches"),
        "{body}"
    );
    let (status, idle) = http_json(
        addr,
        "GET",
        "/api/streams/idle",
        &[("Authorization", &bearer(ADMIN))],
        None,
    )
    .await;
    assert_eq!(
        (status, &idle["state"]),
        (200, &serde_json::json!("stopped"))
    );

    // A viewer of a live stream stays connected through the restart and gets frames again.
    let mut ws = connect(addr, &format!("/ws/streams/always?access_token={VIEWER}")).await;
    let hello = next_hello(&mut ws, SECS(10)).await;
    assert_eq!(hello["stream"], "always");
    let before = next_frame(&mut ws, SECS(10)).await;
    let (status, body) = retry("/api/streams/always/retry", Some(bearer(ADMIN))).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        ["connecting", "live"].contains(&body["state"].as_str().unwrap()),
        "{body}"
    );
    // connecting (from the hub, then perhaps the plugin's own), then live: never stopped.
    assert_eq!(next_state(&mut ws).await["state"], "connecting");
    loop {
        let state = next_state(&mut ws).await;
        if state["state"] == "live" {
            break;
        }
        assert_eq!(state["state"], "connecting", "{state}");
    }
    let after = next_frame(&mut ws, SECS(10)).await;
    assert!(after.seq > before.seq, "{} then {}", before.seq, after.seq);
    let scrape = Scrape::of(addr, &[("Authorization", &bearer(METRICS))]).await;
    assert_eq!(
        scrape.value(r#"camgate_source_starts_total{reason="manual",stream="always"}"#),
        1.0
    );
    drop(ws);
    gateway.shutdown().await;
}
