//! Samples a process's CPU time and resident memory from `/proc`, plus the machine facts
//! every published number must carry (cores, load average), and the CPU time of a
//! process's descendants (the gateway's ffmpeg children).

use std::collections::HashMap;
use std::time::Instant;

/// CPU time (user + system) and RSS of a process at one instant.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// When the sample was taken.
    pub at: Instant,
    /// utime + stime in seconds.
    pub cpu_seconds: f64,
    /// utime alone (user space), seconds.
    pub user_seconds: f64,
    /// `VmRSS` in KiB.
    pub rss_kib: u64,
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` if the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: parse after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(ProcSample {
        at,
        cpu_seconds: (utime + stime) / clock_ticks_per_second(),
        user_seconds: utime / clock_ticks_per_second(),
        rss_kib,
    })
}

/// The parent pid and utime + stime (clock ticks) from a `/proc/PID/stat` text.
fn parent_and_ticks(stat: &str) -> Option<(u32, u64)> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): ppid is field 4, utime and stime 14 and 15.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// CPU time of every live descendant of one process at one instant.
#[derive(Debug, Clone)]
pub struct DescendantsSample {
    /// When the sample was taken.
    pub at: Instant,
    /// utime + stime in seconds, per descendant pid.
    pub cpu_seconds: HashMap<u32, f64>,
}

/// The CPU time of every live descendant of `root` (children, their children, ...), from
/// one pass over `/proc`. Time of descendants that already ended is not in it (Linux adds
/// a child's time to its parent's `cutime` only once the parent waits for it).
pub fn sample_descendants(root: u32) -> DescendantsSample {
    let at = Instant::now();
    let mut parents: HashMap<u32, (u32, u64)> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(info) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .as_deref()
                .and_then(parent_and_ticks)
            {
                parents.insert(pid, info);
            }
        }
    }
    let tick = clock_ticks_per_second();
    let cpu_seconds = parents
        .iter()
        .filter(|&(&pid, _)| {
            // Walk up to `root` (or init); bounded against a cycle from pid reuse.
            let mut at = pid;
            for _ in 0..64 {
                match parents.get(&at) {
                    Some(&(ppid, _)) if ppid == root => return true,
                    Some(&(ppid, _)) if ppid > 1 => at = ppid,
                    _ => return false,
                }
            }
            false
        })
        .map(|(&pid, &(_, ticks))| (pid, ticks as f64 / tick))
        .collect();
    DescendantsSample { at, cpu_seconds }
}

/// Cores the descendants used between two samples: for every descendant alive at the
/// second, its CPU time then minus its time at the first (0 if it started since). A
/// descendant that ended in between is missed.
pub fn descendants_cores_between(a: &DescendantsSample, b: &DescendantsSample) -> f64 {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    // A fold from +0.0 (an empty `sum` of f64 is -0.0, printed as "-0.0").
    let used = b.cpu_seconds.iter().fold(0.0, |sum, (pid, end)| {
        sum + (end - a.cpu_seconds.get(pid).copied().unwrap_or(0.0)).max(0.0)
    });
    used / wall
}

/// Cores used between two samples (CPU seconds per wall second).
pub fn cores_between(a: &ProcSample, b: &ProcSample) -> f64 {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    if wall > 0.0 {
        (b.cpu_seconds - a.cpu_seconds) / wall
    } else {
        0.0
    }
}

/// Cores used in user space between two samples (the rest of [`cores_between`] is the
/// kernel's work on the process's behalf).
pub fn user_cores_between(a: &ProcSample, b: &ProcSample) -> f64 {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    if wall > 0.0 {
        (b.user_seconds - a.user_seconds) / wall
    } else {
        0.0
    }
}

/// The 1-minute load average (`/proc/loadavg`), as text with all three values.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Cores available to this process.
pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Raises the soft open-file limit to the hard limit (each viewer is one socket).
/// Returns the soft limit now in force.
pub fn raise_nofile_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    limit.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_busy_child_and_its_cpu_time() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("sh");
        let a = sample_descendants(std::process::id());
        assert!(a.cpu_seconds.contains_key(&child.id()), "{a:?}");
        // However busy the machine, the loop gets a tick of CPU in time.
        let mut b = sample_descendants(std::process::id());
        for _ in 0..1000 {
            if b.cpu_seconds.get(&child.id()) > a.cpu_seconds.get(&child.id()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            b = sample_descendants(std::process::id());
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(descendants_cores_between(&a, &b) > 0.0, "{a:?} {b:?}");
        // A pid that is nobody's parent has no descendants, and they used +0 cores.
        let none = sample_descendants(u32::MAX);
        assert!(none.cpu_seconds.is_empty());
        let zero = descendants_cores_between(&none, &sample_descendants(u32::MAX));
        assert!(zero == 0.0 && zero.is_sign_positive(), "{zero}");
    }

    #[test]
    fn parses_parent_and_ticks_after_a_name_with_spaces() {
        let stat = "42 (a (b) c) S 7 42 42 0 -1 4194560 1 0 0 0 30 12 0 0 20 0 1 0";
        assert_eq!(parent_and_ticks(stat), Some((7, 42)));
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_kib > 0);
        assert!(s.cpu_seconds >= 0.0);
    }
}
