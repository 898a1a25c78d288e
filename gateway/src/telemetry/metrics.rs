//! Prometheus metrics (prefix `camgate_`) in an app-owned registry, and the events that
//! feed them.
//!
//! Like Vector's internal events, each event is one method that both logs and counts, so a
//! log line and its metric can never disagree. Per-stream handles ([`StreamTelemetry`]) are
//! resolved once per stream and per viewer, so the per-frame cost is an atomic add.
//!
//! Invariants: label values come only from bounded sets — stream ids (from the
//! configuration), transports, reasons, results, route templates, plugin names — never
//! URLs, IPs or user agents. A removed stream's series are removed.

use super::LogBudget;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// How a viewer receives frames (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `GET /ws/streams/{id}`.
    WebSocket,
    /// `GET /api/streams/{id}/mjpeg`.
    Mjpeg,
}

impl Transport {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Mjpeg => "mjpeg",
        }
    }

    const ALL: [Transport; 2] = [Transport::WebSocket, Transport::Mjpeg];
}

/// Why the fan-out handed a viewer back to its own task (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// The socket took only part of a frame; the viewer's task sends the rest.
    Cut,
    /// The viewer had missed frames; its task takes the latest and counts the gap.
    Gap,
}

impl Handover {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Handover::Cut => "cut",
            Handover::Gap => "gap",
        }
    }
}

/// A source's states (`hub::StreamState` names), the bounded `state` label set.
pub const SOURCE_STATES: [&str; 5] = ["stopped", "connecting", "live", "retrying", "failed"];

/// Picture health verdicts (`hub::PictureHealth` names), the bounded `health` label set.
pub const HEALTH_VALUES: [&str; 5] = ["ok", "frozen", "dark", "late", "unknown"];

/// Outcomes of a configuration reload attempt, the bounded `result` label set.
pub const RELOAD_RESULTS: [&str; 3] = ["applied", "unchanged", "rejected"];

/// Reasons a source (re)started, a bounded label set.
pub const RESTART_REASONS: [&str; 5] = ["viewer", "always_on", "reconfigured", "error", "manual"];

/// What became of a viewer's `shown` report (the `reason` label of
/// `camgate_viewer_reports_ignored_total` for the ones not counted).
#[derive(Clone, Copy)]
pub enum ShownReport<'a> {
    /// Counted: `frames` drawn, and a sample of their ages (ms) at the moment they were drawn.
    Accepted {
        /// Frames drawn since the viewer's previous report.
        frames: u32,
        /// Ages of a sample of them, in milliseconds (validated: finite, non-negative).
        ages_ms: &'a [f64],
    },
    /// A valid report that came too soon after the previous one from the same viewer.
    RateLimited,
    /// A report outside the protocol's bounds; `why` is for the log.
    Invalid {
        /// What was wrong with it.
        why: &'a dyn std::fmt::Display,
    },
}

/// Why viewers' reports were ignored, the bounded `reason` label set.
pub const REPORT_IGNORED_REASONS: [&str; 2] = ["invalid", "rate_limited"];

/// Buckets of `camgate_viewer_frame_age_seconds`: 20 ms (a local viewer of a live source)
/// to 10 s (a picture users would call stuck).
const VIEWER_AGE_BUCKETS: [f64; 14] = [
    0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
];

/// HTTP methods counted under their own name; every other token is `other`.
const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];

/// The bounded `method` label value for a request method.
fn method_label(method: &str) -> &'static str {
    STANDARD_METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// Every metric family of the gateway.
