//! Framing the microphone's samples: mixed down to mono, resampled to 48 kHz, cut into 20 ms
//! frames of [`FRAME_SAMPLES`] for the ECS, through a bounded queue that drops.

use super::resample::Resampler;
use fast_rtc_swarm::media::{FRAME_SAMPLES, SAMPLE_RATE};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};

/// What the input callback keeps: mono 48 kHz samples being cut into frames.
pub(crate) struct Capture {
    channels: usize,
    resampler: Resampler,
    frame: Vec<i16>,
    frames: SyncSender<Vec<i16>>,
    dropped: Arc<AtomicU64>,
}

impl Capture {
    /// What a microphone of `channels` channels at `rate` Hz captures, cut into frames sent
    /// to `frames`; a frame that finds `frames` full is dropped and counted in `dropped`.
    pub(crate) fn new(
        channels: usize,
        rate: u32,
        frames: SyncSender<Vec<i16>>,
        dropped: Arc<AtomicU64>,
    ) -> Self {
        Capture {
            channels,
            resampler: Resampler::new(rate, SAMPLE_RATE),
            frame: Vec::with_capacity(FRAME_SAMPLES),
            frames,
            dropped,
        }
    }

    /// Takes the device's interleaved samples, each read as `-1.0..=1.0` by `to_f32`.
    pub(crate) fn push_interleaved<T: Copy>(&mut self, data: &[T], to_f32: impl Fn(T) -> f32) {
        let channels = self.channels.max(1);
        for chunk in data.chunks(channels) {
            let sum: f32 = chunk.iter().map(|s| to_f32(*s)).sum();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

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
        capture.push_interleaved(&data, |s| s);
        let frames: Vec<Vec<i16>> = rx.try_iter().collect();
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|f| f.len() == FRAME_SAMPLES));
        assert!(frames[0][10..].iter().all(|&s| s == to_i16(0.25)));
        assert_eq!(dropped.load(Ordering::Relaxed), 2);
    }
}
