//! Rollback netcode over the swarm (feature `ggrs`): headless Bevy apps (MinimalPlugins) run a
//! bevy_ggrs P2P session through `GgrsSocket` over real WebRTC (webrtc-rs on 127.0.0.1) and a
//! real signaling server. Every app records the checksum of the game state at each frame (the
//! last simulation of it wins, so rolled-back frames are recorded as resimulated); confirmed
//! frames must agree across apps, at 0 % and at 10 % simulated loss, and a player who leaves
//! is disconnected in the others' sessions, which play on.
#![cfg(feature = "ggrs")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)]

mod signaling;

use bevy::platform::collections::HashMap;
use bevy::prelude::*;
use bevy_fast_rtc::prelude::*;
use bevy_fast_rtc::rollback::{
    FastRtcGgrsPlugin, GgrsSocket, LeaveMatch, PlayerDisconnected, RollbackGuard, SessionEnd,
    SessionEnded, p2p_session_builder,
};
use bevy_ggrs::ggrs::{DesyncDetection, GgrsEvent, SessionState};
use bevy_ggrs::prelude::*;
use bevy_ggrs::{LoadWorld, LocalInputs, LocalPlayers};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

const SECRET: &str = "rollback-tests-0123456789abcdef0123456789abcdef";

type Cfg = GgrsConfig<u8, UserId>;

/// A player's box: rolled back.
#[derive(Component, Clone, Copy, Hash, Debug)]
struct Pos {
    handle: usize,
    x: i64,
    y: i64,
}

/// The simulated frame: rolled back.
#[derive(Resource, Clone, Copy, Default, Hash)]
struct Frame(u32);

/// Per app, not rolled back: the checksum of each frame's state, and counters.
#[derive(Resource, Default)]
struct Record {
    checksums: BTreeMap<u32, u64>,
    steps: u64,
    loads: u64,
    desyncs: u64,
    /// ggrs's own timeouts.
    disconnected: Vec<UserId>,
    /// The glue's disconnects of departed peers.
    left: Vec<UserId>,
    /// How this app's session ended, if it did.
    ended: Vec<SessionEnd>,
}

/// The settings of this app's match.
#[derive(Resource)]
struct Match {
    channel: ChannelId,
    players: usize,
    loss: f64,
    seed: u64,
    /// A match was started (there is no second one).
    played: bool,
}

fn read_inputs(mut commands: Commands, local: Res<LocalPlayers>, mut n: Local<u32>) {
    *n += 1;
    let inputs: HashMap<usize, u8> = local
        .0
        .iter()
        .map(|h| (*h, ((*n / 5 + *h as u32 * 3) % 16) as u8))
        .collect();
    commands.insert_resource(LocalInputs::<Cfg>(inputs));
}

/// The deterministic game: each input bit moves a box; then the state's checksum is recorded.
fn step(
    inputs: Res<PlayerInputs<Cfg>>,
    mut boxes: Query<&mut Pos>,
    mut frame: ResMut<Frame>,
    mut record: ResMut<Record>,
) {
    frame.0 += 1;
    record.steps += 1;
    let mut all: Vec<Pos> = Vec::new();
    for mut p in &mut boxes {
        let (input, _) = inputs[p.handle];
        p.x += i64::from(input & 1) - i64::from(input >> 1 & 1);
        p.y += i64::from(input >> 2 & 1) - i64::from(input >> 3 & 1);
        p.x = (p.x * 7 + p.y) % 100_003;
        all.push(*p);
    }
    all.sort_by_key(|p| p.handle);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (frame.0, &all).hash(&mut h);
    let checksum = h.finish();
    record.checksums.insert(frame.0, checksum);
}

/// Starts the match once every player is linked.
fn start_match(
    mut commands: Commands,
    mut swarm: ResMut<Swarm>,
    mut guard: ResMut<RollbackGuard>,
    session: Option<Res<Session<Cfg>>>,
    mut settings: ResMut<Match>,
) {
    if session.is_some() || swarm.peer_count() + 1 < settings.players || settings.played {
        return;
    }
    let builder = p2p_session_builder::<Cfg>(&swarm)
        .unwrap()
        .with_desync_detection_mode(DesyncDetection::On { interval: 10 })
        .with_input_delay(2);
    let socket = GgrsSocket::new(&mut swarm, &mut guard, settings.channel)
        .unwrap()
        .with_simulated_loss(settings.loss, settings.seed);
    let session = builder.start_p2p_session(socket).unwrap();
    for handle in 0..settings.players {
        commands.spawn((Pos { handle, x: 0, y: 0 }, Rollback));
    }
    commands.insert_resource(Session::P2P(session));
    settings.played = true;
}