pub struct Metrics {
    registry: Registry,
    viewers: IntGaugeVec,
    frames_received: IntCounterVec,
    frames_sent: IntCounterVec,
    bytes_sent: IntCounterVec,
    frames_dropped: IntCounterVec,
    frames_refused: IntCounterVec,
    slow_disconnects: IntCounterVec,
    source_up: IntGaugeVec,
    source_state: IntGaugeVec,
    stream_health: IntGaugeVec,
    frame_age: GaugeVec,
    configured_fps: GaugeVec,
    source_restarts: IntCounterVec,
    frame_bytes: HistogramVec,
    frame_latency: HistogramVec,
    publish_seconds: HistogramVec,
    direct_frames: IntCounterVec,
    direct_handovers: IntCounterVec,
    fanout_panics: IntCounterVec,
    viewer_frame_age: HistogramVec,
    viewer_frames_shown: IntCounterVec,
    viewer_reports_ignored: IntCounterVec,
    /// Open TCP connections.
    pub connections: IntGauge,
    /// Accepted TCP connections.
    pub connections_total: IntCounter,
    /// Connections closed at accept because every slot was taken.
    pub connections_refused: IntCounter,
    /// Connections closed before their first request's headers were complete, to make
    /// room when every slot was taken.
    pub connections_evicted: IntCounter,
    http_requests: IntCounterVec,
    config_reloads: IntCounterVec,
    config_last_reload_successful: IntGauge,
    plugin_info: IntGaugeVec,
    cluster_members: IntGaugeVec,
    cluster_owned_streams: IntGauge,
    cluster_owner_changes: IntCounter,
    /// Every registered family (documented in `docs/metrics.md`; a test keeps the two in
    /// step).
    families: Vec<Family>,
}

/// A metric family as registered: what operators look up in `docs/metrics.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// Full name (`camgate_...`).
    pub name: String,
    /// The `# HELP` text.
    pub help: String,
    /// Label names, in order.
    pub labels: Vec<String>,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("camgate")
}

