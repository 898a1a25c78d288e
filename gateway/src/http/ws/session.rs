//! One viewer's WebSocket session: a single task that owns the TCP socket, waits for the
//! hub's frames, status changes, the viewer's control frames and its own timers, and writes
//! through an [`Outbox`] without ever blocking on one viewer's socket.
//!
//! While the socket keeps up and nothing else is queued, the session opens its [`Lane`]:
//! the hub's fan-out task then writes each frame itself and the task sleeps until the viewer
//! speaks, a status changes, a timer fires or the lane hands a frame back (see `lane.rs`
//! for who may write the socket when). Everything below holds on both paths.
//!
//! Slow-viewer policy (explicit, per viewer):
//! - Latest frame wins: at most one frame is ever queued. The next frame is taken from the
//!   hub only once the socket has taken everything before it, so frames a slow viewer
//!   cannot take are skipped (counted, and reported with `dropped`), never queued.
//! - The socket's unsent queue is kept tiny (`TCP_NOTSENT_LOWAT`, set at accept), so the
//!   backlog cannot hide in the kernel either: a slow viewer sees a recent picture.
//! - A message the socket does not take within `write_timeout`, or no sign of life from
//!   the viewer for `pong_timeout`, ends the session with 4008.
//! - While a write waits, the session still sees shutdown, stream removal and the
//!   viewer's own close; it stops reading only when its small queue is full.
//! - One viewer's slowness never touches another: each session reads the hub's latest
//!   frame on its own.
//!
//! Credit (opt-in flow control, for consumers slower than the stream whose backlog would
//! otherwise sit in their own receive buffer or page, out of the gateway's reach):
//! - A viewer that sends `{"type":"credit","frames":N}` adds N frames of credit (at most
//!   [`MAX_CREDIT`] held). From its first credit message on, a frame is sent only while
//!   credit is left and each frame sent spends one, on either path (the credit is kept
//!   under the lane's lock). A viewer that never sends credit is served as before.
//! - A viewer that asks in the URL (`?credit=N`) is on credit from the start: the frame
//!   that greets it spends one too, and with none it is left for the first grant. (A
//!   grant sent on open can only arrive after frames may have gone out freely.)
//! - Always the latest frame: frames published while the viewer has no credit are not
//!   kept; credit that arrives after some were withheld gets the hub's current frame at
//!   once (a viewer that already has it waits for the next). `max_fps` still applies.
//! - Withheld frames are the viewer's choice, not slowness: they are not counted as
//!   dropped (metrics, `dropped` events); sequence numbers still show the gap.
//! - Video viewers (passthrough) are on credit the same way, every frame spending one, with
//!   what a decoder needs: a GOP from its keyframe (joining, or after falling too far
//!   behind) goes whole to a viewer with any credit, which may take the credit below zero;
//!   grants pay that back before more frames go (`hub::Gop::catch_up_with_credit`). A video
//!   viewer out of credit for over a second resumes at a keyframe, and the frames it passed
//!   over while it withheld credit are not counted as dropped.
//! - Only frames need credit: `hello`, `state`, `health`, `dropped`, pings, pongs and close
//!   frames are sent regardless (a video `config` goes with the first frame that needs it).
//!   A credit message with a bad `frames` ends the session with 1008; other text (unknown
//!   types, not JSON) is ignored.
//!
//! Picture health: `health` follows `hello` at once (the hub's current verdict, `unknown`
//! before frames; not to a viewer closed with 4006 right after its hello) and again on
//! each change of [`Viewer::health`]; [`Session::health`] is the one place that writes it.
//!
//! Freshness reports (`{"type":"shown",...}`, see `control.rs`): the session only gates and
//! hands them to the stream's telemetry, which counts them. At most one report per
//! [`SHOWN_REPORT_INTERVAL`] per socket is accepted (viewers send one every ~5 s; one
//! viewer cannot dominate the histogram); extra ones and reports outside the protocol's
//! bounds are counted as ignored and never end the session.

