//! `compose-shard clean`.

use crate::config::CleanConfig;
use crate::errors::{Error, ExitCode};

/// Execute `compose-shard clean`.
pub fn execute(_cfg: CleanConfig) -> Result<ExitCode, Error> {
    Err(Error::NotImplemented("clean"))
}
