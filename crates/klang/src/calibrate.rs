//! `klang sweep` and `klang calibrate`: room measurement, offline from recordings or live
//! through PipeWire (klang-live's `playrec`), with the maths in klang-calibrate (wired as
//! its crate docs describe).

use crate::{EXIT_INPUT, Failure, bad_config, runtime};
use anyhow::anyhow;
use clap::{ArgGroup, Args};
use klang_audio::{AudioReader, Curve, SampleFormat, WavWriter, plot_response};
use klang_calibrate::{
    FitOptions, MeasureOptions, MicCalibration, Smoothing, Sweep, SweepParams, Target, Window,
    average, fit, frequency_response, log_grid, measure,
};
use klang_engine::runconfig::RunConfig;
use klang_live::playrec::{PlayRecord, play_and_record};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The sweep WAV to write (32-bit float, both channels); keep it: it is the reference.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    sweep: SweepOptions,
}

/// The sweep's length, level and rate, shared by `klang sweep` and live `klang calibrate`.
#[derive(Debug, Args)]
pub struct SweepOptions {
    /// Length of the sweep in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Peak level in dBFS; refused above the configuration's volume.max_db.
    #[arg(long, default_value_t = -20.0, allow_negative_numbers = true, value_name = "DB")]
    level_db: f64,
    /// Sample rate in Hz.
    #[arg(long, default_value_t = 48_000, value_name = "HZ")]
    rate: u32,
    /// The configuration whose volume.max_db caps the level (default: the one `klang run`
    /// uses, $XDG_CONFIG_HOME/klang/config.toml, if it exists; else 0 dBFS).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["sweep", "sink"])))]
pub struct CalibrateArgs {
    /// Offline: the sweep file `klang sweep` wrote.
    #[arg(long, value_name = "FILE", requires = "recording")]
    sweep: Option<PathBuf>,
    /// Offline: a recording of the sweep at a listening position (repeat to average positions).
    #[arg(long, value_name = "FILE", requires = "sweep")]
    recording: Vec<PathBuf>,
    /// Live: play the sweep to this PipeWire sink (its node.name, see `pactl list short sinks`).
    /// Through klang's own sink, the running engine's bypass is turned on while measuring
    /// (the preset's EQ, tone and loudness are left out; crossover, volume and limiter stay)
    /// and off again at the end.
    #[arg(
        long,
        value_name = "NAME",
        requires = "source",
        conflicts_with = "sweep"
    )]
    sink: Option<String>,
    /// Live: record the microphone from this PipeWire source (`pactl list short sources`;
    /// SINK.monitor records a sink's monitor).
    #[arg(long, value_name = "NAME", requires = "sink")]
    source: Option<String>,
    /// Live: measure at N listening positions and average them (asks to press Enter
    /// before each).
    #[arg(long, default_value_t = 1, value_name = "N", requires = "sink",
          value_parser = clap::value_parser!(u16).range(1..=32))]
    positions: u16,
    /// Live: also write each recording (FILE, FILE-2, ...; written even if the analysis
    /// then fails, to look into it) and the sweep (FILE.sweep.wav) for offline use.
    #[arg(long, value_name = "FILE", requires = "sink")]
    save_recording: Option<PathBuf>,
    /// The microphone's channel in the recordings (0 = first).
    #[arg(long, default_value_t = 0)]
    channel: usize,
    /// Microphone calibration file (frequency, dB per line).
    #[arg(long, value_name = "FILE")]
    mic_cal: Option<PathBuf>,
    /// Target curve: flat, house:BASS_DB:CORNER_HZ:TILT, or a file of frequency/dB points.
    #[arg(long, default_value = "flat")]
    target: String,
    /// Smoothing, 1/N octave (1 to 48).
    #[arg(long, default_value_t = 6, value_name = "N")]
    smoothing: u32,
    /// Window on the impulse response, ms before and after its peak (the last quarter of
    /// each side fades out). A shorter right side leaves out late reflections, and with
    /// them resolution at low frequencies (500 ms resolves room modes down to 20 Hz).
    #[arg(long, default_value = "10:500", value_name = "LEFT:RIGHT", value_parser = parse_window)]
    window: Window,
    /// Correct only between these frequencies, Hz.
    #[arg(long, default_value = "20-300", value_name = "LO-HI", value_parser = parse_range)]
    range: (f64, f64),
    /// Most filters to use.
    #[arg(long, default_value_t = FitOptions::new(48_000).max_filters, value_name = "N")]
    max_filters: usize,
    /// Largest boost, dB (boosting a null wastes amplifier power).
    #[arg(long, default_value_t = 3.0, value_name = "DB")]
    max_boost: f64,
    /// Deepest cut, dB.
    #[arg(long, default_value_t = 12.0, value_name = "DB")]
    max_cut: f64,
    /// The correction as a klang preset (written only if everything succeeded).
    #[arg(long, value_name = "FILE", default_value = "room.toml")]
    out: PathBuf,
    /// Also write the correction as Equalizer APO text.
    #[arg(long, value_name = "FILE")]
    apo: Option<PathBuf>,
    /// Plot measured, target and predicted response (PNG or SVG).
    #[arg(long, value_name = "FILE", value_parser = crate::plot_path)]
    plot: Option<PathBuf>,
    /// Also write measured, target and predicted response as CSV (Hz, dB, dB, dB).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// The sweep played in live mode (offline, the --sweep file says it all).
    #[command(flatten, next_help_heading = "Live sweep")]
    sweep_options: SweepOptions,
}

