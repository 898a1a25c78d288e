//! `camgate-bench`: a load tool for Camgate and other MJPEG servers.
//!
//! It opens N viewers (each its own connection and tokio task) against WebSocket
//! (`ws://.../ws/streams/ID`, one JPEG per binary message) or MJPEG-over-HTTP
//! (`multipart/x-mixed-replace`) endpoints, optionally M deliberately slow viewers, and
//! reports per run: share of frames delivered, fps per viewer, latency capture → receipt
//! (from the Camgate APP11 tag in every JPEG), fan-out spread, time to first frame, and the
//! gateway's CPU and RSS from `/proc`. See `docs/performance.md` for the documented runs.
//! Against Camgate it also reads the direct pass's counters from `/metrics` around the
//! window (`camgate_direct_frames_total`, `camgate_direct_handovers_total{reason}`), when the
//! gateway has them. `--credit` makes viewers use the protocol's flow control,
//! `--bind-from` gives each viewer its own source address and `--sample-pid` measures the
//! CPU of other processes too (the link emulator of `bench/link-classes`). `--format
//! h264|h265|auto` makes WebSocket viewers take the camera's own video (the passthrough
//! protocol's video messages) instead of JPEGs; probes then also time the joining viewer's
//! current picture (the GOP up to the newest frame).
//!
//! The core is a library so the gateway's test suite can run it in-process
//! (`gateway/tests/bench_smoke.rs`); `src/main.rs` is a thin CLI around [`run`].

pub mod gateway;
pub mod linkemu;
pub mod metrics;
pub mod mjpeg;
pub mod procfs;
pub mod report;
pub mod rx_time;
pub mod tag;
pub mod viewer;
pub mod ws_client;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::sync::{Semaphore, watch};

pub use report::Report;
pub use viewer::Mode;

