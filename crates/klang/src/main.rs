//! `klang`: the speaker processor's command line.
//!
//! Thin by design: it parses flags, loads the configuration, and hands the work to
//! `klang-dsp` (the pure DSP), `klang-audio` (files and plots), `klang-engine`
//! (`klang run` / `klang ctl`: the live engine, its control socket and state),
//! `klang-presets` and `klang-formats` (`klang preset`, `backup`, `restore`) and
//! `klang-calibrate` (`klang sweep`, `calibrate`). Its own job is
//! wording errors for a person and mapping them to exit codes:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | done |
//! | 1 | writing the output failed, the engine stopped or is unreachable, or another run-time error |
//! | 2 | bad command line (from clap) |
//! | 3 | the configuration or preset is invalid (message names file, line, field); `klang ctl`: the engine refused the request |
//! | 4 | the input audio cannot be read or has an unsupported sample rate, or a `klang calibrate` recording cannot be measured (message names the file) |
//!
//! Whatever fails, no output file is left behind half-written: outputs appear under
//! their names only when complete.
#![forbid(unsafe_code)]

mod calibrate;
mod library;
mod live;
mod presets;

use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand, ValueEnum};
use klang_audio::{
    AudioReader, Curve, MemorySource, ProcessorShape, SampleFormat, WavWriter, plot_response,
    render,
};
use klang_dsp::Chain;
use klang_dsp::config::Config;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A software speaker processor for the Linux audio chain",
    after_help = "Exit codes: 0 done, 1 run-time error (klang run: the engine stopped), 2 bad command line, 3 invalid configuration or preset (klang ctl: request refused), 4 unreadable or unsupported input audio."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Process an audio file (WAV, FLAC, Ogg Vorbis) into a WAV file at the same rate.
    ///
    /// The output is stereo, or three channels (L, R, SUB) when a crossover is
    /// configured. It is written to a temporary file and renamed into place when
    /// complete, so a failed run never leaves a truncated file.
    Process {
        /// Input audio file: WAV (16/24/32-bit int, 32-bit float), FLAC or Ogg Vorbis; mono or stereo.
        input: PathBuf,
        /// Output WAV file.
        output: PathBuf,
        #[command(flatten)]
        chain: ChainArgs,
        /// Sample format of the output WAV.
        #[arg(long, value_enum, default_value_t = OutputFormat::F32)]
        format: OutputFormat,
    },
    /// Plot the chain's magnitude and phase response per output (PNG or SVG).
    Response {
        #[command(flatten)]
        chain: ChainArgs,
        /// Sample rate the response is computed for, in Hz.
        #[arg(long, default_value_t = 48_000, value_name = "HZ")]
        rate: u32,
        /// Picture to write: FILE.png or FILE.svg.
        #[arg(long, value_name = "FILE", value_parser = plot_path)]
        out: PathBuf,
    },
    /// Run the live speaker processor: the PipeWire sink "klang", controlled with `klang ctl`.
    ///
    /// The sink feeds the mains and a second sink (the subwoofer, or a full-range copy).
    /// The config is klang's speaker TOML plus [output] (mains, second, second_gain_db,
    /// sink_name), [[route]] (application or binary) and [control] (socket). Without
    /// --config, $XDG_CONFIG_HOME/klang/config.toml is used if it exists. The volume,
    /// preset and switches are saved in $XDG_STATE_HOME/klang/state.toml and restored on
    /// start; it starts muted and ramps up. Exits non-zero if the engine stops.
    Run(live::RunArgs),
    /// Control the running `klang run`, like the speaker's remote.
    Ctl {
        #[command(subcommand)]
        command: live::Ctl,
        /// The run config, to find its [control] socket.
        #[arg(long, value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        /// The control socket (default: $XDG_RUNTIME_DIR/klang/control.sock).
        #[arg(long, value_name = "PATH", global = true)]
        socket: Option<PathBuf>,
        /// Print the engine's JSON answer.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Manage the saved presets ($XDG_CONFIG_HOME/klang/presets), with history.
    Preset {
        #[command(subcommand)]
        command: library::Preset,
    },
    /// Write every preset, its history and the engine state into FILE.
    Backup { file: PathBuf },
    /// Restore presets and engine state from a `klang backup` FILE (replaced presets go to history).
    Restore { file: PathBuf },
    /// Write a measurement sweep (exponential sine, both channels) for `klang calibrate`.
    Sweep(calibrate::SweepArgs),
    /// Measure the room (live through PipeWire, or from recordings) and fit a correction.
    Calibrate(Box<calibrate::CalibrateArgs>),
    /// Render the built-in demo signal through the default speaker preset.
    ///
    /// Writes DIR/demo.wav (processed), DIR/demo-input.wav (the signal as it went
    /// in, for comparison) and DIR/response.png.
    Demo {
        /// Where the WAV files and the response plot are written.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out_dir: PathBuf,
    },
}

