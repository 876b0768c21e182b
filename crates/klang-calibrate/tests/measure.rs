//! The offline measuring path against systems whose response is known, and
//! every bad recording against the error it must produce.

use klang_calibrate::*;
use klang_dsp::config::{Config, EqBand, FilterType};
use klang_dsp::{Chain, response::chain_response};

const FS: u32 = 48_000;

fn sweep(duration_s: f64) -> Sweep {
    Sweep::generate(&SweepParams {
        duration_s,
        ..SweepParams::new(FS)
    })
    .unwrap()
}

fn band(kind: FilterType, freq: f64, gain_db: f64, q: f64) -> EqBand {
    EqBand {
        kind,
        freq,
        gain_db,
        q,
        slope: None,
    }
}

/// Plays `signal` through klang's own chain (left output), at 0 dB volume.
fn play_through_klang(config: &Config, signal: &[f32]) -> Vec<f32> {
    let mut chain = Chain::new(config, FS).unwrap();
    chain.set_volume_db_now(0.0);
    let input: Vec<f32> = signal.iter().flat_map(|&s| [s, s]).collect();
    let mut out = vec![0.0f32; signal.len() * chain.output_channels()];
    chain.process(&input, &mut out);
    out.chunks(chain.output_channels()).map(|f| f[0]).collect()
}

/// A small deterministic noise source (no rand dependency needed for this).
fn noise(n: usize, amplitude: f32, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            amplitude * (((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0)
        })
        .collect()
}

#[test]
fn a_chain_of_known_filters_and_a_delay_is_recovered_within_0_2_db_from_20_hz_to_20_khz() {
    let config = Config {
        eq: vec![
            band(FilterType::Highpass, 15.0, 0.0, 0.7),
            band(FilterType::Peak, 40.0, 6.0, 4.0),
            band(FilterType::Lowshelf, 120.0, -4.0, 0.7),
            band(FilterType::Peak, 1_000.0, -8.0, 2.0),
            band(FilterType::Peak, 3_500.0, 4.0, 6.0),
            band(FilterType::Highshelf, 8_000.0, -5.0, 0.7),
        ],
        ..Config::default()
    };
    let s = sweep(10.0);
    let delay = 12_345usize;
    let mut played = vec![0.0f32; delay];
    played.extend(play_through_klang(&config, s.samples()));
    let noise_floor = noise(played.len(), 1e-5, 7);
    let rec: Vec<f32> = played
        .iter()
        .zip(&noise_floor)
        .map(|(a, b)| a + b)
        .collect();

    let m = measure(&s, &rec, FS, &MeasureOptions::default()).unwrap();
    let found = (m.delay_s * f64::from(FS)).round() as i64;
    assert!(
        (found - delay as i64).abs() <= 1,
        "delay {found} samples, played at {delay}"
    );
    let grid = log_grid(20.0, 20_000.0, 24);
    let window = Window {
        left_ms: 10.0,
        right_ms: 900.0,
    };
    let r = frequency_response(&m, window, Smoothing::None, &grid).unwrap();
    let want = &chain_response(&config, FS, 0.0, &grid).unwrap()[0].magnitude_db;
    let worst = grid
        .iter()
        .zip(r.db.iter().zip(want))
        .map(|(f, (a, b))| (f, (a - b).abs()))
        .fold((&0.0, 0.0), |m, c| if c.1 > m.1 { c } else { m });
    println!(
        "known chain: worst error {:.3} dB at {:.1} Hz; delay {found} samples; peak/noise {:.0} dB",
        worst.1, worst.0, m.peak_to_noise_db
    );
    assert!(worst.1 < 0.2, "{worst:?}");
}

