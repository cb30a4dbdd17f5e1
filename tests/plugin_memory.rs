//! The plugin on the in-memory backend with virtual time: headless apps (MinimalPlugins) in one
//! room, no sockets and no WebRTC, each test in milliseconds. What the plugin does with the
//! swarm's events (entities, messages, typed channels, errors, timeouts) is checked here; the
//! real-WebRTC behaviour is checked by `tests/plugin.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod memory_room;
mod seen;

use bevy::prelude::*;
use bevy_fast_rtc::prelude::*;
use bevy_fast_rtc::swarm::{CloseReason, SendError};
use bevy_fast_rtc::{FastRtcError, Swarm};
use memory_room::Room;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Position {
    from: String,
    x: f32,
}

#[derive(Resource)]
struct Me(String);

type Seen = seen::Seen<Position>;

/// Channel ids of the apps' plugin (the same in every app).
struct Channels {
    state: ChannelId,
    chat: ChannelId,
}

fn app(room: &Room, name: &str) -> (App, Channels) {
    let mut plugin = room.plugin();
    let state = plugin.add_channel(ChannelConfig::unreliable("state"));
    let chat = plugin.add_channel(ChannelConfig::reliable("chat"));
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, plugin))
        .add_swarm_message::<Position>(state)
        .insert_resource(Me(name.to_owned()))
        .init_resource::<Seen>()
        .add_systems(Update, seen::record::<Position>);
    (app, Channels { state, chat })
}

/// A room of `names`, every pair linked.
fn meshed(names: &[&str]) -> (Room, Channels) {
    let mut room = Room::new();
    let mut channels = None;
    for name in names {
        let (app, c) = app(&room, name);
        room.join(name, app);
        channels = Some(c);
    }
    let n = names.len();
    let linked = room.run_until(500, |room| {
        (0..n).all(|i| room.app(i).world().resource::<Swarm>().peer_count() == n - 1)
    });
    assert!(linked, "the mesh did not form");
    (room, channels.unwrap())
}

fn seen(room: &mut Room, i: usize) -> &Seen {
    room.app(i).world().resource::<Seen>()
}

#[test]
fn peers_open_as_entities_and_close_when_one_leaves() {
    let (mut room, _) = meshed(&["ann", "bob", "cyd"]);
    for i in 0..3 {
        let mut opened = seen(&mut room, i).opened.clone();
        opened.sort();
        let mut want: Vec<UserId> = ["ann", "bob", "cyd"]
            .iter()
            .filter(|n| **n != room.members[i].name.as_str())
            .map(|n| UserId::from(*n))
            .collect();
        want.sort();
        assert_eq!(opened, want, "member {i}");
        let world = room.app(i).world_mut();
        let mut peers = world.query::<&Peer>();
        assert_eq!(
            peers.iter(world).count(),
            2,
            "member {i}: one entity per peer"
        );
    }

    room.app(2).world_mut().resource_mut::<Swarm>().disconnect();
    let gone = room.run_until(500, |room| (0..2).all(|i| !seen(room, i).closed.is_empty()));
    assert!(gone, "the others did not see cyd leave");
    for i in 0..2 {
        assert_eq!(
            seen(&mut room, i).closed,
            vec![(UserId::from("cyd"), CloseReason::Remote)],
            "member {i}: cyd's @fast/ close notice names the reason"
        );
        room.run(2); // the despawn is applied at the end of the frame that read the close
        let world = room.app(i).world_mut();
        let mut peers = world.query::<&Peer>();
        let left: Vec<String> = peers.iter(world).map(|p| p.user_id.to_string()).collect();
        assert_eq!(left.len(), 1, "member {i}: {left:?}");
        assert_ne!(left[0], "cyd");
    }
}

fn send_position(me: Res<Me>, mut broadcast: SwarmBroadcast<Position>) {
    broadcast.send(&Position {
        from: me.0.clone(),
        x: 1.5,
    });
}

