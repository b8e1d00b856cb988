//! `compose-shard plan`.

use crate::config::PlanConfig;
use crate::errors::{Error, ExitCode};

/// Execute `compose-shard plan`.
pub fn execute(_cfg: PlanConfig) -> Result<ExitCode, Error> {
    Err(Error::NotImplemented("plan"))
}
