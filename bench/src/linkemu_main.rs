//! `camgate-linkemu`: a userspace link emulator for `bench/link-classes`, for kernels
//! without `sch_netem`.
//!
//! It creates two TUN devices in the current network namespace, one per direction. The
//! script routes every packet from the gateway's side into the "down" device and every
//! packet from the viewers' side into the "up" device (policy routing on the incoming
//! interface); the emulator reads each packet, passes it through the link model of
//! `camgate_bench::linkemu` (loss, per-viewer rate and bounded queue, one-way delay) and
//! writes it back into the same device when it is due, where it re-enters the stack and is
//! routed on normally. Links are keyed by the viewer's address: the destination going
//! down, the source going up, so each viewer has a link of its own.
//!
//! One thread, one `poll` on both devices with a timeout set to the next due packet,
//! reads drained in batches: the emulator shares the machine's two cores with the gateway
//! and the load tool, so it stays cheap (its CPU is reported next to theirs). It runs
//! until killed; `--stats FILE` gets its counters as JSON once a second.

use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use tun_rs::{DeviceBuilder, SyncDevice};

use camgate_bench::linkemu::{DirStats, Direction, LinkParams, ipv4_addrs, parse_rate};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "camgate-linkemu",
    version,
    about = "Userspace link emulator (per-viewer rate, bounded queue, delay, loss) between two TUN devices; see bench/link-classes."
)]
struct Args {
    /// TUN device for packets towards the viewers (created here).
    #[arg(long, default_value = "cgdown")]
    down_dev: String,
    /// TUN device for packets from the viewers (created here).
    #[arg(long, default_value = "cgup")]
    up_dev: String,
    /// Rate of each viewer's link towards the viewer: `3mbit`, `50mbit`, 0 = unlimited.
    #[arg(long, value_parser = parse_rate, default_value = "0")]
    rate: u64,
    /// Rate of each viewer's link from the viewer (default: the same as `--rate`).
    #[arg(long, value_parser = parse_rate)]
    up_rate: Option<u64>,
    /// One-way delay, added in each direction (the round trip gets twice this).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0ms")]
    delay: Duration,
    /// Probability of losing a packet, in each direction (0.01 = 1 %).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Bottleneck queue of each link, as time at the link's rate (bytes = rate × this).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "100ms")]
    queue: Duration,
    /// Seed of the loss draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// MTU of the TUN devices.
    #[arg(long, default_value_t = 1500)]
    mtu: u16,
    /// Write the counters here as JSON once a second.
    #[arg(long)]
    stats: Option<PathBuf>,
}

/// The counters written to `--stats`.
#[derive(serde::Serialize)]
struct Stats<'a> {
    down: DirStats,
    up: DirStats,
    write_errors: u64,
    params: &'a serde_json::Value,
}

fn params(rate_bps: u64, args: &Args) -> LinkParams {
    let queue_bytes = (u128::from(rate_bps) * args.queue.as_nanos() / 8_000_000_000) as u64;
    LinkParams {
        rate_bps,
        delay_ns: args.delay.as_nanos() as u64,
        loss: args.loss,
        // At least two full packets, or a slow link could never hold one while another
        // is in transmission.
        queue_bytes: queue_bytes.max(2 * u64::from(args.mtu)),
    }
}

fn open(name: &str, mtu: u16) -> std::io::Result<SyncDevice> {
    let device = DeviceBuilder::new()
        .name(name)
        .mtu(mtu)
        .packet_information(false)
        .build_sync()?;
    device.set_nonblocking(true)?;
    Ok(device)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.loss) {
        eprintln!("camgate-linkemu: --loss must be within 0 ..= 1");
        return ExitCode::FAILURE;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camgate-linkemu: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let devices = [
        open(&args.down_dev, args.mtu)?,
        open(&args.up_dev, args.mtu)?,
    ];
    let down = params(args.rate, args);
    let up = params(args.up_rate.unwrap_or(args.rate), args);
    let described = serde_json::json!({
        "down": {"rate_bps": down.rate_bps, "delay_ms": down.delay_ns as f64 / 1e6, "loss": down.loss, "queue_bytes": down.queue_bytes},
        "up": {"rate_bps": up.rate_bps, "delay_ms": up.delay_ns as f64 / 1e6, "loss": up.loss, "queue_bytes": up.queue_bytes},
    });
    let mut directions = [
        Direction::new(down, args.seed),
        Direction::new(up, args.seed.wrapping_add(1)),
    ];
    eprintln!(
        "camgate-linkemu ready down={} up={} {described}",
        args.down_dev, args.up_dev
    );
    let origin = Instant::now();
    let now_ns = || origin.elapsed().as_nanos() as u64;
    let mut buf = vec![0u8; usize::from(args.mtu) + 64];
    let mut write_errors = 0u64;
    let mut next_stats = Duration::ZERO;
    loop {
        // Hand back everything due.
        let now = now_ns();
        for (device, direction) in devices.iter().zip(directions.iter_mut()) {
            while let Some(packet) = direction.pop_due(now) {
                if device.send(&packet).is_err() {
                    write_errors += 1;
                }
            }
        }
        if let Some(path) = &args.stats
            && origin.elapsed() >= next_stats
        {
            next_stats = origin.elapsed() + Duration::from_secs(1);
            let stats = Stats {
                down: directions[0].stats,
                up: directions[1].stats,
                write_errors,
                params: &described,
            };
            let tmp = path.with_extension("tmp");
            let json = serde_json::to_string(&stats).unwrap_or_default();
            if std::fs::write(&tmp, json + "\n").is_ok() {
                let _ = std::fs::rename(&tmp, path);
            }
        }
        // Sleep until a packet arrives, the next one is due, or the next stats write.
        let wake = directions
            .iter()
            .filter_map(Direction::next_due)
            .min()
            .map_or(Duration::from_secs(1), |due| {
                Duration::from_nanos(due.saturating_sub(now_ns()))
            })
            .min(Duration::from_secs(1));
        let timeout = Timespec {
            tv_sec: wake.as_secs() as _,
            tv_nsec: i64::from(wake.subsec_nanos()) as _,
        };
        let mut fds = [
            PollFd::new(&devices[0], PollFlags::IN),
            PollFd::new(&devices[1], PollFlags::IN),
        ];
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let readable = [!fds[0].revents().is_empty(), !fds[1].revents().is_empty()];
        for (i, device) in devices.iter().enumerate() {
            if !readable[i] {
                continue;
            }
            // Drain in a batch, up to 256 packets before looking at due ones again.
            for _ in 0..256 {
                let n = match device.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                let packet = &buf[..n];
                let Some((src, dst)) = ipv4_addrs(packet) else {
                    directions[i].stats.not_ipv4 += 1;
                    continue;
                };
                let key: Ipv4Addr = if i == 0 { dst } else { src };
                directions[i].offer(now_ns(), key, packet.to_vec());
            }
        }
    }
}
