//! `soak`: a churn soak. One room on our real signaling server (in this process, a random port
//! of 127.0.0.1, JWT authentication as in production); one long-lived member stays the whole
//! run while the others join and leave at random, then the mesh must be whole and nothing may
//! have leaked.
//!
//! # Members
//! Every member is a child process of this binary (`soak-member`, see [`member`]) running one
//! swarm on the native backend bound to 127.0.0.1 (`NativeConfig::loopback()`: host candidates
//! on 127.0.0.1 only, mDNS off), so no network namespace is needed. Child processes make the
//! abrupt leave honest: a member that leaves abruptly is killed with SIGKILL (no `close` frame,
//! no `@fast/close`; the kernel closes its sockets), the others leave with
//! `SwarmHandle::close()`. A member that comes back reuses its slot's name (`m1`…), as a
//! player reconnecting would: the others may still hold the killed incarnation's link, which
//! the new one replaces.
//!
//! # Schedule
//! Seeded (`--seed`, printed): every 0.5–3 s one of the churning slots is picked at random; an
//! empty slot joins, a present one leaves (by SIGKILL with `--kill-percent` chance, else by
//! `close()`). A slot whose member is still closing is left alone. `--flash-percent` of the
//! joins leave again 0–500 ms later, the same two ways: before or during their handshakes
//! (a joiner that leaves while members still owe it offers). Every `--sample` seconds a
//! row of the curve is printed: the long-lived member's RSS (`/proc/PID/status`),
//! `SwarmHandle::connection_count` and open peers, and the offers parked on the server
//! (`ServerHandle::room`).
//!
//! # Verdict
//! When the churn stops, every empty slot joins at once (unless `--no-fill`), so the checks
//! see a full room: the members that lived through the churn and fresh joiners. After
//! `--settle` seconds, the checks run (and are retried for up to
//! `--verify` seconds, as a killed member's links only go once ICE fails, ~10 s):
//! - every pair of live members is linked: each sees the other open and a `fast` message
//!   round-trips both ways;
//! - the server holds exactly the live members, each with at most `peerBuffer` (1) parked
//!   offers;
//! - every live member's `connection_count` equals its open peers plus its offers parked on the
//!   server (the long-lived one's is the headline: no leak after the whole run).
//!
//! The long-lived member's RSS at the start and the end is printed, not asserted. The process
//! exits non-zero if a check fails.

pub mod member;

use crate::util::{machine, rss_kib, runtime, spawn_server};
use fast_rtc_protocol::RoomId;
use fast_rtc_server::{RoomSnapshot, ServerHandle};
use member::{Leaving, Left, Member};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

/// The room every member joins.
const ROOM: &str = "soak";
/// The long-lived member's name.
const LONG: &str = "long";
/// `SwarmConfig::new`'s `peer_buffer`, which every member keeps.
const PEER_BUFFER: usize = 1;
/// Time between two churn steps, in ms: uniform in this range.
const CHURN_GAP_MS: (u64, u64) = (500, 3000);
/// How long a flash member stays, in ms: uniform in this range.
const FLASH_MS: (u64, u64) = (0, 500);
/// How long the server is watched for a second joiner on a waiting list.
const WAITING_WATCH: Duration = Duration::from_secs(3);
/// A closing member still running after this long is killed and counted as hung.
const CLOSE_HUNG: Duration = Duration::from_secs(15);

/// The `soak` subcommand's arguments.
#[derive(clap::Args, Clone, Debug)]
pub struct SoakArgs {
    /// Seconds of churn (`--seconds 20` is the CI smoke run).
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// Members in all: one long-lived and MEMBERS-1 that join and leave.
    #[arg(long, default_value_t = 8)]
    members: usize,
    /// Seed of the churn schedule (random when absent; printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds between two rows of the curve.
    #[arg(long, default_value_t = 10)]
    sample: u64,
    /// Seconds between the end of the churn and the first check.
    #[arg(long, default_value_t = 20)]
    settle: u64,
    /// Seconds the checks are retried for after the settle period before the run fails.
    #[arg(long, default_value_t = 30)]
    verify: u64,
    /// Percent of leaves done by SIGKILL instead of `close()`.
    #[arg(long, default_value_t = 25)]
    kill_percent: u64,
    /// Percent of joins that leave again 0-500 ms later, mid-handshake.
    #[arg(long, default_value_t = 10)]
    flash_percent: u64,
    /// Percent of joins that bring a second joiner at the same moment, killed as soon as the
    /// server shows a member owing it an offer (a waiting joiner that leaves). Off by default:
    /// it leaves that member an offer over `peerBuffer` on the server (see the README).
    #[arg(long, default_value_t = 0)]
    waiting_leave_percent: u64,
    /// Check the members present when the churn stops, without filling the empty slots first.
    #[arg(long)]
    no_fill: bool,
}

