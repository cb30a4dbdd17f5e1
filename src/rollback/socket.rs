//! [`GgrsSocket`]: ggrs's [`NonBlockingSocket`] over a swarm channel, players addressed by
//! [`UserId`], with the rollback window guard on what it receives.

use super::error::RollbackError;
use super::guard::WindowGuard;
use crate::session::Swarm;
use crate::tap::ChannelTap;
use bevy::prelude::Resource;
use bevy_ggrs::ggrs::{Message, NonBlockingSocket};
use fast_rtc_protocol::UserId;
use fast_rtc_swarm::{ChannelId, Delivery, SwarmHandle};
use std::sync::{Arc, Mutex, MutexGuard};
use tracing::{debug, warn};

/// Messages a [`GgrsSocket`]'s tap holds at most between two ggrs polls: several seconds of
/// a 4-player match at 60 frames per second.
pub const SOCKET_QUEUE: usize = 4096;

/// The guard a socket shares with [`FastRtcGgrsPlugin`](super::FastRtcGgrsPlugin), which
/// finds it in the [`RollbackGuard`] resource.
pub(crate) type SharedGuard = Arc<Mutex<WindowGuard>>;

/// The rollback window guard of the newest [`GgrsSocket`], a resource of
/// [`FastRtcGgrsPlugin`](super::FastRtcGgrsPlugin): [`GgrsSocket::new`] arms it, the plugin's
/// systems check the running session's disconnects against it, and forget it when the
/// session ends.
#[derive(Resource, Default, Debug)]
pub struct RollbackGuard(Option<SharedGuard>);

impl RollbackGuard {
    /// Whether a socket's guard is held (a session was started and has not ended).
    pub fn is_armed(&self) -> bool {
        self.0.is_some()
    }

    /// The newest socket's guard.
    pub(crate) fn get(&self) -> Option<SharedGuard> {
        self.0.clone()
    }

    /// Forgets the guard: the session it guarded ended.
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
}

/// Locks `guard`; a panic elsewhere while it was locked leaves consistent data (every
/// update is a single step), so a poisoned lock is taken as it is.
pub(crate) fn lock(guard: &SharedGuard) -> MutexGuard<'_, WindowGuard> {
    guard.lock().unwrap_or_else(|e| e.into_inner())
}

/// A [`NonBlockingSocket`] over a swarm channel: players are addressed by [`UserId`].
///
/// An input message that reports a disconnect this member did not know of is held back
/// until [`FastRtcGgrsPlugin`](super::FastRtcGgrsPlugin) has checked that the session can
/// roll back as far as ggrs will ask it to (see the module's "Leaving").
pub struct GgrsSocket {
    handle: SwarmHandle,
    channel: ChannelId,
    tap: ChannelTap,
    loss: Option<(f64, fastrand::Rng)>,
    undecodable: u64,
    guard: SharedGuard,
}

impl GgrsSocket {
    /// A socket on `channel` (an unreliable game channel of the swarm's configuration), which
    /// it taps from now on ([`Swarm::tap_channel`]). `guard`, the resource of
    /// [`FastRtcGgrsPlugin`](super::FastRtcGgrsPlugin), keeps the socket's window guard for
    /// the plugin: the newest socket's.
    pub fn new(
        swarm: &mut Swarm,
        guard: &mut RollbackGuard,
        channel: ChannelId,
    ) -> Result<GgrsSocket, RollbackError> {
        let handle = swarm.handle().cloned().ok_or(RollbackError::NotConnected)?;
        match swarm.config().delivery(channel) {
            None => return Err(RollbackError::NoSuchChannel(channel)),
            Some(Delivery::Reliable) => return Err(RollbackError::ReliableChannel(channel)),
            Some(_) => {}
        }
        let shared = SharedGuard::default();
        guard.0 = Some(shared.clone());
        Ok(GgrsSocket {
            tap: swarm.tap_channel(channel, SOCKET_QUEUE),
            handle,
            channel,
            loss: None,
            undecodable: 0,
            guard: shared,
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
        lock(&self.guard).sent(msg);
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
        let mut guard = lock(&self.guard);
        let mut out = guard.take_released();
        for (from, payload) in self.tap.drain() {
            match postcard::from_bytes::<Message>(payload.as_bytes()) {
                Ok(msg) => out.extend(guard.received(from, msg)),
                Err(e) => {
                    self.undecodable += 1;
                    debug!(peer = %from, error = %e, "not a ggrs message");
                }
            }
        }
        out
    }
}
