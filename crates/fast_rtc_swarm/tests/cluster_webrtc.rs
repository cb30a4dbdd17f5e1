//! Cluster mode with real WebRTC members: `fast_rtc_swarm` members (webrtc-rs on 127.0.0.1) on
//! different `fast_rtc_server` instances sharing rooms over a real Redis (or Valkey).
//!
//! Here, not in the server's tests, because they need the server and the swarm at once: the
//! swarm has a dev-dependency on the server, and the server none on the swarm (nor on anything
//! that depends on the swarm), so no crate reaches itself through dev-dependencies. They share
//! the server's cluster test helpers (`cluster_support`, included by path: the shared test kit
//! may not depend on the server). Like the server's `tests/cluster.rs` they
//! are `#[ignore]`d in a plain `cargo test`; `scripts/redis-test.sh` installs Redis, builds the
//! `fast-rtc-server` binary and runs them with `--ignored`.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests read the clock for tokens and deadlines

#[path = "../../fast_rtc_server/tests/cluster_support/mod.rs"]
mod cluster_support;

use cluster_support::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Two real WebRTC members (fast_rtc_swarm, webrtc-rs on 127.0.0.1) on two different instances
/// link and exchange data both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server or valkey-server: run scripts/redis-test.sh"]
async fn webrtc_members_on_two_instances_exchange_data() {
    use fast_rtc_swarm::{ChannelId, NativeConfig, Payload, Signaling, SwarmConfig, SwarmEvent};
    let redis = start_redis();
    let servers = [instance(&redis).await, instance(&redis).await];
    let member = |i: usize, user: &str| {
        let signaling = Signaling::WebSocket {
            url: servers[i].ws_url(),
            token: token(user, "*"),
        };
        let (handle, driver) =
            fast_rtc_swarm::start(SwarmConfig::new("rtc"), NativeConfig::loopback(), signaling)
                .unwrap();
        tokio::spawn(driver);
        handle
    };
    let a = member(0, "a");
    let b = member(1, "b");
    let wait = |h: fast_rtc_swarm::SwarmHandle, from: &'static str, text: &'static str| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut opened = false;
        loop {
            let ev = tokio::time::timeout_at(deadline, h.recv())
                .await
                .unwrap_or_else(|_| panic!("nothing from {from} in 30 s (opened: {opened})"))
                .unwrap();
            match ev {
                SwarmEvent::Open(p) => {
                    assert_eq!(p.user_id.as_str(), from);
                    opened = true;
                    h.send(&from.into(), ChannelId::FAST, text).unwrap();
                }
                SwarmEvent::Data {
                    payload: Payload::Text(t),
                    ..
                } => return (h, t),
                _ => {}
            }
        }
    };
    let ((a, to_a), (b, to_b)) = tokio::join!(wait(a, "b", "hello b"), wait(b, "a", "hello a"));
    assert_eq!(to_a, "hello a");
    assert_eq!(to_b, "hello b");
    assert_eq!(a.peers().len(), 1);
    assert_eq!(b.peers().len(), 1);
    a.close();
    b.close();
}

