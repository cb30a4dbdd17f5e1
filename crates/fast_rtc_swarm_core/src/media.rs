//! Voice: named audio tracks carried on every link.
//!
//! # The model
//!
//! A room's members declare the same audio tracks up front
//! ([`SwarmConfig::add_audio_track`](crate::SwarmConfig::add_audio_track)), as they declare their
//! game channels. Every link then negotiates one send-and-receive Opus transceiver per declared
//! track *in its first offer*: the pre-made offers parked on the signaling server already carry
//! them, so a joiner still connects to every member in one round trip and hears an existing
//! track from its first packet. Nothing at run time renegotiates:
//!
//! - [`SwarmCore::add_track`](crate::SwarmCore::add_track) starts sending on a declared track
//!   (to every open link and every future one), [`SwarmCore::mute_track`] stops and resumes,
//!   [`SwarmCore::remove_track`] stops for good;
//! - each change is announced to the peers on `fast` as `@fast/{"type":"track","name":…,
//!   "state":"live"|"muted"|"removed"}` ([`crate::control`]), and a link that opens later gets
//!   the current state of every added track right after it opens;
//! - a peer sees [`SwarmEvent::TrackAdded`], [`SwarmEvent::TrackMuted`],
//!   [`SwarmEvent::TrackRemoved`] from those announcements, and decoded audio as
//!   [`SwarmEvent::Audio`] while the remote track is live. A link closing removes its remote
//!   tracks (one `TrackRemoved` each, before [`SwarmEvent::Close`]).
//!
//! Why declared tracks and not renegotiation: the join stays ONE round trip with media ready,
//! and mute/unmute cost one small control message instead of an offer/answer exchange through
//! the server (two relayed legs, during which a second change would glare). The cost is a few
//! hundred bytes of SDP per declared track in every offer (the `voice` bench's join rows time it).
//!
//! Audio is mono, 48 kHz, in frames of [`FRAME_SAMPLES`] (20 ms), Opus on the wire. The native
//! backend (feature `voice`) encodes (`AudioSender`) and decodes; capture and playback are
//! the application's (frames of `i16` samples in and out).
//!
//! The browser backend (`platform::web`, its `audio` module) uses the page's own codec and
//! playback instead: a track's source is a `MediaStreamTrack`
//! (`BrowserAudio::set_audio_source`), a muted track's senders send nothing
//! (`replaceTrack(null)`), and a peer's track plays through an `<audio>` element at the peer's
//! volume (`BrowserAudio::set_peer_volume`; its `MediaStream`:
//! `BrowserAudio::remote_audio_stream`). There, [`SwarmEvent::Audio`] is never reported and
//! `SwarmHandle::send_audio` is refused with [`TrackError::BrowserSource`]. Both ends map a
//! received track to its [`TrackId`] by the stream id the signaled SDP gives its audio section,
//! the declared name ([`crate::sdp::name_audio_streams`]).
//!
//! [`SwarmCore::mute_track`]: crate::SwarmCore::mute_track
//! [`SwarmCore::remove_track`]: crate::SwarmCore::remove_track
//! [`SwarmEvent::TrackAdded`]: crate::SwarmEvent::TrackAdded
//! [`SwarmEvent::TrackMuted`]: crate::SwarmEvent::TrackMuted
//! [`SwarmEvent::TrackRemoved`]: crate::SwarmEvent::TrackRemoved
//! [`SwarmEvent::Audio`]: crate::SwarmEvent::Audio
//! [`SwarmEvent::Close`]: crate::SwarmEvent::Close

use std::time::Duration;

/// Index of a declared audio track in
/// [`SwarmConfig::audio_tracks`](crate::SwarmConfig::audio_tracks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u16);

/// Audio sample rate: 48 kHz (Opus's native rate).
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one audio frame: 20 ms of mono 48 kHz audio.
pub const FRAME_SAMPLES: usize = 960;
/// The duration of one audio frame.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);
/// The largest encoded audio packet a backend sends or accepts, in bytes (Opus packets of
/// 20 ms at voice bitrates are well under 200 bytes).
pub const MAX_AUDIO_PACKET: usize = 1275;
/// Audio packets queued per link at most: one second of 20 ms frames. Audio is real-time: a
/// packet that would wait behind more is dropped, never queued without bound.
pub const MAX_QUEUED_AUDIO: usize = 50;

