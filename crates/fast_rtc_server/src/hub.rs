//! The signaling state machine: every socket, every room, no IO.
//!
//! [`Hub`] contains no networking code and never reads a clock: the caller passes the time in.
//! It is driven by four inputs and drained through one output queue:
//!
//! - [`Hub::connect`]: a socket was authenticated (its [`Identity`] comes from the token);
//! - [`Hub::handle_text`] (or [`Hub::handle_msg`] for in-process transports, [`Hub::handle_binary`]
//!   for binary WebSocket frames): a frame arrived on a socket;
//! - [`Hub::disconnect`]: the socket ended (or [`Hub::lost`]: it was lost, and a resumable
//!   member is held);
//! - [`Hub::poll`]: the frames to send and the sockets to close, in order.
//!
//! **Drain contract**: after every input, call [`Hub::poll`] until it returns `None` before the
//! next input. One input produces at most O(members in the room) outputs, so the queue is bounded
//! by the room limit as long as the contract is kept.
//!
//! A member whose socket dies may keep its place for a while and take it back from a new
//! socket ([resuming a session](#resuming-a-session)).
//!
//! Because one `Hub` owns every room and handles one input at a time, joins in a room are
//! serialized: two members joining "at the same moment" are ordered, and the later one takes the
//! earlier one's offer, so each pair gets exactly one link.

//! # Resuming a session
//!
//! This project's extension ([`Hub::enable_resumption`]; `docs/protocol.md`, "Resuming a
//! session"). A member whose `init` carries `resume` (the empty token asks for one) gets a
//! random resume token in its `joined`. When its socket is then *lost* ([`Hub::lost`]: no
//! pong, a write that failed: a network change, a NAT that forgot the TCP mapping) rather than
//! ended ([`Hub::disconnect`]: a close frame, the end of the TCP stream or a reset, which is
//! what the kernel of a killed client sends, and a killed client has lost its token), the
//! member does not leave: it is *held* for
//! [`Limits::resume_grace`], its links, pending offers, waiting lists and identity kept, and
//! every frame for it kept in order ([`Limits::max_held_frames`], [`Limits::max_held_bytes`];
//! one more ends the hold). An `init` from a new socket of the same identity into the same
//! room whose `resume` is that token takes the place back: `joined` with `resumed: true` and
//! a fresh token, then the kept frames, and the member goes on as if nothing had happened: its
//! peers never get `leaveSwarm`, so relays of its links (ICE restarts) reach it again. The
//! same happens when the old socket still looks open (the server had not noticed it died): it
//! is closed ([`SocketCloseReason::Resumed`]); frames already written to it are lost (the
//! swarm resends what matters: restarts every interval, failed handshakes retried). When the
//! grace ends, or the kept frames overflow, the member leaves as it would have at once
//! without resumption. A `close` leaves at once; a member that never asked (the JavaScript
//! reference client) leaves at once too. Holds are bounded per room
//! ([`Limits::max_held_per_room`]) and per hub ([`Limits::max_held_members`]); past them a
//! member leaves at once.

use crate::limits::Limits;
use fast_rtc_protocol::{
    ClientMsg, ConnectionId, ErrorCode, IceCandidate, ResumeToken, RoomId, ServerMsg, Signal,
    UserId, decode_client,
};
use held::Held;
use indexmap::{IndexMap, IndexSet};
use std::collections::{HashMap, VecDeque};
use std::time::Instant;
use tracing::{debug, info};

mod held;
mod resume;

/// A socket, as numbered by the shell. Unique for the life of a [`Hub`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Which rooms a token lets its holder join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomGrant {
    /// Any room (`"room": "*"` in a JWT).
    Any,
    /// Only this room.
    Only(RoomId),
}

impl RoomGrant {
    /// Whether `room` may be joined.
    pub fn allows(&self, room: &RoomId) -> bool {
        match self {
            RoomGrant::Any => true,
            RoomGrant::Only(r) => r == room,
        }
    }
}

/// Who is on the other end of a socket, as established by authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The member's identity; becomes `userId` in every frame about this member.
    pub user_id: UserId,
    /// The rooms the member may join.
    pub rooms: RoomGrant,
}

/// Why the hub asks the shell to close a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketCloseReason {
    /// Another socket joined the same room under the same identity and replaced this one.
    Replaced,
    /// An operator kicked the member ([`Hub::kick`]).
    Kicked,
    /// A new socket resumed this socket's session with its resume token
    /// ([resuming a session](self#resuming-a-session)): the same client, reconnected before
    /// the server noticed this socket was gone.
    Resumed,
}

/// What the hub asks the shell to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `msg` on socket `to`.
    Send {
        /// The socket.
        to: ConnId,
        /// The frame.
        msg: ServerMsg,
    },
    /// Close socket `conn` (after sending what was queued for it before). The hub has already
    /// forgotten the socket; later frames from it are ignored.
    Close {
        /// The socket.
        conn: ConnId,
        /// Why.
        reason: SocketCloseReason,
    },
}

