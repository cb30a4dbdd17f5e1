//! The ECS face of voice: [`PeerTrack`] and [`PeerAudio`] messages, the [`VoiceVolume`] of a
//! peer's entity, and the gain it applies.

use bevy::prelude::{Component, Entity, Message};
use fast_rtc_protocol::UserId;
use fast_rtc_swarm::TrackId;

/// How loud a peer's voice is played: a gain on its [`PeerAudio`] samples (1.0 as sent, 0.0
/// muted: no `PeerAudio` at all). On every [`Peer`](crate::Peer) entity from its open on. In
/// the browser it is the volume the page plays the peer's tracks at (above 1.0 plays as 1.0).
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct VoiceVolume(pub f32);

impl Default for VoiceVolume {
    fn default() -> Self {
        VoiceVolume(1.0)
    }
}

/// What a peer did with one of its tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackChange {
    /// Added: its audio follows while it is live.
    Added,
    /// Muted.
    Muted,
    /// Unmuted.
    Unmuted,
    /// Removed, or the peer left.
    Removed,
}

/// A peer's track changed.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct PeerTrack {
    /// The peer.
    pub peer: UserId,
    /// Its entity, if it is still open.
    pub entity: Option<Entity>,
    /// The track.
    pub track: TrackId,
    /// What happened.
    pub change: TrackChange,
}

/// One decoded 20 ms frame of a peer's live track, scaled by its [`VoiceVolume`].
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct PeerAudio {
    /// The peer.
    pub peer: UserId,
    /// Its entity.
    pub entity: Option<Entity>,
    /// The track.
    pub track: TrackId,
    /// Mono 48 kHz samples.
    pub samples: Vec<i16>,
}

/// Hands changed [`VoiceVolume`]s to the page's playback (browser only: natively the volume
/// scales [`PeerAudio`]).
#[cfg(target_arch = "wasm32")]
pub(crate) fn browser_volume(
    swarm: bevy::prelude::Res<crate::session::Swarm>,
    changed: bevy::prelude::Query<
        (&crate::session::Peer, &VoiceVolume),
        bevy::prelude::Changed<VoiceVolume>,
    >,
) {
    use fast_rtc_swarm::BrowserAudio;
    let Some(handle) = swarm.handle() else {
        return;
    };
    for (peer, volume) in &changed {
        if let Err(e) = handle.set_peer_volume(&peer.user_id, volume.0) {
            tracing::debug!(peer = %peer.user_id, error = %e, "voice volume not applied");
        }
    }
}

/// `samples` scaled by `gain`, saturating; `None` when the gain mutes them.
pub(crate) fn scaled(samples: Vec<i16>, gain: f32) -> Option<Vec<i16>> {
    if gain <= 0.0 || !gain.is_finite() {
        return None;
    }
    if gain == 1.0 {
        return Some(samples);
    }
    Some(
        samples
            .into_iter()
            .map(|s| (f32::from(s) * gain).clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::scaled;

    #[test]
    fn volume_scales_saturates_and_mutes() {
        assert_eq!(scaled(vec![100, -100], 0.5), Some(vec![50, -50]));
        assert_eq!(
            scaled(vec![30_000, -30_000], 2.0),
            Some(vec![i16::MAX, i16::MIN])
        );
        assert_eq!(scaled(vec![1, 2], 1.0), Some(vec![1, 2]));
        assert_eq!(scaled(vec![1], 0.0), None);
        assert_eq!(scaled(vec![1], f32::NAN), None);
    }
}
