//! Voice in the demo (feature `voice`, native): one declared audio track, "voice".
//!
//! - **Push-to-talk**: holding V unmutes this player's track and sends 20 ms frames (960
//!   samples at 48 kHz) through an `AudioSender`, paced by real time (`Time<Real>`), not by
//!   the frame rate; releasing V mutes it (`Swarm::mute_track`). With the `cpal` feature the
//!   frames come from the default microphone (the device paces them) and peers play on the
//!   default speaker; without it, or without a microphone, a test tone is sent.
//! - **Bots talk**: bot `i` holds push-to-talk for 1.6 s every 4 s (its own phase) with a tone
//!   of its own, `300 + 120 i` Hz.
//! - **Proximity voice**: every remote peer's `VoiceVolume` follows its avatar's distance from
//!   this player ([`proximity_gain`]).
//! - **Who talks**: a bar over each talking peer's square and a level meter per peer in the
//!   window; headless, [`Heard`] records each peer's decoded level and pitch, and a run with
//!   `--seconds` fails unless every bot was heard.

use super::{LocalPlayer, LocalSquare, Remote};
use bevy::platform::cell::SyncCell;
use bevy::prelude::*;
use bevy_fast_rtc::prelude::*;
use bevy_fast_rtc::swarm::AudioSender;
use bevy_fast_rtc::swarm::media::{FRAME_DURATION, FRAME_SAMPLES, SAMPLE_RATE, tone};
use std::collections::HashMap;
use std::time::Duration;

/// The track's name: every member of the room declares it (built with the same features).
pub const TRACK: &str = "voice";
/// Full volume up to this distance (arena units; the arena is 600 wide).
pub const NEAR: f32 = 80.0;
/// Silent from this distance on.
pub const FAR: f32 = 640.0;
/// Frames a stall may leave owed; older ones are skipped, not sent in a burst.
const MAX_CATCH_UP: u64 = 5;
/// The bots' tone level (of full scale).
const TONE_LEVEL: f32 = 0.25;

/// The gain of a peer's voice at `distance` from this player: 1 within [`NEAR`], then falling
/// as the square of the remaining way, `(1 - t)²` with `t = (d - NEAR) / (FAR - NEAR)`, to 0 at
/// [`FAR`] and beyond (half way between, a quarter of the volume). Squared, the fade sounds
/// even and most of it happens close by.
pub fn proximity_gain(distance: f32) -> f32 {
    if !distance.is_finite() || distance >= FAR {
        return 0.0;
    }
    let t = ((distance - NEAR) / (FAR - NEAR)).clamp(0.0, 1.0);
    (1.0 - t) * (1.0 - t)
}

/// Who holds this app's push-to-talk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Talker {
    /// The player, with the V key.
    Keyboard,
    /// Bot number `i`, on its schedule.
    Bot(usize),
    /// Nobody (the headless player: it listens).
    Listener,
}

impl Talker {
    /// The tone this talker sends when it has no microphone.
    fn frequency(self) -> f32 {
        match self {
            Talker::Bot(i) => 300.0 + 120.0 * i as f32,
            Talker::Keyboard | Talker::Listener => 250.0,
        }
    }

    /// Whether the bot holds push-to-talk at `t`: 1.6 s of every 4, bot `i` 1.3 s after bot
    /// `i - 1`.
    fn bot_talks(i: usize, t: Duration) -> bool {
        (t.as_secs_f32() + i as f32 * 1.3) % 4.0 < 1.6
    }
}

/// This app's voice: the track, its encoder, and push-to-talk.
#[derive(Resource)]
pub struct Voice {
    track: TrackId,
    talker: Talker,
    /// Made once the swarm has connected.
    sender: Option<SyncCell<AudioSender>>,
    /// The encoder could not be made: stop trying.
    failed: bool,
    talking: bool,
    /// When push-to-talk went down (real time), and the frames sent since.
    since: Duration,
    sent: u64,
    /// The tone's position, in samples.
    offset: usize,
    /// Send errors so far (the first is logged).
    errors: u64,
}

