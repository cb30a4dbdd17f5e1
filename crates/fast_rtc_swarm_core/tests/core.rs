//! The swarm core against the real signaling hub and a fake backend, in virtual time.
#![cfg(not(target_arch = "wasm32"))] // native backend; the browser tests are tests/web.rs
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests pick the virtual clock's start

mod net;

use fast_rtc_protocol::{ClientMsg, IceCandidate, ServerMsg, Signal, UserId};
use fast_rtc_swarm_core::{
    ChannelConfig, ChannelId, CloseReason, IceServer, LinkOrigin, Payload, PeerCommand, PeerEvent,
    SendError, SwarmConfig, SwarmCore, SwarmEvent, SwarmFault, SwarmOutput,
};
use net::Net;
use std::time::{Duration, Instant};

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m{i}")).collect()
}

fn users(v: &[&str]) -> Vec<UserId> {
    v.iter().map(|s| UserId::from(*s)).collect()
}

#[test]
fn two_members_handshake_and_exchange_data() {
    let mut net = Net::new();
    let a = net.join("alice", SwarmConfig::new("r"));
    net.run_for(Duration::from_millis(50));
    let b = net.join("bob", SwarmConfig::new("r"));
    net.run_for(Duration::from_millis(200));
    assert_eq!(net.opens(a), users(&["bob"]));
    assert_eq!(net.opens(b), users(&["alice"]));
    assert!(net.backend_errors.is_empty(), "{:?}", net.backend_errors);

    net.members[a]
        .swarm
        .send(&"bob".into(), ChannelId::FAST, "hi bob".into())
        .unwrap();
    net.flush(a);
    net.members[b]
        .swarm
        .send(&"alice".into(), ChannelId::FAST, vec![1, 2, 3].into())
        .unwrap();
    net.flush(b);
    net.run_for(Duration::from_millis(50));
    assert_eq!(
        net.data(b),
        vec![(
            "alice".into(),
            ChannelId::FAST,
            Payload::Text("hi bob".into())
        )]
    );
    assert_eq!(
        net.data(a),
        vec![(
            "bob".into(),
            ChannelId::FAST,
            Payload::Binary(vec![1, 2, 3])
        )]
    );
    // Each keeps exactly one parked offer for the next joiner.
    assert_eq!(net.members[a].swarm.parked_offers(), 1);
    assert_eq!(net.members[b].swarm.parked_offers(), 1);
}

#[test]
fn eight_members_form_a_full_mesh_from_premade_offers() {
    let mut net = Net::new();
    let n = 8;
    for name in names(n) {
        net.join(&name, SwarmConfig::new("r"));
        net.run_for(Duration::from_millis(100));
    }
    net.run_for(Duration::from_millis(500));
    for i in 0..n {
        let expected: Vec<UserId> = names(n)
            .iter()
            .filter(|x| **x != format!("m{i}"))
            .map(|x| x.as_str().into())
            .collect();
        assert_eq!(net.opens(i), expected, "member {i}");
        // The joiner answered everyone present (pre-made offers); later joiners claimed its offers.
        let answered = net.members[i]
            .events
            .iter()
            .filter(|e| matches!(e, SwarmEvent::Open(p) if p.origin == LinkOrigin::Answered))
            .count();
        assert_eq!(
            answered, i,
            "member {i} answered one offer per earlier member"
        );
    }
    assert!(net.backend_errors.is_empty(), "{:?}", net.backend_errors);
}

#[test]
fn a_joiner_waits_when_a_member_has_no_offer_ready_and_still_connects() {
    let mut net = Net::new();
    net.signal_latency = Duration::from_millis(30);
    // Three join within a few ms: offers are claimed faster than members refill them.
    for name in ["a", "b", "c"] {
        net.join(name, SwarmConfig::new("r"));
        net.run_for(Duration::from_millis(2));
    }
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.opens(0), users(&["b", "c"]));
    assert_eq!(net.opens(1), users(&["a", "c"]));
    assert_eq!(net.opens(2), users(&["a", "b"]));
}

#[test]
fn open_links_measure_their_round_trip_time() {
    let mut net = Net::new();
    net.peer_latency = Duration::from_millis(7);
    net.join("a", SwarmConfig::new("r"));
    net.run_for(Duration::from_millis(50));
    net.join("b", SwarmConfig::new("r"));
    net.run_for(Duration::from_millis(500));
    for (i, peer) in [(0, "b"), (1, "a")] {
        let rtt = net.members[i].swarm.rtt(&peer.into()).expect("measured");
        assert_eq!(rtt, Duration::from_millis(14), "member {i}: two 7 ms legs");
        assert!(
            net.members[i]
                .events
                .iter()
                .any(|e| matches!(e, SwarmEvent::Rtt { .. }))
        );
    }
    // Pings repeat every second and never show up as data.
    net.run_for(Duration::from_secs(3));
    let rtts = net.members[0]
        .events
        .iter()
        .filter(|e| matches!(e, SwarmEvent::Rtt { .. }))
        .count();
    assert!((3..=5).contains(&rtts), "{rtts} measurements in ~3.5 s");
    assert!(net.data(0).is_empty() && net.data(1).is_empty());
}