#[test]
fn harmonic_distortion_is_separated_from_the_linear_response() {
    // Up to 11 kHz, so the second harmonic stays below Nyquist (no aliasing).
    let s = Sweep::generate(&SweepParams {
        duration_s: 4.0,
        end_hz: 11_000.0,
        ..SweepParams::new(FS)
    })
    .unwrap();
    // y = x + 5 x²: at the sweep's 0.1 amplitude the second harmonic is
    // 5·0.1/2 = 0.25 of the fundamental, −12 dB.
    let rec: Vec<f32> = s.samples().iter().map(|&x| x + 5.0 * x * x).collect();
    let m = measure(&s, &rec, FS, &MeasureOptions::default()).unwrap();
    let h2 = &m.harmonics[0];
    assert_eq!(h2.order, 2);
    println!(
        "harmonics: {:?}",
        m.harmonics
            .iter()
            .map(|h| (h.order, (h.level_db * 10.0).round() / 10.0))
            .collect::<Vec<_>>()
    );
    assert!((h2.level_db + 12.0).abs() < 1.5, "H2 at {} dB", h2.level_db);
    assert!(
        m.harmonics[1].level_db < -40.0,
        "no third harmonic was made"
    );
    let grid = log_grid(30.0, 10_000.0, 6);
    let r = frequency_response(&m, Window::default(), Smoothing::None, &grid).unwrap();
    for (f, d) in grid.iter().zip(&r.db) {
        assert!(d.abs() < 0.1, "linear response {d} dB at {f} Hz");
    }
}

#[test]
fn the_sweep_file_is_recognised_from_its_samples() {
    let s = sweep(5.0);
    let back = Sweep::from_samples(s.samples(), FS).unwrap();
    let (a, b) = (s.band_hz(), back.band_hz());
    assert!((b.0 / a.0 - 1.0).abs() < 0.15, "{a:?} vs {b:?}");
    assert!((b.1 / a.1 - 1.0).abs() < 0.05, "{a:?} vs {b:?}");
    assert!((back.rate_constant_s() / s.rate_constant_s() - 1.0).abs() < 0.02);
    let noise = noise(FS as usize, 0.1, 3);
    assert!(matches!(
        Sweep::from_samples(&noise, FS),
        Err(CalibrateError::NotASweep { .. })
    ));
}

#[test]
fn the_inverse_filter_compresses_the_sweep_to_an_impulse() {
    let s = Sweep::generate(&SweepParams {
        duration_s: 0.5,
        silence_before_s: 0.0,
        silence_after_s: 0.0,
        ..SweepParams::new(8_000)
    })
    .unwrap();
    let x = s.samples();
    let inv = s.inverse_filter();
    let conv: Vec<f64> = (0..x.len() + inv.len() - 1)
        .map(|n| {
            let lo = n.saturating_sub(inv.len() - 1);
            (lo..=n.min(x.len() - 1))
                .map(|k| f64::from(x[k]) * f64::from(inv[n - k]))
                .sum()
        })
        .collect();
    let (peak_at, peak) =
        conv.iter().enumerate().fold(
            (0, 0.0f64),
            |m, (i, v)| if v.abs() > m.1 { (i, v.abs()) } else { m },
        );
    assert_eq!(peak_at, x.len() - 1);
    let rms = (conv.iter().map(|v| v * v).sum::<f64>() / conv.len() as f64).sqrt();
    assert!(20.0 * (peak / rms).log10() > 25.0);
}

/// A recording of `s` starting `before` samples in, `after` samples of silence
/// after the file ends, at `gain`.
fn recording(s: &Sweep, before: usize, gain: f32) -> Vec<f32> {
    let mut r = vec![0.0f32; before];
    r.extend(s.samples().iter().map(|x| x * gain));
    r
}

