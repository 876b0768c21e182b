//! klang's room calibration maths: a pure core with no I/O. Samples and
//! numbers in, values out.
//!
//! The path: [`Sweep`] (Farina's exponential sine sweep) → played and recorded
//! → [`measure()`] (checks, deconvolution to an impulse response, delay,
//! harmonics) → [`frequency_response`] (window, fractional-octave smoothing)
//! → [`average`] over listening positions, [`MicCalibration::apply`] →
//! [`fit()`] to a [`Target`] → [`Correction`] (klang config, Equalizer APO text,
//! predicted response).
//!
//! ```
//! use klang_calibrate::*;
//! let sweep = Sweep::generate(&SweepParams { duration_s: 1.0, ..SweepParams::new(48_000) }).unwrap();
//! // A "room": 100 samples of delay and half the level.
//! let mut rec = vec![0.0f32; 100];
//! rec.extend(sweep.samples().iter().map(|s| 0.5 * s));
//! let m = measure(&sweep, &rec, 48_000, &MeasureOptions::default()).unwrap();
//! assert_eq!((m.delay_s * 48_000.0).round(), 100.0);
//! let r = frequency_response(&m, Window::default(), Smoothing::Octave(6), &log_grid(20.0, 16_000.0, 12)).unwrap();
//! assert!(r.db.iter().all(|d| (d + 6.02).abs() < 0.1));
//! let c = fit(&r, &Target::Flat, &FitOptions::new(48_000)).unwrap();
//! assert!(c.bands.is_empty());
//! ```
//!
//! # How the `klang` binary calls this (the lead wires it)
//! `klang sweep --out sweep.wav [--length S] [--level DBFS] [--rate HZ]`:
//! `Sweep::generate(&SweepParams { duration_s, level_dbfs, ..SweepParams::new(rate) })`,
//! refuse a level above the config's `volume.max_db`, then write
//! `sweep.samples()` to both channels with klang-audio's `WavWriter` (f32 or
//! 24-bit; the file itself is the reference, so any lossless format works).
//!
//! `klang calibrate --sweep S --recording R [--recording R2 ...] [--channel N]
//! [--mic-cal FILE] [--target flat|house:BASS_DB:CORNER_HZ:TILT|FILE]
//! [--smoothing 6] [--range 20:300] [--max-filters 10] [--max-boost 3]
//! --out room.toml [--apo room.txt] [--plot room.png]`:
//! 1. Read S with klang-audio's `AudioReader`, take one channel,
//!    `Sweep::from_samples(&s, rate)`.
//! 2. For each R: read it, take the microphone's channel (`--channel`, default
//!    the first), `measure(&sweep, &rec, rec_rate, &MeasureOptions::default())`;
//!    a [`CalibrateError`] names the file and stops before anything is written.
//!    Print `delay_s`, `peak_to_noise_db` and each `harmonics[k].level_db` as progress.
//! 3. `let grid = log_grid(10.0, 20_000.0, 48);` and for each measurement
//!    `frequency_response(&m, Window::default(), Smoothing::Octave(n), &grid)`;
//!    then `average(&responses)`; then, with `--mic-cal`,
//!    `MicCalibration::parse(&text)?.apply(&avg)` (errors carry the line: print
//!    `FILE:LINE: message`).
//! 4. Target: `Target::from_spec(s)` for `flat` / `house:6:120:-0.3`, else if
//!    `s` names a file, `Target::parse_points(&text)`; `fit(&avg, &target, &FitOptions::new(48_000))`
//!    (or the rate klang plays at).
//! 5. Write `correction.to_config().to_toml()` to `--out` (atomically), and
//!    `correction.to_apo()` to `--apo`; print `correction.table()`.
//! 6. `--plot`: `plot_response(path, "room correction", rate, &[curve("measured",
//!    &c.measured_db), curve("target", &c.target_db), curve("predicted", &c.predicted_db)])`
//!    with `Curve { name, freqs_hz: c.freqs_hz.clone(), magnitude_db, phase_deg: vec![0.0; n] }`.
//!
//! # Boundaries
//! No I/O, no threads, no `unsafe`. The filters are klang-dsp's own biquad
//! design, and the prediction uses the rounded values written to the preset,
//! so the prediction is what klang plays.

#![forbid(unsafe_code)]

pub mod error;
pub mod fit;
pub mod measure;
pub mod response;
pub mod sweep;
pub mod target;

pub use error::CalibrateError;
pub use fit::{Correction, FitOptions, deviation, fit};
pub use measure::{Harmonic, MeasureOptions, Measurement, measure};
pub use response::{
    FrequencyResponse, MicCalibration, Smoothing, Window, average, frequency_response, log_grid,
};
pub use sweep::{Sweep, SweepParams};
pub use target::Target;