/// Command-line options (also the library's input).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "camgate-bench",
    version,
    about = "Opens N viewers against a Camgate gateway (or any MJPEG server) and reports delivery, latency, fan-out spread, time to first frame, and the gateway's CPU and memory.",
    after_help = "Examples:\n  camgate-bench --spawn-gateway target/release/camgate --manifest bench/manifests/one-720p.yaml --streams cam --viewers 500\n  camgate-bench --url ws://127.0.0.1:8000/ws/streams/pattern --viewers 100 --slow 10 --pid $(pidof camgate)\n  camgate-bench --mode mjpeg-http --url http://127.0.0.1:8081/stream.mjpg --viewers 50"
)]
pub struct Args {
    /// Viewer URL. `{id}` is replaced by each id of `--streams`; without `{id}`, a ws URL's
    /// last path segment is. Optional with `--spawn-gateway` (the camgate URL of the mode
    /// is used).
    #[arg(long)]
    pub url: Option<String>,
    /// Normal viewers (spread round-robin over the streams).
    #[arg(long, default_value_t = 1)]
    pub viewers: usize,
    /// Additional slow viewers that read at `--slow-fps`.
    #[arg(long, default_value_t = 0)]
    pub slow: usize,
    /// Frames per second a slow viewer reads.
    #[arg(long, default_value_t = 1.0)]
    pub slow_fps: f64,
    /// `SO_RCVBUF` of slow viewers, bytes (small, so the backlog stays on the server);
    /// 0 leaves the OS default (autotuned, as a browser's socket).
    #[arg(long, default_value_t = 16 * 1024)]
    pub slow_rcvbuf: u32,
    /// WebSocket viewers (normal and slow, not probes) use credit flow control: they grant
    /// this many frames after the handshake and one more per frame consumed.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub credit: Option<u32>,
    /// Viewer `i` (normal ones first, then slow ones) binds its socket to this IPv4
    /// address + `i`, so a link emulator can key a link per viewer. The addresses must be
    /// this host's (`bench/link-classes` adds them inside its namespace).
    #[arg(long)]
    pub bind_from: Option<Ipv4Addr>,
    /// Also sample this process's CPU over the window, as `NAME=PID` (repeatable), e.g.
    /// the link emulator.
    #[arg(long, value_parser = parse_named_pid)]
    pub sample_pid: Vec<(String, u32)>,
    /// Normal WebSocket viewers read only the first 64 bytes of each frame (the tag) and
    /// have the kernel discard the rest without copying it (`MSG_TRUNC`): the tool then
    /// takes a third less of the cores it shares with the server. The bytes still cross
    /// the socket and are counted.
    #[arg(long)]
    pub skim: bool,
    /// Measurement window.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Time between the last viewer connecting and the start of the window.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Gateway CPU is sampled this long before any viewer connects (the source's own cost);
    /// 0 to skip. Needs a pid.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub baseline: Duration,
    /// Time to wait before the baseline sample, e.g. while a `testsrc` with `loop_frames`
    /// encodes its loop (the benchmark manifests' loops take 5 s).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// Gateway process to sample in /proc (CPU, RSS).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Transport.
    #[arg(long, value_enum, default_value_t = Mode::Ws)]
    pub mode: Mode,
    /// WebSocket viewers ask for this format: `?format=...` is appended to their URL
    /// (README, "Viewing protocol"). `h264`, `h265` and `auto` (on a video stream) get the
    /// camera's own video: frames, bytes, latency, skipped frames (sequence gaps) and, for
    /// probes, the time until the GOP up to the newest frame has arrived. Without it the
    /// URL is used as given (JPEGs).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Stream ids, comma-separated; `all` asks the gateway's `GET /api/streams`.
    #[arg(long, value_delimiter = ',')]
    pub streams: Vec<String>,
    /// Fresh viewers opened one after another during the window, each timed from connect
    /// to its first frame and then closed (time to first frame without a connection storm).
    #[arg(long, default_value_t = 0)]
    pub probes: usize,
    /// Pause between probes (longer than the stream's idle timeout + reaper interval to
    /// time cold on-demand starts with `--viewers 0`).
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub probe_interval: Duration,
    /// Handshakes in flight at once while viewers connect.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Start this camgate binary (`PATH run --config MANIFEST --listen 127.0.0.1:0`) for the
    /// run, measure it, and stop it at the end.
    #[arg(long, requires = "manifest")]
    pub spawn_gateway: Option<PathBuf>,
    /// The manifest for `--spawn-gateway`.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
}

/// What `--format` asks the gateway for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The native codec if it is H.264/H.265, else JPEG.
    Auto,
    /// H.264 passthrough (the gateway closes with 4006 if the stream is another codec).
    H264,
    /// H.265 passthrough.
    H265,
    /// JPEGs, as without `format` (from a video stream: the on-demand transcoder's).
    Mjpeg,
}

impl Format {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::H264 => "h264",
            Format::H265 => "h265",
            Format::Mjpeg => "mjpeg",
        }
    }
}

/// `url` with `format=` appended to its query.
pub fn with_format(url: &str, format: Format) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}format={}", format.as_str())
}

/// `NAME=PID` of `--sample-pid`.
fn parse_named_pid(text: &str) -> Result<(String, u32), String> {
    let (name, pid) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PID, got {text:?}"))?;
    let pid = pid.parse().map_err(|_| format!("bad pid in {text:?}"))?;
    Ok((name.to_owned(), pid))
}

/// The local address of viewer `i` with `--bind-from base`.
pub fn viewer_address(base: Ipv4Addr, i: usize) -> anyhow::Result<Ipv4Addr> {
    u32::from(base)
        .checked_add(u32::try_from(i)?)
        .map(Ipv4Addr::from)
        .context("--bind-from: address range overflows")
}

/// Resolves `url` into a target.
fn target(url: &str) -> anyhow::Result<viewer::Target> {
    let uri: http::Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
    let host = uri.host().context("URL without host")?;
    let port = uri.port_u16().unwrap_or(80);
    let addr: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .context("no address")?;
    Ok(viewer::Target {
        url: url.to_owned(),
        addr,
        host: uri.authority().map_or(host.to_owned(), |a| a.to_string()),
        path: uri
            .path_and_query()
            .map_or("/".to_owned(), |p| p.to_string()),
    })
}

