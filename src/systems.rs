//! The plugin's systems: swarm events in ([`receive`]), queued sends out ([`send`]).

use crate::diagnostics::FastRtcDiagnostics;
use crate::messages::{
    ConnectionChange, FastRtcError, PeerClosed, PeerConnectionChanged, PeerData, PeerOpened,
    SignalingChanged, SwarmError, TokenRequested,
};
use crate::session::{Outgoing, Peer, Swarm, Tapped};
use crate::voice::{PeerAudio, PeerTrack, TrackChange, VoiceVolume, scaled};
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use fast_rtc_swarm::{IceState, SendError, SwarmEvent};

/// Swarm events turned into messages per frame at most; the rest wait for the next frame (the
/// swarm pushes back on peers meanwhile).
pub const MAX_EVENTS_PER_FRAME: usize = 8192;

#[derive(SystemParam)]
pub(crate) struct Writers<'w> {
    opened: MessageWriter<'w, PeerOpened>,
    closed: MessageWriter<'w, PeerClosed>,
    connection: MessageWriter<'w, PeerConnectionChanged>,
    data: MessageWriter<'w, PeerData>,
    errors: MessageWriter<'w, SwarmError>,
    signaling: MessageWriter<'w, SignalingChanged>,
    tokens: MessageWriter<'w, TokenRequested>,
    tracks: MessageWriter<'w, PeerTrack>,
    audio: MessageWriter<'w, PeerAudio>,
}

/// Writes a [`SignalingChanged`] if the state moved since the last one.
fn report_state(swarm: &mut Swarm, out: &mut MessageWriter<SignalingChanged>) {
    if let Some(change) = swarm.take_state_change() {
        out.write(change);
    }
}

/// Turns swarm events into messages and peer entities.
pub(crate) fn receive(
    mut commands: Commands,
    mut swarm: ResMut<Swarm>,
    mut peers: Query<&mut Peer>,
    volumes: Query<&VoiceVolume>,
    mut out: Writers,
    mut stats: ResMut<FastRtcDiagnostics>,
) {
    // A swarm replaced by `connect` was closed: its events are all queued already. Only its
    // closes matter (despawn the entities of its peers).
    let retired = swarm.take_retired_closes();
    let current = swarm.handle().cloned();
    // A change made by the app itself (`connect`, `disconnect`).
    report_state(&mut swarm, &mut out.signaling);
    let mut retired = retired.into_iter();
    for _ in 0..MAX_EVENTS_PER_FRAME {
        let Some(event) = retired
            .next()
            .or_else(|| current.as_ref().and_then(|h| h.try_recv()))
        else {
            break;
        };
        match event {
            SwarmEvent::Open(info) => {
                let entity = commands
                    .spawn((
                        Peer {
                            user_id: info.user_id.clone(),
                            connection_id: info.id.clone(),
                            ice_state: IceState::Connected,
                            rtt: None,
                            bytes_in: 0,
                            bytes_out: 0,
                        },
                        VoiceVolume::default(),
                    ))
                    .id();
                swarm.peer_opened(info.user_id.clone(), entity);
                out.opened.write(PeerOpened {
                    peer: info.user_id,
                    entity,
                    connection_id: info.id,
                });
            }
            SwarmEvent::Close { peer, reason } => {
                if let Some(entity) = swarm.peer_closed(&peer.user_id) {
                    commands.entity(entity).despawn();
                    out.closed.write(PeerClosed {
                        peer: peer.user_id,
                        entity,
                        reason,
                    });
                }
            }
            SwarmEvent::Data {
                from,
                channel,
                payload,
                ..
            } => {
                let len = payload.len() as u64;
                let (from, payload) = match swarm.route_to_tap(channel, from, payload) {
                    Tapped::No(from, payload) => (from, payload),
                    Tapped::Yes => {
                        stats.bytes_in += len;
                        continue;
                    }
                    Tapped::DroppingOldest(dropped) => {
                        stats.bytes_in += len;
                        out.errors.write(SwarmError {
                            peer: Some(dropped),
                            error: FastRtcError::TapOverflow { channel },
                        });
                        continue;
                    }
                };
                let entity = swarm.peer_entity(&from);
                stats.bytes_in += len;
                if let Some(e) = entity {
                    update_peer(&mut commands, &mut peers, e, move |p| p.bytes_in += len);
                }
                out.data.write(PeerData {
                    peer: from,
                    entity,
                    channel,
                    payload,
                });
            }
            SwarmEvent::Rtt { user_id, rtt, .. } => {
                if let Some(e) = swarm.peer_entity(&user_id) {
                    update_peer(&mut commands, &mut peers, e, move |p| p.rtt = Some(rtt));
                }
            }
            SwarmEvent::Connection { user_id, state, .. } => {
                let entity = user_id.as_ref().and_then(|u| swarm.peer_entity(u));
                if let Some(e) = entity {
                    update_peer(&mut commands, &mut peers, e, move |p| p.ice_state = state);
                }
            }
            SwarmEvent::Interrupted { user_id, .. } => {
                out.connection.write(PeerConnectionChanged {
                    entity: swarm.peer_entity(&user_id),
                    peer: user_id,
                    change: ConnectionChange::Interrupted,
                });
            }
            SwarmEvent::Restored {
                user_id, outage, ..
            } => {
                out.connection.write(PeerConnectionChanged {
                    entity: swarm.peer_entity(&user_id),
                    peer: user_id,
                    change: ConnectionChange::Restored { outage },
                });
            }
            SwarmEvent::Signaling(state) => {
                swarm.set_state(state);
                report_state(&mut swarm, &mut out.signaling);
            }
            SwarmEvent::TokenRequested(request) => {
                out.tokens.write(TokenRequested { request });
            }
            SwarmEvent::TrackAdded { peer, track } => {
                track_changed(&swarm, &mut out.tracks, peer, track, TrackChange::Added);
            }
            SwarmEvent::TrackMuted { peer, track, muted } => {
                let change = if muted {
                    TrackChange::Muted
                } else {
                    TrackChange::Unmuted
                };
                track_changed(&swarm, &mut out.tracks, peer, track, change);
            }
            SwarmEvent::TrackRemoved { peer, track } => {
                track_changed(&swarm, &mut out.tracks, peer, track, TrackChange::Removed);
            }
            SwarmEvent::Audio {
                from,
                track,
                samples,
            } => {
                let entity = swarm.peer_entity(&from);
                // A peer spawned this pass has no volume to read yet: as sent.
                let gain = entity
                    .and_then(|e| volumes.get(e).ok())
                    .map_or(1.0, |v| v.0);
                if let Some(samples) = scaled(samples, gain) {
                    out.audio.write(PeerAudio {
                        peer: from,
                        entity,
                        track,
                        samples,
                    });
                }
            }
            SwarmEvent::Fault(fault) => {
                out.errors.write(SwarmError {
                    peer: None,
                    error: fault.into(),
                });
            }
            _ => {}
        }
    }
}

