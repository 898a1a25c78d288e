//! The `camgate` binary as users run it: `check`, `plugins` and `run` (with the default
//! manifest, a real WebSocket client and SIGTERM).

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives real processes and sockets, whose timing is the wall clock's"
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::binary::{camgate, spawn_command, spawn_gateway};
use support::*;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_accepts_the_default_manifest() {
    let output = camgate()
        .args(["check", "config/camgate.yaml"])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("config/camgate.yaml: OK (5 streams)"));
}

#[test]
fn check_prints_every_problem_with_its_position_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "server:\n  listen: 127.0.0.1:8000\n  colour: blue\nstreams:\n  - id: a\n    on_demand: maybe\n    source: { plugin: testsrc }\n  - id: a\n    source: { plugin: testsrc, widht: 3 }\n",
    )
    .unwrap();
    let output = camgate().arg("check").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output);
    let file = path.display().to_string();
    assert!(
        out.contains(&format!("{file}:3:3: unknown key `colour`")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{file}:6:16:")) && out.contains("on_demand"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{file}:8:")) && out.contains("duplicate"),
        "{out}"
    );
    assert!(out.contains("unknown field `widht`"), "{out}");
    assert!(out.contains("4 problems"), "{out}");
}

#[test]
fn plugins_lists_builtins_and_reports_a_foreign_abi_library() {
    let output = camgate().arg("plugins").output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let out = text(&output);
    assert!(
        out.contains("testsrc") && out.contains("v2") && out.contains("built-in"),
        "{out}"
    );
    for builtin in ["ffmpeg-mjpeg", "rtsp", "relay"] {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(builtin)),
            "{builtin} missing: {out}"
        );
    }

    let library = build_cdylib("camgate-fixture-future-abi");
    let dir = plugins_dir(&[&library]);
    let manifest = dir.path().join("camgate.yaml");
    std::fs::write(&manifest, "plugins:\n  dir: .\nstreams: []\n").unwrap();
    let output = camgate()
        .args(["plugins", "--config"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output);
    assert!(out.contains("testsrc"), "{out}");
    assert!(
        out.contains(
            "built for camgate plugin ABI v3, but this gateway speaks v2 (and still loads v1)"
        ),
        "{out}"
    );
}

#[test]
fn run_serves_the_default_manifest_and_stops_on_sigterm() {
    let (mut child, addr, logs) = spawn_gateway(&workspace().join("config/camgate.yaml"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut ws = connect(addr, "/ws/streams/pattern").await;
        let frame = next_frame(&mut ws, Duration::from_secs(10)).await;
        assert_eq!((frame.width, frame.height), (1280, 720));
        let signalled = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            closed_with(&mut ws, Duration::from_secs(10)).await,
            Some(1001)
        );
        assert!(signalled.elapsed() < Duration::from_secs(10));
    });
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    // Give the log reader a moment to see the last lines.
    std::thread::sleep(Duration::from_millis(100));
    let logs = logs.lock().unwrap().clone();
    assert!(logs.contains("shutdown complete"), "{logs}");
}

#[test]
fn run_raises_its_open_file_limit_to_the_hard_limit() {
    // Only the child's limits change: `ulimit -S` in the shell that execs the gateway.
    let manifest = workspace().join("config/camgate.yaml");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"ulimit -S -n 512 && exec "$0" run --listen 127.0.0.1:0 --config "$1""#)
        .arg(env!("CARGO_BIN_EXE_camgate"))
        .arg(&manifest);
    let (mut child, _addr, _logs) = spawn_command(command);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_default();
    let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers.len(), 2, "{open_files}");
    assert_eq!(
        numbers[0], numbers[1],
        "soft limit raised to the hard one: {open_files}"
    );
    assert_ne!(numbers[0], "512", "{open_files}");
}

