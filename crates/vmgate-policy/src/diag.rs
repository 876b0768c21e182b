//! Diagnostics: every problem found in a policy, each with a place, a message and a fix.

use std::fmt;
use std::ops::Range;

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Byte range in the policy text; `None` when the problem is not tied to one place.
    pub span: Option<Range<usize>>,
    /// Dotted path of the field, e.g. `console[1].allow[0].hours`.
    pub field: String,
    /// What is wrong, lower-case and concrete.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Diagnostic {
    /// A diagnostic at `span` for `field`.
    pub fn new(
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            span,
            field: field.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// The policy text with its name, to turn byte spans into `file:line:column`.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The file name shown in messages.
    pub name: &'a str,
    /// The whole policy text.
    pub text: &'a str,
}

impl Source<'_> {
    /// 1-based line and column (in characters) of byte offset `at`.
    #[must_use]
    pub fn line_col(&self, at: usize) -> (usize, usize) {
        let at = at.min(self.text.len());
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self.text[line_start..at].chars().count() + 1;
        (line, col)
    }

    fn line_text(&self, line: usize) -> &str {
        self.text.lines().nth(line - 1).unwrap_or("")
    }
}

/// Every problem found in one policy, in file order. Returned as an error by
/// [`crate::check`]; `Display` renders them all, rustc-style.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    /// The file name the spans refer to.
    pub file: String,
    /// The policy text the spans refer to.
    pub text: String,
    /// All problems; never empty when returned as an error.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// `file:line:column` of one diagnostic.
    #[must_use]
    pub fn location(&self, d: &Diagnostic) -> String {
        let src = Source {
            name: &self.file,
            text: &self.text,
        };
        match &d.span {
            Some(span) => {
                let (l, c) = src.line_col(span.start);
                format!("{}:{l}:{c}", self.file)
            }
            None => self.file.clone(),
        }
    }

    /// The diagnostics as JSON-friendly records with their locations resolved.
    #[must_use]
    pub fn located(&self) -> Vec<LocatedDiagnostic> {
        let src = Source {
            name: &self.file,
            text: &self.text,
        };
        self.items
            .iter()
            .map(|d| {
                let (line, column) = d.span.as_ref().map_or((0, 0), |s| src.line_col(s.start));
                LocatedDiagnostic {
                    file: self.file.clone(),
                    line,
                    column,
                    field: d.field.clone(),
                    message: d.message.clone(),
                    hint: d.hint.clone(),
                }
            })
            .collect()
    }
}

/// A diagnostic with its place resolved to line and column (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LocatedDiagnostic {
    /// Policy file name.
    pub file: String,
    /// 1-based line, 0 when the problem has no single place.
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
    /// Dotted field path.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let src = Source {
            name: &self.file,
            text: &self.text,
        };
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(
                f,
                "{}: error: {} ({})",
                self.location(d),
                d.message,
                d.field
            )?;
            if let Some(span) = &d.span {
                let (line, col) = src.line_col(span.start);
                let text = src.line_text(line);
                let width = self.text[span.clone()]
                    .lines()
                    .next()
                    .map_or(1, |s| s.chars().count().max(1));
                writeln!(f, "{line:>5} | {text}")?;
                writeln!(f, "      | {}{}", " ".repeat(col - 1), "^".repeat(width))?;
            }
            write!(f, "      = help: {}", d.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = Source {
            name: "p.toml",
            text: "a = 1\nbé = \"x\"\n",
        };
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(6), (2, 1));
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(src.line_col(12), (2, 6));
    }
}