/// How the processing chain is configured; shared by `process` and `response`.
#[derive(Debug, Args)]
struct ChainArgs {
    /// Speaker configuration file (klang TOML). Without it and without --preset, klang's default preset is used.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A built-in preset name (default, flat, wall, sub80, late-night) or a preset file:
    /// klang TOML or an Equalizer APO / AutoEq parametric file, detected by content.
    /// With --config, the preset's EQ bands, graphic EQ and preamp are added to the
    /// configuration's.
    #[arg(long, value_name = "NAME|FILE")]
    preset: Option<String>,
    /// Volume in dB (default 0 dB); the configuration's volume.max_db still caps it.
    #[arg(long, value_name = "DB", allow_negative_numbers = true)]
    volume_db: Option<f64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    /// 32-bit float (lossless, never clips).
    F32,
    /// 24-bit integer.
    S24,
    /// 16-bit integer.
    S16,
}

impl From<OutputFormat> for SampleFormat {
    fn from(f: OutputFormat) -> Self {
        match f {
            OutputFormat::F32 => SampleFormat::F32,
            OutputFormat::S24 => SampleFormat::I24,
            OutputFormat::S16 => SampleFormat::I16,
        }
    }
}

/// An error with the exit code it maps to.
#[derive(Debug)]
struct Failure {
    code: u8,
    error: anyhow::Error,
}

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 3;
const EXIT_INPUT: u8 = 4;

fn runtime(error: anyhow::Error) -> Failure {
    Failure {
        code: EXIT_RUNTIME,
        error,
    }
}

fn bad_config(error: anyhow::Error) -> Failure {
    Failure {
        code: EXIT_CONFIG,
        error,
    }
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Process {
            input,
            output,
            chain,
            format,
        } => process(&input, &output, &chain, format.into()),
        Command::Response { chain, rate, out } => response(&chain, rate, &out),
        Command::Demo { out_dir } => demo(&out_dir),
        Command::Preset { command } => library::preset(command),
        Command::Backup { file } => library::backup(&file),
        Command::Restore { file } => library::restore(&file),
        Command::Sweep(args) => calibrate::sweep(&args),
        Command::Calibrate(args) => calibrate::calibrate(&args),
        Command::Run(args) => live::run(args),
        Command::Ctl {
            command,
            config,
            socket,
            json,
        } => live::ctl(command, config, socket, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("klang: error: {}", describe(&error));
            ExitCode::from(code)
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the message
/// already contains (library errors often repeat their source in their own message).
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

/// Writes `bytes` to `path` so that it is at every instant absent/old or complete
/// (klang-presets' temp file, fsync and rename; relative paths made absolute first).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    klang_presets::store::write_atomic(&std::path::absolute(path)?, bytes)
}

/// Accepts only `*.png` and `*.svg`, so a wrong name is a usage error before any work.
fn plot_path(arg: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(arg);
    match klang_audio::PlotFormat::from_path(&path) {
        Some(_) => Ok(path),
        None => Err("name the picture FILE.png or FILE.svg".into()),
    }
}

/// The configuration to run, with a name for messages and plot titles.
#[derive(Debug)]
struct LoadedConfig {
    config: Config,
    /// "config.toml", "preset wall", "klang's default preset", ...
    label: String,
    /// The TOML texts it came from, to locate rate-dependent errors by line.
    sources: Vec<(String, String)>,
}

fn load_config(args: &ChainArgs) -> Result<LoadedConfig, Failure> {
    let mut sources = Vec::new();
    let base = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the configuration {}", path.display()))
                .map_err(bad_config)?;
            let config = Config::from_toml(&text)
                .map_err(|e| anyhow!(e))
                .with_context(|| format!("invalid configuration {}", path.display()))
                .map_err(bad_config)?;
            sources.push((path.display().to_string(), text));
            Some((config, path.display().to_string()))
        }
        None => None,
    };
    let preset = match &args.preset {
        Some(name) => Some(load_preset(name, &mut sources)?),
        None => None,
    };
    let (config, label) = match (base, preset) {
        (None, None) => (Config::default(), "klang's default preset".to_string()),
        (Some(base), None) => base,
        (None, Some(preset)) => preset,
        (Some((mut config, base_label)), Some((preset, preset_label))) => {
            // The configuration describes the speakers; the preset adds a voicing.
            let rest = Config {
                input_gain_db: 0.0,
                eq: Vec::new(),
                graphic_eq: Config::default().graphic_eq,
                ..preset.clone()
            };
            if rest != Config::default() {
                eprintln!(
                    "klang: note: with --config, only the EQ, graphic EQ and preamp of {preset_label} are used; its other settings are ignored"
                );
            }
            config.input_gain_db += preset.input_gain_db;
            config.eq.extend(preset.eq);
            for (g, p) in config
                .graphic_eq
                .gains_db
                .iter_mut()
                .zip(preset.graphic_eq.gains_db)
            {
                *g += p;
            }
            config
                .validate(None)
                .map_err(|e| anyhow!(e))
                .with_context(|| {
                    format!("{base_label} with {preset_label}: the combination is invalid")
                })
                .map_err(bad_config)?;
            (config, format!("{base_label} + {preset_label}"))
        }
    };
    Ok(LoadedConfig {
        config,
        label,
        sources,
    })
}

