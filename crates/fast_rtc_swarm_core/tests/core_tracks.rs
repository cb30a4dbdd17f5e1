//! The swarm core's audio-track decisions against the real signaling hub and a fake backend, in
//! virtual time: announcements, what reaches the application, what is refused.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests pick the virtual clock's start

mod net;

use fast_rtc_protocol::UserId;
use fast_rtc_swarm_core::media::MAX_AUDIO_PACKET;
use fast_rtc_swarm_core::{
    ChannelId, PeerEvent, SwarmConfig, SwarmEvent, TrackError, TrackId, TrackState,
};
use net::Net;
use std::time::Duration;

fn config() -> (SwarmConfig, TrackId, TrackId) {
    let mut c = SwarmConfig::new("r");
    let voice = c.add_audio_track("voice");
    let music = c.add_audio_track("music");
    (c, voice, music)
}

/// The track events member `i` saw since event `from`, as short words.
fn track_events(net: &Net, i: usize, from: usize) -> Vec<String> {
    net.members[i].events[from..]
        .iter()
        .filter_map(|e| match e {
            SwarmEvent::TrackAdded { peer, track } => Some(format!("added {peer} {}", track.0)),
            SwarmEvent::TrackMuted { peer, track, muted } => {
                Some(format!("muted={muted} {peer} {}", track.0))
            }
            SwarmEvent::TrackRemoved { peer, track } => Some(format!("removed {peer} {}", track.0)),
            SwarmEvent::Close { peer, .. } => Some(format!("close {}", peer.user_id)),
            _ => None,
        })
        .collect()
}

fn audio_frames(net: &Net, i: usize, from: usize) -> Vec<(UserId, TrackId, Vec<i16>)> {
    net.members[i].events[from..]
        .iter()
        .filter_map(|e| match e {
            SwarmEvent::Audio {
                from,
                track,
                samples,
            } => Some((from.clone(), *track, samples.clone())),
            _ => None,
        })
        .collect()
}

/// Member `i`'s backend reports `event` on its link to `peer`, now.
fn report(net: &mut Net, i: usize, peer: &str, event: PeerEvent) {
    let id = net.members[i].swarm.link_to(&peer.into()).unwrap();
    let now = net.now;
    net.members[i].swarm.handle_peer(now, &id, event);
    net.flush(i);
}

fn linked() -> (Net, TrackId, TrackId) {
    let (c, voice, music) = config();
    let mut net = Net::new();
    net.join("m0", c.clone());
    net.run_for(Duration::from_millis(50));
    net.join("m1", c);
    net.run_for(Duration::from_millis(200));
    assert_eq!(net.opens(0), vec![UserId::from("m1")]);
    assert_eq!(net.opens(1), vec![UserId::from("m0")]);
    (net, voice, music)
}

#[test]
fn add_mute_unmute_remove_are_announced_and_only_live_audio_is_heard() {
    let (mut net, voice, music) = linked();
    let seen = net.members[1].events.len();
    net.members[0].swarm.add_track(voice).unwrap();
    net.flush(0);
    net.run_for(Duration::from_millis(20));
    assert_eq!(
        net.members[0]
            .swarm
            .send_audio(voice, vec![1, 2, 3])
            .unwrap(),
        1
    );
    net.flush(0);
    net.run_for(Duration::from_millis(20));
    assert_eq!(
        audio_frames(&net, 1, seen),
        vec![("m0".into(), voice, vec![1, 2, 3])]
    );
    assert_eq!(
        net.members[1].swarm.remote_track(&"m0".into(), voice),
        Some(TrackState::Live)
    );

    // Muted: nothing is sent, and audio that arrives after the announcement (RTP may overtake
    // the data channel's message, or trail it) is not heard.
    net.members[0].swarm.mute_track(voice, true).unwrap();
    assert_eq!(net.members[0].swarm.send_audio(voice, vec![4]).unwrap(), 0);
    net.flush(0);
    net.run_for(Duration::from_millis(20));
    let before = net.members[1].events.len();
    let late = PeerEvent::Audio {
        track: voice,
        samples: vec![9],
    };
    report(&mut net, 1, "m0", late);
    assert!(audio_frames(&net, 1, before).is_empty());

    net.members[0].swarm.mute_track(voice, false).unwrap();
    net.members[0].swarm.remove_track(voice).unwrap();
    assert_eq!(
        net.members[0].swarm.send_audio(voice, vec![5]),
        Err(TrackError::NotAdded(voice))
    );
    // Muting or removing what is not added is refused; re-adding works.
    assert_eq!(
        net.members[0].swarm.mute_track(music, true),
        Err(TrackError::NotAdded(music))
    );
    net.flush(0);
    net.run_for(Duration::from_millis(20));
    assert_eq!(
        track_events(&net, 1, seen),
        vec![
            "added m0 0",
            "muted=true m0 0",
            "muted=false m0 0",
            "removed m0 0"
        ]
    );
    assert_eq!(net.members[1].swarm.remote_track(&"m0".into(), voice), None);
    assert!(net.backend_errors.is_empty(), "{:?}", net.backend_errors);
}