/// SplitMix64: a seeded schedule without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// What happened so far.
#[derive(Default)]
struct Counts {
    joins: usize,
    closes: usize,
    kills: usize,
    /// Joins that left again within `FLASH_MS` (also counted in joins and closes or kills).
    flashes: usize,
    /// Second joiners killed while on a member's waiting list (also counted in joins and
    /// kills), and those the server never showed waiting (killed after `WAITING_WATCH`).
    waiting_leaves: usize,
    waiting_missed: usize,
    /// Closing members whose driver did not finish within its wait.
    stuck: usize,
    /// Closing members that did not exit and were killed.
    hung: usize,
}

/// The churning members: a slot is empty, present, or closing.
struct Room {
    slots: Vec<Option<Member>>,
    leaving: Vec<(usize, Leaving)>,
    counts: Counts,
}

impl Room {
    fn live(&self) -> usize {
        1 + self.slots.iter().flatten().count()
    }

    /// Collects the members that finished closing.
    fn reap(&mut self, hung: Duration) {
        let counts = &mut self.counts;
        self.leaving.retain_mut(|(_, l)| match l.reap(hung) {
            None => true,
            Some(left) => {
                match left {
                    Left::Clean => {}
                    Left::DriverStuck => {
                        counts.stuck += 1;
                        println!("  ({} exited before its driver finished closing)", l.name());
                    }
                    Left::Hung => {
                        counts.hung += 1;
                        println!(
                            "  ({} did not exit {} s after close(); killed)",
                            l.name(),
                            hung.as_secs()
                        );
                    }
                }
                false
            }
        });
    }

    /// One churn step: a random slot joins or leaves (a flash join does both). `owed` says
    /// whether the server shows a member owing an offer to the named joiner.
    fn step(&mut self, rng: &mut Rng, url: &str, args: &SoakArgs, owed: &dyn Fn(&str) -> bool) {
        let i = rng.range(0, self.slots.len() as u64 - 1) as usize;
        let kill = rng.range(0, 99) < args.kill_percent;
        let flash = rng.range(0, 99) < args.flash_percent;
        let stay = Duration::from_millis(rng.range(FLASH_MS.0, FLASH_MS.1));
        let second = rng.range(0, 99) < args.waiting_leave_percent;
        if self.leaving.iter().any(|(s, _)| *s == i) {
            return;
        }
        let member = match self.slots[i].take() {
            None => {
                let m = Member::spawn(url, &slot_name(i), ROOM);
                self.counts.joins += 1;
                if !flash {
                    self.slots[i] = Some(m);
                    if second {
                        self.waiting_leave(i, url, owed);
                    }
                    return;
                }
                self.counts.flashes += 1;
                std::thread::sleep(stay);
                m
            }
            Some(m) => m,
        };
        if kill {
            member.kill();
            self.counts.kills += 1;
        } else {
            self.leaving.push((i, member.close()));
            self.counts.closes += 1;
        }
    }
}

