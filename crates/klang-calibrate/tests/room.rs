//! Simulated rooms: a shoebox image-source model (Allen & Berkley) gives the
//! room's impulse response; the sweep is "played" into it at five seats,
//! measured, averaged, fitted, and the correction is then played through
//! klang's own chain into the same room and measured again.
//!
//! Issue 8's goal: after correction the response within ±1.5 dB of target
//! (1/6 octave, 30–300 Hz), both as predicted and as measured through klang.
//! Judged, as REW does, where an equaliser with the limits can reach:
//! points whose measured response lies more than the boost limit (3 dB) plus
//! the goal (1.5 dB) below the target are nulls no boost-capped EQ fills;
//! they are counted and printed, not judged. The target's level is the fit's
//! choice (the 30th percentile of the level band, or up to 3 dB below it if
//! that lands nearer the target and within the goal; the preset's preamp
//! pays for the boosts).
//!
//! Measured with the defaults (16 filters, 3 dB boost, 12 dB cut), rooms in
//! the order below: the fit chose levels 3, 2 and 2 dB below the percentile;
//! worst reachable deviation predicted 1.34, 1.25 and 0.94 dB, through klang
//! the same (prediction and measurement at most 0.01 dB apart anywhere in
//! 30–300 Hz: the fit predicts the smoothed product of room and filters, as
//! the measurement smooths it); 6, 8 and 0 of 160 points in deeper nulls.
//! RMS deviation 7.24, 4.84, 6.18 dB before (5.70, 3.92, 4.97 dB against
//! the percentile level), 1.09, 0.99, 0.52 dB after, predicted and through
//! klang alike. At the percentile level alone and without the minimax
//! refinement the worst reachable points stayed 2.31, 1.78 and 1.78 dB off.

use std::f64::consts::PI;

use klang_calibrate::*;
use klang_dsp::Chain;
use realfft::RealFftPlanner;

const FS: u32 = 48_000;
const C: f64 = 343.0;

/// A shoebox room with one absorption coefficient for all walls.
#[derive(Clone)]
struct Room {
    name: &'static str,
    size: [f64; 3],
    absorption: f64,
    speaker: [f64; 3],
    mic: [f64; 3],
    /// Highest reflection order summed.
    order: i32,
}

impl Room {
    /// The impulse response, each image a 1/r-weighted, β^hits-weighted
    /// fractional delay (Hann-windowed sinc, 64 taps).
    fn impulse_response(&self) -> Vec<f64> {
        let fs = f64::from(FS);
        let beta = (1.0 - self.absorption).sqrt();
        let k = self.order / 2 + 1;
        let mut ir = vec![0.0; (0.6 * fs) as usize];
        let half = 32i64;
        for px in 0..2 {
            for py in 0..2 {
                for pz in 0..2 {
                    let p = [px, py, pz];
                    for mx in -k..=k {
                        for my in -k..=k {
                            for mz in -k..=k {
                                let m = [mx, my, mz];
                                let hits: i32 = (0..3).map(|a| (2 * m[a] - p[a]).abs()).sum();
                                if hits > self.order {
                                    continue;
                                }
                                let d2: f64 = (0..3)
                                    .map(|a| {
                                        let x = (1 - 2 * p[a]) as f64 * self.speaker[a]
                                            + 2.0 * m[a] as f64 * self.size[a];
                                        (x - self.mic[a]).powi(2)
                                    })
                                    .sum();
                                let d = d2.sqrt();
                                let gain = beta.powi(hits) / (4.0 * PI * d);
                                let t = d / C * fs;
                                let centre = t.floor() as i64;
                                for n in centre - half + 1..=centre + half {
                                    if n < 0 || n as usize >= ir.len() {
                                        continue;
                                    }
                                    let x = n as f64 - t;
                                    let sinc = if x.abs() < 1e-12 {
                                        1.0
                                    } else {
                                        (PI * x).sin() / (PI * x)
                                    };
                                    let w = 0.5 + 0.5 * (PI * x / half as f64).cos();
                                    ir[n as usize] += gain * sinc * w;
                                }
                            }
                        }
                    }
                }
            }
        }
        ir
    }
}

