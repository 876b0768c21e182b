//! The live processor's promises, measured on its output: switches crossfade without a step
//! larger than the signal itself makes, the volume never exceeds `max_db`, a new processor
//! starts muted and ramps, and the limiter's ceiling holds through switches.

use klang_dsp::{Chain, Config};
use klang_engine::processor::{Control, FADE_MS, LiveChain, WARMUP_MS};
use klang_live::Processor;

const RATE: u32 = 48_000;
const BLOCK: usize = 256;

fn chain(toml: &str) -> Box<Chain> {
    Box::new(Chain::new(&Config::from_toml(toml).unwrap(), RATE).unwrap())
}

/// Runs `p` over a stereo sine (same in L and R) for `seconds`, calling `at(block, p)`
/// before each block; returns each output channel.
fn run(
    p: &mut LiveChain,
    freq: f64,
    amp: f32,
    seconds: f64,
    start: usize,
    mut at: impl FnMut(usize, &mut LiveChain),
) -> Vec<Vec<f32>> {
    let blocks = (seconds * f64::from(RATE) / BLOCK as f64) as usize;
    let mut chans = vec![Vec::new(); 3];
    let mut input = vec![0.0f32; 2 * BLOCK];
    let mut output = vec![0.0f32; 3 * BLOCK];
    for b in 0..blocks {
        at(b, p);
        for i in 0..BLOCK {
            let t = (start + b * BLOCK + i) as f64 / f64::from(RATE);
            let v = amp * (2.0 * std::f64::consts::PI * freq * t).sin() as f32;
            input[2 * i] = v;
            input[2 * i + 1] = v;
        }
        let ch = p.output_channels();
        p.process(&input, &mut output[..BLOCK * ch]);
        for c in 0..3 {
            chans[c].extend((0..BLOCK).map(|i| if c < ch { output[i * ch + c] } else { 0.0 }));
        }
    }
    chans
}

fn max_step(x: &[f32]) -> f32 {
    x.windows(2).fold(0.0, |m, w| m.max((w[1] - w[0]).abs()))
}

fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// The largest step a sine of amplitude `a` at `f` Hz makes between two samples.
fn sine_step(a: f32, f: f64) -> f32 {
    2.0 * a * (std::f64::consts::PI * f / f64::from(RATE)).sin() as f32
}

/// A processor past its start-up ramp, at `volume_db`.
fn settled(toml: &str, volume_db: f64) -> LiveChain {
    let (mut p, _retired, _) = LiveChain::new(*chain(toml), volume_db);
    run(&mut p, 100.0, 0.0, 0.5, 0, |_, _| {});
    p
}

/// Switches from `from` to `to` while a sine plays, and checks that no output step is
/// larger than the bigger of the two steady sines would make (5 % margin).
fn assert_switch_is_smooth(from: &str, to: &str, freq: f64, channels: &[usize]) {
    let amp = 0.25;
    let mut p = settled(from, 0.0);
    let out = run(&mut p, freq, amp, 1.0, 0, |b, p| {
        if b == 40 {
            p.control(Control::Switch(chain(to)));
        }
    });
    let before = 20 * BLOCK..40 * BLOCK;
    let after = out[0].len() - 20 * BLOCK..out[0].len();
    for &c in channels {
        let a = peak(&out[c][before.clone()]).max(peak(&out[c][after.clone()]));
        let bound = 1.05 * sine_step(a, freq) + 1e-6;
        let step = max_step(&out[c][20 * BLOCK..]);
        assert!(
            step <= bound,
            "{from:?} → {to:?}, channel {c}: step {step} > {bound} (steady peak {a})"
        );
    }
    assert!(!p.is_fading());
}

#[test]
fn a_bass_change_crossfades_without_a_click() {
    assert_switch_is_smooth("", "[tone]\nbass_db = 6.0\n", 100.0, &[0, 1]);
    assert_switch_is_smooth(
        "[tone]\nbass_db = 6.0\n",
        "[tone]\nbass_db = -6.0\n",
        60.0,
        &[0, 1],
    );
}

