//! Criterion micro-benchmarks of the frame path: what publishing costs the source's thread
//! with N viewers, the hub's fan-out (one publication read by N viewer tasks woken through
//! the watch, and offered to N direct lanes by the fan-out task) and the ffmpeg plugin's
//! JPEG splitter. Run: `cargo bench -p camgate --bench fanout`.
//!
//! Frames are real 1280x720 test-pattern JPEGs (`camgate_testsrc::PatternRenderer`), so
//! the hub's one copy per publication costs what it costs in production.

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use camgate::hub::{
    DirectViewer, Frame, FrameSink, Hub, RunningSource, SourceFactory, StreamInfo, Viewer,
};
use camgate_ffmpeg_mjpeg::splitter::{DEFAULT_MAX_FRAME, JpegSplitter};
use camgate_testsrc::PatternRenderer;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::sync::Notify;

/// A source that publishes nothing itself: it hands its sink to the benchmark.
#[derive(Default)]
struct SinkCatcher(Mutex<Option<FrameSink>>);

struct Idle;

impl RunningSource for Idle {
    fn stop(self: Box<Self>) {}
}

impl SourceFactory for SinkCatcher {
    fn start(&self, sink: FrameSink) -> Result<Box<dyn RunningSource>, String> {
        *self.0.lock().unwrap() = Some(sink);
        Ok(Box::new(Idle))
    }
    fn describe(&self) -> String {
        "bench".into()
    }
}

fn jpeg_720p() -> Vec<u8> {
    PatternRenderer::new(1280, 720, 95).render(1, SystemTime::now())
}

/// An always-on hub with `viewers` subscribers and the sink to publish into it.
fn hub_with_viewers(
    rt: &tokio::runtime::Runtime,
    viewers: usize,
) -> (Arc<Hub>, FrameSink, Vec<Viewer>) {
    let factory = Arc::new(SinkCatcher::default());
    let info = StreamInfo {
        name: "bench".into(),
        on_demand: false,
        idle_timeout: Duration::from_secs(30),
        fps: Some(10.0),
        health: camgate::hub::HealthRules::default(),
    };
    let telemetry = camgate::telemetry::Metrics::new().stream("bench");
    let hub = Hub::new("bench", info, factory.clone(), telemetry);
    let subscribed = rt.block_on(async {
        hub.activate().await;
        let mut subscribed = Vec::with_capacity(viewers);
        for _ in 0..viewers {
            subscribed.push(hub.subscribe().await);
        }
        subscribed
    });
    let sink = factory.0.lock().unwrap().clone().expect("source started");
    (hub, sink, subscribed)
}

/// What a source's thread pays per frame (`FrameSink::publish`, i.e. the plugin's
/// `on_frame`) with N viewers subscribed and N direct lanes attached: the hub's copy + tag,
/// numbering, metrics and one wake-up of the fan-out task. It must not grow with N.
fn publish_cost(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let jpeg = jpeg_720p();
    let mut group = c.benchmark_group("hub_publish_cost");
    for viewers in [1usize, 100, 1000] {
        let (hub, sink, _subscribed) = hub_with_viewers(&rt, viewers);
        let _attached: Vec<_> = (0..viewers)
            .map(|_| hub.attach_direct(Arc::new(NullLane::default())))
            .collect();
        group.bench_with_input(BenchmarkId::from_parameter(viewers), &viewers, |b, _| {
            b.iter(|| assert!(sink.publish(&jpeg, 1280, 720, 0)));
        });
    }
    group.finish();
}

