//! The browser backend: the page's `RTCPeerConnection` through web-sys (wasm only).
//!
//! It does what the native backend does, behind the same [`Backend`] trait, and nothing
//! more: each connection is one local task that carries out its commands in order and forwards
//! what the browser reports. Every JS callback is a `Closure` owned by its connection (or
//! channel) and unregistered when the connection closes; nothing is leaked with
//! `Closure::forget`.
//!
//! What the browser reports goes through a per-connection inbox to the connection task, which
//! hands it to the swarm in order and waits while the swarm is behind. A callback cannot wait,
//! so the inbox has a bound ([`INBOX`]): a page that stops draining its swarm's events past it
//! gets the connection failed with a clear reason rather than unbounded memory.

use crate::backend::{Backend, Buffered, Connections, EventSender, NewConnection, SendQueue};
use crate::config::{ChannelId, Delivery, IceTransportPolicy, SwarmConfig};
use crate::sans_io::{IceState, Payload, PeerCommand, PeerEvent, Role, SdpKind};
use fast_rtc_protocol::{ConnectionId, IceCandidate};
use futures_lite::future;
use js_sys::{Array, ArrayBuffer, Reflect, Uint8Array};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::debug;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Event, MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelInit,
    RtcDataChannelState, RtcDataChannelType, RtcIceCandidateInit, RtcIceConnectionState,
    RtcIceServer, RtcPeerConnection, RtcPeerConnectionIceEvent, RtcSdpType,
    RtcSessionDescriptionInit,
};

/// Browser reports queued per connection at most before the connection is failed.
pub const INBOX: usize = 8192;
/// A channel's own send buffer (`bufferedAmount`) above which a send waits (the browser
/// closes a channel whose buffer passes 16 MiB).
const CHANNEL_HIGH_WATER: u32 = 1 << 20;

/// Settings of the browser backend. The browser owns ICE pacing and timeouts, so there is
/// nothing to tune yet; ICE servers and the transport policy come from [`SwarmConfig`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct WebConfig {}

/// The browser backend. See the [module docs](self).
///
/// The backend itself holds no JS object (those live in each connection's local task), so it
/// is `Send` like the native one and a Bevy resource can own the swarm.
pub struct WebBackend {
    swarm: Arc<SwarmConfig>,
    events: EventSender,
    connections: Connections,
}

impl WebBackend {
    /// A backend for `swarm`'s channels and ICE servers, reporting to `events`.
    pub fn new(
        swarm: SwarmConfig,
        _web: WebConfig,
        events: EventSender,
    ) -> Result<Self, crate::StartError> {
        let has_webrtc = js_sys::global()
            .dyn_into::<js_sys::Object>()
            .ok()
            .and_then(|g| Reflect::has(&g, &JsValue::from_str("RTCPeerConnection")).ok())
            .unwrap_or(false);
        if !has_webrtc {
            return Err(crate::StartError::NoWebRtc);
        }
        Ok(WebBackend {
            swarm: Arc::new(swarm),
            connections: Connections::new(events.clone()),
            events,
        })
    }
}

impl Backend for WebBackend {
    fn buffered(&self, id: &ConnectionId) -> Buffered {
        self.connections.buffered(id)
    }

    fn connection_count(&self) -> usize {
        self.connections.len()
    }

    fn execute(&mut self, command: PeerCommand) {
        if let Some(new) = self.connections.route(command) {
            let task = run_connection(new, self.swarm.clone(), self.events.clone());
            wasm_bindgen_futures::spawn_local(task);
        }
    }
}

/// What the browser reported, on its way to the connection task.
enum Report {
    Event(PeerEvent),
    Channel(RtcDataChannel),
}

/// The inbox's sending side, shared by every callback of one connection.
#[derive(Clone)]
struct Inbox {
    tx: async_channel::Sender<Report>,
}

impl Inbox {
    fn push(&self, report: Report) {
        if self.tx.len() >= INBOX {
            // Nothing is dropped silently: the connection fails, and says why.
            let _ = self.tx.try_send(Report::Event(PeerEvent::Failed(
                "receive queue full: the swarm's events are not being drained".into(),
            )));
            self.tx.close();
            return;
        }
        let _ = self.tx.try_send(report);
    }
}

/// The page's peer connection with the handlers it owns.
struct Pc {
    pc: RtcPeerConnection,
    _on_candidate: Closure<dyn FnMut(RtcPeerConnectionIceEvent)>,
    _on_ice_state: Closure<dyn FnMut(Event)>,
    _on_channel: Closure<dyn FnMut(RtcDataChannelEvent)>,
}

