//! Fuzz harness for the swarm core: bytes → a script of server frames (decoded from raw text,
//! or templated), backend reports (descriptions, candidates, ICE states, channel opens and
//! closes, messages on `fast` including `@fast/` control texts, failures), timeouts and
//! application calls, applied to one [`SwarmCore`]; after every step its outputs are drained and
//! the invariants that hold for ANY server and peer behaviour are checked.
//!
//! Shared by the cargo-fuzz target (`fuzz/fuzz_targets/core_inputs.rs`) and the stable replay
//! test (`tests/fuzz_replay.rs`), so every test run fuzzes a little.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a harness asserts
#![allow(clippy::disallowed_methods)] // picks the virtual clock's start

use fast_rtc_protocol::{
    ConnectionId, IceCandidate, IceServer, ServerMsg, Signal, UserId, decode_server,
};
use fast_rtc_swarm_core::{
    ChannelConfig, ChannelId, IceState, Payload, PeerCommand, PeerEvent, PeerFailure, SdpKind,
    SwarmConfig, SwarmCore, SwarmEvent, SwarmOutput,
};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const USERS: [&str; 4] = ["ann", "ben", "cid", "dee"];
/// Foreign connection ids (a remote's offers); the swarm's own are `me-1`, `me-2`, …
const IDS: [&str; 4] = ["x", "y", "z", "w"];
const CONTROLS: [&str; 9] = [
    "@fast/{\"type\":\"close\"}",
    "@fast/{\"type\":\"ping\",\"n\":1}",
    "@fast/{\"type\":\"pong\",\"n\":1}",
    "@fast/{\"type\":\"pong\",\"n\":18446744073709551615}",
    "@fast/{\"type\":\"midOffer\"}",
    "@fast/{\"type\":\"large\",\"size\":1500,\"text\":false}",
    "@fast/{\"type\":\"large\",\"size\":9000,\"text\":true}",
    "@fast/{\"type\":",
    "@fast/",
];

/// What a script reached, so callers can see how deep it went.
#[derive(Default, Debug, Clone, Copy)]
pub struct Reached {
    /// `Open` events seen.
    pub opens: usize,
    /// `Data` events seen.
    pub data: usize,
    /// Most links held at once.
    pub most_links: usize,
}

/// Applies the script in `data` to a fresh swarm core, checking invariants after every step.
/// Panics on a broken invariant (that is the bug report).
pub fn run(data: &[u8]) -> Reached {
    let mut config = SwarmConfig::new("r");
    config.add_channel(ChannelConfig::unreliable("state"));
    config.add_channel(ChannelConfig::reliable("chat"));
    config.max_pending_candidates = 4;
    config.max_queued_messages = 4;
    // Small enough that the sends below are split, refused, and reassembled.
    config.sctp_message_size = 1000;
    config.max_message_size = 5000;
    let mut swarm = SwarmCore::new(config, "me");
    let mut now = Instant::now();
    let mut reached = Reached::default();
    let mut own: Vec<ConnectionId> = Vec::new();
    let mut bytes = data.iter().copied();
    swarm.start(now);
    // The server's acknowledgement, first as always: the pre-made offers are made on it.
    swarm.handle_signal(
        now,
        ServerMsg::Joined {
            user_id: UserId::from("me"),
            ice_servers: Some(vec![IceServer::stun("stun:127.0.0.1:3478")]),
            resume_token: None,
            resumed: false,
        },
    );
    drain(&mut swarm, &mut own, &mut reached);
    while let Some(op) = bytes.next() {
        let arg = bytes.next().unwrap_or(0);
        let user = UserId::from(USERS[usize::from(arg) % USERS.len()]);
        // Half the time one of the swarm's own connection ids, else a foreign one.
        let id = if arg & 0x40 != 0 && !own.is_empty() {
            own[usize::from(arg >> 2) % own.len()].clone()
        } else {
            ConnectionId::new(IDS[usize::from(arg >> 4) % IDS.len()])
        };
        let channel = ChannelId(u16::from(arg % 4)); // 3 is no channel at all
        match op % 16 {
            // Raw text from the server, as it would arrive.
            0 => {
                let len = usize::from(arg % 64);
                let text: Vec<u8> = bytes.by_ref().take(len).collect();
                if let Ok(msg) = decode_server(&String::from_utf8_lossy(&text)) {
                    swarm.handle_signal(now, msg);
                }
            }
            1 => swarm.handle_signal(
                now,
                ServerMsg::Accept {
                    id,
                    user_id: user,
                    signals: (0..arg % 3)
                        .map(|i| {
                            if i == 0 {
                                Signal::Offer {
                                    sdp: remote_sdp(arg),
                                }
                            } else {
                                Signal::Candidate {
                                    candidate: candidate(arg),
                                }
                            }
                        })
                        .collect(),
                },
            ),
            2 => swarm.handle_signal(now, ServerMsg::OfferAccepted { id, user_id: user }),
            // An offer request, or fresh ICE servers (a TURN credential refresh).
            3 if arg & 0x80 != 0 => swarm.handle_signal(
                now,
                ServerMsg::IceServers {
                    ice_servers: vec![IceServer::turn(
                        "turn:127.0.0.1:3478?transport=udp",
                        format!("{arg}:me"),
                        "credential",
                    )],
                },
            ),
            3 => swarm.handle_signal(now, ServerMsg::OfferRequest),
            4 => swarm.handle_signal(
                now,
                ServerMsg::Answer {
                    id,
                    sdp: remote_sdp(arg),
                },
            ),
            5 => swarm.handle_signal(
                now,
                ServerMsg::Candidate {
                    id,
                    candidate: candidate(arg),
                },
            ),
            6 => swarm.handle_signal(now, ServerMsg::LeaveSwarm { id }),
            7 => swarm.handle_peer(now, &id, PeerEvent::ChannelOpen(channel)),
            8 => swarm.handle_peer(now, &id, PeerEvent::ChannelClosed(channel)),
            9 => {
                let text = CONTROLS[usize::from(arg) % CONTROLS.len()];
                let payload = if arg & 0x80 != 0 {
                    Payload::Text(text.into())
                } else {
                    Payload::Binary(vec![arg; usize::from(arg % 8) * 97])
                };
                swarm.handle_peer(now, &id, PeerEvent::Message { channel, payload });
            }
            10 => {
                let state = [
                    IceState::Checking,
                    IceState::Connected,
                    IceState::Disconnected,
                    IceState::Failed,
                ][usize::from(arg) % 4];
                swarm.handle_peer(now, &id, PeerEvent::IceState(state));
            }
            11 => {
                let event = match arg % 3 {
                    0 => PeerEvent::LocalDescription {
                        kind: if arg & 1 == 0 {
                            SdpKind::Offer
                        } else {
                            SdpKind::Answer
                        },
                        sdp: "v=0".into(),
                    },
                    1 => PeerEvent::LocalCandidate(candidate(arg)),
                    _ => PeerEvent::Failed(PeerFailure::Platform("fuzz".into())),
                };
                swarm.handle_peer(now, &id, event);
            }
            12 => {
                now += Duration::from_millis(u64::from(arg) * 50);
                swarm.handle_timeout(now);
            }
            13 => {
                let payload = Payload::Binary(vec![0; usize::from(arg) * 300]);
                let _ = if arg & 1 == 0 {
                    swarm.send(&user, channel, payload)
                } else {
                    swarm.broadcast(channel, payload).map(|_| ())
                };
            }
            14 => {
                swarm.close_peer(&user);
            }
            _ => {
                if arg < 16 {
                    swarm.close();
                } else {
                    swarm.start(now);
                }
            }
        }
        drain(&mut swarm, &mut own, &mut reached);
        reached.most_links = reached.most_links.max(swarm.link_count());
    }
    reached
}

