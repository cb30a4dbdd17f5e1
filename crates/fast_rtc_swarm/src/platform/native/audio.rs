//! Voice on webrtc-rs: Opus tracks on a connection, the decoder of each remote track, and
//! [`AudioSender`], which encodes the application's frames once for every link.

use super::context::Context;
use crate::backend::EventSender;
use crate::platform::access::SwarmAccess;
use bytes::Bytes;
use fast_rtc_protocol::ConnectionId;
use fast_rtc_swarm_core::media::{
    FRAME_DURATION, FRAME_SAMPLES, MAX_AUDIO_PACKET, SAMPLE_RATE, TrackError, TrackId,
};
use fast_rtc_swarm_core::swarm::PeerEvent;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use rtc::rtp_transceiver::RTCRtpTransceiverId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::debug;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RtpSender;

/// The payload type this backend offers Opus under (the browsers' usual one).
const OPUS_PAYLOAD_TYPE: u8 = 111;

/// Opus as signaled: 48 kHz, two channels in the SDP (RFC 7587 says so even for mono), in-band
/// FEC.
fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: SAMPLE_RATE,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// A media engine that knows Opus only: what a connection with audio tracks negotiates.
pub(crate) fn media_engine() -> webrtc::error::Result<MediaEngine> {
    let mut engine = MediaEngine::default();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus(),
            payload_type: OPUS_PAYLOAD_TYPE,
        },
        RtpCodecKind::Audio,
    )?;
    Ok(engine)
}

/// Remote tracks of one connection that arrive on a declared track's own transceiver, by the
/// remote track's id: how a remote whose stream ids are not track names (the JS client, a
/// browser) is understood. Filled by [`track_mids`] after each description.
#[derive(Clone, Default)]
pub(crate) struct RemoteNames(Arc<Mutex<HashMap<String, TrackId>>>);

impl RemoteNames {
    fn get(&self, remote_track: &str) -> Option<TrackId> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(remote_track)
            .copied()
    }

    fn set(&self, remote_track: String, track: TrackId) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // One entry per declared track's transceiver: bounded by the declaration.
        map.retain(|_, t| *t != track);
        map.insert(remote_track, track);
    }
}

/// The mid of each declared track's transceiver on `pc`, once a description set it; notes in
/// `names` which remote track arrives on each of them (a transceiver's receiver exists once
/// its remote track arrived: this runs again then).
pub(crate) async fn track_mids(
    pc: &dyn PeerConnection,
    audio: &[LocalAudio],
    names: &RemoteNames,
) -> Vec<(TrackId, String)> {
    let transceivers = pc.get_transceivers().await;
    let mut mids = Vec::new();
    for (i, local) in audio.iter().enumerate() {
        let track = TrackId(i as u16);
        let own = RTCRtpTransceiverId::from(local.sender.id());
        let Some(t) = transceivers.iter().find(|t| t.id() == own) else {
            continue;
        };
        if let Ok(Some(receiver)) = t.receiver().await {
            let remote = receiver.track().track_id().await;
            names.set(remote, track);
        }
        if let Ok(Some(mid)) = t.mid().await {
            mids.push((track, mid));
        }
    }
    mids
}

/// One declared track's sending end on one connection.
pub(crate) struct LocalAudio {
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    /// The payload type negotiated for the sender, read at the first packet after negotiation.
    payload_type: Option<u8>,
}

impl LocalAudio {
    /// Adds track `name` (stream and track id: the name, which is how the remote tells the
    /// tracks apart) to `pc`.
    pub(crate) async fn add(pc: &dyn PeerConnection, name: &str) -> Result<Self, String> {
        let ssrc = super::context::random_u64() as u32;
        let track = TrackLocalStaticSample::new(
            super::time::now(),
            MediaStreamTrack::new(
                name.to_owned(),
                name.to_owned(),
                name.to_owned(),
                RtpCodecKind::Audio,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: opus(),
                    ..Default::default()
                }],
            ),
        )
        .map_err(|e| e.to_string())?;
        let track = Arc::new(track);
        let sender = pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| e.to_string())?;
        Ok(LocalAudio {
            track,
            sender,
            ssrc,
            payload_type: None,
        })
    }

    /// Sends one 20 ms Opus packet.
    pub(crate) async fn write(&mut self, packet: Vec<u8>) -> Result<(), String> {
        let payload_type = match self.payload_type {
            Some(pt) => pt,
            None => {
                let parameters = self
                    .sender
                    .get_parameters()
                    .await
                    .map_err(|e| e.to_string())?;
                let pt = parameters
                    .rtp_parameters
                    .codecs
                    .first()
                    .map(|c| c.payload_type)
                    .ok_or("no codec negotiated for the audio track yet")?;
                self.payload_type = Some(pt);
                pt
            }
        };
        let sample = Sample {
            data: Bytes::from(packet),
            timestamp: super::time::now(),
            duration: FRAME_DURATION,
            packet_timestamp: 0,
            prev_dropped_packets: 0,
            prev_padding_packets: 0,
        };
        self.track
            .write_sample(self.ssrc, payload_type, &sample, &[])
            .await
            .map_err(|e| e.to_string())
    }
}

