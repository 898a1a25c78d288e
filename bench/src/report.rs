//! Turns the viewers' observations into the run's report: per-group delivery, fps,
//! latency, the age of the picture on screen, fan-out spread, time to first frame, gateway
//! CPU and memory, other processes' CPU and the direct pass's counters; printed as a table
//! and serialised as JSON.
//!
//! Two ages: `latency_ms` is a frame's age when the viewer takes it (capture → receipt for
//! a normal viewer, which takes every frame as it completes; capture → the moment a slow
//! viewer reads it). `shown_age_ms` is the age of the picture a viewer shows, sampled every
//! [`SHOWN_AGE_STEP_US`] over the window: at each instant, now − capture time of the newest
//! frame it has taken, so it also grows while no frame comes (low fps, stalls).

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::metrics::{DirectStats, PublishStats};
use crate::viewer::Outcome;

/// Interval at which the shown picture's age is sampled, µs.
pub const SHOWN_AGE_STEP_US: u64 = 10_000;

/// Distribution summary (nearest-rank percentiles).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dist {
    /// Samples.
    pub n: usize,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Dist {
    /// Summarises `values` (in any order); `None` when empty.
    pub fn of(mut values: Vec<f64>) -> Option<Dist> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let pct = |q: f64| {
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            values[rank - 1]
        };
        Some(Dist {
            n: values.len(),
            min: values[0],
            p50: pct(0.50),
            p95: pct(0.95),
            p99: pct(0.99),
            max: values[values.len() - 1],
        })
    }
}

/// What one group of viewers (normal or slow) received in the window.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStats {
    /// Viewers in the group.
    pub viewers: usize,
    /// Viewers whose handshake succeeded.
    pub connected: usize,
    /// Viewers the server disconnected (or that failed) before the end.
    pub ended_early: usize,
    /// Close codes sent by the server, with counts.
    pub close_codes: HashMap<u16, usize>,
    /// Frames received by all viewers of the group in the window.
    pub frames: u64,
    /// JPEG bytes received in the window.
    pub bytes: u64,
    /// Received bytes per second (all viewers of the group), MB/s (10^6).
    pub mbytes_per_s: f64,
    /// Share of the frames published in the window that each viewer received (tagged
    /// frames only); per-viewer distribution.
    pub share: Option<Dist>,
    /// Frames per second per viewer.
    pub fps: Option<Dist>,
    /// Capture → receipt, ms, over all frames of the group.
    pub latency_ms: Option<Dist>,
    /// Publication at the hub → receipt, ms (the gateway's own latency plus the client's).
    pub added_latency_ms: Option<Dist>,
    /// Age of the picture shown (newest frame taken), sampled every 10 ms from each
    /// viewer's first frame in the window to its end, ms.
    pub shown_age_ms: Option<Dist>,
    /// Connect start → first JPEG, ms, per viewer (all viewers connect at once).
    pub ttff_ms: Option<Dist>,
    /// Frames without a Camgate tag (other servers: no latency, no share).
    pub untagged_frames: u64,
    /// `dropped` notices received / frames they reported.
    pub dropped_notices: u64,
    /// Frames reported as skipped by `dropped` notices.
    pub dropped_reported: u64,
    /// Frames of credit granted by the group (`--credit`), warm-up included.
    pub credit_granted: u64,
    /// Video viewers: frames skipped in the window (gaps in the sequence numbers).
    pub skipped_frames: u64,
    /// Video viewers: `config` messages received.
    pub config_messages: u64,
}

/// CPU of another process over the window (`--sample-pid`).
#[derive(Debug, Clone, Serialize)]
pub struct ProcessStats {
    /// The name given on the command line.
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// Cores used in the window; `None` if it could not be sampled.
    pub cores: Option<f64>,
    /// Of these, in user space (the rest is kernel work: for the link emulator, the packet
    /// path its writes drive, up to the viewers' TCP receive).
    pub user_cores: Option<f64>,
}

