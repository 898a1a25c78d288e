//! A stream's picture health as users see it: is the camera *working*, not only online?
//!
//! The hub only keeps the verdict (a `watch`, so viewers hear each change and the API reads
//! the latest); the gateway's health monitor (`crate::health`) samples pictures and decides
//! it. Invariant: while the source is not live the health is [`PictureHealth::Unknown`] —
//! the hub enforces that itself on every status change, so a stopped stream can never keep
//! reporting `ok` from its last session.

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// The picture's health (API `health`, metric label `health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PictureHealth {
    /// Frames arrive on time and the picture changes and is not dark.
    Ok,
    /// Frames keep arriving but the picture has not changed.
    Frozen,
    /// The picture is black or uniform.
    Dark,
    /// Frames are old or arrive well below the configured rate.
    Late,
    /// Nothing to judge: no frames yet, or the source is not running.
    Unknown,
}

impl PictureHealth {
    /// Every value, in the order metrics and docs list them.
    pub const ALL: [PictureHealth; 5] = [
        PictureHealth::Ok,
        PictureHealth::Frozen,
        PictureHealth::Dark,
        PictureHealth::Late,
        PictureHealth::Unknown,
    ];

    /// The name used in JSON, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            PictureHealth::Ok => "ok",
            PictureHealth::Frozen => "frozen",
            PictureHealth::Dark => "dark",
            PictureHealth::Late => "late",
            PictureHealth::Unknown => "unknown",
        }
    }
}

/// The health with the moment it began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthStatus {
    /// Current verdict.
    pub health: PictureHealth,
    /// When this verdict began (API `health_since`).
    pub since: SystemTime,
}

impl HealthStatus {
    /// `health` beginning now.
    pub fn now(health: PictureHealth) -> Self {
        HealthStatus {
            health,
            since: SystemTime::now(),
        }
    }
}

/// The thresholds a stream's picture is judged by (manifest `health_rules:`; documented in
/// `docs/configuration.md`). The hub only carries them, in [`super::StreamInfo`], so a
/// reload that changes them reaches the monitor like any other stream fact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthRules {
    /// `false`: the stream's health is always `unknown` (a camera that is meant to look
    /// at a dark room, say).
    pub enabled: bool,
    /// The picture has not changed for this long while frames arrive: `frozen`.
    pub frozen_after: Duration,
    /// The picture has been dark or uniform for this long: `dark`.
    pub dark_after: Duration,
    /// Mean luma (0–255) at or below which a picture is dark.
    pub dark_luma: f64,
    /// The newest frame is older than this, or the measured rate has been below
    /// `min_fps_ratio` × the configured fps for this long: `late`.
    pub late_after: Duration,
    /// Share of the configured frame rate below which frames count as late (only for
    /// streams that configure an fps).
    pub min_fps_ratio: f64,
}

impl HealthRules {
    /// The defaults: ten seconds of a still or dark picture, three seconds without a
    /// frame or at under half the configured rate.
    pub const DEFAULT: HealthRules = HealthRules {
        enabled: true,
        frozen_after: Duration::from_secs(10),
        dark_after: Duration::from_secs(10),
        dark_luma: 20.0,
        late_after: Duration::from_secs(3),
        min_fps_ratio: 0.5,
    };
}

impl Default for HealthRules {
    fn default() -> Self {
        Self::DEFAULT
    }
}
