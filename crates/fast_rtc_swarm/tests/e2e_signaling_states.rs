//! The signaling lifecycle against the real server over real sockets: every way a session
//! fails reaches the application as a typed `Failed(reason)`, a lost or silent session
//! reconnects, and a dead token is replaced by asking the application for a fresh one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests read the clock for deadlines
#![cfg(not(target_arch = "wasm32"))] // native backend; the browser tests are tests/web.rs

mod support;

use fast_rtc_server::{Limits, Secret, ServerConfig};
use fast_rtc_server::{ServerHandle, TokenIssuer};
use fast_rtc_swarm::{
    FailReason, NativeConfig, ReconnectPolicy, Signaling, SignalingState, SwarmConfig, SwarmEvent,
    SwarmHandle, TokenPolicy, TokenRequest, start,
};
use std::time::{Duration, Instant, SystemTime};
use support::proxy::Proxy;
use support::{SECRET, collect_until, init_tracing, member, server, server_with, token};

const WAIT: Duration = Duration::from_secs(20);

fn states(events: &[SwarmEvent]) -> Vec<SignalingState> {
    events
        .iter()
        .filter_map(|e| match e {
            SwarmEvent::Signaling(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// Events until the swarm reports `Failed`, or `WAIT`.
async fn until_failed(h: &SwarmHandle) -> Vec<SignalingState> {
    let events = collect_until(h, WAIT, |evs| {
        states(evs).last().is_some_and(SignalingState::is_failed)
    })
    .await;
    states(&events)
}

async fn until_joined(h: &SwarmHandle) -> Vec<SignalingState> {
    let events = collect_until(h, WAIT, |evs| {
        states(evs).last() == Some(&SignalingState::Joined)
    })
    .await;
    states(&events)
}

fn start_at(url: String, token: String, config: SwarmConfig) -> SwarmHandle {
    let (h, driver) = start(
        config,
        NativeConfig::loopback(),
        Signaling::WebSocket { url, token },
    )
    .unwrap();
    tokio::spawn(driver);
    h
}

#[tokio::test]
async fn joined_only_once_the_server_accepts_the_init() {
    let server = server().await;
    let h = member(&server, "alice", SwarmConfig::new("r"));
    assert_eq!(
        until_joined(&h).await,
        vec![SignalingState::Connecting, SignalingState::Joined]
    );
    assert_eq!(h.signaling_state(), SignalingState::Joined);
    h.close();
    assert_eq!(
        h.signaling_state(),
        SignalingState::Failed(FailReason::Closed)
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_token_fails_unauthorized_in_one_attempt() {
    let server = server().await;
    let forged = {
        let mut t = token("alice");
        t.push('x');
        t
    };
    let mut config = SwarmConfig::new("r");
    config.token.wait_for_token = Duration::ZERO;
    let h = start_at(server.ws_url(), forged, config);
    assert_eq!(
        until_failed(&h).await,
        vec![
            SignalingState::Connecting,
            SignalingState::Failed(FailReason::Unauthorized)
        ]
    );
    assert!(h.is_closed());
    assert_eq!(server.room(&"r".into()).await, None, "nobody ever joined");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_server_fails_after_the_retry_budget() {
    init_tracing();
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = SwarmConfig::new("r");
    config.reconnect = ReconnectPolicy {
        max_attempts: Some(3),
        ..ReconnectPolicy::default()
    };
    let h = start_at(format!("ws://127.0.0.1:{port}/ws"), token("alice"), config);
    let got = until_failed(&h).await;
    match got.as_slice() {
        [
            SignalingState::Connecting,
            SignalingState::Failed(FailReason::Unreachable {
                attempts: 3,
                last_error,
            }),
        ] => assert!(!last_error.is_empty()),
        other => panic!("expected Connecting then Unreachable after 3 attempts: {other:?}"),
    }
}

#[tokio::test]
async fn a_second_session_with_the_same_identity_replaces_the_first_for_good() {
    let server = server().await;
    let old = member(&server, "alice", SwarmConfig::new("r"));
    until_joined(&old).await;
    let new = member(&server, "alice", SwarmConfig::new("r"));
    until_joined(&new).await;
    assert_eq!(
        until_failed(&old).await.last(),
        Some(&SignalingState::Failed(FailReason::Replaced))
    );
    // The old one does not come back and kick the new one out.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(new.signaling_state(), SignalingState::Joined);
    let room = server.room(&"r".into()).await.unwrap();
    assert_eq!(room.members.len(), 1, "{room:?}");
    new.close();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_full_room_fails_room_full() {
    let server = server_with(ServerConfig {
        limits: Limits {
            max_members_per_room: 1,
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let alice = member(&server, "alice", SwarmConfig::new("r"));
    until_joined(&alice).await;
    let bob = member(&server, "bob", SwarmConfig::new("r"));
    assert_eq!(
        until_failed(&bob).await,
        vec![
            SignalingState::Connecting,
            SignalingState::Failed(FailReason::RoomFull)
        ]
    );
    assert_eq!(alice.signaling_state(), SignalingState::Joined);
    alice.close();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_room_the_token_does_not_grant_fails_room_not_allowed() {
    let server = server().await;
    let narrow = fast_rtc_server::TokenIssuer::new(&Secret::new(SECRET).unwrap())
        .issue(
            "alice",
            "lobby",
            Duration::from_secs(600),
            std::time::SystemTime::now(),
        )
        .unwrap();
    let h = start_at(server.ws_url(), narrow, SwarmConfig::new("secret-room"));
    assert_eq!(
        until_failed(&h).await.last(),
        Some(&SignalingState::Failed(FailReason::RoomNotAllowed))
    );
    server.shutdown().await.unwrap();
}

/// A token issued `age` ago that lived `ttl`.
fn token_issued(user: &str, ttl: Duration, age: Duration) -> String {
    TokenIssuer::new(&Secret::new(SECRET).unwrap())
        .issue(user, "*", ttl, SystemTime::now() - age)
        .unwrap()
}

fn token_requests(events: &[SwarmEvent]) -> Vec<TokenRequest> {
    events
        .iter()
        .filter_map(|e| match e {
            SwarmEvent::TokenRequested(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_refused_token_is_asked_about_and_a_fresh_one_joins() {
    let server = server().await;
    let expired = token_issued("alice", Duration::from_secs(60), Duration::from_secs(3600));
    let h = start_at(server.ws_url(), expired, SwarmConfig::new("r"));
    // Asked at once (it has expired: `Expiring` with nothing left), or once refused.
    let events = collect_until(&h, WAIT, |evs| !token_requests(evs).is_empty()).await;
    match token_requests(&events).as_slice() {
        [TokenRequest::Rejected] => {}
        [TokenRequest::Expiring { expires_in }] => assert_eq!(*expires_in, Duration::ZERO),
        other => panic!("expected one request: {other:?}"),
    }
    assert!(!states(&events).contains(&SignalingState::Joined));
    h.set_token(token("alice"));
    let mut all = states(&events);
    all.extend(until_joined(&h).await);
    assert_eq!(
        all,
        vec![SignalingState::Connecting, SignalingState::Joined]
    );
    assert_eq!(server.room(&"r".into()).await.unwrap().members.len(), 1);
    h.close();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unanswered_refusal_fails_unauthorized_after_the_wait() {
    let server = server().await;
    let expired = token_issued("alice", Duration::from_secs(60), Duration::from_secs(3600));
    let mut config = SwarmConfig::new("r");
    config.token.wait_for_token = Duration::from_millis(500);
    let h = start_at(server.ws_url(), expired, config);
    let events = collect_until(&h, WAIT, |evs| {
        states(evs).last().is_some_and(SignalingState::is_failed)
    })
    .await;
    // An expired token is asked about at once, then refused and asked about again.
    assert_eq!(
        token_requests(&events),
        vec![
            TokenRequest::Expiring {
                expires_in: Duration::ZERO
            },
            TokenRequest::Rejected
        ]
    );
    assert_eq!(
        states(&events),
        vec![
            SignalingState::Connecting,
            SignalingState::Failed(FailReason::Unauthorized)
        ]
    );
    server.shutdown().await.unwrap();
}

/// A member whose token expires soon is asked for a new one ahead of time; after the old one
/// is dead (past `exp` and the server's 5 s leeway), its connection is cut, and it rejoins
/// with the new one. With the wait for a token off, a reconnect with the old token would fail
/// `Unauthorized` at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_is_refreshed_ahead_and_the_next_session_uses_the_new_one() {
    let server = server().await;
    let proxy = Proxy::start(server.local_addr()).await;
    let short = token_issued("alice", Duration::from_secs(3), Duration::ZERO);
    let issued = Instant::now();
    let mut config = SwarmConfig::new("r");
    config.token = TokenPolicy {
        refresh_before_expiry: Some(Duration::from_secs(2)),
        wait_for_token: Duration::ZERO,
    };
    let h = start_at(proxy.ws_url(), short, config);
    let events = collect_until(&h, WAIT, |evs| !token_requests(evs).is_empty()).await;
    let asked_after = issued.elapsed();
    match token_requests(&events).as_slice() {
        [TokenRequest::Expiring { expires_in }] => {
            assert!(*expires_in <= Duration::from_secs(2), "{expires_in:?}")
        }
        other => panic!("expected one Expiring request: {other:?}"),
    }
    // `exp` has whole seconds: the request comes 0-2 s after issue, not after expiry.
    assert!(asked_after < Duration::from_secs(3), "{asked_after:?}");
    assert_eq!(
        states(&events),
        vec![SignalingState::Connecting, SignalingState::Joined]
    );
    h.set_token(token("alice"));
    // The old token is refused from 3 s + 5 s leeway after issue.
    tokio::time::sleep(Duration::from_secs(9).saturating_sub(issued.elapsed())).await;
    proxy.cut();
    assert_eq!(
        until_joined(&h).await,
        vec![SignalingState::Reconnecting, SignalingState::Joined]
    );
    assert_eq!(proxy.connections(), 2);
    h.close();
    server.shutdown().await.unwrap();
}

/// A server that pings often.
async fn pinging_server() -> ServerHandle {
    server_with(ServerConfig {
        ping_interval: Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await
}

/// A half-open signaling connection (the proxy freezes it: no bytes, no FIN, no RST) is
/// noticed by the silence of the server's pings, reported `Reconnecting`, and replaced by a
/// new session; while the pings arrive, a quiet room is not mistaken for a dead socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_connection_is_noticed_by_silence_and_replaced() {
    let server = pinging_server().await;
    let proxy = Proxy::start(server.local_addr()).await;
    let mut config = SwarmConfig::new("r");
    config.signaling_silence_timeout = Some(Duration::from_millis(1000));
    let h = start_at(proxy.ws_url(), token("alice"), config);
    assert_eq!(
        until_joined(&h).await,
        vec![SignalingState::Connecting, SignalingState::Joined]
    );
    // Three silence timeouts of a quiet room: the pings keep the session.
    let quiet = collect_until(&h, Duration::from_secs(3), |_| false).await;
    assert_eq!(states(&quiet), vec![], "{quiet:?}");
    assert_eq!(proxy.connections(), 1);
    let frozen_at = Instant::now();
    proxy.freeze();
    let events = collect_until(&h, WAIT, |evs| {
        states(evs).first() == Some(&SignalingState::Reconnecting)
    })
    .await;
    let noticed_after = frozen_at.elapsed();
    assert_eq!(states(&events), vec![SignalingState::Reconnecting]);
    // The silence counts from the last ping received, up to one ping interval (200 ms)
    // before the freeze; timers fire a few ms early or late (796 ms was seen once).
    assert!(
        noticed_after >= Duration::from_millis(750),
        "noticed before the silence timeout: {noticed_after:?}"
    );
    assert_eq!(until_joined(&h).await, vec![SignalingState::Joined]);
    assert_eq!(proxy.connections(), 2);
    h.close();
    server.shutdown().await.unwrap();
}
