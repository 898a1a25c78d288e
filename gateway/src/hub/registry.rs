//! The registry: a concurrent map from stream id to hub, and the idle reaper that walks it.
//!
//! A stream's `sub` variant is a hub of its own, kept in a second map under the same id
//! ([`Registry::get_variant`]). Invariants: a sub exists only next to its main (removing a
//! stream removes both); [`Registry::all`] lists mains only (the API's streams); the reaper,
//! [`Registry::stop_all`] and [`Registry::dismiss_all_viewers`] cover the subs too, subs
//! first: a derived sub watches its main, so stopping it first lets the main go idle.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::watch;

use super::stream_hub::{Closing, Hub};
use super::variant::Variant;

/// All hubs of the gateway, by stream id. Lookups are lock-free for readers of other keys.
#[derive(Default)]
pub struct Registry {
    hubs: DashMap<String, Arc<Hub>>,
    /// The `sub` variants, by stream id.
    subs: DashMap<String, Arc<Hub>>,
    /// Stream ids in manifest order, so lists are stable and follow the operator's file.
    order: std::sync::RwLock<Vec<String>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The hub of stream `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Hub>> {
        self.hubs.get(id).map(|entry| Arc::clone(entry.value()))
    }

    /// The hub of stream `id` in `variant` (`None`: no such stream, or no such variant).
    pub fn get_variant(&self, id: &str, variant: Variant) -> Option<Arc<Hub>> {
        match variant {
            Variant::Main => self.get(id),
            Variant::Sub => self.subs.get(id).map(|entry| Arc::clone(entry.value())),
        }
    }

    /// Sets stream `id`'s sub hub (`None`: the stream has no sub). A replaced or removed sub
    /// hub is closed (its viewers are told the variant was removed, its source stops) and
    /// its metrics are the caller's to drop.
    pub async fn set_sub(&self, id: &str, hub: Option<Arc<Hub>>) {
        let previous = match hub {
            Some(hub) => self.subs.insert(id.to_owned(), hub),
            None => self.subs.remove(id).map(|(_, hub)| hub),
        };
        if let Some(previous) = previous {
            previous.close(Closing::Removed).await;
        }
    }

    /// Every sub hub (any order).
    pub fn subs(&self) -> Vec<Arc<Hub>> {
        self.subs.iter().map(|e| Arc::clone(e.value())).collect()
    }

    /// Adds a hub (appended to the order). Returns the hub it replaced, if any.
    pub fn insert(&self, hub: Arc<Hub>) -> Option<Arc<Hub>> {
        let id = hub.id().to_owned();
        let previous = self.hubs.insert(id.clone(), hub);
        let mut order = self.order.write().unwrap_or_else(|e| e.into_inner());
        if !order.contains(&id) {
            order.push(id);
        }
        previous
    }

    /// Sets the listing order (ids not present are ignored, missing ones go last).
    pub fn set_order(&self, ids: Vec<String>) {
        *self.order.write().unwrap_or_else(|e| e.into_inner()) = ids;
    }

    /// Removes stream `id`: its viewers are told the stream was removed and its source stops.
    pub async fn remove(&self, id: &str) -> Option<Arc<Hub>> {
        self.set_sub(id, None).await;
        let (_, hub) = self.hubs.remove(id)?;
        self.order
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|other| other != id);
        hub.close(Closing::Removed).await;
        Some(hub)
    }

    /// Tells the viewers of every hub to leave for `reason` (see [`Hub::dismiss_viewers`]).
    pub fn dismiss_all_viewers(&self, reason: Closing) {
        for hub in self.subs.iter().chain(self.hubs.iter()) {
            hub.dismiss_viewers(reason);
        }
    }

    /// Every main hub, in listing order (subs: [`Registry::subs`]).
    pub fn all(&self) -> Vec<Arc<Hub>> {
        let order = self.order.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut hubs: Vec<Arc<Hub>> = order.iter().filter_map(|id| self.get(id)).collect();
        for entry in self.hubs.iter() {
            if !order.contains(entry.key()) {
                hubs.push(Arc::clone(entry.value()));
            }
        }
        hubs
    }

    /// Stops every idle on-demand source whose grace period has passed.
    pub async fn reap_idle(&self) {
        for hub in self.subs().into_iter().chain(self.all()) {
            hub.reap_if_idle().await;
        }
    }

    /// Runs the reaper every `interval` until `shutdown` turns true.
    pub fn spawn_reaper(
        self: Arc<Self>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => self.reap_idle().await,
                    _ = crate::hub::turned_true(&mut shutdown) => return,
                }
            }
        })
    }

    /// Stops every source (gateway shutdown), concurrently.
    pub async fn stop_all(&self) {
        let subs = self.subs().into_iter().map(|hub| async move {
            hub.stop_source().await;
        });
        futures_util::future::join_all(subs).await;
        let stops = self.all().into_iter().map(|hub| async move {
            hub.stop_source().await;
        });
        futures_util::future::join_all(stops).await;
    }
}
