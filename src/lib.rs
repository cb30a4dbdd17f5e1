//! # bevy_fast_rtc
//!
//! A Bevy-native fast-rtc swarm: a full mesh of WebRTC peers whose members keep pre-made offers
//! parked on the signaling server, so a joiner connects to every member after ONE signaling
//! round trip.
//!
//! Add [`FastRtcPlugin`], register the types you send with
//! [`add_swarm_message`](AppSwarmExt::add_swarm_message), broadcast them with the
//! [`SwarmBroadcast`] system parameter and read them with `MessageReader<FromPeer<T>>`.
//! Peers are entities with a [`Peer`] component, spawned when a link opens and despawned when it
//! closes.
//!
//! ```no_run
//! use bevy::prelude::*;
//! use bevy_fast_rtc::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Clone, Debug)]
//! struct Position { x: f32, y: f32 }
//!
//! fn main() {
//!     let token = std::env::var("FAST_RTC_TOKEN").unwrap_or_default();
//!     let mut plugin = FastRtcPlugin::new("lobby").with_signaling("ws://127.0.0.1:8787/ws", token);
//!     let state = plugin.add_channel(ChannelConfig::unreliable("state"));
//!     App::new()
//!         .add_plugins((MinimalPlugins, plugin))
//!         .add_swarm_message::<Position>(state)
//!         .add_systems(FixedUpdate, send_position)
//!         .add_systems(Update, (read_positions, greet))
//!         .run();
//! }
//!
//! fn send_position(mut broadcast: SwarmBroadcast<Position>) {
//!     broadcast.send(&Position { x: 1.0, y: 2.0 });
//! }
//!
//! fn read_positions(mut positions: MessageReader<FromPeer<Position>>) {
//!     for msg in positions.read() {
//!         println!("{} is at {:?}", msg.peer, msg.value);
//!     }
//! }
//!
//! fn greet(mut opened: MessageReader<PeerOpened>, peers: Query<&Peer>) {
//!     for ev in opened.read() {
//!         if let Ok(peer) = peers.get(ev.entity) {
//!             println!("{} joined over link {}", peer.user_id, peer.connection_id);
//!         }
//!     }
//! }
//! ```
//!
//! The swarm runs on Bevy's IO task pool (no tokio). Systems run in [`FastRtcSystems::Receive`]
//! (`PreUpdate`: events become messages and entities) and [`FastRtcSystems::Send`] (`PostUpdate`:
//! what systems queued this frame is sent), so every system in `Update` and `FixedUpdate` sees a
//! consistent frame.
//!
//! # The connection's lifecycle
//!
//! [`Swarm::state`] is a [`SignalingState`](fast_rtc_swarm::SignalingState): `Disconnected`,
//! `Connecting`, `Joined` (the server accepted this member), `Reconnecting` (links stay up),
//! and terminal `Failed(reason)` with a typed
//! [`FailReason`](fast_rtc_swarm::FailReason) (`Unauthorized`, `RoomFull`, `RoomNotAllowed`,
//! `Replaced`, `Unreachable`, `Closed`). Each change is a [`SignalingChanged`] message, and the
//! run conditions [`swarm_joined`] and [`peer_count_at_least`] gate systems on it.
//!
//! Tokens are short-lived: ahead of the token's `exp`, and when the server refuses it, the
//! plugin writes a [`TokenRequested`] message; answer it with [`Swarm::set_token`] (the next
//! connection attempt uses the new token). A refused token left unanswered ends the session
//! `Failed(Unauthorized)` after 10 s ([`TokenPolicy`](fast_rtc_swarm::TokenPolicy)).
//!
//! It is a resource and messages, not a Bevy `State`: the plugin works under `MinimalPlugins`
//! (headless servers, tests) without `StatesPlugin`, a change is seen in the same frame it
//! happens (in `PreUpdate`, not at the next `StateTransition`), and a game can still mirror it
//! into a `State` of its own with one system reading `SignalingChanged`.
//!
//! # Voice
//!
//! Declared audio tracks ([`FastRtcPlugin::add_audio_track`]) carry voice between players:
//! [`Swarm::add_track`] / [`Swarm::mute_track`] (push-to-talk), [`PeerTrack`] and [`PeerAudio`]
//! messages, and a [`VoiceVolume`] on each peer entity for proximity voice or muting a peer
//! (see [`voice`]). Natively, the `voice` feature adds Opus (`Swarm::audio_sender`), and the
//! `cpal` feature a real microphone and speaker (in [`voice`]: `Microphone`, `Speaker`,
//! `CpalVoicePlugin`).
//!
//! # Settings
//!
//! [`FastRtcPlugin`] is built with methods: `with_signaling`, `with_native`/`with_backend`, the
//! common [`SwarmConfig`](fast_rtc_swarm::SwarmConfig) knobs (`with_peer_buffer`,
//! `with_ice_servers`, `with_max_message_size`, `with_ping_interval`, ...) and
//! `with_swarm_config` for the whole configuration. A backend of your own
//! ([`with_custom_backend`](FastRtcPlugin::with_custom_backend)) comes with the clock the swarm
//! runs on ([`BackendFactory::memory`] with a `ManualClock` in tests); WebRTC backends run in
//! real time.
//!
//! # Module map
//!
//! One concern per file; imports go one way (no file reaches back to a file that uses it):
//!
//! - `plugin.rs`: [`FastRtcPlugin`] (its settings, what it adds to the app) and
//!   [`FastRtcSystems`].
//! - `backend.rs`: [`SwarmBackend`] and [`BackendFactory`] (a custom backend and its clock).
//! - `session.rs`: the [`Swarm`] resource, the one owner of the session's state (handle,
//!   signaling state, peers' entities, send queue, taps), and the [`Peer`] component.
//! - `systems.rs`: the receive pass (swarm events into messages and entities) and the send
//!   pass.
//! - `messages.rs`: the messages ([`PeerOpened`], [`PeerClosed`], [`PeerData`], [`FromPeer`],
//!   [`SwarmError`], [`SignalingChanged`], [`TokenRequested`]) and [`FastRtcError`].
//! - `typed.rs`: typed messages ([`AppSwarmExt::add_swarm_message`], [`SwarmBroadcast`]);
//!   [`codec`]: their encoding and the per-frame limits.
//! - `tap.rs`: [`ChannelTap`], a channel's data for a consumer outside the ECS.
//! - `conditions.rs`: run conditions; `diagnostics.rs`: [`FastRtcDiagnostics`].
//! - [`voice`]: voice messages and volume; the DSP and the cpal devices (a folder).
//! - `rollback` (feature `ggrs`): the ggrs socket, player handles and `FastRtcGgrsPlugin`
//!   (a folder).
//! - `replicon` (feature `replicon`): a bevy_replicon messaging backend, the mesh as a listen
//!   server (a folder).

