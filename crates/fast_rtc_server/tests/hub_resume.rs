//! Resuming a session in the pure hub (`fast_rtc_server::hub#resuming-a-session`): a member
//! that asked for a resume token is held when its socket is lost (not when it ends: a killed
//! client's kernel ends it, and its token died with it), its frames kept, and a new
//! socket with the token takes its place back; the hold ends with the grace, an overflow, a
//! `close`, or the bounds; a member that never asked (the JS client) leaves at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod support;

use fast_rtc_protocol::{ResumeToken, ServerMsg};
use fast_rtc_server::Limits;
use fast_rtc_server::hub::{ConnId, SocketCloseReason};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use support::Driver;

/// Tokens for the tests: distinct, 32 hex digits.
fn counting_token() -> ResumeToken {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    ResumeToken::new(format!("{:032x}", NEXT.fetch_add(1, Ordering::Relaxed)))
}

fn driver(limits: Limits) -> Driver {
    let mut d = Driver::with_limits(limits);
    d.hub.enable_resumption(counting_token);
    d
}

/// `init` with `resume` (`None`: no field, as the JS client): the `joined` that came back
/// (taken off the inbox with everything before it) and what followed it.
fn init(d: &mut Driver, conn: ConnId, resume: Option<&ResumeToken>) -> (ServerMsg, Vec<ServerMsg>) {
    let field = resume
        .map(|t| format!(r#","resume":"{}""#, t.expose()))
        .unwrap_or_default();
    d.text(conn, &format!(r#"{{"type":"init","roomId":"r"{field}}}"#));
    let mut got = d.take(conn);
    let at = got
        .iter()
        .position(|m| matches!(m, ServerMsg::Joined { .. }))
        .unwrap_or_else(|| panic!("no joined: {got:?}"));
    let after = got.split_off(at + 1);
    (got.pop().unwrap(), after)
}

fn token_of(joined: &ServerMsg) -> Option<ResumeToken> {
    match joined {
        ServerMsg::Joined { resume_token, .. } => resume_token.clone(),
        other => panic!("not joined: {other:?}"),
    }
}

fn resumed(joined: &ServerMsg) -> bool {
    matches!(joined, ServerMsg::Joined { resumed: true, .. })
}

/// Alice (resumable unless `plain`) parks `a1`, Bob joins and answers: link `a1`. Returns
/// (alice, bob, alice's token).
fn linked(d: &mut Driver, plain: bool) -> (ConnId, ConnId, Option<ResumeToken>) {
    let alice = d.connect("alice");
    let request = ResumeToken::request();
    let (joined, _) = init(d, alice, (!plain).then_some(&request));
    let token = token_of(&joined);
    d.offer(alice, "a1");
    let bob = d.connect("bob");
    init(d, bob, None);
    d.answer(bob, "a1");
    d.take(alice);
    d.take(bob);
    (alice, bob, token)
}

#[test]
fn a_held_member_is_resumed_with_its_links_and_the_frames_kept_for_it() {
    let mut d = driver(Limits::default());
    let (alice, bob, token) = linked(&mut d, false);
    let token = token.expect("a resumable member gets a token");
    assert_eq!(token.expose().len(), 32);

    d.lose(alice);
    assert!(d.take(bob).is_empty(), "no leaveSwarm while Alice is held");
    let room = d.hub.room(&"r".into()).unwrap();
    assert!(room.members[0].held, "{room:?}");
    assert_eq!(room.members[0].links.len(), 1);

    // Bob restarts ICE on the link meanwhile: kept for Alice.
    d.offer(bob, "a1");
    d.candidate(bob, "a1", 7);
    assert!(d.take(bob).is_empty());

    let alice2 = d.connect("alice");
    let (joined, after) = init(&mut d, alice2, Some(&token));
    assert!(resumed(&joined), "{joined:?}");
    let fresh = token_of(&joined).unwrap();
    assert!(!fresh.matches(&token), "every joined brings a new token");
    assert!(
        matches!(after.as_slice(), [ServerMsg::Offer { id, .. }, ServerMsg::Candidate { .. }] if id.as_str() == "a1"),
        "the kept frames, in order: {after:?}"
    );
    assert!(d.take(bob).is_empty(), "Bob sees nothing of it");
    // The link is relayed to the new socket, both ways.
    d.answer(alice2, "a1");
    assert!(matches!(d.take(bob).as_slice(), [ServerMsg::Answer { .. }]));
    let room = d.hub.room(&"r".into()).unwrap();
    assert_eq!(room.members[0].conn, alice2);
    assert!(!room.members[0].held);
    // The old token is spent.
    d.lose(alice2);
    let alice3 = d.connect("alice");
    let (joined, _) = init(&mut d, alice3, Some(&token));
    assert!(!resumed(&joined), "a spent token resumes nothing");
    assert_eq!(d.hub.stats().resumed, 1);
}

#[test]
fn the_hold_ends_with_the_grace_and_the_member_leaves() {
    let mut d = driver(Limits::default());
    let (alice, bob, token) = linked(&mut d, false);
    d.lose(alice);
    d.advance(Limits::default().resume_grace - Duration::from_millis(1));
    d.run_timers();
    assert!(d.take(bob).is_empty());
    d.advance(Duration::from_millis(1));
    d.run_timers();
    assert!(
        matches!(d.take(bob).as_slice(), [ServerMsg::LeaveSwarm { id }] if id.as_str() == "a1"),
        "Alice left when the grace ran out"
    );
    // Too late: a plain join, with a fresh token.
    let alice2 = d.connect("alice");
    let (joined, _) = init(&mut d, alice2, token.as_ref());
    assert!(!resumed(&joined));
    assert!(token_of(&joined).is_some());
}

#[test]
fn a_socket_that_ends_rather_than_is_lost_leaves_at_once() {
    let mut d = driver(Limits::default());
    let (alice, bob, _) = linked(&mut d, false);
    d.disconnect(alice);
    assert!(matches!(
        d.take(bob).as_slice(),
        [ServerMsg::LeaveSwarm { .. }]
    ));
}

#[test]
fn a_member_that_never_asked_leaves_at_once_as_before() {
    let mut d = driver(Limits::default());
    let (alice, bob, token) = linked(&mut d, true);
    assert_eq!(token, None, "no resume field, no token (the JS client)");
    d.lose(alice);
    assert!(matches!(
        d.take(bob).as_slice(),
        [ServerMsg::LeaveSwarm { .. }]
    ));
    assert_eq!(d.hub.room(&"r".into()).unwrap().members.len(), 1);
}

#[test]
fn close_leaves_at_once_and_resumption_off_gives_no_token() {
    let mut d = driver(Limits::default());
    let (alice, bob, _) = linked(&mut d, false);
    d.close(alice);
    assert!(matches!(
        d.take(bob).as_slice(),
        [ServerMsg::LeaveSwarm { .. }]
    ));
    d.lose(alice);

    // Zero grace, or a hub that never enabled it (the cluster's): no tokens, no holds.
    for mut d in [
        driver(Limits {
            resume_grace: Duration::ZERO,
            ..Limits::default()
        }),
        Driver::new(),
    ] {
        let (alice, bob, token) = linked(&mut d, false);
        assert_eq!(token, None);
        d.lose(alice);
        assert!(matches!(
            d.take(bob).as_slice(),
            [ServerMsg::LeaveSwarm { .. }]
        ));
    }
}

#[test]
fn a_resume_before_the_old_socket_is_noticed_closes_it() {
    let mut d = driver(Limits::default());
    let (alice, bob, token) = linked(&mut d, false);
    let alice2 = d.connect("alice");
    let (joined, _) = init(&mut d, alice2, token.as_ref());
    assert!(resumed(&joined));
    assert_eq!(d.closed, vec![(alice, SocketCloseReason::Resumed)]);
    assert!(d.take(alice).is_empty(), "no duplicate_identity error");
    // The old socket's late frames and its end change nothing.
    d.answer(alice, "a1");
    d.lose(alice);
    assert!(d.take(bob).is_empty());
    d.offer(bob, "a1");
    assert!(matches!(
        d.take(alice2).as_slice(),
        [ServerMsg::Offer { .. }]
    ));

    // A wrong token is a plain join: the old session is replaced as before.
    let alice3 = d.connect("alice");
    let (joined, _) = init(&mut d, alice3, Some(&ResumeToken::new("f".repeat(32))));
    assert!(!resumed(&joined));
    assert!(matches!(
        d.take(bob).as_slice(),
        [ServerMsg::LeaveSwarm { .. }, ..]
    ));
}

#[test]
fn holds_are_bounded() {
    // Frames kept for a held member: one too many ends the hold.
    let mut d = driver(Limits {
        max_held_frames: 2,
        ..Limits::default()
    });
    let (alice, bob, token) = linked(&mut d, false);
    d.lose(alice);
    for n in 0..3 {
        d.candidate(bob, "a1", n);
    }
    d.hub.handle_timeout(d.now);
    d.drain();
    assert!(
        matches!(d.take(bob).as_slice(), [ServerMsg::LeaveSwarm { .. }]),
        "an overflowed hold ends"
    );
    let alice2 = d.connect("alice");
    let (joined, _) = init(&mut d, alice2, token.as_ref());
    assert!(!resumed(&joined));

    // Held members per room: past the bound a member leaves at once.
    let mut d = driver(Limits {
        max_held_per_room: 1,
        ..Limits::default()
    });
    let (alice, bob, _) = linked(&mut d, false);
    let carol = d.connect("carol");
    init(&mut d, carol, Some(&ResumeToken::request()));
    d.take(alice);
    d.take(bob);
    d.lose(alice);
    d.lose(carol);
    let room = d.hub.room(&"r".into()).unwrap();
    let held: Vec<bool> = room.members.iter().map(|m| m.held).collect();
    assert_eq!(held, vec![true, false], "{room:?}");
    assert_eq!(room.members.len(), 2, "Carol left, Alice is held");
}
