//! The plugin ABI end to end: real shared libraries loaded from a folder with libloading,
//! the handshake, panics contained at the boundary, the stop guarantee, and what the host
//! does about a plugin written against the raw C ABI that breaks the rules (late callbacks
//! after stop and destroy, frame structs of another size).

mod support;

use std::path::Path;
use std::time::Duration;

use camgate::config::SourceValidator;
use camgate::hub::StreamState;
use camgate::plugins::{PluginCatalog, PluginOrigin, RegisterError};
use support::*;
use tokio_tungstenite::tungstenite::Message;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn options(json: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_testsrc_library_loads_from_a_folder_and_streams() {
    let library = build_cdylib("camgate-plugin-testsrc");
    let dir = plugins_dir(&[&library]);
    // No built-ins: the only testsrc is the one from the folder.
    let mut catalog = PluginCatalog::default();
    let errors = catalog.load_dir(dir.path());
    assert!(errors.is_empty(), "{errors:?}");
    let descriptor = &catalog.descriptors()[0];
    assert_eq!(descriptor.name, "testsrc");
    assert_eq!(descriptor.abi_version, 2);
    assert!(
        matches!(&descriptor.origin, PluginOrigin::Library { path } if path.starts_with(dir.path()))
    );

    let gateway = start_with(
        r#"
streams:
  - id: dyn
    source: { plugin: testsrc, width: 320, height: 240, fps: 20 }
"#,
        catalog,
        fast_options(),
    )
    .await;
    let mut ws = connect(gateway.local_addr(), "/ws/streams/dyn").await;
    let mut last = 0;
    for _ in 0..5 {
        let frame = next_frame(&mut ws, SECS(5)).await;
        assert_eq!((frame.width, frame.height), (320, 240));
        assert!(frame.seq > last);
        last = frame.seq;
    }
    drop(ws);
    gateway.shutdown().await;
}

#[test]
fn a_library_of_another_abi_version_is_refused_with_both_versions_named() {
    let library = build_cdylib("camgate-fixture-future-abi");
    let dir = plugins_dir(&[&library]);
    let mut catalog = PluginCatalog::with_builtins();
    let errors = catalog.load_dir(dir.path());
    assert_eq!(errors.len(), 1);
    let message = errors[0].to_string();
    assert!(
        message.contains("was built for camgate plugin ABI v3, but this gateway speaks v2"),
        "{message}"
    );
    assert!(
        message.contains("libcamgate_fixture_future_abi"),
        "{message}"
    );
    // The built-ins are still there.
    assert!(catalog.get("testsrc").is_some());
}

#[test]
fn non_plugins_garbage_and_duplicates_get_precise_errors_and_the_rest_loads() {
    let not_plugin = build_cdylib("camgate-fixture-not-a-plugin");
    let testsrc = build_cdylib("camgate-plugin-testsrc");
    let misbehaving = build_cdylib("camgate-fixture-misbehaving");
    let dir = plugins_dir(&[&not_plugin, &testsrc, &misbehaving]);
    std::fs::write(dir.path().join("garbage.so"), b"not an ELF file").unwrap();

    let mut catalog = PluginCatalog::with_builtins();
    let errors = catalog.load_dir(dir.path());
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{messages:#?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("garbage.so") && m.starts_with("cannot load plugin library")),
        "{messages:#?}"
    );
    assert!(
        messages.iter().any(|m| m
            .contains("is not a camgate plugin: it does not export `camgate_plugin_abi_version`")),
        "{messages:#?}"
    );
    assert!(
        errors.iter().any(|e| matches!(e, RegisterError::Duplicate { name, first: PluginOrigin::Builtin, .. } if name == "testsrc")),
        "{messages:#?}"
    );
    // The good library in the same folder loaded.
    assert!(catalog.get("misbehaving").is_some());
}

#[test]
fn a_plugin_rejects_invalid_config_with_its_own_message() {
    let catalog = PluginCatalog::with_builtins();
    let err = catalog
        .validate_source("testsrc", &options(r#"{"widht": 320}"#))
        .unwrap_err();
    assert!(
        err.starts_with("unknown field `widht`, expected one of"),
        "{err}"
    );
    let err = catalog
        .validate_source("testsrc", &options(r#"{"fps": 0}"#))
        .unwrap_err();
    assert!(err.contains("fps must be > 0 and <= 60, got 0"), "{err}");
    let err = catalog.validate_source("nope", &options("{}")).unwrap_err();
    assert_eq!(
        err,
        "unknown plugin `nope` (available: ffmpeg-mjpeg, relay, rtsp, testsrc)"
    );
}

/// `camgate_plugin_late_callbacks_total{plugin}` as the gateway's `/metrics` shows it.
async fn late_callbacks(addr: std::net::SocketAddr, plugin: &str) -> u64 {
    let (status, _, body) = http(addr, "GET", "/metrics", &[], None).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let series = format!("camgate_plugin_late_callbacks_total{{plugin=\"{plugin}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
        .parse()
        .unwrap()
}

/// The built-in plugins plus the fixture plugin `package`, built as a library.
fn fixture_catalog(package: &str) -> (PluginCatalog, tempfile::TempDir) {
    let library = build_cdylib(package);
    let dir = plugins_dir(&[&library]);
    let mut catalog = PluginCatalog::with_builtins();
    assert!(catalog.load_dir(dir.path()).is_empty());
    (catalog, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_panicking_in_create_start_or_its_thread_fails_only_its_stream() {
    let (catalog, _dir) = fixture_catalog("camgate-fixture-misbehaving");
    let gateway = start_with(
        r#"
streams:
  - id: in-create
    source: { plugin: misbehaving, panic_in: create }
  - id: in-start
    source: { plugin: misbehaving, panic_in: start }
  - id: in-thread
    source: { plugin: misbehaving, panic_in: thread }
  - id: healthy
    source: { plugin: testsrc, width: 160, height: 90, fps: 20 }
"#,
        catalog,
        fast_options(),
    )
    .await;
    let addr = gateway.local_addr();
    for (id, expected) in [
        (
            "in-create",
            "plugin panicked: plugin `misbehaving` panicked in create: asked to panic in create",
        ),
        (
            "in-start",
            "plugin panicked: plugin `misbehaving` panicked in start: asked to panic in start",
        ),
        (
            "in-thread",
            "plugin worker thread panicked: asked to panic in its thread",
        ),
    ] {
        let mut ws = connect(addr, &format!("/ws/streams/{id}")).await;
        let hub = gateway.state().registry.get(id).unwrap();
        eventually(SECS(5), "stream failed", || {
            hub.status().state == StreamState::Failed
        })
        .await;
        let message = hub.status().message;
        assert!(message.contains(expected), "{id}: {message}");
        // The viewer is told, with the reason.
        loop {
            let event = next_event(&mut ws, SECS(5)).await;
            if event["state"] == "failed" {
                assert!(event["message"].as_str().unwrap().contains(expected));
                break;
            }
        }
    }
    // The gateway and the other stream live on.
    let mut ws = connect(addr, "/ws/streams/healthy").await;
    next_frame(&mut ws, SECS(5)).await;
    drop(ws);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_panicking_in_stop_is_contained_and_nothing_calls_back_after_stop() {
    let (catalog, _dir) = fixture_catalog("camgate-fixture-misbehaving");
    let gateway = start_with(
        r#"
streams:
  - id: in-stop
    on_demand: false
    source: { plugin: misbehaving, panic_in: stop }
  - id: rogue
    on_demand: false
    source: { plugin: misbehaving, ignore_stop: true }
"#,
        catalog,
        fast_options(),
    )
    .await;
    let registry = std::sync::Arc::clone(&gateway.state().registry);
    for id in ["in-stop", "rogue"] {
        let hub = registry.get(id).unwrap();
        eventually(SECS(5), "frames flow", || hub.frames_in() > 3).await;
    }
    let before = late_callbacks(gateway.local_addr(), "misbehaving").await;
    for id in ["in-stop", "rogue"] {
        let hub = registry.get(id).unwrap();
        hub.stop_source().await;
        assert_eq!(hub.status().state, StreamState::Stopped);
    }
    // The rogue plugin's thread is still running and trying to send frames every 5 ms; the
    // plugin API's gate keeps every call on its side of the boundary.
    let frames = registry.get("rogue").unwrap().frames_in();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        late_callbacks(gateway.local_addr(), "misbehaving").await,
        before,
        "a callback crossed after stop returned"
    );
    assert_eq!(registry.get("rogue").unwrap().frames_in(), frames);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_plugin_calling_back_after_stop_and_destroy_is_refused_counted_and_harmless() {
    // The raw-abi fixture has no plugin-api gate: its thread keeps calling on_frame,
    // on_state and on_log with its ctx for 1.5 s after stop, and so after destroy too.
    let (catalog, _dir) = fixture_catalog("camgate-fixture-raw-abi");
    let gateway = start_with(
        r#"
streams:
  - id: late
    on_demand: false
    source: { plugin: raw-abi, mode: late_calls, late_for_ms: 1500 }
  - id: healthy
    source: { plugin: testsrc, width: 160, height: 90, fps: 20 }
  - id: victim
    source: { plugin: testsrc, width: 160, height: 90, fps: 20 }
"#,
        catalog,
        fast_options(),
    )
    .await;
    let addr = gateway.local_addr();
    let hub = gateway.state().registry.get("late").unwrap();
    eventually(SECS(5), "frames flow", || hub.frames_in() > 3).await;
    assert_eq!(late_callbacks(addr, "raw-abi").await, 0);

    // stop_source stops *and destroys* the instance (the hub drops it).
    hub.stop_source().await;
    assert_eq!(hub.status().state, StreamState::Stopped);
    let frames = hub.frames_in();
    // stop_source has returned, so the instance is destroyed: every call the rogue thread
    // makes from now on (for about 1.5 s) is refused and counted.
    let after_destroy = late_callbacks(addr, "raw-abi").await;
    let deadline = tokio::time::Instant::now() + SECS(5);
    loop {
        let now = late_callbacks(addr, "raw-abi").await;
        if now >= after_destroy + 30 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "late calls after destroy are not counted: {after_destroy} → {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hub.frames_in(), frames, "a late frame was published");
    assert_eq!(
        hub.status().state,
        StreamState::Stopped,
        "a late state got through"
    );
    // New instances created now must not receive the rogue thread's calls (were `ctx` a
    // pointer, a new context could sit where the destroyed one was).
    let victim = gateway.state().registry.get("victim").unwrap();
    for _ in 0..5 {
        let viewer = victim.subscribe().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_ne!(
            victim.status().message,
            "still here",
            "a late call reached another instance"
        );
        drop(viewer);
        victim.stop_source().await;
    }
    // Let the rogue thread run out, then check the gateway is fine.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut ws = connect(addr, "/ws/streams/healthy").await;
    next_frame(&mut ws, SECS(5)).await;
    drop(ws);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smaller_frame_struct_is_refused_and_a_larger_one_accepted() {
    let (catalog, _dir) = fixture_catalog("camgate-fixture-raw-abi");
    let gateway = start_with(
        r#"
streams:
  - id: small
    on_demand: false
    source: { plugin: raw-abi, mode: small_frame }
  - id: grown
    on_demand: false
    source: { plugin: raw-abi, mode: grown_frame }
"#,
        catalog,
        fast_options(),
    )
    .await;
    let registry = std::sync::Arc::clone(&gateway.state().registry);
    let small = registry.get("small").unwrap();
    eventually(SECS(5), "the small frame refused", || {
        small.status().state == StreamState::Failed
    })
    .await;
    assert_eq!(
        small.status().message,
        "the host refused the frame with status 4",
        "want STATUS_ABI_MISMATCH"
    );
    assert_eq!(small.frames_in(), 0);
    // A "newer" plugin's larger FrameRef: the host reads the fields it knows.
    let grown = registry.get("grown").unwrap();
    eventually(SECS(5), "grown frames flow", || grown.frames_in() > 3).await;
    assert_eq!(grown.status().state, StreamState::Live);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_media_refuses_malformed_frames_and_takes_good_jpegs_from_a_real_library() {
    let (catalog, _dir) = fixture_catalog("camgate-fixture-raw-abi");
    let gateway = start_with(
        r#"
streams:
  - id: media
    source: { plugin: raw-abi, mode: media }
"#,
        catalog,
        fast_options(),
    )
    .await;
    // Each round sends four bad frames and one good JPEG; the plugin reports `failed`
    // if any answer is not the expected one. (The fixture's JPEG has the markers only, so
    // the viewer checks the message, not the picture.)
    let mut ws = connect(gateway.local_addr(), "/ws/streams/media").await;
    let hub = gateway.state().registry.get("media").unwrap();
    eventually(SECS(5), "ten rounds", || hub.frames_in() >= 10).await;
    let status = hub.status();
    assert_eq!(status.state, StreamState::Live, "{}", status.message);
    let mut seen = 0;
    while seen < 3 {
        if let Message::Binary(bytes) = next_message(&mut ws, SECS(5)).await {
            assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
            assert!(camgate::hub::read_tag(&bytes).is_some(), "a tagged JPEG");
            seen += 1;
        }
    }
    // Every refusal is counted for the operator (four per round, as many rounds as JPEGs).
    let metrics = gateway.state().metrics.render();
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("camgate_frames_refused_total{stream=\"media\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        refused >= 4 * 10,
        "{refused} refusals counted after 10 rounds"
    );
    drop(ws);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_plugin_streams_next_to_v2_plugins_and_a_v3_library_is_refused() {
    // `abi-v1` is built from the frozen v1 definitions, not from today's plugin-api.
    let v1 = build_cdylib("camgate-fixture-abi-v1");
    let v3 = build_cdylib("camgate-fixture-future-abi");
    let dir = plugins_dir(&[&v1, &v3]);
    let mut catalog = PluginCatalog::with_builtins();
    let errors = catalog.load_dir(dir.path());
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0].contains("libcamgate_fixture_future_abi")
            && messages[0].contains(
                "was built for camgate plugin ABI v3, but this gateway speaks v2 (and still loads v1)"
            ),
        "{messages:#?}"
    );
    let versions: Vec<(String, u32)> = catalog
        .descriptors()
        .iter()
        .map(|d| (d.name.clone(), d.abi_version))
        .collect();
    assert!(versions.contains(&("abi-v1".to_owned(), 1)), "{versions:?}");
    assert!(
        versions.contains(&("testsrc".to_owned(), 2)),
        "{versions:?}"
    );

    let gateway = start_with(
        r#"
streams:
  - id: old
    source: { plugin: abi-v1 }
  - id: new
    source: { plugin: testsrc, width: 320, height: 240, fps: 20 }
"#,
        catalog,
        fast_options(),
    )
    .await;
    let mut old = connect(gateway.local_addr(), "/ws/streams/old").await;
    let mut new = connect(gateway.local_addr(), "/ws/streams/new").await;
    let (mut last_old, mut last_new) = (0, 0);
    for _ in 0..3 {
        let frame = next_frame(&mut old, SECS(5)).await;
        assert_eq!((frame.width, frame.height), (16, 8), "the v1 plugin's JPEG");
        assert!(frame.seq > last_old);
        last_old = frame.seq;
        let frame = next_frame(&mut new, SECS(5)).await;
        assert_eq!((frame.width, frame.height), (320, 240));
        assert!(frame.seq > last_new);
        last_new = frame.seq;
    }
    drop((old, new));
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_template_builds_out_of_tree_and_streams() {
    // Copy the template somewhere outside the workspace, point its dependency at this
    // checkout's plugin-api, and build it with plain `cargo build`, as a plugin author would.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let outside = tempfile::tempdir().unwrap();
    let crate_dir = outside.path().join("my-plugin");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    for file in ["src/lib.rs", "src/grey8x8.jpg"] {
        std::fs::copy(
            workspace.join("plugins/template").join(file),
            crate_dir.join(file),
        )
        .unwrap();
    }
    let manifest = std::fs::read_to_string(workspace.join("plugins/template/Cargo.toml"))
        .unwrap()
        .replace(
            "path = \"../../plugin-api\"",
            &format!("path = \"{}\"", workspace.join("plugin-api").display()),
        );
    std::fs::write(crate_dir.join("Cargo.toml"), manifest).unwrap();
    let target = workspace
        .join("target")
        .join("test-plugins")
        .join("template");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--target-dir"])
        .arg(&target)
        .current_dir(&crate_dir)
        .status()
        .unwrap();
    assert!(status.success(), "the template does not build out of tree");

    let dir = plugins_dir(&[&target.join("debug").join("libcamgate_plugin_template.so")]);
    let mut catalog = PluginCatalog::with_builtins();
    assert!(catalog.load_dir(dir.path()).is_empty());
    let gateway = start_with(
        "streams:\n  - id: t\n    source: { plugin: template, fps: 20 }\n",
        catalog,
        fast_options(),
    )
    .await;
    let mut ws = connect(gateway.local_addr(), "/ws/streams/t").await;
    let frame = next_frame(&mut ws, SECS(5)).await;
    assert_eq!((frame.width, frame.height), (8, 8));
    drop(ws);
    gateway.shutdown().await;
}
