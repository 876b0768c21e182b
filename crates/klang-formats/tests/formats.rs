//! Round trips (klang → format → klang keeps the response within 0.01 dB),
//! snapshots of every exported text, and import errors with line numbers.

use klang_dsp::config::{Config, Crossover, EqBand, FilterType, Slope};
use klang_dsp::response::{chain_response, log_frequencies};
use klang_formats::plan::Plan;
use klang_formats::{FormatError, apo, camilla, easyeffects, pipewire};

const FS: u32 = 48_000;

fn band(kind: FilterType, freq: f64, gain_db: f64, q: f64) -> EqBand {
    EqBand {
        kind,
        freq,
        gain_db,
        q,
        slope: None,
    }
}

/// Every second-order type, a slope shelf, graphic EQ, tone, low cut, preamp.
fn rich() -> Config {
    let mut c = Config {
        input_gain_db: -4.5,
        low_cut_hz: 25.0,
        ..Config::default()
    };
    c.tone.bass_db = 3.0;
    c.tone.treble_db = -2.0;
    c.eq = vec![
        band(FilterType::Peak, 105.0, -4.1, 0.7),
        EqBand {
            slope: Some(0.8),
            ..band(FilterType::Lowshelf, 80.0, 5.5, 0.7)
        },
        band(FilterType::Highshelf, 9000.0, -3.0, 0.9),
        band(FilterType::Lowpass, 19000.0, 0.0, 0.8),
        band(FilterType::Highpass, 20.0, 0.0, 1.1),
        band(FilterType::Bandpass, 1000.0, 0.0, 0.3),
        band(FilterType::Notch, 3000.0, 0.0, 8.0),
        band(FilterType::Allpass, 500.0, 0.0, 1.0),
    ];
    c.graphic_eq.gains_db[3] = 4.0;
    c.graphic_eq.gains_db[8] = -6.0;
    c.graphic_eq.gains_db[12] = 2.5;
    c
}

fn with_first_order(mut c: Config) -> Config {
    c.eq.push(band(FilterType::Lowshelf1, 200.0, 2.0, 0.7));
    c.eq.push(band(FilterType::Highshelf1, 6000.0, -1.5, 0.7));
    c
}

fn with_sub(mut c: Config, slope: Slope) -> Config {
    c.crossover = Some(Crossover {
        freq: 90.0,
        slope,
        sub_gain_db: 2.0,
        sub_delay_ms: 0.0,
    });
    c.trim_db.l = -1.0;
    c.trim_db.r = -0.5;
    c.trim_db.sub = 1.5;
    c
}

fn freqs() -> Vec<f64> {
    log_frequencies(200, 20.0, 20_000.0)
}

