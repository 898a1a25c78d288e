//! A fleet of compact WebSocket viewers for multi-process tests (`tests/cluster.rs`): each
//! viewer is one tokio task on the load tool's lean client (`camgate_bench::ws_client`,
//! skimming: it keeps only each frame's first 64 bytes, the tag or video header) and a few
//! counters, so hundreds of viewers cost the test little memory and CPU.
//!
//! What a viewer records: connections made, frames (by sequence number, from the JPEG's
//! APP11 tag or the video message's header), and, while the fleet's *window* is open, the
//! sequence ranges it saw per connection (`received / span` is its share of the frames
//! published while it watched); the arrival (wall clock, µs) of its first frame *captured*
//! after the fleet's *mark* (so "pictures again after the kill" cannot be satisfied by a
//! frame that was already on its way). A viewer with `reconnect` opens a new connection at
//! once when its socket closes (retrying every 100 ms); without, it stops there. Every
//! viewer retries its FIRST connection until it succeeds (nodes and balancer still starting).
//!
//! Invariants: the fleet's tasks end when [`Fleet::stop`] is called or the fleet is dropped
//! (a watch channel), never later; nothing blocks while a viewer's lock is held.

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives real processes and sockets, whose timing is the wall clock's"
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use camgate_bench::tag::{read_tag, read_video_header};
use camgate_bench::viewer::Target;
use camgate_bench::ws_client::{Incoming, Reading, WsClient};
use tokio::sync::watch;

/// Wall clock in µs since the Unix epoch (the clock of the frames' capture times).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// What one viewer watches and how.
#[derive(Debug, Clone)]
pub struct ViewerSpec {
    /// Where it connects (a node or the balancer).
    pub addr: SocketAddr,
    /// The stream's id.
    pub stream: String,
    /// Path and query of the WebSocket URL.
    pub path: String,
    /// Open a new connection at once when the socket closes.
    pub reconnect: bool,
    /// A label for reports and for grouping (e.g. `haproxy`, `a`, `b`).
    pub via: String,
}

/// Sequence numbers seen on one connection while the window was open.
#[derive(Debug, Clone, Copy)]
struct Segment {
    first: u64,
    last: u64,
    received: u64,
}

/// A viewer's counters (small: a few words and the window's segments).
#[derive(Debug, Default, Clone)]
pub struct ViewerStats {
    /// Connections that completed the handshake.
    pub connects: u32,
    /// Connections that ended (closed by the server, reset, or an error).
    pub closes: u32,
    /// Frames received, all connections.
    pub frames: u64,
    /// Arrival of the newest frame (µs, wall clock); 0 before the first.
    pub last_frame_us: u64,
    /// When the last connection ended (µs, wall clock).
    pub last_close_us: Option<u64>,
    /// Arrival of the first frame captured after the fleet's mark.
    pub fresh_after_mark_us: Option<u64>,
    /// The last `state` the gateway announced (`hello` or `state` message).
    pub state: String,
    /// The last connection or handshake error (for failure messages).
    pub last_error: String,
    segments: Vec<Segment>,
    /// The connection the newest segment belongs to.
    segment_connection: u32,
}

impl ViewerStats {
    /// Frames received while the window was open, and the span of sequence numbers they
    /// cover (per connection, and a restart of the numbering starts a new range).
    pub fn window(&self) -> (u64, u64) {
        self.segments.iter().fold((0, 0), |(received, span), s| {
            (received + s.received, span + (s.last - s.first + 1))
        })
    }

    fn record(&mut self, seq: u64, captured_us: u64, arrived_us: u64, window: bool, mark: u64) {
        self.frames += 1;
        self.last_frame_us = arrived_us;
        if mark != 0 && captured_us > mark && self.fresh_after_mark_us.is_none() {
            self.fresh_after_mark_us = Some(arrived_us);
        }
        if !window {
            return;
        }
        match self.segments.last_mut() {
            Some(s) if self.segment_connection == self.connects && seq > s.last => {
                s.last = seq;
                s.received += 1;
            }
            _ => {
                self.segment_connection = self.connects;
                self.segments.push(Segment {
                    first: seq,
                    last: seq,
                    received: 1,
                });
            }
        }
    }
}

/// One viewer of the fleet.
pub struct Viewer {
    /// What it watches.
    pub spec: ViewerSpec,
    stats: Mutex<ViewerStats>,
}

impl Viewer {
    /// A copy of its counters.
    pub fn stats(&self) -> ViewerStats {
        self.stats.lock().unwrap().clone()
    }
}

struct Control {
    window: AtomicBool,
    mark_us: AtomicU64,
}

