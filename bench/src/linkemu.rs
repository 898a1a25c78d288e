//! The model behind `camgate-linkemu`, the userspace link emulator of `bench/link-classes`:
//! per viewer link and per direction, random loss, a rate limit with a bounded queue (a
//! bottleneck: what does not fit is dropped) and a one-way delay. Used where the kernel has
//! no `sch_netem` (see `docs/performance.md`, "Real links").
//!
//! The model is pure: time is a number of nanoseconds passed in by the caller, so the unit
//! tests drive it with a fake clock and the binary (`src/linkemu_main.rs`) with the
//! monotonic clock. It never reorders packets of one link.
//!
//! Invariants, per link (one viewer address in one direction):
//! - a packet is lost with probability `loss`, before it reaches the queue (as on the wire);
//! - the link transmits at `rate_bps`: a packet's transmission starts when the previous one
//!   has finished (or when it arrives, if the link is idle) and lasts `len × 8 / rate`;
//! - the queue holds at most `queue_bytes`, counting what waits *and* the packet in
//!   transmission; a packet that would exceed it is dropped (tail drop), so an empty link
//!   always takes one packet;
//! - a packet leaves the emulator `delay` after its transmission ended;
//! - delivery order is by due time, so packets of one link leave in arrival order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv4Addr;

/// One direction's link parameters (every viewer's link in that direction has its own
/// queue and rate, with these values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkParams {
    /// Bits per second; 0 = unlimited (no queue).
    pub rate_bps: u64,
    /// One-way delay added after transmission, ns.
    pub delay_ns: u64,
    /// Probability that a packet is lost, 0 ..= 1.
    pub loss: f64,
    /// Bottleneck queue, bytes (waiting plus in transmission).
    pub queue_bytes: u64,
}

/// What happened to an offered packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Queued; it leaves at this time (ns).
    Queued(u64),
    /// Randomly lost.
    Lost,
    /// The link's queue was full: dropped.
    QueueFull,
}

/// Counters of one direction (cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DirStats {
    /// Packets offered.
    pub packets: u64,
    /// Bytes offered.
    pub bytes: u64,
    /// Packets lost at random.
    pub lost: u64,
    /// Packets dropped because their link's queue was full.
    pub queue_full: u64,
    /// Packets handed back (delivered).
    pub delivered: u64,
    /// Packets that were not IPv4 (dropped).
    pub not_ipv4: u64,
    /// Links (viewer addresses) seen.
    pub links: u64,
}

/// A packet waiting for its due time.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    due: u64,
    /// Arrival order: ties leave in the order they came.
    order: u64,
    packet: Vec<u8>,
}

/// A small deterministic random source (xorshift64*), seeded by the caller.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Every link of one direction, keyed by the viewer's address, and the packets in flight.
#[derive(Debug)]
pub struct Direction {
    params: LinkParams,
    /// Per link: when its transmitter is free again, ns.
    busy_until: HashMap<Ipv4Addr, u64>,
    pending: BinaryHeap<Reverse<Pending>>,
    order: u64,
    rng: Rng,
    /// Counters.
    pub stats: DirStats,
}

impl Direction {
    /// A direction whose links all have `params`; loss draws come from `seed`.
    pub fn new(params: LinkParams, seed: u64) -> Direction {
        Direction {
            params,
            busy_until: HashMap::new(),
            pending: BinaryHeap::new(),
            order: 0,
            rng: Rng::new(seed),
            stats: DirStats::default(),
        }
    }

