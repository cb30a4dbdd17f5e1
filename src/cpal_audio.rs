//! Real audio devices for voice (feature `cpal`, native only): a [`Microphone`] source and a
//! [`Speaker`] sink on [cpal](https://docs.rs/cpal).
//!
//! - [`Microphone`] captures the default input device, mixes its channels down to mono,
//!   resamples to 48 kHz and cuts 20 ms frames of [`FRAME_SAMPLES`] `i16` samples, the frames
//!   an [`AudioSender`] takes ([`Microphone::send_to`]).
//! - [`Speaker`] plays the default output device: each [`PeerAudio`] frame (already scaled by
//!   the peer's [`VoiceVolume`](crate::VoiceVolume)) goes to a per-source buffer, the output
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

use crate::voice::PeerAudio;
use bevy::platform::cell::SyncCell;
use bevy::prelude::*;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample, StreamConfig};
use fast_rtc_protocol::UserId;
use fast_rtc_swarm::AudioSender;
use fast_rtc_swarm::media::{FRAME_SAMPLES, SAMPLE_RATE};
use fast_rtc_swarm::{TrackError, TrackId};
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use tracing::{info, warn};

/// 20 ms frames queued at most between a device callback and the ECS, each way (200 ms).
pub const MAX_QUEUED_FRAMES: usize = 10;
/// 48 kHz samples a speaker source buffers at most (120 ms); past it the oldest are dropped.
pub const MAX_BUFFERED_SAMPLES: usize = FRAME_SAMPLES * 6;
/// 48 kHz samples a speaker source buffers before it starts playing (40 ms).
pub const PRIME_SAMPLES: usize = FRAME_SAMPLES * 2;
/// Sources (peer tracks) a speaker mixes at most; frames of further sources are dropped.
pub const MAX_SOURCES: usize = 64;

/// Which way a device goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A microphone.
    Input,
    /// A speaker.
    Output,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Input => "input",
            Direction::Output => "output",
        })
    }
}

/// Why an audio device could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AudioDeviceError {
    /// The host has no default device this way (no sound card, say).
    #[error("no default audio {0} device")]
    NoDevice(Direction),
    /// cpal refused the device's configuration, the stream, or starting it.
    #[error("audio {direction} device {device:?}: {message}")]
    Device {
        /// Which way.
        direction: Direction,
        /// The device's name.
        device: String,
        /// cpal's error.
        message: String,
    },
    /// The device's sample format is not one this module converts.
    #[error("audio {direction} device {device:?}: unsupported sample format {format}")]
    UnsupportedFormat {
        /// Which way.
        direction: Direction,
        /// The device's name.
        device: String,
        /// The format.
        format: String,
    },
    /// The device thread could not be started, or stopped before it reported.
    #[error("the audio {0} thread failed to start")]
    Thread(Direction),
}

/// A device's stream, owned by its own thread until this is dropped.
struct DeviceThread {
    stop: Option<SyncSender<()>>,
    join: Option<JoinHandle<()>>,
}

impl Drop for DeviceThread {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread, which drops the stream and ends.
        self.stop.take();
        if let Some(join) = self.join.take()
            && join.join().is_err()
        {
            warn!("voice: an audio device thread panicked");
        }
    }
}