impl Metrics {
    /// Creates the families in a fresh registry (plus process metrics on Linux and
    /// `camgate_build_info`).
    pub fn new() -> Arc<Metrics> {
        let registry = Registry::new();
        let stream = &["stream"];
        let stream_transport = &["stream", "transport"];
        let mut m = Metrics {
            viewers: IntGaugeVec::new(opts("viewers", "Viewers attached to a stream."), stream_transport).unwrap(),
            frames_received: IntCounterVec::new(opts("frames_received_total", "Frames published by a stream's source."), stream).unwrap(),
            frames_sent: IntCounterVec::new(opts("frames_sent_total", "Frames sent to viewers."), stream_transport).unwrap(),
            bytes_sent: IntCounterVec::new(opts("bytes_sent_total", "JPEG bytes sent to viewers."), stream_transport).unwrap(),
            frames_dropped: IntCounterVec::new(opts("frames_dropped_total", "Frames skipped for viewers too slow to take them (latest frame wins)."), stream).unwrap(),
            frames_refused: IntCounterVec::new(opts("frames_refused_total", "Frames a source sent that the gateway refused (not a whole JPEG, a malformed access unit, video before its configuration): a plugin bug."), stream).unwrap(),
            slow_disconnects: IntCounterVec::new(opts("slow_viewer_disconnects_total", "Viewers disconnected because they stopped taking frames or answering pings."), stream).unwrap(),
            source_up: IntGaugeVec::new(opts("source_up", "1 while the stream's source is live."), stream).unwrap(),
            source_state: IntGaugeVec::new(opts("source_state", "1 for the source's current state (stopped, connecting, live, retrying, failed), 0 for the others."), &["stream", "state"]).unwrap(),
            stream_health: IntGaugeVec::new(opts("stream_health", "1 for the picture's current health (ok, frozen, dark, late, unknown), 0 for the others."), &["stream", "health"]).unwrap(),
            frame_age: GaugeVec::new(opts("stream_frame_age_seconds", "Age of the stream's newest frame (now - its capture time), sampled about once a second while the source runs."), stream).unwrap(),
            configured_fps: GaugeVec::new(opts("stream_configured_fps", "The frame rate the stream's source is configured for (only streams that set one)."), stream).unwrap(),
            source_restarts: IntCounterVec::new(opts("source_starts_total", "Source starts by reason (viewer, always_on, reconfigured, error = retry after a failure, manual = an admin's retry now)."), &["stream", "reason"]).unwrap(),
            frame_bytes: HistogramVec::new(
                HistogramOpts::from(opts("frame_size_bytes", "Size of published JPEG frames."))
                    .buckets(prometheus::exponential_buckets(4096.0, 2.0, 11).unwrap()),
                stream,
            )
            .unwrap(),
            frame_latency: HistogramVec::new(
                HistogramOpts::from(opts("frame_latency_seconds", "Time from capture to the frame being written to a viewer's socket."))
                    .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
                stream_transport,
            )
            .unwrap(),
            publish_seconds: HistogramVec::new(
                HistogramOpts::from(opts("publish_seconds", "Time a source's frame callback spends in the gateway (on the source's own thread), per frame."))
                    .buckets(vec![2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2]),
                stream,
            )
            .unwrap(),
            direct_frames: IntCounterVec::new(opts("direct_frames_total", "Frames the fan-out wrote whole to a viewer's socket itself (the rest went through the viewer's own task)."), stream).unwrap(),
            direct_handovers: IntCounterVec::new(opts("direct_handovers_total", "Times the fan-out handed a viewer back to its own task: reason cut (the socket took part of a frame) or gap (the viewer had missed frames)."), &["stream", "reason"]).unwrap(),
            fanout_panics: IntCounterVec::new(opts("fanout_panics_total", "Direct viewers whose offer panicked (detached and disconnected; the source is unaffected)."), stream).unwrap(),
            viewer_frame_age: HistogramVec::new(
                HistogramOpts::from(opts("viewer_frame_age_seconds", "Age of the picture a browser viewer shows at the moment it draws it (capture to display), a sample reported by viewers."))
                    .buckets(VIEWER_AGE_BUCKETS.to_vec()),
                stream,
            )
            .unwrap(),
            viewer_frames_shown: IntCounterVec::new(opts("viewer_frames_shown_total", "Frames browser viewers report as drawn (its rate is the drawn fps summed over viewers)."), stream).unwrap(),
            viewer_reports_ignored: IntCounterVec::new(opts("viewer_reports_ignored_total", "Viewer freshness reports ignored: reason invalid (outside the protocol's bounds) or rate_limited (too soon after the same viewer's previous one)."), &["stream", "reason"]).unwrap(),
            connections: IntGauge::with_opts(opts("connections", "Open TCP connections.")).unwrap(),
            connections_total: IntCounter::with_opts(opts("connections_total", "Accepted TCP connections.")).unwrap(),
            connections_refused: IntCounter::with_opts(opts("connections_refused_total", "Connections closed at accept because the general pool and the reserve were full.")).unwrap(),
            connections_evicted: IntCounter::with_opts(opts("connections_evicted_total", "Connections closed before their first request's headers were complete, oldest first, to make room for a new one when the general pool and the reserve were full.")).unwrap(),
            http_requests: IntCounterVec::new(opts("http_requests_total", "HTTP requests by route template, method and status."), &["route", "method", "status"]).unwrap(),
            config_reloads: IntCounterVec::new(opts("config_reloads_total", "Configuration reload attempts by result (applied, unchanged, rejected)."), &["result"]).unwrap(),
            config_last_reload_successful: IntGauge::with_opts(opts("config_last_reload_successful", "1 if the last configuration reload succeeded.")).unwrap(),
            plugin_info: IntGaugeVec::new(opts("plugin_info", "Loaded source plugins (value 1)."), &["name", "version", "abi", "origin"]).unwrap(),
            cluster_members: IntGaugeVec::new(opts("cluster_members", "Cluster members as this node sees them, by state (ready, not_ready; this node counts as ready). Absent outside cluster mode."), &["state"]).unwrap(),
            cluster_owned_streams: IntGauge::with_opts(opts("cluster_owned_streams", "Streams this node owns (serves from the camera); the others it relays from their owner. Outside cluster mode: every stream.")).unwrap(),
            cluster_owner_changes: IntCounter::with_opts(opts("cluster_owner_changes_total", "Streams whose owner changed (a member joined, left or stopped answering); each restarts under its viewers.")).unwrap(),
            registry,
            families: Vec::new(),
        };
        m.config_last_reload_successful.set(1);
        // Born at 0, so `increase()` sees the first rejected reload.
        for result in RELOAD_RESULTS {
            m.config_reloads.with_label_values(&[result]);
        }
        let build = IntGaugeVec::new(
            opts("build_info", "Build information (value 1)."),
            &["version"],
        )
        .unwrap();
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.viewers.clone()),
            Box::new(m.frames_received.clone()),
            Box::new(m.frames_sent.clone()),
            Box::new(m.bytes_sent.clone()),
            Box::new(m.frames_dropped.clone()),
            Box::new(m.frames_refused.clone()),
            Box::new(m.slow_disconnects.clone()),
            Box::new(m.source_up.clone()),
            Box::new(m.source_state.clone()),
            Box::new(m.stream_health.clone()),
            Box::new(m.frame_age.clone()),
            Box::new(m.configured_fps.clone()),
            Box::new(m.source_restarts.clone()),
            Box::new(m.frame_bytes.clone()),
            Box::new(m.frame_latency.clone()),
            Box::new(m.publish_seconds.clone()),
            Box::new(m.direct_frames.clone()),
            Box::new(m.direct_handovers.clone()),
            Box::new(m.fanout_panics.clone()),
            Box::new(m.viewer_frame_age.clone()),
            Box::new(m.viewer_frames_shown.clone()),
            Box::new(m.viewer_reports_ignored.clone()),
            Box::new(m.connections.clone()),
            Box::new(m.connections_total.clone()),
            Box::new(m.connections_refused.clone()),
            Box::new(m.connections_evicted.clone()),
            Box::new(m.http_requests.clone()),
            Box::new(m.config_reloads.clone()),
            Box::new(m.config_last_reload_successful.clone()),
            Box::new(m.plugin_info.clone()),
            Box::new(m.cluster_members.clone()),
            Box::new(m.cluster_owned_streams.clone()),
            Box::new(m.cluster_owner_changes.clone()),
            Box::new(crate::plugins::late_callbacks_metric()),
            Box::new(build),
        ];
        #[cfg(target_os = "linux")]
        let collectors = {
            let mut collectors = collectors;
            collectors.push(Box::new(
                prometheus::process_collector::ProcessCollector::new(
                    std::process::id() as i32,
                    "camgate",
                ),
            ));
            collectors
        };
        for collector in collectors {
            m.families.extend(collector.desc().iter().map(|d| Family {
                name: d.fq_name.clone(),
                help: d.help.clone(),
                labels: d.variable_labels.clone(),
            }));
            m.registry
                .register(collector)
                .expect("metric names are unique");
        }
        Arc::new(m)
    }

    /// Every registered family (what `docs/metrics.md` documents).
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// The per-stream handle for `stream`.
    pub fn stream(self: &Arc<Self>, stream: &str) -> StreamTelemetry {
        // Every per-transport series exists from the start (at 0), so dashboards and
        // `rate()`/`increase()` see the first viewer and the first frame, not only the
        // second.
        for transport in Transport::ALL {
            let labels = [stream, transport.as_str()];
            self.viewers.with_label_values(&labels);
            self.frames_sent.with_label_values(&labels);
            self.bytes_sent.with_label_values(&labels);
            self.frame_latency.with_label_values(&labels);
        }
        for reason in RESTART_REASONS {
            self.source_restarts.with_label_values(&[stream, reason]);
        }
        StreamTelemetry {
            stream: stream.to_owned(),
            frames_received: self.frames_received.with_label_values(&[stream]),
            frame_bytes: self.frame_bytes.with_label_values(&[stream]),
            publish_seconds: self.publish_seconds.with_label_values(&[stream]),
            direct_frames: self.direct_frames.with_label_values(&[stream]),
            handovers_cut: self
                .direct_handovers
                .with_label_values(&[stream, Handover::Cut.as_str()]),
            handovers_gap: self
                .direct_handovers
                .with_label_values(&[stream, Handover::Gap.as_str()]),
            source_up: self.source_up.with_label_values(&[stream]),
            source_state: SOURCE_STATES.map(|state| {
                let gauge = self.source_state.with_label_values(&[stream, state]);
                gauge.set(i64::from(state == "stopped"));
                gauge
            }),
            health: HEALTH_VALUES.map(|health| {
                let gauge = self.stream_health.with_label_values(&[stream, health]);
                gauge.set(i64::from(health == "unknown"));
                gauge
            }),
            frames_dropped: self.frames_dropped.with_label_values(&[stream]),
            frames_refused: self.frames_refused.with_label_values(&[stream]),
            refusal_log: Arc::new(std::sync::Mutex::new(LogBudget::new(
                REFUSAL_LINES_PER_WINDOW,
                REFUSAL_LOG_WINDOW,
            ))),
            slow_disconnects: self.slow_disconnects.with_label_values(&[stream]),
            viewer_frame_age: self.viewer_frame_age.with_label_values(&[stream]),
            viewer_frames_shown: self.viewer_frames_shown.with_label_values(&[stream]),
            reports_ignored: REPORT_IGNORED_REASONS.map(|reason| {
                self.viewer_reports_ignored
                    .with_label_values(&[stream, reason])
            }),
            report_log: Arc::new(std::sync::Mutex::new(LogBudget::new(
                REPORT_LINES_PER_WINDOW,
                REPORT_LOG_WINDOW,
            ))),
            metrics: Arc::clone(self),
        }
    }

    /// Removes every series of a removed stream.
    pub fn remove_stream(&self, stream: &str) {
        let _ = self.frames_received.remove_label_values(&[stream]);
        let _ = self.frame_bytes.remove_label_values(&[stream]);
        let _ = self.publish_seconds.remove_label_values(&[stream]);
        let _ = self.direct_frames.remove_label_values(&[stream]);
        let _ = self.fanout_panics.remove_label_values(&[stream]);
        for reason in [Handover::Cut, Handover::Gap] {
            let _ = self
                .direct_handovers
                .remove_label_values(&[stream, reason.as_str()]);
        }
        let _ = self.source_up.remove_label_values(&[stream]);
        for state in SOURCE_STATES {
            let _ = self.source_state.remove_label_values(&[stream, state]);
        }
        for health in HEALTH_VALUES {
            let _ = self.stream_health.remove_label_values(&[stream, health]);
        }
        let _ = self.frame_age.remove_label_values(&[stream]);
        let _ = self.configured_fps.remove_label_values(&[stream]);
        let _ = self.frames_dropped.remove_label_values(&[stream]);
        let _ = self.frames_refused.remove_label_values(&[stream]);
        let _ = self.slow_disconnects.remove_label_values(&[stream]);
        let _ = self.viewer_frame_age.remove_label_values(&[stream]);
        let _ = self.viewer_frames_shown.remove_label_values(&[stream]);
        for reason in REPORT_IGNORED_REASONS {
            let _ = self
                .viewer_reports_ignored
                .remove_label_values(&[stream, reason]);
        }
        for transport in Transport::ALL {
            let labels = [stream, transport.as_str()];
            let _ = self.viewers.remove_label_values(&labels);
            let _ = self.frames_sent.remove_label_values(&labels);
            let _ = self.bytes_sent.remove_label_values(&labels);
            let _ = self.frame_latency.remove_label_values(&labels);
        }
        for reason in RESTART_REASONS {
            let _ = self.source_restarts.remove_label_values(&[stream, reason]);
        }
    }

    /// Event: an HTTP request was answered. `method` is whatever the client sent (hyper
    /// accepts any token): only the standard methods keep their name, anything else is
    /// counted as `other`, so a client cannot add series at will.
    pub fn http_request(&self, route: &str, method: &str, status: u16) {
        self.http_requests
            .with_label_values(&[route, method_label(method), &status.to_string()])
            .inc();
    }

    /// Event: a reload attempt ended with `result` (`applied`, `unchanged`, `rejected`).
    /// The cluster as just applied: members by readiness (`None`: not in a cluster), the
    /// streams this node owns, and how many streams just changed owner.
    pub fn cluster(&self, members: Option<(usize, usize)>, owned: usize, moved: usize) {
        match members {
            Some((ready, not_ready)) => {
                self.cluster_members
                    .with_label_values(&["ready"])
                    .set(ready as i64);
                self.cluster_members
                    .with_label_values(&["not_ready"])
                    .set(not_ready as i64);
            }
            None => self.cluster_members.reset(),
        }
        self.cluster_owned_streams.set(owned as i64);
        self.cluster_owner_changes.inc_by(moved as u64);
    }

    /// Counts a configuration reload attempt.
    pub fn config_reload(&self, result: &str) {
        self.config_reloads.with_label_values(&[result]).inc();
        self.config_last_reload_successful
            .set(i64::from(result != "rejected"));
    }

    /// Event: a plugin was registered.
    pub fn plugin_loaded(&self, name: &str, version: &str, abi: u32, builtin: bool) {
        self.plugin_info
            .with_label_values(&[
                name,
                version,
                &abi.to_string(),
                if builtin { "builtin" } else { "library" },
            ])
            .set(1);
    }
}