    /// Offers `packet`, arriving at `now` (ns) on the link of `key`.
    pub fn offer(&mut self, now: u64, key: Ipv4Addr, packet: Vec<u8>) -> Verdict {
        let len = packet.len() as u64;
        self.stats.packets += 1;
        self.stats.bytes += len;
        if self.params.loss > 0.0 && self.rng.next_f64() < self.params.loss {
            self.stats.lost += 1;
            return Verdict::Lost;
        }
        let links = &mut self.stats.links;
        let busy_until = self.busy_until.entry(key).or_insert_with(|| {
            *links += 1;
            0
        });
        let start = now.max(*busy_until);
        let sent = if self.params.rate_bps == 0 {
            now
        } else {
            let rate = u128::from(self.params.rate_bps);
            // Bytes still to transmit before this packet can start (the queue's content).
            let backlog = (u128::from(start - now) * rate / 8_000_000_000) as u64;
            if backlog + len > self.params.queue_bytes.max(len) {
                self.stats.queue_full += 1;
                return Verdict::QueueFull;
            }
            let tx_ns = (u128::from(len) * 8_000_000_000).div_ceil(rate) as u64;
            *busy_until = start + tx_ns;
            start + tx_ns
        };
        let due = sent + self.params.delay_ns;
        self.order += 1;
        self.pending.push(Reverse(Pending {
            due,
            order: self.order,
            packet,
        }));
        Verdict::Queued(due)
    }

    /// When the next packet is due (ns), if any is waiting.
    pub fn next_due(&self) -> Option<u64> {
        self.pending.peek().map(|p| p.0.due)
    }

    /// The next packet due at or before `now`, if any.
    pub fn pop_due(&mut self, now: u64) -> Option<Vec<u8>> {
        if self.next_due()? > now {
            return None;
        }
        self.stats.delivered += 1;
        self.pending.pop().map(|p| p.0.packet)
    }

    /// Packets waiting (queued or in their delay).
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

/// Source and destination of an IPv4 packet; `None` for anything else.
pub fn ipv4_addrs(packet: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return None;
    }
    let addr =
        |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
    Some((addr(12), addr(16)))
}

