//! Reads the gateway's direct-pass counters from its Prometheus endpoint (`GET /metrics`)
//! before and after the window, so a run reports how often the fan-out wrote frames whole
//! to viewer sockets and how often it handed a viewer back to its own session task.
//!
//! The counters are `camgate_direct_frames_total{stream}` and
//! `camgate_direct_handovers_total{stream,reason}` (reason `cut`: the socket took only part
//! of a frame; `gap`: the viewer had missed frames), summed over streams. A gateway without
//! them (older builds, other servers) or an endpoint that answers with anything but 200
//! gives `None`, reported as "n/a": the tool works before and after they exist.
//!
//! The same scrapes give `camgate_publish_seconds` (what each publication cost the
//! source's thread): its buckets' growth over the window, summed over streams.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

/// Direct-pass frames written whole.
pub const DIRECT_FRAMES: &str = "camgate_direct_frames_total";
/// Hand-overs from the direct pass to a viewer's session, by reason.
pub const DIRECT_HANDOVERS: &str = "camgate_direct_handovers_total";
/// Buckets of the time a publication cost the source's thread.
pub const PUBLISH_BUCKETS: &str = "camgate_publish_seconds_bucket";

/// One scrape: every sample of the two counters, summed over streams, by reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// `camgate_direct_frames_total`, if the gateway has it.
    pub frames: Option<f64>,
    /// `camgate_direct_handovers_total` by `reason`.
    pub handovers: HashMap<String, f64>,
    /// `camgate_publish_seconds` bucket counts by upper bound `le` (as written).
    pub publish: HashMap<String, f64>,
}

/// The value of `label` in a sample's `{a="x",b="y"}` label set.
fn label<'a>(labels: &'a str, label: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name.trim() == label).then(|| value.trim().trim_matches('"'))
    })
}

impl Scrape {
    /// Parses the text exposition format; only the two counters are kept.
    pub fn parse(text: &str) -> Scrape {
        let mut scrape = Scrape::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if name == DIRECT_FRAMES {
                *scrape.frames.get_or_insert(0.0) += value;
            } else if name == DIRECT_HANDOVERS {
                let reason = label(labels, "reason").unwrap_or("").to_owned();
                *scrape.handovers.entry(reason).or_insert(0.0) += value;
            } else if name == PUBLISH_BUCKETS {
                let le = label(labels, "le").unwrap_or("").to_owned();
                *scrape.publish.entry(le).or_insert(0.0) += value;
            }
        }
        scrape
    }
}

/// `GET /metrics` on `addr` (5 s at most); `None` if it fails or answers anything but 200.
pub async fn scrape(addr: SocketAddr) -> Option<Scrape> {
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(5), crate::http_get(addr, "/metrics"))
            .await
            .ok()?
            .ok()?;
    (status == 200).then(|| Scrape::parse(&String::from_utf8_lossy(&body)))
}

/// What the direct pass did during the window (differences of the two scrapes).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DirectStats {
    /// Frames the fan-out wrote whole to a viewer socket.
    pub frames: f64,
    /// Hand-overs because a socket took only part of a frame.
    pub handovers_cut: f64,
    /// Hand-overs because the viewer had missed frames.
    pub handovers_gap: f64,
}

impl DirectStats {
    /// The counters' growth from `start` to `end`; `None` unless both scrapes have
    /// `camgate_direct_frames_total`.
    pub fn between(start: Option<&Scrape>, end: Option<&Scrape>) -> Option<DirectStats> {
        let (start, end) = (start?, end?);
        let reason = |r: &str| {
            end.handovers.get(r).copied().unwrap_or(0.0)
                - start.handovers.get(r).copied().unwrap_or(0.0)
        };
        Some(DirectStats {
            frames: end.frames? - start.frames?,
            handovers_cut: reason("cut"),
            handovers_gap: reason("gap"),
        })
    }
}

/// What publishing cost the source's thread during the window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PublishStats {
    /// Publications in the window.
    pub frames: f64,
    /// Share of them that took at most 50 µs (the fan-out issue's target for p99).
    pub within_50us: f64,
    /// The smallest bucket bound, in µs, that holds 99 % of them (`None`: beyond the last).
    pub p99_at_most_us: Option<f64>,
}