/// Largest difference between two configs' responses (every output), at 0 dB volume.
fn max_diff(a: &Config, b: &Config) -> f64 {
    let f = freqs();
    let ra = chain_response(a, FS, 0.0, &f).unwrap();
    let rb = chain_response(b, FS, 0.0, &f).unwrap();
    assert_eq!(ra.len(), rb.len(), "same outputs");
    ra.iter()
        .zip(&rb)
        .flat_map(|(x, y)| {
            x.magnitude_db
                .iter()
                .zip(&y.magnitude_db)
                .map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f64::max)
}

#[test]
fn plan_reproduces_chain_response_with_and_without_sub() {
    for c in [
        with_first_order(rich()),
        with_sub(rich(), Slope::LR4),
        with_sub(rich(), Slope::LR8),
        with_sub(rich(), Slope::BW2),
        with_sub(rich(), Slope::LR2),
    ] {
        let plan = Plan::new(&c, FS);
        let f = freqs();
        let r = chain_response(&c, FS, 0.0, &f).unwrap();
        for (k, &fk) in f.iter().enumerate() {
            let (main, sub) = plan.response_db(f64::from(FS), fk);
            assert!((main - r[0].magnitude_db[k]).abs() < 1e-6, "L at {fk} Hz");
            if let Some(s) = sub {
                assert!((s - r[2].magnitude_db[k]).abs() < 1e-6, "SUB at {fk} Hz");
            }
        }
    }
}

#[test]
fn apo_parametric_round_trip_keeps_response() {
    let c = with_first_order(rich());
    let text = apo::export_parametric(&c, FS).unwrap();
    let back = klang_dsp::apo::parse(&text).unwrap();
    let d = max_diff(&c, &back);
    assert!(d < 0.01, "max difference {d} dB");
    insta::assert_snapshot!("apo_parametric", text);
}

#[test]
fn apo_cannot_carry_crossover_or_first_order_pass() {
    let e = apo::export_parametric(&with_sub(rich(), Slope::LR4), FS).unwrap_err();
    assert!(e.to_string().contains("crossover"), "{e}");
    let mut c = rich();
    c.eq.push(band(FilterType::Lowpass1, 5000.0, 0.0, 0.7));
    let e = apo::export_parametric(&c, FS).unwrap_err();
    assert!(e.to_string().contains("eq[8]"), "{e}");
}

#[test]
fn graphic_eq_round_trip_through_graphiceq_line() {
    let mut c = Config {
        input_gain_db: -3.0,
        ..Config::default()
    };
    c.graphic_eq.gains_db = [
        3.0, 2.0, 1.0, 0.0, -1.0, -2.0, -3.0, -2.0, 0.0, 2.0, 4.0, 5.0, 3.0, 1.0, -2.0,
    ];
    let text = apo::export_graphic(&c, FS).unwrap();
    let imported = apo::import_graphic(&text).unwrap();
    assert_eq!(imported.config.input_gain_db, -3.0);
    for (a, b) in imported
        .config
        .graphic_eq
        .gains_db
        .iter()
        .zip(&c.graphic_eq.gains_db)
    {
        assert!((a - b).abs() < 0.02, "slider {a} vs {b}");
    }
    // Sliders within 0.02 dB of the originals: the response follows within 0.05 dB.
    let d = max_diff(&c, &imported.config);
    assert!(d < 0.05, "max difference {d} dB");
    assert!(
        imported.max_error_db < 0.05,
        "reported error {}",
        imported.max_error_db
    );
    insta::assert_snapshot!("apo_graphic", text);
}

#[test]
fn graphiceq_import_reports_its_fitting_error_and_clamps() {
    // A narrow AutoEq-style dip between two centres and a 15 dB boost klang cannot reach.
    let text = "Preamp: -6 dB\nGraphicEQ: 20 15; 60 15; 80 0; 1000 0; 1100 -8; 1200 0; 20000 0\n";
    let imp = apo::import_graphic(text).unwrap();
    assert_eq!(imp.config.graphic_eq.gains_db[0], 12.0);
    assert_eq!(imp.clamped, vec![0]);
    assert!(
        imp.max_error_db > 3.0,
        "a dip narrower than the bands is lost: {}",
        imp.max_error_db
    );
}

#[test]
fn graphiceq_import_errors_have_lines() {
    let e = apo::import_graphic("# comment\nPreamp: -3 dB\nGraphicEQ: 20 1; 30 x\n").unwrap_err();
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.to_string().contains("point 2"), "{e}");
    let e = apo::import_graphic("GraphicEQ: 100 1; 50 2\n").unwrap_err();
    assert!(e.to_string().contains("increasing"), "{e}");
    let e = apo::import_graphic("Preamp: -3 dB\n").unwrap_err();
    assert!(e.to_string().contains("no `GraphicEQ:`"), "{e}");
    let e = apo::import_graphic("\nFilter 1: ON PK Fc 100 Hz Gain 1 dB Q 1\n").unwrap_err();
    assert_eq!(e.line(), Some(2));
}

#[test]
fn easyeffects_round_trip_keeps_response() {
    let mut c = rich();
    c.trim_db.l = -1.0;
    c.trim_db.r = -1.0;
    let text = easyeffects::export(&c, FS).unwrap();
    let back = easyeffects::import(&text).unwrap();
    let d = max_diff(&c, &back);
    assert!(d < 0.01, "max difference {d} dB");
    insta::assert_snapshot!("easyeffects", text);
}

