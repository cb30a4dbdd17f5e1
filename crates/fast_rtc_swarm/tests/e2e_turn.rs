//! TURN on loopback: a real coturn (Debian's `turnserver`) started by each test on a free port
//! of 127.0.0.1 with long-term credentials, the real signaling server, real webrtc-rs members
//! bound to 127.0.0.1 with the relay-only policy.
//!
//! These tests need `turnserver` on `PATH`, so they are `#[ignore]`d: a plain `cargo test`
//! lists them as ignored. `scripts/turn-loopback-test.sh` (run by `scripts/test.sh`) installs
//! coturn if missing and runs them with `--ignored`; there a missing `turnserver` FAILS them.
//!
//! - `a_wrong_turn_password_is_a_typed_fault`: a relay-only member with a wrong password gets
//!   `SwarmFault::RelayUnavailable` naming the TURN server, and no link; a member with the
//!   right password next to it gets no such fault.
//! - `the_right_turn_password_links_through_the_relay` (the positive control): two relay-only
//!   members with the right password link, exchange data, get no such fault, and both ends'
//!   selected candidate pair is `local=relay remote=relay` (read from the native backend's
//!   `selected candidate pair` event's fields by a tracing layer, not from text).
#![cfg(not(target_arch = "wasm32"))] // native backend and a local coturn
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)]

mod support;

use fast_rtc_protocol::UserId;
use fast_rtc_swarm::{ChannelId, Payload, SignalingState, SwarmEvent, SwarmFault, SwarmHandle};
use fast_rtc_testkit::coturn::Coturn;
use fast_rtc_testkit::routes::{self, Route};
use std::net::Ipv4Addr;
use std::time::Duration;
use support::routes::init_route_capture;
use support::turn::{relay_fault, relay_only};
use support::*;

/// A coturn on 127.0.0.1 with one long-term-credential user; killed on drop.
fn coturn(user: &str, password: &str) -> Coturn {
    Coturn::start(Ipv4Addr::LOCALHOST.into(), user, password).unwrap_or_else(|e| {
        panic!(
            "{e}\nthese tests need Debian's coturn (scripts/turn-loopback-test.sh installs it and \
             runs them)"
        )
    })
}

/// Every event `h` reports within `d`.
async fn events_for(h: &SwarmHandle, d: Duration) -> Vec<SwarmEvent> {
    collect_until(h, d, |_| false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs coturn's `turnserver`: run by scripts/turn-loopback-test.sh with --ignored"]
async fn a_wrong_turn_password_is_a_typed_fault() {
    init_route_capture();
    let coturn = coturn("player", "right-password");
    let server = server().await;
    let good = member(
        &server,
        "good",
        relay_only("turn-bad", coturn.url(), "player", "right-password"),
    );
    // The good member's parked offer is claimed by the bad one below.
    collect_until(&good, Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, SwarmEvent::Signaling(SignalingState::Joined)))
    })
    .await;
    let bad = member(
        &server,
        "bad",
        relay_only("turn-bad", coturn.url(), "player", "wrong-password"),
    );
    let events = collect_until(&bad, Duration::from_secs(20), |evs| {
        evs.iter().any(|e| relay_fault(e).is_some())
    })
    .await;
    let Some(SwarmFault::RelayUnavailable {
        servers,
        relay_only,
        id,
    }) = events.iter().find_map(relay_fault)
    else {
        panic!(
            "no RelayUnavailable fault for a wrong TURN password; events: {events:?}\ncoturn:\n{}",
            coturn.log()
        );
    };
    assert_eq!(servers, &[coturn.url().to_owned()]);
    assert!(relay_only);
    let text = events.iter().find_map(relay_fault).unwrap().to_string();
    println!("the fault: {text}");
    assert!(
        text.contains(coturn.url()) && text.contains(id.as_str()),
        "{text}"
    );
    assert!(
        opened(&events).is_empty(),
        "a member without TURN allocation linked: {events:?}"
    );
    // coturn did refuse the credentials (the fault is about them, not about reachability).
    assert!(
        coturn
            .log()
            .contains("user player credentials are incorrect"),
        "coturn did not log the refused credentials:\n{}",
        coturn.log()
    );
    // The member with the right password gathered its relay candidates: no such fault.
    let good_events = events_for(&good, Duration::from_secs(1)).await;
    assert!(
        !good_events.iter().any(|e| relay_fault(e).is_some()),
        "the right password was reported: {good_events:?}"
    );
    bad.close();
    good.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs coturn's `turnserver`: run by scripts/turn-loopback-test.sh with --ignored"]
async fn the_right_turn_password_links_through_the_relay() {
    init_route_capture();
    let coturn = coturn("player", "right-password");
    let server = server().await;
    let a = member(
        &server,
        "a",
        relay_only("turn-ok", coturn.url(), "player", "right-password"),
    );
    let b = member(
        &server,
        "b",
        relay_only("turn-ok", coturn.url(), "player", "right-password"),
    );
    let a_events = wait_open(&a, &["b".into()], Duration::from_secs(20)).await;
    let b_events = wait_open(&b, &["a".into()], Duration::from_secs(20)).await;
    let id = a_events
        .iter()
        .find_map(|e| match e {
            SwarmEvent::Open(p) => Some(p.id.clone()),
            _ => None,
        })
        .unwrap();
    a.send(&UserId::from("b"), ChannelId::FAST, "through the relay")
        .unwrap();
    let got = collect_until(&b, Duration::from_secs(10), |evs| {
        evs.iter().any(|e| matches!(e, SwarmEvent::Data { .. }))
    })
    .await;
    assert!(
        got.iter().any(|e| matches!(e, SwarmEvent::Data { payload: Payload::Text(t), .. } if t == "through the relay")),
        "no data through the relay: {got:?}"
    );
    // Both ends' selected pair is relay to relay.
    let routes = routes::wait_for(&[id.to_string()], 2, Duration::from_secs(5)).await;
    assert_eq!(routes.len(), 2, "selected pairs of {id}: {routes:?}");
    for Route { local, remote, .. } in &routes {
        assert_eq!(
            (local.as_str(), remote.as_str()),
            ("relay", "relay"),
            "{routes:?}"
        );
    }
    let later_a = events_for(&a, Duration::from_secs(1)).await;
    for events in [&a_events, &b_events, &got, &later_a] {
        assert!(
            !events.iter().any(|e| relay_fault(e).is_some()),
            "a RelayUnavailable fault with the right password: {events:?}"
        );
    }
    a.close();
    b.close();
}
