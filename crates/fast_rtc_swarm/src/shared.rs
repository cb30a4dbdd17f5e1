//! The state a running swarm's handle(s) and driver share: the [`SwarmCore`], the backend that
//! carries out its commands, the platform's media, and the queues of events for the application
//! and of frames for the signaling transport. Every change to the core goes through
//! [`Shared::with_swarm`] / [`Shared::with_inner`], which drain the core's outputs (the drain
//! contract) and wake whoever waits on them.

use crate::backend::DynBackend;
use crate::clock::Clock;
use crate::platform::SwarmMedia;
use event_listener::Event;
use fast_rtc_protocol::ClientMsg;
use fast_rtc_swarm_core::{PeerEvent, SwarmCore, SwarmEvent, SwarmFault, SwarmOutput};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tracing::warn;
use web_time::Instant;

/// Events kept for the application at most before the driver stops reading from peers (which
/// pushes back on them through SCTP flow control): nothing is dropped, the application must
/// drain its events.
pub const MAX_PENDING_EVENTS: usize = 8192;
/// Outgoing signaling frames kept at most while the signaling transport is slow or down; past
/// this the oldest are dropped (they are only useful to the current signaling session), and
/// the application gets a [`SwarmFault::Dropped`].
pub const MAX_PENDING_SIGNALS: usize = 4096;

pub(crate) struct Inner {
    pub(crate) swarm: SwarmCore,
    pub(crate) backend: DynBackend,
    /// What the platform keeps of this swarm's audio (the browser's sources and playback).
    pub(crate) media: SwarmMedia,
    signals: VecDeque<ClientMsg>,
    /// Whether frames were dropped since `signals` last emptied (reported once).
    signals_overflowed: bool,
    pub(crate) events: VecDeque<SwarmEvent>,
    pub(crate) signaling_up: bool,
    /// The built-in signaling client's token, and how many times it was set.
    pub(crate) token: String,
    pub(crate) token_version: u64,
}

impl Inner {
    /// Routes everything the swarm produced, and hands it the connections the backend failed
    /// while carrying out its commands ([`Backend::take_failed`](crate::backend::Backend)).
    /// Never blocks.
    pub(crate) fn drain(&mut self, now: Instant) {
        loop {
            while let Some(out) = self.swarm.poll_output() {
                match out {
                    SwarmOutput::Signal(msg) => self.push_signal(msg),
                    SwarmOutput::Command(cmd) => self.backend.execute(cmd),
                    SwarmOutput::Event(ev) => {
                        self.media.observe(&ev);
                        self.events.push_back(ev);
                    }
                }
            }
            // Each failed connection is gone from the backend: this ends.
            let failed = self.backend.take_failed();
            if failed.is_empty() {
                return;
            }
            for (id, failure) in failed {
                self.swarm.handle_peer(now, &id, PeerEvent::Failed(failure));
            }
        }
    }

    /// Queues a signaling frame; past [`MAX_PENDING_SIGNALS`] the oldest is dropped, and the
    /// application is told once per overflow ([`SwarmFault::Dropped`]).
    fn push_signal(&mut self, msg: ClientMsg) {
        if self.signals.len() >= MAX_PENDING_SIGNALS {
            self.signals.pop_front();
            if !self.signals_overflowed {
                self.signals_overflowed = true;
                warn!("signaling frames pile up: dropping the oldest");
                self.events
                    .push_back(SwarmEvent::Fault(SwarmFault::Dropped(format!(
                        "signaling frames: more than {MAX_PENDING_SIGNALS} wait for the signaling \
                     server; the oldest are dropped (links they were for may fail and be retried)"
                    ))));
            }
        }
        self.signals.push_back(msg);
    }

    pub(crate) fn take_signal(&mut self) -> Option<ClientMsg> {
        let msg = self.signals.pop_front();
        if self.signals.is_empty() {
            self.signals_overflowed = false;
        }
        msg
    }

    pub(crate) fn clear_signals(&mut self) {
        self.signals.clear();
        self.signals_overflowed = false;
    }
}

/// State shared by the handle(s) and the driver.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// Where the shell reads the time.
    pub(crate) clock: Clock,
    /// The swarm changed (new timer, new outputs): wake the driver.
    pub(crate) changed: Event,
    /// New events for the application.
    pub(crate) events_ready: Event,
    /// New outgoing signals.
    pub(crate) signals_ready: Event,
}

impl Shared {
    pub(crate) fn new(
        swarm: SwarmCore,
        backend: DynBackend,
        clock: Clock,
        media: SwarmMedia,
    ) -> Arc<Self> {
        Arc::new(Shared {
            clock,
            inner: Mutex::new(Inner {
                swarm,
                backend,
                media,
                signals: VecDeque::new(),
                signals_overflowed: false,
                events: VecDeque::new(),
                signaling_up: false,
                token: String::new(),
                token_version: 0,
            }),
            changed: Event::new(),
            events_ready: Event::new(),
            signals_ready: Event::new(),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the swarm half-updated in a way that
        // matters more than losing it; keep going with the data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the swarm, routes its outputs and wakes whoever waits on them.
    pub(crate) fn with_swarm<R>(&self, f: impl FnOnce(&mut SwarmCore, Instant) -> R) -> R {
        self.with_inner(|inner, now| f(&mut inner.swarm, now))
    }

    /// Sets the signaling token: the next connection attempt uses it, and the core learns when
    /// it expires (read from the token at the wall-clock time).
    pub(crate) fn set_token(&self, token: String) {
        let expires_in = fast_rtc_swarm_core::token::expires_in(&token, self.clock.wall_now());
        self.with_inner(|inner, now| {
            inner.token = token;
            inner.token_version += 1;
            inner.swarm.token_changed(now, expires_in);
        });
        // The signaling loop may be waiting for it.
        self.changed.notify(usize::MAX);
    }

    /// [`Shared::with_swarm`] for what also needs the backend.
    pub(crate) fn with_inner<R>(&self, f: impl FnOnce(&mut Inner, Instant) -> R) -> R {
        let (r, has_events, has_signals, changed) = {
            let mut inner = self.lock();
            let before = (inner.swarm.poll_timeout(), inner.swarm.is_closed());
            let now = self.clock.now();
            let r = f(&mut inner, now);
            inner.drain(now);
            let after = (inner.swarm.poll_timeout(), inner.swarm.is_closed());
            (
                r,
                !inner.events.is_empty(),
                !inner.signals.is_empty(),
                before != after,
            )
        };
        // The driver waits on a new deadline or the swarm closing; a send changes neither, so it
        // does not wake the driver (a context switch per message otherwise).
        if changed {
            self.changed.notify(usize::MAX);
        }
        if has_events {
            self.events_ready.notify(usize::MAX);
        }
        if has_signals {
            self.signals_ready.notify(usize::MAX);
        }
        r
    }
}

/// Waits until the swarm has an outgoing signal or is closed with none left.
pub(crate) async fn wait_signal(shared: &Shared) {
    loop {
        let listener = shared.signals_ready.listen();
        {
            let inner = shared.lock();
            if !inner.signals.is_empty() || inner.swarm.is_closed() {
                return;
            }
        }
        listener.await;
    }
}
