//! Voice: declared audio tracks on every link ([`crate::media`]), their announcements and naming.

use super::SwarmCore;
use super::io::*;
use crate::control::Control;
use crate::media::{MAX_AUDIO_PACKET, TrackAnnounce, TrackError, TrackId, TrackState};
use fast_rtc_protocol::{ConnectionId, UserId};
use tracing::debug;

impl SwarmCore {
    /// Starts sending on declared audio track `track` ([`crate::media`]): live on every open
    /// link and every future one, announced to the peers. Adding a track already added
    /// unmutes it.
    pub fn add_track(&mut self, track: TrackId) -> Result<(), TrackError> {
        self.set_track(track, Some(TrackState::Live), false)
    }

    /// Mutes (`muted`) or unmutes an added track: while muted,
    /// [`SwarmCore::send_audio`] sends nothing, and the peers are told.
    pub fn mute_track(&mut self, track: TrackId, muted: bool) -> Result<(), TrackError> {
        let state = if muted {
            TrackState::Muted
        } else {
            TrackState::Live
        };
        self.set_track(track, Some(state), true)
    }

    /// Stops sending on an added track for good (until it is added again); the peers are told.
    pub fn remove_track(&mut self, track: TrackId) -> Result<(), TrackError> {
        self.set_track(track, None, true)
    }

    /// The state of this member's track `track` (`None`: not added, or not declared).
    pub fn local_track(&self, track: TrackId) -> Option<TrackState> {
        self.local_tracks
            .get(usize::from(track.0))
            .copied()
            .flatten()
    }

    /// The state of `peer`'s track `track` as it announced it, over its open link.
    pub fn remote_track(&self, peer: &UserId, track: TrackId) -> Option<TrackState> {
        let id = self.link_to(peer)?;
        let l = self.links.get(&id)?;
        l.remote_tracks.get(usize::from(track.0)).copied().flatten()
    }

    /// Sends one encoded audio packet (20 ms of Opus) on track `track` to every open link.
    /// Returns how many links it was handed to: 0 while the track is muted.
    pub fn send_audio(&mut self, track: TrackId, packet: Vec<u8>) -> Result<usize, TrackError> {
        if self.closed {
            return Err(TrackError::Closed);
        }
        if packet.len() > MAX_AUDIO_PACKET {
            return Err(TrackError::PacketTooLarge(packet.len()));
        }
        match self.local_tracks.get(usize::from(track.0)) {
            None => return Err(TrackError::NoSuchTrack(track)),
            Some(None) => return Err(TrackError::NotAdded(track)),
            Some(Some(TrackState::Muted)) => return Ok(0),
            Some(Some(TrackState::Live)) => {}
        }
        let open = self.open_links();
        let n = open.len();
        for id in open {
            self.command(PeerCommand::SendAudio {
                id,
                track,
                packet: packet.clone(),
            });
        }
        Ok(n)
    }

    /// Sets this member's track `track` to `state` and announces a change to every open link.
    /// `must_be_added`: refuse a track that is not added.
    pub(super) fn set_track(
        &mut self,
        track: TrackId,
        state: Option<TrackState>,
        must_be_added: bool,
    ) -> Result<(), TrackError> {
        if self.closed {
            return Err(TrackError::Closed);
        }
        let Some(slot) = self.local_tracks.get_mut(usize::from(track.0)) else {
            return Err(TrackError::NoSuchTrack(track));
        };
        if must_be_added && slot.is_none() {
            return Err(TrackError::NotAdded(track));
        }
        if *slot == state {
            return Ok(());
        }
        *slot = state;
        for id in self.open_links() {
            self.announce_track(&id, track, state);
        }
        Ok(())
    }

    /// Tells link `id`'s remote the state of this member's track `track`.
    pub(super) fn announce_track(
        &mut self,
        id: &ConnectionId,
        track: TrackId,
        state: Option<TrackState>,
    ) {
        let Some(name) = self.config.track_name(track) else {
            return;
        };
        let control = Control::Track {
            name: name.to_owned(),
            state: TrackAnnounce::of(state),
        };
        self.send_control(id, &control);
        if state.is_some() {
            self.name_media(id, track);
        }
    }

    /// Names track `track`'s transceiver to link `id`'s remote the JS client's way, once its
    /// mid is known: `stream` (a stream of the track's name made of that one track), then
    /// `midOffer`. Without them a JS client peer cannot tell which stream the media section
    /// belongs to. Sent after the `track` announcement, so a peer of this crate has the
    /// track's state before it reads them (it takes them as "live" only for a track it knows
    /// nothing of).
    pub(super) fn name_media(&mut self, id: &ConnectionId, track: TrackId) {
        let Some(name) = self.config.track_name(track).map(str::to_owned) else {
            return;
        };
        let Some(l) = self.links.get_mut(id) else {
            return;
        };
        let slot = usize::from(track.0);
        let Some(Some(mid)) = l.local_mids.get(slot).cloned() else {
            return;
        };
        match l.media_named.get_mut(slot) {
            Some(named) if !*named => *named = true,
            _ => return,
        }
        for control in [
            Control::Stream {
                name: name.clone(),
                tracks: vec![name.clone()],
            },
            Control::MidOffer { mid, name },
        ] {
            self.send_control(id, &control);
        }
    }

    /// Link `id`'s remote (the JS client) named a transceiver `name` it sends on: a declared
    /// track this link knows nothing of becomes live.
    pub(super) fn media_offered(&mut self, id: &ConnectionId, name: &str) {
        let known = self.config.track_by_name(name).and_then(|track| {
            let l = self.links.get(id)?;
            l.remote_tracks.get(usize::from(track.0)).copied()
        });
        if known == Some(None) {
            self.track_announced(id, name, TrackAnnounce::Live);
        } else {
            debug!(%id, %name, "a media naming for a track already known, or not declared");
        }
    }

    /// Link `id`'s remote announced its track `name`: updates what the link knows and tells
    /// the application what changed.
    pub(super) fn track_announced(
        &mut self,
        id: &ConnectionId,
        name: &str,
        announce: TrackAnnounce,
    ) {
        let Some(track) = self.config.track_by_name(name) else {
            debug!(%id, %name, "ignoring an announcement of an audio track this swarm does not declare");
            return;
        };
        let Some(l) = self.links.get_mut(id) else {
            return;
        };
        let Some(peer) = l.remote.clone() else {
            return;
        };
        let Some(slot) = l.remote_tracks.get_mut(usize::from(track.0)) else {
            return;
        };
        let (before, after) = (*slot, announce.state());
        *slot = after;
        match (before, after) {
            (None, Some(state)) => {
                self.event(SwarmEvent::TrackAdded {
                    peer: peer.clone(),
                    track,
                });
                if state == TrackState::Muted {
                    self.event(SwarmEvent::TrackMuted {
                        peer,
                        track,
                        muted: true,
                    });
                }
            }
            (Some(b), Some(a)) if b != a => self.event(SwarmEvent::TrackMuted {
                peer,
                track,
                muted: a == TrackState::Muted,
            }),
            (Some(_), None) => self.event(SwarmEvent::TrackRemoved { peer, track }),
            _ => {}
        }
    }
}
