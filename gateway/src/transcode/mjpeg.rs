//! [`Transcoder`]: H.264/H.265 frames from the hub → one ffmpeg → one JPEG per frame, for
//! the MJPEG consumers of a passthrough stream (viewers that ask for MJPEG or cannot
//! decode, MJPEG over HTTP), without a second session to the camera.
//!
//! How it runs: [`Transcoder::push`] is called on the publishing thread for every frame of
//! the stream and never blocks — it clones the frame (a refcount) into a bounded queue. A
//! tokio task takes frames from the queue, converts them to Annex B ([`super::annexb`]:
//! parameter sets before each keyframe, a delimiter after each access unit so ffmpeg
//! decodes each picture at once) and writes them to ffmpeg's stdin:
//!
//! ```text
//! ffmpeg -hide_banner -loglevel level+error -nostats -flags low_delay -probesize 32 -analyzeduration 0
//!        -threads 1 -f h264|hevc -i pipe:0 -an -fps_mode passthrough -threads 1
//!        [-vf scale=W:H:flags=area] -c:v mjpeg -q:v 5 -f image2pipe -flush_packets 1 pipe:1
//! ```
//!
//! (no `-fflags nobuffer`: it makes ffmpeg drop the packets it read while probing, the
//! keyframe among them; no scaling for viewers, whose JPEGs have the coded size; the
//! health monitor's keyframe thumbnails ask for a small size). Another task reads
//! stdout, splits it into JPEGs with the ffmpeg plugin's splitter and hands each one, with
//! the capture time and sequence number of the frame it came from, to the callback given
//! to [`Transcoder::start`].
//!
//! Capture times: ffmpeg does not carry them through a raw pipe, so the task keeps a FIFO
//! of the capture times of the frames it wrote and gives each JPEG the oldest. This
//! assumes ffmpeg turns every access unit into exactly one picture, in order — true for
//! streams without B-frames (what cameras send for live view; `-fps_mode passthrough`
//! neither duplicates nor drops). A frame ffmpeg fails to decode would shift later
//! times by one frame until the next restart; the FIFO is bounded, so it cannot grow.
//!
//! Invariants:
//! - it starts at a keyframe: before the first one (and after a queue overflow, an input
//!   error or a restart) frames are skipped and counted, never fed to a decoder that
//!   cannot use them;
//! - a full queue drops frames until the next keyframe (counted in
//!   [`TranscoderStats::dropped`]): ffmpeg always decodes a complete GOP suffix;
//! - at most one ffmpeg runs per transcoder; a new [`VideoConfig`] with another codec or
//!   size restarts it (at that keyframe), new parameter sets of the same size do not;
//! - a failed ffmpeg (exit, stalled input) is restarted at a later keyframe with an
//!   exponential backoff (0.5 s … 30 s), and reported through [`Transcoder::state`];
//! - [`Transcoder::stop`] kills ffmpeg and waits for it (no zombie); dropping the
//!   transcoder does the same from its task, and the child is `kill_on_drop` if the
//!   runtime goes away first;
//! - [`RunningCount`] counts the ffmpeg children alive (the API's `transcoders`).
//!
//! JPEG input ([`TranscoderOptions::jpeg_input`], a derived sub of a JPEG stream): each JPEG
//! is written as one part of a `multipart/x-mixed-replace` body with its `Content-Length`
//! (ffmpeg's `mpjpeg` demuxer), so ffmpeg has the whole picture at once — its raw `mjpeg`
//! and `jpeg_pipe` inputs find a picture's end only when the next one begins, one frame
//! late. When the output is at most a half (a quarter, an eighth) of the picture's width,
//! the decoder's reduced IDCT (`-lowres 1|2|3`) decodes at that size in the first place;
//! a picture of another width restarts ffmpeg (a new `-lowres`).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use camgate_ffmpeg_mjpeg::splitter::{DEFAULT_MAX_FRAME, JpegSplitter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::annexb::{AnnexBError, AnnexBWriter};
use super::process::Ffmpeg;
use crate::hub::{Codec, Frame, VideoConfig};

