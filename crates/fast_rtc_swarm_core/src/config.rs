//! Swarm configuration, shared by every backend.

use crate::lifecycle::{ReconnectPolicy, TokenPolicy};
use crate::media::TrackId;
pub use fast_rtc_protocol::IceServer;
use fast_rtc_protocol::RoomId;
use std::time::Duration;

/// The label of the reliable, ordered, in-band channel every fast-rtc peer opens (the JS
/// reference client's only channel). Its [`ChannelId`] is [`ChannelId::FAST`].
pub const FAST_LABEL: &str = "fast";

/// Index of a data channel of a link: `0` is the `fast` channel, `1..` are the game channels of
/// [`SwarmConfig::channels`] in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u16);

impl ChannelId {
    /// The reliable, ordered `fast` channel (JS-compatible).
    pub const FAST: ChannelId = ChannelId(0);
}

/// Delivery guarantees of a game channel.
///
/// Every backend maps each mode onto its data channels (the shell's webrtc-rs and web-sys
/// peers match on it), so the list is exhaustive on purpose: a new mode is a breaking change
/// that every backend must handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Reliable and ordered (like `fast`).
    Reliable,
    /// Unordered, no retransmission: the latest game state wins, old states are not resent.
    Unreliable,
    /// Unordered, at most this many retransmissions per message.
    MaxRetransmits(u16),
    /// Unordered, retransmitted for at most this many milliseconds.
    MaxPacketLifeTime(u16),
    /// Ordered, no retransmission: a lost message is skipped, and nothing arrives out of
    /// order (`ordered` with `maxRetransmits` 0).
    UnreliableOrdered,
}

impl Delivery {
    /// Whether messages on this channel are guaranteed to arrive.
    pub fn is_reliable(self) -> bool {
        matches!(self, Delivery::Reliable)
    }
}

/// A game channel, opened by the offering side of a link next to `fast` once the answer says
/// the remote takes game channels.
///
/// Game channels are an extension of this project: they are opened only to peers that say they
/// take them ([`crate::sdp`]), never to a JavaScript fast-rtc peer, so between a JS peer and a
/// Rust peer only [`ChannelId::FAST`] carries data. Every member of a room must configure the
/// same channels in the same order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// The label (must differ from `fast` and from the other channels').
    pub label: String,
    /// Delivery guarantees.
    pub delivery: Delivery,
}

impl ChannelConfig {
    /// A reliable, ordered channel.
    pub fn reliable(label: impl Into<String>) -> Self {
        ChannelConfig {
            label: label.into(),
            delivery: Delivery::Reliable,
        }
    }
    /// An unreliable, unordered channel (no retransmissions), for game state.
    pub fn unreliable(label: impl Into<String>) -> Self {
        ChannelConfig {
            label: label.into(),
            delivery: Delivery::Unreliable,
        }
    }
}

/// Which ICE candidates may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IceTransportPolicy {
    /// Host, server-reflexive and relay candidates.
    #[default]
    All,
    /// Only TURN relay candidates (hides members' addresses from each other).
    Relay,
}

