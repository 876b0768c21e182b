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
//! # How the `klang` binary calls this (`crates/klang/src/calibrate.rs`)
//! `klang sweep --out sweep.wav [--seconds S] [--level-db DBFS] [--rate HZ] [--config FILE]`:
//! `Sweep::generate(&SweepParams { duration_s, level_dbfs, ..SweepParams::new(rate) })`
//! after refusing a level above the configuration's `volume.max_db`, then
//! `sweep.samples()` to both channels of a 32-bit float WAV (the file is the reference).
//!
//! `klang calibrate` takes its recordings either offline (`--sweep S --recording R
//! [--recording R2 ...]`: `Sweep::from_samples` on the file, one channel of each
//! recording) or live (`--sink NAME --source NAME`: the sweep generated as above, played
//! and recorded by klang-live's `playrec`). Then, for each recording,
//! [`measure()`] (a [`CalibrateError`] names the recording and stops before anything
//! is written; delay, peak-to-noise and harmonics are printed as progress),
//! [`frequency_response`] on `log_grid(10, min(20 kHz, 0.45 fs), 48)` with
//! `--smoothing`, [`average`], [`MicCalibration::apply`] with `--mic-cal`, and
//! [`fit()`] to `--target` with [`FitOptions`] at the recording's rate (`--range`,
//! `--max-filters`, `--max-boost`, `--max-cut`). It writes
//! [`Correction::to_config`] as TOML (`--out`), [`Correction::to_apo`] (`--apo`),
//! [`Correction::to_csv`] (`--csv`), plots measured, target and predicted (`--plot`),
//! and prints [`Correction::table`].
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
    FineSpectrum, FrequencyResponse, MicCalibration, Smoothing, Window, average,
    frequency_response, log_grid,
};
pub use sweep::{Sweep, SweepParams};
pub use target::Target;
