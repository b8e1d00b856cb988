//! `compose-shard config`.

use crate::config::ConfigCommand;
use crate::errors::{Error, ExitCode};

/// Execute `compose-shard config`.
pub fn execute(_cfg: ConfigCommand) -> Result<ExitCode, Error> {
    Err(Error::NotImplemented("config"))
}
