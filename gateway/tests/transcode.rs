//! The on-demand MJPEG transcoder and the GOP snapshot against real ffmpeg, fed with real
//! H.264/H.265 access units (a lavfi test pattern encoded by libx264/libx265, cut into
//! AVCC/HVCC frames as a passthrough source delivers them).

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use camgate::hub::{Codec, Frame, VideoConfig};
use camgate::transcode::{
    AnnexBError, Pushed, RunningCount, SnapshotError, SnapshotOptions, TranscodeError,
    TranscodedJpeg, Transcoder, TranscoderOptions, TranscoderState, snapshot_from_gop,
    snapshot_with,
};
use support::video::{self, Clip, can_encode, encode, process_exists};
use tokio::sync::mpsc;
use tokio::time::timeout;

const T0: u64 = 1_700_000_000_000_000;

/// Decodes a JPEG fully; returns its size and luma-ish pixels.
fn decode(jpeg: &[u8]) -> (u16, u16, Vec<u8>) {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]), "SOI");
    assert!(jpeg.ends_with(&[0xFF, 0xD9]), "EOI");
    let mut decoder = jpeg_decoder::Decoder::new(jpeg);
    let pixels = decoder.decode().expect("decodes");
    let info = decoder.info().expect("header");
    (info.width, info.height, pixels)
}

/// Mean absolute difference of two pictures of one size.
fn difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len() as f64
}

/// A transcoder whose JPEGs arrive on a channel.
fn start(options: TranscoderOptions) -> (Transcoder, mpsc::UnboundedReceiver<TranscodedJpeg>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let transcoder = Transcoder::start(options, move |jpeg| {
        let _ = tx.send(jpeg);
    });
    (transcoder, rx)
}

fn options() -> TranscoderOptions {
    TranscoderOptions {
        queue: 64,
        label: "test".into(),
        ..TranscoderOptions::default()
    }
}

async fn collect(
    rx: &mut mpsc::UnboundedReceiver<TranscodedJpeg>,
    n: usize,
) -> Vec<TranscodedJpeg> {
    let mut out = Vec::new();
    while out.len() < n {
        match timeout(Duration::from_secs(15), rx.recv()).await {
            Ok(Some(jpeg)) => out.push(jpeg),
            other => panic!("{} of {n} JPEGs, then {other:?}", out.len()),
        }
    }
    out
}

async fn state_becomes(
    transcoder: &Transcoder,
    what: impl Fn(&TranscoderState) -> bool,
) -> TranscoderState {
    let mut watch = transcoder.watch_state();
    timeout(Duration::from_secs(15), watch.wait_for(|s| what(s)))
        .await
        .unwrap_or_else(|_| panic!("state stayed {:?}", transcoder.state()))
        .expect("state sender alive")
        .clone()
}

async fn stopped_and_reaped(transcoder: Transcoder, running: &RunningCount) {
    let pid = transcoder.ffmpeg_pid().expect("ffmpeg runs");
    assert!(process_exists(pid));
    timeout(Duration::from_secs(5), transcoder.stop())
        .await
        .expect("stop is prompt");
    assert!(
        !process_exists(pid),
        "ffmpeg {pid} left behind (or a zombie)"
    );
    assert_eq!(running.get(), 0);
}

async fn one_jpeg_per_frame(codec: Codec) {
    let clip = encode(codec, 320, 240, 30, 10);
    let frames = video::frames(&clip, T0);
    let running = RunningCount::default();
    let (transcoder, mut rx) = start(TranscoderOptions {
        running: running.clone(),
        ..options()
    });
    for frame in &frames {
        assert_eq!(transcoder.push(frame), Pushed::Queued);
    }
    // Every frame comes out without closing ffmpeg's input: none waits for the next one.
    let jpegs = collect(&mut rx, frames.len()).await;
    for (jpeg, frame) in jpegs.iter().zip(&frames) {
        assert_eq!((jpeg.width, jpeg.height), (320, 240));
        let (w, h, _) = decode(&jpeg.jpeg);
        assert_eq!((w, h), (320, 240));
        assert_eq!(jpeg.captured_at_us, frame.captured_at_us);
        assert_eq!(jpeg.source_seq, frame.seq);
    }
    assert_eq!(transcoder.state(), TranscoderState::Running);
    assert_eq!(running.get(), 1);
    let stats = transcoder.stats();
    assert_eq!((stats.queued, stats.jpegs, stats.runs), (30, 30, 1));
    stopped_and_reaped(transcoder, &running).await;
    assert!(rx.try_recv().is_err(), "nothing after stop");
}

