//! Cluster mode in one process: three real gateways on loopback that find each other by
//! probing `/readyz`, agree on every stream's owner (rendezvous hashing), refuse API
//! writes, accept each other's browser sessions, and move only a departed node's streams.
//! (`cluster.rs` runs separate processes behind HAProxy with cameras; this file checks the
//! rules quickly and precisely.)

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use camgate::app::{Gateway, GatewayOptions};
use camgate::config::{self, LoadedConfig};
use camgate::plugins::PluginCatalog;
use serde_json::Value;
use support::{Scrape, connect, fast_options, http_json, login, next_frame, next_hello};

const ADMIN: &str = "admin-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789";
const STREAMS: usize = 12;
const NODES: [&str; 3] = ["a", "b", "c"];

/// The manifest every node loads, but for `node`.
fn manifest(node: &str, addrs: &[SocketAddr]) -> String {
    let members: String = NODES
        .iter()
        .zip(addrs)
        .map(|(name, addr)| format!("    - {{name: {name}, url: 'http://{addr}'}}\n"))
        .collect();
    let streams: String = (0..STREAMS)
        .map(|i| {
            format!(
                "  - id: s{i}\n    source: {{plugin: testsrc, width: 160, height: 90, fps: 5}}\n"
            )
        })
        .collect();
    format!(
        "auth:\n  tokens:\n    - {{role: admin, token: {ADMIN}}}\n    - {{role: viewer, token: {VIEWER}}}\ncluster:\n  node: {node}\n  token: {VIEWER}\n  probe_interval: 200ms\n  members:\n{members}streams:\n{streams}"
    )
}

