//! Helpers shared by the measuring tests.
#![allow(dead_code)]
// Index loops read like the measurement formulas they implement.
#![allow(clippy::needless_range_loop)]

use klang_dsp::biquad::BiquadCoefficients;
use klang_dsp::cascade::Cascade;
use klang_dsp::{Chain, Config};

/// The sample rates klang supports.
pub const RATES: [u32; 5] = [44_100, 48_000, 88_200, 96_000, 192_000];

/// Proptest case count: `PROPTEST_CASES` or `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// For expensive properties: `PROPTEST_CASES` may lower the count, but raises
/// it at most to 4× `default`, so a high global setting keeps the suite quick.
pub fn heavy_cases(default: u32) -> u32 {
    cases(default).min(default * 4)
}

/// Samples needed for the slowest pole of `sections` to decay by 1e-9.
pub fn settle_samples(sections: &[BiquadCoefficients]) -> usize {
    let mut worst = 0.0f64;
    for c in sections {
        // Pole radius: sqrt(a2) for complex poles, else the larger real root.
        let disc = c.a1 * c.a1 - 4.0 * c.a2;
        let r = if disc < 0.0 {
            c.a2.sqrt()
        } else {
            let s = disc.sqrt();
            ((-c.a1 + s) / 2.0).abs().max(((-c.a1 - s) / 2.0).abs())
        };
        worst = worst.max(r);
    }
    if worst <= 0.0 {
        return 16;
    }
    ((1e-9f64).ln() / worst.ln()).ceil() as usize + 16
}

/// Measures the gain (dB) and phase (rad) of `sections` at `f` by running
/// cos and sin through the processor (channel 0 and 1 of a stereo cascade) and
/// reading the steady-state complex output `y_cos + j·y_sin = H·e^{jωn}`.
pub fn measure_cascade(sections: &[BiquadCoefficients], fs: f64, f: f64) -> (f64, f64) {
    let mut c = Cascade::<2>::new(sections);
    let n = settle_samples(sections) + 64;
    let w = 2.0 * std::f64::consts::PI * f / fs;
    let mut frames: Vec<[f64; 2]> = (0..n)
        .map(|i| [(w * i as f64).cos(), (w * i as f64).sin()])
        .collect();
    for chunk in frames.chunks_mut(4096) {
        c.process(chunk);
    }
    let mut mag = 0.0;
    let mut ph = 0.0;
    for i in n - 32..n {
        let (yc, ys) = (frames[i][0], frames[i][1]);
        // H = (yc + j ys) e^{-jωi}
        let (cw, sw) = ((w * i as f64).cos(), -(w * i as f64).sin());
        let re = yc * cw - ys * sw;
        let im = yc * sw + ys * cw;
        mag += re.hypot(im);
        ph += im.atan2(re);
    }
    (20.0 * (mag / 32.0).log10(), ph / 32.0)
}

/// Measures a whole chain's per-output complex response at `f` from a signal
/// present equally in L and R: two chains (cos and sin input), steady state.
/// `amp` is the input amplitude.
pub fn measure_chain(
    config: &Config,
    rate: u32,
    volume_db: f64,
    f: f64,
    amp: f64,
    settle: usize,
) -> Vec<(f64, f64)> {
    let fs = f64::from(rate);
    let w = 2.0 * std::f64::consts::PI * f / fs;
    let mut outs = Vec::new();
    for phase in [0.0, -std::f64::consts::FRAC_PI_2] {
        let mut chain = Chain::new(config, rate).unwrap();
        chain.set_volume_db_now(volume_db);
        let ch = chain.output_channels();
        let n = settle + 64;
        let input: Vec<f32> = (0..n)
            .flat_map(|i| {
                let v = (amp * (w * i as f64 + phase).cos()) as f32;
                [v, v]
            })
            .collect();
        let mut out = vec![0f32; n * ch];
        for (i, o) in input.chunks(2 * 1000).zip(out.chunks_mut(ch * 1000)) {
            chain.process(i, o);
        }
        outs.push((out, ch, n));
    }
    let (ch, n) = (outs[0].1, outs[0].2);
    (0..ch)
        .map(|c| {
            let mut re_sum = 0.0;
            let mut im_sum = 0.0;
            for i in n - 32..n {
                let yc = f64::from(outs[0].0[i * ch + c]);
                let ys = f64::from(outs[1].0[i * ch + c]);
                let (cw, sw) = ((w * i as f64).cos(), -(w * i as f64).sin());
                re_sum += (yc * cw - ys * sw) / amp;
                im_sum += (yc * sw + ys * cw) / amp;
            }
            let (re, im) = (re_sum / 32.0, im_sum / 32.0);
            (20.0 * re.hypot(im).log10(), im.atan2(re))
        })
        .collect()
}

/// Input sine with amplitude `amp`: output is `cos(ωn + φ)` => the sin input is
/// cos shifted by −π/2, so (y_cos, y_sin) form the complex response as above.
pub fn db(x: f64) -> f64 {
    20.0 * x.log10()
}
