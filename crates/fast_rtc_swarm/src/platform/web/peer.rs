//! One browser `RTCPeerConnection` as the connection task drives it ([`RtcPeer`]).
//!
//! Every JS callback is a `Closure` owned by its connection (or channel) and unregistered when
//! it closes; nothing is leaked with `Closure::forget`. What the browser reports goes through a
//! per-connection inbox to the connection task, which hands it to the swarm in order and waits
//! while the swarm is behind. A callback cannot wait, so the inbox has a bound ([`INBOX`]): a
//! page that stops draining its swarm's events past it gets the connection failed with a clear
//! reason rather than unbounded memory.

use super::audio::{LinkAudio, MediaLink, RemoteTracks};
use crate::connection::{Report, RtcChannel, RtcPeer};
use crate::platform::time::sleep;
use fast_rtc_protocol::ConnectionId;
use fast_rtc_protocol::{IceCandidate, IceServer};
use fast_rtc_swarm_core::config::{ChannelId, Delivery, IceTransportPolicy, SwarmConfig};
use fast_rtc_swarm_core::media::{TrackError, TrackId};
use fast_rtc_swarm_core::swarm::{IceState, Payload, PeerEvent, PeerFailure, SdpKind};
use js_sys::{Array, ArrayBuffer, Reflect, Uint8Array};
use std::time::Duration;
use tracing::debug;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Event, MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelInit,
    RtcDataChannelState, RtcDataChannelType, RtcIceCandidateInit, RtcIceConnectionState,
    RtcIceServer, RtcOfferOptions, RtcPeerConnection, RtcPeerConnectionIceEvent, RtcSdpType,
    RtcSessionDescriptionInit, RtcTrackEvent,
};

/// Browser reports queued per connection at most before the connection is failed.
pub const INBOX: usize = 8192;
/// A channel's own send buffer (`bufferedAmount`) above which a send waits (the browser
/// closes a channel whose buffer passes 16 MiB).
const CHANNEL_HIGH_WATER: u32 = 1 << 20;
/// How long a send waits for its channel to finish opening, in 1 ms steps (about 10 s; timer
/// steps in a page can be longer).
const OPEN_WAIT_MS: u32 = 10_000;

/// The inbox's sending side, shared by every callback of one connection.
#[derive(Clone)]
struct Inbox {
    tx: async_channel::Sender<Report<RtcDataChannel>>,
}

