//! Voice in the browser: the declared audio tracks on each `RTCPeerConnection`, the sources
//! the application gives them (`MediaStreamTrack`s), and the playback of the peers' tracks.
//!
//! # Sending
//!
//! Every link negotiates one send-and-receive audio transceiver per declared track from its
//! first description ([`fast_rtc_swarm_core::media`]). An offering connection adds them with
//! `addTransceiver("audio", {direction: "sendrecv"})` in declaration order before its offer;
//! an answering connection takes the audio transceivers the remote offer created, in the
//! offer's order, and makes them `sendrecv` (JSEP gives an answerer's offer sections only to
//! transceivers made by `addTrack`, which needs a track at hand, so the answerer adopts the
//! offer's instead). Either way the `n`-th audio section is the `n`-th declared track, and the
//! core names it in the signaled SDP ([`fast_rtc_swarm_core::sdp::name_audio_streams`]), so a webrtc-rs peer
//! and a browser both map it to the same [`TrackId`].
//!
//! The audio itself is the application's `MediaStreamTrack` (a microphone from
//! `getUserMedia`, a WebAudio graph's `MediaStreamAudioDestinationNode`):
//! [`BrowserAudio::set_audio_source`]. Each link's sender of a track carries that source
//! exactly while the core says the track is live ([`SwarmHandle::add_track`](crate::SwarmHandle::add_track), not muted), and
//! nothing otherwise: mute is `replaceTrack(null)`, not `track.enabled = false`. A disabled
//! track still sends (silence frames, about 1 kbit/s per link with DTX), and `enabled` is a
//! property of the application's own track object, shared with whatever else it feeds (a
//! local level meter, a recording); `replaceTrack(null)` stops the packets on our senders
//! only, needs no renegotiation, and unmuting hands the same source back without asking for
//! the microphone again.
//!
//! # Receiving
//!
//! A remote track (`ontrack`) is matched to its [`TrackId`] by its stream id, the declared
//! name. Each one is played at once through an `<audio>` element of its own (not in the
//! document) whose volume is the peer's ([`BrowserAudio::set_peer_volume`], 1.0 by default;
//! the element takes 0..=1). Its `MediaStream` is there for the application's own WebAudio
//! graph (spatial panning, level meters): [`BrowserAudio::remote_audio_stream`]. There is no
//! decoded [`SwarmEvent::Audio`] in the browser: the page decodes
//! and plays Opus itself.
//!
//! # State
//!
//! The JS objects live in one page-wide table (a thread local) under each swarm's key: a
//! [`SwarmHandle`](crate::SwarmHandle) and the backend must be `Send` (a Bevy resource holds the handle), so they
//! carry the key, and everything runs on the page's one thread. The table holds, per swarm,
//! one source per declared track, the senders and remote tracks of each live connection
//! (removed when its connection closes), and the volume of each peer (removed when it leaves).

use crate::platform::access::SwarmAccess;
use fast_rtc_protocol::{ConnectionId, UserId};
use fast_rtc_swarm_core::media::{TrackError, TrackId, TrackState};
use fast_rtc_swarm_core::swarm::SwarmEvent;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use tracing::debug;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    HtmlAudioElement, MediaStream, MediaStreamTrack, RtcPeerConnection, RtcRtpSender,
    RtcRtpTransceiver, RtcRtpTransceiverDirection, RtcRtpTransceiverInit, RtcTrackEvent,
};

thread_local! {
    /// Every swarm's media on this page, by key (see the [module docs](self)).
    static MEDIA: RefCell<HashMap<u64, MediaState>> = RefCell::new(HashMap::new());
    /// The next key: 0 is no media.
    static NEXT_KEY: Cell<u64> = const { Cell::new(1) };
}

/// Runs `f` on swarm `key`'s media, if it has any.
fn with_state<R>(key: u64, f: impl FnOnce(&mut MediaState) -> R) -> Option<R> {
    MEDIA.with(|m| m.borrow_mut().get_mut(&key).map(f))
}

