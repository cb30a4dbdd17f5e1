//! Message sizes on the native data path: real webrtc-rs peers on 127.0.0.1. Bursts of
//! full-size SCTP packets must not trip the kernel's UDP payload limit (webrtc-rs batches them
//! with GSO up to 65,535 bytes, above Linux's 65,507 for IPv4), every message up to the
//! channel's limit must arrive whole (split into parts past one data-channel message), and a
//! message past the limit is refused.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests read the clock for deadlines

mod support;

use fast_rtc_swarm::{
    ChannelConfig, ChannelId, Payload, SendError, SwarmConfig, SwarmEvent, SwarmHandle,
};
use std::time::Duration;
use support::{collect_until, member, server, wait_open};

/// Binary payloads received by `h` on `channel`, until `n` arrived or `timeout`.
async fn receive(h: &SwarmHandle, channel: ChannelId, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let count = |evs: &[SwarmEvent]| {
        evs.iter()
            .filter(|e| matches!(e, SwarmEvent::Data { channel: c, .. } if *c == channel))
            .count()
    };
    collect_until(h, timeout, |evs| count(evs) >= n)
        .await
        .into_iter()
        .filter_map(|e| match e {
            SwarmEvent::Data {
                channel: c,
                payload: Payload::Binary(b),
                ..
            } if c == channel => Some(b),
            _ => None,
        })
        .collect()
}

