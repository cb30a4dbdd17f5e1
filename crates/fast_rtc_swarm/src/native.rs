//! The native backend on webrtc-rs 0.21 (smol runtime, ring crypto, no tokio).
//!
//! Each connection runs in one task on webrtc-rs's runtime and carries out its commands in
//! order. Data channels are polled by one task each. Closing a connection (or dropping the
//! backend) closes the RTCPeerConnection explicitly, so no driver or socket outlives it.
//!
//! # Connecting fast
//!
//! With webrtc-rs defaults a link takes three 200 ms ticks from answer to open channels. The
//! ICE agent's check interval paces the first check, and webrtc-rs's connection driver only
//! sends some packets on its next wake-up: the DTLS client's first flight (made when ICE selects
//! a pair, sent at the next timeout handling), the SCTP `INIT` (made when DTLS completes) and
//! each channel's DCEP `OPEN` (made when SCTP comes up, while the driver handles events after
//! writing). With nothing else to do, that wake-up is the ICE agent's timer: up to 200 ms. This
//! backend removes each wait with public calls only:
//! - a short ICE check interval (10 ms by default) with more binding requests, so a failing
//!   pair is still given about 2 s, and peer-reflexive pairs selected without webrtc-rs's 1 s
//!   wait; both only matter while checking;
//! - a driver wake-up after each remote candidate, so its pair's first check leaves at once;
//! - on the DTLS client, when ICE connects, an inert remote candidate plus a wake-up, which
//!   makes the driver handle timeouts at once and send the `ClientHello` (see
//!   `flush_dtls_client`);
//! - from DTLS completion until SCTP is up and this side's channels are open, a wake-up after
//!   1 ms, then at doubling gaps of at most 16 ms (see `Nudge`).
//!
//! A wake-up is `set_configuration` with the unchanged configuration: it changes nothing and
//! sends nothing. Keepalives (1 s) and failure timeouts (3 s + 7 s) stay at real-network values;
//! see [`NativeConfig`]. Measured (`cargo run --release -p fast_rtc_bench -- join`): a joiner
//! has its channels open with 1, 4 and 8 members in 5.8, 8.0 and 11.3 ms on this project's
//! 2-core machine, against 0.6–1.2 s for matchbox on the same webrtc-rs in the same run.

use crate::backend::{
    Backend, Buffered, Connections, EventSender, MAX_BUFFERED_BYTES, NewConnection, SendQueue,
};
use crate::config::{ChannelId, Delivery, IceTransportPolicy, SwarmConfig};
use crate::sans_io::{IceState, Payload, PeerCommand, PeerEvent, Role, SdpKind};
use bytes::BytesMut;
use fast_rtc_protocol::{ConnectionId, IceCandidate};
use futures_lite::future;
use rtc::peer_connection::transport::RTCSctpTransportState;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tracing::debug;
use webrtc::data_channel::{
    DataChannel, DataChannelEvent, RTCDataChannelInit, RTCDataChannelState,
};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceConnectionState, RTCIceGatheringState, RTCIceServer,
    RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder,
};
use webrtc::runtime::Runtime;

/// Settings of the native backend.
#[derive(Clone, Debug)]
pub struct NativeConfig {
    /// Local UDP addresses to bind. `0.0.0.0:0` (the default) binds every interface except
    /// loopback; tests bind `127.0.0.1:0`, which also enables loopback candidates.
    pub udp_addrs: Vec<SocketAddr>,
    /// Interval between ICE connectivity checks while checking (webrtc-rs default: 200 ms).
    pub ice_check_interval: Duration,
    /// Binding requests per candidate pair before it fails (webrtc-rs default: 7). Keep
    /// `interval × requests` around 2 s so slow real-world paths still succeed.
    pub ice_max_binding_requests: u16,
    /// No traffic for this long: ICE `disconnected`.
    pub ice_disconnected_timeout: Duration,
    /// `disconnected` for this long: ICE `failed`, and the link closes.
    pub ice_failed_timeout: Duration,
    /// Keepalive interval on an idle connection. Below 200 ms it also shortens the handshake
    /// (see the module docs), at the cost of a keepalive that often for the link's whole life.
    pub ice_keepalive_interval: Duration,
    /// How long a peer-reflexive pair must wait before it may be selected (webrtc-rs default:
    /// 1 s). When a remote's connectivity check arrives before its trickled candidate, the pair
    /// is peer-reflexive; browsers select such pairs at once, and so does this default (0).
    pub ice_prflx_acceptance_wait: Duration,
    /// Resolve remote `.local` (mDNS) candidates, as browsers send without flags. Off by default:
    /// it joins a multicast group, which fails where there is no multicast route; native peers
    /// still reach such browsers through peer-reflexive candidates.
    pub mdns: bool,
    /// Receive buffer asked of the kernel for each UDP socket (`SO_RCVBUF`; Linux caps it at
    /// `net.core.rmem_max`). webrtc-rs's SCTP sends in bursts; on a fast path a burst larger
    /// than the buffer is dropped and costs a retransmission timeout (about 1 s). `None` keeps
    /// the system default.
    pub udp_recv_buffer: Option<usize>,
}

