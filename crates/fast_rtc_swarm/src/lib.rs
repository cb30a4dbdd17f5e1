//! The fast-rtc swarm: a full mesh of WebRTC peers whose members keep pre-made offers parked on
//! the signaling server, so a joiner connects to every member after ONE signaling round trip.
//!
//! - [`sans_io`]: the [`SwarmCore`] state machine, which makes every decision. It has no
//!   sockets and no timers, and is shared by every backend; [`control`] is its `@fast/`
//!   sub-protocol on the `fast` channel.
//! - [`backend`]: the [`Backend`] trait, the seam between the core and WebRTC. Both WebRTC
//!   backends run one per-connection task written once (`connection.rs`) over a narrow
//!   per-platform peer; [`memory`] is an in-memory backend for tests.
//! - [`platform`]: everything that differs between native and browser builds, behind one `cfg`:
//!   the webrtc-rs backend natively, the browser's `RTCPeerConnection` on wasm, the signaling
//!   WebSocket, the clock and timers. [`start`] picks the build's backend ([`BackendConfig`] is
//!   its settings); [`start_with`] takes any backend and a [`Clock`].
//! - [`config`]: [`SwarmConfig`], channels, ICE servers; [`relay`]: whether a link gathered the
//!   TURN relay candidate its configuration expects ([`SwarmFault::RelayUnavailable`]).
//! - [`lifecycle`]: the signaling session as the game sees it ([`SignalingState`]: connecting,
//!   joined, reconnecting, failed with a [`FailReason`]) and the retry policy.
//! - [`token`]: what the swarm reads from a signaling token (its expiry and subject).
//! - [`media`]: voice, as declared audio tracks on every link (Opus natively, the page's
//!   `MediaStreamTrack`s and playback in the browser).
//! - [`large`]: messages larger than one data-channel message, split and reassembled on
//!   reliable channels (up to 16 MiB by default); [`sdp`]: what a member advertises in the
//!   descriptions it signals (reassembly, game channels).
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
pub mod config;
mod connection;
pub mod control;
mod driver;
pub mod large;
pub mod lifecycle;
pub mod media;
pub mod memory;
pub mod platform;
pub mod relay;
pub mod sans_io;
pub mod sdp;
mod signaling;
pub mod token;

pub use backend::{
    Backend, Buffered, DynBackend, EventSender, MAX_BUFFERED_BYTES, MAX_QUEUED_SENDS,
};
pub use clock::{Clock, ManualClock};
pub use config::{ChannelConfig, ChannelId, Delivery, IceServer, IceTransportPolicy, SwarmConfig};
pub use driver::{MAX_PENDING_EVENTS, MAX_PENDING_SIGNALS, SwarmHandle};
pub use lifecycle::{FailReason, ReconnectPolicy, SignalingState, TokenPolicy, TokenRequest};
pub use media::{TrackError, TrackId, TrackState};
pub use platform::*;
pub use sans_io::{
    CloseReason, Fanout, IceState, LinkOrigin, Payload, PeerCommand, PeerEvent, PeerFailure,
    PeerInfo, Role, SdpKind, SendError, SwarmCore, SwarmEvent, SwarmFault, SwarmOutput,
};
pub use signaling::{Signaling, StartError, start, start_with};
