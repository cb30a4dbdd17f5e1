//! TURN credentials minted by the signaling server: a real coturn (Debian's `turnserver`) on a
//! free port of 127.0.0.1 taking the TURN REST API's time-limited credentials
//! (`use-auth-secret` + `static-auth-secret`), the real signaling server minting them for each
//! member (`ServerConfig::ice`), and real webrtc-rs members bound to 127.0.0.1 with the
//! relay-only policy and NO ICE servers or TURN password of their own.
//!
//! These tests need `turnserver` on `PATH`, so they are `#[ignore]`d; run by
//! `scripts/turn-loopback-test.sh` with `--ignored` (which installs coturn if missing).
//!
//! - `members_with_no_ice_servers_link_through_the_relay_the_server_minted_for`: two members
//!   link, exchange data, and both ends' selected pair is relay to relay, with no
//!   `RelayUnavailable` fault.
//! - `an_expired_credential_is_refused_and_the_swarm_links_with_fresh_ones`: with a 2 s
//!   credential lifetime, coturn refuses an expired credential (a member configured with one
//!   gets `RelayUnavailable`; the same credential with a later expiry does not), and a member
//!   that has held server-minted credentials for longer than their lifetime still links
//!   relay-only, twice: through an offer parked before its first credential expired (the
//!   allocation made then lives on) and through offers made later, which only the refreshed
//!   credentials can allocate.
#![cfg(not(target_arch = "wasm32"))] // native backend and a local coturn
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)]

mod support;

use fast_rtc_protocol::UserId;
use fast_rtc_server::ice::{turn_credential, turn_username};
use fast_rtc_server::{IceConfig, ServerConfig, TurnConfig, TurnSecret};
use fast_rtc_swarm::{
    ChannelId, IceServer, IceTransportPolicy, Payload, SwarmConfig, SwarmEvent, SwarmHandle,
};
use fast_rtc_testkit::coturn::Coturn;
use fast_rtc_testkit::routes;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::routes::init_route_capture;
use support::turn::relay_fault;
use support::*;

const TURN_SECRET: &str = "server-minted-turn-secret-for-tests";

fn coturn() -> Coturn {
    Coturn::start_with_secret(Ipv4Addr::LOCALHOST.into(), TURN_SECRET).unwrap_or_else(|e| {
        panic!(
            "{e}\nthese tests need Debian's coturn (scripts/turn-loopback-test.sh installs it and \
             runs them)"
        )
    })
}

/// A signaling server that mints credentials for `coturn`, valid for `ttl`.
async fn minting_server(coturn: &Coturn, ttl: Duration) -> fast_rtc_server::ServerHandle {
    server_with(ServerConfig {
        ice: IceConfig {
            turn: Some(TurnConfig {
                urls: vec![coturn.url().to_owned()],
                secret: TurnSecret::new(TURN_SECRET).unwrap(),
                ttl,
            }),
            ..IceConfig::default()
        },
        ..ServerConfig::default()
    })
    .await
}

/// Relay-only, and no ICE servers of its own: whatever it relays through, the server gave it.
fn relay_only(room: &str) -> SwarmConfig {
    let mut config = SwarmConfig::new(room);
    config.ice_transport_policy = IceTransportPolicy::Relay;
    assert!(config.ice_servers.is_empty());
    config
}

fn open_ids(events: &[SwarmEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            SwarmEvent::Open(p) => Some(p.id.to_string()),
            _ => None,
        })
        .collect()
}

/// Checks that every link of `ids` went relay to relay at both ends.
async fn assert_relayed(ids: &[String]) {
    let found = routes::wait_for(ids, ids.len() * 2, Duration::from_secs(5)).await;
    assert_eq!(
        found.len(),
        ids.len() * 2,
        "selected pairs of {ids:?}: {found:?}"
    );
    for r in &found {
        assert!(r.is_relay(), "not relayed: {found:?}");
    }
    println!("selected pairs: {found:?}");
}