/// Parses a rate: `3mbit`, `50Mbit`, `512kbit`, `1gbit` or plain bits per second.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (number, unit) = match lower.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => lower.split_at(at),
        None => (lower.as_str(), ""),
    };
    let factor = match unit {
        "" | "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => {
            return Err(format!(
                "unknown rate unit in {text:?} (bit, kbit, mbit, gbit)"
            ));
        }
    };
    let value: f64 = number.parse().map_err(|_| format!("bad rate {text:?}"))?;
    if !(value >= 0.0 && value.is_finite()) {
        return Err(format!("bad rate {text:?}"));
    }
    Ok((value * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const A: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 10);
    const B: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 11);

    fn params(rate_bps: u64, delay_ms: u64, loss: f64, queue_bytes: u64) -> LinkParams {
        LinkParams {
            rate_bps,
            delay_ns: delay_ms * MS,
            loss,
            queue_bytes,
        }
    }

    #[test]
    fn the_rate_spaces_packets_and_the_delay_follows_transmission() {
        // 1250 bytes at 1 Mbit/s take 10 ms; 40 ms one-way delay.
        let mut d = Direction::new(params(1_000_000, 40, 0.0, 1_000_000), 1);
        let dues: Vec<Verdict> = (0..3).map(|_| d.offer(0, A, vec![0; 1250])).collect();
        assert_eq!(
            dues,
            [
                Verdict::Queued(50 * MS),
                Verdict::Queued(60 * MS),
                Verdict::Queued(70 * MS)
            ]
        );
        // An idle link starts transmitting at arrival.
        assert_eq!(
            d.offer(200 * MS, A, vec![0; 1250]),
            Verdict::Queued(250 * MS)
        );
    }

    #[test]
    fn the_queue_is_bounded_and_drains_with_time() {
        // 3000-byte queue, 1500-byte packets at 1.2 Mbit/s (10 ms each).
        let mut d = Direction::new(params(1_200_000, 0, 0.0, 3000), 1);
        assert!(matches!(d.offer(0, A, vec![0; 1500]), Verdict::Queued(_)));
        assert!(matches!(d.offer(0, A, vec![0; 1500]), Verdict::Queued(_)));
        assert_eq!(d.offer(0, A, vec![0; 1500]), Verdict::QueueFull);
        assert_eq!(d.stats.queue_full, 1);
        // 10 ms later one packet has left the queue: room for one more, not two.
        assert_eq!(d.offer(10 * MS, A, vec![0; 1500]), Verdict::Queued(30 * MS));
        assert_eq!(d.offer(10 * MS, A, vec![0; 1500]), Verdict::QueueFull);
        // A packet larger than the queue still passes an idle link.
        let mut small = Direction::new(params(1_200_000, 0, 0.0, 100), 1);
        assert!(matches!(
            small.offer(0, A, vec![0; 1500]),
            Verdict::Queued(_)
        ));
    }

    #[test]
    fn each_address_has_its_own_link() {
        let mut d = Direction::new(params(1_000_000, 0, 0.0, 10_000), 1);
        assert_eq!(d.offer(0, A, vec![0; 1250]), Verdict::Queued(10 * MS));
        assert_eq!(d.offer(0, B, vec![0; 1250]), Verdict::Queued(10 * MS));
        assert_eq!(d.offer(0, A, vec![0; 1250]), Verdict::Queued(20 * MS));
        assert_eq!(d.stats.links, 2);
    }

    #[test]
    fn unlimited_rate_is_pure_delay() {
        let mut d = Direction::new(params(0, 5, 0.0, 0), 1);
        for _ in 0..100 {
            assert_eq!(d.offer(MS, A, vec![0; 1500]), Verdict::Queued(6 * MS));
        }
    }

    #[test]
    fn packets_leave_at_their_due_time_in_due_order() {
        let mut d = Direction::new(params(1_000_000, 10, 0.0, 100_000), 1);
        d.offer(0, A, vec![1; 1250]); // due 20 ms
        d.offer(0, A, vec![2; 1250]); // due 30 ms
        d.offer(5 * MS, B, vec![3; 125]); // 1 ms on B's idle link: due 16 ms
        assert_eq!(d.next_due(), Some(16 * MS));
        assert_eq!(d.pop_due(15 * MS), None, "not before its time");
        assert_eq!(d.pop_due(16 * MS).map(|p| p[0]), Some(3));
        assert_eq!(d.pop_due(25 * MS).map(|p| p[0]), Some(1));
        assert_eq!(d.pop_due(25 * MS), None);
        assert_eq!(d.pop_due(31 * MS).map(|p| p[0]), Some(2));
        assert_eq!((d.in_flight(), d.stats.delivered), (0, 3));
    }

    #[test]
    fn loss_drops_the_given_share_at_random() {
        let mut none = Direction::new(params(0, 0, 0.0, 0), 7);
        let mut all = Direction::new(params(0, 0, 1.0, 0), 7);
        let mut one_percent = Direction::new(params(0, 0, 0.01, 0), 7);
        for _ in 0..100_000 {
            none.offer(0, A, Vec::new());
            all.offer(0, A, Vec::new());
            one_percent.offer(0, A, Vec::new());
        }
        assert_eq!((none.stats.lost, all.stats.lost), (0, 100_000));
        // Binomial(100000, 0.01): mean 1000, σ ≈ 31.5; the seed makes it exact anyway.
        let lost = one_percent.stats.lost;
        assert!((850..1150).contains(&lost), "{lost}");
        assert_eq!(
            one_percent.stats.delivered + one_percent.in_flight() as u64,
            100_000 - lost
        );
    }

    #[test]
    fn addresses_and_rates_parse() {
        let mut packet = vec![0x45u8; 20];
        packet[12..16].copy_from_slice(&[10, 213, 0, 1]);
        packet[16..20].copy_from_slice(&[10, 213, 1, 10]);
        assert_eq!(ipv4_addrs(&packet), Some((Ipv4Addr::new(10, 213, 0, 1), A)));
        packet[0] = 0x60;
        assert_eq!(ipv4_addrs(&packet), None, "IPv6");
        assert_eq!(ipv4_addrs(&[0x45; 10]), None, "truncated");
        assert_eq!(parse_rate("3mbit"), Ok(3_000_000));
        assert_eq!(parse_rate("50Mbit"), Ok(50_000_000));
        assert_eq!(parse_rate("1.5mbit"), Ok(1_500_000));
        assert_eq!(parse_rate("512kbit"), Ok(512_000));
        assert_eq!(parse_rate("0"), Ok(0));
        assert!(parse_rate("3mb").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
