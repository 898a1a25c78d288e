//! What the hub needs from a source, and the sink through which a source publishes.
//!
//! The hub defines these traits so that it depends on nothing above it; the plugin host
//! implements them. A [`FrameSink`] is bound to one *generation* of a hub's source: after a
//! source is stopped or replaced, its sink silently refuses frames and states, so a late
//! callback can never show an old source's picture or state.
//!
//! Frames of any codec come in through [`FrameSink::publish_media`], which checks them
//! before the hub sees them: a JPEG takes exactly the path of [`FrameSink::publish`]; an
//! H.264/H.265 access unit must be in AVCC/HVCC form, and the sink keeps the
//! [`VideoConfig`] in force for its generation (parsed once per configuration record, by
//! `codec_config`), so every video frame reaches the hub with its configuration and no
//! video frame reaches it before one.

use std::sync::{Arc, Mutex, Weak};

use super::codec_config::{self, AccessUnitError, ConfigError};
use super::frame::{Codec, VideoConfig};
use super::stream_hub::{Hub, MAX_FRAME_BYTES, StreamState, VideoIn, looks_like_jpeg};

/// Starts sources for one stream. Held by the hub; replaced when the stream's configuration
/// changes.
pub trait SourceFactory: Send + Sync {
    /// Creates and starts a source that publishes into `sink`. May block briefly (the hub
    /// calls it on a blocking thread). The error text is shown to operators and viewers: it
    /// must not contain secrets.
    fn start(&self, sink: FrameSink) -> Result<Box<dyn RunningSource>, String>;

    /// A short description for status pages (e.g. the plugin name).
    fn describe(&self) -> String;
}

/// A started source.
pub trait RunningSource: Send {
    /// Stops the source: blocking; after it returns the source publishes nothing more.
    fn stop(self: Box<Self>);
}

/// The publishing end a source writes into. Cheap to clone; safe from any thread.
#[derive(Clone)]
pub struct FrameSink {
    hub: Weak<Hub>,
    generation: u64,
    /// The video configuration in force for this generation (shared by clones): set by the
    /// first video frame's record, replaced when a frame brings a different one.
    video_config: Arc<Mutex<Option<Arc<VideoConfig>>>>,
}

/// One frame of any codec, as a source hands it to [`FrameSink::publish_media`]. Borrowed:
/// the hub copies what it keeps.
#[derive(Debug, Clone, Copy)]
pub struct MediaIn<'a> {
    /// How `data` is coded.
    pub codec: Codec,
    /// Whether a decoder can start at this frame (IDR/IRAP; every JPEG).
    pub keyframe: bool,
    /// JPEG: one whole JPEG. Video: one access unit, 4-byte big-endian length prefixes.
    pub data: &'a [u8],
    /// Video: the avcC/hvcC record when it is new or changed, else `None`. JPEG: `None`.
    pub config: Option<&'a [u8]>,
    /// Width in pixels (0: unknown; video then uses the configuration's).
    pub width: u32,
    /// Height in pixels (0: unknown; video then uses the configuration's).
    pub height: u32,
    /// Capture time, µs since the Unix epoch (0: unknown, the hub uses the arrival time).
    pub captured_at_us: u64,
}

