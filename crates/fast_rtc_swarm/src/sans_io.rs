//! The swarm's decisions, without sockets, timers or WebRTC: [`SwarmCore`].
//!
//! This module contains no networking code and never reads a clock: the caller passes the time
//! in. The same [`SwarmCore`] drives the native (webrtc-rs) and the browser (web-sys) backends; only
//! the carrying-out of [`PeerCommand`]s differs.
//!
//! # Methods
//!
//! - inputs: [`SwarmCore::start`], [`SwarmCore::handle_signal`] (frames from the signaling server),
//!   [`SwarmCore::handle_peer`] (what a backend reports about one RTCPeerConnection),
//!   [`SwarmCore::handle_timeout`];
//! - commands from the application: [`SwarmCore::send`], [`SwarmCore::broadcast`],
//!   [`SwarmCore::close_peer`], [`SwarmCore::close`]; voice ([`crate::media`]):
//!   [`SwarmCore::add_track`], [`SwarmCore::mute_track`], [`SwarmCore::remove_track`],
//!   [`SwarmCore::send_audio`];
//! - outputs: [`SwarmCore::poll_output`] (signaling frames to send, peer commands to carry out,
//!   events for the application) and [`SwarmCore::poll_timeout`] (when to call `handle_timeout`).
//!
//! **Drain contract**: after every input or command, call [`SwarmCore::poll_output`] until it
//! returns `None`, then [`SwarmCore::poll_timeout`]. Time must never go backwards; a spurious
//! `handle_timeout` is a no-op.
//!
//! # Peers and links
//!
//! A *link* is one RTCPeerConnection, named by its connection id. The application sees *peers*:
//! remote members by `userId`. Usually a peer has one link. After a signaling reconnect a second
//! link to the same peer may form; when it opens, the older one is closed quietly, so the
//! application sees [`SwarmEvent::Open`] when a peer gets its first open link and
//! [`SwarmEvent::Close`] when it loses its last.
//!
//! A `leaveSwarm` for a link whose `fast` channel is open is not acted on: the link itself tells
//! whether the peer is there (a `@fast/{"type":"close"}`, the channel closing, ICE failing). This
//! keeps links up while a member's signaling socket reconnects.

use crate::config::{ChannelId, Delivery, SwarmConfig};
use crate::control::Control;
use crate::large::{self, Reassembly, Step};
use crate::lifecycle::{Lifecycle, Next, SignalingState, TokenRequest, Transport};
use crate::media::{MAX_AUDIO_PACKET, TrackAnnounce, TrackError, TrackId, TrackState};
use crate::sdp::Extensions;
use fast_rtc_protocol::{
    CONTROL_PREFIX, ClientMsg, ConnectionId, ErrorCode, IceCandidate, ServerMsg, Signal, UserId,
};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tracing::{debug, warn};
use web_time::Instant;

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
    /// An offerer creates its game channels ([`SwarmConfig::channels`], in order, those not
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
        /// The encoded packet (at most [`MAX_AUDIO_PACKET`] bytes).
        packet: Vec<u8>,
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
    /// The handshake did not finish within [`SwarmConfig::handshake_timeout`].
    HandshakeTimeout,
    /// ICE failed (the remote vanished, or no candidate pair works).
    IceFailed,
    /// The backend could not carry out an operation.
    Backend(PeerFailure),
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
        crate::relay::relay_only_note(.relay_only)
    )]
    RelayUnavailable {
        /// The link.
        id: ConnectionId,
        /// The `turn:`/`turns:` URLs configured (empty: relay-only with none configured).
        servers: Vec<String>,
        /// Whether the policy is relay-only.
        relay_only: bool,
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
    /// The peer does not take game channels (a JavaScript peer): only
    /// [`ChannelId::FAST`] reaches it.
    #[error("the peer does not take game channel {0:?}; only fast reaches it")]
    NotTaken(ChannelId),
    /// The message is larger than the limit for its channel and peer:
    /// [`SwarmConfig::max_message_size`] on a reliable channel to a peer that reassembles large
    /// messages (or the peer's own, smaller, limit), [`SwarmConfig::sctp_message_size`] on an
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
    /// [`SwarmHandle::set_token`](crate::SwarmHandle::set_token) (see
    /// [`crate::lifecycle#tokens`]).
    TokenRequested(TokenRequest),
}

/// What to do next, from [`SwarmCore::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwarmOutput {
    /// Send this frame to the signaling server.
    Signal(ClientMsg),
    /// Carry out this command on a peer connection.
    Command(PeerCommand),
    /// Tell the application.
    Event(SwarmEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    /// Our pre-made offer, not claimed by a joiner yet.
    Parked,
    /// Claimed; handshake under way.
    Connecting,
    /// `fast` is open.
    Open,
}

