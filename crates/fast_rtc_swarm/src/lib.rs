//! The fast-rtc swarm: a full mesh of WebRTC peers whose members keep pre-made offers parked on
//! the signaling server, so a joiner connects to every member after ONE signaling round trip.
//!
//! The swarm's decisions are [`fast_rtc_swarm_core`]'s [`SwarmCore`] (no sockets, no
//! timers, no async runtime, no WebRTC), re-exported here with all of that crate, so
//! `fast_rtc_swarm::{SwarmConfig, SwarmCore, config, lifecycle, …}` work as they did. This crate
//! is the shell that drives it; it decides nothing. Its files, from the top down (imports only
//! go down this list):
//!
//! - `start.rs`: [`start`] and [`start_with`], [`Signaling`], [`StartError`];
//! - `handle.rs`: [`SwarmHandle`], the application's side of a running swarm;
//! - `peer_loop.rs` and `websocket.rs`: the two loops of the driver future (backend reports
//!   and timeouts into the core; the built-in WebSocket signaling client);
//! - `shared.rs`: the state the handle and the driver share, and the drain of the core's
//!   outputs;
//! - [`backend`]: the [`Backend`] trait, the seam between the core and WebRTC. Both WebRTC
//!   backends run one per-connection task written once (`connection.rs`) over a narrow
//!   per-platform peer; [`memory`] is an in-memory backend for tests.
//! - [`platform`]: everything that differs between native and browser builds, behind one `cfg`:
//!   the webrtc-rs backend natively, the browser's `RTCPeerConnection` on wasm, the signaling
//!   WebSocket, the clock and timers. [`start`] picks the build's backend ([`BackendConfig`] is
//!   its settings); [`start_with`] takes any backend and a [`Clock`].
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
mod clock;
mod connection;
mod handle;
pub mod memory;
mod peer_loop;
pub mod platform;
mod shared;
mod start;
mod websocket;

pub use fast_rtc_swarm_core;
/// The core's [`swarm`] module under its former name.
#[deprecated(
    note = "the core moved to the fast_rtc_swarm_core crate: use `fast_rtc_swarm::swarm`"
)]
pub use fast_rtc_swarm_core::swarm as sans_io;
pub use fast_rtc_swarm_core::{
    ChannelConfig, ChannelId, CloseReason, Delivery, FailReason, Fanout, IceServer, IceState,
    IceTransportPolicy, LinkOrigin, Payload, PeerCommand, PeerEvent, PeerFailure, PeerInfo,
    ReconnectPolicy, Role, SdpKind, SendError, SignalingState, SwarmConfig, SwarmCore, SwarmEvent,
    SwarmFault, SwarmOutput, TokenPolicy, TokenRequest, TrackError, TrackId, TrackState,
};
pub use fast_rtc_swarm_core::{config, control, large, lifecycle, media, relay, sdp, swarm, token};

pub use backend::{
    Backend, Buffered, DynBackend, EventSender, MAX_BUFFERED_BYTES, MAX_QUEUED_SENDS,
};
pub use clock::{Clock, ManualClock};
pub use handle::SwarmHandle;
pub use platform::*;
pub use shared::{MAX_PENDING_EVENTS, MAX_PENDING_SIGNALS};
pub use start::{Signaling, StartError, start, start_with};