/// The state of a track, as its sender announces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackState {
    /// Audio flows.
    Live,
    /// Muted: nothing is sent until it is unmuted.
    Muted,
}

/// What a sender says of one of its tracks (`@fast/{"type":"track"}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackAnnounce {
    /// Added or unmuted: audio flows.
    Live,
    /// Muted.
    Muted,
    /// Removed: no more audio on it.
    Removed,
}

impl TrackAnnounce {
    /// Its word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackAnnounce::Live => "live",
            TrackAnnounce::Muted => "muted",
            TrackAnnounce::Removed => "removed",
        }
    }

    /// Reads its word on the wire.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "live" => Some(TrackAnnounce::Live),
            "muted" => Some(TrackAnnounce::Muted),
            "removed" => Some(TrackAnnounce::Removed),
            _ => None,
        }
    }

    /// The announcement of a track in `state`.
    pub fn of(state: Option<TrackState>) -> Self {
        match state {
            Some(TrackState::Live) => TrackAnnounce::Live,
            Some(TrackState::Muted) => TrackAnnounce::Muted,
            None => TrackAnnounce::Removed,
        }
    }

    /// The state a track is in after this announcement (`None`: removed).
    pub fn state(self) -> Option<TrackState> {
        match self {
            TrackAnnounce::Live => Some(TrackState::Live),
            TrackAnnounce::Muted => Some(TrackState::Muted),
            TrackAnnounce::Removed => None,
        }
    }
}

/// Why a track operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackError {
    /// No audio track with this id is declared in the swarm's configuration.
    #[error("no audio track {0:?} is declared (SwarmConfig::add_audio_track)")]
    NoSuchTrack(TrackId),
    /// The track is declared but was not added (or was removed).
    #[error("audio track {0:?} is not added")]
    NotAdded(TrackId),
    /// A frame of the wrong size: frames are [`FRAME_SAMPLES`] samples.
    #[error("an audio frame has {FRAME_SAMPLES} samples, not {0}")]
    FrameSize(usize),
    /// An encoded packet over [`MAX_AUDIO_PACKET`] bytes.
    #[error("an audio packet of {0} bytes is over the {MAX_AUDIO_PACKET}-byte limit")]
    PacketTooLarge(usize),
    /// The codec refused the frame.
    #[error("audio codec: {0}")]
    Codec(String),
    /// The swarm is closed.
    #[error("the swarm is closed")]
    Closed,
    /// In the browser a track's audio is a `MediaStreamTrack` the browser encodes
    /// (`BrowserAudio::set_audio_source`), not packets or frames from Rust.
    #[error(
        "in the browser a track's audio is a MediaStreamTrack (BrowserAudio::set_audio_source), not encoded packets"
    )]
    BrowserSource,
    /// The browser's audio calls need a swarm started with `fast_rtc_swarm::start` (its backend keeps
    /// the sources and playback); this one runs on a backend of the application's.
    #[error("this swarm's backend keeps no browser media (start it with fast_rtc_swarm::start)")]
    NoBrowserMedia,
}

/// `sample_rate`-Hz samples of a sine of `frequency` Hz at `amplitude` (0..=1 of full scale),
/// starting at sample `offset`: a test tone.
pub fn tone(frequency: f32, amplitude: f32, offset: usize, len: usize) -> Vec<i16> {
    let scale = amplitude.clamp(0.0, 1.0) * f32::from(i16::MAX);
    (offset..offset + len)
        .map(|n| {
            let t = n as f32 / SAMPLE_RATE as f32;
            (scale * (2.0 * std::f32::consts::PI * frequency * t).sin()) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_round_trip_and_map_to_states() {
        for a in [
            TrackAnnounce::Live,
            TrackAnnounce::Muted,
            TrackAnnounce::Removed,
        ] {
            assert_eq!(TrackAnnounce::parse(a.as_str()), Some(a));
            assert_eq!(TrackAnnounce::of(a.state()), a);
        }
        assert_eq!(TrackAnnounce::parse("loud"), None);
    }

    #[test]
    fn a_tone_has_the_asked_length_and_level() {
        let t = tone(440.0, 0.5, 0, FRAME_SAMPLES);
        assert_eq!(t.len(), FRAME_SAMPLES);
        let peak = t.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!((16_000..=16_384).contains(&peak), "peak {peak}");
    }
}