#[test]
fn every_bad_recording_gets_the_error_that_names_it() {
    let s = sweep(2.0);
    let opts = MeasureOptions::default();
    let good = recording(&s, 1000, 1.0);
    assert!(measure(&s, &good, FS, &opts).is_ok());
    // A quiet sweep in a noisy room (noise only 40 dB below the sweep's
    // peak) is still found: the threshold is not too strict.
    let noisy: Vec<f32> = good
        .iter()
        .zip(noise(good.len(), 1e-3, 9))
        .map(|(a, b)| a + b)
        .collect();
    let m = measure(&s, &noisy, FS, &opts).unwrap();
    println!("noisy room: peak/noise {:.0} dB", m.peak_to_noise_db);

    let e = measure(&s, &good, 44_100, &opts).unwrap_err();
    assert_eq!(
        e,
        CalibrateError::SampleRateMismatch {
            sweep: 48_000,
            recording: 44_100
        }
    );

    let clipped = recording(&s, 1000, 12.0);
    let e = measure(&s, &clipped, FS, &opts).unwrap_err();
    assert!(
        matches!(e, CalibrateError::Clipped { samples, .. } if samples > 100),
        "{e}"
    );

    let silent = vec![0.0f32; good.len()];
    let e = measure(&s, &silent, FS, &opts).unwrap_err();
    assert!(matches!(e, CalibrateError::Silent { .. }), "{e}");
    let hiss = noise(good.len(), 1e-4, 1);
    assert!(matches!(
        measure(&s, &hiss, FS, &opts),
        Err(CalibrateError::Silent { .. })
    ));

    let short = &good[..FS as usize];
    let e = measure(&s, short, FS, &opts).unwrap_err();
    assert!(matches!(e, CalibrateError::TooShort { .. }), "{e}");

    let not_it = noise(good.len(), 0.1, 2);
    let e = measure(&s, &not_it, FS, &opts).unwrap_err();
    assert!(matches!(e, CalibrateError::NoSweep { .. }), "{e}");
    let music: Vec<f32> = (0..good.len())
        .map(|i| {
            let t = i as f32 / FS as f32;
            0.1 * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
                + 0.05 * (2.0 * std::f32::consts::PI * 331.0 * t).sin()
                + 0.03 * (2.0 * std::f32::consts::PI * 1_234.0 * t).sin()
        })
        .collect();
    let e = measure(&s, &music, FS, &opts).unwrap_err();
    assert!(matches!(e, CalibrateError::NoSweep { .. }), "{e}");

    // Recording started a second into the file: the sweep's start is missing.
    let late = good[1000 + FS as usize..].to_vec();
    let mut late_padded = late.clone();
    late_padded.extend(vec![0.0f32; FS as usize]);
    let e = measure(&s, &late_padded, FS, &opts).unwrap_err();
    assert!(matches!(e, CalibrateError::Truncated { .. }), "{e}");
    // Recording stopped before the sweep ended.
    let stopped = good[..1000 + s.active().end - FS as usize / 4].to_vec();
    let e = measure(&s, &stopped, FS, &opts).unwrap_err();
    assert!(matches!(e, CalibrateError::Truncated { .. }), "{e}");

    for e in [
        CalibrateError::Silent { peak_dbfs: -90.0 },
        CalibrateError::TooShort {
            recording_s: 1.0,
            needed_s: 2.0,
        },
    ] {
        let msg = e.to_string();
        assert!(msg.starts_with(char::is_lowercase), "{msg}");
    }
}

#[test]
fn the_sweep_has_the_asked_level_length_and_fades() {
    let p = SweepParams::new(44_100);
    let s = Sweep::generate(&p).unwrap();
    let peak = s.samples().iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(
        (20.0 * f64::from(peak).log10() + 20.0).abs() < 0.01,
        "peak {peak}"
    );
    let a = s.active();
    assert_eq!(a.len(), 441_000);
    assert_eq!(a.start, 22_050);
    assert_eq!(s.samples().len(), 22_050 + 441_000 + 88_200);
    assert_eq!(s.samples()[a.start], 0.0, "faded in from silence");
    assert!(s.samples()[a.end - 1].abs() < 1e-3, "faded out");
    assert!(s.band_hz().1 <= 0.46 * 44_100.0);

    for (bad, name) in [
        (
            SweepParams {
                level_dbfs: 3.0,
                ..p.clone()
            },
            "invalid sweep level",
        ),
        (
            SweepParams {
                duration_s: 0.1,
                ..p.clone()
            },
            "invalid sweep length",
        ),
        (
            SweepParams {
                end_hz: 30_000.0,
                ..p.clone()
            },
            "invalid end frequency",
        ),
        (
            SweepParams {
                start_hz: 0.0,
                ..p.clone()
            },
            "invalid start frequency",
        ),
        (
            SweepParams {
                fade_in_s: 6.0,
                ..p.clone()
            },
            "invalid fade",
        ),
    ] {
        let e = Sweep::generate(&bad).unwrap_err().to_string();
        assert!(e.starts_with(name), "{e}");
    }
}