#[test]
fn easyeffects_imports_a_real_preset_shape() {
    // As EasyEffects 7 writes it (extra keys it added over the years are ignored).
    let text = r#"{
    "output": {
        "blocklist": [],
        "equalizer#0": {
            "balance": 0.0,
            "bypass": false,
            "input-gain": -2.0,
            "left": {
                "band0": { "frequency": 105.0, "gain": -4.1, "mode": "APO (DR)", "mute": false, "q": 0.7, "slope": "x1", "solo": false, "type": "Bell", "width": 4.0 },
                "band1": { "frequency": 8000.0, "gain": 2.0, "mode": "APO (DR)", "mute": true, "q": 0.7, "slope": "x1", "solo": false, "type": "Hi-shelf", "width": 4.0 }
            },
            "mode": "IIR",
            "num-bands": 2,
            "output-gain": -1.0,
            "pitch-left": 0.0,
            "pitch-right": 0.0,
            "right": {},
            "split-channels": false
        },
        "plugins_order": ["equalizer#0"]
    }
}"#;
    let c = easyeffects::import(text).unwrap();
    assert_eq!(c.input_gain_db, -3.0);
    assert_eq!(c.eq, vec![band(FilterType::Peak, 105.0, -4.1, 0.7)]);
}

#[test]
fn easyeffects_import_errors_have_lines() {
    let good = easyeffects::export(&rich(), FS).unwrap();
    let bad_type = good.replacen("\"Bell\"", "\"Wobble\"", 1);
    let e = easyeffects::import(&bad_type).unwrap_err();
    let line = bad_type.lines().position(|l| l.contains("Wobble")).unwrap() + 1;
    assert_eq!(e.line(), Some(line), "{e}");
    let out_of_range = good.replacen("\"frequency\": 105.0", "\"frequency\": 99999.0", 1);
    let e = easyeffects::import(&out_of_range).unwrap_err();
    assert!(matches!(e, FormatError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("freq"), "{e}");
    let e = easyeffects::import("{\n  \"output\": {\n    \"equalizer#0\": [\n").unwrap_err();
    assert!(e.line().unwrap() >= 3, "{e}");
    let e = easyeffects::import(&good.replacen("\"x1\"", "\"x3\"", 1)).unwrap_err();
    assert!(e.to_string().contains("slope"), "{e}");
}

#[test]
fn easyeffects_cannot_carry_first_order_or_sub() {
    assert!(easyeffects::export(&with_first_order(rich()), FS).is_err());
    assert!(easyeffects::export(&with_sub(rich(), Slope::LR4), FS).is_err());
}

#[test]
fn camilla_snapshots() {
    insta::assert_snapshot!(
        "camilla_plain",
        camilla::export(&with_first_order(rich()), FS).unwrap()
    );
    let mut c = with_sub(rich(), Slope::LR2);
    c.crossover.as_mut().unwrap().sub_delay_ms = 2.5;
    c.loudness.enabled = true;
    insta::assert_snapshot!("camilla_sub", camilla::export(&c, FS).unwrap());
}

/// `rich()` with slope-1 shelves (Q 1/√2), which PipeWire 0.3.65 can carry.
fn rich_for_pipewire() -> Config {
    let mut c = rich();
    c.eq[1].slope = None;
    c.eq[1].q = std::f64::consts::FRAC_1_SQRT_2;
    c.eq[2].q = std::f64::consts::FRAC_1_SQRT_2;
    c
}

#[test]
fn pipewire_snapshots_and_limits() {
    let opts = pipewire::Options::default();
    let e = pipewire::export(&rich(), FS, &opts).unwrap_err();
    assert!(
        e.to_string().contains("eq[1]") && e.to_string().contains("slope"),
        "{e}"
    );
    let plain = pipewire::export(&rich_for_pipewire(), FS, &opts).unwrap();
    insta::assert_snapshot!("pipewire_plain", plain);
    let sub = with_sub(rich_for_pipewire(), Slope::LR4);
    insta::assert_snapshot!("pipewire_sub", pipewire::export(&sub, FS, &opts).unwrap());
    for slope in [Slope::LR2, Slope::LR8, Slope::BW4] {
        let e = pipewire::export(&with_sub(rich_for_pipewire(), slope), FS, &opts).unwrap_err();
        assert!(e.to_string().contains("crossover"), "{slope:?}: {e}");
    }
    let mut delayed = sub;
    delayed.crossover.as_mut().unwrap().sub_delay_ms = 1.0;
    let e = pipewire::export(&delayed, FS, &opts).unwrap_err();
    assert!(e.to_string().contains("sub_delay_ms"), "{e}");
}

/// PipeWire 0.3.65's lowpass (WebAudio's) takes a resonance in dB; check our
/// mapping gives the cookbook filter by computing WebAudio's coefficients.
#[test]
fn webaudio_resonance_mapping_gives_the_cookbook_lowpass() {
    let fs = 48_000.0;
    for q in [std::f64::consts::FRAC_1_SQRT_2, 0.9, 1.307, 3.0] {
        let r = pipewire::resonance_db(q).unwrap();
        let f0 = 1000.0;
        let cutoff = f0 * 2.0 / fs;
        let g = 10f64.powf(0.05 * r);
        let d = ((4.0 - (16.0 - 16.0 / (g * g)).sqrt()) / 2.0).sqrt();
        let theta = std::f64::consts::PI * cutoff;
        let sn = 0.5 * d * theta.sin();
        let beta = 0.5 * (1.0 - sn) / (1.0 + sn);
        let gamma = (0.5 + beta) * theta.cos();
        let alpha = 0.25 * (0.5 + beta - gamma);
        let rbj = klang_dsp::biquad::BiquadCoefficients::lowpass(fs, f0, q);
        assert!((2.0 * alpha - rbj.b0).abs() < 1e-9, "q {q}");
        assert!((-2.0 * gamma - rbj.a1).abs() < 1e-9, "q {q}");
        assert!((2.0 * beta - rbj.a2).abs() < 1e-9, "q {q}");
    }
    assert!(pipewire::resonance_db(0.54).is_none());
}

#[test]
fn import_detects_every_importable_format_and_export_round_trips() {
    use klang_formats::{Format, export, import};
    let c = rich();
    for (format, carried) in [
        (Format::Klang, true),
        (Format::ApoParametric, true),
        (Format::EasyEffects, true),
        (Format::ApoGraphic, false),
    ] {
        let text = export(&c, format, FS).unwrap();
        let imported = import(&text).unwrap();
        assert_eq!(imported.format, format);
        if carried {
            let d = max_diff(&c, &imported.config);
            assert!(d < 0.01, "{format:?}: {d} dB");
        } else {
            // The graphic EQ import is an approximation, with its error reported.
            assert!(imported.fit_error_db.unwrap() > 0.0);
        }
    }
    assert_eq!(Format::from_name("EasyEffects"), Some(Format::EasyEffects));
    assert_eq!(Format::from_name("wav"), None);
    let e = import("[tone]\nbass_db = 99.0\n").unwrap_err();
    assert_eq!(e.line(), Some(2), "{e}");
}

/// Found by the round-trip property: alternating ±12 dB sliders make klang's
/// graphic solver use sections beyond klang's ±30 dB band limit. APO carries
/// them; klang's own APO importer refuses them, at the line, with the limit.
#[test]
fn extreme_graphic_eq_exports_but_klang_refuses_to_import_it() {
    let mut c = Config::default();
    for (i, g) in c.graphic_eq.gains_db.iter_mut().enumerate() {
        *g = if i % 2 == 0 { 12.0 } else { -12.0 };
    }
    let plan = Plan::new(&c, FS);
    let worst = plan
        .shared
        .iter()
        .map(|s| s.gain_db.abs())
        .fold(0.0, f64::max);
    let text = apo::export_parametric(&c, FS).unwrap();
    assert!(
        worst > klang_dsp::config::MAX_EQ_GAIN_DB,
        "worst section {worst} dB"
    );
    let e = klang_dsp::apo::parse(&text).unwrap_err();
    assert!(e.message.contains("out of range"), "{e}");
}

#[test]
fn easyeffects_input_presets_and_the_old_equalizer_key_load() {
    let text = r#"{ "input": { "equalizer": {
        "num-bands": 1, "split-channels": false,
        "left": { "band0": { "type": "Lo-shelf", "mode": "RLC (BT)", "frequency": 120.0, "gain": 3.0, "q": 0.8, "slope": "x1", "solo": false, "mute": false } },
        "right": { "band0": { "type": "Off", "frequency": 50.0 } }
    } } }"#;
    let c = easyeffects::import(text).unwrap();
    assert_eq!(c.eq, vec![band(FilterType::Lowshelf, 120.0, 3.0, 0.8)]);
}
