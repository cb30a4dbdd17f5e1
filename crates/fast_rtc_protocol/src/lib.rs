//! Wire types of the fast-rtc signaling protocol.
//!
//! This crate contains no networking code: only the frames that travel between a swarm member and
//! the signaling server, as JSON text frames over one WebSocket per member, and the functions that
//! turn them into text and back. Field names and shapes are byte-compatible with the JavaScript
//! reference client `@mattkrick/fast-rtc-swarm@0.4.1` (camelCase fields, a `type` tag, `candidate`
//! may be `null`, `roomId` a string or a number).
//!
//! - [`ClientMsg`]: what a member sends (`init`, `offer`, `candidate`, `answer`, `close`).
//! - [`ServerMsg`]: what the server sends (`accept`, `offerAccepted`, `offerRequest`, `joined`,
//!   `iceServers`, relayed `offer`/`answer`/`candidate`, `leaveSwarm`, `signal_error`).
//! - [`IceServer`]: a STUN or TURN server as the server hands it out (`RTCIceServer`'s shape).
//! - [`decode_client`] / [`decode_server`] parse one frame; a frame that is not valid becomes a
//!   [`DecodeError`] that says which [`ErrorCode`] the server answers with. Decoding never panics.
//!
//! ```
//! use fast_rtc_protocol::{decode_client, encode, ClientMsg};
//!
//! let msg = decode_client(r#"{"type":"init","userId":"x1","roomId":42}"#).unwrap();
//! match &msg {
//!     ClientMsg::Init { room_id, .. } => assert_eq!(room_id.as_str(), "42"),
//!     _ => unreachable!(),
//! }
//! assert_eq!(encode(&msg), r#"{"type":"init","userId":"x1","roomId":"42"}"#);
//! ```

#![forbid(unsafe_code)]

mod error;
mod ice;
mod ids;
mod msg;
mod resume;

pub use error::{DecodeError, ErrorCode};
pub use ice::IceServer;
pub use ids::{ConnectionId, RoomId, UserId};
pub use msg::{CONTROL_PREFIX, ClientMsg, IceCandidate, ServerMsg, Signal};
pub use resume::ResumeToken;

use serde::Deserialize;

/// The `type` values a client may send.
pub const CLIENT_TYPES: &[&str] = &["init", "offer", "retry", "candidate", "answer", "close"];
/// The `type` values only the server sends.
pub const SERVER_ONLY_TYPES: &[&str] = &[
    "accept",
    "offerAccepted",
    "offerRequest",
    "joined",
    "iceServers",
    "leaveSwarm",
    "signal_error",
];

/// Parses one client → server frame.
///
/// Errors say why the frame was refused: not JSON or missing/ill-typed fields
/// ([`DecodeError::Malformed`]), a `type` nobody knows ([`DecodeError::UnknownType`]), or a
/// `type` that only the server may send ([`DecodeError::WrongDirection`]).
pub fn decode_client(text: &str) -> Result<ClientMsg, DecodeError> {
    serde_json::from_str(text).map_err(|e| classify(text, e, CLIENT_TYPES))
}

/// Parses one server → client frame.
///
/// The mirror of [`decode_client`]: a client-only type (`init`, `close`) is
/// [`DecodeError::WrongDirection`].
pub fn decode_server(text: &str) -> Result<ServerMsg, DecodeError> {
    const SERVER_TYPES: &[&str] = &[
        "accept",
        "offerAccepted",
        "offerRequest",
        "joined",
        "iceServers",
        "leaveSwarm",
        "signal_error",
        "offer",
        "answer",
        "candidate",
    ];
    serde_json::from_str(text).map_err(|e| classify(text, e, SERVER_TYPES))
}

/// Serializes a frame to its JSON text.
///
/// The frame types of this crate always serialize (string keys, no non-finite floats), so this
/// cannot fail.
pub fn encode<T: serde::Serialize>(msg: &T) -> String {
    // serde_json only fails on maps with non-string keys or on a Serialize impl that errors;
    // neither exists in this crate's types. An empty string would be refused by any peer.
    serde_json::to_string(msg).unwrap_or_default()
}

/// Works out why `text` did not parse as a frame whose valid types are `expected`.
fn classify(text: &str, err: serde_json::Error, expected: &[&str]) -> DecodeError {
    #[derive(Deserialize)]
    struct Tag<'a> {
        #[serde(rename = "type", borrow)]
        ty: Option<std::borrow::Cow<'a, str>>,
    }
    match serde_json::from_str::<Tag<'_>>(text) {
        Ok(Tag { ty: Some(ty) }) if !expected.contains(&ty.as_ref()) => {
            let known =
                CLIENT_TYPES.contains(&ty.as_ref()) || SERVER_ONLY_TYPES.contains(&ty.as_ref());
            let ty = truncate(&ty, 64);
            if known {
                DecodeError::WrongDirection(ty)
            } else {
                DecodeError::UnknownType(ty)
            }
        }
        _ => DecodeError::Malformed(err.to_string()),
    }
}

/// Truncates `s` to at most `max` bytes on a char boundary, for echoing input in errors.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
