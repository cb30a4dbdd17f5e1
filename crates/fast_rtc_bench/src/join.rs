//! `join`: connect times, mesh formation, memory, steady-state latency and bulk throughput of
//! bevy_fast_rtc's swarm and of matchbox_socket 0.15, side by side in one run.
//!
//! # Where it runs
//! matchbox_socket binds its UDP sockets to `0.0.0.0`, and webrtc-rs then offers every address
//! of the machine except loopback. So the whole benchmark re-runs itself inside a network
//! namespace it creates (`ip netns add`, root needed) holding only `lo` and a veth pair with
//! `10.203.0.1/24` on one end with a multicast route (webrtc-rs's mDNS socket needs one). Both libraries
//! then bind `0.0.0.0` and gather the same single host candidate; no packet leaves the
//! namespace. `--no-netns` runs ours alone on 127.0.0.1 (no matchbox rows).
//!
//! # What is measured
//! - *join*: a joiner's time from opening its signaling WebSocket until its data channels are
//!   open with every member (ours: the `fast` channel, our default, and the `Open` event;
//!   matchbox: one reliable channel, its default, and `PeerState::Connected`, which it reports
//!   once all of a peer's channels are open). Members joined one by one beforehand and are
//!   idle. Optionally the joiner's own signaling link goes through a proxy in this binary that
//!   delays every byte by D in each direction (the members' links are direct: a joiner far
//!   from the server). matchbox's socket is polled every millisecond (its API has no wait);
//!   ours is awaited.
//! - *mesh*: M members start at once; the time until every member has all M-1 peers open, and
//!   the resident memory those links added (both ends live in one child process).
//! - *steady*: 8 members, each sending a 100-byte state to every peer at 60 Hz on an unreliable
//!   channel for some seconds; one-way latency (sender and receiver share a clock: one child
//!   process) and the child's CPU time per second of wall time. Both libraries are drained by
//!   the same 1 ms polling loop.
//! - *bulk*: one member sends 32 MiB in 16 KiB messages on a reliable channel to another; the
//!   time until the last byte arrives.
//!
//! # The floor
//! Beside each join row: the least time the join can take given the injected delay D, counting
//! signaling legs on the joiner's link (D each) and the peer-to-peer round trips at the
//! loopback round trip measured in the same run (ICE 1, DTLS 3, SCTP 2, DCEP ½).
//! - ours (fast-rtc): WebSocket upgrade (2 legs) + `init` → `accept` (2) + answer to the
//!   server (1) = 5 D;
//! - matchbox (classic): upgrade (2; the server announces the joiner at upgrade) + the member's
//!   offer to the joiner (1) + the answer (1) = 4 D. That floor is lower than ours: matchbox
//!   needs no `init` frame. What fast-rtc saves is the member's offer creation and ICE
//!   gathering, which are off the joiner's path, and matchbox pays webrtc-rs's timer ticks.

use crate::{SECRET, cpu_model, median};
use fast_rtc_server::{JwtAuthenticator, Secret, Server, ServerConfig, TokenIssuer};
use fast_rtc_swarm::{
    ChannelConfig, ChannelId, NativeConfig, Payload, Signaling, SwarmConfig, SwarmEvent,
    SwarmHandle, start,
};
use matchbox_socket::{PeerState, WebRtcSocket};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NETNS_ENV: &str = "FAST_RTC_BENCH_IN_NETNS";
const NETNS_ADDR: &str = "10.203.0.1/24";
/// Longest a join, a mesh or a bulk transfer may take before the run counts as failed.
const GIVE_UP: Duration = Duration::from_secs(20);

