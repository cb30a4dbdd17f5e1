//! Which room each local socket's frames go to: a pure state machine, no IO, no clock.
//!
//! In cluster mode the [`crate::Hub`] of a room runs on the room's owner, which may be another
//! instance. The router runs on every instance, one entry per local socket, and decides where
//! each frame goes. It reads the frames only as far as routing needs: the room of an `init`, a
//! `close`, and, coming back from the owner, whether a join was accepted.
//!
//! A socket is in one of three states:
//!
//! - **lobby**: not in a room. Frames other than `init` are held here (at most
//!   [`Limits::max_frames_before_init`] and [`Limits::max_bytes_before_init`], as the hub
//!   holds them) and answered with the same
//!   errors the hub gives before `init` (`frame_too_large`, decode errors, `invalid_field`,
//!   `queue_full`). A valid `init` makes the router forward, to the owner of its room, a
//!   `Connect` with the socket's identity, the held frames and the `init`: the owner's hub
//!   sees exactly what a single-process hub would have seen.
//! - **joining**: the `init` went to the owner; frames that follow are held until the answer
//!   comes back. `joined` moves the socket to *in room* and forwards the held frames. A refusal
//!   (`room_full`, `room_not_allowed`, `rate_limited`) disconnects the socket from the owner and
//!   puts it back in the lobby with the frames it held before the `init`, then the frames held
//!   since are handled as lobby frames: an `init` for another room goes to that room's owner.
//! - **in room**: every frame goes to the owner. A `close` is forwarded and followed by a
//!   `Disconnect`, and the socket is back in the lobby, free to join a room owned elsewhere.
//!
//! Methods: [`Router::connect`], [`Router::text`], [`Router::binary`], [`Router::disconnect`] for
//! socket events, [`Router::delivered`] for every frame the owner sends to a local socket, and
//! [`Router::evict`] when a room's owner is lost. Each returns the [`Action`]s to carry out, in
//! order.

use crate::cluster::wire::Input;
use crate::hub::{ConnId, Identity};
use crate::limits::Limits;
use fast_rtc_protocol::{ClientMsg, ErrorCode, RoomId, ServerMsg, decode_client};
use std::collections::{HashMap, VecDeque};

/// What the node must do for the router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Hand `input` for socket `conn` to the owner of `room`.
    Forward {
        /// The room.
        room: RoomId,
        /// The local socket.
        conn: ConnId,
        /// What to hand over.
        input: Input,
    },
    /// Answer the local socket directly (a frame refused before it reached any room).
    Reply {
        /// The local socket.
        conn: ConnId,
        /// The answer.
        msg: ServerMsg,
    },
}

#[derive(Debug)]
struct Sock {
    identity: Identity,
    state: State,
}

#[derive(Debug)]
enum State {
    Lobby {
        held: VecDeque<String>,
    },
    Joining {
        room: RoomId,
        /// The frames forwarded before the `init`, kept in case the join is refused.
        lobby: VecDeque<String>,
        /// Frames that arrived after the `init`, held until the owner answers it.
        held: VecDeque<Held>,
    },
    InRoom {
        room: RoomId,
    },
}

#[derive(Debug)]
enum Held {
    Text(String),
    Binary(usize),
}

/// Routes the frames of this instance's sockets to the owners of their rooms. See the
/// [module docs](self).
#[derive(Debug)]
pub struct Router {
    limits: Limits,
    sockets: HashMap<ConnId, Sock>,
}

impl Router {
    /// A router with no sockets; `limits` are the hub's (frame size, id length, frames before
    /// `init`).
    pub fn new(limits: Limits) -> Self {
        Router {
            limits,
            sockets: HashMap::new(),
        }
    }

    /// The room socket `conn` is joining or in, if any.
    pub fn room_of(&self, conn: ConnId) -> Option<&RoomId> {
        match &self.sockets.get(&conn)?.state {
            State::Lobby { .. } => None,
            State::Joining { room, .. } | State::InRoom { room } => Some(room),
        }
    }

    /// Every local socket that is joining or in `room`.
    pub fn members_of(&self, room: &RoomId) -> Vec<ConnId> {
        let mut conns: Vec<ConnId> = self
            .sockets
            .iter()
            .filter(|(_, s)| match &s.state {
                State::Joining { room: r, .. } | State::InRoom { room: r } => r == room,
                State::Lobby { .. } => false,
            })
            .map(|(c, _)| *c)
            .collect();
        conns.sort();
        conns
    }

