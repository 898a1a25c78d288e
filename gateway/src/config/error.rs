//! Error types for manifest loading: a [`Location`] in the manifest file, one
//! [`ConfigError`] per problem, and [`ConfigErrors`] carrying every problem found.
//!
//! Invariants: lines and columns are 1-based (as editors show them); a message
//! never contains a value that came from `${VAR}` substitution, because such
//! values may be secrets and errors end up in logs.

use std::fmt;
use std::path::PathBuf;

/// A position in a manifest file, so operators can jump straight to a problem.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The manifest path as it was given to [`super::load`] / [`super::parse`].
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One problem in a manifest. Displays as `path:line:col: message` (the
/// compiler-style format editors and terminals turn into links).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", display_error(.location, .message))]
pub struct ConfigError {
    /// Where the problem is; `None` when it concerns the file as a whole
    /// (e.g. it cannot be read).
    pub location: Option<Location>,
    /// Human-readable description, without the location prefix.
    pub message: String,
}

impl ConfigError {
    /// Creates an error at `location`.
    pub fn at(location: Location, message: impl Into<String>) -> Self {
        Self {
            location: Some(location),
            message: message.into(),
        }
    }

    /// Creates an error that has no position in the file.
    pub fn whole_file(message: impl Into<String>) -> Self {
        Self {
            location: None,
            message: message.into(),
        }
    }
}

fn display_error(location: &Option<Location>, message: &str) -> String {
    match location {
        Some(location) => format!("{location}: {message}"),
        None => message.to_owned(),
    }
}

/// Every problem found in a manifest, in file order. Reporting them all at once
/// saves the operator an edit-restart cycle per mistake. Never empty when
/// returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", display_errors(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual problems.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

fn display_errors(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_formats() {
        let at = ConfigError::at(
            Location {
                file: "cams.yaml".into(),
                line: 3,
                column: 7,
            },
            "boom",
        );
        assert_eq!(at.to_string(), "cams.yaml:3:7: boom");
        let whole = ConfigError::whole_file("cannot read cams.yaml");
        assert_eq!(whole.to_string(), "cannot read cams.yaml");
        let all = ConfigErrors(vec![at, whole]);
        assert_eq!(
            all.to_string(),
            "cams.yaml:3:7: boom\ncannot read cams.yaml"
        );
    }
}
