//! `fast-rtc-server`: run the signaling server, or mint a token for it.

use clap::{Args, Parser, Subcommand};
use fast_rtc_server::{
    AdminConfig, ClusterConfig, ConnectionLimits, IceConfig, JwtAuthenticator, Limits, Secret,
    Server, ServerConfig, StunAdvertise, StunListen, TlsConfig, TokenIssuer, TurnConfig,
    TurnSecret,
};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// The fast-rtc signaling server. Authentication is always on: every socket needs a token signed
/// with the server's secret.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Print a token signed with the secret, for `ws://HOST/ws?token=TOKEN`.
    Token(TokenArgs),
}

/// Where the HS256 secret comes from: `--secret-file`, else the `FAST_RTC_SECRET` variable.
#[derive(Args)]
struct SecretArgs {
    /// File holding the secret (at least 32 bytes; surrounding whitespace is ignored).
    /// Without it, the secret is read from the FAST_RTC_SECRET environment variable.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
}

impl SecretArgs {
    fn load(&self) -> Result<Secret, String> {
        let raw = match &self.secret_file {
            Some(path) => std::fs::read(path)
                .map_err(|e| format!("cannot read the secret file {}: {e}", path.display()))?,
            None => match std::env::var("FAST_RTC_SECRET") {
                Ok(s) if !s.is_empty() => s.into_bytes(),
                _ => {
                    return Err("no secret: set FAST_RTC_SECRET or pass --secret-file PATH \
                         (at least 32 bytes, e.g. `openssl rand -hex 32`). \
                         There is no anonymous mode."
                        .into());
                }
            },
        };
        Secret::new(raw).map_err(|e| format!("unusable secret: {e}"))
    }
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    #[command(flatten)]
    secret: SecretArgs,
    /// Serve TLS (wss://) with this certificate chain (PEM: the server's certificate first,
    /// then any intermediates). Needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Seconds a client may take to finish its TLS handshake.
    #[arg(long, default_value_t = 10)]
    tls_handshake_timeout: u64,
    /// Seconds between WebSocket pings; a socket silent for two intervals is dropped.
    #[arg(long, default_value_t = 15)]
    ping_interval: u64,
    /// Open sockets at most (HTTP 503 above it).
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Largest frame read, in bytes.
    #[arg(long, default_value_t = Limits::default().max_frame_bytes)]
    max_frame_bytes: usize,
    /// Members per room.
    #[arg(long, default_value_t = Limits::default().max_members_per_room)]
    max_members_per_room: usize,
    /// Unclaimed pre-made offers kept per member.
    #[arg(long, default_value_t = Limits::default().max_chunks_per_member)]
    max_chunks_per_member: usize,
    /// Candidates kept per member before their offer arrives.
    #[arg(long, default_value_t = Limits::default().max_pending_candidates)]
    max_pending_candidates: usize,
    /// Sustained frames per second per socket.
    #[arg(long, default_value_t = Limits::default().frames_per_second)]
    frames_per_second: u32,
    /// Frames a socket may send at once before the rate applies.
    #[arg(long, default_value_t = Limits::default().frame_burst)]
    frame_burst: u32,
    /// Sustained bytes per second per socket.
    #[arg(long, default_value_t = Limits::default().bytes_per_second)]
    bytes_per_second: u32,
    /// Bytes a socket may send at once before the byte rate applies.
    #[arg(long, default_value_t = Limits::default().byte_burst)]
    byte_burst: u32,
    /// Milliseconds a joiner waits for a member's offer before the pair is linked the other way.
    #[arg(long, default_value_t = Limits::default().max_offer_wait.as_millis() as u64)]
    max_offer_wait_ms: u64,
    /// Bytes one parked offer and its candidates may hold (an `accept` is never larger).
    #[arg(long, default_value_t = Limits::default().max_chunk_bytes)]
    max_chunk_bytes: usize,
    /// Bytes one member may keep parked (offers and early candidates).
    #[arg(long, default_value_t = Limits::default().max_parked_bytes_per_member)]
    max_parked_bytes: usize,
    /// `init`s one identity may send at once before --joins-per-minute applies.
    #[arg(long, default_value_t = Limits::default().join_burst)]
    join_burst: u32,
    /// Sustained `init`s per minute per identity (each costs every member of the room an
    /// offer).
    #[arg(long, default_value_t = Limits::default().joins_per_minute)]
    joins_per_minute: u32,
    /// How long a client may take to send a request's headers (`5s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    header_read_timeout: Duration,
    /// Connections not yet upgraded to a signaling socket, at most; past it the oldest of the
    /// source holding the most is dropped.
    #[arg(long, default_value_t = ConnectionLimits::default().max_preauth)]
    max_preauth: usize,
    /// Connections not yet upgraded, per source address (IPv4, or IPv6 /64); 0: no cap (e.g.
    /// behind a proxy).
    #[arg(long, default_value_t = ConnectionLimits::default().max_preauth_per_source)]
    max_preauth_per_source: usize,
    /// Open sockets per identity (the token's `sub`), HTTP 429 past it.
    #[arg(long, default_value_t = ConnectionLimits::default().max_sockets_per_identity)]
    max_sockets_per_identity: usize,
    /// Open sockets per source address (IPv4, or IPv6 /64), HTTP 429 past it; 0: no cap (e.g.
    /// behind a proxy).
    #[arg(long, default_value_t = ConnectionLimits::default().max_sockets_per_source)]
    max_sockets_per_source: usize,
    /// How long a socket may stay open without joining a room (`15s`); then it is closed.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    init_timeout: Duration,
    /// Bytes of frames queued for one socket at most; a socket that falls further behind is
    /// dropped.
    #[arg(long, default_value_t = ConnectionLimits::default().max_queued_bytes)]
    max_queued_bytes: usize,
    /// Serve the admin API (`/metrics`, `/healthz`, `POST /kick`) on this address, e.g.
    /// `127.0.0.1:9090`; `/metrics` then leaves the signaling listener. Needs
    /// --admin-secret-file.
    #[arg(long, value_name = "ADDR", requires = "admin_secret_file")]
    admin_listen: Option<SocketAddr>,
    /// File holding the admin API's bearer secret (at least 32 bytes; not the token secret).
    #[arg(long, value_name = "PATH", requires = "admin_listen")]
    admin_secret_file: Option<PathBuf>,
    /// Milliseconds the place of a resumable member whose socket died is kept for its resume
    /// (its links and pending offers stay, frames for it are kept); 0 turns resumption off.
    /// The default is a little above the swarm's 20 s restore window. Not in cluster mode.
    #[arg(long, default_value_t = Limits::default().resume_grace.as_millis() as u64)]
    resume_grace_ms: u64,
    /// Share rooms with other instances over this Redis or Valkey (`redis://HOST:PORT/DB`).
    /// Every instance of a cluster needs the same secret and the same Redis. Without it, this
    /// process holds every room itself.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Milliseconds a room's lease lasts without renewal (cluster mode): the longest a room is
    /// unusable after its owner instance dies.
    #[arg(long, default_value_t = 5000, requires = "redis")]
    redis_lease_ms: u64,
    /// A STUN server handed to every member in `joined` (`stun:HOST:PORT`); repeatable.
    #[arg(long = "stun", value_name = "URL")]
    stun: Vec<String>,
    /// A TURN server handed to every member with credentials minted for it (coturn's
    /// `use-auth-secret`), e.g. `turn:turn.example.com:3478?transport=udp`; repeatable.
    /// Needs --turn-secret-file.
    #[arg(long = "turn", value_name = "URL", requires = "turn_secret_file")]
    turn: Vec<String>,
    /// File holding coturn's `static-auth-secret` (surrounding whitespace is ignored).
    #[arg(long, value_name = "PATH", requires = "turn")]
    turn_secret_file: Option<PathBuf>,
    /// How long minted TURN credentials are valid (`90s`, `30m`, `1h`, or seconds; at least
    /// 2 s). Members get fresh ones after half of it.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    turn_ttl: Duration,
    /// Answer STUN Binding requests on this UDP address (e.g. `0.0.0.0:3478`) and hand it out
    /// to every member.
    #[arg(long, value_name = "ADDR")]
    stun_listen: Option<SocketAddr>,
    /// The `HOST:PORT` members are told to reach --stun-listen at. Default: the host each
    /// member used to reach this server (its request's `Host`), with the --stun-listen port.
    #[arg(long, value_name = "HOST:PORT", requires = "stun_listen")]
    stun_advertise: Option<String>,
}

