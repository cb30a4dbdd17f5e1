//! A test driver for the pure [`Hub`]: sockets by name, virtual time, drained outputs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // the driver picks the virtual clock's start

use fast_rtc_protocol::{ErrorCode, ServerMsg};
use fast_rtc_server::Limits;
use fast_rtc_server::hub::{ConnId, Hub, Identity, Output, RoomGrant, SocketCloseReason};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct Driver {
    pub hub: Hub,
    pub now: Instant,
    next: u64,
    pub inbox: HashMap<ConnId, Vec<ServerMsg>>,
    pub closed: Vec<(ConnId, SocketCloseReason)>,
    joins: HashMap<ConnId, usize>,
}

impl Driver {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        Driver {
            hub: Hub::new(limits),
            now: Instant::now(),
            next: 1,
            inbox: HashMap::new(),
            closed: Vec::new(),
            joins: HashMap::new(),
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Runs the hub's timers that are due (as the server's owner task does) and drains.
    pub fn run_timers(&mut self) {
        if self.hub.poll_timeout().is_some_and(|at| at <= self.now) {
            self.hub.handle_timeout(self.now);
            self.drain();
        }
    }

    /// A socket authenticated as `user`, allowed in any room.
    pub fn connect(&mut self, user: &str) -> ConnId {
        self.connect_with(user, RoomGrant::Any)
    }

    pub fn connect_with(&mut self, user: &str, rooms: RoomGrant) -> ConnId {
        let conn = ConnId(self.next);
        self.next += 1;
        self.hub.connect(
            self.now,
            conn,
            Identity {
                user_id: user.into(),
                rooms,
            },
        );
        self.drain();
        conn
    }

    /// Sends a text frame and drains the outputs.
    pub fn text(&mut self, conn: ConnId, text: &str) {
        self.hub.handle_text(self.now, conn, text);
        self.drain();
    }

    /// Sends `init`. A join's acknowledgement (`joined`, always the first frame of a join) is
    /// taken off `conn`'s inbox and counted in [`Driver::joins`], so the scenarios compare the
    /// frames that follow it.
    pub fn init(&mut self, conn: ConnId, room: &str) {
        let before = self.inbox.get(&conn).map_or(0, Vec::len);
        self.text(
            conn,
            &format!(r#"{{"type":"init","userId":"ignored","roomId":"{room}"}}"#),
        );
        if let Some(inbox) = self.inbox.get_mut(&conn)
            && let Some(pos) = inbox
                .iter()
                .position(|m| matches!(m, ServerMsg::Joined { .. }))
        {
            assert_eq!(
                pos, before,
                "joined must come before the join's other frames: {inbox:?}"
            );
            inbox.remove(pos);
            *self.joins.entry(conn).or_default() += 1;
        }
    }

    /// How many `joined` acknowledgements `conn` received.
    pub fn joins(&self, conn: ConnId) -> usize {
        self.joins.get(&conn).copied().unwrap_or(0)
    }

    pub fn offer(&mut self, conn: ConnId, id: &str) {
        self.text(
            conn,
            &format!(r#"{{"type":"offer","id":"{id}","sdp":"sdp-{id}"}}"#),
        );
    }

    pub fn answer(&mut self, conn: ConnId, id: &str) {
        self.text(
            conn,
            &format!(r#"{{"type":"answer","id":"{id}","sdp":"ans-{id}"}}"#),
        );
    }

    pub fn candidate(&mut self, conn: ConnId, id: &str, n: u32) {
        self.text(
            conn,
            &format!(r#"{{"type":"candidate","id":"{id}","candidate":{{"candidate":"c{n}","sdpMid":"0","sdpMLineIndex":0}}}}"#),
        );
    }

    pub fn close(&mut self, conn: ConnId) {
        self.text(conn, r#"{"type":"close"}"#);
    }

    pub fn disconnect(&mut self, conn: ConnId) {
        self.hub.disconnect(self.now, conn);
        self.drain();
    }

    /// The socket is lost (an error, no pong), not ended.
    pub fn lose(&mut self, conn: ConnId) {
        self.hub.lost(self.now, conn);
        self.drain();
    }

    pub fn drain(&mut self) {
        while let Some(out) = self.hub.poll() {
            match out {
                Output::Send { to, msg } => self.inbox.entry(to).or_default().push(msg),
                Output::Close { conn, reason } => self.closed.push((conn, reason)),
            }
        }
    }

    /// Takes everything received by `conn` so far.
    pub fn take(&mut self, conn: ConnId) -> Vec<ServerMsg> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// Takes what `conn` received and asserts it is exactly one error with `code`.
    pub fn expect_error(&mut self, conn: ConnId, code: ErrorCode) {
        let got = self.take(conn);
        match got.as_slice() {
            [ServerMsg::SignalError { code: c, .. }] if *c == code => {}
            other => panic!("expected one {code} error, got {other:?}"),
        }
    }
}