/// If ffmpeg takes no input for this long while we have a frame for it, it is stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait before restarting a failed ffmpeg; doubles per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait before restarting a failed ffmpeg.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Most capture times remembered for pictures not yet out of ffmpeg.
const MAX_IN_FLIGHT: usize = 256;

/// How to run a transcoder.
#[derive(Debug, Clone)]
pub struct TranscoderOptions {
    /// The ffmpeg binary (`ffmpeg` from `PATH` by default).
    pub ffmpeg: PathBuf,
    /// JPEG quality, ffmpeg's `-q:v` (2 best … 31 worst); 5 like the ffmpeg plugin.
    pub quality: u8,
    /// Frames the queue holds between [`Transcoder::push`] and ffmpeg's stdin.
    pub queue: usize,
    /// Names the stream in log lines.
    pub label: String,
    /// Incremented while this transcoder's ffmpeg runs; share one per stream.
    pub running: RunningCount,
    /// Scale every picture to this width × height, averaging the pixels each output pixel
    /// covers (the health monitor's thumbnails); `None`: the coded size. A height of 0
    /// keeps the aspect ratio (rounded to an even number).
    pub size: Option<(u32, u32)>,
    /// Also take JPEG frames (see the module docs); `false`: they are refused
    /// ([`Pushed::NotVideo`]).
    pub jpeg_input: bool,
}

impl Default for TranscoderOptions {
    fn default() -> Self {
        TranscoderOptions {
            ffmpeg: PathBuf::from("ffmpeg"),
            quality: 5,
            queue: 32,
            label: String::new(),
            running: RunningCount::default(),
            size: None,
            jpeg_input: false,
        }
    }
}

/// How many transcoder ffmpeg children are alive: cheap to read (one atomic), shared by
/// clones.
#[derive(Debug, Clone, Default)]
pub struct RunningCount(Arc<AtomicUsize>);

impl RunningCount {
    /// Children alive now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn hold(&self) -> RunningGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        RunningGuard(self.clone())
    }
}

/// Counts one child in a [`RunningCount`] until dropped (after the child is reaped).
#[derive(Debug)]
struct RunningGuard(RunningCount);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One JPEG out of the transcoder.
#[derive(Debug, Clone)]
pub struct TranscodedJpeg {
    /// A complete JPEG (SOI..EOI), as ffmpeg wrote it (no [`FrameTag`](crate::hub::FrameTag)).
    pub jpeg: Bytes,
    /// From the JPEG's SOF header.
    pub width: u32,
    /// From the JPEG's SOF header.
    pub height: u32,
    /// Capture time of the frame it was decoded from (µs since the Unix epoch).
    pub captured_at_us: u64,
    /// Hub sequence number of that frame.
    pub source_seq: u64,
}

/// Why the transcoder is not producing pictures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscodeError {
    /// ffmpeg could not be started (not installed, not executable).
    #[error("cannot start {program}: {message}")]
    Spawn {
        /// The program.
        program: String,
        /// The operating system's reason.
        message: String,
    },
    /// ffmpeg ended on its own.
    #[error("ffmpeg exited ({status}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Exited {
        /// How it ended (`exit status: 1`, `signal: 9`).
        status: String,
        /// The most useful error line it printed.
        message: Option<String>,
    },
    /// ffmpeg stopped taking input.
    #[error("ffmpeg took no input for {0:?}")]
    Stalled(Duration),
    /// A video frame arrived without its decoder configuration.
    #[error("a video frame without its decoder configuration")]
    NoConfig,
    /// The frame or its configuration is malformed.
    #[error("malformed input: {0}")]
    Input(#[from] AnnexBError),
}

/// What the transcoder is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranscoderState {
    /// No ffmpeg yet: waiting for a keyframe.
    WaitingForKeyframe,
    /// ffmpeg runs and is fed.
    Running,
    /// The last attempt failed; it is retried at a keyframe after a backoff.
    Failed(TranscodeError),
    /// Stopped for good (stop, drop).
    Stopped,
}

