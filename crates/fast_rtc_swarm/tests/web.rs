//! The browser backend in a real headless Chromium, through a real signaling server.
//!
//! Run by `scripts/browser-test.sh`, which starts `fast-rtc-server` on a free loopback port,
//! issues tokens, starts the native members (`examples/echo_peer.rs`), and passes the URL and
//! tokens in at compile time (a wasm test cannot read the environment).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // the timing test reads the clock

mod browser;

use browser::*;
use fast_rtc_swarm::{ChannelConfig, ChannelId, Payload, SwarmConfig, SwarmHandle};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// `fast` plus the unreliable `state` channel (1), as `echo_peer` has.
const STATE: ChannelId = ChannelId(1);

fn game_member(token: &str, room: &str) -> SwarmHandle {
    let mut config = SwarmConfig::new(room);
    assert_eq!(
        config.add_channel(ChannelConfig::unreliable("state")),
        STATE
    );
    member(token, config, room)
}

#[wasm_bindgen_test]
async fn two_swarms_in_one_page_connect_and_exchange_data() {
    allow_loopback_candidates().await;
    let a = game_member(
        setting(
            option_env!("FAST_RTC_WEB_TEST_TOKEN_A"),
            "FAST_RTC_WEB_TEST_TOKEN_A",
        ),
        "web-two",
    );
    sleep_ms(300).await; // b answers a's parked offer (one round trip)
    let b = game_member(
        setting(
            option_env!("FAST_RTC_WEB_TEST_TOKEN_B"),
            "FAST_RTC_WEB_TEST_TOKEN_B",
        ),
        "web-two",
    );
    let peer_of_b = opened(&b).await;
    let peer_of_a = opened(&a).await;
    assert_eq!(peer_of_b.user_id.as_str(), "web-a");
    assert_eq!(peer_of_a.user_id.as_str(), "web-b");

    // Reliable `fast`: text one way, binary the other.
    b.send(&peer_of_b.user_id, ChannelId::FAST, "hello from b")
        .unwrap();
    let (got, from) = data_on(&a, ChannelId::FAST).await;
    assert_eq!(
        (got, from.as_str()),
        (Payload::Text("hello from b".into()), "web-b")
    );
    a.send(&peer_of_a.user_id, ChannelId::FAST, vec![1u8, 2, 3])
        .unwrap();
    assert_eq!(
        data_on(&b, ChannelId::FAST).await.0,
        Payload::Binary(vec![1, 2, 3])
    );

    // The unreliable game channel.
    let got = data_on_unreliable(&b, STATE, || {
        let _ = a.broadcast(STATE, vec![9u8; 100]);
    })
    .await;
    assert_eq!(got, Payload::Binary(vec![9u8; 100]));

    // A close is seen by the other side.
    a.close();
    assert_eq!(closed(&b).await.user_id.as_str(), "web-a");
    b.close();
}

/// A native member (`examples/echo_peer.rs`, started by the script in room `mixed`) and this
/// browser member: data both ways on reliable `fast` and the unreliable `state` channel.
#[wasm_bindgen_test]
async fn a_browser_member_and_a_native_member_exchange_data_both_ways() {
    allow_loopback_candidates().await;
    let web = game_member(
        setting(
            option_env!("FAST_RTC_WEB_TEST_TOKEN_MIXED"),
            "FAST_RTC_WEB_TEST_TOKEN_MIXED",
        ),
        "mixed",
    );
    let native = opened(&web).await;
    assert_eq!(native.user_id.as_str(), "native-echo");
    // native -> browser on fast (sent by the native side when the link opened).
    let (hello, from) = data_on(&web, ChannelId::FAST).await;
    assert_eq!(
        (hello, from.as_str()),
        (Payload::Text("hello from native".into()), "native-echo")
    );
    // browser -> native -> browser on fast (reliable).
    web.send(&native.user_id, ChannelId::FAST, "ping").unwrap();
    assert_eq!(
        data_on(&web, ChannelId::FAST).await.0,
        Payload::Text("echo:ping".into())
    );
    // browser -> native -> browser on state (unreliable).
    let echo = data_on_unreliable(&web, STATE, || {
        let _ = web.send(&native.user_id, STATE, vec![7u8; 4]);
    })
    .await;
    assert_eq!(echo, Payload::Binary(b"echo:\x07\x07\x07\x07".to_vec()));
    web.close();
}

/// A browser joiner's time from `start` to `Open` with every native member, with 1 and with 3
/// native members present (`echo_peer`s started by the script). Printed, not asserted: speed is
/// measured, not tested; the test checks that every link opens.
#[wasm_bindgen_test]
async fn browser_join_time_with_native_members() {
    allow_loopback_candidates().await;
    let token = setting(
        option_env!("FAST_RTC_WEB_TEST_TOKEN_TIMING"),
        "FAST_RTC_WEB_TEST_TOKEN_TIMING",
    );
    for (room, n) in [("timing-1", 1), ("timing-3", 3)] {
        let t0 = web_time::Instant::now();
        let web = game_member(token, room);
        let mut at = Vec::new();
        while at.len() < n {
            let p = opened(&web).await;
            assert!(p.user_id.as_str().starts_with("native-t"), "{p:?}");
            at.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        let each: Vec<String> = at.iter().map(|ms| format!("{ms:.1}")).collect();
        web_sys::console::log_1(
            &format!(
                "browser join -> open with {n} native member(s): {} ms (each: {each:?})",
                each.last().cloned().unwrap_or_default()
            )
            .into(),
        );
        web.close();
        sleep_ms(300).await;
    }
}
