//! Voice in the plugin: two headless Bevy apps over real WebRTC (webrtc-rs on 127.0.0.1). One
//! talks (a 440 Hz tone through `Swarm::audio_sender`); the other sees the track as
//! `PeerTrack` messages and hears `PeerAudio` frames scaled by the talker's `VoiceVolume`
//! (proximity voice), nothing at volume 0 (mute-peer), and the talker's mute (push-to-talk).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)]

mod signaling;

use bevy::prelude::*;
use bevy_fast_rtc::prelude::*;
use bevy_fast_rtc::swarm::media::{FRAME_DURATION, FRAME_SAMPLES, tone};
use std::time::{Duration, Instant};

const SECRET: &str = "voice-tests-0123456789abcdef0123456789abcdef";

/// What the listening app heard: the peak of each frame, and the track changes.
#[derive(Resource, Default)]
struct Heard {
    peaks: Vec<u16>,
    changes: Vec<TrackChange>,
}

fn record(
    mut heard: ResMut<Heard>,
    mut audio: MessageReader<PeerAudio>,
    mut tracks: MessageReader<PeerTrack>,
) {
    for frame in audio.read() {
        let peak = frame
            .samples
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        heard.peaks.push(peak);
    }
    for t in tracks.read() {
        heard.changes.push(t.change);
    }
}

fn app(url: &str, name: &str) -> (App, TrackId) {
    let token = signaling::token(SECRET, name);
    let mut plugin = FastRtcPlugin::new("voice-room")
        .with_signaling(url, token)
        .with_native(NativeConfig::loopback());
    let voice = plugin.add_audio_track("voice");
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, plugin))
        .init_resource::<Heard>()
        .add_systems(Update, record);
    (app, voice)
}

/// The talking app's encoder and where its tone is.
struct Talker {
    sender: bevy_fast_rtc::swarm::AudioSender,
    offset: usize,
}

impl Talker {
    /// Updates both apps for `ms` milliseconds, sending one tone frame per 20 ms.
    fn talk_for(&mut self, apps: &mut [App; 2], ms: u64) {
        let start = Instant::now();
        let mut next = start;
        while start.elapsed() < Duration::from_millis(ms) {
            if Instant::now() >= next {
                self.sender
                    .send(&tone(440.0, 0.5, self.offset, FRAME_SAMPLES))
                    .unwrap();
                self.offset += FRAME_SAMPLES;
                next += FRAME_DURATION;
            }
            for a in apps.iter_mut() {
                a.update();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn heard(app: &mut App) -> (Vec<u16>, Vec<TrackChange>) {
    let mut h = app.world_mut().resource_mut::<Heard>();
    (std::mem::take(&mut h.peaks), std::mem::take(&mut h.changes))
}

fn median(mut v: Vec<u16>) -> u16 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

#[test]
fn a_peer_is_heard_at_its_volume_not_at_all_at_zero_and_its_mute_is_seen() {
    let (_rt, server) = signaling::signaling_server(SECRET);
    let url = server.ws_url();
    let (a, voice) = app(&url, "talker");
    let (b, _) = app(&url, "listener");
    let mut apps = [a, b];
    let deadline = Instant::now() + Duration::from_secs(15);
    while apps
        .iter()
        .any(|a| a.world().resource::<Swarm>().peer_count() < 1)
    {
        assert!(Instant::now() < deadline, "the apps did not meet");
        for a in apps.iter_mut() {
            a.update();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let sender = apps[0]
        .world_mut()
        .resource_mut::<Swarm>()
        .audio_sender(voice)
        .unwrap();
    let mut talker = Talker { sender, offset: 0 };

    // At full volume: the tone's level (half of full scale) comes through the codec.
    talker.talk_for(&mut apps, 800);
    let (peaks, changes) = heard(&mut apps[1]);
    assert_eq!(changes, vec![TrackChange::Added]);
    assert!(peaks.len() >= 20, "{} frames heard", peaks.len());
    let full = median(peaks);
    assert!((13_000..=20_000).contains(&full), "full-volume peak {full}");

    // Proximity: a quarter of the volume, a quarter of the level.
    let talker_entity = apps[1]
        .world()
        .resource::<Swarm>()
        .peer_entity(&"talker".into())
        .unwrap();
    apps[1]
        .world_mut()
        .entity_mut(talker_entity)
        .insert(VoiceVolume(0.25));
    talker.talk_for(&mut apps, 600);
    let (peaks, _) = heard(&mut apps[1]);
    let quarter = median(peaks[5..].to_vec());
    assert!(
        (f32::from(quarter) / f32::from(full) - 0.25).abs() < 0.05,
        "quarter-volume peak {quarter} against {full}"
    );

    // Muted peer: not a frame.
    apps[1]
        .world_mut()
        .entity_mut(talker_entity)
        .insert(VoiceVolume(0.0));
    talker.talk_for(&mut apps, 100);
    heard(&mut apps[1]);
    talker.talk_for(&mut apps, 400);
    assert!(
        heard(&mut apps[1]).0.is_empty(),
        "a peer at volume 0 was heard"
    );

    // Push-to-talk released: the talker mutes itself; the listener is told.
    apps[1]
        .world_mut()
        .entity_mut(talker_entity)
        .insert(VoiceVolume(1.0));
    apps[0]
        .world_mut()
        .resource_mut::<Swarm>()
        .mute_track(voice, true)
        .unwrap();
    talker.talk_for(&mut apps, 400);
    let (_, changes) = heard(&mut apps[1]);
    assert_eq!(changes, vec![TrackChange::Muted]);
    talker.talk_for(&mut apps, 300);
    assert!(heard(&mut apps[1]).0.is_empty(), "a muted talker was heard");
}
