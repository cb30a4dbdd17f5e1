//! The multiplayer demo: every player moves a square; positions travel peer to peer over an
//! unreliable channel every `FixedUpdate` tick.
//!
//! ```sh
//! cargo run --example multiplayer                       # a window; a local signaling server is started if none answers
//! cargo run --example multiplayer -- --bots 3           # with three bot players in the same process
//! cargo run --example multiplayer -- --headless --bots 3 --seconds 10   # no window (CI, servers)
//! cargo run --example multiplayer --features voice -- --bots 3   # push-to-talk (V), proximity voice
//! cargo run --example multiplayer --features cpal -- --bots 3    # ... on your microphone and speaker
//! ```
//!
//! Run it twice to play with yourself. The first instance starts an embedded signaling server on
//! 127.0.0.1:8787, with a freshly generated secret, when none answers there. Later instances find
//! it, and mint their tokens from the secret it writes to `bevy_fast_rtc_demo.secret` in
//! `$XDG_RUNTIME_DIR` (else the temp directory; readable by your user only), or from
//! `FAST_RTC_SECRET`. Against your own server, pass
//! `--url` and `--token`.
//!
//! Move with the arrow keys or WASD. With the `voice` feature (natively), hold V to talk: the
//! bots talk too, each with a tone of its own, and everyone's volume follows their distance
//! from you (see `voice.rs`). A headless run with `--seconds` then also fails unless it heard
//! every bot. Every player of a room must be built with the same features (the track is
//! declared by all of them, like a channel).
//!
//! In a browser (WebGL2), built and served by `scripts/web.sh` (see the README):
//!
//! ```sh
//! ./scripts/web.sh multiplayer
//! # then open http://127.0.0.1:1334/?signaling=ws://127.0.0.1:8787/ws&room=demo&token=TOKEN
//! ```
//!
//! The page reads `signaling`, `room` and `token` from its query string. With the embedded
//! server, the native demo prints a ready link for a browser player (a token it minted).
//!
//! This file is the game; `voice.rs` its voice chat; `local_server.rs` finds or starts the
//! signaling server and mints the tokens.

#[cfg(not(target_arch = "wasm32"))]
use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy_fast_rtc::prelude::*;
#[cfg(not(target_arch = "wasm32"))]
use clap::Parser;
use serde::{Deserialize, Serialize};
#[cfg(not(target_arch = "wasm32"))]
use std::time::Duration;

#[cfg(not(target_arch = "wasm32"))]
#[path = "../common/local_server.rs"]
mod local_server;
#[cfg(target_arch = "wasm32")]
#[path = "../common/page.rs"]
mod page;
#[cfg(all(feature = "voice", not(target_arch = "wasm32")))]
mod voice;

/// Where the demo looks for (or starts) its signaling server, natively and in the page.
const DEFAULT_URL: &str = "ws://127.0.0.1:8787/ws";
/// The demo's room.
const DEFAULT_ROOM: &str = "demo";
const ARENA: f32 = 300.0;

#[cfg(not(target_arch = "wasm32"))]
#[derive(Parser, Clone, Debug)]
#[command(about = "bevy_fast_rtc multiplayer demo")]
struct Args {
    /// Signaling server URL. With the default, a local server is started if none answers.
    #[arg(long, default_value = DEFAULT_URL)]
    url: String,
    /// Room to join.
    #[arg(long, default_value = DEFAULT_ROOM)]
    room: String,
    /// Your name (default: a random one).
    #[arg(long)]
    name: Option<String>,
    /// A token for your own server (else one is minted from the local demo secret).
    #[arg(long)]
    token: Option<String>,
    /// Bot players to add in this process.
    #[arg(long, default_value_t = 0)]
    bots: usize,
    /// No window: print a line per second instead.
    #[arg(long)]
    headless: bool,
    /// Quit after this many seconds (0: run until closed). A headless run exits non-zero if
    /// it did not meet every bot.
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// A STUN or TURN server URL (`turn:host:3478?transport=udp`); repeatable.
    #[arg(long)]
    ice_server: Vec<String>,
    /// TURN username, for every `--ice-server`.
    #[arg(long, default_value = "")]
    ice_username: String,
    /// TURN credential, for every `--ice-server`.
    #[arg(long, default_value = "")]
    ice_credential: String,
    /// Link only through the TURN servers (relay candidates only).
    #[arg(long)]
    relay_only: bool,
    /// Lifetime of the tokens minted for this process's players, in seconds. The swarm asks
    /// for a fresh one a minute before expiry and the demo mints it (try `--token-ttl 70`).
    #[arg(long, default_value_t = 24 * 3600)]
    token_ttl: u64,
}

