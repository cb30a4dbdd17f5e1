//! The rollback window guard: what a ggrs 0.13.0 P2P session would do with the connect
//! statuses its peers report, decided before it does it.
//!
//! Every ggrs input message carries its sender's view of every player: disconnected or not,
//! and the last frame of that player's input it has. When a player leaves, the others may
//! have received different amounts of its input. ggrs then disconnects it, everywhere, at
//! the smallest last frame any of them reports, and rolls back to the frame after it. A
//! member that had more of the departed player's input (so it ran further ahead) may have
//! to roll back further than its prediction window keeps saved states for, and ggrs 0.13.0
//! panics there ("cannot load frame outside of prediction window"); it also panics when the
//! frame to roll back to is the current one ("must load frame in the past", fixed upstream
//! in gschup/ggrs#119, unreleased).
//!
//! So the socket holds back an input message that would change what this member knows of a
//! disconnect ([`WindowGuard::received`]), and the plugin's system, which knows the
//! session's current frame, asks [`verdict`] whether delivering it is safe: deliver it,
//! hold it a little longer, or end the session cleanly because no correct continuation
//! exists here.

use bevy_ggrs::ggrs::Message;
use fast_rtc_protocol::UserId;
use std::collections::{HashMap, VecDeque};
use tracing::debug;

/// Messages held back from one peer at most; the oldest go first (ggrs resends inputs, and
/// every input message repeats its sender's full connect status, so nothing is lost).
pub(crate) const MAX_HELD: usize = 256;

/// One player as one member sees it (ggrs's `ConnectionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    /// The member has disconnected the player.
    pub disconnected: bool,
    /// The last frame of the player's input the member has (-1: none).
    pub last_frame: i32,
}

impl Status {
    /// What a member knows of a player before any message: connected, no input.
    pub(crate) const UNKNOWN: Status = Status {
        disconnected: false,
        last_frame: -1,
    };
}

/// The connect statuses an input message carries, read through ggrs's serde form of it (its
/// fields are private): `None` for any other message.
pub(crate) fn input_statuses(msg: &Message) -> Option<Vec<Status>> {
    let value = serde_json::to_value(msg).ok()?;
    let list = value
        .get("body")?
        .get("Input")?
        .get("peer_connect_status")?;
    list.as_array()?
        .iter()
        .map(|s| {
            Some(Status {
                disconnected: s.get("disconnected")?.as_bool()?,
                last_frame: i32::try_from(s.get("last_frame")?.as_i64()?).ok()?,
            })
        })
        .collect()
}

/// Merges `new` into `known` the way ggrs does (disconnected stays, the last frame is the
/// highest seen).
fn merge(known: &mut Vec<Status>, new: &[Status]) {
    if known.len() < new.len() {
        known.resize(new.len(), Status::UNKNOWN);
    }
    for (k, n) in known.iter_mut().zip(new) {
        k.disconnected |= n.disconnected;
        k.last_frame = k.last_frame.max(n.last_frame);
    }
}

/// Whether `new` tells something of a disconnect that `known` does not.
fn changes_a_disconnect(known: Option<&Vec<Status>>, new: &[Status]) -> bool {
    new.iter().enumerate().any(|(h, n)| {
        let k = known
            .and_then(|k| k.get(h))
            .copied()
            .unwrap_or(Status::UNKNOWN);
        n.disconnected && (!k.disconnected || n.last_frame > k.last_frame)
    })
}

/// What the socket knows of the session's connect statuses, and what it holds back.
#[derive(Debug, Default)]
pub(crate) struct WindowGuard {
    /// This member's own statuses, as its last input message carried them.
    local: Vec<Status>,
    /// Each peer's statuses, merged over the messages delivered to ggrs.
    remote: HashMap<UserId, Vec<Status>>,
    /// Messages held back, per peer, in arrival order.
    held: HashMap<UserId, VecDeque<Message>>,
    /// Peers whose held messages go to ggrs at the next receive.
    release: Vec<UserId>,
}

impl WindowGuard {
    /// Notes a message this member sends: its input messages carry this member's statuses.
    pub(crate) fn sent(&mut self, msg: &Message) {
        if let Some(statuses) = input_statuses(msg) {
            self.local = statuses;
        }
    }

