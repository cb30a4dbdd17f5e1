//! `attack`: our signaling server, with its default limits, in a child process, under each
//! attack of the "hardened" issue in turn while honest members keep joining, against a quiet
//! run. Per phase it prints the server's peak resident memory, the honest joins that succeeded
//! and failed, their p50/p99 join time, and what the attack achieved.
//!
//! Honest members connect from 127.0.0.1; each attack comes from other loopback addresses
//! (127.0.0.2 and up), as attackers from elsewhere would: the per-source caps apply to them.
//! Every address is loopback. An honest join is a signaling join, as in the `server` bench: a
//! WebSocket upgrade with a token, a pre-made offer, `init`, and the `accept` that hands it the
//! resident member's offer.

use crate::server::ChildServer;
use crate::util::{Lib, issuer, machine, median, token};
use fast_rtc_protocol::{ClientMsg, ConnectionId, IceCandidate, ServerMsg, decode_server, encode};
use fast_rtc_server::TokenIssuer;
use futures_util::{SinkExt, StreamExt};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// The room the honest members join, with one resident member in it.
const ROOM: &str = "arena";
/// How long an honest join may take before it counts as failed.
const JOIN_WITHIN: Duration = Duration::from_secs(5);
/// Each honest member's pause between two joins (8 members: at most 40 joins a second).
const HONEST_PAUSE: Duration = Duration::from_millis(200);

#[derive(clap::Args, Clone)]
pub struct AttackArgs {
    /// Seconds each phase (quiet, then each attack) runs.
    #[arg(long, default_value_t = 6)]
    seconds: u64,
    /// Honest members joining at once, each joining again as soon as it is in.
    #[arg(long, default_value_t = 8)]
    honest: usize,
    /// Stalled connections of the slowloris attack.
    #[arg(long, default_value_t = 5000)]
    slowloris: usize,
    /// Sockets opened with one token by the idle-sockets attack.
    #[arg(long, default_value_t = 1000)]
    idle: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    Quiet,
    Slowloris,
    IdleSockets,
    OversizedOffers,
    Churn,
    FrameFlood,
}

impl Attack {
    fn name(self, args: &AttackArgs) -> String {
        match self {
            Attack::Quiet => "quiet (no attack)".into(),
            Attack::Slowloris => format!(
                "slowloris: {} connections, headers never finished",
                args.slowloris
            ),
            Attack::IdleSockets => format!("{} idle sockets on one token", args.idle),
            Attack::OversizedOffers => "oversized parked offers (60 KB SDP and candidates)".into(),
            Attack::Churn => "init/close churn on one identity".into(),
            Attack::FrameFlood => "frame flood from one member".into(),
        }
    }
}

/// What one attack achieved, counted by the attacker.
#[derive(Default)]
struct Effect {
    /// Attempts the attacker made (connections, sockets, frames).
    tried: AtomicU64,
    /// Of them, what the server let through (kept open, accepted, relayed).
    got: AtomicU64,
}

struct Ctx {
    addr: SocketAddr,
    issuer: TokenIssuer,
    next: AtomicU64,
}

