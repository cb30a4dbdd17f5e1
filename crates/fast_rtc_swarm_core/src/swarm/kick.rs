//! An operator removed a member from the room: the server's `kicked` frame (its admin API).
//!
//! About this member: the session fails for good with [`FailReason::Kicked`] (the server
//! closes the socket and refuses the token, so reconnecting cannot help). About another
//! member: every link to it closes with [`CloseReason::Kicked`], open ones included (a plain
//! `leaveSwarm` leaves an open link to decide for itself), and no retry or handover to it goes
//! on.

use super::SwarmCore;
use crate::lifecycle::FailReason;
use crate::swarm::io::CloseReason;
use fast_rtc_protocol::{ConnectionId, UserId};
use tracing::info;

impl SwarmCore {
    /// The server's `kicked` frame for `user_id`, with the operator's `reason`.
    pub(super) fn kicked(&mut self, user_id: UserId, reason: String) {
        if self.me.as_ref() == Some(&user_id) {
            info!(%reason, "removed from the room by an operator");
            let change = self.lifecycle.fail(FailReason::Kicked { reason });
            self.signaling_changed(change);
            return;
        }
        info!(peer = %user_id, %reason, "a member was removed by an operator");
        self.retries.remove(&user_id);
        self.handover.remove(&user_id);
        let mut ids: Vec<ConnectionId> = self
            .links
            .iter()
            .filter(|(_, l)| l.remote.as_ref() == Some(&user_id))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        for id in ids {
            self.close_link(&id, CloseReason::Kicked, false);
        }
    }
}