#[test]
fn typed_messages_reach_every_other_member_decoded() {
    let (mut room, _) = meshed(&["ann", "bob", "cyd"]);
    for m in &mut room.members {
        m.app.add_systems(Update, send_position);
    }
    let all = room.run_until(500, |room| {
        (0..3).all(|i| {
            let from: std::collections::BTreeSet<String> = seen(room, i)
                .values
                .iter()
                .map(|(peer, _)| peer.to_string())
                .collect();
            from.len() == 2
        })
    });
    assert!(all, "not every member heard from both others");
    for i in 0..3 {
        let me = room.members[i].name.to_string();
        for (peer, position) in &seen(&mut room, i).values {
            assert_eq!(position.from, peer.to_string(), "the sender is who sent it");
            assert_ne!(position.from, me, "no echo of one's own message");
            assert_eq!(position.x, 1.5);
        }
        assert!(seen(&mut room, i).errors.is_empty());
    }
}

#[test]
fn raw_payloads_arrive_unchanged_on_their_channel() {
    let (mut room, channels) = meshed(&["ann", "bob"]);
    let bob = UserId::from("bob");
    {
        let mut swarm = room.app(0).world_mut().resource_mut::<Swarm>();
        swarm
            .queue(
                Some(bob.clone()),
                channels.chat,
                Payload::Text("hi bob".into()),
            )
            .unwrap();
        swarm
            .queue(None, ChannelId::FAST, Payload::Binary(vec![0, 1, 2, 255]))
            .unwrap();
    }
    let arrived = room.run_until(500, |room| seen(room, 1).raw.len() >= 2);
    assert!(arrived);
    let ann = UserId::from("ann");
    assert_eq!(
        seen(&mut room, 1).raw,
        vec![
            (ann.clone(), channels.chat, Payload::Text("hi bob".into())),
            (ann, ChannelId::FAST, Payload::Binary(vec![0, 1, 2, 255])),
        ]
    );
}

#[test]
fn bytes_that_do_not_decode_are_one_error_and_nothing_else() {
    let (mut room, channels) = meshed(&["ann", "bob"]);
    for _ in 0..3 {
        room.app(0)
            .world_mut()
            .resource_mut::<Swarm>()
            .queue(None, channels.state, Payload::Binary(vec![0xff; 9]))
            .unwrap();
    }
    let reported = room.run_until(500, |room| !seen(room, 1).errors.is_empty());
    assert!(reported, "bad bytes were not reported");
    room.run(20);
    let seen = seen(&mut room, 1);
    assert!(seen.values.is_empty(), "nothing decoded: {:?}", seen.values);
    assert_eq!(
        seen.errors.len(),
        1,
        "once per peer and type: {:?}",
        seen.errors
    );
    let error = &seen.errors[0];
    assert_eq!(error.peer, Some(UserId::from("ann")));
    assert!(
        matches!(error.error, FastRtcError::Decode { type_name, .. } if type_name.contains("Position")),
        "{:?}",
        error.error
    );
}

/// A full tap drops its oldest message, as a datagram socket would: on an unreliable channel
/// quietly (counted), on a reliable one also as one `TapOverflow` error per message dropped,
/// since its sender was told it would arrive.
#[test]
fn a_full_tap_on_a_reliable_channel_reports_every_message_it_drops() {
    let (mut room, channels) = meshed(&["ann", "bob"]);
    let (chat_tap, state_tap) = {
        let mut swarm = room.app(1).world_mut().resource_mut::<Swarm>();
        (
            swarm.tap_channel(channels.chat, 2),
            swarm.tap_channel(channels.state, 2),
        )
    };
    {
        let mut swarm = room.app(0).world_mut().resource_mut::<Swarm>();
        for i in 0..5u8 {
            swarm
                .queue(None, channels.chat, Payload::Binary(vec![i]))
                .unwrap();
            swarm
                .queue(None, channels.state, Payload::Binary(vec![i]))
                .unwrap();
        }
    }
    let dropped = room.run_until(500, |_| chat_tap.dropped() == 3 && state_tap.dropped() == 3);
    assert!(dropped, "{} {}", chat_tap.dropped(), state_tap.dropped());
    room.run(5);
    let got: Vec<_> = chat_tap.drain().into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        got,
        vec![Payload::Binary(vec![3]), Payload::Binary(vec![4])]
    );
    let errors = &seen(&mut room, 1).errors;
    assert_eq!(
        errors.len(),
        3,
        "one per dropped reliable message: {errors:?}"
    );
    for e in errors {
        assert_eq!(e.peer, Some(UserId::from("ann")));
        assert_eq!(
            e.error,
            FastRtcError::TapOverflow {
                channel: channels.chat
            }
        );
    }
}

