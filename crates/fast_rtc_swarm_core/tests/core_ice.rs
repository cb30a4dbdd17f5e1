//! Which STUN/TURN servers the core gives each connection it creates (`crate::ice`): the
//! application's own list wins; without one, the signaling server's latest list (from
//! `joined`, replaced by `iceServers`), and the pre-made offers wait for `joined`.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests pick the virtual clock's start

use fast_rtc_protocol::{ClientMsg, IceServer, ServerMsg, Signal};
use fast_rtc_swarm_core::{IceSource, PeerCommand, Role, SwarmConfig, SwarmCore, SwarmOutput};
use std::time::Instant;

fn drain(s: &mut SwarmCore) -> Vec<SwarmOutput> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

/// The `Create` commands among `outputs`: (role, ICE servers).
fn creates(outputs: &[SwarmOutput]) -> Vec<(Role, Vec<IceServer>)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            SwarmOutput::Command(PeerCommand::Create {
                role, ice_servers, ..
            }) => Some((*role, ice_servers.clone())),
            _ => None,
        })
        .collect()
}

fn joined(ice_servers: Option<Vec<IceServer>>) -> ServerMsg {
    ServerMsg::Joined {
        user_id: "me".into(),
        ice_servers,
        resume_token: None,
        resumed: false,
    }
}

fn accept(id: &str) -> ServerMsg {
    ServerMsg::Accept {
        id: id.into(),
        user_id: format!("offerer-{id}").into(),
        signals: vec![Signal::Offer { sdp: "o".into() }],
    }
}

fn minted(expiry: u64) -> Vec<IceServer> {
    vec![
        IceServer::stun("stun:signaling.example:3478"),
        IceServer::turn(
            "turn:turn.example:3478?transport=udp",
            format!("{expiry}:me"),
            format!("credential-{expiry}"),
        ),
    ]
}

#[test]
fn without_servers_of_its_own_the_swarm_uses_the_servers_of_joined_and_their_refresh() {
    let mut s = SwarmCore::new(SwarmConfig::new("r"), "me");
    let now = Instant::now();
    s.start(now);
    let out = drain(&mut s);
    assert!(
        out.iter()
            .any(|o| matches!(o, SwarmOutput::Signal(ClientMsg::Init { .. })))
    );
    assert_eq!(
        creates(&out),
        [],
        "no pre-made offer before joined: it would carry no server's candidates"
    );
    assert_eq!(s.ice_source(), IceSource::None);

    s.handle_signal(now, joined(Some(minted(100))));
    assert_eq!(
        creates(&drain(&mut s)),
        [(Role::Offerer, minted(100))],
        "the pre-made offer, made on joined with its servers"
    );
    assert_eq!(s.ice_source(), IceSource::SignalingServer);
    assert_eq!(s.ice_servers(), minted(100));

    // The answer to a member's offer uses them too.
    s.handle_signal(now, accept("x-1"));
    assert_eq!(creates(&drain(&mut s)), [(Role::Answerer, minted(100))]);

    // Fresh credentials: connections made from now on use them; nothing is done to the
    // connections made before (they keep their allocations).
    s.handle_signal(
        now,
        ServerMsg::IceServers {
            ice_servers: minted(200),
        },
    );
    assert_eq!(drain(&mut s), [], "the links made earlier are left alone");
    s.handle_signal(now, ServerMsg::OfferRequest);
    s.handle_signal(now, accept("x-2"));
    assert_eq!(
        creates(&drain(&mut s)),
        [(Role::Offerer, minted(200)), (Role::Answerer, minted(200))]
    );
    assert_eq!(s.link_count(), 4);
}

#[test]
fn the_applications_own_servers_win_and_its_offers_do_not_wait() {
    let own = vec![IceServer::turn("turn:own.example:3478", "game", "static")];
    let mut config = SwarmConfig::new("r");
    config.ice_servers = own.clone();
    let mut s = SwarmCore::new(config, "me");
    let now = Instant::now();
    s.start(now);
    assert_eq!(
        creates(&drain(&mut s)),
        [(Role::Offerer, own.clone())],
        "made at once, as before"
    );
    s.handle_signal(now, joined(Some(minted(100))));
    assert_eq!(creates(&drain(&mut s)), [], "no second offer on joined");
    assert_eq!(s.ice_source(), IceSource::Application);
    s.handle_signal(
        now,
        ServerMsg::IceServers {
            ice_servers: minted(200),
        },
    );
    s.handle_signal(now, accept("x-1"));
    assert_eq!(creates(&drain(&mut s)), [(Role::Answerer, own)]);
}

#[test]
fn a_server_that_hands_out_nothing_leaves_host_candidates() {
    let mut s = SwarmCore::new(SwarmConfig::new("r"), "me");
    let now = Instant::now();
    s.start(now);
    drain(&mut s);
    s.handle_signal(now, joined(None));
    assert_eq!(creates(&drain(&mut s)), [(Role::Offerer, vec![])]);
    assert_eq!(s.ice_source(), IceSource::None);
}

#[test]
fn a_rejoin_parks_fresh_offers_with_the_servers_of_the_new_joined() {
    let mut config = SwarmConfig::new("r");
    config.peer_buffer = 2;
    let mut s = SwarmCore::new(config, "me");
    let now = Instant::now();
    s.start(now);
    s.handle_signal(now, joined(Some(minted(100))));
    assert_eq!(creates(&drain(&mut s)).len(), 2);
    assert_eq!(s.parked_offers(), 2);
    // The signaling socket was lost and is back: the old offers are gone with the old
    // session, and the new ones wait for the new session's (fresh) servers.
    s.start(now);
    let out = drain(&mut s);
    assert_eq!(creates(&out), []);
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, SwarmOutput::Command(PeerCommand::Close { .. })))
            .count(),
        2
    );
    s.handle_signal(now, joined(Some(minted(300))));
    assert_eq!(
        creates(&drain(&mut s)),
        [(Role::Offerer, minted(300)), (Role::Offerer, minted(300))]
    );
    // A second joined (not expected from the server) parks no more.
    s.handle_signal(now, joined(Some(minted(400))));
    assert_eq!(creates(&drain(&mut s)), []);
    assert_eq!(s.parked_offers(), 2);
}

#[test]
fn debug_of_the_core_and_its_commands_hides_credentials() {
    let mut s = SwarmCore::new(SwarmConfig::new("r"), "me");
    let now = Instant::now();
    s.start(now);
    s.handle_signal(now, joined(Some(minted(100))));
    let out = drain(&mut s);
    let text = format!("{s:?} {out:?}");
    assert!(text.contains("100:me"), "the username is shown: {text}");
    assert!(!text.contains("credential-100"), "{text}");
}