/// `500ms`, `90s`, `30m`, `1h`, `2d`, or a number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m or 1h"))?;
    if unit == "ms" {
        return Ok(Duration::from_millis(n));
    }
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit must be ms, s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(unit)))
}

#[derive(Args)]
struct TokenArgs {
    /// The member's identity (becomes its userId).
    #[arg(long)]
    sub: String,
    /// The room granted, or `*` for any room.
    #[arg(long)]
    room: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    #[command(flatten)]
    secret: SecretArgs,
}

/// The most tungstenite may log (it traces every frame's payload).
const TUNGSTENITE_CAP: &str = "tungstenite=debug";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Token(args) => token(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fast-rtc-server: {message}");
            ExitCode::from(2)
        }
    }
}

fn token(args: TokenArgs) -> Result<(), String> {
    let secret = args.secret.load()?;
    #[allow(clippy::disallowed_methods)] // the CLI stamps the token's expiry
    let now = SystemTime::now();
    let token = TokenIssuer::new(&secret)
        .issue(&args.sub, &args.room, Duration::from_secs(args.ttl), now)
        .map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let secret = args.secret.load()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let mut tls = TlsConfig::from_pem_files(cert, key).map_err(|e| e.to_string())?;
            tls.handshake_timeout = Duration::from_secs(args.tls_handshake_timeout.max(1));
            Some(tls)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
                // tungstenite traces whole frames, and `joined` carries TURN credentials:
                // never below debug, whatever RUST_LOG says.
                .add_directive(TUNGSTENITE_CAP.parse().unwrap_or_default()),
        )
        .init();
    let config = ServerConfig {
        limits: Limits {
            max_frame_bytes: args.max_frame_bytes,
            max_members_per_room: args.max_members_per_room,
            max_chunks_per_member: args.max_chunks_per_member,
            max_pending_candidates: args.max_pending_candidates,
            frames_per_second: args.frames_per_second,
            frame_burst: args.frame_burst,
            bytes_per_second: args.bytes_per_second,
            byte_burst: args.byte_burst,
            max_offer_wait: Duration::from_millis(args.max_offer_wait_ms),
            max_chunk_bytes: args.max_chunk_bytes,
            max_parked_bytes_per_member: args.max_parked_bytes,
            join_burst: args.join_burst,
            joins_per_minute: args.joins_per_minute,
            resume_grace: Duration::from_millis(args.resume_grace_ms),
            ..Limits::default()
        },
        connections: ConnectionLimits {
            header_read_timeout: args.header_read_timeout.max(Duration::from_millis(100)),
            max_preauth: args.max_preauth,
            max_preauth_per_source: args.max_preauth_per_source,
            max_sockets_per_identity: args.max_sockets_per_identity,
            max_sockets_per_source: args.max_sockets_per_source,
            init_timeout: args.init_timeout.max(Duration::from_millis(100)),
            max_queued_bytes: args.max_queued_bytes,
        },
        ping_interval: Duration::from_secs(args.ping_interval.max(1)),
        max_connections: args.max_connections,
        tls,
        cluster: args.redis.map(|url| ClusterConfig {
            lease: Duration::from_millis(args.redis_lease_ms.max(30)),
            ..ClusterConfig::new(url)
        }),
        ..ServerConfig::default()
    };
    let admin = match (args.admin_listen, &args.admin_secret_file) {
        (Some(listen), Some(path)) => {
            let raw = std::fs::read(path).map_err(|e| {
                format!("cannot read the admin secret file {}: {e}", path.display())
            })?;
            let secret = Secret::new(raw).map_err(|e| format!("unusable admin secret: {e}"))?;
            Some(AdminConfig { listen, secret })
        }
        _ => None,
    };
    let admin_listener = match &admin {
        Some(a) => Some(
            std::net::TcpListener::bind(a.listen)
                .map_err(|e| format!("cannot listen for the admin API on {}: {e}", a.listen))?,
        ),
        None => None,
    };
    let config = ServerConfig { admin, ..config };
    if let Some(cluster) = &config.cluster {
        cluster.client().map_err(|e| e.to_string())?;
    }
    let turn = match &args.turn_secret_file {
        Some(path) => Some(TurnConfig {
            urls: args.turn.clone(),
            secret: TurnSecret::from_file(path).map_err(|e| e.to_string())?,
            ttl: args.turn_ttl,
        }),
        None => None,
    };
    let config = ServerConfig {
        ice: IceConfig {
            stun: args.stun.clone(),
            turn,
            stun_listen: args.stun_listen.map(|addr| StunListen {
                advertise: match &args.stun_advertise {
                    Some(host) => StunAdvertise::Explicit(host.clone()),
                    None => StunAdvertise::RequestHost,
                },
                ..StunListen::new(addr)
            }),
        },
        ..config
    };
    config.ice.validate().map_err(|e| e.to_string())?;
    let stun_socket = match &config.ice.stun_listen {
        Some(stun) => Some(
            std::net::UdpSocket::bind(stun.addr)
                .map_err(|e| format!("cannot listen for STUN on udp {}: {e}", stun.addr))?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // One machine-readable line on stdout, for scripts and tests that listen on port 0
        // (then one for the STUN server, when it runs).
        println!("fast-rtc-server listening on {scheme}://{addr}/ws");
        let mut server = Server::new(config, JwtAuthenticator::new(&secret));
        if let Some(socket) = stun_socket {
            let stun_addr = socket.local_addr().map_err(|e| e.to_string())?;
            // A reader may have stopped after the first line: never fail on this one.
            let _ = writeln!(
                std::io::stdout(),
                "fast-rtc-server STUN on udp://{stun_addr}"
            );
            server = server.with_stun_socket(socket);
        }
        if let Some(listener) = admin_listener {
            let admin_addr = listener.local_addr().map_err(|e| e.to_string())?;
            let _ = writeln!(
                std::io::stdout(),
                "fast-rtc-server admin API on http://{admin_addr}"
            );
            server = server.with_admin_listener(listener);
        }
        let _ = std::io::stdout().flush();
        server
            .serve(listener, shutdown_signal())
            .await
            .map_err(|e| format!("server failed: {e}"))
    })
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