/// `LEFT:RIGHT` in ms, e.g. `10:500`.
fn parse_window(s: &str) -> Result<Window, String> {
    let bad = || format!("`{s}` is not LEFT:RIGHT in ms, e.g. 10:500");
    let (l, r) = s.split_once(':').ok_or_else(bad)?;
    let (left_ms, right_ms): (f64, f64) = (
        l.trim().parse().map_err(|_| bad())?,
        r.trim().parse().map_err(|_| bad())?,
    );
    if (0.0..=1000.0).contains(&left_ms) && (1.0..=5000.0).contains(&right_ms) {
        Ok(Window { left_ms, right_ms })
    } else {
        Err(format!(
            "`{s}`: need LEFT from 0 to 1000 ms and RIGHT from 1 to 5000 ms"
        ))
    }
}

/// `LO-HI` in Hz, e.g. `20-300`.
fn parse_range(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("`{s}` is not LO-HI in Hz, e.g. 20-300");
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let (lo, hi): (f64, f64) = (
        lo.trim().parse().map_err(|_| bad())?,
        hi.trim().parse().map_err(|_| bad())?,
    );
    if lo >= 1.0 && hi > lo * 1.2 && hi.is_finite() {
        Ok((lo, hi))
    } else {
        Err(format!(
            "`{s}`: need 1 <= LO and HI above 1.2 x LO (a fifth of an octave at least)"
        ))
    }
}

impl SweepOptions {
    /// The configuration `--config` names, else the one `klang run` uses, and its path.
    fn read_config(&self) -> Result<(RunConfig, Option<PathBuf>), Failure> {
        klang_engine::run::read_config(self.config.as_deref())
            .map_err(|e| bad_config(anyhow!("{e}")))
    }

    /// The sweep, after checking its level against the maximum of `run` (read from `path`).
    fn generate(&self, run: &RunConfig, path: Option<&Path>) -> Result<Sweep, Failure> {
        let max_db = run.dsp.volume.max_db;
        if self.level_db > max_db {
            let from = path.map_or("klang's default configuration".into(), |p| {
                p.display().to_string()
            });
            return Err(Failure {
                code: 2,
                error: anyhow!(
                    "the sweep level {:.1} dBFS is above the configured maximum volume.max_db = {max_db:.1} dB ({from}): give --level-db {max_db:.1} or lower",
                    self.level_db
                ),
            });
        }
        let params = SweepParams {
            duration_s: self.seconds,
            level_dbfs: self.level_db,
            ..SweepParams::new(self.rate)
        };
        Sweep::generate(&params).map_err(|e| Failure {
            code: 2,
            error: anyhow!(e),
        })
    }
}

