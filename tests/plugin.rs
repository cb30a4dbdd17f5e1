//! Four headless Bevy apps (MinimalPlugins) in one process join one room through a real
//! signaling server over real WebRTC (webrtc-rs on 127.0.0.1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)]

mod seen;
mod signaling;

use bevy::ecs::system::RunSystemOnce;
use bevy::prelude::*;
use bevy_fast_rtc::FastRtcError;
use bevy_fast_rtc::prelude::*;
use fast_rtc_server::{Secret, TokenIssuer};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant, SystemTime};

const SECRET: &str = "plugin-tests-0123456789abcdef0123456789abcdef";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct State {
    from: String,
    tick: u32,
    x: f32,
}

#[derive(Resource)]
struct Me(String);

type Seen = seen::Seen<State>;

fn broadcast_state(me: Res<Me>, mut tick: Local<u32>, mut broadcast: SwarmBroadcast<State>) {
    *tick += 1;
    broadcast.send(&State {
        from: me.0.clone(),
        tick: *tick,
        x: *tick as f32 * 0.5,
    });
}

fn signaling_server() -> (tokio::runtime::Runtime, fast_rtc_server::ServerHandle) {
    signaling::signaling_server(SECRET)
}

fn app(url: &str, name: &str) -> App {
    let token = signaling::token(SECRET, name);
    let mut plugin = FastRtcPlugin::new("plugin-room")
        .with_signaling(url, token)
        .with_native(NativeConfig::loopback());
    let state = plugin.add_channel(ChannelConfig::unreliable("state"));
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, plugin))
        .add_swarm_message::<State>(state)
        .insert_resource(Me(name.to_owned()))
        .init_resource::<Seen>()
        .add_systems(Update, (broadcast_state, seen::record::<State>));
    app
}

fn peer_entities(app: &mut App) -> Vec<UserId> {
    let mut q = app.world_mut().query::<&Peer>();
    let mut v: Vec<UserId> = q.iter(app.world()).map(|p| p.user_id.clone()).collect();
    v.sort();
    v
}

