//! Retrying a link whose handshake failed ([the module docs](super#handshake-retries)): the
//! failed link's offerer makes a fresh offer for the same peer, sent as a `retry` frame that
//! the server pairs at once, with backoff and a bound; the application sees the peer open
//! once, or closed once when the retries ran out.

use super::SwarmCore;
use super::io::*;
use super::link::{Link, LinkState};
use fast_rtc_protocol::{ConnectionId, UserId};
use std::time::Duration;
use tracing::debug;
use web_time::Instant;

/// The longest wait before a retry, whatever the configuration says.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A peer whose link failed before opening, being retried.
#[derive(Debug, Clone)]
pub(super) struct Retry {
    /// Retries made so far (the one under way included).
    attempt: u32,
    /// When the next retry's offer is made (`None` while one is under way).
    due: Option<Instant>,
    /// The links that failed, and the retry under way: a `leaveSwarm` for any of them says
    /// the peer left. Bounded by [`SwarmConfig::handshake_retries`](crate::SwarmConfig::handshake_retries) + 1.
    ids: Vec<ConnectionId>,
}

impl SwarmCore {
    /// Link `id`'s handshake failed (`reason`): retried if it is a claimed offer of ours that
    /// never opened and retries remain, else closed and reported.
    pub(super) fn link_failed(&mut self, now: Instant, id: &ConnectionId, reason: CloseReason) {
        let Some(l) = self.links.get(id) else {
            return;
        };
        let retryable = l.state != LinkState::Open && l.role == Role::Offerer && !self.closed;
        // A refused retry never learns its peer from the server: it knows whom it was for.
        let user = l.remote.clone().or_else(|| l.retry_to.clone());
        // A peer with an open link (this one is not open) is reachable: nothing to retry.
        let Some(user) = user.filter(|u| retryable && self.link_to(u).is_none()) else {
            self.close_link(id, reason, false);
            return;
        };
        let max = self.config.handshake_retries;
        let attempt = self.retries.get(&user).map_or(0, |r| r.attempt);
        if attempt >= max {
            debug!(%id, peer = %user, ?reason, attempts = attempt, "handshake retries ran out");
            self.retries.remove(&user);
            self.close_link(id, reason, false);
            return;
        }
        let backoff = self
            .config
            .retry_backoff
            .checked_mul(2u32.saturating_pow(attempt))
            .map_or(MAX_BACKOFF, |b| b.min(MAX_BACKOFF));
        debug!(%id, peer = %user, ?reason, ?backoff, "handshake failed: retrying");
        let retry = self.retries.entry(user).or_insert_with(|| Retry {
            attempt: 0,
            due: None,
            ids: Vec::new(),
        });
        retry.attempt += 1;
        retry.due = Some(now + backoff);
        if !retry.ids.contains(id) {
            retry.ids.push(id.clone());
        }
        // Quietly: the peer is being retried (`close_link` reports nothing for it).
        self.close_link(id, reason, false);
    }

    /// Whether `user` is waiting for a retry (its failed link closes without a report).
    pub(super) fn retry_pending(&self, user: &UserId) -> bool {
        self.retries.get(user).is_some_and(|r| r.due.is_some())
    }

    /// The earliest retry due.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.retries.values().filter_map(|r| r.due).min()
    }

    /// Makes the retries that are due: a fresh offer each, for its peer alone.
    pub(super) fn retries_due(&mut self, now: Instant) {
        let due: Vec<UserId> = self
            .retries
            .iter()
            .filter(|(_, r)| r.due.is_some_and(|t| t <= now))
            .map(|(u, _)| u.clone())
            .collect();
        for user in due {
            let id = self.fresh_id();
            let Some(retry) = self.retries.get_mut(&user) else {
                continue;
            };
            retry.due = None;
            retry.ids.push(id.clone());
            debug!(%id, peer = %user, attempt = retry.attempt, "retrying the link");
            let ice_servers = self.ice_servers().to_vec();
            let mut link = Link::new(
                &self.config,
                Role::Offerer,
                LinkOrigin::Offered,
                ice_servers.clone(),
            );
            link.retry_to = Some(user);
            // Bounded like a claimed handshake, also if the server refuses the retry.
            link.deadline = Some(now + self.config.handshake_timeout);
            self.links.insert(id.clone(), link);
            self.command(PeerCommand::Create {
                id,
                role: Role::Offerer,
                ice_servers,
            });
        }
    }

    /// Link `id` opened: a retry of its peer is done.
    pub(super) fn retry_done(&mut self, user: &UserId) {
        self.retries.remove(user);
    }

    /// The server said `id`'s remote left: if `id` is a failed or retried link of a peer being
    /// retried, the retries stop and the peer is reported closed.
    pub(super) fn retry_left(&mut self, id: &ConnectionId) -> bool {
        let Some(user) = self
            .retries
            .iter()
            .find(|(_, r)| r.ids.contains(id))
            .map(|(u, _)| u.clone())
        else {
            return false;
        };
        let Some(retry) = self.retries.remove(&user) else {
            return false;
        };
        debug!(%id, peer = %user, "the peer being retried left");
        let current = retry.ids.last().filter(|cid| self.links.contains_key(*cid));
        match current.cloned() {
            Some(cid) => self.close_link(&cid, CloseReason::RemoteLeft, false),
            None => self.event(SwarmEvent::Close {
                peer: PeerInfo {
                    user_id: user,
                    id: id.clone(),
                    origin: LinkOrigin::Offered,
                },
                reason: CloseReason::RemoteLeft,
            }),
        }
        true
    }
}
