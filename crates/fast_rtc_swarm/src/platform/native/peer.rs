//! One webrtc-rs RTCPeerConnection as the connection task drives it ([`RtcPeer`]).

#[cfg(feature = "voice")]
use super::audio::{LocalAudio, RemoteNames, track_mids, watch_remote};
use super::context::Context;
use super::hurry::{Nudge, flush_dtls_client, settled, wake_driver};
use crate::backend::EventSender;
use crate::backend::MAX_BUFFERED_BYTES;
use crate::connection::{Report, RtcChannel, RtcPeer};
use crate::platform::time::{now, sleep_until};
use bytes::BytesMut;
use fast_rtc_protocol::{ConnectionId, IceCandidate, IceServer};
use fast_rtc_swarm_core::config::IceTransportPolicy;
use fast_rtc_swarm_core::config::{ChannelId, Delivery};
use fast_rtc_swarm_core::media::TrackId;
use fast_rtc_swarm_core::swarm::{IceState, Payload, PeerEvent, Role, SdpKind};
use futures_lite::future;
use rtc::peer_connection::transport::RTCDtlsRole;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tracing::{debug, info, warn};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceConnectionState, RTCIceGatheringState, RTCIceServer,
    RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder,
};

/// Why a native link of a swarm with audio tracks fails in a build without voice.
#[cfg(not(feature = "voice"))]
const NO_VOICE: &str = "audio tracks need fast_rtc_swarm's `voice` feature (Opus)";

/// Points of the handshake where webrtc-rs needs a wake-up to go on at once.
#[derive(Clone, Copy, Debug)]
enum Milestone {
    /// ICE selected a pair: the DTLS client's first flight is queued.
    IceConnected,
    /// DTLS completed: SCTP and the DCEP handshakes follow.
    DtlsConnected,
    /// A remote track arrived: its receiver exists now, so which declared track's
    /// transceiver it is on can be told ([`RemoteNames`]).
    #[cfg(feature = "voice")]
    RemoteTrack,
}

/// A webrtc-rs connection with what its wake-ups need to know.
pub(crate) struct NativePeer {
    id: ConnectionId,
    pc: Box<dyn PeerConnection>,
    shared: Arc<Context>,
    channels_announced: async_channel::Receiver<Arc<dyn DataChannel>>,
    milestones: async_channel::Receiver<Milestone>,
    /// This side's channels, for telling when the handshake has settled.
    held: Vec<Arc<dyn DataChannel>>,
    nudge: Option<Nudge>,
    /// Whether the connection has TURN servers ([`NativePeer::nudge_through_turn`]).
    turn: bool,
    /// Whether this end is the DTLS client (sends the first flight), read from the SDP.
    dtls_client: bool,
    /// Whether a first offer/answer exchange completed: a later offer is a renegotiation.
    negotiated: bool,
    /// The wake-up [`RtcPeer::next_report`] took and has not finished handling. The connection
    /// task drops that future whenever a command comes first (an audio packet every 20 ms),
    /// possibly in the middle of an `await`: the next call handles this wake-up again
    /// instead of losing it (a lost remote track or remote-announced channel). Every
    /// handling below may run twice.
    waking: Option<PeerWake>,
    /// The declared audio tracks' sending ends, by [`TrackId`].
    #[cfg(feature = "voice")]
    audio: Vec<LocalAudio>,
    /// Which remote track arrives on which declared track's transceiver.
    #[cfg(feature = "voice")]
    remote_names: RemoteNames,
}

