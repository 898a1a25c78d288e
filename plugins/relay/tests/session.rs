//! One relay connection against a scripted upstream (a real WebSocket server on
//! 127.0.0.1:0 that sends what the test says): the upgrade request, the stall watchdog
//! while the upstream is live, and none while it is not.
//!
//! Timing: real sockets on the wall clock. Assertions bound how long something may take
//! generously and never depend on the machine being fast.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate_plugin_api::SourceState;
use camgate_plugin_api::testing::TestHost;
use camgate_plugin_common::run::RunStats;
use camgate_relay::session::{self, RunEnd, RunError};
use camgate_relay::{RelayConfig, Settings};
use futures_util::SinkExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// What the upstream saw of the upgrade: path and query, `Authorization`.
type Seen = Arc<Mutex<Option<(String, Option<String>)>>>;

/// An upstream that accepts one viewer, sends `messages`, then stays silent (and open).
async fn upstream(messages: Vec<&'static str>) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        #[allow(clippy::result_large_err, reason = "tungstenite's callback signature")]
        let callback = |request: &Request, response: Response| {
            let auth = request
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            *record.lock().unwrap() = Some((request.uri().to_string(), auth));
            Ok(response)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
            .await
            .unwrap();
        for message in messages {
            ws.send(Message::text(message)).await.unwrap();
        }
        // Hold the connection without a word until the relay drops it.
        std::future::pending::<()>().await;
        drop(ws);
    });
    (port, seen)
}

fn settings(port: u16, token: Option<&str>) -> Settings {
    let config: RelayConfig = serde_json::from_value(serde_json::json!({
        "url": format!("ws://127.0.0.1:{port}/ws/streams/cam?variant=sub"),
        "token": token,
        "stall_timeout": "500ms",
    }))
    .unwrap();
    Settings::from_config(&config).unwrap()
}

#[tokio::test]
async fn a_live_upstream_that_sends_no_frame_is_a_stall_and_the_upgrade_carries_the_token() {
    let (port, seen) = upstream(vec![r#"{"type":"hello","state":"live","message":""}"#]).await;
    let test = TestHost::new();
    let host = test.host();
    let mut stats = RunStats::new();
    let end = tokio::time::timeout(
        Duration::from_secs(20),
        session::run(&settings(port, Some("t0ken")), &host, &mut stats),
    )
    .await
    .expect("the watchdog ends the run");
    assert_eq!(end, RunEnd::Failed(RunError::Stalled("500ms".to_owned())));
    assert_eq!(
        end_text(&end),
        "no frame for 500ms (stream stalled)",
        "worded for the `stalled` cause"
    );
    let (path, auth) = seen
        .lock()
        .unwrap()
        .clone()
        .expect("the upstream saw the upgrade");
    assert_eq!(path, "/ws/streams/cam?format=auto&variant=sub");
    assert_eq!(auth.as_deref(), Some("Bearer t0ken"));
}

#[tokio::test]
async fn an_upstream_that_is_retrying_is_shown_and_not_taken_for_a_stall() {
    let (port, seen) = upstream(vec![
        r#"{"type":"hello","state":"retrying","message":"connection refused; retrying in 4.0s (attempt 3)","cause":"unreachable"}"#,
    ])
    .await;
    let test = TestHost::new();
    let host = test.host();
    let mut stats = RunStats::new();
    // Three stall timeouts without a frame: still connected, showing the upstream's state.
    let outcome = tokio::time::timeout(
        Duration::from_millis(1_500),
        session::run(&settings(port, None), &host, &mut stats),
    )
    .await;
    assert!(outcome.is_err(), "the run ended: {outcome:?}");
    assert_eq!(
        test.states(),
        [(
            SourceState::Retrying,
            "upstream: connection refused; retrying in 4.0s (attempt 3)".to_owned()
        )]
    );
    let (_, auth) = seen.lock().unwrap().clone().unwrap();
    assert_eq!(auth, None, "no token, no header");
}

#[tokio::test]
async fn nothing_listening_is_connection_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let test = TestHost::new();
    let host = test.host();
    let end = session::run(&settings(port, None), &host, &mut RunStats::new()).await;
    assert_eq!(end, RunEnd::Failed(RunError::Refused));
}

fn end_text(end: &RunEnd) -> String {
    match end {
        RunEnd::Failed(error) => error.to_string(),
        RunEnd::Closed => "closed".to_owned(),
    }
}
