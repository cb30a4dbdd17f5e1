//! Real WebRTC: 2, 4 and 8 native members (webrtc-rs on 127.0.0.1) form a full mesh through a
//! real signaling server, and every message is delivered once.
#![cfg(not(target_arch = "wasm32"))] // native backend; the browser tests are tests/web.rs
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod support;

use fast_rtc_protocol::UserId;
use fast_rtc_swarm::{ChannelConfig, ChannelId, Payload, SwarmConfig, SwarmEvent};
use std::collections::BTreeMap;
use std::time::Duration;
use support::*;

async fn mesh(n: usize) {
    let server = server().await;
    let mut config = SwarmConfig::new("mesh");
    let state = config.add_channel(ChannelConfig::unreliable("state"));
    let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let members: Vec<_> = names
        .iter()
        .map(|name| member(&server, name, config.clone()))
        .collect();
    // n·(n−1) opens: each member sees every other once.
    let mut total = 0;
    for (i, m) in members.iter().enumerate() {
        let others: Vec<String> = names.iter().filter(|x| **x != names[i]).cloned().collect();
        let events = wait_open(m, &others, Duration::from_secs(30)).await;
        total += events
            .iter()
            .filter(|e| matches!(e, SwarmEvent::Open(_)))
            .count();
    }
    assert_eq!(total, n * (n - 1));

    // Every member broadcasts one reliable message; each is received exactly once by every other.
    for (i, m) in members.iter().enumerate() {
        assert_eq!(
            m.broadcast(ChannelId::FAST, format!("hello from m{i}"))
                .unwrap()
                .sent
                .len(),
            n - 1
        );
    }
    for (i, m) in members.iter().enumerate() {
        let events = collect_until(m, Duration::from_secs(10), |evs| {
            evs.iter()
                .filter(|e| {
                    matches!(
                        e,
                        SwarmEvent::Data {
                            channel: ChannelId::FAST,
                            ..
                        }
                    )
                })
                .count()
                >= n - 1
        })
        .await;
        let mut from: BTreeMap<UserId, Vec<Payload>> = BTreeMap::new();
        for e in events {
            if let SwarmEvent::Data {
                from: f,
                channel: ChannelId::FAST,
                payload,
                ..
            } = e
            {
                from.entry(f).or_default().push(payload);
            }
        }
        assert_eq!(from.len(), n - 1, "member {i}: {from:?}");
        for (f, payloads) in &from {
            assert_eq!(payloads, &vec![Payload::Text(format!("hello from {f}"))]);
        }
        // Nothing more trickles in (no duplicates).
        assert!(
            tokio::time::timeout(Duration::from_millis(200), m.recv())
                .await
                .map_or(true, |e| !matches!(
                    e,
                    Some(SwarmEvent::Data {
                        channel: ChannelId::FAST,
                        ..
                    })
                ))
        );
    }

    // The unreliable game channel carries a message (loopback does not lose it).
    members[0].broadcast(state, vec![42u8, 7]).unwrap();
    for m in &members[1..] {
        let events = collect_until(m, Duration::from_secs(10), |evs| {
            evs.iter()
                .any(|e| matches!(e, SwarmEvent::Data { channel, .. } if *channel == state))
        })
        .await;
        assert!(
            events.iter().any(|e| matches!(e, SwarmEvent::Data { channel, payload: Payload::Binary(b), .. } if *channel == state && b == &vec![42u8, 7])),
            "{events:?}"
        );
    }
    for m in &members {
        m.close();
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_connect() {
    mesh(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_members_form_a_full_mesh() {
    mesh(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_members_form_a_full_mesh() {
    mesh(8).await;
}