/// Linear convolution by FFT.
fn convolve(x: &[f32], h: &[f64]) -> Vec<f32> {
    let n = (x.len() + h.len()).next_power_of_two();
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let spec = |v: &mut Vec<f64>| {
        let mut out = fwd.make_output_vec();
        fwd.process(v, &mut out).unwrap();
        out
    };
    let mut a: Vec<f64> = x.iter().map(|&s| f64::from(s)).collect();
    a.resize(n, 0.0);
    let mut b = h.to_vec();
    b.resize(n, 0.0);
    let (sa, sb) = (spec(&mut a), spec(&mut b));
    let mut prod: Vec<_> = sa.iter().zip(&sb).map(|(p, q)| p * q).collect();
    let mut out = inv.make_output_vec();
    inv.process(&mut prod, &mut out).unwrap();
    out.truncate(x.len() + h.len() - 1);
    out.iter().map(|v| (v / n as f64) as f32).collect()
}

fn smoothed(sweep: &Sweep, recording: &[f32], grid: &[f64]) -> FrequencyResponse {
    let m = measure(sweep, recording, FS, &MeasureOptions::default()).unwrap();
    frequency_response(&m, Window::default(), Smoothing::Octave(6), grid).unwrap()
}

fn rooms() -> Vec<Room> {
    vec![
        Room {
            name: "living room 5.0 x 4.0 x 2.5 m",
            size: [5.0, 4.0, 2.5],
            absorption: 0.4,
            speaker: [0.6, 1.1, 1.0],
            mic: [3.3, 2.2, 1.1],
            order: 14,
        },
        Room {
            name: "living room 6.5 x 4.5 x 2.6 m",
            size: [6.5, 4.5, 2.6],
            absorption: 0.45,
            speaker: [0.8, 1.3, 0.9],
            mic: [4.1, 2.6, 1.2],
            order: 14,
        },
        Room {
            name: "small room 4.2 x 3.6 x 2.4 m",
            size: [4.2, 3.6, 2.4],
            absorption: 0.35,
            speaker: [0.5, 0.7, 1.1],
            mic: [2.7, 2.0, 1.0],
            order: 14,
        },
    ]
}

