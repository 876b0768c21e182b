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
