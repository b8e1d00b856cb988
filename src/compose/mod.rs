//! Compose projects: load files the way Docker Compose does, and isolate one copy per group.

pub mod model;

pub use model::*;

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
}