/// Cumulative counters, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames received (text, binary or in-process).
    pub frames_in: u64,
    /// Frames queued for sending.
    pub frames_out: u64,
    /// Successful `init`s.
    pub joins: u64,
    /// Members that left a room (by `close`, disconnect or replacement).
    pub leaves: u64,
    /// Sessions replaced by a newer one with the same identity.
    pub replaced: u64,
    /// Members whose socket was lost and whose place was held for a resume.
    pub held: u64,
    /// Held members that a new socket resumed.
    pub resumed: u64,
    /// Offers handed to a joiner from a member's pre-made queue (the one-round-trip path).
    pub handouts_premade: u64,
    /// Offers handed to a joiner that waited because the member had none ready.
    pub handouts_waiting: u64,
    /// `signal_error`s sent, by code.
    pub errors: HashMap<ErrorCode, u64>,
}

/// A read-only copy of one member's state, for tests, admin tools and invariant checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSnapshot {
    /// The member.
    pub user_id: UserId,
    /// Its socket.
    pub conn: ConnId,
    /// Connection ids of its unclaimed pre-made offers, oldest first.
    pub pending_offers: Vec<ConnectionId>,
    /// Signals held in each pending offer (same order).
    pub pending_signals: Vec<usize>,
    /// Joiners this member owes an offer to, oldest first.
    pub owes: Vec<UserId>,
    /// Live links: connection id and the member at the other end.
    pub links: Vec<(ConnectionId, UserId)>,
    /// Candidates held for connection ids whose offer has not arrived.
    pub orphan_candidates: usize,
    /// Whether its socket is gone and its place held for a resume.
    pub held: bool,
}

/// A read-only copy of one room's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomSnapshot {
    /// The members, in join order.
    pub members: Vec<MemberSnapshot>,
}

/// The signaling state machine. See the [module docs](self).
#[derive(Debug)]
pub struct Hub {
    limits: Limits,
    conns: HashMap<ConnId, Conn>,
    rooms: HashMap<RoomId, Room>,
    out: Outbox,
    /// Each identity's join-rate bucket ([`Limits::joins_per_minute`]).
    join_rates: HashMap<UserId, JoinRate>,
    /// Makes resume tokens; `None`: resumption is off ([`Hub::enable_resumption`]).
    tokens: Option<fn() -> ResumeToken>,
}

#[derive(Debug, Default)]
struct Outbox {
    queue: VecDeque<Output>,
    stats: Stats,
    /// Sockets told that their parked bytes are over budget: not told again for each further
    /// signal until one fits (a flood of refused frames gets one error, not one per frame).
    over_budget: std::collections::HashSet<ConnId>,
    /// The frames kept for each held member, by its dead socket.
    held: HashMap<ConnId, Held>,
}

impl Outbox {
    fn send(&mut self, to: ConnId, msg: ServerMsg) {
        if let ServerMsg::SignalError { code, message } = &msg {
            debug!(conn = to.0, %code, %message, "refused frame");
            *self.stats.errors.entry(*code).or_default() += 1;
        }
        if let Some(held) = self.held.get_mut(&to) {
            held.keep(msg);
            return;
        }
        self.stats.frames_out += 1;
        self.queue.push_back(Output::Send { to, msg });
    }

    fn error(&mut self, to: ConnId, code: ErrorCode, message: impl Into<String>) {
        self.send(to, ServerMsg::error(code, message));
    }
}

#[derive(Debug)]
struct Conn {
    identity: Identity,
    state: ConnState,
    bucket: Bucket,
}

#[derive(Debug)]
enum ConnState {
    /// Not in a room: frames other than `init` wait here (bounded) and are applied after it.
    Lobby(VecDeque<ClientMsg>),
    Joined(RoomId),
}

/// Token bucket for the per-socket frame rate.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    bytes: f64,
    last: Option<Instant>,
    limited: bool,
}

enum Admit {
    Yes,
    FirstRefusal,
    Refused,
}

impl Bucket {
    fn new(limits: &Limits) -> Self {
        Bucket {
            tokens: f64::from(limits.frame_burst),
            bytes: f64::from(limits.byte_burst),
            last: None,
            limited: false,
        }
    }

    /// Takes one frame of `len` bytes from the frame and byte buckets.
    fn take(&mut self, now: Instant, len: usize, limits: &Limits) -> Admit {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * f64::from(limits.frames_per_second))
                .min(f64::from(limits.frame_burst));
            self.bytes = (self.bytes + dt * f64::from(limits.bytes_per_second))
                .min(f64::from(limits.byte_burst));
        }
        self.last = Some(now);
        let len = len as f64;
        if self.tokens >= 1.0 && self.bytes >= len {
            self.tokens -= 1.0;
            self.bytes -= len;
            self.limited = false;
            Admit::Yes
        } else if self.limited {
            Admit::Refused
        } else {
            self.limited = true;
            Admit::FirstRefusal
        }
    }
}

#[derive(Debug, Default)]
struct Room {
    members: IndexMap<UserId, Member>,
    /// Every connection id in use in the room: a pending offer or a live link.
    ids: HashMap<ConnectionId, IdUse>,
}

#[derive(Debug)]
enum IdUse {
    Chunk { owner: UserId },
    Link { offerer: UserId, answerer: UserId },
}

/// What a connection id means to the member that names it.
enum IdRole {
    /// Nobody uses it in this room.
    Unused,
    /// One of the member's own pending offers.
    OwnChunk,
    /// A live link of the member's; the other end's socket.
    LinkTo(ConnId),
    /// Another member's pending offer, or a link between two others.
    Foreign,
}