#[test]
fn a_link_that_opens_later_learns_every_added_track_and_a_close_removes_them() {
    let (c, voice, music) = config();
    let mut net = Net::new();
    let a = net.join("m0", c.clone());
    net.run_for(Duration::from_millis(50));
    net.members[a].swarm.add_track(voice).unwrap();
    net.members[a].swarm.add_track(music).unwrap();
    net.members[a].swarm.mute_track(music, true).unwrap();
    net.flush(a);
    // Nothing open: nothing announced, nothing sent.
    assert_eq!(net.members[a].swarm.send_audio(voice, vec![1]).unwrap(), 0);
    let b = net.join("m1", c);
    net.run_for(Duration::from_millis(200));
    assert_eq!(
        track_events(&net, b, 0),
        vec!["added m0 0", "added m0 1", "muted=true m0 1"]
    );
    net.members[a].swarm.close();
    net.flush(a);
    net.run_for(Duration::from_millis(100));
    assert_eq!(
        track_events(&net, b, 0)[3..],
        ["removed m0 0", "removed m0 1", "close m0"]
    );
}

#[test]
fn undeclared_tracks_oversized_packets_and_unknown_names_are_refused() {
    let (mut net, voice, _) = linked();
    let nope = TrackId(7);
    assert_eq!(
        net.members[0].swarm.add_track(nope),
        Err(TrackError::NoSuchTrack(nope))
    );
    net.members[0].swarm.add_track(voice).unwrap();
    assert_eq!(
        net.members[0]
            .swarm
            .send_audio(voice, vec![0; MAX_AUDIO_PACKET + 1]),
        Err(TrackError::PacketTooLarge(MAX_AUDIO_PACKET + 1))
    );
    net.flush(0);
    net.run_for(Duration::from_millis(20));
    // A peer announcing a track this swarm does not declare, or audio on a track number it does
    // not declare, changes nothing.
    let seen = net.members[0].events.len();
    let bogus = "@fast/{\"type\":\"track\",\"name\":\"kazoo\",\"state\":\"live\"}";
    let message = PeerEvent::Message {
        channel: ChannelId::FAST,
        payload: bogus.into(),
    };
    report(&mut net, 0, "m1", message);
    let stray = PeerEvent::Audio {
        track: nope,
        samples: vec![1],
    };
    report(&mut net, 0, "m1", stray);
    assert!(track_events(&net, 0, seen).is_empty());
    assert!(audio_frames(&net, 0, seen).is_empty());
    assert!(net.backend_errors.is_empty(), "{:?}", net.backend_errors);
}

#[test]
fn a_link_replaced_after_a_signaling_reconnect_keeps_the_peers_tracks_quietly() {
    // As core.rs's replacement test: after m1's signaling reconnect new links replace the old
    // ones, m0's end of the new link opening 5 ms after the old one closed there (a handover).
    // m1's tracks go on over the new link: m0 is told nothing new, and still hears m1.
    let (mut net, voice, music) = linked();
    net.members[1].swarm.add_track(voice).unwrap();
    net.members[1].swarm.add_track(music).unwrap();
    net.flush(1);
    net.run_for(Duration::from_millis(20));
    let seen = net.members[0].events.len();
    net.drop_signaling(1);
    net.run_for(Duration::from_millis(100));
    net.open_delay.insert(0, Duration::from_millis(5));
    net.connect_signaling(1);
    net.run_for(Duration::from_millis(500));
    assert!(net.closes(0).is_empty(), "{:?}", net.closes(0));
    assert!(
        track_events(&net, 0, seen).is_empty(),
        "{:?}",
        track_events(&net, 0, seen)
    );
    assert_eq!(
        net.members[0].swarm.remote_track(&"m1".into(), voice),
        Some(TrackState::Live)
    );
    assert_eq!(net.members[1].swarm.send_audio(voice, vec![7]).unwrap(), 1);
    net.flush(1);
    net.run_for(Duration::from_millis(20));
    assert_eq!(
        audio_frames(&net, 0, seen),
        vec![("m1".into(), voice, vec![7])]
    );
}

