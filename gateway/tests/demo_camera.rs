//! The demo RTSP camera (`demo_rtsp_server/server.py`) itself, checked with real ffprobe and
//! ffmpeg: the H.265 and loop mounts play with the right codec and size, a loop mount's
//! timestamps run on across the loop point with a key frame every second, two clients of a
//! mount share one pipeline (another query string gets its own), the session counts of `--stats-file` follow connects and
//! disconnects (TEARDOWN and a killed client alike), and a second start reuses the cached
//! loop clips instead of encoding them again. The picture-health mounts are checked on
//! decoded 64x36 grey thumbnails: `/frozen` moves then repeats one picture, `/dark` moves
//! then goes black, `/still` is noisy but never frozen and never moves, and a bad phase
//! query gets 400 (after auth) while the server carries on. The phases are found in the
//! decoded sequence, never expected at a given frame, so a slow machine cannot fail them.
//!
//! Other tests (issue 14's passthrough source, e2e checks) rely on these mounts and counts.
//! Every child is owned by a guard that kills and reaps it; only 127.0.0.1 is bound.

#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "drives real processes and sockets, whose timing is the wall clock's"
)]

mod support;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use support::rtsp::{self, RtspServer, wait_until};

/// How long a count may take to show a connect or disconnect on the busy test machine.
const SETTLE: Duration = Duration::from_secs(15);

/// Runs `program args` to completion, failing the test after `timeout`.
fn run(program: &str, args: &[&str], timeout: Duration) -> Output {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let guard = Guard(Some(child));
    let pid = guard.pid();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut guard = guard;
        let child = guard.0.take().expect("the child is there");
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(output) => output.unwrap_or_else(|e| panic!("{program}: {e}")),
        Err(_) => {
            rtsp::signal(pid, "KILL");
            panic!("{program} {args:?} did not finish within {timeout:?}");
        }
    }
}

/// Kills and reaps a child on drop.
struct Guard(Option<Child>);

