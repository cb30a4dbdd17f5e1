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
//!                 Failed(Unauthorized | RoomFull | RoomNotAllowed | Replaced | Unreachable | Closed
//!                        | Kicked)
//! ```
//!
//! `Joined` means the server accepted the `init` (its `joined` frame), not merely that the
//! WebSocket is open. `Failed` is terminal: the swarm is closed (its links too) and nothing
//! reconnects; start a new swarm to try again.
//!
//! # Tokens
//!
//! A signaling token is short-lived; the swarm asks the application for a fresh one instead
//! of retrying a dead one ([`TokenPolicy`]). It reads the token's `exp` claim (a JWT's
//! payload, not verified: the server does that) and, [`TokenPolicy::refresh_before_expiry`]
//! ahead of it, emits [`TokenRequest::Expiring`]; when the server refuses the token (HTTP
//! 401) it emits [`TokenRequest::Rejected`] and waits up to [`TokenPolicy::wait_for_token`]
//! for one before failing [`FailReason::Unauthorized`]. The application answers with
//! `fast_rtc_swarm::SwarmHandle::set_token`; the next connection attempt
//! uses it (an open session is not interrupted: the server checks the token when a socket
//! connects).

use fast_rtc_protocol::ErrorCode;
use std::time::Duration;
use web_time::Instant;

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
    /// An operator removed this member from the room (the server's `kicked` frame); the
    /// server refuses its token from then on, so it does not reconnect.
    #[error("removed from the room by an operator: {reason}")]
    Kicked {
        /// The operator's reason, as the server sent it.
        reason: String,
    },
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

/// When the swarm asks the application for a fresh signaling token
/// ([`SwarmEvent::TokenRequested`](crate::SwarmEvent::TokenRequested)); see the
/// [module docs](self#tokens).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Ask for a new token this long before the current one's `exp` (default 60 s; a token
    /// that lives shorter than that is asked about at once). `None`: never ask ahead.
    pub refresh_before_expiry: Option<Duration>,
    /// After the server refused the token, wait this long for
    /// `fast_rtc_swarm::SwarmHandle::set_token` before failing
    /// [`FailReason::Unauthorized`] (default 10 s). `Duration::ZERO`: fail at once.
    pub wait_for_token: Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        TokenPolicy {
            refresh_before_expiry: Some(Duration::from_secs(60)),
            wait_for_token: Duration::from_secs(10),
        }
    }
}

/// Why the swarm asks for a fresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenRequest {
    /// The current token expires in this long; a reconnect after that would be refused.
    Expiring {
        /// Time left until the token's `exp`, when the request was made.
        expires_in: Duration,
    },
    /// The server refused the token (HTTP 401). The swarm waits
    /// [`TokenPolicy::wait_for_token`] for a new one, then fails.
    Rejected,
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
    /// Wait for a new token (`fast_rtc_swarm::SwarmHandle::set_token`),
    /// then try again at once; the core fails the session if none comes in time.
    AwaitToken,
    /// Stop: the swarm is closed or has failed.
    Stop,
}

/// The state machine. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Lifecycle {
    policy: ReconnectPolicy,
    tokens: TokenPolicy,
    state: SignalingState,
    failures: u32,
    backoff: Duration,
    /// When the current token expires, if known.
    expires_at: Option<Instant>,
    /// When to emit [`TokenRequest::Expiring`] (once per token).
    refresh_at: Option<Instant>,
    /// Waiting for a token after a refusal, until then.
    token_deadline: Option<Instant>,
    /// A request for the core to report.
    request: Option<TokenRequest>,
}

impl Lifecycle {
    pub(crate) fn new(policy: ReconnectPolicy, tokens: TokenPolicy) -> Self {
        Lifecycle {
            backoff: policy.min_backoff,
            policy,
            tokens,
            state: SignalingState::Disconnected,
            failures: 0,
            expires_at: None,
            refresh_at: None,
            token_deadline: None,
            request: None,
        }
    }

    /// A token request to report, once.
    pub(crate) fn take_request(&mut self) -> Option<TokenRequest> {
        self.request.take()
    }

