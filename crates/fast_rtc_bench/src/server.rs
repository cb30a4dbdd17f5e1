//! `server`: the signaling server's figures, ours vs `matchbox_signaling` 0.15 (full mesh): joins
//! per second and join latency over real WebSockets, relayed frames per second, and resident
//! memory per idle member. Each server runs in a child process of this binary (`serve-child`), so
//! its memory is measured alone; the pure hub's figures, without IO, follow the table.
//!
//! With `--instances 1,3` it measures cluster mode instead (`serve --redis`): for each count, that
//! many instances of our server sharing one Redis (started by the bench on a free loopback port,
//! or `--redis URL`), with the clients spread over them round-robin, so most members of a room
//! are on another instance than the room's owner. The same figures, one column per count.

use crate::util::{Lib, issuer, machine, median, rss_kib, secret, token};
use fast_rtc_protocol::{ClientMsg, ConnectionId, IceCandidate, ServerMsg, decode_server, encode};
use fast_rtc_server::hub::{ConnId, Hub, Identity, Output, RoomGrant};
use fast_rtc_server::{
    ConnectionLimits, JwtAuthenticator, Limits, Server, ServerConfig, TokenIssuer,
};
use fast_rtc_testkit::redis::Redis;
use fast_rtc_testkit::server_bin::spawn_announced;
use futures_util::{SinkExt, StreamExt};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// A realistic host/srflx candidate line.
const CANDIDATE: &str = "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag sXv4 network-cost 999";
/// Frames a relay sender may have in flight; below the server's per-socket queue (1024).
const WINDOW: u64 = 256;

#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// Members joined (and then kept idle for the memory figure).
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// Members per room; members of one room join one after another, rooms in parallel.
    #[arg(long, default_value_t = 8)]
    room_size: usize,
    /// Rooms filling at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Sender/receiver pairs relaying at once.
    #[arg(long, default_value_t = 4)]
    relay_pairs: usize,
    /// Frames each relay sender sends.
    #[arg(long, default_value_t = 20_000)]
    relay_frames: u64,
    /// Size of the SDP in each pre-made offer, in bytes.
    #[arg(long, default_value_t = 1200)]
    sdp_bytes: usize,
    /// Runs per server; medians are printed.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Cluster mode: instance counts to compare (e.g. `1,3`), each that many instances of our
    /// server sharing one Redis, clients spread round-robin; `0` is one server without Redis
    /// (single-process mode), as a baseline. Without it: ours vs matchbox.
    #[arg(long, value_delimiter = ',')]
    instances: Vec<usize>,
    /// The Redis (or Valkey) the instances share, e.g. `redis://127.0.0.1:6379/0`. Default: the
    /// bench starts `valkey-server` or `redis-server` itself on a free loopback port.
    #[arg(long)]
    redis: Option<String>,
    /// Cluster mode: also join this many idle members (rooms of `--room-size`) spread over the
    /// instances, once per count, and report the memory per idle member at that scale.
    #[arg(long)]
    idle: Option<usize>,
}

/// Child process: runs one server in this process and prints its address; with `redis`, an
/// instance of a cluster over that Redis.
pub async fn serve_child(kind: Lib, room_size: usize, redis: Option<String>, defaults: bool) {
    match kind {
        Lib::Ours => {
            // The attack bench measures the limits a deployment gets out of the box.
            let config = if defaults {
                ServerConfig::default()
            } else {
                ServerConfig {
                    limits: Limits {
                        max_members_per_room: room_size.max(2),
                        // The relay row measures throughput, not the rate limiter.
                        frames_per_second: 10_000_000,
                        frame_burst: 10_000_000,
                        bytes_per_second: u32::MAX,
                        byte_burst: u32::MAX,
                        ..Limits::default()
                    },
                    max_connections: 1_000_000,
                    // Every client of the bench comes from 127.0.0.1.
                    connections: ConnectionLimits {
                        max_preauth_per_source: 0,
                        max_sockets_per_source: 0,
                        ..ConnectionLimits::default()
                    },
                    cluster: redis.map(fast_rtc_server::ClusterConfig::new),
                    ..ServerConfig::default()
                }
            };
            let auth = JwtAuthenticator::new(&secret());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            println!("{}", listener.local_addr().unwrap());
            Server::new(config, auth)
                .serve(listener, std::future::pending())
                .await
                .unwrap();
        }
        Lib::Matchbox => {
            let mut server =
                matchbox_signaling::SignalingServer::full_mesh_builder(([127, 0, 0, 1], 0)).build();
            let addr = server.bind().unwrap();
            println!("{addr}");
            server.serve().await.unwrap();
        }
    }
}