#[test]
fn sends_to_a_peer_who_is_not_there_are_errors() {
    let (mut room, channels) = meshed(&["ann", "bob"]);
    room.app(0)
        .world_mut()
        .resource_mut::<Swarm>()
        .queue(Some("zed".into()), channels.chat, Payload::Text("?".into()))
        .unwrap();
    let reported = room.run_until(100, |room| !seen(room, 0).errors.is_empty());
    assert!(reported);
    let error = &seen(&mut room, 0).errors[0];
    assert_eq!(error.peer, Some(UserId::from("zed")));
    assert!(
        matches!(error.error, FastRtcError::Send(_)),
        "{:?}",
        error.error
    );
}

#[test]
fn virtual_time_drives_pings_and_handshake_timeouts() {
    let (mut room, _) = meshed(&["ann", "bob"]);
    let rtt = |room: &mut Room| {
        let world = room.app(0).world_mut();
        let mut peers = world.query::<&Peer>();
        peers.iter(world).next().and_then(|p| p.rtt)
    };
    // The first ping goes out when the link opens; its pong arrives with no virtual time
    // elapsed, so the RTT is exactly zero.
    assert!(room.run_until(500, |room| rtt(room).is_some()));
    assert_eq!(rtt(&mut room), Some(Duration::ZERO));

    // A joiner whose answers never reach the room: its handshakes stay open until virtual
    // time passes the handshake timeout, then they are closed.
    let (app, _) = app(&room, "cyd");
    let cyd = room.join("cyd", app);
    room.members[cyd].drop_answers = true;
    room.run(50);
    let handle = room.handle(cyd).unwrap();
    let before = handle.connection_count();
    // One parked offer plus the two handshakes cyd answered, whose answers were lost.
    assert_eq!(before, 3, "cyd's connections before the timeout");
    room.clock.advance(Duration::from_secs(11));
    let closed = room.run_until(500, |_| handle.connection_count() == 1);
    assert!(
        closed,
        "cyd still has {} connections",
        handle.connection_count()
    );
    assert!(
        seen(&mut room, cyd).opened.is_empty(),
        "nothing ever opened for cyd"
    );
}

#[test]
fn a_kicked_peer_is_closed_at_both_ends_and_the_others_stay() {
    let (mut room, _) = meshed(&["ann", "bob", "cyd"]);
    let bob = UserId::from("bob");
    let kicked = room.app(0).world_mut().resource_mut::<Swarm>().kick(&bob);
    assert!(kicked, "ann had a link to bob");
    let gone = room.run_until(200, |room| {
        !seen(room, 0).closed.is_empty() && !seen(room, 1).closed.is_empty()
    });
    assert!(gone, "the kick was not seen at both ends");
    assert_eq!(
        seen(&mut room, 0).closed,
        vec![(bob.clone(), CloseReason::Local)]
    );
    assert_eq!(
        seen(&mut room, 1).closed,
        vec![(UserId::from("ann"), CloseReason::Remote)]
    );
    room.run(20);
    let peers = |room: &mut Room, i: usize| room.app(i).world().resource::<Swarm>().peer_count();
    assert_eq!(peers(&mut room, 0), 1, "ann keeps cyd");
    assert_eq!(peers(&mut room, 1), 1, "bob keeps cyd");
    assert_eq!(peers(&mut room, 2), 2, "cyd keeps both");
    assert!(seen(&mut room, 2).closed.is_empty());
    // A second kick finds no link.
    assert!(!room.app(0).world_mut().resource_mut::<Swarm>().kick(&bob));
}

#[test]
fn a_message_over_the_size_limit_is_a_send_error_for_every_target() {
    let (mut room, channels) = meshed(&["ann", "bob"]);
    // One data-channel message on an unreliable channel, 16 MiB on a reliable one.
    let cases = [
        (channels.state, 70_000, 65_536),
        (channels.chat, (16 << 20) + 1, 16 << 20),
    ];
    for (n, (channel, len, max)) in cases.into_iter().enumerate() {
        room.app(0)
            .world_mut()
            .resource_mut::<Swarm>()
            .queue(None, channel, Payload::Binary(vec![1; len]))
            .unwrap();
        let reported = room.run_until(100, |room| seen(room, 0).errors.len() > n);
        assert!(reported, "the oversized broadcast was not reported");
        let error = &seen(&mut room, 0).errors[n];
        assert!(
            matches!(error.error, FastRtcError::Send(SendError::TooLarge { len: l, max: m }) if l == len && m == max),
            "{:?}",
            error.error
        );
    }
    room.run(10);
    assert!(seen(&mut room, 1).raw.is_empty(), "nothing was sent");
}

