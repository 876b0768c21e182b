//! Times-real-time of klang's DSP on one core, criterion-free:
//! `cargo bench -p klang-dsp --bench throughput` (set `KLANG_BENCH_SECONDS`
//! for a different length of audio; default 600 s = 10 minutes).
//!
//! Reports: the 15-band graphic EQ alone (the benchmark chain, with
//! f32 interleaved I/O, volume and limiter as `klang process` runs it) and the
//! full 2.1 chain (low cut, 5 PEQ bands, graphic EQ, tone, loudness, LR4
//! crossover with sub delay, trims, volume, limiter).

use klang_dsp::config::{Crossover, EqBand, FilterType};
use klang_dsp::{Chain, Config};
use std::time::Instant;

const RATE: u32 = 48_000;
const BLOCK: usize = 4096;

fn noise(frames: usize) -> Vec<f32> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    (0..frames * 2)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.5
        })
        .collect()
}

/// CPU time of this thread in seconds (Linux), so that a busy machine does not
/// distort the figure; `None` elsewhere.
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

/// (wall, CPU) seconds to process `seconds` of audio, best of `runs`.
fn time_chain(config: &Config, seconds: usize, runs: usize) -> (f64, Option<f64>) {
    let input = noise(RATE as usize); // one second, reused: memory stays flat
    let mut best = f64::INFINITY;
    let mut best_cpu: Option<f64> = None;
    for _ in 0..runs {
        let mut chain = Chain::new(config, RATE).expect("valid benchmark config");
        chain.set_volume_db_now(0.0);
        let mut output = vec![0f32; BLOCK * chain.output_channels()];
        let total = seconds * RATE as usize;
        let start = Instant::now();
        let cpu0 = thread_cpu_seconds();
        let mut done = 0;
        let mut sink = 0.0f32;
        while done < total {
            let n = BLOCK.min(total - done);
            let off = done % (RATE as usize - BLOCK);
            chain.process(
                &input[2 * off..2 * (off + n)],
                &mut output[..n * chain.output_channels()],
            );
            sink += output[0];
            done += n;
        }
        std::hint::black_box(sink);
        best = best.min(start.elapsed().as_secs_f64());
        if let (Some(a), Some(b)) = (cpu0, thread_cpu_seconds()) {
            best_cpu = Some(best_cpu.map_or(b - a, |c: f64| c.min(b - a)));
        }
    }
    (best, best_cpu)
}

/// The graphic-EQ benchmark setting: every band moved (so none is skipped).
pub fn graphic_eq_config() -> Config {
    let mut c = Config::default();
    c.graphic_eq.gains_db = [
        3.0, 2.0, 1.0, -1.0, -2.0, -3.0, -2.0, -1.0, 1.0, 2.0, 3.0, 2.0, 1.0, -1.0, -2.0,
    ];
    c.volume.max_db = 0.0;
    c
}

fn full_config() -> Config {
    let mut c = graphic_eq_config();
    c.low_cut_hz = 25.0;
    for (f, g, q) in [
        (63.0, -3.0, 1.41),
        (250.0, 1.5, 1.0),
        (1000.0, -1.0, 2.0),
        (4000.0, 2.0, 1.0),
        (12000.0, -2.0, 0.7),
    ] {
        c.eq.push(EqBand {
            kind: FilterType::Peak,
            freq: f,
            gain_db: g,
            q,
            slope: None,
        });
    }
    c.tone.bass_db = 2.0;
    c.tone.treble_db = -1.0;
    c.loudness.enabled = true;
    c.crossover = Some(Crossover {
        freq: 80.0,
        sub_delay_ms: 1.5,
        ..Crossover::default()
    });
    c.trim_db.sub = -2.0;
    c
}

/// The graphic EQ's sections alone on f64 frames (no conversion, volume, limiter).
fn time_cascade(seconds: usize) -> f64 {
    let sections =
        klang_dsp::graphic::design(&graphic_eq_config().graphic_eq.gains_db, f64::from(RATE));
    let mut cascade = klang_dsp::cascade::Cascade::<2>::new(&sections);
    let src: Vec<[f64; 2]> = noise(BLOCK)
        .chunks(2)
        .map(|c| [f64::from(c[0]), f64::from(c[1])])
        .collect();
    let mut buf = src.clone();
    let cpu0 = thread_cpu_seconds().unwrap_or(0.0);
    for _ in 0..seconds * RATE as usize / BLOCK {
        buf.copy_from_slice(&src);
        cascade.process(&mut buf);
        std::hint::black_box(&buf);
    }
    thread_cpu_seconds().unwrap_or(0.0) - cpu0
}

fn main() {
    let seconds: usize = std::env::var("KLANG_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let t = time_cascade(seconds);
    println!(
        "graphic EQ sections alone (f64 frames): {t:.3} s CPU = {:.0}x real time",
        seconds as f64 / t
    );
    for (name, config) in [
        ("15-band graphic EQ, stereo", graphic_eq_config()),
        ("full 2.1 chain", full_config()),
    ] {
        let (wall, cpu) = time_chain(&config, seconds, 3);
        print!(
            "{name}: {seconds} s of 48 kHz audio in {wall:.3} s wall = {:.0}x real time",
            seconds as f64 / wall
        );
        if let Some(cpu) = cpu {
            print!(
                "; {cpu:.3} s CPU = {:.0}x real time on one core",
                seconds as f64 / cpu
            );
        }
        println!();
    }
}