impl PublishStats {
    /// The buckets' growth from `start` to `end`; `None` without publications or buckets.
    pub fn between(start: Option<&Scrape>, end: Option<&Scrape>) -> Option<PublishStats> {
        let (start, end) = (start?, end?);
        let grown = |le: &str| {
            end.publish.get(le).copied().unwrap_or(0.0)
                - start.publish.get(le).copied().unwrap_or(0.0)
        };
        let frames = grown("+Inf");
        if frames <= 0.0 {
            return None;
        }
        let mut bounds: Vec<(f64, f64)> = end
            .publish
            .keys()
            .filter_map(|le| Some((le.parse::<f64>().ok()?, grown(le))))
            .filter(|(bound, _)| bound.is_finite())
            .collect();
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        let within = |limit: f64| {
            bounds
                .iter()
                .rfind(|(bound, _)| *bound <= limit + 1e-12)
                .map_or(0.0, |(_, n)| n / frames)
        };
        Some(PublishStats {
            frames,
            within_50us: within(50e-6),
            p99_at_most_us: bounds
                .iter()
                .find(|(_, n)| n / frames >= 0.99)
                .map(|(bound, _)| bound * 1e6),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_buckets_give_the_share_within_50_us_and_the_p99_bound() {
        let bucket = |le: &str, n: u32| {
            format!("camgate_publish_seconds_bucket{{stream=\"cam\",le=\"{le}\"}} {n}\n")
        };
        let at = |counts: [u32; 4]| -> Scrape {
            let text: String = [
                ("0.000025", counts[0]),
                ("0.00005", counts[1]),
                ("0.0001", counts[2]),
                ("+Inf", counts[3]),
            ]
            .iter()
            .map(|(le, n)| bucket(le, *n))
            .collect();
            Scrape::parse(&text)
        };
        let start = at([10, 50, 60, 60]);
        let end = at([10, 248, 259, 260]);
        let stats = PublishStats::between(Some(&start), Some(&end)).unwrap();
        assert_eq!(stats.frames, 200.0);
        assert_eq!(stats.within_50us, 198.0 / 200.0);
        assert_eq!(stats.p99_at_most_us, Some(50.0));
        assert_eq!(
            PublishStats::between(Some(&end), Some(&end)),
            None,
            "no publications"
        );
    }

    const BEFORE: &str = "# HELP camgate_direct_frames_total Frames written whole\n\
        # TYPE camgate_direct_frames_total counter\n\
        camgate_direct_frames_total{stream=\"cam\"} 100\n\
        camgate_direct_frames_total{stream=\"other\"} 5\n\
        camgate_direct_handovers_total{stream=\"cam\",reason=\"cut\"} 3\n\
        camgate_frames_total{stream=\"cam\"} 999\n";
    const AFTER: &str = "camgate_direct_frames_total{stream=\"cam\"} 150\n\
        camgate_direct_frames_total{stream=\"other\"} 5\n\
        camgate_direct_handovers_total{stream=\"cam\",reason=\"cut\"} 10\n\
        camgate_direct_handovers_total{stream=\"cam\",reason=\"gap\"} 2\n";

    #[test]
    fn counters_are_summed_over_streams_and_differenced() {
        let (a, b) = (Scrape::parse(BEFORE), Scrape::parse(AFTER));
        assert_eq!(a.frames, Some(105.0));
        assert_eq!(
            DirectStats::between(Some(&a), Some(&b)),
            Some(DirectStats {
                frames: 50.0,
                handovers_cut: 7.0,
                handovers_gap: 2.0
            })
        );
    }

    #[test]
    fn a_gateway_without_the_counters_gives_none() {
        let old = Scrape::parse("camgate_frames_total{stream=\"cam\"} 5\n");
        assert_eq!(old.frames, None);
        assert_eq!(DirectStats::between(Some(&old), Some(&old)), None);
        assert_eq!(
            DirectStats::between(None, Some(&Scrape::parse(AFTER))),
            None
        );
    }
}
