//! Reads the gateway's direct-pass counters from its Prometheus endpoint (`GET /metrics`)
//! before and after the window, so a run reports how often the fan-out wrote frames whole
//! to viewer sockets and how often it handed a viewer back to its own session task.
//!
//! The counters are `camgate_direct_frames_total{stream}` and
//! `camgate_direct_handovers_total{stream,reason}` (reason `cut`: the socket took only part
//! of a frame; `gap`: the viewer had missed frames), summed over streams. A gateway without
//! them (older builds, other servers) or an endpoint that answers with anything but 200
//! gives `None`, reported as "n/a": the tool works before and after they exist.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

/// Direct-pass frames written whole.
pub const DIRECT_FRAMES: &str = "camgate_direct_frames_total";
/// Hand-overs from the direct pass to a viewer's session, by reason.
pub const DIRECT_HANDOVERS: &str = "camgate_direct_handovers_total";

/// One scrape: every sample of the two counters, summed over streams, by reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// `camgate_direct_frames_total`, if the gateway has it.
    pub frames: Option<f64>,
    /// `camgate_direct_handovers_total` by `reason`.
    pub handovers: HashMap<String, f64>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
