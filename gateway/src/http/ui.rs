//! The browser viewer: the React app built into `ui/dist`, embedded in release binaries
//! (debug builds read the folder at run time, so a rebuilt UI shows without recompiling).
//!
//! Invariants: hashed assets under `/assets/` are cached for a year (their names change
//! with their content); `index.html` is never cached, so an upgrade shows at once. Any
//! other path without a file extension is an SPA route and gets `index.html`. When no UI
//! was built, `/` serves the small built-in viewer page instead.

use http::{HeaderValue, Response, StatusCode, header};
use rust_embed::RustEmbed;

use super::response::{self, Body};
use super::viewer_page;

#[derive(RustEmbed)]
#[folder = "../ui/dist/"]
#[allow_missing = true]
struct Assets;

fn asset(path: &str, cache: &'static str) -> Option<Response<Body>> {
    let file = Assets::get(path)?;
    let mime = file.metadata.mimetype().to_owned();
    let mut response = Response::new(response::full(file.data.into_owned()));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(response)
}

fn index() -> Response<Body> {
    asset("index.html", "no-cache").unwrap_or_else(viewer_page::index)
}

/// Serves a UI path (everything that is not `/api`, `/ws` or an operational endpoint).
pub fn serve(path: &str) -> Response<Body> {
    let relative = path.trim_start_matches('/');
    if relative.is_empty() || relative == "index.html" {
        return index();
    }
    if relative
        .split('/')
        .any(|segment| segment == ".." || segment.starts_with('.'))
    {
        return response::error(StatusCode::NOT_FOUND, "not_found", "no such file");
    }
    let cache = if relative.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    if let Some(response) = asset(relative, cache) {
        return response;
    }
    let last = relative.rsplit('/').next().unwrap_or(relative);
    if last.contains('.') {
        response::error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no file {path}"),
        )
    } else {
        index()
    }
}