/// One stream's metric handles; its methods are the stream's events.
#[derive(Clone)]
pub struct StreamTelemetry {
    stream: String,
    metrics: Arc<Metrics>,
    frames_received: IntCounter,
    frame_bytes: Histogram,
    publish_seconds: Histogram,
    direct_frames: IntCounter,
    handovers_cut: IntCounter,
    handovers_gap: IntCounter,
    source_up: IntGauge,
    /// One gauge per [`SOURCE_STATES`] entry, in that order.
    source_state: [IntGauge; 5],
    /// One gauge per [`HEALTH_VALUES`] entry, in that order.
    health: [IntGauge; 5],
    frames_dropped: IntCounter,
    frames_refused: IntCounter,
    /// Refused-frame warnings are rate-limited per stream (a broken source refuses at its
    /// frame rate).
    refusal_log: Arc<std::sync::Mutex<LogBudget>>,
    slow_disconnects: IntCounter,
    viewer_frame_age: Histogram,
    viewer_frames_shown: IntCounter,
    /// One counter per [`REPORT_IGNORED_REASONS`] entry, in that order.
    reports_ignored: [IntCounter; 2],
    /// Ignored-report lines are rate-limited per stream (viewers control their rate).
    report_log: Arc<std::sync::Mutex<LogBudget>>,
}