impl Ctx {
    fn fresh(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// A TCP connection to the server from loopback address `from`.
    async fn tcp(&self, from: Ipv4Addr) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
        let stream = socket.connect(self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// A signaling socket for `user`'s token, from `from`.
    async fn ws(&self, user: &str, from: Ipv4Addr) -> Result<Ws, String> {
        let stream = self.tcp(from).await.map_err(|e| e.to_string())?;
        let token = token(&self.issuer, user, "*");
        let url = format!("ws://{}/ws?token={token}", self.addr);
        tokio_tungstenite::client_async(url, stream)
            .await
            .map(|(ws, _)| ws)
            .map_err(|e| e.to_string())
    }
}

async fn send(ws: &mut Ws, msg: &ClientMsg) -> Result<(), String> {
    ws.send(Message::text(encode(msg)))
        .await
        .map_err(|e| e.to_string())
}

/// A pre-made offer with one candidate, the SDP and the candidate `size` bytes each.
async fn park(ws: &mut Ws, id: ConnectionId, size: usize) -> Result<(), String> {
    let sdp = format!("v=0\r\n{}", "a".repeat(size));
    send(
        ws,
        &ClientMsg::Offer {
            id: id.clone(),
            sdp,
        },
    )
    .await?;
    let candidate = IceCandidate {
        candidate: format!(
            "candidate:1 1 udp 2130706431 192.0.2.1 9 typ host {}",
            "x".repeat(size.saturating_sub(48))
        ),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    };
    send(
        ws,
        &ClientMsg::Candidate {
            id,
            candidate: Some(candidate),
        },
    )
    .await
}

fn init() -> ClientMsg {
    ClientMsg::Init {
        user_id: None,
        room_id: ROOM.into(),
        resume: None,
    }
}

/// The resident member: in the room for the whole run, parking an offer whenever asked.
async fn resident(ctx: Arc<Ctx>) {
    let mut ws = ctx.ws("resident", Ipv4Addr::LOCALHOST).await.unwrap();
    park(&mut ws, ctx.fresh("resident").into(), 1200)
        .await
        .unwrap();
    send(&mut ws, &init()).await.unwrap();
    while let Some(Ok(frame)) = ws.next().await {
        if let Message::Text(text) = frame
            && let Ok(ServerMsg::OfferRequest) = decode_server(text.as_str())
        {
            let _ = park(&mut ws, ctx.fresh("resident").into(), 1200).await;
        }
    }
}

/// One honest join: the time from connecting to the `accept` of the resident's offer.
async fn honest_join(ctx: &Ctx) -> Result<Duration, String> {
    let t0 = Instant::now();
    let user = ctx.fresh("honest");
    let join = async {
        let mut ws = ctx.ws(&user, Ipv4Addr::LOCALHOST).await?;
        park(&mut ws, ctx.fresh(&user).into(), 1200).await?;
        send(&mut ws, &init()).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(ServerMsg::Accept { .. }) = decode_server(text.as_str()) {
                        let took = t0.elapsed();
                        let _ = send(&mut ws, &ClientMsg::Close).await;
                        let _ = ws.close(None).await;
                        return Ok(took);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("closed".into()),
            }
        }
    };
    tokio::time::timeout(JOIN_WITHIN, join)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// The `i`-th attacking source address: 127.0.0.2 and up.
fn attacker(i: usize) -> Ipv4Addr {
    let n = u32::try_from(i % 60_000).unwrap_or(0) + 2;
    Ipv4Addr::from(0x7f00_0000 | n)
}

/// Runs `attack` until `stop`, counting into `effect`.
async fn run_attack(
    attack: Attack,
    ctx: Arc<Ctx>,
    args: AttackArgs,
    effect: Arc<Effect>,
    stop: Arc<AtomicBool>,
) {
    let mut held = Vec::new();
    match attack {
        Attack::Quiet => {}
        Attack::Slowloris => {
            // 125 connections per source address, each a request line and one header.
            for i in 0..args.slowloris {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                effect.tried.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut s) = ctx.tcp(attacker(i / 125)).await
                    && s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
                        .await
                        .is_ok()
                {
                    held.push(s);
                }
            }
            // Those the server still holds open at the end.
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut open = 0;
            let mut buf = [0u8; 1];
            for s in &held {
                // Closed by the server: a read returns 0 (or fails) at once.
                match s.try_read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
                    _ => {}
                }
            }
            effect.got.store(open, Ordering::Relaxed);
        }
        Attack::IdleSockets => {
            let mut sockets = Vec::new();
            for _ in 0..args.idle {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                effect.tried.fetch_add(1, Ordering::Relaxed);
                if let Ok(ws) = ctx.ws("idler", attacker(200)).await {
                    effect.got.fetch_add(1, Ordering::Relaxed);
                    sockets.push(ws);
                }
            }
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Attack::OversizedOffers => {
            // One member parks 60 KB offers as fast as the server reads them.
            let Ok(mut ws) = ctx.ws("parker", attacker(300)).await else {
                return;
            };
            let _ = send(&mut ws, &init()).await;
            while !stop.load(Ordering::Relaxed) {
                effect.tried.fetch_add(1, Ordering::Relaxed);
                if park(&mut ws, ctx.fresh("parker").into(), 60_000)
                    .await
                    .is_err()
                {
                    break;
                }
                // Count the refusals the server sends back (`queue_full`), without waiting.
                while let Ok(Some(Ok(Message::Text(text)))) =
                    tokio::time::timeout(Duration::from_millis(1), ws.next()).await
                {
                    if let Ok(ServerMsg::SignalError { .. }) = decode_server(text.as_str()) {
                        effect.got.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Attack::Churn => {
            let Ok(mut ws) = ctx.ws("churner", attacker(400)).await else {
                return;
            };
            while !stop.load(Ordering::Relaxed) {
                effect.tried.fetch_add(1, Ordering::Relaxed);
                if send(&mut ws, &init()).await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        if let Ok(ServerMsg::Joined { .. }) = decode_server(text.as_str()) {
                            effect.got.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(None | Some(Err(_))) => break,
                    _ => {}
                }
                if send(&mut ws, &ClientMsg::Close).await.is_err() {
                    break;
                }
            }
        }
        Attack::FrameFlood => {
            let Ok(mut ws) = ctx.ws("flooder", attacker(500)).await else {
                return;
            };
            let _ = send(&mut ws, &init()).await;
            let candidate = ClientMsg::Candidate {
                id: "nowhere".into(),
                candidate: None,
            };
            while !stop.load(Ordering::Relaxed) {
                effect.tried.fetch_add(1, Ordering::Relaxed);
                if send(&mut ws, &candidate).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(held);
}

struct Row {
    name: String,
    peak_rss_kib: u64,
    ok: usize,
    failed: usize,
    p50_ms: f64,
    p99_ms: f64,
    effect: String,
}

fn p99(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = (v.len() * 99).div_ceil(100).saturating_sub(1);
    v[i.min(v.len() - 1)]
}

async fn phase(attack: Attack, ctx: Arc<Ctx>, server: &ChildServer, args: &AttackArgs) -> Row {
    let stop = Arc::new(AtomicBool::new(false));
    let effect = Arc::new(Effect::default());
    let attacking = tokio::spawn(run_attack(
        attack,
        ctx.clone(),
        args.clone(),
        effect.clone(),
        stop.clone(),
    ));
    // Let the attack take hold before the honest members come.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let mut joiners = Vec::new();
    for _ in 0..args.honest {
        let ctx = ctx.clone();
        joiners.push(tokio::spawn(async move {
            let mut results = Vec::new();
            while Instant::now() < until {
                results.push(honest_join(&ctx).await);
                // A player's pace, not a flood: the resident parks an offer for each join
                // (two frames), which must stay under the server's per-socket frame rate.
                tokio::time::sleep(HONEST_PAUSE).await;
            }
            results
        }));
    }
    let mut peak = 0;
    while Instant::now() < until {
        peak = peak.max(server.rss_kib());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut times = Vec::new();
    let mut failed = 0;
    let mut why = None;
    for j in joiners {
        for r in j.await.unwrap_or_default() {
            match r {
                Ok(t) => times.push(t.as_secs_f64() * 1e3),
                Err(e) => {
                    failed += 1;
                    why.get_or_insert(e);
                }
            }
        }
    }
    peak = peak.max(server.rss_kib());
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(10), attacking).await;
    let (tried, got) = (
        effect.tried.load(Ordering::Relaxed),
        effect.got.load(Ordering::Relaxed),
    );
    let effect = match attack {
        Attack::Quiet => "-".into(),
        Attack::Slowloris => format!("{got} of {tried} still open at the end"),
        Attack::IdleSockets => format!("{got} of {tried} sockets accepted"),
        Attack::OversizedOffers => format!("{tried} offers sent, {got} refusals received"),
        Attack::Churn => format!("{tried} inits, {got} joined"),
        Attack::FrameFlood => format!("{tried} frames sent"),
    };
    // Let the server drop what the attack left before the next phase.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let effect = match why {
        Some(why) => format!("{effect}; an honest failure: {why}"),
        None => effect,
    };
    Row {
        name: attack.name(args),
        peak_rss_kib: peak,
        ok: times.len(),
        failed,
        p50_ms: median(times.clone()),
        p99_ms: p99(times),
        effect,
    }
}

pub async fn bench(args: AttackArgs) {
    let server = ChildServer::start_with_defaults(Lib::Ours);
    let ctx = Arc::new(Ctx {
        addr: server.addr().parse().unwrap(),
        issuer: issuer(),
        next: AtomicU64::new(0),
    });
    let resident = tokio::spawn(resident(ctx.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "## The signaling server under attack ({}; default limits; {} honest members joining \
         at once, {} s a phase)\n",
        machine(),
        args.honest,
        args.seconds
    );
    println!(
        "| phase | server peak RSS | honest joins ok / failed | join p50 | join p99 | what the attack got |"
    );
    println!("|---|---|---|---|---|---|");
    for attack in [
        Attack::Quiet,
        Attack::Slowloris,
        Attack::IdleSockets,
        Attack::OversizedOffers,
        Attack::Churn,
        Attack::FrameFlood,
    ] {
        let row = phase(attack, ctx.clone(), &server, &args).await;
        println!(
            "| {} | {:.1} MiB | {} / {} | {:.1} ms | {:.1} ms | {} |",
            row.name,
            row.peak_rss_kib as f64 / 1024.0,
            row.ok,
            row.failed,
            row.p50_ms,
            row.p99_ms,
            row.effect
        );
    }
    resident.abort();
}
