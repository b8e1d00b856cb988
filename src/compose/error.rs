//! Errors from loading or isolating a compose project. Each message names the file (and line
//! and column when known), what was found and what was expected.

use std::path::PathBuf;

/// Errors from loading or isolating a compose project.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// No compose file was found.
    #[error("no compose file found in {}: expected compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml (or pass -f FILE)", dir.display())]
    NoFile {
        /// Where we looked.
        dir: PathBuf,
    },
    /// A file could not be read.
    #[error("failed to read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not valid YAML, or a value has the wrong type or form.
    #[error("{}:{}: {message}", file.display(), location(*line, *column))]
    Invalid {
        /// The compose (or env) file.
        file: PathBuf,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// 1-based column, 0 when unknown.
        column: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// `${V:?message}` or `${V?message}` with `V` missing: the file's own message.
    #[error("{}:{}: required variable {name} is missing a value: {message}", file.display(), location(*line, 0))]
    MissingVariable {
        /// The compose file.
        file: PathBuf,
        /// 1-based line of the key holding the expression, 0 when unknown.
        line: usize,
        /// The variable.
        name: String,
        /// The message written in the file.
        message: String,
    },
    /// The project refers to something that does not exist (a service, an extends target...).
    #[error("{0}")]
    Reference(String),
    /// No test service could be chosen.
    #[error("{0}")]
    TestService(String),
}

fn location(line: usize, column: usize) -> String {
    match (line, column) {
        (0, _) => "?".to_string(),
        (l, 0) => l.to_string(),
        (l, c) => format!("{l}:{c}"),
    }
}
