//! The per-viewer frame cursor shared by the WebSocket and MJPEG transports: waits for the
//! hub's newest frame, applies the viewer's `max_fps`, and counts the frames the viewer
//! skipped because it was slower than the source.
//!
//! Invariant: it only ever holds the newest frame (latest frame wins); skips requested by a
//! rate limit, or by a viewer that asked for nothing more (WebSocket credit), are not
//! counted as drops.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::hub::Frame;

/// Reads the `max_fps` query parameter (a per-viewer rate cap, e.g. for grid thumbnails).
/// Other parameters are ignored here (the auth token, future options).
pub fn parse_max_fps(query: Option<&str>) -> Result<Option<f64>, String> {
    let Some(value) = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("max_fps="))
    else {
        return Ok(None);
    };
    value
        .parse()
        .ok()
        .filter(|f: &f64| f.is_finite() && *f > 0.0 && *f <= 120.0)
        .map(Some)
        .ok_or_else(|| format!("max_fps must be a number > 0 and <= 120, got {value:?}"))
}

/// Where a viewer is in a hub's frame sequence.
pub struct FramePacer {
    min_gap: Option<Duration>,
    next_allowed: Instant,
    last_seq: Option<u64>,
    /// Frames up to this one were withheld because the viewer asked for none.
    withheld_through: Option<u64>,
}

/// A frame to send and how many frames the viewer missed before it (not counting frames
/// skipped on purpose by `max_fps`).
pub struct Next {
    /// The newest frame.
    pub frame: Frame,
    /// Frames skipped because the viewer was too slow.
    pub dropped: u64,
}

impl FramePacer {
    /// A cursor delivering at most `max_fps` frames per second (unlimited when `None`).
    pub fn new(max_fps: Option<f64>) -> Self {
        FramePacer {
            min_gap: max_fps.map(|fps| Duration::from_secs_f64(1.0 / fps)),
            next_allowed: Instant::now(),
            last_seq: None,
            withheld_through: None,
        }
    }

    /// Whether `max_fps` limits this viewer.
    pub fn is_paced(&self) -> bool {
        self.min_gap.is_some()
    }

    /// The last frame handed out, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// Records that frames up to `last_seq` reached the viewer another way (the WebSocket
    /// direct lane), so the next frame's drop count starts there.
    pub fn sent_elsewhere(&mut self, last_seq: Option<u64>) {
        if let Some(seq) = last_seq {
            self.last_seq = Some(self.last_seq.map_or(seq, |last| last.max(seq)));
        }
    }

    /// Records that the viewer asked for no frames until now, so frames up to
    /// `through` (the hub's latest) were withheld on purpose, not dropped.
    pub fn withheld_through(&mut self, through: Option<u64>) {
        if let Some(seq) = through {
            self.withheld_through = Some(self.withheld_through.map_or(seq, |w| w.max(seq)));
        }
    }

    /// The current frame, if the hub has one and the viewer has not seen it (used to greet
    /// a new viewer without waiting for the next frame).
    pub fn current(&mut self, frames: &mut watch::Receiver<Option<Frame>>) -> Option<Next> {
        let frame = frames.borrow_and_update().clone()?;
        self.accept(frame)
    }

    /// Waits for the next frame to send. `None` when the hub is gone.
    pub async fn next(&mut self, frames: &mut watch::Receiver<Option<Frame>>) -> Option<Next> {
        loop {
            frames.changed().await.ok()?;
            if self.min_gap.is_some() {
                tokio::time::sleep_until(self.next_allowed).await;
            }
            if let Some(next) = self.current(frames) {
                return Some(next);
            }
        }
    }

    fn accept(&mut self, frame: Frame) -> Option<Next> {
        let dropped = match self.last_seq {
            Some(last) if frame.seq <= last => return None,
            Some(last) if self.min_gap.is_none() => {
                let from = last.max(self.withheld_through.unwrap_or(0));
                frame.seq.saturating_sub(from + 1)
            }
            _ => 0,
        };
        self.last_seq = Some(frame.seq);
        if let Some(gap) = self.min_gap {
            self.next_allowed = Instant::now() + gap;
        }
        Some(Next { frame, dropped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_fps_is_validated() {
        assert_eq!(parse_max_fps(Some("max_fps=2")), Ok(Some(2.0)));
        assert_eq!(parse_max_fps(Some("a=1&max_fps=0.5")), Ok(Some(0.5)));
        assert!(parse_max_fps(Some("max_fps=0")).is_err());
        assert!(parse_max_fps(Some("max_fps=abc")).is_err());
        assert!(parse_max_fps(Some("max_fps=NaN")).is_err());
        assert_eq!(parse_max_fps(Some("access_token=x")), Ok(None));
        assert_eq!(parse_max_fps(None), Ok(None));
    }
}
