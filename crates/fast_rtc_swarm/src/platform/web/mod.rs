//! The browser backend: the page's `RTCPeerConnection` through web-sys (wasm only).
//!
//! It does what the native backend does, behind the same [`Backend`](crate::Backend) trait, and nothing
//! more: each connection is one local task running the shared connection flow
//! (`connection.rs`) over `peer.rs`'s `RTCPeerConnection` wrapper.
//!
//! # Files
//!
//! - `peer.rs`: one `RTCPeerConnection` and its channels, their JS callbacks and inbox;
//! - [`audio`]: voice (the declared audio tracks' transceivers, the application's
//!   `MediaStreamTrack` sources, the playback of remote tracks, and the browser-only
//!   [`SwarmHandle`](crate::SwarmHandle) calls `set_audio_source`, `remote_audio_stream`,
//!   `set_peer_volume`);
//! - `ws.rs`, `time.rs`: the signaling WebSocket and the shell's clock and timers.

pub mod audio;
mod peer;
pub(crate) mod time;
pub(crate) mod ws;

pub(crate) use audio::SwarmMedia;
pub use peer::INBOX;

use crate::backend::{DynBackend, EventSender, NewConnection, TaskBackend};
use fast_rtc_swarm_core::config::SwarmConfig;
use js_sys::Reflect;
use peer::WebPeer;
use std::sync::Arc;
use wasm_bindgen::{JsCast, JsValue};

/// Settings of the browser backend. The browser owns ICE pacing and timeouts, so there is
/// nothing to tune yet; ICE servers and the transport policy come from [`SwarmConfig`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct WebConfig {}

/// The browser backend could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// The browser has no WebRTC (`RTCPeerConnection` is missing).
    #[error("this browser has no RTCPeerConnection")]
    NoWebRtc,
}

/// This build's backend, the page's `RTCPeerConnection` (see the [module docs](self)), for
/// `swarm`'s channels and ICE servers, reporting to `events`. [`start`](crate::start) uses it;
/// call it yourself to wrap it in a backend of your own for [`start_with`](crate::start_with).
///
/// The backend itself holds no JS object (those live in each connection's local task), so it
/// is `Send` like the native one and a Bevy resource can own the swarm.
///
/// Used on its own, the backend keeps its swarm's audio to itself: the browser's audio calls
/// on the handle ([`BrowserAudio::set_audio_source`](audio::BrowserAudio::set_audio_source))
/// need a swarm started with [`start`](crate::start). Remote tracks still play.
pub fn platform_backend(
    swarm: SwarmConfig,
    web: WebConfig,
    events: EventSender,
) -> Result<DynBackend, WebError> {
    let media = SwarmMedia::new(&swarm);
    let link = media.link();
    launch_backend(swarm, web, events, link, Some(media))
}

/// [`platform_backend`] for a swarm started with [`start`](crate::start), whose shell owns
/// its media.
pub(crate) fn backend_with_media(
    swarm: SwarmConfig,
    web: WebConfig,
    events: EventSender,
    media: audio::MediaLink,
) -> Result<DynBackend, WebError> {
    launch_backend(swarm, web, events, media, None)
}

/// The backend, its connections part of `media` (owned by the backend if `owned`).
fn launch_backend(
    swarm: SwarmConfig,
    _web: WebConfig,
    events: EventSender,
    media: audio::MediaLink,
    owned: Option<SwarmMedia>,
) -> Result<DynBackend, WebError> {
    let has_webrtc = js_sys::global()
        .dyn_into::<js_sys::Object>()
        .ok()
        .and_then(|g| Reflect::has(&g, &JsValue::from_str("RTCPeerConnection")).ok())
        .unwrap_or(false);
    if !has_webrtc {
        return Err(WebError::NoWebRtc);
    }
    let swarm = Arc::new(swarm);
    let task_events = events.clone();
    let launch = move |new: NewConnection| {
        // Dropped with the backend.
        let _owned = &owned;
        let swarm = swarm.clone();
        let events = task_events.clone();
        let id = new.id.clone();
        let ice_servers = new.ice_servers.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let build = || WebPeer::build(&swarm, &ice_servers, media, id);
            crate::connection::run(new, build, &swarm, &events).await;
        });
    };
    Ok(Box::new(TaskBackend::new(Box::new(launch))))
}

/// The public names every platform module offers (see [`crate::platform`]).
pub mod api {
    pub use crate::platform::web::audio::BrowserAudio;
    pub use crate::platform::web::{INBOX, WebConfig, WebError, platform_backend};

    /// The settings of this build's backend: [`WebConfig`] (the browser's `RTCPeerConnection`).
    pub type BackendConfig = WebConfig;
    /// Why this build's backend could not start.
    pub type BackendError = WebError;
    /// The future that runs a swarm; spawn it with `wasm_bindgen_futures::spawn_local`. It
    /// finishes when the swarm is closed (after sending `close` to the server) or every
    /// [`SwarmHandle`](crate::SwarmHandle) is gone.
    pub type SwarmDriver = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'static>>;
}

/// Whether [`SwarmHandle::send_audio`](crate::SwarmHandle::send_audio) sends encoded packets:
/// not here, where a track's audio is a `MediaStreamTrack` ([`audio`]).
pub(crate) const SENDS_ENCODED_AUDIO: bool = false;

/// Signaling URL schemes the browser's `WebSocket` can use (it does TLS itself).
pub(crate) const SIGNALING_SCHEMES: &[&str] = &["ws://", "wss://"];

/// The page never sees WebSocket pings (the browser answers them), so silence says nothing.
pub(crate) const SEES_PINGS: bool = false;

/// 64 random bits (connection id prefixes): no OS randomness for std on
/// wasm32-unknown-unknown, so the page's `Math.random`, twice.
pub(crate) fn random_u64() -> u64 {
    let half = || (js_sys::Math::random() * f64::from(u32::MAX)) as u64;
    (half() << 32) | half()
}