/// The `@fast/` texts member `i` sent on `fast` from command `from` on.
fn fast_texts(net: &Net, i: usize, from: usize) -> Vec<String> {
    net.commands[from..]
        .iter()
        .filter_map(|(m, c)| match c {
            fast_rtc_swarm_core::PeerCommand::Send {
                channel: ChannelId::FAST,
                payload: fast_rtc_swarm_core::Payload::Text(t),
                ..
            } if *m == i && t.starts_with("@fast/") => Some(t.clone()),
            _ => None,
        })
        .collect()
}

/// The JS client names media sections with `stream` and `midOffer`: once the backend reports
/// the mids, every added track is named, after its `track` announcement, once per link; a
/// track that is not added is not.
#[test]
fn added_tracks_are_named_to_the_js_client_once_their_mids_are_known() {
    let (mut net, voice, music) = linked();
    net.members[0].swarm.add_track(voice).unwrap();
    net.flush(0);
    let from = net.commands.len();
    let mids = vec![(voice, "1".to_owned()), (music, "2".to_owned())];
    report(&mut net, 0, "m1", PeerEvent::TrackMids(mids.clone()));
    assert_eq!(
        fast_texts(&net, 0, from),
        vec![
            r#"@fast/{"streamName":"voice","transceiverNames":["voice"],"type":"stream"}"#,
            r#"@fast/{"mid":"1","transceiverName":"voice","type":"midOffer"}"#,
        ]
    );
    // Again (a renegotiation reports the same mids): nothing new. Adding music names it,
    // right after its announcement.
    let from = net.commands.len();
    report(&mut net, 0, "m1", PeerEvent::TrackMids(mids));
    net.members[0].swarm.add_track(music).unwrap();
    net.flush(0);
    assert_eq!(
        fast_texts(&net, 0, from),
        vec![
            r#"@fast/{"type":"track","name":"music","state":"live"}"#,
            r#"@fast/{"streamName":"music","transceiverNames":["music"],"type":"stream"}"#,
            r#"@fast/{"mid":"2","transceiverName":"music","type":"midOffer"}"#,
        ]
    );
}

/// A JS client never announces `track` states: its `midOffer` (as offerer) or
/// `transceiverRequest` (as answerer) for a declared name makes that track live; for a track
/// a peer of this crate already announced (muted, say), it changes nothing.
#[test]
fn the_js_clients_media_naming_makes_a_track_live_but_never_overrides_an_announcement() {
    let (mut net, voice, music) = linked();
    let seen = net.members[1].events.len();
    let text = |t: &str| PeerEvent::Message {
        channel: ChannelId::FAST,
        payload: fast_rtc_swarm_core::Payload::Text(t.into()),
    };
    report(
        &mut net,
        1,
        "m0",
        text(r#"@fast/{"type":"midOffer","mid":"0","transceiverName":"voice"}"#),
    );
    report(
        &mut net,
        1,
        "m0",
        text(r#"@fast/{"type":"transceiverRequest","transceiverName":"nope","kind":"audio"}"#),
    );
    assert_eq!(track_events(&net, 1, seen), vec!["added m0 0"]);
    assert_eq!(
        net.members[1].swarm.remote_track(&"m0".into(), voice),
        Some(TrackState::Live)
    );
    // m0 (this crate) adds music muted; a naming that follows leaves it muted.
    net.members[0].swarm.add_track(music).unwrap();
    net.members[0].swarm.mute_track(music, true).unwrap();
    net.flush(0);
    net.run_for(Duration::from_millis(20));
    report(
        &mut net,
        1,
        "m0",
        text(r#"@fast/{"type":"transceiverRequest","transceiverName":"music","kind":"audio"}"#),
    );
    assert_eq!(
        net.members[1].swarm.remote_track(&"m0".into(), music),
        Some(TrackState::Muted)
    );
}