    /// A socket was authenticated as `identity`; it starts in the lobby.
    pub fn connect(&mut self, conn: ConnId, identity: Identity) {
        self.sockets.insert(
            conn,
            Sock {
                identity,
                state: State::Lobby {
                    held: VecDeque::new(),
                },
            },
        );
    }

    /// The socket is gone. If it was joining or in a room, the owner is told.
    pub fn disconnect(&mut self, conn: ConnId) -> Vec<Action> {
        match self.sockets.remove(&conn).map(|s| s.state) {
            Some(State::Joining { room, .. } | State::InRoom { room }) => vec![Action::Forward {
                room,
                conn,
                input: Input::Disconnect,
            }],
            _ => Vec::new(),
        }
    }

    /// The owner of `room` is lost: its local sockets are forgotten (the node closes them, and
    /// their clients reconnect and join again). Returns them.
    pub fn evict(&mut self, room: &RoomId) -> Vec<ConnId> {
        let conns = self.members_of(room);
        for conn in &conns {
            self.sockets.remove(conn);
        }
        conns
    }

    /// A text frame arrived on `conn`.
    pub fn text(&mut self, conn: ConnId, text: String) -> Vec<Action> {
        let mut out = Vec::new();
        self.handle_text(conn, text, &mut out);
        out
    }

    /// A binary frame of `len` bytes arrived on `conn`.
    pub fn binary(&mut self, conn: ConnId, len: usize) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(sock) = self.sockets.get_mut(&conn) else {
            return out;
        };
        match &mut sock.state {
            State::Lobby { .. } => out.push(Action::Reply {
                conn,
                msg: ServerMsg::error(
                    ErrorCode::Malformed,
                    "binary frames are not part of the protocol: send JSON text frames",
                ),
            }),
            State::Joining { held, .. } => {
                if held.len() < self.limits.max_frames_before_init {
                    held.push_back(Held::Binary(len));
                } else {
                    out.push(queue_full(conn, &self.limits));
                }
            }
            State::InRoom { room } => out.push(Action::Forward {
                room: room.clone(),
                conn,
                input: Input::Binary { len },
            }),
        }
        out
    }

    /// The owner sent `msg` to local socket `conn` (the node delivers it; the router only
    /// watches for the answer to a join).
    pub fn delivered(&mut self, conn: ConnId, msg: &ServerMsg) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(sock) = self.sockets.get_mut(&conn) else {
            return out;
        };
        let State::Joining { room, .. } = &sock.state else {
            return out;
        };
        let room = room.clone();
        let refused = match msg {
            ServerMsg::Joined { .. } => false,
            ServerMsg::SignalError {
                code: ErrorCode::RoomFull | ErrorCode::RoomNotAllowed | ErrorCode::RateLimited,
                ..
            } => true,
            _ => return out,
        };
        let next = if refused {
            State::Lobby {
                held: VecDeque::new(),
            }
        } else {
            State::InRoom { room: room.clone() }
        };
        let State::Joining { lobby, held, .. } = std::mem::replace(&mut sock.state, next) else {
            return out;
        };
        if refused {
            out.push(Action::Forward {
                room,
                conn,
                input: Input::Disconnect,
            });
            if let State::Lobby { held: kept } = &mut sock.state {
                *kept = lobby;
            }
        }
        // The frames held meanwhile, as if they arrived now: forwarded in the room (a `close`
        // among them leaves it again), or lobby frames after a refusal.
        for frame in held {
            match frame {
                Held::Text(text) => self.handle_text(conn, text, &mut out),
                Held::Binary(len) => out.extend(self.binary(conn, len)),
            }
        }
        out
    }

    fn handle_text(&mut self, conn: ConnId, text: String, out: &mut Vec<Action>) {
        let limits = &self.limits;
        let Some(sock) = self.sockets.get_mut(&conn) else {
            return;
        };
        match &mut sock.state {
            State::Joining { held, .. } => {
                if held.len() < limits.max_frames_before_init
                    && held_bytes(held) + text.len() <= limits.max_bytes_before_init
                {
                    held.push_back(Held::Text(text));
                } else {
                    out.push(queue_full(conn, limits));
                }
            }
            State::InRoom { room } => {
                let room = room.clone();
                let is_close = matches!(decode_client(&text), Ok(ClientMsg::Close));
                out.push(Action::Forward {
                    room: room.clone(),
                    conn,
                    input: Input::Text { text },
                });
                if is_close {
                    out.push(Action::Forward {
                        room,
                        conn,
                        input: Input::Disconnect,
                    });
                    sock.state = State::Lobby {
                        held: VecDeque::new(),
                    };
                }
            }
            State::Lobby { held } => {
                // The checks the hub makes before a frame is held or joins, with its words.
                if text.len() > limits.max_frame_bytes {
                    let max = limits.max_frame_bytes;
                    let message = format!(
                        "frame of {} bytes exceeds the limit of {max} bytes",
                        text.len()
                    );
                    out.push(reply(conn, ErrorCode::FrameTooLarge, message));
                    return;
                }
                let msg = match decode_client(&text) {
                    Ok(msg) => msg,
                    Err(e) => {
                        out.push(reply(conn, e.code(), e.to_string()));
                        return;
                    }
                };
                let max = limits.max_id_bytes;
                let (what, id, allow_empty) = match &msg {
                    ClientMsg::Init { room_id, .. } => ("roomId", room_id.as_str(), true),
                    ClientMsg::Offer { id, .. }
                    | ClientMsg::Retry { id, .. }
                    | ClientMsg::Answer { id, .. }
                    | ClientMsg::Candidate { id, .. } => ("id", id.as_str(), false),
                    ClientMsg::Close => ("", "", true),
                };
                if (id.is_empty() && !allow_empty) || id.len() > max {
                    let message = format!("{what} must be 1 to {max} bytes long");
                    out.push(reply(conn, ErrorCode::InvalidField, message));
                    return;
                }
                match msg {
                    ClientMsg::Init { room_id, .. } => {
                        let lobby = std::mem::take(held);
                        out.push(Action::Forward {
                            room: room_id.clone(),
                            conn,
                            input: Input::connect(&sock.identity),
                        });
                        for frame in &lobby {
                            out.push(Action::Forward {
                                room: room_id.clone(),
                                conn,
                                input: Input::Text {
                                    text: frame.clone(),
                                },
                            });
                        }
                        out.push(Action::Forward {
                            room: room_id.clone(),
                            conn,
                            input: Input::Text { text },
                        });
                        sock.state = State::Joining {
                            room: room_id,
                            lobby,
                            held: VecDeque::new(),
                        };
                    }
                    ClientMsg::Close => held.clear(),
                    _ => {
                        let bytes: usize = held.iter().map(String::len).sum();
                        if held.len() < limits.max_frames_before_init
                            && bytes + text.len() <= limits.max_bytes_before_init
                        {
                            held.push_back(text);
                        } else {
                            let (max, bytes) =
                                (limits.max_frames_before_init, limits.max_bytes_before_init);
                            let message = format!(
                                "at most {max} frames or {bytes} bytes are kept before init; send init"
                            );
                            out.push(reply(conn, ErrorCode::QueueFull, message));
                        }
                    }
                }
            }
        }
    }
}

