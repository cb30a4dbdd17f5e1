//! The browser backend in a real headless Chromium, through a real signaling server.
//!
//! Run by `scripts/browser-test.sh`, which starts `fast-rtc-server` on a free loopback port,
//! issues tokens, and passes the URL and tokens in at compile time (a wasm test cannot read the
//! environment).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // the timing test reads the clock

use fast_rtc_swarm::{
    ChannelConfig, ChannelId, Payload, Signaling, SwarmConfig, SwarmEvent, SwarmHandle, WebConfig,
    start,
};
use futures_lite::future;
use std::time::Duration;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn setting(value: Option<&'static str>, name: &str) -> &'static str {
    value.unwrap_or_else(|| {
        panic!("{name} is not set: run this test through scripts/browser-test.sh")
    })
}

fn member(token: &str, room: &str) -> SwarmHandle {
    let url = setting(
        option_env!("FAST_RTC_WEB_TEST_URL"),
        "FAST_RTC_WEB_TEST_URL",
    );
    let mut config = SwarmConfig::new(room);
    let state = config.add_channel(ChannelConfig::unreliable("state"));
    assert_eq!(state, ChannelId(1));
    let signaling = Signaling::WebSocket {
        url: url.to_owned(),
        token: token.to_owned(),
    };
    let (handle, driver) = start(config, WebConfig::default(), signaling).expect("start");
    wasm_bindgen_futures::spawn_local(driver);
    handle
}

/// The next event of `h` that `pick` accepts, within `secs` seconds.
async fn next<T>(h: &SwarmHandle, secs: u64, mut pick: impl FnMut(SwarmEvent) -> Option<T>) -> T {
    let wait = async {
        loop {
            let ev = h.recv().await.expect("swarm ended");
            if let Some(t) = pick(ev) {
                return Some(t);
            }
        }
    };
    let timeout = async {
        gloo_timers::future::sleep(Duration::from_secs(secs)).await;
        None
    };
    future::or(wait, timeout).await.expect("timed out")
}

#[wasm_bindgen_test]
async fn two_swarms_in_one_page_connect_and_exchange_data() {
    let token_a = setting(
        option_env!("FAST_RTC_WEB_TEST_TOKEN_A"),
        "FAST_RTC_WEB_TEST_TOKEN_A",
    );
    let token_b = setting(
        option_env!("FAST_RTC_WEB_TEST_TOKEN_B"),
        "FAST_RTC_WEB_TEST_TOKEN_B",
    );
    let a = member(token_a, "web-two");
    // b joins after a has parked its offer: b answers it (one round trip).
    gloo_timers::future::sleep(Duration::from_millis(300)).await;
    let b = member(token_b, "web-two");
    let peer_of_b = next(&b, 20, |ev| match ev {
        SwarmEvent::Open(p) => Some(p),
        _ => None,
    })
    .await;
    let peer_of_a = next(&a, 20, |ev| match ev {
        SwarmEvent::Open(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(peer_of_b.user_id.as_str(), "web-a");
    assert_eq!(peer_of_a.user_id.as_str(), "web-b");

    // Reliable `fast`: text one way, binary the other.
    b.send(&peer_of_b.user_id, ChannelId::FAST, "hello from b")
        .unwrap();
    let got = next(&a, 10, |ev| match ev {
        SwarmEvent::Data {
            payload, channel, ..
        } if channel == ChannelId::FAST => Some(payload),
        _ => None,
    })
    .await;
    assert_eq!(got, Payload::Text("hello from b".into()));
    a.send(&peer_of_a.user_id, ChannelId::FAST, vec![1u8, 2, 3])
        .unwrap();
    let got = next(&b, 10, |ev| match ev {
        SwarmEvent::Data {
            payload, channel, ..
        } if channel == ChannelId::FAST => Some(payload),
        _ => None,
    })
    .await;
    assert_eq!(got, Payload::Binary(vec![1, 2, 3]));

    // Unreliable game channel: repeat until one arrives (loss is allowed, never seen here).
    let state = ChannelId(1);
    let wait = next(&b, 10, |ev| match ev {
        SwarmEvent::Data {
            payload, channel, ..
        } if channel == state => Some(payload),
        _ => None,
    });
    let spam = async {
        loop {
            let _ = a.broadcast(state, vec![9u8; 100]);
            gloo_timers::future::sleep(Duration::from_millis(20)).await;
        }
    };
    let got = future::or(wait, spam).await;
    assert_eq!(got, Payload::Binary(vec![9u8; 100]));

    // A close is seen by the other side.
    a.close();
    let closed = next(&b, 10, |ev| match ev {
        SwarmEvent::Close { peer, .. } => Some(peer),
        _ => None,
    })
    .await;
    assert_eq!(closed.user_id.as_str(), "web-a");
    b.close();
}

/// A native member (`examples/echo_peer.rs`, started by the script in room `mixed`) and this
/// browser member: data both ways on reliable `fast` and the unreliable `state` channel.
#[wasm_bindgen_test]
async fn a_browser_member_and_a_native_member_exchange_data_both_ways() {
    let token = setting(
        option_env!("FAST_RTC_WEB_TEST_TOKEN_MIXED"),
        "FAST_RTC_WEB_TEST_TOKEN_MIXED",
    );
    let web = member(token, "mixed");
    let native = next(&web, 20, |ev| match ev {
        SwarmEvent::Open(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(native.user_id.as_str(), "native-echo");
    // native -> browser on fast (sent by the native side when the link opened).
    let hello = next(&web, 10, |ev| match ev {
        SwarmEvent::Data {
            payload, channel, ..
        } if channel == ChannelId::FAST => Some(payload),
        _ => None,
    })
    .await;
    assert_eq!(hello, Payload::Text("hello from native".into()));
    // browser -> native -> browser on fast (reliable).
    web.send(&native.user_id, ChannelId::FAST, "ping").unwrap();
    let echo = next(&web, 10, |ev| match ev {
        SwarmEvent::Data {
            payload, channel, ..
        } if channel == ChannelId::FAST => Some(payload),
        _ => None,
    })
    .await;
    assert_eq!(echo, Payload::Text("echo:ping".into()));
    // browser -> native -> browser on state (unreliable): resend until an echo comes back.
    let state = ChannelId(1);
    let wait = next(&web, 10, |ev| match ev {
        SwarmEvent::Data {
            payload, channel, ..
        } if channel == state => Some(payload),
        _ => None,
    });
    let spam = async {
        loop {
            let _ = web.send(&native.user_id, state, vec![7u8; 4]);
            gloo_timers::future::sleep(Duration::from_millis(20)).await;
        }
    };
    let echo = future::or(wait, spam).await;
    assert_eq!(echo, Payload::Binary(b"echo:\x07\x07\x07\x07".to_vec()));
    web.close();
}

/// A browser joiner's time from `start` to `Open` with every native member, with 1 and with 3
/// native members present (`echo_peer`s started by the script). Printed, not asserted: speed is
/// measured, not tested; the test checks that every link opens.
#[wasm_bindgen_test]
async fn browser_join_time_with_native_members() {
    let token = setting(
        option_env!("FAST_RTC_WEB_TEST_TOKEN_TIMING"),
        "FAST_RTC_WEB_TEST_TOKEN_TIMING",
    );
    for (room, n) in [("timing-1", 1), ("timing-3", 3)] {
        let t0 = web_time::Instant::now();
        let web = member(token, room);
        let mut opened = Vec::new();
        while opened.len() < n {
            let p = next(&web, 20, |ev| match ev {
                SwarmEvent::Open(p) => Some(p),
                _ => None,
            })
            .await;
            assert!(p.user_id.as_str().starts_with("native-t"), "{p:?}");
            opened.push(t0.elapsed());
        }
        let all = opened.last().copied().unwrap_or_default();
        web_sys::console::log_1(
            &format!(
                "browser join -> open with {n} native member(s): {:.1} ms (each: {:?})",
                all.as_secs_f64() * 1e3,
                opened
                    .iter()
                    .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
                    .collect::<Vec<_>>()
            )
            .into(),
        );
        web.close();
        gloo_timers::future::sleep(Duration::from_millis(300)).await;
    }
}