#[test]
fn treble_loudness_and_preset_switches_crossfade_without_a_click() {
    assert_switch_is_smooth("", "[tone]\ntreble_db = 8.0\n", 5000.0, &[0, 1]);
    assert_switch_is_smooth(
        "[volume]\ndefault_db = -30.0\n",
        "[loudness]\nenabled = true\n",
        100.0,
        &[0, 1],
    );
    // A preset switch to 2.1: the mains lose the bass, the sub fades in from nothing.
    let sub = "[crossover]\nfreq = 80\nslope = \"LR4\"\n[[eq]]\ntype = \"peak\"\nfreq = 60\ngain_db = 4.0\nq = 1.0\n";
    assert_switch_is_smooth("", sub, 60.0, &[0, 1, 2]);
    assert_switch_is_smooth(sub, "", 60.0, &[0, 1]);
}

#[test]
fn the_crossfade_check_would_catch_a_hard_switch() {
    // The same measurement on an instant swap: the step is many times the sine's own.
    let amp = 0.25;
    let mut a = Chain::new(&Config::default(), RATE).unwrap();
    let mut b = *chain("[tone]\nbass_db = 6.0\n");
    a.set_volume_db_now(0.0);
    b.set_volume_db_now(0.0);
    let mut out = Vec::new();
    let mut output = vec![0.0f32; 2 * BLOCK];
    let mut other = vec![0.0f32; 2 * BLOCK];
    for blk in 0..80 {
        let input: Vec<f32> = (0..BLOCK)
            .flat_map(|i| {
                let t = (blk * BLOCK + i) as f64 / f64::from(RATE);
                let v = amp * (2.0 * std::f64::consts::PI * 100.0 * t).sin() as f32;
                [v, v]
            })
            .collect();
        // Both run all the time (the new one warmed up); only the output switches.
        let (heard, unheard) = if blk < 40 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        heard.process(&input, &mut output);
        unheard.process(&input, &mut other);
        out.extend(output.iter().step_by(2));
    }
    let bound = 1.05 * sine_step(peak(&out[out.len() - 4096..]), 100.0);
    eprintln!("hard switch: step {} vs bound {bound}", max_step(&out));
    assert!(
        max_step(&out) > 2.0 * bound,
        "{} vs {bound}",
        max_step(&out)
    );
}

#[test]
fn the_switch_takes_warmup_plus_fade() {
    let mut p = settled("", -10.0);
    p.control(Control::Switch(chain("[tone]\nbass_db = 3.0\n")));
    let frames = ((WARMUP_MS + FADE_MS) * 1e-3 * f64::from(RATE)) as usize;
    let blocks = frames.div_ceil(BLOCK);
    run(
        &mut p,
        100.0,
        0.1,
        blocks as f64 * BLOCK as f64 / f64::from(RATE),
        0,
        |_, _| {},
    );
    assert!(
        p.is_fading(),
        "a fade ends at the first block after it is complete"
    );
    run(
        &mut p,
        100.0,
        0.1,
        2.0 * BLOCK as f64 / f64::from(RATE),
        0,
        |_, _| {},
    );
    assert!(!p.is_fading());
    assert_eq!(p.config().tone.bass_db, 3.0);
}

#[test]
fn starts_muted_and_ramps_to_the_saved_volume() {
    let amp = 0.5;
    let (mut p, _r, status) = LiveChain::new(*chain("[volume]\nramp_ms = 200\n"), -6.0);
    let out = run(&mut p, 1000.0, amp, 0.5, 0, |_, _| {});
    let l = &out[0];
    assert!(
        peak(&l[..48]) < 1e-4,
        "first ms not silent: {}",
        peak(&l[..48])
    );
    // Peak per 10 ms never decreases while it ramps, and nothing steps.
    let peaks: Vec<f32> = l[..RATE as usize / 4].chunks(480).map(peak).collect();
    assert!(
        peaks.windows(2).all(|w| w[1] >= w[0] * 0.999),
        "not a ramp: {peaks:?}"
    );
    let want = amp * 10f32.powf(-6.0 / 20.0);
    let end = peak(&l[l.len() - 4800..]);
    assert!((end - want).abs() < 1e-3, "{end} vs {want}");
    assert!(max_step(l) <= 1.05 * sine_step(want, 1000.0));
    assert!((status.volume_db() + 6.0).abs() < 1e-6);
}

