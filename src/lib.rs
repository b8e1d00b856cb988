//! compose-shard: run a pytest suite in N isolated copies of its docker-compose project.
//!
//! Data flows one way: [`cli`] parses flags into a validated [`config`]; [`compose`] loads the
//! project and isolates one copy per group; [`plan`] splits the collected tests into groups;
//! [`run`] orchestrates the groups through [`engine`] (the only module that talks to Docker)
//! and emits events; [`report`] merges results and writes summaries.
#![warn(missing_docs)]

pub mod cli;
pub mod commands;
pub mod compose;
pub mod config;
pub mod duration;
pub mod durations_store;
pub mod engine;
pub mod errors;
pub mod labels;
pub mod machine;
pub mod node_id;
pub mod plan;
pub mod pyproject;
pub mod report;
pub mod run;
pub mod selection;
pub mod test_list;

pub use errors::{Error, ExitCode};

/// Parse `std::env::args`, run the chosen subcommand, print any error, and return the exit code.
pub fn main_entry() -> i32 {
    let cli = match cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match commands::dispatch(cli) {
        Ok(code) => code as i32,
        Err(err) => {
            eprintln!("error: {}", errors::render_chain(&err));
            err.exit_code() as i32
        }
    }
}
