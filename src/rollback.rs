//! Rollback netcode over the swarm (feature `ggrs`): a [`ggrs`](bevy_ggrs::ggrs) socket on a swarm channel,
//! players addressed by [`UserId`], and the glue for [`bevy_ggrs`] (0.22, Bevy 0.19).
//!
//! ```no_run
//! use bevy::prelude::*;
//! use bevy_fast_rtc::prelude::*;
//! use bevy_fast_rtc::rollback::{FastRtcGgrsPlugin, GgrsSocket, p2p_session_builder};
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
//!                                session: Option<Res<Session<Config>>>| {
//!         // Once everyone is here (say, 2 players), start the match.
//!         if session.is_none() && swarm.peer_count() == 1 {
//!             let builder = p2p_session_builder::<Config>(&swarm).unwrap();
//!             let socket = GgrsSocket::new(&mut swarm, ggrs).unwrap();
//!             let session = builder.start_p2p_session(socket).unwrap();
//!             commands.insert_resource(Session::P2P(session));
//!         }
//!     });
//! ```
//!
//! - **The socket** ([`GgrsSocket`]) sends each ggrs message as one datagram on the channel
//!   (use an unreliable, unordered one, which is what ggrs expects of UDP), encoded with
//!   postcard, and receives through a [`ChannelTap`] of the channel. Nothing blocks; a send to
//!   a peer without a link, or a full link, is dropped like a lost datagram (ggrs resends).
//! - **Player handles** ([`p2p_session_builder`]): this member and its connected peers,
//!   sorted by identity, get handles `0..n` in that order, so every member builds the same
//!   session without exchanging a message.
//! - **Leaving** ([`FastRtcGgrsPlugin`]): a peer whose link closes mid-match is disconnected
//!   in the session after [`DEPARTURE_GRACE`] (300 ms; ggrs would otherwise wait out its 2 s
//!   disconnect timeout, and the wait steps around a ggrs 0.13.0 panic that is fixed upstream
//!   but not released), and a [`PlayerDisconnected`] message says so; the others play on with
//!   its input at the default.
//! - Ordering: [`FastRtcGgrsPlugin`] runs bevy_ggrs's frame after the swarm's receive pass,
//!   so what arrived this frame is rolled in this frame.

use crate::messages::PeerClosed;
use crate::plugin::FastRtcSystems;
use crate::session::Swarm;
use crate::tap::ChannelTap;
use bevy::prelude::*;
use bevy_ggrs::ggrs::{
    Config, GgrsError, Message, NonBlockingSocket, PlayerHandle, PlayerType, SessionBuilder,
};
use bevy_ggrs::{RunGgrsSystems, Session};
use fast_rtc_protocol::UserId;
use fast_rtc_swarm::{ChannelId, Delivery, SwarmHandle};
use std::marker::PhantomData;
use std::time::Duration;
use tracing::{debug, warn};

/// Messages a [`GgrsSocket`]'s tap holds at most between two ggrs polls: several seconds of
/// a 4-player match at 60 frames per second.
pub const SOCKET_QUEUE: usize = 4096;

/// Why a rollback session could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RollbackError {
    /// The swarm is not running.
    #[error("the swarm is not connected")]
    NotConnected,
    /// This member's identity is unknown (its token has no `sub`).
    #[error("this member's identity is unknown (a token without `sub`)")]
    NoIdentity,
    /// The channel is not a configured game channel.
    #[error("channel {0:?} is not a configured game channel")]
    NoSuchChannel(ChannelId),
    /// The channel is reliable: ggrs expects datagrams, and retransmitting stale inputs
    /// only delays the fresh ones.
    #[error("channel {0:?} is reliable; ggrs needs an unreliable channel")]
    ReliableChannel(ChannelId),
    /// ggrs refused the session's settings.
    #[error(transparent)]
    Ggrs(#[from] GgrsError),
}

