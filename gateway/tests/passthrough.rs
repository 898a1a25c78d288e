//! The passthrough formats of the viewing protocol (`format=h264|h265|auto`) against a real
//! gateway on loopback, fed by a source the test drives (`support::ManualFactory`) on
//! tokio's paused clock: hello and config, the GOP on joining, frames in order, the skip to
//! the next keyframe for a viewer that falls behind, codec negotiation, and credit.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use camgate::app::{Gateway, GatewayOptions};
use camgate::hub::{Codec, Hub, VideoConfig, VideoIn};
use futures_util::StreamExt;
use support::*;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const SECS: fn(u64) -> Duration = Duration::from_secs;

const MANIFEST: &str = r#"
streams:
  - id: cam
    source: { plugin: testsrc, width: 160, height: 90 }
"#;

/// A gateway whose stream `cam` runs on a manual source.
async fn gateway() -> (Gateway, Arc<Hub>, Arc<ManualFactory>) {
    manual_gateway(MANIFEST, "cam", GatewayOptions::default()).await
}

fn config(codec: Codec, codec_string: &str, description: &'static [u8]) -> Arc<VideoConfig> {
    Arc::new(VideoConfig {
        codec,
        codec_string: codec_string.into(),
        width: 1280,
        height: 720,
        description: Bytes::from_static(description),
    })
}

fn avc() -> Arc<VideoConfig> {
    config(Codec::H264, "avc1.64001f", &[1, 0x64, 0, 0x1f, 0xff, 0xe1])
}

/// One access unit of `len` bytes in AVCC form (a single NAL unit), its bytes saying `seq`.
fn access_unit(len: usize, marker: u8) -> Vec<u8> {
    let body = len.saturating_sub(4).max(1);
    let mut out = u32::try_from(body).unwrap().to_be_bytes().to_vec();
    out.resize(4 + body, marker);
    out
}

/// The manual source publishes one H.264 frame (with `config` when given).
fn publish(
    factory: &ManualFactory,
    keyframe: bool,
    config: Option<Arc<VideoConfig>>,
    len: usize,
    epoch: Instant,
) {
    let data = access_unit(len, if keyframe { 0x65 } else { 0x41 });
    let captured_at_us = u64::try_from(epoch.elapsed().as_micros()).unwrap() + 1;
    let published = factory.sink().publish_video(VideoIn {
        codec: Codec::H264,
        keyframe,
        data: &data,
        config,
        width: 1280,
        height: 720,
        captured_at_us,
    });
    assert!(published, "the sink accepts frames");
}

/// A received video message: header fields and the access unit.
#[derive(Debug)]
struct VideoFrame {
    keyframe: bool,
    seq: u64,
    data: Vec<u8>,
}

fn decode(bytes: &[u8]) -> VideoFrame {
    assert!(bytes.len() > 18, "a video message has its 18-byte header");
    assert_eq!(bytes[0], 0x01, "kind: video");
    VideoFrame {
        keyframe: bytes[1] & 1 == 1,
        seq: u64::from_be_bytes(bytes[2..10].try_into().unwrap()),
        data: bytes[18..].to_vec(),
    }
}

/// Text events (as JSON) and video frames, in arrival order, within `window`.
enum Got {
    Event(serde_json::Value),
    Frame(VideoFrame),
}

async fn within(ws: &mut Client, window: Duration) -> Vec<Got> {
    let deadline = Instant::now() + window;
    let mut got = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, ws.next()).await {
        match message.expect("no WebSocket error") {
            Message::Text(text) => got.push(Got::Event(serde_json::from_str(&text).unwrap())),
            Message::Binary(bytes) => got.push(Got::Frame(decode(&bytes))),
            Message::Close(_) => break,
            _ => {}
        }
    }
    got
}

fn seqs(got: &[Got]) -> Vec<u64> {
    got.iter()
        .filter_map(|g| match g {
            Got::Frame(f) => Some(f.seq),
            Got::Event(_) => None,
        })
        .collect()
}

