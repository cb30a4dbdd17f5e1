//! Why a rollback session could not be set up.

use bevy_ggrs::ggrs::GgrsError;
use fast_rtc_swarm::ChannelId;

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
