//! The handshake: signaling frames in (pre-made offers claimed, answers, candidates), the
//! descriptions a member advertises, a link opening, and a link closing.

use super::SwarmCore;
use super::io::*;
use super::link::{Link, LinkState};
use crate::config::ChannelId;
use crate::control::Control;
use crate::lifecycle::Lifecycle;
use crate::media::TrackId;
use crate::sdp::Extensions;
use fast_rtc_protocol::{ConnectionId, IceCandidate, ServerMsg, Signal};
use tracing::{debug, warn};
use web_time::Instant;

impl SwarmCore {
    /// A frame from the signaling server.
    pub fn handle_signal(&mut self, now: Instant, msg: ServerMsg) {
        if self.closed {
            return;
        }
        match msg {
            ServerMsg::Accept {
                id,
                user_id,
                signals,
            } => {
                if self.links.contains_key(&id) {
                    self.unexpected(format!("second accept for connection {id}"));
                    return;
                }
                let ice_servers = self.ice_servers().to_vec();
                let mut link = Link::new(
                    &self.config,
                    Role::Answerer,
                    LinkOrigin::Answered,
                    ice_servers.clone(),
                );
                link.state = LinkState::Connecting;
                link.remote = Some(user_id);
                link.deadline = Some(now + self.config.handshake_timeout);
                self.links.insert(id.clone(), link);
                self.command(PeerCommand::Create {
                    id: id.clone(),
                    role: Role::Answerer,
                    ice_servers,
                });
                for signal in signals {
                    match signal {
                        Signal::Offer { sdp } => self.remote_description(&id, SdpKind::Offer, sdp),
                        Signal::Candidate { candidate } => self.remote_candidate(&id, candidate),
                    }
                }
            }
            ServerMsg::OfferAccepted { id, user_id } => {
                let deadline = now + self.config.handshake_timeout;
                match self.links.get_mut(&id) {
                    Some(l) if l.state == LinkState::Parked && l.role == Role::Offerer => {
                        l.state = LinkState::Connecting;
                        l.remote = Some(user_id);
                        l.deadline = Some(deadline);
                    }
                    _ => self.unexpected(format!(
                        "offerAccepted for {id}, which is not a parked offer"
                    )),
                }
            }
            ServerMsg::OfferRequest => self.create_offerer(),
            ServerMsg::Joined {
                user_id,
                ice_servers,
                resume_token,
                resumed,
            } => {
                self.me = Some(user_id);
                debug!(
                    servers = ice_servers.as_ref().map_or(0, Vec::len),
                    "joined; ICE servers from the signaling server"
                );
                self.server_ice = ice_servers;
                self.session_joined(resume_token, resumed);
                let change = self.lifecycle.joined();
                self.signaling_changed(change);
                if std::mem::take(&mut self.offers_await_joined) {
                    self.top_up_offers();
                }
            }
            ServerMsg::Kicked { user_id, reason } => self.kicked(user_id, reason),
            ServerMsg::IceServers { ice_servers } => {
                debug!(servers = ice_servers.len(), "fresh ICE servers");
                self.server_ice = Some(ice_servers);
            }
            ServerMsg::Offer { id, sdp } => {
                if self.links.contains_key(&id) {
                    self.remote_description(&id, SdpKind::Offer, sdp);
                } else {
                    self.unexpected(format!("offer for unknown link {id}"));
                }
            }
            ServerMsg::Answer { id, sdp } => match self.links.get(&id) {
                Some(l) if l.role == Role::Offerer && l.state != LinkState::Parked => {
                    self.remote_description(&id, SdpKind::Answer, sdp);
                    self.restart_answered(&id);
                }
                _ => self.unexpected(format!(
                    "answer for {id}, which is not a claimed offer of ours"
                )),
            },
            ServerMsg::Candidate { id, candidate } => {
                if self.links.contains_key(&id) {
                    self.remote_candidate(&id, candidate);
                } else {
                    self.unexpected(format!("candidate for unknown link {id}"));
                }
            }
            ServerMsg::LeaveSwarm { id } if self.retry_left(&id) => {}
            ServerMsg::LeaveSwarm { id } => match self.links.get_mut(&id) {
                Some(l) if l.state == LinkState::Open => {
                    // Its signaling is gone: it could not answer an ICE restart, so once its
                    // path is lost too, it is gone ([`super::restart`]).
                    l.remote_left = true;
                    if l.outage.is_some() {
                        self.close_link(&id, CloseReason::IceFailed, false);
                    } else {
                        debug!(%id, "leaveSwarm for an open link: the link itself decides");
                    }
                }
                Some(_) => self.close_link(&id, CloseReason::RemoteLeft, false),
                None => {}
            },
            ServerMsg::SignalError { code, message } => {
                warn!(%code, %message, "signaling server refused a frame");
                self.event(SwarmEvent::Fault(SwarmFault::Signaling { code, message }));
                if let Some(reason) = Lifecycle::fatal(code) {
                    let change = self.lifecycle.fail(reason);
                    self.signaling_changed(change);
                }
            }
        }
    }