fn types(got: &[Got]) -> Vec<String> {
    got.iter()
        .map(|g| match g {
            Got::Frame(_) => "frame".to_owned(),
            Got::Event(e) => e["type"].as_str().unwrap().to_owned(),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_video_viewer_gets_config_then_the_gop_at_once_then_each_frame_in_order() {
    let (gateway, hub, factory) = gateway().await;
    let addr = gateway.local_addr();
    let epoch = Instant::now();
    let mut first = connect(addr, "/ws/streams/cam?format=h264").await;
    manual_viewers(&hub, &factory, 1).await;
    let hello = next_hello(&mut first, SECS(5)).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(
        hello["codec"],
        serde_json::Value::Null,
        "not known before the first frame"
    );
    assert_eq!(hello["format"], serde_json::Value::Null);

    // A frame before the first keyframe cannot be decoded: nobody gets it.
    publish(&factory, false, Some(avc()), 500, epoch);
    publish(&factory, true, None, 4000, epoch);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        publish(&factory, false, None, 500, epoch);
    }
    let got = within(&mut first, SECS(1)).await;
    assert_eq!(
        types(&got)[..2],
        ["state", "config"],
        "live, then the config"
    );
    let Got::Event(sent) = &got[1] else {
        unreachable!()
    };
    assert_eq!(
        *sent,
        serde_json::json!({"type": "config", "codec": "avc1.64001f", "width": 1280, "height": 720, "description": "AWQAH//h"})
    );
    assert_eq!(seqs(&got), [2, 3, 4, 5]);
    let Got::Frame(keyframe) = &got[2] else {
        unreachable!()
    };
    assert!(keyframe.keyframe);
    assert_eq!(
        keyframe.data,
        access_unit(4000, 0x65),
        "the access unit, untouched"
    );

    // A viewer joining now gets hello (codec known), the config and the whole GOP at once.
    let mut late = connect(addr, "/ws/streams/cam?format=auto").await;
    let hello = next_hello(&mut late, SECS(5)).await;
    assert_eq!(
        (hello["codec"].as_str(), hello["format"].as_str()),
        (Some("h264"), Some("h264"))
    );
    let got = within(&mut late, SECS(1)).await;
    assert_eq!(types(&got), ["config", "frame", "frame", "frame", "frame"]);
    assert_eq!(seqs(&got), [2, 3, 4, 5]);

    // Then both get each new frame, once, in order; a new keyframe starts a new GOP.
    publish(&factory, false, None, 500, epoch);
    publish(&factory, true, None, 4000, epoch);
    for ws in [&mut first, &mut late] {
        let got = within(ws, SECS(1)).await;
        assert_eq!(seqs(&got), [6, 7]);
    }
    let mut third = connect(addr, "/ws/streams/cam?format=h264").await;
    next_hello(&mut third, SECS(5)).await;
    assert_eq!(
        seqs(&within(&mut third, SECS(1)).await),
        [7],
        "the GOP since frame 7"
    );

    // A new configuration is sent before the first frame that uses it.
    let baseline = config(Codec::H264, "avc1.42e01e", &[1, 0x42, 0, 0x1e]);
    publish(&factory, true, Some(baseline), 3000, epoch);
    let got = within(&mut first, SECS(1)).await;
    assert_eq!(types(&got), ["config", "frame"]);
    let Got::Event(sent) = &got[0] else {
        unreachable!()
    };
    assert_eq!(sent["codec"], "avc1.42e01e");

    let api = http_json(addr, "GET", "/api/streams/cam", &[], None)
        .await
        .1;
    assert_eq!(api["codec"], "h264");
    assert_eq!(
        (api["width"].as_u64(), api["height"].as_u64()),
        (Some(1280), Some(720))
    );
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_viewer_that_falls_behind_skips_to_a_keyframe_and_is_told_how_many_it_missed() {
    let (gateway, hub, factory) = gateway().await;
    let addr = gateway.local_addr();
    let epoch = Instant::now();
    // A small receive buffer and no reading for three seconds: far behind a 10 fps stream
    // of 64 KiB frames with a keyframe every second.
    let mut slow = connect_with_rcvbuf(addr, "/ws/streams/cam?format=h264", 16 * 1024).await;
    manual_viewers(&hub, &factory, 1).await;
    publish(&factory, true, Some(avc()), 64 * 1024, epoch);
    for i in 1..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        publish(&factory, i % 10 == 0, None, 64 * 1024, epoch);
    }
    let got = within(&mut slow, SECS(2)).await;
    let frames: Vec<&VideoFrame> = got
        .iter()
        .filter_map(|g| match g {
            Got::Frame(f) => Some(f),
            Got::Event(_) => None,
        })
        .collect();
    assert!(frames[0].keyframe && frames[0].seq == 1);
    // Every frame follows the one before it, or starts a GOP after a gap: decodable.
    let mut gaps = 0;
    for pair in frames.windows(2) {
        if pair[1].seq != pair[0].seq + 1 {
            gaps += pair[1].seq - pair[0].seq - 1;
            assert!(
                pair[1].keyframe,
                "a gap ends at a keyframe: {:?}",
                seqs(&got)
            );
        }
    }
    assert!(gaps > 0, "it fell behind and skipped: {:?}", seqs(&got));
    assert_eq!(
        frames.last().unwrap().seq,
        30,
        "it caught up with the newest"
    );
    let reported: u64 = got
        .iter()
        .filter_map(|g| match g {
            Got::Event(e) if e["type"] == "dropped" => e["frames"].as_u64(),
            _ => None,
        })
        .sum();
    assert!(
        reported > 0 && reported <= gaps,
        "reported {reported} of {gaps}"
    );
    let metrics = gateway.state().metrics.render();
    let dropped = metrics
        .lines()
        .find_map(|l| l.strip_prefix("camgate_frames_dropped_total{stream=\"cam\"} "))
        .unwrap();
    assert_eq!(dropped, gaps.to_string());
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn codecs_are_negotiated_auto_follows_the_stream_and_a_wrong_codec_closes_with_4006() {
    let (gateway, hub, factory) = gateway().await;
    let addr = gateway.local_addr();
    let epoch = Instant::now();
    // Bad values are refused before the upgrade.
    let (status, body) = http_get(
        addr,
        "/ws/streams/cam?format=vp8",
        &upgrade_headers(KEY, &[]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("format must be one of auto, h264, h265, mjpeg"),
        "{body}"
    );

    // Asked for H.265 before the stream said what it is: told once the first frame comes.
    let mut h265 = connect(addr, "/ws/streams/cam?format=h265").await;
    manual_viewers(&hub, &factory, 1).await;
    next_event(&mut h265, SECS(5)).await;
    publish(&factory, true, Some(avc()), 1000, epoch);
    assert_eq!(closed_with(&mut h265, SECS(5)).await, Some(4006));
    // And at once when it is known.
    let mut h265 = connect(addr, "/ws/streams/cam?format=h265").await;
    let hello = next_event(&mut h265, SECS(5)).await;
    assert_eq!(hello["codec"], "h264");
    assert_eq!(closed_with(&mut h265, SECS(5)).await, Some(4006));

    // No format: today's protocol, no video frame ever.
    let mut plain = connect(addr, "/ws/streams/cam").await;
    let hello = next_event(&mut plain, SECS(5)).await;
    assert_eq!(
        (hello["codec"].as_str(), hello["format"].as_str()),
        (Some("h264"), Some("mjpeg"))
    );
    publish(&factory, false, None, 1000, epoch);
    assert!(seqs(&within(&mut plain, SECS(1)).await).is_empty());
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn auto_on_a_jpeg_stream_is_today_s_protocol() {
    let (gateway, hub, factory) = gateway().await;
    let addr = gateway.local_addr();
    let mut auto = connect(addr, "/ws/streams/cam?format=auto").await;
    manual_viewers(&hub, &factory, 1).await;
    assert_eq!(
        next_event(&mut auto, SECS(5)).await["format"],
        serde_json::Value::Null
    );
    let jpeg = jpeg(2000);
    assert!(factory.sink().publish(&jpeg, 8, 8, 0));
    assert_eq!(
        next_frame(&mut auto, SECS(5)).await.seq,
        1,
        "decided on the first frame"
    );
    let mut late = connect(addr, "/ws/streams/cam?format=auto").await;
    let hello = next_event(&mut late, SECS(5)).await;
    assert_eq!(
        (hello["codec"].as_str(), hello["format"].as_str()),
        (Some("jpeg"), Some("mjpeg"))
    );
    assert_eq!(
        next_frame(&mut late, SECS(5)).await.seq,
        1,
        "the current picture at once"
    );
    let mut h264 = connect(addr, "/ws/streams/cam?format=h264").await;
    next_event(&mut h264, SECS(5)).await;
    assert_eq!(closed_with(&mut h264, SECS(5)).await, Some(4006));
    gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_video_viewer_of_a_stream_reconfigured_to_another_codec_is_closed_with_4006() {
    let (gateway, hub, factory) = gateway().await;
    let addr = gateway.local_addr();
    let epoch = Instant::now();
    let mut video = connect(addr, "/ws/streams/cam?format=auto").await;
    manual_viewers(&hub, &factory, 1).await;
    publish(&factory, true, Some(avc()), 1000, epoch);
    assert_eq!(seqs(&within(&mut video, SECS(1)).await), [1]);
    // The operator points the stream at a JPEG source: the socket cannot carry it.
    hub.reconfigure(
        hub.info(),
        Arc::clone(&factory) as Arc<dyn camgate::hub::SourceFactory>,
    )
    .await;
    assert!(factory.sink().publish(&jpeg(2000), 8, 8, 0));
    assert_eq!(closed_with(&mut video, SECS(5)).await, Some(4006));
    // Reconnecting with auto negotiates again: JPEG now.
    let mut again = connect(addr, "/ws/streams/cam?format=auto").await;
    let hello = next_event(&mut again, SECS(5)).await;
    assert_eq!(
        (hello["codec"].as_str(), hello["format"].as_str()),
        (Some("jpeg"), Some("mjpeg"))
    );
    gateway.shutdown().await;
}

/// Sends `{"type":"credit","frames":N}`.
async fn grant(ws: &mut Client, frames: u32) {
    use futures_util::SinkExt;
    let text = format!(r#"{{"type":"credit","frames":{frames}}}"#);
    ws.send(Message::text(text)).await.unwrap();
}

/// `camgate_frames_dropped_total` of stream `cam`.
fn dropped_total(gateway: &Gateway) -> String {
    let metrics = gateway.state().metrics.render();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("camgate_frames_dropped_total{stream=\"cam\"} "))
        .unwrap_or("0")
        .to_owned()
}

#[tokio::test(start_paused = true)]
async fn a_video_viewer_on_credit_gets_what_it_grants_a_gop_for_one_and_resumes_at_a_keyframe() {
    let (gateway, hub, factory) = gateway().await;
    let addr = gateway.local_addr();
    let epoch = Instant::now();
    let mut ws = connect(addr, "/ws/streams/cam?format=h264&credit=0").await;
    manual_viewers(&hub, &factory, 1).await;
    next_hello(&mut ws, SECS(5)).await;
    publish(&factory, true, Some(avc()), 4000, epoch);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        publish(&factory, false, None, 500, epoch);
    }
    // No credit: no frame (and no config, which only comes with a frame); status still does.
    let got = within(&mut ws, SECS(1)).await;
    assert!(seqs(&got).is_empty(), "{:?}", types(&got));

    // Any credit buys the latest picture: the config and the whole GOP it takes to decode,
    // each frame spending one, below zero (1 - 4 = -3).
    grant(&mut ws, 1).await;
    let got = within(&mut ws, SECS(1)).await;
    assert_eq!(types(&got), ["config", "frame", "frame", "frame", "frame"]);
    assert_eq!(seqs(&got), [1, 2, 3, 4]);

    // In order, one credit per frame: what it grants, no more; the rest wait for it. Its
    // first three credits pay for the GOP.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        publish(&factory, false, None, 500, epoch);
    }
    assert!(seqs(&within(&mut ws, SECS(1)).await).is_empty());
    grant(&mut ws, 3).await;
    assert!(seqs(&within(&mut ws, SECS(1)).await).is_empty(), "owed");
    grant(&mut ws, 2).await;
    assert_eq!(seqs(&within(&mut ws, SECS(1)).await), [5, 6]);
    grant(&mut ws, 1).await;
    assert_eq!(seqs(&within(&mut ws, SECS(1)).await), [7]);
    grant(&mut ws, 3).await;
    publish(&factory, false, None, 500, epoch);
    assert_eq!(
        seqs(&within(&mut ws, SECS(1)).await),
        [8],
        "credit left: at once"
    );

    // The two credits left go to the next two frames; then it withholds for two seconds:
    // too far behind to continue in order, it resumes at the next keyframe, and what it
    // passed over was its choice, not dropped.
    publish(&factory, false, None, 500, epoch);
    publish(&factory, false, None, 500, epoch);
    assert_eq!(seqs(&within(&mut ws, SECS(1)).await), [9, 10]);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        publish(&factory, false, None, 500, epoch);
    }
    assert!(seqs(&within(&mut ws, SECS(1)).await).is_empty());
    grant(&mut ws, 5).await;
    let got = within(&mut ws, SECS(1)).await;
    assert!(seqs(&got).is_empty(), "no keyframe yet: {:?}", seqs(&got));
    publish(&factory, true, None, 4000, epoch);
    publish(&factory, false, None, 500, epoch);
    let got = within(&mut ws, SECS(1)).await;
    assert_eq!(seqs(&got), [31, 32], "the new GOP");
    assert!(
        !types(&got).contains(&"dropped".to_owned()),
        "withheld, not dropped: {:?}",
        types(&got)
    );
    assert_eq!(dropped_total(&gateway), "0");
    gateway.shutdown().await;
}