fn load_preset(
    name: &str,
    sources: &mut Vec<(String, String)>,
) -> Result<(Config, String), Failure> {
    let path = Path::new(name);
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the preset {name}"))
            .map_err(bad_config)?;
        let config = klang_dsp::parse_preset(&text)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("invalid preset {name}"))
            .map_err(bad_config)?;
        sources.push((name.to_string(), text));
        return Ok((config, name.to_string()));
    }
    let Some(text) = presets::find(name) else {
        return Err(bad_config(anyhow!(
            "no preset file or built-in preset named {name:?} (built-in: {})",
            presets::names()
        )));
    };
    let config = if text.is_empty() {
        Config::default()
    } else {
        Config::from_toml(text)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("built-in preset {name} is invalid (a klang bug)"))
            .map_err(bad_config)?
    };
    Ok((config, format!("preset {name}")))
}

/// Builds the chain for `rate`, with rate-dependent errors located in the source text.
fn build_chain(loaded: &LoadedConfig, rate: u32) -> Result<Chain, Failure> {
    if let Err(e) = loaded.config.validate_for_rate(rate) {
        // Name the file the offending field came from, if it came from one.
        let located = loaded
            .sources
            .iter()
            .map(|(name, text)| (name, e.clone().locate(text)))
            .find(|(_, l)| l.line.is_some());
        let (name, e) = match located {
            Some((name, l)) => (name.clone(), l),
            None => (loaded.label.clone(), e),
        };
        return Err(bad_config(
            anyhow!(e).context(format!("{name}: not usable at {rate} Hz")),
        ));
    }
    Chain::new(&loaded.config, rate)
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("{}: cannot build the chain at {rate} Hz", loaded.label))
        .map_err(bad_config)
}

/// Sets the volume (0 dB unless asked) and says so when the configuration caps it.
fn apply_volume(chain: &mut Chain, requested: Option<f64>, max_db: f64) -> f64 {
    let wanted = requested.unwrap_or(0.0);
    chain.set_volume_db_now(wanted);
    let actual = chain.volume_db();
    if actual < wanted - 1e-9 {
        eprintln!(
            "klang: note: volume {wanted:+.1} dB is above the configuration's volume.max_db; using {actual:+.1} dB (max_db = {max_db:+.1})"
        );
    }
    actual
}

fn process(
    input: &Path,
    output: &Path,
    args: &ChainArgs,
    format: SampleFormat,
) -> Result<(), Failure> {
    let loaded = load_config(args)?;
    let is_wav = output
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("wav") || e.eq_ignore_ascii_case("wave"));
    if !is_wav {
        eprintln!(
            "klang: note: {} will be a WAV file whatever its name says",
            output.display()
        );
    }
    let mut reader = AudioReader::open(input).map_err(|e| Failure {
        code: EXIT_INPUT,
        error: e.into(),
    })?;
    let rate = reader.sample_rate();
    let supported = klang_dsp::config::MIN_SAMPLE_RATE..=klang_dsp::config::MAX_SAMPLE_RATE;
    if !supported.contains(&rate) {
        return Err(Failure {
            code: EXIT_INPUT,
            error: anyhow!(
                "{}: sample rate {rate} Hz is outside what klang processes ({} to {} Hz); resample first, e.g. `sox {} -r 48000 OUT.wav`",
                input.display(),
                supported.start(),
                supported.end(),
                input.display()
            ),
        });
    }
    let mut chain = build_chain(&loaded, rate)?;
    apply_volume(&mut chain, args.volume_db, loaded.config.volume.max_db);
    let channels = chain.output_channels();
    let mut writer =
        WavWriter::create(output, channels as u16, rate, format).map_err(|e| runtime(e.into()))?;
    let bar = progress_bar(reader.total_frames());
    let shape = ProcessorShape {
        output_channels: channels,
        latency_frames: chain.latency_frames(),
    };
    let frames = render(
        &mut reader,
        &mut writer,
        shape,
        |i, o| chain.process(i, o),
        |done| bar.set_position(done),
    )
    .map_err(|e| {
        let code = if matches!(e, klang_audio::AudioError::Write { .. }) {
            EXIT_RUNTIME
        } else {
            EXIT_INPUT
        };
        Failure {
            code,
            error: e.into(),
        }
    })?;
    writer.finish().map_err(|e| runtime(e.into()))?;
    bar.finish_and_clear();
    eprintln!(
        "klang: {} -> {}: {} frames at {} Hz, {} ({}) with {}",
        input.display(),
        output.display(),
        frames,
        rate,
        chain.output_names().join(", "),
        match format {
            SampleFormat::F32 => "32-bit float",
            SampleFormat::I24 => "24-bit",
            SampleFormat::I16 => "16-bit",
        },
        loaded.label
    );
    Ok(())
}