#[cfg(not(target_arch = "wasm32"))]
impl Args {
    /// The player's plugin with `--ice-server`/`--relay-only` applied.
    fn with_ice(&self, plugin: FastRtcPlugin) -> FastRtcPlugin {
        let servers = self
            .ice_server
            .iter()
            .map(|url| IceServer::turn(url, &self.ice_username, &self.ice_credential));
        let plugin = plugin.with_ice_servers(servers);
        if self.relay_only {
            plugin.with_ice_transport_policy(IceTransportPolicy::Relay)
        } else {
            plugin
        }
    }
}

/// What travels every tick.
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
struct PlayerState {
    tick: u32,
    x: f32,
    y: f32,
}

/// This app's player.
#[derive(Resource)]
struct LocalPlayer {
    name: String,
    position: Vec2,
    bot: Option<f32>,
    tick: u32,
}

/// The square of this app's player.
#[derive(Component)]
struct LocalSquare;

/// A remote player's last known state, on its `Peer` entity.
#[derive(Component)]
struct Remote {
    target: Vec2,
    shown: Vec2,
    last_tick: u32,
}

#[derive(Resource, Default)]
struct Counters {
    states_received: u64,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // read by the native report
    peers_seen: usize,
}

#[derive(Component)]
struct PeerList;

/// Mints this process's fresh tokens when the swarm asks (natively, with the demo secret).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Resource)]
struct Tokens {
    minter: local_server::Minter,
    name: String,
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(Resource)]
struct RunFor {
    seconds: u64,
    expect_peers: usize,
    /// The bots' names, to check that each was heard.
    #[cfg_attr(not(feature = "voice"), allow(dead_code))]
    bots: Vec<String>,
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> AppExit {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "warn,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_sctp=error,multiplayer=info".into()
            }),
        )
        .try_init();
    let options = local_server::Options {
        url: &args.url,
        room: &args.room,
        has_token: args.token.is_some(),
        bots: args.bots,
        token_ttl: args.token_ttl,
        example: "multiplayer",
    };
    let (url, minter, _server) = match local_server::signaling(&options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("multiplayer: {e}");
            return AppExit::error();
        }
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("player-{:04x}", local_server::random_u16()));
    let token = match (&args.token, &minter) {
        (Some(t), _) => t.clone(),
        (None, Some(m)) => m.mint(&name),
        // signaling() returns a minter whenever no --token was given
        (None, None) => String::new(),
    };
    // Bots are named per process: a second demo instance must not replace the first one's bots
    // (a second session under the same identity replaces the first).
    let bot_tag = local_server::random_u16();
    let bot_name = |i: usize| format!("bot-{bot_tag:04x}-{i}");
    for i in 0..args.bots {
        let Some(m) = &minter else {
            eprintln!(
                "multiplayer: bots need the demo secret (or FAST_RTC_SECRET) to mint their tokens"
            );
            return AppExit::error();
        };
        let (url, room, token) = (url.clone(), args.room.clone(), m.mint(&bot_name(i)));
        let tokens = Tokens {
            minter: m.clone(),
            name: bot_name(i),
        };
        std::thread::spawn(move || bot_app(&url, &room, tokens, token, i).run());
    }
    let mut app = player_app(&args, &url, &name, token);
    if let Some(minter) = minter {
        app.insert_resource(Tokens { minter, name });
    }
    app.insert_resource(RunFor {
        seconds: args.seconds,
        expect_peers: args.bots,
        bots: (0..args.bots).map(bot_name).collect(),
    });
    app.run()
}

fn plugin(url: &str, room: &str, token: String) -> (FastRtcPlugin, ChannelId) {
    let mut plugin = FastRtcPlugin::new(room).with_signaling(url, token);
    #[cfg(not(target_arch = "wasm32"))]
    if url.contains("127.0.0.1") || url.contains("localhost") {
        plugin = plugin.with_native(NativeConfig::loopback());
    }
    let state = plugin.add_channel(ChannelConfig::unreliable("state"));
    (plugin, state)
}

