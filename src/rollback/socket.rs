//! [`GgrsSocket`]: ggrs's [`NonBlockingSocket`] over a swarm channel, players addressed by
//! [`UserId`], with the rollback window guard on what it receives.

use super::RollbackError;
use super::guard::WindowGuard;
use crate::session::Swarm;
use crate::tap::ChannelTap;
use bevy_ggrs::ggrs::{Message, NonBlockingSocket};
use fast_rtc_protocol::UserId;
use fast_rtc_swarm::{ChannelId, Delivery, SwarmHandle};
use std::sync::{Arc, Mutex, MutexGuard};
use tracing::{debug, warn};

/// Messages a [`GgrsSocket`]'s tap holds at most between two ggrs polls: several seconds of
/// a 4-player match at 60 frames per second.
pub const SOCKET_QUEUE: usize = 4096;

/// The guard a socket shares with [`FastRtcGgrsPlugin`](super::FastRtcGgrsPlugin), which
/// finds it in the [`Swarm`] the socket was made on.
pub(crate) type SharedGuard = Arc<Mutex<WindowGuard>>;

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
    /// it taps from now on ([`Swarm::tap_channel`]). The swarm keeps the socket's window
    /// guard for [`FastRtcGgrsPlugin`](super::FastRtcGgrsPlugin): the newest socket's.
    pub fn new(swarm: &mut Swarm, channel: ChannelId) -> Result<GgrsSocket, RollbackError> {
        let handle = swarm.handle().cloned().ok_or(RollbackError::NotConnected)?;
        match swarm.config().delivery(channel) {
            None => return Err(RollbackError::NoSuchChannel(channel)),
            Some(Delivery::Reliable) => return Err(RollbackError::ReliableChannel(channel)),
            Some(_) => {}
        }
        let guard = SharedGuard::default();
        swarm.rollback_guard = Some(guard.clone());
        Ok(GgrsSocket {
            tap: swarm.tap_channel(channel, SOCKET_QUEUE),
            handle,
            channel,
            loss: None,
            undecodable: 0,
            guard,
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