fn track_changed(
    swarm: &Swarm,
    out: &mut MessageWriter<PeerTrack>,
    peer: fast_rtc_protocol::UserId,
    track: fast_rtc_swarm::TrackId,
    change: TrackChange,
) {
    let entity = swarm.peer_entity(&peer);
    out.write(PeerTrack {
        peer,
        entity,
        track,
        change,
    });
}

/// Applies `change` to the [`Peer`] of `entity`: at once if it exists, else (spawned by this
/// same pass, still a command) as a command right after its spawn, so an event that arrives in
/// the frame its peer opened (the first RTT, early data) is not lost.
fn update_peer(
    commands: &mut Commands,
    peers: &mut Query<&mut Peer>,
    entity: Entity,
    change: impl FnOnce(&mut Peer) + Send + Sync + 'static,
) {
    match peers.get_mut(entity) {
        Ok(mut peer) => change(&mut peer),
        // Silenced: the entity may be gone by then (closed in the same pass, or despawned by
        // the game), and a late counter is not worth an error.
        Err(_) => {
            commands
                .entity(entity)
                .queue_silenced(move |mut e: EntityWorldMut| {
                    if let Some(mut peer) = e.get_mut::<Peer>() {
                        change(&mut peer);
                    }
                });
        }
    }
}

/// Sends what was queued this frame: to one peer with [`SwarmHandle::send`], to every peer
/// with the swarm's one fan-out ([`SwarmHandle::broadcast`]).
pub(crate) fn send(
    mut swarm: ResMut<Swarm>,
    mut peers: Query<&mut Peer>,
    mut errors: MessageWriter<SwarmError>,
    mut stats: ResMut<FastRtcDiagnostics>,
) {
    let Some((handle, outbox)) = swarm.take_outbox() else {
        return;
    };
    for Outgoing {
        to,
        channel,
        payload,
    } in outbox
    {
        let len = payload.len() as u64;
        let (sent, refused) = match to {
            Some(peer) => match handle.send(&peer, channel, payload) {
                Ok(()) => (vec![peer], Vec::new()),
                // An unreliable channel that is not open yet: game state is resent next tick.
                Err(SendError::NotOpen(_)) => (Vec::new(), Vec::new()),
                Err(e) => (Vec::new(), vec![(peer, e)]),
            },
            None => match handle.broadcast(channel, payload) {
                Ok(fanout) => (fanout.sent, fanout.refused),
                Err(e) => {
                    errors.write(SwarmError {
                        peer: None,
                        error: e.into(),
                    });
                    continue;
                }
            },
        };
        for peer in sent {
            stats.bytes_out += len;
            if let Some(mut p) = swarm.peer_entity(&peer).and_then(|e| peers.get_mut(e).ok()) {
                p.bytes_out += len;
            }
        }
        for (peer, error) in refused {
            errors.write(SwarmError {
                peer: Some(peer),
                error: error.into(),
            });
        }
    }
}
