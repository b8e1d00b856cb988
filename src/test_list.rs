//! `--tests FILE`: a test list read from a file (node ids one per line, or the raw output of
//! `pytest --collect-only -q`), for `run` and `plan`.
//!
//! The parsing is `plan::parse_collect_output`, which stays pure; this module reads the file
//! and turns its problems into errors that name it and say what to pass instead.

use std::path::Path;

use crate::errors::Error;
use crate::plan::{self, PlanError};

/// A `--tests` list: UTF-8 node ids (or `pytest --collect-only -q` output), not empty.
pub fn read_tests(path: &Path) -> Result<Vec<String>, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::Usage(format!(
            "test list {}: byte {} is not UTF-8 text; pass the output of `pytest --collect-only -q` (node ids one per line)",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    let tests = plan::parse_collect_output(&text).map_err(|source| {
        Error::Plan(PlanError::TestList {
            file: path.display().to_string(),
            source,
        })
    })?;
    if tests.is_empty() {
        return Err(Error::Usage(format!(
            "test list {} holds no pytest node ids (lines like `tests/test_x.py::test_a`); pass the output of `pytest --collect-only -q`",
            path.display()
        )));
    }
    Ok(tests)
}