#[derive(clap::Args, Clone, Debug)]
pub struct JoinArgs {
    /// Runs per join row; medians are printed.
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Members present before the joiner, for the rows without delay.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
    members: Vec<usize>,
    /// One-way signaling delays (ms) on the joiner's link, each measured with --delay-members.
    #[arg(long, value_delimiter = ',', default_value = "25,50")]
    delays: Vec<u64>,
    /// Members present for the delayed rows.
    #[arg(long, default_value_t = 4)]
    delay_members: usize,
    /// Members joining at once for the mesh row (0 skips it).
    #[arg(long, default_value_t = 16)]
    mesh: usize,
    /// Runs of the mesh row.
    #[arg(long, default_value_t = 3)]
    mesh_runs: usize,
    /// Seconds of the steady-state row (0 skips steady and bulk).
    #[arg(long, default_value_t = 5)]
    steady_seconds: u64,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/fast_rtc_bench_join.json")]
    json: PathBuf,
    /// Run on 127.0.0.1 without a network namespace: ours only.
    #[arg(long)]
    no_netns: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Lib {
    Ours,
    Matchbox,
}

impl Lib {
    fn label(self) -> &'static str {
        match self {
            Lib::Ours => "bevy_fast_rtc",
            Lib::Matchbox => "matchbox 0.15",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Mesh,
    Steady,
    Bulk,
}

/// Entry point: sets up the namespace (unless asked not to) and runs the benchmark in it.
pub fn main(args: JoinArgs) {
    if args.no_netns || in_netns() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(args));
        return;
    }
    let ns = format!("fastrtc-bench-{}", std::process::id());
    let ip = |a: &[&str]| {
        Command::new("ip")
            .args(a)
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        ip(&["netns", "add", &ns]),
        "`ip netns add` failed: the join benchmark needs root and iproute2 (or pass --no-netns)"
    );
    let setup = [
        vec!["-n", &ns, "link", "set", "lo", "up"],
        vec![
            "-n", &ns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
        ],
        vec!["-n", &ns, "addr", "add", NETNS_ADDR, "dev", "veth0"],
        vec!["-n", &ns, "link", "set", "veth1", "up"],
        vec!["-n", &ns, "link", "set", "veth0", "up"],
        vec!["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "veth0"],
    ];
    for a in &setup {
        if !ip(a) {
            ip(&["netns", "del", &ns]);
            panic!("`ip {}` failed", a.join(" "));
        }
    }
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(NETNS_ENV, "1")
        .status();
    ip(&["netns", "del", &ns]);
    let status = status.unwrap();
    std::process::exit(status.code().unwrap_or(1));
}

struct Servers {
    ours: fast_rtc_server::ServerHandle,
    ours_url: String,
    matchbox_url: Option<String>,
}

fn issuer() -> TokenIssuer {
    TokenIssuer::new(&Secret::new(SECRET).unwrap())
}

fn native(in_netns: bool) -> NativeConfig {
    if in_netns {
        NativeConfig::default()
    } else {
        NativeConfig::loopback()
    }
}

fn our_member(
    base: &str,
    user: &str,
    room: &str,
    config: SwarmConfig,
    native: NativeConfig,
) -> SwarmHandle {
    let token = issuer()
        .issue(user, room, Duration::from_secs(3600), SystemTime::now())
        .unwrap();
    let signaling = Signaling::WebSocket {
        url: format!("{base}/ws"),
        token,
    };
    let (handle, driver) = start(config, native, signaling).unwrap();
    tokio::spawn(driver);
    handle
}

/// Waits until `h` has reported `n` opens; the time of the last one.
async fn our_opens(h: &SwarmHandle, n: usize, t0: Instant) -> Option<Duration> {
    let mut open = 0;
    let deadline = t0 + GIVE_UP;
    while open < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, h.recv()).await {
            Ok(Some(SwarmEvent::Open(_))) => open += 1,
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
    Some(t0.elapsed())
}

struct Mb {
    socket: WebRtcSocket,
    connected: HashSet<matchbox_socket::PeerId>,
}

fn mb_member(base: &str, room: &str, channels: &[matchbox_socket::ChannelConfig]) -> Mb {
    let mut builder = WebRtcSocket::builder(format!("{base}/{room}"));
    for c in channels {
        builder = builder.add_channel(*c);
    }
    let (socket, fut) = builder.build();
    tokio::spawn(fut);
    Mb {
        socket,
        connected: HashSet::new(),
    }
}

impl Mb {
    fn poll(&mut self) {
        if let Ok(changes) = self.socket.try_update_peers() {
            for (peer, state) in changes {
                match state {
                    PeerState::Connected => {
                        self.connected.insert(peer);
                    }
                    PeerState::Disconnected => {
                        self.connected.remove(&peer);
                    }
                }
            }
        }
    }
}

/// Polls every millisecond until `m` has `n` connected peers.
async fn mb_connected(m: &mut Mb, n: usize, t0: Instant) -> Option<Duration> {
    loop {
        m.poll();
        if m.connected.len() >= n {
            return Some(t0.elapsed());
        }
        if t0.elapsed() > GIVE_UP {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A TCP proxy to `upstream` that holds every byte for `delay` in each direction.
async fn delay_proxy(upstream: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            let Ok(up) = tokio::net::TcpStream::connect(upstream).await else {
                continue;
            };
            let _ = down.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let (dr, dw) = down.into_split();
            let (ur, uw) = up.into_split();
            tokio::spawn(pump(dr, uw, delay));
            tokio::spawn(pump(ur, dw, delay));
        }
    });
    addr
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let writer = tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            // async-io's timers fire on time; tokio's round up to the next millisecond.
            async_io::Timer::at(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let at = Instant::now() + delay;
                if tx.send((at, buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Median UDP round trip on 127.0.0.1 (the peer-to-peer part of the floor).
async fn loopback_rtt() -> Duration {
    let a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let echo = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = b.recv_from(&mut buf).await {
            if buf[..n] == *b"stop" || b.send_to(&buf[..n], from).await.is_err() {
                break;
            }
        }
    });
    let mut samples = Vec::new();
    let mut buf = [0u8; 64];
    for _ in 0..500 {
        let t = Instant::now();
        a.send_to(b"ping", ba).await.unwrap();
        a.recv_from(&mut buf).await.unwrap();
        samples.push(t.elapsed().as_secs_f64());
    }
    a.send_to(b"stop", ba).await.unwrap();
    let _ = echo.await;
    let _ = aa;
    Duration::from_secs_f64(median(samples))
}

#[derive(Serialize, Clone)]
struct JoinRow {
    members: usize,
    delay_ms: u64,
    floor_ours_ms: f64,
    floor_matchbox_ms: f64,
    ours_ms: Option<f64>,
    ours_failed: usize,
    matchbox_ms: Option<f64>,
    matchbox_failed: usize,
}

#[derive(Serialize, Clone, Default, serde::Deserialize)]
struct ChildResult {
    ok: bool,
    detail: String,
    /// mesh: time until all links open (ms); bulk: transfer time (ms).
    millis: f64,
    links: usize,
    rss_per_link_kib: f64,
    p50_ms: f64,
    p99_ms: f64,
    delivered: f64,
    cpu_percent: f64,
    mib_per_s: f64,
}

#[derive(Serialize)]
struct Report {
    machine: String,
    netns: bool,
    runs: usize,
    loopback_rtt_us: f64,
    join: Vec<JoinRow>,
    mesh: Vec<(Lib, ChildResult)>,
    steady: Vec<(Lib, ChildResult)>,
    bulk: Vec<(Lib, ChildResult)>,
}

async fn run(args: JoinArgs) {
    let in_netns = in_netns();
    let libs: Vec<Lib> = if in_netns {
        vec![Lib::Ours, Lib::Matchbox]
    } else {
        vec![Lib::Ours]
    };
    let secret = Secret::new(SECRET).unwrap();
    let ours = Server::new(ServerConfig::default(), JwtAuthenticator::new(&secret))
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ours_url = format!("ws://{}", ours.local_addr());
    let matchbox_url = if in_netns {
        let mut server =
            matchbox_signaling::SignalingServer::full_mesh_builder(([127, 0, 0, 1], 0)).build();
        let addr = server.bind().unwrap();
        tokio::spawn(async move { server.serve().await });
        Some(format!("ws://{addr}"))
    } else {
        None
    };
    let servers = Servers {
        ours,
        ours_url,
        matchbox_url,
    };
    let rtt = loopback_rtt().await;
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    println!(
        "fast_rtc_bench join: {}; {}; release build; medians of {} runs",
        if in_netns {
            "in a private network namespace (lo + veth 10.203.0.1), both libraries binding 0.0.0.0"
        } else {
            "on 127.0.0.1 (ours only)"
        },
        machine,
        args.runs
    );
    println!("loopback UDP round trip: {:.0} us", rtt.as_secs_f64() * 1e6);
    println!();

    let mut cases: Vec<(usize, u64)> = args.members.iter().map(|&n| (n, 0)).collect();
    cases.extend(args.delays.iter().map(|&d| (args.delay_members, d)));
    let p2p_ms = 6.5 * rtt.as_secs_f64() * 1e3;
    let mut rows = Vec::new();
    println!(
        "| joiner -> channels open with all | floor ours | bevy_fast_rtc p50 | floor matchbox | matchbox p50 | ours/matchbox |"
    );
    println!(
        "|----------------------------------|-----------:|------------------:|---------------:|-------------:|--------------:|"
    );
    let mut room = 0usize;
    for (n, d) in cases {
        let delay = Duration::from_millis(d);
        let mut row = JoinRow {
            members: n,
            delay_ms: d,
            floor_ours_ms: 5.0 * d as f64 + p2p_ms,
            floor_matchbox_ms: 4.0 * d as f64 + p2p_ms,
            ours_ms: None,
            ours_failed: 0,
            matchbox_ms: None,
            matchbox_failed: 0,
        };
        for &lib in &libs {
            let mut times = Vec::new();
            let mut failed = 0;
            for _ in 0..args.runs {
                room += 1;
                let t = match lib {
                    Lib::Ours => join_ours(&servers, n, delay, &format!("j{room}"), in_netns).await,
                    Lib::Matchbox => join_matchbox(&servers, n, delay, &format!("j{room}")).await,
                };
                match t {
                    Some(t) => times.push(t.as_secs_f64() * 1e3),
                    None => failed += 1,
                }
            }
            let m = (!times.is_empty()).then(|| median(times));
            match lib {
                Lib::Ours => (row.ours_ms, row.ours_failed) = (m, failed),
                Lib::Matchbox => (row.matchbox_ms, row.matchbox_failed) = (m, failed),
            }
        }
        let label = if d == 0 {
            format!("N={n}, loopback")
        } else {
            format!("N={n}, +{d} ms one-way signaling")
        };
        println!(
            "| {label:<32} | {:>10.1} | {:>17} | {:>14.1} | {:>12} | {:>13} |",
            row.floor_ours_ms,
            fmt_ms(row.ours_ms, row.ours_failed),
            row.floor_matchbox_ms,
            if in_netns {
                fmt_ms(row.matchbox_ms, row.matchbox_failed)
            } else {
                "-".into()
            },
            ratio(row.ours_ms, row.matchbox_ms)
        );
        rows.push(row);
    }

    let mut mesh = Vec::new();
    if args.mesh > 1 {
        println!();
        println!(
            "| {} members joining at once | all {} links open, p50 (ms) | failed runs | RSS per link (KiB) |",
            args.mesh,
            args.mesh * (args.mesh - 1) / 2
        );
        println!("|---|---:|---:|---:|");
        for &lib in &libs {
            let mut results = Vec::new();
            for _ in 0..args.mesh_runs {
                results.push(child(&servers, lib, Scenario::Mesh, args.mesh, 0));
            }
            let ok: Vec<&ChildResult> = results.iter().filter(|r| r.ok).collect();
            let failed = results.len() - ok.len();
            let t = (!ok.is_empty()).then(|| median(ok.iter().map(|r| r.millis).collect()));
            let mem =
                (!ok.is_empty()).then(|| median(ok.iter().map(|r| r.rss_per_link_kib).collect()));
            println!(
                "| {} | {} | {failed} | {} |",
                lib.label(),
                t.map_or("-".into(), |t| format!("{t:.0}")),
                mem.map_or("-".into(), |m| format!("{m:.0}"))
            );
            for r in results.iter().filter(|r| !r.ok) {
                println!("|   ({} run failed: {}) | | | |", lib.label(), r.detail);
            }
            if let Some(r) = ok.first() {
                let mut r = (*r).clone();
                r.millis = t.unwrap_or_default();
                r.rss_per_link_kib = mem.unwrap_or_default();
                mesh.push((lib, r));
            } else if let Some(r) = results.into_iter().next() {
                mesh.push((lib, r));
            }
        }
    }

    let mut steady = Vec::new();
    let mut bulk = Vec::new();
    if args.steady_seconds > 0 {
        println!();
        println!(
            "| 8 peers, 100 B states at 60 Hz, unreliable, {} s | one-way p50 (ms) | p99 (ms) | delivered | CPU (% of one core) |",
            args.steady_seconds
        );
        println!("|---|---:|---:|---:|---:|");
        for &lib in &libs {
            let r = child(&servers, lib, Scenario::Steady, 8, args.steady_seconds);
            println!(
                "| {} | {:.2} | {:.2} | {:.1} % | {:.0} |{}",
                lib.label(),
                r.p50_ms,
                r.p99_ms,
                r.delivered * 100.0,
                r.cpu_percent,
                if r.ok {
                    String::new()
                } else {
                    format!(" failed: {}", r.detail)
                }
            );
            steady.push((lib, r));
        }
        println!();
        println!(
            "| reliable bulk, 32 MiB in 16 KiB messages, 2 peers | MiB/s, median of 3 | each run |"
        );
        println!("|---|---:|---|");
        for &lib in &libs {
            let runs: Vec<ChildResult> = (0..3)
                .map(|_| child(&servers, lib, Scenario::Bulk, 2, 0))
                .collect();
            let rates: Vec<f64> = runs.iter().filter(|r| r.ok).map(|r| r.mib_per_s).collect();
            let shown = rates
                .iter()
                .map(|r| format!("{r:.1}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut r = runs
                .iter()
                .find(|r| r.ok)
                .cloned()
                .unwrap_or_else(|| runs[0].clone());
            if !rates.is_empty() {
                r.mib_per_s = median(rates);
            }
            let figure = if r.ok {
                format!("{:.1}", r.mib_per_s)
            } else {
                format!("failed: {}", r.detail)
            };
            println!("| {} | {figure} | {shown} |", lib.label());
            bulk.push((lib, r));
        }
    }

    let report = Report {
        machine,
        netns: in_netns,
        runs: args.runs,
        loopback_rtt_us: rtt.as_secs_f64() * 1e6,
        join: rows,
        mesh,
        steady,
        bulk,
    };
    if let Some(dir) = args.json.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&args.json, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    println!();
    println!("JSON: {}", args.json.display());
    servers.ours.shutdown().await.unwrap();
}

fn fmt_ms(v: Option<f64>, failed: usize) -> String {
    let v = v.map_or("-".into(), |v| format!("{v:.1}"));
    if failed > 0 {
        format!("{v} ({failed} failed)")
    } else {
        v
    }
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(o), Some(t)) if t > 0.0 => format!("{:.2}x", o / t),
        _ => "-".into(),
    }
}

async fn join_ours(
    s: &Servers,
    n: usize,
    delay: Duration,
    room: &str,
    in_netns: bool,
) -> Option<Duration> {
    let mut present = Vec::new();
    for i in 0..n {
        let m = our_member(
            &s.ours_url,
            &format!("p{i}"),
            room,
            SwarmConfig::new(room),
            native(in_netns),
        );
        our_opens(&m, i, Instant::now()).await?;
        present.push(m);
    }
    // Let every member's refill offer reach the server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = if delay.is_zero() {
        s.ours_url.clone()
    } else {
        let upstream = s.ours.local_addr();
        format!("ws://{}", delay_proxy(upstream, delay).await)
    };
    let t0 = Instant::now();
    let joiner = our_member(
        &base,
        "joiner",
        room,
        SwarmConfig::new(room),
        native(in_netns),
    );
    let t = our_opens(&joiner, n, t0).await;
    joiner.close();
    for m in &present {
        m.close();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    t
}

async fn join_matchbox(s: &Servers, n: usize, delay: Duration, room: &str) -> Option<Duration> {
    let base = s.matchbox_url.clone()?;
    let channels = [matchbox_socket::ChannelConfig::reliable()];
    let mut present: Vec<Mb> = Vec::new();
    // One by one: matchbox_signaling has a join race when members arrive together.
    for i in 0..n {
        let mut m = mb_member(&base, room, &channels);
        let t = mb_connected(&mut m, i, Instant::now()).await;
        present.push(m);
        t?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for m in &mut present {
        m.poll();
    }
    let url = if delay.is_zero() {
        base
    } else {
        let upstream: SocketAddr = base.trim_start_matches("ws://").parse().unwrap();
        format!("ws://{}", delay_proxy(upstream, delay).await)
    };
    let t0 = Instant::now();
    let mut joiner = mb_member(&url, room, &channels);
    let t = mb_connected(&mut joiner, n, t0).await;
    joiner.socket.close();
    for m in &mut present {
        m.socket.close();
    }
    drop(joiner);
    drop(present);
    tokio::time::sleep(Duration::from_millis(200)).await;
    t
}

/// Runs one scenario in a child process (its own memory and CPU figures) in this namespace.
fn child(s: &Servers, lib: Lib, scenario: Scenario, members: usize, seconds: u64) -> ChildResult {
    let url = match lib {
        Lib::Ours => s.ours_url.clone(),
        Lib::Matchbox => s.matchbox_url.clone().unwrap_or_default(),
    };
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["join-child", "--lib"])
        .arg(match lib {
            Lib::Ours => "ours",
            Lib::Matchbox => "matchbox",
        })
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| ChildResult {
            detail: format!(
                "child exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ),
            ..ChildResult::default()
        })
}

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
pub fn child_main(args: ChildArgs) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(async {
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

/// Whether this process runs inside the benchmark's namespace (the re-run, or its children).
fn in_netns() -> bool {
    std::env::var_os(NETNS_ENV).is_some()
}

fn rss_kib() -> f64 {
    crate::process_rss_kib() as f64
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
    let rss0 = rss_kib();
    let n = args.members;
    match form_mesh(args, n, true).await {
        Ok((members, poller, t)) => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let links = poller.links();
            let rss = rss_kib() - rss0;
            drop(members);
            ChildResult {
                ok: true,
                millis: t.as_secs_f64() * 1e3,
                links,
                rss_per_link_kib: rss / links.max(1) as f64,
                ..ChildResult::default()
            }
        }
        Err(detail) => ChildResult {
            detail,
            ..ChildResult::default()
        },
    }
}

fn send_all(m: &mut Member, payload: &[u8]) -> usize {
    match m {
        Member::Ours(h) => h
            .broadcast(GAME, Payload::Binary(payload.to_vec()))
            .unwrap_or(0),
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
        Err(detail) => {
            return ChildResult {
                detail,
                ..ChildResult::default()
            };
        }
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    poller.poll(&mut members, |_, _| {});
    let mut latencies: Vec<f64> = Vec::new();
    let mut sent = 0usize;
    let mut received = 0usize;
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
        poller.poll(&mut members, |_, data| {
            if let Some(ms) = one_way_ms(data) {
                latencies.push(ms);
                received += 1;
            }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Late arrivals.
    let grace = Instant::now() + Duration::from_millis(200);
    while Instant::now() < grace {
        poller.poll(&mut members, |_, data| {
            if let Some(ms) = one_way_ms(data) {
                latencies.push(ms);
                received += 1;
            }
        });
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
        Err(detail) => {
            return ChildResult {
                detail,
                ..ChildResult::default()
            };
        }
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
            return ChildResult {
                detail: format!("{got} of {TOTAL} bytes after {} s", GIVE_UP.as_secs()),
                ..ChildResult::default()
            };
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
