//! The scenarios that run in a child process of their own (its own memory and CPU figures):
//! mesh, steady and bulk. The parent starts one with [`run`]; the child prints its
//! [`ChildResult`] as one JSON line.

use super::members::{Mb, mb_member, native, our_member};
use super::net::in_netns;
use super::servers::{GIVE_UP, Servers};
use crate::util::{Lib, rss_kib, runtime};
use fast_rtc_swarm::{ChannelConfig, ChannelId, Payload, SwarmConfig, SwarmEvent, SwarmHandle};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What a child process measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Mesh,
    Steady,
    Bulk,
}

/// What a child reports; the figures of the other scenarios stay 0.
#[derive(Serialize, Clone, Default, serde::Deserialize)]
pub struct ChildResult {
    pub ok: bool,
    pub detail: String,
    /// mesh: time until all links open (ms); bulk: transfer time (ms).
    pub millis: f64,
    pub links: usize,
    pub rss_per_link_kib: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub delivered: f64,
    pub cpu_percent: f64,
    pub mib_per_s: f64,
}

impl ChildResult {
    /// A failed run, and why.
    fn failed(detail: String) -> Self {
        ChildResult {
            detail,
            ..ChildResult::default()
        }
    }
}

/// Runs one scenario in a child process (its own memory and CPU figures) in this namespace.
pub(super) fn run(
    s: &Servers,
    lib: Lib,
    scenario: Scenario,
    members: usize,
    seconds: u64,
) -> ChildResult {
    let url = match lib {
        Lib::Ours => s.ours_url.clone(),
        Lib::Matchbox => s.matchbox_url.clone().unwrap_or_default(),
    };
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["join-child", "--lib"])
        .arg(lib.arg())
        .arg("--scenario")
        .arg(match scenario {
            Scenario::Mesh => "mesh",
            Scenario::Steady => "steady",
            Scenario::Bulk => "bulk",
        })
        .args(["--url", &url, "--members", &members.to_string()])
        .args(["--seconds", &seconds.to_string()])
        .output()
        .unwrap();
    crate::util::child_result(&out).unwrap_or_else(ChildResult::failed)
}

/// The hidden `join-child` subcommand's arguments, as [`run`] passes them.
#[derive(clap::Args, Clone, Debug)]
pub struct ChildArgs {
    #[arg(long)]
    lib: Lib,
    #[arg(long)]
    scenario: Scenario,
    #[arg(long)]
    url: String,
    #[arg(long)]
    members: usize,
    #[arg(long, default_value_t = 0)]
    seconds: u64,
}

/// Child process: runs one scenario and prints its result as one JSON line.
pub fn main(args: ChildArgs) {
    let result = runtime().block_on(async {
        match args.scenario {
            Scenario::Mesh => mesh(&args).await,
            Scenario::Steady => steady(&args).await,
            Scenario::Bulk => bulk(&args).await,
        }
    });
    println!("{}", serde_json::to_string(&result).unwrap());
    // Members' tasks may still be closing; the figures are out.
    std::process::exit(0);
}

/// A member of either library, for the child scenarios.
enum Member {
    Ours(SwarmHandle),
    Matchbox(Box<Mb>),
}

const GAME: ChannelId = ChannelId(1);

fn member(args: &ChildArgs, i: usize, room: &str, reliable: bool) -> Member {
    match args.lib {
        Lib::Ours => {
            let mut config = SwarmConfig::new(room);
            let game = config.add_channel(if reliable {
                ChannelConfig::reliable("game")
            } else {
                ChannelConfig::unreliable("game")
            });
            assert_eq!(game, GAME);
            Member::Ours(our_member(
                &args.url,
                &format!("m{i}"),
                room,
                config,
                native(in_netns()),
            ))
        }
        Lib::Matchbox => {
            let channel = if reliable {
                matchbox_socket::ChannelConfig::reliable()
            } else {
                matchbox_socket::ChannelConfig::unreliable()
            };
            Member::Matchbox(Box::new(mb_member(&args.url, room, &[channel])))
        }
    }
}

/// Stamps: nanoseconds since this process's first call.
fn clock() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Drains what each member received; returns (receiver, payload) pairs and open counts.
struct Poller {
    open: Vec<HashSet<String>>,
}

impl Poller {
    fn new(n: usize) -> Self {
        Poller {
            open: vec![HashSet::new(); n],
        }
    }

    fn poll(&mut self, members: &mut [Member], mut on_data: impl FnMut(usize, &[u8])) {
        for (i, m) in members.iter_mut().enumerate() {
            match m {
                Member::Ours(h) => {
                    while let Some(ev) = h.try_recv() {
                        match ev {
                            SwarmEvent::Open(p) => {
                                self.open[i].insert(p.user_id.to_string());
                            }
                            SwarmEvent::Close { peer, .. } => {
                                self.open[i].remove(&peer.user_id.to_string());
                            }
                            SwarmEvent::Data { payload, .. } => on_data(i, payload.as_bytes()),
                            _ => {}
                        }
                    }
                }
                Member::Matchbox(m) => {
                    m.poll();
                    self.open[i] = m.connected.iter().map(|p| p.to_string()).collect();
                    for (_, packet) in m.socket.channel_mut(0).receive() {
                        on_data(i, &packet);
                    }
                }
            }
        }
    }

    fn links(&self) -> usize {
        self.open.iter().map(HashSet::len).sum::<usize>() / 2
    }
}