impl Drop for Pc {
    fn drop(&mut self) {
        self.pc.set_onicecandidate(None);
        self.pc.set_oniceconnectionstatechange(None);
        self.pc.set_ondatachannel(None);
        self.pc.close();
    }
}

/// One data channel with the handlers it owns.
struct Channel {
    dc: RtcDataChannel,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_close: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.dc.set_onopen(None);
        self.dc.set_onclose(None);
        self.dc.set_onmessage(None);
    }
}

fn js_err(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

thread_local! {
    /// The page's DTLS certificate, shared by every connection (see [`certificate`]).
    static CERTIFICATE: std::cell::RefCell<Option<JsValue>> = const { std::cell::RefCell::new(None) };
}

/// One ECDSA P-256 certificate for every connection of the page, generated once.
///
/// Without one, the browser generates a certificate for each new `RTCPeerConnection`, and the
/// first offer or answer waits for it. The first connection (the pre-made offer, made while the
/// signaling socket opens) pays for it, and answering at join time does not. `None` if the
/// browser refuses; the connection then makes its own.
async fn certificate() -> Option<JsValue> {
    if let Some(cert) = CERTIFICATE.with(|c| c.borrow().clone()) {
        return Some(cert);
    }
    let algorithm = js_sys::Object::new();
    Reflect::set(&algorithm, &"name".into(), &"ECDSA".into()).ok()?;
    Reflect::set(&algorithm, &"namedCurve".into(), &"P-256".into()).ok()?;
    let promise = RtcPeerConnection::generate_certificate_with_object(&algorithm).ok()?;
    let cert = JsFuture::from(promise).await.ok()?;
    // Two connections may have generated one at once: keep the first, so all share it.
    Some(CERTIFICATE.with(|c| c.borrow_mut().get_or_insert(cert).clone()))
}

fn configuration(swarm: &SwarmConfig, certificate: Option<&JsValue>) -> RtcConfiguration {
    let config = RtcConfiguration::new();
    if let Some(cert) = certificate {
        config.set_certificates(&Array::of1(cert));
    }
    let servers = Array::new();
    for s in &swarm.ice_servers {
        let server = RtcIceServer::new();
        let urls = Array::new();
        for u in &s.urls {
            urls.push(&JsValue::from_str(u));
        }
        server.set_urls(&urls);
        if !s.username.is_empty() {
            server.set_username(&s.username);
        }
        if !s.credential.is_empty() {
            server.set_credential(&s.credential);
        }
        servers.push(&server);
    }
    config.set_ice_servers(&servers);
    config.set_ice_transport_policy(match swarm.ice_transport_policy {
        IceTransportPolicy::All => web_sys::RtcIceTransportPolicy::All,
        IceTransportPolicy::Relay => web_sys::RtcIceTransportPolicy::Relay,
    });
    config
}

fn new_pc(swarm: &SwarmConfig, inbox: &Inbox, certificate: Option<&JsValue>) -> Result<Pc, String> {
    let pc = RtcPeerConnection::new_with_configuration(&configuration(swarm, certificate))
        .map_err(js_err)?;
    let on_candidate = {
        let inbox = inbox.clone();
        Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(move |e: RtcPeerConnectionIceEvent| {
            let candidate = e.candidate().map(|c| IceCandidate {
                candidate: c.candidate(),
                sdp_mid: c.sdp_mid().filter(|m| !m.is_empty()),
                sdp_m_line_index: c.sdp_m_line_index(),
                username_fragment: None,
            });
            // An empty candidate string is the old way of saying "end of candidates".
            let candidate = candidate.filter(|c| !c.candidate.is_empty());
            inbox.push(Report::Event(PeerEvent::LocalCandidate(candidate)));
        })
    };
    let on_ice_state = {
        let inbox = inbox.clone();
        let pc = pc.clone();
        Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
            let state = match pc.ice_connection_state() {
                RtcIceConnectionState::Checking => IceState::Checking,
                RtcIceConnectionState::Connected => IceState::Connected,
                RtcIceConnectionState::Completed => IceState::Completed,
                RtcIceConnectionState::Disconnected => IceState::Disconnected,
                RtcIceConnectionState::Failed => IceState::Failed,
                RtcIceConnectionState::Closed => IceState::Closed,
                _ => IceState::New,
            };
            inbox.push(Report::Event(PeerEvent::IceState(state)));
        })
    };
    let on_channel = {
        let inbox = inbox.clone();
        Closure::<dyn FnMut(RtcDataChannelEvent)>::new(move |e: RtcDataChannelEvent| {
            inbox.push(Report::Channel(e.channel()));
        })
    };
    pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
    pc.set_oniceconnectionstatechange(Some(on_ice_state.as_ref().unchecked_ref()));
    pc.set_ondatachannel(Some(on_channel.as_ref().unchecked_ref()));
    Ok(Pc {
        pc,
        _on_candidate: on_candidate,
        _on_ice_state: on_ice_state,
        _on_channel: on_channel,
    })
}

