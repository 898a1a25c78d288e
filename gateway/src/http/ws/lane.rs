//! A viewer's direct lane: while its socket keeps up, the hub's fan-out task writes each new
//! frame to it (one non-blocking `sendfile` or `writev`) and the viewer's task sleeps.
//!
//! Who may write the socket (the invariant everything here protects):
//! - While the lane is *open*, only an offer, holding the lane's lock, writes. The session
//!   opens the lane only when it has nothing queued, so an offer always starts a message
//!   at a message boundary.
//! - While the lane is *closed*, only the session writes. The session closes it (under the
//!   lock, so after any offer in progress) before it queues anything: a pong, a state or
//!   `dropped` event, a ping, a close frame.
//! - An offer that cannot finish its frame (socket full, or an error) closes the lane,
//!   keeps what it wrote as a hand-over and wakes the session, which sends the rest first.
//!   An offer that would skip a frame (the viewer missed one) does not write: it closes the
//!   lane and wakes the session, which takes the latest frame from the hub and counts what
//!   was skipped — drop accounting and the slow-viewer policy stay in `session.rs`.
//!
//! Credit (opt-in flow control, `{"type":"credit"}`, see `session.rs`) is kept here, under
//! the same lock, so an offer and the session never disagree on it: every frame written,
//! by an offer or by the session, spends one, and an offer that spends the last one closes
//! the lane and wakes the session (which then sends nothing until the viewer grants more).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::codec::{Header, Opcode};
use super::control::MAX_CREDIT;
use super::outbox::{FrameReceipt, Outbox};
use super::sealed;
use crate::http::sealed_file::SealedFile;
use crate::hub::{DirectViewer, Frame};
use crate::telemetry::{Handover, ViewerTelemetry};

/// A frame an offer started but could not finish.
pub struct HandOver {
    /// The frame.
    pub frame: Frame,
    /// Its sealed message file, if it went out from one.
    pub file: Option<Arc<SealedFile>>,
    /// Bytes of the message (header and JPEG) already written.
    pub written: usize,
}

impl HandOver {
    /// What telemetry needs once the rest is written.
    pub fn receipt(&self) -> FrameReceipt {
        FrameReceipt {
            bytes: self.frame.data.len(),
            captured_at_us: self.frame.captured_at_us,
        }
    }
}

#[derive(Default)]
struct LaneState {
    open: bool,
    /// The last frame the viewer got in full (or was handed over); `None` before any.
    last_seq: Option<u64>,
    hand_over: Option<HandOver>,
    /// Frames the viewer may still be sent: `None` until its first credit message (it then
    /// gets every frame, as viewers that never send credit do). Below zero after a video
    /// viewer was sent a whole GOP on less credit (its grants pay that back first).
    credit: Option<i64>,
}

impl LaneState {
    /// Spends one credit for a frame about to be written; false if the viewer has none.
    fn spend(&mut self) -> bool {
        if self.starved() {
            return false;
        }
        if let Some(left) = &mut self.credit {
            *left -= 1;
        }
        true
    }

    /// Whether the viewer is on credit and has none left.
    fn starved(&self) -> bool {
        self.credit.is_some_and(|left| left <= 0)
    }
}

/// One WebSocket viewer's direct lane. Shared by the session and the hub's fan-out.
pub struct Lane {
    socket: Arc<TcpStream>,
    state: Mutex<LaneState>,
    /// Wakes the session when an offer closed the lane.
    closed_by_offer: Notify,
    /// The viewer's metrics (frames sent count wherever they were written).
    pub telemetry: ViewerTelemetry,
}

/// The session's view of the lane when it closed it.
pub struct Closed {
    /// The last frame the viewer got (or is getting through `hand_over`).
    pub last_seq: Option<u64>,
    /// A frame to finish before anything else.
    pub hand_over: Option<HandOver>,
}

