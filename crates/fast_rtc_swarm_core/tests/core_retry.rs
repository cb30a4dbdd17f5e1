//! Handshake retries ([`fast_rtc_swarm_core::swarm#handshake-retries`]): a link that fails
//! before opening is retried by its offerer with a fresh offer through the real signaling
//! hub's `retry` frame, in virtual time, with the fake backend of `net/` losing handshakes.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests pick the virtual clock's start

mod net;

use fast_rtc_protocol::{ConnectionId, UserId};
use fast_rtc_swarm_core::{CloseReason, PeerCommand, Role, SwarmConfig};
use net::Net;
use std::time::Duration;

/// Alice's first pre-made offer's id (she is its offerer).
fn first_offer(net: &Net, member: usize) -> ConnectionId {
    net.commands
        .iter()
        .find_map(|(m, c)| match c {
            PeerCommand::Create {
                id,
                role: Role::Offerer,
                ..
            } if *m == member => Some(id.clone()),
            _ => None,
        })
        .unwrap()
}

fn offerers_created(net: &Net, member: usize) -> usize {
    net.commands
        .iter()
        .filter(|(m, c)| {
            *m == member
                && matches!(
                    c,
                    PeerCommand::Create {
                        role: Role::Offerer,
                        ..
                    }
                )
        })
        .count()
}

#[test]
fn a_failed_handshake_is_retried_and_the_peer_opens_once() {
    let mut net = Net::new();
    let a = net.join("alice", SwarmConfig::new("r"));
    net.run_for(Duration::from_millis(50));
    let first = first_offer(&net, a);
    net.black_holes.insert(first.clone());
    let b = net.join("bob", SwarmConfig::new("r"));
    // The first link times out at 10 s; the retry goes 250 ms later and opens: a link that can
    // only come from the `retry` frame (Bob's join claimed Alice's pre-made offer already).
    net.run_for(Duration::from_secs(11));
    assert_eq!(net.opens(a), vec![UserId::from("bob")]);
    assert_eq!(net.opens(b), vec![UserId::from("alice")]);
    assert!(
        net.closes(a).is_empty(),
        "the offerer never reports the failed attempt"
    );
    // The answerer had its own timeout for the first link (it cannot know a retry follows).
    assert_eq!(
        net.closes(b),
        vec![(UserId::from("alice"), CloseReason::HandshakeTimeout)]
    );
    let link = net.members[a].swarm.link_to(&"bob".into()).unwrap();
    assert_ne!(link, first, "a fresh connection id");
    assert_eq!(net.members[b].swarm.link_to(&"alice".into()), Some(link));
    assert!(net.backend_errors.is_empty(), "{:?}", net.backend_errors);
}

#[test]
fn retries_are_bounded_then_the_peer_is_reported_closed_once() {
    let mut net = Net::new();
    net.black_hole_all = true;
    let mut config = SwarmConfig::new("r");
    config.handshake_timeout = Duration::from_secs(1);
    let a = net.join("alice", config.clone());
    net.run_for(Duration::from_millis(50));
    let before = offerers_created(&net, a);
    net.join("bob", config);
    // 1 s + 0.25 + 1 s + 0.5 + 1 s + 1 + 1 s: all three retries failed by 6 s.
    net.run_for(Duration::from_millis(5700));
    assert!(net.closes(a).is_empty(), "{:?}", net.closes(a));
    net.run_for(Duration::from_secs(2));
    assert_eq!(
        net.closes(a),
        vec![(UserId::from("bob"), CloseReason::HandshakeTimeout)]
    );
    // Besides the pre-made offer it parks again (one, when its first was claimed): three
    // retries, each a fresh offerer.
    assert_eq!(offerers_created(&net, a) - before, 1 + 3);
    net.run_for(Duration::from_secs(10));
    assert_eq!(net.closes(a).len(), 1, "no retry after giving up");
    assert!(net.opens(a).is_empty());
}

#[test]
fn a_peer_that_leaves_while_being_retried_is_reported_once_and_not_retried() {
    let mut net = Net::new();
    let mut config = SwarmConfig::new("r");
    config.handshake_timeout = Duration::from_secs(1);
    config.retry_backoff = Duration::from_secs(2);
    let a = net.join("alice", config.clone());
    net.run_for(Duration::from_millis(50));
    net.black_hole_all = true;
    let b = net.join("bob", config);
    net.run_for(Duration::from_millis(1500)); // failed at ~1 s; the retry waits until ~3 s
    assert!(net.closes(a).is_empty());
    net.kill(b);
    net.run_for(Duration::from_millis(100));
    assert_eq!(
        net.closes(a),
        vec![(UserId::from("bob"), CloseReason::RemoteLeft)]
    );
    let created = offerers_created(&net, a);
    net.run_for(Duration::from_secs(5));
    assert_eq!(
        offerers_created(&net, a),
        created,
        "no retry after the leave"
    );
    assert_eq!(net.closes(a).len(), 1);
}
