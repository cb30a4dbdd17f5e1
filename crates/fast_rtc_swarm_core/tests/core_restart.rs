//! ICE restarts ([`fast_rtc_swarm_core::swarm#ice-restarts`]): an open link that loses its
//! path is restored by its offerer's restarts through the real signaling hub, in virtual time,
//! with the fake backend of `net/` cutting and healing the path.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests pick the virtual clock's start

mod net;

use fast_rtc_protocol::{ConnectionId, UserId};
use fast_rtc_swarm_core::{
    ChannelId, CloseReason, IceState, Payload, PeerCommand, PeerEvent, Role, SwarmConfig,
    SwarmEvent,
};
use net::Net;
use std::time::Duration;

/// Alice and Bob linked; returns the net and the link's id (Alice's pre-made offer: she is
/// its offerer).
fn linked(config: SwarmConfig) -> (Net, ConnectionId) {
    let mut net = Net::new();
    let id = net.link_alice_and_bob(config);
    (net, id)
}

fn interruptions(net: &Net, member: usize) -> (usize, Vec<Duration>) {
    let events = &net.members[member].events;
    let interrupted = events
        .iter()
        .filter(|e| matches!(e, SwarmEvent::Interrupted { .. }))
        .count();
    let restored = events
        .iter()
        .filter_map(|e| match e {
            SwarmEvent::Restored { outage, .. } => Some(*outage),
            _ => None,
        })
        .collect();
    (interrupted, restored)
}

fn texts(net: &Net, member: usize) -> Vec<String> {
    net.data(member)
        .into_iter()
        .filter_map(|(_, _, p)| match p {
            Payload::Text(t) => Some(t),
            Payload::Binary(_) => None,
        })
        .collect()
}

#[test]
fn a_lost_path_is_restored_by_the_offerers_restarts_and_nothing_closes() {
    let (mut net, id) = linked(SwarmConfig::new("r"));
    let (a, b) = (0, 1);
    net.interrupt(&id);
    net.run_for(Duration::from_millis(10));
    // Both ends are told; only the offerer (Alice) restarts, at once.
    assert_eq!(interruptions(&net, a).0, 1);
    assert_eq!(interruptions(&net, b).0, 1);
    assert_eq!(net.restarts(a), 1);
    assert_eq!(net.restarts(b), 0);
    // Reliable data sent during the outage waits.
    for n in 0..5 {
        net.members[b]
            .swarm
            .send(
                &"alice".into(),
                ChannelId::FAST,
                Payload::Text(format!("m{n}")),
            )
            .unwrap();
        net.flush(b);
    }
    // The path stays down for 5 s: a restart every 2 s (each answered), none while one
    // waits for its answer.
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.restarts(a), 3, "at 0, 2 and 4 s");
    assert_eq!(net.restarts(b), 0);
    assert!(texts(&net, a).is_empty(), "nothing crosses a cut path");
    net.heal(&id);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.restarts(a), 4, "the restart at 6 s finds the path");
    let (_, restored) = interruptions(&net, a);
    assert_eq!(restored.len(), 1);
    assert!(restored[0] >= Duration::from_secs(6), "{restored:?}");
    assert_eq!(interruptions(&net, b).1.len(), 1);
    assert_eq!(texts(&net, a), ["m0", "m1", "m2", "m3", "m4"], "in order");
    assert!(net.closes(a).is_empty() && net.closes(b).is_empty());
    assert!(net.backend_errors.is_empty(), "{:?}", net.backend_errors);
    // The link is the same one, and carries data both ways.
    assert_eq!(
        net.members[a].swarm.link_to(&"bob".into()),
        Some(id.clone())
    );
    net.members[a]
        .swarm
        .send(
            &"bob".into(),
            ChannelId::FAST,
            Payload::Text("after".into()),
        )
        .unwrap();
    net.flush(a);
    net.run_for(Duration::from_millis(10));
    assert_eq!(texts(&net, b), ["after"]);
    // A later, transient loss that ICE recovers from itself ends without a restart... of
    // its own: the offerer's first restart goes at once and finds the path.
    net.interrupt(&id);
    net.heal(&id);
    net.run_for(Duration::from_millis(50));
    assert_eq!(interruptions(&net, a), (2, interruptions(&net, a).1));
    assert_eq!(interruptions(&net, a).1.len(), 2);
    assert!(net.closes(a).is_empty() && net.closes(b).is_empty());
}

