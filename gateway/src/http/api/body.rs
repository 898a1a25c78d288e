//! Request bodies and API errors: JSON bodies read with a size limit and a time limit, and
//! the error type every API handler returns, rendered as
//! `{"error": {"code", "message", "field"?}}`.
//!
//! Invariants: a body is only read when declared `application/json` (415 otherwise; the
//! router checks state-changing requests the same way before authentication), and the
//! whole body must arrive within the connection's body timeout (408), so a client that
//! announces a body and stalls cannot hold a connection and a handler forever.

use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::ConnectionGuard;
use crate::http::response::{self, Body};

/// Largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Body timeout for requests that did not come through the server (its connections carry
/// their own, `ConnectionLimits::body_timeout`).
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an API request failed.
#[derive(Debug)]
pub enum ApiError {
    /// Not JSON, or not readable: 400.
    Malformed(String),
    /// Over [`MAX_BODY_BYTES`]: 413.
    TooLarge,
    /// Not declared `application/json`: 415.
    UnsupportedMediaType,
    /// The body did not arrive within the body timeout: 408.
    BodyTimeout(Duration),
    /// Valid JSON with a wrong value: 422, with the field when known.
    Invalid {
        /// The field path (`id`, `source.url`), if known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A group field breaks a rule: 400 `invalid_group`, naming the field.
    InvalidGroup {
        /// The field (`id`, `name`, `streams`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The stream does not exist: 404.
    NotFound(String),
    /// The change conflicts with the current state: 409 (with the field when one is to
    /// blame, e.g. an `id` that exists).
    Conflict {
        /// The field path, if one is to blame.
        field: Option<String>,
        /// What conflicts.
        message: String,
    },
    /// The gateway failed: 500.
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// A validation error about `field`.
    pub fn invalid(field: &str, message: &str) -> Self {
        ApiError::Invalid {
            field: Some(field.to_owned()),
            message: message.to_owned(),
        }
    }

    /// An internal error (logged).
    pub fn internal(message: &str) -> Self {
        tracing::error!(error = message, "API request failed");
        ApiError::Internal(message.to_owned())
    }

    /// The JSON error response.
    pub fn into_response(self) -> Response<Body> {
        let (status, code, message, field) = match &self {
            ApiError::Malformed(m) => (
                StatusCode::BAD_REQUEST,
                "malformed_request",
                m.clone(),
                None,
            ),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body over {MAX_BODY_BYTES} bytes"),
                None,
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body with `Content-Type: application/json`".to_owned(),
                None,
            ),
            ApiError::BodyTimeout(limit) => (
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    limit.as_secs_f64()
                ),
                None,
            ),
            ApiError::Invalid { field, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stream",
                message.clone(),
                field.as_deref(),
            ),
            ApiError::InvalidGroup { field, message } => (
                StatusCode::BAD_REQUEST,
                "invalid_group",
                message.clone(),
                Some(field.as_str()),
            ),
            ApiError::NotFound(id) => (
                StatusCode::NOT_FOUND,
                "stream_not_found",
                format!("no stream with id `{id}`"),
                None,
            ),
            ApiError::Conflict { field, message } => (
                StatusCode::CONFLICT,
                "conflict",
                message.clone(),
                field.as_deref(),
            ),
            ApiError::Internal(m) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                m.clone(),
                None,
            ),
        };
        let body = ErrorBody {
            error: Detail {
                code,
                message: &message,
                field,
            },
        };
        let mut response = response::json(status, &body);
        if matches!(self, ApiError::BodyTimeout(_)) {
            // The rest of the body may still come: never read it as the next request.
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// Reads a JSON body of at most [`MAX_BODY_BYTES`] into `T`, within the connection's body
/// timeout. A body not declared `application/json` is 415, a late one 408; syntax errors
/// are 400; type errors and unknown fields are 422 naming the field.
pub async fn read_json<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, ApiError> {
    if !crate::http::guard::is_json(req.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let timeout = req
        .extensions()
        .get::<ConnectionGuard>()
        .map_or(DEFAULT_BODY_TIMEOUT, ConnectionGuard::body_timeout);
    let collected = tokio::time::timeout(
        timeout,
        Limited::new(req.into_body(), MAX_BODY_BYTES).collect(),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout(timeout))?;
    let bytes = collected
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::TooLarge
            } else {
                ApiError::Malformed(format!("cannot read the body: {e}"))
            }
        })?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => {
                let text = e.to_string();
                let message = text
                    .rfind(" at line ")
                    .map(|i| text[..i].to_owned())
                    .unwrap_or(text);
                let field = message
                    .strip_prefix("unknown field `")
                    .and_then(|rest| rest.split('`').next())
                    .map(str::to_owned);
                ApiError::Invalid { field, message }
            }
            _ => ApiError::Malformed(format!("malformed JSON: {e}")),
        }
    })
}
