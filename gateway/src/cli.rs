//! The command line (`camgate run | check | plugins`). Names are part of the product's
//! interface: keep them stable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

/// Camgate: watch RTSP cameras in a web browser.
///
/// Reads a YAML stream manifest, runs one source per stream through plugins (ffmpeg for
/// RTSP cameras, testsrc for a synthetic picture) and serves live MJPEG over WebSocket and
/// HTTP. Logs go to stderr; set CAMGATE_LOG=debug for more.
#[derive(Debug, Parser)]
#[command(name = "camgate", version, about, long_about)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "CAMGATE_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the streams of a manifest until SIGTERM/SIGINT.
    Run {
        /// The stream manifest (YAML).
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Listen on this address instead of the manifest's `server.listen`.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Validate a manifest: print every problem with file:line:column and exit 1 if any.
    Check {
        /// The stream manifest (YAML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// List built-in and loaded plugins with their versions and ABI.
    Plugins {
        /// Also load the plugins folder named by this manifest's `plugins.dir`.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}
