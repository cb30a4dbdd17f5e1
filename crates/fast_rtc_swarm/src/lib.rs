//! The fast-rtc swarm: a full mesh of WebRTC peers whose members keep pre-made offers parked on
//! the signaling server, so a joiner connects to every member after ONE signaling round trip.
//!
//! - [`sans_io`]: the [`Swarm`](sans_io::Swarm) state machine, which makes every decision. It
//!   has no sockets and no timers, and is shared by every backend.
//! - [`config`]: [`SwarmConfig`], channels, ICE servers.

#![forbid(unsafe_code)]

pub mod config;
pub mod sans_io;

pub use config::{ChannelConfig, ChannelId, Delivery, IceServer, IceTransportPolicy, SwarmConfig};
pub use sans_io::{
    CloseReason, IceState, LinkOrigin, Payload, PeerCommand, PeerEvent, PeerInfo, Role, SdpKind,
    SendError, Swarm, SwarmError, SwarmEvent, SwarmOutput,
};
