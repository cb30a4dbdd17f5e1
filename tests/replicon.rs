//! bevy_replicon over the swarm (feature `replicon`): headless Bevy apps (MinimalPlugins) as
//! members of one room over real WebRTC (webrtc-rs on 127.0.0.1) and a real signaling server.
//! The member with the smallest identity hosts replicon's server; the others are its clients.
//! Checked: spawn, insert, mutate, remove and despawn reach every client; server → client and
//! client → server messages cross on their channels; a member that joins late gets the whole
//! world as it is; when the host leaves, the next one takes over with the world the members
//! hold (same entities, last values, no respawn) and replication resumes.
#![cfg(feature = "replicon")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)]

mod signaling;

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevy_fast_rtc::prelude::*;
use bevy_fast_rtc::replicon::{FastRtcRepliconPlugin, HostChanged, ReplicationHost, SwarmClient};
use bevy_replicon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const SECRET: &str = "replicon-tests-0123456789abcdef0123456789abcdef";

/// A replicated value.
#[derive(Component, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pos(i32);

/// A replicated marker, inserted and removed.
#[derive(Component, Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
struct Tag;

/// Server → clients, on replicon's `Unordered` channel.
#[derive(Message, Serialize, Deserialize, Clone, Copy, Debug)]
struct Ping(u32);

/// Client → server, on replicon's `Ordered` channel.
#[derive(Message, Serialize, Deserialize, Clone, Copy, Debug)]
struct Pong(u32);

/// What an app saw.
#[derive(Resource, Default)]
struct Seen {
    pings: Vec<u32>,
    /// On the host: (sender, value).
    pongs: Vec<(UserId, u32)>,
    host_changes: Vec<HostChanged>,
    /// `Pos` added to an entity / removed from one (a despawn counts): a respawn would show.
    pos_added: usize,
    pos_removed: usize,
}

fn record(
    mut pings: MessageReader<Ping>,
    mut pongs: MessageReader<FromClient<Pong>>,
    mut changes: MessageReader<HostChanged>,
    clients: Query<&SwarmClient>,
    mut seen: ResMut<Seen>,
) {
    seen.pings.extend(pings.read().map(|p| p.0));
    for p in pongs.read() {
        let from = match p.client_id {
            ClientId::Client(e) => clients.get(e).map(|c| c.peer.clone()).unwrap(),
            ClientId::Server => UserId::from("(server)"),
        };
        seen.pongs.push((from, p.message.0));
    }
    seen.host_changes.extend(changes.read().cloned());
}

fn app(url: &str, name: &str) -> App {
    let token = signaling::token(SECRET, name);
    let plugin = FastRtcPlugin::new("replicon")
        .with_signaling(url, token)
        .with_native(NativeConfig::loopback());
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, StatesPlugin, plugin, RepliconPlugins))
        .add_plugins(FastRtcRepliconPlugin::default().with_settle(Duration::from_millis(1000)))
        .replicate::<Pos>()
        .replicate::<Tag>()
        .add_server_message::<Ping>(Channel::Unordered)
        .add_client_message::<Pong>(Channel::Ordered)
        .init_resource::<Seen>()
        .add_systems(Update, record)
        .add_observer(|_: On<Add, Pos>, mut seen: ResMut<Seen>| seen.pos_added += 1)
        .add_observer(|_: On<Remove, Pos>, mut seen: ResMut<Seen>| seen.pos_removed += 1);
    app.finish();
    app.cleanup();
    app
}

