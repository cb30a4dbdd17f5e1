//! The core's inputs and outputs: what the shell and the backends pass in and carry out, and
//! what the application is told.

use crate::config::{ChannelId, IceServer};
use crate::lifecycle::{SignalingState, TokenRequest};
use crate::media::TrackId;
use fast_rtc_protocol::{ClientMsg, ConnectionId, ErrorCode, IceCandidate, UserId};
use std::time::Duration;

/// A message body: text or binary, as on a WebRTC data channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A text (UTF-8) message; JS peers receive a `string`.
    Text(String),
    /// A binary message; JS peers receive an `ArrayBuffer`.
    Binary(Vec<u8>),
}

impl Payload {
    /// The bytes of the message.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Text(s) => s.as_bytes(),
            Payload::Binary(b) => b,
        }
    }
    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

impl From<Vec<u8>> for Payload {
    fn from(b: Vec<u8>) -> Self {
        Payload::Binary(b)
    }
}

impl From<&[u8]> for Payload {
    fn from(b: &[u8]) -> Self {
        Payload::Binary(b.to_vec())
    }
}

impl From<String> for Payload {
    fn from(s: String) -> Self {
        Payload::Text(s)
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Payload::Text(s.to_owned())
    }
}

/// Which end of a link this member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Creates the offer and the data channels.
    Offerer,
    /// Answers an offer received in an `accept`.
    Answerer,
}

/// Type of a session description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdpKind {
    /// An offer.
    Offer,
    /// An answer.
    Answer,
}

/// ICE connection state, as `RTCIceConnectionState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IceState {
    /// Gathering or waiting for remote candidates.
    New,
    /// Checking candidate pairs.
    Checking,
    /// A pair works.
    Connected,
    /// Checks are done.
    Completed,
    /// Connectivity lost, may come back.
    Disconnected,
    /// Connectivity lost for good.
    Failed,
    /// The connection was closed.
    Closed,
}

/// What a backend must do with one RTCPeerConnection. Commands for one link must be carried
/// out in the order given (an `AddCandidate` after a `SetRemote` waits for it). Deliberately
/// exhaustive: a backend must handle every command, and a new one is a breaking change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerCommand {
    /// Create the connection. An offerer also creates the `fast` channel, creates an offer,
    /// sets it as local description and reports [`PeerEvent::LocalDescription`].
    Create {
        /// Connection id.
        id: ConnectionId,
        /// Which end.
        role: Role,
        /// The STUN/TURN servers of this connection, chosen by the core
        /// ([`crate::ice`]: the application's, else the signaling server's, else none).
        ice_servers: Vec<IceServer>,
    },
    /// Set the remote description. For an offer, also create an answer, set it as local
    /// description and report [`PeerEvent::LocalDescription`].
    SetRemote {
        /// Connection id.
        id: ConnectionId,
        /// Offer or answer.
        kind: SdpKind,
        /// The SDP.
        sdp: String,
    },
    /// An offerer creates its game channels ([`SwarmConfig::channels`](crate::SwarmConfig::channels), in order, those not
    /// created yet): the answer said the remote takes them ([`crate::sdp`]).
    OpenChannels {
        /// Connection id.
        id: ConnectionId,
    },
    /// Add a remote candidate (`None`: end of candidates).
    AddCandidate {
        /// Connection id.
        id: ConnectionId,
        /// The candidate.
        candidate: Option<IceCandidate>,
    },
    /// Send on an open channel.
    Send {
        /// Connection id.
        id: ConnectionId,
        /// The channel.
        channel: ChannelId,
        /// The message.
        payload: Payload,
    },
    /// Send one encoded audio packet (20 ms of Opus) on a declared audio track. Real-time: a
    /// backend may drop it rather than queue it behind more than
    /// [`MAX_QUEUED_AUDIO`](crate::media::MAX_QUEUED_AUDIO) others.
    SendAudio {
        /// Connection id.
        id: ConnectionId,
        /// The track.
        track: TrackId,
        /// The encoded packet (at most [`MAX_AUDIO_PACKET`](crate::media::MAX_AUDIO_PACKET) bytes).
        packet: Vec<u8>,
    },
    /// Restart ICE on an open connection whose path was lost (fresh ICE credentials, a new
    /// gathering), then create an offer, set it as local description and report
    /// [`PeerEvent::LocalDescription`]: the remote answers it on the same link. Only sent
    /// to the link's offerer, and only when the remote advertised that it takes restarts
    /// ([`crate::sdp::RESTART_ATTRIBUTE`]).
    RestartIce {
        /// Connection id.
        id: ConnectionId,
        /// The STUN/TURN servers the restart gathers with: the swarm's current choice
        /// ([`crate::ice`]), so a link older than its TURN credentials allocates with fresh
        /// ones.
        ice_servers: Vec<IceServer>,
    },
    /// Close the connection and release everything it holds.
    Close {
        /// Connection id.
        id: ConnectionId,
    },
}

