//! CPU of the `rtsp` plugin alone, for docs/performance.md: runs one source against a
//! camera URL with the plugin API's test host (which copies every frame, as the gateway
//! does) and prints the process's CPU (user + system, % of one core) over a window after a
//! warm-up, with the frames received in it.
//!
//! usage: cargo run --release -p camgate-rtsp --example rtsp_cpu -- URL [SECONDS=60] [WARMUP=5]

use std::time::{Duration, Instant};

use camgate_plugin_api::testing::TestHost;
use camgate_plugin_api::{Source, SourcePlugin};
use camgate_rtsp::Rtsp;

/// utime + stime of this process in seconds (from /proc/self/stat, in clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: rtsp_cpu URL [SECONDS] [WARMUP]");
    let seconds: u64 = args.next().map_or(60, |s| s.parse().expect("SECONDS"));
    let warmup: u64 = args.next().map_or(5, |s| s.parse().expect("WARMUP"));
    let test = TestHost::new();
    let config = serde_json::from_value(serde_json::json!({ "url": url })).expect("options");
    let mut source = Rtsp::create(config, test.host()).expect("create");
    source.start().expect("start");
    std::thread::sleep(Duration::from_secs(warmup));
    let count = || test.media().len() + test.frames().len();
    let (frames0, cpu0, t0) = (count(), cpu_seconds(), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    // CPU first: counting copies the recorded frames, which is not the plugin's work.
    let (cpu1, elapsed, frames1) = (cpu_seconds(), t0.elapsed().as_secs_f64(), count());
    source.stop();
    println!(
        "{url}: {} frames in {elapsed:.0} s ({:.1} fps), CPU {:.2} % of one core; states {:?}",
        frames1 - frames0,
        (frames1 - frames0) as f64 / elapsed,
        100.0 * (cpu1 - cpu0) / elapsed,
        test.states().iter().map(|(s, _)| *s).collect::<Vec<_>>()
    );
}