#[derive(Debug)]
struct Link {
    role: Role,
    state: LinkState,
    remote: Option<UserId>,
    origin: LinkOrigin,
    remote_described: bool,
    pending_candidates: Vec<Option<IceCandidate>>,
    /// Whether a relay candidate was gathered for this end ([`crate::relay`]).
    relay_gathered: bool,
    deadline: Option<Instant>,
    open_channels: Vec<bool>,
    queued: HashMap<ChannelId, VecDeque<Payload>>,
    /// Data that arrived on a game channel before `fast` opened, delivered right after Open.
    early: VecDeque<(ChannelId, Payload)>,
    /// The largest message the remote reassembles, from its session description (0: it does
    /// not; see [`crate::large`]).
    reassembles: usize,
    /// Whether the remote takes game channels, from its session description.
    game_channels: bool,
    /// Large messages being received, by channel.
    assembly: HashMap<ChannelId, Reassembly>,
    opened_at: Option<Instant>,
    next_ping: Option<Instant>,
    ping_seq: u64,
    ping_sent: Option<(u64, Instant)>,
    rtt: Option<Duration>,
    /// The remote's audio tracks as it announced them, by [`TrackId`].
    remote_tracks: Vec<Option<TrackState>>,
    /// The mid of each declared track's transceiver, once known ([`PeerEvent::TrackMids`]).
    local_mids: Vec<Option<String>>,
    /// Whether each track's transceiver was named to the remote (`stream` and `midOffer`).
    media_named: Vec<bool>,
}

impl Link {
    fn info(&self, id: &ConnectionId) -> Option<PeerInfo> {
        self.remote.clone().map(|user_id| PeerInfo {
            user_id,
            id: id.clone(),
            origin: self.origin,
        })
    }
}

/// A fast-rtc swarm member's state machine. See the [module docs](self).
#[derive(Debug)]
pub struct SwarmCore {
    config: SwarmConfig,
    id_prefix: String,
    next_id: u64,
    links: HashMap<ConnectionId, Link>,
    /// This member's audio tracks, by [`TrackId`] (`None`: not added).
    local_tracks: Vec<Option<TrackState>>,
    /// Peers whose last open link closed while a newer link to them was still connecting (a
    /// signaling reconnect's replacement, whose other end opened first): the application was
    /// not told, and the reason is kept in case the replacement fails too.
    handover: HashMap<UserId, CloseReason>,
    out: VecDeque<SwarmOutput>,
    lifecycle: Lifecycle,
    started: bool,
    closed: bool,
}

impl SwarmCore {
    /// A swarm for `config`. `id_prefix` makes this member's connection ids unique in the room
    /// (the shell passes a random string; ids are `{prefix}-{n}`).
    pub fn new(config: SwarmConfig, id_prefix: impl Into<String>) -> Self {
        SwarmCore {
            id_prefix: id_prefix.into(),
            next_id: 0,
            links: HashMap::new(),
            local_tracks: vec![None; config.audio_tracks.len()],
            handover: HashMap::new(),
            out: VecDeque::new(),
            lifecycle: Lifecycle::new(config.reconnect.clone(), config.token.clone()),
            config,
            started: false,
            closed: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SwarmConfig {
        &self.config
    }

    /// Whether [`SwarmCore::close`] was called (or the signaling session failed).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The signaling session's state (see [`crate::lifecycle`]).
    pub fn signaling_state(&self) -> &SignalingState {
        self.lifecycle.state()
    }

    /// What the shell's signaling transport did; returns what it does next (retry after a
    /// backoff, or stop). A failure that ends the session (a refused token, the retry budget
    /// spent) closes the swarm.
    pub fn handle_transport(&mut self, now: Instant, event: Transport) -> Next {
        if self.closed {
            return Next::Stop;
        }
        let (next, change) = self.lifecycle.transport(now, event);
        self.signaling_changed(change);
        next
    }

    /// The shell's signaling token changed (or was first set); it expires in `expires_in`
    /// if that is known. Ends a wait for a token ([`Next::AwaitToken`]) and schedules the
    /// next [`TokenRequest::Expiring`].
    pub fn token_changed(&mut self, now: Instant, expires_in: Option<Duration>) {
        if !self.closed {
            self.lifecycle.token_changed(now, expires_in);
        }
    }

    fn signaling_changed(&mut self, change: Option<SignalingState>) {
        if let Some(request) = self.lifecycle.take_request() {
            debug!(?request, "asking for a signaling token");
            self.event(SwarmEvent::TokenRequested(request));
        }
        let Some(state) = change else { return };
        let failed = state.is_failed();
        debug!(?state, "signaling state");
        self.event(SwarmEvent::Signaling(state));
        if failed {
            self.close();
        }
    }

    /// Peers with an open link, with the link carrying each.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut best: HashMap<&UserId, (&ConnectionId, &Link)> = HashMap::new();
        for (id, l) in &self.links {
            if l.state != LinkState::Open {
                continue;
            }
            let Some(user) = &l.remote else { continue };
            match best.get(user) {
                Some((_, b)) if b.opened_at >= l.opened_at => {}
                _ => {
                    best.insert(user, (id, l));
                }
            }
        }
        let mut peers: Vec<PeerInfo> = best
            .into_values()
            .filter_map(|(id, l)| l.info(id))
            .collect();
        peers.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        peers
    }

    /// Links in any state (parked offers included), for diagnostics and leak checks.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Links that are this member's unclaimed pre-made offers.
    pub fn parked_offers(&self) -> usize {
        self.links
            .values()
            .filter(|l| l.state == LinkState::Parked)
            .count()
    }

    /// The next output, in order; `None` when there is nothing to do.
    pub fn poll_output(&mut self) -> Option<SwarmOutput> {
        self.out.pop_front()
    }

    /// When [`SwarmCore::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.links
            .values()
            .flat_map(|l| [l.deadline, l.next_ping])
            .chain([self.lifecycle.poll_timeout()])
            .flatten()
            .min()
    }

