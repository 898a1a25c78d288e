//! The `camgate` binary: parses the command line and runs the chosen command.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{Signal, SignalKind, signal};

use camgate::app::{Gateway, GatewayOptions};
use camgate::cli::{Cli, Command};
use camgate::config::{self, AnySource, ConfigErrors, LoadedConfig};
use camgate::plugins::PluginCatalog;
use camgate::reload::Cause;
use camgate::telemetry;

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Run { config, listen } => run(&config, listen),
        Command::Check { file } => check(&file),
        Command::Plugins { config } => plugins(config.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("camgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the plugin catalog for `manifest_path` (built-ins plus its `plugins.dir`) and
/// validates the manifest and its API-managed streams file against it. Plugin load
/// problems are returned as text.
fn catalog_and_manifest(
    manifest_path: &Path,
) -> (
    PluginCatalog,
    Vec<String>,
    Result<LoadedConfig, ConfigErrors>,
) {
    let mut catalog = PluginCatalog::with_builtins();
    let mut plugin_problems = Vec::new();
    if let Ok(first_pass) = config::load(manifest_path, &config::process_env, &AnySource)
        && let Some(dir) = &first_pass.plugins.dir
    {
        plugin_problems = catalog
            .load_dir(dir)
            .into_iter()
            .map(|e| e.to_string())
            .collect();
    }
    let manifest = config::load_with_api_file(manifest_path, &config::process_env, &catalog);
    (catalog, plugin_problems, manifest)
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let (_catalog, plugin_problems, manifest) = catalog_and_manifest(path);
    for problem in &plugin_problems {
        eprintln!("warning: {problem}");
    }
    match manifest {
        Ok(loaded) => {
            let count = loaded.manifest.streams.len();
            println!(
                "{}: OK ({count} stream{})",
                path.display(),
                if count == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}: {} problem{}",
                path.display(),
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn plugins(config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (catalog, problems) = match config_path {
        Some(path) => {
            let (catalog, problems, _manifest) = catalog_and_manifest(path);
            (catalog, problems)
        }
        None => (PluginCatalog::with_builtins(), Vec::new()),
    };
    println!(
        "{:<16} {:<10} {:<4} {:<24} DESCRIPTION",
        "NAME", "VERSION", "ABI", "ORIGIN"
    );
    for plugin in catalog.descriptors() {
        println!(
            "{:<16} {:<10} v{:<3} {:<24} {}",
            plugin.name,
            plugin.version,
            plugin.abi_version,
            plugin.origin.to_string(),
            plugin.description
        );
    }
    for problem in &problems {
        eprintln!("error: {problem}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run(path: &Path, listen: Option<std::net::SocketAddr>) -> anyhow::Result<ExitCode> {
    let (catalog, plugin_problems, manifest) = catalog_and_manifest(path);
    for problem in &plugin_problems {
        tracing::error!("{problem}");
    }
    let manifest = match manifest {
        Ok(manifest) => manifest,
        Err(errors) => {
            eprintln!("{errors}");
            anyhow::bail!(
                "{} is not a valid manifest ({} problem{}); `camgate check` validates it",
                path.display(),
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" }
            );
        }
    };
    let addr = listen.unwrap_or(manifest.manifest.server.listen);
    camgate::app::check_exposure(addr, &manifest.manifest.auth)?;
    let files = camgate::limits::raise_open_file_limit();
    tracing::debug!(before = ?files.before, now = ?files.now, "open-file limit");
    if let Some(warning) = files.warning() {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("camgate")
        .build()
        .context("cannot start the async runtime")?;
    // The fan-out's own threads, which never preempt the sources' threads that wake them.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let fanout =
        camgate::scheduling::fanout_runtime(cores).context("cannot start the fan-out runtime")?;
    let fanout_handle = fanout.handle().clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        // Before the gateway says it is listening: a SIGHUP or SIGTERM sent as soon as it
        // is up must reach these handlers, not the default action (which kills).
        let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
        let mut stop = StopSignals::install()?;
        let env: camgate::app::Env = Arc::new(config::process_env);
        let options = GatewayOptions {
            fanout: Some(fanout_handle),
            ..GatewayOptions::default()
        };
        let gateway = Gateway::start(manifest, catalog, listener, env, options).await?;
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP received: reloading the configuration");
                    gateway.request_reload(Cause::Signal);
                }
                () = stop.recv() => break,
            }
        }
        // A second signal during shutdown exits at once.
        tokio::select! {
            _ = gateway.shutdown() => {}
            () = stop.recv() => {
                eprintln!("camgate: second signal, exiting now");
                std::process::exit(130);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGTERM and SIGINT, registered once for the whole run so none is lost between two
/// waits.
struct StopSignals {
    term: Signal,
    int: Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<StopSignals> {
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    /// Resolves on the next SIGINT or SIGTERM.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received"),
            _ = self.int.recv() => tracing::info!("SIGINT received"),
        }
    }
}