/// What a backend reports about one RTCPeerConnection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerEvent {
    /// A local description was set; signal it.
    LocalDescription {
        /// Offer or answer.
        kind: SdpKind,
        /// The SDP.
        sdp: String,
    },
    /// A local candidate was gathered (`None`: gathering is complete).
    LocalCandidate(Option<IceCandidate>),
    /// The ICE connection state changed.
    IceState(IceState),
    /// A channel opened.
    ChannelOpen(ChannelId),
    /// A channel closed.
    ChannelClosed(ChannelId),
    /// A message arrived on a channel.
    Message {
        /// The channel.
        channel: ChannelId,
        /// The message.
        payload: Payload,
    },
    /// The media section ids (mids) of the declared tracks' transceivers, once a description
    /// set them: the swarm names them to a JS client peer (`stream` and `midOffer`).
    TrackMids(Vec<(TrackId, String)>),
    /// One decoded audio frame arrived on a declared track ([`crate::media`]).
    Audio {
        /// The track (the backend matched the remote's track to a declared name).
        track: TrackId,
        /// Mono 48 kHz samples.
        samples: Vec<i16>,
    },
    /// A message this swarm handed to the backend ([`PeerCommand::Send`]) could not be handed
    /// to its data channel (the channel closed, or never opened): it is lost, and the
    /// application is told ([`SwarmFault::SendFailed`]).
    SendFailed {
        /// The channel.
        channel: ChannelId,
        /// The platform's words.
        error: String,
    },
    /// A message arrived that the backend could not deliver as it was sent (a text message
    /// that is not UTF-8): it is not delivered, and the application is told
    /// ([`SwarmFault::InvalidMessage`]).
    InvalidMessage {
        /// The channel.
        channel: ChannelId,
        /// What was wrong.
        error: String,
    },
    /// An operation failed; the link cannot continue.
    Failed(PeerFailure),
}

/// Why a backend gave up on a connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerFailure {
    /// The connection's command queue was full (the swarm sent faster than it could carry out).
    #[error("the connection's command queue is full")]
    CommandQueueFull,
    /// The platform's reports piled up past their bound: the swarm's events are not being
    /// drained.
    #[error("receive queue full: the swarm's events are not being drained")]
    InboxFull,
    /// The WebRTC stack refused an operation, in its own words.
    #[error("{0}")]
    Platform(String),
}

/// How a link was formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkOrigin {
    /// This member answered a member's pre-made offer received in an `accept` at join time or
    /// later.
    Answered,
    /// This member's offer was claimed by a joiner (`offerAccepted`).
    Offered,
}

/// A remote member and the link that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The remote member.
    pub user_id: UserId,
    /// The connection id of the link.
    pub id: ConnectionId,
    /// How the link was formed.
    pub origin: LinkOrigin,
}

/// Why a peer is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// This member closed it (`close_peer` or `close`).
    Local,
    /// The remote sent `@fast/{"type":"close"}`.
    Remote,
    /// The `fast` channel closed.
    ChannelClosed,
    /// The server said the remote left before the link opened.
    RemoteLeft,
    /// The handshake did not finish within [`SwarmConfig::handshake_timeout`](crate::SwarmConfig::handshake_timeout).
    HandshakeTimeout,
    /// ICE failed (the remote vanished, or no candidate pair works), on a link that could
    /// not restart ICE (a peer that does not take restarts: the JS client; or
    /// [`SwarmConfig::restore_timeout`](crate::SwarmConfig::restore_timeout) zero).
    IceFailed,
    /// The link's path was lost and ICE restarts did not bring it back within
    /// [`SwarmConfig::restore_timeout`](crate::SwarmConfig::restore_timeout).
    RestoreTimeout,
    /// The backend could not carry out an operation.
    Backend(PeerFailure),
    /// An operator removed the remote member from the room (the server's `kicked` frame).
    Kicked,
}

