//! Issue 7's performance numbers for the full 2.1 chain in the live engine: CPU time per
//! second of audio inside the real-time callback at 48 kHz, xruns at quantum 256 and 64,
//! and the algorithmic latency. Runs on a private headless PipeWire session (klang-pwtest)
//! with null sinks, so it needs the same packages as the end-to-end tests.
//!
//! ```text
//! cargo run --release -p klang-engine --example live_bench            # 10 s per quantum
//! cargo run --release -p klang-engine --example live_bench -- --thorough   # 120 s per quantum
//! cargo run --release -p klang-engine --example live_bench -- --seconds 30
//! ```

use std::time::{Duration, Instant};

use klang_dsp::{Chain, Config};
use klang_engine::processor::LiveChain;
use klang_live::{Engine, EngineConfig, OutputState};
use klang_pwtest::{PwSession, Tone};

const RATE: u32 = 48_000;

/// The whole 2.1 chain: low cut, five PEQ bands, the 15-band graphic EQ, tone, loudness,
/// LR4 crossover with sub delay, trims, volume, limiter.
fn full_chain() -> Config {
    let mut c = Config::from_toml(
        r#"
low_cut_hz = 20
[tone]
bass_db = 3.0
treble_db = -2.0
[[eq]]
type = "peak"
freq = 63
gain_db = -3.0
q = 1.41
[[eq]]
type = "peak"
freq = 250
gain_db = 2.0
q = 1.0
[[eq]]
type = "peak"
freq = 1000
gain_db = -1.5
q = 2.0
[[eq]]
type = "lowshelf"
freq = 120
gain_db = 2.0
q = 0.7
[[eq]]
type = "highshelf"
freq = 8000
gain_db = -2.0
q = 0.7
[crossover]
freq = 80
slope = "LR4"
sub_gain_db = 2.0
sub_delay_ms = 2.5
[trim_db]
L = -0.5
R = 0.0
SUB = 1.0
[loudness]
enabled = true
reference_db = -10.0
[volume]
default_db = -20.0
max_db = -6.0
"#,
    )
    .expect("the benchmark chain is valid");
    c.graphic_eq.gains_db = [
        2.0, 1.0, 0.5, -1.0, -2.0, 0.0, 1.0, 2.0, -1.0, 0.5, 1.5, -2.0, 1.0, 0.0, -1.0,
    ];
    c
}

/// CPU time per second of audio of `Chain::process` alone (no PipeWire), 256-frame blocks.
fn offline_cpu(config: &Config, seconds: f64) -> f64 {
    let mut chain = Chain::new(config, RATE).unwrap();
    chain.set_volume_db_now(-20.0);
    let frames = 256;
    let input: Vec<f32> = (0..2 * frames)
        .map(|i| ((i as f32) * 0.37).sin() * 0.3)
        .collect();
    let mut output = vec![0.0f32; 3 * frames];
    let blocks = (seconds * f64::from(RATE) / frames as f64) as usize;
    let start = Instant::now();
    for _ in 0..blocks {
        chain.process(&input, &mut output);
    }
    start.elapsed().as_secs_f64() / seconds
}

fn run(seconds: u32, quantum: u32) -> Result<(), Box<dyn std::error::Error>> {
    let pw = PwSession::start()?;
    pw.null_sink("speakers")?;
    pw.null_sink("subwoofer")?;
    pw.force_rate(RATE)?;
    pw.force_quantum(quantum)?;
    let config = EngineConfig {
        remote: Some(pw.socket().display().to_string()),
        mains: Some("speakers".into()),
        second: Some("subwoofer".into()),
        ..EngineConfig::default()
    };
    let (processor, mut retired, _) = LiveChain::new(Chain::new(&full_chain(), RATE)?, -20.0);
    let engine = Engine::start(config, processor)?;
    pw.wait_for("outputs linked", || {
        let s = engine.stats();
        s.mains == OutputState::Connected && s.second == OutputState::Connected
    })?;
    pw.wait_for("the forced rate and quantum", || {
        let s = engine.stats();
        s.sample_rate == RATE && s.quantum == quantum
    })?;
    let tone = pw.write_tone(
        "bench.wav",
        &Tone::new(RATE, f64::from(seconds))
            .with(50.0, 0.2)
            .with(440.0, 0.2)
            .with(3000.0, 0.2),
    )?;
    let before = engine.stats();
    let started = Instant::now();
    pw.play(&tone, Some("klang"), &[])?.wait()?;
    let after = engine.stats();
    retired.drain();
    let frames = after.frames - before.frames;
    let busy = Duration::from_nanos(after.busy_ns - before.busy_ns);
    let audio = frames as f64 / f64::from(RATE);
    println!(
        "quantum {quantum:>4}: {audio:6.1} s of audio in {:6.1} s; callback CPU {:.3} ms per second of audio \
         ({:.3} % of one core); max load {:.2} %; xruns {}",
        started.elapsed().as_secs_f64(),
        busy.as_secs_f64() * 1e3 / audio,
        busy.as_secs_f64() * 100.0 / audio,
        after.max_load * 100.0,
        after.xruns - before.xruns
    );
    engine.stop();
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seconds = 10;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--thorough" => seconds = 120,
            "--seconds" => {
                i += 1;
                seconds = args
                    .get(i)
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds N")?;
            }
            other => {
                return Err(
                    format!("unknown argument {other:?} (use --thorough or --seconds N)").into(),
                );
            }
        }
        i += 1;
    }
    let config = full_chain();
    let chain = Chain::new(&config, RATE)?;
    println!(
        "klang live benchmark: full 2.1 chain (low cut, 5 PEQ, 15-band graphic EQ, tone, loudness, LR4 80 Hz + sub delay, limiter) at {RATE} Hz, {} outputs",
        chain.output_channels()
    );
    println!(
        "algorithmic latency: {} samples (IIR path, no look-ahead; the {} ms sub delay is deliberate alignment)",
        chain.latency_frames(),
        config.crossover.as_ref().map_or(0.0, |x| x.sub_delay_ms)
    );
    let offline = offline_cpu(&config, 20.0);
    println!(
        "Chain::process alone: {:.3} ms per second of audio ({:.0}x real time)",
        offline * 1e3,
        1.0 / offline
    );
    for quantum in [256, 64] {
        run(seconds, quantum)?;
    }
    Ok(())
}
