//! Interop with the JavaScript reference client `@mattkrick/fast-rtc-swarm@0.4.1`, in one page
//! of a real headless Chromium, through our real server: a JS member and a Rust (wasm) member
//! open a link, exchange data both ways, and each side sees the other's `close()`. Both
//! directions of the handshake are covered (JS offers and Rust answers, then the reverse).
//!
//! `scripts/setup-browser.sh` bundles `scripts/browser/js/interop.js` with the npm package into
//! `tests/js/interop.bundle.js` (generated, not committed); `scripts/browser-test.sh` runs this.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fast_rtc_swarm::{
    ChannelId, Payload, Signaling, SwarmConfig, SwarmEvent, SwarmHandle, WebConfig, start,
};
use futures_lite::future;
use std::time::Duration;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(module = "/tests/js/interop.bundle.js")]
extern "C" {
    type JsMember;
    #[wasm_bindgen(constructor)]
    fn new(url: &str, token: &str, room: &str) -> JsMember;
    #[wasm_bindgen(method, js_name = nextEvent)]
    fn next_event(this: &JsMember) -> Option<String>;
    #[wasm_bindgen(method, js_name = sendText, catch)]
    fn send_text(this: &JsMember, user_id: &str, text: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, js_name = sendBytes, catch)]
    fn send_bytes(this: &JsMember, user_id: &str, bytes: &[u8]) -> Result<(), JsValue>;
    #[wasm_bindgen(method)]
    fn close(this: &JsMember);
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct JsEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "userId")]
    user_id: Option<String>,
    text: Option<String>,
    bytes: Option<Vec<u8>>,
}

fn env(value: Option<&'static str>, name: &str) -> &'static str {
    value.unwrap_or_else(|| {
        panic!("{name} is not set: run this test through scripts/browser-test.sh")
    })
}

fn url() -> &'static str {
    env(
        option_env!("FAST_RTC_WEB_TEST_URL"),
        "FAST_RTC_WEB_TEST_URL",
    )
}

fn rust_member(token: &str, room: &str) -> SwarmHandle {
    let signaling = Signaling::WebSocket {
        url: url().to_owned(),
        token: token.to_owned(),
    };
    let (handle, driver) =
        start(SwarmConfig::new(room), WebConfig::default(), signaling).expect("start");
    wasm_bindgen_futures::spawn_local(driver);
    handle
}

async fn sleep_ms(ms: u64) {
    gloo_timers::future::sleep(Duration::from_millis(ms)).await;
}

/// The JS member's next event of kind `kind`, within 20 s.
async fn js_event(js: &JsMember, kind: &str) -> JsEvent {
    for _ in 0..2000 {
        while let Some(text) = js.next_event() {
            let ev: JsEvent = serde_json::from_str(&text).unwrap();
            if ev.kind == kind {
                return ev;
            }
        }
        sleep_ms(10).await;
    }
    panic!("the JS member saw no {kind} event within 20 s");
}

/// The Rust member's next event that `pick` accepts, within 20 s.
async fn rust_event<T>(h: &SwarmHandle, mut pick: impl FnMut(SwarmEvent) -> Option<T>) -> T {
    let wait = async {
        loop {
            let ev = h.recv().await.expect("swarm ended");
            if let Some(t) = pick(ev) {
                return Some(t);
            }
        }
    };
    let timeout = async {
        sleep_ms(20_000).await;
        None
    };
    future::or(wait, timeout).await.expect("timed out")
}

async fn exchange(js: &JsMember, js_id: &str, rust: &SwarmHandle, rust_id: &str) {
    let opened = js_event(js, "open").await;
    assert_eq!(opened.user_id.as_deref(), Some(rust_id));
    let peer = rust_event(rust, |ev| match ev {
        SwarmEvent::Open(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(peer.user_id.as_str(), js_id);

    // Rust -> JS: text and binary on `fast`.
    rust.send(&peer.user_id, ChannelId::FAST, "from rust")
        .unwrap();
    let got = js_event(js, "data").await;
    assert_eq!(got.text.as_deref(), Some("from rust"));
    assert_eq!(got.user_id.as_deref(), Some(rust_id));
    rust.send(&peer.user_id, ChannelId::FAST, vec![0u8, 1, 254, 255])
        .unwrap();
    let got = js_event(js, "data").await;
    assert_eq!(got.bytes, Some(vec![0, 1, 254, 255]));

    // JS -> Rust: text and binary.
    js.send_text(rust_id, "from js").unwrap();
    let got = rust_event(rust, |ev| match ev {
        SwarmEvent::Data { payload, from, .. } => Some((payload, from)),
        _ => None,
    })
    .await;
    assert_eq!(got.0, Payload::Text("from js".into()));
    assert_eq!(got.1.as_str(), js_id);
    js.send_bytes(rust_id, &[9, 8, 7]).unwrap();
    let got = rust_event(rust, |ev| match ev {
        SwarmEvent::Data { payload, .. } => Some(payload),
        _ => None,
    })
    .await;
    assert_eq!(got, Payload::Binary(vec![9, 8, 7]));
}

fn tokens(a: Option<&'static str>, b: Option<&'static str>) -> (&'static str, &'static str) {
    (
        env(a, "FAST_RTC_WEB_TEST_TOKEN_JS_*"),
        env(b, "FAST_RTC_WEB_TEST_TOKEN_RUST_*"),
    )
}

#[wasm_bindgen_test]
async fn js_offers_rust_answers_and_rust_close_is_seen_by_js() {
    let (js_token, rust_token) = tokens(
        option_env!("FAST_RTC_WEB_TEST_TOKEN_JS_1"),
        option_env!("FAST_RTC_WEB_TEST_TOKEN_RUST_1"),
    );
    let js = JsMember::new(url(), js_token, "interop-1");
    sleep_ms(500).await; // the JS member's offer is parked
    let rust = rust_member(rust_token, "interop-1");
    exchange(&js, "js-1", &rust, "rust-1").await;
    rust.close();
    let closed = js_event(&js, "close").await;
    assert_eq!(closed.user_id.as_deref(), Some("rust-1"));
    js.close();
}

#[wasm_bindgen_test]
async fn rust_offers_js_answers_and_js_close_is_seen_by_rust() {
    let (js_token, rust_token) = tokens(
        option_env!("FAST_RTC_WEB_TEST_TOKEN_JS_2"),
        option_env!("FAST_RTC_WEB_TEST_TOKEN_RUST_2"),
    );
    let rust = rust_member(rust_token, "interop-2");
    sleep_ms(500).await; // the Rust member's offer is parked
    let js = JsMember::new(url(), js_token, "interop-2");
    exchange(&js, "js-2", &rust, "rust-2").await;
    js.close();
    let closed = rust_event(&rust, |ev| match ev {
        SwarmEvent::Close { peer, .. } => Some(peer),
        _ => None,
    })
    .await;
    assert_eq!(closed.user_id.as_str(), "js-2");
    rust.close();
}
