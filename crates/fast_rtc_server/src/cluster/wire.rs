//! What instances say to each other over Redis, and the Redis key and channel names.
//!
//! Every message is one JSON [`Envelope`] published on the receiving instance's channel
//! ([`instance_channel`]). Redis delivers the messages one connection publishes to one channel in
//! the order they were published, and each instance publishes over one connection, so the frames
//! of one socket reach the room's owner in the order the socket sent them, and the owner's frames
//! for one socket reach it in the order the owner's [`crate::Hub`] produced them.

use crate::hub::{Identity, RoomGrant};
use fast_rtc_protocol::{RoomId, UserId};
use serde::{Deserialize, Serialize};

/// Prefix of every key and channel this server uses, so one Redis can serve other programs too.
const PREFIX: &str = "fast-rtc";

/// The key holding the id of the instance that owns `room` (the lease; it expires unless renewed).
pub fn owner_key(room: &RoomId) -> String {
    format!("{PREFIX}:room-owner:{}", room.as_str())
}

/// The sorted set of the rooms that have a live lease, over the whole cluster: each member a room
/// id, its score the lease's expiry in Redis's clock (Unix ms). Kept by the lease scripts
/// ([`crate::cluster::lease`]); entries past their expiry (an owner that died) are removed when
/// the set is counted.
pub fn rooms_key() -> String {
    format!("{PREFIX}:rooms")
}

/// The pub/sub channel an instance reads: inputs for the rooms it owns and frames for its sockets.
pub fn instance_channel(instance: &str) -> String {
    format!("{PREFIX}:instance:{instance}")
}

/// One message between two instances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Envelope {
    /// To a room's owner: something happened on socket `conn` of instance `from`, whose member is
    /// joining or in `room`.
    ToOwner {
        /// The room.
        room: RoomId,
        /// The sending instance's id (where to send the answers).
        from: String,
        /// The socket, numbered by the sending instance.
        conn: u64,
        /// What happened.
        input: Input,
    },
    /// To a member's instance: do this on its socket `conn`.
    ToMember {
        /// The socket, numbered by the receiving instance.
        conn: u64,
        /// What to do.
        output: MemberOutput,
    },
}

/// A socket event, forwarded to the owner of the socket's room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Input {
    /// The socket is joining the room: this is who it is (from its token). Comes first.
    Connect {
        /// The member's identity.
        user: UserId,
        /// The room its token grants; `None` for any room.
        grant: Option<RoomId>,
    },
    /// A text frame, as the client sent it.
    Text {
        /// The frame.
        text: String,
    },
    /// A binary frame of `len` bytes (the protocol refuses them).
    Binary {
        /// Its length.
        len: usize,
    },
    /// The socket left the room (closed, or sent `close`). Comes last.
    Disconnect,
}

impl Input {
    /// The `Connect` input for `identity`.
    pub fn connect(identity: &Identity) -> Self {
        Input::Connect {
            user: identity.user_id.clone(),
            grant: match &identity.rooms {
                RoomGrant::Any => None,
                RoomGrant::Only(room) => Some(room.clone()),
            },
        }
    }
}

/// What a room's owner asks a member's instance to do on a socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum MemberOutput {
    /// Send this server frame (JSON text, as [`fast_rtc_protocol::encode`] wrote it).
    Send {
        /// The frame.
        text: String,
    },
    /// The member was replaced by a newer session under its identity: close the socket (1000).
    Replaced,
    /// The owner no longer holds the room (or never did): close the socket with 1012 so that the
    /// client reconnects and joins again through whoever owns the room now.
    Reroute,
}

/// Decodes an envelope read from Redis; `None` (and the caller logs it) for anything else.
pub fn decode(payload: &[u8]) -> Result<Envelope, serde_json::Error> {
    serde_json::from_slice(payload)
}

/// Encodes an envelope for Redis.
pub fn encode(envelope: &Envelope) -> String {
    // Serializing these plain enums of strings and integers cannot fail.
    serde_json::to_string(envelope).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let all = [
            Envelope::ToOwner {
                room: "lobby".into(),
                from: "a1".into(),
                conn: 7,
                input: Input::Connect {
                    user: "alice".into(),
                    grant: Some("lobby".into()),
                },
            },
            Envelope::ToOwner {
                room: "".into(),
                from: "a1".into(),
                conn: 7,
                input: Input::Text {
                    text: r#"{"type":"init","roomId":""}"#.into(),
                },
            },
            Envelope::ToOwner {
                room: "r".into(),
                from: "a1".into(),
                conn: 8,
                input: Input::Binary { len: 3 },
            },
            Envelope::ToOwner {
                room: "r".into(),
                from: "a1".into(),
                conn: 8,
                input: Input::Disconnect,
            },
            Envelope::ToMember {
                conn: 9,
                output: MemberOutput::Send {
                    text: r#"{"type":"offerRequest"}"#.into(),
                },
            },
            Envelope::ToMember {
                conn: 9,
                output: MemberOutput::Replaced,
            },
            Envelope::ToMember {
                conn: 9,
                output: MemberOutput::Reroute,
            },
        ];
        for e in all {
            assert_eq!(decode(encode(&e).as_bytes()).ok(), Some(e));
        }
        assert!(decode(b"{\"k\":\"nope\"}").is_err());
        assert!(decode(b"\xff").is_err());
    }
}
