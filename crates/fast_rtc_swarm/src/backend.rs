//! The one platform seam: something that carries out [`PeerCommand`]s on real
//! RTCPeerConnections and reports [`PeerEvent`]s.
//!
//! The handshake decisions are not here: they live once, in
//! [`SwarmCore`](fast_rtc_swarm_core::swarm::SwarmCore). A backend only does what it is told, in order, per
//! connection; both WebRTC backends do it with the same per-connection task
//! (`connection.rs`). [`MemoryBackend`](crate::memory::MemoryBackend) is a third, in memory.

use fast_rtc_protocol::{ConnectionId, IceServer};
use fast_rtc_swarm_core::swarm::{PeerCommand, PeerEvent, PeerFailure, Role};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing::{debug, warn};

/// Where a backend reports what happens on its connections. Bounded: a backend waits when the
/// swarm is behind, which pushes back on the data channels (SCTP flow control).
pub type EventSender = async_channel::Sender<(ConnectionId, PeerEvent)>;
/// The receiving end of an [`EventSender`].
pub type EventReceiver = async_channel::Receiver<(ConnectionId, PeerEvent)>;

/// Capacity of the backend → swarm event queue (allocated up front: ~70 KiB).
pub const EVENT_QUEUE: usize = 1024;

/// Carries out peer commands.
///
/// `execute` must not block: it starts the work and returns; results arrive through the
/// [`EventSender`] the backend was created with. Commands for one connection must be carried
/// out in the order given. After [`PeerCommand::Close`] a connection must release everything
/// (sockets, tasks) and report nothing more.
pub trait Backend {
    /// Starts carrying out `command`.
    fn execute(&mut self, command: PeerCommand);

    /// Bytes of [`PeerCommand::Send`]s accepted for connection `id` and not yet handed to its
    /// data channel (0 for unknown connections). The shell refuses sends past
    /// [`MAX_BUFFERED_BYTES`] or [`MAX_QUEUED_SENDS`].
    fn buffered(&self, id: &ConnectionId) -> Buffered;

    /// Connections created and not yet closed (leak checks, diagnostics).
    fn connection_count(&self) -> usize;

    /// The connections this backend gave up on by itself while carrying out commands (a full
    /// command queue), since the last call. The shell hands each to the swarm as
    /// [`PeerEvent::Failed`] right after `execute`, so the failure cannot be lost behind a
    /// full event queue.
    fn take_failed(&mut self) -> Vec<(ConnectionId, PeerFailure)> {
        Vec::new()
    }
}

/// A backend as the shell holds it. `Send` on both builds: the browser backend keeps its JS
/// objects in local tasks, so a swarm handle can live in a Bevy resource there too.
pub type DynBackend = Box<dyn Backend + Send>;

/// How much is waiting to be sent on one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Buffered {
    /// Messages queued.
    pub messages: usize,
    /// Their bytes.
    pub bytes: usize,
}

impl Buffered {
    /// Whether a message that takes `messages` data-channel messages (see
    /// [`SwarmCore::wire_messages`](crate::SwarmCore::wire_messages)) may be queued: they all fit
    /// under [`MAX_QUEUED_SENDS`], and fewer than [`MAX_BUFFERED_BYTES`] are queued (so the
    /// bytes queued stay under that plus one message).
    pub fn has_room(&self, messages: usize) -> bool {
        self.messages + messages <= MAX_QUEUED_SENDS && self.bytes < MAX_BUFFERED_BYTES
    }
}

/// Messages queued per connection at most before sends are refused with
/// [`SendError::Full`](crate::SendError::Full).
pub const MAX_QUEUED_SENDS: usize = 4096;
/// Bytes queued per connection at most before sends are refused with
/// [`SendError::Full`](crate::SendError::Full).
pub const MAX_BUFFERED_BYTES: usize = 4 << 20;

/// Commands queued per connection at most in a [`Connections`] table: the send limit plus room
/// for control commands. A connection whose control commands still do not fit is failed.
pub(crate) const COMMAND_QUEUE: usize = MAX_QUEUED_SENDS + 256;

/// Sends accepted for one connection and not yet handed to its data channel.
#[derive(Default)]
pub(crate) struct SendQueue {
    messages: AtomicUsize,
    bytes: AtomicUsize,
}

