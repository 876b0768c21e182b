//! Frequency responses: from an impulse response through a window, smoothed,
//! averaged, and corrected by a microphone calibration.

use realfft::RealFftPlanner;

use crate::error::{CalibrateError, check};
use crate::measure::Measurement;

/// The time window applied to the impulse response before its FFT: a
/// half-Hann rise over `left_ms` before the peak, then flat, then a half-Hann
/// fall over the last quarter of `right_ms` after it. A shorter right side
/// removes late reflections (and with them resolution at low frequencies).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Before the peak, ms.
    pub left_ms: f64,
    /// After the peak, ms.
    pub right_ms: f64,
}

impl Default for Window {
    /// 10 ms before, 500 ms after: room modes resolved down to 20 Hz.
    fn default() -> Self {
        Window {
            left_ms: 10.0,
            right_ms: 500.0,
        }
    }
}

/// Fractional-octave smoothing (power average over a band `1/n` octave wide
/// centred on each frequency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Smoothing {
    /// None: the response at each frequency, interpolated between FFT bins.
    None,
    /// `1/n` octave, `n` from 1 to 48 (3, 6, 12, 24, 48 are usual).
    Octave(u32),
}

/// A magnitude (and phase) response on a frequency grid.
#[derive(Debug, Clone, PartialEq)]
pub struct FrequencyResponse {
    /// Frequencies in Hz, ascending.
    pub freqs_hz: Vec<f64>,
    /// Magnitude in dB at each frequency.
    pub db: Vec<f64>,
    /// Phase in degrees at each frequency, relative to the impulse peak
    /// (unsmoothed, wrapped to ±180°).
    pub phase_deg: Vec<f64>,
    /// The unsmoothed power behind `db`, when the response was measured with
    /// smoothing: what [`crate::fit()`] needs to predict the smoothed response
    /// of the room *times* the filters (smoothing the product is not adding
    /// the filters to the smoothed response: beside a null they differ by dB).
    pub fine: Option<FineSpectrum>,
}

/// The power spectrum in narrow log-spaced cells, and the smoothing that
/// made a [`FrequencyResponse`] from it.
#[derive(Debug, Clone, PartialEq)]
pub struct FineSpectrum {
    /// Centre of each cell, Hz, ascending.
    pub freqs_hz: Vec<f64>,
    /// Energy in each cell (power density × width), arbitrary unit.
    pub energy: Vec<f64>,
    /// Width of the smoothing band, octaves.
    pub octaves: f64,
}

impl FineSpectrum {
    /// Cells per octave: a sixth of the narrowest smoothing band, and at
    /// least 144 (a Q 12 filter spans 0.12 octave: 17 cells).
    pub fn cells_per_octave(octaves: f64) -> f64 {
        (6.0 / octaves).max(144.0)
    }

    /// Indices of the cells whose centre lies in the smoothing band around
    /// `f` (the nearest cell if the band is narrower than one).
    pub fn band(&self, f: f64) -> std::ops::Range<usize> {
        let half = 2f64.powf(self.octaves / 2.0);
        let a = self.freqs_hz.partition_point(|&x| x < f / half);
        let b = self.freqs_hz.partition_point(|&x| x <= f * half);
        if b > a {
            a..b
        } else {
            let i = a.min(self.freqs_hz.len().saturating_sub(1));
            let i = if i > 0 && (f / self.freqs_hz[i - 1]) < (self.freqs_hz[i] / f) {
                i - 1
            } else {
                i
            };
            i..i + 1
        }
    }
}

impl FrequencyResponse {
    /// The magnitude at `f` Hz, interpolated linearly in log frequency, held
    /// flat beyond the ends.
    pub fn db_at(&self, f: f64) -> f64 {
        interp_log(&self.freqs_hz, &self.db, f)
    }
}