/// Opens a stream with `build` on a thread of its own and plays it; returns once it plays (or
/// with the reason it does not).
fn spawn_device<F>(
    direction: Direction,
    build: F,
) -> Result<(DeviceThread, String), AudioDeviceError>
where
    F: FnOnce() -> Result<(cpal::Stream, String), AudioDeviceError> + Send + 'static,
{
    let (ready_tx, ready_rx) = sync_channel::<Result<String, AudioDeviceError>>(1);
    let (stop_tx, stop_rx) = sync_channel::<()>(1);
    let join = std::thread::Builder::new()
        .name(format!("voice-{direction}"))
        .spawn(move || {
            let (stream, name) = match build() {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            if let Err(e) = stream.play() {
                let _ = ready_tx.send(Err(AudioDeviceError::Device {
                    direction,
                    device: name,
                    message: e.to_string(),
                }));
                return;
            }
            let _ = ready_tx.send(Ok(name));
            // Blocks until the owner drops its sender.
            let _ = stop_rx.recv();
            drop(stream);
        })
        .map_err(|_| AudioDeviceError::Thread(direction))?;
    let thread = DeviceThread {
        stop: Some(stop_tx),
        join: Some(join),
    };
    match ready_rx.recv() {
        Ok(Ok(name)) => Ok((thread, name)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(AudioDeviceError::Thread(direction)),
    }
}

/// The device's default configuration, at 48 kHz when it supports that rate with the same
/// format and channels.
fn choose_config(
    direction: Direction,
    device: &cpal::Device,
    name: &str,
) -> Result<(StreamConfig, SampleFormat), AudioDeviceError> {
    let error = |e: cpal::Error| AudioDeviceError::Device {
        direction,
        device: name.to_owned(),
        message: e.to_string(),
    };
    let default = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    }
    .map_err(error)?;
    let format = default.sample_format();
    let mut config = default.config();
    if config.sample_rate != SAMPLE_RATE {
        let ranges: Vec<cpal::SupportedStreamConfigRange> = match direction {
            Direction::Input => device.supported_input_configs().map(|r| r.collect()),
            Direction::Output => device.supported_output_configs().map(|r| r.collect()),
        }
        .unwrap_or_default();
        if let Some(exact) = ranges
            .into_iter()
            .filter(|r| r.sample_format() == format && r.channels() == config.channels)
            .find_map(|r| r.try_with_sample_rate(SAMPLE_RATE))
        {
            config = exact.config();
        }
    }
    Ok((config, format))
}

/// Calls `$f::<T>` with the Rust sample type of a cpal format, or returns `$unsupported`.
macro_rules! with_sample_type {
    ($format:expr, $f:ident, $unsupported:expr, ($($arg:expr),*)) => {
        match $format {
            SampleFormat::F32 => $f::<f32>($($arg),*),
            SampleFormat::F64 => $f::<f64>($($arg),*),
            SampleFormat::I16 => $f::<i16>($($arg),*),
            SampleFormat::I32 => $f::<i32>($($arg),*),
            SampleFormat::I8 => $f::<i8>($($arg),*),
            SampleFormat::U16 => $f::<u16>($($arg),*),
            SampleFormat::U8 => $f::<u8>($($arg),*),
            SampleFormat::U32 => $f::<u32>($($arg),*),
            _ => $unsupported,
        }
    };
}

/// Logs a stream error: the first one and then every 100th (a dying device can report one per
/// callback).
fn stream_error_logger(direction: Direction) -> impl FnMut(cpal::Error) + Send + 'static {
    let mut count = 0u64;
    move |e| {
        if count.is_multiple_of(100) {
            warn!(
                "voice: audio {direction} stream error ({} so far): {e}",
                count + 1
            );
        }
        count += 1;
    }
}

/// Streaming linear resampler, pushed one input sample at a time.
#[derive(Debug)]
pub(crate) struct Resampler {
    /// Input samples per output sample.
    step: f64,
    /// Where the next output sample lies between `prev` (0.0) and the next input (1.0).
    pos: f64,
    prev: Option<f32>,
}

impl Resampler {
    pub(crate) fn new(from: u32, to: u32) -> Self {
        Resampler {
            step: f64::from(from.max(1)) / f64::from(to.max(1)),
            pos: 0.0,
            prev: None,
        }
    }

    /// Feeds one input sample; calls `out` with each output sample it completes.
    pub(crate) fn push(&mut self, x: f32, mut out: impl FnMut(f32)) {
        let Some(prev) = self.prev else {
            self.prev = Some(x);
            return;
        };
        while self.pos < 1.0 {
            out(prev + (x - prev) * self.pos as f32);
            self.pos += self.step;
        }
        self.pos -= 1.0;
        self.prev = Some(x);
    }
}

