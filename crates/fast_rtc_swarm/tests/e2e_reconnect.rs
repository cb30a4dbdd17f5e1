//! Real WebRTC: the signaling server goes away and comes back; peer links stay up throughout,
//! and the members rejoin without the application seeing a single close.
#![cfg(not(target_arch = "wasm32"))] // native backend; the browser tests are tests/web.rs
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)]

mod support;

use fast_rtc_server::{JwtAuthenticator, Secret, Server, ServerConfig};
use fast_rtc_swarm::{ChannelId, Payload, SwarmConfig, SwarmEvent};
use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_survive_a_signaling_outage() {
    let server = server().await;
    let addr = server.local_addr();
    let names = ["a", "b", "c"];
    let members: Vec<_> = names
        .iter()
        .map(|n| member(&server, n, SwarmConfig::new("r")))
        .collect();
    for (i, m) in members.iter().enumerate() {
        let others: Vec<String> = names
            .iter()
            .filter(|n| **n != names[i])
            .map(|n| n.to_string())
            .collect();
        wait_open(m, &others, Duration::from_secs(30)).await;
    }

    // The server goes away.
    server.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(members.iter().all(|m| !m.signaling_connected()));
    // Peer links still carry data.
    members[0]
        .send(&"b".into(), ChannelId::FAST, "during the outage")
        .unwrap();
    let got = collect_until(&members[1], Duration::from_secs(5), |e| {
        e.iter().any(|e| matches!(e, SwarmEvent::Data { .. }))
    })
    .await;
    assert!(got.iter().any(|e| matches!(e, SwarmEvent::Data { payload: Payload::Text(t), .. } if t == "during the outage")), "{got:?}");

    // It comes back on the same address; the members reconnect and rejoin.
    let auth = JwtAuthenticator::new(&Secret::new(SECRET).unwrap());
    let server = Server::new(ServerConfig::default(), auth)
        .spawn(addr)
        .await
        .unwrap();
    for _ in 0..100 {
        if members.iter().all(|m| m.signaling_connected()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        members.iter().all(|m| m.signaling_connected()),
        "every member reconnected"
    );
    // Let the new links form and replace the old ones, then check nobody saw a close.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, m) in members.iter().enumerate() {
        let mut events = Vec::new();
        while let Some(e) = m.try_recv() {
            events.push(e);
        }
        assert!(
            !events.iter().any(|e| matches!(e, SwarmEvent::Close { .. })),
            "member {i} saw a close: {events:?}"
        );
        assert_eq!(m.peers().len(), 2, "member {i}");
        // two links and one parked offer: the replaced links were closed, nothing leaked
        assert_eq!(m.connection_count(), 3, "member {i}");
    }
    members[2]
        .send(&"a".into(), ChannelId::FAST, "after")
        .unwrap();
    let got = collect_until(&members[0], Duration::from_secs(5), |e| {
        e.iter().any(|e| matches!(e, SwarmEvent::Data { .. }))
    })
    .await;
    assert!(
        got.iter().any(
            |e| matches!(e, SwarmEvent::Data { payload: Payload::Text(t), .. } if t == "after")
        ),
        "{got:?}"
    );
    server.shutdown().await.unwrap();
}