impl NativePeer {
    /// Builds connection `id`'s RTCPeerConnection with the STUN/TURN servers the core chose
    /// for it.
    pub(crate) async fn build(
        id: ConnectionId,
        role: Role,
        ice_servers: Vec<IceServer>,
        shared: Arc<Context>,
    ) -> Result<Self, String> {
        let turn = !fast_rtc_swarm_core::relay::turn_urls(&ice_servers).is_empty();
        let (channel_tx, channel_rx) = async_channel::bounded(16);
        let (milestone_tx, milestone_rx) = async_channel::bounded(4);
        #[cfg(feature = "voice")]
        let remote_names = RemoteNames::default();
        let handler = Arc::new(Handler {
            #[cfg(feature = "voice")]
            remote_names: remote_names.clone(),
            shared: shared.clone(),
            id: id.clone(),
            events: shared.events.clone(),
            channels: channel_tx,
            milestones: milestone_tx,
        });
        // Boxed: webrtc-rs's builder future is ~20 KiB, and inline it would size every
        // connection task for the connection's whole life.
        let pc = Box::pin(build_pc(&shared, role, &ice_servers, handler))
            .await
            .map_err(|e| e.to_string())?;
        Ok(NativePeer {
            id,
            pc: Box::new(pc),
            shared,
            channels_announced: channel_rx,
            milestones: milestone_rx,
            held: Vec::new(),
            nudge: None,
            turn,
            dtls_client: false,
            negotiated: false,
            waking: None,
            #[cfg(feature = "voice")]
            audio: Vec::new(),
            #[cfg(feature = "voice")]
            remote_names,
        })
    }

    /// With TURN servers, wakes the driver from the moment a link's descriptions meet until it
    /// settles: the TURN client's allocation, permission and channel-bind requests are made
    /// while webrtc-rs handles events, so each can wait for the driver's next timer (up to
    /// 200 ms) like the DTLS flights ([`Nudge`]).
    fn nudge_through_turn(&mut self) {
        if self.nudge.is_none() && self.turn {
            self.nudge = Some(Nudge::start());
        }
    }

    fn watch(&mut self, id: ChannelId, dc: Arc<dyn DataChannel>) -> NativeChannel {
        let readiness = Arc::new(Readiness::default());
        watch_channel(&self.shared, &self.id, id, dc.clone(), readiness.clone());
        self.held.push(dc.clone());
        NativeChannel { dc, readiness }
    }

    /// Waits for the next wake-up: a channel the remote announced, a milestone, or the
    /// nudge's timer. Cancel-safe: each branch takes its item in its last step.
    async fn next_wake(&self) -> PeerWake {
        let channel = async {
            match self.channels_announced.recv().await {
                Ok(dc) => PeerWake::Channel(dc),
                Err(_) => future::pending().await,
            }
        };
        let milestone = async {
            match self.milestones.recv().await {
                Ok(m) => PeerWake::Milestone(m),
                Err(_) => future::pending().await,
            }
        };
        let nudge = async {
            match &self.nudge {
                Some(n) => {
                    sleep_until(n.at).await;
                    PeerWake::Nudge
                }
                None => future::pending().await,
            }
        };
        future::or(channel, future::or(milestone, nudge)).await
    }

    /// Handles one wake-up; a channel the remote announced is the only one that makes a
    /// report. May run twice for one wake-up ([`NativePeer::waking`]).
    async fn handle_wake(&mut self, wake: PeerWake) -> Option<Report<Arc<dyn DataChannel>>> {
        match wake {
            PeerWake::Channel(dc) => {
                let label = dc.label().await.unwrap_or_default();
                return Some(Report::Channel { label, raw: dc });
            }
            PeerWake::Milestone(Milestone::IceConnected) => {
                if log_route(&self.id, self.pc.as_ref()).await {
                    // Through TURN, webrtc-rs hands each DTLS flight to the relay only at
                    // the driver's next wake-up (~200 ms per flight once ICE is
                    // connected): wake it through the handshake as after DTLS.
                    self.nudge = Some(Nudge::start());
                }
                if self.dtls_client {
                    flush_dtls_client(&self.id, self.pc.as_ref(), &self.shared.native.udp_addrs)
                        .await;
                }
            }
            PeerWake::Milestone(Milestone::DtlsConnected) => self.nudge = Some(Nudge::start()),
            // Below, as after every milestone: a remote track whose own milestone did not fit
            // the queue is resolved by whichever milestone is in it.
            #[cfg(feature = "voice")]
            PeerWake::Milestone(Milestone::RemoteTrack) => {}
            PeerWake::Nudge => {
                // Done once settled, or when the connection is gone; else the next step.
                let done = settled(self.pc.as_ref(), &self.held).await
                    || !wake_driver(&self.id, self.pc.as_ref()).await;
                self.nudge = if done {
                    None
                } else {
                    self.nudge.take().and_then(Nudge::next)
                };
                return None;
            }
        }
        #[cfg(feature = "voice")]
        if !self.audio.is_empty() {
            track_mids(self.pc.as_ref(), &self.audio, &self.remote_names).await;
        }
        None
    }
}

