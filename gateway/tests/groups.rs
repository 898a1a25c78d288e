//! `/api/groups` end to end over real HTTP: create, replace, list and delete; admin-only
//! writes; a viewer's list filtered to the streams it may watch (groups left empty for it
//! left out); ids of removed streams left out of the list but kept in the file; every
//! validation error as JSON naming the field, with nothing written; the file beside the
//! API streams file, mode 0600, and still there after a gateway restart.

mod support;

use std::path::{Path, PathBuf};

use serde_json::json;
use support::*;

const ADMIN: &str = "admin-token-0123456789";
const VIEWER_ALL: &str = "viewer-token-all-0123456";
const VIEWER_FRONT: &str = "viewer-token-front-012345";
const METRICS: &str = "metrics-token-0123456789";

fn manifest() -> String {
    format!(
        r#"
auth:
  tokens:
    - role: admin
      token: {ADMIN}
    - role: viewer
      token: {VIEWER_ALL}
    - role: viewer
      token: {VIEWER_FRONT}
      streams: [front]
    - role: metrics
      token: {METRICS}
streams:
  - id: front
    source: {{ plugin: testsrc, width: 160, height: 90 }}
  - id: back
    source: {{ plugin: testsrc, width: 160, height: 90 }}
  - id: yard
    source: {{ plugin: testsrc, width: 160, height: 90 }}
"#
    )
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("camgate.yaml");
    std::fs::write(&path, manifest()).unwrap();
    (dir, path)
}

fn groups_file(manifest: &Path) -> PathBuf {
    manifest.with_file_name("camgate.groups.json")
}

