//! The WAN's decisions, without devices or threads: for each packet, whether its link drops it
//! and when it leaves ([`Link::admit`]), and the packets waiting for their time, bounded
//! ([`DelayLine`]). Time comes in as an argument, so this is tested with made-up instants.

use crate::spec::LinkSpec;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Packets one destination may have waiting in the delay line; more are dropped (counted as
/// `overflowed`). At 1,500 bytes that is 6 MB per site, far above what a test sends in one
/// link delay.
pub const QUEUE_BOUND: usize = 4096;

/// What happened to the packets of one direction of a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets that entered the link.
    pub sent: u64,
    /// Dropped by the link's loss draw.
    pub lost: u64,
    /// Dropped because the destination's queue was full ([`QUEUE_BOUND`]) or its device
    /// refused the write.
    pub overflowed: u64,
    /// Written to the destination.
    pub delivered: u64,
}

/// One direction of a link: its spec, its own seeded random draws and its counters.
#[derive(Debug)]
pub(crate) struct Link {
    spec: LinkSpec,
    rng: fastrand::Rng,
    /// When the previous packet leaves: a later one never leaves before it.
    last_release: Option<Instant>,
    pub(crate) stats: LinkStats,
}

impl Link {
    /// A link whose draws come from `seed` alone.
    pub(crate) fn new(spec: LinkSpec, seed: u64) -> Link {
        Link {
            spec,
            rng: fastrand::Rng::with_seed(seed),
            last_release: None,
            stats: LinkStats::default(),
        }
    }

    /// A packet enters the link at `now`: `None` if the link drops it, else when it leaves.
    pub(crate) fn admit(&mut self, now: Instant) -> Option<Instant> {
        self.stats.sent += 1;
        if self.spec.loss > 0.0 && self.rng.f64() < self.spec.loss {
            self.stats.lost += 1;
            return None;
        }
        let mut delay = self.spec.delay;
        if !self.spec.jitter.is_zero() {
            let jitter = self.spec.jitter.as_secs_f64();
            let offset = (self.rng.f64() * 2.0 - 1.0) * jitter;
            delay = Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0));
        }
        let mut at = now + delay;
        if let Some(last) = self.last_release {
            at = at.max(last);
        }
        self.last_release = Some(at);
        Some(at)
    }
}

/// A packet waiting for its time.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Waiting {
    at: Instant,
    /// Arrival order, so equal times leave in order.
    seq: u64,
    from: usize,
    to: usize,
    packet: Vec<u8>,
}

/// A packet whose time has come: from site `from` to site `to`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Due {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) packet: Vec<u8>,
}

/// The packets on their way, earliest first, at most [`QUEUE_BOUND`] per destination.
#[derive(Debug)]
pub(crate) struct DelayLine {
    heap: BinaryHeap<Reverse<Waiting>>,
    per_destination: Vec<usize>,
    seq: u64,
}

impl DelayLine {
    /// An empty line for `sites` destinations.
    pub(crate) fn new(sites: usize) -> DelayLine {
        DelayLine {
            heap: BinaryHeap::new(),
            per_destination: vec![0; sites],
            seq: 0,
        }
    }

    /// Queues `packet` to leave at `at`; `false` (and nothing queued) if `to`'s queue is full.
    pub(crate) fn push(&mut self, at: Instant, from: usize, to: usize, packet: Vec<u8>) -> bool {
        let Some(count) = self.per_destination.get_mut(to) else {
            return false;
        };
        if *count >= QUEUE_BOUND {
            return false;
        }
        *count += 1;
        self.seq += 1;
        self.heap.push(Reverse(Waiting {
            at,
            seq: self.seq,
            from,
            to,
            packet,
        }));
        true
    }

