//! How the gateway's runtime threads are scheduled next to the sources' threads.
//!
//! Why: a source publishes on its own thread (ffmpeg's reader, a camera SDK's callback) and
//! wakes the hub's fan-out task, which then writes to hundreds of sockets for milliseconds.
//! Linux places a woken thread next to its waker and lets it preempt the waker at once:
//! measured at 250 and 1000 viewers, one publication in five then left the source's thread
//! waiting 1–10 ms for the fan-out it had just woken, although its own work took 30 µs.
//! The fan-out is throughput work, so it has a small runtime of its own whose threads run
//! as `SCHED_BATCH`: the kernel never lets them preempt on wake-up (they wait for the
//! running thread's slice or take an idle core), and otherwise schedules them as usual
//! (same nice value and share). The gateway's I/O runtime keeps the normal policy: making
//! it batch too cost new viewers their first frame (p50 0.6 → 2.5 ms at 1000 viewers),
//! because its wake-ups then waited behind whatever else ran.
//!
//! Invariants:
//! - Only the fan-out runtime's worker threads change (on their first park): no other
//!   thread, and so no plugin thread or child process (which would inherit it), does.
//! - Failing to change the policy (a container's seccomp profile, another OS) costs nothing
//!   but the optimisation: the gateway runs as before, and says so once at debug level.

use std::cell::Cell;

thread_local! {
    /// Whether this thread's policy was already set (or tried).
    static SET: Cell<bool> = const { Cell::new(false) };
}

/// The fan-out runtime: `threads` workers named `camgate-fanout`, `SCHED_BATCH`, no I/O or
/// timer driver (the fan-out writes with non-blocking calls and never sleeps).
pub fn fanout_runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("camgate-fanout")
        .on_thread_park(runtime_worker_parks)
        .build()
}

/// Makes the calling thread `SCHED_BATCH` the first time it is called on that thread.
/// Meant for tokio's `on_thread_park` hook, which only worker threads run.
pub fn runtime_worker_parks() {
    if SET.with(|set| set.replace(true)) {
        return;
    }
    if scheduler::set_self_policy(scheduler::Policy::Batch, 0).is_err() {
        tracing::debug!(
            "cannot run a runtime thread as SCHED_BATCH; a source's thread may wait for the fan-out it wakes"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_batch() -> bool {
        matches!(scheduler::get_self_policy(), Ok(scheduler::Policy::Batch))
    }

    #[test]
    fn a_worker_becomes_batch_on_its_first_park_and_other_threads_do_not() {
        // Threads of the test's own, so nothing else in the process changes.
        let worker = std::thread::spawn(|| {
            let before = is_batch();
            runtime_worker_parks();
            runtime_worker_parks();
            (before, is_batch())
        });
        assert_eq!(worker.join().unwrap(), (false, true));
        let bystander = std::thread::spawn(is_batch);
        assert!(
            !bystander.join().unwrap(),
            "a thread that never parked keeps its policy"
        );
    }
}