impl Guard {
    fn pid(&self) -> u32 {
        self.0.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Asks the child to quit (SIGTERM: ffmpeg then sends TEARDOWN) and reaps it.
    fn terminate(mut self) {
        if let Some(mut child) = self.0.take() {
            rtsp::signal(child.id(), "TERM");
            let _ = child.wait();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An ffmpeg that copies the stream to nowhere until it is stopped, over `transport`.
fn consumer(url: &str, transport: &str) -> Guard {
    let child = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-rtsp_transport",
            transport,
            "-i",
            url,
        ])
        .args(["-c", "copy", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run ffmpeg");
    Guard(Some(child))
}

/// `codec_name,width,height` of the video stream, as ffprobe sees it over RTSP/TCP.
fn probe(url: &str) -> String {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            url,
        ],
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One `-c copy` packet as ffmpeg's framecrc muxer lists it.
#[derive(Debug)]
struct Packet {
    pts: i64,
    keyframe: bool,
}

/// The first `frames` packets of `url`, copied without decoding.
fn packets(url: &str, frames: usize) -> Vec<Packet> {
    let n = frames.to_string();
    let out = run(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
            url,
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-frames:v",
            &n,
            "-f",
            "framecrc",
            "-",
        ],
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "ffmpeg {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_framecrc(&String::from_utf8_lossy(&out.stdout))
}

/// framecrc lines: `stream, dts, pts, duration, size, crc[, F=0xN]` (F only when the
/// packet is not exactly a key frame); `#` lines are headers.
fn parse_framecrc(text: &str) -> Vec<Packet> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            Packet {
                pts: fields[2]
                    .parse()
                    .unwrap_or_else(|_| panic!("bad framecrc line {line}")),
                keyframe: !fields.iter().any(|f| f.starts_with("F=")),
            }
        })
        .collect()
}

#[test]
fn h265_and_loop_mounts_play_with_their_codec() {
    let server = RtspServer::start(&["--loop-seconds", "2"]);
    for (mount, codec) in [
        ("/h265", "hevc"),
        ("/loop264", "h264"),
        ("/loop265", "hevc"),
    ] {
        assert_eq!(
            probe(&server.url(mount)),
            format!("{codec},640,360"),
            "{mount}"
        );
        let got = packets(&server.url(mount), 20);
        assert_eq!(got.len(), 20, "{mount}: {got:?}");
        assert!(got[0].keyframe, "{mount} starts with a key frame: {got:?}");
    }
}

#[test]
fn a_loop_mount_runs_on_across_the_loop_point() {
    // 2 s clip at 15 fps: 75 frames cross the loop point twice.
    let server = RtspServer::start(&["--loop-seconds", "2"]);
    for mount in ["/loop264", "/loop265"] {
        let got = packets(&server.url(mount), 75);
        assert_eq!(got.len(), 75, "{mount}");
        // RTP's 90 kHz clock: one frame is 6000 ticks at 15 fps. The first packet may
        // carry no timestamp yet (ffmpeg waits for RTCP), so start from the second.
        for pair in got[1..].windows(2) {
            let step = pair[1].pts - pair[0].pts;
            assert!(
                (5990..=6010).contains(&step),
                "{mount}: pts step {step} in {got:?}"
            );
        }
        let keys: Vec<usize> = (0..got.len()).filter(|&i| got[i].keyframe).collect();
        assert_eq!(
            keys,
            [0, 15, 30, 45, 60],
            "{mount}: a key frame every second"
        );
    }
}

#[test]
fn sessions_are_counted_and_clients_of_a_mount_share_one_pipeline() {
    let server = RtspServer::start(&[]);
    let mount = "/loop264";
    assert_eq!((server.sessions(mount), server.pipelines(mount)), (0, 0));

    let first = consumer(&server.url(mount), "tcp");
    assert!(
        wait_until(SETTLE, || server.sessions(mount) == 1),
        "{}",
        server.stats()
    );
    assert_eq!(server.pipelines(mount), 1);

    // UDP this time: every transport counts.
    let second = consumer(&server.url(mount), "udp");
    assert!(
        wait_until(SETTLE, || server.sessions(mount) == 2),
        "{}",
        server.stats()
    );
    assert_eq!(
        server.pipelines(mount),
        1,
        "one shared pipeline: {}",
        server.stats()
    );
    assert_eq!(server.sessions_opened(mount), 2);

    // Another query string is another, independent pipeline, counted under the mount.
    let third = consumer(&format!("{}?cam=2", server.url(mount)), "tcp");
    assert!(
        wait_until(SETTLE, || server.sessions(mount) == 3),
        "{}",
        server.stats()
    );
    assert_eq!(server.pipelines(mount), 2, "{}", server.stats());
    assert_eq!(
        server.stats()["sessions_by_url"],
        serde_json::json!({ "/loop264": 2, "/loop264?cam=2": 1 })
    );

    // A killed client sends no TEARDOWN: its connection closing ends the session.
    drop(second);
    assert!(
        wait_until(SETTLE, || server.sessions(mount) == 2),
        "{}",
        server.stats()
    );
    assert_eq!(server.pipelines(mount), 2);
    drop(third);
    assert!(
        wait_until(SETTLE, || server.sessions(mount) == 1
            && server.pipelines(mount) == 1),
        "{}",
        server.stats()
    );

    // A client that quits sends TEARDOWN; the last one leaving stops the pipeline.
    first.terminate();
    assert!(
        wait_until(SETTLE, || server.sessions(mount) == 0
            && server.pipelines(mount) == 0),
        "{}",
        server.stats()
    );
    assert_eq!(server.sessions_opened(mount), 3);
    assert_eq!(server.stats()["sessions_by_url"], serde_json::json!({}));
    for other in ["/test", "/h265", "/mjpeg", "/loop265"] {
        assert_eq!(
            server.sessions_opened(other),
            0,
            "{other}: {}",
            server.stats()
        );
    }
}

#[test]
fn a_second_start_reuses_the_cached_loop_clips() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_str().unwrap();
    let clips = || {
        let mut found: Vec<(String, SystemTime)> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| {
                e.file_name().to_string_lossy().ends_with(".h264")
                    || e.file_name().to_string_lossy().ends_with(".h265")
            })
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().modified().unwrap(),
                )
            })
            .collect();
        found.sort();
        found
    };
    let options = [
        "--cache-dir",
        dir,
        "--loop-seconds",
        "1",
        "--width",
        "160",
        "--height",
        "90",
    ];
    let first = RtspServer::start(&options);
    let made = clips();
    assert_eq!(made.len(), 2, "one clip per codec: {made:?}");
    drop(first);

    let second = RtspServer::start(&options);
    assert_eq!(clips(), made, "the second start encodes nothing");
    assert_eq!(probe(&second.url("/loop264")), "h264,160,90");
}

