//! The wait between two connection attempts (an ffmpeg run, an RTSP session): the backoff
//! delay, cut short when the camera comes back.
//!
//! While waiting, the supervisor probes the camera cheaply — a TCP connect to its host and
//! port ([`ProbeTarget`]), no protocol — and reconnects as soon as a port that did *not*
//! answer starts answering. The shortcut is edge-triggered on purpose: a port that answers
//! all along (a camera refusing the password with 401, a wrong path, a server that accepts
//! and says nothing) gives no edge, so the next attempt starts only after the full backoff and such a
//! camera is never hammered. A run the probe started that fails at once (the port opened
//! before the stream was ready) is handled by [`ShortcutPolicy`].
//!
//! Time and interruption come through [`Waiter`] (the supervisor's event channel in
//! production, a fake clock in tests), the probe through a closure, so the schedule is
//! tested without sleeping.
//!
//! Invariants: at most one probe per [`PROBE_INTERVAL`] per source, across waits
//! ([`ProbeSchedule`] lives as long as the supervisor); each connect is bounded by
//! [`PROBE_TIMEOUT`] (a dead host does not stall the wait, nor `stop`, for long); a host
//! *name* is resolved first, waited for at most [`RESOLVE_WAIT`] ([`crate::lookup`]: a
//! resolver that hangs leaves the camera "silent" this time, not the thread stuck), and at
//! most [`PROBE_ADDRESSES`] of its addresses are tried, so one probe takes at most
//! `RESOLVE_WAIT + PROBE_ADDRESSES × PROBE_TIMEOUT` (0.9 s); a wait never lasts longer than
//! its delay plus one probe; a stop request ends it at once (between probes).

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use url::{Host, Url};

use crate::lookup::Lookup;

/// Probes are at least this far apart.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How long one probe waits for a TCP connect.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// How long one probe waits for a camera's host name to resolve.
pub const RESOLVE_WAIT: Duration = Duration::from_millis(300);

/// How many of a host name's addresses one probe tries (a dual-stack name has two).
pub const PROBE_ADDRESSES: usize = 2;

/// Where the camera listens: the host and port of its URL (default ports: rtsp 554,
/// rtsps 322, http 80, https 443). Clones share the name's lookup in flight.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    host: Host<String>,
    port: u16,
    /// The name's lookup (for a `Host::Domain`).
    lookup: Option<Lookup>,
}

impl PartialEq for ProbeTarget {
    fn eq(&self, other: &Self) -> bool {
        (&self.host, self.port) == (&other.host, other.port)
    }
}

impl Eq for ProbeTarget {}

impl ProbeTarget {
    /// The target of a camera URL; `None` if it has no host or an unknown scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        let url = Url::parse(url).ok()?;
        let port = url.port().or(match url.scheme() {
            "rtsp" => Some(554),
            "rtsps" => Some(322),
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        })?;
        let host = url.host()?.to_owned();
        let lookup = match &host {
            Host::Domain(name) => Some(Lookup::new(name, port)),
            Host::Ipv4(_) | Host::Ipv6(_) => None,
        };
        Some(ProbeTarget { host, port, lookup })
    }

    /// `true` if something accepts a TCP connection there within [`PROBE_TIMEOUT`].
    /// A host name is resolved on every probe (its address may change while it is down);
    /// one that does not resolve within [`RESOLVE_WAIT`] counts as silent this time.
    pub fn answers(&self) -> bool {
        let addresses: Vec<SocketAddr> = match (&self.host, &self.lookup) {
            (Host::Ipv4(ip), _) => vec![SocketAddr::from((*ip, self.port))],
            (Host::Ipv6(ip), _) => vec![SocketAddr::from((*ip, self.port))],
            (Host::Domain(_), Some(lookup)) => match lookup.resolve(RESOLVE_WAIT) {
                Some(found) => found,
                None => return false,
            },
            (Host::Domain(_), None) => return false,
        };
        addresses
            .iter()
            .take(PROBE_ADDRESSES)
            .any(|address| TcpStream::connect_timeout(address, PROBE_TIMEOUT).is_ok())
    }
}

impl fmt::Display for ProbeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A camera often opens its port a little before its stream is ready (RTSP 503, 454...),
/// so a run started by the probe may fail at once. Then the backoff starts over from its
/// base — at most once per this long, so a port that flaps cannot keep resetting it.
pub const RESTART_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// What follows a run, as far as the probe is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterRun {
    /// Start the backoff over from its base before drawing the next delay.
    pub restart_backoff: bool,
    /// Probe during the next wait (no: wait the full delay).
    pub probe: bool,
}