/// `GET path` on `addr`: status and body.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Empty::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    connection.abort();
    Ok((status.as_u16(), body))
}

/// `GET /api/streams` on the gateway: every stream id.
async fn all_stream_ids(addr: SocketAddr) -> anyhow::Result<Vec<String>> {
    let (status, body) = http_get(addr, "/api/streams").await?;
    if status != 200 {
        bail!("GET /api/streams answered {status}");
    }
    let json: serde_json::Value = serde_json::from_slice(&body)?;
    let ids: Vec<String> = json["streams"]
        .as_array()
        .context("no `streams` array")?
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    if ids.is_empty() {
        bail!("the gateway has no streams");
    }
    Ok(ids)
}

/// The URLs viewers use, one per stream.
async fn target_urls(args: &Args, spawned: Option<SocketAddr>) -> anyhow::Result<Vec<String>> {
    let template = match (&args.url, spawned) {
        (Some(url), _) => url.clone(),
        (None, Some(addr)) => match args.mode {
            Mode::Ws => format!("ws://{addr}/ws/streams/{{id}}"),
            Mode::MjpegHttp => format!("http://{addr}/api/streams/{{id}}/mjpeg"),
        },
        (None, None) => bail!("give --url (or --spawn-gateway)"),
    };
    let mut ids = args.streams.clone();
    if ids.iter().any(|s| s == "all") {
        let addr = target(&template.replace("{id}", "x"))?.addr;
        ids = all_stream_ids(addr).await?;
    }
    let format = |url: String| match args.format {
        Some(format) => with_format(&url, format),
        None => url,
    };
    if ids.is_empty() {
        if template.contains("{id}") {
            bail!("the URL has {{id}}: give --streams");
        }
        return Ok(vec![format(template)]);
    }
    Ok(ids
        .iter()
        .map(|id| {
            if template.contains("{id}") {
                template.replace("{id}", id)
            } else {
                // Replace the last path segment of the URL.
                let cut = template.rfind('/').map_or(template.len(), |i| i + 1);
                format!("{}{id}", &template[..cut])
            }
        })
        .map(format)
        .collect())
}