    /// The last measured round-trip time to `peer`, if any.
    pub fn rtt(&self, peer: &UserId) -> Option<Duration> {
        self.link_to(peer)
            .and_then(|id| self.links.get(&id))
            .and_then(|l| l.rtt)
    }

    /// Joins the room: sends `init` and creates `peer_buffer` pre-made offers. Calling it again
    /// (after the signaling connection was re-established) sends `init` again and tops the
    /// pre-made offers up to `peer_buffer`.
    pub fn start(&mut self, _now: Instant) {
        if self.closed {
            return;
        }
        let change = self.lifecycle.started();
        self.signaling_changed(change);
        self.signal(ClientMsg::Init {
            user_id: None,
            room_id: self.config.room_id.clone(),
        });
        if self.started {
            // A rejoin: the server forgot the offers parked with our old socket, so they can
            // never be claimed. Close them and park fresh ones.
            let stale: Vec<ConnectionId> = self
                .links
                .iter()
                .filter(|(_, l)| l.state == LinkState::Parked)
                .map(|(id, _)| id.clone())
                .collect();
            for id in stale {
                self.links.remove(&id);
                self.command(PeerCommand::Close { id });
            }
        }
        self.started = true;
        for _ in 0..self.config.peer_buffer {
            self.create_offerer();
        }
    }

    fn fresh_id(&mut self) -> ConnectionId {
        self.next_id += 1;
        ConnectionId::new(format!("{}-{}", self.id_prefix, self.next_id))
    }

    fn new_link(&self, role: Role, origin: LinkOrigin) -> Link {
        Link {
            role,
            state: LinkState::Parked,
            remote: None,
            origin,
            remote_described: false,
            pending_candidates: Vec::new(),
            relay_gathered: false,
            deadline: None,
            open_channels: vec![false; self.config.channels.len() + 1],
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
            remote_tracks: vec![None; self.config.audio_tracks.len()],
            local_mids: vec![None; self.config.audio_tracks.len()],
            media_named: vec![false; self.config.audio_tracks.len()],
        }
    }

    fn create_offerer(&mut self) {
        let id = self.fresh_id();
        let link = self.new_link(Role::Offerer, LinkOrigin::Offered);
        self.links.insert(id.clone(), link);
        self.command(PeerCommand::Create {
            id,
            role: Role::Offerer,
        });
    }

    fn signal(&mut self, msg: ClientMsg) {
        self.out.push_back(SwarmOutput::Signal(msg));
    }

    fn command(&mut self, cmd: PeerCommand) {
        self.out.push_back(SwarmOutput::Command(cmd));
    }

    fn event(&mut self, ev: SwarmEvent) {
        self.out.push_back(SwarmOutput::Event(ev));
    }

