//! One RTSP session ("run"): connect (TCP, DESCRIBE, SETUP of the one video stream, PLAY)
//! within `connect_timeout`, then hand every frame to the host through [`media`] until
//! something ends it: an error, the camera ending the stream, the stall watchdog, or the
//! host closing the source.
//!
//! The RTSP client is `retina`: frames arrive depacketized and never decoded — H.264/H.265
//! access units in AVCC/HVCC form (`FrameFormat::MP4`: 4-byte lengths, no in-band parameter
//! sets: those travel as the avcC/hvcC configuration), JPEGs whole. Only the first H.264,
//! H.265 or MJPEG video stream is set up (audio and metadata are not even requested).
//!
//! Invariants: the URL given to the client carries no userinfo (credentials go apart, and
//! the client answers Basic or Digest challenges with them); every error is a [`RunError`]
//! whose text holds no credential (the supervisor scrubs it once more); `live` is reported
//! only after the host took a frame, and only frames the host took reset the watchdog, so a
//! host that keeps rejecting frames ends the run instead of leaving it `live` and silent.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use camgate_plugin_api::{Codec, Host, LogLevel, SendError, SourceState};
use camgate_plugin_common::camera::human;
use camgate_plugin_common::ratelimit::LogLimiter;
use futures_util::StreamExt;
use retina::client::{PlayOptions, Session, SessionGroup, SessionOptions, SetupOptions};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};

use crate::config::Settings;
use crate::media::{self, Gate, Outgoing, Verdict, codec_name, codec_of_encoding};

/// At most one "the gateway rejected frames" line per this long.
const REJECTED_LOG_EVERY: Duration = Duration::from_secs(10);

/// Why a run failed: short, operator-facing texts (no credentials, no multi-line dumps).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The camera refused the credentials (or wants some and none are configured).
    #[error("authentication failed (401 Unauthorized): {0}")]
    Unauthorized(&'static str),
    /// Wrong path.
    #[error("stream not found (404 Not Found)")]
    NotFound,
    /// Nothing listens on the camera's port.
    #[error("connection refused")]
    Refused,
    /// TCP connect + DESCRIBE + SETUP + PLAY took longer than `connect_timeout`.
    #[error("connection timed out (no answer within {0})")]
    ConnectTimeout(String),
    /// Connected, but no frame within `connect_timeout + stall_timeout`.
    #[error("no frame for {0} after connecting")]
    NoFirstFrame(String),
    /// Frames stopped for `stall_timeout`.
    #[error("no frame for {0} (stream stalled)")]
    Stalled(String),
    /// The camera closed the session.
    #[error("the camera ended the stream")]
    Ended,
    /// The camera offers no video this plugin passes through.
    #[error("the camera offers no H.264, H.265 or MJPEG video (its streams: {0})")]
    NoVideo(String),
    /// Any other RTSP or network error: the client's first line.
    #[error("{0}")]
    Rtsp(String),
}