/// Faults the swarm reports as [`SwarmEvent::Fault`]; none of them stops the swarm.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SwarmFault {
    /// The server refused a frame.
    #[error("signaling server refused a frame ({code}): {message}")]
    Signaling {
        /// The `signal_error` code.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
    /// The server sent something that makes no sense here (a second `accept` for one id, an
    /// answer for an unknown link, …). It was ignored.
    #[error("unexpected signal: {0}")]
    UnexpectedSignal(String),
    /// A bounded queue was full and something was dropped.
    #[error("dropped: {0}")]
    Dropped(String),
    /// Link `id` finished gathering ICE candidates without a relay candidate, although TURN
    /// servers are configured or the policy is relay-only: the TURN server refused the
    /// credentials, could not be reached, or has a URL the WebRTC stack does not support
    /// (webrtc-rs: `turn:` over UDP only). Under the relay-only policy the link cannot
    /// connect. Decided in [`crate::relay`].
    #[error(
        "link {id}: ICE gathering ended without a relay candidate from TURN server(s) {servers:?}{}: wrong credentials, unreachable server, or unsupported URL",
        relay_only_note(.relay_only)
    )]
    RelayUnavailable {
        /// The link.
        id: ConnectionId,
        /// The `turn:`/`turns:` URLs configured (empty: relay-only with none configured).
        servers: Vec<String>,
        /// Whether the policy is relay-only.
        relay_only: bool,
    },
    /// Messages to `peer` on `channel` were accepted by [`SwarmCore::send`](crate::SwarmCore::send) (it returned `Ok`)
    /// and then lost: the channel closed while the link stayed up (with messages waiting for
    /// it to open, or handed to it), or the WebRTC stack refused them. Nothing is resent.
    #[error("{messages} message(s) to {peer} on channel {channel:?} lost: {error}")]
    SendFailed {
        /// The peer.
        peer: UserId,
        /// The channel.
        channel: ChannelId,
        /// How many messages.
        messages: usize,
        /// Why.
        error: String,
    },
    /// A message from `peer` on `channel` could not be delivered as it was sent (a text
    /// message that is not UTF-8, which a browser never sends): it was not delivered.
    #[error("a message from {peer} on channel {channel:?} was not delivered: {error}")]
    InvalidMessage {
        /// The peer.
        peer: UserId,
        /// The channel.
        channel: ChannelId,
        /// Why.
        error: String,
    },
    /// The remote of link `id` signaled a candidate the link does not take (an address that
    /// cannot be a peer, or past the link's caps: see [`crate::candidates`]). The candidate is
    /// ignored; the link goes on with the others.
    #[error("link {id}: remote candidate refused: {why}")]
    CandidateRefused {
        /// The link.
        id: ConnectionId,
        /// Why.
        why: crate::candidates::Refusal,
    },
}

/// Why a send was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No open link to that peer.
    #[error("no open link to {0}")]
    NoSuchPeer(UserId),
    /// No such channel is configured.
    #[error("no channel {0:?}")]
    NoSuchChannel(ChannelId),
    /// The channel is not open yet and is unreliable, or its queue is full.
    #[error("channel {0:?} is not open and the message cannot be kept")]
    NotOpen(ChannelId),
    /// A text message that starts with `@fast/` would be read as a control message (on any
    /// channel: large messages' headers use it too).
    #[error("text may not start with \"@fast/\"")]
    ReservedPrefix,
    /// The link's send queue is full (see the backend's buffered amount): wait and retry.
    #[error("the send queue to this peer is full")]
    Full,
    /// The swarm is closed.
    #[error("the swarm is closed")]
    Closed,
    /// The channel closed while the link stayed up (the remote closed it): messages on it
    /// cannot reach the peer any more; the other channels go on.
    #[error("channel {0:?} to this peer is closed")]
    ChannelClosed(ChannelId),
    /// The peer does not take game channels (a JavaScript peer): only
    /// [`ChannelId::FAST`] reaches it.
    #[error("the peer does not take game channel {0:?}; only fast reaches it")]
    NotTaken(ChannelId),
    /// The message is larger than the limit for its channel and peer:
    /// [`SwarmConfig::max_message_size`](crate::SwarmConfig::max_message_size) on a reliable channel to a peer that reassembles large
    /// messages (or the peer's own, smaller, limit), [`SwarmConfig::sctp_message_size`](crate::SwarmConfig::sctp_message_size) on an
    /// unreliable channel or to a peer that does not reassemble (a JavaScript peer).
    #[error("a {len}-byte message is larger than the {max}-byte limit")]
    TooLarge {
        /// The message's size.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Who a broadcast reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fanout {
    /// Peers it was sent to (or queued for, on a reliable channel still opening).
    pub sent: Vec<UserId>,
    /// Peers it was refused for, and why (usually [`SendError::Full`]).
    pub refused: Vec<(UserId, SendError)>,
}

