//! The `camgate-bench` command: parses options, raises the open-file limit, runs the load
//! test on a multi-threaded tokio runtime, prints the table and writes the JSON report.

use std::process::ExitCode;

use clap::Parser;

use camgate_bench::{Args, procfs, run};

fn main() -> ExitCode {
    let args = Args::parse();
    let needed = (args.viewers + args.slow + 64) as u64;
    let limit = procfs::raise_nofile_limit();
    if limit < needed {
        eprintln!(
            "camgate-bench: open-file limit is {limit}, {needed} needed: raise it with `ulimit -n {needed}`"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("camgate-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            print!("{}", report.table());
            if let Some(path) = &args.json {
                let json = serde_json::to_string_pretty(&report).unwrap_or_default();
                if let Err(e) = std::fs::write(path, json + "\n") {
                    eprintln!("camgate-bench: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("camgate-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
