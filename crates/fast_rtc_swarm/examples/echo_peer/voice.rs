//! `--tone HZ` (feature `voice`): the member declares the audio track `voice`, sends a sine
//! of `HZ` on it every 20 ms, and reports what it hears from each peer twice a second: the
//! frequency (from zero crossings, enough for a pure tone) and the level (RMS, 0 to 1).

use fast_rtc_protocol::UserId;
use fast_rtc_swarm::media::{FRAME_DURATION, FRAME_SAMPLES, SAMPLE_RATE, tone};
use fast_rtc_swarm::{AudioSender, SwarmConfig, SwarmHandle, TrackId};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Instant;

/// The track's name, as the page's JS members name theirs (stream and transceiver `voice`).
pub const TRACK: &str = "voice";

/// Samples of one report: half a second.
const WINDOW: usize = SAMPLE_RATE as usize / 2;

/// Declares the track.
pub fn declare(config: &mut SwarmConfig) -> TrackId {
    config.add_audio_track(TRACK)
}

/// Adds the track and plays `hz` on it from a thread of its own, paced by the clock.
#[allow(clippy::disallowed_methods)] // a real-time sender reads the clock
pub fn play(
    swarm: &SwarmHandle,
    track: TrackId,
    hz: f32,
) -> Result<(), fast_rtc_swarm::TrackError> {
    let mut sender = AudioSender::new(swarm, track)?;
    std::thread::spawn(move || {
        let start = Instant::now();
        for n in 0usize.. {
            let frame = tone(hz, 0.5, n * FRAME_SAMPLES, FRAME_SAMPLES);
            if let Err(e) = sender.send(&frame) {
                eprintln!("echo_peer: audio: {e}");
            }
            let next = start + FRAME_DURATION * u32::try_from(n + 1).unwrap_or(u32::MAX);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    });
    Ok(())
}

/// What this member heard, per peer, since its last report.
#[derive(Default)]
pub struct Ears(HashMap<UserId, Vec<i16>>);

impl Ears {
    /// Takes a decoded frame; returns a report once `from` filled a window.
    pub fn hear(&mut self, from: &UserId, samples: &[i16]) -> Option<Value> {
        let heard = self.0.entry(from.clone()).or_default();
        heard.extend_from_slice(samples);
        if heard.len() < WINDOW {
            return None;
        }
        let window = std::mem::take(heard);
        let crossings = window
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        let seconds = window.len() as f64 / f64::from(SAMPLE_RATE);
        let peak_hz = crossings as f64 / 2.0 / seconds;
        let power: f64 = window
            .iter()
            .map(|s| (f64::from(*s) / f64::from(i16::MAX)).powi(2))
            .sum();
        let level = (power / window.len() as f64).sqrt();
        Some(
            json!({ "type": "audio", "userId": from.to_string(), "peakHz": peak_hz, "level": level }),
        )
    }
}
