//! What the platform's media code may ask of a running swarm. [`SwarmHandle`](crate::SwarmHandle)
//! implements it, so the platform works on a swarm without naming the handle: imports go from
//! the shell down to the platform, never back up.

use fast_rtc_protocol::{ConnectionId, UserId};
use fast_rtc_swarm_core::{TrackError, TrackId};

/// A running swarm as the platform's media code sees it (natively `AudioSender`, in the
/// browser `BrowserAudio`). [`SwarmHandle`](crate::SwarmHandle) is the one implementation.
pub trait SwarmAccess: Send + Sync + 'static {
    /// Starts sending on declared track `track` (see `SwarmHandle::add_track`).
    fn add_track(&self, track: TrackId) -> Result<(), TrackError>;
    /// Sends one encoded audio packet on `track` to every open link; returns to how many (see
    /// `SwarmHandle::send_audio`).
    fn send_audio(&self, track: TrackId, packet: Vec<u8>) -> Result<usize, TrackError>;
    /// The open link to `peer` (the newest, if there are two).
    fn link_to(&self, peer: &UserId) -> Option<ConnectionId>;
    /// The key under which the platform keeps this swarm's media (0: it keeps none), or
    /// [`TrackError::Closed`] once the swarm is closed.
    fn media_key(&self) -> Result<u64, TrackError>;
}
