//! Benchmarks of bevy_fast_rtc, printed as tables, side by side with matchbox in the same run.
//!
//! `cargo run --release -p fast_rtc_bench -- server` measures the signaling server: joins per
//! second and join latency over real WebSockets, relayed frames per second, and resident memory
//! per idle member, for our server and for `matchbox_signaling` 0.15 (full mesh). Each server
//! runs in a child process of this binary, so its memory is measured alone.
//!
//! The two servers do different work per join: ours verifies a JWT, stores the joiner's
//! pre-made offer (SDP + candidates) and hands the joiner one offer from every member; matchbox
//! assigns an id and tells the others. The table says so beside the figures.

// A benchmark binary: failing loudly on a broken setup is the right behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod join;

use clap::{Parser, Subcommand, ValueEnum};
use fast_rtc_protocol::{ClientMsg, ConnectionId, IceCandidate, ServerMsg, decode_server, encode};
use fast_rtc_server::hub::{ConnId, Hub, Identity, Output, RoomGrant};
use fast_rtc_server::{JwtAuthenticator, Limits, Secret, Server, ServerConfig, TokenIssuer};
use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Semaphore, oneshot};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";
/// A realistic host/srflx candidate line.
const CANDIDATE: &str = "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag sXv4 network-cost 999";
/// Frames a relay sender may have in flight; below the server's per-socket queue (1024).
const WINDOW: u64 = 256;

#[derive(Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Signaling server figures, ours vs matchbox_signaling.
    Server(ServerArgs),
    /// Codec comparison for typed game messages: bitcode vs postcard.
    Codec,
    /// The Bevy plugin's per-frame cost with 8 peers, idle and broadcasting at 60 Hz.
    Plugin,
    /// Connect times, mesh formation, memory, steady state and bulk throughput, ours vs
    /// matchbox_socket 0.15, in a network namespace of its own (see `join.rs`).
    Join(join::JoinArgs),
    /// One scenario of `join` in a child process (used by `join`).
    #[command(hide = true)]
    JoinChild(join::ChildArgs),
    /// Runs one server in this process and prints its address (used by `server`).
    #[command(hide = true)]
    ServeChild {
        #[arg(long)]
        kind: Kind,
        #[arg(long)]
        room_size: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    Ours,
    Matchbox,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Ours => "bevy_fast_rtc",
            Kind::Matchbox => "matchbox 0.15",
        }
    }
}

#[derive(clap::Args, Clone)]
struct ServerArgs {
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
}

fn main() {
    let cli = Cli::parse();
    // Logs only when asked for (`RUST_LOG=...`): they would skew the figures.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match cli.command {
        Cmd::Join(args) => return join::main(args),
        Cmd::JoinChild(args) => return join::child_main(args),
        _ => {}
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match cli.command {
        Cmd::ServeChild { kind, room_size } => rt.block_on(serve_child(kind, room_size)),
        Cmd::Server(args) => rt.block_on(server_bench(args)),
        Cmd::Codec => codec_bench(),
        Cmd::Plugin => plugin_bench(&rt),
        Cmd::Join(_) | Cmd::JoinChild(_) => unreachable!("handled above"),
    }
}

// ---------------------------------------------------------------------------------------------
// Child process: one server.

async fn serve_child(kind: Kind, room_size: usize) {
    match kind {
        Kind::Ours => {
            let config = ServerConfig {
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
                ..ServerConfig::default()
            };
            let auth = JwtAuthenticator::new(&Secret::new(SECRET).unwrap());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            println!("{}", listener.local_addr().unwrap());
            Server::new(config, auth)
                .serve(listener, std::future::pending())
                .await
                .unwrap();
        }
        Kind::Matchbox => {
            let mut server =
                matchbox_signaling::SignalingServer::full_mesh_builder(([127, 0, 0, 1], 0)).build();
            let addr = server.bind().unwrap();
            println!("{addr}");
            server.serve().await.unwrap();
        }
    }
}

struct ChildServer {
    child: Child,
    addr: String,
}

impl ChildServer {
    fn start(kind: Kind, room_size: usize) -> Self {
        let kind_arg = match kind {
            Kind::Ours => "ours",
            Kind::Matchbox => "matchbox",
        };
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "serve-child",
                "--kind",
                kind_arg,
                "--room-size",
                &room_size.to_string(),
            ])
            .env("RUST_LOG", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        ChildServer {
            child,
            addr: line.trim().to_owned(),
        }
    }

    /// Resident set size of the server process, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Clients.

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Ctx {
    kind: Kind,
    addr: String,
    issuer: TokenIssuer,
    sdp: String,
    next_id: AtomicU64,
}

