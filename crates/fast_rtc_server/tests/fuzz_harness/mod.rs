//! Fuzz harness for the hub: bytes → a script of socket events and frames, applied to a [`Hub`],
//! then the room invariants that hold for ANY client behaviour are checked.
//!
//! Shared by the cargo-fuzz target (`fuzz/fuzz_targets/hub_frames.rs`) and the stable replay test
//! (`tests/fuzz_replay.rs`), so CI runs the same harness on random input.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a harness asserts
#![allow(clippy::disallowed_methods)] // picks the virtual clock's start

use fast_rtc_protocol::{ResumeToken, ServerMsg};
use fast_rtc_server::Limits;
use fast_rtc_server::hub::{ConnId, Hub, Identity, Output, RoomGrant};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const USERS: [&str; 5] = ["ann", "ben", "cid", "dee", "eve"];
const ROOMS: [&str; 2] = ["r", "s"];
const IDS: [&str; 10] = ["x", "y", "z", "w", "v", "u", "t", "s", "q", "p"];

/// Applies the script in `data` to a fresh hub with small limits, checking invariants after every
/// step. Panics on a broken invariant (that is the bug report). Returns the hub's counters and
/// the most links any member held, so callers can see how deep the script went.
pub fn run(data: &[u8]) -> (fast_rtc_server::hub::Stats, usize) {
    let limits = Limits {
        max_members_per_room: 4,
        max_chunks_per_member: 2,
        max_signals_per_chunk: 3,
        max_pending_candidates: 3,
        max_frames_before_init: 3,
        max_frame_bytes: 512,
        frames_per_second: 50,
        frame_burst: 20,
        bytes_per_second: 4096,
        byte_burst: 2048,
        max_held_per_room: 2,
        max_held_frames: 4,
        ..Limits::default()
    };
    let mut hub = Hub::new(limits.clone());
    hub.enable_resumption(counting_token);
    // The resume tokens handed out so far (a script may present any of them).
    let mut tokens: Vec<ResumeToken> = Vec::new();
    let mut now = Instant::now();
    let mut open: Vec<ConnId> = Vec::new();
    let mut next = 0u64;
    let mut bytes = data.iter().copied();
    let mut most_links = 0;
    while let Some(op) = bytes.next() {
        let arg = bytes.next().unwrap_or(0);
        let conn =
            |open: &Vec<ConnId>| open.get(usize::from(arg >> 4) % open.len().max(1)).copied();
        match op % 12 {
            0 => {
                next += 1;
                let user = USERS[usize::from(arg) % USERS.len()];
                let rooms = if arg & 0x80 == 0 {
                    RoomGrant::Any
                } else {
                    RoomGrant::Only("r".into())
                };
                hub.connect(
                    now,
                    ConnId(next),
                    Identity {
                        user_id: user.into(),
                        rooms,
                    },
                );
                open.push(ConnId(next));
            }
            1 => {
                if let Some(c) = conn(&open) {
                    // Ended or lost (a resumable member is then held).
                    if arg & 0x01 == 0 {
                        hub.disconnect(now, c);
                    } else {
                        hub.lost(now, c);
                    }
                    open.retain(|o| *o != c);
                }
            }
            2 => now += Duration::from_millis(u64::from(arg) * 10),
            3..=8 => {
                let Some(c) = conn(&open) else { continue };
                let sel = bytes.next().unwrap_or(0);
                let id = IDS[usize::from(sel) % IDS.len()];
                // Mostly one room, so meshes form; sometimes another, so rooms must stay apart.
                let room = ROOMS[usize::from(sel & 0x07 == 0)];
                let text = match op % 12 {
                    3 => {
                        // Plain, asking for a resumable session, or presenting a token.
                        let resume = match sel >> 6 {
                            0 => String::new(),
                            1 => RESUME_REQUEST.to_owned(),
                            _ => tokens
                                .get(usize::from(arg) % tokens.len().max(1))
                                .map(|t| format!(r#","resume":"{}""#, t.expose()))
                                .unwrap_or_default(),
                        };
                        format!(r#"{{"type":"init","roomId":"{room}"{resume}}}"#)
                    }
                    4 => format!(r#"{{"type":"offer","id":"{id}","sdp":"o"}}"#),
                    5 => format!(r#"{{"type":"answer","id":"{id}","sdp":"a"}}"#),
                    6 => format!(
                        r#"{{"type":"candidate","id":"{id}","candidate":{{"candidate":"c","sdpMid":"0"}}}}"#
                    ),
                    7 => format!(r#"{{"type":"candidate","id":"{id}","candidate":null}}"#),
                    _ => r#"{"type":"close"}"#.to_owned(),
                };
                hub.handle_text(now, c, &text);
            }
            9 => {
                if let Some(c) = conn(&open) {
                    hub.handle_binary(now, c, usize::from(arg));
                }
            }
            _ => {
                // Raw bytes as a frame: length from arg, lossy UTF-8 like a WebSocket text frame.
                let Some(c) = conn(&open) else { continue };
                let raw: Vec<u8> = bytes.by_ref().take(usize::from(arg)).collect();
                hub.handle_text(now, c, &String::from_utf8_lossy(&raw));
            }
        }
        while let Some(out) = hub.poll() {
            match out {
                Output::Close { conn, .. } => open.retain(|o| *o != conn),
                Output::Send {
                    msg:
                        ServerMsg::Joined {
                            resume_token: Some(t),
                            ..
                        },
                    ..
                } => tokens.push(t),
                Output::Send { .. } => {}
            }
        }
        most_links = most_links.max(check(&hub, &limits));
    }
    (hub.stats().clone(), most_links)
}

/// `init`'s field asking for a resumable session.
const RESUME_REQUEST: &str = ",\"resume\":\"\"";

/// Distinct resume tokens.
fn counting_token() -> ResumeToken {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    ResumeToken::new(format!("{:032x}", NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// Invariants that hold whatever the clients send. Returns the most links any member holds.
pub fn check(hub: &Hub, limits: &Limits) -> usize {
    let mut most_links = 0;
    let mut members = 0;
    for room_id in hub.room_ids() {
        let room = hub.room(room_id).expect("listed room exists");
        assert!(!room.members.is_empty(), "an empty room is removed");
        assert!(room.members.len() <= limits.max_members_per_room);
        assert!(room.members.iter().filter(|m| m.held).count() <= limits.max_held_per_room);
        members += room.members.len();
        let present: HashSet<_> = room.members.iter().map(|m| m.user_id.clone()).collect();
        let mut ends: HashMap<_, Vec<_>> = HashMap::new();
        let mut pending = HashSet::new();
        for m in &room.members {
            assert!(m.pending_offers.len() <= limits.max_chunks_per_member);
            assert!(
                m.pending_signals
                    .iter()
                    .all(|n| *n <= limits.max_signals_per_chunk)
            );
            assert!(m.orphan_candidates <= limits.max_pending_candidates);
            for id in &m.pending_offers {
                assert!(
                    pending.insert(id.clone()),
                    "pending offer id {id} used twice"
                );
            }
            for u in &m.owes {
                assert!(present.contains(u), "owes a departed member");
                assert_ne!(u, &m.user_id);
            }
            most_links = most_links.max(m.links.len());
            for (id, other) in &m.links {
                assert!(present.contains(other), "link to a departed member");
                ends.entry(id.clone())
                    .or_default()
                    .push((m.user_id.clone(), other.clone()));
            }
        }
        for (id, e) in ends {
            assert_eq!(e.len(), 2, "link {id} has two ends");
            assert_eq!(
                (&e[0].0, &e[0].1),
                (&e[1].1, &e[1].0),
                "link {id} ends agree"
            );
            assert!(!pending.contains(&id), "id {id} both pending and linked");
        }
    }
    assert_eq!(members, hub.member_count());
    most_links
}
