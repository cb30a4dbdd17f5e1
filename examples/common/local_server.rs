//! The demos' signaling bootstrap (shared by the multiplayer and rollback examples): find the
//! server that answers on 127.0.0.1:8787 (and the secret the demo instance that started it
//! left), else start one embedded in this process with a fresh secret, or use the server given
//! by `--url`/`--token`/`FAST_RTC_SECRET`; and mint the players' tokens. Native only (the page
//! gets its URL and token from its query string), so each `main.rs` declares this module for
//! non-wasm32 targets only.
use bevy::log::info;
use fast_rtc_server::{
    IceConfig, JwtAuthenticator, Secret, Server, ServerConfig, StunListen, TokenIssuer,
};
use std::time::{Duration, SystemTime};

/// The demos' default signaling URL: a server on this machine, started if none answers.
pub(crate) const DEFAULT_URL: &str = "ws://127.0.0.1:8787/ws";

/// What the bootstrap needs from a demo's command line.
pub(crate) struct Options<'a> {
    /// `--url`.
    pub(crate) url: &'a str,
    /// `--room`.
    pub(crate) room: &'a str,
    /// Whether `--token` was given.
    pub(crate) has_token: bool,
    /// Bots to mint tokens for.
    pub(crate) bots: usize,
    /// Lifetime of minted tokens, seconds.
    pub(crate) token_ttl: u64,
    /// The example and its features, for the browser-player hint (`scripts/web.sh`'s
    /// arguments: `multiplayer`, `rollback --features ggrs`).
    pub(crate) example: &'a str,
}

/// A random 16-bit tag (per process): player and bot names.
pub(crate) fn random_u16() -> u16 {
    let h = std::hash::BuildHasher::hash_one(
        &std::collections::hash_map::RandomState::new(),
        std::process::id(),
    );
    (h & 0xffff) as u16
}

/// Mints tokens for the demo's players from a secret, valid for `ttl` (`--token-ttl`).
#[derive(Clone)]
pub(crate) struct Minter(TokenIssuer, Duration);

impl Minter {
    pub(crate) fn mint(&self, name: &str) -> String {
        #[allow(clippy::disallowed_methods)] // the token's expiry
        let now = SystemTime::now();
        self.0.issue(name, "*", self.1, now).unwrap_or_default()
    }
}

/// Keeps the embedded server's runtime alive.
pub(crate) struct EmbeddedServer(#[allow(dead_code)] tokio::runtime::Runtime);

/// Where the demo's embedded server leaves its secret for other demo instances: the per-user
/// runtime directory when there is one, else the temp directory.
fn secret_file() -> std::path::PathBuf {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    dir.join("bevy_fast_rtc_demo.secret")
}

/// Finds (or starts) the signaling server and a way to mint tokens for it.
pub(crate) fn signaling(
    args: &Options,
) -> Result<(String, Option<Minter>, Option<EmbeddedServer>), String> {
    let ttl = Duration::from_secs(args.token_ttl.max(1));
    if let Ok(s) = std::env::var("FAST_RTC_SECRET") {
        let secret = Secret::new(s).map_err(|e| e.to_string())?;
        return Ok((
            args.url.to_owned(),
            Some(Minter(TokenIssuer::new(&secret), ttl)),
            None,
        ));
    }
    if args.has_token && args.bots == 0 {
        return Ok((args.url.to_owned(), None, None));
    }
    if args.url != DEFAULT_URL {
        return Err("with --url, pass --token (or set FAST_RTC_SECRET to mint tokens)".into());
    }
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], 8787).into();
    if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
        // Another demo instance runs the server: use the secret it left for us.
        let raw = std::fs::read(secret_file())
            .map_err(|_| "a server answers on 127.0.0.1:8787 but its demo secret is unknown: set FAST_RTC_SECRET".to_string())?;
        let secret = Secret::new(raw).map_err(|e| e.to_string())?;
        return Ok((
            args.url.to_owned(),
            Some(Minter(TokenIssuer::new(&secret), ttl)),
            None,
        ));
    }
    let secret = Secret::generate();
    write_secret(&secret)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let auth = JwtAuthenticator::new(&secret);
    // Its own STUN server too, handed to every player in `joined` (players with
    // `--ice-server` use theirs instead): on 3478 of the same address, else any free port.
    let stun = std::net::UdpSocket::bind((addr.ip(), 3478))
        .or_else(|_| std::net::UdpSocket::bind((addr.ip(), 0)))
        .map_err(|e| format!("cannot bind the embedded STUN server: {e}"))?;
    let config = ServerConfig {
        ice: IceConfig {
            stun_listen: Some(StunListen::new(
                stun.local_addr().map_err(|e| e.to_string())?,
            )),
            ..IceConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = Server::new(config, auth).with_stun_socket(stun);
    let handle = runtime
        .block_on(server.spawn(addr))
        .map_err(|e| format!("cannot start the embedded signaling server: {e}"))?;
    info!("embedded signaling server at {}", handle.ws_url());
    println!(
        "started a local signaling server at {} with its STUN server on udp://{} (secret in {})",
        handle.ws_url(),
        handle
            .stun_addr()
            .map_or_else(|| "-".to_owned(), |a| a.to_string()),
        secret_file().display()
    );
    std::mem::forget(handle); // it lives as long as the process
    let minter = Minter(TokenIssuer::new(&secret), ttl);
    println!(
        "a browser player can join: serve the page with `./scripts/web.sh {}`, then open\n  http://127.0.0.1:1334/?signaling={}&room={}&token={}",
        args.example,
        args.url,
        args.room,
        minter.mint(&format!("web-{:04x}", random_u16()))
    );
    Ok((
        args.url.to_owned(),
        Some(minter),
        Some(EmbeddedServer(runtime)),
    ))
}

fn write_secret(secret: &Secret) -> Result<(), String> {
    use std::io::Write;
    // A fresh file, never through an existing one (create_new refuses links another user may
    // have planted in a shared temp directory).
    let path = secret_file();
    let _ = std::fs::remove_file(&path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(secret.as_bytes()).map_err(|e| e.to_string())
}
