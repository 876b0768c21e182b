//! `klang sweep` and `klang calibrate`: room measurement offline, with the maths in
//! klang-calibrate (wired as its crate docs describe).

use crate::{EXIT_INPUT, Failure, bad_config, runtime};
use anyhow::anyhow;
use clap::Args;
use klang_audio::{AudioReader, Curve, SampleFormat, WavWriter, plot_response};
use klang_calibrate::{
    FitOptions, MeasureOptions, MicCalibration, Smoothing, Sweep, SweepParams, Target, Window,
    average, fit, frequency_response, log_grid, measure,
};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The sweep WAV to write (32-bit float, both channels); keep it: it is the reference.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Length of the sweep in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Level in dBFS.
    #[arg(long, default_value_t = -12.0, allow_negative_numbers = true, value_name = "DB")]
    level_db: f64,
    /// Sample rate in Hz.
    #[arg(long, default_value_t = 48_000, value_name = "HZ")]
    rate: u32,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The sweep file `klang sweep` wrote.
    #[arg(long, value_name = "FILE")]
    sweep: PathBuf,
    /// A recording of the sweep at a listening position (repeat to average positions).
    #[arg(long, value_name = "FILE", required = true)]
    recording: Vec<PathBuf>,
    /// The microphone's channel in the recordings (0 = first).
    #[arg(long, default_value_t = 0)]
    channel: usize,
    /// Microphone calibration file (frequency, dB per line).
    #[arg(long, value_name = "FILE")]
    mic_cal: Option<PathBuf>,
    /// Target curve: flat, house:BASS_DB:CORNER_HZ:TILT, or a file of frequency/dB points.
    #[arg(long, default_value = "flat")]
    target: String,
    /// Smoothing, 1/N octave.
    #[arg(long, default_value_t = 6)]
    smoothing: u32,
    /// The correction as a klang preset (written only if everything succeeded).
    #[arg(long, value_name = "FILE", default_value = "room.toml")]
    out: PathBuf,
    /// Also write the correction as Equalizer APO text.
    #[arg(long, value_name = "FILE")]
    apo: Option<PathBuf>,
    /// Plot measured, target and predicted response (PNG or SVG).
    #[arg(long, value_name = "FILE", value_parser = crate::plot_path)]
    plot: Option<PathBuf>,
}

pub fn sweep(args: &SweepArgs) -> Result<(), Failure> {
    let params = SweepParams {
        duration_s: args.seconds,
        level_dbfs: args.level_db,
        ..SweepParams::new(args.rate)
    };
    let sweep = Sweep::generate(&params).map_err(|e| Failure {
        code: 2,
        error: anyhow!(e),
    })?;
    let stereo: Vec<f32> = sweep.samples().iter().flat_map(|&s| [s, s]).collect();
    let mut w = WavWriter::create(&args.out, 2, args.rate, SampleFormat::F32)
        .map_err(|e| runtime(e.into()))?;
    w.write(&stereo).map_err(|e| runtime(e.into()))?;
    w.finish().map_err(|e| runtime(e.into()))?;
    println!(
        "klang: wrote {} ({:.1} s sweep at {:.1} dBFS, {} Hz); play it and record at the listening position",
        args.out.display(),
        args.seconds,
        args.level_db,
        args.rate
    );
    Ok(())
}

/// One channel of `path`, and its rate.
fn read_channel(path: &Path, channel: usize) -> Result<(Vec<f32>, u32), Failure> {
    let input = |e: anyhow::Error| Failure {
        code: EXIT_INPUT,
        error: e,
    };
    let mut r = AudioReader::open(path).map_err(|e| input(e.into()))?;
    if channel >= r.source_channels() {
        return Err(input(anyhow!(
            "{}: has {} channel(s), no channel {channel}",
            path.display(),
            r.source_channels()
        )));
    }
    let mut out = Vec::new();
    let mut buf = vec![0.0f32; 2 * 8192];
    loop {
        let n = r.read(&mut buf).map_err(|e| input(e.into()))?;
        if n == 0 {
            break;
        }
        out.extend(buf[..2 * n].chunks(2).map(|f| f[channel]));
    }
    Ok((out, r.sample_rate()))
}

pub fn calibrate(a: &CalibrateArgs) -> Result<(), Failure> {
    let calib = |path: &Path, e: klang_calibrate::CalibrateError| Failure {
        code: EXIT_INPUT,
        error: anyhow!("{}: {e}", path.display()),
    };
    let (s, rate) = read_channel(&a.sweep, 0)?;
    let sweep = Sweep::from_samples(&s, rate).map_err(|e| calib(&a.sweep, e))?;
    let grid = log_grid(10.0, 20_000.0, 48);
    let mut responses = Vec::new();
    for path in &a.recording {
        let (rec, rec_rate) = read_channel(path, a.channel)?;
        let m = measure(&sweep, &rec, rec_rate, &MeasureOptions::default())
            .map_err(|e| calib(path, e))?;
        let harmonics: Vec<String> = m
            .harmonics
            .iter()
            .map(|h| format!("H{} {:.1} dB", h.order, h.level_db))
            .collect();
        eprintln!(
            "klang: {}: delay {:.2} ms, peak-to-noise {:.1} dB, distortion {}",
            path.display(),
            m.delay_s * 1e3,
            m.peak_to_noise_db,
            if harmonics.is_empty() {
                "-".into()
            } else {
                harmonics.join(", ")
            }
        );
        let r = frequency_response(&m, Window::default(), Smoothing::Octave(a.smoothing), &grid)
            .map_err(|e| calib(path, e))?;
        responses.push(r);
    }
    let mut avg = average(&responses).map_err(|e| runtime(anyhow!(e)))?;
    if let Some(path) = &a.mic_cal {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad_config(anyhow!("{}: {e}", path.display())))?;
        let cal = MicCalibration::parse(&text).map_err(|e| bad_config(located(path, &e)))?;
        avg = cal.apply(&avg);
    }
    let target = if Path::new(&a.target).is_file() {
        let path = Path::new(&a.target);
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad_config(anyhow!("{}: {e}", path.display())))?;
        Target::parse_points(&text).map_err(|e| bad_config(located(path, &e)))?
    } else {
        Target::from_spec(&a.target)
            .map_err(|e| bad_config(anyhow!("--target {}: {e}", a.target)))?
    };
    let c = fit(&avg, &target, &FitOptions::new(48_000)).map_err(|e| runtime(anyhow!(e)))?;

    // Everything is computed: now write, each file atomically.
    let write = |path: &Path, text: &str| {
        crate::write_atomic(path, text.as_bytes())
            .map_err(|e| runtime(anyhow!("{}: {e}", path.display())))
    };
    write(&a.out, &c.to_config().to_toml())?;
    if let Some(apo) = &a.apo {
        write(apo, &c.to_apo())?;
    }
    if let Some(plot) = &a.plot {
        let curve = |name: &str, db: &[f64]| Curve {
            name: name.into(),
            freqs_hz: c.freqs_hz.clone(),
            magnitude_db: db.to_vec(),
            phase_deg: vec![0.0; db.len()],
        };
        plot_response(
            plot,
            "room correction",
            48_000,
            &[
                curve("measured", &c.measured_db),
                curve("target", &c.target_db),
                curve("predicted", &c.predicted_db),
            ],
        )
        .map_err(|e| runtime(e.into()))?;
    }
    print!("{}", c.table());
    eprintln!("klang: wrote {}", a.out.display());
    Ok(())
}

fn located(path: &Path, e: &klang_calibrate::CalibrateError) -> anyhow::Error {
    anyhow!("{}: {e}", path.display())
}
