//! The swarm as a Bevy resource ([`Swarm`]) and the [`Peer`] component.
//!
//! `Swarm` is the one owner of the session's state: the running handle, the signaling state
//! and the last one reported, the peers' entities, the send queue, the swarms replaced by a
//! new `connect` and the channel taps. The plugin's systems change it only through the
//! methods here.

use crate::backend::SwarmBackend;
use crate::messages::{FastRtcError, SignalingChanged};
use crate::tap::{ChannelTap, TapSender};
use bevy::prelude::*;
use bevy::tasks::{IoTaskPool, TaskPool};
use fast_rtc_protocol::{ConnectionId, RoomId, UserId};
use fast_rtc_swarm::{
    ChannelId, IceState, Payload, SendError, Signaling, SignalingState, SwarmConfig, SwarmEvent,
    SwarmHandle, TrackError, TrackId,
};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Messages queued for sending in one frame at most; past it, sends are refused with a
/// [`SwarmError`](crate::SwarmError) message.
pub const MAX_OUTBOX: usize = 8192;

/// A remote member with an open link. Spawned on open, despawned on close: attach your own
/// components (an avatar, a score) to it.
#[derive(Component, Debug, Clone)]
pub struct Peer {
    /// The remote member's identity.
    pub user_id: UserId,
    /// The connection id of the link.
    pub connection_id: ConnectionId,
    /// ICE connection state of the link.
    pub ice_state: IceState,
    /// Round-trip time of the link, measured every second by the swarm's ping on `fast` (`None`
    /// until the first pong, and for JS peers, which do not answer pings).
    pub rtt: Option<Duration>,
    /// Bytes received from this peer.
    pub bytes_in: u64,
    /// Bytes sent to this peer.
    pub bytes_out: u64,
}

/// One queued send.
pub(crate) struct Outgoing {
    pub(crate) to: Option<UserId>,
    pub(crate) channel: ChannelId,
    pub(crate) payload: Payload,
}

/// The swarm, as a resource.
#[derive(Resource)]
pub struct Swarm {
    config: SwarmConfig,
    backend: SwarmBackend,
    handle: Option<SwarmHandle>,
    identity: Option<UserId>,
    state: SignalingState,
    /// The state last reported with a `SignalingChanged`.
    reported: SignalingState,
    peers: HashMap<UserId, Entity>,
    outbox: VecDeque<Outgoing>,
    /// Swarms replaced by a new `connect`: their peers' `Close` events are still to be read.
    retired: Vec<SwarmHandle>,
    /// Channels whose data goes to a [`ChannelTap`] instead of `PeerData` messages.
    taps: HashMap<ChannelId, TapSender>,
}

impl Swarm {
    pub(crate) fn new(config: SwarmConfig, backend: SwarmBackend) -> Self {
        Swarm {
            config,
            backend,
            handle: None,
            identity: None,
            state: SignalingState::Disconnected,
            reported: SignalingState::Disconnected,
            peers: HashMap::new(),
            outbox: VecDeque::new(),
            retired: Vec::new(),
            taps: HashMap::new(),
        }
    }

    /// Joins the room through the signaling server at `url` with `token`. The swarm runs on
    /// Bevy's IO task pool. A swarm already running is closed first.
    pub fn connect(
        &mut self,
        url: impl Into<String>,
        token: impl Into<String>,
    ) -> Result<(), FastRtcError> {
        self.connect_with(Signaling::WebSocket {
            url: url.into(),
            token: token.into(),
        })
    }

    /// Joins the room over `signaling`: the built-in WebSocket client, or
    /// [`Signaling::External`] (your transport pumps [`Swarm::handle`]'s `next_signal` and
    /// `dispatch`). A swarm already running is closed first.
    pub fn connect_with(&mut self, signaling: Signaling) -> Result<(), FastRtcError> {
        // The old swarm's peers get their PeerClosed (and despawn) in the next receive pass.
        self.disconnect();
        self.identity = match &signaling {
            Signaling::WebSocket { token, .. } => fast_rtc_swarm::token::subject(token),
            _ => None,
        };
        let (handle, driver) = self.backend.start(self.config.clone(), signaling)?;
        // get_or_init: an app without TaskPoolPlugin gets a pool instead of a panic.
        IoTaskPool::get_or_init(TaskPool::new)
            .spawn(driver)
            .detach();
        self.handle = Some(handle);
        self.state = SignalingState::Connecting;
        Ok(())
    }