    /// The shell has a (new) token, which expires in `expires_in` if it says so. Ends a wait
    /// for a token.
    pub(crate) fn token_changed(&mut self, now: Instant, expires_in: Option<Duration>) {
        self.token_deadline = None;
        self.expires_at = expires_in.map(|e| now + e);
        self.refresh_at = expires_in
            .zip(self.tokens.refresh_before_expiry)
            .map(|(e, before)| now + e.saturating_sub(before));
    }

    /// When [`Lifecycle::handle_timeout`] must run next, if ever.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.state.is_failed() {
            return None;
        }
        [self.refresh_at, self.token_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Asks for a token ahead of its expiry, or fails a wait for one that has run out.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<SignalingState> {
        if self.state.is_failed() {
            return None;
        }
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            let expires_in = self
                .expires_at
                .map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
            self.request = Some(TokenRequest::Expiring { expires_in });
        }
        if self.token_deadline.is_some_and(|t| t <= now) {
            self.token_deadline = None;
            return self.fail(FailReason::Unauthorized);
        }
        None
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
    pub(crate) fn transport(
        &mut self,
        now: Instant,
        event: Transport,
    ) -> (Next, Option<SignalingState>) {
        if self.state.is_failed() {
            return (Next::Stop, None);
        }
        match event {
            Transport::Connecting => {
                // An attempt goes ahead (with a new token, if it waited for one).
                self.token_deadline = None;
                (Next::Proceed, self.started())
            }
            Transport::Unauthorized => self.unauthorized(now),
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

    /// A refused token: ask for another and wait, unless waiting is off or tokens keep being
    /// refused for the whole retry budget (an application that answers with the same dead
    /// token must not hammer the server).
    fn unauthorized(&mut self, now: Instant) -> (Next, Option<SignalingState>) {
        self.failures += 1;
        let spent = self
            .policy
            .max_attempts
            .is_some_and(|max| self.failures >= max);
        if self.tokens.wait_for_token.is_zero() || spent {
            return (Next::Stop, self.fail(FailReason::Unauthorized));
        }
        self.token_deadline = Some(now + self.tokens.wait_for_token);
        self.request = Some(TokenRequest::Rejected);
        (Next::AwaitToken, None)
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

    #[allow(clippy::disallowed_methods)] // a starting point; the tests move time by hand
    fn now() -> Instant {
        // One fixed instant for the tests that do not look at time.
        static NOW: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *NOW.get_or_init(Instant::now)
    }

    fn policy(max: u32) -> ReconnectPolicy {
        ReconnectPolicy {
            max_attempts: Some(max),
            ..ReconnectPolicy::default()
        }
    }

    #[test]
    fn failed_attempts_back_off_then_give_up() {
        let mut l = Lifecycle::new(policy(3), TokenPolicy::default());
        assert_eq!(l.started(), Some(SignalingState::Connecting));
        let a = l.transport(now(), Transport::AttemptFailed("refused".into()));
        let b = l.transport(now(), Transport::AttemptFailed("refused".into()));
        assert_eq!(a, (Next::RetryAfter(Duration::from_millis(250)), None));
        assert_eq!(b, (Next::RetryAfter(Duration::from_millis(500)), None));
        let (next, change) = l.transport(now(), Transport::AttemptFailed("last".into()));
        assert_eq!(next, Next::Stop);
        assert_eq!(
            change,
            Some(SignalingState::Failed(FailReason::Unreachable {
                attempts: 3,
                last_error: "last".into()
            }))
        );
        // Terminal: nothing moves it.
        assert_eq!(
            l.transport(now(), Transport::Connecting),
            (Next::Stop, None)
        );
        assert_eq!(l.joined(), None);
    }

    #[test]
    fn a_join_resets_the_budget_and_a_lost_session_reconnects() {
        let mut l = Lifecycle::new(policy(2), TokenPolicy::default());
        l.started();
        l.transport(now(), Transport::AttemptFailed("x".into()));
        assert_eq!(l.joined(), Some(SignalingState::Joined));
        let (next, change) = l.transport(now(), Transport::Lost("reset".into()));
        assert_eq!(next, Next::RetryAfter(Duration::from_millis(250)));
        assert_eq!(change, Some(SignalingState::Reconnecting));
        // One failure is within the fresh budget of 2.
        assert!(matches!(
            l.transport(now(), Transport::AttemptFailed("x".into())),
            (Next::RetryAfter(_), None)
        ));
        assert_eq!(l.joined(), Some(SignalingState::Joined));
    }

    #[test]
    fn a_refused_token_fails_at_once_and_the_first_reason_stays() {
        let no_wait = TokenPolicy {
            wait_for_token: Duration::ZERO,
            ..TokenPolicy::default()
        };
        let mut l = Lifecycle::new(ReconnectPolicy::default(), no_wait);
        l.started();
        let (next, change) = l.transport(now(), Transport::Unauthorized);
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
        let mut l = Lifecycle::new(
            ReconnectPolicy {
                max_attempts: None,
                ..ReconnectPolicy::default()
            },
            TokenPolicy::default(),
        );
        l.started();
        for _ in 0..100 {
            assert!(matches!(
                l.transport(now(), Transport::AttemptFailed("x".into())),
                (Next::RetryAfter(d), None) if d <= Duration::from_secs(8)
            ));
        }
    }

    #[test]
    fn a_refused_token_asks_for_another_and_waits_then_fails() {
        let t0 = now();
        let mut l = Lifecycle::new(policy(8), TokenPolicy::default());
        l.started();
        assert_eq!(
            l.transport(t0, Transport::Unauthorized),
            (Next::AwaitToken, None)
        );
        assert_eq!(l.take_request(), Some(TokenRequest::Rejected));
        assert_eq!(l.take_request(), None, "asked once");
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(l.handle_timeout(t0 + Duration::from_secs(9)), None);
        assert_eq!(
            l.handle_timeout(t0 + Duration::from_secs(10)),
            Some(SignalingState::Failed(FailReason::Unauthorized))
        );
        assert_eq!(l.poll_timeout(), None);
    }

    #[test]
    fn a_new_token_ends_the_wait_and_the_attempt_goes_ahead() {
        let t0 = now();
        let mut l = Lifecycle::new(policy(8), TokenPolicy::default());
        l.started();
        l.transport(t0, Transport::Unauthorized);
        l.token_changed(t0 + Duration::from_secs(1), None);
        assert_eq!(l.poll_timeout(), None, "no wait left, no expiry known");
        assert_eq!(l.handle_timeout(t0 + Duration::from_secs(20)), None);
        assert_eq!(
            l.transport(t0, Transport::Connecting),
            (Next::Proceed, None)
        );
        assert_eq!(l.joined(), Some(SignalingState::Joined));
    }

    #[test]
    fn tokens_refused_for_the_whole_budget_fail() {
        let t0 = now();
        let mut l = Lifecycle::new(policy(3), TokenPolicy::default());
        l.started();
        for _ in 0..2 {
            assert_eq!(
                l.transport(t0, Transport::Unauthorized),
                (Next::AwaitToken, None)
            );
            l.token_changed(t0, None);
        }
        assert_eq!(
            l.transport(t0, Transport::Unauthorized),
            (
                Next::Stop,
                Some(SignalingState::Failed(FailReason::Unauthorized))
            )
        );
    }

    #[test]
    fn an_expiring_token_is_asked_about_ahead_of_its_expiry_once() {
        let t0 = now();
        let mut l = Lifecycle::new(policy(8), TokenPolicy::default());
        l.token_changed(t0, Some(Duration::from_secs(600)));
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(540)));
        assert_eq!(l.handle_timeout(t0 + Duration::from_secs(539)), None);
        assert_eq!(l.take_request(), None);
        l.handle_timeout(t0 + Duration::from_secs(545));
        assert_eq!(
            l.take_request(),
            Some(TokenRequest::Expiring {
                expires_in: Duration::from_secs(55)
            })
        );
        assert_eq!(l.poll_timeout(), None, "once per token");
        // A token shorter-lived than the margin is asked about at once.
        l.token_changed(t0, Some(Duration::from_secs(30)));
        assert_eq!(l.poll_timeout(), Some(t0));
        // No margin: never asked ahead.
        let mut quiet = Lifecycle::new(
            policy(8),
            TokenPolicy {
                refresh_before_expiry: None,
                ..TokenPolicy::default()
            },
        );
        quiet.token_changed(t0, Some(Duration::from_secs(30)));
        assert_eq!(quiet.poll_timeout(), None);
    }
}
