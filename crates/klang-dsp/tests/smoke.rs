use klang_dsp::response::{chain_response, log_frequencies};
use klang_dsp::{Chain, Config, parse_preset};

#[test]
fn issue_example_parses_and_runs() {
    let text = r#"
input_gain_db = 0.0
low_cut_hz = 0              # 0 = off
[tone]
bass_db = 0.0
treble_db = 0.0
[[eq]]
type = "peak"
freq = 63
gain_db = -3.0
q = 1.41
[graphic_eq]
gains_db = [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]
[crossover]
freq = 80
slope = "LR4"
sub_gain_db = 0.0
sub_delay_ms = 0.0
[trim_db]
L = 0.0
R = 0.0
SUB = 0.0
[loudness]
enabled = false
reference_db = -20.0
[volume]
default_db = -20.0
max_db = -6.0
ramp_ms = 200
[limiter]
ceiling_db = -1.0
"#;
    let c = parse_preset(text).unwrap();
    let mut chain = Chain::new(&c, 48_000).unwrap();
    assert_eq!(chain.output_names(), ["L", "R", "SUB"]);
    let input = vec![0.25f32; 2 * 1000];
    let mut out = vec![0f32; 3 * 1000];
    chain.process(&input, &mut out);
    let r = chain_response(&c, 48_000, -20.0, &log_frequencies(10, 20.0, 20000.0)).unwrap();
    assert_eq!(r.len(), 3);
    let back = Config::from_toml(&c.to_toml()).unwrap();
    assert_eq!(back, c);
}

#[test]
fn errors_point_at_line() {
    let e =
        Config::from_toml("[tone]\nbass_db = 3.0\n\n[[eq]]\ntype = \"peak\"\nfreq = 63\nq = -1\n")
            .unwrap_err();
    println!("{e}");
    assert_eq!(e.line, Some(7));
    assert_eq!(e.field, "eq[0].q");
    let e = Config::from_toml("[tone]\nbas_db = 3.0\n").unwrap_err();
    println!("{e}");
    assert_eq!(e.line, Some(2));
}
