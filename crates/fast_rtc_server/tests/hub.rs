//! Scenarios of the pure room state machine, one input at a time, with virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod support;

use fast_rtc_protocol::{ErrorCode, IceCandidate, ServerMsg, Signal};
use fast_rtc_server::Limits;
use fast_rtc_server::hub::{RoomGrant, SocketCloseReason};
use std::time::Duration;
use support::Driver;

fn cand(n: u32) -> Option<IceCandidate> {
    Some(IceCandidate {
        candidate: format!("c{n}"),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    })
}

fn offer(id: &str) -> Signal {
    Signal::Offer {
        sdp: format!("sdp-{id}"),
    }
}

#[test]
fn alice_bob_carol() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    d.offer(alice, "a1");
    d.candidate(alice, "a1", 1);
    assert!(d.take(alice).is_empty(), "an empty room sends nothing");

    // Bob joins: Alice's chunk in one frame, Alice told and asked to refill.
    let bob = d.connect("bob");
    d.init(bob, "r");
    assert_eq!(
        d.take(bob),
        vec![ServerMsg::Accept {
            id: "a1".into(),
            user_id: "alice".into(),
            signals: vec![offer("a1"), Signal::Candidate { candidate: cand(1) }],
        }]
    );
    assert_eq!(
        d.take(alice),
        vec![
            ServerMsg::OfferAccepted {
                id: "a1".into(),
                user_id: "bob".into()
            },
            ServerMsg::OfferRequest
        ]
    );

    // Bob answers; relays both ways on link a1.
    d.answer(bob, "a1");
    d.candidate(bob, "a1", 2);
    assert_eq!(
        d.take(alice),
        vec![
            ServerMsg::Answer {
                id: "a1".into(),
                sdp: "ans-a1".into()
            },
            ServerMsg::Candidate {
                id: "a1".into(),
                candidate: cand(2)
            },
        ]
    );
    d.candidate(alice, "a1", 3);
    assert_eq!(
        d.take(bob),
        vec![ServerMsg::Candidate {
            id: "a1".into(),
            candidate: cand(3)
        }]
    );

    // Refill and Bob's own pre-made offer.
    d.offer(alice, "a2");
    d.offer(bob, "b1");
    d.candidate(bob, "b1", 4);

    let carol = d.connect("carol");
    d.init(carol, "r");
    assert_eq!(
        d.take(carol),
        vec![
            ServerMsg::Accept {
                id: "a2".into(),
                user_id: "alice".into(),
                signals: vec![offer("a2")]
            },
            ServerMsg::Accept {
                id: "b1".into(),
                user_id: "bob".into(),
                signals: vec![offer("b1"), Signal::Candidate { candidate: cand(4) }],
            },
        ]
    );
    assert_eq!(
        d.take(alice),
        vec![
            ServerMsg::OfferAccepted {
                id: "a2".into(),
                user_id: "carol".into()
            },
            ServerMsg::OfferRequest
        ]
    );
    assert_eq!(
        d.take(bob),
        vec![
            ServerMsg::OfferAccepted {
                id: "b1".into(),
                user_id: "carol".into()
            },
            ServerMsg::OfferRequest
        ]
    );
    d.answer(carol, "b1");
    assert_eq!(
        d.take(bob),
        vec![ServerMsg::Answer {
            id: "b1".into(),
            sdp: "ans-b1".into()
        }]
    );
    assert!(d.take(alice).is_empty(), "relays go only to the other end");

    let snap = d.hub.room(&"r".into()).unwrap();
    let links: Vec<_> = snap.members.iter().map(|m| m.links.len()).collect();
    assert_eq!(links, vec![2, 2, 2], "a full mesh of three");
    assert_eq!(
        (
            d.hub.stats().handouts_premade,
            d.hub.stats().handouts_waiting
        ),
        (3, 0)
    );
}