fn common(app: &mut App, state: ChannelId, name: &str, bot: Option<f32>) {
    app.add_swarm_message::<PlayerState>(state)
        .insert_resource(LocalPlayer {
            name: name.to_owned(),
            position: Vec2::ZERO,
            bot,
            tick: 0,
        })
        .init_resource::<Counters>()
        .insert_resource(Time::<Fixed>::from_hz(30.0))
        .add_systems(FixedUpdate, (move_player, broadcast_state).chain())
        .add_systems(
            Update,
            (on_peer_opened, receive_states, interpolate).chain(),
        );
}

#[cfg(not(target_arch = "wasm32"))]
fn bot_app(url: &str, room: &str, tokens: Tokens, token: String, i: usize) -> App {
    #[allow(unused_mut)] // declared on with the voice feature
    let (mut plugin, state) = plugin(url, room, token);
    #[cfg(feature = "voice")]
    let track = voice::declare(&mut plugin);
    let name = tokens.name.clone();
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_secs_f64(
            1.0 / 60.0,
        ))),
        plugin,
    ));
    common(&mut app, state, &name, Some(i as f32 * 1.7));
    #[cfg(feature = "voice")]
    voice::add(&mut app, track, voice::Talker::Bot(i), false);
    app.insert_resource(tokens)
        .add_systems(PreUpdate, refresh_token.after(FastRtcSystems::Receive));
    app
}

#[cfg(not(target_arch = "wasm32"))]
fn player_app(args: &Args, url: &str, name: &str, token: String) -> App {
    #[allow(unused_mut)] // declared on with the voice feature
    let (mut plugin, state) = plugin(url, &args.room, token);
    #[cfg(feature = "voice")]
    let track = voice::declare(&mut plugin);
    let plugin = args.with_ice(plugin);
    let mut app = App::new();
    if args.headless {
        app.add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_secs_f64(
                1.0 / 60.0,
            ))),
            plugin,
        ));
        common(&mut app, state, name, Some(0.5));
        #[cfg(feature = "voice")]
        voice::add(&mut app, track, voice::Talker::Listener, false);
        app.add_systems(Update, report);
    } else {
        let window = Window {
            title: format!("bevy_fast_rtc: {name}"),
            ..default()
        };
        windowed(&mut app, window, plugin, state, name);
        #[cfg(feature = "voice")]
        voice::add(&mut app, track, voice::Talker::Keyboard, true);
        app.add_systems(Update, report);
    }
    app.add_systems(PreUpdate, refresh_token.after(FastRtcSystems::Receive));
    app
}

/// Answers the swarm's `TokenRequested` (the token expires soon, or the server refused it)
/// with a freshly minted token, as a game's login service would.
#[cfg(not(target_arch = "wasm32"))]
fn refresh_token(
    mut requests: MessageReader<TokenRequested>,
    tokens: Option<Res<Tokens>>,
    mut swarm: ResMut<Swarm>,
) {
    for r in requests.read() {
        match &tokens {
            Some(t) => {
                swarm.set_token(t.minter.mint(&t.name));
                info!("{}: fresh token minted ({:?})", t.name, r.request);
            }
            None => warn!(
                "the swarm asks for a new token ({:?}) but this process cannot mint one (--token)",
                r.request
            ),
        }
    }
}

/// The connection's lifecycle, as a player reads it.
fn describe(state: &SignalingState) -> String {
    match state {
        SignalingState::Disconnected => "not connected".into(),
        SignalingState::Connecting => "joining...".into(),
        SignalingState::Joined => "joined".into(),
        SignalingState::Reconnecting => "reconnecting (links stay up)...".into(),
        SignalingState::Failed(reason) => format!("FAILED: {reason}"),
        other => format!("{other:?}"),
    }
}

/// A player in a window (natively) or a canvas (in the browser): rendering, the swarm, the
/// game's systems and the peer list.
fn windowed(app: &mut App, window: Window, plugin: FastRtcPlugin, state: ChannelId, name: &str) {
    app.add_plugins((
        DefaultPlugins.set(WindowPlugin {
            primary_window: Some(window),
            ..default()
        }),
        plugin,
    ));
    common(app, state, name, None);
    app.add_systems(Startup, setup_view)
        .add_systems(Update, (draw_local, show_peers));
}