    /// Takes a received message: returns it if it goes to ggrs now, or holds it (and every
    /// later message of its sender, to keep their order) until [`WindowGuard::release`].
    pub(crate) fn received(&mut self, from: UserId, msg: Message) -> Option<(UserId, Message)> {
        let statuses = input_statuses(&msg);
        let holding = self.held.get(&from).is_some_and(|q| !q.is_empty());
        if !holding
            && !statuses
                .as_deref()
                .is_some_and(|s| changes_a_disconnect(self.remote.get(&from), s))
        {
            if let Some(s) = statuses {
                merge(self.remote.entry(from.clone()).or_default(), &s);
            }
            return Some((from, msg));
        }
        let queue = self.held.entry(from.clone()).or_default();
        if queue.len() >= MAX_HELD {
            queue.pop_front();
        }
        if !holding {
            debug!(peer = %from, "ggrs: a disconnect report held for the window check");
        }
        queue.push_back(msg);
        None
    }

    /// The held messages marked for release, in order, with their statuses merged in.
    pub(crate) fn take_released(&mut self) -> Vec<(UserId, Message)> {
        let mut out = Vec::new();
        for peer in std::mem::take(&mut self.release) {
            let Some(queue) = self.held.remove(&peer) else {
                continue;
            };
            for msg in queue {
                if let Some(s) = input_statuses(&msg) {
                    merge(self.remote.entry(peer.clone()).or_default(), &s);
                }
                out.push((peer.clone(), msg));
            }
        }
        out
    }

    /// The peers with held messages.
    pub(crate) fn holding(&self) -> Vec<UserId> {
        self.held
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Every peer a message came from (delivered or held).
    pub(crate) fn peers(&self) -> Vec<UserId> {
        let mut all: Vec<UserId> = self
            .remote
            .keys()
            .chain(self.held.keys())
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// `peer`'s statuses as they would be with its held messages delivered.
    pub(crate) fn proposed(&self, peer: &UserId) -> Vec<Status> {
        let mut s = self.remote.get(peer).cloned().unwrap_or_default();
        for msg in self.held.get(peer).into_iter().flatten() {
            if let Some(new) = input_statuses(msg) {
                merge(&mut s, &new);
            }
        }
        s
    }

    /// The statuses delivered from `peer` so far.
    pub(crate) fn remote(&self, peer: &UserId) -> Option<&[Status]> {
        self.remote.get(peer).map(Vec::as_slice)
    }

    /// This member's own statuses, as last sent.
    pub(crate) fn local(&self) -> &[Status] {
        &self.local
    }

    /// Notes that this member disconnected `handle` itself (its next message will say so).
    pub(crate) fn disconnected_locally(&mut self, handle: usize) {
        if let Some(s) = self.local.get_mut(handle) {
            s.disconnected = true;
        }
    }

    /// Marks `peer`'s held messages for delivery at the next receive.
    pub(crate) fn release(&mut self, peer: UserId) {
        if !self.release.contains(&peer) {
            self.release.push(peer);
        }
    }
}

/// Whether ggrs 0.13.0 can roll back from `current` to the frame after `last` (its
/// `disconnect_player_at_frame(handle, last)`): no rollback at all when `current <= last`;
/// a panic when the frame after `last` is the current one, or older than the
/// `max_prediction` frames it keeps.
pub(crate) fn rollback_check(current: i32, last: i32, max_prediction: usize) -> Verdict {
    let window = i32::try_from(max_prediction).unwrap_or(i32::MAX);
    if current <= last {
        Verdict::Safe
    } else if current == last.saturating_add(1) {
        Verdict::Wait
    } else if current.saturating_sub(last.saturating_add(1)) > window {
        Verdict::Beyond { from: last + 1 }
    } else {
        Verdict::Safe
    }
}

/// What to do with a disconnect ggrs is about to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Let ggrs act on it now.
    Safe,
    /// Not yet: ggrs would roll back to the current frame; one frame later it is safe.
    Wait,
    /// Never: ggrs would roll back to frame `from`, beyond its prediction window.
    Beyond {
        /// The frame it would load.
        from: i32,
    },
}

/// One remote endpoint of the session, as [`verdict`] sees it.
pub(crate) struct Endpoint<'a> {
    /// Its players' handles.
    pub handles: &'a [usize],
    /// Its statuses (with what is held of it, when that is being decided).
    pub statuses: &'a [Status],
}

