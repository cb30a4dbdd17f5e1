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
//!
//! # Layout
//! This file holds the arguments, the join rows and the tables; [`members`] starts members of
//! either library, [`net`] holds the namespace, the delay proxy and the loopback round trip, and
//! [`child`] runs the mesh, steady and bulk scenarios in child processes.

pub mod child;
pub(crate) mod members;
mod net;
pub mod relay;
mod servers;

use crate::util::{Lib, machine, median, runtime};
use child::{ChildResult, Scenario};
use fast_rtc_swarm::SwarmConfig;
use members::{Mb, mb_connected, mb_member, native, our_member, our_opens};
use serde::Serialize;
pub(crate) use servers::Servers;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The `join` subcommand's arguments.
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
    /// Relay rows: start Debian's coturn (`turnserver`) for the run on the address the members
    /// bind (10.203.0.1 in the namespace, 127.0.0.1 with --no-netns), with a user made for it.
    #[arg(long, conflicts_with = "turn")]
    coturn: bool,
    /// Relay rows through this TURN server instead (`turn:HOST:PORT?transport=udp`, reachable
    /// from where the bench runs: inside its namespace unless --no-netns).
    #[arg(long, requires_all = ["turn_user", "turn_credential"])]
    turn: Option<String>,
    /// The TURN user for --turn.
    #[arg(long)]
    turn_user: Option<String>,
    /// The TURN credential for --turn.
    #[arg(long)]
    turn_credential: Option<String>,
    /// Members present for the relay rows (with --coturn or --turn).
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    relay_members: Vec<usize>,
}

/// The `join` subcommand: sets up the namespace (unless asked not to) and runs the benchmark in it.
pub fn bench(args: JoinArgs) {
    if args.no_netns || net::in_netns() {
        runtime().block_on(run(args));
        return;
    }
    net::rerun_in_netns();
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

#[derive(Serialize)]
struct Report {
    machine: String,
    netns: bool,
    runs: usize,
    loopback_rtt_us: f64,
    join: Vec<JoinRow>,
    /// The TURN server of the relay rows (none: no relay rows).
    turn_url: Option<String>,
    relay: Vec<relay::RelayRow>,
    mesh: Vec<(Lib, ChildResult)>,
    steady: Vec<(Lib, ChildResult)>,
    bulk: Vec<(Lib, ChildResult)>,
}

async fn run(args: JoinArgs) {
    let in_netns = net::in_netns();
    let libs: Vec<Lib> = if in_netns {
        vec![Lib::Ours, Lib::Matchbox]
    } else {
        vec![Lib::Ours]
    };
    let mut servers = Servers::ours_only().await;
    if in_netns {
        let mut server =
            matchbox_signaling::SignalingServer::full_mesh_builder(([127, 0, 0, 1], 0)).build();
        let addr = server.bind().unwrap();
        tokio::spawn(async move { server.serve().await });
        servers.matchbox_url = Some(format!("ws://{addr}"));
    }
    let rtt = net::loopback_rtt().await;
    let machine = machine();
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
                    Lib::Ours => {
                        let room = format!("j{room}");
                        join_ours(&servers, n, delay, &room, in_netns, |r| SwarmConfig::new(r))
                            .await
                    }
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

    let coturn = args
        .coturn
        .then(|| relay::start_coturn(relay::bench_ip(in_netns)));
    let turn = coturn.as_ref().map(|(_, turn)| turn.clone()).or_else(|| {
        Some(relay::Turn {
            url: args.turn.clone()?,
            user: args.turn_user.clone()?,
            credential: args.turn_credential.clone()?,
        })
    });
    let mut relay_rows = Vec::new();
    if let Some(turn) = &turn {
        println!();
        println!(
            "relay rows: bevy_fast_rtc only (matchbox is not in them), every member relay-only through {} ({}), vs the same joins direct (host candidates); both bind {}, runs alternate; medians of {} runs each",
            turn.url,
            if coturn.is_some() {
                "coturn started by the bench"
            } else {
                "given with --turn"
            },
            relay::bench_ip(in_netns),
            args.runs
        );
        println!();
        println!(
            "| joiner -> channels open with all | direct p50 | direct p90 | relay p50 | relay p90 | relay/direct | link ends relay-relay (relay / direct runs) |"
        );
        println!(
            "|----------------------------------|-----------:|-----------:|----------:|----------:|-------------:|--------------------------------------------:|"
        );
        relay_rows = relay::rows(
            &servers,
            turn,
            &args.relay_members,
            args.runs,
            in_netns,
            &mut room,
        )
        .await;
        for r in &relay_rows {
            let ends = |c: &relay::RouteCount| c.relay + c.direct + c.other;
            println!(
                "| {:<32} | {:>10} | {:>10} | {:>9} | {:>9} | {:>12} | {:>43} |",
                format!("N={}, loopback", r.members),
                fmt_ms(r.direct_p50_ms, r.direct_failed),
                fmt_ms(r.direct_p90_ms, 0),
                fmt_ms(r.relay_p50_ms, r.relay_failed),
                fmt_ms(r.relay_p90_ms, 0),
                ratio(r.relay_p50_ms, r.direct_p50_ms),
                format!(
                    "{}/{} / {}/{}",
                    r.relay_routes.relay,
                    ends(&r.relay_routes),
                    r.direct_routes.relay,
                    ends(&r.direct_routes)
                )
            );
        }
        let bad = relay_rows
            .iter()
            .any(|r| r.relay_routes.direct + r.relay_routes.other > 0 || r.direct_routes.relay > 0);
        if bad {
            println!(
                "WARNING: a relay join had a link end not routed relay to relay, or a direct one used the relay"
            );
        }
    }
    drop(coturn);

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
                results.push(child::run(&servers, lib, Scenario::Mesh, args.mesh, 0));
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
            let r = child::run(&servers, lib, Scenario::Steady, 8, args.steady_seconds);
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
                .map(|_| child::run(&servers, lib, Scenario::Bulk, 2, 0))
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
        turn_url: turn.map(|t| t.url),
        relay: relay_rows,
        mesh,
        steady,
        bulk,
    };
    crate::util::write_report(&args.json, &report);
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

/// One join of ours: `n` members join `room` one by one, then the joiner's time from opening
/// its socket (through a proxy delaying its signaling by `delay`, if not zero) until it has
/// every member open. Every member and the joiner use `config(room)` (the `voice` bench
/// declares an audio track in it). `None`: it gave up after [`GIVE_UP`](servers::GIVE_UP).
pub(crate) async fn join_ours(
    s: &Servers,
    n: usize,
    delay: Duration,
    room: &str,
    in_netns: bool,
    config: fn(&str) -> SwarmConfig,
) -> Option<Duration> {
    let mut present = Vec::new();
    for i in 0..n {
        let m = our_member(
            &s.ours_url,
            &format!("p{i}"),
            room,
            config(room),
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
        format!("ws://{}", net::delay_proxy(upstream, delay).await)
    };
    let t0 = Instant::now();
    let joiner = our_member(&base, "joiner", room, config(room), native(in_netns));
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
        format!("ws://{}", net::delay_proxy(upstream, delay).await)
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
