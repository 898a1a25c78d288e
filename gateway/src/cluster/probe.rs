//! Asks one member whether it is ready, and what it calls itself: `GET /readyz`.
//!
//! A member is ready when it answers 200 with a JSON body whose `node` is its name. The
//! answer is bounded (a member is not trusted to send a small body: at most
//! [`MAX_BODY`] bytes are read) and the whole exchange has a deadline, so a hung member
//! costs one timeout per round, never a stuck prober.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Largest `/readyz` answer read.
pub const MAX_BODY: usize = 16 * 1024;

/// Why a member did not count as ready.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    /// Nothing listens there (the process is gone): no need to wait for a second failure.
    #[error("connection refused")]
    Refused,
    /// No answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting or the HTTP exchange failed.
    #[error("{0}")]
    Io(String),
    /// It answered, but not ready (503 while starting or shutting down).
    #[error("answered {0}")]
    Status(u16),
    /// The answer was not `{"node": "<name>", ...}`.
    #[error("the answer does not name the node")]
    NoName,
}

impl ProbeError {
    /// `true` when the member is certainly down (count it out at once).
    pub fn is_final(&self) -> bool {
        matches!(self, ProbeError::Refused)
    }
}

/// Asks `authority` (`host:port`) for `/readyz`; its node name when ready.
pub async fn readyz(authority: &str, deadline: Duration) -> Result<String, ProbeError> {
    match tokio::time::timeout(deadline, exchange(authority)).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Timeout(deadline)),
    }
}

async fn exchange(authority: &str) -> Result<String, ProbeError> {
    let stream = TcpStream::connect(authority).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            ProbeError::Refused
        } else {
            ProbeError::Io(e.to_string())
        }
    })?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ProbeError::Io(e.to_string()))?;
    // The connection ends with the exchange (dropped with `sender` or when the task ends).
    let driver = tokio::spawn(connection);
    let request = http::Request::get("/readyz")
        .header(http::header::HOST, authority)
        .header(http::header::USER_AGENT, "camgate-cluster-probe")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ProbeError::Io(e.to_string()))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| ProbeError::Io(e.to_string()))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| ProbeError::Io(e.to_string()))?
            .to_bytes();
        if status != http::StatusCode::OK {
            return Err(ProbeError::Status(status.as_u16()));
        }
        node_name(&body).ok_or(ProbeError::NoName)
    }
    .await;
    driver.abort();
    result
}

/// The `node` of a `/readyz` answer.
pub fn node_name(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Ready {
        node: String,
    }
    serde_json::from_slice::<Ready>(body)
        .ok()
        .map(|r| r.node)
        .filter(|n| !n.is_empty() && n.len() <= crate::config::MAX_NODE_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_names_the_node() {
        assert_eq!(
            node_name(br#"{"status":"ready","node":"b","streams":3}"#).as_deref(),
            Some("b")
        );
        assert_eq!(node_name(br#"{"status":"ready"}"#), None);
        assert_eq!(node_name(br#"{"node":""}"#), None);
        assert_eq!(node_name(b"not json"), None);
        let long = format!(r#"{{"node":"{}"}}"#, "x".repeat(64));
        assert_eq!(node_name(long.as_bytes()), None);
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = readyz(&addr.to_string(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err, ProbeError::Refused);
        assert!(err.is_final());
    }
}
