//! Property: random interleavings of joins, leaves, rejoins, offers, forged and junk frames for up
//! to 12 members keep the room consistent at every step, and once honest clients have answered
//! every `offerRequest`, every pair of present members has exactly one link.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod support;

use fast_rtc_protocol::ServerMsg;
use fast_rtc_server::Limits;
use fast_rtc_server::hub::{ConnId, RoomSnapshot};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use support::Driver;

const ROOM: &str = "r";

#[derive(Clone, Debug)]
enum Op {
    /// Connect (or reconnect: a second session replaces the first) and join; `early` sends the
    /// first offer before `init`, as the JS client may.
    Join { user: usize, early: bool },
    /// `close` frame (socket stays) or socket gone.
    Leave { user: usize, disconnect: bool },
    /// An honest client answers one pending `offerRequest` with a new offer and a candidate.
    Offer { user: usize },
    /// An extra offer nobody asked for.
    RogueOffer { user: usize },
    /// A signal naming some id seen so far: may be the sender's, another pair's, or stale.
    Forge { user: usize, kind: u8, pick: usize },
    /// Arbitrary text.
    Junk { user: usize, text: String },
    /// Time passes (rate limits refill).
    Wait { millis: u64 },
}

fn op(members: usize) -> impl Strategy<Value = Op> {
    let u = 0..members;
    prop_oneof![
        4 => (u.clone(), any::<bool>()).prop_map(|(user, early)| Op::Join { user, early }),
        2 => (u.clone(), any::<bool>()).prop_map(|(user, disconnect)| Op::Leave { user, disconnect }),
        6 => u.clone().prop_map(|user| Op::Offer { user }),
        1 => u.clone().prop_map(|user| Op::RogueOffer { user }),
        2 => (u.clone(), 0u8..3, any::<usize>()).prop_map(|(user, kind, pick)| Op::Forge { user, kind, pick }),
        1 => (u, ".{0,40}").prop_map(|(user, text)| Op::Junk { user, text }),
        1 => (1u64..500).prop_map(|millis| Op::Wait { millis }),
    ]
}

struct Model {
    d: Driver,
    conn: HashMap<usize, ConnId>,
    owner: HashMap<ConnId, usize>,
    owed: HashMap<usize, usize>,
    ids: Vec<String>,
    next_id: usize,
}

impl Model {
    fn new(limits: Limits) -> Self {
        Model {
            d: Driver::with_limits(limits),
            conn: HashMap::new(),
            owner: HashMap::new(),
            owed: HashMap::new(),
            ids: Vec::new(),
            next_id: 0,
        }
    }

    fn fresh_id(&mut self, user: usize) -> String {
        self.next_id += 1;
        let id = format!("u{user}-{}", self.next_id);
        self.ids.push(id.clone());
        id
    }

    /// Sends an offer and one candidate for a fresh id.
    fn offer(&mut self, user: usize, c: ConnId) {
        let id = self.fresh_id(user);
        self.d.offer(c, &id);
        self.d.candidate(c, &id, 1);
    }

    /// Routes what was received: `offerRequest` adds to the honest client's debt.
    fn collect(&mut self) {
        for (c, msgs) in std::mem::take(&mut self.d.inbox) {
            let Some(&user) = self.owner.get(&c) else {
                continue;
            };
            if self.conn.get(&user) != Some(&c) {
                continue; // a replaced session
            }
            let requests = msgs
                .iter()
                .filter(|m| matches!(m, ServerMsg::OfferRequest))
                .count();
            *self.owed.entry(user).or_default() += requests;
        }
    }

    fn apply(&mut self, op: &Op) {
        match op.clone() {
            Op::Join { user, early } => {
                let c = self.d.connect(&format!("user{user}"));
                self.conn.insert(user, c);
                self.owner.insert(c, user);
                self.owed.insert(user, 1); // peerBuffer = 1: the swarm makes one offer at start
                if early {
                    self.owed.insert(user, 0);
                    self.offer(user, c);
                }
                self.d.init(c, ROOM);
            }
            Op::Leave { user, disconnect } => {
                if let Some(&c) = self.conn.get(&user) {
                    if disconnect {
                        self.d.disconnect(c);
                        self.conn.remove(&user);
                    } else {
                        self.d.close(c);
                    }
                    self.owed.insert(user, 0);
                }
            }
            Op::Offer { user } => {
                let Some(&c) = self.conn.get(&user) else {
                    return;
                };
                let owed = self.owed.entry(user).or_default();
                if *owed > 0 {
                    *owed -= 1;
                    self.offer(user, c);
                }
            }
            Op::RogueOffer { user } => {
                if let Some(&c) = self.conn.get(&user) {
                    self.offer(user, c);
                }
            }
            Op::Forge { user, kind, pick } => {
                let (Some(&c), false) = (self.conn.get(&user), self.ids.is_empty()) else {
                    return;
                };
                let id = self.ids[pick % self.ids.len()].clone();
                match kind {
                    0 => self.d.answer(c, &id),
                    1 => self.d.candidate(c, &id, 7),
                    _ => self.d.offer(c, &id),
                }
            }
            Op::Junk { user, text } => {
                if let Some(&c) = self.conn.get(&user) {
                    self.d.text(c, &text);
                }
            }
            Op::Wait { millis } => self.d.advance(Duration::from_millis(millis)),
        }
        self.collect();
    }