    fn unexpected(&mut self, what: String) {
        debug!(%what, "unexpected signal");
        self.event(SwarmEvent::Fault(SwarmFault::UnexpectedSignal(what)));
    }

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
                let mut link = self.new_link(Role::Answerer, LinkOrigin::Answered);
                link.state = LinkState::Connecting;
                link.remote = Some(user_id);
                link.deadline = Some(now + self.config.handshake_timeout);
                self.links.insert(id.clone(), link);
                self.command(PeerCommand::Create {
                    id: id.clone(),
                    role: Role::Answerer,
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
            ServerMsg::Joined { .. } => {
                let change = self.lifecycle.joined();
                self.signaling_changed(change);
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
            ServerMsg::LeaveSwarm { id } => match self.links.get(&id).map(|l| l.state) {
                Some(LinkState::Open) => {
                    debug!(%id, "leaveSwarm for an open link: the link itself decides");
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
    fn advertise(&self, sdp: &str) -> String {
        let max = self.config.max_message_size;
        let sdp = crate::sdp::name_audio_streams(sdp, &self.config.audio_tracks);
        Extensions {
            reassembly: (max > self.config.sctp_message_size).then_some(max),
            game_channels: !self.config.channels.is_empty(),
        }
        .add_to(&sdp)
    }

    fn remote_description(&mut self, id: &ConnectionId, kind: SdpKind, sdp: String) {
        let ext = Extensions::read(&sdp);
        debug!(%id, ?kind, ?ext, "remote description");
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

    fn remote_candidate(&mut self, id: &ConnectionId, candidate: Option<IceCandidate>) {
        let max = self.config.max_pending_candidates;
        let Some(l) = self.links.get_mut(id) else {
            return;
        };
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

    /// Notes a gathered relay candidate of link `id`; at the end of its gathering (`None`),
    /// reports [`SwarmFault::RelayUnavailable`] if [`crate::relay`] says so.
    fn relay_check(&mut self, id: &ConnectionId, candidate: Option<&IceCandidate>) {
        let Some(l) = self.links.get_mut(id) else {
            return;
        };
        match candidate {
            Some(c) => l.relay_gathered |= crate::relay::is_relay_candidate(&c.candidate),
            None => {
                if let Some(fault) =
                    crate::relay::gathering_fault(&self.config, id, l.relay_gathered)
                {
                    warn!(%id, %fault, "no relay candidate");
                    self.event(SwarmEvent::Fault(fault));
                }
            }
        }
    }

    /// What a backend reports about link `id`. Events for links the swarm no longer has are
    /// ignored.
    pub fn handle_peer(&mut self, now: Instant, id: &ConnectionId, event: PeerEvent) {
        let Some(link) = self.links.get(id) else {
            return;
        };
        let remote = link.remote.clone();
        let state = link.state;
        match event {
            PeerEvent::LocalDescription { kind, sdp } => {
                let id = id.clone();
                let sdp = self.advertise(&sdp);
                self.signal(match kind {
                    SdpKind::Offer => ClientMsg::Offer { id, sdp },
                    SdpKind::Answer => ClientMsg::Answer { id, sdp },
                });
            }
            PeerEvent::LocalCandidate(candidate) => {
                self.relay_check(id, candidate.as_ref());
                self.signal(ClientMsg::Candidate {
                    id: id.clone(),
                    candidate,
                });
            }
            PeerEvent::IceState(state) => {
                self.event(SwarmEvent::Connection {
                    user_id: remote,
                    id: id.clone(),
                    state,
                });
                if state == IceState::Failed {
                    self.close_link(id, CloseReason::IceFailed, false);
                }
            }
            PeerEvent::ChannelOpen(channel) => self.channel_open(now, id, channel),
            PeerEvent::ChannelClosed(ChannelId::FAST) => {
                self.close_link(id, CloseReason::ChannelClosed, false);
            }
            PeerEvent::ChannelClosed(channel) => {
                if let Some(l) = self.links.get_mut(id)
                    && let Some(open) = l.open_channels.get_mut(usize::from(channel.0))
                {
                    *open = false;
                }
            }
            PeerEvent::Message { channel, payload } => {
                let Some(payload) = self.reassemble(id, channel, payload) else {
                    return;
                };
                if let Payload::Text(text) = &payload
                    && let Some(control) = Control::parse(text)
                {
                    match control {
                        Ok(Control::Large { size, text }) => {
                            self.start_large(id, channel, size, text);
                        }
                        Ok(control) if channel == ChannelId::FAST => {
                            self.control(now, id, control);
                        }
                        Ok(control) => {
                            debug!(%id, ?channel, ?control, "ignoring a control message on a game channel")
                        }
                        Err(e) => debug!(%id, error = %e, "ignoring a malformed control message"),
                    }
                    return;
                }
                // Data only counts once the link is claimed; an unclaimed offer has no peer.
                let Some(from) = remote else { return };
                if channel == ChannelId::FAST && state != LinkState::Open {
                    // The remote sent on `fast`, so its end is open, and so is the link: this
                    // end's own open report may still be on its way (a JS answerer sends at
                    // once). Open it now, so the application sees Open before the data and
                    // can answer at once (the backend's send waits for the local channel).
                    self.channel_open(now, id, ChannelId::FAST);
                }
                let max = self.config.max_queued_messages;
                if let Some(l) = self.links.get_mut(id)
                    && l.state != LinkState::Open
                {
                    // Another channel opened before `fast`: keep its data until the link opens.
                    if l.early.len() < max {
                        l.early.push_back((channel, payload));
                    } else {
                        let what = format!(
                            "data from {from} on {channel:?} before the link opened: {max} already wait"
                        );
                        self.event(SwarmEvent::Fault(SwarmFault::Dropped(what)));
                    }
                    return;
                }
                self.event(SwarmEvent::Data {
                    from,
                    id: id.clone(),
                    channel,
                    payload,
                });
            }
            PeerEvent::TrackMids(mids) => {
                if let Some(l) = self.links.get_mut(id) {
                    for (track, mid) in mids {
                        if let Some(slot) = l.local_mids.get_mut(usize::from(track.0)) {
                            *slot = Some(mid);
                        }
                    }
                }
                if state == LinkState::Open {
                    for (i, s) in self.local_tracks.clone().into_iter().enumerate() {
                        if s.is_some() {
                            self.name_media(id, TrackId(i as u16));
                        }
                    }
                }
            }
            PeerEvent::Audio { track, samples } => {
                // Only a claimed, open link's live track is heard: audio that overtook the
                // track's announcement, or follows its muting, is not.
                let live = self.links.get(id).is_some_and(|l| {
                    l.state == LinkState::Open
                        && l.remote_tracks.get(usize::from(track.0))
                            == Some(&Some(TrackState::Live))
                });
                if let (true, Some(from)) = (live, remote) {
                    self.event(SwarmEvent::Audio {
                        from,
                        track,
                        samples,
                    });
                }
            }
            PeerEvent::Failed(error) => {
                warn!(%id, %error, "peer connection failed");
                self.close_link(id, CloseReason::Backend(error), false);
            }
        }
    }

    /// Takes a message through reassembly: while a large message is being received on
    /// `channel`, the message is its next part (`None` until the whole message comes out);
    /// otherwise it passes as it is. Faults are reported here.
    fn reassemble(
        &mut self,
        id: &ConnectionId,
        channel: ChannelId,
        payload: Payload,
    ) -> Option<Payload> {
        let l = self.links.get_mut(id)?;
        if let Some(assembly) = l.assembly.get_mut(&channel) {
            let step = assembly.push(payload);
            if step != Step::Pending {
                l.assembly.remove(&channel);
            }
            return match step {
                Step::Pending => None,
                Step::Done(payload) => Some(payload),
                Step::Dropped(why) => {
                    let what = format!("a large message on {channel:?} of link {id}: {why}");
                    self.event(SwarmEvent::Fault(SwarmFault::Dropped(what)));
                    None
                }
            };
        }
        Some(payload)
    }

    /// A large message's header arrived on `channel`: the next messages there are its parts.
    fn start_large(&mut self, id: &ConnectionId, channel: ChannelId, size: u64, text: bool) {
        let max = self.config.max_message_size;
        if !self
            .config
            .delivery(channel)
            .is_some_and(Delivery::is_reliable)
        {
            let what = format!(
                "a large message's header on unreliable channel {channel:?} of link {id} (large messages go on reliable channels only)"
            );
            self.event(SwarmEvent::Fault(SwarmFault::Dropped(what)));
            return;
        }
        if let Some(l) = self.links.get_mut(id) {
            l.assembly.insert(channel, Reassembly::new(size, text, max));
        }
    }

    /// Sends control message `control` on link `id`'s `fast` channel.
    fn send_control(&mut self, id: &ConnectionId, control: &Control) {
        self.command(PeerCommand::Send {
            id: id.clone(),
            channel: ChannelId::FAST,
            payload: Payload::Text(control.encode()),
        });
    }

    fn control(&mut self, now: Instant, id: &ConnectionId, control: Control) {
        match control {
            Control::Close => self.close_link(id, CloseReason::Remote, false),
            Control::Ping(n) => self.send_control(id, &Control::Pong(n)),
            Control::Pong(n) => {
                let Some(l) = self.links.get_mut(id) else {
                    return;
                };
                match l.ping_sent {
                    Some((sent_n, sent)) if sent_n == n => {
                        let rtt = now.saturating_duration_since(sent);
                        l.ping_sent = None;
                        l.rtt = Some(rtt);
                        if let Some(user_id) = l.remote.clone() {
                            self.event(SwarmEvent::Rtt {
                                user_id,
                                id: id.clone(),
                                rtt,
                            });
                        }
                    }
                    _ => debug!(%id, "pong for no ping in flight"),
                }
            }
            // Started by `start_large` before controls are acted on.
            Control::Large { .. } => {}
            Control::Track { name, state } => self.track_announced(id, &name, state),
            // The JS client names the transceivers it sends on (as offerer: `midOffer`) or
            // asks for one (as answerer: `transceiverRequest`): either way it has a track of
            // that name. It never announces `track` states, so this is all it tells.
            Control::MidOffer { name, .. } | Control::TransceiverRequest { name, .. } => {
                self.media_offered(id, &name);
            }
            Control::Stream { name, tracks } => {
                debug!(%id, %name, ?tracks, "the peer's stream");
            }
            Control::Other(ty) => debug!(%id, %ty, "ignoring control message"),
        }
    }

    fn channel_open(&mut self, now: Instant, id: &ConnectionId, channel: ChannelId) {
        let Some(l) = self.links.get_mut(id) else {
            return;
        };
        if let Some(open) = l.open_channels.get_mut(usize::from(channel.0)) {
            *open = true;
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
    fn close_link(&mut self, id: &ConnectionId, reason: CloseReason, tell_remote: bool) {
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

    /// Closes links whose handshake took longer than [`SwarmConfig::handshake_timeout`], pings
    /// open links whose ping is due, asks for a token about to expire, and fails a wait for a
    /// token that has run out.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        let change = self.lifecycle.handle_timeout(now);
        self.signaling_changed(change);
        if self.closed {
            return;
        }
        let interval = self.config.ping_interval;
        let mut pings = Vec::new();
        for (id, l) in &mut self.links {
            if l.next_ping.is_some_and(|t| t <= now) {
                // Sequence numbers never repeat on a link, so a late pong cannot match a newer
                // ping; an unanswered ping is replaced and the RTT measures the newest one.
                l.ping_seq += 1;
                let n = l.ping_seq;
                l.ping_sent = Some((n, now));
                l.next_ping = Some(now + interval);
                pings.push((id.clone(), n));
            }
        }
        for (id, n) in pings {
            self.send_control(&id, &Control::Ping(n));
        }
        let expired: Vec<ConnectionId> = self
            .links
            .iter()
            .filter(|(_, l)| l.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.close_link(&id, CloseReason::HandshakeTimeout, false);
        }
    }

    /// The open link to `peer` (the newest, if there are two).
    pub fn link_to(&self, peer: &UserId) -> Option<ConnectionId> {
        self.links
            .iter()
            .filter(|(_, l)| l.state == LinkState::Open && l.remote.as_ref() == Some(peer))
            .max_by_key(|(_, l)| l.opened_at)
            .map(|(id, _)| id.clone())
    }

    /// Sends `payload` to `peer` on `channel`. A reliable channel that is not open yet keeps the
    /// message (up to [`SwarmConfig::max_queued_messages`]) and sends it when it opens; an
    /// unreliable one refuses it.
    pub fn send(
        &mut self,
        peer: &UserId,
        channel: ChannelId,
        payload: Payload,
    ) -> Result<(), SendError> {
        let delivery = self.check_send(channel, &payload)?;
        let id = self
            .link_to(peer)
            .ok_or_else(|| SendError::NoSuchPeer(peer.clone()))?;
        self.send_on(&id, channel, delivery, payload)
    }

    /// What refuses `payload` on `channel` whoever it is for; else the channel's delivery.
    fn check_send(&self, channel: ChannelId, payload: &Payload) -> Result<Delivery, SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        let delivery = self
            .config
            .delivery(channel)
            .ok_or(SendError::NoSuchChannel(channel))?;
        if let Payload::Text(t) = payload
            && t.starts_with(CONTROL_PREFIX)
        {
            return Err(SendError::ReservedPrefix);
        }
        let max = if delivery.is_reliable() {
            self.config.max_message_size
        } else {
            self.config.sctp_message_size
        };
        if payload.len() > max {
            return Err(SendError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        Ok(delivery)
    }

    /// How many data-channel messages a message of `len` bytes takes on the wire: 1, or a
    /// large message's header and parts ([`crate::large`]). The shell checks a link's send
    /// queue has room for that many.
    pub fn wire_messages(&self, len: usize) -> usize {
        large::wire_messages(len, self.config.sctp_message_size)
    }

    /// Hands `payload` to link `id`'s `channel`: as it is, or as a large message's header and
    /// parts, back to back.
    fn transmit(&mut self, id: &ConnectionId, channel: ChannelId, payload: Payload) {
        if payload.len() <= self.config.sctp_message_size {
            // The common case, without a list of one.
            self.command(PeerCommand::Send {
                id: id.clone(),
                channel,
                payload,
            });
            return;
        }
        for payload in large::split(payload, self.config.sctp_message_size) {
            self.command(PeerCommand::Send {
                id: id.clone(),
                channel,
                payload,
            });
        }
    }

    fn send_on(
        &mut self,
        id: &ConnectionId,
        channel: ChannelId,
        delivery: Delivery,
        payload: Payload,
    ) -> Result<(), SendError> {
        let max = self.config.max_queued_messages;
        let sctp = self.config.sctp_message_size;
        let Some(l) = self.links.get_mut(id) else {
            return Err(SendError::Closed);
        };
        if channel != ChannelId::FAST && !l.game_channels {
            return Err(SendError::NotTaken(channel));
        }
        // Past one data-channel message, only as large as the peer reassembles.
        let len = payload.len();
        if len > sctp && len > l.reassembles {
            let max = l.reassembles.min(self.config.max_message_size).max(sctp);
            return Err(SendError::TooLarge { len, max });
        }
        if l.open_channels.get(usize::from(channel.0)) == Some(&true) {
            self.transmit(id, channel, payload);
            return Ok(());
        }
        let queue = l.queued.entry(channel).or_default();
        let waiting: usize = queue
            .iter()
            .map(|p| large::wire_messages(p.len(), sctp))
            .sum();
        if delivery.is_reliable() && waiting + large::wire_messages(len, sctp) <= max {
            queue.push_back(payload);
            Ok(())
        } else {
            Err(SendError::NotOpen(channel))
        }
    }

    /// Sends `payload` to every peer with an open link on `channel` (see
    /// [`SwarmCore::broadcast_where`]).
    pub fn broadcast(&mut self, channel: ChannelId, payload: Payload) -> Result<Fanout, SendError> {
        self.broadcast_where(channel, payload, |_| true)
    }

    /// The one broadcast fan-out: sends `payload` to every peer with an open link on
    /// `channel`, except those whose link `has_room` refuses (the shell's check of the
    /// backend's send queue), which are listed as refused with [`SendError::Full`]. A peer
    /// whose unreliable channel is not open yet is skipped (game state is sent again next
    /// tick), and so is a peer that takes no game channels (a JS peer) on a game channel. Errors that concern the message itself (closed swarm, unknown channel, reserved
    /// prefix) are returned before anything is sent.
    pub fn broadcast_where(
        &mut self,
        channel: ChannelId,
        payload: Payload,
        mut has_room: impl FnMut(&ConnectionId) -> bool,
    ) -> Result<Fanout, SendError> {
        let delivery = self.check_send(channel, &payload)?;
        let mut fanout = Fanout::default();
        for peer in self.peers() {
            if !has_room(&peer.id) {
                fanout.refused.push((peer.user_id, SendError::Full));
                continue;
            }
            match self.send_on(&peer.id, channel, delivery, payload.clone()) {
                Ok(()) => fanout.sent.push(peer.user_id),
                Err(SendError::NotOpen(_) | SendError::NotTaken(_)) => {}
                Err(e) => fanout.refused.push((peer.user_id, e)),
            }
        }
        Ok(fanout)
    }

    /// Starts sending on declared audio track `track` ([`crate::media`]): live on every open
    /// link and every future one, announced to the peers. Adding a track already added
    /// unmutes it.
    pub fn add_track(&mut self, track: TrackId) -> Result<(), TrackError> {
        self.set_track(track, Some(TrackState::Live), false)
    }

    /// Mutes (`muted`) or unmutes an added track: while muted,
    /// [`SwarmCore::send_audio`] sends nothing, and the peers are told.
    pub fn mute_track(&mut self, track: TrackId, muted: bool) -> Result<(), TrackError> {
        let state = if muted {
            TrackState::Muted
        } else {
            TrackState::Live
        };
        self.set_track(track, Some(state), true)
    }

    /// Stops sending on an added track for good (until it is added again); the peers are told.
    pub fn remove_track(&mut self, track: TrackId) -> Result<(), TrackError> {
        self.set_track(track, None, true)
    }

    /// The state of this member's track `track` (`None`: not added, or not declared).
    pub fn local_track(&self, track: TrackId) -> Option<TrackState> {
        self.local_tracks
            .get(usize::from(track.0))
            .copied()
            .flatten()
    }

    /// The state of `peer`'s track `track` as it announced it, over its open link.
    pub fn remote_track(&self, peer: &UserId, track: TrackId) -> Option<TrackState> {
        let id = self.link_to(peer)?;
        let l = self.links.get(&id)?;
        l.remote_tracks.get(usize::from(track.0)).copied().flatten()
    }

    /// Sends one encoded audio packet (20 ms of Opus) on track `track` to every open link.
    /// Returns how many links it was handed to: 0 while the track is muted.
    pub fn send_audio(&mut self, track: TrackId, packet: Vec<u8>) -> Result<usize, TrackError> {
        if self.closed {
            return Err(TrackError::Closed);
        }
        if packet.len() > MAX_AUDIO_PACKET {
            return Err(TrackError::PacketTooLarge(packet.len()));
        }
        match self.local_tracks.get(usize::from(track.0)) {
            None => return Err(TrackError::NoSuchTrack(track)),
            Some(None) => return Err(TrackError::NotAdded(track)),
            Some(Some(TrackState::Muted)) => return Ok(0),
            Some(Some(TrackState::Live)) => {}
        }
        let open = self.open_links();
        let n = open.len();
        for id in open {
            self.command(PeerCommand::SendAudio {
                id,
                track,
                packet: packet.clone(),
            });
        }
        Ok(n)
    }

    /// Sets this member's track `track` to `state` and announces a change to every open link.
    /// `must_be_added`: refuse a track that is not added.
    fn set_track(
        &mut self,
        track: TrackId,
        state: Option<TrackState>,
        must_be_added: bool,
    ) -> Result<(), TrackError> {
        if self.closed {
            return Err(TrackError::Closed);
        }
        let Some(slot) = self.local_tracks.get_mut(usize::from(track.0)) else {
            return Err(TrackError::NoSuchTrack(track));
        };
        if must_be_added && slot.is_none() {
            return Err(TrackError::NotAdded(track));
        }
        if *slot == state {
            return Ok(());
        }
        *slot = state;
        for id in self.open_links() {
            self.announce_track(&id, track, state);
        }
        Ok(())
    }

    /// The ids of the open links (each is claimed: it has a remote).
    fn open_links(&self) -> Vec<ConnectionId> {
        self.links
            .iter()
            .filter(|(_, l)| l.state == LinkState::Open)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Tells link `id`'s remote the state of this member's track `track`.
    fn announce_track(&mut self, id: &ConnectionId, track: TrackId, state: Option<TrackState>) {
        let Some(name) = self.config.track_name(track) else {
            return;
        };
        let control = Control::Track {
            name: name.to_owned(),
            state: TrackAnnounce::of(state),
        };
        self.send_control(id, &control);
        if state.is_some() {
            self.name_media(id, track);
        }
    }

    /// Names track `track`'s transceiver to link `id`'s remote the JS client's way, once its
    /// mid is known: `stream` (a stream of the track's name made of that one track), then
    /// `midOffer`. Without them a JS client peer cannot tell which stream the media section
    /// belongs to. Sent after the `track` announcement, so a peer of this crate has the
    /// track's state before it reads them (it takes them as "live" only for a track it knows
    /// nothing of).
    fn name_media(&mut self, id: &ConnectionId, track: TrackId) {
        let Some(name) = self.config.track_name(track).map(str::to_owned) else {
            return;
        };
        let Some(l) = self.links.get_mut(id) else {
            return;
        };
        let slot = usize::from(track.0);
        let Some(Some(mid)) = l.local_mids.get(slot).cloned() else {
            return;
        };
        match l.media_named.get_mut(slot) {
            Some(named) if !*named => *named = true,
            _ => return,
        }
        for control in [
            Control::Stream {
                name: name.clone(),
                tracks: vec![name.clone()],
            },
            Control::MidOffer { mid, name },
        ] {
            self.send_control(id, &control);
        }
    }

    /// Link `id`'s remote (the JS client) named a transceiver `name` it sends on: a declared
    /// track this link knows nothing of becomes live.
    fn media_offered(&mut self, id: &ConnectionId, name: &str) {
        let known = self.config.track_by_name(name).and_then(|track| {
            let l = self.links.get(id)?;
            l.remote_tracks.get(usize::from(track.0)).copied()
        });
        if known == Some(None) {
            self.track_announced(id, name, TrackAnnounce::Live);
        } else {
            debug!(%id, %name, "a media naming for a track already known, or not declared");
        }
    }

    /// Link `id`'s remote announced its track `name`: updates what the link knows and tells
    /// the application what changed.
    fn track_announced(&mut self, id: &ConnectionId, name: &str, announce: TrackAnnounce) {
        let Some(track) = self.config.track_by_name(name) else {
            debug!(%id, %name, "ignoring an announcement of an audio track this swarm does not declare");
            return;
        };
        let Some(l) = self.links.get_mut(id) else {
            return;
        };
        let Some(peer) = l.remote.clone() else {
            return;
        };
        let Some(slot) = l.remote_tracks.get_mut(usize::from(track.0)) else {
            return;
        };
        let (before, after) = (*slot, announce.state());
        *slot = after;
        match (before, after) {
            (None, Some(state)) => {
                self.event(SwarmEvent::TrackAdded {
                    peer: peer.clone(),
                    track,
                });
                if state == TrackState::Muted {
                    self.event(SwarmEvent::TrackMuted {
                        peer,
                        track,
                        muted: true,
                    });
                }
            }
            (Some(b), Some(a)) if b != a => self.event(SwarmEvent::TrackMuted {
                peer,
                track,
                muted: a == TrackState::Muted,
            }),
            (Some(_), None) => self.event(SwarmEvent::TrackRemoved { peer, track }),
            _ => {}
        }
    }

    /// Closes every link to `peer`, telling it. Returns whether there was one.
    pub fn close_peer(&mut self, peer: &UserId) -> bool {
        let ids: Vec<ConnectionId> = self
            .links
            .iter()
            .filter(|(_, l)| l.remote.as_ref() == Some(peer))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            self.close_link(id, CloseReason::Local, true);
        }
        !ids.is_empty()
    }

    /// Leaves the room: tells the server (`close`), tells every peer, closes every connection.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        if let Some(state) = self.lifecycle.fail(crate::lifecycle::FailReason::Closed) {
            self.event(SwarmEvent::Signaling(state));
        }
        if self.started {
            self.signal(ClientMsg::Close);
        }
        let ids: Vec<ConnectionId> = self.links.keys().cloned().collect();
        for id in &ids {
            self.close_link(id, CloseReason::Local, true);
        }
        self.closed = true;
    }
}