/// A server in a child process of this binary (its memory measured alone); killed on drop.
pub(crate) struct ChildServer {
    child: Child,
    addr: String,
}

impl ChildServer {
    fn start(kind: Lib, room_size: usize, redis: Option<&str>) -> Self {
        Self::start_child(kind, room_size, redis, false)
    }

    /// Our server with [`ServerConfig::default`]: every limit as a deployment gets it.
    pub(crate) fn start_with_defaults(kind: Lib) -> Self {
        Self::start_child(kind, 8, None, true)
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    fn start_child(kind: Lib, room_size: usize, redis: Option<&str>, defaults: bool) -> Self {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "serve-child",
            "--kind",
            kind.arg(),
            "--room-size",
            &room_size.to_string(),
        ]);
        if let Some(url) = redis {
            cmd.args(["--redis", url]);
        }
        if defaults {
            cmd.arg("--defaults");
        }
        // Its first line is the address it listens on.
        let (child, addr) = spawn_announced(cmd.env("RUST_LOG", "off").stderr(Stdio::null()))
            .unwrap_or_else(|e| panic!("cannot start a server child: {e}"));
        ChildServer { child, addr }
    }

    /// Resident set size of the server process, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of all the servers, in KiB.
fn total_rss_kib(servers: &[ChildServer]) -> u64 {
    servers.iter().map(ChildServer::rss_kib).sum()
}

// ---------------------------------------------------------------------------------------------
// Clients.

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Ctx {
    kind: Lib,
    /// The servers' addresses; client `at` connects to `addrs[at % len]`.
    addrs: Vec<String>,
    /// Prefix of every room name: rooms of an earlier run may still be leased in Redis.
    rooms: String,
    issuer: TokenIssuer,
    sdp: String,
    next_id: AtomicU64,
}

impl Ctx {
    async fn connect(&self, user: &str, room: &str, at: usize) -> Ws {
        let addr = &self.addrs[at % self.addrs.len()];
        let url = match self.kind {
            Lib::Ours => {
                let token = token(&self.issuer, user, "*");
                format!("ws://{addr}/ws?token={token}")
            }
            Lib::Matchbox => format!("ws://{addr}/{room}"),
        };
        // TCP_NODELAY, as browsers do for WebSockets: a member writes several small frames in a
        // row (offer, candidates, init), which Nagle's algorithm would hold for an ACK.
        tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .unwrap()
            .0
    }

    fn fresh_id(&self, user: &str) -> ConnectionId {
        format!("{user}-{}", self.next_id.fetch_add(1, Ordering::Relaxed)).into()
    }

    /// A pre-made offer with two candidates, as a swarm sends it.
    async fn send_offer(&self, ws: &mut Ws, user: &str) {
        let id = self.fresh_id(user);
        let mut frames = vec![ClientMsg::Offer {
            id: id.clone(),
            sdp: self.sdp.clone(),
        }];
        for _ in 0..2 {
            frames.push(ClientMsg::Candidate {
                id: id.clone(),
                candidate: Some(candidate()),
            });
        }
        for f in frames {
            ws.feed(Message::text(encode(&f))).await.unwrap();
        }
        ws.flush().await.unwrap();
    }
}

fn candidate() -> IceCandidate {
    IceCandidate {
        candidate: CANDIDATE.into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    }
}

