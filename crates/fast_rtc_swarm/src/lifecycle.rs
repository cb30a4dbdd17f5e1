//! The signaling session's lifecycle as the game sees it ([`SignalingState`]), and the
//! decisions behind it: when to retry a connection, when to give up and why
//! ([`FailReason`]). Pure: no sockets, no clocks; the [`SwarmCore`](crate::SwarmCore) owns
//! one and the shell reports what its transport did ([`Transport`]).
//!
//! ```text
//! Disconnected ──start──▶ Connecting ──joined──▶ Joined ──socket lost──▶ Reconnecting
//!                             │   ▲                ▲                      │    │
//!                  attempt    │   │ retry          └──────joined──────────┘    │
//!                  failed ────┘   │ (backoff)                                  │
//!                             ▼                                                ▼
//!                 Failed(Unauthorized | RoomFull | RoomNotAllowed | Replaced | Unreachable | Closed)
//! ```
//!
//! `Joined` means the server accepted the `init` (its `joined` frame), not merely that the
//! WebSocket is open. `Failed` is terminal: the swarm is closed (its links too) and nothing
//! reconnects; start a new swarm to try again.

use fast_rtc_protocol::ErrorCode;
use std::time::Duration;

/// The signaling session's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalingState {
    /// Not started.
    #[default]
    Disconnected,
    /// Connecting and joining for the first time (attempts are retried with backoff).
    Connecting,
    /// The server accepted this member into the room.
    Joined,
    /// Was joined; the signaling connection was lost and is being re-established. Open peer
    /// links stay up meanwhile; new members cannot reach this one until it is joined again.
    Reconnecting,
    /// Over for good, and why. The swarm is closed.
    Failed(FailReason),
}

impl SignalingState {
    /// Whether the state is [`SignalingState::Failed`].
    pub fn is_failed(&self) -> bool {
        matches!(self, SignalingState::Failed(_))
    }
}

/// Why a swarm's signaling ended ([`SignalingState::Failed`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FailReason {
    /// The server refused the token (HTTP 401: missing, invalid or expired). Retrying the same
    /// token cannot help. In a browser the HTTP status is hidden from pages, so a refused token
    /// looks like [`FailReason::Unreachable`] there.
    #[error("the signaling server refused the token")]
    Unauthorized,
    /// The room has as many members as the server allows.
    #[error("the room is full")]
    RoomFull,
    /// The token does not grant this room.
    #[error("the token does not grant this room")]
    RoomNotAllowed,
    /// Another session joined the room with this identity (a second window or tab); this one
    /// must not reconnect, or the two would take turns kicking each other out.
    #[error("another session joined with this identity")]
    Replaced,
    /// Every attempt of the retry budget ([`ReconnectPolicy::max_attempts`]) failed.
    #[error("the signaling server was unreachable for {attempts} attempts (last: {last_error})")]
    Unreachable {
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        last_error: String,
    },
    /// This side closed the swarm ([`SwarmCore::close`](crate::SwarmCore::close), or every
    /// handle dropped).
    #[error("the swarm was closed")]
    Closed,
}

/// How a swarm retries its signaling connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Consecutive failed connection attempts before the swarm gives up with
    /// [`FailReason::Unreachable`] (`None`: never give up). The count restarts at every join.
    /// Default 8: with the default backoff, about 24 s of a refused connection (plus up to
    /// 10 s per attempt that hangs).
    pub max_attempts: Option<u32>,
    /// Wait before the first retry (default 250 ms); it doubles after each failed attempt.
    pub min_backoff: Duration,
    /// The longest wait between attempts (default 8 s).
    pub max_backoff: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            max_attempts: Some(8),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// What the shell's signaling transport did, for
/// [`SwarmCore::handle_transport`](crate::SwarmCore::handle_transport).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// A connection attempt is starting.
    Connecting,
    /// The server refused the token (HTTP 401).
    Unauthorized,
    /// The attempt failed (unreachable, TLS, timeout, another HTTP status).
    AttemptFailed(String),
    /// The open socket ended (or fell silent).
    Lost(String),
}

/// What the shell does next, from
/// [`SwarmCore::handle_transport`](crate::SwarmCore::handle_transport).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Carry on (the attempt goes ahead).
    Proceed,
    /// Try again after this long.
    RetryAfter(Duration),
    /// Stop: the swarm is closed or has failed.
    Stop,
}

/// The state machine. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Lifecycle {
    policy: ReconnectPolicy,
    state: SignalingState,
    failures: u32,
    backoff: Duration,
}

impl Lifecycle {
    pub(crate) fn new(policy: ReconnectPolicy) -> Self {
        Lifecycle {
            backoff: policy.min_backoff,
            policy,
            state: SignalingState::Disconnected,
            failures: 0,
        }
    }

    pub(crate) fn state(&self) -> &SignalingState {
        &self.state
    }

    fn set(&mut self, state: SignalingState) -> Option<SignalingState> {
        if self.state == state || self.state.is_failed() {
            return None;
        }
        self.state = state.clone();
        Some(state)
    }

    /// The swarm started (or the transport is connecting): `Connecting`, or `Reconnecting`
    /// when it was joined before.
    pub(crate) fn started(&mut self) -> Option<SignalingState> {
        match self.state {
            SignalingState::Disconnected => self.set(SignalingState::Connecting),
            _ => None,
        }
    }

    /// The server's `joined`.
    pub(crate) fn joined(&mut self) -> Option<SignalingState> {
        self.failures = 0;
        self.backoff = self.policy.min_backoff;
        self.set(SignalingState::Joined)
    }

