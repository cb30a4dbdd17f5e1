//! ICE restarts over real WebRTC ([`fast_rtc_swarm::swarm#ice-restarts`]): two webrtc-rs
//! members on 127.0.0.1 linked relay-only through a real coturn (Debian's `turnserver`) and the
//! real signaling server; the TURN server is killed under them (their allocations, so their
//! only path, are gone) and started again on the same address. The link must come back by ICE
//! restart: both ends see `Interrupted` then `Restored`, neither sees a `Close`, the link is
//! the same connection, and reliable messages sent during the outage arrive, in order.
//!
//! Needs `turnserver` on `PATH`, so `#[ignore]`d: `scripts/turn-loopback-test.sh` (run by
//! `scripts/test.sh`) installs coturn and runs it with `--ignored`.
#![cfg(not(target_arch = "wasm32"))] // native backend and a local coturn
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // the test reads the clock

mod support;

use fast_rtc_protocol::UserId;
use fast_rtc_swarm::{ChannelId, Payload, SwarmEvent, SwarmHandle};
use fast_rtc_testkit::coturn::Coturn;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use support::turn::relay_only;
use support::*;

const USER: &str = "player";
const PASSWORD: &str = "secret";

/// Waits for an event matching `pred` on `h`, keeping every event seen in `seen`.
async fn wait_for(
    h: &SwarmHandle,
    seen: &mut Vec<SwarmEvent>,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&SwarmEvent) -> bool,
) {
    if seen.iter().any(&pred) {
        return;
    }
    let got = collect_until(h, timeout, |evs| evs.iter().any(&pred)).await;
    let found = got.iter().any(&pred);
    seen.extend(got);
    assert!(found, "{what}: not within {timeout:?}; events: {seen:?}");
}

/// The connection id of `h`'s link to `peer`.
fn link_to(h: &SwarmHandle, peer: &str) -> Option<fast_rtc_protocol::ConnectionId> {
    h.peers()
        .into_iter()
        .find(|p| p.user_id.as_str() == peer)
        .map(|p| p.id)
}

fn texts_from(events: &[SwarmEvent], from: &str) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            SwarmEvent::Data {
                from: f,
                payload: Payload::Text(t),
                ..
            } if f.as_str() == from => Some(t.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs coturn's `turnserver`: run by scripts/turn-loopback-test.sh with --ignored"]
async fn a_link_survives_its_turn_server_restarting_by_ice_restart() {
    init_tracing();
    let coturn = Coturn::start(Ipv4Addr::LOCALHOST.into(), USER, PASSWORD).unwrap_or_else(|e| {
        panic!("{e}\nthis test needs Debian's coturn (scripts/turn-loopback-test.sh)")
    });
    let (turn_addr, turn_url) = (coturn.addr(), coturn.url().to_owned());
    let server = server().await;
    let a = member(
        &server,
        "a",
        relay_only("restart", &turn_url, USER, PASSWORD),
    );
    // b joins once a's offer is parked: a is the link's offerer.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b = member(
        &server,
        "b",
        relay_only("restart", &turn_url, USER, PASSWORD),
    );
    let mut a_seen = wait_open(&a, &["b".into()], Duration::from_secs(20)).await;
    let mut b_seen = wait_open(&b, &["a".into()], Duration::from_secs(20)).await;
    let id = link_to(&a, "b").expect("a's link to b");

    // The TURN server goes away: so do both allocations, the link's only path.
    drop(coturn);
    let down = Instant::now();
    wait_for(
        &a,
        &mut a_seen,
        "a sees the link interrupted",
        Duration::from_secs(20),
        |e| matches!(e, SwarmEvent::Interrupted { .. }),
    )
    .await;
    let noticed = down.elapsed();
    // Reliable data sent while the path is gone waits for it.
    for n in 0..10 {
        b.send(
            &UserId::from("a"),
            ChannelId::FAST,
            format!("during outage {n}"),
        )
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let coturn = Coturn::start_at(turn_addr, USER, PASSWORD).unwrap();
    let back = Instant::now();
    for (h, seen, name) in [(&a, &mut a_seen, "a"), (&b, &mut b_seen, "b")] {
        wait_for(
            h,
            seen,
            &format!("{name}: the link restored"),
            Duration::from_secs(25),
            |e| matches!(e, SwarmEvent::Restored { .. }),
        )
        .await;
    }
    let restored = back.elapsed();
    let want: Vec<String> = (0..10).map(|n| format!("during outage {n}")).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while texts_from(&a_seen, "b").len() < want.len() && Instant::now() < deadline {
        a_seen.extend(collect_until(&a, Duration::from_secs(1), |_| false).await);
    }
    let delivered = back.elapsed();
    assert_eq!(texts_from(&a_seen, "b"), want, "in order, none lost");
    for (seen, name) in [(&a_seen, "a"), (&b_seen, "b")] {
        assert!(
            !seen.iter().any(|e| matches!(e, SwarmEvent::Close { .. })),
            "{name} closed the peer: {seen:?}\ncoturn:\n{}",
            coturn.log()
        );
        assert!(
            seen.iter()
                .any(|e| matches!(e, SwarmEvent::Interrupted { id: i, .. } if *i == id)),
            "{name} was not told of the outage: {seen:?}"
        );
    }
    // The same link carries data both ways.
    assert_eq!(link_to(&a, "b"), Some(id.clone()));
    a.send(&UserId::from("b"), ChannelId::FAST, "after")
        .unwrap();
    wait_for(
        &b,
        &mut b_seen,
        "b hears a after the restore",
        Duration::from_secs(10),
        |e| matches!(e, SwarmEvent::Data { payload: Payload::Text(t), .. } if t == "after"),
    )
    .await;
    let outage = a_seen.iter().find_map(|e| match e {
        SwarmEvent::Restored { outage, .. } => Some(*outage),
        _ => None,
    });
    println!(
        "RESTART: outage noticed after {noticed:?}; TURN back after a further {:?}; link \
         restored {restored:?} after that (a's outage {outage:?}); the outage's messages \
         delivered {delivered:?} after the TURN server was back",
        Duration::from_secs(3)
    );
    a.close();
    b.close();
}