fn channel_init(delivery: Delivery) -> RtcDataChannelInit {
    let init = RtcDataChannelInit::new();
    match delivery {
        Delivery::Reliable => init.set_ordered(true),
        Delivery::Unreliable => {
            init.set_ordered(false);
            init.set_max_retransmits(0);
        }
        Delivery::MaxRetransmits(n) => {
            init.set_ordered(false);
            init.set_max_retransmits(n);
        }
        Delivery::MaxPacketLifeTime(ms) => {
            init.set_ordered(false);
            init.set_max_packet_life_time(ms);
        }
    }
    init
}

fn watch(dc: RtcDataChannel, channel: ChannelId, inbox: &Inbox) -> Channel {
    dc.set_binary_type(RtcDataChannelType::Arraybuffer);
    let on_open = {
        let inbox = inbox.clone();
        Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
            inbox.push(Report::Event(PeerEvent::ChannelOpen(channel)));
        })
    };
    let on_close = {
        let inbox = inbox.clone();
        Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
            inbox.push(Report::Event(PeerEvent::ChannelClosed(channel)));
        })
    };
    let on_message = {
        let inbox = inbox.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let data = e.data();
            let payload = if let Some(text) = data.as_string() {
                Payload::Text(text)
            } else if let Some(buf) = data.dyn_ref::<ArrayBuffer>() {
                Payload::Binary(Uint8Array::new(buf).to_vec())
            } else {
                debug!("ignoring a message that is neither text nor ArrayBuffer");
                return;
            };
            inbox.push(Report::Event(PeerEvent::Message { channel, payload }));
        })
    };
    dc.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    dc.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    dc.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // A channel can already be open when it is announced (ondatachannel).
    if dc.ready_state() == RtcDataChannelState::Open {
        inbox.push(Report::Event(PeerEvent::ChannelOpen(channel)));
    }
    Channel {
        dc,
        _on_open: on_open,
        _on_close: on_close,
        _on_message: on_message,
    }
}

async fn run_connection(new: NewConnection, swarm: Arc<SwarmConfig>, events: EventSender) {
    let NewConnection {
        id,
        role,
        commands,
        queue,
    } = new;
    if let Err(e) = connection(&id, role, commands, &queue, &swarm, &events).await {
        debug!(%id, error = %e, "connection failed");
        let _ = events.send((id, PeerEvent::Failed(e))).await;
    }
}