#[test]
fn a_large_message_on_a_reliable_channel_arrives_whole() {
    let (mut room, channels) = meshed(&["ann", "bob"]);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    room.app(0)
        .world_mut()
        .resource_mut::<Swarm>()
        .queue(None, channels.chat, Payload::Binary(big.clone()))
        .unwrap();
    let arrived = room.run_until(200, |room| !seen(room, 1).raw.is_empty());
    assert!(arrived, "the 3 MB message did not arrive");
    let raw = &seen(&mut room, 1).raw;
    assert_eq!(raw.len(), 1);
    assert!(raw[0].2 == Payload::Binary(big), "it arrived changed");
    assert!(seen(&mut room, 1).errors.is_empty());
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Chat(String);

#[test]
#[should_panic(expected = "Declare a channel for each type with `FastRtcPlugin::add_channel`")]
fn a_second_type_on_one_channel_is_refused_when_registered() {
    let room = Room::new();
    let mut plugin = room.plugin();
    let state = plugin.add_channel(ChannelConfig::unreliable("state"));
    App::new()
        .add_plugins((MinimalPlugins, plugin))
        .add_swarm_message::<Position>(state)
        .add_swarm_message::<Chat>(state);
}

#[test]
fn registering_one_type_twice_or_types_on_their_own_channels_is_fine() {
    let room = Room::new();
    let mut plugin = room.plugin();
    let state = plugin.add_channel(ChannelConfig::unreliable("state"));
    let chat = plugin.add_channel(ChannelConfig::reliable("chat"));
    App::new()
        .add_plugins((MinimalPlugins, plugin))
        .add_swarm_message::<Position>(state)
        .add_swarm_message::<Position>(state)
        .add_swarm_message::<Chat>(chat);
}

#[test]
fn the_plugin_builders_reach_the_swarm_config() {
    let room = Room::new();
    let plugin = room
        .plugin()
        .with_max_message_size(1 << 20)
        .with_ping_interval(Duration::from_secs(3))
        .with_peer_buffer(2);
    let config = plugin.swarm_config();
    assert_eq!(config.max_message_size, 1 << 20);
    assert_eq!(config.ping_interval, Duration::from_secs(3));
    assert_eq!(config.peer_buffer, 2);
    let mut whole = bevy_fast_rtc::swarm::SwarmConfig::new("other");
    whole.sctp_message_size = 1 << 17;
    let plugin = plugin.with_swarm_config(whole);
    assert_eq!(plugin.swarm_config().sctp_message_size, 1 << 17);
    assert_eq!(plugin.swarm_config().room_id.as_str(), "other");
}

#[test]
fn a_smaller_max_message_size_from_the_plugin_refuses_bigger_sends() {
    let mut room = Room::new();
    let mut chat = None;
    for name in ["ann", "bob"] {
        let mut plugin = room.plugin().with_max_message_size(1000);
        chat = Some(plugin.add_channel(ChannelConfig::reliable("chat")));
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, plugin))
            .add_swarm_message::<Position>(ChannelId::FAST)
            .insert_resource(Me(name.to_owned()))
            .init_resource::<Seen>()
            .add_systems(Update, seen::record::<Position>);
        room.join(name, app);
    }
    let linked = room.run_until(500, |room| {
        (0..2).all(|i| room.app(i).world().resource::<Swarm>().peer_count() == 1)
    });
    assert!(linked, "the mesh did not form");
    room.app(0)
        .world_mut()
        .resource_mut::<Swarm>()
        .queue(None, chat.unwrap(), Payload::Binary(vec![1; 2000]))
        .unwrap();
    let reported = room.run_until(100, |room| !seen(room, 0).errors.is_empty());
    assert!(reported, "the oversized broadcast was not reported");
    let error = &seen(&mut room, 0).errors[0];
    assert!(
        matches!(
            error.error,
            FastRtcError::Send(SendError::TooLarge {
                len: 2000,
                max: 1000
            })
        ),
        "{:?}",
        error.error
    );
}
