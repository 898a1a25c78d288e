//! The `variant` query parameter of the media routes (`/ws/streams/{id}`,
//! `/api/streams/{id}/mjpeg`, `/api/streams/{id}/snapshot.jpg`): which of a stream's picture
//! streams to serve, `main` (default) or `sub`.
//!
//! Invariants: an unknown value is a 400 `bad_query`; `sub` on a stream without one is a 404
//! `no_such_variant` naming the stream (answered after access was checked, like an unknown
//! stream, so allow-lists reveal nothing).

use http::{Response, StatusCode};

use super::response::{self, Body};
use crate::hub::{BadVariant, Variant};

/// Reads `variant=` (absent: `main`). Other parameters are ignored here.
pub fn parse_variant(query: Option<&str>) -> Result<Variant, BadVariant> {
    match query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("variant="))
    {
        None => Ok(Variant::Main),
        Some(value) => Variant::parse(value),
    }
}

/// 404 for a variant stream `id` does not offer.
pub fn no_such_variant(id: &str, variant: Variant) -> Response<Body> {
    response::error(
        StatusCode::NOT_FOUND,
        "no_such_variant",
        &format!("stream `{id}` has no `{variant}` variant"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_variant_among_other_parameters() {
        assert_eq!(parse_variant(None), Ok(Variant::Main));
        assert_eq!(parse_variant(Some("max_fps=5")), Ok(Variant::Main));
        assert_eq!(
            parse_variant(Some("access_token=x&variant=sub")),
            Ok(Variant::Sub)
        );
        assert_eq!(parse_variant(Some("variant=main")), Ok(Variant::Main));
        assert_eq!(parse_variant(Some("variant=")), Err(BadVariant));
        assert_eq!(parse_variant(Some("variant=hd")), Err(BadVariant));
    }
}