#[test]
fn joiner_waits_when_no_chunk_is_ready() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    let bob = d.connect("bob");
    d.init(bob, "r");
    assert!(d.take(bob).is_empty());
    assert_eq!(d.take(alice), vec![ServerMsg::OfferRequest]);
    assert_eq!(
        d.hub.room(&"r".into()).unwrap().members[0].owes,
        vec!["bob".into()]
    );

    // Alice's next new offer goes straight to Bob, candidates follow as relays.
    d.candidate(alice, "a1", 1); // before its offer: kept
    d.offer(alice, "a1");
    assert_eq!(
        d.take(bob),
        vec![ServerMsg::Accept {
            id: "a1".into(),
            user_id: "alice".into(),
            signals: vec![offer("a1"), Signal::Candidate { candidate: cand(1) }],
        }]
    );
    assert_eq!(
        d.take(alice),
        vec![ServerMsg::OfferAccepted {
            id: "a1".into(),
            user_id: "bob".into()
        }]
    );
    d.candidate(alice, "a1", 2);
    assert_eq!(
        d.take(bob),
        vec![ServerMsg::Candidate {
            id: "a1".into(),
            candidate: cand(2)
        }]
    );
    assert_eq!(
        (
            d.hub.stats().handouts_premade,
            d.hub.stats().handouts_waiting
        ),
        (0, 1)
    );
    // The next offer is a pre-made one again.
    d.offer(alice, "a2");
    assert!(d.take(bob).is_empty());
    assert_eq!(
        d.hub.room(&"r".into()).unwrap().members[0].pending_offers,
        vec!["a2".into()]
    );
}

#[test]
fn a_member_owes_one_offer_per_joiner_in_order() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    let bob = d.connect("bob");
    d.init(bob, "r");
    let carol = d.connect("carol");
    d.init(carol, "r");
    assert_eq!(
        d.take(alice),
        vec![ServerMsg::OfferRequest, ServerMsg::OfferRequest]
    );
    d.take(bob);
    d.offer(alice, "x1");
    d.offer(alice, "x2");
    assert!(
        matches!(d.take(bob).as_slice(), [ServerMsg::Accept { id, .. }] if id.as_str() == "x1")
    );
    assert!(
        matches!(d.take(carol).as_slice(), [ServerMsg::Accept { id, .. }] if id.as_str() == "x2")
    );
}

#[test]
fn leaving_sends_leave_swarm_for_every_link_and_cleans_waiting_lists() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    let mut others = Vec::new();
    for (i, name) in ["bob", "carol", "dave"].iter().enumerate() {
        d.offer(alice, &format!("a{i}"));
        let c = d.connect(name);
        d.init(c, "r");
        others.push(c);
    }
    // Alice now has links a0, a1, a2; Bob and Carol owe Dave / each other offers or have given them.
    d.offer(alice, "spare"); // a pending chunk that must be discarded
    let eve = d.connect("eve");
    d.inbox.clear();
    d.disconnect(alice);
    for (i, c) in others.iter().enumerate() {
        let got = d.take(*c);
        assert!(
            got.contains(&ServerMsg::LeaveSwarm {
                id: format!("a{i}").as_str().into()
            }),
            "member {i} got {got:?}"
        );
    }
    // Her chunk is gone: Eve joining gets nothing from Alice, and no link id of hers survives.
    d.init(eve, "r");
    let got = d.take(eve);
    assert!(
        got.iter().all(
            |m| !matches!(m, ServerMsg::Accept { user_id, .. } if user_id.as_str() == "alice")
        )
    );
    let snap = d.hub.room(&"r".into()).unwrap();
    for m in &snap.members {
        assert!(m.links.iter().all(|(_, other)| other.as_str() != "alice"));
        assert!(m.owes.iter().all(|u| u.as_str() != "alice"));
    }

    // A joiner waiting on a member leaves: the member's next offer is kept, not handed to a ghost.
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    let bob = d.connect("bob");
    d.init(bob, "r");
    d.close(bob);
    d.offer(alice, "a1");
    let snap = d.hub.room(&"r".into()).unwrap();
    assert_eq!(snap.members.len(), 1);
    assert_eq!(snap.members[0].pending_offers, vec!["a1".into()]);
    assert!(snap.members[0].owes.is_empty());
}

#[test]
fn an_offer_owed_to_a_joiner_who_left_replaces_the_next_refill() {
    // Alice's pre-made offer is still on its way when Bob joins: Bob waits on her and she is
    // asked for one more. Bob leaves before either arrives, so both are parked: one over her
    // peerBuffer. The next joiner takes one, and she is not asked to refill, so she is back
    // to one parked offer instead of keeping two for good.
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    let bob = d.connect("bob");
    d.init(bob, "r");
    assert_eq!(d.take(alice), vec![ServerMsg::OfferRequest]);
    d.close(bob);
    d.offer(alice, "a0");
    d.offer(alice, "a1");
    let pending = |d: &Driver| {
        d.hub.room(&"r".into()).unwrap().members[0]
            .pending_offers
            .len()
    };
    assert_eq!(pending(&d), 2);
    let carol = d.connect("carol");
    d.init(carol, "r");
    let to_alice = d.take(alice);
    assert!(
        !to_alice.contains(&ServerMsg::OfferRequest),
        "alice was asked to refill: {to_alice:?}"
    );
    assert_eq!(pending(&d), 1);
    // The one after that takes her last offer, and she is asked for a new one as usual.
    let dave = d.connect("dave");
    d.init(dave, "r");
    assert!(d.take(alice).contains(&ServerMsg::OfferRequest));
}

