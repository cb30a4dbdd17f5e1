//! The thin async shell: feeds the [`SwarmCore`] from the backend, the signaling transport and a
//! timer, and gives the application a [`SwarmHandle`].
//!
//! The shell decides nothing: every decision is the [`SwarmCore`]'s. It uses only runtime-agnostic
//! primitives (async-channel, event-listener, and the [`Clock`]'s timers), so the driver future
//! runs on any executor: tokio, smol, Bevy's task pools, or the browser's event loop.

use crate::backend::{Buffered, DynBackend, EventReceiver};
use crate::clock::Clock;
use crate::config::ChannelId;
use crate::media::{TrackError, TrackId, TrackState};
use crate::platform::{SENDS_ENCODED_AUDIO, SwarmMedia};
use crate::sans_io::{
    Fanout, Payload, PeerEvent, PeerInfo, SendError, SwarmCore, SwarmEvent, SwarmOutput,
};
use event_listener::Event;
use fast_rtc_protocol::{ClientMsg, ServerMsg, UserId};
use futures_lite::future;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use web_time::Instant;

/// Events kept for the application at most before the driver stops reading from peers (which
/// pushes back on them through SCTP flow control): nothing is dropped, the application must
/// drain its events.
pub const MAX_PENDING_EVENTS: usize = 8192;
/// Outgoing signaling frames kept at most while the signaling transport is slow or down; past
/// this the oldest are dropped (they are only useful to the current signaling session).
pub const MAX_PENDING_SIGNALS: usize = 4096;

pub(crate) struct Inner {
    pub(crate) swarm: SwarmCore,
    backend: DynBackend,
    /// What the platform keeps of this swarm's audio (the browser's sources and playback).
    pub(crate) media: SwarmMedia,
    signals: VecDeque<ClientMsg>,
    events: VecDeque<SwarmEvent>,
    pub(crate) signaling_up: bool,
    /// The built-in signaling client's token, and how many times it was set.
    pub(crate) token: String,
    pub(crate) token_version: u64,
}

impl Inner {
    /// Routes everything the swarm produced. Never blocks.
    pub(crate) fn drain(&mut self) {
        while let Some(out) = self.swarm.poll_output() {
            match out {
                SwarmOutput::Signal(msg) => {
                    if self.signals.len() >= MAX_PENDING_SIGNALS {
                        self.signals.pop_front();
                    }
                    self.signals.push_back(msg);
                }
                SwarmOutput::Command(cmd) => self.backend.execute(cmd),
                SwarmOutput::Event(ev) => {
                    self.media.observe(&ev);
                    self.events.push_back(ev);
                }
            }
        }
    }

    pub(crate) fn take_signal(&mut self) -> Option<ClientMsg> {
        self.signals.pop_front()
    }