/// Ignored-report log lines allowed per stream and window.
const REPORT_LINES_PER_WINDOW: u32 = 5;
const REPORT_LOG_WINDOW: Duration = Duration::from_secs(60);

/// Refused-frame warnings allowed per stream and window.
const REFUSAL_LINES_PER_WINDOW: u32 = 5;
const REFUSAL_LOG_WINDOW: Duration = Duration::from_secs(10);

impl StreamTelemetry {
    /// Event: the source published a frame of `bytes`, which cost its thread `took`.
    pub fn frame_received(&self, bytes: usize, took: Duration) {
        self.frames_received.inc();
        self.frame_bytes.observe(bytes as f64);
        self.publish_seconds.observe(took.as_secs_f64());
    }

    /// Event: the source sent a frame the gateway refused (`why`, for its author): counted
    /// always, logged at most a few times per window.
    pub fn frame_refused(&self, why: &str) {
        self.frames_refused.inc();
        let (allowed, suppressed) = self
            .refusal_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(tokio::time::Instant::now());
        if allowed {
            tracing::warn!(stream = %self.stream, suppressed, "refused a frame from the source: {why}");
        }
    }

    /// Event: a direct viewer's offer panicked; the hub detached it.
    pub fn direct_viewer_panicked(&self) {
        tracing::error!(stream = %self.stream, "a viewer's direct offer panicked; the viewer was disconnected");
        self.metrics
            .fanout_panics
            .with_label_values(&[&self.stream])
            .inc();
    }

