//! Who may hold a connection before it is authenticated, and how many sockets one identity or
//! one source may hold after: pure bookkeeping, no IO, no clock. The shell
//! ([`crate::server`]) asks and carries out the answers; [`ConnectionLimits`] holds the
//! bounds.
//!
//! - [`PreAuthGate`]: the connections not yet upgraded to a signaling socket. It always admits
//!   a new connection and, at a cap, names the one to evict: the oldest of the same source when
//!   that source is at its own cap, else the oldest of the source holding the most. A flood of
//!   stalled connections from a few sources thus only ever evicts its own.
//! - [`SocketCaps`]: open signaling sockets per identity and per source.
//!
//! [`ConnectionLimits`]: crate::limits::ConnectionLimits

use fast_rtc_protocol::UserId;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::SystemTime;

/// Where a connection comes from, as the caps count it: an IPv4 address, or the /64 prefix of
/// an IPv6 address (an IPv4-mapped IPv6 address counts as its IPv4 address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source(u128);

impl Source {
    /// The source of a connection from `ip`.
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(u128::from(u32::from(v4))),
                // The /64 prefix, tagged so that it never equals an IPv4 source.
                None => Source((u128::from(v6) & !u128::from(u64::MAX)) | 1),
            },
        }
    }
}

/// A connection known to a [`PreAuthGate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PreAuthId(u64);

/// The connections waiting to be authenticated, each with the shell's handle `T` (what the
/// shell needs to evict it). See the [module docs](self).
#[derive(Debug)]
pub struct PreAuthGate<T> {
    max: usize,
    max_per_source: usize,
    next: u64,
    /// Every pending connection, oldest first: its source and handle.
    pending: BTreeMap<PreAuthId, (Source, T)>,
    /// Each source's pending connections, oldest first.
    by_source: HashMap<Source, std::collections::BTreeSet<PreAuthId>>,
}

impl<T> PreAuthGate<T> {
    /// A gate holding at most `max` connections (at least 1), and at most `max_per_source`
    /// from one source (0: no per-source cap).
    pub fn new(max: usize, max_per_source: usize) -> Self {
        PreAuthGate {
            max: max.max(1),
            max_per_source,
            next: 0,
            pending: BTreeMap::new(),
            by_source: HashMap::new(),
        }
    }

    /// Connections pending now.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no connection is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Admits a new connection from `source` with handle `handle`: its id, and the handle of
    /// the connection to evict to make room for it, if a cap was reached (already forgotten by
    /// the gate).
    pub fn admit(&mut self, source: Source, handle: T) -> (PreAuthId, Option<T>) {
        let held = self.by_source.get(&source).map_or(0, |s| s.len());
        let victim = if self.max_per_source > 0 && held >= self.max_per_source {
            self.oldest_of(source)
        } else if self.pending.len() >= self.max {
            self.largest_source().and_then(|s| self.oldest_of(s))
        } else {
            None
        };
        let evicted = victim.and_then(|id| self.release(id));
        let id = PreAuthId(self.next);
        self.next += 1;
        self.pending.insert(id, (source, handle));
        self.by_source.entry(source).or_default().insert(id);
        (id, evicted)
    }

    /// Forgets connection `id` (authenticated, or closed); its handle, if it was still
    /// pending.
    pub fn release(&mut self, id: PreAuthId) -> Option<T> {
        let (source, handle) = self.pending.remove(&id)?;
        if let Some(ids) = self.by_source.get_mut(&source) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_source.remove(&source);
            }
        }
        Some(handle)
    }

    /// Every pending handle, oldest first, and forgets them all (shutdown).
    pub fn drain(&mut self) -> Vec<T> {
        self.by_source.clear();
        std::mem::take(&mut self.pending)
            .into_values()
            .map(|(_, h)| h)
            .collect()
    }

    fn oldest_of(&self, source: Source) -> Option<PreAuthId> {
        self.by_source.get(&source)?.first().copied()
    }

    /// The source holding the most pending connections (the one whose oldest is older, on a
    /// tie).
    fn largest_source(&self) -> Option<Source> {
        self.by_source
            .iter()
            .max_by(|(_, a), (_, b)| {
                a.len()
                    .cmp(&b.len())
                    .then_with(|| b.first().cmp(&a.first()))
            })
            .map(|(s, _)| *s)
    }
}

