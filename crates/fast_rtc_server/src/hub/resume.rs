//! Holding a member whose socket died, and giving its place back to a new socket that shows
//! its resume token ([the hub's docs](super#resuming-a-session)).

use super::held::Held;
use super::{ConnId, Hub, Output, SocketCloseReason};
use fast_rtc_protocol::{ResumeToken, RoomId, ServerMsg, UserId};
use std::time::Instant;
use tracing::info;

impl Hub {
    /// Turns resumption on: members that ask get tokens from `make` (random, at least 128
    /// bits: the server's shell passes one from the OS's generator), and are held when their
    /// socket dies ([`Limits::resume_grace`](crate::Limits::resume_grace); zero keeps it
    /// off). Off by default: a hub that never calls this (the cluster's) hands out no tokens,
    /// so every member leaves when its socket dies, as before.
    pub fn enable_resumption(&mut self, make: fn() -> ResumeToken) {
        self.tokens = Some(make);
    }

    /// A fresh token, if resumption is on.
    pub(super) fn new_token(&self) -> Option<ResumeToken> {
        let make = self.tokens?;
        (!self.limits.resume_grace.is_zero()).then(make)
    }

    /// Socket `conn` of `user`, a member of `room_id`, is gone: holds its place if it is
    /// resumable and the bounds allow. False: it must leave.
    pub(super) fn hold(
        &mut self,
        now: Instant,
        conn: ConnId,
        room_id: &RoomId,
        user: &UserId,
    ) -> bool {
        let limits = &self.limits;
        if self.tokens.is_none()
            || limits.resume_grace.is_zero()
            || self.out.held.len() >= limits.max_held_members
        {
            return false;
        }
        let Some(room) = self.rooms.get_mut(room_id) else {
            return false;
        };
        let held_here = room
            .members
            .values()
            .filter(|m| m.held_until.is_some())
            .count();
        if held_here >= limits.max_held_per_room {
            return false;
        }
        let Some(m) = room.members.get_mut(user) else {
            return false;
        };
        if m.resume.is_none() || m.conn != conn {
            return false;
        }
        m.held_until = Some(now + limits.resume_grace);
        self.out.held.insert(
            conn,
            Held::new(limits.max_held_frames, limits.max_held_bytes),
        );
        self.out.stats.held += 1;
        info!(conn = conn.0, %user, room = %room_id, grace = ?limits.resume_grace,
            "socket gone: the member is held for a resume");
        true
    }

    /// `init` from `conn` (identity `user`, allowed into `room_id`) carries `token`: if it is
    /// the token of `user`'s member there, `conn` takes that member's place (true). Else
    /// nothing changes (false) and the `init` is a plain join.
    pub(super) fn resume(
        &mut self,
        now: Instant,
        conn: ConnId,
        room_id: &RoomId,
        user: &UserId,
        token: &ResumeToken,
    ) -> bool {
        let Some(fresh) = self.new_token() else {
            return false;
        };
        let Some(m) = self
            .rooms
            .get_mut(room_id)
            .and_then(|r| r.members.get_mut(user))
        else {
            return false;
        };
        if !m.resume.as_ref().is_some_and(|t| t.matches(token)) {
            return false;
        }
        let old = m.conn;
        if self.out.held.get(&old).is_some_and(|h| h.overflowed) {
            // It missed frames: it cannot go on as it was. The plain join replaces it.
            return false;
        }
        let kept = self.out.held.remove(&old);
        m.conn = conn;
        m.held_until = None;
        m.resume = Some(fresh.clone());
        if kept.is_none() {
            // The old socket still looked open: the same client came back before the server
            // noticed. It is closed, its late frames and its end ignored.
            self.conns.remove(&old);
            self.out.queue.push_back(Output::Close {
                conn: old,
                reason: SocketCloseReason::Resumed,
            });
        }
        self.out.send(
            conn,
            ServerMsg::Joined {
                user_id: user.clone(),
                ice_servers: None,
                resume_token: Some(fresh),
                resumed: true,
            },
        );
        let frames = kept.as_ref().map_or(0, |k| k.frames.len());
        for msg in kept.into_iter().flat_map(|k| k.frames) {
            self.out.send(conn, msg);
        }
        self.out.stats.resumed += 1;
        info!(conn = conn.0, old = old.0, %user, room = %room_id, frames, "resumed");
        self.enter(now, conn, room_id.clone());
        true
    }

    /// Ends the holds whose grace ran out by `now`, or whose kept frames overflowed: those
    /// members leave.
    pub(super) fn end_holds(&mut self, now: Instant) {
        if self.out.held.is_empty() {
            return;
        }
        let mut over = Vec::new();
        for (room_id, room) in &self.rooms {
            for (user, m) in &room.members {
                let Some(until) = m.held_until else { continue };
                let overflowed = self.out.held.get(&m.conn).is_none_or(|h| h.overflowed);
                if until <= now || overflowed {
                    over.push((room_id.clone(), user.clone(), overflowed));
                }
            }
        }
        for (room_id, user, overflowed) in over {
            info!(%user, room = %room_id, overflowed, "hold over: the member leaves");
            self.leave(&room_id, &user);
        }
    }
}