/// A progress bar on a terminal; nothing at all when stderr is a pipe or a file.
fn progress_bar(total_frames: Option<u64>) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let (bar, template) = match total_frames {
        Some(total) => (
            indicatif::ProgressBar::new(total),
            "{spinner} [{elapsed_precise}] {wide_bar} {percent}% ({eta} left)",
        ),
        // Some Ogg files do not say how long they are: count frames instead.
        None => (
            indicatif::ProgressBar::new_spinner(),
            "{spinner} [{elapsed_precise}] {pos} frames",
        ),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template).expect("the template is valid"),
    );
    bar
}

fn response(args: &ChainArgs, rate: u32, out: &Path) -> Result<(), Failure> {
    let loaded = load_config(args)?;
    // Building the chain validates the configuration at this rate and applies the
    // volume cap exactly as processing would.
    let mut chain = build_chain(&loaded, rate)?;
    let volume = apply_volume(&mut chain, args.volume_db, loaded.config.volume.max_db);
    let title = format!("klang: {} at {volume:+.1} dB volume", loaded.label);
    plot_chain(&loaded.config, rate, volume, &title, out)
}

fn plot_chain(
    config: &Config,
    rate: u32,
    volume: f64,
    title: &str,
    out: &Path,
) -> Result<(), Failure> {
    let top = (f64::from(rate) / 2.0).min(20_000.0);
    let freqs = klang_dsp::response::log_frequencies(800, 10.0, top);
    let outputs = klang_dsp::response::chain_response(config, rate, volume, &freqs)
        .map_err(|e| bad_config(anyhow!(e)))?;
    let curves: Vec<Curve> = outputs
        .into_iter()
        .map(|o| Curve {
            name: o.name.to_string(),
            freqs_hz: freqs.clone(),
            magnitude_db: o.magnitude_db,
            phase_deg: o.phase_deg,
        })
        .collect();
    plot_response(out, title, rate, &curves).map_err(|e| runtime(e.into()))
}

fn demo(out_dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))
        .map_err(runtime)?;
    let rate = klang_audio::DEMO_SAMPLE_RATE;
    let signal = klang_audio::demo_signal(rate);
    let config = Config::default();
    let mut chain = Chain::new(&config, rate)
        .map_err(|e| anyhow!(e))
        .context("the default preset does not build (a klang bug)")
        .map_err(bad_config)?;
    // As loud as the default preset allows, capped at 0 dB, without a note: the demo
    // has no volume flag to explain.
    chain.set_volume_db_now(0.0f64.min(config.volume.max_db));
    let volume = chain.volume_db();

    let input_path = out_dir.join("demo-input.wav");
    let mut writer = WavWriter::create(&input_path, 2, rate, SampleFormat::F32)
        .map_err(|e| runtime(e.into()))?;
    writer.write(&signal).map_err(|e| runtime(e.into()))?;
    writer.finish().map_err(|e| runtime(e.into()))?;

    let wav = out_dir.join("demo.wav");
    let channels = chain.output_channels();
    let mut writer = WavWriter::create(&wav, channels as u16, rate, SampleFormat::F32)
        .map_err(|e| runtime(e.into()))?;
    let shape = ProcessorShape {
        output_channels: channels,
        latency_frames: chain.latency_frames(),
    };
    let frames = render(
        &mut MemorySource::new(&signal),
        &mut writer,
        shape,
        |i, o| chain.process(i, o),
        |_| {},
    )
    .map_err(|e| runtime(e.into()))?;
    writer.finish().map_err(|e| runtime(e.into()))?;

    let png = out_dir.join("response.png");
    let title = format!("klang: default preset at {volume:+.1} dB volume");
    plot_chain(&config, rate, volume, &title, &png)?;
    println!(
        "klang demo: {} frames ({:.0} s at {} Hz, {}) -> {}; input {}; response {}",
        frames,
        klang_audio::DEMO_SECONDS,
        rate,
        chain.output_names().join(", "),
        wav.display(),
        input_path.display(),
        png.display()
    );
    Ok(())
}