/// A TCP load balancer in front of the instances, for members whose URL must outlive one
/// instance: every new connection goes to the current target; connections already made stay
/// where they are (and end when their instance does).
struct Balancer {
    addr: std::net::SocketAddr,
    target: Arc<std::sync::Mutex<std::net::SocketAddr>>,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Balancer {
    async fn start(target: std::net::SocketAddr) -> Balancer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(std::sync::Mutex::new(target));
        let tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (to, list) = (target.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let at = *to.lock().unwrap();
                let Ok(mut server) = TcpStream::connect(at).await else {
                    continue; // refused: the client sees its connection end and retries
                };
                let conn = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                list.lock().unwrap().push(conn.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Balancer {
            addr,
            target,
            tasks,
        }
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    fn point_to(&self, target: std::net::SocketAddr) {
        *self.target.lock().unwrap() = target;
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap().iter() {
            t.abort();
        }
    }
}

/// A real WebRTC member (fast_rtc_swarm, webrtc-rs on 127.0.0.1) with every event it reported.
struct Rtc {
    name: &'static str,
    handle: fast_rtc_swarm::SwarmHandle,
    events: Vec<fast_rtc_swarm::SwarmEvent>,
}

impl Rtc {
    fn start(url: String, name: &'static str) -> Rtc {
        use fast_rtc_swarm::{NativeConfig, Signaling, SwarmConfig};
        let signaling = Signaling::WebSocket {
            url,
            token: token(name, "*"),
        };
        let (handle, driver) = fast_rtc_swarm::start(
            SwarmConfig::new("lobby"),
            NativeConfig::loopback(),
            signaling,
        )
        .unwrap();
        tokio::spawn(driver);
        Rtc {
            name,
            handle,
            events: Vec::new(),
        }
    }

    fn pump(&mut self) {
        while let Some(e) = self.handle.try_recv() {
            self.events.push(e);
        }
    }

    /// The last signaling state it reported.
    fn signaling(&self) -> Option<&fast_rtc_swarm::SignalingState> {
        self.events.iter().rev().find_map(|e| match e {
            fast_rtc_swarm::SwarmEvent::Signaling(s) => Some(s),
            _ => None,
        })
    }

    fn joined(&self) -> bool {
        matches!(
            self.signaling(),
            Some(fast_rtc_swarm::SignalingState::Joined)
        )
    }

    fn peer_names(&self) -> std::collections::BTreeSet<String> {
        self.handle
            .peers()
            .into_iter()
            .map(|p| p.user_id.to_string())
            .collect()
    }

    /// Joined, with one open link to each of `others` and nothing else: `others.len()` links
    /// plus the one parked offer of `peer_buffer` 1 (a replaced link left open would make one
    /// more connection).
    fn settled(&self, others: &[&str]) -> bool {
        let want: std::collections::BTreeSet<String> =
            others.iter().map(|s| s.to_string()).collect();
        self.joined()
            && self.handle.signaling_connected()
            && self.peer_names() == want
            && self.handle.peers().len() == others.len()
            && self.handle.connection_count() == others.len() + 1
    }

    fn closes(&self) -> Vec<&fast_rtc_swarm::SwarmEvent> {
        self.events
            .iter()
            .filter(|e| matches!(e, fast_rtc_swarm::SwarmEvent::Close { .. }))
            .collect()
    }

    fn texts_from(&self, from: &str) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                fast_rtc_swarm::SwarmEvent::Data {
                    from: f,
                    payload: fast_rtc_swarm::Payload::Text(t),
                    ..
                } if f.as_str() == from => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    fn describe(&self) -> String {
        format!(
            "{}: signaling {:?} (connected {}), peers {:?}, {} connections",
            self.name,
            self.signaling(),
            self.handle.signaling_connected(),
            self.peer_names(),
            self.handle.connection_count()
        )
    }
}

/// Pumps every member's events until `done` holds for all of them (or fails after `within`).
async fn settle(members: &mut [&mut Rtc], within: Duration, done: impl Fn(&Rtc) -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        for m in members.iter_mut() {
            m.pump();
        }
        if members.iter().all(|m| done(m)) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let state: Vec<String> = members.iter().map(|m| m.describe()).collect();
            panic!("not settled within {within:?}:\n{}", state.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Real WebRTC members (fast_rtc_swarm on webrtc-rs, 127.0.0.1) on three instances; the room's
/// owner, the real binary, is killed with SIGKILL. Member `a` reaches the instances through a
/// load balancer (a TCP proxy of the test's own) that points to the owner, and after the kill to
/// a survivor; `b` and `c` are on the two other instances, at fixed URLs. After the kill every
/// member is sent to reconnect (1012, or its connection ends), rejoins, and the room forms
/// again on a surviving instance; a new member `d` joining after the kill links with every
/// survivor. Throughout, no survivor sees a `Close` (the peer-to-peer links stay up while the
/// signaling moves), and at the end each has exactly one link per peer: the links of the new
/// sessions replaced the old ones and nothing was left open (connections = links + 1 parked
/// offer). Data then flows between every pair, old and new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server or valkey-server: run scripts/redis-test.sh"]
async fn webrtc_links_survive_a_killed_owner() {
    use fast_rtc_swarm::ChannelId;
    let redis = start_redis();
    let mut owner = start_binary(&redis);
    let owner_addr = owner.addr();
    let (b_srv, c_srv) = (instance(&redis).await, instance(&redis).await);
    let lb = Balancer::start(owner_addr).await;

    // `a` joins first, through the balancer: the binary takes the room.
    let mut a = Rtc::start(lb.ws_url(), "a");
    settle(&mut [&mut a], STEP, Rtc::joined).await;
    let mut b = Rtc::start(b_srv.ws_url(), "b");
    let mut c = Rtc::start(c_srv.ws_url(), "c");
    settle(
        &mut [&mut a, &mut b, &mut c],
        Duration::from_secs(30),
        |m| {
            let others: Vec<&str> = ["a", "b", "c"]
                .into_iter()
                .filter(|n| *n != m.name)
                .collect();
            m.settled(&others)
        },
    )
    .await;
    assert!(
        b_srv.room(&"lobby".into()).await.is_none() && c_srv.room(&"lobby".into()).await.is_none(),
        "the room is held by the binary, not by b's or c's instance"
    );
    let links_before: Vec<Vec<String>> = [&a, &b, &c]
        .iter()
        .map(|m| {
            m.handle
                .peers()
                .into_iter()
                .map(|p| p.id.to_string())
                .collect()
        })
        .collect();

    owner.kill();
    let killed = std::time::Instant::now();
    lb.point_to(b_srv.local_addr());
    // Every member notices: its socket ends (a) or is closed with 1012 (b, c).
    settle(&mut [&mut a, &mut b, &mut c], STEP, |m| !m.joined()).await;
    // A new member joins after the kill.
    let mut d = Rtc::start(c_srv.ws_url(), "d");
    let all = ["a", "b", "c", "d"];
    settle(
        &mut [&mut a, &mut b, &mut c, &mut d],
        Duration::from_secs(60),
        |m| {
            let others: Vec<&str> = all.into_iter().filter(|n| *n != m.name).collect();
            m.settled(&others)
        },
    )
    .await;
    eprintln!(
        "room whole again {:?} after the kill (lease {LEASE:?})",
        killed.elapsed()
    );
    for (m, before) in [&a, &b, &c].iter().zip(&links_before) {
        assert!(
            m.closes().is_empty(),
            "{} saw a close: {:?}",
            m.name,
            m.closes()
        );
        let now: Vec<String> = m
            .handle
            .peers()
            .into_iter()
            .filter(|p| p.user_id.as_str() != "d")
            .map(|p| p.id.to_string())
            .collect();
        assert!(
            now.iter().all(|id| !before.contains(id)),
            "{}: the old links were replaced by the new sessions' ({before:?} -> {now:?})",
            m.name
        );
    }
    assert!(d.closes().is_empty(), "d saw a close: {:?}", d.closes());
    // The room is on a surviving instance.
    owner_snapshot(&[&b_srv, &c_srv], "lobby", 4).await;

    // Data between every pair.
    let mut members = [a, b, c, d];
    for m in &members {
        for to in all.into_iter().filter(|n| *n != m.name) {
            m.handle
                .send(&to.into(), ChannelId::FAST, format!("{}>{to}", m.name))
                .unwrap();
        }
    }
    let mut refs: Vec<&mut Rtc> = members.iter_mut().collect();
    settle(&mut refs, STEP, |m| {
        all.into_iter()
            .filter(|n| *n != m.name)
            .all(|from| m.texts_from(from).contains(&format!("{from}>{}", m.name)))
    })
    .await;
    for m in &members {
        assert!(
            m.closes().is_empty(),
            "{} saw a close: {:?}",
            m.name,
            m.closes()
        );
        m.handle.close();
    }
}