    pub(crate) fn clear_signals(&mut self) {
        self.signals.clear();
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
    events_ready: Event,
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
        let expires_in = crate::token::expires_in(&token, self.clock.wall_now());
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
            let r = f(&mut inner, self.clock.now());
            inner.drain();
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

/// The application's side of a running swarm. Cheap to clone; every method returns at once.
///
/// Dropping every handle closes the swarm (as [`SwarmHandle::close`]).
pub struct SwarmHandle {
    shared: Arc<Shared>,
    _alive: Arc<HandleToken>,
}

/// Closes the swarm when the last handle goes.
struct HandleToken(Arc<Shared>);

impl Drop for HandleToken {
    fn drop(&mut self) {
        self.0.with_swarm(|s, _| s.close());
    }
}

impl Clone for SwarmHandle {
    fn clone(&self) -> Self {
        SwarmHandle {
            shared: self.shared.clone(),
            _alive: self._alive.clone(),
        }
    }
}

impl SwarmHandle {
    /// The state it shares with the driver (for the platform's own calls).
    #[allow(dead_code)] // the browser's audio calls use it
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        SwarmHandle {
            _alive: Arc::new(HandleToken(shared.clone())),
            shared,
        }
    }

    /// Sends to one peer (see [`SwarmCore::send`]). Refused with [`SendError::Full`] while the
    /// link's send queue is full ([`SwarmHandle::buffered_amount`]); nothing is dropped
    /// silently.
    pub fn send(
        &self,
        peer: &UserId,
        channel: ChannelId,
        payload: impl Into<Payload>,
    ) -> Result<(), SendError> {
        let payload = payload.into();
        self.shared.with_inner(|inner, _| {
            let messages = inner.swarm.wire_messages(payload.len());
            if let Some(id) = inner.swarm.link_to(peer)
                && !inner.backend.buffered(&id).has_room(messages)
            {
                return Err(SendError::Full);
            }
            inner.swarm.send(peer, channel, payload)
        })
    }

    /// Sends to every peer with an open link (see [`SwarmCore::broadcast_where`]); peers whose
    /// send queue is full are refused with [`SendError::Full`] and listed in the result.
    pub fn broadcast(
        &self,
        channel: ChannelId,
        payload: impl Into<Payload>,
    ) -> Result<Fanout, SendError> {
        let payload = payload.into();
        self.shared.with_inner(|inner, _| {
            let Inner { swarm, backend, .. } = inner;
            let messages = swarm.wire_messages(payload.len());
            swarm.broadcast_where(channel, payload, |id| {
                backend.buffered(id).has_room(messages)
            })
        })
    }

    /// What waits to be sent to `peer` (zero if there is no open link).
    pub fn buffered_amount(&self, peer: &UserId) -> Buffered {
        let inner = self.shared.lock();
        inner
            .swarm
            .link_to(peer)
            .map(|id| inner.backend.buffered(&id))
            .unwrap_or_default()
    }

    /// RTCPeerConnections alive in the backend (open links, handshakes and parked offers).
    pub fn connection_count(&self) -> usize {
        self.shared.lock().backend.connection_count()
    }

    /// Starts sending on declared audio track `track` ([`crate::media`]):
    /// [`SwarmCore::add_track`]. Natively (feature `voice`), `AudioSender` does this and
    /// encodes the frames.
    ///
    /// In the browser the track's audio is a `MediaStreamTrack` given with
    /// `SwarmHandle::set_audio_source`; it is sent while the track is live.
    pub fn add_track(&self, track: TrackId) -> Result<(), TrackError> {
        self.set_track(track, |s| s.add_track(track))
    }

    /// Mutes or unmutes an added track: [`SwarmCore::mute_track`]. In the browser a muted
    /// track's senders send nothing (see `SwarmHandle::set_audio_source`).
    pub fn mute_track(&self, track: TrackId, muted: bool) -> Result<(), TrackError> {
        self.set_track(track, |s| s.mute_track(track, muted))
    }

    /// Stops sending on an added track: [`SwarmCore::remove_track`].
    pub fn remove_track(&self, track: TrackId) -> Result<(), TrackError> {
        self.set_track(track, |s| s.remove_track(track))
    }

    /// Changes this member's track `track` with `change`, then tells the platform's media
    /// the track's new state.
    fn set_track(
        &self,
        track: TrackId,
        change: impl FnOnce(&mut SwarmCore) -> Result<(), TrackError>,
    ) -> Result<(), TrackError> {
        self.shared.with_inner(|inner, _| {
            change(&mut inner.swarm)?;
            inner
                .media
                .track_changed(track, inner.swarm.local_track(track));
            Ok(())
        })
    }

    /// This member's track `track`: [`SwarmCore::local_track`].
    pub fn local_track(&self, track: TrackId) -> Option<TrackState> {
        self.shared.with_swarm(|s, _| s.local_track(track))
    }

    /// `peer`'s track `track` as it announced it: [`SwarmCore::remote_track`].
    pub fn remote_track(&self, peer: &UserId, track: TrackId) -> Option<TrackState> {
        self.shared.with_swarm(|s, _| s.remote_track(peer, track))
    }

    /// Sends one encoded audio packet (20 ms of Opus) to every open link:
    /// [`SwarmCore::send_audio`]. Refused in the browser with
    /// [`TrackError::BrowserSource`]: there a track's audio is a `MediaStreamTrack` the
    /// browser encodes itself (`SwarmHandle::set_audio_source`).
    pub fn send_audio(&self, track: TrackId, packet: Vec<u8>) -> Result<usize, TrackError> {
        if !SENDS_ENCODED_AUDIO {
            return Err(TrackError::BrowserSource);
        }
        self.shared.with_swarm(|s, _| s.send_audio(track, packet))
    }

    /// Closes every link to `peer`, telling it.
    pub fn close_peer(&self, peer: &UserId) -> bool {
        self.shared.with_swarm(|s, _| s.close_peer(peer))
    }

    /// Leaves the room: tells the server and every peer, closes every connection. The driver
    /// finishes once the `close` frame is sent.
    pub fn close(&self) {
        self.shared.with_swarm(|s, _| s.close());
    }

    /// Whether the swarm was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().swarm.is_closed()
    }

