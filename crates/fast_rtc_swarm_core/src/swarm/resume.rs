//! Resuming the signaling session ([the module docs](super#resuming-the-signaling-session)):
//! what `init` asks for, and what a `joined` that resumed (or did not) means for the parked
//! offers.

use super::SwarmCore;
use crate::lifecycle::SignalingState;
use fast_rtc_protocol::ResumeToken;
use tracing::debug;

impl SwarmCore {
    /// The `resume` field of the next `init`: the session's token once a `joined` gave one,
    /// else the request for one ([`ResumeToken::request`]); `None` when
    /// [`SwarmConfig::resume_session`](crate::SwarmConfig::resume_session) is off.
    pub(super) fn init_resume(&self) -> Option<ResumeToken> {
        self.config.resume_session.then(|| {
            self.resume_token
                .clone()
                .unwrap_or_else(ResumeToken::request)
        })
    }

    /// The server's `joined`: keeps its token for the next reconnect (none: the server does
    /// not offer resumption, the next `init` asks again). A rejoin that tried to resume and
    /// was not resumed is a fresh session: the parked offers are stale (closed here; fresh
    /// ones follow). A resumed one goes on as it was: parked offers, links and restarts.
    pub(super) fn session_joined(&mut self, token: Option<ResumeToken>, resumed: bool) {
        self.resume_token = token;
        if std::mem::take(&mut self.parked_await_joined) && !resumed {
            self.close_parked();
        }
        debug!(resumed, "signaling session joined");
    }

    /// Whether signals sent now may reach the server: not while the session is known lost
    /// and being re-established ([`SignalingState::Reconnecting`]: what is queued then is
    /// thrown away with the old socket). Any other state counts as up, `Connecting` too: a
    /// transport of the application's own may never report `joined` (the reference server
    /// sends none).
    pub(super) fn signaling_up(&self) -> bool {
        *self.lifecycle.state() != SignalingState::Reconnecting
    }

    /// Whether a `joined` gave this session a resume token it will present when it
    /// reconnects.
    pub fn resumable(&self) -> bool {
        self.resume_token.is_some()
    }
}
