//! A rollback box game: 2-4 players push boxes around an arena with the arrow keys (or WASD);
//! bevy_ggrs predicts remote inputs and rolls back when the real ones arrive, over the swarm
//! (`bevy_fast_rtc::rollback`, feature `ggrs`). The physics is integer fixed-point, so every
//! member simulates the same frames bit for bit.
//!
//! ```text
//! cargo run --features ggrs --example rollback -- --bots 1                  # you and a bot
//! cargo run --features ggrs --example rollback -- --players 3 --bots 2
//! cargo run --features ggrs --example rollback -- --headless --bots 1 --seconds 10
//! ```
//!
//! The match starts once `--players` members are in the room (run the example again, or add
//! bots); Escape leaves the match (`LeaveMatch`), and a player who leaves is disconnected
//! while the others play on. Natively a signaling
//! server is started on 127.0.0.1:8787 if none answers, as in the multiplayer example. In a
//! browser: `./scripts/web.sh rollback --features ggrs`, then open the page with
//! `?signaling=…&room=…&token=…&players=N`.

#[cfg(not(target_arch = "wasm32"))]
use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy_fast_rtc::prelude::*;
use bevy_fast_rtc::rollback::{
    FastRtcGgrsPlugin, GgrsSocket, LeaveMatch, PlayerDisconnected, RollbackGuard, SessionEnded,
    p2p_session_builder,
};
use bevy_ggrs::ggrs::{DesyncDetection, GgrsEvent};
use bevy_ggrs::prelude::*;
use bevy_ggrs::{LoadWorld, LocalInputs, LocalPlayers};
#[cfg(not(target_arch = "wasm32"))]
use clap::Parser;
#[cfg(not(target_arch = "wasm32"))]
use std::time::Duration;

#[cfg(not(target_arch = "wasm32"))]
#[path = "../common/local_server.rs"]
mod local_server;
#[cfg(target_arch = "wasm32")]
#[path = "../common/page.rs"]
mod page;

/// The page's default signaling URL.
#[cfg(target_arch = "wasm32")]
const DEFAULT_URL: &str = "ws://127.0.0.1:8787/ws";
const FPS: usize = 60;
/// Fixed-point: 1 unit = 1/256 pixel.
const ONE: i32 = 256;
const ARENA: i32 = 280 * ONE;
const ACCEL: i32 = ONE / 4;

type Config = GgrsConfig<u8, UserId>;

const UP: u8 = 1;
const DOWN: u8 = 2;
const LEFT: u8 = 4;
const RIGHT: u8 = 8;

#[cfg(not(target_arch = "wasm32"))]
#[derive(Parser, Clone, Debug)]
#[command(about = "bevy_fast_rtc rollback box game (bevy_ggrs over the swarm)")]
struct Args {
    /// Signaling server URL. With the default, a local server is started if none answers.
    #[arg(long, default_value = local_server::DEFAULT_URL)]
    url: String,
    /// Room to join.
    #[arg(long, default_value = "boxes")]
    room: String,
    /// Players in the match (2-4), counting bots and players in other processes.
    #[arg(long, default_value_t = 2)]
    players: usize,
    /// Bot players to add in this process.
    #[arg(long, default_value_t = 0)]
    bots: usize,
    /// A token for your own server (else one is minted from the local demo secret).
    #[arg(long)]
    token: Option<String>,
    /// No window: print a line per second instead.
    #[arg(long)]
    headless: bool,
    /// Quit after this many seconds (0: run until closed). A headless run exits non-zero if
    /// the match did not run in agreement.
    #[arg(long, default_value_t = 0)]
    seconds: u64,
}

/// A player's box (rolled back).
#[derive(Component, Clone, Copy, Hash, Debug)]
struct Player {
    handle: usize,
    pos: IVec2,
    vel: IVec2,
}

/// This app's match settings, and what it saw (not rolled back).
#[derive(Resource)]
struct Match {
    channel: ChannelId,
    players: usize,
    bot: bool,
    frames: u64,
    rollbacks: u64,
    desyncs: u64,
    left: Vec<UserId>,
    /// How the match ended, if it did.
    ended: Option<String>,
}

