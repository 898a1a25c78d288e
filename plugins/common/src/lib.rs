//! What Camgate's supervised source plugins (`ffmpeg-mjpeg`, `rtsp`, `relay`) share, so
//! that they supervise a source the same way and no rule is written twice:
//! - [`camera`]: the camera URL and its credentials (checks, the display form without
//!   secrets, [`camera::scrub`]), the RTSP transport option, durations written as text;
//! - [`backoff`]: restart delays, exponential with equal jitter;
//! - [`retry`]: the wait between two attempts, cut short when the camera's port answers
//!   again;
//! - [`lookup`]: a host-name lookup that never holds its caller past a bound (the probe's);
//! - [`ratelimit`]: one log line per interval for recurring events;
//! - [`run`]: what one connection attempt achieved (frames, last frame, time live).
//!
//! Invariants: no `unsafe`; nothing here logs or reports by itself — the plugins do, with
//! text passed through [`camera::scrub`].

#![forbid(unsafe_code)]

pub mod backoff;
pub mod camera;
pub mod lookup;
pub mod ratelimit;
pub mod retry;
pub mod run;
#[cfg(feature = "tokio")]
pub mod runtime;