impl Default for NativeConfig {
    fn default() -> Self {
        NativeConfig {
            udp_addrs: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            ice_check_interval: Duration::from_millis(10),
            ice_max_binding_requests: 200,
            ice_disconnected_timeout: Duration::from_secs(3),
            ice_failed_timeout: Duration::from_secs(7),
            ice_keepalive_interval: Duration::from_secs(1),
            ice_prflx_acceptance_wait: Duration::ZERO,
            mdns: false,
            udp_recv_buffer: Some(4 << 20),
        }
    }
}

impl NativeConfig {
    /// Binds only `127.0.0.1` (tests, same-machine demos).
    pub fn loopback() -> Self {
        NativeConfig {
            udp_addrs: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            ..NativeConfig::default()
        }
    }
}

struct Shared {
    swarm: SwarmConfig,
    native: NativeConfig,
    runtime: Arc<dyn Runtime>,
    events: EventSender,
}

/// The webrtc-rs backend. See the [module docs](self).
pub struct NativeBackend {
    shared: Arc<Shared>,
    connections: Connections,
}

/// webrtc-rs's runtime with one change: every UDP socket gets the configured receive buffer
/// before webrtc-rs wraps it ([`NativeConfig::udp_recv_buffer`]). Everything else delegates.
#[derive(Debug)]
struct SocketTuning {
    inner: Arc<dyn Runtime>,
    recv_buffer: usize,
}