use std::future::poll_fn;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::codec::{Decoder, Incoming, Opcode, ProtocolError, close_payload};
use super::control::{self, Control, ControlError, MAX_CREDIT, Shown};
use super::lane::Lane;
use super::outbox::{FrameReceipt, Outbox};
use super::sealed;
use super::video::{self, Format, Requested};
use super::{
    CLOSE_FORMAT_UNAVAILABLE, CLOSE_GOING_AWAY, CLOSE_STREAM_REMOVED, CLOSE_TOO_SLOW,
    CLOSE_UNAUTHORIZED, WsSettings,
};
use crate::app::AppState;
use crate::http::auth::Credential;
use crate::http::pacing::{FramePacer, Next};
use crate::hub::{
    Closing, Cursor, Frame, HealthStatus, Hub, JpegDemand, OutageCause, StreamState, StreamStatus,
    VideoConfig, Viewer,
};
use crate::telemetry::{ShownReport, Transport};

/// Bytes reserved for each read of the viewer's control frames.
const READ_CHUNK: usize = 4096;
/// Control messages (state, pong, ping, dropped) that may wait behind a frame. Beyond it the
/// session stops reading the viewer and taking status events until the socket catches up.
const MAX_QUEUED: usize = 8;
/// How long a closing session waits for its close frame to leave and the viewer to answer.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// A viewer's `shown` reports are accepted at most this often (it sends one every ~5 s).
pub const SHOWN_REPORT_INTERVAL: Duration = Duration::from_secs(2);

/// The JSON text messages of the protocol.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Event<'a> {
    Hello {
        stream: &'a str,
        name: &'a str,
        fps: Option<f64>,
        width: Option<u32>,
        height: Option<u32>,
        state: StreamState,
        message: &'a str,
        /// Why the stream is down, only while `retrying` or `failed` (`hub/outage.rs`).
        cause: Option<OutageCause>,
        /// The stream's native codec, if known.
        codec: Option<&'static str>,
        /// What this socket carries, if decided.
        format: Option<&'static str>,
        /// Which of the stream's picture streams this socket carries: `main` or `sub`.
        variant: &'static str,
        /// The gateway's clock when the hello was written (µs since the Unix epoch): a
        /// viewer's estimate of the offset between its clock and the gateway's (for the
        /// ages in its `shown` reports).
        server_time_us: u64,
    },
    /// The picture's health (`hub::PictureHealth`) and since when (RFC 3339).
    Health {
        health: &'static str,
        since: String,
    },
    State {
        state: StreamState,
        message: &'a str,
        /// Why the stream is down, only while `retrying` or `failed` (`hub/outage.rs`).
        cause: Option<OutageCause>,
    },
    Dropped {
        frames: u64,
    },
}

