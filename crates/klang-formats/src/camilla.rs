//! CamillaDSP (v3 and v4) YAML configuration export. CamillaDSP 4.1.3 accepts
//! it (`camilladsp --check`) and reproduces klang's response within 0.001 dB on
//! every output (`tests/camilladsp_measured.rs`, run with a binary at hand).
//!
//! Every section becomes a `Biquad` filter (`Peaking`, `Lowshelf`, `Highshelf`,
//! `Lowpass`, `Highpass`, `Notch`, `Bandpass`, `Allpass` with `freq`/`gain`/`q`,
//! and the first-order `LowpassFO`, `HighpassFO`, `AllpassFO`, `LowshelfFO`,
//! `HighshelfFO`), the preamp and trims `Gain` filters; with a crossover a
//! `Mixer` turns 2 channels into 3 (sub = (L + R) / 2, inverted for LR2), and
//! the sub gets its low pass, gain and `Delay`. CamillaDSP designs its biquads
//! with the same cookbook formulas, so everything linear in klang is carried.
//! The `devices` section is a placeholder (stdin/stdout) to be set per machine.
//!
//! The YAML is written by hand: every key is a fixed identifier and every
//! value a number or one of those identifiers, so there is nothing to quote or
//! escape, and a YAML serializer (serde_yaml is unmaintained) would add a
//! dependency for no gain. Snapshot tests pin the text.

use klang_dsp::config::{Config, FilterType};

use crate::error::FormatError;
use crate::plan::{Plan, Section, num};

fn biquad(name: &str, s: &Section) -> String {
    let (f, g, q) = (num(s.freq), num(s.gain_db), num(s.q));
    let (kind, params) = match s.kind {
        FilterType::Peak => (
            "Peaking",
            format!("freq: {f}\n      gain: {g}\n      q: {q}"),
        ),
        FilterType::Lowshelf => (
            "Lowshelf",
            format!("freq: {f}\n      gain: {g}\n      q: {q}"),
        ),
        FilterType::Highshelf => (
            "Highshelf",
            format!("freq: {f}\n      gain: {g}\n      q: {q}"),
        ),
        FilterType::Lowpass => ("Lowpass", format!("freq: {f}\n      q: {q}")),
        FilterType::Highpass => ("Highpass", format!("freq: {f}\n      q: {q}")),
        FilterType::Bandpass => ("Bandpass", format!("freq: {f}\n      q: {q}")),
        FilterType::Notch => ("Notch", format!("freq: {f}\n      q: {q}")),
        FilterType::Allpass => ("Allpass", format!("freq: {f}\n      q: {q}")),
        FilterType::Lowpass1 => ("LowpassFO", format!("freq: {f}")),
        FilterType::Highpass1 => ("HighpassFO", format!("freq: {f}")),
        FilterType::Allpass1 => ("AllpassFO", format!("freq: {f}")),
        FilterType::Lowshelf1 => ("LowshelfFO", format!("freq: {f}\n      gain: {g}")),
        FilterType::Highshelf1 => ("HighshelfFO", format!("freq: {f}\n      gain: {g}")),
    };
    format!(
        "  {name}:  # {}\n    type: Biquad\n    parameters:\n      type: {kind}\n      {params}\n",
        s.origin
    )
}

fn gain(name: &str, db: f64, inverted: bool) -> String {
    format!(
        "  {name}:\n    type: Gain\n    parameters:\n      gain: {}\n      inverted: {inverted}\n      scale: dB\n",
        num(db)
    )
}

fn names(list: &[String]) -> String {
    list.join(", ")
}