/// Writes mono `samples` to both channels of a 32-bit float WAV.
fn write_stereo(path: &Path, samples: &[f32], rate: u32) -> Result<(), Failure> {
    let stereo: Vec<f32> = samples.iter().flat_map(|&s| [s, s]).collect();
    let mut w =
        WavWriter::create(path, 2, rate, SampleFormat::F32).map_err(|e| runtime(e.into()))?;
    w.write(&stereo).map_err(|e| runtime(e.into()))?;
    w.finish().map_err(|e| runtime(e.into()))
}

pub fn sweep(args: &SweepArgs) -> Result<(), Failure> {
    let o = &args.sweep;
    let (run, path) = o.read_config()?;
    let sweep = o.generate(&run, path.as_deref())?;
    write_stereo(&args.out, sweep.samples(), o.rate)?;
    println!(
        "klang: wrote {} ({:.1} s sweep at {:.1} dBFS, {} Hz); play it and record at the listening position",
        args.out.display(),
        o.seconds,
        o.level_db,
        o.rate
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

/// A recording to analyse: where it came from (for messages), one channel, its rate.
struct Take {
    label: String,
    samples: Vec<f32>,
    rate: u32,
}

pub fn calibrate(a: &CalibrateArgs) -> Result<(), Failure> {
    let calib = |label: &str, e: klang_calibrate::CalibrateError| Failure {
        code: EXIT_INPUT,
        error: anyhow!("{label}: {e}"),
    };
    // Everything the analysis needs is checked before the sweep plays.
    let target = read_target(&a.target)?;
    let mic = a
        .mic_cal
        .as_deref()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad_config(anyhow!("{}: {e}", path.display())))?;
            MicCalibration::parse(&text).map_err(|e| bad_config(located(path, &e)))
        })
        .transpose()?;
    let (sweep, takes) = match (&a.sweep, &a.sink, &a.source) {
        (Some(sweep_path), _, _) => {
            let (s, rate) = read_channel(sweep_path, 0)?;
            let sweep = Sweep::from_samples(&s, rate)
                .map_err(|e| calib(&sweep_path.display().to_string(), e))?;
            let takes = a
                .recording
                .iter()
                .map(|path| {
                    let (samples, rate) = read_channel(path, a.channel)?;
                    Ok(Take {
                        label: path.display().to_string(),
                        samples,
                        rate,
                    })
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            (sweep, takes)
        }
        (None, Some(sink), Some(source)) => live(a, sink, source)?,
        _ => unreachable!("clap requires --sweep or --sink with --source"),
    };
    let rate = sweep.sample_rate();
    let fit_options = FitOptions {
        range_hz: a.range,
        max_filters: a.max_filters,
        max_boost_db: a.max_boost,
        max_cut_db: a.max_cut,
        ..FitOptions::new(rate)
    };
    let usage = |e: klang_calibrate::CalibrateError| Failure {
        code: 2,
        error: anyhow!(e),
    };
    fit_options.validate().map_err(usage)?;
    let grid = log_grid(10.0, 20_000f64.min(0.45 * f64::from(rate)), 48);
    let mut responses = Vec::new();
    for take in &takes {
        let m = measure(&sweep, &take.samples, take.rate, &MeasureOptions::default())
            .map_err(|e| calib(&take.label, e))?;
        let harmonics: Vec<String> = m
            .harmonics
            .iter()
            .map(|h| format!("H{} {:.1} dB", h.order, h.level_db))
            .collect();
        eprintln!(
            "klang: {}: delay {:.2} ms, peak-to-noise {:.1} dB, distortion {}",
            take.label,
            m.delay_s * 1e3,
            m.peak_to_noise_db,
            if harmonics.is_empty() {
                "-".into()
            } else {
                harmonics.join(", ")
            }
        );
        let r = frequency_response(&m, a.window, Smoothing::Octave(a.smoothing), &grid)
            .map_err(usage)?;
        responses.push(r);
    }
    let mut avg = average(&responses).map_err(|e| runtime(anyhow!(e)))?;
    if let Some(cal) = &mic {
        avg = cal.apply(&avg);
    }
    let c = fit(&avg, &target, &fit_options).map_err(usage)?;

    // Everything is computed: now write, each file atomically.
    let write = |path: &Path, text: &str| {
        crate::write_atomic(path, text.as_bytes())
            .map_err(|e| runtime(anyhow!("{}: {e}", path.display())))
    };
    write(&a.out, &c.to_config().to_toml())?;
    if let Some(apo) = &a.apo {
        write(apo, &c.to_apo())?;
    }
    if let Some(csv) = &a.csv {
        write(csv, &c.to_csv())?;
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
            rate,
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

/// `--target`: a file of points if one of that name exists, else a spec.
fn read_target(spec: &str) -> Result<Target, Failure> {
    let path = Path::new(spec);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad_config(anyhow!("{}: {e}", path.display())))?;
        Target::parse_points(&text).map_err(|e| bad_config(located(path, &e)))
    } else {
        Target::from_spec(spec).map_err(|e| bad_config(anyhow!("--target {spec}: {e}")))
    }
}

/// Plays the sweep to `sink` and records `source` through PipeWire, with progress.
fn live(a: &CalibrateArgs, sink: &str, source: &str) -> Result<(Sweep, Vec<Take>), Failure> {
    let o = &a.sweep_options;
    let (run, path) = o.read_config()?;
    let sweep = o.generate(&run, path.as_deref())?;
    // Held until the recordings are made; dropping it turns the bypass off again.
    let _bypass = OwnSinkBypass::engage(&run, sink)?;
    let seconds = sweep.samples().len() as f64 / f64::from(o.rate);
    eprintln!(
        "klang: playing a {seconds:.1} s sweep at {:.1} dBFS to {sink}, recording {source}",
        o.level_db
    );
    let record_channels = u16::try_from(a.channel + 1)
        .map_err(|_| Failure {
            code: 2,
            error: anyhow!("--channel {} is too high", a.channel),
        })?
        .max(2);
    let p = PlayRecord {
        sink: sink.into(),
        source: source.into(),
        rate: o.rate,
        play_channels: 2,
        record_channels,
        remote: None,
    };
    let mut takes = Vec::new();
    for k in 1..=usize::from(a.positions) {
        if a.positions > 1 {
            eprintln!(
                "klang: position {k} of {}: place the microphone, then press Enter",
                a.positions
            );
            let mut line = String::new();
            let n = std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| runtime(anyhow!("reading the terminal: {e}")))?;
            if n == 0 {
                return Err(runtime(anyhow!(
                    "stopped before position {k}: the input ended (press Enter for each position)"
                )));
            }
        }
        let bar = crate::progress_bar(Some(1000));
        let captured = play_and_record(&p, sweep.samples(), &mut |f| {
            bar.set_position((f * 1000.0) as u64)
        })
        .map_err(|e| runtime(anyhow!(e)))?;
        bar.finish_and_clear();
        let samples = captured.channel(a.channel);
        if let Some(path) = &a.save_recording {
            let path = numbered(path, k);
            write_stereo(&path, &samples, o.rate)?;
            eprintln!("klang: wrote {}", path.display());
        }
        takes.push(Take {
            label: if a.positions > 1 {
                format!("position {k} ({source})")
            } else {
                format!("recording of {source}")
            },
            samples,
            rate: o.rate,
        });
    }
    if let Some(path) = &a.save_recording {
        let mut sweep_path = path.clone().into_os_string();
        sweep_path.push(".sweep.wav");
        write_stereo(Path::new(&sweep_path), sweep.samples(), o.rate)?;
        eprintln!(
            "klang: wrote {} (the reference for --sweep)",
            Path::new(&sweep_path).display()
        );
    }
    Ok((sweep, takes))
}

