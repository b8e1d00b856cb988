//! `compose-shard run`.

use crate::config::RunConfig;
use crate::errors::{Error, ExitCode};

/// Execute `compose-shard run`.
pub fn execute(_cfg: RunConfig) -> Result<ExitCode, Error> {
    Err(Error::NotImplemented("run"))
}