/// Decodes remote track `remote` of connection `id` for as long as it lasts, reporting each
/// frame as [`PeerEvent::Audio`]. The track is the declared one its stream id names (a peer
/// of this crate), else the one whose transceiver it arrives on ([`RemoteNames`]; until a
/// description tells, its packets are dropped).
pub(crate) fn watch_remote(
    shared: &Arc<Context>,
    id: &ConnectionId,
    remote: Arc<dyn TrackRemote>,
    names: RemoteNames,
) {
    let context = shared.clone();
    let id = id.clone();
    let task = async move {
        let stream = remote.stream_id().await;
        let by_name = context.swarm.track_by_name(&stream);
        let remote_id = remote.track_id().await;
        let resolve = move || by_name.or_else(|| names.get(&remote_id));
        let mut decoder = match opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono) {
            Ok(d) => d,
            Err(e) => {
                debug!(%id, error = %e, "no Opus decoder");
                return;
            }
        };
        debug!(%id, %stream, track = ?resolve(), "decoding a remote audio track");

        decode_track(&context.events, &id, resolve, remote.as_ref(), &mut decoder).await;
    };
    drop(shared.runtime.spawn(Box::pin(task)));
}

/// The decoding loop of [`watch_remote`].
async fn decode_track(
    events: &EventSender,
    id: &ConnectionId,
    resolve: impl Fn() -> Option<TrackId>,
    remote: &dyn TrackRemote,
    decoder: &mut opus::Decoder,
) {
    let mut track = resolve();
    // Opus frames are at most 120 ms: 5760 samples at 48 kHz.
    let mut pcm = vec![0i16; 5760];
    while let Some(event) = remote.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                if packet.payload.is_empty() || packet.payload.len() > MAX_AUDIO_PACKET {
                    continue;
                }
                if track.is_none() {
                    track = resolve();
                }
                let Some(track) = track else {
                    continue; // not a declared track, or not known yet
                };
                let n = match decoder.decode(&packet.payload, &mut pcm, false) {
                    Ok(n) => n,
                    Err(e) => {
                        debug!(%id, ?track, error = %e, "undecodable audio packet");
                        continue;
                    }
                };
                let event = PeerEvent::Audio {
                    track,
                    samples: pcm[..n].to_vec(),
                };
                // Real-time: when the swarm is behind, a frame is dropped, not queued.
                if let Err(async_channel::TrySendError::Closed(_)) =
                    events.try_send((id.clone(), event))
                {
                    return;
                }
            }
            TrackRemoteEvent::OnEnded => return,
            _ => {}
        }
    }
}

/// Encodes 20 ms frames of one declared track once and sends them to every open link
/// ([`SwarmHandle::send_audio`](crate::SwarmHandle::send_audio)).
///
/// Frames are [`FRAME_SAMPLES`] mono samples at 48 kHz; the encoder is Opus in VoIP mode at
/// 32 kbit/s with in-band FEC. Capture is the application's: call [`AudioSender::send`] every
/// 20 ms with the next frame (a microphone callback, a file, a synthesizer).
pub struct AudioSender {
    handle: Box<dyn SwarmAccess>,
    track: TrackId,
    encoder: opus::Encoder,
    packet: Vec<u8>,
}

impl AudioSender {
    /// Adds `track` to the swarm ([`SwarmHandle::add_track`](crate::SwarmHandle::add_track))
    /// and makes its encoder. `handle` is the swarm's [`SwarmHandle`](crate::SwarmHandle).
    pub fn new(handle: &(impl SwarmAccess + Clone), track: TrackId) -> Result<Self, TrackError> {
        let mut encoder =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
                .map_err(|e| TrackError::Codec(e.to_string()))?;
        encoder
            .set_bitrate(opus::Bitrate::Bits(32_000))
            .and_then(|()| encoder.set_inband_fec(true))
            .map_err(|e| TrackError::Codec(e.to_string()))?;
        handle.add_track(track)?;
        Ok(AudioSender {
            handle: Box::new(handle.clone()),
            track,
            encoder,
            packet: vec![0; MAX_AUDIO_PACKET],
        })
    }

    /// The track.
    pub fn track(&self) -> TrackId {
        self.track
    }

    /// Encodes one frame of [`FRAME_SAMPLES`] samples and sends it to every open link; returns
    /// to how many (0 while the track is muted).
    pub fn send(&mut self, frame: &[i16]) -> Result<usize, TrackError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(TrackError::FrameSize(frame.len()));
        }
        let n = self
            .encoder
            .encode(frame, &mut self.packet)
            .map_err(|e| TrackError::Codec(e.to_string()))?;
        self.handle
            .send_audio(self.track, self.packet[..n].to_vec())
    }
}