/// What the page keeps of one swarm's audio.
struct MediaState {
    /// The application's source of each declared track.
    sources: Vec<Option<MediaStreamTrack>>,
    /// Whether each track is live (added and not muted) in the core.
    live: Vec<bool>,
    /// The media of each connection, while it lives.
    links: HashMap<ConnectionId, LinkMedia>,
    /// The peer of each claimed connection, as the swarm told it.
    peer_of: HashMap<ConnectionId, UserId>,
    /// The playback volume of each peer the application set one for.
    volumes: HashMap<UserId, f64>,
}

impl MediaState {
    /// What track `track`'s senders carry now.
    fn outgoing(&self, track: usize) -> Option<&MediaStreamTrack> {
        let live = self.live.get(track).copied().unwrap_or(false);
        self.sources.get(track)?.as_ref().filter(|_| live)
    }

    /// Hands track `track`'s current audio to every connection's sender of it.
    fn update_senders(&self, track: usize) {
        let outgoing = self.outgoing(track);
        for link in self.links.values() {
            if let Some(Some(sender)) = link.senders.get(track) {
                replace(sender, outgoing);
            }
        }
    }

    fn volume_of(&self, id: &ConnectionId) -> f64 {
        self.peer_of
            .get(id)
            .and_then(|peer| self.volumes.get(peer))
            .copied()
            .unwrap_or(1.0)
    }

    /// Sets every remote track of connection `id` to its peer's volume.
    fn apply_volume(&self, id: &ConnectionId) {
        let volume = self.volume_of(id);
        if let Some(link) = self.links.get(id) {
            for remote in link.remote.iter().flatten() {
                remote.element.set_volume(volume);
            }
        }
    }

    /// Connection `id` belongs to `peer`.
    fn claim(&mut self, id: &ConnectionId, peer: &UserId) {
        if self.peer_of.get(id) != Some(peer) {
            self.peer_of.insert(id.clone(), peer.clone());
            self.apply_volume(id);
        }
    }
}

/// Starts replacing `sender`'s track with `track` (`None`: send nothing).
fn replace(sender: &RtcRtpSender, track: Option<&MediaStreamTrack>) {
    let promise = sender.replace_track(track);
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = JsFuture::from(promise).await {
            debug!(error = ?e, "replaceTrack refused");
        }
    });
}

/// A volume as an `<audio>` element takes it: 0..=1 (NaN is silence).
fn element_volume(volume: f32) -> f64 {
    if volume.is_nan() {
        0.0
    } else {
        f64::from(volume.clamp(0.0, 1.0))
    }
}

/// One connection's audio: its senders and remote tracks.
struct LinkMedia {
    senders: Vec<Option<RtcRtpSender>>,
    remote: Vec<Option<RemoteAudio>>,
}

/// A peer's track being played.
struct RemoteAudio {
    stream: MediaStream,
    element: HtmlAudioElement,
}

impl Drop for RemoteAudio {
    fn drop(&mut self) {
        let _ = self.element.pause();
        self.element.set_src_object(None);
    }
}

/// One swarm's entry in the page's media table, owned by the swarm's shell (or, for a
/// [`platform_backend`](super::platform_backend) used on its own, by the backend); dropping
/// it drops the sources and stops the playback.
#[derive(Debug)]
pub(crate) struct SwarmMedia {
    key: u64,
}

/// What a connection task is given of its swarm's [`SwarmMedia`]: the key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MediaLink(u64);

impl SwarmMedia {
    /// The key of this swarm's media in the page's state (0: none is kept).
    pub(crate) fn key(&self) -> u64 {
        self.key
    }

