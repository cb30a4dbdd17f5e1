//! Frame markers: each sent frame carries its index in its sound, so a decoded frame names the
//! frame it came from whatever was lost, dropped or reordered on the way.
//!
//! Frame `k` is the sum of two tones, DTMF-like: one of [`LOW`] (`k % 8`) and one of [`HIGH`]
//! (`(k / 8) % 8`), so the code repeats every [`CODES`] = 64 frames (1.28 s at 20 ms). The
//! receiver reads the code from the LAST 10 ms of a decoded frame with a Goertzel filter per
//! tone: Opus delays its output by 6.5 ms (312 samples; `lookahead` below), so the start of a
//! decoded frame still holds the end of the previous one, while its last 480 samples hold only
//! this frame's sound for any delay up to 480 samples. A frame is identified only when in each
//! group the strongest tone beats the second by [`MIN_MARGIN`]; otherwise it is counted as
//! unidentified, never guessed.
//!
//! From a code to a frame index: the latest frame sent with that code before the decoded frame
//! arrived. That is the right frame unless it took longer than 64 frames (1.28 s) to arrive,
//! and the swarm drops audio that would wait behind more than one second (`MAX_QUEUED_AUDIO`).
//! The bench also counts matched indices that do not rise in arrival order (printed as a
//! warning; none on loopback), and before any run [`check`] sends markers through an Opus
//! encoder and decoder of its own with AudioSender's settings and requires every one to come
//! back as its own index.

use fast_rtc_swarm::media::{FRAME_SAMPLES, SAMPLE_RATE, tone};

/// The low group's tones (Hz), 200 Hz apart: a 10 ms Hann window resolves them cleanly.
pub const LOW: [f32; 8] = [400.0, 600.0, 800.0, 1000.0, 1200.0, 1400.0, 1600.0, 1800.0];
/// The high group's tones (Hz); all below 4 kHz, so narrowband Opus keeps them too.
pub const HIGH: [f32; 8] = [
    2200.0, 2400.0, 2600.0, 2800.0, 3000.0, 3200.0, 3400.0, 3600.0,
];
/// Distinct codes: the marker of frame `k` is that of `k + CODES`.
pub const CODES: usize = LOW.len() * HIGH.len();
/// How much stronger (in power) the strongest tone of a group must be than the second.
pub const MIN_MARGIN: f32 = 10.0;
/// The samples read at the end of a decoded frame (10 ms).
const WINDOW: usize = 480;
/// Each tone's amplitude (of full scale); the two add up to 0.6.
const AMPLITUDE: f32 = 0.3;

/// The marker frame of frame index `k`.
pub fn frame(k: usize) -> Vec<i16> {
    let code = k % CODES;
    let low = tone(LOW[code % LOW.len()], AMPLITUDE, 0, FRAME_SAMPLES);
    let high = tone(HIGH[code / LOW.len()], AMPLITUDE, 0, FRAME_SAMPLES);
    low.iter()
        .zip(&high)
        .map(|(&a, &b)| a.saturating_add(b))
        .collect()
}

/// The code (`k % CODES`) of a decoded frame, with the weaker of its two groups' margins, or
/// `None` when the frame is not a clear marker (too short, silent, or ambiguous).
pub fn identify(samples: &[i16]) -> Option<(usize, f32)> {
    if samples.len() < WINDOW {
        return None;
    }
    let window = &samples[samples.len() - WINDOW..];
    let (low, low_margin) = strongest(window, &LOW)?;
    let (high, high_margin) = strongest(window, &HIGH)?;
    let margin = low_margin.min(high_margin);
    (margin >= MIN_MARGIN).then_some((high * LOW.len() + low, margin))
}

/// The strongest of `tones` in `window` (Hann-windowed Goertzel powers) and its margin over
/// the second; `None` when the strongest is far below a marker's level (silence).
fn strongest(window: &[i16], tones: &[f32]) -> Option<(usize, f32)> {
    let powers: Vec<f32> = tones.iter().map(|&f| goertzel(window, f)).collect();
    let mut order: Vec<usize> = (0..powers.len()).collect();
    order.sort_by(|&a, &b| powers[b].total_cmp(&powers[a]));
    let (best, second) = (powers[order[0]], powers[order[1]]);
    // A tone of AMPLITUDE gives |X| ~ A * N / 4 under a Hann window; accept down to -20 dB.
    let full = AMPLITUDE * f32::from(i16::MAX) * WINDOW as f32 / 4.0;
    (best > 0.01 * full * full).then(|| (order[0], best / second.max(f32::MIN_POSITIVE)))
}

/// Power of `frequency` in `window` (Hann window, Goertzel).
fn goertzel(window: &[i16], frequency: f32) -> f32 {
    let n = window.len() as f32;
    let w = 2.0 * std::f32::consts::PI * frequency / SAMPLE_RATE as f32;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for (i, &x) in window.iter().enumerate() {
        let hann = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / (n - 1.0)).cos();
        let s = f32::from(x) * hann + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// What [`check`] found.
pub struct SelfCheck {
    /// Frames encoded and decoded.
    pub frames: usize,
    /// Frames identified as the right index.
    pub right: usize,
    /// The smallest margin among them.
    pub min_margin: f32,
    /// The encoder's lookahead (samples at 48 kHz).
    pub lookahead: i32,
}

/// Sends `frames` markers through a local Opus encoder (AudioSender's settings: VoIP, 32
/// kbit/s, in-band FEC) and decoder, frame after frame, and counts those identified right
/// (the first 2, the decoder's ramp-up, are skipped).
pub fn check(frames: usize) -> Result<SelfCheck, opus::Error> {
    let mut encoder =
        opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)?;
    encoder.set_bitrate(opus::Bitrate::Bits(32_000))?;
    encoder.set_inband_fec(true)?;
    let lookahead = encoder.get_lookahead()?;
    let mut decoder = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)?;
    let mut packet = vec![0u8; 1275];
    let mut pcm = vec![0i16; 5760];
    let mut result = SelfCheck {
        frames: 0,
        right: 0,
        min_margin: f32::INFINITY,
        lookahead,
    };
    for k in 0..frames + 2 {
        let n = encoder.encode(&frame(k), &mut packet)?;
        let got = decoder.decode(&packet[..n], &mut pcm, false)?;
        if k < 2 {
            continue;
        }
        result.frames += 1;
        if let Some((code, margin)) = identify(&pcm[..got])
            && code == k % CODES
        {
            result.right += 1;
            result.min_margin = result.min_margin.min(margin);
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_identified_raw_and_through_opus() {
        for k in 0..CODES {
            assert_eq!(
                identify(&frame(k)).map(|(c, _)| c),
                Some(k),
                "raw frame {k}"
            );
        }
        let c = check(3 * CODES).unwrap();
        assert_eq!(
            c.right, c.frames,
            "{} of {} through Opus",
            c.right, c.frames
        );
    }

    #[test]
    fn silence_and_short_frames_are_not_identified() {
        assert_eq!(identify(&vec![0; FRAME_SAMPLES]), None);
        assert_eq!(identify(&frame(3)[..100]), None);
    }
}