/// The rules around runs the probe started. After such a run fails without a frame, the
/// next wait is not cut short (no probe), and the backoff starts over from its base (at
/// most once per [`RESTART_AT_MOST_EVERY`]): the camera is back, its stream perhaps not
/// yet. A port that answers all along never gives an edge, so none of this applies to it.
#[derive(Debug, Default, Clone)]
pub struct ShortcutPolicy {
    started_by_probe: bool,
    last_restart: Option<Instant>,
}

impl ShortcutPolicy {
    /// A run that was live for `live_for` ended at `now`: what the next wait does.
    pub fn after_run(&mut self, live_for: Duration, now: Instant) -> AfterRun {
        if !(self.started_by_probe && live_for.is_zero()) {
            return AfterRun {
                restart_backoff: false,
                probe: true,
            };
        }
        let restart_backoff = self
            .last_restart
            .is_none_or(|at| now.saturating_duration_since(at) >= RESTART_AT_MOST_EVERY);
        if restart_backoff {
            self.last_restart = Some(now);
        }
        AfterRun {
            restart_backoff,
            probe: false,
        }
    }

    /// The wait before the next run ended with `end`.
    pub fn wait_ended(&mut self, end: WaitEnd) {
        self.started_by_probe = end == WaitEnd::Reachable;
    }
}

/// Time and interruption as a wait sees them.
pub trait Waiter {
    /// The current time.
    fn now(&self) -> Instant;
    /// Blocks for up to `timeout`; `true` if the source is being stopped.
    fn sleep(&mut self, timeout: Duration) -> bool;
}

/// When the next probe may run and what the last one saw; shared by every wait of one
/// source so that probes stay at least [`PROBE_INTERVAL`] apart even across short waits,
/// and so that a camera that comes back between two waits (after the last probe of one,
/// before the first of the next) still shows as an edge.
#[derive(Debug, Default, Clone)]
pub struct ProbeSchedule {
    last: Option<Instant>,
    /// Whether the port answered at the last probe (`None`: never probed).
    last_answer: Option<bool>,
}

impl ProbeSchedule {
    fn next_due(&self) -> Option<Instant> {
        self.last.map(|last| last + PROBE_INTERVAL)
    }

