//! Run conditions on the swarm's state, for `.run_if(...)`.

use crate::session::Swarm;
use bevy::prelude::Res;

/// A run condition: the server accepted this member into the room
/// ([`SignalingState::Joined`](fast_rtc_swarm::SignalingState::Joined)). False without the
/// plugin.
///
/// ```no_run
/// # use bevy::prelude::*;
/// # use bevy_fast_rtc::prelude::*;
/// # fn send_state() {}
/// # let mut app = App::new();
/// app.add_systems(FixedUpdate, send_state.run_if(swarm_joined()));
/// ```
pub fn swarm_joined() -> impl FnMut(Option<Res<Swarm>>) -> bool + Clone {
    |swarm: Option<Res<Swarm>>| swarm.is_some_and(|s| s.is_joined())
}

/// A run condition: at least `n` peers have an open link (e.g. start the match at 2).
pub fn peer_count_at_least(n: usize) -> impl FnMut(Option<Res<Swarm>>) -> bool + Clone {
    move |swarm: Option<Res<Swarm>>| swarm.is_some_and(|s| s.peer_count() >= n)
}
