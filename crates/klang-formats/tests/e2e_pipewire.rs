//! The exported filter-chain runs in a real (headless, private) PipeWire and
//! its measured gain matches klang's analytic response within 0.5 dB.
//! Changes the PipeWire graph of a private session and creates a test user:
//! root only, run one at a time (names start with `e2e_`).

use std::process::Child;

use klang_dsp::config::{Config, Crossover, EqBand, FilterType, Slope};
use klang_dsp::response::chain_response;
use klang_formats::pipewire::{self, Options};
use klang_pwtest::{PwSession, Recording, Tone, analysis};

const RATE: u32 = 48_000;
const AMPLITUDE: f32 = 0.05;
/// Multiples of 10 Hz: whole cycles in the analysis's 100 ms chunks, so the
/// tones do not leak into each other's measurement.
const FREQS: [f64; 6] = [60.0, 220.0, 1000.0, 1250.0, 3000.0, 8000.0];

/// `pipewire -c FILE` as the session's user, ended by its PID on drop.
struct FilterChain(Child);

impl Drop for FilterChain {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "e2e_ tests create a test user for the PipeWire session and must run as root (CI does)"
    );
}

fn start_chain(pw: &PwSession, config: &Config, name: &str, target: &str) -> FilterChain {
    let options = Options {
        node_name: name.into(),
        description: format!("klang EQ {name}"),
        target: Some(target.into()),
    };
    let text = pipewire::export(config, RATE, &options).expect("export");
    let path = pw.runtime_dir().join(format!("{name}.conf"));
    std::fs::write(&path, text).unwrap();
    let log = std::fs::File::create(pw.runtime_dir().join(format!("{name}.log"))).unwrap();
    let child = pw
        .command("pipewire")
        .arg("-c")
        .arg(&path)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start pipewire -c");
    let chain = FilterChain(child);
    pw.wait_for(&format!("the filter-chain sink {name}"), || {
        pw.sinks().is_ok_and(|s| s.iter().any(|n| n == name))
    })
    .unwrap_or_else(|e| {
        let log = std::fs::read_to_string(pw.runtime_dir().join(format!("{name}.log")));
        panic!("{e}\nfilter-chain log:\n{}", log.unwrap_or_default())
    });
    chain
}

fn play_and_record(pw: &PwSession, sink: &str, target: &str, channels: u16) -> Recording {
    let mut tone = Tone::new(RATE, 2.5);
    for f in FREQS {
        tone = tone.with(f, AMPLITUDE);
    }
    let file = pw.write_tone(&format!("tone-{sink}.wav"), &tone).unwrap();
    let rec = pw.record(target, 3.5, RATE, channels).unwrap();
    pw.play(&file, Some(sink), &[]).unwrap().wait().unwrap();
    rec.finish().unwrap()
}

fn level(rec: &Recording, ch: usize, f: f64) -> f64 {
    let x = rec.channel(ch);
    let range = analysis::active_range(&x, rec.rate);
    assert!(
        range.len() > rec.rate as usize,
        "no steady signal on channel {ch}: {range:?}"
    );
    analysis::db(analysis::tone_amplitude_median(&x[range], rec.rate, f))
}

/// Compares every output's measured gain with `chain_response` at FREQS
/// (the sub only where it passes: below 200 Hz).
fn check(rec: &Recording, config: &Config) {
    let expected = chain_response(config, RATE, 0.0, &FREQS).unwrap();
    let mut report = String::new();
    let mut worst: f64 = 0.0;
    for (ch, out) in expected.iter().enumerate() {
        for (k, &f) in FREQS.iter().enumerate() {
            let want = out.magnitude_db[k];
            if out.name == "SUB" && f > 200.0 {
                continue;
            }
            let got = level(rec, ch, f) - analysis::db(f64::from(AMPLITUDE));
            report.push_str(&format!(
                "{} {f} Hz: klang {want:.2} dB, PipeWire {got:.2} dB\n",
                out.name
            ));
            worst = worst.max((got - want).abs());
        }
    }
    assert!(worst < 0.5, "worst difference {worst:.2} dB\n{report}");
    eprintln!("{report}worst difference {worst:.3} dB");
}

fn eq_config() -> Config {
    let mut c = Config {
        input_gain_db: -4.0,
        low_cut_hz: 30.0,
        ..Config::default()
    };
    c.tone.bass_db = 3.0;
    c.tone.treble_db = -2.0;
    c.eq = vec![
        EqBand {
            kind: FilterType::Peak,
            freq: 1000.0,
            gain_db: -6.0,
            q: 2.0,
            slope: None,
        },
        EqBand {
            kind: FilterType::Highshelf,
            freq: 6000.0,
            gain_db: 4.0,
            q: std::f64::consts::FRAC_1_SQRT_2,
            slope: None,
        },
        EqBand {
            kind: FilterType::Lowpass,
            freq: 12000.0,
            gain_db: 0.0,
            q: 0.9,
            slope: None,
        },
        EqBand {
            kind: FilterType::Notch,
            freq: 4500.0,
            gain_db: 0.0,
            q: 4.0,
            slope: None,
        },
    ];
    c.graphic_eq.gains_db[3] = 5.0;
    c.graphic_eq.gains_db[8] = -4.0;
    c.trim_db.l = -1.0;
    c.trim_db.r = -2.0;
    c
}

#[test]
fn e2e_pipewire_filter_chain_matches_klang_response() {
    require_root();
    let pw =
        PwSession::start_as_test_user().expect("start a private PipeWire session as a test user");
    pw.force_rate(RATE).unwrap();

    // Stereo: preamp, low cut, tone, parametric and graphic EQ, trims.
    pw.null_sink("speakers").unwrap();
    let config = eq_config();
    let chain = start_chain(&pw, &config, "klang_eq", "speakers");
    let rec = play_and_record(&pw, "klang_eq", "speakers", 2);
    check(&rec, &config);
    drop(chain);

    // With a subwoofer: LR4 crossover, sub gain and trim, on a 3-channel sink.
    pw.output(
        "pactl",
        &[
            "load-module",
            "module-null-sink",
            "sink_name=speakers3",
            "channels=3",
            "channel_map=front-left,front-right,lfe",
        ],
    )
    .unwrap();
    pw.wait_for("sink speakers3", || {
        pw.sinks().is_ok_and(|s| s.iter().any(|n| n == "speakers3"))
    })
    .unwrap();
    let mut config = eq_config();
    config.crossover = Some(Crossover {
        freq: 90.0,
        slope: Slope::LR4,
        sub_gain_db: 2.0,
        sub_delay_ms: 0.0,
    });
    config.trim_db.sub = -1.0;
    let _chain = start_chain(&pw, &config, "klang_eq_sub", "speakers3");
    let rec = play_and_record(&pw, "klang_eq_sub", "speakers3", 3);
    check(&rec, &config);
}