/// The running engine's bypass, held on while the sweep plays through klang's own sink:
/// the measurement is of the speakers and the room without the preset's EQ, tone and
/// loudness (a room correction among them), which is what the fitted preset corrects.
/// Crossover, volume and limiter stay. Dropping it, or SIGINT/SIGTERM/SIGHUP during the
/// measurement, turns the bypass off again.
struct OwnSinkBypass {
    socket: PathBuf,
    /// Still on: whichever of `Drop` and the signal thread comes first turns it off.
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl OwnSinkBypass {
    /// Turns the bypass on when `sink` is the sink of the engine that `run` describes
    /// and that engine answers; `None` (with a note) when there is nothing to turn on.
    fn engage(run: &RunConfig, sink: &str) -> Result<Option<OwnSinkBypass>, Failure> {
        use klang_engine::protocol::{Request, request};
        if sink != run.output.sink_name {
            return Ok(None);
        }
        let unreachable = |why: String| {
            eprintln!(
                "klang: note: {why}: the sweep through `{sink}` is measured with whatever that sink does \
                 (turn its bypass on with `klang ctl bypass on`, or play to the speakers' own sink)"
            );
            Ok(None)
        };
        let socket = match klang_engine::run::socket_for(run) {
            Ok(s) => s,
            Err(e) => return unreachable(e),
        };
        let status = match request(&socket, &Request::Status) {
            Ok(r) if r.ok => r.status,
            Ok(r) => {
                return unreachable(format!("klang's engine refused its status: {}", r.message));
            }
            Err(e) => return unreachable(format!("no klang engine answers ({e})")),
        };
        if status.as_ref().is_some_and(|s| s.bypass) {
            eprintln!("klang: bypass is on already: the preset's EQ is not measured");
            return Ok(None);
        }
        let on = request(&socket, &Request::Bypass { on: true }).map_err(|e| {
            runtime(anyhow!(
                "turning klang's bypass on for the measurement: {e}"
            ))
        })?;
        if !on.ok {
            return Err(runtime(anyhow!(
                "klang's engine refused to turn its bypass on for the measurement: {}",
                on.message
            )));
        }
        let guard = OwnSinkBypass {
            socket,
            held: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        };
        guard.restore_on_signal();
        // The switch crossfades; the sweep starts when it is over.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while std::time::Instant::now() < deadline {
            match request(&guard.socket, &Request::Status) {
                Ok(r) if r.status.as_ref().is_some_and(|s| !s.fading) => break,
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        eprintln!(
            "klang: bypass on while measuring through `{sink}`: the running preset's EQ, tone and loudness are left out (turned off again at the end)"
        );
        Ok(Some(guard))
    }

    /// A thread that waits for SIGINT, SIGTERM or SIGHUP (blocked for every thread
    /// started after this, the children get the default mask back from `Command`),
    /// turns the bypass off and exits as the signal would have.
    fn restore_on_signal(&self) {
        use nix::sys::signal::{SigSet, Signal};
        let mut set = SigSet::empty();
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(sig);
        }
        if set.thread_block().is_err() {
            return;
        }
        let (socket, held) = (self.socket.clone(), self.held.clone());
        std::thread::spawn(move || {
            if let Ok(sig) = set.wait() {
                Self::release(&socket, &held);
                std::process::exit(128 + sig as i32);
            }
        });
    }

    /// Turns the bypass off, once.
    fn release(socket: &Path, held: &std::sync::atomic::AtomicBool) {
        use klang_engine::protocol::{Request, request};
        if !held.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        match request(socket, &Request::Bypass { on: false }) {
            Ok(r) if r.ok => eprintln!("klang: bypass off again"),
            Ok(r) => eprintln!(
                "klang: warning: bypass could not be turned off again ({}): run `klang ctl bypass off`",
                r.message
            ),
            Err(e) => eprintln!(
                "klang: warning: bypass could not be turned off again ({e}): run `klang ctl bypass off`"
            ),
        }
    }
}

impl Drop for OwnSinkBypass {
    fn drop(&mut self) {
        Self::release(&self.socket, &self.held);
    }
}

/// `rec.wav` for one position; `rec-2.wav`, `rec-3.wav` ... for the next ones.
fn numbered(path: &Path, k: usize) -> PathBuf {
    if k == 1 {
        return path.to_owned();
    }
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{k}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{k}"),
    };
    path.with_file_name(name)
}

fn located(path: &Path, e: &klang_calibrate::CalibrateError) -> anyhow::Error {
    anyhow!("{}: {e}", path.display())
}