impl Runtime for SocketTuning {
    fn spawn(
        &self,
        future: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn webrtc::runtime::JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn webrtc::runtime::JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(
        &self,
        socket: std::net::UdpSocket,
    ) -> std::io::Result<Arc<dyn webrtc::runtime::AsyncUdpSocket>> {
        if let Err(e) = socket2::SockRef::from(&socket).set_recv_buffer_size(self.recv_buffer) {
            debug!(error = %e, "could not set the UDP receive buffer");
        }
        self.inner.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> std::io::Result<Arc<dyn webrtc::runtime::AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> std::pin::Pin<
        Box<
            dyn Future<Output = std::io::Result<Arc<dyn webrtc::runtime::AsyncTcpStream>>>
                + Send
                + 'a,
        >,
    > {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> std::time::Instant {
        self.inner.now()
    }

    fn sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn webrtc::runtime::AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: std::pin::Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

/// The native backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// webrtc-rs found no async runtime.
    #[error("webrtc-rs has no async runtime")]
    NoRuntime,
}

impl NativeBackend {
    /// A backend for `swarm`'s channels and ICE servers, reporting to `events`.
    pub fn new(
        swarm: SwarmConfig,
        native: NativeConfig,
        events: EventSender,
    ) -> Result<Self, NativeError> {
        let runtime = webrtc::runtime::default_runtime().ok_or(NativeError::NoRuntime)?;
        let runtime: Arc<dyn Runtime> = match native.udp_recv_buffer {
            Some(bytes) => Arc::new(SocketTuning {
                inner: runtime,
                recv_buffer: bytes,
            }),
            None => runtime,
        };
        Ok(NativeBackend {
            connections: Connections::new(events.clone()),
            shared: Arc::new(Shared {
                swarm,
                native,
                runtime,
                events,
            }),
        })
    }
}

// Dropping the backend drops every connection's command sender, which ends its task, and the
// task closes its connection.

impl Backend for NativeBackend {
    fn buffered(&self, id: &ConnectionId) -> Buffered {
        self.connections.buffered(id)
    }

    fn connection_count(&self) -> usize {
        self.connections.len()
    }

    fn execute(&mut self, command: PeerCommand) {
        if let Some(new) = self.connections.route(command) {
            let task = run_connection(new, self.shared.clone());
            drop(self.shared.runtime.spawn(Box::pin(task)));
        }
    }
}

/// Forwards webrtc-rs callbacks of one connection.
struct Handler {
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
    };
    RTCDataChannelInit {
        ordered,
        max_retransmits,
        max_packet_life_time,
        ..Default::default()
    }
}

async fn run_connection(new: NewConnection, shared: Arc<Shared>) {
    let NewConnection {
        id,
        role,
        commands,
        queue,
    } = new;
    if let Err(e) = connection(&id, role, commands, &queue, &shared).await {
        debug!(%id, error = %e, "connection failed");
        let _ = shared
            .events
            .send((id, PeerEvent::Failed(e.to_string())))
            .await;
    }
}

enum Wake {
    Command(Option<PeerCommand>),
    Channel(Arc<dyn DataChannel>),
    Milestone(Milestone),
    Nudge,
}

/// Points of the handshake where webrtc-rs needs a wake-up to go on at once.
#[derive(Clone, Copy, Debug)]
enum Milestone {
    /// ICE selected a pair: the DTLS client's first flight is queued.
    IceConnected,
    /// DTLS completed: SCTP and the DCEP handshakes follow.
    DtlsConnected,
}

/// First and longest gap between two driver wake-ups while local channels are opening.
const NUDGE_FIRST: Duration = Duration::from_millis(1);
const NUDGE_MAX: Duration = Duration::from_millis(16);
/// Nudging stops this long after DTLS completed, open or not (webrtc-rs's own timer remains).
const NUDGE_FOR: Duration = Duration::from_secs(2);

/// Wakes webrtc-rs's connection driver while SCTP and this side's channels open.
///
/// webrtc-rs 0.21's driver writes, then handles internal events, then sleeps until a packet, a
/// call from the application or its next timer (up to 200 ms away once ICE is connected). The
/// SCTP `INIT` (made when DTLS completes) and the DCEP `OPEN` of every locally created channel
/// (made when the association comes up) are produced while handling events, so each can sit
/// until that next wake-up: a 200 ms stall on either side.
/// Any call into the connection wakes the driver, so from DTLS completion until the channels
/// are open the task makes one cheap call (`set_configuration` with the unchanged
/// configuration) after 1 ms, then at doubling gaps of at most 16 ms. On a path with a real
/// round trip the wait for `COOKIE-ECHO` is at most prolonged by one gap.
struct Nudge {
    at: std::time::Instant,
    gap: Duration,
    until: std::time::Instant,
}

impl Nudge {
    fn start() -> Self {
        let now = crate::driver::now();
        Nudge {
            at: now + NUDGE_FIRST,
            gap: NUDGE_FIRST,
            until: now + NUDGE_FOR,
        }
    }

    /// The next wake-up, or `None` when nudging is over.
    fn next(self) -> Option<Self> {
        let gap = (self.gap * 2).min(NUDGE_MAX);
        let at = self.at + gap;
        (at < self.until).then_some(Nudge { at, gap, ..self })
    }
}

/// A remote host candidate of the address family this connection does not bind, at a
/// documentation address (RFC 3849 / RFC 5737) on the discard port, so that no local candidate
/// can pair with it: adding it creates no pair and sends nothing. `None` when both families
/// are bound (then the DTLS client waits for the ICE agent's tick).
fn inert_candidate(udp_addrs: &[SocketAddr]) -> Option<&'static str> {
    let v4 = udp_addrs.iter().any(SocketAddr::is_ipv4);
    let v6 = udp_addrs.iter().any(SocketAddr::is_ipv6);
    match (v4, v6) {
        (true, false) => Some("candidate:fastrtcflush 1 udp 1 2001:db8::1 9 typ host"),
        (false, true) => Some("candidate:fastrtcflush 1 udp 1 192.0.2.1 9 typ host"),
        _ => None,
    }
}

/// Sends the DTLS client's first flight now instead of at the ICE agent's next tick.
///
/// When ICE selects a pair, webrtc-rs 0.21 starts the DTLS client, whose `ClientHello` is then
/// only handed to the socket by the connection's next timeout handling: up to one ICE check
/// interval later (10 ms here; 200 ms with webrtc-rs defaults). A new remote candidate makes
/// the ICE agent ask for an immediate timeout, and a wake-up makes the driver see it. The
/// candidate is [`inert_candidate`], so nothing else changes (it is visible in stats as a
/// remote candidate of this connection).
async fn flush_dtls_client(id: &ConnectionId, pc: &impl PeerConnection, shared: &Shared) {
    let Some(candidate) = inert_candidate(&shared.native.udp_addrs) else {
        return;
    };
    let inert = RTCIceCandidateInit {
        candidate: candidate.to_owned(),
        ..Default::default()
    };
    match pc.add_ice_candidate(inert).await {
        Ok(()) => {
            wake_driver(id, pc).await;
        }
        Err(e) => debug!(%id, error = %e, "could not hurry the DTLS client"),
    }
}

/// Wakes webrtc-rs's connection driver: one pass of its loop writes what is queued and
/// handles what is due. `set_configuration` with the unchanged configuration is the cheapest
/// public call that reaches the driver; it changes nothing. False if the connection is gone.
async fn wake_driver(id: &ConnectionId, pc: &impl PeerConnection) -> bool {
    let configuration = pc.get_configuration().await;
    match pc.set_configuration(configuration).await {
        Ok(()) => true,
        Err(e) => {
            debug!(%id, error = %e, "driver wake failed");
            false
        }
    }
}

/// Whether the SCTP association is up and every channel this side holds is open.
async fn settled(
    pc: &impl PeerConnection,
    channels: &HashMap<ChannelId, Arc<dyn DataChannel>>,
) -> bool {
    let Some(sctp) = pc.sctp().await else {
        return false;
    };
    if !matches!(sctp.state().await, Ok(RTCSctpTransportState::Connected)) {
        return false;
    }
    for dc in channels.values() {
        if !matches!(dc.ready_state().await, Ok(RTCDataChannelState::Open)) {
            return false;
        }
    }
    true
}

async fn connection(
    id: &ConnectionId,
    role: Role,
    commands: async_channel::Receiver<PeerCommand>,
    queue: &SendQueue,
    shared: &Shared,
) -> webrtc::error::Result<()> {
    let (channel_tx, channel_rx) = async_channel::bounded(16);
    let (milestone_tx, milestone_rx) = async_channel::bounded(4);
    let handler = Arc::new(Handler {
        id: id.clone(),
        events: shared.events.clone(),
        channels: channel_tx,
        milestones: milestone_tx,
    });
    let pc = build(shared, handler).await?;
    let inbox = Inbox {
        commands,
        channels: channel_rx,
        milestones: milestone_rx,
    };
    let result = drive(id, role, &pc, inbox, queue, shared).await;
    // Always close explicitly: a dropped connection keeps its driver and sockets running.
    if let Err(e) = pc.close().await {
        debug!(%id, error = %e, "close failed");
    }
    debug!(%id, "connection closed");
    result
}

async fn build(
    shared: &Shared,
    handler: Arc<Handler>,
) -> webrtc::error::Result<impl PeerConnection> {
    let swarm = &shared.swarm;
    let native = &shared.native;
    let ice_servers = swarm
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect();
    let policy = match swarm.ice_transport_policy {
        IceTransportPolicy::All => RTCIceTransportPolicy::All,
        IceTransportPolicy::Relay => RTCIceTransportPolicy::Relay,
    };
    let configuration = RTCConfigurationBuilder::default()
        .with_ice_servers(ice_servers)
        .with_ice_transport_policy(policy)
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
        .with_prflx_acceptance_min_wait(Some(native.ice_prflx_acceptance_wait))
        .with_include_loopback_candidate(loopback)
        .build();
    PeerConnectionBuilder::new()
        .with_configuration(configuration)
        .with_setting_engine(settings)
        .with_runtime(shared.runtime.clone())
        .with_handler(handler)
        .with_udp_addrs(native.udp_addrs.clone())
        .with_data_channel_send_buffer_limit(MAX_BUFFERED_BYTES)
        .build()
        .await
}

/// What wakes a connection task: commands from the swarm, channels announced by the remote, and
/// the connection coming up.
struct Inbox {
    commands: async_channel::Receiver<PeerCommand>,
    channels: async_channel::Receiver<Arc<dyn DataChannel>>,
    milestones: async_channel::Receiver<Milestone>,
}

async fn drive(
    id: &ConnectionId,
    role: Role,
    pc: &impl PeerConnection,
    inbox: Inbox,
    queue: &SendQueue,
    shared: &Shared,
) -> webrtc::error::Result<()> {
    let Inbox {
        commands,
        channels: channel_rx,
        milestones: milestone_rx,
    } = inbox;
    let events = &shared.events;
    let mut channels: HashMap<ChannelId, Arc<dyn DataChannel>> = HashMap::new();
    let mut nudge: Option<Nudge> = None;
    // Whether this end is the DTLS client (sends the first flight), read from the SDP.
    let mut dtls_client = false;
    if role == Role::Offerer {
        for (cid, label, delivery) in shared.swarm.all_channels() {
            let dc = pc
                .create_data_channel(label, Some(channel_init(delivery)))
                .await?;
            watch_channel(shared, id, cid, dc.clone());
            channels.insert(cid, dc);
        }
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer.clone()).await?;
        let ev = PeerEvent::LocalDescription {
            kind: SdpKind::Offer,
            sdp: offer.sdp,
        };
        let _ = events.send((id.clone(), ev)).await;
    }
    loop {
        let next_command = async { Wake::Command(commands.recv().await.ok()) };
        let next_channel = async {
            match channel_rx.recv().await {
                Ok(dc) => Wake::Channel(dc),
                Err(_) => future::pending().await,
            }
        };
        let next_milestone = async {
            match milestone_rx.recv().await {
                Ok(m) => Wake::Milestone(m),
                Err(_) => future::pending().await,
            }
        };
        let next_nudge = async {
            match &nudge {
                Some(n) => {
                    async_io::Timer::at(n.at).await;
                    Wake::Nudge
                }
                None => future::pending().await,
            }
        };
        let wake = future::or(
            next_command,
            future::or(next_channel, future::or(next_milestone, next_nudge)),
        )
        .await;
        match wake {
            Wake::Command(None) => {
                flush(&channels).await;
                return Ok(());
            }
            Wake::Command(Some(command)) => match command {
                PeerCommand::SetRemote { kind, sdp, .. } => {
                    let remote_passive = sdp.contains("a=setup:passive");
                    let desc = match kind {
                        SdpKind::Offer => RTCSessionDescription::offer(sdp)?,
                        SdpKind::Answer => RTCSessionDescription::answer(sdp)?,
                    };
                    pc.set_remote_description(desc).await?;
                    if kind == SdpKind::Answer {
                        dtls_client = remote_passive;
                    }
                    if kind == SdpKind::Offer {
                        let answer = pc.create_answer(None).await?;
                        dtls_client = answer.sdp.contains("a=setup:active");
                        pc.set_local_description(answer.clone()).await?;
                        let ev = PeerEvent::LocalDescription {
                            kind: SdpKind::Answer,
                            sdp: answer.sdp,
                        };
                        let _ = events.send((id.clone(), ev)).await;
                    }
                }
                PeerCommand::AddCandidate {
                    candidate: Some(c), ..
                } => {
                    // One bad candidate does not doom the link: others may work.
                    match pc.add_ice_candidate(from_wire(c)).await {
                        // webrtc-rs schedules the new pair's first check for the driver's
                        // next wake-up (up to one check interval away); wake it now.
                        Ok(()) => {
                            wake_driver(id, pc).await;
                        }
                        Err(e) => debug!(%id, error = %e, "remote candidate refused"),
                    }
                }
                PeerCommand::AddCandidate {
                    candidate: None, ..
                } => {}
                PeerCommand::Send {
                    channel, payload, ..
                } => {
                    let len = payload.len();
                    let sent = match channels.get(&channel) {
                        // Waits while webrtc-rs's send buffer is full (SCTP flow control).
                        Some(dc) => match payload {
                            Payload::Text(text) => dc.send_text(&text).await,
                            Payload::Binary(bytes) => dc.send(BytesMut::from(&bytes[..])).await,
                        },
                        None => Err(webrtc::error::Error::ErrDataChannelClosed),
                    };
                    queue.done(len);
                    if let Err(e) = sent {
                        debug!(%id, ?channel, error = %e, "send failed");
                    }
                }
                PeerCommand::Close { .. } => {
                    flush(&channels).await;
                    return Ok(());
                }
                PeerCommand::Create { .. } => {}
            },
            Wake::Channel(dc) => {
                let label = dc.label().await.unwrap_or_default();
                match shared.swarm.channel_by_label(&label) {
                    Some(cid) if !channels.contains_key(&cid) => {
                        watch_channel(shared, id, cid, dc.clone());
                        channels.insert(cid, dc);
                    }
                    _ => {
                        debug!(%id, %label, "closing a channel this swarm does not know");
                        let _ = dc.close().await;
                    }
                }
            }
            Wake::Milestone(Milestone::IceConnected) => {
                if dtls_client {
                    flush_dtls_client(id, pc, shared).await;
                }
            }
            Wake::Milestone(Milestone::DtlsConnected) => {
                nudge = Some(Nudge::start());
            }
            Wake::Nudge => {
                nudge = nudge.take().and_then(Nudge::next);
                // Done once settled, or when the connection is gone.
                if settled(pc, &channels).await || !wake_driver(id, pc).await {
                    nudge = None;
                }
            }
        }
    }
}

