//! Compose projects: load files the way Docker Compose does ([`load`]), and isolate one copy
//! per group ([`isolate`]).
//!
//! The loader's core works on strings and in-memory values; only [`load`] touches the
//! filesystem (compose files, `.env`, `env_file`s, `extends` files).

mod canonical;
mod discover;
mod dotenv;
mod environment;
mod error;
mod extends;
mod files;
mod graph;
mod include;
mod interpolate;
mod isolate;
mod load;
mod merge;
pub mod model;
mod names;
mod ports;
mod prepare;
mod profiles;
mod project_binds;
mod references;
mod run_flags;
mod select;
mod source;
mod test_service;
mod toplevel;
mod validate;
mod values;
mod volumes;
mod warnings;
mod yaml_scan;

pub use error::ComposeError;
pub use files::{file_mounts, file_mounts_by_service, FileMount, FileMountSource};
pub use graph::{MissingService, ServiceGraph};
pub use isolate::{isolate, Isolation};
pub use load::{load, load_from_str, Loaded};
pub use model::*;
pub use names::{normalize_project_name, parse_byte_size};
pub use project_binds::{project_tree_binds, without_project_binds, ProjectBind};
pub use run_flags::{apply_run_flags, RunFlags};
pub use select::{restrict, run_closure};
pub use test_service::{select_test_service, TestServiceChoice};