/// What ggrs 0.13.0's `update_player_disconnects` would do at frame `current` with these
/// statuses of the session's `players` handles (a list of another length, from a peer's
/// message, is cut or padded), one player handle at a time (the same loop as ggrs's,
/// including a disconnect made earlier in the loop): the first verdict that is not
/// [`Verdict::Safe`], with its player, or `None` if every step is safe.
pub(crate) fn verdict(
    current: i32,
    max_prediction: usize,
    players: usize,
    local: &[Status],
    local_handles: &[usize],
    endpoints: &[Endpoint<'_>],
) -> Option<(usize, Verdict)> {
    let mut local = local.to_vec();
    local.resize(players, Status::UNKNOWN);
    for handle in 0..players {
        let mut connected = true;
        let mut min_confirmed = i32::MAX;
        for e in endpoints {
            let running = e
                .handles
                .iter()
                .all(|h| local.get(*h).is_none_or(|s| !s.disconnected));
            if !running {
                continue;
            }
            let s = e.statuses.get(handle).copied().unwrap_or(Status::UNKNOWN);
            connected &= !s.disconnected;
            min_confirmed = min_confirmed.min(s.last_frame);
        }
        let mine = local[handle];
        if !mine.disconnected {
            min_confirmed = min_confirmed.min(mine.last_frame);
        }
        if connected || (mine.disconnected && mine.last_frame <= min_confirmed) {
            continue;
        }
        // ggrs disconnects `handle` at `min_confirmed`; only a remote player's rolls back.
        if local_handles.contains(&handle) {
            continue;
        }
        match rollback_check(current, min_confirmed, max_prediction) {
            Verdict::Safe => {
                local[handle] = Status {
                    disconnected: true,
                    last_frame: mine.last_frame,
                };
            }
            other => return Some((handle, other)),
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn st(disconnected: bool, last_frame: i32) -> Status {
        Status {
            disconnected,
            last_frame,
        }
    }

    /// A ggrs input message with these statuses, built from ggrs's own serde form (so a
    /// change of that form in ggrs fails here).
    fn input(statuses: &[Status]) -> Message {
        let list: Vec<_> = statuses
            .iter()
            .map(
                |s| serde_json::json!({"disconnected": s.disconnected, "last_frame": s.last_frame}),
            )
            .collect();
        serde_json::from_value(serde_json::json!({
            "header": {"magic": 7},
            "body": {"Input": {
                "peer_connect_status": list,
                "disconnect_requested": false,
                "start_frame": 10,
                "ack_frame": 9,
                "bytes": [1, 2, 3],
            }}
        }))
        .unwrap()
    }

    fn keep_alive() -> Message {
        serde_json::from_value(serde_json::json!({"header": {"magic": 7}, "body": "KeepAlive"}))
            .unwrap()
    }

    #[test]
    fn statuses_are_read_from_an_input_message_and_survive_postcard() {
        let msg = input(&[st(false, 40), st(true, 37)]);
        let wire = postcard::to_allocvec(&msg).unwrap();
        let back: Message = postcard::from_bytes(&wire).unwrap();
        assert_eq!(
            input_statuses(&back),
            Some(vec![st(false, 40), st(true, 37)])
        );
        assert_eq!(input_statuses(&keep_alive()), None);
    }

    #[test]
    fn a_new_disconnect_report_is_held_with_everything_after_it_until_released() {
        let mut g = WindowGuard::default();
        let b = UserId::from("b");
        assert!(g.received(b.clone(), input(&[st(false, 5)])).is_some());
        assert!(g.received(b.clone(), input(&[st(true, 5)])).is_none());
        assert!(
            g.received(b.clone(), keep_alive()).is_none(),
            "order is kept"
        );
        assert_eq!(g.holding(), vec![b.clone()]);
        assert_eq!(g.proposed(&b), vec![st(true, 5)]);
        assert_eq!(g.remote(&b), Some(&[st(false, 5)][..]));
        assert!(g.take_released().is_empty(), "nothing released yet");
        g.release(b.clone());
        assert_eq!(g.take_released().len(), 2);
        assert_eq!(g.remote(&b), Some(&[st(true, 5)][..]));
        // The same report again is nothing new.
        assert!(g.received(b, input(&[st(true, 5)])).is_some());
    }

    #[test]
    fn a_held_queue_is_bounded() {
        let mut g = WindowGuard::default();
        let b = UserId::from("b");
        for _ in 0..MAX_HELD + 10 {
            g.received(b.clone(), input(&[st(true, 5)]));
        }
        g.release(b);
        assert_eq!(g.take_released().len(), MAX_HELD);
    }

    #[test]
    fn the_rollback_check_matches_ggrs_0_13_0() {
        assert_eq!(rollback_check(50, 60, 8), Verdict::Safe, "no rollback");
        assert_eq!(rollback_check(50, 50, 8), Verdict::Safe, "no rollback");
        assert_eq!(
            rollback_check(51, 50, 8),
            Verdict::Wait,
            "load the current frame"
        );
        assert_eq!(rollback_check(52, 50, 8), Verdict::Safe);
        assert_eq!(rollback_check(59, 50, 8), Verdict::Safe, "8 frames back");
        assert_eq!(
            rollback_check(60, 50, 8),
            Verdict::Beyond { from: 51 },
            "9 frames back"
        );
    }

    /// Three players: 0 is this member, 1 the one who reports, 2 the one who left.
    #[test]
    fn a_report_of_fewer_frames_than_this_member_had_is_beyond_the_window() {
        // This member had player 2's input up to frame 85 and is at 88; player 1 had it up to
        // 77 and disconnected it there: ggrs would roll back to 78, 10 frames.
        let local = [st(false, 88), st(false, 86), st(false, 85)];
        let reported = [st(false, 86), st(false, 86), st(true, 77)];
        let endpoints = [
            Endpoint {
                handles: &[1],
                statuses: &reported,
            },
            Endpoint {
                handles: &[2],
                statuses: &[st(false, 85), st(false, 80), st(false, 85)],
            },
        ];
        assert_eq!(
            verdict(88, 8, 3, &local, &[0], &endpoints),
            Some((2, Verdict::Beyond { from: 78 }))
        );
        // The same report at frame 85: a rollback of 7 frames, within the window.
        assert_eq!(verdict(85, 8, 3, &local, &[0], &endpoints), None);
        // At frame 78 it would load the current frame: wait.
        assert_eq!(
            verdict(78, 8, 3, &local, &[0], &endpoints),
            Some((2, Verdict::Wait))
        );
    }

    #[test]
    fn a_player_disconnected_here_at_the_same_frame_needs_no_rollback() {
        let local = [st(false, 90), st(false, 90), st(true, 77)];
        let endpoints = [Endpoint {
            handles: &[1],
            statuses: &[st(false, 90), st(false, 90), st(true, 77)],
        }];
        assert_eq!(verdict(120, 8, 3, &local, &[0], &endpoints), None);
        // An earlier frame than this member's: ggrs re-adjusts, 43 frames back.
        let endpoints = [Endpoint {
            handles: &[1],
            statuses: &[st(false, 90), st(false, 90), st(true, 76)],
        }];
        assert_eq!(
            verdict(120, 8, 3, &local, &[0], &endpoints),
            Some((2, Verdict::Beyond { from: 77 }))
        );
    }

    #[test]
    fn a_report_about_this_member_itself_is_not_a_rollback() {
        let local = [st(false, 50), st(false, 50)];
        let endpoints = [Endpoint {
            handles: &[1],
            statuses: &[st(true, 20), st(false, 50)],
        }];
        assert_eq!(verdict(60, 8, 2, &local, &[0], &endpoints), None);
    }

    /// A peer's message may list more players than the session has: the rest is not read.
    #[test]
    fn statuses_beyond_the_sessions_players_are_ignored() {
        let local = [st(false, 50), st(false, 50)];
        let mut long = vec![st(false, 50); 100];
        long[50] = st(true, 0);
        let endpoints = [Endpoint {
            handles: &[1],
            statuses: &long,
        }];
        assert_eq!(verdict(60, 8, 2, &local, &[0], &endpoints), None);
    }

    #[test]
    fn the_endpoint_of_a_disconnected_player_no_longer_counts() {
        // Player 2 is disconnected here; what its endpoint last said of player 1 is ignored.
        let local = [st(false, 60), st(false, 60), st(true, 55)];
        let endpoints = [
            Endpoint {
                handles: &[1],
                statuses: &[st(false, 60), st(false, 60), st(true, 55)],
            },
            Endpoint {
                handles: &[2],
                statuses: &[st(false, 55), st(true, 10), st(false, 55)],
            },
        ];
        assert_eq!(verdict(62, 8, 3, &local, &[0], &endpoints), None);
    }
}