/// Why a session ended: decides the close frame.
enum End {
    /// The connection is gone (EOF or a socket error): nothing more can be sent.
    Gone,
    /// The viewer started the closing handshake (with this code, if it gave one): answer it.
    ClientClosed(Option<u16>),
    /// The viewer broke the protocol.
    Protocol(ProtocolError),
    /// The viewer sent a message it may not send (a bad credit grant).
    Control(ControlError),
    /// The gateway ends the session with this code.
    Close(u16, &'static str),
}

/// How a session ends when its hub dismisses the viewers.
fn closed(reason: Closing) -> End {
    match reason {
        Closing::Removed => End::Close(CLOSE_STREAM_REMOVED, "stream removed"),
        Closing::ShuttingDown => End::Close(CLOSE_GOING_AWAY, "gateway shutting down"),
    }
}

/// What a session needs to re-check its viewer's access.
pub struct Access {
    /// The current configuration (tokens).
    pub state: Arc<AppState>,
    /// What the viewer presented when it connected.
    pub credential: Credential,
}

impl Access {
    /// Whether the viewer may still watch `stream` (tokens can be revoked by a reload).
    fn still_allowed(&self, stream: &str) -> bool {
        self.state
            .principal(&self.credential)
            .is_some_and(|p| p.can_view(stream))
    }
}

/// One viewer's connection state.
pub struct Session {
    socket: Arc<TcpStream>,
    decoder: Decoder,
    outbox: Outbox,
    settings: WsSettings,
    /// The hub's latest frame, read when the lane is closed.
    frames: watch::Receiver<Option<Frame>>,
    pacer: FramePacer,
    /// The fan-out's way to this socket; holds the viewer's telemetry.
    lane: Arc<Lane>,
    /// Whether the lane is open (only the session opens and closes it; offers may close it
    /// too, and then wake the session).
    lane_open: bool,
    /// Whether the viewer has sent a credit message (only then is the lane's credit read:
    /// viewers that never do pay nothing for it).
    uses_credit: bool,
    /// What the viewer asked for (`format=`).
    requested: Requested,
    /// What the socket carries (`None` until the stream's codec is known).
    format: Option<Format>,
    /// Where a video viewer stands in the hub's GOP.
    video: Cursor,
    /// The hub's newest video frame (its sequence number): changes wake a video viewer.
    video_seq: watch::Receiver<u64>,
    /// The newest video frame when this viewer, out of credit, was granted more: frames up
    /// to it that it skips were withheld at its request, not dropped.
    video_withheld_through: u64,
    /// The video configuration the viewer was last sent.
    sent_config: Option<Arc<VideoConfig>>,
    /// Held while the socket carries JPEGs: on a video stream, the hub transcodes for it.
    _jpeg_demand: Option<JpegDemand>,
    dropped_unreported: u64,
    last_dropped_report: Instant,
    last_heard: Instant,
    /// When the viewer's last accepted `shown` report came.
    last_shown_report: Option<Instant>,
}

impl Session {
    /// A session for `viewer` on an upgraded `socket`; `early` holds bytes the viewer sent
    /// right after its handshake request; `max_fps` caps its frame rate; `credit` (the
    /// upgrade's `?credit=N`) puts it on credit before its first frame; `requested` is its
    /// `format=`.
    pub fn new(
        socket: TcpStream,
        early: &[u8],
        settings: WsSettings,
        viewer: &Viewer,
        max_fps: Option<f64>,
        credit: Option<u32>,
        requested: Requested,
    ) -> Session {
        let socket = Arc::new(socket);
        let telemetry = viewer.hub().telemetry().viewer(Transport::WebSocket);
        let lane = Arc::new(Lane::new(Arc::clone(&socket), telemetry));
        if let Some(frames) = credit {
            lane.grant(frames);
        }
        Session {
            lane,
            lane_open: false,
            uses_credit: credit.is_some(),
            requested,
            format: None,
            video: Cursor::new(),
            video_seq: viewer.video.clone(),
            video_withheld_through: 0,
            sent_config: None,
            _jpeg_demand: None,
            socket,
            decoder: Decoder::new(settings.max_incoming_message, early, READ_CHUNK),
            outbox: Outbox::new(),
            frames: viewer.frames.clone(),
            pacer: FramePacer::new(max_fps),
            settings,
            dropped_unreported: 0,
            last_dropped_report: Instant::now(),
            last_heard: Instant::now(),
            last_shown_report: None,
        }
    }

    /// Runs the viewer until it leaves, is closed, or the gateway shuts down.
    pub async fn run(mut self, mut viewer: Viewer, access: Access) {
        let hub = Arc::clone(viewer.hub());
        let end = self.serve(&hub, &mut viewer, &access).await;
        self.close(&hub, end).await;
    }