#[test]
fn broadcast_reaches_every_peer_once_and_game_channels_work() {
    let mut config = SwarmConfig::new("r");
    let state = config.add_channel(ChannelConfig::unreliable("state"));
    let mut net = Net::new();
    for name in names(4) {
        net.join(&name, config.clone());
        net.run_for(Duration::from_millis(50));
    }
    net.run_for(Duration::from_millis(200));
    let sent = net.members[0]
        .swarm
        .broadcast(ChannelId::FAST, "all".into())
        .unwrap();
    assert_eq!(sent.sent.len(), 3);
    assert!(sent.refused.is_empty());
    net.members[0]
        .swarm
        .broadcast(state, vec![9].into())
        .unwrap();
    net.flush(0);
    net.run_for(Duration::from_millis(50));
    for i in 1..4 {
        assert_eq!(
            net.data(i),
            vec![
                ("m0".into(), ChannelId::FAST, Payload::Text("all".into())),
                ("m0".into(), state, Payload::Binary(vec![9]))
            ]
        );
    }
    assert_eq!(
        net.members[0]
            .swarm
            .send(&"m1".into(), ChannelId(7), "x".into()),
        Err(SendError::NoSuchChannel(ChannelId(7)))
    );
    assert_eq!(
        net.members[0].swarm.send(
            &"m1".into(),
            ChannelId::FAST,
            "@fast/{\"type\":\"close\"}".into()
        ),
        Err(SendError::ReservedPrefix)
    );
    assert_eq!(
        net.members[0]
            .swarm
            .send(&"nobody".into(), ChannelId::FAST, "x".into()),
        Err(SendError::NoSuchPeer("nobody".into()))
    );
}

#[test]
fn close_tells_every_peer_and_leaves_nothing_behind() {
    let mut net = Net::new();
    for name in names(4) {
        net.join(&name, SwarmConfig::new("r"));
        net.run_for(Duration::from_millis(50));
    }
    net.run_for(Duration::from_millis(200));
    net.members[2].swarm.close();
    net.flush(2);
    net.run_for(Duration::from_millis(100));
    for i in [0, 1, 3] {
        assert_eq!(
            net.closes(i),
            vec![("m2".into(), CloseReason::Remote)],
            "member {i}"
        );
        assert!(
            net.members[i]
                .swarm
                .peers()
                .iter()
                .all(|p| p.user_id.as_str() != "m2")
        );
    }
    let closes: Vec<_> = net
        .closes(2)
        .into_iter()
        .map(|(u, r)| (u.to_string(), r))
        .collect();
    assert_eq!(closes.len(), 3);
    assert!(closes.iter().all(|(_, r)| *r == CloseReason::Local));
    assert_eq!(net.members[2].swarm.link_count(), 0);
    assert_eq!(
        net.live_pcs(2),
        0,
        "every connection of the closed member was closed"
    );
    assert_eq!(net.hub.member_count(), 3);
}

#[test]
fn a_member_that_vanishes_is_reported_closed() {
    let mut net = Net::new();
    for name in names(3) {
        net.join(&name, SwarmConfig::new("r"));
        net.run_for(Duration::from_millis(50));
    }
    net.run_for(Duration::from_millis(200));
    net.kill(1);
    net.run_for(Duration::from_millis(100));
    for i in [0, 2] {
        assert_eq!(
            net.closes(i),
            vec![("m1".into(), CloseReason::ChannelClosed)],
            "member {i}"
        );
    }
}

#[test]
fn handshake_timeout_closes_and_reports() {
    let mut net = Net::new();
    let mut config = SwarmConfig::new("r");
    config.handshake_timeout = Duration::from_secs(2);
    // Without retries (tests/core_retry.rs has them): the offerer reports at once too.
    config.handshake_retries = 0;
    net.join("a", config.clone());
    net.run_for(Duration::from_millis(50));
    // a's parked offer is the link b will claim; make it never complete.
    let parked = net
        .commands
        .iter()
        .find_map(|(m, c)| match c {
            PeerCommand::Create { id, .. } if *m == 0 => Some(id.clone()),
            _ => None,
        })
        .unwrap();
    net.black_holes.insert(parked);
    net.join("b", config);
    net.run_for(Duration::from_millis(1500));
    assert!(net.closes(0).is_empty() && net.closes(1).is_empty());
    net.run_for(Duration::from_millis(1000));
    assert_eq!(
        net.closes(0),
        vec![("b".into(), CloseReason::HandshakeTimeout)]
    );
    assert_eq!(
        net.closes(1),
        vec![("a".into(), CloseReason::HandshakeTimeout)]
    );
    assert_eq!(net.live_pcs(1), 1, "b keeps only its own parked offer");
}

#[test]
fn leaving_mid_handshake_closes_the_link_at_the_other_end() {
    let mut net = Net::new();
    net.peer_latency = Duration::from_millis(200); // a slow handshake
    net.join("a", SwarmConfig::new("r"));
    net.run_for(Duration::from_millis(500));
    net.join("b", SwarmConfig::new("r"));
    net.run_for(Duration::from_millis(250)); // b has the accept; nothing is open yet
    assert!(net.opens(0).is_empty());
    net.drop_signaling(1);
    net.kill(1);
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.closes(0), vec![("b".into(), CloseReason::RemoteLeft)]);
    net.run_for(Duration::from_secs(20));
    assert!(net.opens(0).is_empty());
}