    /// A local description as signaled, with this member's extensions ([`crate::sdp`]):
    /// reassembly if it reassembles more than one data-channel message carries, and game
    /// channels if it has any; its audio sections name the declared tracks
    /// ([`crate::sdp::name_audio_streams`]).
    pub(super) fn advertise(&self, sdp: &str) -> String {
        let max = self.config.max_message_size;
        let sdp = crate::sdp::name_audio_streams(sdp, &self.config.audio_tracks);
        Extensions {
            reassembly: (max > self.config.sctp_message_size).then_some(max),
            game_channels: !self.config.channels.is_empty(),
            restart: !self.config.restore_timeout.is_zero(),
        }
        .add_to(&sdp)
    }

    pub(super) fn remote_description(&mut self, id: &ConnectionId, kind: SdpKind, sdp: String) {
        let ext = Extensions::read(&sdp);
        debug!(%id, ?kind, ?ext, "remote description");
        let sdp = match self.links.get_mut(id) {
            Some(l) => {
                // A description after the first (an ICE restart) starts a new count.
                if l.remote_described {
                    l.remote_candidates.reset();
                }
                let (sdp, refused) = l.remote_candidates.filter_sdp(&sdp, &self.config);
                for why in refused {
                    self.refuse_candidate(id, why);
                }
                sdp
            }
            None => sdp,
        };
        self.command(PeerCommand::SetRemote {
            id: id.clone(),
            kind,
            sdp,
        });
        let has_channels = !self.config.channels.is_empty();
        let Some(l) = self.links.get_mut(id) else {
            return;
        };
        l.remote_described = true;
        l.reassembles = ext.reassembly.unwrap_or(0);
        l.game_channels = ext.game_channels && has_channels;
        l.restartable = ext.restart;
        let open_channels = kind == SdpKind::Answer && l.role == Role::Offerer && l.game_channels;
        let pending = std::mem::take(&mut l.pending_candidates);
        if open_channels {
            self.command(PeerCommand::OpenChannels { id: id.clone() });
        }
        for candidate in pending {
            self.command(PeerCommand::AddCandidate {
                id: id.clone(),
                candidate,
            });
        }
    }

    pub(super) fn remote_candidate(&mut self, id: &ConnectionId, candidate: Option<IceCandidate>) {
        let max = self.config.max_pending_candidates;
        let Some(l) = self.links.get_mut(id) else {
            return;
        };
        if let Some(c) = &candidate
            && let Err(why) = l.remote_candidates.admit(&c.candidate, &self.config)
        {
            if let Some(why) = why {
                self.refuse_candidate(id, why);
            }
            return;
        }
        if l.remote_described {
            self.command(PeerCommand::AddCandidate {
                id: id.clone(),
                candidate,
            });
        } else if l.pending_candidates.len() < max {
            l.pending_candidates.push(candidate);
        } else {
            let what = format!("candidate for {id}: {max} already wait for its description");
            self.event(SwarmEvent::Fault(SwarmFault::Dropped(what)));
        }
    }

    /// Reports a remote candidate link `id` did not take.
    fn refuse_candidate(&mut self, id: &ConnectionId, why: crate::candidates::Refusal) {
        warn!(%id, %why, "remote candidate refused");
        self.event(SwarmEvent::Fault(SwarmFault::CandidateRefused {
            id: id.clone(),
            why,
        }));
    }

    /// Notes a gathered relay candidate of link `id`; at the end of its gathering (`None`),
    /// reports [`SwarmFault::RelayUnavailable`] if [`crate::relay`] says so.
    pub(super) fn relay_check(&mut self, id: &ConnectionId, candidate: Option<&IceCandidate>) {
        let Some(l) = self.links.get_mut(id) else {
            return;
        };
        match candidate {
            Some(c) => l.relay_gathered |= crate::relay::is_relay_candidate(&c.candidate),
            None => {
                if let Some(fault) = crate::relay::gathering_fault(
                    &self.config,
                    &l.ice_servers,
                    id,
                    l.relay_gathered,
                ) {
                    warn!(%id, %fault, "no relay candidate");
                    self.event(SwarmEvent::Fault(fault));
                }
            }
        }
    }