impl Ctx {
    async fn connect(&self, user: &str, room: &str) -> Ws {
        let url = match self.kind {
            Kind::Ours => {
                let token = self
                    .issuer
                    .issue(user, "*", Duration::from_secs(3600), SystemTime::now())
                    .unwrap();
                format!("ws://{}/ws?token={token}", self.addr)
            }
            Kind::Matchbox => format!("ws://{}/{room}", self.addr),
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
    earlier: usize,
    joined: oneshot::Sender<Duration>,
    stop: Arc<tokio::sync::Notify>,
) {
    let t0 = Instant::now();
    let mut ws = ctx.connect(&user, &room).await;
    let mut joined = Some(joined);
    let mut accepts = 0;
    if ctx.kind == Kind::Ours {
        ctx.send_offer(&mut ws, &user).await;
        let init = ClientMsg::Init {
            user_id: None,
            room_id: room.as_str().into(),
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
                    Kind::Ours => match decode_server(text.as_str()) {
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
                    Kind::Matchbox => {
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

async fn join_phase(
    ctx: Arc<Ctx>,
    server: &ChildServer,
    args: &ServerArgs,
) -> (JoinFigures, Arc<tokio::sync::Notify>) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss0 = server.rss_kib();
    let stop = Arc::new(tokio::sync::Notify::new());
    let rooms = args.members.div_ceil(args.room_size);
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut room_tasks = Vec::new();
    for r in 0..rooms {
        let (ctx, stop, slots) = (ctx.clone(), stop.clone(), slots.clone());
        let size = args.room_size.min(args.members - r * args.room_size);
        room_tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let mut latencies = Vec::new();
            for k in 0..size {
                let (tx, rx) = oneshot::channel();
                let user = format!("r{r}m{k}");
                tokio::spawn(member(
                    ctx.clone(),
                    user,
                    format!("room{r}"),
                    k,
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
    let rss1 = server.rss_kib();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
    let figures = JoinFigures {
        joins_per_s: args.members as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        rss_per_member_kib: rss1.saturating_sub(rss0) as f64 / args.members as f64,
    };
    (figures, stop)
}

/// Pairs relay `frames` signals each, windowed; returns frames per second over all pairs.
async fn relay_phase(ctx: Arc<Ctx>, args: &ServerArgs) -> f64 {
    let frames = args.relay_frames;
    let barrier = Arc::new(tokio::sync::Barrier::new(args.relay_pairs * 2 + 1));
    let mut tasks = Vec::new();
    for p in 0..args.relay_pairs {
        let received = Arc::new(AtomicU64::new(0));
        let room = format!("relay{p}");
        let (a, b) = (format!("relay{p}a"), format!("relay{p}b"));
        // Receiver A, sender B. For ours both pre-offer, as swarms do: whichever init the server
        // applies first, B learns the link id (from `accept` or `offerAccepted`).
        let init = encode(&ClientMsg::Init {
            user_id: None,
            room_id: room.as_str().into(),
        });
        let mut wa = ctx.connect(&a, &room).await;
        let a_id = match ctx.kind {
            Kind::Ours => {
                ctx.send_offer(&mut wa, &a).await;
                wa.send(Message::text(init.clone())).await.unwrap();
                String::new()
            }
            Kind::Matchbox => matchbox_id(&mut wa).await,
        };
        let mut wb = ctx.connect(&b, &room).await;
        let mut link = ConnectionId::new("");
        match ctx.kind {
            Kind::Ours => {
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
            Kind::Matchbox => {
                matchbox_id(&mut wb).await;
            }
        }
        let frame = match ctx.kind {
            Kind::Ours => encode(&ClientMsg::Candidate { id: link, candidate: Some(candidate()) }),
            Kind::Matchbox => serde_json::json!({"Signal": {"receiver": a_id, "data": {"IceCandidate": CANDIDATE}}}).to_string(),
        };
        let (rx_count, rx_barrier, kind) = (received.clone(), barrier.clone(), ctx.kind);
        tasks.push(tokio::spawn(async move {
            rx_barrier.wait().await;
            while rx_count.load(Ordering::Relaxed) < frames {
                let Some(Ok(Message::Text(t))) = wa.next().await else {
                    continue;
                };
                let relayed = match kind {
                    Kind::Ours => {
                        t.as_str().contains("\"candidate\"")
                            && t.as_str().starts_with("{\"type\":\"candidate\"")
                    }
                    Kind::Matchbox => t.as_str().contains("Signal"),
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Row {
    name: &'static str,
    ours: f64,
    theirs: f64,
    better: &'static str,
}

async fn server_bench(args: ServerArgs) {
    let sdp = format!("v=0\r\n{}", "a".repeat(args.sdp_bytes.saturating_sub(5)));
    println!(
        "fast_rtc_bench server: {} members in rooms of {}, {} rooms filling at once, {} relay pairs x {} frames, {} runs (medians)",
        args.members,
        args.room_size,
        args.concurrency,
        args.relay_pairs,
        args.relay_frames,
        args.runs
    );
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );

    let mut results: Vec<(Kind, Vec<JoinFigures>, Vec<f64>)> = Vec::new();
    for kind in [Kind::Ours, Kind::Matchbox] {
        let mut joins = Vec::new();
        let mut relays = Vec::new();
        for run in 0..args.runs {
            let server = ChildServer::start(kind, args.room_size);
            let ctx = Arc::new(Ctx {
                kind,
                addr: server.addr.clone(),
                issuer: TokenIssuer::new(&Secret::new(SECRET).unwrap()),
                sdp: sdp.clone(),
                next_id: AtomicU64::new(0),
            });
            let (figures, stop) = join_phase(ctx.clone(), &server, &args).await;
            stop.notify_waiters();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let relay = relay_phase(ctx, &args).await;
            eprintln!(
                "  {} run {}: {:.0} joins/s, p50 {:.2} ms, p99 {:.2} ms, {:.1} KiB/member, {:.0} relays/s",
                kind.label(),
                run + 1,
                figures.joins_per_s,
                figures.p50_ms,
                figures.p99_ms,
                figures.rss_per_member_kib,
                relay
            );
            joins.push(figures);
            relays.push(relay);
        }
        results.push((kind, joins, relays));
    }
    let get =
        |k: usize, f: &dyn Fn(&JoinFigures) -> f64| median(results[k].1.iter().map(f).collect());
    let rows = [
        Row {
            name: "joins/s over WebSocket",
            ours: get(0, &|f| f.joins_per_s),
            theirs: get(1, &|f| f.joins_per_s),
            better: "higher",
        },
        Row {
            name: "join latency p50 (ms)",
            ours: get(0, &|f| f.p50_ms),
            theirs: get(1, &|f| f.p50_ms),
            better: "lower",
        },
        Row {
            name: "join latency p99 (ms)",
            ours: get(0, &|f| f.p99_ms),
            theirs: get(1, &|f| f.p99_ms),
            better: "lower",
        },
        Row {
            name: "relayed frames/s",
            ours: median(results[0].2.clone()),
            theirs: median(results[1].2.clone()),
            better: "higher",
        },
        Row {
            name: "RSS per idle member (KiB)",
            ours: get(0, &|f| f.rss_per_member_kib),
            theirs: get(1, &|f| f.rss_per_member_kib),
            better: "lower",
        },
    ];
    println!();
    println!(
        "| {:<28} | {:>14} | {:>14} | {:>13} | {:<6} |",
        "",
        Kind::Ours.label(),
        Kind::Matchbox.label(),
        "ours/matchbox",
        "better"
    );
    println!(
        "|{:-<30}|{:->16}|{:->16}|{:->15}|{:-<8}|",
        "", "", "", "", ""
    );
    for r in rows {
        println!(
            "| {:<28} | {:>14.1} | {:>14.1} | {:>12.2}x | {:<6} |",
            r.name,
            r.ours,
            r.theirs,
            r.ours / r.theirs,
            r.better
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

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

// ---------------------------------------------------------------------------------------------
// Memory of this process.

fn process_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Codec: what a game sends every tick.

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct PlayerState {
    tick: u32,
    position: [f32; 2],
    velocity: [f32; 2],
    facing: f32,
    health: u8,
    flags: u8,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
enum GameEvent {
    Shot { from: [f32; 2], dir: [f32; 2] },
    Chat(String),
    Scored { player: u32, points: i32 },
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct Snapshot {
    tick: u32,
    players: Vec<PlayerState>,
    events: Vec<GameEvent>,
}

fn samples() -> (PlayerState, Snapshot) {
    let player = |i: u32| PlayerState {
        tick: 1_000_000 + i,
        position: [123.25 + i as f32, -47.5],
        velocity: [1.5, -0.25],
        facing: 0.785,
        health: 100 - i as u8,
        flags: 0b101,
    };
    let snapshot = Snapshot {
        tick: 1_000_000,
        players: (0..8).map(player).collect(),
        events: vec![
            GameEvent::Shot {
                from: [1.0, 2.0],
                dir: [0.0, 1.0],
            },
            GameEvent::Chat("gg".into()),
            GameEvent::Scored {
                player: 3,
                points: 10,
            },
        ],
    };
    (player(0), snapshot)
}

fn time_per_op(iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_secs_f64() * 1e9 / f64::from(iters)
}

fn codec_row<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    name: &str,
    value: &T,
) {
    let iters = 200_000;
    let b = bitcode::serialize(value).unwrap();
    let p = postcard::to_allocvec(value).unwrap();
    assert_eq!(&bitcode::deserialize::<T>(&b).unwrap(), value);
    assert_eq!(&postcard::from_bytes::<T>(&p).unwrap(), value);
    let be = time_per_op(iters, || {
        drop(std::hint::black_box(
            bitcode::serialize(std::hint::black_box(value)).unwrap(),
        ))
    });
    let bd = time_per_op(iters, || {
        drop(std::hint::black_box(
            bitcode::deserialize::<T>(std::hint::black_box(&b)).unwrap(),
        ))
    });
    let pe = time_per_op(iters, || {
        drop(std::hint::black_box(
            postcard::to_allocvec(std::hint::black_box(value)).unwrap(),
        ))
    });
    let pd = time_per_op(iters, || {
        drop(std::hint::black_box(
            postcard::from_bytes::<T>(std::hint::black_box(&p)).unwrap(),
        ))
    });
    println!(
        "| {name:<26} | {:>5} B | {:>6} B | {be:>11.0} | {pe:>12.0} | {bd:>11.0} | {pd:>12.0} |",
        b.len(),
        p.len()
    );
}

fn codec_bench() {
    let (player, snapshot) = samples();
    println!(
        "fast_rtc_bench codec: serde types a game sends each tick; bitcode 0.6 (serde) vs postcard 1.1, ns per op"
    );
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    println!();
    println!(
        "| message                    | bitcode | postcard | bitcode enc | postcard enc | bitcode dec | postcard dec |"
    );
    println!(
        "|----------------------------|---------|----------|-------------|--------------|-------------|--------------|"
    );
    codec_row("one player state", &player);
    codec_row("8 players + 3 events", &snapshot);
}

// ---------------------------------------------------------------------------------------------
// The Bevy plugin's cost per frame.

#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct BenchState {
    tick: u32,
    body: Vec<u8>,
}

/// Whether an app broadcasts a state every frame.
#[derive(bevy::prelude::Resource)]
struct Sending(bool);

fn state_app(url: &str, token: String) -> bevy::app::App {
    use bevy::prelude::*;
    use bevy_fast_rtc::prelude::*;
    let mut plugin = FastRtcPlugin::new("plugin-bench")
        .with_signaling(url, token)
        .with_native(NativeConfig::loopback());
    let state = plugin.add_channel(ChannelConfig::unreliable("state"));
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, plugin))
        .add_swarm_message::<BenchState>(state)
        .insert_resource(Sending(false))
        .add_systems(
            Update,
            |sending: Res<Sending>,
             mut tick: Local<u32>,
             mut b: SwarmBroadcast<BenchState>,
             mut r: MessageReader<FromPeer<BenchState>>| {
                r.read().for_each(drop);
                if sending.0 {
                    *tick += 1;
                    b.send(&BenchState {
                        tick: *tick,
                        body: vec![7; 92],
                    });
                }
            },
        );
    app
}

/// Runs every schedule of `app` on the calling thread, so its thread CPU time is the frame's cost.
fn single_threaded(app: &mut bevy::app::App) {
    use bevy::app::{First, Last, Main, PostUpdate, PreUpdate, Update};
    use bevy::ecs::schedule::{InternedScheduleLabel, ScheduleLabel, SingleThreadedExecutor};
    let labels: [InternedScheduleLabel; 6] = [
        Main.intern(),
        First.intern(),
        PreUpdate.intern(),
        Update.intern(),
        PostUpdate.intern(),
        Last.intern(),
    ];
    for label in labels {
        app.edit_schedule(label, |s| {
            s.set_executor(SingleThreadedExecutor::new());
        });
    }
}

/// Runs `frames` updates of `app` at 60 Hz; returns the CPU time of each update on this thread
/// (not wall time: the other apps on these 2 cores would be measured too), mean and p99 in
/// microseconds.
fn frame_times(app: &mut bevy::app::App, frames: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(frames);
    for _ in 0..frames {
        let wall = Instant::now();
        let cpu = cpu_time::ThreadTime::now();
        app.update();
        times.push(cpu.elapsed().as_secs_f64() * 1e6);
        std::thread::sleep(Duration::from_micros(16_667).saturating_sub(wall.elapsed()));
    }
    times.sort_by(|a, b| a.total_cmp(b));
    (
        times.iter().sum::<f64>() / frames as f64,
        times[(frames * 99) / 100],
    )
}

fn plugin_bench(rt: &tokio::runtime::Runtime) {
    use bevy::prelude::*;
    let secret = Secret::new(SECRET).unwrap();
    let server = rt
        .block_on(
            Server::new(ServerConfig::default(), JwtAuthenticator::new(&secret))
                .spawn("127.0.0.1:0".parse().unwrap()),
        )
        .unwrap();
    let url = server.ws_url();
    let issuer = TokenIssuer::new(&secret);
    let token = |u: &str| {
        issuer
            .issue(u, "*", Duration::from_secs(3600), SystemTime::now())
            .unwrap()
    };

    // Baseline: the same app without the plugin.
    let mut bare = App::new();
    bare.add_plugins(MinimalPlugins);
    single_threaded(&mut bare);
    for _ in 0..60 {
        bare.update();
    }
    let (bare_mean, bare_p99) = frame_times(&mut bare, 300);

    // 8 peers, each its own app on its own thread at 60 Hz, broadcasting when told.
    let sending = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..8 {
        let (url, t, sending, stop) = (
            url.clone(),
            token(&format!("peer{i}")),
            sending.clone(),
            stop.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut app = state_app(&url, t);
            while !stop.load(Ordering::Relaxed) {
                app.world_mut().resource_mut::<Sending>().0 = sending.load(Ordering::Relaxed);
                let t0 = Instant::now();
                app.update();
                std::thread::sleep(Duration::from_micros(16_667).saturating_sub(t0.elapsed()));
            }
        }));
    }
    let mut app = state_app(&url, token("measured"));
    single_threaded(&mut app);
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.world().resource::<bevy_fast_rtc::Swarm>().peer_count() < 8
        && Instant::now() < deadline
    {
        app.update();
        std::thread::sleep(Duration::from_millis(5));
    }
    let peers = app.world().resource::<bevy_fast_rtc::Swarm>().peer_count();
    for _ in 0..60 {
        app.update();
    }
    let (idle_mean, idle_p99) = frame_times(&mut app, 600);
    sending.store(true, Ordering::Relaxed);
    app.world_mut().resource_mut::<Sending>().0 = true;
    for _ in 0..60 {
        app.update();
    }
    let (busy_mean, busy_p99) = frame_times(&mut app, 600);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    println!(
        "fast_rtc_bench plugin: CPU time of one app.update() (MinimalPlugins + FastRtcPlugin, schedules single-threaded) at 60 Hz, {peers} peers over webrtc-rs on 127.0.0.1, all in this process"
    );
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    println!();
    println!(
        "| frame                                                        | mean (us) | p99 (us) |"
    );
    println!(
        "|--------------------------------------------------------------|-----------|----------|"
    );
    println!(
        "| MinimalPlugins alone (baseline)                              | {bare_mean:>9.1} | {bare_p99:>8.1} |"
    );
    println!(
        "| + plugin, 8 peers connected, idle                            | {idle_mean:>9.1} | {idle_p99:>8.1} |"
    );
    println!(
        "| + plugin, 8 peers each sending 100 B at 60 Hz, this app too  | {busy_mean:>9.1} | {busy_p99:>8.1} |"
    );
    drop(app);
    rt.block_on(server.shutdown()).unwrap();
}
