//! Real WebRTC links across the lab: two `echo_peer` members on their own sites, the signaling
//! server (and coturn, for STUN or TURN) on a public one. Each test asserts that every link
//! opened, that data crossed both ways (each member's hello came back echoed), and the kind of
//! the selected candidate pair at both ends; it prints the join time (the joiner's start to its
//! first open) and the pairs. Needs root: `#[ignore]`d in a plain `cargo test`;
//! `scripts/netlab-test.sh` runs them (`FAST_RTC_NETLAB_SEED` picks the loss draws' seed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;

use common::{Ice, Scenario, TurnSource, cone_stun_source, run, symmetric_turn_source};
use fast_rtc_netlab::{LinkSpec, Nat};
use std::time::Duration;

/// 40 ms one way on every link: 80 ms round trips.
const WAN: LinkSpec = LinkSpec::delay(Duration::from_millis(40));

/// Two members on sites behind `nat`, every lab link `link`, ICE servers from `ice`: one link
/// between them, opened at both ends, whose selected pair is of `kind`.
fn two_members(name: &'static str, nat: Nat, link: LinkSpec, ice: Ice, kind: &str) {
    let outcome = run(&Scenario {
        name,
        nat,
        link,
        ice,
        members: 2,
        credential_ttl: None,
    });
    assert_kinds(&outcome, kind);
}

/// One link between the two members, opened at both ends, whose selected pair is of `kind`.
fn assert_kinds(outcome: &common::Outcome, kind: &str) {
    assert_eq!(outcome.ends.len(), 2, "one link, two ends: {outcome:?}");
    assert_eq!(outcome.links.len(), 1, "one link, two ends: {outcome:?}");
    assert!(
        outcome.links.iter().all(|(_, k)| *k == kind),
        "expected a {kind} pair: {outcome:?}"
    );
}

#[test]
#[ignore = "needs root (network namespaces, TUN, nftables): scripts/netlab-test.sh"]
fn no_nat_80ms_rtt_links_over_host_pairs() {
    two_members(
        "no NAT, 80 ms RTT, 0 % loss",
        Nat::None,
        WAN,
        Ice::None,
        "host",
    );
}

#[test]
#[ignore = "needs root (network namespaces, TUN, nftables): scripts/netlab-test.sh"]
fn no_nat_80ms_rtt_3_percent_loss_links_over_host_pairs() {
    two_members(
        "no NAT, 80 ms RTT, 3 % loss each way",
        Nat::None,
        WAN.with_loss(0.03),
        Ice::None,
        "host",
    );
}

#[test]
#[ignore = "needs root (network namespaces, TUN, nftables): scripts/netlab-test.sh"]
fn cone_nats_with_stun_link_over_server_reflexive_pairs() {
    two_members(
        "cone NATs, STUN, 80 ms RTT",
        Nat::Cone,
        WAN,
        Ice::Stun(cone_stun_source()),
        "srflx",
    );
}

#[test]
#[ignore = "needs root (network namespaces, TUN, nftables): scripts/netlab-test.sh"]
fn symmetric_nats_with_turn_link_over_relay_pairs() {
    two_members(
        "symmetric NATs, TURN (REST credentials), 80 ms RTT",
        Nat::Symmetric,
        WAN,
        Ice::Turn(symmetric_turn_source()),
        "relay",
    );
}

/// Behind symmetric NATs, with TURN credentials the server mints valid for 2 s only: three
/// members join 4 s apart, so each earlier member's first credential has expired (coturn
/// refuses it: see `fast_rtc_swarm`'s `e2e_server_ice.rs`) when the next one claims its new
/// offer. Every link still forms through the relay: the swarm took the server's refreshed
/// credentials (an `iceServers` frame at half their lifetime) for its new connections.
#[test]
#[ignore = "needs root (network namespaces, TUN, nftables): scripts/netlab-test.sh"]
fn symmetric_nats_link_over_relays_with_refreshed_turn_credentials() {
    let outcome = run(&Scenario {
        name: "symmetric NATs, TURN credentials valid 2 s, members 4 s apart",
        nat: Nat::Symmetric,
        link: WAN,
        ice: Ice::Turn(TurnSource::Server),
        members: 3,
        credential_ttl: Some(Duration::from_secs(2)),
    });
    assert_eq!(outcome.links.len(), 3, "three links: {outcome:?}");
    assert!(
        outcome.links.iter().all(|(_, k)| *k == "relay"),
        "relay pairs: {outcome:?}"
    );
}

/// Four members under 3 % loss each way on every link: every one of the six links must form.
/// Before handshake retries about one run in ten left a pair unlinked for good (a DTLS
/// handshake that gave up, a `HandshakeTimeout`, never tried again); now the link's offerer
/// retries it with a fresh offer (`fast_rtc_swarm_core::swarm#handshake-retries`).
#[test]
#[ignore = "needs root (network namespaces, TUN, nftables): scripts/netlab-test.sh"]
fn four_members_under_3_percent_loss_link_every_pair() {
    let outcome = run(&Scenario {
        name: "no NAT, 4 members, 80 ms RTT, 3 % loss each way",
        nat: Nat::None,
        link: WAN.with_loss(0.03),
        ice: Ice::None,
        members: 4,
        credential_ttl: None,
    });
    assert_eq!(outcome.links.len(), 6, "six links: {outcome:?}");
    assert!(
        outcome.links.iter().all(|(_, k)| *k == "host"),
        "host pairs: {outcome:?}"
    );
}