/// Pictures of the picture-health tests: 64x36 grey, one byte per pixel.
const THUMB: usize = 64 * 36;

/// The tests' frame rate (`RtspServer` runs `--fps 15`).
const FPS: usize = 15;

/// `seconds` of `url` decoded by ffmpeg (over RTSP/TCP) into 64x36 grey thumbnails, one
/// per frame the camera sent (`-fps_mode passthrough`: none duplicated, none dropped).
fn thumbnails(url: &str, seconds: f64) -> Vec<Vec<u8>> {
    let t = seconds.to_string();
    let out = run(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
            url,
            "-t",
            &t,
            "-fps_mode",
            "passthrough",
            "-vf",
            "scale=64:36,format=gray",
            "-f",
            "rawvideo",
            "-",
        ],
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "ffmpeg {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len() % THUMB, 0, "{url}: whole pictures");
    let pictures: Vec<Vec<u8>> = out.stdout.chunks(THUMB).map(<[u8]>::to_vec).collect();
    // A client joining mid-stream may first get a picture or two from before the decoder
    // had a whole reference (seen once under load in CI: the first picture 107 levels off
    // the next, where consecutive pictures of a moving scene differ by ~6). Those are the
    // client's start-up, not the mount's content: dropped, at most half a second of them.
    let warm_up = pictures
        .windows(2)
        .take_while(|pair| mad(&pair[0], &pair[1]) > WARM_UP_JUMP)
        .count();
    assert!(warm_up <= FPS / 2, "{url}: {warm_up} unsettled pictures");
    pictures[warm_up..].to_vec()
}

/// A jump between consecutive start-up pictures (luma levels) that no mount's scene makes
/// in one frame at its start (all start with a moving or still picture, never a cut).
const WARM_UP_JUMP: f64 = 40.0;

/// Mean luma of a thumbnail (0..=255).
fn mean(picture: &[u8]) -> f64 {
    picture.iter().map(|&p| f64::from(p)).sum::<f64>() / picture.len() as f64
}

/// Mean absolute difference between two thumbnails, in luma levels.
fn mad(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x.abs_diff(y)))
        .sum::<f64>()
        / a.len() as f64
}

/// The longest run of consecutive frames for which `pred` holds: `start..end`.
fn longest_run(frames: &[Vec<u8>], pred: impl Fn(usize) -> bool) -> std::ops::Range<usize> {
    let mut best = 0..0;
    let mut start = 0;
    for i in 0..=frames.len() {
        if i < frames.len() && pred(i) {
            continue;
        }
        if i - start > best.len() {
            best = start..i;
        }
        start = i + 1;
    }
    best
}

/// Indices `i` of `range` (i ≥ 1) whose frame equals the one before: a summary for
/// failure messages.
fn repeats(frames: &[Vec<u8>], range: std::ops::Range<usize>) -> Vec<usize> {
    range
        .filter(|&i| i > 0 && frames[i] == frames[i - 1])
        .collect()
}

#[test]
fn frozen_mount_moves_then_repeats_the_same_picture() {
    let server = RtspServer::start(&[]);
    // 2 s moving, 4 s frozen, then moving again (up to 8 s, where the next freeze starts).
    let frames = thumbnails(&server.url("/frozen?live=2&frozen=4"), 7.5);
    // The frozen phase: a run of identical pictures (each equal to its predecessor; the
    // run's first picture is the first frozen one).
    let frozen = longest_run(&frames, |i| i > 0 && frames[i] == frames[i - 1]);
    let frozen = frozen.start.saturating_sub(1)..frozen.end;
    assert!(
        frozen.len() >= 2 * FPS,
        "a frozen run of at least 2 s among {} frames, longest {frozen:?}",
        frames.len()
    );
    // Moving before it and again after it (the loop): every picture differs from the
    // one before.
    let before = 1..frozen.start;
    let after = frozen.end..frames.len();
    assert!(
        before.len() >= FPS,
        "at least 1 s of moving picture before {frozen:?}"
    );
    assert!(
        after.len() >= FPS / 2,
        "the picture moves again after {frozen:?} (of {} frames)",
        frames.len()
    );
    for phase in [before, after] {
        assert_eq!(
            repeats(&frames, phase.clone()),
            Vec::<usize>::new(),
            "moving frames {phase:?} (frozen {frozen:?})"
        );
    }
}

