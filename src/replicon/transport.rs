//! Replicon's messages on the swarm: the three swarm channels ([`SwarmChannels`]), received
//! frames into [`ServerMessages`] / [`ClientMessages`], and their sent messages out.

use super::clients::{ClientEntities, SwarmClient};
use super::role::ReplicationHost;
use super::wire::{self, Direction};
use crate::messages::PeerData;
use crate::session::Swarm;
use bevy::platform::collections::HashMap;
use bevy::prelude::*;
use bevy_replicon::prelude::{
    Channel, ClientMessages, ClientState, RepliconChannels, ServerMessages,
};
use fast_rtc_protocol::UserId;
use fast_rtc_swarm::{ChannelId, Payload};
use std::collections::VecDeque;

/// Client messages held per peer while this member is not the host: a client may pick this
/// member a moment before this member does (its settle time, or a host's departure, reach the
/// members at different moments); past it the oldest are dropped.
pub const MAX_EARLY_MESSAGES: usize = 256;

/// Client messages that arrived while this member was not the host, by sender, and the host
/// they arrived under.
#[derive(Resource, Default, Debug)]
pub(crate) struct EarlyMessages {
    held: HashMap<UserId, VecDeque<(usize, Vec<u8>)>>,
    under: Option<UserId>,
}

impl EarlyMessages {
    fn hold(&mut self, from: &UserId, channel: usize, message: &[u8]) {
        let queue = self.held.entry(from.clone()).or_default();
        if queue.len() >= MAX_EARLY_MESSAGES {
            queue.pop_front();
        }
        queue.push_back((channel, message.to_vec()));
    }
}

/// The swarm channels replicon's channels travel on, declared by
/// [`FastRtcRepliconPlugin`](super::FastRtcRepliconPlugin).
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwarmChannels {
    /// `replicon-ordered`, reliable and ordered: replicon's [`Channel::Ordered`].
    pub ordered: ChannelId,
    /// `replicon-unordered`, reliable: replicon's [`Channel::Unordered`]. The swarm has no
    /// reliable unordered delivery (its large messages are split into parts that must arrive in
    /// order), so these arrive in order too, but never wait behind the ordered channel.
    pub unordered: ChannelId,
    /// `replicon-unreliable`, unordered without retransmission: [`Channel::Unreliable`].
    pub unreliable: ChannelId,
}

impl SwarmChannels {
    /// The swarm channel for a replicon channel kind.
    pub fn for_kind(&self, kind: Channel) -> ChannelId {
        match kind {
            Channel::Ordered => self.ordered,
            Channel::Unordered => self.unordered,
            Channel::Unreliable => self.unreliable,
        }
    }

    fn carries(&self, channel: ChannelId) -> bool {
        channel == self.ordered || channel == self.unordered || channel == self.unreliable
    }
}

/// Received replicon frames into [`ServerMessages`] (on the host, from its clients) and
/// [`ClientMessages`] (on a client, from its host). Frames from anyone else (a member that is
/// not this client's host, a client of a host that is not this member) are dropped.
#[allow(clippy::too_many_arguments)] // the backend contract's resources
pub(crate) fn receive(
    mut data: MessageReader<PeerData>,
    swarm: Res<Swarm>,
    mut early: ResMut<EarlyMessages>,
    channels: Res<SwarmChannels>,
    replicon: Res<RepliconChannels>,
    host: Res<ReplicationHost>,
    clients: Res<ClientEntities>,
    client_state: Res<State<ClientState>>,
    mut server: ResMut<ServerMessages>,
    mut client: ResMut<ClientMessages>,
) {
    let to_client = (*client_state.get() == ClientState::Connected)
        .then_some(host.connected_to.as_ref())
        .flatten();
    // Held messages: delivered once this member hosts; dropped when the host changes to
    // another member (they were sent for a role this member did not take), or their sender
    // is gone.
    if host.is_host() {
        for (peer, held) in early.held.drain() {
            let Some(&e) = clients.by_peer.get(&peer) else {
                continue;
            };
            for (channel, message) in held {
                if channel < replicon.client_channels().len() {
                    server.insert_received(e, channel, message);
                }
            }
        }
    } else if early.under.as_ref() != host.host() && host.host().is_some() {
        early.held.clear();
    }
    early.under = host.host().cloned();
    early
        .held
        .retain(|peer, _| swarm.peer_entity(peer).is_some());
    for d in data.read() {
        if !channels.carries(d.channel) {
            continue;
        }
        let Some((direction, channel, message)) = wire::decode(d.payload.as_bytes()) else {
            tracing::debug!(peer = %d.peer, "empty replicon frame dropped");
            continue;
        };
        match direction {
            Direction::ToServer => {
                let entity = clients.by_peer.get(&d.peer).filter(|_| host.is_host());
                match entity {
                    Some(&e) if channel < replicon.client_channels().len() => {
                        server.insert_received(e, channel, message.to_vec());
                    }
                    _ if !host.is_host() => early.hold(&d.peer, channel, message),
                    _ => tracing::debug!(peer = %d.peer, channel, "client frame dropped"),
                }
            }
            Direction::ToClient => {
                if to_client == Some(&d.peer) && channel < replicon.server_channels().len() {
                    client.insert_received(channel, message.to_vec());
                } else {
                    tracing::debug!(peer = %d.peer, channel, "server frame dropped");
                }
            }
        }
    }
}

/// Replicon's sent messages onto the swarm: the server's to each client's peer, the client's
/// to its host. Sent in the same frame by `FastRtcSystems::Send`, which runs after this.
#[allow(clippy::too_many_arguments)] // the backend contract's resources
pub(crate) fn send(
    mut swarm: ResMut<Swarm>,
    channels: Res<SwarmChannels>,
    replicon: Res<RepliconChannels>,
    host: Res<ReplicationHost>,
    client_state: Res<State<ClientState>>,
    targets: Query<&SwarmClient>,
    mut server: ResMut<ServerMessages>,
    mut client: ResMut<ClientMessages>,
) {
    for (entity, channel, message) in server.drain_sent() {
        let Ok(target) = targets.get(entity) else {
            continue;
        };
        let Some(kind) = replicon.server_channels().get(channel).copied() else {
            continue;
        };
        queue(
            &mut swarm,
            &target.peer,
            channels.for_kind(kind),
            wire::encode(Direction::ToClient, channel, &message),
        );
    }
    let to = (*client_state.get() == ClientState::Connected)
        .then_some(host.connected_to.clone())
        .flatten();
    for (channel, message) in client.drain_sent() {
        let (Some(to), Some(kind)) = (&to, replicon.client_channels().get(channel).copied()) else {
            continue;
        };
        queue(
            &mut swarm,
            to,
            channels.for_kind(kind),
            wire::encode(Direction::ToServer, channel, &message),
        );
    }
}

fn queue(
    swarm: &mut Swarm,
    to: &fast_rtc_protocol::UserId,
    channel: ChannelId,
    frame: Option<Vec<u8>>,
) {
    let Some(frame) = frame else {
        tracing::warn!(
            "replicon channel id past {} cannot be sent over the swarm",
            wire::MAX_CHANNELS
        );
        return;
    };
    if let Err(error) = swarm.queue(Some(to.clone()), channel, Payload::Binary(frame)) {
        tracing::warn!(peer = %to, %error, "replicon message not queued");
    }
}