async fn say(from: &SwarmHandle, to: &SwarmHandle, to_name: &str, text: &str) {
    from.send(&UserId::from(to_name), ChannelId::FAST, text)
        .unwrap();
    let got = collect_until(to, Duration::from_secs(10), |evs| {
        evs.iter().any(|e| matches!(e, SwarmEvent::Data { .. }))
    })
    .await;
    assert!(
        got.iter()
            .any(|e| matches!(e, SwarmEvent::Data { payload: Payload::Text(t), .. } if t == text)),
        "{text:?} did not arrive: {got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs coturn's `turnserver`: run by scripts/turn-loopback-test.sh with --ignored"]
async fn members_with_no_ice_servers_link_through_the_relay_the_server_minted_for() {
    init_route_capture();
    let coturn = coturn();
    let server = minting_server(&coturn, Duration::from_secs(3600)).await;
    let started = std::time::Instant::now();
    let a = member(&server, "a", relay_only("minted"));
    let b = member(&server, "b", relay_only("minted"));
    let a_events = wait_open(&a, &["b".into()], Duration::from_secs(20)).await;
    let b_events = wait_open(&b, &["a".into()], Duration::from_secs(20)).await;
    println!("linked through the relay in {:?}", started.elapsed());
    say(&a, &b, "b", "through a relay the server paid for").await;
    assert_relayed(&open_ids(&a_events)).await;
    for events in [&a_events, &b_events] {
        assert!(
            !events.iter().any(|e| relay_fault(e).is_some()),
            "{events:?}"
        );
    }
    assert!(
        !coturn.log().contains("incorrect"),
        "coturn refused a minted credential:\n{}",
        coturn.log()
    );
    a.close();
    b.close();
}

/// A member whose application configured `credential_expiry`-stamped credentials, minted with
/// the right secret: the swarm uses them as they are (the application's list wins).
fn with_own_credential(room: &str, turn_url: &str, user: &str, expiry: u64) -> SwarmConfig {
    let username = turn_username(expiry, &UserId::from(user));
    let credential = turn_credential(&TurnSecret::new(TURN_SECRET).unwrap(), &username);
    let mut config = relay_only(room);
    config
        .ice_servers
        .push(IceServer::turn(turn_url, username, credential));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs coturn's `turnserver`: run by scripts/turn-loopback-test.sh with --ignored"]
async fn an_expired_credential_is_refused_and_the_swarm_links_with_fresh_ones() {
    init_route_capture();
    let coturn = coturn();
    let ttl = Duration::from_secs(2);
    let server = minting_server(&coturn, ttl).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // coturn refuses an expired credential (and takes the same one with a later expiry).
    let expired = member(
        &server,
        "expired",
        with_own_credential("proof", coturn.url(), "expired", now - 10),
    );
    let events = collect_until(&expired, Duration::from_secs(10), |evs| {
        evs.iter().any(|e| relay_fault(e).is_some())
    })
    .await;
    assert!(
        events.iter().any(|e| relay_fault(e).is_some()),
        "an expired credential was not refused: {events:?}\ncoturn:\n{}",
        coturn.log()
    );
    let valid = member(
        &server,
        "valid",
        with_own_credential("proof-control", coturn.url(), "valid", now + 600),
    );
    let events = collect_until(&valid, Duration::from_secs(3), |_| false).await;
    assert!(
        !events.iter().any(|e| relay_fault(e).is_some()),
        "the control credential was refused: {events:?}"
    );
    expired.close();
    valid.close();

    // A member joins with the server's credentials, parks its offer, and outlives them.
    let a = member(&server, "a", relay_only("fresh"));
    let mut a_events = collect_until(&a, Duration::from_secs(10), |evs| {
        evs.iter().any(|e| {
            matches!(
                e,
                SwarmEvent::Signaling(fast_rtc_swarm::SignalingState::Joined)
            )
        })
    })
    .await;
    tokio::time::sleep(ttl * 2).await;
    // B takes the offer A parked before its first credential expired.
    let b = member(&server, "b", relay_only("fresh"));
    a_events.extend(wait_open(&a, &["b".into()], Duration::from_secs(20)).await);
    wait_open(&b, &["a".into()], Duration::from_secs(20)).await;
    say(&a, &b, "b", "on an allocation made before expiry").await;
    // Longer than a lifetime again: only refreshed credentials can allocate A's next offer.
    tokio::time::sleep(ttl * 2).await;
    let c = member(&server, "c", relay_only("fresh"));
    let c_events = wait_open(&c, &["a".into(), "b".into()], Duration::from_secs(20)).await;
    a_events
        .extend(collect_until(&a, Duration::from_secs(5), |evs| !open_ids(evs).is_empty()).await);
    say(&c, &a, "a", "on fresh credentials").await;
    assert_relayed(&open_ids(&c_events)).await;
    assert!(
        !a_events.iter().any(|e| relay_fault(e).is_some()),
        "a member's minted credentials were refused: {a_events:?}"
    );
    for m in [a, b, c] {
        m.close();
    }
}