#[test]
fn dark_mount_turns_black_then_back() {
    let server = RtspServer::start(&[]);
    // 2 s moving, 3 s black, moving again (up to 7 s, where the next dark phase starts).
    let frames = thumbnails(&server.url("/dark?live=2&dark=3"), 6.5);
    let means: Vec<f64> = frames.iter().map(|f| mean(f)).collect();
    let dark = longest_run(&frames, |i| means[i] <= 20.0);
    assert!(
        dark.len() >= 2 * FPS,
        "at least 2 s of dark pictures, longest run {dark:?} in {means:?}"
    );
    for i in dark.clone() {
        let brightest = frames[i].iter().max().copied().unwrap_or(0);
        assert!(
            brightest <= 24,
            "frame {i} is uniformly black, not {brightest}"
        );
    }
    assert!(dark.start >= FPS, "a normal picture first: {means:?}");
    assert!(
        dark.end + FPS / 2 <= frames.len(),
        "the picture comes back: {means:?}"
    );
    for i in (0..dark.start).chain(dark.end..frames.len()) {
        assert!(
            means[i] > 60.0,
            "frame {i} outside {dark:?} is a normal picture: {means:?}"
        );
    }
    assert_eq!(
        repeats(&frames, 1..dark.start),
        Vec::<usize>::new(),
        "it moves before going dark"
    );
}

#[test]
fn still_mount_is_noisy_but_never_frozen_and_never_moves() {
    let server = RtspServer::start(&[]);
    let frames = thumbnails(&server.url("/still"), 4.0);
    assert!(frames.len() >= 2 * FPS, "{} frames", frames.len());
    for i in 1..frames.len() {
        let changed = frames[i]
            .iter()
            .zip(&frames[i - 1])
            .filter(|(a, b)| a != b)
            .count();
        let diff = mad(&frames[i], &frames[i - 1]);
        // Noise everywhere (measured: ~70 % of the pixels, MAD ~1 level at 64x36)...
        assert!(
            changed >= THUMB / 4,
            "frame {i}: only {changed} of {THUMB} pixels changed"
        );
        // ...but small: a moving picture differs by ~6 levels per frame.
        assert!(diff < 3.0, "frame {i}: MAD {diff:.2} levels");
    }
    let drift = mad(&frames[0], &frames[frames.len() - 1]);
    assert!(
        drift < 3.0,
        "the scene stays where it is: MAD {drift:.2} first to last"
    );
}

#[test]
fn a_bad_phase_query_is_refused_and_the_server_carries_on() {
    let refused = |url: &str, status: &str| {
        let out = run(
            "ffprobe",
            &["-v", "error", "-rtsp_transport", "tcp", url],
            Duration::from_secs(30),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(status),
            "{url}: {err}"
        );
    };
    let server = RtspServer::start(&[]);
    for query in [
        "/frozen?live=0",
        "/frozen?frozen=abc",
        "/frozen?live=2&live=3",
        "/dark?dark=-1",
        "/dark?live=86401",
    ] {
        refused(&server.url(query), "400 Bad Request");
    }
    // Other keys are ignored (another camera), and the server still serves.
    assert_eq!(
        probe(&server.url("/frozen?cam=2&live=1&frozen=1")),
        "h264,640,360"
    );
    assert_eq!(probe(&server.url("/still?live=0")), "h264,640,360");

    // With auth the password is checked first: a bad query tells a stranger nothing.
    let server = RtspServer::start(&["--username", "admin", "--password", "secret"]);
    let url = |auth: &str| format!("rtsp://{auth}127.0.0.1:{}/dark?live=0", server.port());
    refused(&url(""), "401 Unauthorized");
    refused(&url("admin:wrong@"), "401 Unauthorized");
    refused(&url("admin:secret@"), "400 Bad Request");
}