    /// Event: the source entered `state` (one of [`SOURCE_STATES`]); `source_up` is 1
    /// while it is `live`.
    pub fn source_state(&self, state: &str) {
        self.source_up.set(i64::from(state == "live"));
        for (gauge, name) in self.source_state.iter().zip(SOURCE_STATES) {
            gauge.set(i64::from(name == state));
        }
        if state != "live" {
            let _ = self.metrics.frame_age.remove_label_values(&[&self.stream]);
        }
    }

    /// Event: the picture's health became `health` (one of [`HEALTH_VALUES`]); the
    /// monitor's verdict, logged when it leaves or returns to `ok`.
    pub fn health_changed(&self, health: &str) {
        for (gauge, name) in self.health.iter().zip(HEALTH_VALUES) {
            gauge.set(i64::from(name == health));
        }
        match health {
            "unknown" => tracing::debug!(stream = %self.stream, "picture health unknown"),
            "ok" => tracing::info!(stream = %self.stream, "picture health ok"),
            _ => tracing::warn!(stream = %self.stream, health, "picture health: {health}"),
        }
    }

    /// Event: the monitor measured the newest frame's age (seconds).
    pub fn frame_age(&self, seconds: f64) {
        self.metrics
            .frame_age
            .with_label_values(&[&self.stream])
            .set(seconds);
    }

