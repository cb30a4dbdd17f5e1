//! The hub's kick (the admin API), one input at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod support;

use fast_rtc_protocol::ServerMsg;
use fast_rtc_server::hub::SocketCloseReason;
use support::Driver;

#[test]
fn a_kick_tells_the_member_and_the_room_closes_its_socket_and_forgets_it() {
    let mut d = Driver::new();
    let alice = d.connect("alice");
    d.init(alice, "r");
    d.offer(alice, "a1");
    let bob = d.connect("bob");
    d.init(bob, "r");
    let carol = d.connect("carol");
    d.init(carol, "r");
    d.take(alice);
    d.take(bob);
    d.take(carol);

    let now = d.now;
    let kicked = d.hub.kick(now, &"r".into(), &"bob".into(), "spam");
    d.drain();
    assert_eq!(kicked, Some(bob));
    let told = ServerMsg::Kicked {
        user_id: "bob".into(),
        reason: "spam".into(),
    };
    assert_eq!(d.take(bob), vec![told.clone()]);
    assert_eq!(d.closed, vec![(bob, SocketCloseReason::Kicked)]);
    // Alice was linked to bob by a1: leaveSwarm, then the news. Carol had no link to him yet.
    assert_eq!(
        d.take(alice),
        vec![ServerMsg::LeaveSwarm { id: "a1".into() }, told.clone()]
    );
    assert_eq!(d.take(carol), vec![told]);
    let room = d.hub.room(&"r".into()).unwrap();
    assert_eq!(room.members.len(), 2);
    // The hub forgot bob's socket: its frames are ignored.
    d.offer(bob, "b9");
    assert!(d.take(bob).is_empty());
    assert_eq!(d.hub.connection_count(), 2);
    // Nobody of that name in that room, or no such room.
    assert_eq!(d.hub.kick(now, &"r".into(), &"bob".into(), ""), None);
    assert_eq!(d.hub.kick(now, &"other".into(), &"alice".into(), ""), None);
}