/// What this app heard of each peer (decoded `PeerAudio`, after its `VoiceVolume`).
#[derive(Resource, Default)]
pub struct Heard {
    peers: HashMap<UserId, HeardPeer>,
}

#[derive(Default)]
struct HeardPeer {
    frames: u64,
    peak: u16,
    /// Zero crossings and samples of the frames loud enough to count (a pitch estimate).
    crossings: u64,
    samples: u64,
}

impl Heard {
    fn record(&mut self, peer: &UserId, samples: &[i16]) {
        let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        let p = self.peers.entry(peer.clone()).or_default();
        p.frames += 1;
        p.peak = p.peak.max(peak);
        if peak > 1000 {
            p.crossings += samples
                .windows(2)
                .filter(|w| (w[0] < 0) != (w[1] < 0))
                .count() as u64;
            p.samples += samples.len() as u64;
        }
    }

    /// Peers heard at a non-zero level.
    pub fn count(&self) -> usize {
        self.peers.values().filter(|p| p.peak > 0).count()
    }

    /// Whether each bot of `names` (bot `i` is `names[i]`) was heard at a non-zero level and
    /// at its own pitch (the zero crossings within 15 % of its tone: the audio came from that
    /// bot's track, not another's), and a line per bot.
    pub fn check(&self, names: &[String]) -> (bool, Vec<String>) {
        let mut ok = true;
        let lines = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let expected = Talker::Bot(i).frequency();
                match self.peers.get(&UserId::from(name.as_str())) {
                    Some(p) if p.peak > 0 => {
                        let hz = if p.samples > 0 {
                            p.crossings as f64 / 2.0 / (p.samples as f64 / f64::from(SAMPLE_RATE))
                        } else {
                            0.0
                        };
                        let pitch_ok = (hz / f64::from(expected) - 1.0).abs() < 0.15;
                        ok &= pitch_ok;
                        format!(
                            "{} {name}: {} frames, peak {}, ~{hz:.0} Hz (its tone: {expected} Hz)",
                            if pitch_ok {
                                "heard"
                            } else {
                                "WRONG PITCH from"
                            },
                            p.frames,
                            p.peak
                        )
                    }
                    _ => {
                        ok = false;
                        format!("NOT heard {name}")
                    }
                }
            })
            .collect();
        (ok, lines)
    }
}

/// How loud a peer sounds right now (0..=1), on its entity, for the meter.
#[derive(Component, Default)]
struct VoiceLevel(f32);

/// The bar over a square that shows its player talking.
#[derive(Component)]
struct TalkMarker;

/// The voice line and meters in the window.
#[derive(Component)]
struct VoicePanel;

/// Declares the voice track on a player's plugin (before it is added).
pub fn declare(plugin: &mut FastRtcPlugin) -> TrackId {
    plugin.add_audio_track(TRACK)
}

/// Push-to-talk, proximity and listening for one app; `windowed` adds the markers and meters
/// (and, with `cpal`, the microphone and speaker).
pub fn add(app: &mut App, track: TrackId, talker: Talker, windowed: bool) {
    app.insert_resource(Voice {
        track,
        talker,
        sender: None,
        failed: false,
        talking: false,
        since: Duration::ZERO,
        sent: 0,
        offset: 0,
        errors: 0,
    })
    .init_resource::<Heard>()
    .add_systems(
        Update,
        (push_to_talk, send_voice, proximity, listen)
            .chain()
            .after(super::interpolate),
    );
    if windowed {
        #[cfg(feature = "cpal")]
        app.add_plugins(bevy_fast_rtc::voice::CpalVoicePlugin::default());
        app.add_systems(Startup, setup_panel)
            .add_systems(Update, (add_markers, show_talking).after(listen));
    }
}

