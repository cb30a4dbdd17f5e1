//! An in-memory backend: swarms in one process linked without WebRTC or sockets.
//!
//! [`MemoryNet`] stands for the network between the members of one process. Each swarm gets a
//! [`MemoryBackend`] of it (through [`start_with`](crate::start_with)); the swarms' real
//! handshake decisions still run (offers, answers, candidates, relayed by whatever signaling
//! the test gives them), but the "connections" are entries in a table:
//! - an offerer's `Create` reports an offer (`memory-offer <id>`), one candidate and the end of
//!   candidates; an answerer's `SetRemote` of that offer reports an answer;
//! - when the offerer sets the answer, every channel of both ends opens at once;
//! - a `Send` is delivered to the other end at once, in order, on the same channel;
//! - a `Close` (or dropping a backend) closes the other end's `fast` channel, as a remote
//!   that vanished would.
//!
//! Use it to test game code and the Bevy plugin in milliseconds. It says nothing about real
//! WebRTC timing: use the native backend on loopback for that. Every report goes through the
//! receiving swarm's bounded event queue; if that queue is full the link fails
//! ([`PeerFailure::InboxFull`], handed to the swarm at its next step) rather than growing or
//! blocking. A `Send` whose other end is gone is reported lost ([`PeerEvent::SendFailed`]).

