//! Every channel mode carries data end to end, both ways: real webrtc-rs peers on 127.0.0.1.
//! (Loopback loses nothing, so partially reliable modes deliver everything here; what they
//! drop under loss is webrtc-rs's SCTP, not ours.)
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use fast_rtc_swarm::{ChannelConfig, ChannelId, Delivery, Payload, SwarmConfig, SwarmEvent};
use std::time::Duration;
use support::{collect_until, member, server, wait_open};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delivery_mode_carries_data_both_ways() {
    let srv = server().await;
    let mut config = SwarmConfig::new("modes");
    let modes = [
        Delivery::Reliable,
        Delivery::Unreliable,
        Delivery::MaxRetransmits(3),
        Delivery::MaxPacketLifeTime(500),
        Delivery::UnreliableOrdered,
    ];
    let channels: Vec<ChannelId> = modes
        .iter()
        .enumerate()
        .map(|(i, &delivery)| {
            config.add_channel(ChannelConfig {
                label: format!("mode{i}"),
                delivery,
            })
        })
        .collect();
    let a = member(&srv, "a", config.clone());
    let b = member(&srv, "b", config);
    wait_open(&a, &["b".into()], Duration::from_secs(10)).await;
    wait_open(&b, &["a".into()], Duration::from_secs(10)).await;
    // Unreliable channels refuse sends until they are open: give them a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;

    const N: u8 = 20;
    for (from, to, name) in [(&a, &b, "b"), (&b, &a, "a")] {
        for &channel in &channels {
            for n in 0..N {
                from.send(&name.into(), channel, vec![channel.0 as u8, n])
                    .unwrap();
            }
        }
        let want = channels.len() * usize::from(N);
        let count = |evs: &[SwarmEvent]| {
            evs.iter()
                .filter(|e| matches!(e, SwarmEvent::Data { .. }))
                .count()
        };
        let events = collect_until(to, Duration::from_secs(10), |evs| count(evs) >= want).await;
        for (&channel, delivery) in channels.iter().zip(modes) {
            let got: Vec<u8> = events
                .iter()
                .filter_map(|e| match e {
                    SwarmEvent::Data {
                        channel: c,
                        payload: Payload::Binary(b),
                        ..
                    } if *c == channel => Some(b[1]),
                    _ => None,
                })
                .collect();
            let mut sorted = got.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..N).collect::<Vec<_>>(), "{delivery:?} to {name}");
            if matches!(delivery, Delivery::Reliable | Delivery::UnreliableOrdered) {
                assert_eq!(got, sorted, "{delivery:?} to {name} must keep the order");
            }
        }
    }
    a.close();
    b.close();
}