#[test]
fn data_that_arrives_before_this_ends_open_comes_after_open_and_can_be_answered() {
    // m1's end of every link reports its channels open 5 ms after m0's: m0 sends on `fast` and
    // on a reliable game channel the moment it sees m1 open, and both arrive at m1 before m1's
    // own open report (as a JS answerer's first message can reach a native offerer).
    let mut config = SwarmConfig::new("r");
    let chat = config.add_channel(ChannelConfig::reliable("chat"));
    let mut net = Net::new();
    net.open_delay.insert(1, Duration::from_millis(5));
    net.join("m0", config.clone());
    net.run_for(Duration::from_millis(50));
    net.join("m1", config);
    for _ in 0..200 {
        net.run_for(Duration::from_micros(500));
        if !net.opens(0).is_empty() {
            break;
        }
    }
    assert_eq!(net.opens(0), users(&["m1"]));
    assert!(
        net.opens(1).is_empty(),
        "m1's own open report is still on its way"
    );
    net.members[0]
        .swarm
        .send(&"m1".into(), chat, "on chat".into())
        .unwrap();
    net.members[0]
        .swarm
        .send(&"m1".into(), ChannelId::FAST, "on fast".into())
        .unwrap();
    net.flush(0);
    net.run_for(Duration::from_millis(2));
    // The message on `fast` opened the link at m1: Open first, then both messages in order.
    let m1: Vec<String> = net.members[1]
        .events
        .iter()
        .filter_map(|e| match e {
            SwarmEvent::Open(p) => Some(format!("open {}", p.user_id)),
            SwarmEvent::Data {
                payload: Payload::Text(t),
                ..
            } => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(m1, ["open m0", "on chat", "on fast"]);
    // m1 can answer at once, and the answer arrives.
    net.members[1]
        .swarm
        .send(&"m0".into(), ChannelId::FAST, "back".into())
        .unwrap();
    net.flush(1);
    net.run_for(Duration::from_millis(20));
    assert_eq!(
        net.data(0),
        vec![(
            UserId::from("m1"),
            ChannelId::FAST,
            Payload::Text("back".into())
        )]
    );
    assert_eq!(
        net.opens(1),
        users(&["m0"]),
        "m1's late open report adds no second Open"
    );
}

#[test]
fn a_replaced_link_closing_before_its_replacement_opens_is_no_close() {
    // After m1's signaling reconnect, new links replace the old ones. m1 sees each new link open
    // first and closes the old one; m0's end of the new link opens 5 ms later, after the old
    // link's close has reached it. m0 must see neither a Close nor a second Open.
    let mut net = Net::new();
    for name in names(2) {
        net.join(&name, SwarmConfig::new("r"));
        net.run_for(Duration::from_millis(50));
    }
    net.run_for(Duration::from_millis(200));
    net.drop_signaling(1);
    net.run_for(Duration::from_millis(100));
    net.open_delay.insert(0, Duration::from_millis(5));
    net.connect_signaling(1);
    net.run_for(Duration::from_millis(500));
    for i in 0..2 {
        assert!(net.closes(i).is_empty(), "member {i}: {:?}", net.closes(i));
        assert_eq!(net.opens(i).len(), 1, "member {i}: {:?}", net.opens(i));
        assert_eq!(net.members[i].swarm.peers().len(), 1, "member {i}");
    }
    net.members[0]
        .swarm
        .send(&"m1".into(), ChannelId::FAST, "after".into())
        .unwrap();
    net.flush(0);
    net.run_for(Duration::from_millis(20));
    assert_eq!(net.data(1).len(), 1, "the new link carries data");
}

#[test]
fn signaling_reconnect_keeps_open_links_up() {
    let mut net = Net::new();
    for name in names(3) {
        net.join(&name, SwarmConfig::new("r"));
        net.run_for(Duration::from_millis(50));
    }
    net.run_for(Duration::from_millis(200));
    // m1's signaling socket drops; the server tells m0 and m2 it left.
    net.drop_signaling(1);
    net.run_for(Duration::from_millis(100));
    for i in 0..3 {
        assert!(
            net.closes(i).is_empty(),
            "member {i} must keep its links: {:?}",
            net.closes(i)
        );
    }
    net.members[0]
        .swarm
        .send(&"m1".into(), ChannelId::FAST, "still here?".into())
        .unwrap();
    net.flush(0);
    net.run_for(Duration::from_millis(20));
    assert_eq!(net.data(1).len(), 1);
    // It reconnects and rejoins: new links form and replace the old ones, with no Close/Open.
    net.connect_signaling(1);
    net.run_for(Duration::from_millis(500));
    for i in 0..3 {
        assert!(net.closes(i).is_empty(), "member {i}: {:?}", net.closes(i));
        assert_eq!(net.opens(i).len(), 2, "member {i}: {:?}", net.opens(i));
        assert_eq!(net.members[i].swarm.peers().len(), 2);
    }
    // Old links were replaced: every member holds 2 live links + its parked offer.
    for i in 0..3 {
        assert_eq!(net.members[i].swarm.link_count(), 3, "member {i}");
    }
    net.members[2]
        .swarm
        .send(&"m1".into(), ChannelId::FAST, "after".into())
        .unwrap();
    net.flush(2);
    net.run_for(Duration::from_millis(20));
    assert_eq!(net.data(1).last().unwrap().2, Payload::Text("after".into()));
}

#[test]
fn reliable_sends_wait_for_their_channel_unreliable_ones_are_refused() {
    let mut config = SwarmConfig::new("r");
    let reliable = config.add_channel(ChannelConfig::reliable("events"));
    let unreliable = config.add_channel(ChannelConfig::unreliable("state"));
    let mut s = SwarmCore::new(config, "me");
    let now = Instant::now();
    s.start(now);
    while s.poll_output().is_some() {}
    s.handle_signal(
        now,
        ServerMsg::Accept {
            id: "x".into(),
            user_id: "peer".into(),
            // A Rust offerer: it says it takes game channels.
            signals: vec![Signal::Offer {
                sdp: "o\r\na=x-fast-rtc-channels\r\n".into(),
            }],
        },
    );
    s.handle_peer(
        now,
        &"x".into(),
        fast_rtc_swarm_core::PeerEvent::ChannelOpen(ChannelId::FAST),
    );
    while s.poll_output().is_some() {}
    assert_eq!(s.send(&"peer".into(), reliable, "kept".into()), Ok(()));
    assert_eq!(
        s.send(&"peer".into(), unreliable, "dropped".into()),
        Err(SendError::NotOpen(unreliable))
    );
    assert_eq!(
        s.poll_output(),
        None,
        "nothing sent before the channel opens"
    );
    s.handle_peer(
        now,
        &"x".into(),
        fast_rtc_swarm_core::PeerEvent::ChannelOpen(reliable),
    );
    assert_eq!(
        s.poll_output(),
        Some(SwarmOutput::Command(PeerCommand::Send {
            id: "x".into(),
            channel: reliable,
            payload: "kept".into()
        }))
    );
}

/// Nothing accepted with `Ok` is lost without the application hearing of it: a game channel
/// that closes while the link stays up fails what waited for it (one `SendFailed` fault with
/// the count; before, those messages waited forever) and refuses later sends; a message the
/// backend could not hand on, and one it could not deliver as sent (text that is not UTF-8),
/// are faults too.
#[test]
fn messages_a_closed_channel_or_the_backend_lost_are_reported() {
    let mut config = SwarmConfig::new("r");
    let events = config.add_channel(ChannelConfig::reliable("events"));
    let mut s = SwarmCore::new(config, "me");
    let now = Instant::now();
    s.start(now);
    while s.poll_output().is_some() {}
    s.handle_signal(
        now,
        ServerMsg::Accept {
            id: "x".into(),
            user_id: "peer".into(),
            signals: vec![Signal::Offer {
                sdp: "o\r\na=x-fast-rtc-channels\r\n".into(),
            }],
        },
    );
    let x: fast_rtc_protocol::ConnectionId = "x".into();
    s.handle_peer(now, &x, PeerEvent::ChannelOpen(ChannelId::FAST));
    while s.poll_output().is_some() {}
    // Three reliable messages wait for `events` to open; then it closes instead.
    for text in ["a", "b", "c"] {
        assert_eq!(s.send(&"peer".into(), events, text.into()), Ok(()));
    }
    s.handle_peer(now, &x, PeerEvent::ChannelClosed(events));
    let faults = |s: &mut SwarmCore| {
        let mut faults = Vec::new();
        while let Some(o) = s.poll_output() {
            if let SwarmOutput::Event(SwarmEvent::Fault(f)) = o {
                faults.push(f);
            }
        }
        faults
    };
    assert_eq!(
        faults(&mut s),
        vec![SwarmFault::SendFailed {
            peer: "peer".into(),
            channel: events,
            messages: 3,
            error: "the channel closed before they could be sent".into(),
        }]
    );
    assert_eq!(
        s.send(&"peer".into(), events, "d".into()),
        Err(SendError::ChannelClosed(events))
    );
    // The link and its `fast` channel go on.
    assert_eq!(s.send(&"peer".into(), ChannelId::FAST, "e".into()), Ok(()));
    assert!(s.link_to(&"peer".into()).is_some());
    // The backend lost a message it had been handed, and got text that is not UTF-8.
    s.handle_peer(
        now,
        &x,
        PeerEvent::SendFailed {
            channel: ChannelId::FAST,
            error: "closed".into(),
        },
    );
    s.handle_peer(
        now,
        &x,
        PeerEvent::InvalidMessage {
            channel: ChannelId::FAST,
            error: "not UTF-8".into(),
        },
    );
    assert_eq!(
        faults(&mut s),
        vec![
            SwarmFault::SendFailed {
                peer: "peer".into(),
                channel: ChannelId::FAST,
                messages: 1,
                error: "closed".into(),
            },
            SwarmFault::InvalidMessage {
                peer: "peer".into(),
                channel: ChannelId::FAST,
                error: "not UTF-8".into(),
            },
        ]
    );
}

#[test]
fn candidates_before_the_description_are_held_until_it_is_set() {
    // Without ICE servers of its own, the pre-made offer is made once joined.
    let (mut s, id, now) = net::claimed_offer(SwarmConfig::new("r"));
    // The joiner's candidates overtake its answer.
    s.handle_signal(
        now,
        ServerMsg::Candidate {
            id: id.clone(),
            candidate: None,
        },
    );
    assert_eq!(s.poll_output(), None, "held, not added");
    s.handle_signal(
        now,
        ServerMsg::Answer {
            id: id.clone(),
            sdp: "a".into(),
        },
    );
    assert!(matches!(
        s.poll_output(),
        Some(SwarmOutput::Command(PeerCommand::SetRemote { .. }))
    ));
    assert!(matches!(
        s.poll_output(),
        Some(SwarmOutput::Command(PeerCommand::AddCandidate { .. }))
    ));
}

/// A remote that floods a link with candidates, or names addresses that cannot be a peer
/// (`fast_rtc_swarm_core::candidates`), gets them refused before they reach the backend:
/// at most `max_candidates_per_address` at one address, `max_remote_candidates` in all
/// (description and trickle together, one fault for the flood), none at an unspecified,
/// multicast or broadcast address; an ICE restart's description starts a new count.
#[test]
fn a_candidate_flood_is_capped_and_addresses_that_cannot_be_a_peer_are_refused() {
    let mut config = SwarmConfig::new("r");
    config.max_remote_candidates = 10;
    config.max_candidates_per_address = 3;
    let (mut s, id, now) = net::claimed_offer(config);
    let line = |address: &str, port: u32| {
        format!("candidate:1 1 udp 2130706431 {address} {port} typ host")
    };
    // The answer carries two candidates, one of them unspecified.
    let answer = format!(
        "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na={}\r\na={}\r\n",
        line("192.0.2.1", 1),
        line("0.0.0.0", 2)
    );
    s.handle_signal(
        now,
        ServerMsg::Answer {
            id: id.clone(),
            sdp: answer,
        },
    );
    // Then a flood: 1,000 ports at one third-party address, a multicast one, others.
    let trickle = |s: &mut SwarmCore, address: &str, port: u32| {
        s.handle_signal(
            now,
            ServerMsg::Candidate {
                id: id.clone(),
                candidate: Some(IceCandidate {
                    candidate: line(address, port),
                    sdp_mid: Some("0".into()),
                    sdp_m_line_index: Some(0),
                    username_fragment: None,
                }),
            },
        );
    };
    trickle(&mut s, "224.0.0.1", 9);
    for port in 0..1000 {
        trickle(&mut s, "203.0.113.7", port);
    }
    let (mut added, mut faults, mut set_remote) = (Vec::new(), Vec::new(), None);
    while let Some(o) = s.poll_output() {
        match o {
            SwarmOutput::Command(PeerCommand::AddCandidate {
                candidate: Some(c), ..
            }) => added.push(c.candidate),
            SwarmOutput::Command(PeerCommand::SetRemote { sdp, .. }) => set_remote = Some(sdp),
            SwarmOutput::Event(SwarmEvent::Fault(SwarmFault::CandidateRefused { why, .. })) => {
                faults.push(why.to_string())
            }
            _ => {}
        }
    }
    let sdp = set_remote.unwrap();
    assert!(sdp.contains("192.0.2.1 1 typ host"), "{sdp}");
    assert!(
        !sdp.contains("0.0.0.0"),
        "the unspecified address is gone: {sdp}"
    );
    assert_eq!(
        added,
        (0..3).map(|p| line("203.0.113.7", p)).collect::<Vec<_>>(),
        "three at the one address"
    );
    assert_eq!(
        faults,
        [
            "unspecified address 0.0.0.0".to_owned(),
            "multicast address 224.0.0.1".to_owned(),
        ]
        .into_iter()
        .chain((3..7).map(|_| "more than 3 remote candidates at 203.0.113.7".to_owned()))
        .chain(["more than 10 remote candidates".to_owned()])
        .collect::<Vec<_>>(),
        "each refusal until the cap, then one for the whole flood"
    );
    // An ICE restart's description (the remote's answer to a new offer) starts a new count.
    s.handle_signal(
        now,
        ServerMsg::Answer {
            id: id.clone(),
            sdp: "v=0\r\n".into(),
        },
    );
    while s.poll_output().is_some() {}
    trickle(&mut s, "203.0.113.7", 5000);
    let mut added = 0;
    while let Some(o) = s.poll_output() {
        if let SwarmOutput::Command(PeerCommand::AddCandidate { .. }) = o {
            added += 1;
        }
    }
    assert_eq!(added, 1, "a new description, a new count");
}

#[test]
fn a_second_accept_for_one_id_is_ignored_and_reported() {
    let mut s = SwarmCore::new(SwarmConfig::new("r"), "me");
    let now = Instant::now();
    s.start(now);
    while s.poll_output().is_some() {}
    let accept = ServerMsg::Accept {
        id: "dup".into(),
        user_id: "p".into(),
        signals: vec![Signal::Offer { sdp: "o".into() }],
    };
    s.handle_signal(now, accept.clone());
    let first: Vec<_> = std::iter::from_fn(|| s.poll_output()).collect();
    assert_eq!(
        first
            .iter()
            .filter(|o| matches!(o, SwarmOutput::Command(PeerCommand::Create { .. })))
            .count(),
        1
    );
    s.handle_signal(now, accept);
    let second: Vec<_> = std::iter::from_fn(|| s.poll_output()).collect();
    assert!(
        matches!(
            second.as_slice(),
            [SwarmOutput::Event(SwarmEvent::Fault(
                SwarmFault::UnexpectedSignal(_)
            ))]
        ),
        "{second:?}"
    );
}

#[test]
fn signals_that_make_no_sense_are_reported_not_obeyed() {
    let mut s = SwarmCore::new(SwarmConfig::new("r"), "me");
    let now = Instant::now();
    s.start(now);
    while s.poll_output().is_some() {}
    for msg in [
        ServerMsg::Answer {
            id: "nope".into(),
            sdp: "x".into(),
        },
        ServerMsg::Candidate {
            id: "nope".into(),
            candidate: None,
        },
        ServerMsg::OfferAccepted {
            id: "nope".into(),
            user_id: "x".into(),
        },
        ServerMsg::Offer {
            id: "nope".into(),
            sdp: "x".into(),
        },
    ] {
        s.handle_signal(now, msg);
        let out: Vec<_> = std::iter::from_fn(|| s.poll_output()).collect();
        assert!(
            matches!(out.as_slice(), [SwarmOutput::Event(SwarmEvent::Fault(_))]),
            "{out:?}"
        );
    }
    s.handle_signal(now, ServerMsg::LeaveSwarm { id: "nope".into() });
    assert_eq!(s.poll_output(), None);
    // Closing sends `close` to the server and closes the parked offer.
    s.close();
    let out: Vec<_> = std::iter::from_fn(|| s.poll_output()).collect();
    assert!(out.contains(&SwarmOutput::Signal(ClientMsg::Close)));
    assert_eq!(s.link_count(), 0);
    assert_eq!(
        s.send(&"x".into(), ChannelId::FAST, "x".into()),
        Err(SendError::Closed)
    );
}

/// Two members with these configurations, linked.
fn linked_pair(a: SwarmConfig, b: SwarmConfig) -> Net {
    let mut net = Net::new();
    net.join("m0", a);
    net.run_for(Duration::from_millis(50));
    net.join("m1", b);
    net.run_for(Duration::from_millis(200));
    assert_eq!(net.opens(0), users(&["m1"]));
    assert_eq!(net.opens(1), users(&["m0"]));
    net
}

/// `len` bytes whose content depends on `len` and the position (to tell messages apart).
fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (len as u8)).collect()
}