fn watch_events(
    mut session: Option<ResMut<Session<Cfg>>>,
    mut left: MessageReader<PlayerDisconnected>,
    mut ended: MessageReader<SessionEnded>,
    mut record: ResMut<Record>,
) {
    for l in left.read() {
        record.left.push(l.peer.clone());
    }
    for e in ended.read() {
        record.ended.push(e.reason.clone());
    }
    let Some(Session::P2P(s)) = session.as_deref_mut() else {
        return;
    };
    for e in s.events() {
        match e {
            GgrsEvent::DesyncDetected { .. } => record.desyncs += 1,
            GgrsEvent::Disconnected { addr } => record.disconnected.push(addr),
            _ => {}
        }
    }
}

fn app(url: &str, name: &str, players: usize, loss: f64, seed: u64) -> App {
    let token = signaling::token(SECRET, name);
    let mut plugin = FastRtcPlugin::new("rollback")
        .with_signaling(url, token)
        .with_native(NativeConfig::loopback());
    let channel = plugin.add_channel(ChannelConfig::unreliable("ggrs"));
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, plugin, GgrsPlugin::<Cfg>::default()))
        .add_plugins(FastRtcGgrsPlugin::<Cfg>::default())
        .insert_resource(RollbackFrameRate(60))
        .rollback_component_with_copy::<Pos>()
        .rollback_resource_with_copy::<Frame>()
        .init_resource::<Frame>()
        .init_resource::<Record>()
        .insert_resource(Match {
            channel,
            players,
            loss,
            seed,
            played: false,
        })
        .add_systems(ReadInputs, read_inputs)
        .add_systems(GgrsSchedule, step)
        .add_systems(LoadWorld, |mut r: ResMut<Record>| r.loads += 1)
        .add_systems(Update, (start_match, watch_events));
    app
}

fn signaling_server() -> (tokio::runtime::Runtime, fast_rtc_server::ServerHandle) {
    signaling::signaling_server(SECRET)
}

/// The last of this app's frames (counted from 1) that is final: every input of it
/// confirmed, and simulated since. (ggrs counts frames from 0, and may confirm inputs of
/// frames ahead of the one it simulates, by the input delay.)
fn confirmed(app: &App) -> i32 {
    match app.world().get_resource::<Session<Cfg>>() {
        Some(Session::P2P(s)) => s.confirmed_frame().min(s.current_frame() - 1),
        _ => -1,
    }
}

fn running(app: &App) -> bool {
    matches!(
        app.world().get_resource::<Session<Cfg>>(),
        Some(Session::P2P(s)) if s.current_state() == SessionState::Running
    )
}