impl Room {
    /// Another empty slot joins at once (just after slot `i`) and is killed as soon as the
    /// server shows a member owing it an offer, before that offer arrives.
    fn waiting_leave(&mut self, i: usize, url: &str, owed: &dyn Fn(&str) -> bool) {
        let n = self.slots.len();
        let Some(j) = (1..n)
            .map(|k| (i + k) % n)
            .find(|&j| self.slots[j].is_none() && !self.leaving.iter().any(|(s, _)| *s == j))
        else {
            return;
        };
        let name = slot_name(j);
        let joiner = Member::spawn(url, &name, ROOM);
        self.counts.joins += 1;
        let until = Instant::now() + WAITING_WATCH;
        let seen = loop {
            if owed(&name) {
                break true;
            }
            if Instant::now() >= until {
                break false;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        joiner.kill();
        self.counts.kills += 1;
        if seen {
            self.counts.waiting_leaves += 1;
        } else {
            self.counts.waiting_missed += 1;
        }
    }
}

fn slot_name(i: usize) -> String {
    format!("m{}", i + 1)
}

/// One row of the curve.
struct Sample {
    t: f64,
    live: usize,
    rss_kib: u64,
    connections: Option<usize>,
    open: Option<usize>,
    parked_total: usize,
    parked_long: usize,
    parked_max: usize,
}

fn room_id() -> RoomId {
    ROOM.into()
}

fn parked(snapshot: &Option<RoomSnapshot>) -> BTreeMap<String, usize> {
    snapshot
        .iter()
        .flat_map(|s| &s.members)
        .map(|m| (m.user_id.to_string(), m.pending_offers.len()))
        .collect()
}

fn sample(
    rt: &tokio::runtime::Runtime,
    server: &ServerHandle,
    long: &mut Member,
    room: &Room,
    t0: Instant,
) -> Sample {
    let status = long.status();
    let parked = parked(&rt.block_on(server.room(&room_id())));
    let s = Sample {
        t: t0.elapsed().as_secs_f64(),
        live: room.live(),
        rss_kib: rss_kib(long.pid()),
        connections: status.as_ref().map(|s| s.0),
        open: status.as_ref().map(|s| s.1.len()),
        parked_total: parked.values().sum(),
        parked_long: parked.get(LONG).copied().unwrap_or(0),
        parked_max: parked.values().copied().max().unwrap_or(0),
    };
    let opt = |v: Option<usize>| v.map_or("-".into(), |v| v.to_string());
    println!(
        "| {:>6.1} | {:>4} | {:>14} | {:>16} | {:>15} | {:>12} / {:>4} / {:>3} | {:>5} | {:>6} / {:>5} |",
        s.t,
        s.live,
        s.rss_kib,
        opt(s.connections),
        opt(s.open),
        s.parked_total,
        s.parked_long,
        s.parked_max,
        room.counts.joins,
        room.counts.closes,
        room.counts.kills
    );
    s
}

/// The end checks, on the live members.
struct Check {
    pairs: usize,
    linked: usize,
    failures: Vec<String>,
    lines: Vec<String>,
}

fn check(rt: &tokio::runtime::Runtime, server: &ServerHandle, live: &mut [&mut Member]) -> Check {
    let names: BTreeSet<String> = live.iter().map(|m| m.name.clone()).collect();
    let mut failures = Vec::new();
    let mut lines = Vec::new();
    let mut status = BTreeMap::new();
    for m in live.iter_mut() {
        match m.status() {
            Some(s) => {
                status.insert(m.name.clone(), s);
            }
            None => failures.push(format!("{} did not answer status", m.name)),
        }
    }
    let mut answered = BTreeMap::new();
    for m in live.iter_mut() {
        match m.roundtrip() {
            Some((ok, missing)) => {
                if !missing.is_empty() {
                    failures.push(format!("{}: no pong from {missing:?}", m.name));
                }
                answered.insert(m.name.clone(), ok);
            }
            None => failures.push(format!("{} did not answer roundtrip", m.name)),
        }
    }
    // Pairs.
    let sees = |a: &str, b: &str| status.get(a).is_some_and(|s| s.1.contains(b));
    let echoed = |a: &str, b: &str| answered.get(a).is_some_and(|s| s.contains(b));
    let list: Vec<&String> = names.iter().collect();
    let mut pairs = 0;
    let mut linked = 0;
    for (i, a) in list.iter().enumerate() {
        for b in &list[i + 1..] {
            pairs += 1;
            let ok = sees(a, b) && sees(b, a) && echoed(a, b) && echoed(b, a);
            if ok {
                linked += 1;
            } else {
                failures.push(format!(
                    "pair {a}-{b} not linked: {a} sees {b} open: {}, {b} sees {a}: {}, {a}->{b} round trip: {}, {b}->{a}: {}",
                    sees(a, b),
                    sees(b, a),
                    echoed(a, b),
                    echoed(b, a)
                ));
            }
        }
    }
    for (name, (_, peers, _)) in &status {
        let stray: Vec<&String> = peers.iter().filter(|p| !names.contains(*p)).collect();
        if !stray.is_empty() {
            failures.push(format!(
                "{name} has open links to members that left: {stray:?}"
            ));
        }
    }
    // Server.
    let snapshot = rt.block_on(server.room(&room_id()));
    let on_server: BTreeSet<String> = snapshot
        .iter()
        .flat_map(|s| &s.members)
        .map(|m| m.user_id.to_string())
        .collect();
    if on_server != names {
        failures.push(format!(
            "the server's room holds {on_server:?}, the live members are {names:?}"
        ));
    }
    let parked = parked(&snapshot);
    for (name, n) in &parked {
        if *n > PEER_BUFFER {
            failures.push(format!(
                "{name} has {n} offers parked on the server (peerBuffer {PEER_BUFFER})"
            ));
        }
    }
    for m in snapshot.iter().flat_map(|s| &s.members) {
        if !m.owes.is_empty() {
            lines.push(format!(
                "  note: {} still owes an offer to {:?}",
                m.user_id, m.owes
            ));
        }
    }
    lines.push(format!(
        "offers parked on the server: {} (peerBuffer {PEER_BUFFER})",
        parked
            .iter()
            .map(|(n, p)| format!("{n} {p}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Leaks: RTCPeerConnections = open peers + parked offers, for every member.
    let mut counts = Vec::new();
    for (name, (connections, peers, signaling)) in &status {
        let p = parked.get(name).copied().unwrap_or(0);
        counts.push(format!(
            "{name} {connections} = {} open + {p} parked{}",
            peers.len(),
            if *signaling { "" } else { " (signaling down)" }
        ));
        if *connections != peers.len() + p {
            failures.push(format!(
                "{name}: connection_count {connections} != {} open peers + {p} parked offers",
                peers.len()
            ));
        }
    }
    lines.push(format!("connection counts: {}", counts.join("; ")));
    Check {
        pairs,
        linked,
        failures,
        lines,
    }
}

/// Sleeps until `until`, collecting closed members meanwhile.
fn wait_until(room: &mut Room, until: Instant) {
    loop {
        room.reap(CLOSE_HUNG);
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(100)));
    }
}

/// The `soak` subcommand.
pub fn bench(args: SoakArgs) {
    assert!(args.members >= 2, "--members: at least 2");
    assert!(args.sample > 0, "--sample: at least 1 s");
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64
    });
    let mut rng = Rng(seed);
    let rt = runtime();
    let server = rt.block_on(spawn_server());
    let url = format!("ws://{}", server.local_addr());
    println!(
        "fast_rtc_bench soak: {} members (1 long-lived + {} joining and leaving) in one room, {} s of churn, seed {seed}",
        args.members,
        args.members - 1,
        args.seconds
    );
    println!(
        "{}; our server in this process on {url}; members are child processes, webrtc-rs on 127.0.0.1; a churn step every {}-{} ms; leaves: close(), or SIGKILL {} % of the time; {} % of joins leave again within {} ms",
        machine(),
        CHURN_GAP_MS.0,
        CHURN_GAP_MS.1,
        args.kill_percent,
        args.flash_percent,
        FLASH_MS.1
    );
    println!();

    let mut long = Member::spawn(&url, LONG, ROOM);
    // The run starts once the long-lived member is in the room with its offer parked.
    let up = Instant::now() + Duration::from_secs(10);
    while parked(&rt.block_on(server.room(&room_id()))).get(LONG) != Some(&PEER_BUFFER) {
        assert!(
            Instant::now() < up,
            "the long-lived member did not park its offer on the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut room = Room {
        slots: (1..args.members).map(|_| None).collect(),
        leaving: Vec::new(),
        counts: Counts::default(),
    };
    println!(
        "| t (s)  | live | long RSS (KiB) | long connections | long open peers | parked total / long / max | joins | closes / kills |"
    );
    println!(
        "|-------:|-----:|---------------:|-----------------:|----------------:|--------------------------:|------:|---------------:|"
    );
    let t0 = Instant::now();
    let sample_every = Duration::from_secs(args.sample);
    let churn_end = t0 + Duration::from_secs(args.seconds);
    let gap = |rng: &mut Rng| Duration::from_millis(rng.range(CHURN_GAP_MS.0, CHURN_GAP_MS.1));
    let mut curve = vec![sample(&rt, &server, &mut long, &room, t0)];
    let mut next_sample = t0 + sample_every;
    let mut next_churn = t0 + gap(&mut rng);
    while Instant::now() < churn_end {
        wait_until(&mut room, next_churn.min(next_sample).min(churn_end));
        let now = Instant::now();
        if now >= next_churn && now < churn_end {
            let owed = |name: &str| {
                rt.block_on(server.room(&room_id())).is_some_and(|r| {
                    r.members
                        .iter()
                        .any(|m| m.owes.iter().any(|u| u.as_str() == name))
                })
            };
            room.step(&mut rng, &url, &args, &owed);
            next_churn = now + gap(&mut rng);
        }
        if now >= next_sample {
            curve.push(sample(&rt, &server, &mut long, &room, t0));
            next_sample += sample_every;
        }
    }
    let c = &room.counts;
    println!(
        "(churn over: {} joins ({} flash), {} leaves by close(), {} by SIGKILL; {} live)",
        c.joins,
        c.flashes,
        c.closes,
        c.kills,
        room.live(),
    );
    // The room fills up for the checks: every empty slot joins at once, into the members
    // that lived through the churn.
    let mut filled = 0;
    if !args.no_fill {
        while !room.leaving.is_empty() {
            wait_until(&mut room, Instant::now() + Duration::from_millis(100));
        }
        for (i, slot) in room.slots.iter_mut().enumerate() {
            if slot.is_none() {
                *slot = Some(Member::spawn(&url, &slot_name(i), ROOM));
                filled += 1;
            }
        }
    }
    println!(
        "({filled} joined at once to fill the room; {} live; settling {} s)",
        room.live(),
        args.settle
    );
    let settled = Instant::now() + Duration::from_secs(args.settle);
    while Instant::now() < settled {
        wait_until(&mut room, next_sample.min(settled));
        if Instant::now() >= next_sample {
            curve.push(sample(&rt, &server, &mut long, &room, t0));
            next_sample += sample_every;
        }
    }
    // Members still closing are gone from the mesh once reaped.
    wait_until(&mut room, Instant::now());
    while !room.leaving.is_empty() {
        wait_until(&mut room, Instant::now() + Duration::from_millis(100));
    }

    let verify_end = Instant::now() + Duration::from_secs(args.verify);
    let mut attempts = 0;
    let result = loop {
        attempts += 1;
        let mut live: Vec<&mut Member> = std::iter::once(&mut long)
            .chain(room.slots.iter_mut().flatten())
            .collect();
        let c = check(&rt, &server, &mut live);
        if c.failures.is_empty() || Instant::now() >= verify_end {
            break c;
        }
        println!(
            "(check {attempts} at {:.1} s: {} failure(s), first: {}; retrying)",
            t0.elapsed().as_secs_f64(),
            c.failures.len(),
            c.failures[0]
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    println!("(after the checks:)");
    let end = sample(&rt, &server, &mut long, &room, t0);
    let rss_start = curve.first().map_or(0, |s| s.rss_kib);
    let rss_peak = curve
        .iter()
        .chain(std::iter::once(&end))
        .map(|s| s.rss_kib)
        .max()
        .unwrap_or(0);
    println!();
    println!(
        "checked at {:.1} s (attempt {attempts}), {} live members: {}",
        t0.elapsed().as_secs_f64(),
        room.live(),
        std::iter::once(LONG.to_owned())
            .chain(room.slots.iter().flatten().map(|m| m.name.clone()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "pairs linked: {}/{} (each end sees the other open, and a message round-trips both ways)",
        result.linked, result.pairs
    );
    for line in &result.lines {
        println!("{line}");
    }
    println!(
        "long-lived member, sampled after the checks: connection_count {} with {} open peers and {} offer(s) parked; RSS start {} KiB, end {} KiB ({:+} KiB), peak {} KiB",
        end.connections.map_or("-".into(), |c| c.to_string()),
        end.open.map_or("-".into(), |c| c.to_string()),
        end.parked_long,
        rss_start,
        end.rss_kib,
        end.rss_kib as i64 - rss_start as i64,
        rss_peak
    );
    let c = &room.counts;
    println!(
        "churn: {} joins ({} flash: left within {} ms), {} leaves by close() ({} whose driver did not finish, {} that did not exit), {} by SIGKILL; then {filled} joined at once to fill the room",
        c.joins, c.flashes, FLASH_MS.1, c.closes, c.stuck, c.hung, c.kills
    );
    if args.waiting_leave_percent > 0 {
        println!(
            "waiting joiners killed: {} seen on a waiting list, {} never seen waiting",
            c.waiting_leaves, c.waiting_missed
        );
    }
    for f in &result.failures {
        println!("FAILED: {f}");
    }
    let pass = result.failures.is_empty();
    println!(
        "VERDICT: {} (seed {seed}; {}/{} pairs linked, {} failure(s))",
        if pass { "PASS" } else { "FAIL" },
        result.linked,
        result.pairs,
        result.failures.len()
    );

    // Everyone leaves; the server stops.
    let mut closing: Vec<Leaving> = room
        .slots
        .iter_mut()
        .filter_map(Option::take)
        .map(Member::close)
        .collect();
    closing.push(long.close());
    for mut l in closing {
        while l.reap(CLOSE_HUNG).is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = rt.block_on(server.shutdown());
    if !pass {
        std::process::exit(1);
    }
}
