//! Presets: Equalizer APO / AutoEq / REW files and TOML configs, including
//! every kind of bad input, with line, field and a hint in the error.

mod common;

use common::measure_chain;
use klang_dsp::biquad::{BiquadCoefficients as C, q_from_bandwidth};
use klang_dsp::response::{chain_response, log_frequencies};
use klang_dsp::{Config, PresetError, apo, parse_preset};
use proptest::strategy::Strategy;

const AUTOEQ: &str = include_str!("fixtures/autoeq_bookshelf_ParametricEQ.txt");
const REW: &str = include_str!("fixtures/rew_room_eq.txt");

/// The filters the AutoEq fixture describes, written out by hand.
fn autoeq_filters(fs: f64) -> Vec<C> {
    vec![
        C::low_shelf(fs, 105.0, 0.70, 5.5),
        C::peak(fs, 105.0, 0.70, -4.1),
        C::peak(fs, 1378.0, 1.41, 2.3),
        C::peak(fs, 2745.0, 2.05, -3.6),
        C::peak(fs, 4920.0, 3.27, 4.9),
        C::peak(fs, 6512.0, 4.21, -2.8),
        C::peak(fs, 8250.0, 1.98, 1.8),
        C::peak(fs, 217.0, 1.01, -1.2),
        C::peak(fs, 3431.0, 5.20, 1.1),
        C::high_shelf(fs, 10000.0, 0.70, -3.9),
    ]
}

fn rew_filters(fs: f64) -> Vec<C> {
    let bw = std::f64::consts::FRAC_1_SQRT_2;
    vec![
        C::peak(fs, 42.5, 4.512, -7.8),
        C::peak(fs, 63.1, 6.010, -3.2),
        C::low_shelf_slope(fs, 90.0, 1.0, 2.0),
        C::highpass(fs, 20.0, bw),
        C::notch(fs, 50.0, 12.0),
        C::peak(fs, 1000.0, q_from_bandwidth(0.5), 1.5),
    ]
}

fn expected_db(filters: &[C], preamp: f64, fs: f64, f: f64) -> f64 {
    preamp + filters.iter().map(|c| c.magnitude_db(fs, f)).sum::<f64>()
}

#[test]
fn autoeq_file_gives_the_response_its_filters_describe() {
    for (text, filters, preamp) in [
        (AUTOEQ, autoeq_filters as fn(f64) -> Vec<C>, -6.2),
        (REW, rew_filters as fn(f64) -> Vec<C>, 0.0),
    ] {
        assert!(apo::looks_like_apo(text));
        let mut config = parse_preset(text).unwrap();
        config.volume.default_db = 0.0;
        config.limiter.ceiling_db = 0.0;
        for rate in [44_100, 48_000, 96_000] {
            let fs = f64::from(rate);
            let freqs = log_frequencies(120, 20.0, 20_000.0);
            let r = chain_response(&config, rate, 0.0, &freqs).unwrap();
            for (i, &f) in freqs.iter().enumerate() {
                let want = expected_db(&filters(fs), preamp, fs, f);
                assert!(
                    (r[0].magnitude_db[i] - want).abs() < 1e-6,
                    "{f} Hz: {} vs {want}",
                    r[0].magnitude_db[i]
                );
            }
            // And the processor agrees, measured with sines.
            for f in [100.0, 1378.0, 4920.0, 12_000.0] {
                let want = expected_db(&filters(fs), preamp, fs, f);
                let m = measure_chain(&config, rate, 0.0, f, 0.05, rate as usize);
                assert!(
                    (m[0].0 - want).abs() < 0.01,
                    "measured {f} Hz at {rate}: {} vs {want}",
                    m[0].0
                );
            }
        }
    }
}

#[test]
fn rew_file_skips_off_and_unused_bands() {
    let c = apo::parse(REW).unwrap();
    assert_eq!(c.eq.len(), 6);
    assert_eq!(c.input_gain_db, 0.0);
}