fn main_app(url: &str, room: &str, token: String, players: usize, bot: bool) -> App {
    let mut plugin = FastRtcPlugin::new(room).with_signaling(url, token);
    #[cfg(not(target_arch = "wasm32"))]
    if url.contains("127.0.0.1") || url.contains("localhost") {
        plugin = plugin.with_native(NativeConfig::loopback());
    }
    let channel = plugin.add_channel(ChannelConfig::unreliable("ggrs"));
    let mut app = App::new();
    app.add_plugins((plugin, GgrsPlugin::<Config>::default()))
        .add_plugins(FastRtcGgrsPlugin::<Config>::default())
        .insert_resource(RollbackFrameRate(FPS))
        .rollback_component_with_copy::<Player>()
        .checksum_component_with_hash::<Player>()
        .insert_resource(Match {
            channel,
            players: players.clamp(2, 4),
            bot,
            frames: 0,
            rollbacks: 0,
            desyncs: 0,
            left: Vec::new(),
            ended: None,
        })
        .add_systems(ReadInputs, read_inputs)
        .add_systems(GgrsSchedule, physics)
        .add_systems(LoadWorld, |mut m: ResMut<Match>| m.rollbacks += 1)
        .add_systems(Update, (start_match, watch_session));
    app
}

/// Starts the match once every player is in the room: the same session everywhere (handles
/// in identity order), no extra message.
fn start_match(
    mut commands: Commands,
    mut swarm: ResMut<Swarm>,
    mut guard: ResMut<RollbackGuard>,
    session: Option<Res<Session<Config>>>,
    m: Res<Match>,
) {
    if session.is_some() || swarm.peer_count() + 1 < m.players {
        return;
    }
    let started = p2p_session_builder::<Config>(&swarm).and_then(|builder| {
        let socket = GgrsSocket::new(&mut swarm, &mut guard, m.channel)?;
        Ok(builder
            .with_desync_detection_mode(DesyncDetection::On { interval: 10 })
            .with_input_delay(2)
            .start_p2p_session(socket)?)
    });
    match started {
        Ok(session) => {
            info!("match started with {} players", m.players);
            for handle in 0..m.players {
                let x = (handle as i32 * 2 - m.players as i32 + 1) * 60 * ONE;
                commands.spawn((
                    Player {
                        handle,
                        pos: IVec2::new(x, 0),
                        vel: IVec2::ZERO,
                    },
                    Rollback,
                ));
            }
            commands.insert_resource(Session::P2P(session));
        }
        Err(e) => error!("cannot start the match: {e}"),
    }
}

fn read_inputs(
    mut commands: Commands,
    local: Res<LocalPlayers>,
    keys: Option<Res<ButtonInput<KeyCode>>>,
    m: Res<Match>,
    mut tick: Local<u32>,
) {
    *tick += 1;
    let mut input = 0;
    if m.bot {
        // Circles, changing direction every half second.
        input = [
            UP,
            UP | RIGHT,
            RIGHT,
            DOWN | RIGHT,
            DOWN,
            DOWN | LEFT,
            LEFT,
            UP | LEFT,
        ][(*tick / 30 % 8) as usize];
    } else if let Some(keys) = keys {
        for (bit, codes) in [
            (UP, [KeyCode::ArrowUp, KeyCode::KeyW]),
            (DOWN, [KeyCode::ArrowDown, KeyCode::KeyS]),
            (LEFT, [KeyCode::ArrowLeft, KeyCode::KeyA]),
            (RIGHT, [KeyCode::ArrowRight, KeyCode::KeyD]),
        ] {
            if keys.any_pressed(codes) {
                input |= bit;
            }
        }
    }
    let inputs = local.0.iter().map(|h| (*h, input)).collect();
    commands.insert_resource(LocalInputs::<Config>(inputs));
}