/// Updates every app (as fast as a game loop would, about 200 times a second) until `done`.
fn run_until(apps: &mut [App], timeout: Duration, mut done: impl FnMut(&[App]) -> bool) {
    let deadline = Instant::now() + timeout;
    while !done(apps) {
        assert!(Instant::now() < deadline, "timed out");
        for a in apps.iter_mut() {
            a.update();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Frames `1..=upto` recorded the same checksums in every app.
fn assert_agree(apps: &[App], upto: u32) {
    let first = &apps[0].world().resource::<Record>().checksums;
    for (i, a) in apps.iter().enumerate().skip(1) {
        let other = &a.world().resource::<Record>().checksums;
        for f in 1..=upto {
            assert_eq!(
                first.get(&f),
                other.get(&f),
                "app 0 and app {i} disagree at frame {f}"
            );
            assert!(first.contains_key(&f), "frame {f} never simulated");
        }
    }
}

fn report(label: &str, apps: &[App], seconds: f64) {
    for (i, a) in apps.iter().enumerate() {
        let r = a.world().resource::<Record>();
        let frames = *r.checksums.keys().last().unwrap_or(&0);
        println!(
            "ROLLBACK {label} app {i}: {frames} frames, {} steps ({} resimulated), {} rollbacks in {seconds:.1} s = {:.1} rollbacks/s, {} desyncs",
            r.steps,
            r.steps.saturating_sub(u64::from(frames)),
            r.loads,
            r.loads as f64 / seconds,
            r.desyncs
        );
    }
}

fn a_match(players: usize, loss: f64) {
    let (rt, server) = signaling_server();
    let url = server.ws_url();
    let mut apps: Vec<App> = (0..players)
        .map(|i| app(&url, &format!("p{i}"), players, loss, 7 + i as u64))
        .collect();
    run_until(&mut apps, Duration::from_secs(30), |apps| {
        apps.iter().all(running)
    });
    let started = Instant::now();
    run_until(&mut apps, Duration::from_secs(60), |apps| {
        apps.iter().all(|a| confirmed(a) >= 300)
    });
    // One more frame each, so a rollback to the last confirmed frame has been resimulated.
    for a in &mut apps {
        a.update();
    }
    let seconds = started.elapsed().as_secs_f64();
    assert_agree(&apps, 300);
    for a in &apps {
        let r = a.world().resource::<Record>();
        assert_eq!(r.desyncs, 0, "ggrs saw a desync");
        assert!(r.disconnected.is_empty(), "{:?}", r.disconnected);
    }
    report(
        &format!("{players} players, {:.0} % loss", loss * 100.0),
        &apps,
        seconds,
    );
    rt.block_on(server.shutdown()).unwrap();
}

#[test]
fn two_players_advance_300_frames_with_matching_checksums() {
    a_match(2, 0.0);
}

#[test]
fn three_players_agree_under_10_percent_loss() {
    a_match(3, 0.10);
}

/// Three apps p0, p1, p2 in a match, each past frame 60.
fn three_playing(url: &str) -> Vec<App> {
    let mut apps: Vec<App> = (0..3)
        .map(|i| app(url, &format!("p{i}"), 3, 0.0, 1))
        .collect();
    run_until(&mut apps, Duration::from_secs(30), |apps| {
        apps.iter().all(|a| confirmed(a) >= 60)
    });
    apps
}

/// A player leaves mid-match ([`LeaveMatch`]): its session stops, every peer acknowledges its
/// last input, it disconnects; the others see its link close, disconnect it in their sessions
/// at the same frame, and play on in agreement.
#[test]
fn a_player_who_leaves_is_disconnected_and_the_others_play_on() {
    let (rt, server) = signaling_server();
    let mut apps = three_playing(&server.ws_url());
    let mut gone = apps.pop().unwrap();
    gone.world_mut().write_message(LeaveMatch);
    let deadline = Instant::now() + Duration::from_secs(5);
    while gone.world().resource::<Record>().ended.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the leaver never ended its session"
        );
        gone.update();
        for a in &mut apps {
            a.update();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        gone.world().resource::<Record>().ended,
        vec![SessionEnd::Left { flushed: true }]
    );
    assert!(!gone.world().contains_resource::<Session<Cfg>>());
    drop(gone);
    let at_leave = apps.iter().map(confirmed).max().unwrap();
    run_until(&mut apps, Duration::from_secs(30), |apps| {
        apps.iter().all(|a| confirmed(a) >= at_leave + 120)
    });
    for a in &apps {
        assert!(running(a));
        let r = a.world().resource::<Record>();
        assert_eq!(r.left, vec![UserId::from("p2")]);
        assert_eq!(r.desyncs, 0);
        assert!(r.ended.is_empty(), "{:?}", r.ended);
    }
    let upto = u32::try_from(apps.iter().map(confirmed).min().unwrap()).unwrap();
    assert_agree(&apps, upto);
    rt.block_on(server.shutdown()).unwrap();
}

/// A partial partition: p2's link to p1 closes while p2 and p0 stay linked. p1 stops getting
/// p2's input and disconnects it at an early frame; p0 kept getting it and ran on. When p1's
/// report reaches p0, ggrs would have to roll p0 back further than its prediction window
/// (ggrs 0.13.0 panics there): p0's session ends instead, with the reason, and nobody
/// crashes. p1 and p2 each disconnect the player they lost and play on.
#[test]
fn a_rollback_beyond_the_window_ends_the_session_cleanly() {
    let (rt, server) = signaling_server();
    let mut apps = three_playing(&server.ws_url());
    assert!(
        apps[2]
            .world_mut()
            .resource_mut::<Swarm>()
            .kick(&UserId::from("p1"))
    );
    run_until(&mut apps, Duration::from_secs(10), |apps| {
        !apps[0].world().resource::<Record>().ended.is_empty()
    });
    let ended = apps[0].world().resource::<Record>().ended.clone();
    assert!(
        matches!(
            ended.as_slice(),
            [SessionEnd::RollbackOutOfWindow { frame, current, .. }] if current - frame > 8
        ),
        "{ended:?}"
    );
    assert!(!apps[0].world().contains_resource::<Session<Cfg>>());
    // The others go on (alone, once ggrs times out the member whose session ended).
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        for a in &mut apps {
            a.update();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for (i, a) in apps.iter().enumerate().skip(1) {
        assert!(running(a), "app {i} stopped");
        let r = a.world().resource::<Record>();
        assert!(r.ended.is_empty(), "app {i}: {:?}", r.ended);
        assert_eq!(r.desyncs, 0);
    }
    rt.block_on(server.shutdown()).unwrap();
}
