//! Players leaving a running P2P session: a departed peer is disconnected in it, a disconnect
//! another member reports is checked against the rollback window first, and this member
//! leaves after its last inputs are acknowledged.

use super::guard::{Endpoint, Verdict, rollback_check, verdict};
use super::socket::{RollbackGuard, SharedGuard, lock};
use crate::messages::PeerClosed;
use crate::session::Swarm;
use bevy::prelude::*;
use bevy_ggrs::Session;
use bevy_ggrs::ggrs::{Config, Frame, GgrsError, P2PSession, PlayerHandle};
use fast_rtc_protocol::UserId;
use std::time::Duration;
use tracing::{debug, warn};

/// A player of the running P2P session was disconnected in it because its link closed
/// (written by [`FastRtcGgrsPlugin`](super::FastRtcGgrsPlugin); ggrs reports no event for a
/// disconnect it was told of).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct PlayerDisconnected {
    /// The peer.
    pub peer: UserId,
    /// Its handle in the session.
    pub handle: PlayerHandle,
}

/// Write this to leave the running P2P session: the session stops advancing, waits until
/// every peer has acknowledged this member's last input (at most [`FAREWELL_TIMEOUT`]), then
/// the swarm disconnects and [`SessionEnded`] says [`SessionEnd::Left`]. Because every peer
/// then holds the same inputs of this member, they all disconnect it at the same frame.
#[derive(Message, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaveMatch;

/// The P2P session ended: its `Session` resource is gone.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SessionEnded {
    /// Why.
    pub reason: SessionEnd,
}

/// Why a P2P session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// This member left ([`LeaveMatch`]). `flushed`: every peer had acknowledged its last
    /// input; `false` if [`FAREWELL_TIMEOUT`] ran out first.
    Left {
        /// Every peer had this member's last input.
        flushed: bool,
    },
    /// A player left and ggrs would have to roll back to `frame`, but this member is at
    /// `current`, beyond its prediction window (or exactly at `frame`, for longer than
    /// [`HOLD_LIMIT`]), where ggrs 0.13.0 panics. It happens when this member had more of the
    /// departed player's input than another member, who disconnected it earlier: no
    /// continuation agrees with the others' here. Start a new match.
    RollbackOutOfWindow {
        /// The departed player's handle.
        player: PlayerHandle,
        /// The frame ggrs would load.
        frame: Frame,
        /// This session's frame.
        current: Frame,
    },
}

/// Peers whose link closed, waiting to be disconnected in the session, at most.
const MAX_DEPARTURES: usize = 64;

/// How long a departure waits before it is disconnected in the session: much longer than a
/// prediction window of frames, much shorter than ggrs's own 2 s disconnect timeout. By then
/// every member has run up to its prediction window past the departed player's last input.
pub const DEPARTURE_GRACE: Duration = Duration::from_millis(300);

/// How long [`LeaveMatch`] waits for the peers' acknowledgements of the last inputs.
pub const FAREWELL_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a disconnect report is held while delivering it would make ggrs roll back to its
/// current frame, before the session ends instead.
pub const HOLD_LIMIT: Duration = Duration::from_millis(250);

/// The session this member is leaving, taken out of the world so bevy_ggrs no longer
/// advances it, polled until its last inputs are acknowledged.
#[derive(Resource)]
pub(crate) struct Leaving<C: Config> {
    session: P2PSession<C>,
    since: Duration,
}

/// Ends the running session: removed, its guard forgotten, and [`SessionEnded`].
fn end<C: Config>(
    commands: &mut Commands,
    guard: &mut RollbackGuard,
    ended: &mut MessageWriter<SessionEnded>,
    reason: SessionEnd,
) {
    warn!(?reason, "ggrs: the session ends");
    commands.remove_resource::<Session<C>>();
    guard.clear();
    ended.write(SessionEnded { reason });
}

