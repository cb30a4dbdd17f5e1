//! Helpers shared by the browser tests (`web.rs`, `web_interop.rs`).
#![allow(dead_code)] // each test file uses its own subset

use fast_rtc_swarm::{
    ChannelId, Payload, PeerInfo, Signaling, SwarmConfig, SwarmEvent, SwarmHandle, WebConfig, start,
};
use futures_lite::future;
use std::time::Duration;

/// A compile-time setting from `scripts/browser-test.sh` (a wasm test cannot read the
/// environment at run time).
pub fn setting(value: Option<&'static str>, name: &str) -> &'static str {
    value.unwrap_or_else(|| {
        panic!("{name} is not set: run this test through scripts/browser-test.sh")
    })
}

/// The signaling URL of the server the script started.
pub fn url() -> &'static str {
    setting(
        option_env!("FAST_RTC_WEB_TEST_URL"),
        "FAST_RTC_WEB_TEST_URL",
    )
}

/// Lets this page's peer connections offer plain `127.0.0.1` candidates instead of mDNS names.
///
/// Chromium hides host addresses behind `<uuid>.local` names until the page has been granted a
/// camera or microphone. The browser tests run in a network namespace holding only `lo`
/// (`scripts/browser-test.sh`), so every candidate must be a loopback address: with
/// `--allow-loopback-in-peer-connection` and the fake media flags of `webdriver.json`, one
/// `getUserMedia` call does that. Call it before the first member starts.
pub async fn allow_loopback_candidates() {
    use wasm_bindgen::JsCast;
    let window = web_sys::window().expect("a window");
    let constraints = web_sys::MediaStreamConstraints::new();
    constraints.set_audio(&true.into());
    let devices = window.navigator().media_devices().expect("media devices");
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .expect("getUserMedia");
    let stream: web_sys::MediaStream = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .expect("fake microphone")
        .dyn_into()
        .expect("a MediaStream");
    for track in stream.get_tracks().iter() {
        if let Ok(track) = track.dyn_into::<web_sys::MediaStreamTrack>() {
            track.stop();
        }
    }
}

/// A browser member of `room` with `config`'s channels, its driver spawned on the page.
pub fn member(token: &str, mut config: SwarmConfig, room: &str) -> SwarmHandle {
    config.room_id = room.into();
    let signaling = Signaling::WebSocket {
        url: url().to_owned(),
        token: token.to_owned(),
    };
    let (handle, driver) = start(config, WebConfig::default(), signaling).expect("start");
    wasm_bindgen_futures::spawn_local(driver);
    handle
}

pub async fn sleep_ms(ms: u64) {
    gloo_timers::future::sleep(Duration::from_millis(ms)).await;
}

/// The next event of `h` that `pick` accepts, within `secs` seconds.
pub async fn next<T>(
    h: &SwarmHandle,
    secs: u64,
    mut pick: impl FnMut(SwarmEvent) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            let ev = h.recv().await.expect("swarm ended");
            if let Some(t) = pick(ev) {
                return Some(t);
            }
        }
    };
    let timeout = async {
        sleep_ms(secs * 1000).await;
        None
    };
    future::or(wait, timeout).await.expect("timed out")
}

/// The next peer of `h` to open.
pub async fn opened(h: &SwarmHandle) -> PeerInfo {
    next(h, 20, |ev| match ev {
        SwarmEvent::Open(p) => Some(p),
        _ => None,
    })
    .await
}

/// The next peer of `h` to close.
pub async fn closed(h: &SwarmHandle) -> PeerInfo {
    next(h, 20, |ev| match ev {
        SwarmEvent::Close { peer, .. } => Some(peer),
        _ => None,
    })
    .await
}

/// The next message to `h` on `channel`, with its sender.
pub async fn data_on(h: &SwarmHandle, channel: ChannelId) -> (Payload, String) {
    next(h, 10, |ev| match ev {
        SwarmEvent::Data {
            payload,
            channel: c,
            from,
            ..
        } if c == channel => Some((payload, from.to_string())),
        _ => None,
    })
    .await
}

/// The next message to `h` on the unreliable `channel`, calling `send` every 20 ms until one
/// arrives (a datagram may be lost; none has been here).
pub async fn data_on_unreliable(
    h: &SwarmHandle,
    channel: ChannelId,
    mut send: impl FnMut(),
) -> Payload {
    let wait = data_on(h, channel);
    let resend = async {
        loop {
            send();
            sleep_ms(20).await;
        }
    };
    future::or(wait, resend).await.0
}