#[test]
fn the_volume_never_exceeds_max_db_whatever_is_asked() {
    let amp = 0.25;
    let max = "[volume]\nmax_db = -6.0\ndefault_db = -20.0\n";
    let (mut p, _r, _) = LiveChain::new(*chain(max), 40.0);
    let limit = amp * 10f32.powf(-6.0 / 20.0) * 1.0001;
    let out = run(&mut p, 1000.0, amp, 1.0, 0, |b, p| match b {
        50 => p.control(Control::Volume(100.0)),
        60 => p.control(Control::Volume(f64::INFINITY)),
        70 => p.control(Control::Switch(chain("[volume]\nmax_db = -12.0\n"))),
        _ => {}
    });
    assert!(peak(&out[0]) <= limit, "{} > {limit}", peak(&out[0]));
    // After the switch to a lower max, the new maximum holds.
    let lower = amp * 10f32.powf(-12.0 / 20.0) * 1.0001;
    let tail = &out[0][out[0].len() - 4800..];
    assert!(peak(tail) <= lower, "{} > {lower}", peak(tail));
    assert!(peak(tail) > lower * 0.99);
}

#[test]
fn mute_ramps_down_and_back() {
    let mut p = settled("", -6.0);
    let out = run(&mut p, 1000.0, 0.5, 1.0, 0, |b, p| match b {
        20 => p.control(Control::Volume(klang_dsp::chain::MIN_VOLUME_DB)),
        100 => p.control(Control::Volume(-6.0)),
        _ => {}
    });
    let l = &out[0];
    let muted = &l[60 * BLOCK..100 * BLOCK];
    assert!(peak(muted) < 1e-6, "{}", peak(muted));
    assert!(max_step(l) <= 1.05 * sine_step(peak(&l[..20 * BLOCK]), 1000.0));
}

#[test]
fn the_ceiling_holds_through_switches() {
    // Loud noise into a hot chain: the limiter works all the time.
    let hot = "input_gain_db = 12.0\n[volume]\nmax_db = 0.0\n[limiter]\nceiling_db = -1.0\n";
    let lower = "input_gain_db = 12.0\n[tone]\nbass_db = 6.0\n[crossover]\nfreq = 90\n[volume]\nmax_db = 0.0\n[limiter]\nceiling_db = -3.0\n";
    let (mut p, _r, _) = LiveChain::new(*chain(hot), 0.0);
    let mut seed = 0x1234_5678u32;
    let mut input = vec![0.0f32; 2 * BLOCK];
    let mut output = vec![0.0f32; 3 * BLOCK];
    let c1 = 10f32.powf(-1.0 / 20.0);
    let c3 = 10f32.powf(-3.0 / 20.0);
    for b in 0..2000 {
        match b {
            200 => p.control(Control::Switch(chain(lower))),
            600 => p.control(Control::Switch(chain(hot))),
            610 => p.control(Control::Switch(chain(lower))),
            1200 => p.control(Control::Volume(0.0)),
            _ => {}
        }
        for v in &mut input {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            *v = (seed as f32 / u32::MAX as f32 - 0.5) * 8.0;
        }
        let ch = p.output_channels();
        p.process(&input, &mut output[..BLOCK * ch]);
        let pk = peak(&output[..BLOCK * ch]);
        assert!(pk <= c1, "block {b}: {pk} above the -1 dB ceiling");
        // From the moment a switch to the lower ceiling starts fading, it holds.
        let in_lower = (201..600).contains(&b) || b > 611;
        if in_lower {
            assert!(pk <= c3, "block {b}: {pk} above the -3 dB ceiling");
        }
    }
}
