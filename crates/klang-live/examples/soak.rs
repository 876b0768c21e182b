//! Runs the engine with the demo 2.1 split on a private headless PipeWire session for a
//! while and prints what `klang ctl status` would: CPU time per second of audio inside the
//! callback, load, xruns.
//!
//! ```text
//! cargo run --release -p klang-live --example soak -- [SECONDS=10] [QUANTUM=256] [RATE=48000]
//! ```
//! The benchmark of issue 7 (two minutes at quantum 256 and 64) is `soak 120 256` and
//! `soak 120 64`; the binary can run the same loop with klang-dsp's chain.

use std::time::{Duration, Instant};

use klang_live::demo::Split;
use klang_live::{Engine, EngineConfig, OutputState};
use klang_pwtest::{PwSession, Tone};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u32| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (seconds, quantum, rate) = (arg(0, 10), arg(1, 256), arg(2, 48_000));

    let pw = PwSession::start()?;
    pw.null_sink("speakers")?;
    pw.null_sink("subwoofer")?;
    pw.force_rate(rate)?;
    pw.force_quantum(quantum)?;
    let config = EngineConfig {
        remote: Some(pw.socket().display().to_string()),
        mains: Some("speakers".into()),
        second: Some("subwoofer".into()),
        ..EngineConfig::default()
    };
    let engine = Engine::start(config, Split::new(80.0, rate))?;
    pw.wait_for("outputs linked", || {
        engine.stats().second == OutputState::Connected
    })?;
    pw.wait_for("the forced rate and quantum", || {
        let s = engine.stats();
        s.sample_rate == rate && s.quantum == quantum
    })?;
    let tone = pw.write_tone(
        "soak.wav",
        &Tone::new(rate, f64::from(seconds))
            .with(50.0, 0.3)
            .with(1000.0, 0.3),
    )?;
    let before = engine.stats();
    let started = Instant::now();
    pw.play(&tone, Some("klang"), &[])?.wait()?;
    let after = engine.stats();
    let frames = after.frames - before.frames;
    let busy = Duration::from_nanos(after.busy_ns - before.busy_ns);
    let audio = frames as f64 / f64::from(rate);
    println!(
        "rate {rate} Hz, quantum {quantum}, {audio:.1} s of audio in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "callback CPU per second of audio: {:.3} ms",
        busy.as_secs_f64() * 1e3 / audio
    );
    println!("max load: {:.2} %", after.max_load * 100.0);
    println!("xruns during the run: {}", after.xruns - before.xruns);
    Ok(())
}