/// Gateway process figures over the window.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayStats {
    /// The process measured.
    pub pid: u32,
    /// CPU cores used with no viewers (the source's own cost), if measured.
    pub baseline_cores: Option<f64>,
    /// CPU cores used during the window (utime + stime per wall second).
    pub cores: f64,
    /// The gateway's descendant processes alive at the window's end (e.g. ffmpeg).
    pub children: usize,
    /// CPU cores those used during the window (not in `cores`, nor in core-s/GB; one that
    /// ended within the window is missed).
    pub children_cores: f64,
    /// `cores` minus `baseline_cores`: the cost of serving the viewers.
    pub viewer_cores: Option<f64>,
    /// CPU seconds per GB (10^9 bytes) delivered in the window, all cost included.
    pub core_s_per_gb: Option<f64>,
    /// The same with the baseline subtracted.
    pub viewer_core_s_per_gb: Option<f64>,
    /// RSS before any viewer connected, KiB.
    pub rss_baseline_kib: u64,
    /// RSS at the start of the window, KiB.
    pub rss_start_kib: u64,
    /// RSS at the end of the window, KiB.
    pub rss_end_kib: u64,
    /// (RSS at window start − baseline) / connected viewers, KiB.
    pub rss_per_viewer_kib: Option<f64>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `camgate-bench`.
    pub tool: &'static str,
    /// The command line, for reproduction.
    pub command: String,
    /// Cores available.
    pub nproc: usize,
    /// `/proc/loadavg` (1, 5, 15 min) at start and end.
    pub loadavg_start: String,
    /// `/proc/loadavg` at the end.
    pub loadavg_end: String,
    /// `ws` or `mjpeg-http`.
    pub mode: crate::viewer::Mode,
    /// `--format` (`null`: the URL as given).
    pub format: Option<crate::Format>,
    /// The URLs viewers used.
    pub targets: Vec<String>,
    /// Measurement window, s.
    pub window_s: f64,
    /// Time it took all viewers to connect, s.
    pub connect_s: f64,
    /// Normal viewers.
    pub normal: GroupStats,
    /// Slow viewers (`--slow`), if any.
    pub slow: Option<GroupStats>,
    /// Per frame, last minus first receipt across normal viewers of a stream, ms.
    pub spread_ms: Option<Dist>,
    /// The same from the kernel's receive timestamps (WebSocket viewers): when the frame
    /// reached each viewer's socket, without the load tool's scheduling delay, ms.
    pub spread_arrival_ms: Option<Dist>,
    /// Probes (`--probes`): a fresh viewer each, connect start → first JPEG, ms.
    pub probe_ttff_ms: Option<Dist>,
    /// Each probe's time to first frame, ms, in order.
    pub probe_ttff_each_ms: Vec<f64>,
    /// Probes: connect start → first frame captured after it, ms (a cold on-demand
    /// stream's real start-up; on a live stream up to one frame interval).
    pub probe_fresh_ms: Option<Dist>,
    /// Each probe's time to a fresh frame, ms, in order.
    pub probe_fresh_each_ms: Vec<f64>,
    /// Video probes: connect start → the probe holds the GOP up to the newest frame (its
    /// first showable current picture: every frame since the keyframe, the last of them
    /// still the newest when it arrived), ms. Decoding is not included.
    pub probe_gop_ms: Option<Dist>,
    /// Each video probe's time to the GOP up to the newest frame, ms, in order.
    pub probe_gop_each_ms: Vec<f64>,
    /// Each video probe's frames received up to then (the GOP sent on join), in order.
    pub probe_gop_frames_each: Vec<u64>,
    /// Gateway CPU and memory (with `--pid` or `--spawn-gateway`).
    pub gateway: Option<GatewayStats>,
    /// CPU cores the load tool itself used in the window.
    pub bench_cores: f64,
    /// Other processes sampled (`--sample-pid`), e.g. the link emulator.
    pub others: Vec<ProcessStats>,
    /// The gateway's direct-pass counters over the window; `None` ("n/a") when the gateway
    /// does not export them.
    pub direct: Option<DirectStats>,
    /// What publishing cost the source's thread over the window (`None`: not exported).
    pub publish: Option<PublishStats>,
    /// Credit window of the viewers (`--credit`), if they used flow control.
    pub credit: Option<u32>,
    /// Up to 5 distinct viewer errors.
    pub errors: Vec<String>,
}

