//! Hot reload and stream lifecycle end to end: a real manifest file edited the ways editors
//! and Kubernetes do it, the per-stream diff seen by live WebSocket viewers, bad edits that
//! keep the old configuration, and on-demand start / idle reaping.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use camgate::hub::StreamState;
use support::*;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn stream(id: &str, fps: u32) -> String {
    format!(
        "  - id: {id}\n    name: Stream {id}\n    source: {{ plugin: testsrc, width: 160, height: 90, fps: {fps} }}\n"
    )
}

fn manifest(streams: &[String]) -> String {
    format!("streams:\n{}", streams.concat())
}

/// A directory holding `camgate.yaml` with `content`.
fn manifest_dir(content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("camgate.yaml");
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

/// Waits until the gateway's stream ids are `expected` (in order).
async fn wait_for_streams(gateway: &camgate::app::Gateway, expected: &[&str]) {
    let state = gateway.state();
    eventually(SECS(10), &format!("streams {expected:?}"), || {
        let ids: Vec<String> = state
            .registry
            .all()
            .iter()
            .map(|h| h.id().to_owned())
            .collect();
        ids == expected
    })
    .await;
}

/// Write-temp-then-rename, the way most editors save.
fn save_by_rename(path: &Path, content: &str) {
    let temp = path.with_file_name(".camgate.yaml.swp");
    std::fs::write(&temp, content).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_writes_and_renames_are_both_picked_up() {
    let (_dir, path) = manifest_dir(&manifest(&[stream("a", 10)]));
    let gateway = start_from_file(&path, watching_options()).await;
    wait_for_streams(&gateway, &["a"]).await;

    std::fs::write(&path, manifest(&[stream("a", 10), stream("b", 10)])).unwrap();
    wait_for_streams(&gateway, &["a", "b"]).await;

    save_by_rename(&path, &manifest(&[stream("b", 10), stream("c", 10)]));
    wait_for_streams(&gateway, &["b", "c"]).await;

    let status = gateway.state().config_status();
    assert!(status.last_reload_successful);
    assert_eq!(status.reloads_applied, 2);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_configmap_symlink_swap_is_picked_up() {
    // The ConfigMap layout: camgate.yaml -> ..data/camgate.yaml, ..data -> ..<timestamp>.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let publish = |version: &str, content: &str| {
        let versioned = root.join(format!("..{version}"));
        std::fs::create_dir(&versioned).unwrap();
        std::fs::write(versioned.join("camgate.yaml"), content).unwrap();
        let temp_link = root.join("..data_tmp");
        std::os::unix::fs::symlink(format!("..{version}"), &temp_link).unwrap();
        std::fs::rename(&temp_link, root.join("..data")).unwrap();
    };
    publish("2026_01_01_v1", &manifest(&[stream("a", 10)]));
    std::os::unix::fs::symlink("..data/camgate.yaml", root.join("camgate.yaml")).unwrap();
    let path = root.join("camgate.yaml");

    let gateway = start_from_file(&path, watching_options()).await;
    wait_for_streams(&gateway, &["a"]).await;
    publish(
        "2026_01_02_v2",
        &manifest(&[stream("a", 10), stream("k8s", 10)]),
    );
    wait_for_streams(&gateway, &["a", "k8s"]).await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_edit_keeps_the_running_config_and_reports_where_then_a_good_edit_applies() {
    let (_dir, path) = manifest_dir(&manifest(&[stream("a", 10)]));
    let gateway = start_from_file(&path, watching_options()).await;
    let addr = gateway.local_addr();
    let mut viewer = connect(addr, "/ws/streams/a").await;
    next_frame(&mut viewer, SECS(5)).await;

    // Broken YAML.
    std::fs::write(&path, "streams:\n  - id: a\n    source: [unclosed\n").unwrap();
    eventually(SECS(10), "rejected reload", || {
        gateway.state().config_status().reloads_rejected == 1
    })
    .await;
    // An invalid value.
    std::fs::write(
        &path,
        "streams:\n  - id: a\n    source: { plugin: testsrc, fps: 0 }\n  - id: b\n    on_demand: maybe\n    source: { plugin: testsrc }\n",
    )
    .unwrap();
    eventually(SECS(10), "second rejected reload", || {
        gateway.state().config_status().reloads_rejected == 2
    })
    .await;
    let (status, body) = http_get(addr, "/api/config", &[]).await;
    assert_eq!(status, 200);
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["last_reload_successful"], false);
    assert_eq!(config["last_reload"]["result"], "rejected");
    let error = config["last_reload"]["error"].as_str().unwrap();
    let file = path.display().to_string();
    assert!(
        error.contains(&format!("{file}:3:")) && error.contains("fps must be > 0"),
        "{error}"
    );
    assert!(error.contains(&format!("{file}:5:16")), "{error}");

    // The old configuration still serves the same viewer.
    next_frame(&mut viewer, SECS(5)).await;
    assert_eq!(gateway.state().registry.all().len(), 1);

    std::fs::write(&path, manifest(&[stream("a", 10), stream("b", 10)])).unwrap();
    wait_for_streams(&gateway, &["a", "b"]).await;
    assert!(gateway.state().config_status().last_reload_successful);
    next_frame(&mut viewer, SECS(5)).await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_apply_per_stream_with_viewers_connected() {
    let (_dir, path) = manifest_dir(&manifest(&[stream("a", 20), stream("b", 20)]));
    let gateway = start_from_file(&path, watching_options()).await;
    let addr = gateway.local_addr();
    let mut a = connect(addr, "/ws/streams/a").await;
    let mut b = connect(addr, "/ws/streams/b").await;
    next_frame(&mut a, SECS(5)).await;
    next_frame(&mut b, SECS(5)).await;

    // Edit B only: A's viewer keeps its connection and its sequence continues.
    let before = next_frame(&mut a, SECS(5)).await.seq;
    std::fs::write(&path, manifest(&[stream("a", 20), stream("b", 5)])).unwrap();
    let hub_b = gateway.state().registry.get("b").unwrap();
    eventually(SECS(10), "b reconfigured", || hub_b.info().fps == Some(5.0)).await;
    let mut last = before;
    for _ in 0..10 {
        let frame = next_frame(&mut a, SECS(5)).await;
        assert!(frame.seq > last, "stream a was not restarted");
        last = frame.seq;
    }
    assert!(last - before < 40, "no gap in a's sequence");

    // B's viewer stayed connected through its source restart, was told, and gets frames.
    let mut states = Vec::new();
    while states.last().map(String::as_str) != Some("live") {
        let event = next_event(&mut b, SECS(10)).await;
        if event["type"] == "state" {
            states.push(event["state"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        states.contains(&"stopped".to_owned()) || states.contains(&"connecting".to_owned()),
        "{states:?}"
    );
    next_frame(&mut b, SECS(5)).await;

    // A rename only updates the name: no restart.
    let seq = next_frame(&mut a, SECS(5)).await.seq;
    std::fs::write(
        &path,
        manifest(&[
            stream("a", 20).replace("Stream a", "Renamed"),
            stream("b", 5),
        ]),
    )
    .unwrap();
    let hub_a = gateway.state().registry.get("a").unwrap();
    eventually(SECS(10), "a renamed", || hub_a.info().name == "Renamed").await;
    assert!(next_frame(&mut a, SECS(5)).await.seq > seq);

    // Removing A closes its viewer with the reason.
    std::fs::write(&path, manifest(&[stream("b", 5)])).unwrap();
    assert_eq!(closed_with(&mut a, SECS(10)).await, Some(4004));
    next_frame(&mut b, SECS(5)).await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_reload_request_and_unchanged_content() {
    let (_dir, path) = manifest_dir(&manifest(&[stream("a", 10)]));
    let mut options = watching_options();
    options.watch_config = true;
    let gateway = start_from_file(&path, options).await;
    // Same bytes: nothing to do.
    let report = gateway.state().reload(camgate::reload::Cause::Signal).await;
    assert_eq!(report.result, "unchanged");
    std::fs::write(&path, manifest(&[stream("a", 10), stream("z", 10)])).unwrap();
    let report = gateway.state().reload(camgate::reload::Cause::Signal).await;
    assert_eq!(report.result, "applied");
    assert_eq!(
        report.changes.as_deref(),
        Some("1 added, 0 removed, 0 restarted, 0 updated, 1 unchanged")
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_sources_start_with_the_first_viewer_and_are_reaped_after_the_grace() {
    let (_dir, path) = manifest_dir(
        "streams:\n  - id: lazy\n    idle_timeout: 1s\n    source: { plugin: testsrc, width: 160, height: 90 }\n  - id: always\n    on_demand: false\n    idle_timeout: 1s\n    source: { plugin: testsrc, width: 160, height: 90 }\n",
    );
    let gateway = start_from_file(&path, fast_options()).await;
    let lazy = gateway.state().registry.get("lazy").unwrap();
    let always = gateway.state().registry.get("always").unwrap();
    // Always-on runs without viewers; on-demand does not.
    eventually(SECS(5), "always-on is live", || {
        always.status().state == StreamState::Live
    })
    .await;
    assert_eq!(lazy.status().state, StreamState::Stopped);
    assert_eq!(lazy.frames_in(), 0);

    let addr = gateway.local_addr();
    let mut first = connect(addr, "/ws/streams/lazy").await;
    let frame = next_frame(&mut first, SECS(5)).await;
    drop(first);
    // A viewer arriving within the grace period reuses the running source: the sequence
    // continues instead of restarting at 1.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut second = connect(addr, "/ws/streams/lazy").await;
    let later = next_frame(&mut second, SECS(5)).await;
    assert!(
        later.seq > frame.seq,
        "same source: {} after {}",
        later.seq,
        frame.seq
    );
    assert_eq!(lazy.status().state, StreamState::Live);
    drop(second);

    // After the idle timeout the reaper stops it; the always-on stream keeps running.
    eventually(SECS(10), "lazy reaped", || {
        lazy.status().state == StreamState::Stopped
    })
    .await;
    // A stopped source's last picture is dropped: nobody is greeted with a stale frame.
    assert!(lazy.latest_frame().is_none());
    let frames = always.frames_in();
    eventually(SECS(5), "always-on still producing", || {
        always.frames_in() > frames
    })
    .await;
    assert_eq!(always.status().state, StreamState::Live);

    // The next viewer starts it again.
    let mut third = connect(addr, "/ws/streams/lazy").await;
    next_frame(&mut third, SECS(5)).await;
    gateway.shutdown().await;
}

/// `GET /api/streams` with `token`: the status.
async fn status_with_token(addr: std::net::SocketAddr, token: &str) -> u16 {
    let header = format!("Bearer {token}");
    http_get(addr, "/api/streams", &[("Authorization", header.as_str())])
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_file_takes_effect_on_sighup_and_on_the_periodic_check() {
    const OLD: &str = "old-token-0123456789";
    const NEW: &str = "new-token-0123456789";
    const NEWER: &str = "newer-token-012345678";
    // The Secret lives in another directory, as Kubernetes mounts it: no event reaches the
    // manifest's watcher.
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("admin");
    std::fs::write(&token_file, format!("{OLD}\n")).unwrap();
    let (_dir, path) = manifest_dir(&format!(
        "auth:\n  tokens:\n    - {{ role: admin, token_file: {} }}\n{}",
        token_file.display(),
        manifest(&[stream("a", 10)])
    ));
    let gateway = start_from_file(&path, watching_options()).await;
    let addr = gateway.local_addr();
    assert_eq!(status_with_token(addr, OLD).await, 200);

    std::fs::write(&token_file, format!("{NEW}\n")).unwrap();
    gateway.request_reload(camgate::reload::Cause::Signal);
    eventually(SECS(10), "the new token is accepted", || {
        gateway
            .state()
            .config()
            .manifest
            .auth
            .tokens
            .iter()
            .any(|t| t.secret.expose() == NEW)
    })
    .await;
    assert_eq!(status_with_token(addr, NEW).await, 200);
    assert_eq!(status_with_token(addr, OLD).await, 401);

    // The periodic check (what catches a Secret update without SIGHUP) sees it too.
    std::fs::write(&token_file, format!("{NEWER}\n")).unwrap();
    let report = gateway
        .state()
        .reload(camgate::reload::Cause::Periodic)
        .await;
    assert_eq!(report.result, "applied", "{report:?}");
    assert_eq!(status_with_token(addr, NEWER).await, 200);
    assert_eq!(status_with_token(addr, NEW).await, 401);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_between_loading_and_starting_is_picked_up_by_the_next_check() {
    let (_dir, path) = manifest_dir(&manifest(&[stream("a", 10)]));
    let catalog = camgate::plugins::PluginCatalog::with_builtins();
    let loaded = camgate::config::load_with_api_file(&path, &|_| None, &catalog).unwrap();
    // Edited after it was parsed, before the gateway starts with what was parsed.
    std::fs::write(&path, manifest(&[stream("a", 10), stream("b", 10)])).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = fast_options();
    options.watch_config = true;
    options.reload.periodic = SECS(3600);
    let gateway = camgate::app::Gateway::start(
        loaded,
        catalog,
        listener,
        std::sync::Arc::new(|_: &str| None),
        options,
    )
    .await
    .unwrap();
    assert_eq!(gateway.state().registry.all().len(), 1);
    let report = gateway
        .state()
        .reload(camgate::reload::Cause::Periodic)
        .await;
    assert_eq!(report.result, "applied", "{report:?}");
    wait_for_streams(&gateway, &["a", "b"]).await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_edit_is_not_retried_until_a_file_changes_but_sighup_retries() {
    let (dir, path) = manifest_dir(&manifest(&[stream("a", 10)]));
    let gateway = start_from_file(&path, watching_options()).await;
    let state = gateway.state();
    std::fs::write(
        &path,
        "streams:\n  - id: a\n    source: { plugin: testsrc, fps: 0 }\n",
    )
    .unwrap();
    let rejected = || state.config_status().reloads_rejected;
    eventually(SECS(10), "first rejection", || rejected() == 1).await;
    // Busy neighbour: a log file in the same directory, written again and again.
    let log = dir.path().join("camgate.log");
    for round in 0..5 {
        std::fs::write(&log, format!("line {round}\n")).unwrap();
        let report = state.reload(camgate::reload::Cause::File).await;
        assert_eq!(
            report.result, "rejected",
            "the running config is still not the file's"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(rejected(), 1, "the same bad bytes were retried");
    let metrics = gateway.state().metrics.render();
    assert!(
        metrics.contains("camgate_config_reloads_total{result=\"rejected\"} 1"),
        "{metrics}"
    );
    // SIGHUP always re-tries (and reports again).
    let report = state.reload(camgate::reload::Cause::Signal).await;
    assert_eq!(report.result, "rejected");
    assert_eq!(rejected(), 2);
    // New bytes are tried again.
    std::fs::write(
        &path,
        "streams:\n  - id: a\n    source: { plugin: testsrc, fps: -1 }\n",
    )
    .unwrap();
    let report = state.reload(camgate::reload::Cause::Periodic).await;
    assert_eq!(report.result, "rejected");
    assert_eq!(rejected(), 3);
    std::fs::write(&path, manifest(&[stream("a", 10), stream("b", 10)])).unwrap();
    wait_for_streams(&gateway, &["a", "b"]).await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_edit_made_again_after_a_revert_is_rejected_again() {
    use camgate::reload::Cause;
    let good = manifest(&[stream("a", 10)]);
    let bad = "streams:\n  - id: a\n    source: { plugin: testsrc, fps: 0 }\n";
    let (_dir, path) = manifest_dir(&good);
    let gateway = start_from_file(&path, fast_options()).await;
    let state = gateway.state();
    std::fs::write(&path, bad).unwrap();
    assert_eq!(state.reload(Cause::File).await.result, "rejected");
    // Reverted: the files are the running configuration's again.
    std::fs::write(&path, &good).unwrap();
    assert_eq!(state.reload(Cause::File).await.result, "unchanged");
    assert!(state.config_status().last_reload_successful);
    // The same bad edit once more (undo/redo, a deploy tool): new bytes on disk, so it is
    // parsed, rejected and reported again, not taken for the one before the revert.
    std::fs::write(&path, bad).unwrap();
    assert_eq!(state.reload(Cause::File).await.result, "rejected");
    let status = state.config_status();
    assert!(!status.last_reload_successful);
    assert_eq!(status.reloads_rejected, 2);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_in_place_writer_is_read_once_it_has_finished() {
    let a = stream("a", 10);
    let (_dir, path) = manifest_dir(&manifest(std::slice::from_ref(&a)));
    let mut options = watching_options();
    // Chunks come 100 ms apart: a tenfold margin before the quiet period ends.
    options.reload.debounce = SECS(1);
    let gateway = start_from_file(&path, options).await;
    wait_for_streams(&gateway, &["a"]).await;
    // Every prefix that ends at a line is valid YAML; the ones before the last chunk lack
    // stream `a` (a leading debounce would apply one and remove `a`).
    let mut chunks = vec!["streams:\n".to_owned(), stream("b", 10)];
    chunks.extend((0..12).map(|i| format!("  # padding {i}\n")));
    chunks.push(a);
    let mut file = std::fs::File::create(&path).unwrap();
    for chunk in &chunks {
        use std::io::Write;
        file.write_all(chunk.as_bytes()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(file);
    wait_for_streams(&gateway, &["b", "a"]).await;
    let status = gateway.state().config_status();
    assert_eq!(status.reloads_applied, 1, "{status:?}");
    assert_eq!(
        status.last_reload.and_then(|r| r.changes).as_deref(),
        Some("1 added, 0 removed, 0 restarted, 0 updated, 1 unchanged")
    );
    gateway.shutdown().await;
}