#[tokio::test]
async fn h264_frames_become_one_jpeg_each_in_order_with_their_capture_times() {
    one_jpeg_per_frame(Codec::H264).await;
}

#[tokio::test]
async fn h265_frames_become_one_jpeg_each_in_order_with_their_capture_times() {
    if !can_encode(Codec::H265) {
        eprintln!("skipped: this ffmpeg has no libx265");
        return;
    }
    one_jpeg_per_frame(Codec::H265).await;
}

#[tokio::test]
async fn a_stream_joined_mid_gop_waits_for_the_next_keyframe() {
    let clip = encode(Codec::H264, 320, 240, 25, 10);
    let frames = video::frames(&clip, T0);
    let (transcoder, mut rx) = start(options());
    for frame in &frames[3..10] {
        assert_eq!(transcoder.push(frame), Pushed::WaitingForKeyframe);
    }
    assert!(
        transcoder.ffmpeg_pid().is_none(),
        "no ffmpeg before a keyframe"
    );
    assert_eq!(transcoder.state(), TranscoderState::WaitingForKeyframe);
    for frame in &frames[10..] {
        assert_eq!(transcoder.push(frame), Pushed::Queued);
    }
    let jpegs = collect(&mut rx, 15).await;
    let seqs: Vec<u64> = jpegs.iter().map(|j| j.source_seq).collect();
    assert_eq!(seqs, (11..=25).collect::<Vec<u64>>());
    assert_eq!(transcoder.stats().skipped, 7);
    transcoder.stop().await;
}

