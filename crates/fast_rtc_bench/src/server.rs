//! `server`: the signaling server's figures, ours vs `matchbox_signaling` 0.15 (full mesh): joins
//! per second and join latency over real WebSockets, relayed frames per second, and resident
//! memory per idle member. Each server runs in a child process of this binary (`serve-child`), so
//! its memory is measured alone; the pure hub's figures, without IO, follow the table.

use crate::util::{Lib, issuer, machine, median, rss_kib, secret, token};
use fast_rtc_protocol::{ClientMsg, ConnectionId, IceCandidate, ServerMsg, decode_server, encode};
use fast_rtc_server::hub::{ConnId, Hub, Identity, Output, RoomGrant};
use fast_rtc_server::{JwtAuthenticator, Limits, Server, ServerConfig, TokenIssuer};
use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
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
}

/// Child process: runs one server in this process and prints its address.
pub async fn serve_child(kind: Lib, room_size: usize) {
    match kind {
        Lib::Ours => {
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

struct ChildServer {
    child: Child,
    addr: String,
}

impl ChildServer {
    fn start(kind: Lib, room_size: usize) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "serve-child",
                "--kind",
                kind.arg(),
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
        rss_kib(self.child.id())
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
    kind: Lib,
    addr: String,
    issuer: TokenIssuer,
    sdp: String,
    next_id: AtomicU64,
}

impl Ctx {
    async fn connect(&self, user: &str, room: &str) -> Ws {
        let url = match self.kind {
            Lib::Ours => {
                let token = token(&self.issuer, user, "*");
                format!("ws://{}/ws?token={token}", self.addr)
            }
            Lib::Matchbox => format!("ws://{}/{room}", self.addr),
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
    if ctx.kind == Lib::Ours {
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
            Lib::Ours => {
                ctx.send_offer(&mut wa, &a).await;
                wa.send(Message::text(init.clone())).await.unwrap();
                String::new()
            }
            Lib::Matchbox => matchbox_id(&mut wa).await,
        };
        let mut wb = ctx.connect(&b, &room).await;
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
            let server = ChildServer::start(kind, args.room_size);
            let ctx = Arc::new(Ctx {
                kind,
                addr: server.addr.clone(),
                issuer: issuer(),
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