    /// The media of a swarm started on this platform's backend with `config`'s tracks.
    pub(crate) fn new(config: &fast_rtc_swarm_core::SwarmConfig) -> Self {
        let key = NEXT_KEY.with(|k| {
            let key = k.get();
            k.set(key + 1);
            key
        });
        let tracks = config.audio_tracks.len();
        let state = MediaState {
            sources: vec![None; tracks],
            live: vec![false; tracks],
            links: HashMap::new(),
            peer_of: HashMap::new(),
            volumes: HashMap::new(),
        };
        MEDIA.with(|m| m.borrow_mut().insert(key, state));
        SwarmMedia { key }
    }

    /// The media of a swarm on a backend of the application's: none.
    pub(crate) fn none() -> Self {
        SwarmMedia { key: 0 }
    }

    /// What the backend's connections are given.
    pub(crate) fn link(&self) -> MediaLink {
        MediaLink(self.key)
    }

    /// This member's track `track` is now in `state` (`None`: removed): its senders carry
    /// the source while it is live, nothing otherwise.
    pub(crate) fn track_changed(&self, track: TrackId, state: Option<TrackState>) {
        let track = usize::from(track.0);
        with_state(self.key, |s| {
            if let Some(live) = s.live.get_mut(track) {
                *live = state == Some(TrackState::Live);
                s.update_senders(track);
            }
        });
    }

    /// The swarm told the application `event`: learns which peer a connection is (for its
    /// volume) and forgets a peer that left.
    pub(crate) fn observe(&self, event: &SwarmEvent) {
        match event {
            SwarmEvent::Open(info) => {
                with_state(self.key, |s| s.claim(&info.id, &info.user_id));
            }
            SwarmEvent::Connection {
                user_id: Some(peer),
                id,
                ..
            } => {
                with_state(self.key, |s| s.claim(id, peer));
            }
            SwarmEvent::Close { peer, .. } => {
                with_state(self.key, |s| {
                    s.volumes.remove(&peer.user_id);
                    s.peer_of.retain(|_, p| p != &peer.user_id);
                });
            }
            _ => {}
        }
    }
}

impl Drop for SwarmMedia {
    fn drop(&mut self) {
        if self.key != 0 {
            // Taken out first: the state's own drops touch no table.
            let state = MEDIA.with(|m| m.borrow_mut().remove(&self.key));
            drop(state);
        }
    }
}

/// One connection's part in its swarm's media: adds or adopts its audio transceivers, and
/// leaves the table when the connection closes.
pub(crate) struct LinkAudio {
    remote: RemoteTracks,
    /// Whether the connection task asked for the declared tracks (`add_audio_tracks`).
    wanted: bool,
    /// Whether the transceivers are there yet.
    negotiated: bool,
}

/// What the connection's `ontrack` handler needs to play a remote track.
#[derive(Clone)]
pub(crate) struct RemoteTracks {
    key: u64,
    id: ConnectionId,
    names: Rc<[String]>,
}

impl LinkAudio {
    /// Connection `id` of the swarm `link` belongs to, which declares the tracks `names`.
    pub(crate) fn new(link: MediaLink, id: ConnectionId, names: &[String]) -> Self {
        let tracks = names.len();
        if tracks > 0 {
            with_state(link.0, |s| {
                s.links.insert(
                    id.clone(),
                    LinkMedia {
                        senders: vec![None; tracks],
                        remote: (0..tracks).map(|_| None).collect(),
                    },
                );
            });
        }
        LinkAudio {
            remote: RemoteTracks {
                key: link.0,
                id,
                names: names.into(),
            },
            wanted: false,
            negotiated: false,
        }
    }

    /// The connection carries the declared tracks: added before an offer, or adopted from the
    /// remote offer ([`LinkAudio::add_transceivers`], [`LinkAudio::adopt_transceivers`]).
    pub(crate) fn want(&mut self) {
        self.wanted = !self.remote.names.is_empty();
    }

    /// What the `ontrack` handler is given.
    pub(crate) fn remote_tracks(&self) -> RemoteTracks {
        self.remote.clone()
    }