/// What the application learns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SwarmEvent {
    /// A peer got its first open link.
    Open(PeerInfo),
    /// A peer lost its last link.
    Close {
        /// The peer and the link that closed.
        peer: PeerInfo,
        /// Why.
        reason: CloseReason,
    },
    /// A message from a peer.
    Data {
        /// The sender.
        from: UserId,
        /// The link it came on.
        id: ConnectionId,
        /// The channel.
        channel: ChannelId,
        /// The message.
        payload: Payload,
    },
    /// A link's round-trip time was measured (ping/pong on `fast`).
    Rtt {
        /// The peer.
        user_id: UserId,
        /// The link.
        id: ConnectionId,
        /// The round-trip time.
        rtt: Duration,
    },
    /// A link's ICE state changed.
    Connection {
        /// The peer, if the link is claimed yet.
        user_id: Option<UserId>,
        /// The link.
        id: ConnectionId,
        /// The new state.
        state: IceState,
    },
    /// An open link lost its path (ICE `disconnected` or `failed`: a network change, a NAT
    /// rebinding, a lost TURN allocation): data sent on it waits (reliable channels) while
    /// ICE restarts look for a new path. Followed by [`SwarmEvent::Restored`], or by
    /// [`SwarmEvent::Close`] with [`CloseReason::RestoreTimeout`]. Only for links whose
    /// remote takes restarts ([`crate::swarm#ice-restarts`]).
    Interrupted {
        /// The peer.
        user_id: UserId,
        /// The link.
        id: ConnectionId,
    },
    /// An interrupted link has a path again; the peer, its channels and its tracks stayed.
    Restored {
        /// The peer.
        user_id: UserId,
        /// The link.
        id: ConnectionId,
        /// How long it was interrupted.
        outage: Duration,
    },
    /// Something went wrong; the swarm goes on.
    Fault(SwarmFault),
    /// The signaling session's state changed (see [`crate::lifecycle`]).
    Signaling(SignalingState),
    /// A peer added one of its audio tracks ([`crate::media`]); its audio follows as
    /// [`SwarmEvent::Audio`] while it is live. A muted track is reported added, then muted.
    TrackAdded {
        /// The peer.
        peer: UserId,
        /// The track.
        track: TrackId,
    },
    /// A peer muted (`muted`) or unmuted one of its tracks.
    TrackMuted {
        /// The peer.
        peer: UserId,
        /// The track.
        track: TrackId,
        /// Whether it is muted now.
        muted: bool,
    },
    /// A peer removed one of its tracks, or its link closed (then before
    /// [`SwarmEvent::Close`]).
    TrackRemoved {
        /// The peer.
        peer: UserId,
        /// The track.
        track: TrackId,
    },
    /// A decoded frame of a peer's live track: mono 48 kHz samples, 20 ms
    /// ([`FRAME_SAMPLES`](crate::media::FRAME_SAMPLES)) per frame as sent.
    Audio {
        /// The peer.
        from: UserId,
        /// The track.
        track: TrackId,
        /// The samples.
        samples: Vec<i16>,
    },
    /// The swarm needs a fresh signaling token: answer with
    /// `fast_rtc_swarm::SwarmHandle::set_token` (see
    /// [`crate::lifecycle#tokens`]).
    TokenRequested(TokenRequest),
}

/// What to do next, from [`SwarmCore::poll_output`](crate::SwarmCore::poll_output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwarmOutput {
    /// Send this frame to the signaling server.
    Signal(ClientMsg),
    /// Carry out this command on a peer connection.
    Command(PeerCommand),
    /// Tell the application.
    Event(SwarmEvent),
}

/// The part of [`SwarmFault::RelayUnavailable`]'s message that says the link cannot connect.
fn relay_only_note(relay_only: &bool) -> &'static str {
    if *relay_only {
        " (relay-only: this link cannot connect)"
    } else {
        ""
    }
}