/// The payloads of the `Send` commands member `i` gave its backend since `from`.
fn sends_of(net: &Net, i: usize, from: usize) -> Vec<Payload> {
    net.commands[from..]
        .iter()
        .filter_map(|(m, c)| match c {
            PeerCommand::Send { payload, .. } if *m == i => Some(payload.clone()),
            _ => None,
        })
        .filter(|p| !matches!(p, Payload::Text(t) if t.starts_with("@fast/{\"type\":\"p")))
        .collect()
}

#[test]
fn large_messages_are_split_and_reassembled_in_order_and_small_ones_go_as_they_are() {
    let mut config = SwarmConfig::new("r");
    config.ping_interval = Duration::ZERO;
    let chat = config.add_channel(ChannelConfig::reliable("chat"));
    let mut net = linked_pair(config.clone(), config);
    // Each end advertised reassembly in the description it signaled.
    let advertised = net
        .commands
        .iter()
        .filter(|(_, c)| matches!(c, PeerCommand::SetRemote { sdp, .. } if sdp.contains("a=x-fast-rtc-reassembly:16777216")))
        .count();
    assert_eq!(advertised, 2, "offer and answer advertise 16 MiB");

    let big = Payload::Binary(bytes(200_000));
    let text = Payload::Text("ü".repeat(70_000)); // 140,000 bytes; characters cross parts
    let edge = Payload::Binary(bytes(65_536)); // exactly one data-channel message
    let from = net.commands.len();
    let to = UserId::from("m1");
    let s = &mut net.members[0].swarm;
    s.send(&to, ChannelId::FAST, big.clone()).unwrap();
    s.send(&to, ChannelId::FAST, "between".into()).unwrap();
    s.send(&to, chat, big.clone()).unwrap();
    s.send(&to, ChannelId::FAST, text.clone()).unwrap();
    s.send(&to, ChannelId::FAST, edge.clone()).unwrap();
    net.flush(0);

    let wire = sends_of(&net, 0, from);
    // 200,000 bytes: a header and 4 parts, twice; 140,000: a header and 3 parts; the small
    // messages as they are.
    assert_eq!(wire.len(), 5 + 1 + 5 + 4 + 1, "{} messages", wire.len());
    assert_eq!(
        wire[0],
        Payload::Text("@fast/{\"type\":\"large\",\"size\":200000,\"text\":false}".into())
    );
    assert!(wire[1..5].iter().all(|p| p.len() <= 65_536));
    assert_eq!(wire[5], Payload::Text("between".into()));
    assert_eq!(wire[15], edge, "a 65,536-byte message goes as it is");

    net.run_for(Duration::from_millis(20));
    let m0 = UserId::from("m0");
    assert_eq!(
        net.data(1),
        vec![
            (m0.clone(), ChannelId::FAST, big.clone()),
            (m0.clone(), ChannelId::FAST, "between".into()),
            (m0.clone(), chat, big),
            (m0.clone(), ChannelId::FAST, text),
            (m0, ChannelId::FAST, edge),
        ]
    );
    assert!(
        net.members[1]
            .events
            .iter()
            .all(|e| !matches!(e, SwarmEvent::Fault(_)))
    );
}

