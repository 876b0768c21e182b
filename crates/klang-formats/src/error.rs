//! The one error type of the crate.

/// An import or export failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    /// The input text has a problem at a line.
    #[error("line {line}: {message} (help: {help})")]
    Parse {
        /// 1-based line in the input.
        line: usize,
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: String,
    },
    /// The configuration uses something the target format cannot express.
    #[error("{format} cannot carry {what} (help: {help})")]
    CannotCarry {
        /// The target format.
        format: &'static str,
        /// The part of the configuration, with its field path.
        what: String,
        /// How to get an export anyway.
        help: String,
    },
    /// The imported settings are not a valid klang configuration.
    #[error("line {line}: {source}")]
    Invalid {
        /// 1-based line of the offending value in the input (1 when unknown).
        line: usize,
        /// klang's validation error.
        source: klang_dsp::ConfigError,
    },
}

impl FormatError {
    /// 1-based input line of the problem, for import errors.
    pub fn line(&self) -> Option<usize> {
        match self {
            FormatError::Parse { line, .. } | FormatError::Invalid { line, .. } => Some(*line),
            FormatError::CannotCarry { .. } => None,
        }
    }
}

pub(crate) fn parse_err(
    line: usize,
    message: impl Into<String>,
    help: impl Into<String>,
) -> FormatError {
    FormatError::Parse {
        line,
        message: message.into(),
        help: help.into(),
    }
}

pub(crate) fn cannot(
    format: &'static str,
    what: impl Into<String>,
    help: impl Into<String>,
) -> FormatError {
    FormatError::CannotCarry {
        format,
        what: what.into(),
        help: help.into(),
    }
}