/// What woke [`NativePeer::next_report`].
#[derive(Clone)]
enum PeerWake {
    Channel(Arc<dyn DataChannel>),
    Milestone(Milestone),
    Nudge,
}

impl RtcPeer for NativePeer {
    type RawChannel = Arc<dyn DataChannel>;
    type Channel = NativeChannel;

    async fn create_channel(
        &mut self,
        id: ChannelId,
        label: &str,
        delivery: Delivery,
    ) -> Result<NativeChannel, String> {
        let dc = self
            .pc
            .create_data_channel(label, Some(channel_init(delivery)))
            .await
            .map_err(|e| e.to_string())?;
        Ok(self.watch(id, dc))
    }

    fn adopt(&mut self, id: ChannelId, raw: Self::RawChannel) -> NativeChannel {
        self.watch(id, raw)
    }

    async fn refuse(&mut self, raw: Self::RawChannel) {
        let _ = raw.close().await;
    }

    async fn offer(&mut self) -> Result<String, String> {
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(|e| e.to_string())?;
        self.pc
            .set_local_description(offer.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(offer.sdp)
    }

    async fn restart_offer(&mut self, ice_servers: &[IceServer]) -> Result<String, String> {
        // The swarm's current servers (fresh TURN credentials for a link older than its
        // own): webrtc-rs applies them when the restart's gathering starts.
        if !ice_servers.is_empty() {
            let configuration = RTCConfigurationBuilder::default()
                .with_ice_servers(rtc_ice_servers(ice_servers))
                .with_ice_transport_policy(ice_policy(self.shared.swarm.ice_transport_policy))
                .build();
            self.pc
                .set_configuration(configuration)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.pc.restart_ice().await.map_err(|e| e.to_string())?;
        self.offer().await
    }

    async fn answer(&mut self) -> Result<String, String> {
        let answer = self
            .pc
            .create_answer(None)
            .await
            .map_err(|e| e.to_string())?;
        if self.negotiated {
            // A renegotiation (the JS client's, when it starts sending on a transceiver):
            // the DTLS role stays; an offerer's connection answers `passive`
            // (`build_pc`), the role a browser's answer gave it.
            if answer.sdp.contains("a=setup:active") != self.dtls_client {
                warn!(id = %self.id, "a renegotiation answer names another DTLS role than the running one");
            }
        } else {
            self.negotiated = true;
            self.dtls_client = answer.sdp.contains("a=setup:active");
        }
        self.nudge_through_turn();
        self.pc
            .set_local_description(answer.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(answer.sdp)
    }

    async fn set_remote(&mut self, kind: SdpKind, sdp: String) -> Result<(), String> {
        let remote_passive = sdp.contains("a=setup:passive");
        let desc = match kind {
            SdpKind::Offer => RTCSessionDescription::offer(sdp),
            SdpKind::Answer => RTCSessionDescription::answer(sdp),
        }
        .map_err(|e| e.to_string())?;
        self.pc
            .set_remote_description(desc)
            .await
            .map_err(|e| e.to_string())?;
        if kind == SdpKind::Answer && !self.negotiated {
            self.negotiated = true;
            self.dtls_client = remote_passive;
            self.nudge_through_turn();
        }
        Ok(())
    }

    async fn add_candidate(&mut self, candidate: IceCandidate) -> Result<(), String> {
        self.pc
            .add_ice_candidate(from_wire(candidate))
            .await
            .map_err(|e| e.to_string())?;
        // webrtc-rs schedules the new pair's first check for the driver's next wake-up (up to
        // one check interval away); wake it now.
        wake_driver(&self.id, self.pc.as_ref()).await;
        Ok(())
    }

    #[cfg(feature = "voice")]
    async fn add_audio_tracks(&mut self, names: &[String]) -> Result<(), String> {
        for name in names {
            let local = LocalAudio::add(self.pc.as_ref(), name).await?;
            self.audio.push(local);
        }
        Ok(())
    }

    #[cfg(not(feature = "voice"))]
    async fn add_audio_tracks(&mut self, _names: &[String]) -> Result<(), String> {
        Err(NO_VOICE.into())
    }

    #[cfg(feature = "voice")]
    async fn send_audio(&mut self, track: TrackId, packet: Vec<u8>) -> Result<(), String> {
        match self.audio.get_mut(usize::from(track.0)) {
            Some(local) => local.write(packet).await,
            None => Err(format!("no audio track {track:?} on this connection")),
        }
    }

    #[cfg(not(feature = "voice"))]
    async fn send_audio(&mut self, _track: TrackId, _packet: Vec<u8>) -> Result<(), String> {
        Err(NO_VOICE.into())
    }

    #[cfg(feature = "voice")]
    async fn track_mids(&mut self) -> Vec<(TrackId, String)> {
        track_mids(self.pc.as_ref(), &self.audio, &self.remote_names).await
    }

    #[cfg(not(feature = "voice"))]
    async fn track_mids(&mut self) -> Vec<(TrackId, String)> {
        Vec::new()
    }

    async fn next_report(&mut self) -> Option<Report<Self::RawChannel>> {
        loop {
            let wake = match self.waking.clone() {
                Some(wake) => wake,
                None => {
                    let wake = self.next_wake().await;
                    self.waking = Some(wake.clone());
                    wake
                }
            };
            let report = self.handle_wake(wake).await;
            self.waking = None;
            if report.is_some() {
                return report;
            }
        }
    }

    async fn close(self) {
        // Always close explicitly: a dropped connection keeps its driver and sockets running.
        if let Err(e) = self.pc.close().await {
            debug!(id = %self.id, error = %e, "close failed");
        }
    }
}

/// A webrtc-rs data channel.
pub(crate) struct NativeChannel {
    dc: Arc<dyn DataChannel>,
    readiness: Arc<Readiness>,
}

/// How long a send waits for its channel to finish opening.
const OPEN_WAIT: Duration = Duration::from_secs(10);

/// Whether a channel has opened (or closed), as its watcher saw it; sends wait on it.
#[derive(Default)]
struct Readiness {
    /// 0: opening, 1: open, 2: closed.
    state: AtomicU8,
    changed: event_listener::Event,
}

impl Readiness {
    const OPEN: u8 = 1;
    const CLOSED: u8 = 2;

    fn set(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        self.changed.notify(usize::MAX);
    }
}

impl NativeChannel {
    /// Waits until this end of the channel is open. The swarm may send as soon as the remote
    /// end is known to be open (its first message arrived), which can be before this end's own
    /// open: sending then would lose the message.
    async fn until_open(&self) -> Result<(), String> {
        // The common case, on every send once open: no clock read, no listener.
        if self.readiness.state.load(Ordering::Acquire) == Readiness::OPEN {
            return Ok(());
        }
        let deadline = now() + OPEN_WAIT;
        loop {
            let listener = self.readiness.changed.listen();
            match self.readiness.state.load(Ordering::Acquire) {
                Readiness::OPEN => return Ok(()),
                Readiness::CLOSED => return Err("the channel closed before it opened".into()),
                _ => {}
            }
            let opened = async {
                listener.await;
                true
            };
            let timeout = async {
                sleep_until(deadline).await;
                false
            };
            if !future::or(opened, timeout).await {
                return Err(format!("the channel did not open within {OPEN_WAIT:?}"));
            }
        }
    }
}

impl RtcChannel for NativeChannel {
    async fn send(&self, payload: Payload) -> Result<(), String> {
        self.until_open().await?;
        // Waits while webrtc-rs's send buffer is full (SCTP flow control).
        match payload {
            Payload::Text(text) => self.dc.send_text(&text).await,
            Payload::Binary(bytes) => self.dc.send(BytesMut::from(&bytes[..])).await,
        }
        .map_err(|e| e.to_string())
    }

    async fn unsent(&self) -> usize {
        self.dc.outstanding_bytes().await.unwrap_or(0)
    }
}

/// Forwards webrtc-rs callbacks of one connection.
struct Handler {
    /// Which remote track arrives on which declared track's transceiver.
    #[cfg(feature = "voice")]
    remote_names: RemoteNames,
    shared: Arc<Context>,
    id: ConnectionId,
    events: EventSender,
    channels: async_channel::Sender<Arc<dyn DataChannel>>,
    milestones: async_channel::Sender<Milestone>,
}

impl Handler {
    async fn emit(&self, event: PeerEvent) {
        let _ = self.events.send((self.id.clone(), event)).await;
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                self.emit(PeerEvent::LocalCandidate(Some(to_wire(init))))
                    .await
            }
            Err(e) => debug!(id = %self.id, error = %e, "unserializable local candidate"),
        }
    }

    async fn on_ice_candidate_error(
        &self,
        event: webrtc::peer_connection::RTCPeerConnectionIceErrorEvent,
    ) {
        // A TURN server refusing the credentials shows up here (error 401).
        warn!(id = %self.id, url = %event.url, code = event.error_code,
            text = %event.error_text, "ICE server error");
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.emit(PeerEvent::LocalCandidate(None)).await;
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        if state == RTCIceConnectionState::Connected {
            let _ = self.milestones.try_send(Milestone::IceConnected);
        }
        let state = match state {
            RTCIceConnectionState::Checking => IceState::Checking,
            RTCIceConnectionState::Connected => IceState::Connected,
            RTCIceConnectionState::Completed => IceState::Completed,
            RTCIceConnectionState::Disconnected => IceState::Disconnected,
            RTCIceConnectionState::Failed => IceState::Failed,
            RTCIceConnectionState::Closed => IceState::Closed,
            _ => IceState::New,
        };
        self.emit(PeerEvent::IceState(state)).await;
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            // DTLS is done; the SCTP association and the channels' DCEP handshakes follow.
            let _ = self.milestones.try_send(Milestone::DtlsConnected);
        }
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let _ = self.channels.send(channel).await;
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        #[cfg(feature = "voice")]
        watch_remote(&self.shared, &self.id, track, self.remote_names.clone());
        // Not awaited: this is webrtc-rs's callback, and a full queue means the connection
        // task has a milestone to handle anyway, which resolves this track too.
        #[cfg(feature = "voice")]
        if self.milestones.try_send(Milestone::RemoteTrack).is_err() {
            debug!(id = %self.id, "a remote track's milestone did not fit");
        }
        #[cfg(not(feature = "voice"))]
        {
            let _ = (&self.shared, track);
            debug!(id = %self.id, "ignoring a remote track: {NO_VOICE}");
        }
    }
}

