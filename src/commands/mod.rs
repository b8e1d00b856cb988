//! One file per subcommand: each turns a validated config into actions and an exit code.

mod clean;
mod config;
mod merge;
mod plan;
mod run;

use crate::config::Command;
use crate::errors::{Error, ExitCode};

/// Run one subcommand.
pub fn dispatch(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Run(cfg) => run::execute(*cfg),
        Command::Plan(cfg) => plan::execute(*cfg),
        Command::Merge(cfg) => merge::execute(cfg),
        Command::Clean(cfg) => clean::execute(cfg),
        Command::Config(cfg) => config::execute(cfg),
    }
}
