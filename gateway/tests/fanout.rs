//! The hub's fan-out runs on the gateway's threads, not on the source's: publishing is a
//! hand-off, several source threads may publish at once, and a viewer whose offer panics
//! never reaches the source.
//!
//! Sources here are threads of the test publishing through a real [`FrameSink`], as a
//! plugin's capture thread does through the ABI (`on_frame` returns what `publish` returns).

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use camgate::hub::{DirectViewer, Frame, Hub, SourceFactory, StreamInfo, read_tag};
use camgate::telemetry::Metrics;
use support::{ManualFactory, eventually};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A JPEG-shaped frame whose body says which publisher made it and its count there.
fn jpeg(publisher: u8, n: u32) -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8, publisher];
    jpeg.extend_from_slice(&n.to_be_bytes());
    jpeg.extend_from_slice(&[0xFF, 0xD9]);
    jpeg
}

/// An always-on hub whose source is the test, and its metrics.
async fn hub() -> (Arc<Hub>, Arc<ManualFactory>, Arc<Metrics>) {
    hub_with_fanout_on(None).await
}

/// [`hub`] whose fan-out runs on `fanout` (or the test's runtime).
async fn hub_with_fanout_on(
    fanout: Option<tokio::runtime::Handle>,
) -> (Arc<Hub>, Arc<ManualFactory>, Arc<Metrics>) {
    let metrics = Metrics::new();
    let factory = Arc::new(ManualFactory::default());
    let info = StreamInfo {
        name: "Fan-out".into(),
        on_demand: false,
        idle_timeout: SECS(30),
        fps: None,
        health: camgate::hub::HealthRules::default(),
    };
    let hub = Hub::with_fanout_on(
        "cam",
        info,
        Arc::clone(&factory) as Arc<dyn SourceFactory>,
        metrics.stream("cam"),
        fanout,
    );
    hub.activate().await;
    (hub, factory, metrics)
}

/// A direct viewer that records what it was offered and on which thread.
#[derive(Default)]
struct Recorder {
    seqs: Mutex<Vec<u64>>,
    threads: Mutex<HashSet<ThreadId>>,
}

impl DirectViewer for Recorder {
    fn offer(&self, frame: &Frame) {
        let tag = read_tag(&frame.data).expect("every frame carries its tag");
        assert_eq!(tag.seq, frame.seq, "the tag says the frame's number");
        self.seqs.lock().unwrap().push(frame.seq);
        self.threads
            .lock()
            .unwrap()
            .insert(std::thread::current().id());
    }
}

impl Recorder {
    fn last(&self) -> Option<u64> {
        self.seqs.lock().unwrap().last().copied()
    }
}

/// A direct viewer whose offer panics (a bug in a transport).
#[derive(Default)]
struct Panicker {
    offers: AtomicUsize,
    abandoned: AtomicBool,
}