    /// When the earliest packet leaves.
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(w)| w.at)
    }

    /// Takes the packets whose time is `now` or before, in order, into `out`.
    pub(crate) fn pop_due(&mut self, now: Instant, out: &mut Vec<Due>) {
        while self.heap.peek().is_some_and(|Reverse(w)| w.at <= now) {
            let Some(Reverse(w)) = self.heap.pop() else {
                break;
            };
            if let Some(count) = self.per_destination.get_mut(w.to) {
                *count = count.saturating_sub(1);
            }
            out.push(Due {
                from: w.from,
                to: w.to,
                packet: w.packet,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_packet_leaves_after_the_delay_and_in_order() {
        let t0 = Instant::now();
        let mut link = Link::new(LinkSpec::delay(40 * MS), 1);
        assert_eq!(link.admit(t0), Some(t0 + 40 * MS));
        assert_eq!(link.admit(t0 + MS), Some(t0 + 41 * MS));
        assert_eq!(link.stats.sent, 2);
        assert_eq!(link.stats.lost, 0);
    }

    #[test]
    fn jitter_stays_in_bounds_and_never_reorders() {
        let t0 = Instant::now();
        let spec = LinkSpec::delay(40 * MS).with_jitter(10 * MS);
        let mut link = Link::new(spec, 7);
        let mut last = t0;
        let mut spread = (Duration::MAX, Duration::ZERO);
        // 30 ms apart (more than the jitter's span): no packet waits for the one before.
        for i in 0..1000u32 {
            let now = t0 + i * 30 * MS;
            let at = link.admit(now).unwrap();
            assert!(at >= last, "reordered");
            last = at;
            spread = (spread.0.min(at - now), spread.1.max(at - now));
        }
        assert!(spread.0 >= 30 * MS && spread.1 <= 50 * MS, "{spread:?}");
        assert!(spread.1 - spread.0 > 15 * MS, "no jitter: {spread:?}");
        // Dense packets keep their order: each leaves at or after the one before.
        let mut last = t0;
        for i in 0..1000u32 {
            let at = link.admit(t0 + i * MS / 10).unwrap();
            assert!(at >= last, "reordered");
            last = at;
        }
    }

    #[test]
    fn loss_is_near_its_probability_and_the_same_for_the_same_seed() {
        let t0 = Instant::now();
        let spec = LinkSpec::delay(MS).with_loss(0.03);
        let drops = |seed| {
            let mut link = Link::new(spec, seed);
            (0..10_000)
                .map(|_| link.admit(t0).is_none())
                .collect::<Vec<_>>()
        };
        let a = drops(42);
        let lost = a.iter().filter(|d| **d).count();
        assert!((200..400).contains(&lost), "{lost} of 10000 lost at 3 %");
        assert_eq!(a, drops(42), "same seed, same drops");
        assert_ne!(a, drops(43), "another seed, other drops");
    }

    #[test]
    fn the_line_gives_packets_back_when_due_and_is_bounded_per_destination() {
        let t0 = Instant::now();
        let mut line = DelayLine::new(2);
        assert!(line.push(t0 + 2 * MS, 0, 1, vec![2]));
        assert!(line.push(t0 + MS, 0, 1, vec![1]));
        assert!(line.push(t0 + MS, 1, 0, vec![3]));
        assert_eq!(line.next_at(), Some(t0 + MS));
        let mut out = Vec::new();
        line.pop_due(t0, &mut out);
        assert!(out.is_empty());
        line.pop_due(t0 + MS, &mut out);
        let packets: Vec<_> = out.iter().map(|d| d.packet[0]).collect();
        assert_eq!(packets, [1, 3]);
        out.clear();
        line.pop_due(t0 + 5 * MS, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(line.next_at(), None);
        for _ in 0..QUEUE_BOUND {
            assert!(line.push(t0, 0, 1, Vec::new()));
        }
        assert!(!line.push(t0, 0, 1, Vec::new()), "over the bound");
        assert!(
            line.push(t0, 1, 0, Vec::new()),
            "another destination has room"
        );
        assert!(!line.push(t0, 0, 9, Vec::new()), "no such destination");
    }
}