    /// A `signal_error` code that ends the session, if `code` is one.
    pub(crate) fn fatal(code: ErrorCode) -> Option<FailReason> {
        match code {
            ErrorCode::RoomFull => Some(FailReason::RoomFull),
            ErrorCode::RoomNotAllowed => Some(FailReason::RoomNotAllowed),
            ErrorCode::DuplicateIdentity => Some(FailReason::Replaced),
            _ => None,
        }
    }

    /// Ends the session for `reason` (a later reason does not replace the first).
    pub(crate) fn fail(&mut self, reason: FailReason) -> Option<SignalingState> {
        self.set(SignalingState::Failed(reason))
    }

    /// What the transport did, and what to do next. `Failed` states are returned through
    /// the second value so the core can close.
    pub(crate) fn transport(&mut self, event: Transport) -> (Next, Option<SignalingState>) {
        if self.state.is_failed() {
            return (Next::Stop, None);
        }
        match event {
            Transport::Connecting => (Next::Proceed, self.started()),
            Transport::Unauthorized => (Next::Stop, self.fail(FailReason::Unauthorized)),
            Transport::AttemptFailed(error) => self.attempt_failed(error),
            Transport::Lost(error) => {
                if self.state == SignalingState::Joined {
                    // A session that worked: reconnect at once-ish, with a fresh budget.
                    self.failures = 0;
                    self.backoff = self.policy.min_backoff;
                    let change = self.set(SignalingState::Reconnecting);
                    (Next::RetryAfter(self.policy.min_backoff), change)
                } else {
                    // Open but never joined: as good as a failed attempt.
                    self.attempt_failed(error)
                }
            }
        }
    }

    fn attempt_failed(&mut self, error: String) -> (Next, Option<SignalingState>) {
        self.failures += 1;
        if self
            .policy
            .max_attempts
            .is_some_and(|max| self.failures >= max)
        {
            let reason = FailReason::Unreachable {
                attempts: self.failures,
                last_error: error,
            };
            return (Next::Stop, self.fail(reason));
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(self.policy.max_backoff);
        (Next::RetryAfter(wait), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max: u32) -> ReconnectPolicy {
        ReconnectPolicy {
            max_attempts: Some(max),
            ..ReconnectPolicy::default()
        }
    }

    #[test]
    fn failed_attempts_back_off_then_give_up() {
        let mut l = Lifecycle::new(policy(3));
        assert_eq!(l.started(), Some(SignalingState::Connecting));
        let a = l.transport(Transport::AttemptFailed("refused".into()));
        let b = l.transport(Transport::AttemptFailed("refused".into()));
        assert_eq!(a, (Next::RetryAfter(Duration::from_millis(250)), None));
        assert_eq!(b, (Next::RetryAfter(Duration::from_millis(500)), None));
        let (next, change) = l.transport(Transport::AttemptFailed("last".into()));
        assert_eq!(next, Next::Stop);
        assert_eq!(
            change,
            Some(SignalingState::Failed(FailReason::Unreachable {
                attempts: 3,
                last_error: "last".into()
            }))
        );
        // Terminal: nothing moves it.
        assert_eq!(l.transport(Transport::Connecting), (Next::Stop, None));
        assert_eq!(l.joined(), None);
    }

    #[test]
    fn a_join_resets_the_budget_and_a_lost_session_reconnects() {
        let mut l = Lifecycle::new(policy(2));
        l.started();
        l.transport(Transport::AttemptFailed("x".into()));
        assert_eq!(l.joined(), Some(SignalingState::Joined));
        let (next, change) = l.transport(Transport::Lost("reset".into()));
        assert_eq!(next, Next::RetryAfter(Duration::from_millis(250)));
        assert_eq!(change, Some(SignalingState::Reconnecting));
        // One failure is within the fresh budget of 2.
        assert!(matches!(
            l.transport(Transport::AttemptFailed("x".into())),
            (Next::RetryAfter(_), None)
        ));
        assert_eq!(l.joined(), Some(SignalingState::Joined));
    }

    #[test]
    fn a_refused_token_fails_at_once_and_the_first_reason_stays() {
        let mut l = Lifecycle::new(ReconnectPolicy::default());
        l.started();
        let (next, change) = l.transport(Transport::Unauthorized);
        assert_eq!(next, Next::Stop);
        assert_eq!(
            change,
            Some(SignalingState::Failed(FailReason::Unauthorized))
        );
        assert_eq!(l.fail(FailReason::Closed), None);
        assert_eq!(l.state(), &SignalingState::Failed(FailReason::Unauthorized));
    }

    #[test]
    fn fatal_codes() {
        assert_eq!(
            Lifecycle::fatal(ErrorCode::DuplicateIdentity),
            Some(FailReason::Replaced)
        );
        assert_eq!(
            Lifecycle::fatal(ErrorCode::RoomFull),
            Some(FailReason::RoomFull)
        );
        assert_eq!(Lifecycle::fatal(ErrorCode::RateLimited), None);
    }

    #[test]
    fn no_budget_retries_forever() {
        let mut l = Lifecycle::new(ReconnectPolicy {
            max_attempts: None,
            ..ReconnectPolicy::default()
        });
        l.started();
        for _ in 0..100 {
            assert!(matches!(
                l.transport(Transport::AttemptFailed("x".into())),
                (Next::RetryAfter(d), None) if d <= Duration::from_secs(8)
            ));
        }
    }
}