#[test]
fn a_peer_that_does_not_reassemble_gets_no_large_message_and_a_send_says_so() {
    // m1 reassembles nothing, as the JS reference client: its descriptions carry no line.
    let mut js_like = SwarmConfig::new("r");
    js_like.max_message_size = js_like.sctp_message_size;
    let mut net = linked_pair(SwarmConfig::new("r"), js_like);
    let sdp_to_m0 = net.commands.iter().find_map(|(m, c)| match c {
        PeerCommand::SetRemote { sdp, .. } if *m == 0 => Some(sdp.clone()),
        _ => None,
    });
    assert!(!sdp_to_m0.unwrap().contains("x-fast-rtc-reassembly"));

    let too_large = SendError::TooLarge {
        len: 65_537,
        max: 65_536,
    };
    let s = &mut net.members[0].swarm;
    assert_eq!(
        s.send(&"m1".into(), ChannelId::FAST, bytes(65_537).into()),
        Err(too_large.clone())
    );
    let fanout = s.broadcast(ChannelId::FAST, bytes(65_537).into()).unwrap();
    assert_eq!(fanout.refused, vec![("m1".into(), too_large.clone())]);
    assert!(fanout.sent.is_empty());
    // Its own limit refuses the same on its side.
    assert_eq!(
        net.members[1]
            .swarm
            .send(&"m0".into(), ChannelId::FAST, bytes(65_537).into()),
        Err(too_large)
    );
    // Up to one data-channel message, both ways.
    net.members[0]
        .swarm
        .send(&"m1".into(), ChannelId::FAST, bytes(65_536).into())
        .unwrap();
    net.flush(0);
    net.run_for(Duration::from_millis(20));
    assert_eq!(net.data(1).len(), 1);
}