/// `per_octave` log-spaced frequencies per octave from `lo` to `hi` Hz (both
/// included, `hi` rounded to the nearest step).
pub fn log_grid(lo: f64, hi: f64, per_octave: u32) -> Vec<f64> {
    let steps = ((hi / lo).log2() * f64::from(per_octave)).round() as usize;
    (0..=steps)
        .map(|i| lo * 2f64.powf(i as f64 / f64::from(per_octave)))
        .collect()
}

/// Linear interpolation of `ys` over `ln(xs)`; flat beyond the ends.
pub(crate) fn interp_log(xs: &[f64], ys: &[f64], x: f64) -> f64 {
    match xs.len() {
        0 => 0.0,
        1 => ys[0],
        _ => {
            if x <= xs[0] {
                return ys[0];
            }
            if x >= xs[xs.len() - 1] {
                return ys[ys.len() - 1];
            }
            let i = xs.partition_point(|&v| v <= x).clamp(1, xs.len() - 1);
            let t = (x / xs[i - 1]).ln() / (xs[i] / xs[i - 1]).ln();
            ys[i - 1] + t * (ys[i] - ys[i - 1])
        }
    }
}

/// The frequency response of a measurement's linear impulse response at
/// `freqs_hz`, through `window`, with `smoothing`.
pub fn frequency_response(
    m: &Measurement,
    window: Window,
    smoothing: Smoothing,
    freqs_hz: &[f64],
) -> Result<FrequencyResponse, CalibrateError> {
    check(
        window.left_ms >= 0.0 && window.right_ms > 0.0,
        "window",
        window.left_ms.min(window.right_ms),
        "left must be at least 0 ms and right above 0 ms",
    )?;
    let octaves = match smoothing {
        Smoothing::None => None,
        Smoothing::Octave(n) => {
            check(
                (1..=48).contains(&n),
                "smoothing",
                f64::from(n),
                "1/n octave needs n from 1 to 48",
            )?;
            Some(1.0 / f64::from(n))
        }
    };
    let fs = f64::from(m.sample_rate);
    let left = ((window.left_ms * 1e-3 * fs) as usize).min(m.peak_index);
    let right = ((window.right_ms * 1e-3 * fs) as usize)
        .min(m.ir.len() - m.peak_index)
        .max(1);
    let fall = (right / 4).max(1);
    let start = m.peak_index - left;
    let len = left + right;
    // At least 0.25 Hz bins, so 1/48-octave bands at 20 Hz span a few bins.
    let n = len.max((4.0 * fs) as usize).next_power_of_two();
    let mut buf = vec![0.0f64; n];
    for (i, b) in buf.iter_mut().take(len).enumerate() {
        let w = if i < left {
            0.5 - 0.5 * (std::f64::consts::PI * i as f64 / left as f64).cos()
        } else if i >= len - fall {
            let j = (len - i) as f64;
            0.5 - 0.5 * (std::f64::consts::PI * j / fall as f64).cos()
        } else {
            1.0
        };
        *b = m.ir[start + i] * w;
    }
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(n);
    let mut spec = fft.make_output_vec();
    fft.process(&mut buf, &mut spec)
        .expect("lengths match the plan");
    let bin_hz = fs / n as f64;
    let power: Vec<f64> = spec.iter().map(|c| c.norm_sqr()).collect();
    // prefix[k] = sum of power[..k]: band averages in O(1).
    let mut prefix = Vec::with_capacity(power.len() + 1);
    prefix.push(0.0);
    let mut acc = 0.0;
    for p in &power {
        acc += p;
        prefix.push(acc);
    }
    // Cumulative power up to continuous bin position x (bin j covers j−½..j+½).
    let cumulative = |x: f64| {
        let x = (x + 0.5).clamp(0.0, power.len() as f64);
        let i = (x.floor() as usize).min(power.len() - 1);
        prefix[i] + (x - i as f64) * power[i]
    };
    let at = |x: f64| {
        let x = x.clamp(0.0, (power.len() - 1) as f64);
        let i = (x.floor() as usize).min(power.len() - 2);
        let t = x - i as f64;
        (power[i] * (1.0 - t) + power[i + 1] * t, i, t)
    };
    let mut db = Vec::with_capacity(freqs_hz.len());
    let mut phase_deg = Vec::with_capacity(freqs_hz.len());
    for &f in freqs_hz {
        let x = f / bin_hz;
        let p = match octaves {
            Some(o) => {
                let (a, b) = (x * 2f64.powf(-o / 2.0), x * 2f64.powf(o / 2.0));
                if b - a > 1.0 {
                    (cumulative(b) - cumulative(a)) / (b - a)
                } else {
                    at(x).0
                }
            }
            None => at(x).0,
        };
        db.push(10.0 * p.max(1e-30).log10());
        let (_, i, t) = at(x);
        let c = spec[i] * (1.0 - t) + spec[i + 1] * t;
        // Remove the linear phase of the `left` samples before the peak.
        let ph = c.arg() + 2.0 * std::f64::consts::PI * f * left as f64 / fs;
        phase_deg.push(wrap_deg(ph.to_degrees()));
    }
    // The cells span the grid and half a band beyond it on each side.
    let fine = octaves.filter(|_| freqs_hz.len() >= 2).map(|o| {
        let per = FineSpectrum::cells_per_octave(o);
        let lo = freqs_hz[0] * 2f64.powf(-o / 2.0);
        let hi = (freqs_hz[freqs_hz.len() - 1] * 2f64.powf(o / 2.0)).min(fs / 2.0);
        let n = ((hi / lo).log2() * per).ceil().max(1.0) as usize;
        let mut centres = Vec::with_capacity(n);
        let mut energy = Vec::with_capacity(n);
        for j in 0..n {
            let (a, b) = (
                lo * 2f64.powf(j as f64 / per),
                lo * 2f64.powf((j + 1) as f64 / per),
            );
            let (xa, xb) = (a / bin_hz, b / bin_hz);
            let e = if xb - xa > 1.0 {
                cumulative(xb) - cumulative(xa)
            } else {
                at(0.5 * (xa + xb)).0 * (xb - xa)
            };
            centres.push((a * b).sqrt());
            energy.push(e);
        }
        FineSpectrum {
            freqs_hz: centres,
            energy,
            octaves: o,
        }
    });
    Ok(FrequencyResponse {
        freqs_hz: freqs_hz.to_vec(),
        db,
        phase_deg,
        fine,
    })
}