impl DirectViewer for Panicker {
    fn offer(&self, _: &Frame) {
        self.offers.fetch_add(1, Ordering::SeqCst);
        panic!("a broken viewer path");
    }
    fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_number_frames_in_order_and_the_latest_wins() {
    const PUBLISHERS: u8 = 4;
    const FRAMES: u32 = 500;
    let (hub, factory, _metrics) = hub().await;
    let direct: Vec<Arc<Recorder>> = (0..3).map(|_| Arc::new(Recorder::default())).collect();
    let _attached: Vec<_> = direct
        .iter()
        .map(|d| hub.attach_direct(Arc::clone(d) as Arc<dyn DirectViewer>))
        .collect();
    // A viewer task that reads the watch, as a session with a closed lane does.
    let mut viewer = hub.subscribe().await;
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while viewer.frames.changed().await.is_ok() {
            let Some(frame) = viewer.frames.borrow_and_update().clone() else {
                continue;
            };
            seen.push(frame.seq);
            if frame.seq == u64::from(PUBLISHERS) * u64::from(FRAMES) {
                return seen;
            }
        }
        seen
    });

    let sink = factory.sink();
    std::thread::scope(|scope| {
        for publisher in 0..PUBLISHERS {
            let sink = sink.clone();
            scope.spawn(move || {
                for n in 0..FRAMES {
                    assert!(
                        sink.publish(&jpeg(publisher, n), 1, 1, 0),
                        "the sink is open"
                    );
                }
            });
        }
    });
    let total = u64::from(PUBLISHERS) * u64::from(FRAMES);
    assert_eq!(hub.frames_in(), total);
    assert_eq!(hub.latest_frame().map(|f| f.seq), Some(total));

    let seen = tokio::time::timeout(SECS(30), watcher)
        .await
        .expect("the watch reaches the last frame")
        .unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "the watch only moves forward"
    );
    eventually(SECS(30), "direct viewers get the last frame", || {
        direct.iter().all(|d| d.last() == Some(total))
    })
    .await;
    for viewer in &direct {
        let seqs = viewer.seqs.lock().unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "offers arrive in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_run_on_gateway_threads_and_a_panicking_viewer_never_reaches_the_source() {
    let (hub, factory, metrics) = hub().await;
    let healthy = Arc::new(Recorder::default());
    let broken = Arc::new(Panicker::default());
    let _healthy = hub.attach_direct(Arc::clone(&healthy) as Arc<dyn DirectViewer>);
    let _broken = hub.attach_direct(Arc::clone(&broken) as Arc<dyn DirectViewer>);
    assert_eq!(hub.direct_viewer_count(), 2);

    // The source is a thread of its own, like a plugin's capture thread; every frame after
    // the first (which turns the stream live) is offered directly.
    let sink = factory.sink();
    let publisher = std::thread::spawn(move || {
        let results: Vec<bool> = (0..50)
            .map(|n| sink.publish(&jpeg(0, n), 1, 1, 0))
            .collect();
        (std::thread::current().id(), results)
    });
    let (publisher_thread, results) = publisher.join().expect("the publisher never panics");
    assert!(
        results.iter().all(|ok| *ok),
        "the source sees every frame accepted"
    );

    eventually(SECS(30), "the healthy viewer gets the last frame", || {
        healthy.last() == Some(50)
    })
    .await;
    assert!(
        !healthy.threads.lock().unwrap().contains(&publisher_thread),
        "no offer ran on the source's thread"
    );
    // The broken viewer is told to end after the pass it panicked in (which may be the
    // pass that gave the healthy one frame 50, on a busy machine).
    eventually(SECS(30), "the broken viewer is told to end", || {
        broken.abandoned.load(Ordering::SeqCst)
    })
    .await;
    assert_eq!(
        broken.offers.load(Ordering::SeqCst),
        1,
        "detached after its panic"
    );
    assert_eq!(hub.direct_viewer_count(), 1);
    assert!(
        metrics
            .render()
            .contains("camgate_fanout_panics_total{stream=\"cam\"} 1"),
        "the panic is counted"
    );
    assert!(
        metrics
            .render()
            .contains("camgate_publish_seconds_count{stream=\"cam\"} 50"),
        "what each publication cost the source's thread is measured"
    );
    // The source goes on publishing as before.
    assert!(factory.sink().publish(&jpeg(0, 99), 1, 1, 0));
    eventually(SECS(30), "later frames still flow", || {
        healthy.last() == Some(51)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_racing_publishers_never_show_a_stopped_sources_frame() {
    // Publisher threads keep publishing through whichever source runs, while the test
    // restarts the source over and over (a reconfigure: stop, then start). Every frame
    // says which source published it. Once a restart has returned, neither the latest
    // frame nor a viewer's watch may hold a frame of an older source, and everything any
    // viewer sees moves forward only.
    const PUBLISHERS: u8 = 3;
    const RESTARTS: usize = 200;
    let (hub, factory, _metrics) = hub().await;
    let direct = Arc::new(Recorder::default());
    let _attached = hub.attach_direct(Arc::clone(&direct) as Arc<dyn DirectViewer>);
    let viewer = hub.subscribe().await;
    let source_of = |frame: &Frame| {
        let body = &frame.data[2 + camgate::hub::TAG_LEN..];
        u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize
    };
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|publisher| {
            let (factory, stop) = (Arc::clone(&factory), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let (source, sink) = factory.numbered_sink();
                    // A stopped source's sink refuses: that is expected here.
                    sink.publish(&jpeg(publisher, source as u32), 1, 1, 0);
                }
            })
        })
        .collect();
    let mut last_seen = 0;
    for _ in 0..RESTARTS {
        hub.reconfigure(hub.info(), Arc::clone(&factory) as Arc<dyn SourceFactory>)
            .await;
        let current = factory.numbered_sink().0;
        for frame in [hub.latest_frame(), viewer.frames.borrow().clone()]
            .into_iter()
            .flatten()
        {
            assert_eq!(source_of(&frame), current, "a stopped source's frame");
        }
        if let Some(frame) = viewer.frames.borrow().clone() {
            assert!(frame.seq >= last_seen, "the watch went back");
            last_seen = frame.seq;
        }
        tokio::task::yield_now().await;
    }
    // Frames flow to the direct viewer (after the last restart at the latest: how many
    // got through between restarts depends on how busy the machine is).
    eventually(SECS(30), "a frame reaches the direct viewer", || {
        !direct.seqs.lock().unwrap().is_empty()
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for publisher in publishers {
        publisher.join().expect("publishers never panic");
    }
    let seqs = direct.seqs.lock().unwrap();
    assert!(!seqs.is_empty(), "frames flow to the direct viewer");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "direct offers move forward"
    );
}

#[test]
fn with_a_fanout_runtime_of_its_own_offers_run_on_its_threads() {
    let io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pool = camgate::scheduling::fanout_runtime(2).unwrap();
    let names = Arc::new(Mutex::new(HashSet::new()));

    /// Records the name of the thread each offer runs on.
    struct Named(Arc<Mutex<HashSet<String>>>, Arc<Recorder>);
    impl DirectViewer for Named {
        fn offer(&self, frame: &Frame) {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            self.0.lock().unwrap().insert(name);
            self.1.offer(frame);
        }
    }

    let recorder = Arc::new(Recorder::default());
    io.block_on(async {
        let (hub, factory, _metrics) = hub_with_fanout_on(Some(pool.handle().clone())).await;
        let _attached =
            hub.attach_direct(Arc::new(Named(Arc::clone(&names), Arc::clone(&recorder))));
        let mut viewer = hub.subscribe().await;
        let sink = factory.sink();
        std::thread::spawn(move || {
            for n in 0..20 {
                assert!(sink.publish(&jpeg(0, n), 1, 1, 0));
            }
        })
        .join()
        .unwrap();
        eventually(SECS(30), "the last frame is offered", || {
            recorder.last() == Some(20)
        })
        .await;
        // The watch is filled by the same task: viewers' tasks see the last frame too.
        tokio::time::timeout(
            SECS(30),
            viewer
                .frames
                .wait_for(|f| f.as_ref().is_some_and(|f| f.seq == 20)),
        )
        .await
        .expect("the watch reaches the last frame")
        .unwrap();
    });
    assert_eq!(
        *names.lock().unwrap(),
        HashSet::from(["camgate-fanout".to_owned()]),
        "every offer ran on the fan-out runtime's threads"
    );
}