    /// Event: the stream's configured frame rate is `fps` (`None`: it sets none).
    pub fn configured_fps(&self, fps: Option<f64>) {
        match fps {
            Some(fps) => self
                .metrics
                .configured_fps
                .with_label_values(&[&self.stream])
                .set(fps),
            None => {
                let _ = self
                    .metrics
                    .configured_fps
                    .remove_label_values(&[&self.stream]);
            }
        }
    }

    /// Event: a source starts, for `reason` (one of [`RESTART_REASONS`]).
    /// An admin's "Retry now" (`manual`) is logged at info: someone acted.
    pub fn source_starting(&self, reason: &'static str) {
        if reason == "manual" {
            tracing::info!(stream = %self.stream, reason, "retry now: starting a fresh source");
        } else {
            tracing::debug!(stream = %self.stream, reason, "source starting");
        }
        self.metrics
            .source_restarts
            .with_label_values(&[&self.stream, reason])
            .inc();
    }

    /// Event: a viewer sent a freshness report. The one place viewer reports are counted:
    /// an accepted one adds its frames to `camgate_viewer_frames_shown_total` and its ages
    /// to `camgate_viewer_frame_age_seconds`; an ignored one is counted by reason and
    /// logged (at most a few lines per stream and minute).
    pub fn viewer_report(&self, report: ShownReport<'_>) {
        let (reason, why): (usize, &dyn std::fmt::Display) = match report {
            ShownReport::Accepted { frames, ages_ms } => {
                self.viewer_frames_shown.inc_by(u64::from(frames));
                for ms in ages_ms {
                    self.viewer_frame_age.observe(ms / 1000.0);
                }
                return;
            }
            ShownReport::Invalid { why } => (0, why),
            ShownReport::RateLimited => (1, &"sent too soon after the previous one"),
        };
        self.reports_ignored[reason].inc();
        let (allowed, suppressed) = self
            .report_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(tokio::time::Instant::now());
        if allowed {
            tracing::info!(stream = %self.stream, suppressed, reason = REPORT_IGNORED_REASONS[reason], "ignored a viewer's freshness report: {why}");
        }
    }

    /// Event: a viewer attached; the returned handle counts its frames and detaches on drop.
    pub fn viewer(&self, transport: Transport) -> ViewerTelemetry {
        let labels = [self.stream.as_str(), transport.as_str()];
        let viewers = self.metrics.viewers.with_label_values(&labels);
        viewers.inc();
        tracing::debug!(stream = %self.stream, transport = transport.as_str(), "viewer attached");
        ViewerTelemetry {
            stream: self.clone(),
            transport,
            viewers,
            frames_sent: self.metrics.frames_sent.with_label_values(&labels),
            bytes_sent: self.metrics.bytes_sent.with_label_values(&labels),
            latency: self.metrics.frame_latency.with_label_values(&labels),
        }
    }
}

/// One viewer's metric handles.
pub struct ViewerTelemetry {
    stream: StreamTelemetry,
    transport: Transport,
    viewers: IntGauge,
    frames_sent: IntCounter,
    bytes_sent: IntCounter,
    latency: Histogram,
}

impl ViewerTelemetry {
    /// Event: a frame of `bytes` captured at `captured_at_us` was written to the viewer.
    pub fn frame_sent(&self, bytes: usize, captured_at_us: u64) {
        self.frames_sent.inc();
        self.bytes_sent.inc_by(bytes as u64);
        let now = crate::hub::unix_micros(std::time::SystemTime::now());
        self.latency
            .observe(now.saturating_sub(captured_at_us) as f64 / 1_000_000.0);
    }

    /// Event: the fan-out wrote a whole frame to this viewer itself (counted as sent, too).
    pub fn direct_frame_sent(&self, bytes: usize, captured_at_us: u64) {
        self.stream.direct_frames.inc();
        self.frame_sent(bytes, captured_at_us);
    }

    /// Event: the fan-out handed this viewer back to its own task.
    pub fn direct_handover(&self, reason: Handover) {
        match reason {
            Handover::Cut => self.stream.handovers_cut.inc(),
            Handover::Gap => self.stream.handovers_gap.inc(),
        }
    }

    /// Event: frames were skipped because this viewer was too slow.
    pub fn frames_dropped(&self, frames: u64) {
        self.stream.frames_dropped.inc_by(frames);
    }