impl Inbox {
    fn push(&self, report: Report<RtcDataChannel>) {
        if self.tx.len() >= INBOX {
            // Nothing is dropped silently: the connection fails, and says why.
            let _ = self
                .tx
                .try_send(Report::Event(PeerEvent::Failed(PeerFailure::InboxFull)));
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
    _on_track: Closure<dyn FnMut(RtcTrackEvent)>,
}

impl Drop for Pc {
    fn drop(&mut self) {
        self.pc.set_onicecandidate(None);
        self.pc.set_oniceconnectionstatechange(None);
        self.pc.set_ondatachannel(None);
        self.pc.set_ontrack(None);
        self.pc.close();
    }
}

/// One data channel with the handlers it owns.
pub(crate) struct Channel {
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

fn configuration(
    swarm: &SwarmConfig,
    ice_servers: &[IceServer],
    certificate: Option<&JsValue>,
) -> RtcConfiguration {
    let config = RtcConfiguration::new();
    if let Some(cert) = certificate {
        config.set_certificates(&Array::of1(cert));
    }
    let servers = Array::new();
    for s in ice_servers {
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

fn new_pc(
    swarm: &SwarmConfig,
    ice_servers: &[IceServer],
    inbox: &Inbox,
    certificate: Option<&JsValue>,
    remote: RemoteTracks,
) -> Result<Pc, String> {
    let pc =
        RtcPeerConnection::new_with_configuration(&configuration(swarm, ice_servers, certificate))
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
            let dc = e.channel();
            inbox.push(Report::Channel {
                label: dc.label(),
                raw: dc,
            });
        })
    };
    let on_track = Closure::<dyn FnMut(RtcTrackEvent)>::new(move |e: RtcTrackEvent| {
        remote.remote_track(&e);
    });
    pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
    pc.set_ontrack(Some(on_track.as_ref().unchecked_ref()));
    pc.set_oniceconnectionstatechange(Some(on_ice_state.as_ref().unchecked_ref()));
    pc.set_ondatachannel(Some(on_channel.as_ref().unchecked_ref()));
    Ok(Pc {
        pc,
        _on_candidate: on_candidate,
        _on_ice_state: on_ice_state,
        _on_channel: on_channel,
        _on_track: on_track,
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
        Delivery::UnreliableOrdered => {
            init.set_ordered(true);
            init.set_max_retransmits(0);
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

/// A browser connection: the page's peer connection and the inbox its callbacks fill.
pub(crate) struct WebPeer {
    pc: Pc,
    audio: LinkAudio,
    inbox: Inbox,
    reports: async_channel::Receiver<Report<RtcDataChannel>>,
}

impl WebPeer {
    /// Creates connection `id`'s `RTCPeerConnection` with the STUN/TURN servers the core chose
    /// for it, and the page's certificate; its audio is part of `media`.
    pub(crate) async fn build(
        swarm: &SwarmConfig,
        ice_servers: &[IceServer],
        media: MediaLink,
        id: ConnectionId,
    ) -> Result<Self, String> {
        let (tx, reports) = async_channel::unbounded();
        let inbox = Inbox { tx };
        let cert = certificate().await;
        let audio = LinkAudio::new(media, id, &swarm.audio_tracks);
        let pc = new_pc(
            swarm,
            ice_servers,
            &inbox,
            cert.as_ref(),
            audio.remote_tracks(),
        )?;
        Ok(WebPeer {
            pc,
            audio,
            inbox,
            reports,
        })
    }

    async fn describe(&self, kind: RtcSdpType, sdp: &str) -> Result<(), String> {
        let init = RtcSessionDescriptionInit::new(kind);
        init.set_sdp(sdp);
        JsFuture::from(self.pc.pc.set_local_description(&init))
            .await
            .map(|_| ())
            .map_err(js_err)
    }
}

impl RtcPeer for WebPeer {
    type RawChannel = RtcDataChannel;
    type Channel = Channel;

    async fn create_channel(
        &mut self,
        id: ChannelId,
        label: &str,
        delivery: Delivery,
    ) -> Result<Channel, String> {
        let dc = self
            .pc
            .pc
            .create_data_channel_with_data_channel_dict(label, &channel_init(delivery));
        Ok(watch(dc, id, &self.inbox))
    }

    fn adopt(&mut self, id: ChannelId, raw: RtcDataChannel) -> Channel {
        watch(raw, id, &self.inbox)
    }

    async fn refuse(&mut self, raw: RtcDataChannel) {
        raw.close();
    }

    async fn offer(&mut self) -> Result<String, String> {
        self.audio.add_transceivers(&self.pc.pc);
        let offer = JsFuture::from(self.pc.pc.create_offer())
            .await
            .map_err(js_err)?;
        let sdp = sdp_of(&offer)?;
        self.describe(RtcSdpType::Offer, &sdp).await?;
        Ok(sdp)
    }

    async fn restart_offer(&mut self, _ice_servers: &[IceServer]) -> Result<String, String> {
        // The browser gathers with the servers the connection was made with (a page's
        // setConfiguration needs the swarm's whole configuration, which this peer does not
        // keep): a browser link older than its TURN credentials restores over STUN or host
        // pairs only.
        let options = RtcOfferOptions::new();
        options.set_ice_restart(true);
        let offer = JsFuture::from(self.pc.pc.create_offer_with_rtc_offer_options(&options))
            .await
            .map_err(js_err)?;
        let sdp = sdp_of(&offer)?;
        self.describe(RtcSdpType::Offer, &sdp).await?;
        Ok(sdp)
    }

    async fn answer(&mut self) -> Result<String, String> {
        let answer = JsFuture::from(self.pc.pc.create_answer())
            .await
            .map_err(js_err)?;
        let sdp = sdp_of(&answer)?;
        self.describe(RtcSdpType::Answer, &sdp).await?;
        Ok(sdp)
    }

    async fn set_remote(&mut self, kind: SdpKind, sdp: String) -> Result<(), String> {
        let init = RtcSessionDescriptionInit::new(match kind {
            SdpKind::Offer => RtcSdpType::Offer,
            SdpKind::Answer => RtcSdpType::Answer,
        });
        init.set_sdp(&sdp);
        JsFuture::from(self.pc.pc.set_remote_description(&init))
            .await
            .map_err(js_err)?;
        if kind == SdpKind::Offer {
            // The offer made one audio transceiver per section: this end's tracks.
            self.audio.adopt_transceivers(&self.pc.pc);
        }
        Ok(())
    }

    async fn add_candidate(&mut self, c: IceCandidate) -> Result<(), String> {
        let init = RtcIceCandidateInit::new(&c.candidate);
        init.set_sdp_mid(c.sdp_mid.as_deref());
        // Without either, browsers refuse the candidate; fast-rtc has one m-line.
        let index = c.sdp_m_line_index.or(c.sdp_mid.is_none().then_some(0));
        init.set_sdp_m_line_index(index);
        let added = self
            .pc
            .pc
            .add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init));
        JsFuture::from(added).await.map(|_| ()).map_err(js_err)
    }

    async fn add_audio_tracks(&mut self, _names: &[String]) -> Result<(), String> {
        // The names are the swarm's declared tracks, which the connection was built with:
        // added before the offer, or adopted from the remote offer ([`super::audio`]).
        self.audio.want();
        Ok(())
    }

    async fn send_audio(&mut self, _track: TrackId, _packet: Vec<u8>) -> Result<(), String> {
        // The page's tracks carry the application's MediaStreamTrack, encoded by the browser.
        Err(TrackError::BrowserSource.to_string())
    }

    async fn track_mids(&mut self) -> Vec<(TrackId, String)> {
        Vec::new()
    }

    async fn next_report(&mut self) -> Option<Report<RtcDataChannel>> {
        self.reports.recv().await.ok()
    }

    async fn close(self) {
        // Dropping `Pc` unregisters its handlers and closes the connection.
        drop(self.pc);
    }
}

impl RtcChannel for Channel {
    async fn send(&self, payload: Payload) -> Result<(), String> {
        // The swarm may send as soon as the remote end is known to be open (its first message
        // arrived), which can be before this end's own open: wait for it, bounded.
        let mut waited = 0;
        while self.dc.ready_state() == RtcDataChannelState::Connecting && waited < OPEN_WAIT_MS {
            sleep(Duration::from_millis(1)).await;
            waited += 1;
        }
        // Waits while the channel's own buffer is above its high water mark.
        while self.dc.buffered_amount() > CHANNEL_HIGH_WATER {
            if self.dc.ready_state() != RtcDataChannelState::Open {
                break;
            }
            sleep(Duration::from_millis(2)).await;
        }
        match payload {
            Payload::Text(text) => self.dc.send_with_str(&text),
            Payload::Binary(bytes) => self.dc.send_with_u8_array(&bytes),
        }
        .map_err(js_err)
    }

    async fn unsent(&self) -> usize {
        if self.dc.ready_state() == RtcDataChannelState::Open {
            self.dc.buffered_amount() as usize
        } else {
            0
        }
    }
}

fn sdp_of(desc: &JsValue) -> Result<String, String> {
    Reflect::get(desc, &JsValue::from_str("sdp"))
        .ok()
        .and_then(|v| v.as_string())
        .ok_or_else(|| "description without sdp".to_owned())
}
