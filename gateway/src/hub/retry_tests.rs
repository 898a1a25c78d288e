//! "Retry now" ([`Hub::retry_now`]) on tokio's paused clock: a source waiting out a long
//! backoff is replaced at once by a fresh one (a new generation; the old sink is refused),
//! viewers stay attached and see `connecting` (no `stopped` in between), the start is
//! counted as `manual`, and there is nothing to retry on an idle on-demand stream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::telemetry::Metrics;

/// Records every start (its time and sink); the first `fail_first` starts fail.
#[derive(Default)]
struct Recording {
    starts: Mutex<Vec<(Instant, FrameSink)>>,
    fail_first: AtomicUsize,
}

struct Idle;
impl RunningSource for Idle {
    fn stop(self: Box<Self>) {}
}

impl SourceFactory for Recording {
    fn start(&self, sink: FrameSink) -> Result<Box<dyn RunningSource>, String> {
        self.starts.lock().unwrap().push((Instant::now(), sink));
        let failing = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            Err("cannot open the device".into())
        } else {
            Ok(Box::new(Idle))
        }
    }
    fn describe(&self) -> String {
        "recording".into()
    }
}

impl Recording {
    fn count(&self) -> usize {
        self.starts.lock().unwrap().len()
    }
    fn sink(&self, n: usize) -> FrameSink {
        self.starts.lock().unwrap()[n].1.clone()
    }
    fn started_at(&self, n: usize) -> Instant {
        self.starts.lock().unwrap()[n].0
    }
}

fn info(on_demand: bool) -> StreamInfo {
    StreamInfo {
        name: "Test".into(),
        on_demand,
        idle_timeout: Duration::from_secs(10),
        fps: None,
        health: HealthRules::default(),
    }
}

fn manual_starts(metrics: &Metrics) -> f64 {
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with("camgate_source_starts_total{") && l.contains("reason=\"manual\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("the manual series exists from the start")
}

const JPEG: &[u8] = &[0xFF, 0xD8, 0x00, 0xFF, 0xD9];
const BACKOFF: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn retry_now_replaces_a_source_waiting_out_its_backoff_at_once() {
    let metrics = Metrics::new();
    let factory = Arc::new(Recording::default());
    let hub = Hub::new("a", info(false), factory.clone(), metrics.stream("a"));
    assert_eq!(manual_starts(&metrics), 0.0);
    hub.activate().await;
    let old = factory.sink(0);
    // The plugin failed and waits an hour before its next attempt.
    old.set_state(
        StreamState::Retrying,
        &camgate_ffmpeg_mjpeg::retry::retrying_message("connection refused", BACKOFF, 4),
    );
    assert_eq!(hub.status().cause(), Some(OutageCause::Unreachable));
    let mut viewer = hub.subscribe().await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    let asked = Instant::now();
    assert_eq!(hub.retry_now().await, Ok(StreamState::Connecting));
    assert_eq!(factory.count(), 2, "a fresh source started");
    assert!(
        factory.started_at(1) - asked < BACKOFF / 1000,
        "the new start did not wait for the backoff"
    );
    assert_eq!(manual_starts(&metrics), 1.0);

    // The viewer stayed attached and sees `connecting` (no `stopped`), without a cause.
    let event = viewer.status_events.recv().await.unwrap();
    assert_eq!(event.state, StreamState::Connecting);
    assert_eq!(event.cause(), None);
    assert!(viewer.closing.borrow().is_none());
    assert_eq!(hub.viewer_count(), 1);

    // The old source is cut off; the new one goes live for the same viewer.
    assert!(
        !old.publish(JPEG, 2, 2, 0),
        "the replaced source is refused"
    );
    old.set_state(StreamState::Retrying, "connection refused");
    assert_eq!(hub.status().state, StreamState::Connecting);
    assert!(factory.sink(1).publish(JPEG, 2, 2, 0));
    assert_eq!(hub.status().state, StreamState::Live);
    assert_eq!(
        viewer.status_events.recv().await.unwrap().state,
        StreamState::Live
    );

    // A live source can be restarted too.
    assert_eq!(hub.retry_now().await, Ok(StreamState::Connecting));
    assert_eq!(factory.count(), 3);
    assert_eq!(manual_starts(&metrics), 2.0);
}

#[tokio::test(start_paused = true)]
async fn nothing_to_retry_on_an_idle_on_demand_stream_or_a_closed_one() {
    let metrics = Metrics::new();
    let factory = Arc::new(Recording::default());
    let hub = Hub::new("a", info(true), factory.clone(), metrics.stream("a"));
    assert_eq!(hub.retry_now().await, Err(NotRunning));
    assert_eq!(
        factory.count(),
        0,
        "retry does not start an unwatched stream"
    );

    let viewer = hub.subscribe().await;
    assert_eq!(hub.retry_now().await, Ok(StreamState::Connecting));
    assert_eq!(factory.count(), 2);
    drop(viewer);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(hub.reap_if_idle().await);
    assert_eq!(hub.retry_now().await, Err(NotRunning));

    hub.close(Closing::Removed).await;
    assert_eq!(hub.retry_now().await, Err(NotRunning));
    assert_eq!(factory.count(), 2);
    assert_eq!(manual_starts(&metrics), 1.0);
}

#[tokio::test(start_paused = true)]
async fn a_source_that_failed_to_start_is_retried() {
    let factory = Arc::new(Recording::default());
    factory.fail_first.store(1, Ordering::SeqCst);
    let hub = Hub::new(
        "a",
        info(false),
        factory.clone(),
        Metrics::new().stream("a"),
    );
    hub.activate().await;
    assert_eq!(hub.status().state, StreamState::Failed);
    assert_eq!(hub.status().cause(), Some(OutageCause::Error));
    assert_eq!(hub.retry_now().await, Ok(StreamState::Connecting));
    assert_eq!(factory.count(), 2);
    assert!(factory.sink(1).publish(JPEG, 2, 2, 0));
    assert_eq!(hub.status().state, StreamState::Live);
}