/// How a swarm behaves. Backend-specific settings (bind addresses, ICE pacing) live in the
/// backend's own config.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// The room to join.
    pub room_id: RoomId,
    /// Pre-made offers kept parked on the server (fast-rtc's `peerBuffer`, default 1). Must be
    /// below the server's `max_chunks_per_member` (default 8).
    pub peer_buffer: usize,
    /// The application's own STUN/TURN servers. They take precedence: when this list is not
    /// empty, the swarm uses exactly it and ignores the servers the signaling server hands
    /// out. When it is empty (the default), the swarm uses the signaling server's (its
    /// `joined` frame's `iceServers`, refreshed by `iceServers` frames before their TURN
    /// credentials expire), and with none from there either, host candidates only (LAN,
    /// loopback). See [`crate::ice`].
    pub ice_servers: Vec<IceServer>,
    /// Which candidates may be used.
    pub ice_transport_policy: IceTransportPolicy,
    /// Game channels opened next to `fast`.
    pub channels: Vec<ChannelConfig>,
    /// The names of the audio tracks every link negotiates from its first offer (see
    /// [`crate::media`]). Every member of a room must declare the same tracks in the same
    /// order. Empty (the default): no media in the descriptions at all.
    pub audio_tracks: Vec<String>,
    /// How long a link may take from being claimed (an `accept` or `offerAccepted`) to its
    /// `fast` channel being open before it is closed and reported as timed out.
    pub handshake_timeout: Duration,
    /// Candidates kept per link until its remote description is set.
    pub max_pending_candidates: usize,
    /// Remote ICE candidates a link takes per remote description, in the description and
    /// trickled together ([`crate::candidates`]); past it they are refused with one
    /// [`SwarmFault::CandidateRefused`](crate::swarm::SwarmFault::CandidateRefused).
    pub max_remote_candidates: usize,
    /// Remote ICE candidates a link takes at any one address (IP or name), so that a peer
    /// cannot point this member's connectivity checks at a third party's many ports.
    pub max_candidates_per_address: usize,
    /// Messages kept per reliable channel while it is not yet open, counted as data-channel
    /// messages (a large message counts as its header and parts); sends to an unreliable
    /// channel that is not open are refused.
    pub max_queued_messages: usize,
    /// How often each open link is pinged to measure its round-trip time
    /// (`@fast/{"type":"ping"}` on `fast`, answered by Rust peers; JS peers ignore it, so their
    /// RTT stays unknown). Zero turns pings off.
    pub ping_interval: Duration,
    /// The largest message `send` accepts on a reliable channel, in bytes, and the largest this
    /// member reassembles (advertised to its peers). Messages over
    /// [`SwarmConfig::sctp_message_size`] are split into parts and reassembled by the receiver
    /// ([`crate::large`]); a peer that does not reassemble (the JavaScript reference client)
    /// only takes messages up to `sctp_message_size`. Larger sends are refused with
    /// [`SendError::TooLarge`](crate::SendError::TooLarge), never dropped silently. Default
    /// 16 MiB. Keep it at most `fast_rtc_swarm::MAX_QUEUED_SENDS` ×
    /// `sctp_message_size` (256 MiB by default): a message must fit in a link's send queue.
    pub max_message_size: usize,
    /// The largest message one data-channel message carries, in bytes: the part size of large
    /// messages, and the limit on unreliable channels (they are never split: a lost part would
    /// lose the message). The default, 65,536, is RFC 8841's default SCTP message size, which
    /// every WebRTC stack takes (webrtc-rs advertises exactly that; browsers more).
    pub sctp_message_size: usize,
    /// How the built-in signaling client retries, and when it gives up
    /// ([`FailReason::Unreachable`](crate::FailReason::Unreachable)).
    pub reconnect: ReconnectPolicy,
    /// The built-in signaling client treats a socket that received nothing (no frame, no
    /// WebSocket ping) for this long as lost, and reconnects: a half-open TCP connection is
    /// otherwise only noticed when a send fails. Default 35 s: two of the server's 15 s ping
    /// intervals and a margin. `None` turns it off. Native only: a browser hides WebSocket
    /// pings from the page, so there it is never applied.
    pub signaling_silence_timeout: Option<Duration>,
    /// The built-in signaling client pings the server this often (a WebSocket ping), so a
    /// socket whose path died (a NAT renumbered, Wi-Fi to cable: the server answers the ping
    /// with a reset) is noticed within about this long even when this member has nothing to
    /// send, and its session resumed while its links can still be restored. Default 5 s.
    /// `None` turns it off. Native only: a browser cannot send WebSocket pings.
    pub signaling_ping_interval: Option<Duration>,
    /// Ask the signaling server for a resumable session, and resume it after the signaling
    /// socket was lost ([`crate::swarm#resuming-the-signaling-session`]). Default on; a server
    /// that does not offer it (the reference server, a cluster) is joined as before.
    pub resume_session: bool,
    /// When the built-in signaling client asks the application for a fresh token: ahead of
    /// the token's expiry, and after the server refused it
    /// ([`crate::lifecycle#tokens`]).
    pub token: TokenPolicy,
    /// How long an open link whose path was lost (ICE `disconnected` or `failed`) may take
    /// to come back through ICE restarts before it closes with
    /// [`CloseReason::RestoreTimeout`](crate::CloseReason::RestoreTimeout)
    /// ([`crate::swarm#ice-restarts`]). Default 20 s, at most 24 h (so is
    /// [`SwarmConfig::restart_interval`]). Zero turns restarts off: a link then
    /// closes when ICE fails, as it always does with a peer that does not take restarts
    /// (the JavaScript reference client).
    pub restore_timeout: Duration,
    /// How many times a link whose handshake failed before opening is retried by its offerer
    /// with a fresh connection ([`crate::swarm#handshake-retries`]). Default 3; zero turns
    /// retries off.
    pub handshake_retries: u32,
    /// The wait before the first retry of a failed handshake; each further retry waits twice
    /// as long (at most 60 s). Default 250 ms.
    pub retry_backoff: Duration,
    /// While a link is interrupted, how long its offerer waits for the answer to one ICE
    /// restart and its checks before it restarts again (the first restart goes at once).
    /// Default 2 s.
    pub restart_interval: Duration,
}

