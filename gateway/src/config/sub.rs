//! A stream's `sub:` mapping: the low-resolution variant grid tiles play.
//!
//! Exactly one of two forms:
//! - `sub: { url: rtsp://cam/102 }` — the camera's own sub-stream: the same plugin and
//!   source options as `source:` with `url` replaced (a second camera session). Only for
//!   sources that take a `url` (a `testsrc` has none: an error at the `url` key);
//! - `sub: { width: 640, height: 360, quality: 5, fps: 10 }` — an MJPEG derived inside the
//!   gateway from the main stream's frames (`height` optional: the aspect ratio is kept;
//!   `quality` is ffmpeg's qscale, 2 best … 31 worst, default 5; `fps` optional: at most
//!   this many pictures a second, default the main's full rate). Sizes are even (the JPEG encoder's
//!   4:2:0 chroma) and at most [`MAX_SUB_SIDE`].
//!
//! Invariants: every problem is an error at the position of the offending key or value
//! (structure here, the `url` rules in `validate.rs`, which knows the main source); a URL
//! is never echoed (it may hold a password).

use super::error::Location;
use super::model::SourceConfig;
use super::node::{Node, Value};
use super::parse::{Ctx, Str};

/// The keys of `sub:`.
pub(crate) const SUB_KEYS: &[&str] = &["url", "width", "height", "quality", "fps"];

/// Largest derived width or height: beyond 8K it is no longer a sub-stream.
pub const MAX_SUB_SIDE: u32 = 7680;
/// Smallest derived width or height.
pub const MIN_SUB_SIDE: u32 = 16;
/// Default JPEG quality (ffmpeg qscale) of a derived sub.
pub const DEFAULT_SUB_QUALITY: u8 = 5;
/// Highest `fps` a derived sub may ask for (no camera sends more).
pub const MAX_SUB_FPS: u32 = 120;

/// A stream's validated `sub:`.
#[derive(Debug, Clone, PartialEq)]
pub enum SubConfig {
    /// The camera's own sub-stream: the main source's plugin and options, `url` replaced.
    Url(SourceConfig),
    /// A low-resolution MJPEG made in the gateway from the main stream's frames.
    Derived(DerivedSub),
}

/// The size and quality of a derived sub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DerivedSub {
    /// Output width in pixels (even).
    pub width: u32,
    /// Output height in pixels (even); `None`: from the main picture's aspect ratio.
    pub height: Option<u32>,
    /// ffmpeg's `-q:v` (2 best … 31 worst).
    pub quality: u8,
    /// At most this many pictures a second (by capture time); `None`: every main frame.
    /// MJPEG costs bytes per picture, so this is the knob for a wall on a thin link.
    pub fps: Option<u32>,
}

/// `sub:` after the structural pass.
#[derive(Debug)]
pub(crate) enum SubDraft {
    /// `url:`; the main source's rules are checked in `validate.rs`.
    Url {
        /// The substituted URL and its position.
        url: Str,
        /// Position of the `sub:` key.
        location: Location,
    },
    /// `width:` (+ `height:`, `quality:`), already checked.
    Derived(DerivedSub),
}

impl Ctx<'_> {
    /// Reads `sub:`; `None` after an error (recorded) or for `sub: null`.
    pub(super) fn sub(&mut self, key_node: &Node, node: &Node) -> Option<SubDraft> {
        let entries = self.mapping(node, "`sub`")?;
        let location = self.loc(key_node);
        let mut url = None;
        let mut url_node = None;
        let mut width = None;
        let mut height = None;
        let mut quality = DEFAULT_SUB_QUALITY;
        let mut fps = None;
        let mut size_node = None;
        let errors_before = self.errors.len();
        for (key, key_node, value) in self.keys(entries, "in `sub`", SUB_KEYS) {
            match key {
                "url" => {
                    url_node = Some(key_node);
                    url = self.string(value, "url");
                }
                "width" | "height" => {
                    size_node.get_or_insert(key_node);
                    let side = self.even_side(value, key);
                    if key == "width" {
                        width = side;
                    } else {
                        height = side;
                    }
                }
                "quality" => {
                    size_node.get_or_insert(key_node);
                    if let Some(q) = self.integer_in(value, "quality", 2, 31) {
                        quality = q as u8;
                    }
                }
                "fps" => {
                    size_node.get_or_insert(key_node);
                    fps = self
                        .integer_in(value, "fps", 1, MAX_SUB_FPS.into())
                        .and_then(|n| u32::try_from(n).ok());
                }
                _ => unreachable!("keys() only yields allowed keys"),
            }
        }
        match (url_node, size_node) {
            (Some(_), Some(size)) => {
                self.error(
                    size,
                    "`sub` takes either `url` (the camera's own sub-stream) or `width` (with optional `height`, `quality` and `fps`: derived in the gateway), not both",
                );
                None
            }
            (Some(_), None) => url.map(|url| SubDraft::Url { url, location }),
            (None, Some(_)) => match width {
                Some(width) if self.errors.len() == errors_before => {
                    Some(SubDraft::Derived(DerivedSub {
                        width,
                        height,
                        quality,
                        fps,
                    }))
                }
                Some(_) => None,
                None => {
                    if self.errors.len() == errors_before {
                        self.error(
                            node,
                            "`sub` is missing `width` (the derived picture's width in pixels, e.g. 640)",
                        );
                    }
                    None
                }
            },
            (None, None) => {
                self.error(
                    node,
                    "`sub` needs `url` (the camera's own sub-stream) or `width` (derived in the gateway, e.g. `width: 640`)",
                );
                None
            }
        }
    }

    /// An even integer in `MIN_SUB_SIDE..=MAX_SUB_SIDE`.
    fn even_side(&mut self, node: &Node, what: &str) -> Option<u32> {
        let side = self.integer_in(node, what, MIN_SUB_SIDE.into(), MAX_SUB_SIDE.into())?;
        if side % 2 != 0 {
            self.error(
                node,
                format!("`{what}` must be an even number of pixels, found {side}"),
            );
            return None;
        }
        u32::try_from(side).ok()
    }

    /// An integer in `min..=max`, or an error naming the range.
    fn integer_in(&mut self, node: &Node, what: &str, min: i64, max: i64) -> Option<i64> {
        let number = match node.value {
            Value::Int(n) => Some(n),
            Value::UInt(n) => Some(i64::try_from(n).unwrap_or(i64::MAX)),
            _ => None,
        };
        let Some(number) = number else {
            self.error(
                node,
                format!(
                    "`{what}` must be an integer from {min} to {max}, found {}",
                    node.value.kind()
                ),
            );
            return None;
        };
        self.within(node, what, number, min, max)
    }
}
