//! Generated text: the TOML klang writes for its default preset and for an
//! AutoEq file converted to a klang config (what a user gets when saving).

#[test]
fn default_preset_as_toml() {
    insta::assert_snapshot!(klang_dsp::Config::default().to_toml());
}

#[test]
fn autoeq_file_as_toml() {
    let text = include_str!("fixtures/autoeq_bookshelf_ParametricEQ.txt");
    let config = klang_dsp::parse_preset(text).unwrap();
    let toml = config.to_toml();
    assert_eq!(klang_dsp::Config::from_toml(&toml).unwrap(), config);
    insta::assert_snapshot!(toml);
}

/// What users read for broken presets: one line each, with line, column,
/// field and a hint.
#[test]
fn error_messages() {
    let cases = [
        "[graphic_eq]\ngains_db = [0,0,0]\n",
        "[volume]\nmax_db = \"loud\"\n",
        "[[eq]]\ntype = \"peaking\"\nfreq = 100\n",
        "[[eq]]\nfreq = 100\n",
        "[tone\nbass_db = 1\n",
        "[crossover]\nfreq = 10\n",
        "[[eq]]\ntype = \"notch\"\nfreq = 50\nq = 0\n",
        "[[eq]]\ntype = \"peak\"\nfreq = 100000\ngain_db = 1\n",
        "[[eq]]\ntype = \"peak\"\nfreq = 300\ngain_db = nan\n",
        "[[eq]]\ntype = \"lowshelf\"\nfreq = 100\ngain_db = 12\nslope = 9\n",
        "[limiter]\nceiling_db = 0.5\n",
        "[trim_db]\nC = 1\n",
        "Preamp: -6 dB\nFilter 1: ON PK Fc 100 Hz Gain -3 dB Q 0\n",
        "Preamp: -6 dB\nFilter 1: ON PK Fc 100 Hz Gain -3 dB\nFilter 2: ON XY Fc 100 Hz\n",
        "Preamp: -6 dB\nChannel: L\n",
    ];
    let mut out = String::new();
    for text in cases {
        let e = klang_dsp::parse_preset(text).unwrap_err();
        out += &format!("{text:?}\n  => {e}\n");
    }
    insta::assert_snapshot!(out);
}
