//! The fast-rtc swarm: a full mesh of WebRTC peers whose members keep pre-made offers parked on
//! the signaling server, so a joiner connects to every member after ONE signaling round trip.
//!
//! - [`sans_io`]: the [`Swarm`] state machine, which makes every decision. It
//!   has no sockets and no timers, and is shared by every backend.
//! - [`backend`]: the [`Backend`] trait, the one platform seam.
//! - `native`: the webrtc-rs backend (not on wasm); `web`: the browser's `RTCPeerConnection`
//!   (wasm only). [`start`] picks the one of the build; [`BackendConfig`] is its settings.
//! - [`config`]: [`SwarmConfig`], channels, ICE servers.
//!
//! ```no_run
//! use fast_rtc_swarm::{start, ChannelConfig, ChannelId, NativeConfig, Signaling, SwarmConfig, SwarmEvent};
//!
//! # async fn run(token: String) -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = SwarmConfig::new("lobby");
//! let state = config.add_channel(ChannelConfig::unreliable("state")); // game channel
//! let signaling = Signaling::WebSocket { url: "ws://127.0.0.1:8787/ws".into(), token };
//! let (swarm, driver) = start(config, NativeConfig::default(), signaling)?;
//! std::thread::spawn(move || futures_lite::future::block_on(driver)); // or tokio::spawn, IoTaskPool
//! while let Some(event) = swarm.recv().await {          // or swarm.try_recv() in a game loop
//!     match event {
//!         SwarmEvent::Open(peer) => { swarm.send(&peer.user_id, ChannelId::FAST, "hello")?; }
//!         SwarmEvent::Data { from, channel, payload, .. } => { let _ = (from, channel, payload); }
//!         _ => {}
//!     }
//!     swarm.broadcast(state, vec![1, 2, 3])?;
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod backend;
pub mod config;
mod driver;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
mod rt;
pub mod sans_io;
mod signaling;
#[cfg(target_arch = "wasm32")]
pub mod web;
mod ws;

pub use driver::{MAX_PENDING_EVENTS, MAX_PENDING_SIGNALS, SwarmHandle};
#[cfg(not(target_arch = "wasm32"))]
pub use native::{NativeBackend, NativeConfig};
pub use signaling::{Signaling, StartError, SwarmDriver, start};
#[cfg(target_arch = "wasm32")]
pub use web::{WebBackend, WebConfig};

/// The settings of this build's backend: [`NativeConfig`] (webrtc-rs).
#[cfg(not(target_arch = "wasm32"))]
pub type BackendConfig = NativeConfig;
/// The settings of this build's backend: [`WebConfig`] (the browser's `RTCPeerConnection`).
#[cfg(target_arch = "wasm32")]
pub type BackendConfig = WebConfig;

pub use backend::{Backend, Buffered, MAX_BUFFERED_BYTES, MAX_QUEUED_SENDS};
pub use config::{ChannelConfig, ChannelId, Delivery, IceServer, IceTransportPolicy, SwarmConfig};
pub use sans_io::{
    CloseReason, IceState, LinkOrigin, Payload, PeerCommand, PeerEvent, PeerInfo, Role, SdpKind,
    SendError, Swarm, SwarmError, SwarmEvent, SwarmOutput,
};