impl Room {
    fn role_of(&self, id: &ConnectionId, user: &UserId) -> IdRole {
        match self.ids.get(id) {
            None => IdRole::Unused,
            Some(IdUse::Chunk { owner }) if owner == user => IdRole::OwnChunk,
            Some(IdUse::Link { offerer, answerer }) if offerer == user || answerer == user => {
                let other = if offerer == user { answerer } else { offerer };
                // Links only ever name present members (leave removes them).
                self.members
                    .get(other)
                    .map_or(IdRole::Foreign, |m| IdRole::LinkTo(m.conn))
            }
            Some(_) => IdRole::Foreign,
        }
    }
}

#[derive(Debug)]
struct Member {
    conn: ConnId,
    chunks: VecDeque<Chunk>,
    /// Joiners owed an offer, oldest first, with when they started waiting.
    waiting: VecDeque<(UserId, Instant)>,
    /// Offers this member was asked for on behalf of waiting joiners who left before being
    /// served: they will still come and be parked, so that many of its next offer requests
    /// are not sent (else it would keep one offer over its `peerBuffer` for good).
    surplus: usize,
    links: IndexSet<ConnectionId>,
    orphans: Vec<(ConnectionId, Option<IceCandidate>)>,
    /// Its resume token, if it asked for a resumable session and resumption is on.
    resume: Option<ResumeToken>,
    /// While its socket is gone and its place held: until when.
    held_until: Option<Instant>,
}

#[derive(Debug)]
struct Chunk {
    id: ConnectionId,
    signals: Vec<Signal>,
    /// The signals' size as encoded in an `accept` ([`signal_bytes`]).
    bytes: usize,
}

impl Hub {
    /// A hub with no sockets and no rooms.
    pub fn new(limits: Limits) -> Self {
        Hub {
            limits,
            conns: HashMap::new(),
            rooms: HashMap::new(),
            out: Outbox::default(),
            join_rates: HashMap::new(),
            tokens: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Cumulative counters.
    pub fn stats(&self) -> &Stats {
        &self.out.stats
    }

    /// Sockets the hub knows (joined or not).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Rooms with at least one member.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Members over all rooms.
    pub fn member_count(&self) -> usize {
        self.rooms.values().map(|r| r.members.len()).sum()
    }

    /// The ids of every room with at least one member (in no particular order).
    pub fn room_ids(&self) -> impl Iterator<Item = &RoomId> {
        self.rooms.keys()
    }

    /// A copy of one room's state, or `None` if nobody is in it.
    pub fn room(&self, id: &RoomId) -> Option<RoomSnapshot> {
        let room = self.rooms.get(id)?;
        let members = room
            .members
            .iter()
            .map(|(user, m)| MemberSnapshot {
                user_id: user.clone(),
                conn: m.conn,
                pending_offers: m.chunks.iter().map(|c| c.id.clone()).collect(),
                pending_signals: m.chunks.iter().map(|c| c.signals.len()).collect(),
                owes: m.waiting.iter().map(|(u, _)| u.clone()).collect(),
                links: m
                    .links
                    .iter()
                    .filter_map(|id| match room.ids.get(id) {
                        Some(IdUse::Link { offerer, answerer }) => {
                            let other = if offerer == user { answerer } else { offerer };
                            Some((id.clone(), other.clone()))
                        }
                        _ => None,
                    })
                    .collect(),
                orphan_candidates: m.orphans.len(),
                held: m.held_until.is_some(),
            })
            .collect();
        Some(RoomSnapshot { members })
    }

    /// The next thing to do, in order; `None` when there is nothing.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.queue.pop_front()
    }

    /// A socket was authenticated as `identity`. A socket id already known is first disconnected.
    pub fn connect(&mut self, now: Instant, conn: ConnId, identity: Identity) {
        if self.conns.contains_key(&conn) {
            self.disconnect(now, conn);
        }
        let bucket = Bucket::new(&self.limits);
        self.conns.insert(
            conn,
            Conn {
                identity,
                state: ConnState::Lobby(VecDeque::new()),
                bucket,
            },
        );
    }

    /// The socket ended (a close frame, the end of its stream, the server dropped it): its
    /// member (if any) leaves its room. Unknown sockets are ignored.
    pub fn disconnect(&mut self, _now: Instant, conn: ConnId) {
        self.out.over_budget.remove(&conn);
        if let Some(c) = self.conns.remove(&conn)
            && let ConnState::Joined(room) = c.state
        {
            self.leave(&room, &c.identity.user_id);
        }
    }

    /// The socket was lost (no pong, a write that failed): as [`Hub::disconnect`], except
    /// that a resumable member's place is held for [`Limits::resume_grace`]
    /// ([resuming a session](#resuming-a-session)).
    pub fn lost(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn)
            && let ConnState::Joined(room) = c.state
            && !self.hold(now, conn, &room, &c.identity.user_id)
        {
            self.leave(&room, &c.identity.user_id);
        }
    }