/// Deterministic physics: inputs accelerate, friction slows, walls bounce, boxes push apart.
fn physics(inputs: Res<PlayerInputs<Config>>, mut players: Query<&mut Player>) {
    for mut p in &mut players {
        let Some((input, _)) = inputs.get(p.handle) else {
            continue;
        };
        let dir = IVec2::new(
            i32::from(input & RIGHT != 0) - i32::from(input & LEFT != 0),
            i32::from(input & UP != 0) - i32::from(input & DOWN != 0),
        );
        p.vel = (p.vel + dir * ACCEL) * 15 / 16;
        let mut pos = p.pos + p.vel;
        for axis in 0..2 {
            if pos[axis].abs() > ARENA {
                pos[axis] = pos[axis].clamp(-ARENA, ARENA);
                p.vel[axis] = -p.vel[axis];
            }
        }
        p.pos = pos;
    }
    // Overlapping boxes push apart, in handle order (the same order everywhere).
    let mut all: Vec<Mut<Player>> = players.iter_mut().collect();
    all.sort_by_key(|p| p.handle);
    for i in 0..all.len() {
        for j in i + 1..all.len() {
            let d = all[j].pos - all[i].pos;
            if d.x.abs() < 40 * ONE && d.y.abs() < 40 * ONE {
                let push = IVec2::new(d.x.signum(), d.y.signum()) * ONE;
                all[i].pos -= push;
                all[j].pos += push;
            }
        }
    }
}

fn watch_session(
    mut session: Option<ResMut<Session<Config>>>,
    mut left: MessageReader<PlayerDisconnected>,
    mut ended: MessageReader<SessionEnded>,
    mut m: ResMut<Match>,
) {
    for l in left.read() {
        info!("{} left the match", l.peer);
        m.left.push(l.peer.clone());
    }
    for e in ended.read() {
        warn!("the match ended: {:?}", e.reason);
        m.ended = Some(format!("{:?}", e.reason));
    }
    let Some(Session::P2P(s)) = session.as_deref_mut() else {
        return;
    };
    m.frames = u64::try_from(s.current_frame()).unwrap_or(0);
    for e in s.events() {
        match e {
            GgrsEvent::DesyncDetected { frame, .. } => {
                m.desyncs += 1;
                error!("desync at frame {frame}");
            }
            GgrsEvent::Disconnected { addr } => info!("{addr} timed out"),
            _ => {}
        }
    }
}

/// Window: the arena, a box per player, and a status line.
fn windowed(app: &mut App, window: Window) {
    app.add_plugins(DefaultPlugins.set(WindowPlugin {
        primary_window: Some(window),
        ..default()
    }))
    .add_systems(Startup, |mut commands: Commands| {
        commands.spawn(Camera2d);
        commands.spawn((
            Text::new(""),
            Node {
                position_type: PositionType::Absolute,
                top: Val::Px(10.0),
                left: Val::Px(10.0),
                ..default()
            },
        ));
    })
    .add_systems(Update, (draw, status, leave_on_escape));
}

/// Escape leaves the match: the peers get this player's last inputs, then it disconnects.
fn leave_on_escape(keys: Res<ButtonInput<KeyCode>>, mut leave: MessageWriter<LeaveMatch>) {
    if keys.just_pressed(KeyCode::Escape) {
        leave.write(LeaveMatch);
    }
}

fn draw(
    mut commands: Commands,
    players: Query<(Entity, &Player, Option<&mut Transform>)>,
    local: Res<LocalPlayers>,
) {
    const COLORS: [Color; 4] = [
        Color::srgb(0.9, 0.3, 0.3),
        Color::srgb(0.3, 0.7, 0.9),
        Color::srgb(0.4, 0.9, 0.4),
        Color::srgb(0.9, 0.8, 0.3),
    ];
    for (e, p, t) in players {
        let at = p.pos.as_vec2() / ONE as f32;
        match t {
            Some(mut t) => t.translation = at.extend(0.0),
            None => {
                let size = if local.0.contains(&p.handle) {
                    44.0
                } else {
                    40.0
                };
                commands.entity(e).insert((
                    Sprite::from_color(COLORS[p.handle % 4], Vec2::splat(size)),
                    Transform::from_translation(at.extend(0.0)),
                ));
            }
        }
    }
}

