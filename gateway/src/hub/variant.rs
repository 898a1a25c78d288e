//! Which picture stream of a camera a hub carries: the `main` one, or the low-resolution
//! `sub` that grid tiles play.
//!
//! Invariant: one picture stream per hub. A stream with a sub has two hubs under one id
//! (the registry keeps them apart, `registry.rs`); each has its own source, viewers, limit
//! and metrics (`stream="<id>/sub"`).

use std::fmt;

/// A stream's variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Variant {
    /// The stream as configured in `source:` (the default).
    #[default]
    Main,
    /// The low-resolution variant (`sub:`).
    Sub,
}

/// A `variant` value that names no variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("variant must be main or sub")]
pub struct BadVariant;

impl Variant {
    /// The name in URLs, JSON and `hello`.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Main => "main",
            Variant::Sub => "sub",
        }
    }

    /// Parses a `variant` value (`main`, `sub`).
    pub fn parse(value: &str) -> Result<Variant, BadVariant> {
        match value {
            "main" => Ok(Variant::Main),
            "sub" => Ok(Variant::Sub),
            _ => Err(BadVariant),
        }
    }

    /// The label a hub of stream `id` in this variant has in metrics and logs: the id for
    /// `main`, `<id>/sub` for `sub` (a `/` never occurs in ids).
    pub fn label(self, id: &str) -> String {
        match self {
            Variant::Main => id.to_owned(),
            Variant::Sub => format!("{id}/sub"),
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for variant in [Variant::Main, Variant::Sub] {
            assert_eq!(Variant::parse(variant.as_str()), Ok(variant));
        }
        assert_eq!(Variant::parse("SUB"), Err(BadVariant));
        assert_eq!(Variant::parse(""), Err(BadVariant));
        assert_eq!(Variant::Sub.label("front"), "front/sub");
        assert_eq!(Variant::Main.label("front"), "front");
    }
}
