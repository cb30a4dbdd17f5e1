//! Player handles: every member builds the same session without exchanging a message.

use super::error::RollbackError;
use crate::session::Swarm;
use bevy_ggrs::ggrs::{Config, PlayerType, SessionBuilder};
use fast_rtc_protocol::UserId;

/// A session builder with every player added: this member ([`PlayerType::Local`]) and each
/// connected peer ([`PlayerType::Remote`]), handles `0..n` in identity order, so every member
/// of the room builds the same session. Add your settings (input delay, prediction window,
/// desync detection) and start it with a [`GgrsSocket`](super::GgrsSocket).
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