    /// Leaves the room: every peer is told and every link closed. Their `PeerClosed` messages
    /// arrive over the next frames. The state becomes
    /// [`SignalingState::Disconnected`] (not `Failed(Closed)`: the app chose it), with a
    /// [`SignalingChanged`](crate::SignalingChanged) in the next receive pass.
    pub fn disconnect(&mut self) {
        if let Some(h) = self.handle.take() {
            h.close();
            self.retired.push(h);
        }
        self.state = SignalingState::Disconnected;
    }

    /// Closes the link to `peer` at both ends: the peer is sent `@fast/{"type":"close"}` (JS
    /// peers obey it too), its `PeerClosed` arrives here with [`CloseReason::Local`] and
    /// there with [`CloseReason::Remote`] over the next frames. The peer stays in the room for
    /// everyone else, and no new link to it forms until one of the two joins again. Returns
    /// whether there was a link to close.
    ///
    /// [`CloseReason::Local`]: crate::swarm::CloseReason::Local
    /// [`CloseReason::Remote`]: crate::swarm::CloseReason::Remote
    pub fn kick(&mut self, peer: &UserId) -> bool {
        self.handle.as_ref().is_some_and(|h| h.close_peer(peer))
    }

    /// Gives the signaling client a fresh token: the answer to a
    /// [`TokenRequested`](crate::TokenRequested) message, fine to call at any time. The next
    /// connection attempt uses it; an open session is not interrupted. Returns whether a swarm
    /// is running to take it.
    pub fn set_token(&mut self, token: impl Into<String>) -> bool {
        let Some(h) = &self.handle else { return false };
        h.set_token(token);
        true
    }

    /// The signaling session's state: `Connecting`, `Joined` (the server accepted this
    /// member), `Reconnecting` (links stay up), or `Failed` with its reason. Each change is a
    /// [`SignalingChanged`](crate::SignalingChanged) message; see also the run conditions
    /// [`swarm_joined`](crate::swarm_joined) and
    /// [`peer_count_at_least`](crate::peer_count_at_least).
    pub fn state(&self) -> &SignalingState {
        &self.state
    }

    /// Whether the server accepted this member into the room.
    pub fn is_joined(&self) -> bool {
        self.state == SignalingState::Joined
    }

    /// This member's identity (the subject of its token), once connecting.
    pub fn identity(&self) -> Option<&UserId> {
        self.identity.as_ref()
    }

    /// The swarm's configuration (room, channels, ICE servers, limits).
    pub fn config(&self) -> &SwarmConfig {
        &self.config
    }

    /// Declares a game channel after the plugin was built (for integrations such as
    /// `replicon`, whose plugins come after [`FastRtcPlugin`](crate::FastRtcPlugin)); it takes
    /// effect at the next [`Swarm::connect`].
    #[cfg(feature = "replicon")]
    pub(crate) fn add_channel(&mut self, channel: fast_rtc_swarm::ChannelConfig) -> ChannelId {
        self.config.add_channel(channel)
    }

    /// The room.
    pub fn room(&self) -> &RoomId {
        &self.config.room_id
    }

    /// Connected peers and their entities.
    pub fn peers(&self) -> impl Iterator<Item = (&UserId, Entity)> {
        self.peers.iter().map(|(u, e)| (u, *e))
    }

    /// How many peers are connected.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The entity of `peer`, if connected.
    pub fn peer_entity(&self, peer: &UserId) -> Option<Entity> {
        self.peers.get(peer).copied()
    }

    /// Starts sending on declared audio track `track` ([`crate::voice`]), to every peer now
    /// and later. Natively with the `voice` feature, `Swarm::audio_sender` does this and
    /// encodes your frames.
    pub fn add_track(&mut self, track: TrackId) -> Result<(), TrackError> {
        self.handle
            .as_ref()
            .ok_or(TrackError::Closed)?
            .add_track(track)
    }

    /// Mutes (push-to-talk released, mute-self) or unmutes an added track.
    pub fn mute_track(&mut self, track: TrackId, muted: bool) -> Result<(), TrackError> {
        self.handle
            .as_ref()
            .ok_or(TrackError::Closed)?
            .mute_track(track, muted)
    }

    /// Stops sending on an added track.
    pub fn remove_track(&mut self, track: TrackId) -> Result<(), TrackError> {
        self.handle
            .as_ref()
            .ok_or(TrackError::Closed)?
            .remove_track(track)
    }

    /// Adds `track` and returns its encoder: call
    /// [`AudioSender::send`](fast_rtc_swarm::AudioSender::send) with each 20 ms frame of
    /// your capture (960 mono 48 kHz samples). A sender outlives a reconnect only if the swarm
    /// is not replaced by [`Swarm::connect`].
    #[cfg(all(feature = "voice", not(target_arch = "wasm32")))]
    pub fn audio_sender(
        &mut self,
        track: TrackId,
    ) -> Result<fast_rtc_swarm::AudioSender, TrackError> {
        fast_rtc_swarm::AudioSender::new(self.handle.as_ref().ok_or(TrackError::Closed)?, track)
    }