#[test]
fn a_joiner_left_waiting_for_an_offer_is_linked_the_other_way() {
    // Alice never refills: Bob, who joins after her offer was taken, waits on her. After the
    // wait limit she is told, and Bob's own pre-made offer links them instead.
    let mut d = Driver::new();
    let max = d.hub.limits().max_offer_wait;
    let alice = d.connect("alice");
    d.init(alice, "r");
    let bob = d.connect("bob");
    d.offer(bob, "b1"); // sent before init, as the JS client may
    d.init(bob, "r");
    assert_eq!(d.take(alice), vec![ServerMsg::OfferRequest]);
    assert!(d.take(bob).is_empty(), "bob waits on alice");
    assert_eq!(d.hub.poll_timeout(), Some(d.now + max));
    d.advance(max - Duration::from_millis(1));
    d.run_timers();
    assert!(
        d.take(alice).is_empty() && d.take(bob).is_empty(),
        "not yet"
    );
    d.advance(Duration::from_millis(1));
    d.run_timers();
    let to_alice = d.take(alice);
    assert!(
        matches!(
            &to_alice[0],
            ServerMsg::SignalError {
                code: ErrorCode::OfferOverdue,
                ..
            }
        ),
        "{to_alice:?}"
    );
    assert!(
        matches!(&to_alice[1..], [ServerMsg::Accept { id, user_id, .. }] if id.as_str() == "b1" && user_id.as_str() == "bob"),
        "{to_alice:?}"
    );
    assert_eq!(
        d.take(bob),
        vec![
            ServerMsg::OfferAccepted {
                id: "b1".into(),
                user_id: "alice".into()
            },
            ServerMsg::OfferRequest
        ]
    );
    assert_eq!(d.hub.poll_timeout(), None, "nobody waits any more");
    // Alice's overdue offer comes after all: it is parked, not a second link to Bob, and it
    // replaces her next refill.
    d.offer(alice, "a1");
    assert!(d.take(bob).is_empty());
    let snap = d.hub.room(&"r".into()).unwrap();
    let alice_snap = snap
        .members
        .iter()
        .find(|m| m.user_id.as_str() == "alice")
        .unwrap();
    assert_eq!(alice_snap.pending_offers, vec!["a1".into()]);
    assert_eq!(alice_snap.links, vec![("b1".into(), "bob".into())]);
    let carol = d.connect("carol");
    d.init(carol, "r");
    assert!(
        !d.take(alice).contains(&ServerMsg::OfferRequest),
        "the overdue offer took the refill's place"
    );
}

#[test]
fn when_neither_has_an_offer_the_member_waits_on_the_joiner() {
    let mut d = Driver::new();
    let max = d.hub.limits().max_offer_wait;
    let alice = d.connect("alice");
    d.init(alice, "r");
    let bob = d.connect("bob");
    d.init(bob, "r");
    d.inbox.clear();
    d.advance(max);
    d.run_timers();
    d.expect_error(alice, ErrorCode::OfferOverdue);
    assert_eq!(d.take(bob), vec![ServerMsg::OfferRequest]);
    // Bob's next offer goes to Alice, who now waits on him.
    d.offer(bob, "b1");
    assert!(
        matches!(d.take(alice).as_slice(), [ServerMsg::Accept { id, .. }] if id.as_str() == "b1")
    );
}

#[test]
fn close_keeps_the_socket_usable() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    d.offer(alice, "a1");
    let bob = d.connect("bob");
    d.init(bob, "r");
    d.close(bob);
    assert_eq!(
        d.take(alice),
        vec![
            ServerMsg::OfferAccepted {
                id: "a1".into(),
                user_id: "bob".into()
            },
            ServerMsg::OfferRequest,
            ServerMsg::LeaveSwarm { id: "a1".into() }
        ]
    );
    d.offer(alice, "a2");
    d.take(bob);
    d.init(bob, "r"); // rejoin on the same socket
    assert!(
        matches!(d.take(bob).as_slice(), [ServerMsg::Accept { id, .. }] if id.as_str() == "a2")
    );
}