    fn is_due(&self, now: Instant) -> bool {
        self.next_due().is_none_or(|due| now >= due)
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEnd {
    /// The whole delay passed.
    Elapsed,
    /// The camera's port went from silent to answering: reconnect now.
    Reachable,
    /// The source is being stopped.
    Stopped,
}

impl WaitEnd {
    /// Whether the source is stopping (else: reconnect now). A camera that answers again
    /// is announced through `log` with its `target` (`host:port`), once.
    pub fn stopped_announcing(
        self,
        target: Option<impl std::fmt::Display>,
        log: impl FnOnce(&str),
    ) -> bool {
        match self {
            WaitEnd::Stopped => true,
            WaitEnd::Elapsed => false,
            WaitEnd::Reachable => {
                if let Some(target) = target {
                    log(&format!("{target} answers again: reconnecting now"));
                }
                false
            }
        }
    }
}

/// The message a source reports with its `Retrying` state — why, in how long, which
/// attempt — in the same words whichever camera plugin says it (the UI shows it).
pub fn retrying_message(reason: &str, delay: Duration, attempt: u32) -> String {
    format!(
        "{reason}; retrying in {:.1}s (attempt {attempt})",
        delay.as_secs_f64()
    )
}

/// A supervisor's reconnect wait, as every camera plugin runs it: [`wait`] with `target`'s
/// reachability probe (when there is one), then `shortcut` told how it ended.
pub fn wait_probing(
    waiter: &mut impl Waiter,
    delay: Duration,
    target: Option<&ProbeTarget>,
    schedule: &mut ProbeSchedule,
    shortcut: &mut ShortcutPolicy,
) -> WaitEnd {
    let mut answers = target.map(|target| move || target.answers());
    let end = wait(
        waiter,
        delay,
        schedule,
        answers.as_mut().map(|f| f as &mut dyn FnMut() -> bool),
    );
    shortcut.wait_ended(end);
    end
}

/// Waits `delay`; with `probe`, probes on `schedule` and ends early when the port answers
/// and the previous probe (in this wait or an earlier one) found it silent.
pub fn wait(
    waiter: &mut impl Waiter,
    delay: Duration,
    schedule: &mut ProbeSchedule,
    mut probe: Option<&mut dyn FnMut() -> bool>,
) -> WaitEnd {
    let deadline = waiter.now() + delay;
    loop {
        let now = waiter.now();
        if now >= deadline {
            return WaitEnd::Elapsed;
        }
        let mut wake = deadline;
        if let Some(probe) = probe.as_mut() {
            if schedule.is_due(now) {
                schedule.last = Some(now);
                let answered = probe();
                let was_silent = schedule.last_answer == Some(false);
                schedule.last_answer = Some(answered);
                if answered && was_silent {
                    return WaitEnd::Reachable;
                }
                // A probe takes time: look at the clock again before sleeping.
                continue;
            }
            if let Some(due) = schedule.next_due() {
                wake = wake.min(due);
            }
        }
        if waiter.sleep(wake.saturating_duration_since(now)) {
            return WaitEnd::Stopped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retrying_message_says_why_when_and_which_attempt() {
        assert_eq!(
            retrying_message("connection refused", Duration::from_millis(1_450), 3),
            "connection refused; retrying in 1.4s (attempt 3)"
        );
    }
    use std::cell::Cell;
    use std::rc::Rc;

    /// A clock that only moves when the code under test sleeps (or a probe takes time).
    struct FakeClock {
        now: Rc<Cell<Instant>>,
        stop_at: Option<Instant>,
        sleeps: Vec<Duration>,
    }

    impl FakeClock {
        fn new() -> (Self, Rc<Cell<Instant>>) {
            let now = Rc::new(Cell::new(Instant::now()));
            let clock = FakeClock {
                now: Rc::clone(&now),
                stop_at: None,
                sleeps: Vec::new(),
            };
            (clock, now)
        }
    }

    impl Waiter for FakeClock {
        fn now(&self) -> Instant {
            self.now.get()
        }
        fn sleep(&mut self, timeout: Duration) -> bool {
            self.sleeps.push(timeout);
            let wake = self.now.get() + timeout;
            if let Some(stop) = self.stop_at
                && stop <= wake
            {
                self.now.set(stop.max(self.now.get()));
                return true;
            }
            self.now.set(wake);
            false
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// A probe whose port answers from `up_at` (relative to `t0`) on; records probe times
    /// and takes `cost` of fake time per probe.
    fn port(
        now: Rc<Cell<Instant>>,
        up_at: Option<Duration>,
        cost: Duration,
        log: Rc<std::cell::RefCell<Vec<Duration>>>,
    ) -> impl FnMut() -> bool {
        let t0 = now.get();
        move || {
            let at = now.get() - t0;
            log.borrow_mut().push(at);
            now.set(now.get() + cost);
            up_at.is_some_and(|up| at >= up)
        }
    }

    #[test]
    fn a_dead_camera_is_probed_once_a_second_and_the_full_delay_is_waited() {
        let (mut clock, now) = FakeClock::new();
        let t0 = now.get();
        let probes = Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut probe = port(Rc::clone(&now), None, MS(300), Rc::clone(&probes));
        let mut schedule = ProbeSchedule::default();
        let end = wait(&mut clock, S(16), &mut schedule, Some(&mut probe));
        assert_eq!(end, WaitEnd::Elapsed);
        assert_eq!(now.get() - t0, S(16), "the wait is exactly the delay");
        let probes = probes.borrow();
        assert_eq!(probes.len(), 16, "{probes:?}");
        assert!(
            probes.windows(2).all(|w| w[1] - w[0] >= PROBE_INTERVAL),
            "more than one probe per second: {probes:?}"
        );
    }

    #[test]
    fn a_camera_that_comes_back_is_started_within_a_probe_interval() {
        let (mut clock, now) = FakeClock::new();
        let t0 = now.get();
        let probes = Rc::new(std::cell::RefCell::new(Vec::new()));
        let up_at = MS(3200);
        let mut probe = port(Rc::clone(&now), Some(up_at), MS(5), Rc::clone(&probes));
        let mut schedule = ProbeSchedule::default();
        let end = wait(&mut clock, S(30), &mut schedule, Some(&mut probe));
        assert_eq!(end, WaitEnd::Reachable);
        let back_after = now.get() - t0 - up_at;
        assert!(
            back_after <= PROBE_INTERVAL + MS(5),
            "started {back_after:?} after the port answered"
        );
    }

    #[test]
    fn a_camera_back_between_two_waits_still_cuts_the_second_one_short() {
        let (mut clock, now) = FakeClock::new();
        let probes = Rc::new(std::cell::RefCell::new(Vec::new()));
        // Silent during the first wait; up by the time the second one starts.
        let mut probe = port(Rc::clone(&now), Some(S(3)), MS(1), Rc::clone(&probes));
        let mut schedule = ProbeSchedule::default();
        assert_eq!(
            wait(&mut clock, MS(2500), &mut schedule, Some(&mut probe)),
            WaitEnd::Elapsed
        );
        now.set(now.get() + MS(600)); // a failed run
        let second_started = now.get();
        assert_eq!(
            wait(&mut clock, S(16), &mut schedule, Some(&mut probe)),
            WaitEnd::Reachable
        );
        assert!(now.get() - second_started <= PROBE_INTERVAL + MS(1));
    }

    #[test]
    fn a_port_that_answers_all_along_gets_the_full_backoff() {
        // e.g. a camera answering 401: the port is open, the run fails; no edge, no shortcut.
        let (mut clock, now) = FakeClock::new();
        let t0 = now.get();
        let probes = Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut probe = port(Rc::clone(&now), Some(S(0)), MS(1), Rc::clone(&probes));
        let mut schedule = ProbeSchedule::default();
        let end = wait(&mut clock, S(8), &mut schedule, Some(&mut probe));
        assert_eq!(end, WaitEnd::Elapsed);
        assert_eq!(now.get() - t0, S(8));
    }

    #[test]
    fn probes_stay_a_second_apart_across_short_waits() {
        let (mut clock, now) = FakeClock::new();
        let t0 = now.get();
        let probes = Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut probe = port(Rc::clone(&now), None, MS(1), Rc::clone(&probes));
        let mut schedule = ProbeSchedule::default();
        for delay in [MS(300), MS(700), MS(400), MS(900)] {
            assert_eq!(
                wait(&mut clock, delay, &mut schedule, Some(&mut probe)),
                WaitEnd::Elapsed
            );
            // A run that fails fast in between.
            now.set(now.get() + MS(100));
        }
        let probes = probes.borrow();
        assert!(
            probes.windows(2).all(|w| w[1] - w[0] >= PROBE_INTERVAL),
            "{probes:?}"
        );
        assert!(now.get() - t0 >= S(2));
    }

    #[test]
    fn stop_ends_a_wait_at_once_and_no_probe_means_a_plain_sleep() {
        let (mut clock, now) = FakeClock::new();
        let t0 = now.get();
        clock.stop_at = Some(t0 + MS(2500));
        let mut schedule = ProbeSchedule::default();
        assert_eq!(
            wait(&mut clock, S(30), &mut schedule, None),
            WaitEnd::Stopped
        );
        assert_eq!(now.get() - t0, MS(2500));
        assert_eq!(clock.sleeps, [S(30)], "one sleep without a probe");
    }

    #[test]
    fn a_probe_started_run_that_fails_restarts_the_backoff_at_most_once_a_minute() {
        let t0 = Instant::now();
        let mut policy = ShortcutPolicy::default();
        let plain = AfterRun {
            restart_backoff: false,
            probe: true,
        };
        // Ordinary failures: probe during the wait, backoff keeps growing.
        assert_eq!(policy.after_run(Duration::ZERO, t0), plain);
        policy.wait_ended(WaitEnd::Reachable);
        // The probe-started run failed at once: full wait, backoff from its base.
        assert_eq!(
            policy.after_run(Duration::ZERO, t0 + S(1)),
            AfterRun {
                restart_backoff: true,
                probe: false
            }
        );
        policy.wait_ended(WaitEnd::Elapsed);
        assert_eq!(policy.after_run(Duration::ZERO, t0 + S(2)), plain);
        // Another edge within the minute: no second restart.
        policy.wait_ended(WaitEnd::Reachable);
        assert_eq!(
            policy.after_run(Duration::ZERO, t0 + S(20)),
            AfterRun {
                restart_backoff: false,
                probe: false
            }
        );
        // A probe-started run that delivered frames is a success, nothing special.
        policy.wait_ended(WaitEnd::Reachable);
        assert_eq!(policy.after_run(S(30), t0 + S(50)), plain);
        // After a minute, a restart is allowed again.
        policy.wait_ended(WaitEnd::Reachable);
        assert!(policy.after_run(Duration::ZERO, t0 + S(62)).restart_backoff);
    }

    #[test]
    fn targets_come_from_the_url_with_default_ports() {
        let target = |url| ProbeTarget::from_url(url).map(|t| t.to_string());
        assert_eq!(
            target("rtsp://u:p@10.0.0.5/x").as_deref(),
            Some("10.0.0.5:554")
        );
        assert_eq!(
            target("rtsps://cam.local/x").as_deref(),
            Some("cam.local:322")
        );
        assert_eq!(
            target("http://cam:8080/v.mjpg").as_deref(),
            Some("cam:8080")
        );
        assert_eq!(target("https://[::1]/v").as_deref(), Some("[::1]:443"));
    }

    #[test]
    fn a_real_probe_tells_an_open_port_from_a_closed_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = {
            let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            other.local_addr().unwrap().port()
        };
        let probe = |port| ProbeTarget::from_url(&format!("rtsp://127.0.0.1:{port}/")).unwrap();
        assert!(probe(open).answers());
        assert!(!probe(closed).answers());
        // By name: resolved off the thread (a probe on a loaded machine may give up on a
        // slow lookup; the next one collects it, as a supervisor's next probe would).
        let named = |port| ProbeTarget::from_url(&format!("rtsp://localhost:{port}/")).unwrap();
        let target = named(open);
        assert!((0..100).any(|_| target.answers()));
        assert!(!named(closed).answers());
    }
}