fn status(swarm: Res<Swarm>, m: Res<Match>, mut text: Query<&mut Text>) {
    let line = if let Some(ended) = &m.ended {
        format!("match over ({ended}) at frame {}", m.frames)
    } else if m.frames == 0 {
        format!(
            "room {:?}: {} of {} players (signaling: {:?})",
            swarm.room().as_str(),
            swarm.peer_count() + 1,
            m.players,
            swarm.state()
        )
    } else {
        format!(
            "frame {}, {} rollbacks, {} desyncs{}",
            m.frames,
            m.rollbacks,
            m.desyncs,
            if m.left.is_empty() {
                String::new()
            } else {
                format!(", left: {:?}", m.left)
            }
        )
    };
    for mut t in &mut text {
        t.0.clone_from(&line);
    }
}

/// A line per second; after `--seconds`, exit 0 if the match ran (≥ 2 s of frames) with no
/// desync.
#[cfg(not(target_arch = "wasm32"))]
fn report(
    time: Res<Time<Real>>,
    m: Res<Match>,
    swarm: Res<Swarm>,
    seconds: Res<RunFor>,
    mut last: Local<u64>,
    mut exit: MessageWriter<AppExit>,
) {
    let secs = time.elapsed().as_secs();
    if secs == *last {
        return;
    }
    *last = secs;
    println!(
        "t={secs}s peers={} frame={} rollbacks={} desyncs={}",
        swarm.peer_count(),
        m.frames,
        m.rollbacks,
        m.desyncs
    );
    if seconds.0 > 0 && secs >= seconds.0 {
        if m.frames >= 2 * FPS as u64 && m.desyncs == 0 {
            println!("done: {} frames, {} rollbacks", m.frames, m.rollbacks);
            exit.write(AppExit::Success);
        } else {
            eprintln!("failed: {} frames, {} desyncs", m.frames, m.desyncs);
            exit.write(AppExit::error());
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(Resource)]
struct RunFor(u64);

#[cfg(not(target_arch = "wasm32"))]
fn headless(app: &mut App) {
    app.add_plugins(
        MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_secs_f64(
            1.0 / 120.0,
        ))),
    );
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> AppExit {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,rtc=error,rollback=info".into()),
        )
        .try_init();
    let options = local_server::Options {
        url: &args.url,
        room: &args.room,
        has_token: args.token.is_some(),
        bots: args.bots,
        token_ttl: 24 * 3600,
        example: "rollback --features ggrs",
    };
    let (url, minter, _server) = match local_server::signaling(&options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rollback: {e}");
            return AppExit::error();
        }
    };
    let tag = local_server::random_u16();
    let mint = |name: &str| minter.as_ref().map(|m| m.mint(name));
    for i in 0..args.bots {
        let Some(token) = mint(&format!("bot-{tag:04x}-{i}")) else {
            eprintln!("rollback: bots need the demo secret (or FAST_RTC_SECRET) to mint tokens");
            return AppExit::error();
        };
        let (url, room, players) = (url.clone(), args.room.clone(), args.players);
        std::thread::spawn(move || {
            let mut bot = main_app(&url, &room, token, players, true);
            headless(&mut bot);
            bot.run()
        });
    }
    let Some(token) = args
        .token
        .clone()
        .or_else(|| mint(&format!("player-{tag:04x}")))
    else {
        eprintln!("rollback: pass --token (or set FAST_RTC_SECRET)");
        return AppExit::error();
    };
    let mut app = main_app(&url, &args.room, token, args.players, args.headless);
    if args.headless {
        headless(&mut app);
        app.insert_resource(RunFor(args.seconds))
            .add_systems(Update, report);
    } else {
        let window = Window {
            title: "bevy_fast_rtc rollback boxes".into(),
            ..default()
        };
        windowed(&mut app, window);
        app.insert_resource(RunFor(args.seconds))
            .add_systems(Update, report);
    }
    app.run()
}

/// The browser build: one player in a canvas; signaling URL, room, token and player count
/// from the page's query string.
#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    let get = page::query;
    let url = get("signaling").unwrap_or_else(|| DEFAULT_URL.into());
    let room = get("room").unwrap_or_else(|| "boxes".into());
    let token = get("token").unwrap_or_default();
    let players = get("players").and_then(|p| p.parse().ok()).unwrap_or(2);
    let mut app = main_app(&url, &room, token, players, false);
    let window = Window {
        title: "bevy_fast_rtc rollback boxes".into(),
        fit_canvas_to_parent: true,
        ..default()
    };
    windowed(&mut app, window);
    app.run();
}