/// Why [`FrameSink::publish_media`] did not take a frame. Every variant but `Closed` is
/// about this one frame: the source may keep publishing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaRefused {
    /// The sink is closed (source stopped or replaced, stream removed): stop producing.
    #[error("the source is closed")]
    Closed,
    /// A JPEG frame that is not one complete JPEG (SOI..EOI, at most the frame limit).
    #[error("a {len}-byte JPEG frame that is not one complete JPEG (FF D8 ... FF D9)")]
    NotJpeg {
        /// Its length.
        len: usize,
    },
    /// A JPEG frame with a configuration record: only video has one.
    #[error("a JPEG frame came with a decoder configuration record; only H.264/H.265 have one")]
    ConfigOnJpeg,
    /// A video frame before any configuration record.
    #[error(
        "an {codec} frame before any decoder configuration record: send the {record} with the first frame and whenever it changes"
    )]
    NoConfig {
        /// `h264` or `h265`.
        codec: &'static str,
        /// `avcC` or `hvcC`.
        record: &'static str,
    },
    /// A video frame of another codec than the configuration in force, without its own.
    #[error(
        "an {codec} frame without a configuration record while the one in force is {in_force}'s"
    )]
    CodecChanged {
        /// The frame's codec.
        codec: &'static str,
        /// The codec of the configuration in force.
        in_force: &'static str,
    },
    /// The configuration record could not be used.
    #[error("bad decoder configuration record: {0}")]
    Config(#[from] ConfigError),
    /// The access unit is not in AVCC/HVCC form.
    #[error("bad access unit: {0}")]
    AccessUnit(#[from] AccessUnitError),
}

impl FrameSink {
    pub(super) fn new(hub: Weak<Hub>, generation: u64) -> Self {
        FrameSink {
            hub,
            generation,
            video_config: Arc::default(),
        }
    }

    /// Publishes one frame of any codec after checking it (see [`MediaIn`]).
    ///
    /// A JPEG behaves exactly like [`FrameSink::publish`] (same path, same cost: the check
    /// is O(1)), except that a frame that is not a JPEG is refused instead of dropped. A
    /// video access unit is checked in O(NAL units); its configuration record, when one
    /// comes, is parsed once and shared by every frame until the next different one.
    /// `Err(Closed)` means the producer should stop; any other error refuses this frame
    /// only (the caller logs it).
    pub fn publish_media(&self, media: &MediaIn<'_>) -> Result<(), MediaRefused> {
        let published = match media.codec {
            Codec::Jpeg => {
                if media.config.is_some_and(|c| !c.is_empty()) {
                    return Err(MediaRefused::ConfigOnJpeg);
                }
                if !looks_like_jpeg(media.data) {
                    return Err(MediaRefused::NotJpeg {
                        len: media.data.len(),
                    });
                }
                self.publish(media.data, media.width, media.height, media.captured_at_us)
            }
            Codec::H264 | Codec::H265 => {
                codec_config::check_access_unit(media.data, MAX_FRAME_BYTES)?;
                let (config, _changed) = self.config_for(media)?;
                let Some(hub) = self.hub.upgrade() else {
                    return Err(MediaRefused::Closed);
                };
                // The configuration goes with every frame (the hub keeps the one in force;
                // the same shared value costs nothing), so a restarted hub never lacks it.
                let video = VideoIn {
                    codec: media.codec,
                    keyframe: media.keyframe,
                    data: media.data,
                    width: if media.width == 0 {
                        config.width
                    } else {
                        media.width
                    },
                    height: if media.height == 0 {
                        config.height
                    } else {
                        media.height
                    },
                    config: Some(config),
                    captured_at_us: media.captured_at_us,
                };
                hub.publish_video(self.generation, video)
            }
        };
        if published {
            Ok(())
        } else {
            Err(MediaRefused::Closed)
        }
    }

    /// The configuration a video frame is coded with, and whether it differs from the one
    /// the previous frame had. A record equal to the one in force is not parsed again.
    fn config_for(&self, media: &MediaIn<'_>) -> Result<(Arc<VideoConfig>, bool), MediaRefused> {
        let mut in_force = self.video_config.lock().unwrap_or_else(|e| e.into_inner());
        match (media.config.filter(|c| !c.is_empty()), in_force.as_ref()) {
            (Some(record), Some(current))
                if current.codec == media.codec && current.description == record =>
            {
                Ok((Arc::clone(current), false))
            }
            (Some(record), _) => {
                let config = Arc::new(codec_config::video_config(media.codec, record)?);
                *in_force = Some(Arc::clone(&config));
                Ok((config, true))
            }
            (None, Some(current)) if current.codec == media.codec => {
                Ok((Arc::clone(current), false))
            }
            (None, Some(current)) => Err(MediaRefused::CodecChanged {
                codec: media.codec.as_str(),
                in_force: current.codec.as_str(),
            }),
            (None, None) => Err(MediaRefused::NoConfig {
                codec: media.codec.as_str(),
                record: if media.codec == Codec::H265 {
                    "hvcC"
                } else {
                    "avcC"
                },
            }),
        }
    }

    /// Publishes one JPEG (copied once into a refcounted buffer shared by all viewers).
    /// Returns `false` when the sink is closed (the source was stopped or replaced, or the
    /// stream removed): the producer should stop.
    ///
    /// Safe from any thread, several at once (frames are numbered in the order they reach
    /// the hub). It costs the caller the copy and O(1) more, whatever the number of viewers:
    /// the hub's fan-out task delivers the frame on the gateway's threads (`fanout.rs`).
    pub fn publish(&self, jpeg: &[u8], width: u32, height: u32, captured_at_us: u64) -> bool {
        match self.hub.upgrade() {
            Some(hub) => hub.publish(self.generation, jpeg, width, height, captured_at_us),
            None => false,
        }
    }

    /// Publishes one H.264/H.265 access unit the caller has checked (see [`VideoIn`];
    /// sources through the ABI come in through [`FrameSink::publish_media`], which checks).
    /// Returns `false` when the sink is closed. Safe from any thread; O(1) in the number of
    /// viewers. Frames from one source must come in decoding order: publish from one
    /// thread, or order them yourself.
    pub fn publish_video(&self, video: VideoIn<'_>) -> bool {
        match self.hub.upgrade() {
            Some(hub) => hub.publish_video(self.generation, video),
            None => false,
        }
    }

    /// Tells the hub that this source's next frame follows `frames` frames skipped before
    /// they reached the source (a relay whose upstream's numbers jumped): the next frame of
    /// either track is numbered past the gap, so viewers count those frames as missing.
    /// Call it from the publishing thread, right before that frame. Returns `false` when
    /// the sink is closed.
    pub fn skip(&self, frames: u64) -> bool {
        match self.hub.upgrade() {
            Some(hub) => hub.skip(self.generation, frames),
            None => false,
        }
    }

    /// Records that a frame of this source was refused (`why`, for the plugin's author):
    /// counted per stream, logged rate-limited.
    pub fn refused(&self, why: &str) {
        if let Some(hub) = self.hub.upgrade() {
            hub.telemetry().frame_refused(why);
        }
    }

    /// Reports the source's state with a message for operators (no secrets).
    pub fn set_state(&self, state: StreamState, message: &str) {
        if let Some(hub) = self.hub.upgrade() {
            hub.source_state(self.generation, state, message);
        }
    }

    /// The stream this sink publishes into, for log context.
    pub fn stream_id(&self) -> String {
        self.hub
            .upgrade()
            .map(|hub| hub.id().to_owned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    //! `publish_media` against a real hub: JPEG takes the `publish` path, every malformed
    //! frame is refused with its reason before the hub sees it, and the configuration in
    //! force is parsed once per record.

    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    use super::*;
    use crate::hub::{Cursor, StreamInfo};

    #[derive(Default)]
    struct KeepSink(StdMutex<Vec<FrameSink>>);

    struct Idle;
    impl RunningSource for Idle {
        fn stop(self: Box<Self>) {}
    }

    impl SourceFactory for KeepSink {
        fn start(&self, sink: FrameSink) -> Result<Box<dyn RunningSource>, String> {
            self.0.lock().unwrap().push(sink);
            Ok(Box::new(Idle))
        }
        fn describe(&self) -> String {
            "keep-sink".into()
        }
    }

    async fn hub_and_sink() -> (Arc<Hub>, FrameSink) {
        let factory = Arc::new(KeepSink::default());
        let info = StreamInfo {
            name: "Test".into(),
            on_demand: false,
            idle_timeout: Duration::ZERO,
            fps: None,
            health: crate::hub::HealthRules::default(),
        };
        let telemetry = crate::telemetry::Metrics::new().stream("media");
        let hub = Hub::new("media", info, factory.clone(), telemetry);
        hub.activate().await;
        let sink = factory.0.lock().unwrap()[0].clone();
        (hub, sink)
    }

    fn record(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/codec/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap()
    }

    const JPEG: &[u8] = &[0xFF, 0xD8, 0x00, 0xFF, 0xD9];
    const IDR: &[u8] = &[0, 0, 0, 3, 0x65, 0x88, 0x84];

    fn media<'a>(codec: Codec, data: &'a [u8], config: Option<&'a [u8]>) -> MediaIn<'a> {
        MediaIn {
            codec,
            keyframe: true,
            data,
            config,
            width: 0,
            height: 0,
            captured_at_us: 0,
        }
    }

    #[tokio::test]
    async fn a_jpeg_takes_the_publish_path() {
        let (hub, sink) = hub_and_sink().await;
        let mut frame = media(Codec::Jpeg, JPEG, None);
        frame.width = 2;
        frame.height = 1;
        assert_eq!(sink.publish_media(&frame), Ok(()));
        let latest = hub.latest_frame().expect("published");
        assert_eq!(latest.codec, Codec::Jpeg);
        assert_eq!((latest.width, latest.height), (2, 1));
        assert_eq!(hub.frames_in(), 1);
        // What `publish` drops silently is refused here, with the reason.
        assert_eq!(
            sink.publish_media(&media(Codec::Jpeg, &[0xFF, 0xD8, 1], None)),
            Err(MediaRefused::NotJpeg { len: 3 })
        );
        assert_eq!(
            sink.publish_media(&media(Codec::Jpeg, JPEG, Some(&[1, 2]))),
            Err(MediaRefused::ConfigOnJpeg)
        );
        assert_eq!(hub.frames_in(), 1);
    }

    #[tokio::test]
    async fn malformed_video_frames_are_refused_before_the_hub() {
        let (hub, sink) = hub_and_sink().await;
        let avcc = record("demo_camera.avcC");
        assert_eq!(
            sink.publish_media(&media(Codec::H264, IDR, None)),
            Err(MediaRefused::NoConfig {
                codec: "h264",
                record: "avcC"
            })
        );
        assert_eq!(
            sink.publish_media(&media(Codec::H264, &[0, 0, 1, 0x65, 0x88], Some(&avcc))),
            Err(MediaRefused::AccessUnit(AccessUnitError::BadLength {
                offset: 0
            }))
        );
        assert_eq!(
            sink.publish_media(&media(Codec::H264, &[], Some(&avcc))),
            Err(MediaRefused::AccessUnit(AccessUnitError::Empty))
        );
        assert!(matches!(
            sink.publish_media(&media(Codec::H264, IDR, Some(&avcc[..10]))),
            Err(MediaRefused::Config(ConfigError::Truncated { .. }))
        ));
        // An hvcC sent as an H.264 configuration is refused, not misread.
        assert!(matches!(
            sink.publish_media(&media(Codec::H264, IDR, Some(&record("h265_650.hvcC")))),
            Err(MediaRefused::Config(_))
        ));
        // None of them reached the hub, and none was taken as the configuration.
        assert_eq!(hub.frames_in(), 0);
        assert!(sink.video_config.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn the_configuration_in_force_is_parsed_once_and_replaced_on_change() {
        let (_hub, sink) = hub_and_sink().await;
        let avcc = record("demo_camera.avcC");
        let first = media(Codec::H264, IDR, Some(&avcc));
        let (config, changed) = sink.config_for(&first).unwrap();
        assert!(changed);
        assert_eq!(config.codec_string, "avc1.42c01f");
        // The same record again (some cameras repeat it on every keyframe), or none: the
        // same shared configuration, unchanged.
        let (again, changed) = sink.config_for(&first).unwrap();
        assert!(!changed && Arc::ptr_eq(&config, &again));
        let (next, changed) = sink.config_for(&media(Codec::H264, IDR, None)).unwrap();
        assert!(!changed && Arc::ptr_eq(&config, &next));
        // Clones of the sink share it.
        let clone = sink.clone();
        assert!(clone.config_for(&media(Codec::H264, IDR, None)).is_ok());
        // An H.265 frame without its own record cannot use the H.264 one.
        assert_eq!(
            sink.config_for(&media(Codec::H265, IDR, None)),
            Err(MediaRefused::CodecChanged {
                codec: "h265",
                in_force: "h264"
            })
        );
        // A different record replaces it.
        let hvcc = record("h265_650.hvcC");
        let (h265, changed) = sink
            .config_for(&media(Codec::H265, IDR, Some(&hvcc)))
            .unwrap();
        assert!(changed);
        assert_eq!((h265.width, h265.height), (650, 362));
    }

    #[tokio::test]
    async fn a_skip_leaves_its_numbers_out_of_both_tracks() {
        let (hub, sink) = hub_and_sink().await;
        assert_eq!(sink.publish_media(&media(Codec::Jpeg, JPEG, None)), Ok(()));
        assert_eq!(hub.latest_frame().unwrap().seq, 1);
        assert!(sink.skip(5));
        assert_eq!(sink.publish_media(&media(Codec::Jpeg, JPEG, None)), Ok(()));
        assert_eq!(
            hub.latest_frame().unwrap().seq,
            7,
            "frames 2..=6 were skipped"
        );
        assert!(sink.skip(0));
        assert_eq!(sink.publish_media(&media(Codec::Jpeg, JPEG, None)), Ok(()));
        assert_eq!(hub.latest_frame().unwrap().seq, 8, "no gap without a skip");

        // Video: a viewer that follows sees the gap (counted as skipped) and continues at
        // the keyframe after it; frames before the gap are no longer handed out.
        let avcc = record("demo_camera.avcC");
        let mut cursor = Cursor::new();
        let mut frame = media(Codec::H264, IDR, Some(&avcc));
        assert_eq!(sink.publish_media(&frame), Ok(()));
        frame.keyframe = false;
        frame.config = None;
        assert_eq!(sink.publish_media(&frame), Ok(()));
        let seqs = |c: &crate::hub::Catchup| c.frames.iter().map(|f| f.seq).collect::<Vec<_>>();
        // (The JPEG skip above left its numbers out of this track too.)
        assert_eq!(seqs(&hub.video_catch_up(&mut cursor)), [6, 7]);
        assert!(sink.skip(3));
        frame.keyframe = true;
        assert_eq!(sink.publish_media(&frame), Ok(()));
        let after = hub.video_catch_up(&mut cursor);
        assert_eq!(seqs(&after), [11]);
        assert_eq!(after.skipped, 3);
        assert_eq!(seqs(&hub.video_catch_up(&mut Cursor::new())), [11]);

        // A stale sink tells nothing.
        drop(hub);
        assert!(!sink.skip(1));
    }

    #[tokio::test]
    async fn a_closed_sink_says_closed() {
        let (hub, sink) = hub_and_sink().await;
        drop(hub);
        assert_eq!(
            sink.publish_media(&media(Codec::Jpeg, JPEG, None)),
            Err(MediaRefused::Closed)
        );
        let avcc = record("demo_camera.avcC");
        assert_eq!(
            sink.publish_media(&media(Codec::H264, IDR, Some(&avcc))),
            Err(MediaRefused::Closed)
        );
    }
}
