//! The speaker's mix: a bounded buffer per source (a peer's track), summed one 48 kHz sample
//! at a time, and resampled to the device's rate.

use fast_rtc_protocol::UserId;
use fast_rtc_swarm::TrackId;
use fast_rtc_swarm::media::{FRAME_SAMPLES, SAMPLE_RATE};
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::mpsc::Receiver;

/// 48 kHz samples a speaker source buffers at most (120 ms); past it the oldest are dropped.
pub const MAX_BUFFERED_SAMPLES: usize = FRAME_SAMPLES * 6;
/// 48 kHz samples a speaker source buffers before it starts playing (40 ms).
pub const PRIME_SAMPLES: usize = FRAME_SAMPLES * 2;
/// Sources (peer tracks) a speaker mixes at most; frames of further sources are dropped.
pub const MAX_SOURCES: usize = 64;

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
pub(crate) struct Playback {
    frames: Receiver<(u64, Vec<i16>)>,
    mixer: Mixer,
    channels: usize,
    step: f64,
    pos: f64,
    prev: f32,
    next: f32,
}

impl Playback {
    /// Plays the frames received on `frames` on a device of `channels` channels at `rate` Hz.
    pub(crate) fn new(frames: Receiver<(u64, Vec<i16>)>, channels: usize, rate: u32) -> Self {
        Playback {
            frames,
            mixer: Mixer::default(),
            channels,
            step: f64::from(SAMPLE_RATE) / f64::from(rate.max(1)),
            pos: 0.0,
            prev: 0.0,
            next: 0.0,
        }
    }

    /// Fills the device's interleaved buffer, each sample made from `-1.0..=1.0` by `from_f32`.
    pub(crate) fn fill<T: Copy>(&mut self, data: &mut [T], from_f32: impl Fn(f32) -> T) {
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
            out.fill(from_f32(s));
        }
        self.mixer.tidy();
    }
}

/// The speaker source of a peer's track.
pub fn source_key(peer: &UserId, track: TrackId) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    peer.hash(&mut h);
    track.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