/// Runs a whole measurement and returns its report. Needs a multi-threaded tokio runtime.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.slow > 0 && (args.slow_fps.is_nan() || args.slow_fps <= 0.0) {
        bail!("--slow-fps must be > 0");
    }
    if args.credit.is_some() && args.mode != Mode::Ws {
        bail!("--credit needs WebSocket viewers (--mode ws)");
    }
    if args.format.is_some() && args.mode != Mode::Ws {
        bail!("--format needs WebSocket viewers (--mode ws)");
    }
    if args.credit.is_some() && args.format.is_some_and(|f| f != Format::Mjpeg) {
        bail!(
            "--credit is for JPEG viewers: the tool grants per JPEG frame (video viewers join with a whole GOP)"
        );
    }
    let locals: Vec<Option<IpAddr>> = (0..args.viewers + args.slow)
        .map(|i| {
            args.bind_from
                .map(|base| viewer_address(base, i).map(IpAddr::V4))
                .transpose()
        })
        .collect::<anyhow::Result<_>>()?;
    let loadavg_start = procfs::loadavg();
    let spawned = match (&args.spawn_gateway, &args.manifest) {
        (Some(binary), Some(manifest)) => Some(gateway::SpawnedGateway::start(binary, manifest)?),
        _ => None,
    };
    let pid = args.pid.or(spawned.as_ref().map(|g| g.pid()));
    let urls = target_urls(args, spawned.as_ref().map(|g| g.addr)).await?;
    let targets: Vec<Arc<viewer::Target>> = urls
        .iter()
        .map(|u| target(u).map(Arc::new))
        .collect::<anyhow::Result<_>>()?;

    // Baseline: the gateway with no viewer of ours.
    let mut baseline_cores = None;
    let mut rss_baseline_kib = 0;
    tokio::time::sleep(args.settle).await;
    if let Some(pid) = pid {
        let a = procfs::sample(pid).context("cannot read the gateway's /proc entry")?;
        if !args.baseline.is_zero() {
            tokio::time::sleep(args.baseline).await;
            let b = procfs::sample(pid).context("the gateway went away")?;
            baseline_cores = Some(procfs::cores_between(&a, &b));
            rss_baseline_kib = b.rss_kib;
        } else {
            rss_baseline_kib = a.rss_kib;
        }
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(viewer::Shared {
        phase: AtomicU8::new(viewer::PHASE_WARMUP),
        connect: Semaphore::new(args.connect_concurrency.max(1)),
        stop: stop_rx,
        mode: args.mode,
        slow_gap: Duration::from_secs_f64(1.0 / args.slow_fps.max(1e-3)),
        slow_rcvbuf: args.slow_rcvbuf,
        credit: args.credit,
        skim: args.skim,
        settled: AtomicUsize::new(0),
    });
    let connect_started = Instant::now();
    let mut tasks = Vec::new();
    for (i, local) in locals.into_iter().enumerate() {
        let index = i % targets.len();
        let slow = i >= args.viewers;
        tasks.push(tokio::spawn(viewer::run(
            index,
            Arc::clone(&targets[index]),
            slow,
            false,
            local,
            Arc::clone(&shared),
        )));
    }
    // Wait until every viewer is through its handshake (or failed).
    let all = tasks.len();
    while shared.settled.load(Ordering::SeqCst) < all {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    tokio::time::sleep(args.warmup).await;

    let metrics_addr = targets[0].addr;
    let metrics_start = metrics::scrape(metrics_addr).await;
    shared.phase.store(viewer::PHASE_MEASURE, Ordering::SeqCst);
    let window_start = Instant::now();
    let window_start_us = viewer::unix_micros();
    let gateway_start = pid.and_then(procfs::sample);
    let children_start = pid.map(procfs::sample_descendants);
    let bench_start = procfs::sample(std::process::id());
    let others_start: Vec<_> = args
        .sample_pid
        .iter()
        .map(|(_, pid)| procfs::sample(*pid))
        .collect();
    let probes = {
        let shared = Arc::clone(&shared);
        let targets = targets.clone();
        let (count, gap) = (args.probes, args.probe_interval);
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..count {
                if i > 0 {
                    tokio::time::sleep(gap).await;
                }
                let index = i % targets.len();
                outcomes.push(
                    viewer::run(
                        index,
                        Arc::clone(&targets[index]),
                        false,
                        true,
                        None,
                        Arc::clone(&shared),
                    )
                    .await,
                );
            }
            outcomes
        })
    };
    tokio::time::sleep(args.duration).await;
    let probe_outcomes = probes.await.unwrap_or_default();
    shared.phase.store(viewer::PHASE_DONE, Ordering::SeqCst);
    let window_s = window_start.elapsed().as_secs_f64();
    let window_end_us = viewer::unix_micros();
    let gateway_end = pid.and_then(procfs::sample);
    let children_end = pid.map(procfs::sample_descendants);
    let bench_end = procfs::sample(std::process::id());
    let others = args
        .sample_pid
        .iter()
        .zip(others_start)
        .map(|((name, pid), start)| {
            let end = procfs::sample(*pid);
            let between =
                |f: fn(&procfs::ProcSample, &procfs::ProcSample) -> f64| match (start, end) {
                    (Some(a), Some(b)) => Some(f(&a, &b)),
                    _ => None,
                };
            report::ProcessStats {
                name: name.clone(),
                pid: *pid,
                cores: between(procfs::cores_between),
                user_cores: between(procfs::user_cores_between),
            }
        })
        .collect();
    let metrics_end = metrics::scrape(metrics_addr).await;
    let _ = stop_tx.send(true);
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.context("a viewer task panicked")?);
    }

    let gateway = match (pid, gateway_start, gateway_end) {
        (Some(pid), Some(a), Some(b)) => {
            let cores = procfs::cores_between(&a, &b);
            let (children, children_cores) = match (&children_start, &children_end) {
                (Some(start), Some(end)) => (
                    end.cpu_seconds.len(),
                    procfs::descendants_cores_between(start, end),
                ),
                _ => (0, 0.0),
            };
            Some(report::GatewayStats {
                pid,
                baseline_cores,
                cores,
                children,
                children_cores,
                viewer_cores: baseline_cores.map(|base| cores - base),
                core_s_per_gb: None,
                viewer_core_s_per_gb: None,
                rss_baseline_kib,
                rss_start_kib: a.rss_kib,
                rss_end_kib: b.rss_kib,
                rss_per_viewer_kib: None,
            })
        }
        _ => None,
    };
    let bench_cores = match (bench_start, bench_end) {
        (Some(a), Some(b)) => procfs::cores_between(&a, &b),
        _ => 0.0,
    };
    let facts = report::RunFacts {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        mode: args.mode,
        format: args.format,
        targets: urls,
        loadavg_start,
        window_s,
        window_start_us,
        window_end_us,
        connect_s,
        gateway,
        bench_cores,
        others,
        direct: metrics::DirectStats::between(metrics_start.as_ref(), metrics_end.as_ref()),
        publish: metrics::PublishStats::between(metrics_start.as_ref(), metrics_end.as_ref()),
        credit: args.credit,
    };
    let report = Report::build(facts, &outcomes, &probe_outcomes);
    drop(spawned);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_addresses_count_up_from_bind_from() {
        let base = Ipv4Addr::new(10, 213, 1, 250);
        assert_eq!(viewer_address(base, 0).unwrap(), base);
        assert_eq!(
            viewer_address(base, 10).unwrap(),
            Ipv4Addr::new(10, 213, 2, 4),
            "carries into the next octet"
        );
        assert!(viewer_address(Ipv4Addr::BROADCAST, 1).is_err());
    }

    #[test]
    fn sample_pid_takes_name_equals_pid() {
        assert_eq!(parse_named_pid("linkemu=42"), Ok(("linkemu".into(), 42)));
        assert!(parse_named_pid("linkemu").is_err());
        assert!(parse_named_pid("linkemu=x").is_err());
    }

    #[test]
    fn format_is_appended_to_the_query() {
        assert_eq!(
            with_format("ws://h/ws/streams/cam", Format::H264),
            "ws://h/ws/streams/cam?format=h264"
        );
        assert_eq!(
            with_format("ws://h/ws/streams/cam?max_fps=5", Format::Mjpeg),
            "ws://h/ws/streams/cam?max_fps=5&format=mjpeg"
        );
    }

    #[tokio::test]
    async fn viewer_urls_get_the_format_and_stay_as_given_without_it() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["camgate-bench", "--url", "ws://127.0.0.1:1/ws/streams/{id}"];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv).unwrap()
        };
        let urls = target_urls(&parse(&["--streams", "a,b", "--format", "h265"]), None)
            .await
            .unwrap();
        assert_eq!(
            urls,
            [
                "ws://127.0.0.1:1/ws/streams/a?format=h265",
                "ws://127.0.0.1:1/ws/streams/b?format=h265"
            ]
        );
        let urls = target_urls(&parse(&["--streams", "a"]), None)
            .await
            .unwrap();
        assert_eq!(urls, ["ws://127.0.0.1:1/ws/streams/a"]);
    }

    #[test]
    fn credit_needs_a_positive_window() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["camgate-bench", "--url", "ws://127.0.0.1:1/ws/streams/x"];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv)
        };
        assert_eq!(parse(&["--credit", "3"]).unwrap().credit, Some(3));
        assert_eq!(parse(&[]).unwrap().credit, None);
        assert!(parse(&["--credit", "0"]).is_err());
    }
}