/// Logs (info, target `fast_rtc_swarm::platform::native::peer`) the candidate types and
/// addresses of the pair ICE selected, from webrtc-rs's stats: `local=relay remote=relay` through
/// TURN. A remote end learned from a connectivity check before its candidate was signaled is
/// `prflx`; its address still tells where the path goes (a TURN server's relayed address).
/// Returns whether the local end is a relay candidate.
async fn log_route(id: &ConnectionId, pc: &dyn PeerConnection) -> bool {
    use webrtc::peer_connection::{RTCStatsReportEntry, StatsSelector};
    let report = pc.get_stats(super::time::now(), StatsSelector::None).await;
    let Some(pair_id) = report
        .transport()
        .map(|t| t.selected_candidate_pair_id.clone())
    else {
        return false;
    };
    let Some(RTCStatsReportEntry::IceCandidatePair(pair)) = report.get(&pair_id) else {
        return false;
    };
    // webrtc-rs 0.21.1 keys a candidate's entry `RTCLocalIceCandidate_<id>` or
    // `RTCRemoteIceCandidate_<id>`, where the pair names `<id>`.
    let describe = |cid: &str, local: bool| {
        report
            .iter()
            .find_map(|e| match (e, local) {
                (RTCStatsReportEntry::LocalCandidate(c), true)
                | (RTCStatsReportEntry::RemoteCandidate(c), false)
                    if c.stats.id == cid || c.stats.id.ends_with(&format!("_{cid}")) =>
                {
                    let kind = format!("{:?}", c.candidate_type).to_lowercase();
                    let addr = format!("{}:{}", c.address.as_deref().unwrap_or("?"), c.port);
                    Some((kind, addr))
                }
                _ => None,
            })
            .unwrap_or_else(|| ("unknown".to_owned(), "?".to_owned()))
    };
    let (local, local_addr) = describe(&pair.local_candidate_id, true);
    let (remote, remote_addr) = describe(&pair.remote_candidate_id, false);
    info!(%id, %local, %remote, %local_addr, %remote_addr, "selected candidate pair");
    local == "relay"
}