#[test]
fn apo_errors_name_the_line() {
    let cases = [
        (
            "Preamp: -3 dB\nFilter 1: ON PK Fc 100 Hz Gain -3 dB Q 0\n",
            2,
            "Q: Q 0 is invalid",
        ),
        (
            "\nPreamp: -99 dB\nFilter 1: ON PK Fc 100 Hz Gain -3 dB Q 1\n",
            2,
            "Preamp: -99 dB is out of range",
        ),
        (
            "Preamp: -3 dB\n\nFilter 1: ON XX Fc 100 Hz Gain -3 dB Q 1\n",
            3,
            "unknown filter type",
        ),
        ("Filter 1: ON PK Fc 100 Hz Q 1\n", 1, "needs a `Gain`"),
        ("Filter 1: ON PK Gain 3 dB Q 1\n", 1, "no `Fc`"),
        ("Preamp: loud\n", 1, "preamp"),
        (
            "Preamp: -1 dB\nChannel: L\nFilter 1: ON PK Fc 100 Hz Gain 1 dB Q 1\n",
            2,
            "not supported",
        ),
        ("Filter 1: ON PK Fc 100000 Hz Gain 1 dB Q 1\n", 1, "Nyquist"),
        (
            "Filter 1: ON PK Fc 100 Hz Gain 99 dB Q 1\n",
            1,
            "out of range",
        ),
        (
            "Filter 1: ON PK Fc 100 Hz Gain 1 dB Q 1 Wobble 3\n",
            1,
            "unexpected",
        ),
    ];
    for (text, line, needle) in cases {
        let e = parse_preset(text).unwrap_err();
        assert_eq!(e.line(), Some(line), "{text}: {e}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
        assert!(e.to_string().contains("help:"), "{e}");
    }
}

#[test]
fn loose_spacing_units_and_case() {
    let c = apo::parse("preamp:-2.5dB\nfilter:on pk fc 1 khz gain -1,5 db q 2\nFilter 2 : ON LSC 6dB Fc 200Hz Gain 3dB\n").unwrap();
    assert_eq!(c.input_gain_db, -2.5);
    assert_eq!(c.eq[0].freq, 1000.0);
    assert_eq!(c.eq[0].gain_db, -1.5);
    assert_eq!(c.eq[1].kind, klang_dsp::config::FilterType::Lowshelf1);
}

fn toml_err(text: &str) -> klang_dsp::ConfigError {
    match parse_preset(text).unwrap_err() {
        PresetError::Toml(e) => e,
        other => panic!("expected a TOML error, got {other}"),
    }
}

#[test]
fn toml_errors_have_line_column_field_and_help() {
    let cases: [(&str, usize, &str, &str); 13] = [
        (
            "[[eq]]\ntype = \"lowpass\"\nfreq = 100\ngain_db = 3\n",
            4,
            "eq[0].gain_db",
            "no effect",
        ),
        (
            "[tone]\nbass_db = nan\n",
            2,
            "tone.bass_db",
            "not a finite number",
        ),
        (
            "[tone]\nbass_db = inf\n",
            2,
            "tone.bass_db",
            "not a finite number",
        ),
        (
            "input_gain_db = 3\n[[eq]]\ntype = \"peak\"\nfreq = 96000\ngain_db = 1\n",
            4,
            "eq[0].freq",
            "Nyquist",
        ),
        (
            "[[eq]]\ntype = \"peak\"\nfreq = 100\n[[eq]]\ntype = \"notch\"\nfreq = 50\nq = 0\n",
            7,
            "eq[1].q",
            "Q 0 is invalid",
        ),
        (
            "[[eq]]\ntype = \"peak\"\nfreq = 100\ngain_db = 300\n",
            4,
            "eq[0].gain_db",
            "out of range",
        ),
        (
            "[graphic_eq]\ngains_db = [0,0,0,0,0,0,0,0,0,0,0,0,0,0,13]\n",
            2,
            "graphic_eq.gains_db[14]",
            "out of range",
        ),
        (
            "[volume]\nmax_db = -6\ndefault_db = 0\n",
            3,
            "volume.default_db",
            "out of range",
        ),
        (
            "[crossover]\nfreq = 80\nsub_delay_ms = 500\n",
            3,
            "crossover.sub_delay_ms",
            "out of range",
        ),
        (
            "[limiter]\nceiling_db = 3\n",
            2,
            "limiter.ceiling_db",
            "out of range",
        ),
        ("[tone]\nbas_db = 3.0\n", 2, "tone.bas_db", "unknown field"),
        (
            "low_cut_hz = 20\nwoofer = 1\n",
            2,
            "woofer",
            "unknown field",
        ),
        (
            "[crossover]\nslope = \"LR5\"\n",
            2,
            "crossover.slope",
            "unknown variant",
        ),
    ];
    for (text, line, field, needle) in cases {
        let e = toml_err(text);
        let shown = e.to_string();
        assert_eq!(e.line, Some(line), "{text}: {shown}");
        assert!(e.column.is_some(), "{shown}");
        assert_eq!(e.field, field, "{shown}");
        assert!(shown.contains(needle), "{shown}");
        assert!(!e.help.is_empty(), "{shown}");
    }
}

#[test]
fn rate_dependent_errors_can_be_located_in_the_text() {
    let text = "[tone]\ntreble_db = 2\ntreble_freq = 23000\n";
    let c = Config::from_toml(text).unwrap();
    assert!(c.validate_for_rate(96_000).is_ok());
    let e = c.validate_for_rate(44_100).unwrap_err().locate(text);
    assert_eq!((e.line, e.field.as_str()), (Some(3), "tone.treble_freq"));
    assert!(
        e.to_string()
            .starts_with("line 3, column 1: tone.treble_freq: 23000 Hz is at or above the Nyquist"),
        "{e}"
    );
    assert!(c.validate_for_rate(8_000).is_err());
}

#[test]
fn default_config_round_trips_through_toml() {
    let c = Config::default();
    assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    assert_eq!(Config::from_toml("").unwrap(), c);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(common::cases(2000)))]

    /// Arbitrary text never panics the preset parser.
    #[test]
    fn parse_preset_never_panics(text in "\\PC{0,200}") {
        let _ = parse_preset(&text);
    }

    /// Nor do APO-looking lines with random tokens.
    #[test]
    fn apo_lines_never_panic(
        toks in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(vec!["ON", "OFF", "PK", "LSC", "HS", "NO", "Fc", "Gain", "Q", "BW", "Oct", "Hz", "dB", "kHz", "6dB", "None", "LS"]).prop_map(String::from),
                proptest::prelude::any::<f32>().prop_map(|v| v.to_string()),
                "[a-z0-9.,-]{0,6}",
            ],
            0..12,
        ),
    ) {
        let _ = parse_preset(&format!("Preamp: -3 dB\nFilter 1: {}\n", toks.join(" ")));
    }
}
