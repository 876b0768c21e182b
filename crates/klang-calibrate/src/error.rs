//! The one error type of the crate: every bad recording or parameter says which.

/// Why a measurement or a fit could not be made. Messages are lower-case and
/// say how to fix the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrateError {
    /// A sweep or analysis parameter is out of range.
    #[error("invalid {name} {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name as the user spells it.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What is allowed.
        reason: String,
    },
    /// The recording's sample rate differs from the sweep's.
    #[error(
        "the recording is at {recording} Hz but the sweep at {sweep} Hz: record at {sweep} Hz (or resample the recording)"
    )]
    SampleRateMismatch {
        /// The sweep's rate.
        sweep: u32,
        /// The recording's rate.
        recording: u32,
    },
    /// The recording is shorter than the sweep, or ends before the sweep does.
    #[error(
        "the recording is too short: {recording_s:.2} s, but the sweep needs at least {needed_s:.2} s; start recording before the sweep plays and stop after it ends"
    )]
    TooShort {
        /// Length of the recording.
        recording_s: f64,
        /// Length it must have at least.
        needed_s: f64,
    },
    /// The recording holds no signal.
    #[error(
        "the recording is silent (peak {peak_dbfs:.1} dBFS): check that the microphone is connected, unmuted and its input gain up"
    )]
    Silent {
        /// Loudest sample in dBFS.
        peak_dbfs: f64,
    },
    /// The recording reaches full scale.
    #[error(
        "the recording clips ({samples} samples at full scale, first at {first_s:.3} s): lower the sweep level or the microphone gain"
    )]
    Clipped {
        /// Samples at or beyond full scale.
        samples: usize,
        /// Time of the first of them.
        first_s: f64,
    },
    /// The sweep cannot be found in the recording.
    #[error(
        "the recording does not contain the sweep (impulse peak only {peak_to_noise_db:.1} dB above the noise, need {needed_db:.0} dB): record the sweep file given with --sweep, with the microphone near the speaker"
    )]
    NoSweep {
        /// Peak of the impulse response over its noise floor.
        peak_to_noise_db: f64,
        /// Needed ratio.
        needed_db: f64,
    },
    /// The sweep starts before the recording or ends after it.
    #[error(
        "the sweep is cut off: it starts {start_s:.2} s into a {recording_s:.2} s recording and lasts {sweep_s:.2} s; start recording before the sweep plays and stop after it ends"
    )]
    Truncated {
        /// Where the sweep starts (negative: before the recording).
        start_s: f64,
        /// The sweep's length.
        sweep_s: f64,
        /// The recording's length.
        recording_s: f64,
    },
    /// The reference file is not a sweep this crate can analyse.
    #[error("the sweep file is not an exponential sweep: {reason}; write one with `klang sweep`")]
    NotASweep {
        /// What is wrong.
        reason: String,
    },
    /// A line of a `frequency dB` file (microphone calibration, target) cannot be read.
    #[error("{what} line {line}: {message}")]
    PointsFile {
        /// Which file: "microphone calibration" or "target curve".
        what: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Nothing to average, or responses on different grids.
    #[error("cannot average: {reason}")]
    Average {
        /// What is wrong.
        reason: String,
    },
    /// A target curve is unusable.
    #[error("invalid target: {reason}")]
    Target {
        /// What is wrong.
        reason: String,
    },
}

/// Shorthand for parameter checks.
pub(crate) fn check(
    ok: bool,
    name: &'static str,
    value: f64,
    reason: impl Into<String>,
) -> Result<(), CalibrateError> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(CalibrateError::InvalidParameter {
            name,
            value,
            reason: reason.into(),
        })
    }
}