/// The seq range published in the window for each target: the medians of the viewers'
/// first and last seqs (robust to a viewer that stalls or joins late).
fn seq_ranges(outcomes: &[Outcome]) -> HashMap<usize, (u64, u64)> {
    let mut per_target: HashMap<usize, (Vec<u64>, Vec<u64>)> = HashMap::new();
    // Prefer normal viewers; fall back to slow ones for targets that only have those.
    for slow in [false, true] {
        for o in outcomes.iter().filter(|o| o.slow == slow) {
            if slow && per_target.contains_key(&o.target) {
                continue;
            }
            let (Some(first), Some(last)) = (
                o.receipts.iter().map(|r| r.0).min(),
                o.receipts.iter().map(|r| r.0).max(),
            ) else {
                continue;
            };
            let entry = per_target.entry(o.target).or_default();
            entry.0.push(first);
            entry.1.push(last);
        }
    }
    per_target
        .into_iter()
        .map(|(target, (mut firsts, mut lasts))| {
            firsts.sort_unstable();
            lasts.sort_unstable();
            (target, (firsts[firsts.len() / 2], lasts[lasts.len() / 2]))
        })
        .collect()
}

/// Appends to `out` the age (ms) of the picture `o` shows, every `step_us` from its first
/// frame in the window to `end_us`: now − capture time of the newest frame taken so far.
fn shown_ages(o: &Outcome, end_us: u64, step_us: u64, out: &mut Vec<f64>) {
    // (taken at, captured at); `receipts` and `latency_us` are pushed together per frame.
    let mut taken: Vec<(u64, u64)> = o
        .receipts
        .iter()
        .zip(&o.latency_us)
        .map(|(&(_, at), &age)| (at, at.saturating_sub(u64::from(age))))
        .collect();
    taken.sort_unstable();
    let Some(&(mut t, _)) = taken.first() else {
        return;
    };
    let (mut next, mut newest) = (0, 0);
    while t <= end_us {
        while next < taken.len() && taken[next].0 <= t {
            newest = newest.max(taken[next].1);
            next += 1;
        }
        out.push(t.saturating_sub(newest) as f64 / 1000.0);
        t += step_us;
    }
}