/// webrtc-rs → wire. webrtc-rs fills `sdpMid` with `""`, which browsers reject (no m-section
/// has that mid); without it they fall back to `sdpMLineIndex`.
fn to_wire(init: RTCIceCandidateInit) -> IceCandidate {
    IceCandidate {
        candidate: init.candidate,
        sdp_mid: init.sdp_mid.filter(|m| !m.is_empty()),
        sdp_m_line_index: init.sdp_mline_index,
        username_fragment: init.username_fragment.filter(|u| !u.is_empty()),
    }
}

fn from_wire(c: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_m_line_index,
        username_fragment: c.username_fragment,
        ..Default::default()
    }
}

fn channel_init(delivery: Delivery) -> RTCDataChannelInit {
    let (ordered, max_retransmits, max_packet_life_time) = match delivery {
        Delivery::Reliable => (true, None, None),
        Delivery::Unreliable => (false, Some(0), None),
        Delivery::MaxRetransmits(n) => (false, Some(n), None),
        Delivery::MaxPacketLifeTime(ms) => (false, None, Some(ms)),
        Delivery::UnreliableOrdered => (true, Some(0), None),
    };
    RTCDataChannelInit {
        ordered,
        max_retransmits,
        max_packet_life_time,
        ..Default::default()
    }
}

