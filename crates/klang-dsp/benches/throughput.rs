//! Times-real-time of klang's inner loops (criterion-free: `cargo bench -p klang-dsp`).
use klang_dsp::biquad::BiquadCoefficients;
use klang_dsp::cascade::Cascade;
use std::time::Instant;

fn main() {
    let fs = 48_000.0;
    let freqs = [
        50., 100., 156., 220., 311., 440., 622., 880., 1250., 1750., 2500., 3500., 5000., 10000.,
        20000.,
    ];
    let c: Vec<_> = freqs
        .iter()
        .enumerate()
        .map(|(i, &f)| BiquadCoefficients::peak(fs, f, 1.4, (i as f64) - 7.0))
        .collect();
    let mut casc = Cascade::<2>::new(&c);
    let secs = 600usize;
    let block = 1024;
    let mut buf = vec![[0.0f64; 2]; block];
    let mut seed = 1u32;
    for f in buf.iter_mut() {
        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        f[0] = (seed as f64 / u32::MAX as f64) - 0.5;
        f[1] = -f[0];
    }
    let n = secs * 48_000 / block;
    let t = Instant::now();
    let mut acc = 0.0;
    let src = buf.clone();
    for _ in 0..n {
        buf.copy_from_slice(&src);
        casc.process(&mut buf);
        acc += buf[0][0];
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "graphic eq cascade: {:.3} s for {} s stereo -> {:.0}x real time ({acc})",
        dt,
        secs,
        secs as f64 / dt
    );
}
