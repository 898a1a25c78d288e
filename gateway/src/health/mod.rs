//! Picture health: is each camera *working*, not only connected?
//!
//! Operators of camera fleets find a tenth or more of their cameras online but useless:
//! frozen, black, covered or late. This module watches every live stream about once a
//! second and records a verdict in its hub — `ok`, `frozen`, `dark`, `late`, or `unknown`
//! while there is nothing to judge — which the API (`health`, `health_since`), the
//! viewing protocol and the metric `camgate_stream_health` report.
//!
//! - [`thumbnail`]: a picture reduced to a 96 × 54 grid of luma means (cheap, noise-robust);
//! - [`judge`]: the rules that turn samples into a verdict (pure, paused-clock tested);
//! - [`keyframes`]: thumbnails of passthrough streams, from their keyframes;
//! - [`monitor`]: the task per stream that samples and records.
//!
//! Dependency direction: this module reads hubs and writes their verdict; the hub knows
//! only the verdict and the thresholds (`hub::PictureHealth`, `hub::HealthRules`), and the
//! server starts one monitor per hub.

pub mod judge;
pub mod keyframes;
pub mod monitor;
pub mod thumbnail;

pub use monitor::{MonitorOptions, spawn};