/// The swarm's ICE servers as webrtc-rs takes them.
fn rtc_ice_servers(ice_servers: &[IceServer]) -> Vec<RTCIceServer> {
    ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect()
}

/// The swarm's ICE transport policy as webrtc-rs takes it.
fn ice_policy(policy: IceTransportPolicy) -> RTCIceTransportPolicy {
    match policy {
        IceTransportPolicy::All => RTCIceTransportPolicy::All,
        IceTransportPolicy::Relay => RTCIceTransportPolicy::Relay,
    }
}

async fn build_pc(
    shared: &Context,
    role: Role,
    ice_servers: &[IceServer],
    handler: Arc<Handler>,
) -> webrtc::error::Result<impl PeerConnection + use<>> {
    let swarm = &shared.swarm;
    let native = &shared.native;
    let configuration = RTCConfigurationBuilder::default()
        .with_ice_servers(rtc_ice_servers(ice_servers))
        .with_ice_transport_policy(ice_policy(swarm.ice_transport_policy))
        .build();
    let loopback = native.udp_addrs.iter().any(|a| a.ip().is_loopback());
    let mdns = if native.mdns {
        rtc::ice::mdns::MulticastDnsMode::QueryOnly
    } else {
        rtc::ice::mdns::MulticastDnsMode::Disabled
    };
    let settings = SettingEngineBuilder::new()
        .with_ice_connection_attempts(
            Some(native.ice_check_interval),
            Some(native.ice_max_binding_requests),
        )
        .with_ice_timeouts(
            Some(native.ice_disconnected_timeout),
            Some(native.ice_failed_timeout),
            Some(native.ice_keepalive_interval),
        )
        .with_multicast_dns_mode(mdns)
        // An offerer's connection answers only renegotiations (the JS client's). Its DTLS
        // role was set by the first answer, `active` from browsers and webrtc-rs, which made
        // it the server; webrtc-rs would answer `active` again, and a browser refuses a role
        // change on a running transport.
        .with_answering_dtls_role(match role {
            Role::Offerer => RTCDtlsRole::Server,
            Role::Answerer => RTCDtlsRole::default(),
        })
        .with_prflx_acceptance_min_wait(Some(native.ice_prflx_acceptance_wait))
        // An ICE restart (the core's, on a link that lost its path) rebinds the UDP sockets
        // and gathers every candidate afresh, at both ends: the old candidates are what no
        // longer works (an address gone with a network change, a TURN allocation the server
        // forgot). Without it webrtc-rs re-offers the old candidates and refreshes a dead
        // allocation (437), and the link never comes back.
        .with_discard_local_candidates_during_ice_restart(true)
        // webrtc-rs waits 2 s before it may select a relay pair, so that direct pairs can win
        // first; ours waits as long as for a server-reflexive pair (`NativeConfig`). Under the
        // relay-only policy there are no others: no reason to wait (measured by the join
        // bench's relay rows).
        .with_relay_acceptance_min_wait(Some(
            if swarm.ice_transport_policy == IceTransportPolicy::Relay {
                Duration::ZERO
            } else {
                native.ice_relay_acceptance_wait
            },
        ))
        .with_include_loopback_candidate(loopback)
        .build();
    let builder = PeerConnectionBuilder::new();
    // Audio tracks negotiate Opus only; without them the default engine is never used.
    #[cfg(feature = "voice")]
    let builder = if swarm.audio_tracks.is_empty() {
        builder
    } else {
        builder.with_media_engine(super::audio::media_engine()?)
    };
    builder
        .with_configuration(configuration)
        .with_setting_engine(settings)
        .with_runtime(shared.runtime.clone())
        .with_handler(handler)
        .with_udp_addrs(native.udp_addrs.clone())
        .with_data_channel_send_buffer_limit(MAX_BUFFERED_BYTES)
        .build()
        .await
}