fn wrap_deg(d: f64) -> f64 {
    let w = (d + 180.0).rem_euclid(360.0) - 180.0;
    if w == -180.0 { 180.0 } else { w }
}

/// Power average of several responses on the same grid (listening positions).
/// The phase is taken from the first.
pub fn average(responses: &[FrequencyResponse]) -> Result<FrequencyResponse, CalibrateError> {
    let first = responses.first().ok_or_else(|| CalibrateError::Average {
        reason: "no responses given".into(),
    })?;
    if let Some(i) = responses.iter().position(|r| r.freqs_hz != first.freqs_hz) {
        return Err(CalibrateError::Average {
            reason: format!(
                "response {} has another frequency grid than the first; compute all on one grid",
                i + 1
            ),
        });
    }
    let k = responses.len() as f64;
    let db = (0..first.db.len())
        .map(|j| {
            let p: f64 = responses.iter().map(|r| 10f64.powf(r.db[j] / 10.0)).sum();
            10.0 * (p / k).max(1e-30).log10()
        })
        .collect();
    // The fine spectra average the same way, if all have one on the same cells.
    let fine = first.fine.as_ref().and_then(|f0| {
        let all: Option<Vec<&FineSpectrum>> = responses
            .iter()
            .map(|r| {
                r.fine
                    .as_ref()
                    .filter(|f| f.freqs_hz == f0.freqs_hz && f.octaves == f0.octaves)
            })
            .collect();
        all.map(|all| FineSpectrum {
            freqs_hz: f0.freqs_hz.clone(),
            energy: (0..f0.energy.len())
                .map(|j| all.iter().map(|f| f.energy[j]).sum::<f64>() / k)
                .collect(),
            octaves: f0.octaves,
        })
    });
    Ok(FrequencyResponse {
        freqs_hz: first.freqs_hz.clone(),
        db,
        phase_deg: first.phase_deg.clone(),
        fine,
    })
}

