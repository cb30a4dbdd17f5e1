//! The browser backend: the page's `RTCPeerConnection` through web-sys (wasm only).
//!
//! It does what the native backend does, behind the same [`Backend`] trait, and nothing
//! more: each connection is one local task running the shared connection flow
//! (`connection.rs`) over [`peer`]'s `RTCPeerConnection` wrapper.
//!
//! # Files
//!
//! - `peer.rs`: one `RTCPeerConnection` and its channels, their JS callbacks and inbox;
//! - `ws.rs`, `time.rs`: the signaling WebSocket and the shell's clock and timers.

mod peer;
pub(crate) mod time;
pub(crate) mod ws;

pub use peer::INBOX;

use crate::backend::{Backend, Buffered, Connections, EventSender};
use crate::config::SwarmConfig;
use crate::sans_io::PeerCommand;
use fast_rtc_protocol::ConnectionId;
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

/// The browser backend. See the [module docs](self).
///
/// The backend itself holds no JS object (those live in each connection's local task), so it
/// is `Send` like the native one and a Bevy resource can own the swarm.
pub struct WebBackend {
    swarm: Arc<SwarmConfig>,
    events: EventSender,
    connections: Connections,
}

impl WebBackend {
    /// A backend for `swarm`'s channels and ICE servers, reporting to `events`.
    pub fn new(swarm: SwarmConfig, _web: WebConfig, events: EventSender) -> Result<Self, WebError> {
        let has_webrtc = js_sys::global()
            .dyn_into::<js_sys::Object>()
            .ok()
            .and_then(|g| Reflect::has(&g, &JsValue::from_str("RTCPeerConnection")).ok())
            .unwrap_or(false);
        if !has_webrtc {
            return Err(WebError::NoWebRtc);
        }
        Ok(WebBackend {
            swarm: Arc::new(swarm),
            connections: Connections::new(events.clone()),
            events,
        })
    }
}

impl Backend for WebBackend {
    fn buffered(&self, id: &ConnectionId) -> Buffered {
        self.connections.buffered(id)
    }

    fn connection_count(&self) -> usize {
        self.connections.len()
    }

    fn execute(&mut self, command: PeerCommand) {
        if let Some(new) = self.connections.route(command) {
            let swarm = self.swarm.clone();
            let events = self.events.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let build = || WebPeer::build(&swarm);
                crate::connection::run(new, build, &swarm, &events).await;
            });
        }
    }
}

/// The public names every platform module offers (see [`crate::platform`]).
pub mod api {
    pub use super::{INBOX, WebBackend, WebConfig, WebError};

    /// The settings of this build's backend: [`WebConfig`] (the browser's `RTCPeerConnection`).
    pub type BackendConfig = WebConfig;
    /// Why this build's backend could not start.
    pub type BackendError = WebError;
    /// The future that runs a swarm; spawn it with `wasm_bindgen_futures::spawn_local`. It
    /// finishes when the swarm is closed (after sending `close` to the server) or every
    /// [`SwarmHandle`](crate::SwarmHandle) is gone.
    pub type SwarmDriver = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'static>>;
}

/// Signaling URL schemes the browser's `WebSocket` can use (it does TLS itself).
pub(crate) const SIGNALING_SCHEMES: &[&str] = &["ws://", "wss://"];

/// This build's backend for `swarm`, reporting to `events`.
pub(crate) fn default_backend(
    swarm: SwarmConfig,
    web: WebConfig,
    events: EventSender,
) -> Result<crate::backend::DynBackend, WebError> {
    Ok(Box::new(WebBackend::new(swarm, web, events)?))
}

/// 64 random bits (connection id prefixes): no OS randomness for std on
/// wasm32-unknown-unknown, so the page's `Math.random`, twice.
pub(crate) fn random_u64() -> u64 {
    let half = || (js_sys::Math::random() * f64::from(u32::MAX)) as u64;
    (half() << 32) | half()
}