    async fn serve(&mut self, hub: &Arc<Hub>, viewer: &mut Viewer, access: &Access) -> End {
        let mut closing = viewer.closing.clone();
        // Shutdown and removal both arrive here; one that came before we subscribed too.
        if let Some(reason) = *closing.borrow_and_update() {
            return closed(reason);
        }
        let unavailable = self.greet(hub, viewer).err();
        if let Some(unavailable) = unavailable {
            return End::Close(CLOSE_FORMAT_UNAVAILABLE, unavailable.reason());
        }
        let lane = Arc::clone(&self.lane);
        // Offers reach the lane only while it is open; detached when the session ends.
        let _direct = hub.attach_direct(lane.clone());
        let mut ping = tokio::time::interval(self.settings.ping_interval);
        ping.reset();
        // One timer for the whole session, re-armed only when a write has to wait.
        let mut write_deadline = pin!(tokio::time::sleep(self.settings.write_timeout));
        let mut armed_for = None;

        loop {
            // Most messages leave here, in one system call, without waiting.
            if self.flush().is_err() {
                return End::Gone;
            }
            // Before `waiting` is read: a lane that closes again at once may hand a frame back.
            self.open_lane_if_idle();
            let waiting = self.outbox.waiting_since();
            if let Some(since) = waiting {
                let deadline = since + self.settings.write_timeout;
                if armed_for != Some(deadline) {
                    write_deadline.as_mut().reset(deadline);
                    armed_for = Some(deadline);
                }
            }
            let room = self.outbox.len() < MAX_QUEUED;
            // The lane, once open, spends credit itself; while it is closed only we do.
            let take_frame = waiting.is_none()
                && !self.lane_open
                && self.has_credit()
                && self.format == Some(Format::Mjpeg);
            let take_video = waiting.is_none()
                && self.has_credit()
                && matches!(self.format, Some(Format::Video(_)));
            let undecided = self.format.is_none();
            tokio::select! {
                biased;
                _ = closing.changed() => {
                    if let Some(reason) = *closing.borrow_and_update() {
                        return closed(reason);
                    }
                }
                ready = poll_fn(|cx| self.socket.poll_write_ready(cx)), if waiting.is_some() => {
                    if ready.is_err() {
                        return End::Gone;
                    }
                }
                () = &mut write_deadline, if waiting.is_some() => {
                    return End::Close(CLOSE_TOO_SLOW, "viewer too slow: a frame could not be sent in time");
                }
                ready = poll_fn(|cx| self.socket.poll_read_ready(cx)), if room => {
                    if ready.is_err() {
                        return End::Gone;
                    }
                    if let Err(end) = self.read() {
                        return end;
                    }
                }
                event = viewer.status_events.recv(), if room => {
                    let status = match event {
                        Ok(status) => status,
                        // Fell behind: the current status is what matters.
                        Err(broadcast::error::RecvError::Lagged(_)) => viewer.status.borrow().clone(),
                        Err(broadcast::error::RecvError::Closed) => {
                            return End::Close(CLOSE_STREAM_REMOVED, "stream removed");
                        }
                    };
                    self.event(&Event::State { state: status.state, message: &status.message, cause: status.cause() });
                    // A new source of another codec (the stream was reconfigured): a video
                    // socket cannot carry it; the viewer reconnects and negotiates again.
                    if let Some(Format::Video(codec)) = self.format
                        && hub.native_codec().is_some_and(|native| native != codec)
                    {
                        return End::Close(CLOSE_FORMAT_UNAVAILABLE, "format unavailable: the stream's codec changed");
                    }
                }
                changed = viewer.health.changed(), if room => {
                    if changed.is_err() {
                        return End::Close(CLOSE_STREAM_REMOVED, "stream removed");
                    }
                    let status = *viewer.health.borrow_and_update();
                    self.health(status);
                }
                // Latest frame wins: the next frame is taken only when the socket took the last.
                next = self.pacer.next(&mut self.frames), if take_frame => {
                    let Some(next) = next else {
                        return End::Close(CLOSE_STREAM_REMOVED, "stream removed");
                    };
                    self.frame(next);
                }
                // Video: the frames after the viewer's last, once the socket took those. Or,
                // undecided, the stream's first frame says its codec (`auto`, `h264`).
                _ = self.video_seq.changed(), if take_video || undecided => {
                    if undecided {
                        if let Err(end) = self.decide(hub) {
                            return end;
                        }
                    } else {
                        self.send_video(hub);
                    }
                }
                _ = viewer.frames.changed(), if undecided => {
                    if let Err(end) = self.decide(hub) {
                        return end;
                    }
                }
                // The fan-out could not finish a frame, the viewer missed one or ran out of
                // credit.
                () = lane.closed_by_offer(), if self.lane_open => self.close_lane(),
                _ = ping.tick() => {
                    if !access.still_allowed(hub.id()) {
                        return End::Close(CLOSE_UNAUTHORIZED, "access revoked");
                    }
                    if self.last_heard.elapsed() >= self.settings.pong_timeout {
                        return End::Close(CLOSE_TOO_SLOW, "viewer stopped answering pings");
                    }
                    self.push_control(Opcode::Ping, Bytes::new());
                }
            }
        }
    }