fn group(
    outcomes: &[&Outcome],
    ranges: &HashMap<usize, (u64, u64)>,
    window_s: f64,
    window_end_us: u64,
) -> GroupStats {
    let mut close_codes = HashMap::new();
    for o in outcomes {
        if let Some(code) = o.close_code {
            *close_codes.entry(code).or_insert(0) += 1;
        }
    }
    let frames: u64 = outcomes.iter().map(|o| o.frames).sum();
    let bytes: u64 = outcomes.iter().map(|o| o.bytes).sum();
    let shares = outcomes
        .iter()
        .filter(|o| o.connected)
        .filter_map(|o| {
            let (lo, hi) = *ranges.get(&o.target)?;
            let got = o
                .receipts
                .iter()
                .filter(|r| (lo..=hi).contains(&r.0))
                .count();
            Some(got as f64 / (hi - lo + 1) as f64)
        })
        .collect();
    let ms = |v: &u32| f64::from(*v) / 1000.0;
    GroupStats {
        viewers: outcomes.len(),
        connected: outcomes.iter().filter(|o| o.connected).count(),
        ended_early: outcomes
            .iter()
            .filter(|o| o.ended_early || o.error.is_some())
            .count(),
        close_codes,
        frames,
        bytes,
        mbytes_per_s: bytes as f64 / 1e6 / window_s,
        share: Dist::of(shares),
        fps: Dist::of(
            outcomes
                .iter()
                .filter(|o| o.connected)
                .map(|o| o.frames as f64 / window_s)
                .collect(),
        ),
        latency_ms: Dist::of(
            outcomes
                .iter()
                .flat_map(|o| o.latency_us.iter().map(ms))
                .collect(),
        ),
        added_latency_ms: Dist::of(
            outcomes
                .iter()
                .flat_map(|o| o.added_us.iter().map(ms))
                .collect(),
        ),
        shown_age_ms: Dist::of({
            let mut ages = Vec::new();
            for o in outcomes {
                shown_ages(o, window_end_us, SHOWN_AGE_STEP_US, &mut ages);
            }
            ages
        }),
        ttff_ms: Dist::of(
            outcomes
                .iter()
                .filter_map(|o| o.ttff_us)
                .map(|us| us as f64 / 1000.0)
                .collect(),
        ),
        untagged_frames: outcomes.iter().map(|o| o.untagged).sum(),
        dropped_notices: outcomes.iter().map(|o| o.dropped_notices).sum(),
        dropped_reported: outcomes.iter().map(|o| o.dropped_reported).sum(),
        credit_granted: outcomes.iter().map(|o| o.credit_granted).sum(),
        skipped_frames: outcomes.iter().map(|o| o.skipped).sum(),
        config_messages: outcomes.iter().map(|o| o.configs).sum(),
    }
}

/// Fan-out spread: for every (target, seq) received by at least two normal viewers, the
/// time between its first and its last receipt, with receipt times taken by `times`.
fn spread(
    outcomes: &[Outcome],
    ranges: &HashMap<usize, (u64, u64)>,
    times: fn(&Outcome) -> &[(u64, u64)],
) -> Option<Dist> {
    let mut by_frame: HashMap<(usize, u64), (u64, u64, u32)> = HashMap::new();
    for o in outcomes.iter().filter(|o| !o.slow) {
        let Some(&(lo, hi)) = ranges.get(&o.target) else {
            continue;
        };
        for &(seq, at) in times(o).iter().filter(|r| (lo..=hi).contains(&r.0)) {
            let e = by_frame.entry((o.target, seq)).or_insert((at, at, 0));
            e.0 = e.0.min(at);
            e.1 = e.1.max(at);
            e.2 += 1;
        }
    }
    Dist::of(
        by_frame
            .values()
            .filter(|e| e.2 >= 2)
            .map(|e| (e.1 - e.0) as f64 / 1000.0)
            .collect(),
    )
}

/// Inputs of [`Report::build`] that do not come from the viewers.
pub struct RunFacts {
    /// The command line.
    pub command: String,
    /// Viewer mode.
    pub mode: crate::viewer::Mode,
    /// `--format`.
    pub format: Option<crate::Format>,
    /// Target URLs.
    pub targets: Vec<String>,
    /// Load average at the start.
    pub loadavg_start: String,
    /// Measurement window, s.
    pub window_s: f64,
    /// Window start, µs since the Unix epoch.
    pub window_start_us: u64,
    /// Window end, µs since the Unix epoch.
    pub window_end_us: u64,
    /// Connect phase, s.
    pub connect_s: f64,
    /// Gateway figures, if a pid was known.
    pub gateway: Option<GatewayStats>,
    /// The tool's own cores in the window.
    pub bench_cores: f64,
    /// Other processes' CPU over the window.
    pub others: Vec<ProcessStats>,
    /// The direct pass's counters over the window.
    pub direct: Option<DirectStats>,
    /// `camgate_publish_seconds` over the window.
    pub publish: Option<PublishStats>,
    /// `--credit`.
    pub credit: Option<u32>,
}