#[tokio::test]
async fn dropping_the_transcoder_kills_and_reaps_ffmpeg() {
    let clip = encode(Codec::H264, 160, 120, 5, 5);
    let frames = video::frames(&clip, T0);
    let running = RunningCount::default();
    let (transcoder, mut rx) = start(TranscoderOptions {
        running: running.clone(),
        ..options()
    });
    transcoder.push(&frames[0]);
    collect(&mut rx, 1).await;
    let pid = transcoder.ffmpeg_pid().expect("ffmpeg runs");
    drop(transcoder);
    timeout(Duration::from_secs(5), async {
        while process_exists(pid) || running.get() != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("ffmpeg is killed and reaped after the drop");
}

#[tokio::test]
async fn a_new_size_restarts_ffmpeg_at_its_keyframe() {
    let big = encode(Codec::H264, 320, 240, 5, 5);
    let small = encode(Codec::H264, 160, 120, 5, 5);
    let running = RunningCount::default();
    let (transcoder, mut rx) = start(TranscoderOptions {
        running: running.clone(),
        ..options()
    });
    for frame in video::frames(&big, T0) {
        transcoder.push(&frame);
    }
    let first = collect(&mut rx, 5).await;
    assert!(first.iter().all(|j| (j.width, j.height) == (320, 240)));
    let old_pid = transcoder.ffmpeg_pid();
    for frame in video::frames(&small, T0 + 1_000_000) {
        transcoder.push(&frame);
    }
    let second = collect(&mut rx, 5).await;
    assert!(second.iter().all(|j| (j.width, j.height) == (160, 120)));
    assert_eq!(second[0].captured_at_us, T0 + 1_000_000);
    assert_eq!(transcoder.stats().runs, 2);
    assert_ne!(transcoder.ffmpeg_pid(), old_pid);
    assert!(
        !process_exists(old_pid.unwrap()),
        "the old ffmpeg was reaped"
    );
    assert_eq!(running.get(), 1);
    stopped_and_reaped(transcoder, &running).await;
}

/// `clip`'s first keyframe with its access unit replaced by `data`.
fn keyframe_with(clip: &Clip, data: &'static [u8]) -> Frame {
    let mut frame = video::frames(clip, T0).remove(0);
    frame.data = Bytes::from_static(data);
    frame
}

#[tokio::test]
async fn malformed_frames_are_typed_errors_and_the_stream_recovers_at_a_keyframe() {
    let clip = encode(Codec::H264, 160, 120, 10, 5);
    let frames = video::frames(&clip, T0);
    let (transcoder, mut rx) = start(options());
    // A length prefix past the end of the access unit.
    transcoder.push(&keyframe_with(&clip, &[0, 0, 0, 9, 0x65, 0x88]));
    let state = state_becomes(&transcoder, |s| matches!(s, TranscoderState::Failed(_))).await;
    assert_eq!(
        state,
        TranscoderState::Failed(TranscodeError::Input(AnnexBError::NalTruncated {
            at: 0,
            declared: 9,
            available: 2
        }))
    );
    // Without its configuration.
    let mut bare = frames[0].clone();
    bare.config = None;
    transcoder.push(&bare);
    state_becomes(&transcoder, |s| {
        *s == TranscoderState::Failed(TranscodeError::NoConfig)
    })
    .await;
    // The next good keyframe starts it.
    for frame in &frames[5..] {
        transcoder.push(frame);
    }
    let jpegs = collect(&mut rx, 5).await;
    assert_eq!(jpegs[0].source_seq, 6);
    state_becomes(&transcoder, |s| *s == TranscoderState::Running).await;
    transcoder.stop().await;
}

#[tokio::test]
async fn garbage_in_well_formed_units_yields_no_picture_and_stops_promptly() {
    let clip = encode(Codec::H264, 160, 120, 5, 5);
    let running = RunningCount::default();
    let (transcoder, mut rx) = start(TranscoderOptions {
        running: running.clone(),
        ..options()
    });
    let garbage: &'static [u8] = &[0, 0, 0, 8, 0x65, 0xFF, 0x13, 0x00, 0x42, 0x99, 0x01, 0x07];
    for _ in 0..20 {
        transcoder.push(&keyframe_with(&clip, garbage));
    }
    assert!(
        timeout(Duration::from_millis(1500), rx.recv())
            .await
            .is_err(),
        "no picture from garbage"
    );
    timeout(Duration::from_secs(5), transcoder.stop())
        .await
        .expect("no hang");
    assert_eq!(running.get(), 0);
}

#[tokio::test]
async fn a_missing_ffmpeg_is_a_spawn_error() {
    let clip = encode(Codec::H264, 160, 120, 2, 2);
    let (transcoder, _rx) = start(TranscoderOptions {
        ffmpeg: "/nonexistent/ffmpeg".into(),
        ..options()
    });
    transcoder.push(&video::frames(&clip, T0)[0]);
    let state = state_becomes(&transcoder, |s| matches!(s, TranscoderState::Failed(_))).await;
    assert!(
        matches!(&state, TranscoderState::Failed(TranscodeError::Spawn { program, .. }) if program == "/nonexistent/ffmpeg"),
        "{state:?}"
    );
    transcoder.stop().await;
}

/// A stand-in for ffmpeg that never reads its input (it writes its pid to `pid_file`).
fn stuck_ffmpeg(dir: &tempfile::TempDir) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let pid_file = dir.path().join("pid");
    let script = dir.path().join("ffmpeg");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 60\n",
            pid_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, pid_file)
}

#[tokio::test]
async fn a_full_queue_drops_until_the_next_keyframe_and_a_stuck_ffmpeg_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (script, _) = stuck_ffmpeg(&dir);
    let clip = encode(Codec::H264, 320, 240, 10, 5);
    let frames = video::frames(&clip, T0);
    let running = RunningCount::default();
    let (transcoder, _rx) = start(TranscoderOptions {
        ffmpeg: script,
        queue: 2,
        running: running.clone(),
        ..options()
    });
    // The stand-in never reads: its pipe fills, the writer waits, the queue fills.
    let big = Bytes::from([&[0u8, 0x01, 0x00, 0x00][..], &[0x41; 0x1_0000][..]].concat());
    let mut results = Vec::new();
    for i in 0..40u64 {
        let mut frame = frames[(i % 5) as usize].clone();
        frame.data = big.clone();
        frame.keyframe = i % 5 == 0;
        frame.seq = i + 1;
        results.push(transcoder.push(&frame));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let full = results
        .iter()
        .position(|r| *r == Pushed::QueueFull)
        .expect("the queue fills");
    // After an overflow, only a keyframe is queued again.
    for (i, result) in results.iter().enumerate().skip(full + 1) {
        if *result == Pushed::Queued {
            assert_eq!(
                i % 5,
                0,
                "a non-keyframe queued after an overflow: {results:?}"
            );
            break;
        }
        assert_ne!(*result, Pushed::Queued);
    }
    assert!(transcoder.stats().dropped >= 1);
    // The stand-in takes nothing for 5 s: it is stuck, killed and reaped.
    let pid = transcoder.ffmpeg_pid().expect("the stand-in runs");
    let state = state_becomes(&transcoder, |s| matches!(s, TranscoderState::Failed(_))).await;
    assert_eq!(
        state,
        TranscoderState::Failed(TranscodeError::Stalled(Duration::from_secs(5)))
    );
    assert!(!process_exists(pid));
    assert_eq!(running.get(), 0);
    transcoder.stop().await;
}