    /// Peers with an open link.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.shared.lock().swarm.peers()
    }

    /// Whether the signaling socket is open (links stay up while it is not). Joined is more:
    /// see [`SwarmHandle::signaling_state`].
    pub fn signaling_connected(&self) -> bool {
        self.shared.lock().signaling_up
    }

    /// The signaling session's state: connecting, joined (the server accepted this member),
    /// reconnecting, or failed with its reason. Every change is also a
    /// [`SwarmEvent::Signaling`].
    pub fn signaling_state(&self) -> crate::SignalingState {
        self.shared.lock().swarm.signaling_state().clone()
    }

    /// Gives the built-in signaling client a fresh token: the answer to
    /// [`SwarmEvent::TokenRequested`](crate::SwarmEvent::TokenRequested), and fine to call
    /// at any time. The next connection attempt uses it (at once if the swarm is waiting for a
    /// token after a refusal); an open session is not interrupted. Does nothing useful with
    /// [`Signaling::External`](crate::Signaling::External), whose transport is yours.
    pub fn set_token(&self, token: impl Into<String>) {
        self.shared.set_token(token.into());
    }

    /// The next event, if one is waiting (for game loops).
    pub fn try_recv(&self) -> Option<SwarmEvent> {
        let ev = self.shared.lock().events.pop_front();
        if ev.is_some() {
            // room for more: the driver may read from peers again
            self.shared.changed.notify(usize::MAX);
        }
        ev
    }

    /// The next event; `None` once the swarm is closed and every event was taken.
    pub async fn recv(&self) -> Option<SwarmEvent> {
        loop {
            let listener = self.shared.events_ready.listen();
            {
                let mut inner = self.shared.lock();
                if let Some(ev) = inner.events.pop_front() {
                    drop(inner);
                    self.shared.changed.notify(usize::MAX);
                    return Some(ev);
                }
                if inner.swarm.is_closed() {
                    return None;
                }
            }
            listener.await;
        }
    }

    /// The events as a stream (ends when the swarm is closed and drained).
    pub fn events(&self) -> impl futures_lite::Stream<Item = SwarmEvent> + '_ {
        futures_lite::stream::unfold(self, |h| async move { h.recv().await.map(|ev| (ev, h)) })
    }

    /// Bring-your-own signaling: a frame from the server, for a swarm made with
    /// [`Signaling::External`](crate::Signaling::External).
    pub fn dispatch(&self, msg: ServerMsg) {
        self.shared.with_swarm(|s, now| s.handle_signal(now, msg));
    }

    /// Bring-your-own signaling: the next frame to send to the server, if any.
    pub fn try_next_signal(&self) -> Option<ClientMsg> {
        self.shared.lock().take_signal()
    }

    /// Bring-your-own signaling: waits for the next frame to send to the server; `None` once
    /// the swarm is closed and its last frame (`close`) was taken.
    pub async fn next_signal(&self) -> Option<ClientMsg> {
        loop {
            let listener = self.shared.signals_ready.listen();
            {
                let mut inner = self.shared.lock();
                if let Some(msg) = inner.take_signal() {
                    return Some(msg);
                }
                if inner.swarm.is_closed() {
                    return None;
                }
            }
            listener.await;
        }
    }
}

/// Feeds backend events and timeouts into the swarm until it is closed. Runs beside the
/// signaling loop in the driver future.
pub(crate) async fn peer_loop(shared: Arc<Shared>, events: EventReceiver) {
    loop {
        let listener = shared.changed.listen();
        let (deadline, room, closed) = {
            let inner = shared.lock();
            (
                inner.swarm.poll_timeout(),
                inner.events.len() < MAX_PENDING_EVENTS,
                inner.swarm.is_closed(),
            )
        };
        if closed {
            return;
        }
        // A due deadline first: `future::or` below prefers peer events, which under a steady
        // stream of them would otherwise starve timeouts and pings.
        if deadline.is_some_and(|at| at <= shared.clock.now()) {
            shared.with_swarm(|s, now| s.handle_timeout(now));
            continue;
        }
        enum DriverWake {
            Peer(Option<(fast_rtc_protocol::ConnectionId, PeerEvent)>),
            Timer,
            Changed,
        }
        let peer = async {
            if room {
                DriverWake::Peer(events.recv().await.ok())
            } else {
                future::pending().await
            }
        };
        let timer = async {
            match deadline {
                Some(at) => {
                    shared.clock.sleep_until(at).await;
                    DriverWake::Timer
                }
                None => future::pending().await,
            }
        };
        let changed = async {
            listener.await;
            DriverWake::Changed
        };
        match future::or(peer, future::or(timer, changed)).await {
            DriverWake::Peer(Some((id, ev))) => {
                shared.with_swarm(|s, now| s.handle_peer(now, &id, ev))
            }
            DriverWake::Peer(None) => return,
            DriverWake::Timer => shared.with_swarm(|s, now| s.handle_timeout(now)),
            DriverWake::Changed => {}
        }
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