/// Starts `n` members at once and polls every millisecond until all links are open.
async fn form_mesh(
    args: &ChildArgs,
    n: usize,
    reliable: bool,
) -> Result<(Vec<Member>, Poller, Duration), String> {
    let room = format!("c{}", std::process::id());
    let t0 = Instant::now();
    let mut members: Vec<Member> = (0..n).map(|i| member(args, i, &room, reliable)).collect();
    let mut poller = Poller::new(n);
    let want = n * (n - 1) / 2;
    loop {
        poller.poll(&mut members, |_, _| {});
        if poller.open.iter().all(|o| o.len() == n - 1) {
            return Ok((members, poller, t0.elapsed()));
        }
        if t0.elapsed() > GIVE_UP {
            return Err(format!(
                "{} of {want} links open after {} s",
                poller.links(),
                GIVE_UP.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn mesh(args: &ChildArgs) -> ChildResult {
    let rss0 = rss_kib("self") as f64;
    let n = args.members;
    match form_mesh(args, n, true).await {
        Ok((members, poller, t)) => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let links = poller.links();
            let rss = rss_kib("self") as f64 - rss0;
            drop(members);
            ChildResult {
                ok: true,
                millis: t.as_secs_f64() * 1e3,
                links,
                rss_per_link_kib: rss / links.max(1) as f64,
                ..ChildResult::default()
            }
        }
        Err(detail) => ChildResult::failed(detail),
    }
}

fn send_all(m: &mut Member, payload: &[u8]) -> usize {
    match m {
        Member::Ours(h) => h
            .broadcast(GAME, Payload::Binary(payload.to_vec()))
            .map_or(0, |fanout| fanout.sent.len()),
        Member::Matchbox(m) => {
            let peers: Vec<_> = m.connected.iter().copied().collect();
            for p in &peers {
                m.socket.channel_mut(0).send(payload.to_vec().into(), *p);
            }
            peers.len()
        }
    }
}

/// The one-way latency of a 100-byte state stamped by [`clock`] (same process, same clock).
fn one_way_ms(state: &[u8]) -> Option<f64> {
    let stamp: [u8; 8] = state.get(..8)?.try_into().ok()?;
    (state.len() == 100).then(|| clock().saturating_sub(u64::from_le_bytes(stamp)) as f64 / 1e6)
}

async fn steady(args: &ChildArgs) -> ChildResult {
    let n = args.members;
    let (mut members, mut poller, _) = match form_mesh(args, n, false).await {
        Ok(m) => m,
        Err(detail) => return ChildResult::failed(detail),
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    poller.poll(&mut members, |_, _| {});
    let mut latencies: Vec<f64> = Vec::new();
    let mut sent = 0usize;
    let mut received = 0usize;
    let mut on_state = |_: usize, data: &[u8]| {
        if let Some(ms) = one_way_ms(data) {
            latencies.push(ms);
            received += 1;
        }
    };
    let cpu0 = cpu_time::ProcessTime::now();
    let wall0 = Instant::now();
    let period = Duration::from_secs_f64(1.0 / 60.0);
    let mut next_tick = Instant::now();
    let end = wall0 + Duration::from_secs(args.seconds);
    let mut tick = 0u64;
    while Instant::now() < end {
        if Instant::now() >= next_tick {
            next_tick += period;
            tick += 1;
            for m in members.iter_mut() {
                let mut state = [0u8; 100];
                state[..8].copy_from_slice(&clock().to_le_bytes());
                state[8..16].copy_from_slice(&tick.to_le_bytes());
                sent += send_all(m, &state);
            }
        }
        poller.poll(&mut members, &mut on_state);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Late arrivals.
    let grace = Instant::now() + Duration::from_millis(200);
    while Instant::now() < grace {
        poller.poll(&mut members, &mut on_state);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let cpu = cpu0.elapsed().as_secs_f64() / wall0.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    ChildResult {
        ok: received > 0,
        detail: format!("{received} of {sent} states received"),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        delivered: received as f64 / sent.max(1) as f64,
        cpu_percent: cpu * 100.0,
        ..ChildResult::default()
    }
}

async fn bulk(args: &ChildArgs) -> ChildResult {
    const TOTAL: usize = 32 << 20;
    const MESSAGE: usize = 16 << 10;
    let (mut members, mut poller, _) = match form_mesh(args, 2, true).await {
        Ok(m) => m,
        Err(detail) => return ChildResult::failed(detail),
    };
    let chunk = vec![7u8; MESSAGE];
    let mut queued = 0usize;
    let mut got = 0usize;
    let t0 = Instant::now();
    let peer: HashMap<usize, String> = poller
        .open
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.iter().next().map(|p| (i, p.clone())))
        .collect();
    while got < TOTAL {
        if queued < TOTAL {
            match &mut members[0] {
                Member::Ours(h) => {
                    let to: fast_rtc_protocol::UserId = peer[&0].as_str().into();
                    while queued < TOTAL
                        && h.send(&to, GAME, Payload::Binary(chunk.clone())).is_ok()
                    {
                        queued += MESSAGE;
                    }
                }
                Member::Matchbox(m) => {
                    // matchbox's send queue is unbounded: hand it everything at once.
                    let to = m.connected.iter().next().copied();
                    if let Some(to) = to {
                        while queued < TOTAL {
                            m.socket.channel_mut(0).send(chunk.clone().into(), to);
                            queued += MESSAGE;
                        }
                    }
                }
            }
        }
        poller.poll(&mut members, |i, data| {
            if i == 1 {
                got += data.len();
            }
        });
        if t0.elapsed() > GIVE_UP {
            return ChildResult::failed(format!(
                "{got} of {TOTAL} bytes after {} s",
                GIVE_UP.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let t = t0.elapsed().as_secs_f64();
    ChildResult {
        ok: true,
        millis: t * 1e3,
        mib_per_s: TOTAL as f64 / (1 << 20) as f64 / t,
        ..ChildResult::default()
    }
}
