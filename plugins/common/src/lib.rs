//! What Camgate's camera plugins (`ffmpeg-mjpeg`, `rtsp`) share, so that both supervise a
//! camera the same way and no rule is written twice:
//! - [`camera`]: the camera URL and its credentials (checks, the display form without
//!   secrets, [`camera::scrub`]), the RTSP transport option, durations written as text;
//! - [`backoff`]: restart delays, exponential with equal jitter;
//! - [`retry`]: the wait between two attempts, cut short when the camera's port answers
//!   again;
//! - [`ratelimit`]: one log line per interval for recurring events.
//!
//! Invariants: no `unsafe`; nothing here logs or reports by itself — the plugins do, with
//! text passed through [`camera::scrub`].

#![forbid(unsafe_code)]

pub mod backoff;
pub mod camera;
pub mod ratelimit;
pub mod retry;