#[test]
fn limits_are_the_smaller_end_s_on_reliable_channels_and_one_message_on_unreliable_ones() {
    let mut big_end = SwarmConfig::new("r");
    big_end.max_message_size = 1 << 20;
    let state = big_end.add_channel(ChannelConfig::unreliable("state"));
    let mut small_end = big_end.clone();
    small_end.max_message_size = 100_000;
    let mut net = linked_pair(big_end, small_end);
    let s = &mut net.members[0].swarm;
    assert_eq!(
        s.send(&"m1".into(), ChannelId::FAST, bytes(100_001).into()),
        Err(SendError::TooLarge {
            len: 100_001,
            max: 100_000
        })
    );
    assert_eq!(
        s.send(&"m1".into(), ChannelId::FAST, bytes((1 << 20) + 1).into()),
        Err(SendError::TooLarge {
            len: (1 << 20) + 1,
            max: 1 << 20
        })
    );
    assert_eq!(
        s.send(&"m1".into(), state, bytes(65_537).into()),
        Err(SendError::TooLarge {
            len: 65_537,
            max: 65_536
        })
    );
    s.send(&"m1".into(), ChannelId::FAST, bytes(100_000).into())
        .unwrap();
    s.send(&"m1".into(), state, bytes(65_536).into()).unwrap();
    net.flush(0);
    net.run_for(Duration::from_millis(20));
    let got: Vec<usize> = net.data(1).iter().map(|(_, _, p)| p.len()).collect();
    assert_eq!(got, vec![100_000, 65_536]);
}