/// A measurement microphone's calibration: its deviation from flat.
#[derive(Debug, Clone, PartialEq)]
pub struct MicCalibration {
    /// `(frequency Hz, dB)`, frequencies strictly ascending.
    pub points: Vec<(f64, f64)>,
}

impl MicCalibration {
    /// Parses the usual text format: one `freq dB [phase]` line per point,
    /// separated by spaces, tabs, commas or semicolons; lines starting with
    /// `*`, `#` or `"` (miniDSP's sensitivity line) are comments, and so are
    /// non-numeric header lines before the first point.
    pub fn parse(text: &str) -> Result<MicCalibration, CalibrateError> {
        let points = parse_points(text, "microphone calibration")?;
        Ok(MicCalibration { points })
    }

    /// The microphone's deviation at `f` Hz (log-interpolated, flat beyond the ends).
    pub fn db_at(&self, f: f64) -> f64 {
        let (xs, ys): (Vec<f64>, Vec<f64>) = self.points.iter().copied().unzip();
        interp_log(&xs, &ys, f)
    }

    /// The response with the microphone's deviation removed.
    pub fn apply(&self, r: &FrequencyResponse) -> FrequencyResponse {
        let (xs, ys): (Vec<f64>, Vec<f64>) = self.points.iter().copied().unzip();
        FrequencyResponse {
            freqs_hz: r.freqs_hz.clone(),
            db: r
                .freqs_hz
                .iter()
                .zip(&r.db)
                .map(|(&f, &d)| d - interp_log(&xs, &ys, f))
                .collect(),
            phase_deg: r.phase_deg.clone(),
            fine: r.fine.as_ref().map(|f| FineSpectrum {
                freqs_hz: f.freqs_hz.clone(),
                energy: f
                    .freqs_hz
                    .iter()
                    .zip(&f.energy)
                    .map(|(&x, &e)| e * 10f64.powf(-interp_log(&xs, &ys, x) / 10.0))
                    .collect(),
                octaves: f.octaves,
            }),
        }
    }
}

/// `freq dB [...]` lines (see [`MicCalibration::parse`]); errors name the line.
pub(crate) fn parse_points(
    text: &str,
    what: &'static str,
) -> Result<Vec<(f64, f64)>, CalibrateError> {
    let err = |line: usize, message: String| CalibrateError::PointsFile {
        what,
        line,
        message,
    };
    let mut points: Vec<(f64, f64)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let ln = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['*', '#', '"']) {
            continue;
        }
        let fields: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .filter(|s| !s.is_empty())
            .collect();
        let f = fields[0].parse::<f64>();
        if f.is_err() && points.is_empty() {
            continue; // a header such as "Freq(Hz) SPL(dB) Phase"
        }
        let f = f.map_err(|_| {
            err(
                ln,
                format!(
                    "`{}` is not a frequency; write `frequency dB` per line, comments start with * or #",
                    fields[0]
                ),
            )
        })?;
        let db = fields
            .get(1)
            .ok_or_else(|| err(ln, "a dB value is missing after the frequency".into()))?
            .parse::<f64>()
            .map_err(|_| err(ln, format!("`{}` is not a dB value", fields[1])))?;
        if !(f > 0.0 && f.is_finite() && db.is_finite()) {
            return Err(err(ln, "frequency must be above 0 Hz and dB finite".into()));
        }
        if let Some(&(prev, _)) = points.last()
            && f <= prev
        {
            return Err(err(
                ln,
                format!(
                    "frequency {f} Hz is not above the previous line's {prev} Hz; sort the lines by frequency"
                ),
            ));
        }
        points.push((f, db));
    }
    if points.is_empty() {
        return Err(err(
            text.lines().count().max(1),
            "there are no `frequency dB` lines".to_string(),
        ));
    }
    Ok(points)
}
