//! [`SwarmHandle`]: the application's side of a running swarm.

use crate::backend::Buffered;
use crate::platform::SENDS_ENCODED_AUDIO;
use crate::platform::access::SwarmAccess;
use crate::shared::{Inner, Shared};
use fast_rtc_protocol::{ClientMsg, ConnectionId, ServerMsg, UserId};
use fast_rtc_swarm_core::{
    ChannelId, Fanout, Payload, PeerInfo, SendError, SignalingState, SwarmCore, SwarmEvent,
    TrackError, TrackId, TrackState,
};
use std::sync::Arc;

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

    /// Starts sending on declared audio track `track` ([`fast_rtc_swarm_core::media`]):
    /// [`SwarmCore::add_track`]. Natively (feature `voice`), `AudioSender` does this and
    /// encodes the frames.
    ///
    /// In the browser the track's audio is a `MediaStreamTrack` given with
    /// `BrowserAudio::set_audio_source`; it is sent while the track is live.
    pub fn add_track(&self, track: TrackId) -> Result<(), TrackError> {
        self.set_track(track, |s| s.add_track(track))
    }

    /// Mutes or unmutes an added track: [`SwarmCore::mute_track`]. In the browser a muted
    /// track's senders send nothing (see `BrowserAudio::set_audio_source`).
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
    /// browser encodes itself (`BrowserAudio::set_audio_source`).
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
    pub fn signaling_state(&self) -> SignalingState {
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

/// The platform's media code works on a swarm through this (natively `AudioSender`, in the
/// browser `BrowserAudio`): the handle calls down, the platform never names it.
impl SwarmAccess for SwarmHandle {
    fn add_track(&self, track: TrackId) -> Result<(), TrackError> {
        SwarmHandle::add_track(self, track)
    }

    fn send_audio(&self, track: TrackId, packet: Vec<u8>) -> Result<usize, TrackError> {
        SwarmHandle::send_audio(self, track, packet)
    }

    fn link_to(&self, peer: &UserId) -> Option<ConnectionId> {
        self.shared.lock().swarm.link_to(peer)
    }

    fn media_key(&self) -> Result<u64, TrackError> {
        let inner = self.shared.lock();
        if inner.swarm.is_closed() {
            return Err(TrackError::Closed);
        }
        Ok(inner.media.key())
    }
}