impl Report {
    /// Aggregates the viewers' and probes' outcomes.
    pub fn build(facts: RunFacts, viewers: &[Outcome], probes: &[Outcome]) -> Report {
        let ranges = seq_ranges(viewers);
        let normal: Vec<&Outcome> = viewers.iter().filter(|o| !o.slow).collect();
        let slow: Vec<&Outcome> = viewers.iter().filter(|o| o.slow).collect();
        let mut errors: Vec<String> = Vec::new();
        for e in viewers.iter().chain(probes).filter_map(|o| o.error.clone()) {
            if errors.len() < 5 && !errors.contains(&e) {
                errors.push(e);
            }
        }
        let probe_each: Vec<f64> = probes
            .iter()
            .filter_map(|o| o.ttff_us)
            .map(|us| us as f64 / 1000.0)
            .collect();
        let probe_fresh: Vec<f64> = probes
            .iter()
            .filter_map(|o| o.fresh_us)
            .map(|us| us as f64 / 1000.0)
            .collect();
        let probe_gop: Vec<f64> = probes
            .iter()
            .filter_map(|o| o.gop_us)
            .map(|us| us as f64 / 1000.0)
            .collect();
        let mut gateway = facts.gateway;
        if let Some(g) = gateway.as_mut() {
            let gb = viewers.iter().map(|o| o.bytes).sum::<u64>() as f64 / 1e9;
            if gb > 0.0 {
                g.core_s_per_gb = Some(g.cores * facts.window_s / gb);
                g.viewer_core_s_per_gb = g.viewer_cores.map(|c| c * facts.window_s / gb);
            }
            let connected = viewers.iter().filter(|o| o.connected).count();
            if connected > 0 {
                g.rss_per_viewer_kib =
                    Some((g.rss_start_kib as f64 - g.rss_baseline_kib as f64) / connected as f64);
            }
        }
        Report {
            tool: "camgate-bench",
            command: facts.command,
            nproc: crate::procfs::nproc(),
            loadavg_start: facts.loadavg_start,
            loadavg_end: crate::procfs::loadavg(),
            mode: facts.mode,
            format: facts.format,
            targets: facts.targets,
            window_s: facts.window_s,
            connect_s: facts.connect_s,
            normal: group(&normal, &ranges, facts.window_s, facts.window_end_us),
            slow: (!slow.is_empty())
                .then(|| group(&slow, &ranges, facts.window_s, facts.window_end_us)),
            spread_ms: spread(viewers, &ranges, |o| &o.receipts),
            spread_arrival_ms: spread(viewers, &ranges, |o| &o.arrivals),
            probe_ttff_ms: Dist::of(probe_each.clone()),
            probe_ttff_each_ms: probe_each,
            probe_fresh_ms: Dist::of(probe_fresh.clone()),
            probe_fresh_each_ms: probe_fresh,
            probe_gop_ms: Dist::of(probe_gop.clone()),
            probe_gop_each_ms: probe_gop,
            probe_gop_frames_each: probes.iter().filter_map(|o| o.gop_frames).collect(),
            gateway,
            bench_cores: facts.bench_cores,
            others: facts.others,
            direct: facts.direct,
            publish: facts.publish,
            credit: facts.credit,
            errors,
        }
    }

