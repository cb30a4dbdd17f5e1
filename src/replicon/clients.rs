//! The host's replicon clients: one entity with [`ConnectedClient`] per open peer (tied to the
//! peer by [`SwarmClient`]), their statistics from the peers' RTT and byte counters, and
//! [`DisconnectRequest`]s carried out.

use super::role::ReplicationHost;
use crate::session::{Peer, Swarm};
use bevy::platform::collections::{HashMap, HashSet};
use bevy::prelude::*;
use bevy_replicon::prelude::{
    ClientStats, ConnectedClient, ConnectedClientStats, DisconnectRequest,
};
use bevy_replicon::shared::backend::connected_client::NetworkId;
use fast_rtc_protocol::UserId;
use std::time::Duration;

/// The largest replicon message meant for one unreliable packet ([`ConnectedClient::max_size`]):
/// a conservative path MTU (1,200 bytes) less the swarm's one-byte header. Larger messages are
/// still sent (up to the swarm's `sctp_message_size`), as several packets.
pub const UNRELIABLE_PACKET_SIZE: usize = 1199;

/// On a host's replicon client entity: the peer it stands for. The peer's own entity (with
/// [`Peer`]) is [`Swarm::peer_entity`] of `peer`; the client entity is separate because
/// replicon despawns its clients when the server stops.
#[derive(Component, Debug, Clone, PartialEq, Eq)]
pub struct SwarmClient {
    /// The remote member.
    pub peer: UserId,
}

/// The host's client entities, by peer, and the peers disconnected on replicon's request
/// whose link is still closing (no client entity for them again).
#[derive(Resource, Default, Debug)]
pub(crate) struct ClientEntities {
    pub(crate) by_peer: HashMap<UserId, Entity>,
    kicked: HashSet<UserId>,
}

/// A stable 64-bit id for `user` (FNV-1a of its bytes): replicon's [`NetworkId`], the same for
/// a member across reconnects and on every host.
pub fn network_id(user: &UserId) -> NetworkId {
    let hash = user
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    NetworkId::new(hash)
}

/// On the host, keeps one client entity per open peer; elsewhere, none.
pub(crate) fn sync(
    mut commands: Commands,
    swarm: Res<Swarm>,
    host: Res<ReplicationHost>,
    mut clients: ResMut<ClientEntities>,
    live: Query<(), With<SwarmClient>>,
) {
    let hosting = host.is_host();
    clients
        .kicked
        .retain(|peer| swarm.peer_entity(peer).is_some());
    clients.by_peer.retain(|peer, entity| {
        let keep = hosting && swarm.peer_entity(peer).is_some() && live.contains(*entity);
        if !keep && live.contains(*entity) {
            commands.entity(*entity).try_despawn();
        }
        keep
    });
    if !hosting {
        return;
    }
    for (peer, _) in swarm.peers() {
        if !clients.by_peer.contains_key(peer) && !clients.kicked.contains(peer) {
            let entity = commands
                .spawn((
                    ConnectedClient {
                        max_size: UNRELIABLE_PACKET_SIZE,
                    },
                    network_id(peer),
                    SwarmClient { peer: peer.clone() },
                ))
                .id();
            tracing::debug!(%peer, %entity, "replicon client connected");
            clients.by_peer.insert(peer.clone(), entity);
        }
    }
}

/// The last sample of a peer's byte counters, for rates.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    bytes_in: u64,
    bytes_out: u64,
    received_bps: f64,
    sent_bps: f64,
}

/// Per-peer samples (bounded by the open peers: pruned each pass).
#[derive(Resource, Default, Debug)]
pub(crate) struct Samples(HashMap<UserId, Sample>);

/// How often byte rates are recomputed.
const RATE_WINDOW: Duration = Duration::from_secs(1);

impl Samples {
    /// The statistics of `peer` now, its rates over the last window.
    fn stats(&mut self, now: Duration, user: &UserId, peer: &Peer) -> ClientStats {
        let sample = self.0.entry(user.clone()).or_insert(Sample {
            at: now,
            bytes_in: peer.bytes_in,
            bytes_out: peer.bytes_out,
            received_bps: 0.0,
            sent_bps: 0.0,
        });
        let span = now.saturating_sub(sample.at);
        if span >= RATE_WINDOW {
            let secs = span.as_secs_f64();
            sample.received_bps = peer.bytes_in.saturating_sub(sample.bytes_in) as f64 / secs;
            sample.sent_bps = peer.bytes_out.saturating_sub(sample.bytes_out) as f64 / secs;
            sample.at = now;
            sample.bytes_in = peer.bytes_in;
            sample.bytes_out = peer.bytes_out;
        }
        ClientStats {
            rtt: peer.rtt.map_or(0.0, |r| r.as_secs_f64()),
            // Data channels retransmit or drop without telling: not measured.
            packet_loss: 0.0,
            sent_bps: sample.sent_bps,
            received_bps: sample.received_bps,
        }
    }
}

/// Fills [`ConnectedClientStats`] (host) and [`ClientStats`] (client) from the peers' RTT and
/// byte counters.
pub(crate) fn stats(
    swarm: Res<Swarm>,
    time: Res<Time<Real>>,
    host: Res<ReplicationHost>,
    peers: Query<&Peer>,
    mut samples: ResMut<Samples>,
    mut clients: Query<(&SwarmClient, &mut ConnectedClientStats)>,
    mut client_stats: ResMut<ClientStats>,
) {
    let now = time.elapsed();
    samples.0.retain(|u, _| swarm.peer_entity(u).is_some());
    let peer = |u: &UserId| swarm.peer_entity(u).and_then(|e| peers.get(e).ok());
    for (client, mut out) in &mut clients {
        if let Some(p) = peer(&client.peer) {
            out.0 = samples.stats(now, &client.peer, p);
        }
    }
    if let Some(h) = &host.connected_to
        && let Some(p) = peer(h)
    {
        *client_stats = samples.stats(now, h, p);
    }
}

/// Carries out [`DisconnectRequest`]s after this frame's sends went out: the peer's link is
/// closed ([`Swarm::kick`]; no new link to it forms until one of the two joins again) and its
/// client entity despawned.
pub(crate) fn disconnect(
    mut commands: Commands,
    mut requests: MessageReader<DisconnectRequest>,
    mut swarm: ResMut<Swarm>,
    mut map: ResMut<ClientEntities>,
    clients: Query<&SwarmClient>,
) {
    for request in requests.read() {
        let Ok(client) = clients.get(request.client) else {
            continue;
        };
        tracing::info!(peer = %client.peer, "replicon asked to disconnect a client");
        swarm.kick(&client.peer);
        map.by_peer.remove(&client.peer);
        map.kicked.insert(client.peer.clone());
        commands.entity(request.client).try_despawn();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_ids_are_stable_and_distinct() {
        let a = network_id(&UserId::from("alice"));
        assert_eq!(a, network_id(&UserId::from("alice")));
        assert_ne!(a, network_id(&UserId::from("alicf")));
        // FNV-1a of "a", a published test vector.
        assert_eq!(network_id(&UserId::from("a")).get(), 0xaf63_dc4c_8601_ec8c);
    }
}