async fn snapshot_is_the_last_picture(codec: Codec) {
    let clip = encode(codec, 320, 240, 25, 25);
    let frames = video::frames(&clip, T0);
    let jpeg = timeout(Duration::from_secs(15), snapshot_from_gop(&frames))
        .await
        .expect("in time")
        .expect("a snapshot");
    let (w, h, pixels) = decode(&jpeg);
    assert_eq!((w, h), (320, 240));
    // Compare with the last and the first picture as ffmpeg decodes the encoder's output.
    let reference = |n: usize| {
        let format = if codec == Codec::H265 { "hevc" } else { "h264" };
        let select = format!("select=eq(n\\,{n})");
        let out = std::process::Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                format,
                "-i",
                "pipe:0",
            ])
            .args([
                "-vf",
                &select,
                "-frames:v",
                "1",
                "-q:v",
                "5",
                "-f",
                "image2pipe",
            ])
            .args(["-c:v", "mjpeg", "pipe:1"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(&clip.annex_b)?;
                child.wait_with_output()
            })
            .expect("reference ffmpeg");
        decode(&out.stdout).2
    };
    let last = difference(&pixels, &reference(24));
    let first = difference(&pixels, &reference(0));
    assert!(
        last < 2.0 && first > last * 3.0,
        "last {last}, first {first}"
    );
}

#[tokio::test]
async fn an_h264_gop_snapshot_is_its_last_picture() {
    snapshot_is_the_last_picture(Codec::H264).await;
}

#[tokio::test]
async fn an_h265_gop_snapshot_is_its_last_picture() {
    if !can_encode(Codec::H265) {
        eprintln!("skipped: this ffmpeg has no libx265");
        return;
    }
    snapshot_is_the_last_picture(Codec::H265).await;
}