/// The default [`SwarmConfig::max_message_size`]: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;

/// RFC 8841's default SCTP maximum message size, what every WebRTC peer accepts: the default
/// [`SwarmConfig::sctp_message_size`].
pub const DEFAULT_SCTP_MESSAGE_SIZE: usize = 65_536;

impl SwarmConfig {
    /// The defaults for `room_id`: `peer_buffer` 1, no ICE servers, no game channels, a 10 s
    /// handshake timeout, messages up to 16 MiB on reliable channels and 64 KiB on unreliable
    /// ones.
    pub fn new(room_id: impl Into<RoomId>) -> Self {
        SwarmConfig {
            room_id: room_id.into(),
            peer_buffer: 1,
            ice_servers: Vec::new(),
            ice_transport_policy: IceTransportPolicy::All,
            channels: Vec::new(),
            audio_tracks: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            max_pending_candidates: 64,
            max_remote_candidates: 64,
            max_candidates_per_address: 8,
            max_queued_messages: 1024,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            sctp_message_size: DEFAULT_SCTP_MESSAGE_SIZE,
            ping_interval: Duration::from_secs(1),
            reconnect: ReconnectPolicy::default(),
            signaling_silence_timeout: Some(Duration::from_secs(35)),
            signaling_ping_interval: Some(Duration::from_secs(5)),
            resume_session: true,
            token: TokenPolicy::default(),
            restore_timeout: Duration::from_secs(20),
            handshake_retries: 3,
            retry_backoff: Duration::from_millis(250),
            restart_interval: Duration::from_secs(2),
        }
    }

    /// Adds a game channel; returns its id.
    pub fn add_channel(&mut self, channel: ChannelConfig) -> ChannelId {
        self.channels.push(channel);
        ChannelId(u16::try_from(self.channels.len()).unwrap_or(u16::MAX))
    }

    /// Declares an audio track named `name` (see [`crate::media`]); returns its id.
    pub fn add_audio_track(&mut self, name: impl Into<String>) -> TrackId {
        self.audio_tracks.push(name.into());
        TrackId(u16::try_from(self.audio_tracks.len() - 1).unwrap_or(u16::MAX))
    }

    /// The id of the audio track named `name`, if declared.
    pub fn track_by_name(&self, name: &str) -> Option<TrackId> {
        let i = self.audio_tracks.iter().position(|t| t == name)?;
        u16::try_from(i).ok().map(TrackId)
    }

    /// The name of audio track `track`, if declared.
    pub fn track_name(&self, track: TrackId) -> Option<&str> {
        self.audio_tracks
            .get(usize::from(track.0))
            .map(String::as_str)
    }

    /// The channel's delivery, or `None` if no such channel is configured.
    pub fn delivery(&self, channel: ChannelId) -> Option<Delivery> {
        match channel.0 {
            0 => Some(Delivery::Reliable),
            n => self.channels.get(usize::from(n) - 1).map(|c| c.delivery),
        }
    }

    /// The id of the channel labelled `label`, if configured (`fast` included).
    pub fn channel_by_label(&self, label: &str) -> Option<ChannelId> {
        if label == FAST_LABEL {
            return Some(ChannelId::FAST);
        }
        let i = self.channels.iter().position(|c| c.label == label)?;
        u16::try_from(i + 1).ok().map(ChannelId)
    }

    /// Every channel: `fast` first, then the game channels, with their labels and delivery.
    pub fn all_channels(&self) -> impl Iterator<Item = (ChannelId, &str, Delivery)> {
        std::iter::once((ChannelId::FAST, FAST_LABEL, Delivery::Reliable)).chain(
            self.channels.iter().enumerate().map(|(i, c)| {
                (
                    ChannelId(u16::try_from(i + 1).unwrap_or(u16::MAX)),
                    c.label.as_str(),
                    c.delivery,
                )
            }),
        )
    }
}

impl From<&str> for SwarmConfig {
    fn from(room: &str) -> Self {
        SwarmConfig::new(room)
    }
}