/// One member: joins, reports when it is in (ours: linked with every earlier member;
/// matchbox: its id assigned), then stays connected, refilling offers, until `stop`.
async fn member(
    ctx: Arc<Ctx>,
    user: String,
    room: String,
    (at, earlier): (usize, usize),
    joined: oneshot::Sender<Duration>,
    stop: Arc<tokio::sync::Notify>,
) {
    let t0 = Instant::now();
    let mut ws = ctx.connect(&user, &room, at).await;
    let mut joined = Some(joined);
    let mut accepts = 0;
    if ctx.kind == Lib::Ours {
        ctx.send_offer(&mut ws, &user).await;
        let init = ClientMsg::Init {
            user_id: None,
            room_id: room.as_str().into(),
            resume: None,
        };
        ws.send(Message::text(encode(&init))).await.unwrap();
        if earlier == 0 {
            let _ = joined.take().map(|j| j.send(t0.elapsed()));
        }
    }
    loop {
        tokio::select! {
            () = stop.notified() => break,
            frame = ws.next() => {
                let Some(Ok(Message::Text(text))) = frame else {
                    if frame.is_none() { break } else { continue }
                };
                match ctx.kind {
                    Lib::Ours => match decode_server(text.as_str()) {
                        Ok(ServerMsg::OfferRequest) => ctx.send_offer(&mut ws, &user).await,
                        // A link with every earlier member: usually by `accept`; by
                        // `offerAccepted` when this init overtook an earlier member's.
                        Ok(ServerMsg::Accept { .. } | ServerMsg::OfferAccepted { .. }) => {
                            accepts += 1;
                            if accepts == earlier {
                                let _ = joined.take().map(|j| j.send(t0.elapsed()));
                            }
                        }
                        _ => {}
                    },
                    Lib::Matchbox => {
                        if text.as_str().contains("IdAssigned") {
                            let _ = joined.take().map(|j| j.send(t0.elapsed()));
                        }
                    }
                }
            }
        }
    }
    let _ = ws.close(None).await;
}

struct JoinFigures {
    joins_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_per_member_kib: f64,
}