/// Why [`SocketCaps::open`] refused a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapRefusal {
    /// The identity already holds its most sockets.
    #[error("this identity already holds {0} sockets, the most allowed")]
    Identity(usize),
    /// The source already holds its most sockets.
    #[error("this address already holds {0} sockets, the most allowed")]
    Source(usize),
}

impl CapRefusal {
    /// A short name for metrics: `identity_cap` or `source_cap`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CapRefusal::Identity(_) => "identity_cap",
            CapRefusal::Source(_) => "source_cap",
        }
    }
}

/// Open signaling sockets per identity and per source. See the [module docs](self).
#[derive(Debug)]
pub struct SocketCaps {
    per_identity: usize,
    per_source: usize,
    identities: HashMap<UserId, usize>,
    sources: HashMap<Source, usize>,
}

impl SocketCaps {
    /// Caps of `per_identity` sockets per identity (at least 1) and `per_source` per source
    /// (0: none).
    pub fn new(per_identity: usize, per_source: usize) -> Self {
        SocketCaps {
            per_identity: per_identity.max(1),
            per_source,
            identities: HashMap::new(),
            sources: HashMap::new(),
        }
    }

    /// Counts a new socket of `user` from `source`, or refuses it (and counts nothing).
    pub fn open(&mut self, user: &UserId, source: Source) -> Result<(), CapRefusal> {
        if self.identities.get(user).copied().unwrap_or(0) >= self.per_identity {
            return Err(CapRefusal::Identity(self.per_identity));
        }
        if self.per_source > 0 && self.sources.get(&source).copied().unwrap_or(0) >= self.per_source
        {
            return Err(CapRefusal::Source(self.per_source));
        }
        *self.identities.entry(user.clone()).or_default() += 1;
        *self.sources.entry(source).or_default() += 1;
        Ok(())
    }

    /// A socket counted by [`SocketCaps::open`] closed.
    pub fn close(&mut self, user: &UserId, source: Source) {
        decrement(&mut self.identities, user);
        decrement(&mut self.sources, &source);
    }

    /// Sockets `user` holds now.
    pub fn of_identity(&self, user: &UserId) -> usize {
        self.identities.get(user).copied().unwrap_or(0)
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// Tokens refused until they expire: those of kicked members ([`crate::admin`]). A token is
/// known by a digest of its text, never the text itself.
#[derive(Debug, Default)]
pub struct Revocations {
    until: HashMap<TokenKey, SystemTime>,
}

/// A digest of a token's text (SHA-256).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// The key of `token`.
    pub fn of(token: &str) -> TokenKey {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        TokenKey(key)
    }
}

impl Revocations {
    /// Refuses `key` until `until`. Revocations that have expired by `now` are forgotten.
    pub fn revoke(&mut self, key: TokenKey, until: SystemTime, now: SystemTime) {
        self.until.retain(|_, t| *t > now);
        let t = self.until.entry(key).or_insert(until);
        *t = (*t).max(until);
    }

    /// Whether `key` is refused at `now`.
    pub fn is_revoked(&self, key: &TokenKey, now: SystemTime) -> bool {
        self.until.get(key).is_some_and(|t| *t > now)
    }

    /// Revocations held (expired ones included until the next [`Revocations::revoke`]).
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> Source {
        Source::of(s.parse().unwrap())
    }

    #[test]
    fn sources_group_ipv6_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(src("2001:db8::1"), src("2001:db8::ffff:1"));
        assert_ne!(src("2001:db8::1"), src("2001:db8:0:1::1"));
        assert_eq!(src("::ffff:192.0.2.1"), src("192.0.2.1"));
        assert_ne!(src("192.0.2.1"), src("192.0.2.2"));
        assert_ne!(src("::"), src("0.0.0.0"));
    }

    #[test]
    fn a_source_at_its_cap_evicts_its_own_oldest() {
        let mut gate = PreAuthGate::new(100, 2);
        let (a1, e) = gate.admit(src("10.0.0.1"), "a1");
        assert_eq!(e, None);
        let (_h, e) = gate.admit(src("10.0.0.9"), "honest");
        assert_eq!(e, None);
        gate.admit(src("10.0.0.1"), "a2");
        let (_, e) = gate.admit(src("10.0.0.1"), "a3");
        assert_eq!(e, Some("a1"));
        assert_eq!(gate.release(a1), None, "an evicted connection is forgotten");
        assert_eq!(gate.len(), 3);
    }

