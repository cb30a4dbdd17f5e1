//! Interop with the JavaScript reference client `@mattkrick/fast-rtc-swarm@0.4.1`, in one page
//! of a real headless Chromium, through our real server: a JS member and a Rust (wasm) member
//! open a link, exchange data both ways, and each side sees the other's `close()`. Both
//! directions of the handshake are covered (JS offers and Rust answers, then the reverse).
//!
//! `scripts/setup-browser.sh` bundles `scripts/browser/js/interop.js` with the npm package into
//! `tests/js/interop.bundle.js` (generated, not committed); `scripts/browser-test.sh` runs this.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;

use browser::*;
use fast_rtc_swarm::{ChannelId, Payload, SwarmConfig, SwarmHandle};
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

fn rust_member(token: &str, room: &str) -> SwarmHandle {
    member(token, SwarmConfig::new(room), room)
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

async fn exchange(js: &JsMember, js_id: &str, rust: &SwarmHandle, rust_id: &str) {
    let opened_js = js_event(js, "open").await;
    assert_eq!(opened_js.user_id.as_deref(), Some(rust_id));
    let peer = opened(rust).await;
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
    let (got, from) = data_on(rust, ChannelId::FAST).await;
    assert_eq!(
        (got, from.as_str()),
        (Payload::Text("from js".into()), js_id)
    );
    js.send_bytes(rust_id, &[9, 8, 7]).unwrap();
    assert_eq!(
        data_on(rust, ChannelId::FAST).await.0,
        Payload::Binary(vec![9, 8, 7])
    );
}

fn tokens(a: Option<&'static str>, b: Option<&'static str>) -> (&'static str, &'static str) {
    (
        setting(a, "FAST_RTC_WEB_TEST_TOKEN_JS_*"),
        setting(b, "FAST_RTC_WEB_TEST_TOKEN_RUST_*"),
    )
}

#[wasm_bindgen_test]
async fn js_offers_rust_answers_and_rust_close_is_seen_by_js() {
    allow_loopback_candidates().await;
    let (js_token, rust_token) = tokens(
        option_env!("FAST_RTC_WEB_TEST_TOKEN_JS_1"),
        option_env!("FAST_RTC_WEB_TEST_TOKEN_RUST_1"),
    );
    let js = JsMember::new(url(), js_token, "interop-1");
    sleep_ms(500).await; // the JS member's offer is parked
    let rust = rust_member(rust_token, "interop-1");
    exchange(&js, "js-1", &rust, "rust-1").await;
    rust.close();
    let gone = js_event(&js, "close").await;
    assert_eq!(gone.user_id.as_deref(), Some("rust-1"));
    js.close();
}

#[wasm_bindgen_test]
async fn rust_offers_js_answers_and_js_close_is_seen_by_rust() {
    allow_loopback_candidates().await;
    let (js_token, rust_token) = tokens(
        option_env!("FAST_RTC_WEB_TEST_TOKEN_JS_2"),
        option_env!("FAST_RTC_WEB_TEST_TOKEN_RUST_2"),
    );
    let rust = rust_member(rust_token, "interop-2");
    sleep_ms(500).await; // the Rust member's offer is parked
    let js = JsMember::new(url(), js_token, "interop-2");
    exchange(&js, "js-2", &rust, "rust-2").await;
    js.close();
    assert_eq!(closed(&rust).await.user_id.as_str(), "js-2");
    rust.close();
}