impl SendQueue {
    fn add(&self, bytes: usize) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// One queued send of `bytes` was handed on.
    pub(crate) fn done(&self, bytes: usize) {
        self.messages.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// A connection a backend must now start: its task receives `commands` in order and calls
/// [`SendQueue::done`] on `queue` for each send it hands on.
pub(crate) struct NewConnection {
    pub(crate) id: ConnectionId,
    pub(crate) role: Role,
    /// The STUN/TURN servers the core chose for it ([`fast_rtc_swarm_core::ice`]).
    pub(crate) ice_servers: Vec<IceServer>,
    pub(crate) commands: async_channel::Receiver<PeerCommand>,
    pub(crate) queue: Arc<SendQueue>,
}

/// Starts one connection's task on a platform (webrtc-rs's runtime natively, `spawn_local` in the
/// browser).
pub(crate) type Launcher = Box<dyn FnMut(NewConnection) + Send>;

/// What both WebRTC backends are: the per-connection command table, and the platform's way to
/// start a connection's task, which runs the shared connection flow (`connection.rs`).
/// Dropping it drops every connection's command sender, which ends its task, and the task
/// closes its connection.
pub(crate) struct TaskBackend {
    connections: Connections,
    launch: Launcher,
}

impl TaskBackend {
    pub(crate) fn new(launch: Launcher) -> Self {
        TaskBackend {
            connections: Connections::new(),
            launch,
        }
    }
}

impl Backend for TaskBackend {
    fn execute(&mut self, command: PeerCommand) {
        if let Some(new) = self.connections.route(command) {
            (self.launch)(new);
        }
    }

    fn buffered(&self, id: &ConnectionId) -> Buffered {
        self.connections.buffered(id)
    }

    fn connection_count(&self) -> usize {
        self.connections.len()
    }

    fn take_failed(&mut self) -> Vec<(ConnectionId, PeerFailure)> {
        std::mem::take(&mut self.connections.failed)
            .into_iter()
            .map(|id| (id, PeerFailure::CommandQueueFull))
            .collect()
    }
}

/// The per-connection command queues of a [`TaskBackend`]: routes each command to its
/// connection in order, counts queued sends, and fails a connection whose queue is full instead
/// of growing it.
pub(crate) struct Connections {
    peers: HashMap<ConnectionId, (async_channel::Sender<PeerCommand>, Arc<SendQueue>)>,
    /// Connections failed for a full command queue, not yet taken ([`Backend::take_failed`]):
    /// each is removed from `peers` when it fails, so this holds each id once at most.
    failed: Vec<ConnectionId>,
}

impl Connections {
    pub(crate) fn new() -> Self {
        Connections {
            peers: HashMap::new(),
            failed: Vec::new(),
        }
    }

    pub(crate) fn buffered(&self, id: &ConnectionId) -> Buffered {
        self.peers
            .get(id)
            .map(|(_, q)| Buffered {
                messages: q.messages.load(Ordering::Relaxed),
                bytes: q.bytes.load(Ordering::Relaxed),
            })
            .unwrap_or_default()
    }

    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    /// Routes `command`. For a `Create`, returns the connection the caller must start. A
    /// `Close` drops the connection's sender, which ends its task after what was queued before.
    pub(crate) fn route(&mut self, command: PeerCommand) -> Option<NewConnection> {
        let id = match &command {
            PeerCommand::Create {
                id,
                role,
                ice_servers,
            } => {
                // Unbounded as a type, bounded by the length check below: a bounded
                // async-channel allocates all its slots up front (~0.4 MiB per connection).
                let (tx, rx) = async_channel::unbounded();
                let queue = Arc::new(SendQueue::default());
                self.peers.insert(id.clone(), (tx, queue.clone()));
                return Some(NewConnection {
                    id: id.clone(),
                    role: *role,
                    ice_servers: ice_servers.clone(),
                    commands: rx,
                    queue,
                });
            }
            PeerCommand::Close { id } => {
                self.peers.remove(id);
                return None;
            }
            PeerCommand::SendAudio { id, .. } => {
                // Real-time: a packet that would wait behind a second of others is useless.
                let (commands, _) = self.peers.get(id)?;
                if commands.len() >= fast_rtc_swarm_core::media::MAX_QUEUED_AUDIO {
                    debug!(%id, "connection behind: dropping an audio packet");
                } else {
                    let _ = commands.try_send(command);
                }
                return None;
            }
            PeerCommand::SetRemote { id, .. }
            | PeerCommand::RestartIce { id, .. }
            | PeerCommand::OpenChannels { id }
            | PeerCommand::AddCandidate { id, .. }
            | PeerCommand::Send { id, .. } => id.clone(),
        };
        let (commands, queue) = self.peers.get(&id)?;
        let bytes = match &command {
            PeerCommand::Send { payload, .. } => Some(payload.len()),
            _ => None,
        };
        if commands.len() >= COMMAND_QUEUE || commands.try_send(command).is_err() {
            warn!(%id, "connection command queue full: failing the connection");
            self.peers.remove(&id);
            self.failed.push(id);
            return None;
        }
        if let Some(n) = bytes {
            queue.add(n);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use fast_rtc_swarm_core::{ChannelId, Payload};

    /// A connection whose task does not keep up is failed, and the failure is kept for the
    /// shell to hand to the swarm at once: it never depends on room in the event queue (when
    /// it was sent there, a full queue lost it and the swarm kept the link forever).
    #[test]
    fn a_connection_whose_command_queue_overflows_is_failed_and_the_failure_kept() {
        let mut connections = Connections::new();
        let id = ConnectionId::from("c1");
        // Its task never runs: the receiver is held and never read.
        let started = connections
            .route(PeerCommand::Create {
                id: id.clone(),
                role: Role::Offerer,
                ice_servers: Vec::new(),
            })
            .unwrap();
        let send = || PeerCommand::Send {
            id: id.clone(),
            channel: ChannelId::FAST,
            payload: Payload::Binary(vec![0; 8]),
        };
        for _ in 0..COMMAND_QUEUE {
            assert!(connections.route(send()).is_none());
        }
        assert!(connections.failed.is_empty());
        assert_eq!(connections.len(), 1);
        connections.route(send());
        assert_eq!(connections.failed, vec![id.clone()]);
        assert_eq!(connections.len(), 0, "the failed connection is dropped");
        // Later commands for it go nowhere and fail nothing twice.
        connections.route(send());
        assert_eq!(connections.failed, vec![id]);
        drop(started);
    }
}