#![forbid(unsafe_code)]

mod backend;
pub mod codec;
mod conditions;
mod diagnostics;
mod messages;
mod plugin;
#[cfg(feature = "replicon")]
pub mod replicon;
#[cfg(feature = "ggrs")]
pub mod rollback;
mod session;
mod systems;
mod tap;
mod typed;
pub mod voice;

pub use backend::{BackendFactory, SwarmBackend};
pub use codec::CodecError;
pub use conditions::{peer_count_at_least, swarm_joined};
pub use diagnostics::FastRtcDiagnostics;
/// The `sub` claim of a JWT, read without verifying it: the identity a member will have.
pub use fast_rtc_swarm::token::subject as token_subject;
pub use messages::{
    ConnectionChange, FastRtcError, FromPeer, PeerClosed, PeerConnectionChanged, PeerData,
    PeerOpened, SignalingChanged, SwarmError, TokenRequested,
};
pub use plugin::{FastRtcPlugin, FastRtcSystems};
pub use session::{Peer, Swarm};
pub use tap::ChannelTap;
pub use typed::{AppSwarmExt, SwarmBroadcast, SwarmMessage};
pub use voice::{PeerAudio, PeerTrack, TrackChange, VoiceVolume};

/// The wire types of the fast-rtc signaling protocol.
pub use fast_rtc_protocol as protocol;
/// The swarm itself (core, backends, signaling client), for direct use.
pub use fast_rtc_swarm as swarm;

/// Everything a game needs.
pub mod prelude {
    pub use crate::{
        AppSwarmExt, FastRtcPlugin, FastRtcSystems, FromPeer, Peer, PeerAudio, PeerClosed,
        PeerData, PeerOpened, PeerTrack, SignalingChanged, Swarm, SwarmBroadcast, SwarmError,
        TokenRequested, TrackChange, VoiceVolume, peer_count_at_least, swarm_joined,
    };
    pub use fast_rtc_protocol::UserId;
    #[cfg(not(target_arch = "wasm32"))]
    pub use fast_rtc_swarm::NativeConfig;
    #[cfg(target_arch = "wasm32")]
    pub use fast_rtc_swarm::WebConfig;
    pub use fast_rtc_swarm::{
        BackendConfig, ChannelConfig, ChannelId, CloseReason, FailReason, IceServer, IceState,
        IceTransportPolicy, Payload, SignalingState, TokenRequest, TrackId,
    };
}