    /// Opens the lane when the socket has taken everything and the viewer is up to date
    /// with the hub, so the fan-out can write the next frame itself. Viewers with a
    /// `max_fps`, or with skipped frames not yet reported, stay on the task's path; so do
    /// viewers out of credit (nothing may be written for them).
    fn open_lane_if_idle(&mut self) {
        if self.lane_open
            || !self.outbox.is_empty()
            || self.dropped_unreported > 0
            || self.pacer.is_paced()
            || self.format != Some(Format::Mjpeg)
            || self.newer_frame()
            || !self.has_credit()
        {
            return;
        }
        self.lane.open(self.pacer.last_seq());
        self.lane_open = true;
        // A frame published just before the lane opened may have passed it by.
        if self.newer_frame() {
            self.close_lane();
        }
    }

    /// Whether the hub holds a frame this viewer has not had, on either path. The watch's
    /// own "changed" flag would also count a frame the lane already sent (the session's
    /// receiver never saw it), and keep the lane closed until the next frame: every time
    /// a lane closed (a cut frame, credit running out), one frame more went the slow way.
    fn newer_frame(&self) -> bool {
        let last = self.pacer.last_seq();
        self.frames
            .borrow()
            .as_ref()
            .is_some_and(|frame| last.is_none_or(|last| frame.seq > last))
    }

    /// Takes the socket back from the fan-out: the rest of a frame it could not finish
    /// goes out first. A newer frame the lane did not send is the frame branch's to take
    /// once the queue is empty (the watch still says it is new), so messages queued now go
    /// before it.
    fn close_lane(&mut self) {
        if !self.lane_open {
            return;
        }
        self.lane_open = false;
        let closed = self.lane.close();
        self.pacer.sent_elsewhere(closed.last_seq);
        if let Some(hand_over) = closed.hand_over {
            let receipt = hand_over.receipt();
            let frame = hand_over.frame;
            self.outbox
                .push_started_frame(frame.data, hand_over.file, receipt, hand_over.written);
        }
    }

    /// Queues a control or text message (taking the socket back from the lane first).
    fn push_control(&mut self, opcode: Opcode, payload: Bytes) {
        self.close_lane();
        self.outbox.push(opcode, payload);
    }