/// Hundreds of viewers, each a task on the current runtime.
pub struct Fleet {
    /// Every viewer, in the order of the specs.
    pub viewers: Vec<Arc<Viewer>>,
    control: Arc<Control>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Fleet {
    /// Starts one task per spec.
    pub fn start(specs: Vec<ViewerSpec>) -> Fleet {
        let control = Arc::new(Control {
            window: AtomicBool::new(false),
            mark_us: AtomicU64::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let viewers: Vec<Arc<Viewer>> = specs
            .into_iter()
            .map(|spec| {
                Arc::new(Viewer {
                    spec,
                    stats: Mutex::new(ViewerStats::default()),
                })
            })
            .collect();
        let tasks = viewers
            .iter()
            .map(|viewer| {
                tokio::spawn(run(
                    Arc::clone(viewer),
                    Arc::clone(&control),
                    stopped.clone(),
                ))
            })
            .collect();
        Fleet {
            viewers,
            control,
            stop,
            tasks,
        }
    }

    /// Opens the window: from now on viewers record their sequence ranges.
    pub fn open_window(&self) {
        for viewer in &self.viewers {
            let mut stats = viewer.stats.lock().unwrap();
            stats.segments.clear();
        }
        self.control.window.store(true, Ordering::SeqCst);
    }

    /// Closes the window; counters keep what it saw.
    pub fn close_window(&self) {
        self.control.window.store(false, Ordering::SeqCst);
    }

    /// Sets the mark (µs, wall clock): viewers note their first frame captured after it.
    pub fn mark(&self, at_us: u64) {
        for viewer in &self.viewers {
            viewer.stats.lock().unwrap().fresh_after_mark_us = None;
        }
        self.control.mark_us.store(at_us, Ordering::SeqCst);
    }

    /// Every viewer's counters, with its spec.
    pub fn snapshot(&self) -> Vec<(ViewerSpec, ViewerStats)> {
        self.viewers
            .iter()
            .map(|v| (v.spec.clone(), v.stats()))
            .collect()
    }

    /// Ends every viewer's task (their sockets close).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn run(viewer: Arc<Viewer>, control: Arc<Control>, mut stop: watch::Receiver<bool>) {
    let spec = &viewer.spec;
    let target = Target {
        url: format!("ws://{}{}", spec.addr, spec.path),
        addr: spec.addr,
        host: spec.addr.to_string(),
        path: spec.path.clone(),
    };
    loop {
        let connected = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            connected = connect(&target) => connected,
        };
        let mut client = match connected {
            Ok(client) => client,
            Err(error) => {
                viewer.stats.lock().unwrap().last_error = format!("{error:#}");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        viewer.stats.lock().unwrap().connects += 1;
        let ended = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            ended = watch(&viewer, &control, &mut client) => ended,
        };
        {
            let mut stats = viewer.stats.lock().unwrap();
            stats.closes += 1;
            stats.last_close_us = Some(now_us());
            stats.last_error = ended;
        }
        if !spec.reconnect {
            // Keep the task (and so the counters' meaning) until the fleet stops.
            let _ = stop.wait_for(|s| *s).await;
            return;
        }
    }
}

async fn connect(target: &Target) -> anyhow::Result<WsClient> {
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(target.addr),
    )
    .await??;
    stream.set_nodelay(true)?;
    let client = tokio::time::timeout(
        Duration::from_secs(5),
        WsClient::handshake(stream, target, Reading::Skim),
    )
    .await??;
    Ok(client)
}

/// Reads one connection until it ends; returns why it ended.
async fn watch(viewer: &Viewer, control: &Control, client: &mut WsClient) -> String {
    loop {
        let message = match client.next().await {
            Ok(Some(message)) => message,
            Ok(None) => return "closed without a close frame".into(),
            Err(error) => return format!("{error:#}"),
        };
        match message {
            Incoming::Binary { head, .. } => {
                let (seq, captured) = if let Some(tag) = read_tag(&head) {
                    (tag.seq, tag.captured_at_us)
                } else if let Some(header) = read_video_header(&head) {
                    (header.seq, header.captured_at_us)
                } else {
                    return "a binary message without a tag or video header".into();
                };
                let arrived = client.arrived_us().unwrap_or_else(now_us);
                let window = control.window.load(Ordering::SeqCst);
                let mark = control.mark_us.load(Ordering::SeqCst);
                viewer
                    .stats
                    .lock()
                    .unwrap()
                    .record(seq, captured, arrived, window, mark);
            }
            Incoming::Text(text) => {
                let Ok(event) = serde_json::from_slice::<serde_json::Value>(&text) else {
                    return "a text message that is not JSON".into();
                };
                if matches!(event["type"].as_str(), Some("hello" | "state"))
                    && let Some(state) = event["state"].as_str()
                {
                    viewer.stats.lock().unwrap().state = state.to_owned();
                }
            }
            Incoming::Close(code) => return format!("closed with {code:?}"),
        }
    }
}
