//! Biquads measured by running sines through the processor, against the
//! analytic RBJ cookbook response; stability for every valid parameter.

mod common;

use common::{RATES, cases, measure_cascade};
use klang_dsp::biquad::{BiquadCoefficients as C, PassBand, butterworth, linkwitz_riley};
use proptest::prelude::*;
use std::f64::consts::PI;

/// Independent evaluation of the cookbook's analog-derived digital response,
/// straight from the coefficient polynomials (no shared helper).
fn analytic_db(c: &C, fs: f64, f: f64) -> f64 {
    let w = 2.0 * PI * f / fs;
    let (c1, s1, c2, s2) = (w.cos(), w.sin(), (2.0 * w).cos(), (2.0 * w).sin());
    let nr = c.b0 + c.b1 * c1 + c.b2 * c2;
    let ni = -(c.b1 * s1 + c.b2 * s2);
    let dr = 1.0 + c.a1 * c1 + c.a2 * c2;
    let di = -(c.a1 * s1 + c.a2 * s2);
    10.0 * ((nr * nr + ni * ni) / (dr * dr + di * di)).log10()
}

fn designs(fs: f64) -> Vec<(&'static str, C)> {
    vec![
        ("peak +6 1k q1.4", C::peak(fs, 1000.0, 1.4, 6.0)),
        ("peak -12 63 q4", C::peak(fs, 63.0, 4.0, -12.0)),
        ("peak +3 15k q0.7", C::peak(fs, 15000.0, 0.7, 3.0)),
        ("lowshelf +6 100 q0.7", C::low_shelf(fs, 100.0, 0.707, 6.0)),
        (
            "highshelf -4 8k q0.7",
            C::high_shelf(fs, 8000.0, 0.707, -4.0),
        ),
        (
            "lowshelf S0.5 -9 200",
            C::low_shelf_slope(fs, 200.0, 0.5, -9.0),
        ),
        (
            "highshelf S1 +9 5k",
            C::high_shelf_slope(fs, 5000.0, 1.0, 9.0),
        ),
        ("lowpass 2k q0.7", C::lowpass(fs, 2000.0, 0.707)),
        ("highpass 40 q1.2", C::highpass(fs, 40.0, 1.2)),
        ("bandpass 500 q2", C::bandpass(fs, 500.0, 2.0)),
        ("notch 60 q5", C::notch(fs, 60.0, 5.0)),
        ("allpass 300 q0.7", C::allpass(fs, 300.0, 0.707)),
        ("lowpass1 1k", C::lowpass1(fs, 1000.0)),
        ("highpass1 100", C::highpass1(fs, 100.0)),
        ("allpass1 2k", C::allpass1(fs, 2000.0)),
        ("lowshelf1 +6 300", C::low_shelf1(fs, 300.0, 6.0)),
        ("highshelf1 -6 3k", C::high_shelf1(fs, 3000.0, -6.0)),
    ]
}

const TEST_FREQS: [f64; 9] = [
    31.5, 63.0, 100.0, 315.0, 1000.0, 2500.0, 6300.0, 12500.0, 19000.0,
];

#[test]
fn measured_gain_matches_rbj_within_0_01_db() {
    for rate in RATES {
        let fs = f64::from(rate);
        for (name, c) in designs(fs) {
            for f in TEST_FREQS {
                let want = analytic_db(&c, fs, f);
                if want < -80.0 {
                    continue; // deep in a stop band / notch: relative precision is meaningless
                }
                let (got, _) = measure_cascade(&[c], fs, f);
                assert!(
                    (got - want).abs() < 0.01,
                    "{name} at {rate} Hz, {f} Hz: measured {got:.4} dB, RBJ {want:.4} dB"
                );
            }
        }
    }
}

#[test]
fn design_points_are_where_the_cookbook_puts_them() {
    for rate in RATES {
        let fs = f64::from(rate);
        // Peak: full gain at f0. Shelf: half the gain at f0. Pass filters: Q=1/√2 is −3.01 dB.
        assert!((analytic_db(&C::peak(fs, 1000.0, 2.0, 7.5), fs, 1000.0) - 7.5).abs() < 1e-9);
        assert!((analytic_db(&C::low_shelf(fs, 150.0, 0.7, 8.0), fs, 150.0) - 4.0).abs() < 1e-9);
        assert!((analytic_db(&C::high_shelf1(fs, 3000.0, -6.0), fs, 3000.0) + 3.0).abs() < 1e-9);
        let bw = 20.0 * std::f64::consts::FRAC_1_SQRT_2.log10();
        assert!(
            (analytic_db(
                &C::lowpass(fs, 1000.0, std::f64::consts::FRAC_1_SQRT_2),
                fs,
                1000.0
            ) - bw)
                .abs()
                < 1e-9
        );
        assert!((analytic_db(&C::highpass1(fs, 1000.0), fs, 1000.0) - bw).abs() < 1e-9);
        // Butterworth of any order: −3.01 dB at the corner; LR: −6.02 dB.
        for order in 1..=8 {
            let s = butterworth(fs, 500.0, order, PassBand::Low);
            let g: f64 = s.iter().map(|c| analytic_db(c, fs, 500.0)).sum();
            assert!((g - bw).abs() < 1e-9, "BW{order}: {g}");
        }
        for order in [2, 4, 8] {
            let s = linkwitz_riley(fs, 500.0, order, PassBand::High);
            let g: f64 = s.iter().map(|c| analytic_db(c, fs, 500.0)).sum();
            assert!((g - 2.0 * bw).abs() < 1e-9, "LR{order}: {g}");
        }
    }
}

