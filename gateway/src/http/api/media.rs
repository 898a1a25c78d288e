//! Media endpoints: `GET /api/streams/{id}/snapshot.jpg` (the latest frame) and
//! `GET /api/streams/{id}/mjpeg` (`multipart/x-mixed-replace`, for `<img>`, VLC, Home
//! Assistant).
//!
//! Invariants: an MJPEG client is a viewer like a WebSocket one (it takes a viewer slot
//! before the response starts, starts on-demand sources, counts in metrics, gets the latest
//! frame only, its body ends on shutdown and on stream removal, and a client that stops
//! taking data is cut after the viewer write timeout and counted as a slow-viewer
//! disconnect — the connection's `WriteTimeout` cuts it, see `http/admission.rs`); frames are sent without copying (the part header and the shared
//! JPEG buffer are separate chunks).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame as BodyFrame;
use tokio::sync::watch;

use crate::http::pacing::{FramePacer, Next};
use crate::http::response::{self, Body};
use crate::hub::{Closing, Hub, StreamState, Viewer, ViewerReservation};
use crate::telemetry::{Transport, ViewerTelemetry};

/// How long a snapshot waits for a first frame from a stopped (on-demand) source.
pub const SNAPSHOT_WAIT: Duration = Duration::from_secs(5);
/// The multipart boundary.
const BOUNDARY: &str = "camgateframe";

fn jpeg_response(jpeg: Bytes) -> Response<Body> {
    let mut response = Response::new(response::full(jpeg));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/streams/{id}/snapshot.jpg`.
pub async fn snapshot(hub: Arc<Hub>) -> Response<Body> {
    if hub.status().state == StreamState::Live
        && let Some(frame) = hub.latest_frame()
    {
        return jpeg_response(frame.data);
    }
    // Start the source (an on-demand stream counts this request as a brief viewer) and
    // wait a bounded time for a fresh frame.
    let stale = hub.latest_frame().map(|f| f.seq).unwrap_or(0);
    let mut viewer = hub.subscribe().await;
    let fresh = tokio::time::timeout(SNAPSHOT_WAIT, async {
        viewer
            .frames
            .wait_for(|f| f.as_ref().is_some_and(|f| f.seq > stale))
            .await
            .ok()
            .and_then(|f| f.clone())
    })
    .await;
    match fresh {
        Ok(Some(frame)) => jpeg_response(frame.data),
        _ => {
            let status = hub.status();
            let reason = if status.message.is_empty() {
                status.state.as_str().to_owned()
            } else {
                format!("{}: {}", status.state.as_str(), status.message)
            };
            response::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_frame",
                &format!(
                    "stream `{}` has no picture within {}s ({reason})",
                    hub.id(),
                    SNAPSHOT_WAIT.as_secs()
                ),
            )
        }
    }
}

/// Everything one MJPEG response body needs between frames.
struct MjpegViewer {
    /// Keeps the viewer attached (and counted) while the body lives.
    _viewer: Viewer,
    pacer: FramePacer,
    frames: watch::Receiver<Option<crate::hub::Frame>>,
    closing: watch::Receiver<Option<Closing>>,
    telemetry: ViewerTelemetry,
    pending: Option<Next>,
    /// Set by the connection when a write stalled past the write timeout.
    stalled: Option<Arc<AtomicBool>>,
}

impl Drop for MjpegViewer {
    fn drop(&mut self) {
        // hyper drops the body when the connection fails; a stalled write is why.
        if self
            .stalled
            .as_ref()
            .is_some_and(|stalled| stalled.load(Ordering::SeqCst))
        {
            self.telemetry.slow_disconnect("write timeout");
        }
    }
}

impl MjpegViewer {
    /// The next frame, or `None` when the body must end (shutdown, stream removed).
    async fn next(&mut self) -> Option<Next> {
        if let Some(next) = self.pending.take() {
            return Some(next);
        }
        tokio::select! {
            biased;
            _ = self.closing.wait_for(Option::is_some) => None,
            next = self.pacer.next(&mut self.frames) => next,
        }
    }
}

/// `GET /api/streams/{id}/mjpeg` (optional `?max_fps=`), in the viewer slot the router
/// reserved. `stalled` is the connection's write-stall flag.
pub async fn mjpeg(
    reservation: ViewerReservation,
    max_fps: Option<f64>,
    stalled: Option<Arc<AtomicBool>>,
) -> Response<Body> {
    let hub = Arc::clone(reservation.hub());
    let mut viewer = reservation.subscribe().await;
    let mut pacer = FramePacer::new(max_fps);
    // The latest frame right away, then every new one.
    let pending = pacer.current(&mut viewer.frames);
    let source = MjpegViewer {
        frames: viewer.frames.clone(),
        closing: viewer.closing.clone(),
        telemetry: hub.telemetry().viewer(Transport::Mjpeg),
        pacer,
        pending,
        stalled,
        _viewer: viewer,
    };
    let parts = futures_util::stream::unfold(source, |mut source| async move {
        let next = source.next().await?;
        if next.dropped > 0 {
            source.telemetry.frames_dropped(next.dropped);
        }
        let jpeg = next.frame.data;
        source
            .telemetry
            .frame_sent(jpeg.len(), next.frame.captured_at_us);
        let header = Bytes::from(format!(
            "\r\n--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        ));
        Some((futures_util::stream::iter([header, jpeg]), source))
    })
    .flatten()
    .map(|chunk| Ok::<_, Infallible>(BodyFrame::data(chunk)));
    let mut response = Response::new(StreamBody::new(parts).boxed_unsync());
    let headers = response.headers_mut();
    if let Ok(value) =
        HeaderValue::from_str(&format!("multipart/x-mixed-replace; boundary={BOUNDARY}"))
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