/// A remote description: half the time it advertises reassembly of large messages.
fn remote_sdp(arg: u8) -> String {
    if arg & 0x20 != 0 {
        "v=0\r\na=x-fast-rtc-reassembly:4000\r\n".into()
    } else {
        "v=0".into()
    }
}

fn candidate(arg: u8) -> Option<IceCandidate> {
    (!arg.is_multiple_of(5)).then(|| IceCandidate {
        candidate: format!("candidate:{arg} 1 udp 1 127.0.0.1 {arg} typ host"),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    })
}

/// Drains every output and checks what must hold whatever came in.
fn drain(swarm: &mut SwarmCore, own: &mut Vec<ConnectionId>, reached: &mut Reached) {
    let mut outputs = 0;
    while let Some(out) = swarm.poll_output() {
        outputs += 1;
        assert!(outputs < 10_000, "one input produced endless outputs");
        match out {
            SwarmOutput::Command(PeerCommand::Create { id, .. })
                if id.as_str().starts_with("me-") && !own.contains(&id) =>
            {
                own.push(id);
            }
            SwarmOutput::Command(PeerCommand::Send { payload, .. }) => {
                let sctp = swarm.config().sctp_message_size;
                assert!(
                    payload.len() <= sctp,
                    "a {}-byte data-channel message (parts are at most {sctp})",
                    payload.len()
                );
            }
            SwarmOutput::Event(SwarmEvent::Open(_)) => reached.opens += 1,
            SwarmOutput::Event(SwarmEvent::Data { .. }) => reached.data += 1,
            _ => {}
        }
    }
    own.truncate(16);
    // Each peer appears once, and only peers with an open link do.
    let peers = swarm.peers();
    let unique: HashSet<&UserId> = peers.iter().map(|p| &p.user_id).collect();
    assert_eq!(unique.len(), peers.len(), "a peer listed twice: {peers:?}");
    for p in &peers {
        assert_eq!(swarm.link_to(&p.user_id).as_ref(), Some(&p.id));
    }
    // Bounded: links come only from accepts, offer requests and the peer buffer, and the
    // script is short; a leak would grow without bound.
    assert!(swarm.link_count() <= 4096, "{} links", swarm.link_count());
    if swarm.is_closed() {
        assert_eq!(swarm.link_count(), 0, "a closed swarm holds links");
    }
}