    /// Honest clients answer every outstanding request (after a pause so no rate limit bites).
    fn settle(&mut self) {
        self.d.advance(Duration::from_secs(60));
        for _ in 0..100 {
            let pending: Vec<(usize, ConnId)> = self
                .owed
                .iter()
                .filter(|(_, n)| **n > 0)
                .filter_map(|(u, _)| self.conn.get(u).map(|c| (*u, *c)))
                .collect();
            if pending.is_empty() {
                return;
            }
            for (user, c) in pending {
                if let Some(n) = self.owed.get_mut(&user) {
                    *n -= 1;
                }
                self.offer(user, c);
                self.collect();
            }
        }
        panic!("offer requests never settled");
    }
}

/// Checks the room's structure; returns the per-pair relationship counts.
fn check(
    snapshot: Option<RoomSnapshot>,
    limits: &Limits,
) -> Result<HashMap<(String, String), usize>, TestCaseError> {
    let Some(snap) = snapshot else {
        return Ok(HashMap::new());
    };
    let present: HashSet<String> = snap.members.iter().map(|m| m.user_id.to_string()).collect();
    prop_assert_eq!(present.len(), snap.members.len(), "one member per identity");
    prop_assert!(snap.members.len() <= limits.max_members_per_room);
    let mut pairs: HashMap<(String, String), usize> = HashMap::new();
    let key = |a: &str, b: &str| {
        if a < b {
            (a.to_owned(), b.to_owned())
        } else {
            (b.to_owned(), a.to_owned())
        }
    };
    let mut link_ends: HashMap<String, Vec<String>> = HashMap::new();
    for m in &snap.members {
        let me = m.user_id.to_string();
        prop_assert!(m.pending_offers.len() <= limits.max_chunks_per_member);
        prop_assert!(
            m.pending_signals
                .iter()
                .all(|n| *n <= limits.max_signals_per_chunk)
        );
        prop_assert!(m.orphan_candidates <= limits.max_pending_candidates);
        for (id, other) in &m.links {
            prop_assert!(
                present.contains(other.as_str()),
                "link {} of {} to departed {}",
                id,
                me,
                other
            );
            prop_assert_ne!(other.as_str(), me.as_str());
            link_ends
                .entry(id.to_string())
                .or_default()
                .push(me.clone());
            if me < other.to_string() {
                *pairs.entry(key(&me, other.as_str())).or_default() += 1;
            }
        }
        for owed in &m.owes {
            prop_assert!(
                present.contains(owed.as_str()),
                "{} owes departed {}",
                me,
                owed
            );
            *pairs.entry(key(&me, owed.as_str())).or_default() += 1;
        }
    }
    for (id, ends) in link_ends {
        prop_assert_eq!(ends.len(), 2, "link {} must have exactly two ends", id);
    }
    let names: Vec<&String> = present.iter().collect();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            let n = pairs.get(&key(a, b)).copied().unwrap_or(0);
            prop_assert_eq!(n, 1, "{} and {}: {} links + pending hand-outs", a, b, n);
        }
    }
    Ok(pairs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_pair_gets_exactly_one_link(
        members in 2usize..=12,
        ops in prop::collection::vec(op(12), 1..160),
    ) {
        let limits = Limits { max_chunks_per_member: 4, max_frames_before_init: 8, ..Limits::default() };
        let mut m = Model::new(limits.clone());
        for op in ops.iter().filter(|o| match o {
            Op::Join { user, .. } | Op::Leave { user, .. } | Op::Offer { user }
            | Op::RogueOffer { user } | Op::Forge { user, .. } | Op::Junk { user, .. } => *user < members,
            Op::Wait { .. } => true,
        }) {
            m.apply(op);
            // At every step: exactly one link or one pending hand-out per present pair.
            check(m.d.hub.room(&ROOM.into()), &limits)?;
        }
        m.settle();
        check(m.d.hub.room(&ROOM.into()), &limits)?;
        if let Some(snap) = m.d.hub.room(&ROOM.into()) {
            for member in &snap.members {
                prop_assert!(member.owes.is_empty(), "{} still owes {:?}", member.user_id, member.owes);
                prop_assert_eq!(member.links.len(), snap.members.len() - 1);
            }
        }
        // Nothing about departed members survives anywhere.
        prop_assert_eq!(m.d.hub.member_count(), m.d.hub.room(&ROOM.into()).map_or(0, |s| s.members.len()));
    }
}