/// Counters since the start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TranscoderStats {
    /// Frames queued for ffmpeg.
    pub queued: u64,
    /// Frames skipped while waiting for a keyframe (start, restart, input error).
    pub skipped: u64,
    /// Frames dropped because the queue was full (until the next keyframe).
    pub dropped: u64,
    /// JPEGs handed to the callback.
    pub jpegs: u64,
    /// ffmpeg children started.
    pub runs: u64,
}

/// What [`Transcoder::push`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for ffmpeg.
    Queued,
    /// Skipped: the transcoder waits for a keyframe.
    WaitingForKeyframe,
    /// Dropped: the queue is full (frames are dropped until the next keyframe).
    QueueFull,
    /// Refused: a JPEG frame (nothing to transcode).
    NotVideo,
    /// The transcoder has stopped.
    Stopped,
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    skipped: AtomicU64,
    dropped: AtomicU64,
    jpegs: AtomicU64,
    runs: AtomicU64,
    /// The current ffmpeg's process id, 0 when none runs.
    pid: AtomicU32,
}

/// Where JPEGs go.
type Sink = Box<dyn FnMut(TranscodedJpeg) + Send>;

/// A capture time waiting for its picture.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    captured_at_us: u64,
    seq: u64,
}

type InFlight = Arc<Mutex<VecDeque<Stamp>>>;

/// An on-demand H.264/H.265 → MJPEG transcoder for one stream (see the module docs).
#[derive(Debug)]
pub struct Transcoder {
    queue: mpsc::Sender<Frame>,
    /// Whether JPEG frames are taken.
    jpeg_input: bool,
    /// The push side skips frames until a keyframe (start, after an overflow).
    need_keyframe: AtomicBool,
    counters: Arc<Counters>,
    state: watch::Receiver<TranscoderState>,
    worker: JoinHandle<()>,
}

impl Transcoder {
    /// Starts a transcoder (its ffmpeg starts with the first keyframe pushed); `on_jpeg`
    /// gets each JPEG, in order, on a runtime task (it must not block). Needs a tokio
    /// runtime.
    pub fn start(
        options: TranscoderOptions,
        on_jpeg: impl FnMut(TranscodedJpeg) + Send + 'static,
    ) -> Transcoder {
        let (queue, frames) = mpsc::channel(options.queue.max(1));
        let (state_tx, state) = watch::channel(TranscoderState::WaitingForKeyframe);
        let counters = Arc::new(Counters::default());
        let jpeg_input = options.jpeg_input;
        let worker = Worker {
            frames,
            options,
            counters: Arc::clone(&counters),
            state: state_tx,
            sink: Some(Box::new(on_jpeg)),
            run: None,
            config: None,
            writer: None,
            need_keyframe: true,
            jpeg_run: None,
            failures: 0,
            not_before: None,
            buf: Vec::new(),
        };
        Transcoder {
            queue,
            jpeg_input,
            need_keyframe: AtomicBool::new(true),
            counters,
            state,
            worker: tokio::spawn(worker.run()),
        }
    }

