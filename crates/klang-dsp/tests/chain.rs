//! The whole chain, measured: crossover sum, graphic EQ centres, loudness
//! against ISO 226, the limiter's ceiling, the volume ramp.

// Tests build configs by changing a few fields of the default, which reads best.
#![allow(clippy::field_reassign_with_default)]

mod common;

use common::{RATES, heavy_cases, measure_cascade, measure_chain};
use klang_dsp::config::{Crossover, EqBand, FilterType, GRAPHIC_EQ_FREQS, Slope};
use klang_dsp::loudness::{FIT_RANGE, ISO_FREQS, iso_compensation};
use klang_dsp::response::{chain_response, log_frequencies};
use klang_dsp::{Chain, Config};
use proptest::prelude::*;

fn flat() -> Config {
    let mut c = Config::default();
    c.volume.default_db = 0.0;
    c.limiter.ceiling_db = 0.0;
    c
}

fn with_crossover(slope: Slope) -> Config {
    let mut c = flat();
    c.crossover = Some(Crossover {
        freq: 80.0,
        slope,
        ..Crossover::default()
    });
    c
}

#[test]
fn measured_self_check() {
    // The measuring helper itself: a +6 dB peak at 1 kHz measures +6 dB.
    let c = klang_dsp::biquad::BiquadCoefficients::peak(48_000.0, 1000.0, 1.0, 6.0);
    let (g, _) = measure_cascade(&[c], 48_000.0, 1000.0);
    assert!((g - 6.0).abs() < 1e-6, "{g}");
}

#[test]
fn lr4_and_lr8_mains_plus_sub_sum_flat_within_0_1_db() {
    for rate in RATES {
        for slope in [Slope::LR2, Slope::LR4, Slope::LR8] {
            let c = with_crossover(slope);
            let freqs = log_frequencies(200, 10.0, 20_000.0);
            let r = chain_response(&c, rate, 0.0, &freqs).unwrap();
            for (i, f) in freqs.iter().enumerate() {
                let h = |o: usize| {
                    let m = 10f64.powf(r[o].magnitude_db[i] / 20.0);
                    let p = r[o].phase_deg[i].to_radians();
                    (m * p.cos(), m * p.sin())
                };
                let (l, s) = (h(0), h(2));
                let sum = 20.0 * (l.0 + s.0).hypot(l.1 + s.1).log10();
                assert!(
                    sum.abs() < 0.1,
                    "{slope:?} at {rate}: sum {sum:.3} dB at {f:.1} Hz"
                );
            }
            // And measured through the processor, around the crossover.
            for f in [30.0, 60.0, 80.0, 110.0, 200.0] {
                let m = measure_chain(&c, rate, 0.0, f, 0.25, rate as usize);
                let (ml, pl) = m[0];
                let (ms, ps) = m[2];
                let (al, as_) = (10f64.powf(ml / 20.0), 10f64.powf(ms / 20.0));
                let sum = 20.0
                    * (al * pl.cos() + as_ * ps.cos())
                        .hypot(al * pl.sin() + as_ * ps.sin())
                        .log10();
                assert!(
                    sum.abs() < 0.1,
                    "{slope:?} measured at {rate}: {sum:.3} dB at {f} Hz"
                );
                // The measured outputs equal the analytic ones.
                let r = chain_response(&c, rate, 0.0, &[f]).unwrap();
                assert!(
                    (ml - r[0].magnitude_db[0]).abs() < 0.01
                        && (ms - r[2].magnitude_db[0]).abs() < 0.01
                );
            }
        }
    }
}

#[test]
fn sub_gain_delay_and_trim_act_on_their_outputs() {
    let mut c = with_crossover(Slope::LR4);
    let x = c.crossover.as_mut().unwrap();
    x.sub_gain_db = 6.0;
    x.sub_delay_ms = 2.0;
    c.trim_db.l = -3.0;
    let r = chain_response(&c, 48_000, -10.0, &[20.0, 5000.0]).unwrap();
    assert!((r[0].magnitude_db[1] - (-13.0)).abs() < 0.01);
    assert!((r[1].magnitude_db[1] - (-10.0)).abs() < 0.01);
    assert!(
        (r[2].magnitude_db[0] - (-4.0)).abs() < 0.2,
        "{}",
        r[2].magnitude_db[0]
    );
    // The delay shows up in the measured phase as well as the analytic one.
    let m = measure_chain(&c, 48_000, -10.0, 20.0, 0.1, 48_000);
    assert!((m[2].0 - r[2].magnitude_db[0]).abs() < 0.01);
    let dphi = (m[2].1 - r[2].phase_deg[0].to_radians()).rem_euclid(2.0 * std::f64::consts::PI);
    assert!(
        dphi.min(2.0 * std::f64::consts::PI - dphi) < 1e-3,
        "phase off by {dphi}"
    );
}