    /// Before an offer: one `sendrecv` audio transceiver per declared track, in order.
    pub(crate) fn add_transceivers(&mut self, pc: &RtcPeerConnection) {
        if self.negotiated || !self.wanted {
            return;
        }
        self.negotiated = true;
        let init = RtcRtpTransceiverInit::new();
        init.set_direction(RtcRtpTransceiverDirection::Sendrecv);
        let senders: Vec<RtcRtpSender> = (0..self.remote.names.len())
            .map(|_| {
                pc.add_transceiver_with_str_and_init("audio", &init)
                    .sender()
            })
            .collect();
        self.attach(senders);
    }

    /// After a remote offer: the audio transceivers it created, in its order, made
    /// `sendrecv`, one per declared track.
    pub(crate) fn adopt_transceivers(&mut self, pc: &RtcPeerConnection) {
        if self.negotiated || !self.wanted {
            return;
        }
        self.negotiated = true;
        let senders: Vec<RtcRtpSender> = pc
            .get_transceivers()
            .iter()
            .filter_map(|t| t.dyn_into::<RtcRtpTransceiver>().ok())
            .filter(|t| t.mid().is_some() && t.receiver().track().kind() == "audio")
            .take(self.remote.names.len())
            .map(|t| {
                t.set_direction(RtcRtpTransceiverDirection::Sendrecv);
                t.sender()
            })
            .collect();
        if senders.len() < self.remote.names.len() {
            debug!(id = %self.remote.id, offered = senders.len(), declared = self.remote.names.len(),
                "the remote offer has fewer audio sections than this swarm declares tracks");
        }
        self.attach(senders);
    }

    /// Keeps the senders, each carrying its track's current audio.
    fn attach(&self, senders: Vec<RtcRtpSender>) {
        let RemoteTracks { key, id, .. } = &self.remote;
        with_state(*key, |s| {
            for (track, sender) in senders.into_iter().enumerate() {
                if let Some(outgoing) = s.outgoing(track) {
                    replace(&sender, Some(outgoing));
                }
                if let Some(slot) = s.links.get_mut(id).and_then(|l| l.senders.get_mut(track)) {
                    *slot = Some(sender);
                }
            }
        });
    }
}

impl Drop for LinkAudio {
    fn drop(&mut self) {
        // Taken out first: dropping the playback touches no table.
        let RemoteTracks { key, id, .. } = &self.remote;
        let removed = with_state(*key, |s| {
            s.peer_of.remove(id);
            s.links.remove(id)
        });
        drop(removed);
    }
}

impl RemoteTracks {
    /// A remote track arrived (`ontrack`): plays it, at its peer's volume, if its stream names
    /// a declared track.
    pub(crate) fn remote_track(&self, event: &RtcTrackEvent) {
        let Some(stream) = event.streams().get(0).dyn_into::<MediaStream>().ok() else {
            debug!(id = %self.id, "ignoring a remote track without a stream");
            return;
        };
        let name = stream.id();
        let Some(track) = self.names.iter().position(|n| *n == name) else {
            debug!(id = %self.id, %name, "ignoring a remote track this swarm does not declare");
            return;
        };
        let element = match HtmlAudioElement::new() {
            Ok(e) => e,
            Err(e) => {
                debug!(id = %self.id, error = ?e, "no <audio> element for a remote track");
                return;
            }
        };
        element.set_src_object(Some(&stream));
        element.set_autoplay(true);
        with_state(self.key, |s| {
            element.set_volume(s.volume_of(&self.id));
            if let Some(slot) = s
                .links
                .get_mut(&self.id)
                .and_then(|l| l.remote.get_mut(track))
            {
                match element.play() {
                    Ok(promise) => {
                        let id = self.id.clone();
                        wasm_bindgen_futures::spawn_local(async move {
                            // The page's autoplay policy can refuse before a user gesture;
                            // the stream is still there for remote_audio_stream.
                            if let Err(e) = JsFuture::from(promise).await {
                                debug!(%id, error = ?e, "a remote track's playback was refused");
                            }
                        });
                    }
                    Err(e) => debug!(id = %self.id, error = ?e, "a remote track cannot play"),
                }
                *slot = Some(RemoteAudio { stream, element });
            }
        });
    }
}

