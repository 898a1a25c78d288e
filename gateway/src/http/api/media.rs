//! Media endpoints: `GET /api/streams/{id}/snapshot.jpg` (the latest frame, or a
//! passthrough stream's current picture decoded from its GOP) and
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
use crate::hub::{Closing, Codec, Frame, Hub, JpegDemand, StreamState, Viewer, ViewerReservation};
use crate::telemetry::{Transport, ViewerTelemetry};
use crate::transcode::snapshot_from_gop;

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

/// What a snapshot is made of.
enum Picture {
    /// A JPEG the hub has (a JPEG source, or a video stream's running transcoder).
    Jpeg(Bytes),
    /// A video stream's GOP, decoded for its last picture.
    Gop(Vec<Frame>),
}

/// `GET /api/streams/{id}/snapshot.jpg`. A JPEG stream's latest frame; a passthrough
/// stream's current picture, decoded from its GOP by a one-shot ffmpeg (no transcoder is
/// kept running for snapshots) unless a transcoder is running anyway.
pub async fn snapshot(hub: Arc<Hub>) -> Response<Body> {
    let picture = match current_picture(&hub) {
        Some(picture) => Some(picture),
        // Start the source (an on-demand stream counts this request as a brief viewer) and
        // wait a bounded time for a fresh picture.
        None => tokio::time::timeout(SNAPSHOT_WAIT, fresh_picture(&hub))
            .await
            .ok()
            .flatten(),
    };
    let jpeg = match picture {
        Some(Picture::Jpeg(jpeg)) => Ok(jpeg),
        Some(Picture::Gop(gop)) => snapshot_from_gop(&gop).await.map_err(|error| {
            tracing::warn!(stream = %hub.id(), %error, "could not decode a snapshot");
            format!("its picture could not be decoded ({error})")
        }),
        None => Err(format!("no picture within {}s", SNAPSHOT_WAIT.as_secs())),
    };
    match jpeg {
        Ok(jpeg) => jpeg_response(jpeg),
        Err(what) => {
            let status = hub.status();
            let reason = if status.message.is_empty() {
                status.state.as_str().to_owned()
            } else {
                format!("{}: {}", status.state.as_str(), status.message)
            };
            response::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_frame",
                &format!("stream `{}` has {what} ({reason})", hub.id()),
            )
        }
    }
}

/// The picture a live stream has now, if any.
fn current_picture(hub: &Hub) -> Option<Picture> {
    if hub.status().state != StreamState::Live {
        return None;
    }
    let video = hub.native_codec().is_some_and(Codec::is_video);
    if (!video || hub.transcoders() > 0)
        && let Some(frame) = hub.latest_frame()
    {
        return Some(Picture::Jpeg(frame.data));
    }
    hub.current_gop().filter(|_| video).map(Picture::Gop)
}

/// Subscribes (starting an on-demand source) and waits for a picture newer than what the
/// hub held before.
async fn fresh_picture(hub: &Arc<Hub>) -> Option<Picture> {
    let stale = hub.latest_frame().map_or(0, |f| f.seq);
    let mut viewer = hub.subscribe().await;
    loop {
        if hub.native_codec().is_some_and(Codec::is_video) {
            if let Some(gop) = hub.current_gop() {
                return Some(Picture::Gop(gop));
            }
        } else if let Some(frame) = viewer
            .frames
            .borrow_and_update()
            .as_ref()
            .filter(|f| f.seq > stale)
        {
            return Some(Picture::Jpeg(frame.data.clone()));
        }
        tokio::select! {
            changed = viewer.frames.changed() => changed.ok()?,
            changed = viewer.video.changed() => changed.ok()?,
        }
    }
}

/// Everything one MJPEG response body needs between frames.
struct MjpegViewer {
    /// Keeps the viewer attached (and counted) while the body lives.
    _viewer: Viewer,
    /// On a video stream, keeps a transcoder running for this client.
    _jpeg_demand: JpegDemand,
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
        _jpeg_demand: hub.want_jpeg(),
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