    /// Queues `hello`, then the hub's latest frame (a new viewer sees a picture at once),
    /// unless the viewer came on credit with none: the frame is then left for its first
    /// grant.
    fn greet(&mut self, hub: &Arc<Hub>, viewer: &mut Viewer) -> Result<(), video::Unavailable> {
        let native = hub.native_codec();
        let resolved = self.requested.resolve(native);
        self.set_format(hub, resolved.unwrap_or(None));
        let info = hub.info();
        // The hello carries the current status: transitions queued before it are old news.
        while viewer.status_events.try_recv().is_ok() {}
        let status = viewer.status.borrow_and_update().clone();
        let cause = status.cause();
        let StreamStatus { state, message, .. } = status;
        let (width, height) = self
            .frames
            .borrow()
            .as_ref()
            .filter(|f| f.width > 0 && f.height > 0)
            .map(|f| (Some(f.width), Some(f.height)))
            .unwrap_or((None, None));
        let current = if self.format != Some(Format::Mjpeg) {
            // Not a JPEG viewer (yet): the picture is not for it.
            None
        } else if self.has_credit() {
            self.pacer.current(&mut self.frames)
        } else {
            // Still new to this viewer: the first grant takes it at once.
            self.frames.mark_changed();
            None
        };
        self.event(&Event::Hello {
            stream: hub.id(),
            name: &info.name,
            fps: info.fps,
            width,
            height,
            state,
            message: &message,
            cause,
            codec: native.map(|codec| codec.as_str()),
            format: self.format.map(Format::as_str),
            variant: hub.variant().as_str(),
            server_time_us: crate::hub::unix_micros(std::time::SystemTime::now()),
        });
        resolved?;
        let health = *viewer.health.borrow_and_update();
        self.health(health);
        if let Some(next) = current {
            self.frame(next);
        }
        if matches!(self.format, Some(Format::Video(_))) {
            self.send_video(hub);
        }
        Ok(())
    }

    /// Records what the socket carries; a JPEG socket registers its demand for JPEGs.
    fn set_format(&mut self, hub: &Arc<Hub>, format: Option<Format>) {
        self.format = format;
        if format == Some(Format::Mjpeg) && self._jpeg_demand.is_none() {
            self._jpeg_demand = Some(hub.want_jpeg());
        }
    }

    /// Decides what an undecided socket carries once the stream's codec is known (its
    /// first frame): a JPEG viewer then takes the current picture the usual way, a video
    /// viewer its GOP.
    fn decide(&mut self, hub: &Arc<Hub>) -> Result<(), End> {
        match self.requested.resolve(hub.native_codec()) {
            Ok(None) => Ok(()),
            Ok(Some(format)) => {
                self.set_format(hub, Some(format));
                match format {
                    Format::Mjpeg => self.frames.mark_changed(),
                    Format::Video(_) => self.send_video(hub),
                }
                Ok(())
            }
            Err(unavailable) => Err(End::Close(CLOSE_FORMAT_UNAVAILABLE, unavailable.reason())),
        }
    }

    /// Queues the video frames the viewer is due (its GOP on joining, then each new frame;
    /// after a skip, the next keyframe's), each after the configuration it needs; a viewer
    /// on credit only what its credit pays for.
    fn send_video(&mut self, hub: &Arc<Hub>) {
        let before = self.video.last;
        let catchup = match self.lane.credit() {
            None => hub.video_catch_up(&mut self.video),
            Some(credit) => {
                let credit = u32::try_from(credit.max(0)).unwrap_or(u32::MAX);
                let catchup = hub.video_catch_up_with_credit(&mut self.video, credit);
                self.lane.spend_credits(catchup.frames.len());
                catchup
            }
        };
        // Frames passed over that it had withheld credit for were its choice.
        let withheld = before.map_or(0, |last| self.video_withheld_through.saturating_sub(last));
        let dropped = catchup.skipped.saturating_sub(withheld);
        if dropped > 0 {
            self.skipped(dropped);
        }
        for frame in catchup.frames {
            if let Some(config) = &frame.config
                && !video::same_config(self.sent_config.as_ref(), config)
            {
                self.push_control(Opcode::Text, video::config_message(config));
                self.sent_config = Some(Arc::clone(config));
            }
            let receipt = FrameReceipt {
                bytes: frame.data.len(),
                captured_at_us: frame.captured_at_us,
            };
            self.outbox
                .push_frame(video::frame_message(&frame), None, receipt);
        }
    }

