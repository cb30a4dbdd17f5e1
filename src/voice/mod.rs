//! Voice chat in the ECS: the swarm's audio tracks ([`fast_rtc_swarm::media`]) as messages and a
//! per-peer volume.
//!
//! Declare tracks with [`FastRtcPlugin::add_audio_track`](crate::FastRtcPlugin::add_audio_track)
//! (every member the same, like channels). Start talking with
//! [`Swarm::add_track`](crate::Swarm::add_track); natively with the `voice` feature,
//! `Swarm::audio_sender` adds the track and encodes your 20 ms frames. Mute yourself with
//! [`Swarm::mute_track`](crate::Swarm::mute_track) (push-to-talk). What peers do with their
//! tracks arrives as [`PeerTrack`] messages, their audio as [`PeerAudio`] (mono 48 kHz `i16`
//! frames, for your playback), scaled by the [`VoiceVolume`] of the peer's entity: set it from
//! distance for proximity voice, or to 0 to mute that peer (its audio is then not written).
//!
//! In the browser the page plays the peers' tracks itself (no `PeerAudio` there): a track's
//! source is a `MediaStreamTrack` (`Swarm::handle()` → `BrowserAudio::set_audio_source`), and
//! [`VoiceVolume`] sets the volume the page plays each peer at (0..=1: an `<audio>`
//! element's; see `fast_rtc_swarm::platform::web::audio`), applied in
//! [`FastRtcSystems::Send`](crate::FastRtcSystems::Send).
//!
//! # Real devices
//!
//! With the `cpal` feature (native only): a [`Microphone`] source and a [`Speaker`] sink on
//! [cpal](https://docs.rs/cpal).
//!
//! - [`Microphone`] captures the default input device, mixes its channels down to mono,
//!   resamples to 48 kHz and cuts 20 ms frames of [`FRAME_SAMPLES`](fast_rtc_swarm::media::FRAME_SAMPLES) `i16` samples, the frames
//!   an [`AudioSender`](fast_rtc_swarm::AudioSender) takes ([`Microphone::send_to`]).
//! - [`Speaker`] plays the default output device: each [`PeerAudio`] frame (already scaled by
//!   the peer's [`VoiceVolume`]) goes to a per-source buffer, the output
//!   callback mixes the sources, resamples to the device's rate and copies the mix to every
//!   channel. A source starts playing once 40 ms are buffered (a small jitter buffer).
//! - [`CpalVoicePlugin`] opens both when it is added, inserts them as resources, plays every
//!   `PeerAudio` through the speaker, and records what could not be opened in
//!   [`AudioDevices`].
//!
//! Every queue between the device callbacks and the ECS is bounded and drops, never grows: at
//! most [`MAX_QUEUED_FRAMES`] captured frames wait for the ECS (the oldest are kept, newer ones
//! dropped and counted), at most [`MAX_QUEUED_FRAMES`] frames wait for the output callback, each
//! source buffers at most [`MAX_BUFFERED_SAMPLES`] (the oldest samples go first, so the delay
//! stays short) and at most [`MAX_SOURCES`] sources are mixed.
//!
//! A machine without a sound card (CI) gets an [`AudioDeviceError`], logged by the plugin,
//! never a panic. The streams live on one thread per device (cpal streams are not `Send` on
//! every platform); dropping the resource stops its stream and joins the thread.
//!
//! On Linux cpal uses ALSA, which needs Debian's `libasound2-dev` (and `pkg-config`) to build.
//!
//! # Files
//!
//! - `peer_audio.rs`: the messages ([`PeerTrack`], [`PeerAudio`]), [`VoiceVolume`] and the gain
//!   it applies (always built).
//! - `resample.rs`, `capture.rs`, `mix.rs`: the DSP (resampler, framing the microphone's
//!   samples, the speaker's mix). Feature `voice`; no cpal, so they are unit-tested without a
//!   sound card or its headers.
//! - `devices.rs`: the cpal devices, each on a thread of its own ([`Microphone`], [`Speaker`]).
//!   Feature `cpal`.
//! - `plugin.rs`: [`CpalVoicePlugin`]. Feature `cpal`.

#[cfg(feature = "voice")]
#[cfg_attr(
    not(all(feature = "cpal", not(target_arch = "wasm32"))),
    allow(dead_code)
)]
mod capture;
#[cfg(all(feature = "cpal", not(target_arch = "wasm32")))]
mod devices;
#[cfg(feature = "voice")]
#[cfg_attr(
    not(all(feature = "cpal", not(target_arch = "wasm32"))),
    allow(dead_code)
)]
mod mix;
mod peer_audio;
#[cfg(all(feature = "cpal", not(target_arch = "wasm32")))]
mod plugin;
#[cfg(feature = "voice")]
#[cfg_attr(
    not(all(feature = "cpal", not(target_arch = "wasm32"))),
    allow(dead_code)
)]
mod resample;

#[cfg(all(feature = "cpal", not(target_arch = "wasm32")))]
pub use devices::{AudioDeviceError, Direction, MAX_QUEUED_FRAMES, Microphone, Speaker};
#[cfg(all(feature = "cpal", not(target_arch = "wasm32")))]
pub use mix::{MAX_BUFFERED_SAMPLES, MAX_SOURCES, PRIME_SAMPLES, source_key};
#[cfg(target_arch = "wasm32")]
pub(crate) use peer_audio::browser_volume;
pub(crate) use peer_audio::scaled;
pub use peer_audio::{PeerAudio, PeerTrack, TrackChange, VoiceVolume};
#[cfg(all(feature = "cpal", not(target_arch = "wasm32")))]
pub use plugin::{AudioDevices, CpalVoicePlugin, play_peer_audio};