/// Makes the encoder once the swarm runs (muted: nobody talks yet), then follows the V key or
/// the bot's schedule with `Swarm::mute_track`.
fn push_to_talk(
    mut voice: ResMut<Voice>,
    mut swarm: ResMut<Swarm>,
    keys: Option<Res<ButtonInput<KeyCode>>>,
    time: Res<Time<Real>>,
) {
    if voice.sender.is_none() {
        if voice.failed || swarm.handle().is_none() {
            return;
        }
        let made = swarm
            .audio_sender(voice.track)
            .and_then(|s| swarm.mute_track(voice.track, true).map(|()| s));
        match made {
            Ok(s) => voice.sender = Some(SyncCell::new(s)),
            Err(e) => {
                warn!("voice: no encoder for the voice track: {e}");
                voice.failed = true;
                return;
            }
        }
    }
    let want = match voice.talker {
        Talker::Keyboard => keys.is_some_and(|k| k.pressed(KeyCode::KeyV)),
        Talker::Bot(i) => Talker::bot_talks(i, time.elapsed()),
        Talker::Listener => false,
    };
    if want == voice.talking {
        return;
    }
    match swarm.mute_track(voice.track, !want) {
        Ok(()) => {
            voice.talking = want;
            voice.since = time.elapsed();
            voice.sent = 0;
        }
        Err(e) => warn!("voice: push-to-talk: {e}"),
    }
}

/// While talking, sends every frame real time has made due since push-to-talk went down (one
/// per 20 ms; after a stall at most [`MAX_CATCH_UP`]): the microphone's with `cpal`, else the
/// talker's tone.
fn send_voice(
    mut voice: ResMut<Voice>,
    time: Res<Time<Real>>,
    #[cfg(feature = "cpal")] mic: Option<ResMut<bevy_fast_rtc::voice::Microphone>>,
) {
    let voice = &mut *voice;
    #[cfg(feature = "cpal")]
    if let Some(mut mic) = mic {
        // The device paces the microphone's frames; drop them while V is up.
        let result = match (&mut voice.sender, voice.talking) {
            (Some(sender), true) => mic.send_to(sender.get()).map(|_| ()),
            _ => {
                mic.discard();
                Ok(())
            }
        };
        if let Err(e) = result {
            send_failed(&mut voice.errors, e);
        }
        return;
    }
    let (Some(sender), true) = (&mut voice.sender, voice.talking) else {
        return;
    };
    let held = time.elapsed().saturating_sub(voice.since);
    let due = (held.as_micros() / FRAME_DURATION.as_micros()) as u64 + 1;
    voice.sent = voice.sent.max(due.saturating_sub(MAX_CATCH_UP));
    let frequency = voice.talker.frequency();
    while voice.sent < due {
        let frame = tone(frequency, TONE_LEVEL, voice.offset, FRAME_SAMPLES);
        voice.offset = (voice.offset + FRAME_SAMPLES) % (SAMPLE_RATE as usize * 60);
        voice.sent += 1;
        if let Err(e) = sender.get().send(&frame) {
            send_failed(&mut voice.errors, e);
            return;
        }
    }
}

fn send_failed(errors: &mut u64, e: bevy_fast_rtc::swarm::TrackError) {
    if *errors == 0 {
        warn!("voice: a frame was not sent: {e}");
    }
    *errors += 1;
}

/// Proximity voice: each peer's `VoiceVolume` from its avatar's distance to this player.
fn proximity(me: Res<LocalPlayer>, mut peers: Query<(&Remote, &mut VoiceVolume)>) {
    for (remote, mut volume) in &mut peers {
        let gain = proximity_gain(remote.shown.distance(me.position));
        volume.set_if_neq(VoiceVolume(gain));
    }
}

/// Records what was heard of each peer and keeps its meter (a peak that decays).
fn listen(
    mut commands: Commands,
    mut audio: MessageReader<PeerAudio>,
    mut heard: ResMut<Heard>,
    mut levels: Query<&mut VoiceLevel>,
    time: Res<Time<Real>>,
) {
    let decay = (-time.delta_secs() * 8.0).exp();
    for mut level in &mut levels {
        level.0 *= decay;
    }
    for frame in audio.read() {
        heard.record(&frame.peer, &frame.samples);
        let peak = frame
            .samples
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        let level = f32::from(peak) / f32::from(i16::MAX);
        let Some(entity) = frame.entity else { continue };
        match levels.get_mut(entity) {
            Ok(mut l) => l.0 = l.0.max(level),
            Err(_) => {
                commands.entity(entity).try_insert(VoiceLevel(level));
            }
        }
    }
}

