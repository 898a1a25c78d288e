//! Which members are ready: one probing round asks every member's `/readyz` at once.
//!
//! Members come from the manifest's static list, or from every address a DNS name
//! resolves to (a Kubernetes headless Service lists only ready pods; each pod then says
//! its own name in its `/readyz`). A node always counts itself ready.
//!
//! Invariants: a member that refuses connections (its process is gone) is out at once; any
//! other failure counts it out only at the [`FALL`]th round in a row, so one slow answer
//! from a busy node does not move its streams back and forth; one good answer brings it
//! back. A static member answering with another name is a misconfiguration and never
//! counts (two entries would otherwise be one node, owning twice).

use std::collections::HashMap;
use std::time::Duration;

use super::probe::{self, ProbeError};
use crate::config::{ClusterConfig, Membership};

/// Failed rounds in a row (short of a refused connection) before a member counts out.
pub const FALL: u32 = 2;

/// One member as the last round saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberView {
    /// Its node name.
    pub name: String,
    /// `host:port` of its listener (empty for this node when DNS has not listed it yet).
    #[serde(skip)]
    pub authority: String,
    /// `http://host:port`, as the API shows it.
    pub url: String,
    /// Counts for ownership.
    pub ready: bool,
}

/// Every member of the last round, sorted by name (this node included).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct View {
    /// The members.
    pub members: Vec<MemberView>,
}

impl View {
    /// The ready members' names.
    pub fn ready_names(&self) -> impl Iterator<Item = &str> {
        self.members
            .iter()
            .filter(|m| m.ready)
            .map(|m| m.name.as_str())
    }

    /// The member called `name`.
    pub fn member(&self, name: &str) -> Option<&MemberView> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// What one member's probes have found so far.
#[derive(Debug, Default)]
struct Track {
    ready: bool,
    failures: u32,
    name: Option<String>,
    /// The last reason it was out, so a change of reason is logged once.
    reason: Option<String>,
}

/// Probes members round after round, remembering failures between rounds.
#[derive(Debug, Default)]
pub struct Prober {
    tracks: HashMap<String, Track>,
}

impl Prober {
    /// One round: asks every member at once; returns the view.
    pub async fn round(&mut self, cluster: &ClusterConfig, timeout: Duration) -> View {
        let targets: Vec<(Option<String>, String)> = match &cluster.membership {
            Membership::Static(members) => members
                .iter()
                .filter(|m| m.name != cluster.node)
                .map(|m| (Some(m.name.clone()), m.authority.clone()))
                .collect(),
            Membership::Dns { name, port } => {
                match tokio::net::lookup_host((name.as_str(), *port)).await {
                    Ok(addrs) => {
                        let mut found: Vec<String> = addrs.map(|a| a.to_string()).collect();
                        found.sort();
                        found.dedup();
                        found.into_iter().map(|a| (None, a)).collect()
                    }
                    Err(e) => {
                        tracing::warn!(name = %name, error = %e, "cannot resolve cluster.members_dns; keeping the members already known");
                        self.tracks
                            .keys()
                            .map(|authority| (None, authority.clone()))
                            .collect()
                    }
                }
            }
        };
        let answers = futures_util::future::join_all(
            targets
                .iter()
                .map(|(_, authority)| probe::readyz(authority, timeout)),
        )
        .await;
        self.tracks
            .retain(|authority, _| targets.iter().any(|(_, a)| a == authority));
        let mut members = vec![MemberView {
            name: cluster.node.clone(),
            authority: cluster.own_authority().unwrap_or_default().to_owned(),
            url: String::new(),
            ready: true,
        }];
        for ((expected, authority), answer) in targets.into_iter().zip(answers) {
            let track = self.tracks.entry(authority.clone()).or_default();
            let name = match judge(answer, expected.as_deref(), track) {
                Outcome::Answered(name) => {
                    if !track.ready {
                        tracing::info!(member = %name, %authority, "cluster member ready");
                    }
                    *track = Track {
                        ready: true,
                        failures: 0,
                        name: Some(name.clone()),
                        reason: None,
                    };
                    Some(name)
                }
                // Still counted: one missed answer is not a dead node.
                Outcome::Missed => track.name.clone(),
                Outcome::Out(reason) => {
                    if track.ready || track.reason.as_deref() != Some(reason.as_str()) {
                        let member = expected.as_deref().or(track.name.as_deref()).unwrap_or("?");
                        tracing::warn!(%member, %authority, %reason, "cluster member not ready");
                    }
                    track.ready = false;
                    track.reason = Some(reason);
                    expected.clone().or_else(|| track.name.clone())
                }
            };
            let ready = track.ready;
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                if name == cluster.node {
                    // DNS lists this node too: that is where others reach it.
                    members[0].authority = authority;
                    continue;
                }
                if members.iter().any(|m| m.name == name) {
                    tracing::warn!(member = %name, %authority, "two addresses answer as the same node; using the first");
                    continue;
                }
                members.push(MemberView {
                    name,
                    authority,
                    url: String::new(),
                    ready,
                });
            }
        }
        for member in &mut members {
            if !member.authority.is_empty() {
                member.url = format!("http://{}", member.authority);
            }
        }
        members.sort_by(|a, b| a.name.cmp(&b.name));
        View { members }
    }
}

/// How long a starting node answers `starting` before its first round: one probing period
/// of every other member (interval + the longest probe), so each has counted it and let go
/// of the cameras it now owns before it opens them (no camera gets two sessions when a
/// node joins, and nodes started together find each other even if one binds its port
/// a moment after another's first probe).
pub fn joining_wait(interval: Duration) -> Duration {
    interval + probe_timeout(interval)
}

/// How long one probe may take: the round's interval, within 1–5 s.
pub fn probe_timeout(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(1), Duration::from_secs(5))
}

/// What one answer means for a member.
enum Outcome {
    /// Ready, under this name.
    Answered(String),
    /// No good answer, but not yet [`FALL`] in a row: still counted.
    Missed,
    /// Not ready, and why.
    Out(String),
}

fn judge(answer: Result<String, ProbeError>, expected: Option<&str>, track: &mut Track) -> Outcome {
    match answer {
        Ok(name) if expected.is_some_and(|e| e != name) => Outcome::Out(format!(
            "it says it is node `{name}`, not `{}`: check cluster.members",
            expected.unwrap_or_default()
        )),
        Ok(name) => Outcome::Answered(name),
        Err(e) => {
            track.failures += 1;
            if e.is_final() || track.failures >= FALL || !track.ready {
                Outcome::Out(e.to_string())
            } else {
                Outcome::Missed
            }
        }
    }
}