    /// A text frame arrived on `conn`. Frames from unknown sockets are ignored.
    pub fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str) {
        if !self.admit(now, conn, text.len()) {
            return;
        }
        if text.len() > self.limits.max_frame_bytes {
            let max = self.limits.max_frame_bytes;
            self.out.error(
                conn,
                ErrorCode::FrameTooLarge,
                format!(
                    "frame of {} bytes exceeds the limit of {max} bytes",
                    text.len()
                ),
            );
            return;
        }
        match decode_client(text) {
            Ok(msg) => self.dispatch(now, conn, msg),
            Err(e) => self.out.error(conn, e.code(), e.to_string()),
        }
    }

    /// A binary frame of `len` bytes arrived on `conn`: the protocol is JSON text, so it is
    /// refused.
    pub fn handle_binary(&mut self, now: Instant, conn: ConnId, len: usize) {
        if self.admit(now, conn, len) {
            self.out.error(
                conn,
                ErrorCode::Malformed,
                "binary frames are not part of the protocol: send JSON text frames",
            );
        }
    }

    /// An already decoded frame arrived on `conn` (in-process transports). The frame rate limit
    /// applies as for text frames; the size and byte-rate limits do not (there is no wire size).
    pub fn handle_msg(&mut self, now: Instant, conn: ConnId, msg: ClientMsg) {
        if self.admit(now, conn, 0) {
            self.dispatch(now, conn, msg);
        }
    }

    /// Counts the frame and applies the rate limits (frames and bytes). False: drop the frame.
    fn admit(&mut self, now: Instant, conn: ConnId, len: usize) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        self.out.stats.frames_in += 1;
        match c.bucket.take(now, len, &self.limits) {
            Admit::Yes => true,
            Admit::FirstRefusal => {
                let l = &self.limits;
                let message = format!(
                    "more than {} frames or {} bytes per second (bursts {} and {}): frames are dropped until the rate falls",
                    l.frames_per_second, l.bytes_per_second, l.frame_burst, l.byte_burst
                );
                self.out.error(conn, ErrorCode::RateLimited, message);
                false
            }
            Admit::Refused => false,
        }
    }

    fn check_id(&mut self, conn: ConnId, what: &str, id: &str, allow_empty: bool) -> bool {
        let max = self.limits.max_id_bytes;
        if (id.is_empty() && !allow_empty) || id.len() > max {
            self.out.error(
                conn,
                ErrorCode::InvalidField,
                format!("{what} must be 1 to {max} bytes long"),
            );
            return false;
        }
        true
    }

    fn dispatch(&mut self, now: Instant, conn: ConnId, msg: ClientMsg) {
        let valid = match &msg {
            ClientMsg::Init { room_id, .. } => {
                self.check_id(conn, "roomId", room_id.as_str(), true)
            }
            ClientMsg::Offer { id, .. }
            | ClientMsg::Answer { id, .. }
            | ClientMsg::Candidate { id, .. } => self.check_id(conn, "id", id.as_str(), false),
            ClientMsg::Retry { id, to, .. } => {
                self.check_id(conn, "id", id.as_str(), false)
                    && self.check_id(conn, "to", to.as_str(), false)
            }
            ClientMsg::Close => true,
        };
        if !valid {
            return;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match (&mut c.state, msg) {
            (
                ConnState::Lobby(_),
                ClientMsg::Init {
                    room_id, resume, ..
                },
            ) => {
                self.join(now, conn, room_id, resume);
            }
            (ConnState::Lobby(pending), ClientMsg::Close) => pending.clear(),
            (ConnState::Lobby(pending), msg) => {
                if Self::lobby_fits(&self.limits, pending, &msg) {
                    pending.push_back(msg);
                } else {
                    let (max, bytes) = (
                        self.limits.max_frames_before_init,
                        self.limits.max_bytes_before_init,
                    );
                    self.out.error(
                        conn,
                        ErrorCode::QueueFull,
                        format!(
                            "at most {max} frames or {bytes} bytes are kept before init; send init"
                        ),
                    );
                }
            }
            (ConnState::Joined(room), ClientMsg::Init { .. }) => {
                let room = room.clone();
                self.out.error(
                    conn,
                    ErrorCode::AlreadyJoined,
                    format!("already in room {room:?}; send close before joining another"),
                );
            }
            (ConnState::Joined(room), ClientMsg::Close) => {
                let room = room.clone();
                c.state = ConnState::Lobby(VecDeque::new());
                let user = c.identity.user_id.clone();
                self.leave(&room, &user);
            }
            (ConnState::Joined(room), msg) => {
                let room = room.clone();
                let user = c.identity.user_id.clone();
                self.signal(conn, &room, &user, msg);
            }
        }
    }

    fn join(&mut self, now: Instant, conn: ConnId, room_id: RoomId, resume: Option<ResumeToken>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let user = c.identity.user_id.clone();
        if !self.admit_join(now, conn, &user) {
            return;
        }
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if !c.identity.rooms.allows(&room_id) {
            self.out.error(
                conn,
                ErrorCode::RoomNotAllowed,
                format!("the token does not grant room {room_id:?}"),
            );
            return;
        }
        if let Some(token) = &resume
            && self.resume(now, conn, &room_id, &user, token)
        {
            return;
        }
        // A second session under the same identity replaces the first.
        if let Some(old) = self
            .rooms
            .get(&room_id)
            .and_then(|r| r.members.get(&user))
            .map(|m| m.conn)
        {
            // A held member's kept frames go with it.
            self.out.held.remove(&old);
            self.out.error(
                old,
                ErrorCode::DuplicateIdentity,
                format!("{user} joined room {room_id:?} from another session; this one is closed"),
            );
            self.out.queue.push_back(Output::Close {
                conn: old,
                reason: SocketCloseReason::Replaced,
            });
            self.conns.remove(&old);
            self.leave(&room_id, &user);
            self.out.stats.replaced += 1;
        }
        let present = self.rooms.get(&room_id).map_or(0, |r| r.members.len());
        if present >= self.limits.max_members_per_room {
            let max = self.limits.max_members_per_room;
            self.out.error(
                conn,
                ErrorCode::RoomFull,
                format!("room {room_id:?} has {max} members, the most allowed"),
            );
            return;
        }

        // Asked for (any `resume`, the empty request or a token that resumed nothing) and
        // allowed: a fresh token.
        let resume_token = resume.and(self.new_token());
        let room = self.rooms.entry(room_id.clone()).or_default();
        let others: Vec<UserId> = room.members.keys().cloned().collect();
        room.members.insert(
            user.clone(),
            Member {
                conn,
                chunks: VecDeque::new(),
                waiting: VecDeque::new(),
                surplus: 0,
                links: IndexSet::new(),
                orphans: Vec::new(),
                resume: resume_token.clone(),
                held_until: None,
            },
        );
        // The acknowledgement comes first, so the joiner knows it is in before any `accept`.
        self.out.send(
            conn,
            // The shell adds the member's ICE servers (crate::ice) as it writes the frame.
            ServerMsg::Joined {
                user_id: user.clone(),
                ice_servers: None,
                resume_token,
                resumed: false,
            },
        );
        // One pre-made offer from every member present, or a place on its waiting list.
        for other in others {
            Self::pair(&mut self.out, room, &other, &user, now);
        }
        self.out.stats.joins += 1;
        info!(conn = conn.0, %user, room = %room_id, "joined");
        self.enter(now, conn, room_id);
    }

    /// `conn` is now the socket of a member of `room_id`: the frames it sent before `init` are
    /// applied.
    fn enter(&mut self, now: Instant, conn: ConnId, room_id: RoomId) {
        let pending = match self.conns.get_mut(&conn) {
            Some(c) => std::mem::replace(&mut c.state, ConnState::Joined(room_id)),
            None => return,
        };
        if let ConnState::Lobby(pending) = pending {
            for msg in pending {
                self.dispatch(now, conn, msg);
            }
        }
    }

    /// Links `answerer` to `offerer` with one of `offerer`'s pre-made offers, or puts it on
    /// `offerer`'s waiting list (from `now`) for its next one. Every offer taken, and every
    /// joiner owed, asks `offerer` for one new offer, unless an offer owed to a joiner who left
    /// is still to come and takes its place.
    fn pair(out: &mut Outbox, room: &mut Room, offerer: &UserId, answerer: &UserId, now: Instant) {
        let Some(answerer_conn) = room.members.get(answerer).map(|m| m.conn) else {
            return;
        };
        let Some(m) = room.members.get_mut(offerer) else {
            return;
        };
        let offerer_conn = m.conn;
        let refill = if m.surplus > 0 {
            m.surplus -= 1;
            false
        } else {
            true
        };
        match m.chunks.pop_front() {
            Some(chunk) => {
                m.links.insert(chunk.id.clone());
                room.ids.insert(
                    chunk.id.clone(),
                    IdUse::Link {
                        offerer: offerer.clone(),
                        answerer: answerer.clone(),
                    },
                );
                if let Some(a) = room.members.get_mut(answerer) {
                    a.links.insert(chunk.id.clone());
                }
                out.send(
                    offerer_conn,
                    ServerMsg::OfferAccepted {
                        id: chunk.id.clone(),
                        user_id: answerer.clone(),
                    },
                );
                out.send(
                    answerer_conn,
                    ServerMsg::Accept {
                        id: chunk.id,
                        user_id: offerer.clone(),
                        signals: chunk.signals,
                    },
                );
                out.stats.handouts_premade += 1;
            }
            None => m.waiting.push_back((answerer.clone(), now)),
        }
        if refill {
            out.send(offerer_conn, ServerMsg::OfferRequest);
        }
    }

    /// When [`Hub::handle_timeout`] must next be called: the soonest a waiting joiner has waited
    /// [`Limits::max_offer_wait`], if anyone waits. It scans every member, so a busy driver may
    /// instead call [`Hub::handle_timeout`] on a tick (the server does, at a tenth of the
    /// limit).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let members = || self.rooms.values().flat_map(|r| r.members.values());
        let wait = members()
            .filter_map(|m| m.waiting.front().map(|(_, since)| *since))
            .min()
            .map(|since| since + self.limits.max_offer_wait);
        let hold = members().filter_map(|m| m.held_until).min();
        wait.into_iter().chain(hold).min()
    }

    /// Ends every wait for an offer that has lasted [`Limits::max_offer_wait`]: the member that
    /// never sent it gets `signal_error` `offer_overdue`, and the pair is linked the other way,
    /// with one of the joiner's own pre-made offers (or the joiner's next). The overdue offer,
    /// if it ever comes, is kept as a pre-made one and replaces the member's next refill, so
    /// the pair still has exactly one link.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.end_holds(now);
        let max = self.limits.max_offer_wait;
        for room in self.rooms.values_mut() {
            let mut overdue = Vec::new();
            for (user, m) in room.members.iter_mut() {
                while let Some((joiner, since)) = m.waiting.front() {
                    if *since + max > now {
                        break;
                    }
                    overdue.push((user.clone(), m.conn, joiner.clone()));
                    m.waiting.pop_front();
                    m.surplus += 1;
                }
            }
            for (member, conn, joiner) in overdue {
                self.out.error(
                    conn,
                    ErrorCode::OfferOverdue,
                    format!(
                        "{joiner} waited {} ms for an offer of yours; it offers instead",
                        max.as_millis()
                    ),
                );
                Self::pair(&mut self.out, room, &joiner, &member, now);
            }
        }
    }

    fn signal(&mut self, conn: ConnId, room_id: &RoomId, user: &UserId, msg: ClientMsg) {
        let limits = &self.limits;
        let out = &mut self.out;
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        let Some(id) = (match &msg {
            ClientMsg::Offer { id, .. }
            | ClientMsg::Retry { id, .. }
            | ClientMsg::Candidate { id, .. }
            | ClientMsg::Answer { id, .. } => Some(id.clone()),
            // handled by dispatch
            ClientMsg::Init { .. } | ClientMsg::Close => None,
        }) else {
            return;
        };
        match (room.role_of(&id, user), msg) {
            (IdRole::Unused, ClientMsg::Offer { sdp, .. }) => {
                Self::new_offer(limits, out, room, conn, user, id, sdp);
            }
            (IdRole::Unused, ClientMsg::Retry { to, sdp, .. }) => {
                Self::retry(limits, out, room, conn, user, id, &to, sdp);
            }
            (_, ClientMsg::Retry { .. }) => out.error(
                conn,
                ErrorCode::IdInUse,
                format!("connection id {id:?} is already used in this room"),
            ),
            (IdRole::Unused, ClientMsg::Candidate { candidate, .. }) => {
                let max = limits.max_pending_candidates;
                if let Some(me) = room.members.get_mut(user) {
                    let more = signal_bytes(&Signal::Candidate {
                        candidate: candidate.clone(),
                    });
                    if !Self::may_park(limits, out, conn, me, more) {
                        return;
                    }
                    if me.orphans.len() < max {
                        me.orphans.push((id, candidate));
                    } else {
                        out.error(
                            conn,
                            ErrorCode::QueueFull,
                            format!("at most {max} candidates are kept before their offer"),
                        );
                    }
                }
            }
            (IdRole::OwnChunk, ClientMsg::Offer { sdp, .. }) => {
                Self::add_to_chunk(limits, out, room, conn, user, &id, Signal::Offer { sdp });
            }
            (IdRole::OwnChunk, ClientMsg::Candidate { candidate, .. }) => {
                Self::add_to_chunk(
                    limits,
                    out,
                    room,
                    conn,
                    user,
                    &id,
                    Signal::Candidate { candidate },
                );
            }
            // Relays: only between the two ends of a live link.
            (IdRole::LinkTo(other), msg) => {
                let relayed = match msg {
                    ClientMsg::Offer { sdp, .. } => ServerMsg::Offer { id, sdp },
                    ClientMsg::Answer { sdp, .. } => ServerMsg::Answer { id, sdp },
                    ClientMsg::Candidate { candidate, .. } => {
                        ServerMsg::Candidate { id, candidate }
                    }
                    // A retry is never relayed (matched above).
                    ClientMsg::Init { .. } | ClientMsg::Close | ClientMsg::Retry { .. } => return,
                };
                out.send(other, relayed);
            }
            (IdRole::Foreign, ClientMsg::Offer { .. }) => out.error(
                conn,
                ErrorCode::IdInUse,
                format!("connection id {id:?} is already used by another member"),
            ),
            (IdRole::Foreign | IdRole::OwnChunk | IdRole::Unused, ClientMsg::Answer { .. }) => out
                .error(
                    conn,
                    ErrorCode::UnknownLink,
                    format!("no link {id:?} of yours in this room"),
                ),
            (IdRole::Foreign, _) => out.error(
                conn,
                ErrorCode::UnknownLink,
                format!("no link or pending offer {id:?} of yours in this room"),
            ),
            (_, ClientMsg::Init { .. } | ClientMsg::Close) => {}
        }
    }

    /// Offer `sdp` of `id` and the early candidates `me` sent for it (taken out of its
    /// orphans, at most a chunk's worth in count and in bytes), as the signals of a chunk or an
    /// `accept`.
    fn offer_signals(
        limits: &Limits,
        me: &mut Member,
        id: &ConnectionId,
        sdp: String,
    ) -> Vec<Signal> {
        let mut signals = vec![Signal::Offer { sdp }];
        let mut bytes = signals.iter().map(signal_bytes).sum::<usize>();
        let mut kept = Vec::new();
        for (cid, candidate) in me.orphans.drain(..) {
            if &cid != id {
                kept.push((cid, candidate));
                continue;
            }
            let signal = Signal::Candidate { candidate };
            let more = signal_bytes(&signal);
            if signals.len() < limits.max_signals_per_chunk
                && bytes + more <= limits.max_chunk_bytes
            {
                bytes += more;
                signals.push(signal);
            }
        }
        me.orphans = kept;
        signals
    }

    /// A retry's offer (`ClientMsg::Retry`): a link from `user` to `to` at once, with the
    /// candidates `user` sent for `id` before it.
    #[allow(clippy::too_many_arguments)]
    fn retry(
        limits: &Limits,
        out: &mut Outbox,
        room: &mut Room,
        conn: ConnId,
        user: &UserId,
        id: ConnectionId,
        to: &UserId,
        sdp: String,
    ) {
        let Some(to_conn) = room.members.get(to).map(|m| m.conn).filter(|_| to != user) else {
            out.error(
                conn,
                ErrorCode::UnknownLink,
                format!("no other member {to:?} in this room to retry a link to"),
            );
            return;
        };
        let Some(me) = room.members.get_mut(user) else {
            return;
        };
        let signals = Self::offer_signals(limits, me, &id, sdp);
        me.links.insert(id.clone());
        if let Some(t) = room.members.get_mut(to) {
            t.links.insert(id.clone());
        }
        room.ids.insert(
            id.clone(),
            IdUse::Link {
                offerer: user.clone(),
                answerer: to.clone(),
            },
        );
        out.send(
            conn,
            ServerMsg::OfferAccepted {
                id: id.clone(),
                user_id: to.clone(),
            },
        );
        out.send(
            to_conn,
            ServerMsg::Accept {
                id,
                user_id: user.clone(),
                signals,
            },
        );
    }

    /// An offer with a connection id nobody uses: to the oldest waiting joiner, else queued.
    fn new_offer(
        limits: &Limits,
        out: &mut Outbox,
        room: &mut Room,
        conn: ConnId,
        user: &UserId,
        id: ConnectionId,
        sdp: String,
    ) {
        let Some(me) = room.members.get_mut(user) else {
            return;
        };
        let signals = Self::offer_signals(limits, me, &id, sdp);

        if let Some((joiner, _)) = me.waiting.pop_front() {
            me.links.insert(id.clone());
            let Some(j) = room.members.get_mut(&joiner) else {
                return; // waiting lists only hold present members
            };
            j.links.insert(id.clone());
            let joiner_conn = j.conn;
            room.ids.insert(
                id.clone(),
                IdUse::Link {
                    offerer: user.clone(),
                    answerer: joiner.clone(),
                },
            );
            out.send(
                conn,
                ServerMsg::OfferAccepted {
                    id: id.clone(),
                    user_id: joiner,
                },
            );
            out.send(
                joiner_conn,
                ServerMsg::Accept {
                    id,
                    user_id: user.clone(),
                    signals,
                },
            );
            out.stats.handouts_waiting += 1;
        } else if me.chunks.len() < limits.max_chunks_per_member {
            let bytes = signals.iter().map(signal_bytes).sum();
            if bytes > limits.max_chunk_bytes {
                out.error(
                    conn,
                    ErrorCode::QueueFull,
                    format!(
                        "offer {id:?} of {bytes} bytes exceeds {} bytes, the most one parked offer may hold",
                        limits.max_chunk_bytes
                    ),
                );
                return;
            }
            if !Self::may_park(limits, out, conn, me, bytes) {
                return;
            }
            me.chunks.push_back(Chunk {
                id: id.clone(),
                signals,
                bytes,
            });
            room.ids.insert(
                id,
                IdUse::Chunk {
                    owner: user.clone(),
                },
            );
        } else {
            let max = limits.max_chunks_per_member;
            out.error(
                conn,
                ErrorCode::TooManyOffers,
                format!("at most {max} unclaimed offers are kept per member"),
            );
        }
    }

    fn add_to_chunk(
        limits: &Limits,
        out: &mut Outbox,
        room: &mut Room,
        conn: ConnId,
        user: &UserId,
        id: &ConnectionId,
        signal: Signal,
    ) {
        let max = limits.max_signals_per_chunk;
        let Some(me) = room.members.get_mut(user) else {
            return;
        };
        let more = signal_bytes(&signal);
        if me.chunks.iter().any(|c| &c.id == id) && !Self::may_park(limits, out, conn, me, more) {
            return;
        }
        let chunk = me.chunks.iter_mut().find(|c| &c.id == id);
        match chunk {
            Some(c) if c.bytes + more > limits.max_chunk_bytes => out.error(
                conn,
                ErrorCode::QueueFull,
                format!(
                    "pending offer {id:?} would exceed {} bytes, the most one offer and its candidates may hold; this signal is dropped",
                    limits.max_chunk_bytes
                ),
            ),
            Some(c) if c.signals.len() < max => {
                c.bytes += more;
                c.signals.push(signal);
            }
            Some(_) => out.error(
                conn,
                ErrorCode::QueueFull,
                format!("at most {max} signals are kept per pending offer"),
            ),
            None => {}
        }
    }

    /// Removes `user` from `room_id`: its offers are discarded, every live link's other end gets
    /// `leaveSwarm`, and it leaves every waiting list.
    fn leave(&mut self, room_id: &RoomId, user: &UserId) {
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        let Some(me) = room.members.shift_remove(user) else {
            return;
        };
        self.out.held.remove(&me.conn);
        for chunk in &me.chunks {
            room.ids.remove(&chunk.id);
        }
        for id in me.links {
            if let Some(IdUse::Link { offerer, answerer }) = room.ids.remove(&id) {
                let other = if &offerer == user { answerer } else { offerer };
                if let Some(o) = room.members.get_mut(&other) {
                    o.links.shift_remove(&id);
                    self.out.send(o.conn, ServerMsg::LeaveSwarm { id });
                }
            }
        }
        for m in room.members.values_mut() {
            let owed = m.waiting.len();
            m.waiting.retain(|(u, _)| u != user);
            m.surplus += owed - m.waiting.len();
        }
        if room.members.is_empty() {
            self.rooms.remove(room_id);
        }
        self.out.stats.leaves += 1;
        info!(conn = me.conn.0, %user, room = %room_id, "left");
    }
}

