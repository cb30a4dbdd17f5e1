//! Real signaling server on a random loopback port, real webrtc-rs members on 127.0.0.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests read the clock for tokens and deadlines

pub mod proxy;
pub mod routes;
pub mod spectrum;
pub mod turn;

use fast_rtc_protocol::UserId;
use fast_rtc_server::{JwtAuthenticator, Secret, Server, ServerConfig, ServerHandle, TokenIssuer};
use fast_rtc_swarm::{
    NativeConfig, PeerInfo, Signaling, SwarmConfig, SwarmEvent, SwarmHandle, start,
};
use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

pub const SECRET: &str = "swarm-tests-0123456789abcdef0123456789abcdef";

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

pub async fn server() -> ServerHandle {
    server_with(ServerConfig::default()).await
}

/// A server with `config` on a random loopback port, accepting tokens made with [`SECRET`].
pub async fn server_with(config: ServerConfig) -> ServerHandle {
    init_tracing();
    let auth = JwtAuthenticator::new(&Secret::new(SECRET).unwrap());
    Server::new(config, auth)
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

pub fn token(user: &str) -> String {
    TokenIssuer::new(&Secret::new(SECRET).unwrap())
        .issue(user, "*", Duration::from_secs(600), SystemTime::now())
        .unwrap()
}

/// A member on the native backend bound to 127.0.0.1, its driver on the tokio runtime.
pub fn member(server: &ServerHandle, user: &str, config: SwarmConfig) -> SwarmHandle {
    member_with(server, user, config, NativeConfig::loopback())
}

pub fn member_with(
    server: &ServerHandle,
    user: &str,
    config: SwarmConfig,
    native: NativeConfig,
) -> SwarmHandle {
    let signaling = Signaling::WebSocket {
        url: server.ws_url(),
        token: token(user),
    };
    let (handle, driver) = start(config, native, signaling).unwrap();
    tokio::spawn(driver);
    handle
}

/// Events until `pred` holds for the collected ones, or the timeout.
pub async fn collect_until(
    h: &SwarmHandle,
    timeout: Duration,
    mut pred: impl FnMut(&[SwarmEvent]) -> bool,
) -> Vec<SwarmEvent> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while !pred(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, h.recv()).await {
            Ok(Some(ev)) => got.push(ev),
            Ok(None) | Err(_) => break,
        }
    }
    got
}

pub fn opened(events: &[SwarmEvent]) -> BTreeSet<UserId> {
    events
        .iter()
        .filter_map(|e| match e {
            SwarmEvent::Open(PeerInfo { user_id, .. }) => Some(user_id.clone()),
            _ => None,
        })
        .collect()
}

/// Waits until `h` has open links to exactly `peers`.
pub async fn wait_open(h: &SwarmHandle, peers: &[String], timeout: Duration) -> Vec<SwarmEvent> {
    let want: BTreeSet<UserId> = peers.iter().map(|p| UserId::from(p.as_str())).collect();
    let events = collect_until(h, timeout, |evs| opened(evs) == want).await;
    assert_eq!(opened(&events), want, "open events: {events:?}");
    events
}
