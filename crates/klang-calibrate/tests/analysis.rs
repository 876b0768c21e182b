//! Microphone calibration, targets, smoothing, averaging and the fit on
//! responses whose answer is known.

use klang_calibrate::*;
use klang_dsp::biquad::BiquadCoefficients;

const FS: u32 = 48_000;

fn response(db: impl Fn(f64) -> f64) -> FrequencyResponse {
    let freqs_hz = log_grid(10.0, 20_000.0, 48);
    FrequencyResponse {
        db: freqs_hz.iter().map(|&f| db(f)).collect(),
        phase_deg: vec![0.0; freqs_hz.len()],
        freqs_hz,
        fine: None,
    }
}

#[test]
fn a_mic_calibration_file_is_read_with_headers_comments_and_separators() {
    let text = "\"Sens Factor =-1.378dB, SERNO: 7000000\"\n* REW style comment\nFreq(Hz) SPL(dB) Phase\n# another\n20, -1.5, 0\n100\t0.0\n1000 0.5 3.0\n\n10000;2.0\n";
    let cal = MicCalibration::parse(text).unwrap();
    assert_eq!(
        cal.points,
        vec![(20.0, -1.5), (100.0, 0.0), (1000.0, 0.5), (10000.0, 2.0)]
    );
    assert!(
        (cal.db_at(10.0) + 1.5).abs() < 1e-12,
        "flat below the first point"
    );
    assert!(
        (cal.db_at(316.227_766) - 0.25).abs() < 1e-6,
        "log interpolation"
    );
    let r = response(|_| 0.0);
    let applied = cal.apply(&r);
    let i = r
        .freqs_hz
        .iter()
        .position(|&f| (f - 10_240.0).abs() < 1.0)
        .unwrap();
    assert!(
        (applied.db[i] + 2.0).abs() < 1e-9,
        "the mic's +2 dB is removed"
    );
}

#[test]
fn a_bad_mic_calibration_line_is_named() {
    let cases = [
        ("20 0\n10 1\n", 2, "not above"),
        ("20 0\n30 x\n", 2, "not a dB value"),
        ("20 0\n30\n", 2, "missing"),
        ("20 0\nabc 1\n", 2, "not a frequency"),
        ("# only comments\n", 1, "no `frequency dB` lines"),
        ("20 0\n-5 1\n", 2, "above 0 Hz"),
    ];
    for (text, line, words) in cases {
        let e = MicCalibration::parse(text).unwrap_err();
        match &e {
            CalibrateError::PointsFile { line: l, .. } => assert_eq!(*l, line, "{e}"),
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains(words), "{e}");
        assert!(
            e.to_string().starts_with("microphone calibration line"),
            "{e}"
        );
    }
}

#[test]
fn target_curves_have_the_promised_shape() {
    let house = Target::House {
        bass_db: 6.0,
        bass_corner_hz: 100.0,
        tilt_db_per_octave: -0.5,
    };
    house.validate().unwrap();
    assert!((house.db_at(100.0) - (3.0 - 0.5 * (0.1f64).log2())).abs() < 1e-9);
    assert!((house.db_at(10.0) - 6.0).abs() < 0.1 + 0.5 * 6.7);
    assert!(
        (house.db_at(2000.0) + 0.5).abs() < 0.02,
        "one octave above 1 kHz"
    );
    assert_eq!(Target::Flat.db_at(37.0), 0.0);
    let pts = Target::parse_points("20 4\n200 0\n").unwrap();
    assert!((pts.db_at(63.245_553) - 2.0).abs() < 1e-6);
    assert_eq!(pts.db_at(5.0), 4.0);
    assert!(
        Target::House {
            bass_db: 50.0,
            bass_corner_hz: 100.0,
            tilt_db_per_octave: 0.0
        }
        .validate()
        .is_err()
    );
    let e = Target::parse_points("20 4\n10 0\n").unwrap_err();
    assert!(e.to_string().starts_with("target curve line 2"), "{e}");
}

#[test]
fn power_average_of_two_positions() {
    let a = response(|_| 0.0);
    let b = response(|_| -200.0);
    let avg = average(&[a.clone(), b]).unwrap();
    assert!(avg.db.iter().all(|d| (d + 3.0103).abs() < 1e-3));
    assert!(average(&[]).is_err());
    let mut other = a.clone();
    other.freqs_hz[3] += 1.0;
    assert!(matches!(
        average(&[a, other]),
        Err(CalibrateError::Average { .. })
    ));
}

/// A room-like response made of klang's own peaking filters.
fn peaks(list: &[(f64, f64, f64)]) -> FrequencyResponse {
    let fs = f64::from(FS);
    response(|f| {
        list.iter()
            .map(|&(f0, g, q)| BiquadCoefficients::peak(fs, f0, q, g).magnitude_db(fs, f))
            .sum()
    })
}