/// Updates every app (about 200 times a second) until `done`.
#[track_caller]
fn run_until(apps: &mut [App], timeout: Duration, mut done: impl FnMut(&mut [App]) -> bool) {
    let deadline = Instant::now() + timeout;
    while !done(apps) {
        if Instant::now() >= deadline {
            for a in apps.iter_mut() {
                let authorized = authorized_clients(a);
                let world = world_state(a);
                let swarm = a.world().resource::<Swarm>();
                let peers: Vec<String> = swarm.peers().map(|(u, _)| u.to_string()).collect();
                println!(
                    "TIMEOUT {:?} state {:?} peers {peers:?} host {:?} server {:?} client {:?} authorized {authorized} world {world:?}",
                    swarm.identity(),
                    swarm.state(),
                    host_of(a),
                    a.world().resource::<State<ServerState>>().get(),
                    a.world().resource::<State<ClientState>>().get(),
                );
            }
            panic!("timed out");
        }
        for a in apps.iter_mut() {
            a.update();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn host_of(app: &App) -> Option<UserId> {
    app.world().resource::<ReplicationHost>().host().cloned()
}

fn client_connected(app: &App) -> bool {
    *app.world().resource::<State<ClientState>>().get() == ClientState::Connected
}

fn authorized_clients(app: &mut App) -> usize {
    app.world_mut()
        .query_filtered::<(), With<AuthorizedClient>>()
        .iter(app.world())
        .count()
}

/// The replicated state of an app: each entity's position and whether it is tagged.
fn world_state(app: &mut App) -> BTreeSet<(Pos, bool)> {
    app.world_mut()
        .query::<(&Pos, Has<Tag>)>()
        .iter(app.world())
        .map(|(p, t)| (*p, t))
        .collect()
}

/// `apps[0]` ("m0", the smallest identity) hosts; every other app is its connected,
/// authorized client.
fn settled(apps: &mut [App]) -> bool {
    let n = apps.len();
    let m0 = Some(UserId::from("m0"));
    apps.iter().all(|a| host_of(a) == m0)
        && apps[0].world().resource::<ReplicationHost>().is_host()
        && apps[1..].iter().all(client_connected)
        && authorized_clients(&mut apps[0]) == n - 1
}

fn members(url: &str, names: &[&str]) -> Vec<App> {
    names.iter().map(|n| app(url, n)).collect()
}

#[test]
fn spawn_insert_mutate_remove_despawn_and_messages_both_ways_with_three_members() {
    let (rt, server) = signaling::signaling_server(SECRET);
    let mut apps = members(&server.ws_url(), &["m0", "m1", "m2"]);
    let started = Instant::now();
    run_until(&mut apps, Duration::from_secs(20), settled);
    println!("REPLICON 3 members settled in {:?}", started.elapsed());

    // Spawn.
    let e = apps[0].world_mut().spawn((Replicated, Pos(1))).id();
    let want = |s: &[(Pos, bool)]| s.iter().copied().collect::<BTreeSet<_>>();
    run_until(&mut apps, Duration::from_secs(5), |apps| {
        apps[1..]
            .iter_mut()
            .all(|a| world_state(a) == want(&[(Pos(1), false)]))
    });
    // Insert, and mutate (mutations travel on the unreliable channel).
    apps[0].world_mut().entity_mut(e).insert((Tag, Pos(2)));
    run_until(&mut apps, Duration::from_secs(5), |apps| {
        apps[1..]
            .iter_mut()
            .all(|a| world_state(a) == want(&[(Pos(2), true)]))
    });
    apps[0]
        .world_mut()
        .entity_mut(e)
        .get_mut::<Pos>()
        .unwrap()
        .0 = 3;
    run_until(&mut apps, Duration::from_secs(5), |apps| {
        apps[1..]
            .iter_mut()
            .all(|a| world_state(a) == want(&[(Pos(3), true)]))
    });
    // Remove.
    apps[0].world_mut().entity_mut(e).remove::<Tag>();
    run_until(&mut apps, Duration::from_secs(5), |apps| {
        apps[1..]
            .iter_mut()
            .all(|a| world_state(a) == want(&[(Pos(3), false)]))
    });
    // Despawn.
    apps[0].world_mut().entity_mut(e).despawn();
    run_until(&mut apps, Duration::from_secs(5), |apps| {
        apps[1..].iter_mut().all(|a| world_state(a).is_empty())
    });

    // Server → clients (Unordered), to every client.
    for v in [10, 11, 12] {
        apps[0].world_mut().write_message(ToClients {
            targets: SendTargets::CLIENTS_ONLY,
            message: Ping(v),
        });
    }
    run_until(&mut apps, Duration::from_secs(5), |apps| {
        apps[1..].iter().all(|a| {
            let mut p = a.world().resource::<Seen>().pings.clone();
            p.sort_unstable();
            p == [10, 11, 12]
        })
    });
    // Clients → server (Ordered): in order, from the right sender.
    for (i, a) in apps.iter_mut().enumerate().skip(1) {
        for k in 0..3 {
            a.world_mut().write_message(Pong(i as u32 * 100 + k));
        }
    }
    run_until(&mut apps, Duration::from_secs(5), |apps| {
        apps[0].world().resource::<Seen>().pongs.len() >= 6
    });
    let pongs = &apps[0].world().resource::<Seen>().pongs;
    for (name, base) in [("m1", 100), ("m2", 200)] {
        let from: Vec<u32> = pongs
            .iter()
            .filter(|(u, _)| u.as_str() == name)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(from, [base, base + 1, base + 2], "{pongs:?}");
    }
    // The host saw no ping of its own (CLIENTS_ONLY), the clients no pong.
    assert!(apps[0].world().resource::<Seen>().pings.is_empty());
    for a in &apps[1..] {
        assert!(a.world().resource::<Seen>().pongs.is_empty());
        // One host, chosen once.
        let changes = &a.world().resource::<Seen>().host_changes;
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(!changes[0].is_host);
    }
    // Statistics come from the links.
    let stats = *apps[1].world().resource::<ClientStats>();
    assert!(stats.rtt >= 0.0 && stats.rtt < 1.0, "{stats:?}");
    rt.block_on(server.shutdown()).unwrap();
}

#[test]
fn a_member_joining_late_gets_the_whole_world() {
    let (rt, server) = signaling::signaling_server(SECRET);
    let url = server.ws_url();
    let mut apps = members(&url, &["m0", "m1"]);
    run_until(&mut apps, Duration::from_secs(20), settled);
    // The host builds a world and changes it before the late member arrives.
    let ids: Vec<Entity> = (0..6)
        .map(|i| apps[0].world_mut().spawn((Replicated, Pos(i))).id())
        .collect();
    apps[0].world_mut().entity_mut(ids[1]).insert(Tag);
    apps[0]
        .world_mut()
        .entity_mut(ids[2])
        .get_mut::<Pos>()
        .unwrap()
        .0 = 20;
    apps[0].world_mut().entity_mut(ids[3]).despawn();
    let host_world = world_state(&mut apps[0]);
    assert_eq!(host_world.len(), 5);
    run_until(&mut apps, Duration::from_secs(5), |apps| {
        world_state(&mut apps[1]) == host_world
    });

    let joined = Instant::now();
    apps.push(app(&url, "m2"));
    run_until(&mut apps, Duration::from_secs(20), |apps| {
        settled(apps) && world_state(&mut apps[2]) == host_world
    });
    println!(
        "REPLICON late member had the world {:?} after starting",
        joined.elapsed()
    );
    // And it follows later changes.
    apps[0].world_mut().entity_mut(ids[0]).despawn();
    let host_world = world_state(&mut apps[0]);
    run_until(&mut apps, Duration::from_secs(5), |apps| {
        apps[1..].iter_mut().all(|a| world_state(a) == host_world)
    });
    rt.block_on(server.shutdown()).unwrap();
}

/// Each app's replicated entities, by id, with their state.
fn entities(app: &mut App) -> Vec<(Entity, Pos, bool)> {
    let mut v: Vec<_> = app
        .world_mut()
        .query::<(Entity, &Pos, Has<Tag>)>()
        .iter(app.world())
        .map(|(e, p, t)| (e, *p, t))
        .collect();
    v.sort();
    v
}

/// The host leaves: the member with the next smallest identity becomes replicon's server with
/// the world it holds, the other reconnects its client to it; every survivor keeps the same
/// entities (same ids, no respawn, no duplicate) with their last values, and replication
/// resumes from the new host.
#[test]
fn the_host_leaves_and_the_next_member_takes_over_the_same_world() {
    let (rt, server) = signaling::signaling_server(SECRET);
    let mut apps = members(&server.ws_url(), &["m0", "m1", "m2"]);
    run_until(&mut apps, Duration::from_secs(20), settled);
    let ids: Vec<Entity> = (0..5)
        .map(|i| apps[0].world_mut().spawn((Replicated, Pos(i))).id())
        .collect();
    apps[0].world_mut().entity_mut(ids[1]).insert(Tag);
    let host_world = world_state(&mut apps[0]);
    run_until(&mut apps, Duration::from_secs(5), |apps| {
        apps[1..].iter_mut().all(|a| world_state(a) == host_world)
    });
    // Mutations just before the host leaves.
    apps[0]
        .world_mut()
        .entity_mut(ids[2])
        .get_mut::<Pos>()
        .unwrap()
        .0 = 22;
    let host_world = world_state(&mut apps[0]);
    run_until(&mut apps, Duration::from_secs(5), |apps| {
        apps[1..].iter_mut().all(|a| world_state(a) == host_world)
    });
    let before: Vec<Vec<(Entity, Pos, bool)>> = apps[1..].iter_mut().map(entities).collect();
    let added_before: Vec<usize> = apps[1..]
        .iter()
        .map(|a| a.world().resource::<Seen>().pos_added)
        .collect();

    // The host leaves the room.
    let mut gone = apps.remove(0);
    gone.world_mut().resource_mut::<Swarm>().disconnect();
    gone.update();
    let left = Instant::now();
    drop(gone);
    run_until(&mut apps, Duration::from_secs(20), |apps| {
        apps[0].world().resource::<ReplicationHost>().is_host()
            && host_of(&apps[1]) == Some(UserId::from("m1"))
            && client_connected(&apps[1])
            && authorized_clients(&mut apps[0]) == 1
    });
    println!(
        "REPLICON new host serving {:?} after the old one left",
        left.elapsed()
    );
    // The same entities, values and ids on both survivors; nothing respawned.
    for (i, a) in apps.iter_mut().enumerate() {
        assert_eq!(entities(a), before[i], "member m{}", i + 1);
        assert_eq!(a.world().resource::<Seen>().pos_added, added_before[i]);
        assert_eq!(a.world().resource::<Seen>().pos_removed, 0);
        let changes = &a.world().resource::<Seen>().host_changes;
        let last = changes.last().unwrap();
        assert_eq!(last.old, Some(UserId::from("m0")));
        assert_eq!(last.new, Some(UserId::from("m1")));
        assert_eq!(last.is_host, i == 0);
    }
    // Replication resumes from the new host: a mutation, a spawn, a despawn.
    let m1_ids: Vec<Entity> = before[0].iter().map(|(e, ..)| *e).collect();
    apps[0]
        .world_mut()
        .entity_mut(m1_ids[0])
        .get_mut::<Pos>()
        .unwrap()
        .0 = 100;
    apps[0].world_mut().entity_mut(m1_ids[4]).despawn();
    apps[0].world_mut().spawn((Replicated, Pos(7), Tag));
    let resumed = Instant::now();
    let host_world = world_state(&mut apps[0]);
    assert_eq!(host_world.len(), 5);
    let deadline = Instant::now() + Duration::from_secs(5);
    while world_state(&mut apps[1]) != host_world && Instant::now() < deadline {
        for a in apps.iter_mut() {
            a.update();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if world_state(&mut apps[1]) != host_world {
        for a in apps.iter_mut() {
            let v: Vec<_> = a
                .world_mut()
                .query::<(Entity, &Pos, Has<Remote>, Has<Signature>, Has<Replicated>)>()
                .iter(a.world())
                .map(|(e, p, r, s, rep)| format!("{e} {p:?} remote={r} sig={s} rep={rep}"))
                .collect();
            println!("DUMP {v:?}");
        }
    }
    assert_eq!(
        world_state(&mut apps[1]),
        host_world,
        "the new host's world did not reach its client"
    );
    println!(
        "REPLICON first changes from the new host replicated in {:?}",
        resumed.elapsed()
    );
    // The despawned entity and the new one: one removal, one addition; no duplicate.
    let seen = apps[1].world().resource::<Seen>();
    assert_eq!(seen.pos_added, added_before[1] + 1);
    assert_eq!(seen.pos_removed, 1);
    assert_eq!(entities(&mut apps[1]).len(), 5);
    rt.block_on(server.shutdown()).unwrap();
}

/// How the host goes away.
#[derive(Clone, Copy, Debug)]
enum Loss {
    /// It leaves the room.
    Leaves,
    /// Its links fail: every peer's link to it closes (it stays in the room, alone).
    LinksClosed,
}

/// Four members; the host spawns and mutates entities every frame and goes away in the middle
/// of that burst. The three survivors end with one world: the same values, no duplicate, the
/// entities they held kept (same ids) unless the new host never had them; and the new host's
/// changes reach every survivor.
fn migration_during_a_burst(loss: Loss) {
    let (rt, server) = signaling::signaling_server(SECRET);
    let mut apps = members(&server.ws_url(), &["m0", "m1", "m2", "m3"]);
    run_until(&mut apps, Duration::from_secs(20), settled);
    let mut ids: Vec<Entity> = (0..20)
        .map(|i| apps[0].world_mut().spawn((Replicated, Pos(i * 1000))).id())
        .collect();
    let host_world = world_state(&mut apps[0]);
    run_until(&mut apps, Duration::from_secs(5), |apps| {
        apps[1..].iter_mut().all(|a| world_state(a) == host_world)
    });
    // The burst: every frame each entity moves and one more is spawned; the host goes away
    // at frame 10 of it.
    let mut gone = None;
    for frame in 0..20 {
        if frame == 10 {
            let mut host = apps.remove(0);
            match loss {
                Loss::Leaves => host.world_mut().resource_mut::<Swarm>().disconnect(),
                Loss::LinksClosed => {
                    let mut swarm = host.world_mut().resource_mut::<Swarm>();
                    for peer in ["m1", "m2", "m3"] {
                        assert!(swarm.kick(&UserId::from(peer)));
                    }
                }
            }
            host.update();
            gone = Some((host, Instant::now()));
        }
        if gone.is_none() {
            let world = apps[0].world_mut();
            for &e in &ids {
                world.entity_mut(e).get_mut::<Pos>().unwrap().0 += 1;
            }
            ids.push(world.spawn((Replicated, Pos(100_000 + frame * 1000))).id());
        }
        for a in apps.iter_mut() {
            a.update();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (old_host, left) = gone.unwrap();
    let before: Vec<BTreeSet<Entity>> = apps
        .iter_mut()
        .map(|a| entities(a).into_iter().map(|(e, ..)| e).collect())
        .collect();
    let counts_before: Vec<(usize, usize)> = apps
        .iter()
        .map(|a| {
            let seen = a.world().resource::<Seen>();
            (seen.pos_added, seen.pos_removed)
        })
        .collect();
    run_until(&mut apps, Duration::from_secs(30), |apps| {
        apps[0].world().resource::<ReplicationHost>().is_host()
            && apps[1..]
                .iter()
                .all(|a| host_of(a) == Some(UserId::from("m1")) && client_connected(a))
            && authorized_clients(&mut apps[0]) == 2
    });
    let gap = left.elapsed();
    // One world everywhere, and the new host's changes reach it.
    let new_host_entities: Vec<Entity> = entities(&mut apps[0]).iter().map(|(e, ..)| *e).collect();
    for &e in &new_host_entities {
        apps[0]
            .world_mut()
            .entity_mut(e)
            .get_mut::<Pos>()
            .unwrap()
            .0 += 7;
    }
    let host_world = world_state(&mut apps[0]);
    run_until(&mut apps, Duration::from_secs(10), |apps| {
        apps[1..].iter_mut().all(|a| world_state(a) == host_world)
    });
    println!(
        "REPLICON {loss:?} during a burst, 4 members: new host serving after {gap:?}, {} entities, every survivor in step after {:?}",
        host_world.len(),
        left.elapsed()
    );
    for (i, a) in apps.iter_mut().enumerate() {
        let now: BTreeSet<Entity> = entities(a).into_iter().map(|(e, ..)| e).collect();
        // No duplicate: as many entities as the new host has.
        assert_eq!(now.len(), host_world.len(), "member m{}", i + 1);
        // The 20 entities every member held before the burst are the same entities now.
        let kept = now.intersection(&before[i]).count();
        assert!(kept >= 20, "member m{}: {kept} kept", i + 1);
        // Nothing was respawned: `Pos` was added once to each new entity and removed once
        // from each vanished one (an entity only some members had), never to a kept one.
        let seen = a.world().resource::<Seen>();
        let (added, removed) = counts_before[i];
        assert_eq!(
            seen.pos_added - added,
            now.len() - kept,
            "member m{}",
            i + 1
        );
        assert_eq!(
            seen.pos_removed - removed,
            before[i].len() - kept,
            "member m{}",
            i + 1
        );
    }
    drop(old_host);
    rt.block_on(server.shutdown()).unwrap();
}

#[test]
fn the_host_leaves_during_a_burst_of_changes_with_four_members() {
    migration_during_a_burst(Loss::Leaves);
}

#[test]
fn the_hosts_links_fail_during_a_burst_of_changes_with_four_members() {
    migration_during_a_burst(Loss::LinksClosed);
}

/// Replicon's `DisconnectRequest` on the host: the client's link is closed at both ends and
/// its client entity goes; no client entity comes back for it while the link closes.
#[test]
fn a_disconnect_request_closes_the_clients_link() {
    let (rt, server) = signaling::signaling_server(SECRET);
    let mut apps = members(&server.ws_url(), &["m0", "m1"]);
    run_until(&mut apps, Duration::from_secs(20), settled);
    let client = apps[0]
        .world_mut()
        .query_filtered::<Entity, With<ConnectedClient>>()
        .single(apps[0].world())
        .unwrap();
    apps[0]
        .world_mut()
        .write_message(DisconnectRequest { client });
    // The frame that carries the request out.
    for a in &mut apps {
        a.update();
    }
    let mut clients_seen = 0;
    run_until(&mut apps, Duration::from_secs(10), |apps| {
        clients_seen = clients_seen.max(
            apps[0]
                .world_mut()
                .query_filtered::<(), With<ConnectedClient>>()
                .iter(apps[0].world())
                .count(),
        );
        apps.iter()
            .all(|a| a.world().resource::<Swarm>().peer_count() == 0)
    });
    assert_eq!(clients_seen, 0, "a client entity came back");
    assert!(apps[0].world().get_entity(client).is_err());
    // Alone, m1 hosts itself.
    assert!(!client_connected(&apps[1]));
    assert!(apps[1].world().resource::<ReplicationHost>().is_host());
    rt.block_on(server.shutdown()).unwrap();
}