/// A JSON request with `token`'s credential.
async fn call(
    addr: std::net::SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let auth = format!("Bearer {token}");
    let body = body.map(|b| b.to_string());
    let mut headers = vec![("Authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    http_json(addr, method, path, &headers, body.as_deref()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_created_replaced_listed_deleted_and_survive_a_restart() {
    let (_dir, path) = setup();
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();

    let (status, body) = call(addr, ADMIN, "GET", "/api/groups", None).await;
    assert_eq!((status, body), (200, json!({"groups": []})));
    assert!(!groups_file(&path).exists(), "nothing written by a read");

    let lobby = json!({"name": "Lobby", "streams": ["front", "back"]});
    let (status, body) = call(addr, ADMIN, "PUT", "/api/groups/lobby", Some(lobby)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body,
        json!({"id": "lobby", "name": "Lobby", "streams": ["front", "back"]})
    );
    let outside = json!({"id": "outside", "name": "Outside", "streams": ["yard"]});
    let (status, _) = call(addr, ADMIN, "PUT", "/api/groups/outside", Some(outside)).await;
    assert_eq!(status, 201);
    let (status, _) = call(
        addr,
        ADMIN,
        "PUT",
        "/api/groups/empty",
        Some(json!({"name": "To fill", "streams": []})),
    )
    .await;
    assert_eq!(status, 201);
    // Replacing keeps the group's place and answers 200.
    let (status, body) = call(
        addr,
        ADMIN,
        "PUT",
        "/api/groups/lobby",
        Some(json!({"name": "Lobby (all)", "streams": ["back", "front", "yard"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let expected = json!({"groups": [
        {"id": "lobby", "name": "Lobby (all)", "streams": ["back", "front", "yard"]},
        {"id": "outside", "name": "Outside", "streams": ["yard"]},
        {"id": "empty", "name": "To fill", "streams": []},
    ]});
    let (status, body) = call(addr, ADMIN, "GET", "/api/groups", None).await;
    assert_eq!((status, &body), (200, &expected));

    // Viewers: every group with a stream they may watch, only those streams.
    let (_, body) = call(addr, VIEWER_ALL, "GET", "/api/groups", None).await;
    assert_eq!(
        body,
        json!({"groups": [
            {"id": "lobby", "name": "Lobby (all)", "streams": ["back", "front", "yard"]},
            {"id": "outside", "name": "Outside", "streams": ["yard"]},
        ]})
    );
    let (_, body) = call(addr, VIEWER_FRONT, "GET", "/api/groups", None).await;
    assert_eq!(
        body,
        json!({"groups": [{"id": "lobby", "name": "Lobby (all)", "streams": ["front"]}]})
    );
    // The session cookie works like the bearer token.
    let cookie = login(addr, VIEWER_FRONT).await;
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let (status, body) = http_json(addr, "GET", "/api/groups", &[("Cookie", &cookie)], None).await;
    assert_eq!((status, body["groups"].as_array().unwrap().len()), (200, 1));

    // The file: beside the API streams file, 0600, the saved order.
    let file = groups_file(&path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved, expected);

    // Delete: 204, then 404.
    let (status, body) = call(addr, ADMIN, "DELETE", "/api/groups/outside", None).await;
    assert_eq!((status, body), (204, serde_json::Value::Null));
    let (status, body) = call(addr, ADMIN, "DELETE", "/api/groups/outside", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "group_not_found");
    gateway.shutdown().await;

    // A restart reads the file again.
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let (status, body) = call(addr, ADMIN, "GET", "/api/groups", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"groups": [
            {"id": "lobby", "name": "Lobby (all)", "streams": ["back", "front", "yard"]},
            {"id": "empty", "name": "To fill", "streams": []},
        ]})
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_write_groups_and_metrics_tokens_read_none() {
    let (_dir, path) = setup();
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let body = json!({"name": "Lobby", "streams": ["front"]});
    for token in [VIEWER_ALL, VIEWER_FRONT, METRICS] {
        let (status, answer) =
            call(addr, token, "PUT", "/api/groups/lobby", Some(body.clone())).await;
        assert_eq!(status, 403, "{token}: {answer}");
        let (status, _) = call(addr, token, "DELETE", "/api/groups/lobby", None).await;
        assert_eq!(status, 403, "{token}");
    }
    let (status, _) = call(addr, METRICS, "GET", "/api/groups", None).await;
    assert_eq!(status, 403);
    let (status, _) = http_json(addr, "GET", "/api/groups", &[], None).await;
    assert_eq!(status, 401);
    assert!(!groups_file(&path).exists(), "nothing was written");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_groups_are_refused_naming_the_field_and_nothing_is_written() {
    let (_dir, path) = setup();
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let cases = [
        (
            "/api/groups/Lobby",
            json!({"name": "L", "streams": []}),
            "id",
        ),
        (
            "/api/groups/lobby",
            json!({"id": "other", "name": "L", "streams": []}),
            "id",
        ),
        (
            "/api/groups/lobby",
            json!({"name": "", "streams": []}),
            "name",
        ),
        (
            "/api/groups/lobby",
            json!({"name": "   ", "streams": []}),
            "name",
        ),
        (
            "/api/groups/lobby",
            json!({"name": "x".repeat(65), "streams": []}),
            "name",
        ),
        (
            "/api/groups/lobby",
            json!({"name": "L", "streams": ["front", "ghost"]}),
            "streams",
        ),
        (
            "/api/groups/lobby",
            json!({"name": "L", "streams": ["front", "front"]}),
            "streams",
        ),
        (
            "/api/groups/lobby",
            json!({"name": "L", "streams": (0..257).map(|i| format!("s{i}")).collect::<Vec<_>>()}),
            "streams",
        ),
        (
            "/api/groups/lobby",
            json!({"name": "L", "streams": "front"}),
            "body",
        ),
        ("/api/groups/lobby", json!({"streams": []}), "name"),
        (
            "/api/groups/lobby",
            json!({"name": "L", "streams": [], "colour": "red"}),
            "colour",
        ),
    ];
    for (url, body, field) in cases {
        let (status, answer) = call(addr, ADMIN, "PUT", url, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_group", "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, answer) = call(
        addr,
        ADMIN,
        "PUT",
        "/api/groups/lobby",
        Some(json!({"name": "L", "streams": ["front", "ghost"]})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`ghost`"),
        "{answer}"
    );
    // Not JSON at all, or not declared as JSON.
    let auth = format!("Bearer {ADMIN}");
    let (status, answer) = http_json(
        addr,
        "PUT",
        "/api/groups/lobby",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some("{not json"),
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("malformed_request"))
    );
    let (status, _) = http_json(
        addr,
        "PUT",
        "/api/groups/lobby",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        Some(r#"{"name": "L", "streams": []}"#),
    )
    .await;
    assert_eq!(status, 415);
    assert!(!groups_file(&path).exists(), "nothing was written");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_stream_is_left_out_of_the_list_but_kept_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("camgate.yaml");
    std::fs::write(&path, "streams: []\n").unwrap();
    let gateway = start_from_file(&path, fast_options()).await;
    let addr = gateway.local_addr();
    let (status, _) = http_json(
        addr,
        "POST",
        "/api/streams",
        &[("Content-Type", "application/json")],
        Some(r#"{"id": "temp", "source": {"plugin": "testsrc"}}"#),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = http_json(
        addr,
        "PUT",
        "/api/groups/g",
        &[("Content-Type", "application/json")],
        Some(r#"{"name": "G", "streams": ["temp"]}"#),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = http_json(addr, "DELETE", "/api/streams/temp", &[], None).await;
    assert_eq!(status, 204);
    let (_, body) = http_json(addr, "GET", "/api/groups", &[], None).await;
    assert_eq!(
        body,
        json!({"groups": [{"id": "g", "name": "G", "streams": []}]})
    );
    let saved = std::fs::read_to_string(groups_file(&path)).unwrap();
    assert!(saved.contains("\"temp\""), "{saved}");
    gateway.shutdown().await;
}