fn setup_panel(mut commands: Commands) {
    commands.spawn((
        Text::new(""),
        TextFont {
            font_size: FontSize::Px(16.0),
            ..default()
        },
        Node {
            position_type: PositionType::Absolute,
            bottom: Val::Px(10.0),
            left: Val::Px(10.0),
            ..default()
        },
        VoicePanel,
    ));
}

/// Squares that just got their sprite: this player's and each peer's.
type NewSquares = (Or<(With<LocalSquare>, With<Remote>)>, Added<Sprite>);

/// A talk bar over every square: this player's and each peer's (once it has one).
fn add_markers(mut commands: Commands, squares: Query<Entity, NewSquares>) {
    for square in &squares {
        commands.entity(square).with_child((
            Sprite::from_color(Color::WHITE, Vec2::new(36.0, 6.0)),
            Transform::from_xyz(0.0, 28.0, 0.5),
            Visibility::Hidden,
            TalkMarker,
        ));
    }
}

/// The bars (as wide as the level), and the panel: push-to-talk, the devices, and a meter and
/// the proximity volume per peer.
#[allow(clippy::too_many_arguments)]
fn show_talking(
    voice: Res<Voice>,
    peers: Query<(&Peer, &VoiceVolume, Option<&VoiceLevel>)>,
    local: Query<(), With<LocalSquare>>,
    mut markers: Query<(&ChildOf, &mut Transform, &mut Visibility), With<TalkMarker>>,
    mut panel: Query<&mut Text, With<VoicePanel>>,
    #[cfg(feature = "cpal")] mic: Option<Res<bevy_fast_rtc::voice::Microphone>>,
    #[cfg(feature = "cpal")] speaker: Option<Res<bevy_fast_rtc::voice::Speaker>>,
    #[cfg(feature = "cpal")] devices: Option<Res<bevy_fast_rtc::voice::AudioDevices>>,
) {
    for (parent, mut transform, mut visibility) in &mut markers {
        let level = if local.contains(parent.parent()) {
            if voice.talking { 1.0 } else { 0.0 }
        } else {
            peers
                .get(parent.parent())
                .ok()
                .and_then(|(_, _, l)| l.map(|l| l.0))
                .unwrap_or(0.0)
        };
        let shown = if level > 0.01 {
            Visibility::Inherited
        } else {
            Visibility::Hidden
        };
        visibility.set_if_neq(shown);
        transform.scale.x = (level * 4.0).clamp(0.15, 1.0);
    }
    let state = if voice.failed {
        "voice unavailable"
    } else if voice.talking {
        "TALKING"
    } else {
        "hold V to talk"
    };
    #[cfg(not(feature = "cpal"))]
    let devices_line =
        "no microphone or speaker: a test tone is sent (build with --features cpal)".to_owned();
    #[cfg(feature = "cpal")]
    let devices_line = {
        let why = |e: Option<&bevy_fast_rtc::voice::AudioDeviceError>| {
            e.map_or_else(|| "none".to_owned(), |e| format!("none ({e})"))
        };
        let mic = mic.map_or_else(
            || {
                format!(
                    "{}, sending a test tone",
                    why(devices.as_ref().and_then(|d| d.microphone.as_ref()))
                )
            },
            |m| m.device().to_owned(),
        );
        let speaker = speaker.map_or_else(
            || why(devices.as_ref().and_then(|d| d.speaker.as_ref())),
            |s| s.device().to_owned(),
        );
        format!("mic: {mic}; speaker: {speaker}")
    };
    let mut lines = vec![format!("voice: {state}"), format!("  {devices_line}")];
    let mut list: Vec<_> = peers.iter().collect();
    list.sort_by(|a, b| a.0.user_id.cmp(&b.0.user_id));
    for (peer, volume, level) in list {
        let level = level.map_or(0.0, |l| l.0);
        let bars = ((level * 40.0).ceil() as usize).min(10);
        lines.push(format!(
            "  {}  [{}{}]  volume {:.2}",
            peer.user_id,
            "#".repeat(bars),
            ".".repeat(10 - bars),
            volume.0
        ));
    }
    for mut text in &mut panel {
        text.0 = lines.join("\n");
    }
}