/// A color from an identity, so everyone sees a player in the same color.
fn color_of(name: &str) -> Color {
    let hash = name.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    // Golden-ratio steps spread hues apart even for similar names (bot-0, bot-1, ...).
    // (f64: a u32 times 0.618 exceeds f32's 24-bit mantissa, whose fract() would always be 0.)
    let hue = (f64::from(hash) * 0.618_033_988_75).fract() * 360.0;
    Color::hsl(hue as f32, 0.75, 0.55)
}

fn move_player(
    mut me: ResMut<LocalPlayer>,
    keys: Option<Res<ButtonInput<KeyCode>>>,
    time: Res<Time>,
) {
    let dt = time.delta_secs();
    me.tick += 1;
    if let Some(phase) = me.bot {
        let t = me.tick as f32 / 30.0 + phase;
        me.position = Vec2::new(t.cos(), (t * 1.3).sin()) * ARENA * 0.6;
        return;
    }
    let Some(keys) = keys else { return };
    let mut dir = Vec2::ZERO;
    if keys.any_pressed([KeyCode::ArrowLeft, KeyCode::KeyA]) {
        dir.x -= 1.0;
    }
    if keys.any_pressed([KeyCode::ArrowRight, KeyCode::KeyD]) {
        dir.x += 1.0;
    }
    if keys.any_pressed([KeyCode::ArrowUp, KeyCode::KeyW]) {
        dir.y += 1.0;
    }
    if keys.any_pressed([KeyCode::ArrowDown, KeyCode::KeyS]) {
        dir.y -= 1.0;
    }
    let p = me.position + dir.normalize_or_zero() * 250.0 * dt;
    me.position = p.clamp(Vec2::splat(-ARENA), Vec2::splat(ARENA));
}

fn broadcast_state(me: Res<LocalPlayer>, mut broadcast: SwarmBroadcast<PlayerState>) {
    if broadcast.peer_count() > 0 {
        broadcast.send(&PlayerState {
            tick: me.tick,
            x: me.position.x,
            y: me.position.y,
        });
    }
}

/// A new peer: give its entity a square.
fn on_peer_opened(
    mut commands: Commands,
    mut opened: MessageReader<PeerOpened>,
    window: Option<Single<&Window>>,
) {
    for ev in opened.read() {
        let mut e = commands.entity(ev.entity);
        e.insert(Remote {
            target: Vec2::ZERO,
            shown: Vec2::ZERO,
            last_tick: 0,
        });
        if window.is_some() {
            e.insert((
                Sprite::from_color(color_of(ev.peer.as_str()), Vec2::splat(36.0)),
                Transform::default(),
            ));
        }
    }
}

fn receive_states(
    mut states: MessageReader<FromPeer<PlayerState>>,
    mut remotes: Query<&mut Remote>,
    mut counters: ResMut<Counters>,
) {
    for msg in states.read() {
        counters.states_received += 1;
        let Some(mut remote) = msg.entity.and_then(|e| remotes.get_mut(e).ok()) else {
            continue;
        };
        // Unordered channel: keep only newer states.
        if msg.value.tick > remote.last_tick {
            remote.last_tick = msg.value.tick;
            remote.target = Vec2::new(msg.value.x, msg.value.y);
        }
    }
}

fn interpolate(mut remotes: Query<(&mut Remote, Option<&mut Transform>)>, time: Res<Time>) {
    let k = 1.0 - (-time.delta_secs() * 15.0).exp();
    for (mut remote, transform) in &mut remotes {
        let target = remote.target;
        remote.shown = remote.shown.lerp(target, k);
        if let Some(mut t) = transform {
            t.translation = remote.shown.extend(0.0);
        }
    }
}

fn setup_view(mut commands: Commands, me: Res<LocalPlayer>) {
    commands.spawn(Camera2d);
    commands.spawn((
        Sprite::from_color(color_of(&me.name), Vec2::splat(40.0)),
        Transform::from_xyz(0.0, 0.0, 1.0),
        LocalSquare,
    ));
    commands.spawn((
        Text::new(""),
        TextFont {
            font_size: FontSize::Px(16.0),
            ..default()
        },
        Node {
            position_type: PositionType::Absolute,
            top: Val::Px(10.0),
            left: Val::Px(10.0),
            ..default()
        },
        PeerList,
    ));
}

