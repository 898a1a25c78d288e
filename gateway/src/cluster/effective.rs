//! What this node runs: the operator's manifest with every stream another node owns
//! replaced by a relay from its owner.
//!
//! Every node loads the same manifest; this is the only place where nodes differ. A stream
//! this node owns runs exactly as written (its camera, its sub). One it does not own keeps
//! its name, health rules and idle timeout, but its source becomes the `relay` plugin
//! reading the owner's `/ws/streams/{id}` (and its sub, if any, the owner's
//! `?variant=sub`, so a derived sub is transcoded once in the cluster), and it runs on
//! demand whatever the manifest says: the owner keeps an always-on camera warm, a relay
//! without viewers would only cost bandwidth.
//!
//! Invariants: pure (the same manifest and view give the same result on every node), so
//! reloads and membership changes are the usual per-stream diff (`reload::diff`): only the
//! streams whose owner changed restart, under their viewers.

use std::collections::BTreeMap;

use super::membership::View;
use super::rendezvous;
use crate::config::{ClusterConfig, Manifest, Membership, SourceConfig, StreamConfig, SubConfig};

/// The plugin nodes relay each other's streams with.
pub const RELAY_PLUGIN: &str = "relay";

/// Stream id → owner node name.
pub type Owners = BTreeMap<String, String>;

/// The manifest this node runs under `view`, and every stream's owner.
///
/// Not in a cluster (or before the first view): the manifest itself, no owners.
pub fn effective(manifest: &Manifest, view: Option<&View>) -> (Manifest, Owners) {
    let (Some(cluster), Some(view)) = (&manifest.cluster, view) else {
        return (manifest.clone(), Owners::new());
    };
    let candidates = candidates(cluster, view);
    let mut owners = Owners::new();
    let mut running = manifest.clone();
    for stream in &mut running.streams {
        let owner = rendezvous::owner(candidates.iter().map(|(name, _)| *name), &stream.id)
            .unwrap_or(cluster.node.as_str());
        owners.insert(stream.id.clone(), owner.to_owned());
        if owner == cluster.node {
            continue;
        }
        let authority = candidates
            .iter()
            .find(|(name, _)| *name == owner)
            .map(|(_, authority)| *authority)
            .unwrap_or_default();
        relay_from(stream, authority, cluster);
    }
    (running, owners)
}

/// The members that may own streams: the ready ones this manifest still lists (a member
/// just removed from a static list is out before the next probing round notices), with
/// their `host:port`; this node always.
fn candidates<'a>(cluster: &'a ClusterConfig, view: &'a View) -> Vec<(&'a str, &'a str)> {
    let listed = |name: &str| match &cluster.membership {
        Membership::Static(members) => members.iter().any(|m| m.name == name),
        Membership::Dns { .. } => true,
    };
    let mut out: Vec<(&str, &str)> = view
        .members
        .iter()
        .filter(|m| m.ready && m.name != cluster.node && listed(&m.name) && !m.authority.is_empty())
        .map(|m| (m.name.as_str(), m.authority.as_str()))
        .collect();
    out.push((cluster.node.as_str(), ""));
    out
}

/// Turns `stream` into a relay of the same stream (and sub) on the node at `authority`.
fn relay_from(stream: &mut StreamConfig, authority: &str, cluster: &ClusterConfig) {
    let url = format!("ws://{authority}/ws/streams/{}", stream.id);
    stream.on_demand = true;
    stream.source = relay_source(&url, cluster, &stream.source);
    if stream.sub.is_some() {
        stream.sub = Some(SubConfig::Url(relay_source(
            &format!("{url}?variant=sub"),
            cluster,
            &stream.source,
        )));
    }
}

