//! One link: one RTCPeerConnection's state as the core keeps it (handshake, channels, queued
//! and early data, reassembly, pings, tracks).

use super::io::*;
use crate::config::{ChannelId, IceServer, SwarmConfig};
use crate::large::Reassembly;
use crate::media::TrackState;
use fast_rtc_protocol::{ConnectionId, IceCandidate, UserId};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use web_time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkState {
    /// Our pre-made offer, not claimed by a joiner yet.
    Parked,
    /// Claimed; handshake under way.
    Connecting,
    /// `fast` is open.
    Open,
}

#[derive(Debug)]
pub(super) struct Link {
    pub(super) role: Role,
    pub(super) state: LinkState,
    pub(super) remote: Option<UserId>,
    pub(super) origin: LinkOrigin,
    pub(super) remote_described: bool,
    pub(super) pending_candidates: Vec<Option<IceCandidate>>,
    /// What this link admitted of its remote's candidates ([`crate::candidates`]).
    pub(super) remote_candidates: crate::candidates::RemoteCandidates,
    /// Whether a relay candidate was gathered for this end ([`crate::relay`]).
    pub(super) relay_gathered: bool,
    /// The STUN/TURN servers this connection was created with ([`crate::ice`]).
    pub(super) ice_servers: Vec<IceServer>,
    pub(super) deadline: Option<Instant>,
    pub(super) open_channels: Vec<bool>,
    /// The channels that closed while the link stayed up: sends to them fail.
    pub(super) closed_channels: Vec<bool>,
    pub(super) queued: HashMap<ChannelId, VecDeque<Payload>>,
    /// Data that arrived on a game channel before `fast` opened, delivered right after Open.
    pub(super) early: VecDeque<(ChannelId, Payload)>,
    /// The largest message the remote reassembles, from its session description (0: it does
    /// not; see [`crate::large`]).
    pub(super) reassembles: usize,
    /// Whether the remote takes game channels, from its session description.
    pub(super) game_channels: bool,
    /// Large messages being received, by channel.
    pub(super) assembly: HashMap<ChannelId, Reassembly>,
    pub(super) opened_at: Option<Instant>,
    pub(super) next_ping: Option<Instant>,
    pub(super) ping_seq: u64,
    pub(super) ping_sent: Option<(u64, Instant)>,
    pub(super) rtt: Option<Duration>,
    /// The remote's audio tracks as it announced them, by [`TrackId`].
    pub(super) remote_tracks: Vec<Option<TrackState>>,
    /// The mid of each declared track's transceiver, once known ([`PeerEvent::TrackMids`]).
    pub(super) local_mids: Vec<Option<String>>,
    /// Whether each track's transceiver was named to the remote (`stream` and `midOffer`).
    pub(super) media_named: Vec<bool>,
    /// The peer this offer retries a failed link to ([`super::retry`]): sent as a `retry`
    /// frame for it alone, not parked.
    pub(super) retry_to: Option<UserId>,
    /// Whether the remote takes ICE restarts, from its session description.
    pub(super) restartable: bool,
    /// Whether the server said the remote left (`leaveSwarm`) while this link was open.
    pub(super) remote_left: bool,
    /// Since when, and until when, an open link has had no path ([`super::restart`]).
    pub(super) outage: Option<Outage>,
}

/// An open link without a path, being restored by ICE restarts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outage {
    /// When the path was lost.
    pub(super) since: Instant,
    /// When the link closes if it has no path by then.
    pub(super) deadline: Instant,
    /// When the offerer restarts ICE next (`None` at the answerer, and while a restart
    /// waits for its answer).
    pub(super) next_restart: Option<Instant>,
    /// Whether a restart's offer waits for its answer (no other restart meanwhile).
    pub(super) awaiting_answer: bool,
    /// How long past `next_restart` an unanswered restart is given up for lost (and made
    /// again): the restart interval, so twice the interval after the restart.
    pub(super) answer_wait: Duration,
}

impl Link {
    pub(super) fn new(
        config: &SwarmConfig,
        role: Role,
        origin: LinkOrigin,
        ice_servers: Vec<IceServer>,
    ) -> Link {
        Link {
            role,
            state: LinkState::Parked,
            remote: None,
            origin,
            remote_described: false,
            pending_candidates: Vec::new(),
            remote_candidates: Default::default(),
            relay_gathered: false,
            ice_servers,
            deadline: None,
            open_channels: vec![false; config.channels.len() + 1],
            closed_channels: vec![false; config.channels.len() + 1],
            queued: HashMap::new(),
            early: VecDeque::new(),
            reassembles: 0,
            game_channels: false,
            assembly: HashMap::new(),
            opened_at: None,
            next_ping: None,
            ping_seq: 0,
            ping_sent: None,
            rtt: None,
            remote_tracks: vec![None; config.audio_tracks.len()],
            local_mids: vec![None; config.audio_tracks.len()],
            media_named: vec![false; config.audio_tracks.len()],
            retry_to: None,
            restartable: false,
            remote_left: false,
            outage: None,
        }
    }

    pub(super) fn info(&self, id: &ConnectionId) -> Option<PeerInfo> {
        // A retry's offer is for its peer before the server confirms it.
        let remote = self.remote.clone().or_else(|| self.retry_to.clone());
        remote.map(|user_id| PeerInfo {
            user_id,
            id: id.clone(),
            origin: self.origin,
        })
    }
}