/// Updates every app until `done` holds or the timeout.
fn run_until(
    apps: &mut [App],
    timeout: Duration,
    mut done: impl FnMut(&mut [App]) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        for a in apps.iter_mut() {
            a.update();
        }
        if done(apps) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn four_apps_form_a_mesh_exchange_typed_state_and_see_each_other_leave() {
    let (rt, server) = signaling_server();
    let url = server.ws_url();
    let names = ["p0", "p1", "p2", "p3"];
    let mut apps: Vec<App> = names.iter().map(|n| app(&url, n)).collect();

    // Every app: 3 PeerOpened and 3 Peer entities.
    let meshed = run_until(&mut apps, Duration::from_secs(30), |apps| {
        apps.iter_mut()
            .all(|a| a.world().resource::<Seen>().opened.len() == 3 && peer_entities(a).len() == 3)
    });
    assert!(meshed, "no full mesh");
    for (i, a) in apps.iter_mut().enumerate() {
        let mut expected: Vec<UserId> = names
            .iter()
            .filter(|n| **n != names[i])
            .map(|n| UserId::from(*n))
            .collect();
        expected.sort();
        assert_eq!(peer_entities(a), expected, "app {i}");
        let swarm = a.world().resource::<Swarm>();
        assert_eq!(swarm.state(), &SignalingState::Joined);
        assert_eq!(swarm.identity(), Some(&UserId::from(names[i])));
        assert_eq!(swarm.peer_count(), 3);
    }

    // Every link's round-trip time gets measured (a ping on `fast` each second).
    let measured = run_until(&mut apps, Duration::from_secs(5), |apps| {
        apps.iter_mut().all(|a| {
            let mut q = a.world_mut().query::<&Peer>();
            q.iter(a.world())
                .all(|p| p.rtt.is_some_and(|r| r < Duration::from_secs(1)))
        })
    });
    assert!(measured, "RTT not measured on every peer");
    // ... and the diagnostics store has the peer count and a mean RTT.
    for a in &apps {
        let store = a.world().resource::<bevy::diagnostic::DiagnosticsStore>();
        let peers = store
            .get(&bevy_fast_rtc::FastRtcDiagnostics::PEERS)
            .and_then(|d| d.value());
        assert_eq!(peers, Some(3.0));
        let rtt = store
            .get(&bevy_fast_rtc::FastRtcDiagnostics::RTT_MS)
            .and_then(|d| d.value());
        assert!(rtt.is_some_and(|ms| ms > 0.0 && ms < 1000.0), "rtt {rtt:?}");
    }

    // The typed state broadcast each tick reaches every other app, with the right sender.
    let delivered = run_until(&mut apps, Duration::from_secs(10), |apps| {
        apps.iter().all(|a| {
            let seen = a.world().resource::<Seen>();
            names
                .iter()
                .filter(|n| **n != a.world().resource::<Me>().0)
                .all(|n| seen.values.iter().any(|(from, _)| from.as_str() == *n))
        })
    });
    assert!(delivered, "typed state did not reach everyone");
    for a in &apps {
        let seen = a.world().resource::<Seen>();
        let me = &a.world().resource::<Me>().0;
        assert!(
            seen.values
                .iter()
                .all(|(from, s)| from.as_str() == s.from && &s.from != me),
            "sender mismatch"
        );
        assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    }

    // A peer sends garbage on the typed channel: reported once, with the peer; the app goes on.
    let state_channel = ChannelId(1);
    for _ in 0..3 {
        let mut swarm = apps[0].world_mut().resource_mut::<Swarm>();
        swarm
            .queue(
                Some("p1".into()),
                state_channel,
                Payload::Binary(vec![0xff, 0x00, 0x13]),
            )
            .unwrap();
        apps[0].update();
    }
    let before = apps[1].world().resource::<Seen>().values.len();
    let reported = run_until(&mut apps, Duration::from_secs(10), |apps| {
        let seen = apps[1].world().resource::<Seen>();
        !seen.errors.is_empty() && seen.values.len() > before + 10
    });
    assert!(
        reported,
        "garbage not reported, or the app stopped receiving"
    );
    let seen = apps[1].world().resource::<Seen>();
    assert_eq!(
        seen.errors.len(),
        1,
        "once per peer and type: {:?}",
        seen.errors
    );
    assert_eq!(seen.errors[0].peer, Some(UserId::from("p0")));
    assert!(matches!(seen.errors[0].error, FastRtcError::Decode { .. }));

    // p3 leaves: the others get PeerClosed and its entity is despawned.
    apps[3].world_mut().resource_mut::<Swarm>().disconnect();
    let left = run_until(&mut apps, Duration::from_secs(10), |apps| {
        apps[..3]
            .iter_mut()
            .all(|a| peer_entities(a).len() == 2 && !a.world().resource::<Seen>().closed.is_empty())
    });
    assert!(left, "p3's departure not seen");
    for a in &mut apps[..3] {
        let seen = a.world().resource::<Seen>();
        assert_eq!(seen.closed, vec![(UserId::from("p3"), CloseReason::Remote)]);
        assert!(!peer_entities(a).contains(&UserId::from("p3")));
    }

    // p0 reconnects (connect while connected): its old peers' entities are despawned, and the
    // mesh forms again with fresh ones; no stale entity is left behind.
    let old: Vec<Entity> = {
        let mut q = apps[0].world_mut().query_filtered::<Entity, With<Peer>>();
        q.iter(apps[0].world()).collect()
    };
    let token = signaling::token(SECRET, "p0");
    apps[0]
        .world_mut()
        .resource_mut::<Swarm>()
        .connect(url.clone(), token)
        .unwrap();
    let rejoined = run_until(&mut apps[..3], Duration::from_secs(20), |apps| {
        let swarm_peers = apps[0].world().resource::<Swarm>().peer_count();
        swarm_peers == 2
            && peer_entities(&mut apps[0]).len() == 2
            && apps[1..].iter_mut().all(|a| peer_entities(a).len() == 2)
    });
    assert!(
        rejoined,
        "no mesh after reconnect: {:?}",
        peer_entities(&mut apps[0])
    );
    for e in old {
        assert!(
            apps[0].world().get_entity(e).is_err(),
            "stale peer entity {e:?} after reconnect"
        );
    }
    rt.block_on(server.shutdown()).unwrap();
}

/// No `with_signaling`: nothing connects until a system calls `Swarm::connect` (a menu, say),
/// and `disconnect` stops it.
#[test]
fn connecting_can_start_later_and_stop() {
    let (rt, server) = signaling_server();
    let url = server.ws_url();
    let later = || {
        let mut app = App::new();
        app.add_plugins((
            MinimalPlugins,
            FastRtcPlugin::new("later").with_native(NativeConfig::loopback()),
        ));
        app
    };
    let mut apps = vec![later(), later()];
    for _ in 0..30 {
        for a in &mut apps {
            a.update();
        }
    }
    for a in &apps {
        let swarm = a.world().resource::<Swarm>();
        assert_eq!(swarm.state(), &SignalingState::Disconnected);
        assert!(swarm.handle().is_none(), "nothing connects by itself");
    }
    // The "menu" system connects.
    for (a, name) in apps.iter_mut().zip(["a", "b"]) {
        let token = signaling::token(SECRET, name);
        let url = url.clone();
        a.world_mut()
            .run_system_once(move |mut swarm: ResMut<Swarm>| {
                swarm.connect(url.clone(), token.clone())
            })
            .unwrap()
            .unwrap();
    }
    assert!(run_until(&mut apps, Duration::from_secs(20), |apps| apps
        .iter_mut()
        .all(|a| peer_entities(a).len() == 1)));
    assert_eq!(
        apps[0].world().resource::<Swarm>().state(),
        &SignalingState::Joined
    );
    // Stop: the other side sees it, and this side's entities go too.
    apps[0].world_mut().resource_mut::<Swarm>().disconnect();
    assert!(run_until(&mut apps, Duration::from_secs(10), |apps| apps
        .iter_mut()
        .all(|a| peer_entities(a).is_empty())));
    assert_eq!(
        apps[0].world().resource::<Swarm>().state(),
        &SignalingState::Disconnected
    );
    rt.block_on(server.shutdown()).unwrap();
}

/// What the token-refresh system saw.
#[derive(Resource, Default)]
struct Requests(Vec<TokenRequest>);

/// Answers every `TokenRequested` with a freshly minted token, as a game's auth system would.
fn refresh_token(
    mut requests: MessageReader<TokenRequested>,
    mut seen: ResMut<Requests>,
    mut swarm: ResMut<Swarm>,
) {
    for r in requests.read() {
        seen.0.push(r.request.clone());
        let fresh = signaling::token(SECRET, "late");
        assert!(swarm.set_token(fresh));
    }
}

/// An app whose token has expired is asked for a new one through a `TokenRequested` message,
/// answers with `Swarm::set_token`, and joins.
#[test]
fn an_expired_token_is_asked_about_and_the_answer_joins() {
    let (rt, server) = signaling_server();
    let expired = TokenIssuer::new(&Secret::new(SECRET).unwrap())
        .issue(
            "late",
            "*",
            Duration::from_secs(60),
            SystemTime::now() - Duration::from_secs(3600),
        )
        .unwrap();
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        FastRtcPlugin::new("tokens")
            .with_signaling(server.ws_url(), expired)
            .with_native(NativeConfig::loopback()),
    ))
    .init_resource::<Requests>()
    .add_systems(Update, refresh_token);
    let mut apps = vec![app];
    assert!(run_until(&mut apps, Duration::from_secs(20), |apps| apps
        [0]
    .world()
    .resource::<Swarm>()
    .is_joined()));
    let seen = &apps[0].world().resource::<Requests>().0;
    assert!(!seen.is_empty(), "no TokenRequested message");
    assert!(
        seen.iter().all(|r| match r {
            TokenRequest::Rejected => true,
            TokenRequest::Expiring { expires_in } => expires_in.is_zero(),
            _ => false,
        }),
        "{seen:?}"
    );
    rt.block_on(server.shutdown()).unwrap();
}
