//! Bevy messages the plugin writes.

use bevy::prelude::{Entity, Message};
use fast_rtc_protocol::{ConnectionId, UserId};
use fast_rtc_swarm::{ChannelId, CloseReason, Payload, SendError, SignalingState, TokenRequest};

/// A peer got its first open link; its [`Peer`](crate::Peer) entity was spawned.
#[derive(Message, Debug, Clone)]
pub struct PeerOpened {
    /// The remote member.
    pub peer: UserId,
    /// Its entity.
    pub entity: Entity,
    /// The link's connection id.
    pub connection_id: ConnectionId,
}

/// A peer lost its last link; its entity was despawned.
#[derive(Message, Debug, Clone)]
pub struct PeerClosed {
    /// The remote member.
    pub peer: UserId,
    /// Its (now despawned) entity.
    pub entity: Entity,
    /// Why.
    pub reason: CloseReason,
}

/// What happened to an open peer's path ([`PeerConnectionChanged`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionChange {
    /// The path was lost (a network change, a NAT rebinding): reliable data waits while ICE
    /// restarts look for a new path (see `fast_rtc_swarm::swarm#ice-restarts`). The peer and
    /// its entity stay; a [`PeerClosed`] follows only if no path is found within
    /// `SwarmConfig::restore_timeout`.
    Interrupted,
    /// The path is back, after `outage`.
    Restored {
        /// How long the peer was unreachable.
        outage: std::time::Duration,
    },
}

/// An open peer's path was lost or restored; its entity stays.
#[derive(Message, Debug, Clone)]
pub struct PeerConnectionChanged {
    /// The remote member.
    pub peer: UserId,
    /// Its entity, if it is still open.
    pub entity: Option<Entity>,
    /// What happened.
    pub change: ConnectionChange,
}

/// Raw data from a peer, on any channel (typed channels also produce [`FromPeer`]).
#[derive(Message, Debug, Clone)]
pub struct PeerData {
    /// The sender.
    pub peer: UserId,
    /// Its entity, if it is still open.
    pub entity: Option<Entity>,
    /// The channel.
    pub channel: ChannelId,
    /// The message.
    pub payload: Payload,
}

/// A typed message from a peer, decoded from its channel.
#[derive(Message, Debug, Clone)]
pub struct FromPeer<T> {
    /// The sender.
    pub peer: UserId,
    /// Its entity, if it is still open.
    pub entity: Option<Entity>,
    /// The value.
    pub value: T,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FastRtcError {
    /// The swarm reported a fault (signaling refusal, unexpected signal, dropped message).
    #[error(transparent)]
    Swarm(#[from] fast_rtc_swarm::SwarmFault),
    /// A peer sent bytes that do not decode as the channel's type. Reported once per peer and
    /// type; the message is dropped.
    #[error("{type_name} from a peer did not decode: {error}")]
    Decode {
        /// The Rust type expected.
        type_name: &'static str,
        /// The codec's error.
        error: String,
    },
    /// A value could not be encoded for sending (the message is not sent).
    #[error("{type_name} did not encode: {error}")]
    Encode {
        /// The Rust type.
        type_name: &'static str,
        /// The codec's error.
        error: String,
    },
    /// A message could not be sent.
    #[error("send failed: {0}")]
    Send(#[from] SendError),
    /// The swarm could not start.
    #[error("could not start the swarm: {0}")]
    Start(String),
    /// A reliable channel's [`ChannelTap`](crate::ChannelTap) was full: its oldest message was
    /// dropped for the new one (its consumer does not drain it fast enough, or its capacity is
    /// too small).
    #[error("the tap of reliable channel {channel:?} was full: a message was dropped")]
    TapOverflow {
        /// The channel.
        channel: fast_rtc_swarm::ChannelId,
    },
}

/// An error, with the peer it concerns when there is one.
#[derive(Message, Debug, Clone)]
pub struct SwarmError {
    /// The peer concerned, if any.
    pub peer: Option<UserId>,
    /// What happened.
    pub error: FastRtcError,
}

/// The signaling session's state changed (see [`Swarm::state`](crate::Swarm::state)): written
/// in [`FastRtcSystems::Receive`](crate::FastRtcSystems::Receive), once per change, in order.
/// `to` is [`SignalingState::Failed`] with the reason when the session is over for good
/// (refused token, full room, room not granted, replaced by another session with this
/// identity, server unreachable past the retry budget).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SignalingChanged {
    /// The state before.
    pub from: SignalingState,
    /// The state now.
    pub to: SignalingState,
}

/// The swarm needs a fresh signaling token (its current one is about to expire, or the server
/// refused it): answer with [`Swarm::set_token`](crate::Swarm::set_token). Written in
/// [`FastRtcSystems::Receive`](crate::FastRtcSystems::Receive). Unanswered, a refused token
/// ends the session with [`FailReason::Unauthorized`](crate::swarm::FailReason::Unauthorized)
/// after [`TokenPolicy::wait_for_token`](crate::swarm::TokenPolicy::wait_for_token) (10 s by
/// default).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct TokenRequested {
    /// Why: expiring soon, or refused.
    pub request: TokenRequest,
}