impl Lane {
    /// A closed lane to `socket`.
    pub fn new(socket: Arc<TcpStream>, telemetry: ViewerTelemetry) -> Lane {
        Lane {
            socket,
            state: Mutex::default(),
            closed_by_offer: Notify::new(),
            telemetry,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets offers write from now on. The caller has written everything it queued and the
    /// viewer has frame `last_seq` (or none yet).
    pub fn open(&self, last_seq: Option<u64>) {
        let mut state = self.lock();
        debug_assert!(state.hand_over.is_none(), "a hand-over was left unsent");
        state.open = true;
        state.last_seq = last_seq;
    }

    /// Stops offers from writing (waits for one in progress) and says where the viewer is.
    pub fn close(&self) -> Closed {
        let mut state = self.lock();
        state.open = false;
        Closed {
            last_seq: state.last_seq,
            hand_over: state.hand_over.take(),
        }
    }

    /// Adds `frames` of credit (saturating at [`MAX_CREDIT`]); from the first call on, frames
    /// are written only while credit is left. Returns whether the viewer had been out of
    /// credit (frames published since were withheld at its request, not dropped).
    pub fn grant(&self, frames: u32) -> bool {
        let mut state = self.lock();
        let starved = state.starved();
        let credit = state.credit.unwrap_or(0) + i64::from(frames);
        state.credit = Some(credit.min(i64::from(MAX_CREDIT)));
        starved
    }

    /// Whether a frame may be sent now (no credit mode, or credit left).
    pub fn has_credit(&self) -> bool {
        !self.lock().starved()
    }

    /// Spends one credit for a frame the session is about to queue (the lane is closed);
    /// false if the viewer has none.
    pub fn spend_credit(&self) -> bool {
        self.lock().spend()
    }

    /// The credit left (`None`: the viewer is not on credit; below zero: owed). Video
    /// viewers spend it through the session only ([`Lane::spend_credits`]): their lane
    /// never opens.
    pub fn credit(&self) -> Option<i64> {
        self.lock().credit
    }

    /// Spends one credit per frame the session queues, `frames` of them: a whole GOP may
    /// take the credit below zero, and the viewer's next grants pay for it first (so a
    /// client that counts one credit per frame it receives always agrees with the gateway).
    pub fn spend_credits(&self, frames: usize) {
        if let Some(left) = &mut self.lock().credit {
            *left -= i64::try_from(frames).unwrap_or(i64::MAX);
        }
    }

    /// Resolves when an offer closed the lane (possibly spuriously: check with `close`).
    pub async fn closed_by_offer(&self) {
        self.closed_by_offer.notified().await;
    }
}

impl DirectViewer for Lane {
    fn offer(&self, frame: &Frame) {
        let mut state = self.lock();
        if !state.open {
            return;
        }
        match state.last_seq {
            Some(last) if frame.seq <= last => return,
            Some(last) if frame.seq != last + 1 => {
                state.open = false;
                drop(state);
                self.telemetry.direct_handover(Handover::Gap);
                self.closed_by_offer.notify_one();
                return;
            }
            _ => {}
        }
        if !state.spend() {
            // Out of credit while open: a viewer's first grant was `frames: 0` (later ones
            // find the lane closed, see below). Write nothing; the session waits for credit.
            state.open = false;
            drop(state);
            self.closed_by_offer.notify_one();
            return;
        }
        let file = sealed::message_file(frame);
        let len = Header::new(Opcode::Binary, frame.data.len())
            .as_bytes()
            .len()
            + frame.data.len();
        // Any error other than a full socket is the session's to meet on its next write.
        let written =
            Outbox::write_frame(&self.socket, &frame.data, file.map(Arc::as_ref)).unwrap_or(0);
        state.last_seq = Some(frame.seq);
        if written == len {
            self.telemetry
                .direct_frame_sent(frame.data.len(), frame.captured_at_us);
            if !state.starved() {
                return;
            }
            // That was the viewer's last credit: stop offering and let the session wait.
            state.open = false;
            drop(state);
            self.closed_by_offer.notify_one();
            return;
        }
        self.telemetry.direct_handover(Handover::Cut);
        state.open = false;
        state.hand_over = Some(HandOver {
            frame: frame.clone(),
            file: file.cloned(),
            written,
        });
        drop(state);
        self.closed_by_offer.notify_one();
    }

    /// An offer panicked (a bug): the bytes on the socket may be cut anywhere, so the
    /// connection ends. Shutting the socket down makes the session's next write or read
    /// fail, and the session ends as for a lost connection.
    fn abandon(&self) {
        self.lock().open = false;
        let _ = socket2::SockRef::from(&*self.socket).shutdown(std::net::Shutdown::Both);
        self.closed_by_offer.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Frame;
    use bytes::Bytes;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    async fn pair() -> (TcpStream, Arc<TcpStream>) {
        let (client, server) = super::super::loopback_pair().await;
        (client, Arc::new(server))
    }

    fn lane(socket: Arc<TcpStream>) -> Lane {
        let telemetry = crate::telemetry::Metrics::new()
            .stream("test")
            .viewer(crate::telemetry::Transport::WebSocket);
        Lane::new(socket, telemetry)
    }

    fn frame(seq: u64, len: usize) -> Frame {
        Frame::for_test(seq, Bytes::from(vec![seq as u8; len]))
    }

    async fn read_message(client: &mut TcpStream, len: usize) -> Vec<u8> {
        let header = Header::new(Opcode::Binary, len);
        let mut got = vec![0u8; header.as_bytes().len() + len];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..header.as_bytes().len()], header.as_bytes());
        got.split_off(header.as_bytes().len())
    }

    async fn assert_silent(client: &mut TcpStream, why: &str) {
        let mut more = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(100), client.read(&mut more));
        assert!(read.await.is_err(), "{why}");
    }