    /// A human-readable summary.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let d = |d: &Option<Dist>, digits: usize| match d {
            Some(d) => format!(
                "min {:.digits$} p50 {:.digits$} p99 {:.digits$} max {:.digits$} (n={})",
                d.min, d.p50, d.p99, d.max, d.n
            ),
            None => "-".to_owned(),
        };
        let _ = writeln!(s, "camgate-bench  {}", self.command);
        let _ = writeln!(
            s,
            "machine        nproc {}  loadavg start {}  end {}",
            self.nproc, self.loadavg_start, self.loadavg_end
        );
        let _ = writeln!(
            s,
            "run            mode {:?}  targets {}  window {:.1} s  connect phase {:.2} s",
            self.mode,
            self.targets.len(),
            self.window_s,
            self.connect_s
        );
        if let Some(format) = self.format {
            let _ = writeln!(s, "format         {}", format.as_str());
        }
        let mut groups = vec![("normal", &self.normal)];
        if let Some(slow) = &self.slow {
            groups.push(("slow", slow));
        }
        for (name, g) in groups {
            let _ = writeln!(
                s,
                "[{name}] viewers {} connected {} ended early {} close codes {:?}",
                g.viewers, g.connected, g.ended_early, g.close_codes
            );
            let _ = writeln!(s, "  share          {}", d(&g.share, 3));
            let _ = writeln!(s, "  fps/viewer     {}", d(&g.fps, 2));
            let _ = writeln!(s, "  latency ms     {}", d(&g.latency_ms, 1));
            let _ = writeln!(s, "  added ms       {}", d(&g.added_latency_ms, 1));
            let _ = writeln!(s, "  shown age ms   {}", d(&g.shown_age_ms, 1));
            let _ = writeln!(s, "  first frame ms {}", d(&g.ttff_ms, 1));
            let _ = writeln!(
                s,
                "  received       {} frames, {:.1} MB/s, untagged {}, dropped notices {} ({} frames)",
                g.frames, g.mbytes_per_s, g.untagged_frames, g.dropped_notices, g.dropped_reported
            );
            if self.credit.is_some() {
                let _ = writeln!(s, "  credit granted {} frames", g.credit_granted);
            }
            if g.config_messages > 0 || g.skipped_frames > 0 {
                let per_viewer = g.bytes as f64 / g.connected.max(1) as f64 / self.window_s;
                let _ = writeln!(
                    s,
                    "  video          skipped {} frames (seq gaps), {} config messages, {:.1} kB/s per viewer",
                    g.skipped_frames,
                    g.config_messages,
                    per_viewer / 1e3
                );
            }
        }
        let _ = writeln!(s, "spread ms      {}", d(&self.spread_ms, 1));
        if self.spread_arrival_ms.is_some() {
            let _ = writeln!(s, "  at socket    {}", d(&self.spread_arrival_ms, 1));
        }
        if !self.probe_ttff_each_ms.is_empty() {
            let _ = writeln!(s, "probe ttff ms  {}", d(&self.probe_ttff_ms, 2));
            let _ = writeln!(s, "probe fresh ms {}", d(&self.probe_fresh_ms, 2));
        }
        if let Some(gop) = &self.probe_gop_ms {
            let frames = Dist::of(
                self.probe_gop_frames_each
                    .iter()
                    .map(|&n| n as f64)
                    .collect(),
            );
            let _ = writeln!(
                s,
                "probe GOP ms   {} p95 {:.2}; frames {}",
                d(&self.probe_gop_ms, 2),
                gop.p95,
                d(&frames, 0)
            );
        }
        if let Some(g) = &self.gateway {
            let opt = |v: Option<f64>, digits: usize| {
                v.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
            };
            let _ = writeln!(
                s,
                "gateway        pid {} cores {:.3} (baseline {}, viewers {})  core-s/GB {} (viewers only {})",
                g.pid,
                g.cores,
                opt(g.baseline_cores, 3),
                opt(g.viewer_cores, 3),
                opt(g.core_s_per_gb, 3),
                opt(g.viewer_core_s_per_gb, 3)
            );
            if g.children > 0 {
                let _ = writeln!(
                    s,
                    "gateway kids   {} processes, cores {:.3}; gateway with them {:.3}",
                    g.children,
                    g.children_cores,
                    g.cores + g.children_cores
                );
            }
            let _ = writeln!(
                s,
                "gateway RSS    baseline {} KiB, window start {} KiB, end {} KiB, per viewer {} KiB",
                g.rss_baseline_kib,
                g.rss_start_kib,
                g.rss_end_kib,
                opt(g.rss_per_viewer_kib, 1)
            );
        }
        let _ = writeln!(s, "load tool      cores {:.3}", self.bench_cores);
        for o in &self.others {
            let cores = o.cores.map_or("-".to_owned(), |c| format!("{c:.3}"));
            let user = o.user_cores.map_or("-".to_owned(), |c| format!("{c:.3}"));
            let _ = writeln!(
                s,
                "{:<14} pid {} cores {cores} (user {user})",
                o.name, o.pid
            );
        }
        match &self.direct {
            Some(d) => {
                let _ = writeln!(
                    s,
                    "direct pass    frames {} handovers cut {} gap {}",
                    d.frames, d.handovers_cut, d.handovers_gap
                );
            }
            None => {
                let _ = writeln!(s, "direct pass    n/a (no camgate_direct_* metrics)");
            }
        }
        if let Some(p) = &self.publish {
            let p99 = p
                .p99_at_most_us
                .map_or("beyond the last bucket".to_owned(), |us| {
                    format!("<= {us} us")
                });
            let _ = writeln!(
                s,
                "publish cost   {} frames, {:.1} % within 50 us, p99 {p99} (source's thread)",
                p.frames,
                p.within_50us * 100.0
            );
        }
        if let Some(window) = self.credit {
            let _ = writeln!(s, "credit         window {window}");
        }
        for e in &self.errors {
            let _ = writeln!(s, "error          {e}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d = Dist::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!(
            (d.min, d.p50, d.p95, d.p99, d.max, d.n),
            (1.0, 50.0, 95.0, 99.0, 100.0, 100)
        );
        // 20 joins: p95 is the 19th.
        let d = Dist::of((1..=20).map(f64::from).collect()).unwrap();
        assert_eq!((d.p95, d.p99), (19.0, 20.0));
        assert!(Dist::of(Vec::new()).is_none());
    }

    #[test]
    fn share_and_spread_use_the_common_seq_range() {
        let viewer = |slow, seqs: &[u64], t0: u64| Outcome {
            connected: true,
            slow,
            frames: seqs.len() as u64,
            receipts: seqs.iter().map(|s| (*s, t0 + s * 100_000)).collect(),
            ..Outcome::default()
        };
        let outcomes = vec![
            viewer(false, &[1, 2, 3, 4], 0),
            viewer(false, &[1, 2, 3, 4], 2_000),
            viewer(false, &[1, 3, 4], 1_000),
            viewer(true, &[2], 0),
        ];
        let ranges = seq_ranges(&outcomes);
        assert_eq!(ranges[&0], (1, 4));
        let normal: Vec<&Outcome> = outcomes.iter().filter(|o| !o.slow).collect();
        let g = group(&normal, &ranges, 1.0, 400_000);
        assert_eq!(g.share.as_ref().unwrap().min, 0.75);
        assert_eq!(g.share.as_ref().unwrap().max, 1.0);
        let s = spread(&outcomes, &ranges, |o| &o.receipts).unwrap();
        assert_eq!(s.max, 2.0);
    }

    #[test]
    fn the_shown_age_follows_the_newest_frame_and_grows_between_frames() {
        // Frames taken at 100 ms and 400 ms, each 50 ms old then; the window ends at 600 ms.
        let viewer = Outcome {
            connected: true,
            frames: 2,
            receipts: vec![(1, 100_000), (2, 400_000)],
            latency_us: vec![50_000, 50_000],
            ..Outcome::default()
        };
        let mut ages = Vec::new();
        shown_ages(&viewer, 600_000, 100_000, &mut ages);
        assert_eq!(ages, [50.0, 150.0, 250.0, 50.0, 150.0, 250.0]);
        // A frame older than the one shown (out of order) does not replace it.
        let late = Outcome {
            receipts: vec![(2, 100_000), (1, 200_000)],
            latency_us: vec![50_000, 300_000],
            ..Outcome::default()
        };
        ages.clear();
        shown_ages(&late, 200_000, 100_000, &mut ages);
        assert_eq!(ages, [50.0, 150.0]);
        // No frame in the window: no sample.
        ages.clear();
        shown_ages(&Outcome::default(), 600_000, 100_000, &mut ages);
        assert!(ages.is_empty());
    }
}