#[test]
fn crossover_cascades_measure_as_designed() {
    for rate in [44_100, 192_000] {
        let fs = f64::from(rate);
        for order in [2, 4, 8] {
            for band in [PassBand::Low, PassBand::High] {
                let s = linkwitz_riley(fs, 80.0, order, band);
                for f in [20.0, 50.0, 80.0, 120.0, 400.0] {
                    let want: f64 = s.iter().map(|c| analytic_db(c, fs, f)).sum();
                    if want < -80.0 {
                        continue;
                    }
                    let (got, _) = measure_cascade(&s, fs, f);
                    assert!(
                        (got - want).abs() < 0.01,
                        "LR{order} {band:?} {f} Hz at {rate}: {got} vs {want}"
                    );
                }
            }
        }
    }
}

/// Any filter the config accepts, as (design, rate).
fn any_valid_design() -> impl Strategy<Value = (C, f64, String)> {
    (
        0usize..13,
        prop::sample::select(RATES.to_vec()),
        0.0f64..1.0,
        1e-3f64..100.0,
        -30.0f64..30.0,
        0.0f64..1.0,
    )
        .prop_map(|(kind, rate, fpos, q, g, s)| {
            let fs = f64::from(rate);
            // 1 Hz up to just below Nyquist, log-distributed.
            let f = (1.0f64.ln() + fpos * ((fs / 2.0 * 0.99999).ln())).exp();
            let c = match kind {
                0 => C::peak(fs, f, q, g),
                1 => C::low_shelf(fs, f, q, g),
                2 => C::high_shelf(fs, f, q, g),
                3 => C::lowpass(fs, f, q),
                4 => C::highpass(fs, f, q),
                5 => C::bandpass(fs, f, q),
                6 => C::notch(fs, f, q),
                7 => C::allpass(fs, f, q),
                8 => C::lowpass1(fs, f),
                9 => C::highpass1(fs, f),
                10 => C::low_shelf1(fs, f, g),
                11 => C::high_shelf1(fs, f, g),
                _ => {
                    // A slope the config accepts for this gain.
                    let slope = 1e-3 + s * 0.999;
                    if klang_dsp::biquad::shelf_slope_valid(slope, g) {
                        C::low_shelf_slope(fs, f, slope, g)
                    } else {
                        C::low_shelf_slope(fs, f, 1.0, g)
                    }
                }
            };
            (
                c,
                fs,
                format!("kind {kind} f {f} q {q} g {g} s {s} rate {rate}"),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(4000)))]

    #[test]
    fn every_valid_design_is_stable((c, _fs, what) in any_valid_design()) {
        prop_assert!(c.is_stable(), "unstable: {what}: {c:?}");
        // And it behaves: an impulse's response stays finite and decays.
        let mut b = klang_dsp::biquad::Biquad::new(c);
        let mut last = 0.0f64;
        for i in 0..2000 {
            last = b.process(if i == 0 { 1.0 } else { 0.0 });
            prop_assert!(last.is_finite());
        }
        prop_assert!(last.abs() < 1e3, "{what}: impulse response {last} after 2000 samples");
    }
}

#[test]
fn decaying_state_is_flushed_not_subnormal() {
    let fs = 48_000.0;
    let mut c = klang_dsp::cascade::Cascade::<2>::new(&[
        C::peak(fs, 1000.0, 0.7, 6.0),
        C::lowpass(fs, 5000.0, 0.7),
    ]);
    let mut frames = vec![[0.5f64, -0.5]; 256];
    c.process(&mut frames);
    let mut silent = vec![[0.0f64; 2]; 256];
    for _ in 0..200 {
        silent.fill([0.0; 2]);
        c.process(&mut silent);
        assert!(silent.iter().flatten().all(|v| *v == 0.0 || v.is_normal()));
    }
    assert!(
        silent.iter().flatten().all(|v| *v == 0.0),
        "tail should be flushed to exact zero"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(500)))]

    /// The skewed cascade (fill, steady state, drain) gives bit-identical
    /// results however the audio is cut into blocks, including blocks shorter
    /// than a group of sections.
    #[test]
    fn cascade_is_independent_of_block_sizes(
        n_sections in 0usize..19,
        cuts in prop::collection::vec(1usize..40, 1..30),
        seed in any::<u32>(),
    ) {
        let fs = 48_000.0;
        let sections: Vec<C> = (0..n_sections)
            .map(|i| C::peak(fs, 40.0 * 1.4f64.powi(i as i32), 1.0 + i as f64 * 0.1, if i % 2 == 0 { 4.0 } else { -3.0 }))
            .collect();
        let total: usize = cuts.iter().sum();
        let mut s = seed | 1;
        let input: Vec<[f64; 2]> = (0..total).map(|_| {
            s ^= s << 13; s ^= s >> 17; s ^= s << 5;
            let v = f64::from(s) / f64::from(u32::MAX) - 0.5;
            [v, -0.5 * v]
        }).collect();
        let mut whole = input.clone();
        klang_dsp::cascade::Cascade::<2>::new(&sections).process(&mut whole);
        let mut pieces = input.clone();
        let mut c = klang_dsp::cascade::Cascade::<2>::new(&sections);
        let mut at = 0;
        for n in cuts {
            c.process(&mut pieces[at..at + n]);
            at += n;
        }
        // And the plain one-section-at-a-time reference agrees bit for bit
        // (same arithmetic, same order).
        let mut reference = input;
        for sec in &sections {
            let mut l = klang_dsp::biquad::Biquad::new(*sec);
            let mut r = klang_dsp::biquad::Biquad::new(*sec);
            for f in reference.iter_mut() {
                f[0] = l.process(f[0]);
                f[1] = r.process(f[1]);
            }
        }
        prop_assert_eq!(&whole, &pieces);
        prop_assert_eq!(&whole, &reference);
    }
}
