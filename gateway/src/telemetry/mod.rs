//! Observability: logging setup (tracing) and the Prometheus metrics ([`Metrics`]).
//!
//! Logging: text for people, JSON for log pipelines; the level comes from
//! `CAMGATE_LOG` (an `EnvFilter` directive such as `info` or `camgate=debug`).

use tracing_subscriber::EnvFilter;

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. Safe to call once per process.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("CAMGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Err(e) = result {
        eprintln!("camgate: logging already initialised: {e}");
    }
}

mod log_budget;
mod metrics;

pub use log_budget::LogBudget;
pub use metrics::{
    Family, Handover, Metrics, ShownReport, StreamTelemetry, Transport, ViewerTelemetry,
};