#[test]
fn a_hostile_or_broken_large_message_is_a_fault_and_the_channel_goes_on() {
    let mut config = SwarmConfig::new("r");
    config.max_message_size = 100_000;
    let mut net = linked_pair(config.clone(), config);
    let id = net.members[1].swarm.peers()[0].id.clone();
    let now = net.now;
    let header = |size: u64, text: bool| PeerEvent::Message {
        channel: ChannelId::FAST,
        payload: Payload::Text(
            fast_rtc_swarm_core::control::Control::Large { size, text }.encode(),
        ),
    };
    let part = |len: usize| PeerEvent::Message {
        channel: ChannelId::FAST,
        payload: Payload::Binary(vec![0xff; len]),
    };
    let s = &mut net.members[1].swarm;
    // Over this member's limit: its parts are counted through and dropped.
    s.handle_peer(now, &id, header(150_000, false));
    s.handle_peer(now, &id, part(65_536));
    s.handle_peer(now, &id, part(65_536));
    s.handle_peer(now, &id, part(150_000 - 2 * 65_536));
    // A text message whose bytes are not UTF-8.
    s.handle_peer(now, &id, header(70_000, true));
    s.handle_peer(now, &id, part(65_536));
    s.handle_peer(now, &id, part(70_000 - 65_536));
    // Parts that overrun the announced size.
    s.handle_peer(now, &id, header(70_000, false));
    s.handle_peer(now, &id, part(65_536));
    s.handle_peer(now, &id, part(65_536));
    // Then ordinary data, which arrives as it is.
    s.handle_peer(
        now,
        &id,
        PeerEvent::Message {
            channel: ChannelId::FAST,
            payload: "still fine".into(),
        },
    );
    net.flush(1);
    let events = &net.members[1].events;
    let faults = events
        .iter()
        .filter(|e| matches!(e, SwarmEvent::Fault(SwarmFault::Dropped(_))))
        .count();
    assert_eq!(faults, 3, "{events:?}");
    assert_eq!(
        net.data(1),
        vec![(
            UserId::from("m0"),
            ChannelId::FAST,
            Payload::Text("still fine".into())
        )]
    );
    assert_eq!(net.opens(1), users(&["m0"]), "the link stays");
}