/// Disconnects, in the running P2P session, every player whose link closed, after
/// [`DEPARTURE_GRACE`], and only when ggrs 0.13.0 can roll back to the frame after the last
/// input of it this member has (see `guard.rs`): otherwise it waits, or, beyond the window,
/// ends the session.
#[allow(clippy::too_many_arguments)]
pub(crate) fn disconnect_departed<C: Config<Address = UserId>>(
    mut commands: Commands,
    mut closed: MessageReader<PeerClosed>,
    session: Option<ResMut<Session<C>>>,
    mut rollback: ResMut<RollbackGuard>,
    time: Res<Time<Real>>,
    mut out: MessageWriter<PlayerDisconnected>,
    mut ended: MessageWriter<SessionEnded>,
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
    let Some(guard) = rollback.get() else {
        return;
    };
    let due: Vec<UserId> = departed
        .iter()
        .filter(|(_, at)| now.saturating_sub(*at) >= DEPARTURE_GRACE)
        .map(|(p, _)| p.clone())
        .collect();
    for peer in due {
        let handles = p2p.handles_by_address(peer.clone());
        let (current, window) = (p2p.current_frame(), p2p.max_prediction());
        let checks: Vec<(PlayerHandle, Verdict)> = {
            let g = lock(&guard);
            handles
                .iter()
                .filter_map(|h| g.local().get(*h).map(|s| (*h, *s)))
                .filter(|(_, s)| !s.disconnected)
                .map(|(h, s)| (h, rollback_check(current, s.last_frame, window)))
                .collect()
        };
        if let Some((player, Verdict::Beyond { from })) = checks
            .iter()
            .find(|(_, v)| matches!(v, Verdict::Beyond { .. }))
        {
            let reason = SessionEnd::RollbackOutOfWindow {
                player: *player,
                frame: *from,
                current,
            };
            end::<C>(&mut commands, &mut rollback, &mut ended, reason);
            departed.clear();
            return;
        }
        if checks.iter().any(|(_, v)| *v == Verdict::Wait) {
            continue; // one frame later
        }
        departed.retain(|(p, _)| p != &peer);
        for handle in handles {
            match p2p.disconnect_player(handle) {
                Ok(()) => {
                    lock(&guard).disconnected_locally(handle);
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

/// Decides on the disconnect reports the socket holds back, one peer's a frame (each is
/// decided against what is delivered): delivered when ggrs can roll back as far as they make
/// it, held while that is the current frame, and the session ends when it is beyond the
/// window.
pub(crate) fn check_window<C: Config<Address = UserId>>(
    mut commands: Commands,
    session: Option<Res<Session<C>>>,
    mut rollback: ResMut<RollbackGuard>,
    time: Res<Time<Real>>,
    mut ended: MessageWriter<SessionEnded>,
    mut waiting_since: Local<Option<Duration>>,
) {
    let Some(session) = session else {
        return;
    };
    let Session::P2P(p2p) = &*session else {
        return;
    };
    let Some(guard) = rollback.get() else {
        return;
    };
    let Some(decided) = decide(p2p, &guard) else {
        *waiting_since = None;
        return;
    };
    let now = time.elapsed();
    let reason = match decided {
        (_, None) => {
            *waiting_since = None;
            return;
        }
        (player, Some(Verdict::Beyond { from })) => SessionEnd::RollbackOutOfWindow {
            player,
            frame: from,
            current: p2p.current_frame(),
        },
        (player, Some(_)) => {
            let since = *waiting_since.get_or_insert(now);
            if now.saturating_sub(since) < HOLD_LIMIT {
                return;
            }
            SessionEnd::RollbackOutOfWindow {
                player,
                frame: p2p.current_frame(),
                current: p2p.current_frame(),
            }
        }
    };
    *waiting_since = None;
    end::<C>(&mut commands, &mut rollback, &mut ended, reason);
}

/// The first held peer's verdict: `None` if nothing is held; `(_, None)` when its reports
/// were released (safe); `(player, Some(verdict))` otherwise.
fn decide<C: Config<Address = UserId>>(
    p2p: &P2PSession<C>,
    guard: &SharedGuard,
) -> Option<(PlayerHandle, Option<Verdict>)> {
    let mut g = lock(guard);
    let mut holding = g.holding();
    holding.sort();
    let peer = holding.into_iter().next()?;
    let proposal = g.proposed(&peer);
    let handles: Vec<(UserId, Vec<PlayerHandle>)> = g
        .peers()
        .into_iter()
        .map(|addr| {
            let hs = p2p.handles_by_address(addr.clone());
            (addr, hs)
        })
        // ggrs ignores messages from addresses that are not players; so does the verdict.
        .filter(|(_, hs)| !hs.is_empty())
        .collect();
    let endpoints: Vec<Endpoint<'_>> = handles
        .iter()
        .filter_map(|(addr, hs)| {
            let statuses = if *addr == peer {
                Some(proposal.as_slice())
            } else {
                g.remote(addr)
            }?;
            Some(Endpoint {
                handles: hs,
                statuses,
            })
        })
        .collect();
    let local_handles = p2p.local_player_handles();
    match verdict(
        p2p.current_frame(),
        p2p.max_prediction(),
        p2p.num_players(),
        g.local(),
        &local_handles,
        &endpoints,
    ) {
        None => {
            drop(endpoints);
            debug!(%peer, "ggrs: a held disconnect report is within the window, delivered");
            g.release(peer);
            Some((0, None))
        }
        Some((player, v)) => Some((player, Some(v))),
    }
}

/// Takes the running P2P session out of the world when [`LeaveMatch`] is written, so
/// bevy_ggrs stops advancing it; [`farewell`] takes over.
pub(crate) fn begin_leave<C: Config<Address = UserId>>(
    mut commands: Commands,
    mut requests: MessageReader<LeaveMatch>,
    session: Option<Res<Session<C>>>,
) {
    if requests.read().count() == 0 || !matches!(session.as_deref(), Some(Session::P2P(_))) {
        return;
    }
    commands.queue(|world: &mut World| {
        let since = world.resource::<Time<Real>>().elapsed();
        if let Some(Session::P2P(session)) = world.remove_resource::<Session<C>>() {
            debug!("ggrs: leaving the session once the peers have the last inputs");
            world.insert_resource(Leaving { session, since });
        }
    });
}

/// Polls the session being left until every peer acknowledged its last input (or
/// [`FAREWELL_TIMEOUT`]), then disconnects the swarm and writes [`SessionEnded`].
pub(crate) fn farewell<C: Config<Address = UserId>>(
    mut commands: Commands,
    leaving: Option<ResMut<Leaving<C>>>,
    swarm: Option<ResMut<Swarm>>,
    mut rollback: ResMut<RollbackGuard>,
    time: Res<Time<Real>>,
    mut ended: MessageWriter<SessionEnded>,
) {
    let Some(mut leaving) = leaving else {
        return;
    };
    leaving.session.poll_remote_clients();
    let session = &leaving.session;
    let flushed =
        session
            .remote_player_handles()
            .into_iter()
            .all(|h| match session.network_stats(h) {
                Ok(stats) => stats.send_queue_len == 0,
                // A disconnected player has nothing to wait for.
                Err(GgrsError::NotSynchronized) => true,
                // Not enough data yet to tell (the first second of a session): wait it out.
                Err(_) => false,
            });
    let timed_out = time.elapsed().saturating_sub(leaving.since) >= FAREWELL_TIMEOUT;
    if !flushed && !timed_out {
        return;
    }
    commands.remove_resource::<Leaving<C>>();
    rollback.clear();
    if let Some(mut swarm) = swarm {
        swarm.disconnect();
    }
    debug!(flushed, "ggrs: left the session");
    ended.write(SessionEnded {
        reason: SessionEnd::Left { flushed },
    });
}
