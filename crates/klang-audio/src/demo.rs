//! The built-in demo signal, generated procedurally so the binary carries no audio file.
//!
//! Three sections a listener can tell apart and a plot can explain: a short piece of
//! music-like material (bass line, plucked chords, hi-hat), pink noise (equal energy per
//! octave, the usual test signal for tonal balance), and a logarithmic sine sweep from
//! 20 Hz to 20 kHz (every frequency in turn, so the EQ's shape is audible).

use std::f64::consts::TAU;

/// The demo's sample rate in Hz.
pub const DEMO_SAMPLE_RATE: u32 = 48_000;
/// The demo's length in seconds.
pub const DEMO_SECONDS: f64 = 10.0;

const MUSIC_END: f64 = 4.0;
const NOISE_END: f64 = 6.0;
const SWEEP_START: f64 = 6.2;
const SWEEP_END: f64 = 9.8;

/// The demo signal at `sample_rate` (use [`DEMO_SAMPLE_RATE`]), as interleaved stereo.
///
/// Deterministic: the same rate gives the same samples on every machine. Peaks stay
/// below −3 dBFS so the default chain's gains do not start at the limiter.
pub fn demo_signal(sample_rate: u32) -> Vec<f32> {
    let fs = f64::from(sample_rate);
    let frames = (DEMO_SECONDS * fs) as usize;
    let mut out = vec![0.0f32; frames * 2];
    let mut noise_l = PinkNoise::new(0x9E37_79B9_7F4A_7C15);
    let mut noise_r = PinkNoise::new(0xD1B5_4A32_D192_ED03);
    let mut hat = PinkNoise::new(0x2545_F491_4F6C_DD1D);
    for (i, frame) in out.chunks_exact_mut(2).enumerate() {
        let t = i as f64 / fs;
        let (l, r) = if t < MUSIC_END {
            music(t, &mut hat)
        } else if t < NOISE_END {
            let env = fade(t - MUSIC_END, NOISE_END - t, 0.02);
            // Pink noise near −20 dBFS RMS, decorrelated between the channels.
            (0.12 * env * noise_l.next(), 0.12 * env * noise_r.next())
        } else if (SWEEP_START..SWEEP_END).contains(&t) {
            let s = 0.5 * sweep(t - SWEEP_START, SWEEP_END - SWEEP_START);
            let env = fade(t - SWEEP_START, SWEEP_END - t, 0.01);
            (env * s, env * s)
        } else {
            (0.0, 0.0)
        };
        frame[0] = l as f32;
        frame[1] = r as f32;
    }
    out
}

/// Linear fade-in and fade-out of `len` seconds at both ends of a section.
fn fade(since_start: f64, until_end: f64, len: f64) -> f64 {
    (since_start / len).min(until_end / len).clamp(0.0, 1.0)
}

/// Exponential sweep 20 Hz → 20 kHz over `duration` seconds (Farina's form).
fn sweep(t: f64, duration: f64) -> f64 {
    let (f0, f1) = (20.0f64, 20_000.0f64);
    let k = (f1 / f0).ln();
    (TAU * f0 * duration / k * ((t / duration * k).exp() - 1.0)).sin()
}

/// Two bars of I–V–vi–IV in C at 120 bpm: a bass note per beat, a plucked chord per
/// half beat panned left and right, and a hi-hat of filtered noise on the off-beats.
fn music(t: f64, hat_noise: &mut PinkNoise) -> (f64, f64) {
    // MIDI notes: bass root and a triad for each of the four chords.
    const CHORDS: [(u8, [u8; 3]); 4] = [
        (36, [60, 64, 67]), // C
        (43, [59, 62, 67]), // G
        (45, [60, 64, 69]), // Am
        (41, [60, 65, 69]), // F
    ];
    let beat = 0.5;
    let chord = CHORDS[((t / (2.0 * beat)) as usize) % CHORDS.len()];
    let since_beat = t % beat;
    let bass = 0.28 * pluck(midi_hz(chord.0), since_beat, 0.35, 3);

    let half = beat / 2.0;
    let step = (t / half) as usize;
    let since_half = t % half;
    let note = chord.1[step % 3];
    let upper = 0.16 * pluck(midi_hz(note), since_half, 0.18, 6);
    let pad: f64 = chord
        .1
        .iter()
        .map(|&n| (TAU * midi_hz(n) * t).sin())
        .sum::<f64>()
        * 0.025;
    let hat = if step % 2 == 1 {
        0.1 * (-since_half / 0.03).exp() * hat_noise.next()
    } else {
        hat_noise.next();
        0.0
    };
    let pan = if step % 2 == 0 { 0.75 } else { 0.25 };
    let l = bass + upper * (1.0 - pan) * 1.4 + pad + hat * 0.6;
    let r = bass + upper * pan * 1.4 + pad + hat;
    let env = fade(t, MUSIC_END - t, 0.01);
    (l * env, r * env)
}

fn midi_hz(note: u8) -> f64 {
    440.0 * 2f64.powf((f64::from(note) - 69.0) / 12.0)
}

/// A plucked tone: `harmonics` partials with 1/n amplitudes, higher ones decaying
/// faster, and a 3 ms attack against clicks.
fn pluck(freq: f64, t: f64, decay: f64, harmonics: u32) -> f64 {
    let attack = (t / 0.003).min(1.0);
    (1..=harmonics)
        .map(|n| {
            let n = f64::from(n);
            (TAU * freq * n * t).sin() / n * (-t * n / decay).exp()
        })
        .sum::<f64>()
        * attack
}

/// Pink noise: white noise from xorshift64* through Paul Kellet's economy filter
/// (within ±0.5 dB of −3 dB/octave over the audio band). Output roughly in [−1, 1].
#[derive(Debug)]
struct PinkNoise {
    state: u64,
    b: [f64; 3],
}

impl PinkNoise {
    fn new(seed: u64) -> Self {
        PinkNoise {
            state: seed.max(1),
            b: [0.0; 3],
        }
    }

    fn white(&mut self) -> f64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let x = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // Top 53 bits to [−1, 1).
        (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    fn next(&mut self) -> f64 {
        let w = self.white();
        self.b[0] = 0.99765 * self.b[0] + w * 0.099_046_0;
        self.b[1] = 0.96300 * self.b[1] + w * 0.296_516_4;
        self.b[2] = 0.57000 * self.b[2] + w * 1.052_691_3;
        (self.b[0] + self.b[1] + self.b[2] + w * 0.1848) * 0.25
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_is_stereo_bounded_and_deterministic() {
        let a = demo_signal(DEMO_SAMPLE_RATE);
        assert_eq!(
            a.len(),
            2 * (DEMO_SECONDS * f64::from(DEMO_SAMPLE_RATE)) as usize
        );
        let peak = a.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak < 0.708, "peak {peak} must stay below -3 dBFS");
        assert!(
            peak > 0.3,
            "peak {peak}: the demo should not be near silence"
        );
        assert_eq!(a, demo_signal(DEMO_SAMPLE_RATE));
    }

    #[test]
    fn demo_channels_differ() {
        let a = demo_signal(DEMO_SAMPLE_RATE);
        let differing = a.chunks_exact(2).filter(|f| f[0] != f[1]).count();
        assert!(differing > a.len() / 8, "the demo should be real stereo");
    }
}
