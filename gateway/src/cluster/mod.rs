//! Cluster mode: several gateways share one manifest, each camera has one owner, and
//! every other node serves that camera's viewers by relaying from the owner.
//!
//! - `membership.rs` probes the members (a static list, or a DNS name such as a Kubernetes
//!   headless Service) every `cluster.probe_interval`: who is ready;
//! - `rendezvous.rs` chooses each stream's owner among the ready members, the same way on
//!   every node and in the balancer (`deploy/haproxy/camgate.lua`), without coordination;
//! - `effective.rs` turns the operator's manifest into the one this node runs: streams it
//!   does not own are relayed from their owner (the `relay` plugin);
//! - [`ClusterState`] keeps the last view and the owners applied, for `GET /api/cluster`,
//!   `/readyz` and the metrics; [`spawn`] runs the rounds and, when the ready set changes,
//!   re-applies the configuration, so only the streams whose owner changed restart, under
//!   their viewers (`app.rs`, `reload::diff`).
//!
//! Invariants: the first round completes before any stream starts (`Gateway::start`), so a
//! node that comes up does not open every camera for the second it takes to see the
//! others; views and owners are replaced whole, never edited in place.

mod effective;
mod membership;
mod probe;
mod rendezvous;

use std::sync::{Arc, RwLock};

use tokio::sync::watch;

pub use effective::{Owners, RELAY_PLUGIN, effective};
pub use membership::{FALL, MemberView, Prober, View, joining_wait, probe_timeout};
pub use probe::{ProbeError, node_name, readyz};
pub use rendezvous::{owner, score};

use crate::app::AppState;

/// The cluster as this node sees it.
#[derive(Default)]
pub struct ClusterState {
    /// The last round's members; `None` when not in a cluster or before the first round.
    view: RwLock<Option<Arc<View>>>,
    /// The owners in force (what the hubs run), stream id → node.
    owners: RwLock<Arc<Owners>>,
    /// Remembers failures between rounds.
    prober: tokio::sync::Mutex<Prober>,
}

impl ClusterState {
    /// The last round's view (`None`: not in a cluster, or before the first round).
    pub fn view(&self) -> Option<Arc<View>> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stream id → owner, as applied.
    pub fn owners(&self) -> Arc<Owners> {
        Arc::clone(&self.owners.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records the owners just applied; returns how many streams changed owner (streams
    /// that appeared or disappeared do not count).
    pub fn set_owners(&self, owners: Owners) -> usize {
        let mut current = self.owners.write().unwrap_or_else(|e| e.into_inner());
        let moved = owners
            .iter()
            .filter(|(id, owner)| current.get(*id).is_some_and(|o| o != *owner))
            .count();
        *current = Arc::new(owners);
        moved
    }

    /// Runs one probing round for `config`'s cluster and keeps its view; `true` when the
    /// set of ready members (or their addresses) changed.
    pub async fn probe(&self, cluster: &crate::config::ClusterConfig) -> bool {
        let view = self
            .prober
            .lock()
            .await
            .round(cluster, probe_timeout(cluster.probe_interval))
            .await;
        let mut current = self.view.write().unwrap_or_else(|e| e.into_inner());
        let changed = current
            .as_deref()
            .is_none_or(|old| ready_set(old) != ready_set(&view));
        *current = Some(Arc::new(view));
        changed
    }

    /// Forgets the view (the manifest left cluster mode).
    pub fn clear(&self) {
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// What ownership depends on: the ready members and where they are.
fn ready_set(view: &View) -> Vec<(&str, &str)> {
    view.members
        .iter()
        .filter(|m| m.ready)
        .map(|m| (m.name.as_str(), m.authority.as_str()))
        .collect()
}

/// Probes the members every `cluster.probe_interval` of the configuration in force and
/// re-applies the configuration when the ready set changes. Ends at shutdown.
pub fn spawn(
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let cluster = state.config().manifest.cluster.clone();
            let interval = cluster
                .as_ref()
                .map_or(crate::config::DEFAULT_PROBE_INTERVAL, |c| c.probe_interval);
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            match state.config().manifest.cluster.clone() {
                Some(cluster) => {
                    if state.cluster.probe(&cluster).await {
                        state.reassign().await;
                    }
                }
                None => state.cluster.clear(),
            }
        }
    })
}
