//! The strongest frequency of decoded audio (an FFT peak): shared by the native voice tests
//! (`e2e_voice.rs`) and the browser tests' native member (`examples/voice_peer.rs`, which
//! includes this file by path).

use fast_rtc_swarm::media::SAMPLE_RATE;
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// The strongest frequency in `samples` (mono 48 kHz; FFT peak, 1 Hz resolution or better)
/// and its share of the spectrum's energy.
pub fn peak(samples: &[i16]) -> (f32, f32) {
    let n = samples.len().max(SAMPLE_RATE as usize);
    let mut buf: Vec<Complex<f32>> = samples
        .iter()
        .map(|&s| Complex::new(f32::from(s), 0.0))
        .chain(std::iter::repeat(Complex::new(0.0, 0.0)))
        .take(n)
        .collect();
    FftPlanner::new().plan_fft_forward(n).process(&mut buf);
    let power: Vec<f32> = buf[1..n / 2].iter().map(|c| c.norm_sqr()).collect();
    let bin = power
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    // The peak's energy: its bin and the neighbours the window smears it over.
    let near: f32 = power[bin.saturating_sub(3)..(bin + 4).min(power.len())]
        .iter()
        .sum();
    let total: f32 = power.iter().sum();
    (
        (bin + 1) as f32 * SAMPLE_RATE as f32 / n as f32,
        near / total.max(1.0),
    )
}