async fn connection(
    id: &ConnectionId,
    role: Role,
    commands: async_channel::Receiver<PeerCommand>,
    queued: &SendQueue,
    swarm: &SwarmConfig,
    events: &EventSender,
) -> Result<(), String> {
    let (tx, reports) = async_channel::unbounded();
    let inbox = Inbox { tx };
    let cert = certificate().await;
    let pc = new_pc(swarm, &inbox, cert.as_ref())?;
    let mut channels: HashMap<ChannelId, Channel> = HashMap::new();
    if role == Role::Offerer {
        for (cid, label, delivery) in swarm.all_channels() {
            let dc = pc
                .pc
                .create_data_channel_with_data_channel_dict(label, &channel_init(delivery));
            channels.insert(cid, watch(dc, cid, &inbox));
        }
        let offer = JsFuture::from(pc.pc.create_offer()).await.map_err(js_err)?;
        let sdp = sdp_of(&offer)?;
        let init = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
        init.set_sdp(&sdp);
        JsFuture::from(pc.pc.set_local_description(&init))
            .await
            .map_err(js_err)?;
        let ev = PeerEvent::LocalDescription {
            kind: SdpKind::Offer,
            sdp,
        };
        let _ = events.send((id.clone(), ev)).await;
    }
    enum Wake {
        Command(Option<PeerCommand>),
        Report(Option<Report>),
    }
    loop {
        let next_command = async { Wake::Command(commands.recv().await.ok()) };
        let next_report = async { Wake::Report(reports.recv().await.ok()) };
        match future::or(next_command, next_report).await {
            Wake::Command(None) => {
                flush(&channels).await;
                return Ok(());
            }
            Wake::Command(Some(command)) => match command {
                PeerCommand::SetRemote { kind, sdp, .. } => {
                    let init = RtcSessionDescriptionInit::new(match kind {
                        SdpKind::Offer => RtcSdpType::Offer,
                        SdpKind::Answer => RtcSdpType::Answer,
                    });
                    init.set_sdp(&sdp);
                    JsFuture::from(pc.pc.set_remote_description(&init))
                        .await
                        .map_err(js_err)?;
                    if kind == SdpKind::Offer {
                        let answer = JsFuture::from(pc.pc.create_answer())
                            .await
                            .map_err(js_err)?;
                        let sdp = sdp_of(&answer)?;
                        let init = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
                        init.set_sdp(&sdp);
                        JsFuture::from(pc.pc.set_local_description(&init))
                            .await
                            .map_err(js_err)?;
                        let ev = PeerEvent::LocalDescription {
                            kind: SdpKind::Answer,
                            sdp,
                        };
                        let _ = events.send((id.clone(), ev)).await;
                    }
                }
                PeerCommand::AddCandidate {
                    candidate: Some(c), ..
                } => {
                    let init = RtcIceCandidateInit::new(&c.candidate);
                    init.set_sdp_mid(c.sdp_mid.as_deref());
                    // Without either, browsers refuse the candidate; fast-rtc has one m-line.
                    let index = c.sdp_m_line_index.or(c.sdp_mid.is_none().then_some(0));
                    init.set_sdp_m_line_index(index);
                    let added = pc
                        .pc
                        .add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init));
                    // One bad candidate does not doom the link: others may work.
                    if let Err(e) = JsFuture::from(added).await {
                        debug!(%id, error = %js_err(e), "remote candidate refused");
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
                        Some(ch) => send(&ch.dc, &payload).await,
                        None => Err(format!("no channel {channel:?}")),
                    };
                    queued.done(len);
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
            Wake::Report(None) => return Err("the connection's reports ended".into()),
            Wake::Report(Some(Report::Event(ev))) => {
                let failed = matches!(ev, PeerEvent::Failed(_));
                if events.send((id.clone(), ev)).await.is_err() || failed {
                    return Ok(());
                }
            }
            Wake::Report(Some(Report::Channel(dc))) => {
                let label = dc.label();
                match swarm.channel_by_label(&label) {
                    Some(cid) if !channels.contains_key(&cid) => {
                        let ch = watch(dc, cid, &inbox);
                        channels.insert(cid, ch);
                    }
                    _ => {
                        debug!(%id, %label, "closing a channel this swarm does not know");
                        dc.close();
                    }
                }
            }
        }
    }
}

fn sdp_of(desc: &JsValue) -> Result<String, String> {
    Reflect::get(desc, &JsValue::from_str("sdp"))
        .ok()
        .and_then(|v| v.as_string())
        .ok_or_else(|| "description without sdp".to_owned())
}

/// Sends one message, waiting while the channel's own buffer is above its high water mark.
async fn send(dc: &RtcDataChannel, payload: &Payload) -> Result<(), String> {
    while dc.buffered_amount() > CHANNEL_HIGH_WATER {
        if dc.ready_state() != RtcDataChannelState::Open {
            break;
        }
        crate::rt::sleep(Duration::from_millis(2)).await;
    }
    match payload {
        Payload::Text(text) => dc.send_with_str(text),
        Payload::Binary(bytes) => dc.send_with_u8_array(bytes),
    }
    .map_err(js_err)
}

/// Gives the channels up to 250 ms to hand what was sent to the remote (the `@fast/` close
/// notice most of all) before the connection is closed under them.
async fn flush(channels: &HashMap<ChannelId, Channel>) {
    let deadline = crate::driver::now() + Duration::from_millis(250);
    for ch in channels.values() {
        while ch.dc.buffered_amount() > 0
            && ch.dc.ready_state() == RtcDataChannelState::Open
            && crate::driver::now() < deadline
        {
            crate::rt::sleep(Duration::from_millis(2)).await;
        }
    }
}