fn draw_local(me: Res<LocalPlayer>, mut square: Query<&mut Transform, With<LocalSquare>>) {
    for mut t in &mut square {
        t.translation = me.position.extend(1.0);
    }
}

fn show_peers(
    swarm: Res<Swarm>,
    peers: Query<&Peer>,
    me: Res<LocalPlayer>,
    mut text: Query<&mut Text, With<PeerList>>,
) {
    let mut lines = vec![format!(
        "{} in room {:?}: {}",
        me.name,
        swarm.room().as_str(),
        describe(swarm.state())
    )];
    let mut list: Vec<&Peer> = peers.iter().collect();
    list.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    for p in list {
        let rtt = p
            .rtt
            .map_or("rtt ?".to_owned(), |d| format!("rtt {} ms", d.as_millis()));
        lines.push(format!(
            "  {}  {:?}  {rtt}  in {} B  out {} B",
            p.user_id, p.ice_state, p.bytes_in, p.bytes_out
        ));
    }
    if swarm.state().is_failed() {
        lines.push("  the swarm has stopped; restart to try again".into());
    } else if swarm.peer_count() == 0 {
        lines.push("  waiting for players (run the example again, or add --bots 3)".into());
    }
    for mut t in &mut text {
        t.0 = lines.join("\n");
    }
}

/// A line per second; quits after `--seconds` (non-zero if a bot never showed up, or, with
/// the voice feature, was never heard).
#[cfg(not(target_arch = "wasm32"))]
fn report(
    time: Res<Time<Real>>,
    swarm: Res<Swarm>,
    mut counters: ResMut<Counters>,
    run: Res<RunFor>,
    mut last: Local<u64>,
    mut exit: MessageWriter<AppExit>,
    #[cfg(feature = "voice")] heard: Res<voice::Heard>,
) {
    let secs = time.elapsed().as_secs();
    counters.peers_seen = counters.peers_seen.max(swarm.peer_count());
    if secs == *last {
        return;
    }
    *last = secs;
    #[cfg(feature = "voice")]
    let heard_line = format!(" heard={}", heard.count());
    #[cfg(not(feature = "voice"))]
    let heard_line = "";
    println!(
        "t={secs}s signaling: {} peers={} states_received={}{heard_line}",
        describe(swarm.state()),
        swarm.peer_count(),
        counters.states_received
    );
    if swarm.state().is_failed() {
        // Over for good (a refused token, a full room, the server unreachable...): say why.
        eprintln!("failed: {}", describe(swarm.state()));
        exit.write(AppExit::error());
        return;
    }
    if run.seconds > 0 && secs >= run.seconds {
        let met = swarm.peer_count() >= run.expect_peers
            && (run.expect_peers == 0 || counters.states_received > 0);
        #[cfg(feature = "voice")]
        let (heard_all, heard_lines) = heard.check(&run.bots);
        #[cfg(not(feature = "voice"))]
        let (heard_all, heard_lines) = (true, Vec::<String>::new());
        for line in &heard_lines {
            println!("{line}");
        }
        if met && heard_all {
            println!(
                "done: met {} peers, received {} states",
                swarm.peer_count(),
                counters.states_received
            );
            exit.write(AppExit::Success);
        } else {
            eprintln!(
                "failed: {} of {} peers, {} states{}",
                swarm.peer_count(),
                run.expect_peers,
                counters.states_received,
                if heard_all {
                    ""
                } else {
                    ", a bot was not heard (at its pitch)"
                }
            );
            exit.write(AppExit::error());
        }
    }
}

/// The browser build: one player in a canvas; signaling URL, room and token from the page's
/// query string (`?signaling=ws://HOST:PORT/ws&room=ROOM&token=TOKEN`).
#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    let get = page::query;
    let url = get("signaling").unwrap_or_else(|| DEFAULT_URL.into());
    let room = get("room").unwrap_or_else(|| DEFAULT_ROOM.into());
    let token = get("token").unwrap_or_default();
    // Everyone else knows this player by the token's subject (its colour comes from it too).
    let name = bevy_fast_rtc::token_subject(&token).map_or_else(|| "you".into(), |u| u.to_string());
    let (plugin, state) = plugin(&url, &room, token);
    let mut app = App::new();
    let window = Window {
        title: "bevy_fast_rtc".into(),
        fit_canvas_to_parent: true,
        ..default()
    };
    windowed(&mut app, window, plugin, state, &name);
    app.run();
}
