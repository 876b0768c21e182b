//! Errors of the file edge. Every message names the file it is about.

use std::path::PathBuf;

/// Reading or writing an audio file failed.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be opened or created.
    #[error("{}: cannot open: {error}", path.display())]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The container or codec is not one klang reads, or the header is damaged.
    #[error(
        "{}: not a readable audio file ({detail}); klang reads WAV (16/24/32-bit int, 32-bit float), FLAC and Ogg Vorbis",
        path.display()
    )]
    Unsupported { path: PathBuf, detail: String },
    /// The audio data is damaged after a valid header.
    #[error("{}: corrupt audio data after frame {frame}: {detail}", path.display())]
    Corrupt {
        path: PathBuf,
        frame: u64,
        detail: String,
    },
    /// The header promises more frames than the file holds.
    #[error(
        "{}: truncated: the file ends after {read} of the {expected} frames its header announces",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        read: u64,
        expected: u64,
    },
    /// A valid file with no audio frames.
    #[error("{}: contains no audio frames", path.display())]
    Empty { path: PathBuf },
    /// More channels than klang's stereo chain takes.
    #[error(
        "{}: has {channels} channels; klang takes mono or stereo input (downmix first, e.g. `sox IN OUT remix 1,2`)",
        path.display()
    )]
    TooManyChannels { path: PathBuf, channels: usize },
    /// Writing the output failed; the target was left untouched.
    #[error("{}: cannot write: {detail}", path.display())]
    Write { path: PathBuf, detail: String },
}

/// Drawing a response plot failed; the target was left untouched.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The file name does not end in `.png` or `.svg`.
    #[error("{}: unknown plot format; name the file *.png or *.svg", path.display())]
    UnknownFormat { path: PathBuf },
    /// There was nothing to draw.
    #[error("{}: no curves to plot", path.display())]
    NoCurves { path: PathBuf },
    /// A curve's frequency, magnitude and phase lists differ in length, or are empty.
    #[error("{}: curve {name:?} is malformed: {detail}", path.display())]
    BadCurve {
        path: PathBuf,
        name: String,
        detail: String,
    },
    /// Rendering or writing the file failed.
    #[error("{}: cannot draw the plot: {detail}", path.display())]
    Draw { path: PathBuf, detail: String },
}