use crate::backend::{Backend, Buffered, EventSender};
use fast_rtc_protocol::{ConnectionId, IceCandidate};
use fast_rtc_swarm_core::config::{ChannelId, SwarmConfig};
use fast_rtc_swarm_core::swarm::{IceState, PeerCommand, PeerEvent, PeerFailure, Role, SdpKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tracing::debug;

/// The network between in-memory swarms. Cheap to clone; clones are the same network.
#[derive(Clone, Default)]
pub struct MemoryNet {
    inner: Arc<Mutex<Net>>,
}

#[derive(Default)]
struct Net {
    next_backend: u64,
    /// Each backend's event queue and channel count.
    backends: HashMap<u64, (EventSender, usize)>,
    /// Each connection id's two ends: which backend holds the offerer and the answerer.
    links: HashMap<ConnectionId, Ends>,
    /// Each backend's connections failed because its event queue was full, until it takes
    /// them ([`Backend::take_failed`]): at most one entry per connection.
    failed: HashMap<u64, Vec<ConnectionId>>,
}

#[derive(Default, Debug)]
struct Ends {
    offerer: Option<u64>,
    answerer: Option<u64>,
    /// The answerer has set the offer (so the offerer may set an answer).
    answered: bool,
    open: bool,
}

impl Net {
    fn report(&mut self, backend: u64, id: &ConnectionId, event: PeerEvent) {
        let Some((events, _)) = self.backends.get(&backend) else {
            return;
        };
        if events.try_send((id.clone(), event)).is_err() {
            debug!(%id, "memory link: the receiving swarm's event queue is full; failing it");
            // Kept for the swarm to take at its next step, not sent where there is no room.
            let failed = self.failed.entry(backend).or_default();
            if !failed.contains(id) {
                failed.push(id.clone());
            }
        }
    }

    fn other_end(&self, backend: u64, id: &ConnectionId) -> Option<u64> {
        let ends = self.links.get(id)?;
        if ends.offerer == Some(backend) {
            ends.answerer
        } else {
            ends.offerer
        }
    }

    /// Removes `backend`'s end of `id`; the other end sees its `fast` channel close.
    fn close(&mut self, backend: u64, id: &ConnectionId) {
        let other = self.other_end(backend, id);
        let Some(ends) = self.links.get_mut(id) else {
            return;
        };
        if ends.offerer == Some(backend) {
            ends.offerer = None;
        } else if ends.answerer == Some(backend) {
            ends.answerer = None;
        } else {
            return;
        }
        let open = ends.open;
        if ends.offerer.is_none() && ends.answerer.is_none() {
            self.links.remove(id);
        }
        if let Some(other) = other
            && open
        {
            self.report(other, id, PeerEvent::ChannelClosed(ChannelId::FAST));
        }
    }
}

impl MemoryNet {
    /// An empty network.
    pub fn new() -> Self {
        MemoryNet::default()
    }

    fn lock(&self) -> MutexGuard<'_, Net> {
        // The table stays consistent between statements; keep going after a panic elsewhere.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A backend on this network for a swarm with `config`'s channels, reporting to `events`.
    pub fn backend(&self, config: SwarmConfig, events: EventSender) -> MemoryBackend {
        let mut net = self.lock();
        net.next_backend += 1;
        let id = net.next_backend;
        net.backends
            .insert(id, (events, config.all_channels().count()));
        MemoryBackend {
            net: self.clone(),
            id,
        }
    }

    /// Connections with at least one end on this network.
    pub fn link_count(&self) -> usize {
        self.lock().links.len()
    }
}

/// One swarm's backend on a [`MemoryNet`]. Dropping it closes all its connections.
pub struct MemoryBackend {
    net: MemoryNet,
    id: u64,
}

impl MemoryBackend {
    /// The link comes up at both ends: ICE connects and `fast` opens.
    fn connect(net: &mut Net, id: &ConnectionId, ends: [u64; 2]) {
        for end in ends {
            net.report(end, id, PeerEvent::IceState(IceState::Connected));
            net.report(end, id, PeerEvent::ChannelOpen(ChannelId::FAST));
        }
    }

    /// The offerer's game channels open at both ends.
    fn open_game_channels(net: &mut Net, id: &ConnectionId, ends: [u64; 2]) {
        for end in ends {
            let channels = net.backends.get(&end).map_or(0, |(_, n)| *n);
            for c in 1..channels {
                let channel = ChannelId(u16::try_from(c).unwrap_or(u16::MAX));
                net.report(end, id, PeerEvent::ChannelOpen(channel));
            }
        }
    }
}

impl Backend for MemoryBackend {
    fn execute(&mut self, command: PeerCommand) {
        let me = self.id;
        let mut net = self.net.lock();
        match command {
            PeerCommand::Create { id, role, .. } => {
                let ends = net.links.entry(id.clone()).or_default();
                match role {
                    Role::Offerer => ends.offerer = Some(me),
                    Role::Answerer => ends.answerer = Some(me),
                }
                if role == Role::Offerer {
                    let sdp = format!("memory-offer {id}");
                    net.report(
                        me,
                        &id,
                        PeerEvent::LocalDescription {
                            kind: SdpKind::Offer,
                            sdp,
                        },
                    );
                    let candidate = IceCandidate {
                        candidate: "candidate:memory 1 udp 1 127.0.0.1 9 typ host".into(),
                        sdp_mid: Some("0".into()),
                        sdp_m_line_index: Some(0),
                        username_fragment: None,
                    };
                    net.report(me, &id, PeerEvent::LocalCandidate(Some(candidate)));
                    net.report(me, &id, PeerEvent::LocalCandidate(None));
                }
            }
            PeerCommand::SetRemote { id, kind, .. } => {
                let Some(ends) = net.links.get_mut(&id) else {
                    return;
                };
                match kind {
                    SdpKind::Offer if ends.answerer == Some(me) => {
                        ends.answered = true;
                        let sdp = format!("memory-answer {id}");
                        net.report(
                            me,
                            &id,
                            PeerEvent::LocalDescription {
                                kind: SdpKind::Answer,
                                sdp,
                            },
                        );
                    }
                    SdpKind::Answer if ends.offerer == Some(me) && ends.answered => {
                        ends.open = true;
                        let answerer = ends.answerer;
                        match answerer {
                            Some(other) => MemoryBackend::connect(&mut net, &id, [me, other]),
                            None => net.report(me, &id, PeerEvent::IceState(IceState::Failed)),
                        }
                    }
                    _ => {
                        let failure = PeerFailure::Platform(format!("{kind:?} out of order"));
                        net.report(me, &id, PeerEvent::Failed(failure));
                    }
                }
            }
            PeerCommand::OpenChannels { id } => {
                if net.links.get(&id).is_some_and(|e| e.open)
                    && let Some(other) = net.other_end(me, &id)
                {
                    MemoryBackend::open_game_channels(&mut net, &id, [me, other]);
                }
            }
            PeerCommand::AddCandidate { .. } => {}
            // Links in memory never lose their path: a restart finds it at once.
            PeerCommand::RestartIce { id, .. } => {
                net.report(me, &id, PeerEvent::IceState(IceState::Connected));
            }
            PeerCommand::Send {
                id,
                channel,
                payload,
            } => {
                match net.other_end(me, &id) {
                    Some(other) if net.links.get(&id).is_some_and(|e| e.open) => {
                        net.report(other, &id, PeerEvent::Message { channel, payload });
                    }
                    // The other end is gone: the message is lost, and the sender is told.
                    _ => {
                        let error = "the other end of the memory link is gone".to_owned();
                        net.report(me, &id, PeerEvent::SendFailed { channel, error });
                    }
                }
            }
            PeerCommand::SendAudio { id, track, packet } => {
                // No codec in memory: each byte of the packet arrives as one sample.
                if net.links.get(&id).is_some_and(|e| e.open)
                    && let Some(other) = net.other_end(me, &id)
                {
                    let samples = packet.iter().map(|&b| i16::from(b)).collect();
                    net.report(other, &id, PeerEvent::Audio { track, samples });
                }
            }
            PeerCommand::Close { id } => net.close(me, &id),
        }
    }

    fn buffered(&self, _id: &ConnectionId) -> Buffered {
        // Delivered at once: nothing ever waits.
        Buffered::default()
    }

    fn take_failed(&mut self) -> Vec<(ConnectionId, PeerFailure)> {
        let failed = self.net.lock().failed.remove(&self.id).unwrap_or_default();
        failed
            .into_iter()
            .map(|id| (id, PeerFailure::InboxFull))
            .collect()
    }

    fn connection_count(&self) -> usize {
        let me = self.id;
        self.net
            .lock()
            .links
            .values()
            .filter(|e| e.offerer == Some(me) || e.answerer == Some(me))
            .count()
    }
}

impl Drop for MemoryBackend {
    fn drop(&mut self) {
        let me = self.id;
        let mut net = self.net.lock();
        let mine: Vec<ConnectionId> = net
            .links
            .iter()
            .filter(|(_, e)| e.offerer == Some(me) || e.answerer == Some(me))
            .map(|(id, _)| id.clone())
            .collect();
        for id in mine {
            net.close(me, &id);
        }
        net.backends.remove(&me);
        net.failed.remove(&me);
    }
}