/// Publish one frame and wait until N viewer tasks on a 2-worker runtime have woken and
/// taken it: adds the `watch` wake-ups and task scheduling to the above.
fn publish_wake_tasks(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let jpeg = jpeg_720p();
    let mut group = c.benchmark_group("hub_publish_wake_tasks");
    group.sample_size(30);
    for viewers in [1usize, 100, 500, 1000] {
        let (_hub, sink, subscribed) = hub_with_viewers(&rt, viewers);
        let seen = Arc::new(AtomicUsize::new(0));
        let all_seen = Arc::new(Notify::new());
        let tasks: Vec<_> = subscribed
            .into_iter()
            .map(|mut viewer| {
                let (seen, all_seen) = (Arc::clone(&seen), Arc::clone(&all_seen));
                rt.spawn(async move {
                    while viewer.frames.changed().await.is_ok() {
                        let frame = viewer.frames.borrow_and_update().clone();
                        std::hint::black_box(frame);
                        if seen.fetch_add(1, Ordering::AcqRel) + 1 == viewers {
                            all_seen.notify_one();
                        }
                    }
                })
            })
            .collect();
        group.throughput(Throughput::Elements(viewers as u64));
        group.bench_with_input(BenchmarkId::from_parameter(viewers), &viewers, |b, _| {
            b.iter(|| {
                seen.store(0, Ordering::Release);
                assert!(sink.publish(&jpeg, 1280, 720, 0));
                rt.block_on(all_seen.notified());
            });
        });
        for task in tasks {
            task.abort();
        }
    }
    group.finish();
}

/// A direct viewer that does what a lane does short of the system call: take its lock,
/// check the sequence number, record it; the last lane of a pass says so.
#[derive(Default)]
struct NullLane {
    last: Mutex<u64>,
    done: Option<Arc<PassDone>>,
}

/// Counts lanes that took the current frame and wakes the benchmark when all did.
#[derive(Default)]
struct PassDone {
    lanes: AtomicUsize,
    expected: AtomicUsize,
    all: Notify,
}

impl DirectViewer for NullLane {
    fn offer(&self, frame: &Frame) {
        let mut last = self.last.lock().unwrap();
        if frame.seq > *last {
            *last = std::hint::black_box(frame.seq);
            if let Some(done) = &self.done
                && done.lanes.fetch_add(1, Ordering::AcqRel) + 1
                    == done.expected.load(Ordering::Acquire)
            {
                done.all.notify_one();
            }
        }
    }
}

/// Publish one frame and wait until the hub's fan-out task has offered it to N direct
/// lanes (no sockets): the pass's own cost, including its split over the cores from 256
/// lanes on (one task per extra core per frame) and the wake-up of the fan-out task.
fn publish_direct(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let jpeg = jpeg_720p();
    let mut group = c.benchmark_group("hub_publish_direct");
    for lanes in [1usize, 100, 500, 1000] {
        let (hub, sink, _none) = hub_with_viewers(&rt, 0);
        let done = Arc::new(PassDone::default());
        done.expected.store(lanes, Ordering::Release);
        let _attached: Vec<_> = (0..lanes)
            .map(|_| {
                hub.attach_direct(Arc::new(NullLane {
                    done: Some(Arc::clone(&done)),
                    ..NullLane::default()
                }))
            })
            .collect();
        // The first publication turns the stream live and is not offered.
        assert!(sink.publish(&jpeg, 1280, 720, 0));
        group.throughput(Throughput::Elements(lanes as u64));
        group.bench_with_input(BenchmarkId::from_parameter(lanes), &lanes, |b, _| {
            b.iter(|| {
                done.lanes.store(0, Ordering::Release);
                assert!(sink.publish(&jpeg, 1280, 720, 0));
                rt.block_on(done.all.notified());
            });
        });
    }
    group.finish();
}

/// The ffmpeg plugin's splitter over a stream of 720p JPEGs fed in 64 KiB reads (the pipe
/// read size), in bytes per second.
fn splitter(c: &mut Criterion) {
    let mut renderer = PatternRenderer::new(1280, 720, 95);
    let stream: Vec<u8> = (0..10)
        .flat_map(|i| renderer.render(i, SystemTime::now()))
        .collect();
    let mut group = c.benchmark_group("jpeg_splitter");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("720p_x10_64KiB_reads", |b| {
        b.iter(|| {
            let mut splitter = JpegSplitter::new(DEFAULT_MAX_FRAME);
            let mut frames = 0;
            for chunk in stream.chunks(64 * 1024) {
                splitter.push(chunk, |frame| {
                    std::hint::black_box(frame.jpeg);
                    frames += 1;
                });
            }
            assert_eq!(frames, 10);
        });
    });
    group.finish();
}

// `criterion_group!` generates an undocumented public function.
criterion_group!(
    benches,
    publish_cost,
    publish_wake_tasks,
    publish_direct,
    splitter
);
criterion_main!(benches);
