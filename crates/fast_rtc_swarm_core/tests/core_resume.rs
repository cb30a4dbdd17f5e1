//! Resuming the signaling session ([`fast_rtc_swarm_core::swarm#resuming-the-signaling-session`])
//! through the real hub with resumption on, in virtual time: a member whose path and
//! signaling socket die at once (a network change) resumes its session, so its peer never
//! hears it left and the link comes back by ICE restart; without resumption on the server,
//! the reconnect is the rejoin of before.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests pick the virtual clock's start

mod net;

use fast_rtc_protocol::{ConnectionId, ResumeToken};
use fast_rtc_swarm_core::{ChannelId, Payload, PeerCommand, SwarmConfig, SwarmEvent};
use net::Net;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn counting_token() -> ResumeToken {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    ResumeToken::new(format!("{:032x}", NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// Alice and Bob linked through a hub that offers resumption (`resumable`) or not; Alice
/// offered the link.
fn linked(resumable: bool) -> (Net, ConnectionId) {
    let mut net = Net::new();
    if resumable {
        net.hub.enable_resumption(counting_token);
    }
    let id = net.link_alice_and_bob(SwarmConfig::new("r"));
    (net, id)
}

/// Connection ids member `m` closed.
fn closed_ids(net: &Net, member: usize) -> Vec<ConnectionId> {
    net.commands
        .iter()
        .filter_map(|(m, c)| match c {
            PeerCommand::Close { id } if *m == member => Some(id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_network_change_is_resumed_and_the_link_restored_by_restart() {
    let (mut net, id) = linked(true);
    let (a, b) = (0, 1);
    assert!(net.members[a].swarm.resumable(), "joined gave a token");
    let parked = net.members[a].swarm.parked_offers();
    // The path and Alice's signaling socket die together; Alice's first restart offer goes
    // down with the socket.
    net.lose_signaling(a);
    net.interrupt(&id);
    net.run_for(Duration::from_millis(500));
    assert_eq!(net.restarts(a), 1);
    for n in 0..3 {
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
    // Alice reconnects from her new address, resumes; the path is there again.
    net.heal(&id);
    net.connect_signaling(a);
    net.run_for(Duration::from_millis(100));
    assert!(
        net.members[a].events.iter().any(|e| matches!(
            e,
            SwarmEvent::Signaling(fast_rtc_swarm_core::SignalingState::Joined)
        )),
        "joined again"
    );
    assert!(closed_ids(&net, a).is_empty(), "the parked offers are kept");
    assert_eq!(net.members[a].swarm.parked_offers(), parked);
    // The lost restart's answer never comes: given up after twice the interval (4 s after
    // it), the next restart goes through the resumed session and finds the path.
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.restarts(a), 2, "the lost restart is made again");
    let restored = |m: usize| {
        net.members[m]
            .events
            .iter()
            .filter(|e| matches!(e, SwarmEvent::Restored { .. }))
            .count()
    };
    assert_eq!((restored(a), restored(b)), (1, 1));
    assert!(
        net.closes(a).is_empty() && net.closes(b).is_empty(),
        "no close"
    );
    assert_eq!(net.members[a].swarm.link_to(&"bob".into()), Some(id));
    let texts: Vec<String> = net
        .data(a)
        .into_iter()
        .filter_map(|(_, _, p)| match p {
            Payload::Text(t) => Some(t),
            Payload::Binary(_) => None,
        })
        .collect();
    assert_eq!(
        texts,
        ["m0", "m1", "m2"],
        "sent during the outage, in order"
    );
    assert!(net.backend_errors.is_empty(), "{:?}", net.backend_errors);
}

#[test]
fn without_resumption_the_reconnect_is_a_rejoin_as_before() {
    let (mut net, _) = linked(false);
    let a = 0;
    assert!(!net.members[a].swarm.resumable(), "no token from this hub");
    let link = net.members[a].swarm.link_to(&"bob".into()).unwrap();
    let parked: Vec<ConnectionId> = net
        .commands
        .iter()
        .filter_map(|(m, c)| match c {
            PeerCommand::Create { id, .. } if *m == a && *id != link => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(parked.len(), 1);
    net.drop_signaling(a);
    net.run_for(Duration::from_millis(100));
    net.connect_signaling(a);
    net.run_for(Duration::from_millis(100));
    // The stale parked offer is closed (and the old link, replaced by the rejoin's).
    assert!(
        closed_ids(&net, a).contains(&parked[0]),
        "{:?}",
        closed_ids(&net, a)
    );
    assert_eq!(
        net.members[a].swarm.parked_offers(),
        1,
        "and a fresh one parked"
    );
}

/// The offerer knows its signaling socket is gone (`Reconnecting`) when its link loses its
/// path: it does not restart into the old socket's discarded queue, but at once when its
/// session is back.
#[test]
fn restarts_wait_while_the_signaling_session_is_known_lost() {
    use fast_rtc_swarm_core::lifecycle::Transport;
    let (mut net, id) = linked(true);
    let a = 0;
    net.lose_signaling(a);
    let now = net.now;
    net.members[a]
        .swarm
        .handle_transport(now, Transport::Lost("reset".into()));
    net.flush(a);
    net.interrupt(&id);
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.restarts(a), 0, "no restart while Reconnecting");
    net.heal(&id);
    net.connect_signaling(a);
    net.run_for(Duration::from_millis(100));
    assert_eq!(
        net.restarts(a),
        1,
        "a restart as soon as the session is back"
    );
    let restored = net.members[a]
        .events
        .iter()
        .any(|e| matches!(e, SwarmEvent::Restored { .. }));
    assert!(restored, "restored at once, not after an answer timeout");
    assert!(net.closes(a).is_empty() && net.closes(1).is_empty());
}
