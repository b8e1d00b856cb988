//! `compose-shard merge`.

use crate::config::MergeConfig;
use crate::errors::{Error, ExitCode};

/// Execute `compose-shard merge`.
pub fn execute(_cfg: MergeConfig) -> Result<ExitCode, Error> {
    Err(Error::NotImplemented("merge"))
}