/// A [`NonBlockingSocket`] over a swarm channel: players are addressed by [`UserId`].
pub struct GgrsSocket {
    handle: SwarmHandle,
    channel: ChannelId,
    tap: ChannelTap,
    loss: Option<(f64, fastrand::Rng)>,
    undecodable: u64,
}

impl GgrsSocket {
    /// A socket on `channel` (an unreliable game channel of the swarm's configuration), which
    /// it taps from now on ([`Swarm::tap_channel`]).
    pub fn new(swarm: &mut Swarm, channel: ChannelId) -> Result<GgrsSocket, RollbackError> {
        let handle = swarm.handle().cloned().ok_or(RollbackError::NotConnected)?;
        match swarm.config().delivery(channel) {
            None => return Err(RollbackError::NoSuchChannel(channel)),
            Some(Delivery::Reliable) => return Err(RollbackError::ReliableChannel(channel)),
            Some(_) => {}
        }
        Ok(GgrsSocket {
            tap: swarm.tap_channel(channel, SOCKET_QUEUE),
            handle,
            channel,
            loss: None,
            undecodable: 0,
        })
    }

    /// Drops this fraction (0.0 to 1.0) of the messages it sends, chosen by a generator seeded
    /// with `seed`: packet loss on demand, to test a game's rollback under it.
    pub fn with_simulated_loss(mut self, fraction: f64, seed: u64) -> Self {
        self.loss = Some((fraction.clamp(0.0, 1.0), fastrand::Rng::with_seed(seed)));
        self
    }

    /// Received messages that were not ggrs messages (dropped).
    pub fn undecodable(&self) -> u64 {
        self.undecodable
    }

    /// Received messages dropped because ggrs did not poll for too long.
    pub fn overflowed(&self) -> u64 {
        self.tap.dropped()
    }
}

impl NonBlockingSocket<UserId> for GgrsSocket {
    fn send_to(&mut self, msg: &Message, addr: &UserId) {
        if let Some((fraction, rng)) = &mut self.loss
            && rng.f64() < *fraction
        {
            return;
        }
        match postcard::to_allocvec(msg) {
            // Like a datagram: lost if there is no link or no room (ggrs resends).
            Ok(bytes) => {
                if let Err(e) = self.handle.send(addr, self.channel, bytes) {
                    debug!(peer = %addr, error = %e, "ggrs message not sent");
                }
            }
            Err(e) => warn!(error = %e, "cannot encode a ggrs message"),
        }
    }

    fn receive_all_messages(&mut self) -> Vec<(UserId, Message)> {
        let mut out = Vec::new();
        for (from, payload) in self.tap.drain() {
            match postcard::from_bytes::<Message>(payload.as_bytes()) {
                Ok(msg) => out.push((from, msg)),
                Err(e) => {
                    self.undecodable += 1;
                    debug!(peer = %from, error = %e, "not a ggrs message");
                }
            }
        }
        out
    }
}

/// A session builder with every player added: this member ([`PlayerType::Local`]) and each
/// connected peer ([`PlayerType::Remote`]), handles `0..n` in identity order, so every member
/// of the room builds the same session. Add your settings (input delay, prediction window,
/// desync detection) and start it with a [`GgrsSocket`].
pub fn p2p_session_builder<C: Config<Address = UserId>>(
    swarm: &Swarm,
) -> Result<SessionBuilder<C>, RollbackError> {
    let me = swarm.identity().cloned().ok_or(RollbackError::NoIdentity)?;
    let mut players: Vec<UserId> = swarm.peers().map(|(u, _)| u.clone()).collect();
    players.push(me.clone());
    players.sort();
    players.dedup();
    let mut builder = SessionBuilder::<C>::new().with_num_players(players.len())?;
    for (handle, player) in players.into_iter().enumerate() {
        let kind = if player == me {
            PlayerType::Local
        } else {
            PlayerType::Remote(player)
        };
        builder = builder.add_player(kind, handle)?;
    }
    Ok(builder)
}