    pub(super) fn channel_open(&mut self, now: Instant, id: &ConnectionId, channel: ChannelId) {
        let Some(l) = self.links.get_mut(id) else {
            return;
        };
        if let Some(open) = l.open_channels.get_mut(usize::from(channel.0)) {
            *open = true;
        }
        if let Some(closed) = l.closed_channels.get_mut(usize::from(channel.0)) {
            *closed = false;
        }
        // Flush what waited for this channel, in order.
        let queued = l.queued.remove(&channel).unwrap_or_default();
        let became_open = channel == ChannelId::FAST && l.state == LinkState::Connecting;
        if became_open {
            l.state = LinkState::Open;
            l.deadline = None;
            l.opened_at = Some(now);
            if !self.config.ping_interval.is_zero() {
                l.next_ping = Some(now);
            }
        }
        let info = l.info(id);
        for payload in queued {
            self.transmit(id, channel, payload);
        }
        if !became_open {
            return;
        }
        let Some(info) = info else { return };
        // An older open link to the same peer is replaced quietly (signaling reconnects).
        let older: Vec<ConnectionId> = self
            .links
            .iter()
            .filter(|(other, l)| {
                *other != id
                    && l.state == LinkState::Open
                    && l.remote.as_ref() == Some(&info.user_id)
            })
            .map(|(other, _)| other.clone())
            .collect();
        self.retry_done(&info.user_id);
        if older.is_empty() {
            if self.handover.remove(&info.user_id).is_some() {
                debug!(%id, peer = %info.user_id, "a replacement link opened: handover done");
            } else {
                self.event(SwarmEvent::Open(info.clone()));
            }
        } else {
            for old in older {
                debug!(%old, new = %id, peer = %info.user_id, "replacing an older link");
                // The peer's tracks go on over the new link: its announcements there change
                // nothing the application was told.
                if let Some(tracks) = self.links.remove(&old).map(|l| l.remote_tracks)
                    && let Some(l) = self.links.get_mut(id)
                {
                    l.remote_tracks = tracks;
                }
                self.command(PeerCommand::Close { id: old });
            }
        }
        for (i, state) in self.local_tracks.clone().into_iter().enumerate() {
            if state.is_some() {
                self.announce_track(id, TrackId(i as u16), state);
            }
        }
        let early = self
            .links
            .get_mut(id)
            .map(|l| std::mem::take(&mut l.early))
            .unwrap_or_default();
        for (channel, payload) in early {
            self.event(SwarmEvent::Data {
                from: info.user_id.clone(),
                id: id.clone(),
                channel,
                payload,
            });
        }
    }

    /// Closes link `id`: optionally tells the remote (`@fast/{"type":"close"}` on `fast`), tells
    /// the backend to close, and reports the peer closed if this was its last open link.
    pub(super) fn close_link(&mut self, id: &ConnectionId, reason: CloseReason, tell_remote: bool) {
        let Some(link) = self.links.remove(id) else {
            return;
        };
        if tell_remote && link.open_channels.first() == Some(&true) {
            self.send_control(id, &Control::Close);
        }
        self.command(PeerCommand::Close { id: id.clone() });
        let was_open = link.state == LinkState::Open;
        let Some(info) = link.info(id) else { return };
        let to_peer =
            |l: &Link, state| l.state == state && l.remote.as_ref() == Some(&info.user_id);
        if self.links.values().any(|l| to_peer(l, LinkState::Open)) {
            return;
        }
        // The other end of a replacement link can open it, and close this one, before this end
        // sees it open: keep the peer (quietly) while the replacement connects.
        let replacing = self
            .links
            .values()
            .any(|l| to_peer(l, LinkState::Connecting));
        if replacing && (was_open || self.handover.contains_key(&info.user_id)) {
            debug!(%id, peer = %info.user_id, ?reason, "last open link closed; its replacement is connecting");
            // The peer's tracks go on over the replacement (which has heard nothing yet: its
            // announcements come once it opens), so they change nothing the application was
            // told; if the replacement fails too, its close reports them removed.
            for l in self.links.values_mut() {
                if to_peer(l, LinkState::Connecting) {
                    l.remote_tracks.clone_from(&link.remote_tracks);
                }
            }
            self.handover.entry(info.user_id).or_insert(reason);
            return;
        }
        if self.retry_pending(&info.user_id) {
            debug!(%id, peer = %info.user_id, ?reason, "handshake failed; a retry follows");
            return;
        }
        // Open links report Close; a handshake that never opened reports it too (so the
        // application learns of timeouts), unless the peer is reachable over another link.
        if !was_open {
            debug!(%id, ?reason, "handshake ended before the link opened");
        }
        let reason = self.handover.remove(&info.user_id).unwrap_or(reason);
        for (i, state) in link.remote_tracks.iter().enumerate() {
            if state.is_some() {
                self.event(SwarmEvent::TrackRemoved {
                    peer: info.user_id.clone(),
                    track: TrackId(i as u16),
                });
            }
        }
        self.event(SwarmEvent::Close { peer: info, reason });
    }
}