    #[test]
    fn at_the_total_cap_the_largest_source_pays() {
        let mut gate = PreAuthGate::new(4, 0);
        gate.admit(src("10.0.0.9"), "honest");
        for i in 0..3 {
            gate.admit(src("10.0.0.1"), ["a0", "a1", "a2"][i]);
        }
        // Full: the next connection, from anyone, evicts the attacker's oldest, never "honest".
        let (_, e) = gate.admit(src("10.0.0.7"), "b");
        assert_eq!(e, Some("a0"));
        let (_, e) = gate.admit(src("10.0.0.1"), "a3");
        assert_eq!(e, Some("a1"));
        assert_eq!(gate.len(), 4);
        let mut left = gate.drain();
        left.sort();
        assert_eq!(left, vec!["a2", "a3", "b", "honest"]);
        assert!(gate.is_empty());
    }

    #[test]
    fn a_tie_evicts_the_source_with_the_oldest_connection() {
        let mut gate = PreAuthGate::new(2, 0);
        gate.admit(src("10.0.0.1"), "old");
        gate.admit(src("10.0.0.2"), "new");
        assert_eq!(gate.admit(src("10.0.0.3"), "c").1, Some("old"));
    }

    #[test]
    fn a_thousand_stalled_connections_stay_within_the_caps() {
        let mut gate = PreAuthGate::new(64, 16);
        let mut evicted = 0;
        for i in 0..1000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i % 8);
            if gate.admit(Source::of(ip.into()), i).1.is_some() {
                evicted += 1;
            }
            assert!(gate.len() <= 64);
        }
        assert_eq!(gate.len(), 64);
        assert_eq!(evicted, 1000 - 64);
    }

    #[test]
    fn identity_and_source_caps_refuse_and_recount_on_close() {
        let mut caps = SocketCaps::new(2, 3);
        let (alice, bob, carol) = (UserId::from("alice"), UserId::from("bob"), "carol".into());
        let (one, two) = (src("10.0.0.1"), src("10.0.0.2"));
        assert_eq!(caps.open(&alice, one), Ok(()));
        assert_eq!(caps.open(&alice, two), Ok(()));
        assert_eq!(caps.open(&alice, two), Err(CapRefusal::Identity(2)));
        assert_eq!(caps.of_identity(&alice), 2);
        assert_eq!(caps.open(&bob, one), Ok(()));
        assert_eq!(caps.open(&bob, one), Ok(()));
        assert_eq!(caps.open(&carol, one), Err(CapRefusal::Source(3)));
        assert_eq!(
            caps.open(&carol, two),
            Ok(()),
            "another source is not affected"
        );
        caps.close(&alice, one);
        assert_eq!(caps.open(&carol, one), Ok(()));
        assert_eq!(caps.open(&alice, one), Err(CapRefusal::Source(3)));
        caps.close(&bob, one);
        assert_eq!(caps.open(&alice, one), Ok(()));
        assert_eq!(caps.of_identity(&alice), 2);
    }

    #[test]
    fn a_source_cap_of_zero_is_off() {
        let mut caps = SocketCaps::new(1000, 0);
        for i in 0..500 {
            assert_eq!(
                caps.open(&format!("u{i}").as_str().into(), src("127.0.0.1")),
                Ok(())
            );
        }
    }

    #[test]
    fn a_revocation_lasts_until_its_expiry_and_is_then_forgotten() {
        use std::time::{Duration, UNIX_EPOCH};
        let t = |s| UNIX_EPOCH + Duration::from_secs(s);
        let mut r = Revocations::default();
        let (a, b) = (TokenKey::of("token-a"), TokenKey::of("token-b"));
        assert_ne!(a, b);
        r.revoke(a, t(100), t(0));
        assert!(r.is_revoked(&a, t(99)));
        assert!(!r.is_revoked(&a, t(100)));
        assert!(!r.is_revoked(&b, t(50)));
        r.revoke(b, t(300), t(200));
        assert_eq!(r.len(), 1, "a's expired revocation was forgotten");
        assert!(r.is_revoked(&b, t(299)));
    }
}