/// A player of the running P2P session was disconnected in it because its link closed
/// (written by [`FastRtcGgrsPlugin`]; ggrs reports no event for a disconnect it was told of).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct PlayerDisconnected {
    /// The peer.
    pub peer: UserId,
    /// Its handle in the session.
    pub handle: PlayerHandle,
}

/// Glue between the swarm and bevy_ggrs for sessions of config `C`: bevy_ggrs's frame runs
/// after the swarm's receive pass, and a peer whose link closes is disconnected in the
/// running P2P session after [`DEPARTURE_GRACE`] ([`PlayerDisconnected`]).
pub struct FastRtcGgrsPlugin<C>(PhantomData<fn() -> C>);

impl<C> Default for FastRtcGgrsPlugin<C> {
    fn default() -> Self {
        FastRtcGgrsPlugin(PhantomData)
    }
}

impl<C: Config<Address = UserId>> Plugin for FastRtcGgrsPlugin<C> {
    fn build(&self, app: &mut App) {
        app.add_message::<PlayerDisconnected>()
            .configure_sets(PreUpdate, RunGgrsSystems.after(FastRtcSystems::Receive))
            .add_systems(
                PreUpdate,
                disconnect_departed::<C>
                    .after(FastRtcSystems::Receive)
                    .before(RunGgrsSystems),
            );
    }
}

/// Peers whose link closed, waiting to be disconnected in the session, at most.
const MAX_DEPARTURES: usize = 64;

/// How long a departure waits before it is disconnected in the session (see
/// `disconnect_departed`): much longer than a prediction window of frames, much shorter than
/// ggrs's own 2 s disconnect timeout.
pub const DEPARTURE_GRACE: Duration = Duration::from_millis(300);

/// Disconnects, in the running P2P session, every player whose link closed.
///
/// ggrs 0.13.0 panics ("must load frame in the past", `sync_layer.rs`) when a remote player is
/// disconnected while a session's current frame is exactly one past that player's last input:
/// `disconnect_player_at_frame` resimulates from `last + 1`, the current frame, and the
/// rollback tries to load it. It happens on the member that disconnects, and on every other
/// member that learns of it from that member's connect status. Fixed upstream
/// (gschup/ggrs#119), not in a release yet. So a departure waits [`DEPARTURE_GRACE`], by when
/// every member has run up to its prediction window past the departed player's last input
/// and waits there, and until this session is at least two frames past its confirmed frame.
fn disconnect_departed<C: Config<Address = UserId>>(
    mut closed: MessageReader<PeerClosed>,
    session: Option<ResMut<Session<C>>>,
    time: Res<Time<Real>>,
    mut out: MessageWriter<PlayerDisconnected>,
    mut departed: Local<Vec<(UserId, Duration)>>,
) {
    let Some(mut session) = session else {
        closed.clear();
        departed.clear();
        return;
    };
    let Session::P2P(p2p) = &mut *session else {
        closed.clear();
        departed.clear();
        return;
    };
    let now = time.elapsed();
    for c in closed.read() {
        if !departed.iter().any(|(p, _)| p == &c.peer) {
            if departed.len() >= MAX_DEPARTURES {
                departed.remove(0);
            }
            departed.push((c.peer.clone(), now));
        }
    }
    if departed.is_empty() || p2p.current_frame() < p2p.confirmed_frame().saturating_add(2) {
        return;
    }
    let due: Vec<UserId> = departed
        .iter()
        .filter(|(_, at)| now.saturating_sub(*at) >= DEPARTURE_GRACE)
        .map(|(p, _)| p.clone())
        .collect();
    departed.retain(|(p, _)| !due.contains(p));
    for peer in due {
        for handle in p2p.handles_by_address(peer.clone()) {
            match p2p.disconnect_player(handle) {
                Ok(()) => {
                    debug!(%peer, handle, "ggrs: player disconnected");
                    out.write(PlayerDisconnected {
                        peer: peer.clone(),
                        handle,
                    });
                }
                // Already disconnected (ggrs's own timeout, or another member's status).
                Err(e) => debug!(%peer, handle, error = %e, "ggrs: disconnect"),
            }
        }
    }
}