    /// Queues a `health` message: the one place it is written.
    fn health(&mut self, status: HealthStatus) {
        self.event(&Event::Health {
            health: status.health.as_str(),
            since: humantime::format_rfc3339_millis(status.since).to_string(),
        });
    }

    /// Hands a valid `shown` report to the stream's telemetry, unless the viewer's previous
    /// one came less than [`SHOWN_REPORT_INTERVAL`] ago (then it is counted as ignored).
    fn shown(&mut self, report: &Shown) {
        let now = Instant::now();
        if self
            .last_shown_report
            .is_some_and(|last| now.duration_since(last) < SHOWN_REPORT_INTERVAL)
        {
            self.lane.telemetry.shown_report(ShownReport::RateLimited);
            return;
        }
        self.last_shown_report = Some(now);
        self.lane.telemetry.shown_report(ShownReport::Accepted {
            frames: report.frames,
            ages_ms: &report.ages_ms,
        });
    }

    fn event(&mut self, event: &Event<'_>) {
        let json = serde_json::to_vec(event).unwrap_or_default();
        self.push_control(Opcode::Text, Bytes::from(json));
    }

    /// Queues a frame, first reporting frames this viewer skipped (at most once per
    /// `dropped_report_interval`).
    fn frame(&mut self, next: Next) {
        debug_assert!(
            !self.lane_open,
            "the session queued a frame while the lane was open"
        );
        if self.uses_credit {
            let spent = self.lane.spend_credit();
            debug_assert!(spent, "the session took a frame without credit");
        }
        if next.dropped > 0 {
            self.skipped(next.dropped);
        }
        let receipt = FrameReceipt {
            bytes: next.frame.data.len(),
            captured_at_us: next.frame.captured_at_us,
        };
        let file = sealed::message_file(&next.frame).cloned();
        self.outbox.push_frame(next.frame.data, file, receipt);
    }

    /// Counts frames the viewer skipped for being slow, and reports them (`dropped`) at most
    /// once per `dropped_report_interval`, before the frame that follows the gap.
    fn skipped(&mut self, frames: u64) {
        self.lane.telemetry.frames_dropped(frames);
        self.dropped_unreported += frames;
        if self.dropped_unreported > 0
            && self.last_dropped_report.elapsed() >= self.settings.dropped_report_interval
        {
            let frames = std::mem::take(&mut self.dropped_unreported);
            self.last_dropped_report = Instant::now();
            self.event(&Event::Dropped { frames });
        }
    }

    /// Writes what the socket takes now.
    fn flush(&mut self) -> io::Result<()> {
        let telemetry = &self.lane.telemetry;
        self.outbox.write_to(&self.socket, |receipt| {
            telemetry.frame_sent(receipt.bytes, receipt.captured_at_us);
        })
    }