    /// Offers one frame of the stream; never blocks (see [`Pushed`]). Call it with every
    /// frame, in order, from one thread.
    pub fn push(&self, frame: &Frame) -> Pushed {
        if !frame.codec.is_video() && !self.jpeg_input {
            return Pushed::NotVideo;
        }
        if !frame.keyframe && self.need_keyframe.load(Ordering::Relaxed) {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return Pushed::WaitingForKeyframe;
        }
        match self.queue.try_send(frame.clone()) {
            Ok(()) => {
                self.need_keyframe.store(false, Ordering::Relaxed);
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                Pushed::Queued
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.need_keyframe.store(true, Ordering::Relaxed);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                Pushed::QueueFull
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Pushed::Stopped,
        }
    }

    /// The state now.
    pub fn state(&self) -> TranscoderState {
        self.state.borrow().clone()
    }

    /// A receiver of state changes.
    pub fn watch_state(&self) -> watch::Receiver<TranscoderState> {
        self.state.clone()
    }

    /// Counters so far.
    pub fn stats(&self) -> TranscoderStats {
        let c = &self.counters;
        TranscoderStats {
            queued: c.queued.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            jpegs: c.jpegs.load(Ordering::Relaxed),
            runs: c.runs.load(Ordering::Relaxed),
        }
    }

    /// The process id of the ffmpeg running now, if any (for tests and diagnostics).
    pub fn ffmpeg_pid(&self) -> Option<u32> {
        Some(self.counters.pid.load(Ordering::SeqCst)).filter(|pid| *pid != 0)
    }

    /// Stops: frames still queued are dropped, ffmpeg is killed and reaped before this
    /// returns. (Dropping the transcoder does the same in the background.)
    pub async fn stop(self) {
        let Transcoder { queue, worker, .. } = self;
        drop(queue);
        let _ = worker.await;
    }
}

/// One ffmpeg run.
struct Run {
    ffmpeg: Ffmpeg,
    stdin: ChildStdin,
    reader: JoinHandle<Sink>,
    in_flight: InFlight,
    jpegs_at_start: u64,
    _running: RunningGuard,
}

/// The task behind a [`Transcoder`].
struct Worker {
    frames: mpsc::Receiver<Frame>,
    options: TranscoderOptions,
    counters: Arc<Counters>,
    state: watch::Sender<TranscoderState>,
    /// The callback; lent to the reader of the current run.
    sink: Option<Sink>,
    run: Option<Run>,
    /// The configuration in force and its writer (`None` if it is malformed).
    config: Option<Arc<VideoConfig>>,
    writer: Option<AnnexBWriter>,
    need_keyframe: bool,
    /// While the current run decodes JPEGs: its `-lowres` (0: full size).
    jpeg_run: Option<u8>,
    failures: u32,
    not_before: Option<Instant>,
    buf: Vec<u8>,
}

impl Worker {
    async fn run(mut self) {
        loop {
            let frame = match &mut self.run {
                Some(run) => tokio::select! {
                    frame = self.frames.recv() => frame,
                    sink = &mut run.reader => {
                        // stdout ended: ffmpeg exited (or closed it).
                        self.sink = sink.ok();
                        self.end_run(None).await;
                        continue;
                    }
                },
                None => self.frames.recv().await,
            };
            match frame {
                Some(frame) => self.frame(frame).await,
                None => break,
            }
        }
        self.frames.close();
        if let Some(run) = self.run.take() {
            let (_, _, sink) = finish(run, &self.counters).await;
            self.sink = sink;
        }
        self.state.send_replace(TranscoderState::Stopped);
    }

    fn fail(&mut self, error: TranscodeError) {
        tracing::warn!(stream = %self.options.label, %error, "transcoder");
        self.state.send_replace(TranscoderState::Failed(error));
    }