/// What the input callback keeps: mono 48 kHz samples being cut into frames.
struct Capture {
    channels: usize,
    resampler: Resampler,
    frame: Vec<i16>,
    frames: SyncSender<Vec<i16>>,
    dropped: Arc<AtomicU64>,
}

impl Capture {
    fn push_interleaved<T>(&mut self, data: &[T])
    where
        T: SizedSample,
        f32: FromSample<T>,
    {
        let channels = self.channels.max(1);
        for chunk in data.chunks(channels) {
            let sum: f32 = chunk.iter().map(|s| f32::from_sample(*s)).sum();
            let mono = sum / chunk.len().max(1) as f32;
            let (frame, frames, dropped) = (&mut self.frame, &self.frames, &self.dropped);
            self.resampler.push(mono, |s| {
                frame.push(to_i16(s));
                if frame.len() == FRAME_SAMPLES {
                    let full = std::mem::replace(frame, Vec::with_capacity(FRAME_SAMPLES));
                    if let Err(TrySendError::Full(_)) = frames.try_send(full) {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }
}

fn to_i16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16
}

/// The default microphone, delivering 20 ms frames of 48 kHz mono `i16` samples
/// ([`FRAME_SAMPLES`] each). The device paces them: read them every frame
/// ([`try_frame`](Self::try_frame), [`send_to`](Self::send_to) or [`discard`](Self::discard)),
/// or they queue up to [`MAX_QUEUED_FRAMES`] and later ones are dropped.
#[derive(Resource)]
pub struct Microphone {
    frames: SyncCell<Receiver<Vec<i16>>>,
    dropped: Arc<AtomicU64>,
    device: String,
    _thread: DeviceThread,
}

impl Microphone {
    /// Opens the host's default input device.
    pub fn open_default() -> Result<Self, AudioDeviceError> {
        let (tx, rx) = sync_channel(MAX_QUEUED_FRAMES);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        let (thread, device) = spawn_device(Direction::Input, move || {
            let device = cpal::default_host()
                .default_input_device()
                .ok_or(AudioDeviceError::NoDevice(Direction::Input))?;
            let name = device.to_string();
            let (config, format) = choose_config(Direction::Input, &device, &name)?;
            let capture = Capture {
                channels: usize::from(config.channels),
                resampler: Resampler::new(config.sample_rate, SAMPLE_RATE),
                frame: Vec::with_capacity(FRAME_SAMPLES),
                frames: tx,
                dropped: counter,
            };
            let unsupported = Err(AudioDeviceError::UnsupportedFormat {
                direction: Direction::Input,
                device: name.clone(),
                format: format.to_string(),
            });
            let stream = with_sample_type!(
                format,
                build_input,
                unsupported,
                (&device, &name, config, capture)
            )?;
            Ok((stream, name))
        })?;
        info!("voice: microphone {device:?}");
        Ok(Microphone {
            frames: SyncCell::new(rx),
            dropped,
            device,
            _thread: thread,
        })
    }

    /// The next captured frame, if one is waiting.
    pub fn try_frame(&mut self) -> Option<Vec<i16>> {
        // Empty, or the device thread ended: nothing.
        self.frames.get().try_recv().ok()
    }

    /// Sends every waiting frame through `sender`; returns how many.
    pub fn send_to(&mut self, sender: &mut AudioSender) -> Result<usize, TrackError> {
        let mut n = 0;
        while let Some(frame) = self.try_frame() {
            sender.send(&frame)?;
            n += 1;
        }
        Ok(n)
    }

    /// Drops every waiting frame (push-to-talk released); returns how many.
    pub fn discard(&mut self) -> usize {
        std::iter::from_fn(|| self.try_frame()).count()
    }

    /// Frames dropped so far because the ECS did not read them in time.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The device's name.
    pub fn device(&self) -> &str {
        &self.device
    }
}

fn build_input<T>(
    device: &cpal::Device,
    name: &str,
    config: StreamConfig,
    mut capture: Capture,
) -> Result<cpal::Stream, AudioDeviceError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    device
        .build_input_stream::<T, _, _>(
            config,
            move |data: &[T], _| capture.push_interleaved(data),
            stream_error_logger(Direction::Input),
            None,
        )
        .map_err(|e| AudioDeviceError::Device {
            direction: Direction::Input,
            device: name.to_owned(),
            message: e.to_string(),
        })
}

/// One source of the speaker's mix.
#[derive(Debug, Default)]
struct Source {
    queue: VecDeque<i16>,
    playing: bool,
}

/// Sums the buffered sources, one 48 kHz sample at a time.
#[derive(Debug, Default)]
pub(crate) struct Mixer {
    sources: HashMap<u64, Source>,
    /// Samples dropped (a full source buffer, too many sources).
    pub(crate) dropped: u64,
}

impl Mixer {
    /// Buffers a frame of source `key`.
    pub(crate) fn push(&mut self, key: u64, samples: &[i16]) {
        if !self.sources.contains_key(&key) && self.sources.len() >= MAX_SOURCES {
            self.dropped += samples.len() as u64;
            return;
        }
        let source = self.sources.entry(key).or_default();
        let samples = &samples[samples.len().saturating_sub(MAX_BUFFERED_SAMPLES)..];
        let excess = (source.queue.len() + samples.len()).saturating_sub(MAX_BUFFERED_SAMPLES);
        source.queue.drain(..excess.min(source.queue.len()));
        self.dropped += excess as u64;
        source.queue.extend(samples);
    }

    /// The next mixed sample, in -1.0..=1.0.
    pub(crate) fn next_sample(&mut self) -> f32 {
        let mut sum = 0i32;
        for source in self.sources.values_mut() {
            if !source.playing && source.queue.len() >= PRIME_SAMPLES {
                source.playing = true;
            }
            if source.playing {
                match source.queue.pop_front() {
                    Some(s) => sum += i32::from(s),
                    // Ran dry: wait for PRIME_SAMPLES again.
                    None => source.playing = false,
                }
            }
        }
        (sum as f32 / f32::from(i16::MAX)).clamp(-1.0, 1.0)
    }

    /// Forgets sources with nothing buffered.
    pub(crate) fn tidy(&mut self) {
        self.sources.retain(|_, s| !s.queue.is_empty());
    }
}

/// What the output callback keeps: the frames' queue, the mix, and the resampling from 48 kHz
/// to the device's rate (pulled: `pos` between `prev` and `next`).
struct Playback {
    frames: Receiver<(u64, Vec<i16>)>,
    mixer: Mixer,
    channels: usize,
    step: f64,
    pos: f64,
    prev: f32,
    next: f32,
}

impl Playback {
    fn fill<T>(&mut self, data: &mut [T])
    where
        T: SizedSample + FromSample<f32>,
    {
        while let Ok((key, frame)) = self.frames.try_recv() {
            self.mixer.push(key, &frame);
        }
        for out in data.chunks_mut(self.channels.max(1)) {
            while self.pos >= 1.0 {
                self.prev = self.next;
                self.next = self.mixer.next_sample();
                self.pos -= 1.0;
            }
            let s = self.prev + (self.next - self.prev) * self.pos as f32;
            self.pos += self.step;
            out.fill(T::from_sample(s));
        }
        self.mixer.tidy();
    }
}

/// The default speaker, mixing every source played on it ([`play`](Self::play)).
#[derive(Resource)]
pub struct Speaker {
    frames: SyncSender<(u64, Vec<i16>)>,
    dropped: AtomicU64,
    device: String,
    _thread: DeviceThread,
}

impl Speaker {
    /// Opens the host's default output device.
    pub fn open_default() -> Result<Self, AudioDeviceError> {
        let (tx, rx) = sync_channel(MAX_QUEUED_FRAMES);
        let (thread, device) = spawn_device(Direction::Output, move || {
            let device = cpal::default_host()
                .default_output_device()
                .ok_or(AudioDeviceError::NoDevice(Direction::Output))?;
            let name = device.to_string();
            let (config, format) = choose_config(Direction::Output, &device, &name)?;
            let playback = Playback {
                frames: rx,
                mixer: Mixer::default(),
                channels: usize::from(config.channels),
                step: f64::from(SAMPLE_RATE) / f64::from(config.sample_rate.max(1)),
                pos: 0.0,
                prev: 0.0,
                next: 0.0,
            };
            let unsupported = Err(AudioDeviceError::UnsupportedFormat {
                direction: Direction::Output,
                device: name.clone(),
                format: format.to_string(),
            });
            let stream = with_sample_type!(
                format,
                build_output,
                unsupported,
                (&device, &name, config, playback)
            )?;
            Ok((stream, name))
        })?;
        info!("voice: speaker {device:?}");
        Ok(Speaker {
            frames: tx,
            dropped: AtomicU64::new(0),
            device,
            _thread: thread,
        })
    }

    /// Queues a 48 kHz mono frame of source `source` (one per peer track: [`source_key`]) for
    /// the mix; dropped when [`MAX_QUEUED_FRAMES`] already wait.
    pub fn play(&self, source: u64, samples: Vec<i16>) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.frames.try_send((source, samples))
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Frames dropped so far before they reached the output callback.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The device's name.
    pub fn device(&self) -> &str {
        &self.device
    }
}

fn build_output<T>(
    device: &cpal::Device,
    name: &str,
    config: StreamConfig,
    mut playback: Playback,
) -> Result<cpal::Stream, AudioDeviceError>
where
    T: SizedSample + FromSample<f32>,
{
    device
        .build_output_stream::<T, _, _>(
            config,
            move |data: &mut [T], _| playback.fill(data),
            stream_error_logger(Direction::Output),
            None,
        )
        .map_err(|e| AudioDeviceError::Device {
            direction: Direction::Output,
            device: name.to_owned(),
            message: e.to_string(),
        })
}

/// The speaker source of a peer's track.
pub fn source_key(peer: &UserId, track: TrackId) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    peer.hash(&mut h);
    track.hash(&mut h);
    h.finish()
}

/// What [`CpalVoicePlugin`] could not open (`None`: it is open, as a [`Microphone`] or
/// [`Speaker`] resource, or was not asked for).
#[derive(Resource, Debug, Default, Clone)]
pub struct AudioDevices {
    /// Why there is no [`Microphone`].
    pub microphone: Option<AudioDeviceError>,
    /// Why there is no [`Speaker`].
    pub speaker: Option<AudioDeviceError>,
}

/// Opens the default microphone and speaker when added ([`Microphone`], [`Speaker`]) and plays
/// every [`PeerAudio`] through the speaker, in `Update`. A device that cannot be opened is
/// logged and named in [`AudioDevices`]; the app runs on without it.
#[derive(Debug, Clone)]
pub struct CpalVoicePlugin {
    /// Open the microphone.
    pub microphone: bool,
    /// Open the speaker and play peers' audio on it.
    pub speaker: bool,
}

impl Default for CpalVoicePlugin {
    fn default() -> Self {
        CpalVoicePlugin {
            microphone: true,
            speaker: true,
        }
    }
}

impl Plugin for CpalVoicePlugin {
    fn build(&self, app: &mut App) {
        let mut status = AudioDevices::default();
        if self.microphone {
            match Microphone::open_default() {
                Ok(m) => {
                    app.insert_resource(m);
                }
                Err(e) => {
                    warn!("voice: no microphone: {e}");
                    status.microphone = Some(e);
                }
            }
        }
        if self.speaker {
            match Speaker::open_default() {
                Ok(s) => {
                    app.insert_resource(s);
                }
                Err(e) => {
                    warn!("voice: no speaker: {e}");
                    status.speaker = Some(e);
                }
            }
        }
        app.insert_resource(status)
            .add_systems(Update, play_peer_audio);
    }
}

/// Plays every [`PeerAudio`] frame through the [`Speaker`], if there is one.
pub fn play_peer_audio(speaker: Option<Res<Speaker>>, mut audio: MessageReader<PeerAudio>) {
    let Some(speaker) = speaker else {
        audio.clear();
        return;
    };
    for frame in audio.read() {
        speaker.play(source_key(&frame.peer, frame.track), frame.samples.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resample(from: u32, to: u32, input: &[f32]) -> Vec<f32> {
        let mut r = Resampler::new(from, to);
        let mut out = Vec::new();
        for &x in input {
            r.push(x, |s| out.push(s));
        }
        out
    }

    #[test]
    fn the_resampler_passes_48k_through_and_scales_other_rates() {
        let input: Vec<f32> = (0..480).map(|i| i as f32 / 480.0).collect();
        let same = resample(48_000, 48_000, &input);
        assert_eq!(same.len(), 479);
        assert_eq!(&same[..], &input[..479]);
        let up = resample(44_100, 48_000, &vec![0.5; 4410]);
        assert!((4790..=4810).contains(&up.len()), "{}", up.len());
        assert!(up.iter().all(|s| (s - 0.5).abs() < 1e-6));
        let down = resample(96_000, 48_000, &input);
        assert_eq!(down.len(), 240);
        // Linear: a ramp stays a ramp.
        assert!((down[100] - input[200]).abs() < 1e-6);
    }

    #[test]
    fn capture_cuts_mono_48k_frames_and_drops_when_the_ecs_lags() {
        let (tx, rx) = sync_channel(2);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut capture = Capture {
            channels: 2,
            resampler: Resampler::new(48_000, 48_000),
            frame: Vec::new(),
            frames: tx,
            dropped: dropped.clone(),
        };
        // Stereo, left 0.5 and right 0.0: mono 0.25. Four frames and a bit.
        let data: Vec<f32> = (0..FRAME_SAMPLES * 4 + 10)
            .flat_map(|_| [0.5, 0.0])
            .collect();
        capture.push_interleaved(&data);
        let frames: Vec<Vec<i16>> = rx.try_iter().collect();
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|f| f.len() == FRAME_SAMPLES));
        assert!(frames[0][10..].iter().all(|&s| s == to_i16(0.25)));
        assert_eq!(dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn the_mixer_primes_sums_saturates_and_bounds_each_source() {
        let mut m = Mixer::default();
        m.push(1, &[1000; FRAME_SAMPLES]);
        // One frame is under the prime: silence.
        assert_eq!(m.next_sample(), 0.0);
        m.push(1, &[1000; FRAME_SAMPLES]);
        m.push(2, &[2000; PRIME_SAMPLES]);
        let s = m.next_sample();
        assert!((s - 3000.0 / 32767.0).abs() < 1e-6, "{s}");
        m.push(3, &[i16::MAX; PRIME_SAMPLES]);
        assert_eq!(m.next_sample(), 1.0);
        // Bounded: ten frames keep MAX_BUFFERED_SAMPLES.
        for _ in 0..10 {
            m.push(4, &[1; FRAME_SAMPLES]);
        }
        assert_eq!(m.sources[&4].queue.len(), MAX_BUFFERED_SAMPLES);
        assert!(m.dropped >= (4 * FRAME_SAMPLES) as u64);
        for key in 100..100 + MAX_SOURCES as u64 {
            m.push(key, &[1; 10]);
        }
        assert_eq!(m.sources.len(), MAX_SOURCES);
        m.tidy();
        assert!(m.sources.values().all(|s| !s.queue.is_empty()));
    }

    /// On a machine without a sound card (CI) opening fails with a typed error; with one, it
    /// opens. Neither panics.
    #[test]
    fn opening_the_default_devices_never_panics() {
        match Microphone::open_default() {
            Ok(m) => assert!(!m.device().is_empty()),
            Err(e) => eprintln!("as expected without a sound card: {e}"),
        }
        match Speaker::open_default() {
            Ok(s) => s.play(1, vec![0; FRAME_SAMPLES]),
            Err(e) => eprintln!("as expected without a sound card: {e}"),
        }
    }
}