    /// The running swarm, for direct use.
    pub fn handle(&self) -> Option<&SwarmHandle> {
        self.handle.as_ref()
    }

    /// Taps `channel`: from the next receive pass on, what peers send on it goes to the
    /// returned [`ChannelTap`] (at most `capacity` messages held, the oldest dropped past
    /// that; on a reliable channel each such drop is also a [`FastRtcError::TapOverflow`](crate::FastRtcError::TapOverflow)) instead of [`PeerData`](crate::PeerData) messages, for a consumer outside the ECS
    /// such as a rollback library's socket. A second tap of the channel replaces the first;
    /// dropping the tap gives the channel back to messages.
    pub fn tap_channel(&mut self, channel: ChannelId, capacity: usize) -> ChannelTap {
        let (tap, sender) = ChannelTap::new(capacity);
        self.taps.insert(channel, sender);
        tap
    }

    /// Queues raw bytes (or text) for `peer` (`None`: every peer) on `channel`, sent in
    /// [`FastRtcSystems::Send`](crate::FastRtcSystems::Send).
    pub fn queue(
        &mut self,
        to: Option<UserId>,
        channel: ChannelId,
        payload: Payload,
    ) -> Result<(), SendError> {
        if self.outbox.len() >= MAX_OUTBOX {
            return Err(SendError::Full);
        }
        self.outbox.push_back(Outgoing {
            to,
            channel,
            payload,
        });
        Ok(())
    }

    /// The events of the swarms replaced by a new `connect` that still matter: their peers'
    /// closes (their entities are to be despawned). Every other event of theirs is dropped.
    pub(crate) fn take_retired_closes(&mut self) -> Vec<SwarmEvent> {
        std::mem::take(&mut self.retired)
            .iter()
            .flat_map(|h| std::iter::from_fn(move || h.try_recv()))
            .filter(|e| matches!(e, SwarmEvent::Close { .. }))
            .collect()
    }

    /// The swarm reported a new signaling state.
    pub(crate) fn set_state(&mut self, state: SignalingState) {
        self.state = state;
    }

    /// The [`SignalingChanged`] to write if the state moved since the last one reported; the
    /// state counts as reported from now on.
    pub(crate) fn take_state_change(&mut self) -> Option<SignalingChanged> {
        if self.state == self.reported {
            return None;
        }
        let from = std::mem::replace(&mut self.reported, self.state.clone());
        Some(SignalingChanged {
            from,
            to: self.state.clone(),
        })
    }

    /// A link to `peer` opened and its entity was spawned.
    pub(crate) fn peer_opened(&mut self, peer: UserId, entity: Entity) {
        self.peers.insert(peer, entity);
    }

    /// The link to `peer` closed: its entity (to despawn), if it had one.
    pub(crate) fn peer_closed(&mut self, peer: &UserId) -> Option<Entity> {
        self.peers.remove(peer)
    }

    /// Hands data received on `channel` to the channel's tap. Gives it back when the channel
    /// is not tapped, or its tap was dropped (the channel is the messages' again).
    pub(crate) fn route_to_tap(
        &mut self,
        channel: ChannelId,
        from: UserId,
        payload: Payload,
    ) -> Tapped {
        let Some(tap) = self.taps.get(&channel) else {
            return Tapped::No(from, payload);
        };
        match tap.push(from, payload) {
            Ok(None) => Tapped::Yes,
            // Dropped for room: a loss on a reliable channel, which the application must hear of.
            Ok(Some(dropped)) => match self.config.delivery(channel) {
                Some(delivery) if delivery.is_reliable() => Tapped::DroppingOldest(dropped),
                _ => Tapped::Yes,
            },
            Err((from, payload)) => {
                self.taps.remove(&channel);
                Tapped::No(from, payload)
            }
        }
    }

    /// What was queued this frame, with the swarm to send it on; without a running swarm the
    /// queue is dropped and this is `None`.
    pub(crate) fn take_outbox(&mut self) -> Option<(SwarmHandle, VecDeque<Outgoing>)> {
        let outbox = std::mem::take(&mut self.outbox);
        Some((self.handle.clone()?, outbox))
    }
}

/// Where [`Swarm::route_to_tap`] put a message.
pub(crate) enum Tapped {
    /// Not tapped: the message, for `PeerData`.
    No(UserId, Payload),
    /// In the channel's tap.
    Yes,
    /// In the tap of a reliable channel, which dropped its oldest message (from this peer)
    /// for room.
    DroppingOldest(UserId),
}
