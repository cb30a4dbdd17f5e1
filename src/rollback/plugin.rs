//! [`FastRtcGgrsPlugin`]: the rollback glue's systems and resources in the app.

use super::departure::{self, LeaveMatch, PlayerDisconnected, SessionEnded};
use super::socket::RollbackGuard;
use crate::plugin::FastRtcSystems;
use bevy::prelude::*;
use bevy_ggrs::RunGgrsSystems;
use bevy_ggrs::ggrs::Config;
use fast_rtc_protocol::UserId;
use std::marker::PhantomData;

/// Glue between the swarm and bevy_ggrs for sessions of config `C`: bevy_ggrs's frame runs
/// after the swarm's receive pass; a peer whose link closes is disconnected in the running
/// P2P session after [`DEPARTURE_GRACE`](super::DEPARTURE_GRACE) ([`PlayerDisconnected`]); disconnect reports are
/// checked against the rollback window (the [`RollbackGuard`] resource it adds, which
/// [`GgrsSocket::new`](super::GgrsSocket::new) arms); [`LeaveMatch`] leaves ([`SessionEnded`]).
pub struct FastRtcGgrsPlugin<C>(PhantomData<fn() -> C>);

impl<C> Default for FastRtcGgrsPlugin<C> {
    fn default() -> Self {
        FastRtcGgrsPlugin(PhantomData)
    }
}

impl<C: Config<Address = UserId>> Plugin for FastRtcGgrsPlugin<C> {
    fn build(&self, app: &mut App) {
        app.init_resource::<RollbackGuard>()
            .add_message::<PlayerDisconnected>()
            .add_message::<LeaveMatch>()
            .add_message::<SessionEnded>()
            .configure_sets(PreUpdate, RunGgrsSystems.after(FastRtcSystems::Receive))
            .add_systems(
                PreUpdate,
                (
                    departure::begin_leave::<C>,
                    departure::farewell::<C>,
                    departure::disconnect_departed::<C>,
                    departure::check_window::<C>,
                )
                    .chain()
                    .after(FastRtcSystems::Receive)
                    .before(RunGgrsSystems),
            );
    }
}