/// The size of `signal` as encoded in an `accept` frame (JSON, no whitespace, with the comma
/// that separates it from the next): what a parked offer costs the joiner's socket.
pub fn signal_bytes(signal: &Signal) -> usize {
    encoded_bytes(signal) + 1
}

/// The size of `value` encoded as JSON (as [`fast_rtc_protocol::encode`] writes it), counted
/// without building the text.
pub fn encoded_bytes<T: serde::Serialize>(value: &T) -> usize {
    /// Counts bytes, keeps none.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and the protocol's types always serialize.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// One identity's join-rate token bucket.
#[derive(Debug)]
struct JoinRate {
    tokens: f64,
    last: Instant,
}

/// Byte budgets and the join rate (issue 23): the bounds on what one member may park and how
/// often one identity may join.
impl Hub {
    /// Whether `msg` may wait in a socket's lobby beside `pending`
    /// ([`Limits::max_frames_before_init`], [`Limits::max_bytes_before_init`]).
    fn lobby_fits(limits: &Limits, pending: &VecDeque<ClientMsg>, msg: &ClientMsg) -> bool {
        let held: usize = pending.iter().map(encoded_bytes).sum();
        pending.len() < limits.max_frames_before_init
            && held + encoded_bytes(msg) <= limits.max_bytes_before_init
    }

    /// Bytes `me` holds parked: its pending offers and the candidates sent before their offer.
    fn parked_bytes(me: &Member) -> usize {
        let chunks: usize = me.chunks.iter().map(|c| c.bytes).sum();
        let orphans: usize = me
            .orphans
            .iter()
            .map(|(_, candidate)| {
                signal_bytes(&Signal::Candidate {
                    candidate: candidate.clone(),
                })
            })
            .sum();
        chunks + orphans
    }

    /// Whether `me` may park `more` bytes within [`Limits::max_parked_bytes_per_member`]; if
    /// not, nothing is parked and `conn` is told (`queue_full`), once until a signal fits again.
    fn may_park(limits: &Limits, out: &mut Outbox, conn: ConnId, me: &Member, more: usize) -> bool {
        let max = limits.max_parked_bytes_per_member;
        let held = Self::parked_bytes(me);
        if held + more <= max {
            out.over_budget.remove(&conn);
            return true;
        }
        if out.over_budget.insert(conn) {
            out.error(
                conn,
                ErrorCode::QueueFull,
                format!(
                    "you have {held} bytes of offers and candidates parked; {more} more would exceed {max} bytes: this signal and every further one are dropped until one fits"
                ),
            );
        }
        false
    }

    /// Takes one join from `user`'s bucket ([`Limits::join_burst`],
    /// [`Limits::joins_per_minute`]); if empty, `conn` gets `rate_limited` and the `init` is
    /// refused.
    fn admit_join(&mut self, now: Instant, conn: ConnId, user: &UserId) -> bool {
        let burst = f64::from(self.limits.join_burst.max(1));
        let per_second = f64::from(self.limits.joins_per_minute) / 60.0;
        // Forget identities whose bucket is full again, so the map holds only recent joiners.
        if self.join_rates.len() > 2 * self.conns.len() + 1024 {
            self.join_rates.retain(|_, r| {
                r.tokens + now.saturating_duration_since(r.last).as_secs_f64() * per_second < burst
            });
        }
        let rate = self.join_rates.entry(user.clone()).or_insert(JoinRate {
            tokens: burst,
            last: now,
        });
        rate.tokens = (rate.tokens
            + now.saturating_duration_since(rate.last).as_secs_f64() * per_second)
            .min(burst);
        rate.last = now;
        if rate.tokens >= 1.0 {
            rate.tokens -= 1.0;
            return true;
        }
        let wait_ms = if per_second > 0.0 {
            ((1.0 - rate.tokens) / per_second * 1000.0).ceil() as u64
        } else {
            u64::MAX
        };
        self.out.error(
            conn,
            ErrorCode::RateLimited,
            format!(
                "{user} joined more than {} times in a burst or {} times per minute: init refused; retry in {wait_ms} ms",
                self.limits.join_burst, self.limits.joins_per_minute
            ),
        );
        false
    }
}

/// Operator actions (the admin API).
impl Hub {
    /// Removes `user` from `room_id` on an operator's order: the member gets `kicked` (with
    /// `reason`), then every other member of the room gets it too, the other ends of its links
    /// get `leaveSwarm`, and its socket is closed ([`SocketCloseReason::Kicked`]); the hub
    /// forgets the socket. The kicked socket, or `None` if `user` is not in the room.
    pub fn kick(
        &mut self,
        _now: Instant,
        room_id: &RoomId,
        user: &UserId,
        reason: &str,
    ) -> Option<ConnId> {
        let conn = self.rooms.get(room_id)?.members.get(user)?.conn;
        let kicked = ServerMsg::Kicked {
            user_id: user.clone(),
            reason: reason.to_owned(),
        };
        self.out.send(conn, kicked.clone());
        self.out.queue.push_back(Output::Close {
            conn,
            reason: SocketCloseReason::Kicked,
        });
        self.conns.remove(&conn);
        self.out.over_budget.remove(&conn);
        self.leave(room_id, user);
        if let Some(room) = self.rooms.get(room_id) {
            for m in room.members.values() {
                self.out.send(m.conn, kicked.clone());
            }
        }
        info!(conn = conn.0, %user, room = %room_id, reason, "kicked");
        Some(conn)
    }
}