#[test]
fn the_fit_cuts_known_peaks_back_to_flat() {
    let measured = peaks(&[(45.0, 9.0, 5.0), (110.0, 6.0, 3.0), (190.0, 4.0, 8.0)]);
    // Level from above the peaks, where the response is flat at 0 dB.
    let opts = FitOptions {
        level_band_hz: Some((400.0, 2_000.0)),
        ..FitOptions::new(FS)
    };
    let c = fit(&measured, &Target::Flat, &opts).unwrap();
    assert!(c.level_db.abs() < 0.05, "level {}", c.level_db);
    assert!(c.bands.iter().all(|b| b.gain_db < 0.0), "only cuts needed");
    println!("{}", c.table());
    assert!(c.bands.len() <= 10);
    assert!(c.after_db.1 < 0.3, "after: {:?}", c.after_db);
    assert!(c.before_db.1 > 8.0);
    for b in &c.bands {
        assert!(b.gain_db <= 3.0 && b.gain_db >= -12.0);
        assert!((20.0..=300.0).contains(&b.freq));
    }
}

#[test]
fn boosts_stay_within_the_limit_and_the_preamp_covers_them() {
    // A broad 8 dB dip: at most 3 dB may be boosted back.
    let measured = peaks(&[(80.0, -8.0, 1.0)]);
    let c = fit(&measured, &Target::Flat, &FitOptions::new(FS)).unwrap();
    let fs = f64::from(FS);
    let total = |f: f64| -> f64 {
        c.bands
            .iter()
            .map(|b| BiquadCoefficients::peak(fs, b.freq, b.q, b.gain_db).magnitude_db(fs, f))
            .sum()
    };
    let max = log_grid(10.0, 20_000.0, 48)
        .into_iter()
        .map(total)
        .fold(0.0f64, f64::max);
    assert!(max <= 3.0 + 0.05, "combined boost {max} dB");
    assert!(max > 1.0, "the dip is partly filled ({max} dB)");
    assert!(
        (c.preamp_db + max).abs() < 0.06,
        "preamp {} for boost {max}",
        c.preamp_db
    );
}

#[test]
fn the_correction_is_written_as_klang_config_and_equalizer_apo() {
    let measured = peaks(&[(50.0, 8.0, 4.0), (130.0, -5.0, 2.0)]);
    let c = fit(&measured, &Target::Flat, &FitOptions::new(FS)).unwrap();
    let toml = c.to_config().to_toml();
    let back = klang_dsp::parse_preset(&toml).unwrap();
    assert_eq!(back.eq, c.bands);
    assert_eq!(back.input_gain_db, c.preamp_db);
    back.validate_for_rate(FS).unwrap();
    assert_eq!(klang_dsp::apo::parse(&c.to_apo()).unwrap().eq, c.bands);

    // The text itself, on fixed values (the fit's last digits are not the point).
    let band = |freq: f64, gain_db: f64, q: f64| klang_dsp::config::EqBand {
        kind: klang_dsp::config::FilterType::Peak,
        freq,
        gain_db,
        q,
        slope: None,
    };
    let fixed = Correction {
        bands: vec![band(49.9, -8.06, 3.833), band(112.0, 2.5, 2.35)],
        preamp_db: -2.5,
        ..c
    };
    let apo = fixed.to_apo();
    assert_eq!(klang_dsp::apo::parse(&apo).unwrap().eq, fixed.bands);
    insta::assert_snapshot!("apo", apo);
}

#[test]
fn bad_fit_options_are_refused_with_their_name() {
    let measured = peaks(&[(50.0, 8.0, 4.0)]);
    let opts = FitOptions {
        range_hz: (300.0, 20.0),
        ..FitOptions::new(FS)
    };
    let e = fit(&measured, &Target::Flat, &opts).unwrap_err();
    assert!(e.to_string().starts_with("invalid fit range"), "{e}");
    let opts = FitOptions {
        max_boost_db: -1.0,
        ..FitOptions::new(FS)
    };
    assert!(
        fit(&measured, &Target::Flat, &opts)
            .unwrap_err()
            .to_string()
            .starts_with("invalid maximum boost")
    );
}

#[test]
fn target_specs_from_the_command_line() {
    assert_eq!(Target::from_spec("flat").unwrap(), Target::Flat);
    assert_eq!(
        Target::from_spec("house").unwrap(),
        Target::House {
            bass_db: 6.0,
            bass_corner_hz: 120.0,
            tilt_db_per_octave: 0.0
        }
    );
    assert_eq!(
        Target::from_spec("house:4:80:-0.5").unwrap(),
        Target::House {
            bass_db: 4.0,
            bass_corner_hz: 80.0,
            tilt_db_per_octave: -0.5
        }
    );
    for (spec, words) in [
        ("house:x", "not a number"),
        ("house:1:2:3:4", "too many fields"),
        ("house:40", "not within ±20 dB"),
        ("pink", "is not `flat`"),
        ("flat:3", "is not `flat`"),
    ] {
        let e = Target::from_spec(spec).unwrap_err().to_string();
        assert!(e.contains(words), "{spec}: {e}");
    }
}
