//! `GET /api/cluster`: this node's view of the cluster — who it is, the members and their
//! readiness, and which node owns (serves from the camera) each stream.
//!
//! `{"node":"a","members":[{"name":"a","url":"http://…","ready":true}],"owners":{"front":"b"}}`.
//! Outside cluster mode `node` is `null`, `members` empty and `owners` empty. A caller sees
//! only the owners of streams it may watch (as `/api/streams` shows only those streams).

use std::sync::Arc;

use http::{Response, StatusCode};

use crate::app::AppState;
use crate::http::auth::Principal;
use crate::http::response::{self, Body};

/// `GET /api/cluster`.
pub fn get(state: &Arc<AppState>, principal: Option<&Principal>) -> Response<Body> {
    let config = state.config();
    let node = config.manifest.cluster.as_ref().map(|c| c.node.clone());
    let members = match (&node, state.cluster.view()) {
        (Some(_), Some(view)) => view.members.clone(),
        _ => Vec::new(),
    };
    let owners: serde_json::Map<String, serde_json::Value> = state
        .cluster
        .owners()
        .iter()
        .filter(|(id, _)| principal.is_some_and(|p| p.can_view(id)))
        .map(|(id, owner)| (id.clone(), owner.clone().into()))
        .collect();
    response::json(
        StatusCode::OK,
        &serde_json::json!({ "node": node, "members": members, "owners": owners }),
    )
}

/// The refusal of a stream or group change in cluster mode: every node must run the same
/// streams, and a change through one node's API would reach that node only.
pub fn read_only() -> Response<Body> {
    response::error(
        StatusCode::CONFLICT,
        "cluster_read_only",
        "this gateway is a cluster node: streams and groups come from the manifest every node shares (e.g. a Kubernetes ConfigMap), so that all nodes agree on them; change the manifest instead",
    )
}
