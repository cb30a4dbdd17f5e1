//! The signaling lifecycle against the real server over real sockets: every way a session
//! fails reaches the application as a typed `Failed(reason)`, and a lost session reconnects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests read the clock for deadlines
#![cfg(not(target_arch = "wasm32"))] // native backend; the browser tests are tests/web.rs

mod support;

use fast_rtc_server::{JwtAuthenticator, Limits, Secret, Server, ServerConfig};
use fast_rtc_swarm::{
    FailReason, NativeConfig, ReconnectPolicy, Signaling, SignalingState, SwarmConfig, SwarmEvent,
    SwarmHandle, start,
};
use std::time::Duration;
use support::{SECRET, collect_until, init_tracing, member, server, token};

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
    let h = start_at(server.ws_url(), forged, SwarmConfig::new("r"));
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
    init_tracing();
    let auth = JwtAuthenticator::new(&Secret::new(SECRET).unwrap());
    let config = ServerConfig {
        limits: Limits {
            max_members_per_room: 1,
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let server = Server::new(config, auth)
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
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