#[test]
fn sighup_reloads_even_without_file_events() {
    // The manifest is a symlink into another directory: editing the target produces no
    // event in the watched directory, so only SIGHUP (or the 10 s fallback) can notice.
    let watched = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("real.yaml");
    let one = "streams:\n  - id: one\n    source: { plugin: testsrc, width: 160, height: 90 }\n";
    std::fs::write(&target, one).unwrap();
    let manifest = watched.path().join("camgate.yaml");
    std::os::unix::fs::symlink(&target, &manifest).unwrap();
    let (mut child, addr, logs) = spawn_gateway(&manifest);

    std::fs::write(
        &target,
        format!("{one}  - id: two\n    source: {{ plugin: testsrc, width: 160, height: 90 }}\n"),
    )
    .unwrap();
    let signalled = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listed = runtime.block_on(async {
        loop {
            let (_, body) = http_get(addr, "/api/streams", &[]).await;
            if body.contains("\"two\"") {
                return true;
            }
            if signalled.elapsed() > Duration::from_secs(8) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let logs = logs.lock().unwrap().clone();
    assert!(listed, "stream added by SIGHUP reload:\n{logs}");
    assert!(logs.contains("SIGHUP received"), "{logs}");
    assert!(logs.contains("cause=Signal"), "{logs}");
    assert!(status.success());
}

#[test]
fn a_password_appears_in_no_response_metric_message_or_log_line() {
    // A deliberately leaky plugin puts the URL and the password in its logs and state
    // messages; the gateway must scrub them everywhere.
    const PASSWORD: &str = "S3cretPassw0rd";
    let library = build_cdylib("camgate-fixture-misbehaving");
    let dir = plugins_dir(&[&library]);
    let manifest = dir.path().join("camgate.yaml");
    std::fs::write(
        &manifest,
        format!(
            "plugins:\n  dir: .\nstreams:\n  - id: leaky\n    on_demand: false\n    source:\n      plugin: misbehaving\n      url: rtsp://admin:{PASSWORD}@127.0.0.1:9/cam\n      password: {PASSWORD}\n      leak: true\n"
        ),
    )
    .unwrap();
    let (mut child, addr, logs) = spawn_gateway(&manifest);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut seen = String::new();
    runtime.block_on(async {
        let mut ws = connect(addr, "/ws/streams/leaky").await;
        for _ in 0..5 {
            if let tokio_tungstenite::tungstenite::Message::Text(text) =
                next_message(&mut ws, Duration::from_secs(5)).await
            {
                seen.push_str(&text);
            }
        }
        for path in [
            "/api/streams",
            "/api/streams/leaky",
            "/api/config",
            "/metrics",
        ] {
            let (status, _, body) = http(addr, "GET", path, &[], None).await;
            assert_eq!(status, 200, "{path}");
            seen.push_str(&String::from_utf8_lossy(&body));
        }
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let logs = logs.lock().unwrap().clone();
    // The leak really happened (masked), so the test is not vacuous.
    assert!(
        logs.contains("connecting to rtsp://admin:***@127.0.0.1:9/cam"),
        "{logs}"
    );
    assert!(seen.contains("rtsp://admin:***@127.0.0.1:9/cam"), "{seen}");
    assert!(!logs.contains(PASSWORD), "password in the logs:\n{logs}");
    assert!(!seen.contains(PASSWORD), "password in a response:\n{seen}");
}

#[test]
fn sigterm_with_ffmpeg_sources_and_viewers_closes_everything_within_the_bound() {
    let camera = support::rtsp::RtspServer::start(&["--width", "320", "--height", "180"]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("camgate.yaml");
    let stream = |id: &str| {
        format!(
            "  - id: {id}\n    on_demand: false\n    source:\n      plugin: ffmpeg-mjpeg\n      url: {}\n      fps: 5\n",
            camera.url("/test")
        )
    };
    std::fs::write(
        &manifest,
        format!("streams:\n{}{}", stream("one"), stream("two")),
    )
    .unwrap();
    let (mut child, addr, logs) = spawn_gateway(&manifest);
    let gateway_pid = child.id();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut one = connect(addr, "/ws/streams/one").await;
        let mut two = connect(addr, "/ws/streams/two").await;
        next_frame(&mut one, Duration::from_secs(20)).await;
        next_frame(&mut two, Duration::from_secs(20)).await;
        let ffmpegs: Vec<u32> = support::rtsp::ffmpeg_children(gateway_pid, "/test")
            .iter()
            .map(|p| p.pid)
            .collect();
        assert_eq!(ffmpegs.len(), 2, "one ffmpeg per stream");

        let signalled = Instant::now();
        support::rtsp::signal(gateway_pid, "TERM");
        assert_eq!(
            closed_with(&mut one, Duration::from_secs(10)).await,
            Some(1001)
        );
        assert_eq!(
            closed_with(&mut two, Duration::from_secs(10)).await,
            Some(1001)
        );
        let exited = support::rtsp::wait_until(Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        assert!(exited, "gateway still running 10 s after SIGTERM");
        assert!(signalled.elapsed() < Duration::from_secs(10));
        for pid in ffmpegs {
            assert!(
                support::rtsp::proc_info(pid).is_none_or(|p| !p.is_alive()),
                "ffmpeg {pid} survived the gateway's shutdown"
            );
        }
    });
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(logs.lock().unwrap().contains("shutdown complete"));
}

#[test]
fn the_open_file_limit_is_raised_and_a_low_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("camgate.yaml");
    std::fs::write(&manifest, "streams: []\n").unwrap();
    // A shell lowers the limits the way a stock login or service would, then becomes camgate.
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            "ulimit -Sn 1024 && ulimit -Hn 2048 && exec \"$0\" \"$@\"",
        ])
        .arg(env!("CARGO_BIN_EXE_camgate"))
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&manifest);
    let (mut child, _addr, logs) = spawn_command(command);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect::<Vec<_>>();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    assert_eq!(
        open_files,
        ["2048", "2048"],
        "soft limit raised to the hard one"
    );
    let logs = logs.lock().unwrap().clone();
    assert!(logs.contains("at most about 1792 viewers"), "{logs}");
}

/// Sends `signal` (`-HUP`, `-TERM`) to the child.
fn send(child: &std::process::Child, signal: &str) {
    assert!(
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn passwords_with_url_delimiters_leak_nowhere() {
    // `'` parses as part of a URL password; `/`, `#` and `?` end a URL's authority, so the
    // URL does not parse at all. Neither may be shown.
    const QUOTE: &str = "Raw'Pw9x";
    const SLASH: &str = "p/ss#w?rd9";
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("camgate.yaml");
    let good = "streams:\n  - id: a\n    source: { plugin: testsrc, width: 160, height: 90 }\n";
    std::fs::write(&manifest, good).unwrap();
    let (mut child, addr, logs) = spawn_gateway(&manifest);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let json = [("Content-Type", "application/json")];
    let mut seen = String::new();
    runtime.block_on(async {
        let body = format!(
            r#"{{"id": "cam", "source": {{"plugin": "ffmpeg-mjpeg", "url": "rtsp://admin:{QUOTE}@127.0.0.1:9/x"}}}}"#
        );
        let (status, _, reply) = http(addr, "POST", "/api/streams", &json, Some(body.as_bytes())).await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&reply));
        seen.push_str(&String::from_utf8_lossy(&reply));
        let body = format!(
            r#"{{"id": "bad", "source": {{"plugin": "ffmpeg-mjpeg", "url": "rtsp://admin:{SLASH}@127.0.0.1:9/x"}}}}"#
        );
        let (status, _, reply) = http(addr, "POST", "/api/streams", &json, Some(body.as_bytes())).await;
        assert_eq!(status, 422, "{}", String::from_utf8_lossy(&reply));
        seen.push_str(&String::from_utf8_lossy(&reply));
        // A rejected manifest edit with the unparsable URL, reported in /api/config.
        std::fs::write(
            &manifest,
            format!("{good}  - id: b\n    source: {{ plugin: ffmpeg-mjpeg, url: \"rtsp://admin:{SLASH}@127.0.0.1:9/x\" }}\n"),
        )
        .unwrap();
        send(&child, "-HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, body) = http_get(addr, "/api/config", &[]).await;
            if body.contains("\"rejected\"") {
                seen.push_str(&body);
                break;
            }
            assert!(Instant::now() < deadline, "no rejected reload: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for path in ["/api/streams", "/api/streams/cam"] {
            let (status, _, body) = http(addr, "GET", path, &[], None).await;
            assert_eq!(status, 200, "{path}");
            seen.push_str(&String::from_utf8_lossy(&body));
        }
    });
    let check = camgate().arg("check").arg(&manifest).output().unwrap();
    assert_eq!(check.status.code(), Some(1));
    let check = text(&check);
    send(&child, "-TERM");
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let logs = logs.lock().unwrap().clone();
    // Not vacuous: the URLs were shown, masked.
    assert!(seen.contains("rtsp://admin:***@127.0.0.1:9/x"), "{seen}");
    assert!(check.contains("rtsp://admin:***@127.0.0.1:9/x"), "{check}");
    assert!(logs.contains("configuration rejected"), "{logs}");
    for password in [QUOTE, SLASH] {
        assert!(
            !seen.contains(password),
            "{password} in a response:\n{seen}"
        );
        assert!(!check.contains(password), "{password} in check:\n{check}");
        assert!(!logs.contains(password), "{password} in the logs:\n{logs}");
    }
}

#[test]
fn a_bad_manifest_next_to_a_busy_log_file_is_rejected_once() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("camgate.yaml");
    std::fs::write(
        &manifest,
        "streams:\n  - id: a\n    source: { plugin: testsrc, width: 160, height: 90 }\n",
    )
    .unwrap();
    let (mut child, addr, logs) = spawn_gateway(&manifest);
    let rejections = || {
        logs.lock()
            .unwrap()
            .matches("configuration rejected")
            .count()
    };
    std::fs::write(&manifest, "streams:\n  - id: a\n    source: [unclosed\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while rejections() == 0 {
        assert!(Instant::now() < deadline, "no rejection logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A log file in the same directory, written in bursts that each end in a quiet period
    // long enough for the debounce (250 ms): each burst is a reload trigger.
    let log = dir.path().join("camgate.log");
    for burst in 0..6 {
        std::fs::write(&log, format!("burst {burst}\n")).unwrap();
        std::thread::sleep(Duration::from_millis(600));
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let metrics = runtime.block_on(async { http_get(addr, "/metrics", &[]).await.1 });
    assert!(
        metrics.contains("camgate_config_reloads_total{result=\"rejected\"} 1"),
        "{metrics}"
    );
    assert_eq!(rejections(), 1, "{}", logs.lock().unwrap());
    send(&child, "-TERM");
    assert!(child.wait().unwrap().success());
}
