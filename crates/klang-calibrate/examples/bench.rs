//! Benchmark (issue 8): analysis of a 10 s sweep at 48 kHz, fit included.
//! Goal: under 1 s. Run: `cargo run --release -p klang-calibrate --example bench`.

use std::time::Instant;

use klang_calibrate::*;
use klang_dsp::biquad::{Biquad, BiquadCoefficients};

fn main() {
    const FS: u32 = 48_000;
    let fs = f64::from(FS);
    let sweep = Sweep::generate(&SweepParams::new(FS)).expect("default sweep");
    // A "room": three modes, a dip and two reflections, then 0.3 s of latency.
    let mut room: Vec<Biquad> = [(42.0, 10.0, 6.0), (68.0, -7.0, 4.0), (115.0, 6.0, 8.0)]
        .iter()
        .map(|&(f, g, q)| Biquad::new(BiquadCoefficients::peak(fs, f, q, g)))
        .collect();
    let dry: Vec<f64> = sweep
        .samples()
        .iter()
        .map(|&x| room.iter_mut().fold(f64::from(x), |s, b| b.process(s)))
        .collect();
    let latency = (0.3 * fs) as usize;
    let mut recording = vec![0.0f32; latency + dry.len()];
    for (i, &x) in dry.iter().enumerate() {
        recording[latency + i] += (0.5 * x) as f32;
        if i >= 170 {
            recording[latency + i] += (0.2 * dry[i - 170]) as f32;
        }
        if i >= 611 {
            recording[latency + i] += (0.1 * dry[i - 611]) as f32;
        }
    }

    let start = Instant::now();
    let sweep_back = Sweep::from_samples(sweep.samples(), FS).expect("a sweep");
    let t_identify = start.elapsed();
    let m = measure(&sweep_back, &recording, FS, &MeasureOptions::default()).expect("measured");
    let t_measure = start.elapsed();
    let grid = log_grid(10.0, 20_000.0, 48);
    let r =
        frequency_response(&m, Window::default(), Smoothing::Octave(6), &grid).expect("response");
    let t_response = start.elapsed();
    let c = fit(&r, &Target::Flat, &FitOptions::new(FS)).expect("fit");
    let total = start.elapsed();
    println!(
        "10 s sweep at 48 kHz ({} samples recorded): identify {:.0} ms, deconvolve {:.0} ms, response {:.0} ms, fit {:.0} ms; total {:.0} ms (goal < 1000 ms)",
        recording.len(),
        t_identify.as_secs_f64() * 1e3,
        (t_measure - t_identify).as_secs_f64() * 1e3,
        (t_response - t_measure).as_secs_f64() * 1e3,
        (total - t_response).as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3
    );
    println!(
        "delay {:.1} ms, peak/noise {:.0} dB, H2 {:.0} dB",
        m.delay_s * 1e3,
        m.peak_to_noise_db,
        m.harmonics[0].level_db
    );
    print!("{}", c.table());
}
