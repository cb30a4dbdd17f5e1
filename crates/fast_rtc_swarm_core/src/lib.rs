//! The fast-rtc swarm's decisions, as a state machine: [`SwarmCore`].
//!
//! **This crate contains no networking code, no async runtime, no WebRTC and no clock.** Every
//! input that depends on time takes the time as an argument, and nothing here blocks, spawns or
//! opens a socket (`clippy.toml` bans the clock reads and sockets; the crate's dependencies are
//! wire types, serde, errors, logs and a time *type*). The same core drives every shell: the
//! native (webrtc-rs) and browser (web-sys) backends of `fast_rtc_swarm`, the in-memory
//! backend, and the tests' virtual network. As quinn-proto is to quinn, this crate is to
//! `fast_rtc_swarm`, which re-exports all of it.
//!
//! # Module map
//!
//! - [`swarm`]: [`SwarmCore`], split by concern: its inputs and outputs ([`swarm::io`]), one
//!   link's state, the handshake, the data path, the `fast` channel's control messages and the
//!   audio tracks. The **drain contract** is on [`SwarmCore`]'s module docs: after every input,
//!   call [`SwarmCore::poll_output`] until `None`, then [`SwarmCore::poll_timeout`].
//! - [`config`]: [`SwarmConfig`], channels ([`ChannelConfig`], [`ChannelId`]), ICE servers.
//! - [`ice`]: which STUN/TURN servers a new connection uses (the application's or the
//!   signaling server's) and when pre-made offers are made.
//! - [`lifecycle`]: the signaling session as the game sees it ([`SignalingState`]) and the
//!   retry and token policies.
//! - [`token`]: what the swarm reads from a signaling token (its expiry and subject).
//! - [`control`]: the `@fast/` sub-protocol on the `fast` channel (the wire format).
//! - [`large`]: messages larger than one data-channel message, split and reassembled.
//! - [`media`]: voice tracks ([`TrackId`], [`TrackState`]).
//! - [`relay`]: whether a link gathered the TURN relay candidate its configuration expects.
//! - [`sdp`]: what a member advertises in the descriptions it signals.
//!
//! ```
//! use fast_rtc_protocol::{ClientMsg, IceServer, ServerMsg};
//! use fast_rtc_swarm_core::{PeerCommand, Role, SwarmConfig, SwarmCore, SwarmOutput};
//! use web_time::Instant;
//!
//! let mut core = SwarmCore::new(SwarmConfig::new("lobby"), "a1");
//! # #[allow(clippy::disallowed_methods)]
//! let now = Instant::now(); // a shell reads its clock; the core never does
//! core.start(now);
//! // The drain contract: every output, in order, then the next timeout.
//! let mut outputs = Vec::new();
//! while let Some(output) = core.poll_output() {
//!     outputs.push(output);
//! }
//! // It joins the room.
//! assert!(outputs.iter().any(|o| matches!(o, SwarmOutput::Signal(ClientMsg::Init { .. }))));
//! // The server accepts it and hands it a STUN server; with no ICE servers of its own, the
//! // swarm makes its pre-made offer now (`peer_buffer` is 1 by default), with that server.
//! let stun = IceServer::stun("stun:signaling.example:3478");
//! core.handle_signal(now, ServerMsg::Joined {
//!     user_id: "me".into(),
//!     ice_servers: Some(vec![stun.clone()]),
//!     resume_token: None,
//!     resumed: false,
//! });
//! let outputs: Vec<_> = std::iter::from_fn(|| core.poll_output()).collect();
//! assert!(outputs.iter().any(|o| matches!(
//!     o,
//!     SwarmOutput::Command(PeerCommand::Create { role: Role::Offerer, ice_servers, .. })
//!         if ice_servers == &[stun.clone()]
//! )));
//! let _next_wakeup = core.poll_timeout();
//! //! ```

#![forbid(unsafe_code)]

pub mod candidates;
pub mod config;
pub mod control;
pub mod ice;
pub mod large;
pub mod lifecycle;
pub mod media;
pub mod relay;
pub mod sdp;
pub mod swarm;
pub mod token;

pub use config::{ChannelConfig, ChannelId, Delivery, IceServer, IceTransportPolicy, SwarmConfig};
pub use ice::IceSource;
pub use lifecycle::{FailReason, ReconnectPolicy, SignalingState, TokenPolicy, TokenRequest};
pub use media::{TrackError, TrackId, TrackState};
pub use swarm::{
    CloseReason, Fanout, IceState, LinkOrigin, Payload, PeerCommand, PeerEvent, PeerFailure,
    PeerInfo, Role, SdpKind, SendError, SwarmCore, SwarmEvent, SwarmFault, SwarmOutput,
};
