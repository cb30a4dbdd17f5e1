//! The frames.

use crate::error::ErrorCode;
use crate::ice::IceServer;
use crate::ids::{ConnectionId, RoomId, UserId};
use crate::resume::ResumeToken;
use serde::{Deserialize, Serialize};

/// Prefix of control messages on the `fast` data channel (`@fast/` + JSON, e.g.
/// `@fast/{"type":"close"}`). Such messages are never application data.
pub const CONTROL_PREFIX: &str = "@fast/";

/// An ICE candidate as browsers serialize `RTCIceCandidate` (`toJSON()`), i.e. an
/// `RTCIceCandidateInit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// The `candidate:` attribute line.
    pub candidate: String,
    /// The media stream identification tag, if known.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// The index of the m-line, if known.
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_m_line_index: Option<u16>,
    /// The ICE ufrag this candidate belongs to, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// A frame from a member to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ClientMsg {
    /// Join `room_id`. Sent once after the socket opens (the JS client may send it after its
    /// first `offer`/`candidate` frames). `user_id` is informational: this project's server takes
    /// the identity from the token.
    Init {
        /// The identity the client claims (ignored by an authenticating server).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<UserId>,
        /// The room to join; a number is accepted and kept as text.
        room_id: RoomId,
        /// This project's extension (the JS client never sends it): ask for a resumable
        /// session ([`ResumeToken::request`], `""`), or take back the session of this token
        /// whose socket died. Absent: a plain join, as the reference protocol's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<ResumeToken>,
    },
    /// A new pre-made offer (unknown `id`) or a renegotiation offer on a live link (known `id`).
    Offer {
        /// Connection id of the offering peer.
        id: ConnectionId,
        /// The SDP.
        sdp: String,
    },
    /// This project's extension (the JS client never sends it): a fresh offer, with a new
    /// `id`, for member `to` of the room itself, to retry a link to it whose handshake failed.
    /// The server pairs it at once (`offerAccepted` back, `accept` to `to`) instead of parking
    /// it; candidates follow as `candidate` frames of `id`, like any link's.
    Retry {
        /// The new link's connection id (unused in the room).
        id: ConnectionId,
        /// The member the offer is for.
        to: UserId,
        /// The SDP.
        sdp: String,
    },
    /// A trickled ICE candidate for link or offer `id`; `None` means end of candidates.
    Candidate {
        /// Connection id.
        id: ConnectionId,
        /// The candidate, or `null` for end of candidates.
        #[serde(default)]
        candidate: Option<IceCandidate>,
    },
    /// The answer to the offer of link `id`.
    Answer {
        /// Connection id.
        id: ConnectionId,
        /// The SDP.
        sdp: String,
    },
    /// Leave the room (the socket may stay open and `init` again).
    Close,
}

/// One buffered signal inside an `accept` chunk, applied by the joiner in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Signal {
    /// The pre-made offer.
    Offer {
        /// The SDP.
        sdp: String,
    },
    /// A candidate of the offer, or `null` for end of candidates.
    Candidate {
        /// The candidate.
        #[serde(default)]
        candidate: Option<IceCandidate>,
    },
}

/// A frame from the server to a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServerMsg {
    /// To a joiner: one buffered chunk of a member. Create the answering peer for `id` and apply
    /// `signals` in order.
    Accept {
        /// Connection id of the chunk.
        id: ConnectionId,
        /// The OFFERER's identity.
        user_id: UserId,
        /// The offer and its candidates, in arrival order.
        signals: Vec<Signal>,
    },
    /// To a chunk's owner: pending offer `id` now belongs to `user_id` (the joiner).
    OfferAccepted {
        /// Connection id.
        id: ConnectionId,
        /// The JOINER's identity.
        user_id: UserId,
    },
    /// Create one new pre-made offer.
    OfferRequest,
    /// The server accepted the `init`: this socket is a member of the room, under `user_id`
    /// (the token's identity). Sent before any `accept` of the join. This project's
    /// extension: the JavaScript reference client ignores frame types it does not know.
    Joined {
        /// This member's identity in the room.
        user_id: UserId,
        /// The STUN and TURN servers this member may use, TURN credentials minted for it
        /// (`iceServers`, in `RTCIceServer` shape). Absent when the server hands out none: a
        /// client then uses its own configuration.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ice_servers: Option<Vec<IceServer>>,
        /// This project's extension: the token that resumes this session from a new socket
        /// if this one dies, for a member whose `init` asked for one and while the server
        /// allows resumption. A new token comes with every `joined`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_token: Option<ResumeToken>,
        /// This project's extension: `true` when the `init` resumed a held session (the same
        /// member, its links and pending offers kept; frames the server kept for it follow).
        /// Absent otherwise.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
    },
    /// An operator removed member `user_id` from the room (the server's admin API), for
    /// `reason`. Sent to the kicked member itself, then to every other member of the room,
    /// whose links to it also get `leaveSwarm`; the kicked member's socket is then closed (code
    /// 4001) and its token is refused until it expires. This project's extension, ignored by
    /// the JavaScript reference client.
    Kicked {
        /// The member removed.
        user_id: UserId,
        /// The operator's reason, as given.
        reason: String,
    },
    /// Fresh ICE servers for this member, replacing those of its `joined` (or of the previous
    /// `iceServers`): the server sends them before the TURN credentials it minted expire.
    /// Connections made earlier keep what they have. This project's extension, ignored by the
    /// JavaScript reference client.
    IceServers {
        /// The servers, TURN credentials freshly minted.
        ice_servers: Vec<IceServer>,
    },
    /// Relayed from the other end of live link `id` (renegotiation).
    Offer {
        /// Connection id.
        id: ConnectionId,
        /// The SDP.
        sdp: String,
    },
    /// Relayed from the other end of link `id`.
    Answer {
        /// Connection id.
        id: ConnectionId,
        /// The SDP.
        sdp: String,
    },
    /// Relayed from the other end of link `id`.
    Candidate {
        /// Connection id.
        id: ConnectionId,
        /// The candidate, or `null` for end of candidates.
        #[serde(default)]
        candidate: Option<IceCandidate>,
    },
    /// The other end of link `id` left the room.
    LeaveSwarm {
        /// Connection id.
        id: ConnectionId,
    },
    /// The server refused a frame. The socket stays usable unless `code` is
    /// [`ErrorCode::DuplicateIdentity`].
    #[serde(rename = "signal_error")]
    SignalError {
        /// Stable machine-readable code.
        #[serde(default)]
        code: ErrorCode,
        /// Human-readable explanation.
        message: String,
    },
}

impl ServerMsg {
    /// A `signal_error` frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMsg::SignalError {
            code,
            message: message.into(),
        }
    }
}