#[test]
fn text_that_looks_like_a_control_message_is_refused_on_every_channel() {
    let mut config = SwarmConfig::new("r");
    let state = config.add_channel(ChannelConfig::unreliable("state"));
    let mut net = linked_pair(config.clone(), config);
    for channel in [ChannelId::FAST, state] {
        assert_eq!(
            net.members[0].swarm.send(
                &"m1".into(),
                channel,
                "@fast/{\"type\":\"large\",\"size\":9}".into()
            ),
            Err(SendError::ReservedPrefix)
        );
    }
}

#[test]
fn game_channels_are_opened_only_for_a_peer_that_takes_them() {
    let mut with_state = SwarmConfig::new("r");
    let state = with_state.add_channel(ChannelConfig::unreliable("state"));
    // m1 has no game channels, as the JS reference client: its answer does not say it takes
    // them, so m0 never creates them (the JS client would take the first channel announced as
    // its `fast`).
    let mut net = linked_pair(with_state.clone(), SwarmConfig::new("r"));
    let opened_channels = |net: &Net| {
        net.commands
            .iter()
            .filter(|(_, c)| matches!(c, PeerCommand::OpenChannels { .. }))
            .count()
    };
    assert_eq!(opened_channels(&net), 0);
    let s = &mut net.members[0].swarm;
    assert_eq!(
        s.send(&"m1".into(), state, vec![1].into()),
        Err(SendError::NotTaken(state))
    );
    let fanout = s.broadcast(state, vec![1].into()).unwrap();
    assert!(
        fanout.sent.is_empty() && fanout.refused.is_empty(),
        "{fanout:?}"
    );
    s.send(&"m1".into(), ChannelId::FAST, vec![2].into())
        .unwrap();

    // Two members that both have game channels: the offerer opens them after the answer.
    let mut net = linked_pair(with_state.clone(), with_state);
    let offerer = net
        .commands
        .iter()
        .position(|(m, c)| {
            *m == 0
                && matches!(
                    c,
                    PeerCommand::SetRemote {
                        kind: fast_rtc_swarm_core::SdpKind::Answer,
                        ..
                    }
                )
        })
        .expect("the offerer set the answer");
    assert!(matches!(
        net.commands.get(offerer + 1),
        Some((0, PeerCommand::OpenChannels { .. }))
    ));
    assert_eq!(opened_channels(&net), 1);
    net.members[0]
        .swarm
        .send(&"m1".into(), state, vec![3].into())
        .unwrap();
    net.flush(0);
    net.run_for(Duration::from_millis(20));
    assert_eq!(
        net.data(1),
        vec![("m0".into(), state, Payload::Binary(vec![3]))]
    );
}

#[test]
fn gathering_without_a_relay_candidate_while_turn_is_configured_is_a_fault() {
    // The fake backend gathers one host candidate per description, never a relay one.
    let url = "turn:127.0.0.1:3478?transport=udp";
    let mut with_turn = SwarmConfig::new("r");
    with_turn.ice_servers.push(IceServer::turn(url, "u", "p"));
    let mut net = Net::new();
    let a = net.join("alice", with_turn);
    net.run_for(Duration::from_millis(50));
    let b = net.join("bob", SwarmConfig::new("r"));
    net.run_for(Duration::from_millis(200));
    let faults = |i: usize| -> Vec<SwarmFault> {
        net.members[i]
            .events
            .iter()
            .filter_map(|e| match e {
                SwarmEvent::Fault(f @ SwarmFault::RelayUnavailable { .. }) => Some(f.clone()),
                _ => None,
            })
            .collect()
    };
    let alice = faults(a);
    assert!(!alice.is_empty(), "{:?}", net.members[a].events);
    for f in &alice {
        let SwarmFault::RelayUnavailable {
            servers,
            relay_only,
            ..
        } = f
        else {
            unreachable!()
        };
        assert_eq!(servers, &[url.to_owned()]);
        assert!(!relay_only);
    }
    // Bob has no TURN server: nothing expected, nothing reported. Under the All policy the
    // host candidates still link them.
    assert!(faults(b).is_empty(), "{:?}", net.members[b].events);
    assert_eq!(net.opens(a), users(&["bob"]));
}