#[test]
fn graphic_eq_one_slider_and_measured() {
    let mut c = flat();
    c.graphic_eq.gains_db[6] = 12.0;
    c.graphic_eq.gains_db[7] = -12.0;
    c.graphic_eq.gains_db[13] = 9.0;
    c.graphic_eq.gains_db[14] = -12.0;
    for rate in RATES {
        for (i, &f) in GRAPHIC_EQ_FREQS.iter().enumerate() {
            let m = measure_chain(&c, rate, 0.0, f, 0.05, rate as usize);
            assert!(
                (m[0].0 - c.graphic_eq.gains_db[i]).abs() < 0.5,
                "{f} Hz at {rate}: {}",
                m[0].0
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(heavy_cases(300)))]

    #[test]
    fn graphic_eq_centres_within_0_5_db(
        gains in prop::array::uniform15(-12.0f64..=12.0),
        rate in prop::sample::select(RATES.to_vec()),
    ) {
        let mut c = flat();
        c.graphic_eq.gains_db = gains;
        let r = chain_response(&c, rate, 0.0, &GRAPHIC_EQ_FREQS).unwrap();
        for (i, f) in GRAPHIC_EQ_FREQS.iter().enumerate() {
            let err = r[0].magnitude_db[i] - gains[i];
            prop_assert!(err.abs() < 0.5, "{f} Hz at {rate}: set {:.2}, got {:.2}", gains[i], r[0].magnitude_db[i]);
        }
    }
}

#[test]
fn loudness_follows_iso_226_within_1_db() {
    let mut worst = 0.0f64;
    for rate in RATES {
        for ref_phon in [80.0, 70.0] {
            let mut c = flat();
            c.loudness.enabled = true;
            c.loudness.reference_db = -20.0;
            c.loudness.reference_phon = ref_phon;
            let freqs: Vec<f64> = FIT_RANGE.map(|i| ISO_FREQS[i]).collect();
            for below in [
                0.0, 0.5, 1.0, 3.0, 7.5, 10.0, 15.0, 20.0, 25.5, 30.0, 40.0, 50.0, 60.0,
            ] {
                let listen = ref_phon - below;
                if listen < 20.0 {
                    continue;
                }
                let vol = -20.0 - below;
                let r = chain_response(&c, rate, vol, &freqs).unwrap();
                for (k, i) in FIT_RANGE.enumerate() {
                    let want = iso_compensation(listen, ref_phon, i);
                    let got = r[0].magnitude_db[k] - vol;
                    worst = worst.max((got - want).abs());
                    assert!(
                        (got - want).abs() <= 1.0,
                        "rate {rate}, ref {ref_phon} phon, {below} dB below: {} Hz wants {want:.2}, got {got:.2}",
                        ISO_FREQS[i]
                    );
                }
                let at_1k =
                    r[0].magnitude_db[FIT_RANGE.clone().position(|i| i == 17).unwrap()] - vol;
                assert!(at_1k.abs() < 0.1, "1 kHz not normalised: {at_1k}");
            }
            eprintln!("loudness: worst deviation from ISO 226 so far {worst:.3} dB");
            // None at or above the reference.
            for vol in [-20.0, -10.0, 0.0] {
                let r = chain_response(&c, rate, vol, &freqs).unwrap();
                for m in &r[0].magnitude_db {
                    assert!(
                        (m - vol).abs() < 1e-9,
                        "compensation above the reference: {m} at {vol}"
                    );
                }
            }
        }
    }
}

#[test]
fn loudness_measured_through_the_processor() {
    let mut c = flat();
    c.loudness.enabled = true;
    let r = chain_response(&c, 48_000, -50.0, &[40.0, 1000.0, 10_000.0]).unwrap();
    for (k, f) in [40.0, 1000.0, 10_000.0].into_iter().enumerate() {
        let m = measure_chain(&c, 48_000, -50.0, f, 0.01, 96_000);
        assert!(
            (m[0].0 - r[0].magnitude_db[k]).abs() < 0.01,
            "{f}: {} vs {}",
            m[0].0,
            r[0].magnitude_db[k]
        );
    }
}

fn any_band() -> impl Strategy<Value = EqBand> {
    (0usize..8, 20.0f64..20_000.0, -30.0f64..30.0, 0.1f64..20.0).prop_map(
        |(k, freq, gain_db, q)| {
            let kind = [
                FilterType::Peak,
                FilterType::Lowshelf,
                FilterType::Highshelf,
                FilterType::Lowpass,
                FilterType::Highpass,
                FilterType::Bandpass,
                FilterType::Notch,
                FilterType::Allpass,
            ][k];
            EqBand {
                kind,
                freq,
                gain_db: if kind.uses_gain() { gain_db } else { 0.0 },
                q,
                slope: None,
            }
        },
    )
}

fn any_loud_config() -> impl Strategy<Value = Config> {
    (
        prop::collection::vec(any_band(), 0..6),
        prop::array::uniform15(-12.0f64..=12.0),
        (
            -24.0f64..24.0,
            -40.0f64..0.0,
            -30.0f64..30.0,
            -30.0f64..30.0,
        ),
        (any::<bool>(), -24.0f64..24.0, 0.0f64..50.0, any::<bool>()),
        (-24.0f64..24.0, -24.0f64..24.0, -24.0f64..24.0),
        (0.0f64..=12.0, 1.0f64..500.0),
    )
        .prop_map(
            |(eq, geq, (ig, ceil, bass, treble), (xo, sg, sd, loud), (tl, tr, ts), (vol, rel))| {
                let mut c = Config::default();
                c.eq = eq;
                c.graphic_eq.gains_db = geq;
                c.input_gain_db = ig;
                c.limiter.ceiling_db = ceil;
                c.limiter.release_ms = rel;
                c.tone.bass_db = bass;
                c.tone.treble_db = treble;
                if xo {
                    c.crossover = Some(Crossover {
                        freq: 80.0,
                        slope: Slope::LR4,
                        sub_gain_db: sg,
                        sub_delay_ms: sd,
                    });
                }
                c.loudness.enabled = loud;
                c.trim_db.l = tl;
                c.trim_db.r = tr;
                c.trim_db.sub = ts;
                c.volume.max_db = vol;
                c.volume.default_db = vol;
                c
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(heavy_cases(64)))]

    #[test]
    fn output_never_above_the_ceiling(
        config in any_loud_config(),
        rate in prop::sample::select(RATES.to_vec()),
        seed in any::<u64>(),
    ) {
        let mut chain = Chain::new(&config, rate).unwrap();
        let ceiling = 10f64.powf(config.limiter.ceiling_db / 20.0);
        let ch = chain.output_channels();
        let mut s = seed | 1;
        let mut rnd = move || {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let frames = 4096;
        let mut out = vec![0f32; frames * ch];
        for block in 0..8 {
            // Full-scale noise, bursts, clipped square waves and silence.
            let input: Vec<f32> = (0..frames * 2).map(|i| match block % 4 {
                0 => rnd() as f32,
                1 => if (i / 2 / 50) % 2 == 0 { 1.0 } else { -1.0 },
                2 => if i % 997 < 2 { 1.0 } else { 0.0 },
                _ => (rnd() * 0.001) as f32,
            }).collect();
            if block == 5 {
                chain.set_volume_db(config.volume.max_db + 20.0);
            }
            chain.process(&input, &mut out);
            for (i, y) in out.iter().enumerate() {
                prop_assert!(f64::from(y.abs()) <= ceiling, "sample {i}: {y} above {ceiling}");
                prop_assert!(y.is_finite());
            }
        }
    }
}

#[test]
fn volume_ramp_has_no_steps_and_respects_the_maximum() {
    for rate in [44_100u32, 192_000] {
        let mut c = flat();
        c.volume.default_db = -40.0;
        c.volume.max_db = -6.0;
        c.volume.ramp_ms = 200.0;
        let mut chain = Chain::new(&c, rate).unwrap();
        let n = rate as usize / 2; // 500 ms
        let input = vec![0.5f32; 2 * n];
        let mut out = vec![0f32; 2 * n];
        chain.set_volume_db(0.0); // above the maximum: goes to −6 dB
        chain.process(&input, &mut out);
        let gains: Vec<f64> = out.chunks(2).map(|f| f64::from(f[0]) / 0.5).collect();
        let ramp = (0.2 * f64::from(rate)) as usize;
        // Each step is 34 dB / ramp frames; allow f32 rounding.
        let step_db = 34.0 / ramp as f64;
        for w in gains.windows(2) {
            let d = 20.0 * (w[1] / w[0]).log10();
            assert!(
                d >= -1e-4 && d <= step_db + 1e-4,
                "step of {d} dB (max {step_db})"
            );
        }
        assert!((20.0 * gains[ramp + 10].log10() + 6.0).abs() < 1e-4);
        assert!((20.0 * gains[n - 1].log10() + 6.0).abs() < 1e-4);
        assert!(
            (20.0 * gains[ramp / 2].log10() + 23.0).abs() < 0.01,
            "halfway: {}",
            20.0 * gains[ramp / 2].log10()
        );
        assert_eq!(chain.volume_db(), -6.0);
        chain.set_volume_db_now(-80.0);
        assert_eq!(chain.volume_db(), -80.0);
    }
}

#[test]
fn limiter_releases_smoothly_after_a_peak() {
    let mut c = flat();
    c.limiter.ceiling_db = -6.0;
    let mut chain = Chain::new(&c, 48_000).unwrap();
    let mut input = vec![0.1f32; 2 * 48_000];
    input[2000] = 1.0;
    input[2001] = 1.0;
    let mut out = vec![0f32; 2 * 48_000];
    chain.process(&input, &mut out);
    let ceiling = 10f64.powf(-6.0 / 20.0) as f32;
    assert!(out[2000] <= ceiling && out[2000] > ceiling * 0.999);
    // After the peak the gain recovers monotonically towards unity.
    let after: Vec<f32> = out[2002..].iter().step_by(2).copied().collect();
    assert!(after.windows(2).all(|w| w[1] >= w[0]));
    assert!((after.last().unwrap() - 0.1).abs() < 1e-4);
}

#[test]
fn non_finite_input_becomes_silence_not_nan() {
    let mut c = flat();
    c.graphic_eq.gains_db[2] = 6.0;
    c.crossover = Some(Crossover::default());
    let mut chain = Chain::new(&c, 48_000).unwrap();
    let mut input = vec![0.25f32; 2 * 2000];
    input[10] = f32::NAN;
    input[11] = f32::INFINITY;
    input[500] = f32::NEG_INFINITY;
    let mut out = vec![0f32; 3 * 2000];
    chain.process(&input, &mut out);
    assert!(out.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
}

#[test]
fn tone_changes_live_and_measures_as_set() {
    let mut chain = Chain::new(&flat(), 48_000).unwrap();
    assert!((chain.response(20.0)[0].db()).abs() < 1e-9);
    chain.set_tone_db(6.0, -4.0);
    assert_eq!(chain.tone_db(), (6.0, -4.0));
    let r = chain.response(20.0)[0].db();
    assert!((r - 6.0).abs() < 0.1, "bass {r}");
    let r = chain.response(20_000.0)[0].db();
    assert!((r + 4.0).abs() < 0.2, "treble {r}");
    // The same through the config, measured with sines.
    let mut c = flat();
    c.tone.bass_db = 6.0;
    c.tone.treble_db = -4.0;
    let m = measure_chain(&c, 48_000, 0.0, 100.0, 0.05, 48_000);
    let want = chain.response(100.0)[0].db();
    assert!((m[0].0 - want).abs() < 0.01, "{} vs {want}", m[0].0);
    chain.set_tone_db(0.0, f64::NAN);
    assert_eq!(chain.tone_db(), (0.0, -4.0));
}

#[test]
fn graphic_eq_all_sliders_up_is_a_flat_boost() {
    for rate in RATES {
        for g in [6.0, 12.0, -12.0] {
            let mut c = flat();
            c.graphic_eq.gains_db = [g; 15];
            let freqs = log_frequencies(300, 50.0, 16_000.0);
            let r = chain_response(&c, rate, 0.0, &freqs).unwrap();
            for (f, m) in freqs.iter().zip(&r[0].magnitude_db) {
                assert!(
                    (m - g).abs() < 0.75,
                    "all at {g} dB, {rate} Hz: {m:.2} dB at {f:.0} Hz"
                );
            }
        }
    }
}

#[test]
fn graphic_eq_alternating_extremes_hit_every_centre() {
    for rate in RATES {
        for start in [12.0, -12.0] {
            let mut c = flat();
            for (i, g) in c.graphic_eq.gains_db.iter_mut().enumerate() {
                *g = if i % 2 == 0 { start } else { -start };
            }
            let r = chain_response(&c, rate, 0.0, &GRAPHIC_EQ_FREQS).unwrap();
            for (i, m) in r[0].magnitude_db.iter().enumerate() {
                assert!(
                    (m - c.graphic_eq.gains_db[i]).abs() < 0.01,
                    "{rate}: band {i}: {m}"
                );
            }
        }
    }
}