/// The browser's audio calls on a swarm's [`SwarmHandle`](crate::SwarmHandle) (wasm only; see
/// [`crate::platform::web::audio`]): `use fast_rtc_swarm::BrowserAudio` to call them.
pub trait BrowserAudio: SwarmAccess {
    /// Sets the audio of declared track `track` (browser only): a `MediaStreamTrack` from
    /// `getUserMedia` or a WebAudio graph, or `None` for none. It goes to every link's sender
    /// of the track now and to every later link's, while the track is live
    /// ([`SwarmHandle::add_track`](crate::SwarmHandle::add_track) starts sending, [`SwarmHandle::mute_track`](crate::SwarmHandle::mute_track) stops and
    /// resumes by `replaceTrack`: the source itself is never stopped or disabled). The swarm
    /// keeps the source until it is replaced or the swarm is dropped; stopping it (ending a
    /// microphone capture) is the application's.
    fn set_audio_source(
        &self,
        track: TrackId,
        source: Option<MediaStreamTrack>,
    ) -> Result<(), TrackError> {
        let key = browser_media_key(self)?;
        let index = usize::from(track.0);
        with_state(key, |s| {
            let slot = s
                .sources
                .get_mut(index)
                .ok_or(TrackError::NoSuchTrack(track))?;
            *slot = source;
            s.update_senders(index);
            Ok(())
        })
        .unwrap_or(Err(TrackError::NoBrowserMedia))
    }

    /// `peer`'s track `track` as received over its open link (browser only): the
    /// `MediaStream` the swarm plays, for a WebAudio graph of the application's. `None` until
    /// the track's RTP stream is negotiated, or if `peer` has no open link.
    fn remote_audio_stream(&self, peer: &UserId, track: TrackId) -> Option<MediaStream> {
        let key = browser_media_key(self).ok()?;
        let id = self.link_to(peer)?;
        with_state(key, |s| {
            s.links
                .get(&id)?
                .remote
                .get(usize::from(track.0))?
                .as_ref()
                .map(|r| r.stream.clone())
        })
        .flatten()
    }

    /// How loud `peer`'s tracks play (browser only): 1.0 as sent, 0.0 silent; an `<audio>`
    /// element's volume, so values above 1.0 play as 1.0. Kept for the peer's later links
    /// until it leaves. The plugin's `VoiceVolume` drives this in the browser.
    fn set_peer_volume(&self, peer: &UserId, volume: f32) -> Result<(), TrackError> {
        let key = browser_media_key(self)?;
        let link = self.link_to(peer);
        with_state(key, |s| {
            s.volumes.insert(peer.clone(), element_volume(volume));
            if let Some(id) = &link {
                s.peer_of.insert(id.clone(), peer.clone());
            }
            let ids: Vec<ConnectionId> = s
                .peer_of
                .iter()
                .filter(|(_, p)| *p == peer)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                s.apply_volume(id);
            }
        })
        .ok_or(TrackError::NoBrowserMedia)
    }
}

impl<S: SwarmAccess> BrowserAudio for S {}

/// The media key of `swarm`, or why it has none.
fn browser_media_key(swarm: &(impl SwarmAccess + ?Sized)) -> Result<u64, TrackError> {
    match swarm.media_key()? {
        0 => Err(TrackError::NoBrowserMedia),
        key => Ok(key),
    }
}

#[cfg(test)]
mod tests {
    use super::element_volume;

    #[test]
    fn volumes_fit_an_audio_element() {
        assert_eq!(element_volume(0.25), 0.25);
        assert_eq!(element_volume(4.0), 1.0);
        assert_eq!(element_volume(-1.0), 0.0);
        assert_eq!(element_volume(f32::NAN), 0.0);
    }
}