/// Starts node `i` on its pre-bound listener.
async fn start_node(i: usize, listener: tokio::net::TcpListener, addrs: &[SocketAddr]) -> Gateway {
    let catalog = PluginCatalog::with_builtins();
    let yaml = manifest(NODES[i], addrs);
    let parsed = config::parse(
        &yaml,
        std::path::Path::new("/test/camgate.yaml"),
        &|_| None,
        &catalog,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let options = GatewayOptions {
        health: None,
        ..fast_options()
    };
    Gateway::start(
        LoadedConfig::without_api_file(parsed),
        catalog,
        listener,
        std::sync::Arc::new(|_: &str| None),
        options,
    )
    .await
    .expect("node starts")
}

async fn cluster_of(addr: SocketAddr) -> Value {
    let auth = format!("Bearer {ADMIN}");
    let (status, body) = http_json(
        addr,
        "GET",
        "/api/cluster",
        &[("Authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn owners(cluster: &Value) -> BTreeMap<String, String> {
    cluster["owners"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn ready(cluster: &Value) -> Vec<String> {
    cluster["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["ready"] == true)
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until every node in `addrs` sees exactly `expected` ready and they agree on owners.
async fn settled(addrs: &[SocketAddr], expected: &[&str]) -> BTreeMap<String, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut views = Vec::new();
        for addr in addrs {
            views.push(cluster_of(*addr).await);
        }
        let agreed = views.iter().all(|v| ready(v) == expected)
            && views.windows(2).all(|w| owners(&w[0]) == owners(&w[1]));
        if agreed {
            return owners(&views[0]);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nodes did not agree on {expected:?}: {views:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_find_each_other_agree_on_owners_and_move_only_a_departed_nodes_streams() {
    let mut listeners = Vec::new();
    for _ in NODES {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        nodes.push(start_node(i, listener, &addrs).await);
    }

    // Every node names itself on /readyz (members learn names from it).
    for (i, addr) in addrs.iter().enumerate() {
        let (status, body) = http_json(*addr, "GET", "/readyz", &[], None).await;
        assert_eq!(status, 200);
        assert_eq!(body["node"], NODES[i]);
    }

    let owners = settled(&addrs, &NODES).await;
    assert_eq!(owners.len(), STREAMS);
    for (id, owner) in &owners {
        assert_eq!(
            Some(owner.as_str()),
            camgate::cluster::owner(NODES, id),
            "{id}"
        );
    }
    let cluster = cluster_of(addrs[0]).await;
    assert_eq!(cluster["node"], "a");
    assert_eq!(
        cluster["members"][1],
        serde_json::json!({"name": "b", "url": format!("http://{}", addrs[1]), "ready": true})
    );

    // Metrics say the same: three ready members, and the owned streams add up.
    let mut owned = 0.0;
    for addr in &addrs {
        let scrape = Scrape::of(*addr, &[("Authorization", &format!("Bearer {ADMIN}"))]).await;
        assert_eq!(
            scrape.value("camgate_cluster_members{state=\"ready\"}"),
            3.0
        );
        owned += scrape.value("camgate_cluster_owned_streams");
    }
    assert_eq!(owned, STREAMS as f64);

    // Writes are refused on every node: they would reach one node only.
    let admin = format!("Bearer {ADMIN}");
    let body = r#"{"id":"new","source":{"plugin":"testsrc"}}"#;
    let (status, answer) = http_json(
        addrs[1],
        "POST",
        "/api/streams",
        &[("Authorization", &admin)],
        Some(body),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "cluster_read_only");
    let group = r#"{"name":"Lobby","streams":["s0"]}"#;
    let (status, answer) = http_json(
        addrs[2],
        "PUT",
        "/api/groups/lobby",
        &[("Authorization", &admin)],
        Some(group),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "cluster_read_only");

    // A browser session opened on one node works on the others (a balancer spreads its
    // requests), and carries the viewer's rights.
    let cookie = login(addrs[0], VIEWER).await;
    let cookie = cookie.split(';').next().unwrap().to_owned();
    for addr in &addrs {
        let (status, body) =
            http_json(*addr, "GET", "/api/session", &[("Cookie", &cookie)], None).await;
        assert_eq!(status, 200);
        assert_eq!(body["role"], "viewer", "{body}");
        assert!(body["cluster_node"].is_string(), "{body}");
        let (status, _) =
            http_json(*addr, "GET", "/api/streams", &[("Cookie", &cookie)], None).await;
        assert_eq!(status, 200);
    }
    // A forged one is not.
    let forged = format!(
        "camgate_session=c1.99999999999.{}.{}",
        "0".repeat(32),
        "0".repeat(64)
    );
    let (_, body) = http_json(
        addrs[1],
        "GET",
        "/api/session",
        &[("Cookie", &forged)],
        None,
    )
    .await;
    assert_eq!(body["authenticated"], false, "{body}");

    // Any node serves any stream: a non-owner relays it from its owner, with the owner's
    // capture times, over one upstream connection however many watch it there.
    let on_c = owners
        .iter()
        .find(|(_, o)| *o == "c")
        .map(|(id, _)| id.clone())
        .unwrap();
    let path = format!("/ws/streams/{on_c}?access_token={VIEWER}");
    let mut at_owner = connect(addrs[2], &path).await;
    next_hello(&mut at_owner, Duration::from_secs(10)).await;
    let mut relayed = Vec::new();
    for _ in 0..3 {
        let mut ws = connect(addrs[0], &path).await;
        next_hello(&mut ws, Duration::from_secs(10)).await;
        relayed.push(ws);
    }
    let direct: Vec<u64> = {
        let mut times = Vec::new();
        for _ in 0..10 {
            times.push(
                next_frame(&mut at_owner, Duration::from_secs(10))
                    .await
                    .captured_at_us,
            );
        }
        times
    };
    let mut matched = 0;
    for _ in 0..10 {
        let frame = next_frame(&mut relayed[0], Duration::from_secs(10)).await;
        matched += usize::from(direct.contains(&frame.captured_at_us));
    }
    assert!(
        matched >= 3,
        "relayed frames carry the owner's capture times ({matched} of 10 seen at the owner too)"
    );
    let (_, at_c) = http_json(
        addrs[2],
        "GET",
        &format!("/api/streams/{on_c}"),
        &[("Authorization", &admin)],
        None,
    )
    .await;
    assert_eq!(
        at_c["viewers"], 2,
        "one viewer of its own + ONE relay for a's three: {at_c}"
    );
    drop(at_owner);

    // c goes away: its streams move to a and b, nothing else moves.
    let c = nodes.pop().unwrap();
    c.shutdown().await;
    let after = settled(&addrs[..2], &["a", "b"]).await;
    let mut moved = 0;
    for (id, before) in &owners {
        if before == "c" {
            moved += 1;
            assert_ne!(after[id], "c");
        } else {
            assert_eq!(&after[id], before, "{id} must not move");
        }
    }
    assert!(moved > 0, "c owned something: {owners:?}");
    let scrape = Scrape::of(addrs[0], &[("Authorization", &admin)]).await;
    assert_eq!(
        scrape.value("camgate_cluster_members{state=\"ready\"}"),
        2.0
    );
    assert_eq!(
        scrape.value("camgate_cluster_members{state=\"not_ready\"}"),
        1.0
    );
    assert!(scrape.value("camgate_cluster_owner_changes_total") >= 1.0);

    // The viewers a relayed from c kept their sockets: the stream restarted under them (from
    // its camera on its new owner, or relayed from it) and pictures flow again.
    for ws in &mut relayed {
        let before = tokio::time::Instant::now();
        loop {
            let frame = next_frame(ws, Duration::from_secs(15)).await;
            let age_ms = (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64)
                .saturating_sub(frame.captured_at_us)
                / 1000;
            if age_ms < 2000 {
                break;
            }
            assert!(
                before.elapsed() < Duration::from_secs(15),
                "no fresh picture"
            );
        }
    }

    for node in nodes {
        node.shutdown().await;
    }
}
