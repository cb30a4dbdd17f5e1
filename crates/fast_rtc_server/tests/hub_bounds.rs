//! The hub's byte budgets and join rate, one input at a time, with virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod support;

use fast_rtc_protocol::{ClientMsg, ErrorCode, IceCandidate, ServerMsg, Signal, encode};
use fast_rtc_server::Limits;
use fast_rtc_server::hub::signal_bytes;
use std::time::Duration;
use support::Driver;

fn big_candidate(id: &str, size: usize) -> String {
    encode(&ClientMsg::Candidate {
        id: id.into(),
        candidate: Some(IceCandidate {
            candidate: "x".repeat(size),
            sdp_mid: None,
            sdp_m_line_index: Some(0),
            username_fragment: None,
        }),
    })
}

fn errors(msgs: &[ServerMsg]) -> Vec<ErrorCode> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::SignalError { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

/// The attack of the issue: a member parks one offer and 63 candidates of ~60 KB for it. The
/// chunk stops at `max_chunk_bytes` (the member is told), and the joiner's `accept` carries at
/// most that many bytes.
#[test]
fn a_parked_offer_never_grows_past_its_byte_budget() {
    let limits = Limits {
        frames_per_second: 1_000_000,
        frame_burst: 1_000_000,
        bytes_per_second: u32::MAX,
        byte_burst: u32::MAX,
        ..Limits::default()
    };
    let max = limits.max_chunk_bytes;
    let mut d = Driver::with_limits(limits);
    let alice = d.connect("alice");
    d.init(alice, "r");
    d.offer(alice, "a1");
    for _ in 0..63 {
        d.text(alice, &big_candidate("a1", 20_000));
    }
    let refused = errors(&d.take(alice));
    assert!(refused.len() >= 60, "{} refusals", refused.len());
    assert!(refused.iter().all(|c| *c == ErrorCode::QueueFull));

    let bob = d.connect("bob");
    d.init(bob, "r");
    let got = d.take(bob);
    let [ServerMsg::Accept { signals, .. }] = got.as_slice() else {
        panic!("expected one accept, got {got:?}");
    };
    let bytes: usize = signals.iter().map(signal_bytes).sum();
    assert!(bytes <= max, "{bytes} > {max}");
    assert_eq!(signals.len(), 4, "the offer and three 20 KB candidates");
    let accept = encode(&got[0]);
    assert!(
        accept.len() < max + 1024,
        "accept of {} bytes",
        accept.len()
    );
}

/// Everything one member parks (offers and early candidates) stays within
/// `max_parked_bytes_per_member`; what does not fit is refused with `queue_full`.
#[test]
fn a_member_parks_at_most_its_byte_budget() {
    let limits = Limits {
        max_parked_bytes_per_member: 50_000,
        frames_per_second: 1_000_000,
        frame_burst: 1_000_000,
        bytes_per_second: u32::MAX,
        byte_burst: u32::MAX,
        ..Limits::default()
    };
    let mut d = Driver::with_limits(limits);
    let alice = d.connect("alice");
    d.init(alice, "r");
    // Early candidates for offers not sent yet: two fit, the third does not.
    d.text(alice, &big_candidate("x1", 20_000));
    d.text(alice, &big_candidate("x2", 20_000));
    assert!(d.take(alice).is_empty());
    d.text(alice, &big_candidate("x3", 20_000));
    d.expect_error(alice, ErrorCode::QueueFull);
    // An offer of 15 KB does not fit either; the member was told already.
    let big_offer = encode(&ClientMsg::Offer {
        id: "a1".into(),
        sdp: "s".repeat(15_000),
    });
    d.text(alice, &big_offer);
    assert!(d.take(alice).is_empty(), "one error per run of refusals");
    // A small one does, with its early candidates: x1 becomes a chunk.
    d.offer(alice, "x1");
    assert!(d.take(alice).is_empty());
    let room = d.hub.room(&"r".into()).unwrap();
    assert_eq!(room.members[0].pending_offers, vec!["x1".into()]);
    assert_eq!(room.members[0].pending_signals, vec![2]);
    assert_eq!(room.members[0].orphan_candidates, 1);
    // After a success, the next refusal is told again.
    d.text(alice, &big_offer);
    d.expect_error(alice, ErrorCode::QueueFull);
}

/// The byte rate charges a frame's real size, however large: a frame far over
/// `max_frame_bytes` costs its full length, not the limit's.
#[test]
fn the_byte_rate_charges_real_bytes() {
    let limits = Limits {
        max_frame_bytes: 1_000,
        bytes_per_second: 1,
        byte_burst: 100_000,
        ..Limits::default()
    };
    let mut d = Driver::with_limits(limits);
    let alice = d.connect("alice");
    d.text(alice, &"x".repeat(50_000));
    d.expect_error(alice, ErrorCode::FrameTooLarge);
    // 50 KB of the 100 KB burst are gone: the next 60 KB frame is over the rate.
    d.text(alice, &"x".repeat(60_000));
    d.expect_error(alice, ErrorCode::RateLimited);
}

/// One identity joins at most `join_burst` times at once, then `joins_per_minute`; every
/// refused `init` is answered `rate_limited`, costs the room nothing (no `offerRequest`), and
/// another identity still joins.
#[test]
fn join_churn_is_rate_limited_per_identity() {
    let limits = Limits {
        join_burst: 3,
        joins_per_minute: 60,
        ..Limits::default()
    };
    let mut d = Driver::with_limits(limits);
    let host = d.connect("host");
    d.init(host, "r");
    let churner = d.connect("churner");
    for i in 0..3 {
        d.offer(host, &format!("h{i}"));
        d.init(churner, "r");
        d.close(churner);
    }
    assert_eq!(d.joins(churner), 3);
    d.take(churner);
    d.offer(host, "h3");
    d.init(churner, "r");
    d.expect_error(churner, ErrorCode::RateLimited);
    // A second socket of the same identity shares the bucket.
    let again = d.connect("churner");
    d.init(again, "r");
    d.expect_error(again, ErrorCode::RateLimited);
    let requests = d
        .take(host)
        .iter()
        .filter(|m| matches!(m, ServerMsg::OfferRequest))
        .count();
    assert_eq!(requests, 3, "one offerRequest per admitted join");
    let room = d.hub.room(&"r".into()).unwrap();
    assert_eq!(room.members.len(), 1);
    assert_eq!(
        room.members[0].pending_offers,
        vec!["h3".into()],
        "not taken"
    );

    let other = d.connect("other");
    d.init(other, "r");
    assert_eq!(d.joins(other), 1);
    // A second later the bucket holds one join again.
    d.advance(Duration::from_millis(1_000));
    d.init(churner, "r");
    assert_eq!(d.joins(churner), 4);
}

/// A signal's size is what it adds to an `accept` frame.
#[test]
fn signal_bytes_is_the_encoded_size() {
    let s = Signal::Offer {
        sdp: "v=0\r\n".into(),
    };
    let accept = ServerMsg::Accept {
        id: "a".into(),
        user_id: "u".into(),
        signals: vec![s.clone(), s.clone()],
    };
    let one = ServerMsg::Accept {
        id: "a".into(),
        user_id: "u".into(),
        signals: vec![s.clone()],
    };
    assert_eq!(encode(&accept).len() - encode(&one).len(), signal_bytes(&s));
}

/// Frames kept before `init` are bounded in bytes too (64 frames of 60 KB used to be kept).
#[test]
fn frames_before_init_are_bounded_in_bytes() {
    let limits = Limits {
        max_bytes_before_init: 100_000,
        frames_per_second: 1_000_000,
        frame_burst: 1_000_000,
        bytes_per_second: u32::MAX,
        byte_burst: u32::MAX,
        ..Limits::default()
    };
    let mut d = Driver::with_limits(limits);
    let alice = d.connect("alice");
    d.text(alice, &big_candidate("a1", 45_000));
    d.text(alice, &big_candidate("a1", 45_000));
    assert!(d.take(alice).is_empty());
    d.text(alice, &big_candidate("a1", 45_000));
    d.expect_error(alice, ErrorCode::QueueFull);
    // A small frame still fits.
    d.candidate(alice, "a1", 1);
    assert!(d.take(alice).is_empty());
}
