//! The cpal devices (feature `cpal`, native only): a [`Microphone`] and a [`Speaker`], each
//! stream on a thread of its own, and why one could not be opened ([`AudioDeviceError`]).

use super::capture::Capture;
use super::mix::Playback;
use bevy::platform::cell::SyncCell;
use bevy::prelude::*;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample, StreamConfig};
use fast_rtc_swarm::AudioSender;
use fast_rtc_swarm::TrackError;
use fast_rtc_swarm::media::SAMPLE_RATE;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use tracing::{info, warn};

/// 20 ms frames queued at most between a device callback and the ECS, each way (200 ms).
pub const MAX_QUEUED_FRAMES: usize = 10;
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

/// The default microphone, delivering 20 ms frames of 48 kHz mono `i16` samples
/// ([`FRAME_SAMPLES`](fast_rtc_swarm::media::FRAME_SAMPLES) each). The device paces them: read them every frame
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
            let capture = Capture::new(
                usize::from(config.channels),
                config.sample_rate,
                tx,
                counter,
            );
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
            move |data: &[T], _| capture.push_interleaved(data, f32::from_sample),
            stream_error_logger(Direction::Input),
            None,
        )
        .map_err(|e| AudioDeviceError::Device {
            direction: Direction::Input,
            device: name.to_owned(),
            message: e.to_string(),
        })
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
            let playback = Playback::new(rx, usize::from(config.channels), config.sample_rate);
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

    /// Queues a 48 kHz mono frame of source `source` (one per peer track: [`source_key`](super::source_key)) for
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
            move |data: &mut [T], _| playback.fill(data, T::from_sample),
            stream_error_logger(Direction::Output),
            None,
        )
        .map_err(|e| AudioDeviceError::Device {
            direction: Direction::Output,
            device: name.to_owned(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fast_rtc_swarm::media::FRAME_SAMPLES;

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
