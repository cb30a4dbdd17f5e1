//! Rollback netcode over the swarm (feature `ggrs`): a [`ggrs`](bevy_ggrs::ggrs) socket on a swarm channel,
//! players addressed by [`UserId`](fast_rtc_protocol::UserId), and the glue for [`bevy_ggrs`] (0.22, Bevy 0.19).
//!
//! ```no_run
//! use bevy::prelude::*;
//! use bevy_fast_rtc::prelude::*;
//! use bevy_fast_rtc::rollback::{FastRtcGgrsPlugin, GgrsSocket, RollbackGuard, p2p_session_builder};
//! use bevy_ggrs::prelude::*;
//!
//! type Config = GgrsConfig<u8, UserId>;
//!
//! let mut plugin = FastRtcPlugin::new("lobby").with_signaling("ws://127.0.0.1:8787/ws", "TOKEN");
//! let ggrs = plugin.add_channel(ChannelConfig::unreliable("ggrs"));
//! App::new()
//!     .add_plugins((MinimalPlugins, plugin, GgrsPlugin::<Config>::default()))
//!     .add_plugins(FastRtcGgrsPlugin::<Config>::default())
//!     .add_systems(Update, move |mut commands: Commands, mut swarm: ResMut<Swarm>,
//!                                mut guard: ResMut<RollbackGuard>,
//!                                session: Option<Res<Session<Config>>>| {
//!         // Once everyone is here (say, 2 players), start the match.
//!         if session.is_none() && swarm.peer_count() == 1 {
//!             let builder = p2p_session_builder::<Config>(&swarm).unwrap();
//!             let socket = GgrsSocket::new(&mut swarm, &mut guard, ggrs).unwrap();
//!             let session = builder.start_p2p_session(socket).unwrap();
//!             commands.insert_resource(Session::P2P(session));
//!         }
//!     });
//! ```
//!
//! - **The socket** ([`GgrsSocket`]) sends each ggrs message as one datagram on the channel
//!   (use an unreliable, unordered one, which is what ggrs expects of UDP), encoded with
//!   postcard, and receives through a [`ChannelTap`](crate::tap::ChannelTap) of the channel. Nothing blocks; a send to
//!   a peer without a link, or a full link, is dropped like a lost datagram (ggrs resends).
//! - **Player handles** ([`p2p_session_builder`]): this member and its connected peers,
//!   sorted by identity, get handles `0..n` in that order, so every member builds the same
//!   session without exchanging a message.
//! - **Leaving** ([`FastRtcGgrsPlugin`]): a peer whose link closes mid-match is disconnected
//!   in the session after [`DEPARTURE_GRACE`] (300 ms; ggrs would otherwise wait out its 2 s
//!   disconnect timeout), and a [`PlayerDisconnected`] message says so; the others play on
//!   with its input at the default. To leave, write [`LeaveMatch`]: the session stops,
//!   waits until every peer has this member's last input, and the swarm disconnects
//!   ([`SessionEnded`] with [`SessionEnd::Left`]). So every peer holds the same inputs of
//!   the leaver and disconnects it at the same frame.
//! - **The rollback window** (ggrs 0.13.0): when members had different amounts of a departed
//!   player's input, ggrs disconnects it everywhere at the smallest last frame anyone
//!   reports, and a member that had more must roll back further. ggrs panics when that is
//!   beyond the prediction window, or is the current frame (gschup/ggrs#119, unreleased). The
//!   socket holds back an input message that reports a disconnect this member did not know
//!   of, and the plugin delivers it only when ggrs can roll back as far as it will ask; a
//!   disconnect of this member's own is made under the same check. Where no rollback can
//!   agree with the others (a member that crashed while its last inputs reached some peers
//!   and not others), the session ends: [`SessionEnded`] with
//!   [`SessionEnd::RollbackOutOfWindow`]; the game starts a new match instead of crashing.
//! - Ordering: [`FastRtcGgrsPlugin`] runs bevy_ggrs's frame after the swarm's receive pass,
//!   so what arrived this frame is rolled in this frame.
//!
//! The files: `error.rs` ([`RollbackError`]), `players.rs` (handles), `socket.rs` (the socket
//! and the [`RollbackGuard`] resource it shares with the plugin), `guard.rs` (the rollback
//! window's pure decisions), `departure.rs` (the plugin's systems: departures, the window
//! check, leaving) and `plugin.rs` ([`FastRtcGgrsPlugin`]).

mod departure;
mod error;
mod guard;
mod players;
mod plugin;
mod socket;

pub use departure::{
    DEPARTURE_GRACE, FAREWELL_TIMEOUT, HOLD_LIMIT, LeaveMatch, PlayerDisconnected, SessionEnd,
    SessionEnded,
};
pub use error::RollbackError;
pub use players::p2p_session_builder;
pub use plugin::FastRtcGgrsPlugin;
pub use socket::{GgrsSocket, RollbackGuard, SOCKET_QUEUE};