    /// Event: this viewer sent a freshness report (counted by the stream's
    /// [`StreamTelemetry::viewer_report`]).
    pub fn shown_report(&self, report: ShownReport<'_>) {
        self.stream.viewer_report(report);
    }

    /// Event: this viewer was disconnected for being too slow.
    pub fn slow_disconnect(&self, why: &str) {
        tracing::info!(stream = %self.stream.stream, transport = self.transport.as_str(), why, "slow viewer disconnected");
        self.stream.slow_disconnects.inc();
    }
}

impl Drop for ViewerTelemetry {
    fn drop(&mut self) {
        self.viewers.dec();
        tracing::debug!(stream = %self.stream.stream, transport = self.transport.as_str(), "viewer detached");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metrics reference's table rows: name, then its labels (`-` for none).
    fn documented() -> Vec<(String, Vec<String>)> {
        include_str!("../../../docs/metrics.md")
            .lines()
            .filter_map(|line| {
                let mut cells = line.split('|').map(str::trim).skip(1);
                let name = cells.next()?.strip_prefix("`camgate_")?.strip_suffix('`')?;
                let labels = cells
                    .nth(1)?
                    .split(',')
                    .map(|l| l.trim().trim_matches('`').to_owned())
                    .filter(|l| !l.is_empty() && l != "-")
                    .collect();
                Some((format!("camgate_{name}"), labels))
            })
            .collect()
    }

    /// The value of the series `name{labels}` in a scrape (0 if absent).
    fn value(scrape: &str, series: &str) -> f64 {
        scrape
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn viewer_reports_count_frames_and_ages_in_one_place_and_go_with_their_stream() {
        let metrics = Metrics::new();
        let cam = metrics.stream("cam");
        // Present (at zero) as soon as the stream is configured.
        let scrape = metrics.render();
        assert!(scrape.contains(r#"camgate_viewer_frames_shown_total{stream="cam"} 0"#));
        assert!(scrape.contains(r#"camgate_viewer_frame_age_seconds_count{stream="cam"} 0"#));
        cam.viewer_report(ShownReport::Accepted {
            frames: 120,
            ages_ms: &[15.0, 45.0, 45.0, 180.0, 12_000.0],
        });
        cam.viewer_report(ShownReport::RateLimited);
        cam.viewer_report(ShownReport::RateLimited);
        cam.viewer_report(ShownReport::Invalid { why: &"bad" });
        let scrape = metrics.render();
        let age = |le: &str| {
            value(
                &scrape,
                &format!(r#"camgate_viewer_frame_age_seconds_bucket{{stream="cam",le="{le}"}}"#),
            )
        };
        assert_eq!(
            value(
                &scrape,
                r#"camgate_viewer_frames_shown_total{stream="cam"}"#
            ),
            120.0
        );
        assert_eq!(age("0.02"), 1.0);
        assert_eq!(age("0.05"), 3.0);
        assert_eq!(age("0.15"), 3.0);
        assert_eq!(age("0.2"), 4.0);
        assert_eq!(age("10"), 4.0);
        assert_eq!(age("+Inf"), 5.0);
        assert_eq!(
            value(
                &scrape,
                r#"camgate_viewer_frame_age_seconds_count{stream="cam"}"#
            ),
            5.0
        );
        let ignored = |reason: &str| {
            value(
                &scrape,
                &format!(
                    r#"camgate_viewer_reports_ignored_total{{reason="{reason}",stream="cam"}}"#
                ),
            )
        };
        assert_eq!((ignored("invalid"), ignored("rate_limited")), (1.0, 2.0));
        metrics.remove_stream("cam");
        assert!(!metrics.render().contains("stream=\"cam\""));
    }

    #[test]
    fn the_metrics_reference_documents_every_family_with_its_labels() {
        let registered: Vec<(String, Vec<String>)> = Metrics::new()
            .families()
            .iter()
            .map(|f| (f.name.clone(), f.labels.clone()))
            .collect();
        let documented = documented();
        for family in &registered {
            assert!(
                documented.contains(family),
                "docs/metrics.md lacks {family:?} (name and labels)"
            );
        }
        for family in &documented {
            assert!(
                registered.contains(family),
                "docs/metrics.md documents {family:?}, which the gateway does not register"
            );
        }
    }
}