impl RunError {
    /// The short form of an RTSP client error (`have_credentials`: whether the source has
    /// a username, which the 401 text depends on).
    pub fn from_client(error: &retina::Error, have_credentials: bool) -> Self {
        match error.status_code() {
            Some(401) => {
                return RunError::Unauthorized(if have_credentials {
                    "check username and password"
                } else {
                    "the camera wants a username and password"
                });
            }
            Some(404) => return RunError::NotFound,
            _ => {}
        }
        let text = error.to_string();
        // The client's messages are multi-line (connection and packet context follow a
        // blank line): the first line says what happened.
        let first = text.lines().next().unwrap_or_default().trim().to_owned();
        if first.contains("Connection refused") {
            RunError::Refused
        } else {
            RunError::Rtsp(first)
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The host closed this source (it is stopping): publish nothing more.
    Closed,
    /// The run failed; the supervisor retries.
    Failed(RunError),
}

pub use camgate_plugin_common::run::RunStats;

/// Runs one session to its end (see the module docs). `group` tracks the session so that
/// its TEARDOWN can be awaited after it is dropped.
pub async fn run(
    settings: &Settings,
    host: &Host,
    group: &Arc<SessionGroup>,
    stats: &mut RunStats,
) -> RunEnd {
    let have_credentials = settings.url.credentials().is_some();
    let client_error =
        |e: retina::Error| RunEnd::Failed(RunError::from_client(&e, have_credentials));
    let connect =
        async {
            let url = url::Url::parse(&settings.url.display_url)
                .map_err(|e| RunEnd::Failed(RunError::Rtsp(format!("invalid url: {e}"))))?;
            let creds = settings.url.credentials().map(|(username, password)| {
                retina::client::Credentials {
                    username: username.to_owned(),
                    password: password.to_owned(),
                }
            });
            let options = SessionOptions::default()
                .creds(creds)
                .session_group(Arc::clone(group))
                .user_agent(format!("camgate/{}", env!("CARGO_PKG_VERSION")));
            let mut session = Session::describe(url, options)
                .await
                .map_err(client_error)?;
            let (index, codec) = pick_video(&session)?;
            let transport = settings.transport.as_str().parse().map_err(client_error)?;
            session
                .setup(
                    index,
                    SetupOptions::default()
                        .transport(transport)
                        .frame_format(FrameFormat::MP4),
                )
                .await
                .map_err(client_error)?;
            let playing = session
                .play(PlayOptions::default())
                .await
                .map_err(client_error)?;
            let demuxed = playing.demuxed().map_err(client_error)?;
            Ok::<_, RunEnd>((demuxed, index, codec))
        };
    let connected = tokio::time::timeout(settings.connect_timeout, connect).await;
    let (mut demuxed, index, codec) = match connected {
        Ok(Ok(connected)) => connected,
        Ok(Err(end)) => return end,
        Err(_) => {
            return RunEnd::Failed(RunError::ConnectTimeout(human(settings.connect_timeout)));
        }
    };
    host.log(
        LogLevel::Debug,
        &format!(
            "playing {} ({}, RTP over {})",
            settings.url.display_url,
            codec_name(codec),
            settings.transport.as_str()
        ),
    );

    let mut gate = Gate::default();
    let mut rejected_log = LogLimiter::new(REJECTED_LOG_EVERY);
    let first_frame_budget = settings.connect_timeout + settings.stall_timeout;
    loop {
        let (deadline, allowed) = match stats.last_frame {
            Some(last) => (last + settings.stall_timeout, settings.stall_timeout),
            None => (stats.started + first_frame_budget, first_frame_budget),
        };
        let next = tokio::time::timeout_at(deadline.into(), demuxed.next()).await;
        let frame = match next {
            Err(_) if stats.frames == 0 => {
                return RunEnd::Failed(RunError::NoFirstFrame(human(allowed)));
            }
            Err(_) => return RunEnd::Failed(RunError::Stalled(human(allowed))),
            Ok(None) => return RunEnd::Failed(RunError::Ended),
            Ok(Some(Err(e))) => return client_error(e),
            Ok(Some(Ok(CodecItem::VideoFrame(frame)))) if frame.stream_id() == index => frame,
            Ok(Some(Ok(_))) => continue, // RTCP and the like
        };
        let now = Instant::now();
        let keyframe = frame.is_random_access_point();
        let (verdict, lost) = gate.admit(keyframe, frame.loss(), now);
        if let Some(lost) = lost {
            host.log(
                LogLevel::Warn,
                &format!("{lost} RTP packet(s) lost; frames are skipped up to the next keyframe"),
            );
        }
        if verdict == Verdict::Skip {
            continue;
        }
        let Some(ParametersRef::Video(params)) = demuxed.streams()[index].parameters() else {
            continue; // cannot happen after a frame; skip rather than send garbage
        };
        let (width, height) = params.coded_pixel_dimensions();
        let config = match codec {
            Codec::Jpeg => None,
            Codec::H264 | Codec::H265 => gate.config_for(params.extra_data()),
        };
        let outgoing = Outgoing {
            codec,
            keyframe,
            data: frame.data(),
            config,
            width,
            height,
            captured_at: SystemTime::now(),
        };
        match media::publish(host, &outgoing) {
            Ok(()) => {
                if let Some(config) = config {
                    gate.config_delivered(config);
                }
                if stats.took_frame(now) {
                    host.set_state(SourceState::Live, "");
                    host.log(
                        LogLevel::Info,
                        &format!(
                            "first frame {} ms after connecting: {} {width}x{height}, RTP over {}",
                            now.saturating_duration_since(stats.started).as_millis(),
                            codec_name(codec),
                            settings.transport.as_str()
                        ),
                    );
                }
            }
            Err(SendError::Closed) => return RunEnd::Closed,
            Err(SendError::Rejected { status }) => {
                if let Some(count) = rejected_log.record(1, now) {
                    host.log(
                        LogLevel::Warn,
                        &format!(
                            "the gateway rejected {count} frame(s) (status {status}); still \
                             publishing"
                        ),
                    );
                }
            }
        }
    }
}

/// The first video stream of a codec this plugin passes through.
fn pick_video<S: retina::client::State>(session: &Session<S>) -> Result<(usize, Codec), RunEnd> {
    let streams = session.streams();
    streams
        .iter()
        .enumerate()
        .find_map(|(i, s)| {
            (s.media() == "video")
                .then(|| codec_of_encoding(s.encoding_name()))
                .flatten()
                .map(|codec| (i, codec))
        })
        .ok_or_else(|| {
            let found: Vec<String> = streams
                .iter()
                .map(|s| format!("{} {}", s.media(), s.encoding_name()))
                .collect();
            RunEnd::Failed(RunError::NoVideo(if found.is_empty() {
                "none".to_owned()
            } else {
                found.join(", ")
            }))
        })
}