#[test]
fn duplicate_identity_replaces_the_older_session() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    d.offer(alice, "a1");
    let bob = d.connect("bob");
    d.init(bob, "r");
    d.offer(bob, "b1");
    d.inbox.clear();

    let bob2 = d.connect("bob");
    d.init(bob2, "r");
    let old = d.take(bob);
    assert!(
        matches!(
            old.as_slice(),
            [ServerMsg::SignalError {
                code: ErrorCode::DuplicateIdentity,
                ..
            }]
        ),
        "{old:?}"
    );
    assert_eq!(d.closed, vec![(bob, SocketCloseReason::Replaced)]);
    // Alice learns the old link is gone, then meets the new session.
    let got = d.take(alice);
    assert_eq!(got[0], ServerMsg::LeaveSwarm { id: "a1".into() });
    assert_eq!(got.last(), Some(&ServerMsg::OfferRequest));
    let got = d.take(bob2);
    assert_eq!(got, vec![], "Alice has no chunk ready: bob2 waits");
    d.offer(alice, "a2");
    assert!(
        matches!(d.take(bob2).as_slice(), [ServerMsg::Accept { id, .. }] if id.as_str() == "a2")
    );
    assert_eq!(
        d.take(alice),
        vec![ServerMsg::OfferAccepted {
            id: "a2".into(),
            user_id: "bob".into()
        }]
    );
    // The old socket is forgotten: its frames do nothing.
    d.offer(bob, "zombie");
    assert!(d.take(bob).is_empty() && d.take(alice).is_empty());
    let snap = d.hub.room(&"r".into()).unwrap();
    assert_eq!(snap.members.len(), 2);
    assert!(snap.members.iter().all(|m| m.conn != bob));
}

#[test]
fn candidate_before_offer_is_kept_in_order() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    d.candidate(alice, "a1", 1);
    d.candidate(alice, "other", 9);
    d.candidate(alice, "a1", 2);
    d.offer(alice, "a1");
    d.candidate(alice, "a1", 3);
    let bob = d.connect("bob");
    d.init(bob, "r");
    assert_eq!(
        d.take(bob),
        vec![ServerMsg::Accept {
            id: "a1".into(),
            user_id: "alice".into(),
            signals: vec![
                offer("a1"),
                Signal::Candidate { candidate: cand(1) },
                Signal::Candidate { candidate: cand(2) },
                Signal::Candidate { candidate: cand(3) },
            ],
        }]
    );
    assert_eq!(
        d.hub.room(&"r".into()).unwrap().members[0].orphan_candidates,
        1
    );
}

#[test]
fn frames_before_init_are_applied_after_it() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    // Like the JS client: offer and candidates first, init on the next tick.
    let bob = d.connect("bob");
    d.offer(bob, "b1");
    d.candidate(bob, "b1", 1);
    d.text(bob, r#"{"type":"candidate","id":"b1","candidate":null}"#);
    assert!(d.take(bob).is_empty());
    d.init(bob, "r");
    let snap = d.hub.room(&"r".into()).unwrap();
    assert_eq!(snap.members[1].pending_offers, vec!["b1".into()]);
    assert_eq!(snap.members[1].pending_signals, vec![3]);
    // Alice owed Bob an offer; Bob's chunk waits for the next joiner.
    let carol = d.connect("carol");
    d.init(carol, "r");
    let got = d.take(carol);
    assert!(got.contains(&ServerMsg::Accept {
        id: "b1".into(),
        user_id: "bob".into(),
        signals: vec![
            offer("b1"),
            Signal::Candidate { candidate: cand(1) },
            Signal::Candidate { candidate: None }
        ],
    }));

    // The pre-init buffer is bounded.
    let limits = Limits {
        max_frames_before_init: 2,
        ..Limits::default()
    };
    let mut d = Driver::with_limits(limits);
    let x = d.connect("x");
    d.offer(x, "1");
    d.offer(x, "2");
    d.offer(x, "3");
    d.expect_error(x, ErrorCode::QueueFull);
    // `close` before init drops the buffer.
    d.close(x);
    d.init(x, "r");
    assert!(
        d.hub.room(&"r".into()).unwrap().members[0]
            .pending_offers
            .is_empty()
    );
}