/// A payload of `len` bytes whose content names its length (to tell messages apart).
fn payload(len: usize) -> Vec<u8> {
    let tag = (len as u32).to_le_bytes();
    (0..len).map(|i| tag[i % 4] ^ (i / 4) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_across_the_udp_payload_limit_and_bursts_all_arrive() {
    let srv = server().await;
    let mut config = SwarmConfig::new("sizes");
    let bulk = config.add_channel(ChannelConfig::reliable("bulk"));
    let a = member(&srv, "a", config.clone());
    let b = member(&srv, "b", config);
    wait_open(&a, &["b".into()], Duration::from_secs(10)).await;
    wait_open(&b, &["a".into()], Duration::from_secs(10)).await;

    // Open the congestion window first: webrtc-rs's SCTP only sends long runs of full-size
    // packets (which its driver batches) once the window has grown.
    for _ in 0..256 {
        a.send(&"b".into(), bulk, payload(16 << 10)).unwrap();
    }
    assert_eq!(
        receive(&b, bulk, 256, Duration::from_secs(10)).await.len(),
        256,
        "warm-up"
    );

    // Single messages from 60,000 to 66,000 bytes, one at a time: each is one run of
    // full-size packets and a shorter last one. Fine steps near the top, because whether a
    // run's total lands between 65,507 and 65,535 bytes depends on the last packet's size.
    // Past 65,536 (one SCTP message in webrtc-rs) they go as a large message's header and two
    // parts.
    let sizes: Vec<usize> = (60_000..63_000)
        .step_by(499)
        .chain((63_000..=66_000).step_by(3))
        .collect();
    for &len in &sizes {
        a.send(&"b".into(), bulk, payload(len)).unwrap();
        let got = receive(&b, bulk, 1, Duration::from_secs(5)).await;
        assert_eq!(
            got.len(),
            1,
            "a {len}-byte message did not arrive within 5 s"
        );
        assert!(
            got[0] == payload(len),
            "the {len}-byte message arrived changed"
        );
    }

    // A burst: 64 messages of 16 KiB and 8 of 64,000 bytes, queued at once.
    let burst: Vec<usize> = std::iter::repeat_n(16 << 10, 64)
        .chain(std::iter::repeat_n(64_000, 8))
        .collect();
    for &len in &burst {
        a.send(&"b".into(), bulk, payload(len)).unwrap();
    }
    let got = receive(&b, bulk, burst.len(), Duration::from_secs(10)).await;
    assert_eq!(got.len(), burst.len(), "the burst stalled");
    for (i, (msg, &len)) in got.iter().zip(&burst).enumerate() {
        assert!(
            *msg == payload(len),
            "burst message {i} ({len} bytes) arrived changed"
        );
    }
    // Large messages up to the limit, 16 MiB, both ways at once.
    let large = [65_537, 131_072, 1 << 20, 16 << 20];
    for &len in &large {
        a.send(&"b".into(), bulk, payload(len)).unwrap();
        b.send(&"a".into(), ChannelId::FAST, payload(len)).unwrap();
    }
    for (to, channel) in [(&b, bulk), (&a, ChannelId::FAST)] {
        let got = receive(to, channel, large.len(), Duration::from_secs(30)).await;
        let lens: Vec<usize> = got.iter().map(Vec::len).collect();
        assert_eq!(lens, large, "large messages");
        for msg in &got {
            assert!(
                *msg == payload(msg.len()),
                "a {}-byte message arrived changed",
                msg.len()
            );
        }
    }

    // Past the limit a send is refused, never dropped silently.
    let too_large = SendError::TooLarge {
        len: (16 << 20) + 1,
        max: 16 << 20,
    };
    assert_eq!(
        a.send(&"b".into(), bulk, payload((16 << 20) + 1)),
        Err(too_large.clone())
    );
    assert_eq!(a.broadcast(bulk, payload((16 << 20) + 1)), Err(too_large));

    // And the link still carries traffic both ways afterwards.
    b.send(&"a".into(), ChannelId::FAST, vec![7u8; 10]).unwrap();
    assert_eq!(
        receive(&a, ChannelId::FAST, 1, Duration::from_secs(5)).await,
        vec![vec![7u8; 10]]
    );
    a.close();
    b.close();
}

/// The field report's repro: two members echo each other's message, each echo 5 bytes longer,
/// both ways at once, from 60,000 bytes to the limit. Without the GSO cap this stalls for good
/// near 64 KB ("Failed to GSO-send 54 datagrams … Message too long", then the same at every
/// SCTP retransmission).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_growing_to_the_limit_both_ways_never_stalls() {
    let srv = server().await;
    let config = SwarmConfig::new("echo");
    let a = member(&srv, "a", config.clone());
    let b = member(&srv, "b", config);
    wait_open(&a, &["b".into()], Duration::from_secs(10)).await;
    wait_open(&b, &["a".into()], Duration::from_secs(10)).await;
    a.send(&"b".into(), ChannelId::FAST, payload(60_000))
        .unwrap();
    b.send(&"a".into(), ChannelId::FAST, payload(60_000))
        .unwrap();
    let limit = 65_536;
    let mut longest = 0;
    // A stall is for good (the same batch fails at every retransmission), so the test waits
    // up to 10 s for each echo rather than bounding the whole run: a loaded machine is slow,
    // not stalled.
    let patience = Duration::from_secs(10);
    let mut deadline = tokio::time::Instant::now() + patience;
    while longest + 5 <= limit && tokio::time::Instant::now() < deadline {
        let mut echoed = false;
        for (me, other) in [(&a, "b"), (&b, "a")] {
            while let Some(event) = me.try_recv() {
                if let SwarmEvent::Data {
                    payload: Payload::Binary(p),
                    ..
                } = event
                {
                    assert!(
                        p == payload(p.len()),
                        "a {}-byte echo arrived changed",
                        p.len()
                    );
                    longest = longest.max(p.len());
                    if p.len() + 5 <= limit {
                        me.send(&other.into(), ChannelId::FAST, payload(p.len() + 5))
                            .unwrap();
                    }
                    echoed = true;
                    deadline = tokio::time::Instant::now() + patience;
                }
            }
        }
        if !echoed {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    assert!(
        longest + 5 > limit,
        "the echo stalled at {longest} bytes (limit {limit}): no echo for 10 s"
    );
    a.close();
    b.close();
}
