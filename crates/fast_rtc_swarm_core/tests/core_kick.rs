//! The server's `kicked` frame (its admin API): a kicked member fails for good, the others drop
//! every link to it, open ones included.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests pick the virtual clock's start

mod net;

use fast_rtc_protocol::{ServerMsg, Signal};
use fast_rtc_swarm_core::lifecycle::{Next, Transport};
use fast_rtc_swarm_core::{
    ChannelId, CloseReason, FailReason, PeerCommand, PeerEvent, SignalingState, SwarmConfig,
    SwarmCore, SwarmEvent, SwarmOutput,
};
use std::time::Instant;

fn drain(s: &mut SwarmCore) -> Vec<SwarmOutput> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn kicked(user: &str) -> ServerMsg {
    ServerMsg::Kicked {
        user_id: user.into(),
        reason: "cheating".into(),
    }
}

/// A joined swarm "me" with an open link `x` to "bob" and a connecting link `y` to "carol".
fn joined_with_links() -> (SwarmCore, Instant) {
    let (mut s, now) = net::joined(SwarmConfig::new("r"));
    for (id, user) in [("x", "bob"), ("y", "carol")] {
        s.handle_signal(
            now,
            ServerMsg::Accept {
                id: id.into(),
                user_id: user.into(),
                signals: vec![Signal::Offer { sdp: "o".into() }],
            },
        );
    }
    s.handle_peer(now, &"x".into(), PeerEvent::ChannelOpen(ChannelId::FAST));
    drain(&mut s);
    assert_eq!(s.peers().len(), 1, "bob's link is open");
    (s, now)
}

#[test]
fn another_member_kicked_closes_every_link_to_it_open_ones_too() {
    let (mut s, now) = joined_with_links();
    s.handle_signal(now, kicked("bob"));
    let out = drain(&mut s);
    assert!(
        out.contains(&SwarmOutput::Command(PeerCommand::Close { id: "x".into() })),
        "{out:?}"
    );
    assert!(
        out.iter().any(|o| matches!(
            o,
            SwarmOutput::Event(SwarmEvent::Close { peer, reason: CloseReason::Kicked })
                if peer.user_id.as_str() == "bob" && peer.id.as_str() == "x"
        )),
        "{out:?}"
    );
    assert!(
        !out.contains(&SwarmOutput::Command(PeerCommand::Close { id: "y".into() })),
        "carol's link stays: {out:?}"
    );
    assert!(s.peers().is_empty());
    assert_eq!(s.signaling_state(), &SignalingState::Joined);
}

#[test]
fn this_member_kicked_fails_for_good_and_does_not_reconnect() {
    let (mut s, now) = joined_with_links();
    s.handle_signal(now, kicked("me"));
    let out = drain(&mut s);
    let failed = SignalingState::Failed(FailReason::Kicked {
        reason: "cheating".into(),
    });
    assert!(
        out.contains(&SwarmOutput::Event(SwarmEvent::Signaling(failed.clone()))),
        "{out:?}"
    );
    assert!(
        out.contains(&SwarmOutput::Command(PeerCommand::Close { id: "x".into() }))
            && out.contains(&SwarmOutput::Command(PeerCommand::Close { id: "y".into() })),
        "the swarm closes its links: {out:?}"
    );
    assert_eq!(s.signaling_state(), &failed);
    // The server then closes the socket (4001): the swarm does not try again.
    assert_eq!(
        s.handle_transport(now, Transport::Lost("closed 4001".into())),
        Next::Stop
    );
}
