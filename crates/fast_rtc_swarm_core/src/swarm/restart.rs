//! Keeping open links through ICE restarts ([the module docs](super#ice-restarts)): an open
//! link that loses its path is restored by its offerer's ICE restarts, or closed once
//! [`SwarmConfig::restore_timeout`](crate::SwarmConfig::restore_timeout) ran out.

use super::SwarmCore;
use super::io::*;
use super::link::{LinkState, Outage};
use fast_rtc_protocol::ConnectionId;
use std::time::Duration;
use tracing::debug;
use web_time::Instant;

/// The longest restore timeout and restart interval, whatever the configuration says.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

impl Outage {
    /// When the core must act on this outage next: the offerer's next restart (not while one
    /// waits for its answer, unless the answer is overdue; not while the signaling session is
    /// down, `signaling_up` false: the offer would be thrown away with the old socket's
    /// queue), or the deadline.
    pub(super) fn due(&self, signaling_up: bool) -> Instant {
        if !signaling_up {
            return self.deadline;
        }
        match (self.next_restart, self.awaiting_answer) {
            (Some(t), false) => t.min(self.deadline),
            (Some(t), true) => (t + self.answer_wait).min(self.deadline),
            (None, _) => self.deadline,
        }
    }
}

impl SwarmCore {
    /// Link `id`'s ICE connection is now in `state`.
    pub(super) fn ice_state(&mut self, now: Instant, id: &ConnectionId, state: IceState) {
        // Bounded, so that no configured value overflows the clock.
        let restore_timeout = self.config.restore_timeout.min(MAX_WAIT);
        let Some(l) = self.links.get_mut(id) else {
            return;
        };
        let open = l.state == LinkState::Open;
        let restorable = open && l.restartable && !restore_timeout.is_zero() && !l.remote_left;
        match state {
            // A remote that left the room and lost its path is gone: no restart can reach it.
            IceState::Disconnected | IceState::Failed if open && l.remote_left => {
                self.close_link(id, CloseReason::IceFailed, false);
            }
            // `checking` on an open link: the remote restarted ICE before this end noticed
            // the loss (its own `disconnected` comes only after seconds of silence).
            IceState::Disconnected | IceState::Failed | IceState::Checking if restorable => {
                if l.outage.is_some() {
                    // Still down (a `failed` after the `disconnected`): the restarts go on.
                    return;
                }
                l.outage = Some(Outage {
                    since: now,
                    deadline: now + restore_timeout,
                    next_restart: (l.role == Role::Offerer).then_some(now),
                    awaiting_answer: false,
                    answer_wait: self.config.restart_interval.min(MAX_WAIT),
                });
                debug!(%id, ?state, "the link lost its path: restoring it");
                if let Some(user_id) = l.remote.clone() {
                    self.event(SwarmEvent::Interrupted {
                        user_id,
                        id: id.clone(),
                    });
                }
                self.restarts_due(now);
            }
            IceState::Failed => self.link_failed(now, id, CloseReason::IceFailed),
            IceState::Connected | IceState::Completed => {
                let Some(outage) = l.outage.take() else {
                    return;
                };
                let outage = now.saturating_duration_since(outage.since);
                debug!(%id, ?outage, "the link has a path again");
                if let Some(user_id) = l.remote.clone() {
                    self.event(SwarmEvent::Restored {
                        user_id,
                        id: id.clone(),
                        outage,
                    });
                }
            }
            _ => {}
        }
    }

    /// An answer arrived on link `id`: if it answers a restart, the next restart may follow
    /// at its time ([`SwarmConfig::restart_interval`](crate::SwarmConfig::restart_interval)
    /// after the last one) if the path is still down. Never a second offer while one waits
    /// for its answer: a late answer would then meet the wrong offer.
    pub(super) fn restart_answered(&mut self, id: &ConnectionId) {
        if let Some(o) = self.links.get_mut(id).and_then(|l| l.outage.as_mut()) {
            o.awaiting_answer = false;
        }
    }

    /// Restarts ICE on interrupted links whose restart is due, and closes those whose
    /// deadline passed.
    pub(super) fn restarts_due(&mut self, now: Instant) {
        let interval = self.config.restart_interval.min(MAX_WAIT);
        // A restart's offer made while the signaling session is down would be discarded with
        // the old socket's queue: the restarts wait for `joined` (the deadline does not).
        let signaling_up = self.signaling_up();
        let mut restart = Vec::new();
        let mut expired = Vec::new();
        for (id, l) in &mut self.links {
            let Some(o) = l.outage.as_mut() else { continue };
            if o.deadline <= now {
                expired.push(id.clone());
            } else if signaling_up
                && o.next_restart.is_some_and(|t| {
                    // An answer that has not come in twice the interval was lost with the
                    // signaling socket it was sent on (or the offer was): restart again.
                    t <= now && (!o.awaiting_answer || t + o.answer_wait <= now)
                })
            {
                o.awaiting_answer = true;
                o.next_restart = Some(now + interval);
                restart.push(id.clone());
            }
        }
        for id in restart {
            debug!(%id, "restarting ICE");
            let ice_servers = self.ice_servers().to_vec();
            if let Some(l) = self.links.get_mut(&id) {
                l.ice_servers.clone_from(&ice_servers);
            }
            self.command(PeerCommand::RestartIce { id, ice_servers });
        }
        for id in expired {
            self.close_link(&id, CloseReason::RestoreTimeout, false);
        }
    }
}
