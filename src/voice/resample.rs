//! A streaming linear resampler (capture: the device's rate to 48 kHz).

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
}