    #[tokio::test]
    async fn an_open_lane_takes_consecutive_frames_and_a_closed_one_none() {
        let (mut client, server) = pair().await;
        let lane = lane(server);
        lane.offer(&frame(1, 100));
        lane.open(None);
        lane.offer(&frame(5, 100));
        lane.offer(&frame(6, 40_000));
        lane.offer(&frame(6, 40_000));
        assert_eq!(read_message(&mut client, 100).await, vec![5u8; 100]);
        assert_eq!(read_message(&mut client, 40_000).await, vec![6u8; 40_000]);
        let closed = lane.close();
        assert_eq!(closed.last_seq, Some(6));
        assert!(closed.hand_over.is_none());
        lane.offer(&frame(7, 100));
        assert_silent(&mut client, "a closed lane writes nothing").await;
    }

    #[tokio::test]
    async fn an_abandoned_lane_writes_nothing_more_ends_the_connection_and_wakes_the_session() {
        let (mut client, server) = pair().await;
        let lane = lane(server);
        lane.open(Some(0));
        lane.abandon();
        lane.offer(&frame(1, 100));
        tokio::time::timeout(Duration::from_secs(5), lane.closed_by_offer())
            .await
            .expect("the session is woken");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest));
        read.await
            .expect("the connection ends")
            .expect("a clean end of stream");
        assert!(rest.is_empty(), "nothing was written after the abandon");
    }

    #[tokio::test]
    async fn credit_running_out_closes_the_lane_and_wakes_the_session() {
        let (mut client, server) = pair().await;
        let lane = lane(server);
        assert!(!lane.grant(1), "a viewer's first grant ends no starvation");
        lane.open(Some(0));
        lane.offer(&frame(1, 100));
        lane.offer(&frame(2, 100));
        assert_eq!(read_message(&mut client, 100).await, vec![1u8; 100]);
        tokio::time::timeout(Duration::from_secs(5), lane.closed_by_offer())
            .await
            .expect("the session is woken");
        let closed = lane.close();
        assert_eq!(closed.last_seq, Some(1), "frame 2 was not the viewer's");
        assert!(closed.hand_over.is_none());
        assert!(!lane.has_credit());
        assert_silent(&mut client, "no credit, no frame").await;

        // The session's path spends the same credit.
        assert!(lane.grant(2), "frames were withheld");
        assert!(lane.spend_credit() && lane.spend_credit());
        assert!(!lane.spend_credit() && !lane.has_credit());
        // Grants saturate.
        lane.grant(MAX_CREDIT);
        lane.grant(MAX_CREDIT);
        let spent = std::iter::from_fn(|| lane.spend_credit().then_some(())).count();
        assert_eq!(spent, MAX_CREDIT as usize);
    }

    #[tokio::test]
    async fn a_skipped_frame_closes_the_lane_without_writing_and_wakes_the_session() {
        let (mut client, server) = pair().await;
        let lane = lane(server);
        lane.open(Some(3));
        lane.offer(&frame(5, 100));
        tokio::time::timeout(Duration::from_secs(5), lane.closed_by_offer())
            .await
            .expect("the session is woken");
        let closed = lane.close();
        assert_eq!(
            closed.last_seq,
            Some(3),
            "the session counts the gap itself"
        );
        assert!(closed.hand_over.is_none());
        assert_silent(&mut client, "nothing was written").await;
    }

    #[tokio::test]
    async fn a_full_socket_hands_the_rest_of_the_frame_to_the_session() {
        let (mut client, server) = pair().await;
        let lane = lane(Arc::clone(&server));
        lane.open(Some(0));
        // The client reads nothing: frames fill both socket buffers until one is cut.
        let mut seq = 0;
        let closed = loop {
            seq += 1;
            lane.offer(&frame(seq, 200_000));
            let state = lane.lock();
            if !state.open {
                drop(state);
                break lane.close();
            }
            assert!(seq < 10_000, "the socket never filled");
        };
        let hand_over = closed.hand_over.expect("the cut frame is handed over");
        assert_eq!(hand_over.frame.seq, seq);
        assert_eq!(closed.last_seq, Some(seq));
        assert!(hand_over.written < 200_000 + 10);
        tokio::time::timeout(Duration::from_secs(5), lane.closed_by_offer())
            .await
            .expect("the session is woken");

        // The session finishes the cut frame: the viewer reads every frame whole, in order.
        let reader = tokio::spawn(async move {
            for expected in 1..=seq {
                let payload = read_message(&mut client, 200_000).await;
                assert!(
                    payload.iter().all(|&b| b == expected as u8),
                    "frame {expected}"
                );
            }
            assert_silent(&mut client, "nothing after the cut frame").await;
        });
        let mut outbox = Outbox::new();
        let receipt = hand_over.receipt();
        outbox.push_started_frame(
            hand_over.frame.data,
            hand_over.file,
            receipt,
            hand_over.written,
        );
        let mut reported = 0;
        while !outbox.is_empty() {
            outbox.write_to(&server, |_| reported += 1).unwrap();
            if !outbox.is_empty() {
                server.writable().await.unwrap();
            }
        }
        assert_eq!(reported, 1, "the cut frame is reported once, when whole");
        reader.await.unwrap();
    }
}
