//! The one platform seam: something that carries out [`PeerCommand`]s on real
//! RTCPeerConnections and reports [`PeerEvent`]s.
//!
//! The handshake logic is not here: it lives once, in [`Swarm`](crate::sans_io::Swarm). A
//! backend only does what it is told, in order, per connection.

use crate::sans_io::{PeerCommand, PeerEvent};
use fast_rtc_protocol::ConnectionId;

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
}

/// How much is waiting to be sent on one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Buffered {
    /// Messages queued.
    pub messages: usize,
    /// Their bytes.
    pub bytes: usize,
}

impl Buffered {
    /// Whether another message may be queued.
    pub fn has_room(&self) -> bool {
        self.messages < MAX_QUEUED_SENDS && self.bytes < MAX_BUFFERED_BYTES
    }
}

/// Messages queued per connection at most before sends are refused with
/// [`SendError::Full`](crate::SendError::Full).
pub const MAX_QUEUED_SENDS: usize = 4096;
/// Bytes queued per connection at most before sends are refused with
/// [`SendError::Full`](crate::SendError::Full).
pub const MAX_BUFFERED_BYTES: usize = 4 << 20;