fn relay_source(url: &str, cluster: &ClusterConfig, like: &SourceConfig) -> SourceConfig {
    let mut options = serde_json::Map::new();
    options.insert("url".to_owned(), url.into());
    if let Some(token) = &cluster.token {
        options.insert("token".to_owned(), token.expose().into());
    }
    SourceConfig {
        plugin: RELAY_PLUGIN.to_owned(),
        options,
        location: like.location.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::membership::MemberView;
    use super::*;
    use crate::config::{AnySource, parse};
    use std::path::Path;

    fn manifest(node: &str) -> Manifest {
        let yaml = format!(
            "cluster:\n  node: {node}\n  members:\n    - {{name: a, url: 'http://127.0.0.1:8001'}}\n    - {{name: b, url: 'http://127.0.0.1:8002'}}\n    - {{name: c, url: 'http://127.0.0.1:8003'}}\nstreams:\n{}",
            (0..30)
                .map(|i| format!(
                    "  - id: s{i}\n    on_demand: false\n    source: {{plugin: testsrc}}\n{}",
                    if i == 0 {
                        "    sub: {width: 320}\n"
                    } else {
                        ""
                    }
                ))
                .collect::<String>()
        );
        parse(&yaml, Path::new("m.yaml"), &|_| None, &AnySource).unwrap()
    }

    fn view(ready: &[&str]) -> View {
        View {
            members: ["a", "b", "c"]
                .iter()
                .enumerate()
                .map(|(i, name)| MemberView {
                    name: (*name).to_owned(),
                    authority: format!("127.0.0.1:800{}", i + 1),
                    url: String::new(),
                    ready: ready.contains(name),
                })
                .collect(),
        }
    }

    #[test]
    fn every_node_agrees_and_relays_from_the_owner() {
        let all = view(&["a", "b", "c"]);
        let mut owners_seen = Vec::new();
        for node in ["a", "b", "c"] {
            let m = manifest(node);
            let (running, owners) = effective(&m, Some(&all));
            for stream in &running.streams {
                let owner = &owners[&stream.id];
                if owner == node {
                    assert_eq!(stream, m.stream(&stream.id).unwrap(), "owned: as written");
                } else {
                    assert_eq!(stream.source.plugin, "relay");
                    let port = 8001 + ["a", "b", "c"].iter().position(|n| n == owner).unwrap();
                    assert_eq!(
                        stream.source.options["url"],
                        format!("ws://127.0.0.1:{port}/ws/streams/{}", stream.id)
                    );
                    assert!(stream.on_demand, "relays run on demand");
                }
            }
            owners_seen.push(owners);
        }
        assert_eq!(owners_seen[0], owners_seen[1]);
        assert_eq!(owners_seen[1], owners_seen[2]);
        // All three own something among 30 streams.
        for node in ["a", "b", "c"] {
            assert!(owners_seen[0].values().any(|o| o == node));
        }
    }

    #[test]
    fn a_sub_is_relayed_from_the_owners_sub() {
        let m = manifest("a");
        // With only b ready (besides a), find where s0 goes.
        for ready in [&["a", "b"][..], &["a", "c"][..]] {
            let (running, owners) = effective(&m, Some(&view(ready)));
            let s0 = running.stream("s0").unwrap();
            if owners["s0"] != "a" {
                let Some(SubConfig::Url(sub)) = &s0.sub else {
                    panic!("relayed sub");
                };
                assert!(
                    sub.options["url"]
                        .as_str()
                        .unwrap()
                        .ends_with("/ws/streams/s0?variant=sub")
                );
            }
        }
    }

    #[test]
    fn a_dead_member_loses_only_its_streams() {
        let m = manifest("a");
        let (_, before) = effective(&m, Some(&view(&["a", "b", "c"])));
        let (_, after) = effective(&m, Some(&view(&["a", "b"])));
        for (id, owner) in &before {
            if owner != "c" {
                assert_eq!(&after[id], owner, "{id} must not move");
            } else {
                assert_ne!(&after[id], "c");
            }
        }
    }

    #[test]
    fn alone_or_before_the_first_round_it_runs_the_manifest() {
        let m = manifest("a");
        let (running, owners) = effective(&m, None);
        assert_eq!(running, m);
        assert!(owners.is_empty());
        let (running, owners) = effective(&m, Some(&view(&[])));
        assert_eq!(running, m, "nobody else ready: a owns everything");
        assert!(owners.values().all(|o| o == "a"));
    }
}