/// Joins `members` members in rooms of `--room-size`, member `n` (counted over all rooms) on
/// server `n % servers`; they stay connected and idle until the returned `Notify` fires.
async fn join_phase(
    ctx: Arc<Ctx>,
    servers: &[ChildServer],
    members: usize,
    args: &ServerArgs,
) -> (JoinFigures, Arc<tokio::sync::Notify>) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss0 = total_rss_kib(servers);
    let stop = Arc::new(tokio::sync::Notify::new());
    let rooms = members.div_ceil(args.room_size);
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut room_tasks = Vec::new();
    for r in 0..rooms {
        let (ctx, stop, slots) = (ctx.clone(), stop.clone(), slots.clone());
        let size = args.room_size.min(members - r * args.room_size);
        let first = r * args.room_size;
        room_tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let mut latencies = Vec::new();
            for k in 0..size {
                let (tx, rx) = oneshot::channel();
                let user = format!("r{r}m{k}");
                let room = format!("{}room{r}", ctx.rooms);
                tokio::spawn(member(
                    ctx.clone(),
                    user,
                    room,
                    (first + k, k),
                    tx,
                    stop.clone(),
                ));
                latencies.push(rx.await.unwrap());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in room_tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss1 = total_rss_kib(servers);
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
    let figures = JoinFigures {
        joins_per_s: members as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        rss_per_member_kib: rss1.saturating_sub(rss0) as f64 / members as f64,
    };
    (figures, stop)
}

/// One run of a column: the join phase with `args.members`, then (the joiners stopped) the
/// relay phase; its figures go to stderr under `label`.
async fn measured_run(
    ctx: Arc<Ctx>,
    servers: &[ChildServer],
    args: &ServerArgs,
    label: &str,
    run: usize,
) -> (JoinFigures, f64) {
    let (figures, stop) = join_phase(ctx.clone(), servers, args.members, args).await;
    stop.notify_waiters();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let relay = relay_phase(ctx, args).await;
    eprintln!(
        "  {label} run {}: {:.0} joins/s, p50 {:.2} ms, p99 {:.2} ms, {:.1} KiB/member, {:.0} relays/s",
        run + 1,
        figures.joins_per_s,
        figures.p50_ms,
        figures.p99_ms,
        figures.rss_per_member_kib,
        relay
    );
    (figures, relay)
}

/// Pairs relay `frames` signals each, windowed; returns frames per second over all pairs. With
/// several servers, pair `p`'s receiver is on server `p` and its sender on the next one.
async fn relay_phase(ctx: Arc<Ctx>, args: &ServerArgs) -> f64 {
    let frames = args.relay_frames;
    let barrier = Arc::new(tokio::sync::Barrier::new(args.relay_pairs * 2 + 1));
    let mut tasks = Vec::new();
    for p in 0..args.relay_pairs {
        let received = Arc::new(AtomicU64::new(0));
        let room = format!("{}relay{p}", ctx.rooms);
        let (a, b) = (format!("relay{p}a"), format!("relay{p}b"));
        // Receiver A, sender B. For ours both pre-offer, as swarms do: whichever init the server
        // applies first, B learns the link id (from `accept` or `offerAccepted`).
        let init = encode(&ClientMsg::Init {
            user_id: None,
            room_id: room.as_str().into(),
            resume: None,
        });
        let mut wa = ctx.connect(&a, &room, p).await;
        let a_id = match ctx.kind {
            Lib::Ours => {
                ctx.send_offer(&mut wa, &a).await;
                wa.send(Message::text(init.clone())).await.unwrap();
                String::new()
            }
            Lib::Matchbox => matchbox_id(&mut wa).await,
        };
        let mut wb = ctx.connect(&b, &room, p + 1).await;
        let mut link = ConnectionId::new("");
        match ctx.kind {
            Lib::Ours => {
                ctx.send_offer(&mut wb, &b).await;
                wb.send(Message::text(init)).await.unwrap();
                loop {
                    match wb.next().await {
                        Some(Ok(Message::Text(t))) => match decode_server(t.as_str()) {
                            Ok(
                                ServerMsg::Accept { id, .. } | ServerMsg::OfferAccepted { id, .. },
                            ) => {
                                link = id;
                                break;
                            }
                            _ => continue,
                        },
                        Some(Ok(_)) => continue,
                        other => panic!("relay setup: {other:?}"),
                    }
                }
            }
            Lib::Matchbox => {
                matchbox_id(&mut wb).await;
            }
        }
        let frame = match ctx.kind {
            Lib::Ours => encode(&ClientMsg::Candidate { id: link, candidate: Some(candidate()) }),
            Lib::Matchbox => serde_json::json!({"Signal": {"receiver": a_id, "data": {"IceCandidate": CANDIDATE}}}).to_string(),
        };
        let (rx_count, rx_barrier, kind) = (received.clone(), barrier.clone(), ctx.kind);
        tasks.push(tokio::spawn(async move {
            rx_barrier.wait().await;
            while rx_count.load(Ordering::Relaxed) < frames {
                let Some(Ok(Message::Text(t))) = wa.next().await else {
                    continue;
                };
                let relayed = match kind {
                    Lib::Ours => {
                        t.as_str().contains("\"candidate\"")
                            && t.as_str().starts_with("{\"type\":\"candidate\"")
                    }
                    Lib::Matchbox => t.as_str().contains("Signal"),
                };
                if relayed {
                    rx_count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        let tx_barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            tx_barrier.wait().await;
            let mut sent = 0;
            while sent < frames {
                while sent - received.load(Ordering::Relaxed) >= WINDOW {
                    tokio::task::yield_now().await;
                }
                wb.send(Message::text(frame.clone())).await.unwrap();
                sent += 1;
            }
            // keep the socket open until the receiver has everything
            while received.load(Ordering::Relaxed) < frames {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    (args.relay_pairs as u64 * frames) as f64 / started.elapsed().as_secs_f64()
}

async fn matchbox_id(ws: &mut Ws) -> String {
    loop {
        let t = match ws.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            other => panic!("matchbox: no id: {other:?}"),
        };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
        if let Some(id) = v.get("IdAssigned").and_then(|i| i.as_str()) {
            return id.to_owned();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The pure hub, no IO: what the state machine itself costs.

fn core_figures(room_size: usize, sdp: &str) -> (f64, f64) {
    let offer = |id: &str| {
        encode(&ClientMsg::Offer {
            id: id.into(),
            sdp: sdp.to_owned(),
        })
    };
    let cand = |id: &str| {
        encode(&ClientMsg::Candidate {
            id: id.into(),
            candidate: Some(candidate()),
        })
    };
    let init = encode(&ClientMsg::Init {
        user_id: None,
        room_id: "r".into(),
        resume: None,
    });
    let limits = Limits {
        max_members_per_room: room_size,
        frames_per_second: u32::MAX,
        frame_burst: u32::MAX,
        ..Limits::default()
    };
    let now = Instant::now();
    let (rounds, mut joins, mut n) = (2000, 0u64, 0u64);
    let started = Instant::now();
    for round in 0..rounds {
        let mut hub = Hub::new(limits.clone());
        let mut conns = std::collections::HashMap::new();
        for k in 0..room_size {
            let conn = ConnId((round * room_size + k) as u64);
            conns.insert(conn, k);
            hub.connect(
                now,
                conn,
                Identity {
                    user_id: format!("u{k}").into(),
                    rooms: RoomGrant::Any,
                },
            );
            n += 1;
            let id = format!("o{n}");
            hub.handle_text(now, conn, &offer(&id));
            hub.handle_text(now, conn, &cand(&id));
            hub.handle_text(now, conn, &init);
            joins += 1;
            let mut refill = Vec::new();
            while let Some(out) = hub.poll() {
                if let Output::Send {
                    to,
                    msg: ServerMsg::OfferRequest,
                } = out
                {
                    refill.push(to);
                }
            }
            for to in refill {
                n += 1;
                let id = format!("o{n}");
                hub.handle_text(now, to, &offer(&id));
                hub.handle_text(now, to, &cand(&id));
                while hub.poll().is_some() {}
            }
        }
    }
    let joins_per_s = joins as f64 / started.elapsed().as_secs_f64();

    let mut hub = Hub::new(limits);
    hub.connect(
        now,
        ConnId(1),
        Identity {
            user_id: "a".into(),
            rooms: RoomGrant::Any,
        },
    );
    hub.connect(
        now,
        ConnId(2),
        Identity {
            user_id: "b".into(),
            rooms: RoomGrant::Any,
        },
    );
    hub.handle_text(now, ConnId(1), &offer("link"));
    hub.handle_text(now, ConnId(1), &init);
    hub.handle_text(now, ConnId(2), &init);
    while hub.poll().is_some() {}
    let frame = cand("link");
    let relays = 500_000;
    let started = Instant::now();
    for _ in 0..relays {
        hub.handle_text(now, ConnId(2), &frame);
        while let Some(out) = hub.poll() {
            if let Output::Send { msg, .. } = out {
                std::hint::black_box(encode(&msg));
            }
        }
    }
    (joins_per_s, relays as f64 / started.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// The table.

/// The `server` subcommand.
pub async fn bench(args: ServerArgs) {
    let sdp = format!("v=0\r\n{}", "a".repeat(args.sdp_bytes.saturating_sub(5)));
    if !args.instances.is_empty() {
        return cluster_bench(args, sdp).await;
    }
    println!(
        "fast_rtc_bench server: {} members in rooms of {}, {} rooms filling at once, {} relay pairs x {} frames, {} runs (medians)",
        args.members,
        args.room_size,
        args.concurrency,
        args.relay_pairs,
        args.relay_frames,
        args.runs
    );
    println!("machine: {}", machine());

    let mut results: Vec<(Lib, Vec<JoinFigures>, Vec<f64>)> = Vec::new();
    for kind in [Lib::Ours, Lib::Matchbox] {
        let mut joins = Vec::new();
        let mut relays = Vec::new();
        for run in 0..args.runs {
            let servers = [ChildServer::start(kind, args.room_size, None)];
            let ctx = Arc::new(Ctx {
                kind,
                addrs: vec![servers[0].addr.clone()],
                rooms: String::new(),
                issuer: issuer(),
                sdp: sdp.clone(),
                next_id: AtomicU64::new(0),
            });
            let (figures, relay) = measured_run(ctx, &servers, &args, kind.label(), run).await;
            joins.push(figures);
            relays.push(relay);
        }
        results.push((kind, joins, relays));
    }
    // [ours, matchbox] medians of one figure.
    let joins =
        |f: fn(&JoinFigures) -> f64| [0, 1].map(|k| median(results[k].1.iter().map(f).collect()));
    let rows = [
        ("joins/s over WebSocket", joins(|f| f.joins_per_s), "higher"),
        ("join latency p50 (ms)", joins(|f| f.p50_ms), "lower"),
        ("join latency p99 (ms)", joins(|f| f.p99_ms), "lower"),
        (
            "relayed frames/s",
            [0, 1].map(|k| median(results[k].2.clone())),
            "higher",
        ),
        (
            "RSS per idle member (KiB)",
            joins(|f| f.rss_per_member_kib),
            "lower",
        ),
    ];
    println!();
    println!(
        "| {:<28} | {:>14} | {:>14} | {:>13} | {:<6} |",
        "",
        Lib::Ours.label(),
        Lib::Matchbox.label(),
        "ours/matchbox",
        "better"
    );
    println!(
        "|{:-<30}|{:->16}|{:->16}|{:->15}|{:-<8}|",
        "", "", "", "", ""
    );
    for (name, [ours, theirs], better) in rows {
        println!(
            "| {name:<28} | {ours:>14.1} | {theirs:>14.1} | {:>12.2}x | {better:<6} |",
            ours / theirs
        );
    }
    let (core_joins, core_relays) = core_figures(args.room_size, &sdp);
    println!();
    println!(
        "pure hub, no IO (ours only): {core_joins:.0} joins/s (incl. offer refills), {core_relays:.0} relayed frames/s (decode + route + encode)"
    );
    println!(
        "per join, ours verifies a JWT, stores the joiner's pre-made offer ({} B SDP + 2 candidates) and hands it an offer from every member; matchbox assigns an id and notifies the others (no offer stored)",
        args.sdp_bytes
    );
}

// ---------------------------------------------------------------------------------------------
// Cluster mode: 1 vs N instances over one Redis.

/// The `server --instances …` table: the same figures for each instance count, side by side.
async fn cluster_bench(args: ServerArgs, sdp: String) {
    // A Redis of the bench's own (no persistence, killed on drop) unless one is given.
    let own_redis = args.redis.is_none().then(|| {
        Redis::start().unwrap_or_else(|e| {
            panic!("{e} (scripts/bench-cluster.sh installs one), or pass --redis URL")
        })
    });
    let url = match (&args.redis, &own_redis) {
        (Some(url), _) => url.clone(),
        (None, Some(r)) => r.url(),
        (None, None) => unreachable!("a Redis was started when none was given"),
    };
    println!(
        "fast_rtc_bench server --instances: {} members in rooms of {}, {} rooms filling at once, {} relay pairs x {} frames, {} runs (medians); clients round-robin over the instances, one Redis ({})",
        args.members,
        args.room_size,
        args.concurrency,
        args.relay_pairs,
        args.relay_frames,
        args.runs,
        if own_redis.is_some() {
            "started by the bench on loopback"
        } else {
            "given"
        }
    );
    println!("machine: {}", machine());
    struct Column {
        instances: usize,
        joins: Vec<JoinFigures>,
        relays: Vec<f64>,
        idle: Option<JoinFigures>,
    }
    let mut columns = Vec::new();
    let label = |n: usize| {
        if n == 0 {
            "no Redis".to_owned()
        } else if n == 1 {
            "1 instance".to_owned()
        } else {
            format!("{n} instances")
        }
    };
    for &n in &args.instances {
        // 0: one server, no Redis.
        let redis = (n > 0).then_some(url.as_str());
        let count = n.max(1);
        let mut col = Column {
            instances: n,
            joins: Vec::new(),
            relays: Vec::new(),
            idle: None,
        };
        let ctx_for = |servers: &[ChildServer], rooms: String| {
            Arc::new(Ctx {
                kind: Lib::Ours,
                addrs: servers.iter().map(|s| s.addr.clone()).collect(),
                rooms,
                issuer: issuer(),
                sdp: sdp.clone(),
                next_id: AtomicU64::new(0),
            })
        };
        for run in 0..args.runs {
            let servers: Vec<ChildServer> = (0..count)
                .map(|_| ChildServer::start(Lib::Ours, args.room_size, redis))
                .collect();
            let ctx = ctx_for(&servers, format!("i{n}r{run}-"));
            let (figures, relay) = measured_run(ctx, &servers, &args, &label(n), run).await;
            col.joins.push(figures);
            col.relays.push(relay);
        }
        if let Some(idle) = args.idle {
            let servers: Vec<ChildServer> = (0..count)
                .map(|_| ChildServer::start(Lib::Ours, args.room_size, redis))
                .collect();
            let ctx = ctx_for(&servers, format!("i{n}idle-"));
            let (figures, stop) = join_phase(ctx, &servers, idle, &args).await;
            eprintln!(
                "  {}, {idle} idle members: {:.0} joins/s, p50 {:.2} ms, p99 {:.2} ms, {:.1} KiB/member",
                label(n),
                figures.joins_per_s,
                figures.p50_ms,
                figures.p99_ms,
                figures.rss_per_member_kib
            );
            stop.notify_waiters();
            col.idle = Some(figures);
        }
        columns.push(col);
    }
    let joins = |f: fn(&JoinFigures) -> f64| -> Vec<f64> {
        columns
            .iter()
            .map(|c| median(c.joins.iter().map(f).collect()))
            .collect()
    };
    let mut rows: Vec<(String, Vec<f64>, &str)> = vec![
        (
            "joins/s over WebSocket".into(),
            joins(|f| f.joins_per_s),
            "higher",
        ),
        ("join latency p50 (ms)".into(), joins(|f| f.p50_ms), "lower"),
        ("join latency p99 (ms)".into(), joins(|f| f.p99_ms), "lower"),
        (
            "relayed frames/s".into(),
            columns.iter().map(|c| median(c.relays.clone())).collect(),
            "higher",
        ),
        (
            "RSS per idle member (KiB)".into(),
            joins(|f| f.rss_per_member_kib),
            "lower",
        ),
    ];
    if let Some(idle) = args.idle {
        let idle_row = |f: fn(&JoinFigures) -> f64| -> Vec<f64> {
            columns
                .iter()
                .map(|c| c.idle.as_ref().map_or(f64::NAN, f))
                .collect()
        };
        rows.push((
            format!("{idle} idle: joins/s"),
            idle_row(|f| f.joins_per_s),
            "higher",
        ));
        rows.push((
            format!("{idle} idle: join p99 (ms)"),
            idle_row(|f| f.p99_ms),
            "lower",
        ));
        rows.push((
            format!("{idle} idle: RSS/member (KiB)"),
            idle_row(|f| f.rss_per_member_kib),
            "lower",
        ));
    }
    // The last column against the 1-instance one (else the first).
    let base = columns.iter().position(|c| c.instances == 1).unwrap_or(0);
    let ratio = (columns.len() >= 2 && base != columns.len() - 1).then(|| {
        let (last, first) = (
            columns[columns.len() - 1].instances,
            columns[base].instances,
        );
        if first == 0 {
            format!("{last}/none")
        } else {
            format!("{last}/{first}")
        }
    });
    println!();
    let mut header = format!("| {:<28} |", "");
    let mut rule = format!("|{:-<30}|", "");
    for c in &columns {
        header += &format!(" {:>13} |", label(c.instances));
        rule += &format!("{:->15}|", "");
    }
    if let Some(r) = &ratio {
        header += &format!(" {r:>7} |");
        rule += &format!("{:->9}|", "");
    }
    println!("{header} {:<6} |", "better");
    println!("{rule}{:-<8}|", "");
    for (name, values, better) in rows {
        let mut line = format!("| {name:<28} |");
        for v in &values {
            line += &format!(" {v:>13.1} |");
        }
        if ratio.is_some() {
            line += &format!(" {:>6.2}x |", values[values.len() - 1] / values[base]);
        }
        println!("{line} {better:<6} |");
    }
    println!();
    println!(
        "RSS is the sum over the instances (Redis not included); every instance, the Redis and all clients run on this one machine"
    );
}