/// Gives the channels up to 250 ms to hand what was sent to the remote (the `@fast/` close
/// notice most of all) before the connection is closed under them.
async fn flush(channels: &HashMap<ChannelId, Arc<dyn DataChannel>>) {
    let deadline = crate::driver::now() + Duration::from_millis(250);
    for dc in channels.values() {
        while dc.outstanding_bytes().await.unwrap_or(0) > 0 && crate::driver::now() < deadline {
            async_io::Timer::after(Duration::from_millis(2)).await;
        }
    }
}

/// Polls one data channel until it closes, reporting opens, messages and the close.
fn watch_channel(shared: &Shared, id: &ConnectionId, channel: ChannelId, dc: Arc<dyn DataChannel>) {
    let events = shared.events.clone();
    let id = id.clone();
    let task = async move {
        while let Some(event) = dc.poll().await {
            let ev = match event {
                DataChannelEvent::OnOpen => PeerEvent::ChannelOpen(channel),
                DataChannelEvent::OnMessage(m) => {
                    let payload = if m.is_string {
                        Payload::Text(String::from_utf8_lossy(&m.data).into_owned())
                    } else {
                        Payload::Binary(m.data.to_vec())
                    };
                    PeerEvent::Message { channel, payload }
                }
                DataChannelEvent::OnClose => break,
                _ => continue,
            };
            if events.send((id.clone(), ev)).await.is_err() {
                return;
            }
        }
        let _ = events.send((id, PeerEvent::ChannelClosed(channel))).await;
    };
    drop(shared.runtime.spawn(Box::pin(task)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inert_candidate_is_of_the_family_not_bound() {
        let v4: SocketAddr = "0.0.0.0:0".parse().unwrap_or_else(|_| unreachable!());
        let v6: SocketAddr = "[::]:0".parse().unwrap_or_else(|_| unreachable!());
        assert!(inert_candidate(&[v4]).is_some_and(|c| c.contains("2001:db8::1")));
        assert!(inert_candidate(&[v6]).is_some_and(|c| c.contains("192.0.2.1")));
        assert_eq!(inert_candidate(&[v4, v6]), None);
    }

    #[test]
    fn nudges_double_up_to_the_cap_and_stop() {
        let mut n = Some(Nudge::start());
        let mut gaps = Vec::new();
        let mut last = n.as_ref().map(|n| n.at);
        while let Some(next) = n.and_then(Nudge::next) {
            if let Some(prev) = last {
                gaps.push(next.at - prev);
            }
            last = Some(next.at);
            n = Some(next);
        }
        let ms = |m| Duration::from_millis(m);
        assert_eq!(&gaps[..5], &[ms(2), ms(4), ms(8), ms(16), ms(16)]);
        assert!(gaps.iter().all(|g| *g <= NUDGE_MAX));
        // About 2 s of nudges at most 16 ms apart, then none.
        assert!((120..=130).contains(&gaps.len()), "{}", gaps.len());
    }
}
