//! Error codes carried by `signal_error` and decode failures.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The stable, machine-readable `code` of a `signal_error` frame.
///
/// The strings are part of the protocol: they never change meaning. A server may add codes; a
/// client decodes codes it does not know as [`ErrorCode::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not JSON, not an object, or a field missing or of the wrong type.
    Malformed,
    /// A `type` that is not part of the protocol.
    UnknownType,
    /// A `type` that only the server may send (`accept`, `offerAccepted`, `offerRequest`,
    /// `leaveSwarm`, `signal_error`).
    ForbiddenType,
    /// A field is empty or longer than the server allows (ids, room ids).
    InvalidField,
    /// The frame is larger than the server's frame limit; it was not read.
    FrameTooLarge,
    /// The socket sends frames faster than the server's rate limit; frames are dropped until the
    /// rate falls (this error is sent once per burst).
    RateLimited,
    /// `init` on a socket that is already in a room (send `close` first).
    AlreadyJoined,
    /// The token does not grant the room in `init`.
    RoomNotAllowed,
    /// The room has as many members as the server allows.
    RoomFull,
    /// `answer` or `candidate` for a connection id that is not a link or pending offer of the
    /// sender's (unknown, in another room, or between two other members).
    UnknownLink,
    /// `offer` with a new connection id that another member already uses.
    IdInUse,
    /// `offer` while the sender already has as many unclaimed offers as the server keeps.
    TooManyOffers,
    /// A bounded buffer is full: frames kept before `init`, candidates kept before their offer,
    /// or signals in one pending offer.
    QueueFull,
    /// Another session joined the room with this identity; this socket is closed.
    DuplicateIdentity,
    /// A joiner waited longer than the server allows for an offer of this member's (it was
    /// asked with `offerRequest`): the pair is linked the other way, with the joiner's offer.
    /// The late offer, if it comes, is kept as a pre-made one.
    OfferOverdue,
    /// A code this crate does not know (from a newer server), or none at all.
    #[default]
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// Every code a server of this version sends, for documentation and metrics.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::Malformed,
        ErrorCode::UnknownType,
        ErrorCode::ForbiddenType,
        ErrorCode::InvalidField,
        ErrorCode::FrameTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::AlreadyJoined,
        ErrorCode::RoomNotAllowed,
        ErrorCode::RoomFull,
        ErrorCode::UnknownLink,
        ErrorCode::IdInUse,
        ErrorCode::TooManyOffers,
        ErrorCode::QueueFull,
        ErrorCode::DuplicateIdentity,
        ErrorCode::OfferOverdue,
    ];

    /// The wire string of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::ForbiddenType => "forbidden_type",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::RoomNotAllowed => "room_not_allowed",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::UnknownLink => "unknown_link",
            ErrorCode::IdInUse => "id_in_use",
            ErrorCode::TooManyOffers => "too_many_offers",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::DuplicateIdentity => "duplicate_identity",
            ErrorCode::OfferOverdue => "offer_overdue",
            ErrorCode::Other => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON, not an object, or a field missing or of the wrong type.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A `type` that is not part of the protocol (the type, truncated).
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    /// A `type` that belongs to the other direction (the type).
    #[error("frame type {0:?} cannot be sent in this direction")]
    WrongDirection(String),
}

impl DecodeError {
    /// The `signal_error` code a server answers this error with.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::Malformed(_) => ErrorCode::Malformed,
            DecodeError::UnknownType(_) => ErrorCode::UnknownType,
            DecodeError::WrongDirection(_) => ErrorCode::ForbiddenType,
        }
    }
}