/// The configuration for CamillaDSP running at `sample_rate`.
pub fn export(config: &Config, sample_rate: u32) -> Result<String, FormatError> {
    let plan = Plan::new(config, sample_rate);
    let outputs = if plan.sub.is_some() { 3 } else { 2 };
    let mut out = String::new();
    out.push_str(&format!(
        "# exported by klang for {sample_rate} Hz (the graphic EQ's sections are rate-specific)\n"
    ));
    for n in &plan.not_carried {
        out.push_str(&format!("# not carried: {n}\n"));
    }
    out.push_str(&format!(
        "devices:\n  samplerate: {sample_rate}\n  chunksize: 1024\n  # set capture and playback to your devices\n  capture:\n    type: Stdin\n    channels: 2\n    format: F32_LE\n  playback:\n    type: Stdout\n    channels: {outputs}\n    format: F32_LE\n"
    ));
    let mut filters = String::from("filters:\n");
    filters.push_str(&gain("preamp", plan.preamp_db, false));
    let mut shared = vec!["preamp".to_string()];
    for (i, s) in plan.shared.iter().enumerate() {
        let name = format!("eq{:02}", i + 1);
        filters.push_str(&biquad(&name, s));
        shared.push(name);
    }
    let mut mains = Vec::new();
    for (i, s) in plan.mains_highpass.iter().enumerate() {
        let name = format!("mains_hp{}", i + 1);
        filters.push_str(&biquad(&name, s));
        mains.push(name);
    }
    filters.push_str(&gain("trim_l", plan.trim_db[0], false));
    filters.push_str(&gain("trim_r", plan.trim_db[1], false));
    let mut sub_names = Vec::new();
    if let Some(sub) = &plan.sub {
        for (i, s) in sub.lowpass.iter().enumerate() {
            let name = format!("sub_lp{}", i + 1);
            filters.push_str(&biquad(&name, s));
            sub_names.push(name);
        }
        filters.push_str(&gain("sub_gain", sub.gain_db, sub.inverted));
        sub_names.push("sub_gain".into());
        if sub.delay_ms > 0.0 {
            filters.push_str(&format!(
                "  sub_delay:\n    type: Delay\n    parameters:\n      delay: {}\n      unit: ms\n      subsample: false\n",
                num(sub.delay_ms)
            ));
            sub_names.push("sub_delay".into());
        }
    }
    let mut mixers = String::new();
    if plan.sub.is_some() {
        // −6.0206 dB = ×0.5: the sub gets (L + R) / 2, as klang's does.
        let half = num(-20.0 * 2f64.log10());
        mixers.push_str(&format!(
            "mixers:\n  to_sub:\n    description: \"L, R and a mono sub (L + R) / 2\"\n    channels:\n      in: 2\n      out: 3\n    mapping:\n      - dest: 0\n        sources:\n          - channel: 0\n            gain: 0.0\n            inverted: false\n      - dest: 1\n        sources:\n          - channel: 1\n            gain: 0.0\n            inverted: false\n      - dest: 2\n        sources:\n          - channel: 0\n            gain: {half}\n            inverted: false\n          - channel: 1\n            gain: {half}\n            inverted: false\n"
        ));
    }
    let mut pipeline = String::from("pipeline:\n");
    pipeline.push_str(&format!(
        "  - type: Filter\n    channels: [0, 1]\n    names: [{}]\n",
        names(&shared)
    ));
    if plan.sub.is_some() {
        pipeline.push_str("  - type: Mixer\n    name: to_sub\n");
    }
    let mut left = mains.clone();
    left.push("trim_l".into());
    let mut right = mains;
    right.push("trim_r".into());
    pipeline.push_str(&format!(
        "  - type: Filter\n    channels: [0]\n    names: [{}]\n  - type: Filter\n    channels: [1]\n    names: [{}]\n",
        names(&left),
        names(&right)
    ));
    if !sub_names.is_empty() {
        pipeline.push_str(&format!(
            "  - type: Filter\n    channels: [2]\n    names: [{}]\n",
            names(&sub_names)
        ));
    }
    out.push_str(&filters);
    out.push_str(&mixers);
    out.push_str(&pipeline);
    Ok(out)
}