#[test]
fn correction_of_simulated_living_rooms_is_within_1_5_db_of_target_30_to_300_hz_where_reachable() {
    let sweep = Sweep::generate(&SweepParams {
        duration_s: 4.0,
        ..SweepParams::new(FS)
    })
    .unwrap();
    let grid = log_grid(15.0, 2_000.0, 48);
    let range = (30.0, 300.0);
    let mut failures = Vec::new();
    for room in rooms() {
        // Five microphone positions around the seat, power-averaged: the
        // usual practice, and what `klang calibrate --recording R1 --recording R2 ...` does.
        let seats: Vec<[f64; 3]> = [[0.0, 0.0], [0.3, 0.0], [-0.3, 0.0], [0.0, 0.3], [0.0, -0.3]]
            .iter()
            .map(|d| [room.mic[0] + d[0], room.mic[1] + d[1], room.mic[2]])
            .collect();
        let irs: Vec<Vec<f64>> = seats
            .iter()
            .map(|&mic| {
                Room {
                    mic,
                    ..room.clone()
                }
                .impulse_response()
            })
            .collect();
        let each: Vec<FrequencyResponse> = irs
            .iter()
            .map(|ir| smoothed(&sweep, &convolve(sweep.samples(), ir), &grid))
            .collect();
        let before = average(&each).unwrap();
        let c = fit(&before, &Target::Flat, &FitOptions::new(FS)).unwrap();

        // Play the sweep through klang with the written correction, into the room.
        let config = c.to_config();
        config.validate_for_rate(FS).unwrap();
        let mut chain = Chain::new(&config, FS).unwrap();
        chain.set_volume_db_now(0.0);
        let stereo: Vec<f32> = sweep.samples().iter().flat_map(|&s| [s, s]).collect();
        let mut out = vec![0.0f32; stereo.len()];
        chain.process(&stereo, &mut out);
        let corrected_signal: Vec<f32> = out.chunks(2).map(|f| f[0]).collect();
        let after_each: Vec<FrequencyResponse> = irs
            .iter()
            .map(|ir| smoothed(&sweep, &convolve(&corrected_signal, ir), &grid))
            .collect();
        let after = average(&after_each).unwrap();
        // The preamp lowers everything; the target moves with it.
        let target: Vec<f64> = c.target_db.iter().map(|t| t + c.preamp_db).collect();
        // Nulls deeper than the boost limit plus the tolerance cannot be
        // filled by design (the issue caps boosts at 3 dB); they are judged
        // apart and counted.
        let reachable: Vec<bool> = before
            .db
            .iter()
            .zip(&c.target_db)
            .map(|(m, t)| m - t >= -(3.0 + 1.5))
            .collect();
        let worst_reachable = |resp: &[f64], tgt: &[f64]| {
            grid.iter()
                .enumerate()
                .filter(|(i, f)| reachable[*i] && (range.0..=range.1).contains(*f))
                .map(|(i, _)| (resp[i] - tgt[i]).abs())
                .fold(0.0f64, f64::max)
        };
        let in_range = grid
            .iter()
            .filter(|f| (range.0..=range.1).contains(*f))
            .count();
        let nulls = grid
            .iter()
            .enumerate()
            .filter(|(i, f)| !reachable[*i] && (range.0..=range.1).contains(*f))
            .count();
        let reach_p = worst_reachable(&c.predicted_db, &c.target_db);
        let reach_a = worst_reachable(&after.db, &target);
        // The prediction against what klang played, point by point.
        let miss = grid
            .iter()
            .enumerate()
            .filter(|(_, f)| (range.0..=range.1).contains(*f))
            .map(|(i, _)| (after.db[i] - c.predicted_db[i] - c.preamp_db).abs())
            .fold(0.0f64, f64::max);
        println!(
            "{}: level {:.2} dB; prediction vs through klang: max {miss:.3} dB apart",
            room.name, c.level_db
        );
        println!(
            "{}: worst deviation where reachable: predicted {reach_p:.3} dB, through klang {reach_a:.2} dB; {nulls} of {in_range} points in nulls deeper than 4.5 dB",
            room.name
        );
        let (rms_b, max_b) = deviation(&grid, &before.db, &c.target_db, range);
        let (rms_p, max_p) = deviation(&grid, &c.predicted_db, &c.target_db, range);
        let (rms_a, max_a) = deviation(&grid, &after.db, &target, range);
        println!(
            "{}: {} filters, preamp {:.1} dB; deviation 30-300 Hz RMS/max: before {:.2}/{:.2} dB, predicted {:.2}/{:.2} dB, measured through klang {:.2}/{:.2} dB",
            room.name,
            c.bands.len(),
            c.preamp_db,
            rms_b,
            max_b,
            rms_p,
            max_p,
            rms_a,
            max_a
        );
        print!("{}", c.table());
        // ROOM_DEBUG=1 prints measured, target and predicted per frequency.
        if std::env::var_os("ROOM_DEBUG").is_some() {
            for (i, f) in grid.iter().enumerate() {
                if (25.0..=320.0).contains(f) {
                    println!(
                        "{:7.1} {:7.2} {:7.2} {:7.2}",
                        f, before.db[i], c.target_db[i], c.predicted_db[i]
                    );
                }
            }
        }
        for b in &c.bands {
            assert!(b.gain_db <= 3.0 && b.gain_db >= -12.0, "{b:?}");
        }
        let goal = reach_p <= 1.5 && reach_a <= 1.5;
        println!(
            "{}: ±1.5 dB goal (predicted and through klang, where reachable) {}",
            room.name,
            if goal { "met" } else { "NOT met" }
        );
        // The prediction is what the user sees; playing through klang must
        // confirm it point by point, and the correction must at least halve
        // the RMS deviation.
        if !goal || miss > 0.1 || rms_a > 0.5 * rms_b {
            failures.push(room.name);
        }
    }
    assert!(
        failures.is_empty(),
        "rooms not corrected to the goal: {failures:?}"
    );
}