#[tokio::test]
async fn snapshots_of_unusable_frames_are_typed_errors() {
    let clip = encode(Codec::H264, 160, 120, 5, 5);
    let frames = video::frames(&clip, T0);
    assert_eq!(snapshot_from_gop(&[]).await, Err(SnapshotError::Empty));
    assert_eq!(
        snapshot_from_gop(&frames[1..]).await,
        Err(SnapshotError::NoKeyframe)
    );
    let mut jpeg = frames[0].clone();
    jpeg.codec = Codec::Jpeg;
    assert_eq!(
        snapshot_from_gop(&[jpeg]).await,
        Err(SnapshotError::NotVideo)
    );
    let mut bare = frames.clone();
    bare[2].config = None;
    assert_eq!(snapshot_from_gop(&bare).await, Err(SnapshotError::NoConfig));
    assert!(matches!(
        snapshot_from_gop(&[keyframe_with(&clip, &[0, 0, 0, 1])]).await,
        Err(SnapshotError::Input(AnnexBError::NalTruncated { .. }))
    ));
    let bad_config = Arc::new(VideoConfig {
        description: Bytes::from_static(&[1, 2, 3]),
        ..VideoConfig::clone(&clip.config)
    });
    let mut broken = frames.clone();
    broken[0].config = Some(bad_config);
    assert!(matches!(
        snapshot_from_gop(&broken).await,
        Err(SnapshotError::Input(AnnexBError::RecordTruncated { .. }))
    ));
    // Well-formed units of garbage: ffmpeg runs and decodes nothing.
    let garbage = keyframe_with(&clip, &[0, 0, 0, 6, 0x65, 0xFF, 0x13, 0x00, 0x42, 0x99]);
    let outcome = timeout(Duration::from_secs(10), snapshot_from_gop(&[garbage]))
        .await
        .expect("no hang");
    assert!(
        matches!(outcome, Err(SnapshotError::NoPicture(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_snapshot_that_takes_too_long_is_killed_and_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let (script, pid_file) = stuck_ffmpeg(&dir);
    let clip = encode(Codec::H264, 160, 120, 5, 5);
    let options = SnapshotOptions {
        ffmpeg: script,
        timeout: Duration::from_millis(500),
        ..SnapshotOptions::default()
    };
    let outcome = snapshot_with(&video::frames(&clip, T0), &options).await;
    assert_eq!(
        outcome,
        Err(SnapshotError::Timeout(Duration::from_millis(500)))
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!process_exists(pid), "the stuck child was reaped");
}

/// CPU time (user + system) of process `pid` so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// A 720p H.264 clip like a camera's: libx264 (default preset), a keyframe every second,
/// no B-frames.
fn camera_clip(fps: u32, seconds: u32) -> Clip {
    let source = format!("testsrc2=size=1280x720:rate={fps}");
    let (gop, frames) = (fps.to_string(), (fps * seconds).to_string());
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            &source,
        ])
        .args([
            "-frames:v",
            &frames,
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-bf",
            "0",
        ])
        .args(["-g", &gop, "-f", "h264", "-"])
        .output()
        .expect("ffmpeg");
    video::from_annex_b(Codec::H264, 1280, 720, &out.stdout)
}

/// Measurement for docs/performance.md (not a check): the transcoder's ffmpeg CPU and
/// latency for a 720p H.264 stream at `CAMGATE_FPS` (default 25) in real time, and the
/// snapshot latency for a 1 s GOP.
/// `CAMGATE_FPS=10 cargo test --release -p camgate --test transcode measure -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_transcoder_cpu_and_snapshot_latency() {
    let fps: u32 = std::env::var("CAMGATE_FPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let seconds = 20;
    let clip = camera_clip(fps, seconds);
    let bytes: usize = clip.units.iter().map(|u| u.1.len()).sum();
    let frames = video::frames(&clip, T0);
    let pushed_at = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (p, l) = (Arc::clone(&pushed_at), Arc::clone(&latencies));
    let transcoder = Transcoder::start(options(), move |jpeg: TranscodedJpeg| {
        let at: Option<tokio::time::Instant> = p.lock().unwrap().remove(&jpeg.source_seq);
        if let Some(at) = at {
            l.lock().unwrap().push(at.elapsed());
        }
    });
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(fps)));
    let mut start = None;
    for (i, frame) in frames.iter().enumerate() {
        tick.tick().await;
        pushed_at
            .lock()
            .unwrap()
            .insert(frame.seq, tokio::time::Instant::now());
        assert_eq!(transcoder.push(frame), Pushed::Queued);
        // Skip the first second (start-up) in the CPU figure.
        if i == fps as usize {
            let pid = transcoder.ffmpeg_pid().unwrap();
            start = Some((pid, cpu_time(pid), tokio::time::Instant::now()));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (pid, cpu0, t0) = start.unwrap();
    let cpu = cpu_time(pid) - cpu0;
    let wall = t0.elapsed();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    let pct = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    println!(
        "transcoder 1280x720 {fps} fps H.264 ({} kbit/s): ffmpeg CPU {:.1} % of one core; {} JPEGs of {}; push→JPEG p50 {:?} p95 {:?} max {:?}",
        bytes * 8 / 1000 / seconds as usize,
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        lat.len(),
        frames.len(),
        pct(0.5),
        pct(0.95),
        lat[lat.len() - 1],
    );
    transcoder.stop().await;

    let gop = &frames[frames.len() - fps as usize..];
    let gop = &frames[..gop.len()];
    let mut times = Vec::new();
    for _ in 0..10 {
        let at = tokio::time::Instant::now();
        snapshot_from_gop(gop).await.expect("snapshot");
        times.push(at.elapsed());
    }
    times.sort();
    println!(
        "snapshot of a 1 s GOP ({} frames, 1280x720): p50 {:?} max {:?}",
        gop.len(),
        times[times.len() / 2],
        times[times.len() - 1]
    );
}