#[test]
fn the_end_that_did_not_notice_is_told_when_the_restart_begins() {
    let (mut net, id) = linked(SwarmConfig::new("r"));
    let (a, b) = (0, 1);
    // Only the offerer notices; the answerer learns of it from the restart.
    net.interrupt_at(a, &id);
    net.run_for(Duration::from_millis(100));
    assert_eq!(interruptions(&net, a).0, 1);
    assert_eq!(interruptions(&net, b).0, 1, "the restart's checking");
    net.heal(&id);
    net.run_for(Duration::from_secs(3));
    assert_eq!(interruptions(&net, a).1.len(), 1);
    assert_eq!(interruptions(&net, b).1.len(), 1);
    assert!(net.closes(a).is_empty() && net.closes(b).is_empty());
    // The offerer notices on its own: only its own end, and still only it restarts.
    net.interrupt_at(b, &id);
    net.run_for(Duration::from_millis(100));
    assert_eq!(interruptions(&net, b).0, 2);
    assert_eq!(net.restarts(b), 0);
}

#[test]
fn a_path_that_never_returns_closes_the_link_at_the_restore_timeout() {
    let mut config = SwarmConfig::new("r");
    config.restore_timeout = Duration::from_secs(5);
    let (mut net, id) = linked(config);
    net.interrupt(&id);
    // `failed` follows `disconnected`: the restarts go on.
    net.run_for(Duration::from_secs(3));
    for m in [0, 1] {
        net.members[m]
            .swarm
            .handle_peer(net.now, &id, PeerEvent::IceState(IceState::Failed));
        net.flush(m);
    }
    net.run_for(Duration::from_millis(1500));
    assert!(net.closes(0).is_empty() && net.closes(1).is_empty());
    net.run_for(Duration::from_secs(1));
    assert_eq!(
        net.closes(0),
        vec![(UserId::from("bob"), CloseReason::RestoreTimeout)]
    );
    assert_eq!(
        net.closes(1),
        vec![(UserId::from("alice"), CloseReason::RestoreTimeout)]
    );
    assert!(net.members[0].swarm.link_to(&"bob".into()).is_none());
    assert!(
        net.commands
            .iter()
            .any(|(m, c)| *m == 0 && *c == PeerCommand::Close { id: id.clone() })
    );
    assert!(
        net.members[0]
            .swarm
            .poll_timeout()
            .is_none_or(|t| t > net.now)
    );
}

#[test]
fn without_restarts_a_failed_link_closes_and_none_is_tried() {
    // The remote does not take restarts (as the JS client): restore_timeout zero on one end
    // is enough, since it then does not advertise them.
    let mut net = Net::new();
    let a = net.join("alice", SwarmConfig::new("r"));
    net.run_for(Duration::from_millis(50));
    let mut no_restarts = SwarmConfig::new("r");
    no_restarts.restore_timeout = Duration::ZERO;
    let b = net.join("bob", no_restarts);
    net.run_for(Duration::from_millis(200));
    let id = net.members[a].swarm.link_to(&"bob".into()).unwrap();
    net.interrupt(&id);
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.restarts(a), 0);
    assert_eq!(interruptions(&net, a).0, 0);
    assert!(
        net.closes(a).is_empty(),
        "disconnected alone closes nothing"
    );
    for m in [a, b] {
        net.members[m]
            .swarm
            .handle_peer(net.now, &id, PeerEvent::IceState(IceState::Failed));
        net.flush(m);
    }
    assert_eq!(
        net.closes(a),
        vec![(UserId::from("bob"), CloseReason::IceFailed)]
    );
    assert_eq!(
        net.closes(b),
        vec![(UserId::from("alice"), CloseReason::IceFailed)]
    );
}

#[test]
fn a_handshake_that_loses_its_path_before_opening_is_not_restarted() {
    let mut net = Net::new();
    let a = net.join("alice", SwarmConfig::new("r"));
    net.run_for(Duration::from_millis(50));
    let id = net
        .commands
        .iter()
        .find_map(|(m, c)| match c {
            PeerCommand::Create {
                id,
                role: Role::Offerer,
                ..
            } if *m == a => Some(id.clone()),
            _ => None,
        })
        .unwrap();
    net.black_holes.insert(id.clone());
    let _b = net.join("bob", SwarmConfig::new("r"));
    net.run_for(Duration::from_millis(100));
    net.members[a]
        .swarm
        .handle_peer(net.now, &id, PeerEvent::IceState(IceState::Disconnected));
    net.flush(a);
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.restarts(a), 0);
    assert_eq!(interruptions(&net, a).0, 0);
}

#[test]
fn a_remote_that_left_the_room_is_closed_when_its_path_goes_not_restarted() {
    let (mut net, id) = linked(SwarmConfig::new("r"));
    let (a, b) = (0, 1);
    // Bob's signaling goes (a killed process): the server tells Alice he left. The open link
    // stays while its path works...
    net.drop_signaling(b);
    net.run_for(Duration::from_secs(1));
    assert!(net.closes(a).is_empty());
    // ...and closes as soon as it is lost: no restart could reach him.
    net.interrupt_at(a, &id);
    net.run_for(Duration::from_millis(10));
    assert_eq!(
        net.closes(a),
        vec![(UserId::from("bob"), CloseReason::IceFailed)]
    );
    assert_eq!(net.restarts(a), 0);
}