#[test]
fn refused_frames_get_their_code_and_change_nothing() {
    let mut d = Driver::with_limits(Limits {
        max_members_per_room: 2,
        max_chunks_per_member: 1,
        max_signals_per_chunk: 2,
        max_pending_candidates: 1,
        max_frame_bytes: 1000,
        ..Limits::default()
    });
    let alice = d.connect("alice");
    let bob = d.connect("bob");
    let carol = d.connect("carol");
    let limited = d.connect_with("lim", RoomGrant::Only("only".into()));
    let eve = d.connect("eve");

    d.text(alice, "{oops");
    d.expect_error(alice, ErrorCode::Malformed);
    d.text(alice, r#"{"type":"join","roomId":"r"}"#);
    d.expect_error(alice, ErrorCode::UnknownType);
    d.text(
        alice,
        r#"{"type":"accept","id":"x","userId":"bob","signals":[]}"#,
    );
    d.expect_error(alice, ErrorCode::ForbiddenType);
    d.text(alice, r#"{"type":"offerRequest"}"#);
    d.expect_error(alice, ErrorCode::ForbiddenType);
    d.text(
        alice,
        &format!(
            r#"{{"type":"offer","id":"a","sdp":"{}"}}"#,
            "x".repeat(1000)
        ),
    );
    d.expect_error(alice, ErrorCode::FrameTooLarge);
    d.text(
        alice,
        &format!(r#"{{"type":"init","roomId":"{}"}}"#, "r".repeat(129)),
    );
    d.expect_error(alice, ErrorCode::InvalidField);
    d.text(alice, r#"{"type":"offer","id":"","sdp":"s"}"#);
    d.expect_error(alice, ErrorCode::InvalidField);
    d.hub.handle_binary(d.now, alice, 3);
    d.drain();
    d.expect_error(alice, ErrorCode::Malformed);

    d.init(limited, "r");
    d.expect_error(limited, ErrorCode::RoomNotAllowed);
    d.init(limited, "only"); // the same socket may still join the granted room
    assert!(d.take(limited).is_empty());

    d.init(alice, "r");
    d.init(alice, "r");
    d.expect_error(alice, ErrorCode::AlreadyJoined);
    d.offer(alice, "a1");
    d.offer(alice, "a2");
    d.expect_error(alice, ErrorCode::TooManyOffers);
    d.candidate(alice, "a1", 1);
    d.candidate(alice, "a1", 2);
    d.expect_error(alice, ErrorCode::QueueFull);
    d.candidate(alice, "zz", 1);
    d.candidate(alice, "zz", 2);
    d.expect_error(alice, ErrorCode::QueueFull);
    d.answer(alice, "a1"); // her own pending offer is no link yet
    d.expect_error(alice, ErrorCode::UnknownLink);

    d.init(bob, "r");
    d.take(bob);
    d.take(alice);
    d.offer(bob, "a1"); // on their live link: a renegotiation, relayed
    assert!(matches!(
        d.take(alice).as_slice(),
        [ServerMsg::Offer { .. }]
    ));
    d.offer(alice, "a3"); // Alice's new pending offer
    d.offer(bob, "a3");
    d.expect_error(bob, ErrorCode::IdInUse);
    d.init(carol, "r");
    d.expect_error(carol, ErrorCode::RoomFull);
    assert_eq!(
        (d.joins(alice), d.joins(bob), d.joins(carol)),
        (1, 1, 0),
        "each accepted init is acknowledged once, a refused one never"
    );

    // Eve in another room cannot touch link a1 of room r.
    d.init(eve, "elsewhere");
    d.answer(eve, "a1");
    d.expect_error(eve, ErrorCode::UnknownLink);
    d.candidate(eve, "a1", 1); // unknown in her room: kept as hers, never relayed
    d.offer(eve, "a1"); // her own id space: a pending offer of hers in "elsewhere"
    assert!(d.take(eve).is_empty());
    assert!(d.take(alice).is_empty() && d.take(bob).is_empty());
    // ... and within a room, a third member cannot touch a link between two others.
    let snap = d.hub.room(&"r".into()).unwrap();
    assert_eq!(snap.members.len(), 2);
    assert_eq!(snap.members[0].links, vec![("a1".into(), "bob".into())]);
    assert_eq!(d.hub.stats().errors.get(&ErrorCode::QueueFull), Some(&2));
}

#[test]
fn rate_limit_refuses_once_then_recovers_with_time() {
    let mut d = Driver::with_limits(Limits {
        frames_per_second: 10,
        frame_burst: 5,
        ..Limits::default()
    });
    let alice = d.connect("alice");
    for _ in 0..5 {
        d.text(alice, r#"{"type":"close"}"#);
    }
    assert!(d.take(alice).is_empty());
    for _ in 0..20 {
        d.text(alice, r#"{"type":"close"}"#);
    }
    d.expect_error(alice, ErrorCode::RateLimited); // once per burst, not once per frame
    d.init(alice, "r"); // dropped
    assert!(d.hub.room(&"r".into()).is_none());
    d.advance(Duration::from_millis(200)); // two tokens
    d.init(alice, "r");
    assert!(d.take(alice).is_empty());
    assert_eq!(d.hub.member_count(), 1);
}

#[test]
fn room_ids_compare_as_strings() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.text(alice, r#"{"type":"init","userId":"a","roomId":42}"#);
    d.offer(alice, "a1");
    let bob = d.connect("bob");
    d.text(bob, r#"{"type":"init","userId":"b","roomId":"42"}"#);
    assert!(
        matches!(d.take(bob).as_slice(), [ServerMsg::Joined { .. }, ServerMsg::Accept { id, .. }] if id.as_str() == "a1")
    );
}

#[test]
fn renegotiation_offer_on_a_live_link_is_relayed() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    d.offer(alice, "a1");
    let bob = d.connect("bob");
    d.init(bob, "r");
    d.inbox.clear();
    d.offer(bob, "a1"); // the answerer renegotiates
    assert_eq!(
        d.take(alice),
        vec![ServerMsg::Offer {
            id: "a1".into(),
            sdp: "sdp-a1".into()
        }]
    );
    d.answer(alice, "a1");
    assert_eq!(
        d.take(bob),
        vec![ServerMsg::Answer {
            id: "a1".into(),
            sdp: "ans-a1".into()
        }]
    );
}

#[test]
fn a_retry_links_two_members_at_once_and_relays_like_any_link() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    d.offer(alice, "a1");
    let bob = d.connect("bob");
    d.init(bob, "r");
    d.drain();
    d.take(alice);
    d.take(bob);
    // The a1 handshake failed; Alice retries to Bob with a fresh id. A candidate sent first
    // goes with the offer.
    d.candidate(alice, "a2", 7);
    d.text(
        alice,
        r#"{"type":"retry","id":"a2","to":"bob","sdp":"sdp-a2"}"#,
    );
    assert_eq!(
        d.take(bob),
        vec![ServerMsg::Accept {
            id: "a2".into(),
            user_id: "alice".into(),
            signals: vec![offer("a2"), Signal::Candidate { candidate: cand(7) }],
        }]
    );
    assert_eq!(
        d.take(alice),
        vec![ServerMsg::OfferAccepted {
            id: "a2".into(),
            user_id: "bob".into()
        }],
        "no offerRequest: a retry is not a claimed pre-made offer"
    );
    d.answer(bob, "a2");
    assert!(matches!(&d.take(alice)[..], [ServerMsg::Answer { id, .. }] if id.as_str() == "a2"));
    // Leaving tells the other end of the retried link too.
    d.close(bob);
    let left = d.take(alice);
    assert!(
        left.iter()
            .any(|m| matches!(m, ServerMsg::LeaveSwarm { id } if id.as_str() == "a2")),
        "{left:?}"
    );
}

#[test]
fn a_retry_to_nobody_or_on_a_used_id_is_refused() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    d.offer(alice, "a1");
    d.drain();
    d.take(alice);
    d.text(
        alice,
        r#"{"type":"retry","id":"a2","to":"ghost","sdp":"x"}"#,
    );
    d.expect_error(alice, ErrorCode::UnknownLink);
    d.text(
        alice,
        r#"{"type":"retry","id":"a2","to":"alice","sdp":"x"}"#,
    );
    d.expect_error(alice, ErrorCode::UnknownLink);
    let bob = d.connect("bob");
    d.init(bob, "r");
    d.drain();
    d.take(alice);
    d.take(bob);
    d.text(alice, r#"{"type":"retry","id":"a1","to":"bob","sdp":"x"}"#);
    d.expect_error(alice, ErrorCode::IdInUse);
    assert!(d.take(bob).is_empty());
}
