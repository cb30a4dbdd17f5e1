//! What a backend reports about one link ([`PeerEvent`]), dispatched to the handshake, the data
//! path, the `fast` channel and the tracks.

use super::SwarmCore;
use super::io::*;
use super::link::LinkState;
use crate::config::ChannelId;
use crate::control::Control;
use crate::media::{TrackId, TrackState};
use fast_rtc_protocol::{ClientMsg, ConnectionId};
use tracing::{debug, warn};
use web_time::Instant;

impl SwarmCore {
    /// What a backend reports about link `id`. Events for links the swarm no longer has are
    /// ignored.
    pub fn handle_peer(&mut self, now: Instant, id: &ConnectionId, event: PeerEvent) {
        let Some(link) = self.links.get(id) else {
            return;
        };
        let remote = link.remote.clone();
        let state = link.state;
        match event {
            PeerEvent::LocalDescription { kind, sdp } => {
                let retry_to = link.retry_to.clone().filter(|_| state == LinkState::Parked);
                let id = id.clone();
                let sdp = self.advertise(&sdp);
                self.signal(match (kind, retry_to) {
                    (SdpKind::Offer, Some(to)) => ClientMsg::Retry { id, to, sdp },
                    (SdpKind::Offer, None) => ClientMsg::Offer { id, sdp },
                    (SdpKind::Answer, _) => ClientMsg::Answer { id, sdp },
                });
            }
            PeerEvent::LocalCandidate(candidate) => {
                self.relay_check(id, candidate.as_ref());
                self.signal(ClientMsg::Candidate {
                    id: id.clone(),
                    candidate,
                });
            }
            PeerEvent::IceState(state) => {
                self.event(SwarmEvent::Connection {
                    user_id: remote,
                    id: id.clone(),
                    state,
                });
                self.ice_state(now, id, state);
            }
            PeerEvent::ChannelOpen(channel) => self.channel_open(now, id, channel),
            // Before the link opened, a failed handshake (webrtc-rs closes the channels when
            // DTLS gives up): retried like the others ([`super::retry`]).
            PeerEvent::ChannelClosed(ChannelId::FAST) => {
                self.link_failed(now, id, CloseReason::ChannelClosed);
            }
            // A game channel that closes while the link stays up: what waited for it can never
            // be sent, and later sends to it are refused (`SendError::ChannelClosed`).
            PeerEvent::ChannelClosed(channel) => {
                let Some(l) = self.links.get_mut(id) else {
                    return;
                };
                let index = usize::from(channel.0);
                if let Some(open) = l.open_channels.get_mut(index) {
                    *open = false;
                }
                if let Some(closed) = l.closed_channels.get_mut(index) {
                    *closed = true;
                }
                let lost = l.queued.remove(&channel).map_or(0, |q| q.len());
                if lost > 0
                    && let Some(peer) = l.remote.clone()
                {
                    warn!(%id, ?channel, lost, "a game channel closed with messages waiting for it");
                    self.event(SwarmEvent::Fault(SwarmFault::SendFailed {
                        peer,
                        channel,
                        messages: lost,
                        error: "the channel closed before they could be sent".into(),
                    }));
                }
            }
            PeerEvent::SendFailed { channel, error } => {
                if let Some(peer) = remote {
                    warn!(%id, ?channel, %error, "a message accepted for sending was lost");
                    self.event(SwarmEvent::Fault(SwarmFault::SendFailed {
                        peer,
                        channel,
                        messages: 1,
                        error,
                    }));
                }
            }
            PeerEvent::InvalidMessage { channel, error } => {
                if let Some(peer) = remote {
                    warn!(%id, ?channel, %error, "a message could not be delivered");
                    self.event(SwarmEvent::Fault(SwarmFault::InvalidMessage {
                        peer,
                        channel,
                        error,
                    }));
                }
            }
            PeerEvent::Message { channel, payload } => {
                let Some(payload) = self.reassemble(id, channel, payload) else {
                    return;
                };
                if let Payload::Text(text) = &payload
                    && let Some(control) = Control::parse(text)
                {
                    match control {
                        Ok(Control::Large { size, text }) => {
                            self.start_large(id, channel, size, text);
                        }
                        Ok(control) if channel == ChannelId::FAST => {
                            self.control(now, id, control);
                        }
                        Ok(control) => {
                            debug!(%id, ?channel, ?control, "ignoring a control message on a game channel")
                        }
                        Err(e) => debug!(%id, error = %e, "ignoring a malformed control message"),
                    }
                    return;
                }
                // Data only counts once the link is claimed; an unclaimed offer has no peer.
                let Some(from) = remote else { return };
                if channel == ChannelId::FAST && state != LinkState::Open {
                    // The remote sent on `fast`, so its end is open, and so is the link: this
                    // end's own open report may still be on its way (a JS answerer sends at
                    // once). Open it now, so the application sees Open before the data and
                    // can answer at once (the backend's send waits for the local channel).
                    self.channel_open(now, id, ChannelId::FAST);
                }
                let max = self.config.max_queued_messages;
                if let Some(l) = self.links.get_mut(id)
                    && l.state != LinkState::Open
                {
                    // Another channel opened before `fast`: keep its data until the link opens.
                    if l.early.len() < max {
                        l.early.push_back((channel, payload));
                    } else {
                        let what = format!(
                            "data from {from} on {channel:?} before the link opened: {max} already wait"
                        );
                        self.event(SwarmEvent::Fault(SwarmFault::Dropped(what)));
                    }
                    return;
                }
                self.event(SwarmEvent::Data {
                    from,
                    id: id.clone(),
                    channel,
                    payload,
                });
            }
            PeerEvent::TrackMids(mids) => {
                if let Some(l) = self.links.get_mut(id) {
                    for (track, mid) in mids {
                        if let Some(slot) = l.local_mids.get_mut(usize::from(track.0)) {
                            *slot = Some(mid);
                        }
                    }
                }
                if state == LinkState::Open {
                    for (i, s) in self.local_tracks.clone().into_iter().enumerate() {
                        if s.is_some() {
                            self.name_media(id, TrackId(i as u16));
                        }
                    }
                }
            }
            PeerEvent::Audio { track, samples } => {
                // Only a claimed, open link's live track is heard: audio that overtook the
                // track's announcement, or follows its muting, is not.
                let live = self.links.get(id).is_some_and(|l| {
                    l.state == LinkState::Open
                        && l.remote_tracks.get(usize::from(track.0))
                            == Some(&Some(TrackState::Live))
                });
                if let (true, Some(from)) = (live, remote) {
                    self.event(SwarmEvent::Audio {
                        from,
                        track,
                        samples,
                    });
                }
            }
            PeerEvent::Failed(error) => {
                warn!(%id, %error, "peer connection failed");
                self.link_failed(now, id, CloseReason::Backend(error));
            }
        }
    }
}