    /// Reads what the viewer sent (one read per readiness, so a chatty viewer takes turns
    /// with the frames) and acts on each complete frame.
    fn read(&mut self) -> Result<(), End> {
        match self.read_some() {
            Ok(0) => return Err(End::Gone),
            Ok(_) => self.last_heard = Instant::now(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(_) => return Err(End::Gone),
        }
        loop {
            match self.decoder.next() {
                Ok(None) => return Ok(()),
                Ok(Some(Incoming::Ping(payload))) => {
                    self.push_control(Opcode::Pong, payload);
                }
                Ok(Some(Incoming::Text(text))) => match control::parse(&text) {
                    Ok(Some(Control::Credit(frames))) => self.credit(frames),
                    Ok(Some(Control::Shown(report))) => self.shown(&report),
                    // Not for this gateway (a newer client): ignored.
                    Ok(None) => {}
                    // A bad report only loses a measurement: counted, never a disconnect.
                    Err(ControlError::Report(why)) => {
                        self.lane
                            .telemetry
                            .shown_report(ShownReport::Invalid { why: &why });
                    }
                    Err(error) => return Err(End::Control(error)),
                },
                // Pongs and other data only prove the viewer is alive.
                Ok(Some(Incoming::Pong | Incoming::Data)) => {}
                Ok(Some(Incoming::Close(code))) => return Err(End::ClientClosed(code)),
                Err(error) => return Err(End::Protocol(error)),
            }
        }
    }

    /// Whether a frame may be sent now (always, for a viewer that never sent credit).
    fn has_credit(&self) -> bool {
        !self.uses_credit || self.lane.has_credit()
    }

    /// Adds the viewer's credit. Frames published while it had none were withheld at its
    /// request: they are not counted as dropped when the next frame is taken.
    fn credit(&mut self, frames: u32) {
        debug_assert!(frames <= MAX_CREDIT);
        self.uses_credit = true;
        if self.lane.grant(frames) {
            let latest = self.frames.borrow().as_ref().map(|frame| frame.seq);
            self.pacer.withheld_through(latest);
            self.video_withheld_through = *self.video_seq.borrow();
        }
        // Video frames that waited for credit are due now (the watch has moved past them).
        if matches!(self.format, Some(Format::Video(_))) {
            self.video_seq.mark_changed();
        }
    }

    /// Moves what the socket holds now into the decoder (`WouldBlock` if nothing).
    fn read_some(&mut self) -> io::Result<usize> {
        self.decoder.reserve(READ_CHUNK);
        self.socket.try_read_buf(self.decoder.buffer())
    }

    /// Ends the session: sends the close frame `end` calls for, then lingers briefly so it
    /// reaches the viewer (a viewer too slow for frames may not take it either).
    async fn close(mut self, hub: &Hub, end: End) {
        let payload = match &end {
            End::Gone => return,
            // RFC 6455 §5.5.1: the answer echoes the viewer's code; a close without a code
            // is answered without one (1005 "no code" may not be sent, §7.4.1).
            End::ClientClosed(code) => {
                tracing::debug!(stream = %hub.id(), ?code, "viewer closed");
                code.map_or_else(Bytes::new, |code| close_payload(code, ""))
            }
            End::Protocol(error) => {
                tracing::debug!(stream = %hub.id(), %error, "viewer broke the WebSocket protocol");
                close_payload(error.close_code(), "protocol error")
            }
            End::Control(error) => {
                tracing::debug!(stream = %hub.id(), %error, "viewer sent a message it may not send");
                close_payload(error.close_code(), &error.to_string())
            }
            End::Close(code, reason) => {
                if *code == CLOSE_TOO_SLOW {
                    self.lane.telemetry.slow_disconnect(reason);
                }
                tracing::debug!(stream = %hub.id(), code, reason, "closing viewer");
                close_payload(*code, reason)
            }
        };
        // A frame the lane started must end before the close frame.
        self.close_lane();
        self.outbox.push(Opcode::Close, payload);
        let _ = tokio::time::timeout(CLOSE_LINGER, self.finish_close(&end)).await;
    }

    async fn finish_close(&mut self, end: &End) -> io::Result<()> {
        while !self.outbox.is_empty() {
            self.flush()?;
            if !self.outbox.is_empty() {
                self.socket.writable().await?;
            }
        }
        socket2::SockRef::from(&*self.socket).shutdown(std::net::Shutdown::Write)?;
        if matches!(end, End::ClientClosed(_) | End::Protocol(_)) {
            return Ok(());
        }
        // Wait for the viewer's close frame (or EOF) so ours is not lost to a reset caused
        // by unread bytes.
        loop {
            self.socket.readable().await?;
            match self.read_some() {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
            loop {
                match self.decoder.next() {
                    Ok(Some(Incoming::Close(_))) | Err(_) => return Ok(()),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                }
            }
        }
    }
}