/// Polls one data channel until it closes, reporting opens, messages and the close.
fn watch_channel(
    shared: &Context,
    id: &ConnectionId,
    channel: ChannelId,
    dc: Arc<dyn DataChannel>,
    readiness: Arc<Readiness>,
) {
    let events = shared.events.clone();
    let id = id.clone();
    let task = async move {
        while let Some(event) = dc.poll().await {
            let ev = match event {
                DataChannelEvent::OnOpen => {
                    readiness.set(Readiness::OPEN);
                    PeerEvent::ChannelOpen(channel)
                }
                DataChannelEvent::OnMessage(m) => match message_payload(m.is_string, &m.data) {
                    Ok(payload) => PeerEvent::Message { channel, payload },
                    Err(error) => PeerEvent::InvalidMessage { channel, error },
                },
                DataChannelEvent::OnClose => break,
                _ => continue,
            };
            if events.send((id.clone(), ev)).await.is_err() {
                return;
            }
        }
        readiness.set(Readiness::CLOSED);
        let _ = events.send((id, PeerEvent::ChannelClosed(channel))).await;
    };
    drop(shared.runtime.spawn(Box::pin(task)));
}

/// A received data-channel message as the swarm delivers it: text (a string message, which must
/// be UTF-8: never altered) or binary.
fn message_payload(is_string: bool, data: &[u8]) -> Result<Payload, String> {
    if is_string {
        String::from_utf8(data.to_vec())
            .map(Payload::Text)
            .map_err(|e| format!("a {}-byte text message is not UTF-8: {e}", data.len()))
    } else {
        Ok(Payload::Binary(data.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn text_that_is_not_utf8_is_refused_not_altered() {
        assert_eq!(
            message_payload(true, "héllo".as_bytes()),
            Ok(Payload::Text("héllo".into()))
        );
        let error = message_payload(true, &[b'h', 0xff, b'i']).unwrap_err();
        assert!(
            error.contains("3-byte text message is not UTF-8"),
            "{error}"
        );
        assert_eq!(
            message_payload(false, &[0xff]),
            Ok(Payload::Binary(vec![0xff]))
        );
    }
}