    async fn frame(&mut self, frame: Frame) {
        if frame.codec == Codec::Jpeg {
            return self.jpeg_frame(frame).await;
        }
        if self.jpeg_run.take().is_some()
            && let Some(run) = self.run.take()
        {
            // From JPEG to video: another decoder.
            let (_, _, sink) = finish(run, &self.counters).await;
            self.sink = sink;
        }
        let Some(config) = frame.config.clone() else {
            self.need_keyframe = true;
            return self.fail(TranscodeError::NoConfig);
        };
        if self
            .config
            .as_ref()
            .is_none_or(|c| !Arc::ptr_eq(c, &config))
        {
            let restart = self.config.as_ref().is_none_or(|c| {
                (c.codec, c.width, c.height) != (config.codec, config.width, config.height)
            });
            if restart && let Some(run) = self.run.take() {
                // Another codec or size: a new decoder, from this frame's keyframe on.
                let (_, _, sink) = finish(run, &self.counters).await;
                self.sink = sink;
                self.need_keyframe = true;
                self.state.send_replace(TranscoderState::WaitingForKeyframe);
            }
            self.writer = match AnnexBWriter::new(&config) {
                Ok(writer) => Some(writer),
                Err(error) => {
                    self.need_keyframe = true;
                    self.fail(error.into());
                    None
                }
            };
            self.config = Some(config);
        }
        if self.need_keyframe && !frame.keyframe {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(writer) = &self.writer else {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.buf.clear();
        if let Err(error) = writer.write(&frame.data, frame.keyframe, &mut self.buf) {
            self.need_keyframe = true;
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return self.fail(error.into());
        }
        let codec = writer.codec();
        if self.run.is_none() {
            if self.not_before.is_some_and(|t| Instant::now() < t) {
                self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if let Err(error) = self.spawn(Input::Video(codec)) {
                self.backoff();
                self.need_keyframe = true;
                return self.fail(error);
            }
        }
        self.need_keyframe = false;
        self.feed(&frame).await;
    }

    /// One JPEG frame: (re)starts ffmpeg on its `mjpeg` decoder if needed and feeds it.
    async fn jpeg_frame(&mut self, frame: Frame) {
        let lowres = lowres_for(frame.width, self.options.size);
        if self.jpeg_run != Some(lowres)
            && let Some(run) = self.run.take()
        {
            // From video, or a picture of another width: another decoder.
            let (_, _, sink) = finish(run, &self.counters).await;
            self.sink = sink;
        }
        // Whatever came before, video starts again from a keyframe and its configuration.
        self.config = None;
        self.writer = None;
        self.need_keyframe = true;
        if self.run.is_none() {
            if self.not_before.is_some_and(|t| Instant::now() < t) {
                self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if let Err(error) = self.spawn(Input::Jpeg { lowres }) {
                self.backoff();
                return self.fail(error);
            }
            self.jpeg_run = Some(lowres);
        }
        self.buf.clear();
        self.buf.extend_from_slice(
            format!(
                "--{MPJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                frame.data.len()
            )
            .as_bytes(),
        );
        self.buf.extend_from_slice(&frame.data);
        self.buf.extend_from_slice(b"\r\n");
        self.feed(&frame).await;
    }

    /// Writes `self.buf` (the frame's input) to ffmpeg, remembering its capture time.
    async fn feed(&mut self, frame: &Frame) {
        let Some(run) = &mut self.run else { return };
        {
            let mut in_flight = run.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if in_flight.len() >= MAX_IN_FLIGHT {
                in_flight.pop_front();
            }
            in_flight.push_back(Stamp {
                captured_at_us: frame.captured_at_us,
                seq: frame.seq,
            });
        }
        match tokio::time::timeout(WRITE_TIMEOUT, run.stdin.write_all(&self.buf)).await {
            Ok(Ok(())) => {
                if *self.state.borrow() != TranscoderState::Running {
                    self.state.send_replace(TranscoderState::Running);
                }
            }
            // Broken pipe: ffmpeg is gone; its exit status and stderr say why.
            Ok(Err(_)) => self.end_run(None).await,
            Err(_) => {
                self.end_run(Some(TranscodeError::Stalled(WRITE_TIMEOUT)))
                    .await
            }
        }
    }

    fn spawn(&mut self, input: Input) -> Result<(), TranscodeError> {
        let args = input_args(input, self.options.quality, self.options.size);
        let mut ffmpeg =
            Ffmpeg::spawn(&self.options.ffmpeg, &args, &self.options.label).map_err(|e| {
                TranscodeError::Spawn {
                    program: self.options.ffmpeg.display().to_string(),
                    message: e.to_string(),
                }
            })?;
        let running = self.options.running.hold();
        self.counters.runs.fetch_add(1, Ordering::Relaxed);
        self.counters
            .pid
            .store(ffmpeg.id().unwrap_or(0), Ordering::SeqCst);
        let (Some(stdin), Some(stdout)) = (ffmpeg.stdin.take(), ffmpeg.stdout.take()) else {
            // Both are piped by `Ffmpeg::spawn`; unreachable, but never a panic.
            return Err(TranscodeError::Spawn {
                program: self.options.ffmpeg.display().to_string(),
                message: "no pipes".into(),
            });
        };
        let in_flight = InFlight::default();
        let sink = self.sink.take().unwrap_or_else(|| Box::new(|_| {}));
        let reader = tokio::spawn(read(
            stdout,
            Arc::clone(&in_flight),
            sink,
            Arc::clone(&self.counters),
        ));
        tracing::info!(stream = %self.options.label, input = input.name(), "transcoder: ffmpeg started");
        self.run = Some(Run {
            ffmpeg,
            stdin,
            reader,
            in_flight,
            jpegs_at_start: self.counters.jpegs.load(Ordering::Relaxed),
            _running: running,
        });
        Ok(())
    }

    /// The current run failed: reap it, report why, wait for a keyframe after a backoff.
    async fn end_run(&mut self, error: Option<TranscodeError>) {
        let Some(run) = self.run.take() else { return };
        self.jpeg_run = None;
        let produced = self.counters.jpegs.load(Ordering::Relaxed) > run.jpegs_at_start;
        let (status, message, sink) = finish(run, &self.counters).await;
        if sink.is_some() {
            self.sink = sink;
        }
        if produced {
            self.failures = 0;
        }
        self.backoff();
        self.need_keyframe = true;
        self.fail(error.unwrap_or(TranscodeError::Exited {
            status: status.map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
            message,
        }));
    }

    fn backoff(&mut self) {
        let delay = FIRST_BACKOFF
            .saturating_mul(1 << self.failures.min(10))
            .min(MAX_BACKOFF);
        self.failures = self.failures.saturating_add(1);
        self.not_before = Some(Instant::now() + delay);
    }
}

/// Kills a run's ffmpeg, reaps it, and takes the callback back from its reader.
async fn finish(
    run: Run,
    counters: &Counters,
) -> (
    Option<std::process::ExitStatus>,
    Option<String>,
    Option<Sink>,
) {
    let Run {
        ffmpeg,
        stdin,
        reader,
        _running,
        ..
    } = run;
    drop(stdin);
    let (status, message) = ffmpeg.kill().await;
    // stdout is at EOF once the child is dead: the reader ends by itself.
    let sink = reader.await.ok();
    counters.pid.store(0, Ordering::SeqCst);
    drop(_running);
    (status, message, sink)
}

/// The multipart boundary of JPEG input.
const MPJPEG_BOUNDARY: &str = "camgateframe";

/// What one ffmpeg run decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// H.264 or H.265, Annex B.
    Video(Codec),
    /// JPEGs in `mpjpeg` parts, decoded at 1/2^`lowres` of their size.
    Jpeg {
        /// The decoder's `-lowres` (0..=3).
        lowres: u8,
    },
}

impl Input {
    fn name(self) -> &'static str {
        match self {
            Input::Video(codec) => codec.as_str(),
            Input::Jpeg { .. } => "jpeg",
        }
    }
}

/// The largest `-lowres` (reduced-IDCT decode at 1/2, 1/4, 1/8) that still leaves at least
/// the output's width: a picture `width` wide scaled to `size`. 0 when either is unknown.
pub fn lowres_for(width: u32, size: Option<(u32, u32)>) -> u8 {
    let Some((target, _)) = size.filter(|(w, _)| *w > 0) else {
        return 0;
    };
    (1..=3u8)
        .rev()
        .find(|shift| width >> shift >= target)
        .unwrap_or(0)
}

/// The command line (see the module docs).
pub fn ffmpeg_args(codec: Codec, quality: u8, size: Option<(u32, u32)>) -> Vec<OsString> {
    input_args(Input::Video(codec), quality, size)
}

/// The command line for `input` (see the module docs).
pub fn input_args(input: Input, quality: u8, size: Option<(u32, u32)>) -> Vec<OsString> {
    let lowres = match input {
        Input::Jpeg { lowres } if lowres > 0 => Some(lowres.to_string()),
        _ => None,
    };
    let mut decoder: Vec<&str> = Vec::new();
    if let Some(lowres) = &lowres {
        decoder.extend(["-lowres", lowres.as_str()]);
    }
    decoder.extend(match input {
        Input::Video(Codec::H265) => ["-f", "hevc"],
        Input::Video(_) => ["-f", "h264"],
        Input::Jpeg { .. } => ["-f", "mpjpeg"],
    });
    let quality = quality.clamp(2, 31).to_string();
    let scale = size.map(|(w, h)| {
        let h = if h == 0 {
            "-2".to_owned()
        } else {
            h.to_string()
        };
        format!("scale={w}:{h}:flags=area")
    });
    let scale: &[&str] = match &scale {
        Some(filter) => &["-vf", filter],
        None => &[],
    };
    let head = [
        "-hide_banner",
        "-loglevel",
        "level+error",
        "-nostats",
        "-flags",
        "low_delay",
        "-probesize",
        "32",
        "-analyzeduration",
        "0",
        "-threads",
        "1",
    ];
    let tail = [
        "-i",
        "pipe:0",
        "-an",
        "-fps_mode",
        "passthrough",
        "-threads",
        "1",
    ];
    let output = [
        "-c:v",
        "mjpeg",
        "-q:v",
        &quality,
        "-f",
        "image2pipe",
        "-flush_packets",
        "1",
        "pipe:1",
    ];
    head.iter()
        .chain(&decoder)
        .chain(&tail)
        .chain(scale)
        .chain(&output)
        .map(OsString::from)
        .collect()
}

/// Reads ffmpeg's stdout to EOF, handing each JPEG to `sink` with the oldest capture time
/// in flight; returns the sink for the next run.
async fn read(
    mut stdout: ChildStdout,
    in_flight: InFlight,
    mut sink: Sink,
    counters: Arc<Counters>,
) -> Sink {
    let mut splitter = JpegSplitter::new(DEFAULT_MAX_FRAME);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match stdout.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        splitter.push(&chunk[..n], |jpeg| {
            let stamp = in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            counters.jpegs.fetch_add(1, Ordering::Relaxed);
            sink(TranscodedJpeg {
                jpeg: Bytes::copy_from_slice(jpeg.jpeg),
                width: jpeg.width,
                height: jpeg.height,
                captured_at_us: stamp.map_or_else(
                    || crate::hub::unix_micros(std::time::SystemTime::now()),
                    |s| s.captured_at_us,
                ),
                source_seq: stamp.map_or(0, |s| s.seq),
            });
        });
    }
    sink
}

#[cfg(test)]
mod input_tests {
    use super::*;

    #[test]
    fn jpegs_are_decoded_at_the_smallest_reduced_size_that_still_covers_the_output() {
        assert_eq!(lowres_for(1280, Some((640, 0))), 1);
        assert_eq!(lowres_for(1280, Some((641, 0))), 0);
        assert_eq!(lowres_for(1280, Some((320, 180))), 2);
        assert_eq!(lowres_for(1280, Some((160, 0))), 3);
        assert_eq!(lowres_for(1920, Some((96, 54))), 3, "at most an eighth");
        assert_eq!(lowres_for(0, Some((320, 0))), 0, "unknown width: full size");
        assert_eq!(lowres_for(1280, None), 0);
        let args = |input| {
            input_args(input, 5, Some((320, 0)))
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(args(Input::Jpeg { lowres: 2 }).contains("-lowres 2 -f mpjpeg -i pipe:0"));
        assert!(args(Input::Jpeg { lowres: 0 }).contains("-threads 1 -f mpjpeg -i pipe:0"));
        assert!(args(Input::Video(Codec::H265)).contains("-f hevc -i pipe:0"));
        assert!(args(Input::Video(Codec::H264)).contains("-vf scale=320:-2:flags=area"));
    }
}