fn reply(conn: ConnId, code: ErrorCode, message: String) -> Action {
    Action::Reply {
        conn,
        msg: ServerMsg::error(code, message),
    }
}

/// Bytes of text frames held while a join is answered.
fn held_bytes(held: &VecDeque<Held>) -> usize {
    held.iter()
        .map(|h| match h {
            Held::Text(text) => text.len(),
            Held::Binary(_) => 0,
        })
        .sum()
}

fn queue_full(conn: ConnId, limits: &Limits) -> Action {
    let (max, bytes) = (limits.max_frames_before_init, limits.max_bytes_before_init);
    reply(
        conn,
        ErrorCode::QueueFull,
        format!("at most {max} frames or {bytes} bytes are kept while a join is answered"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::RoomGrant;

    fn router() -> (Router, ConnId) {
        let mut r = Router::new(Limits::default());
        let conn = ConnId(1);
        r.connect(
            conn,
            Identity {
                user_id: "alice".into(),
                rooms: RoomGrant::Any,
            },
        );
        (r, conn)
    }

    fn fwd(room: &str, input: Input) -> Action {
        Action::Forward {
            room: room.into(),
            conn: ConnId(1),
            input,
        }
    }

    fn text(t: &str) -> Input {
        Input::Text { text: t.into() }
    }

    const OFFER: &str = r#"{"type":"offer","id":"a-1","sdp":"s"}"#;
    const INIT_R: &str = r#"{"type":"init","roomId":"r"}"#;
    const INIT_S: &str = r#"{"type":"init","roomId":"s"}"#;
    const CLOSE: &str = r#"{"type":"close"}"#;

    fn connect() -> Input {
        Input::Connect {
            user: "alice".into(),
            grant: None,
        }
    }

    #[test]
    fn init_forwards_identity_then_held_frames_then_init() {
        let (mut r, c) = router();
        assert_eq!(r.text(c, OFFER.into()), []);
        assert_eq!(
            r.text(c, INIT_R.into()),
            [
                fwd("r", connect()),
                fwd("r", text(OFFER)),
                fwd("r", text(INIT_R))
            ]
        );
        assert_eq!(r.room_of(c), Some(&RoomId::from("r")));
        // Held until the owner answers the join, then forwarded in order.
        assert_eq!(r.text(c, OFFER.into()), []);
        assert_eq!(r.binary(c, 3), []);
        let joined = ServerMsg::Joined {
            user_id: "alice".into(),
            ice_servers: None,
            resume_token: None,
            resumed: false,
        };
        assert_eq!(
            r.delivered(c, &joined),
            [fwd("r", text(OFFER)), fwd("r", Input::Binary { len: 3 })]
        );
        assert_eq!(r.text(c, OFFER.into()), [fwd("r", text(OFFER))]);
        assert_eq!(r.disconnect(c), [fwd("r", Input::Disconnect)]);
        assert_eq!(r.disconnect(c), []);
    }

    #[test]
    fn close_leaves_so_the_next_init_goes_to_another_room() {
        let (mut r, c) = router();
        r.text(c, INIT_R.into());
        r.delivered(
            c,
            &ServerMsg::Joined {
                user_id: "alice".into(),
                ice_servers: None,
                resume_token: None,
                resumed: false,
            },
        );
        assert_eq!(
            r.text(c, CLOSE.into()),
            [fwd("r", text(CLOSE)), fwd("r", Input::Disconnect)]
        );
        assert_eq!(r.room_of(c), None);
        assert_eq!(
            r.text(c, INIT_S.into()),
            [fwd("s", connect()), fwd("s", text(INIT_S))]
        );
    }

    #[test]
    fn a_refused_join_returns_to_the_lobby_with_its_frames() {
        let (mut r, c) = router();
        r.text(c, OFFER.into());
        r.text(c, INIT_R.into());
        // Sent before the refusal came back: an init for another room.
        assert_eq!(r.text(c, INIT_S.into()), []);
        let full = ServerMsg::error(ErrorCode::RoomFull, "full");
        assert_eq!(
            r.delivered(c, &full),
            [
                fwd("r", Input::Disconnect),
                fwd("s", connect()),
                fwd("s", text(OFFER)),
                fwd("s", text(INIT_S)),
            ]
        );
        // Other errors during a join change nothing.
        let other = ServerMsg::error(ErrorCode::UnknownLink, "x");
        assert_eq!(r.delivered(c, &other), []);
        assert_eq!(r.room_of(c), Some(&RoomId::from("s")));
    }

    #[test]
    fn lobby_errors_are_answered_locally_with_the_hubs_codes() {
        let (mut r, c) = router();
        let code = |a: &[Action]| match a {
            [
                Action::Reply {
                    msg: ServerMsg::SignalError { code, .. },
                    ..
                },
            ] => *code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(&r.text(c, "nope".into())), ErrorCode::Malformed);
        assert_eq!(code(&r.binary(c, 4)), ErrorCode::Malformed);
        let long = format!(r#"{{"type":"init","roomId":"{}"}}"#, "x".repeat(129));
        assert_eq!(code(&r.text(c, long)), ErrorCode::InvalidField);
        let big = format!(
            r#"{{"type":"offer","id":"a","sdp":"{}"}}"#,
            "x".repeat(70_000)
        );
        assert_eq!(code(&r.text(c, big)), ErrorCode::FrameTooLarge);
        for _ in 0..Limits::default().max_frames_before_init {
            assert_eq!(r.text(c, OFFER.into()), []);
        }
        assert_eq!(code(&r.text(c, OFFER.into())), ErrorCode::QueueFull);
        // `close` before `init` discards what was held.
        assert_eq!(r.text(c, CLOSE.into()), []);
        assert_eq!(
            r.text(c, INIT_R.into()),
            [fwd("r", connect()), fwd("r", text(INIT_R))]
        );
    }

    #[test]
    fn evict_forgets_the_rooms_sockets_without_telling_the_owner() {
        let (mut r, c) = router();
        r.text(c, INIT_R.into());
        assert_eq!(r.members_of(&"r".into()), [c]);
        assert_eq!(r.evict(&"r".into()), [c]);
        assert_eq!(r.disconnect(c), []);
        assert_eq!(r.members_of(&"r".into()), []);
    }
}
