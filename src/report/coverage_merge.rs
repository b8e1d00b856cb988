//! Merging Cobertura reports of the same code base (one per group) into what `coverage
//! combine` + `coverage xml` would have written for the whole run.
//!
//! Exactness (see `docs/reports.md`): a statement is covered if any group covered it; a branch
//! line's missing destinations are those missing in every group, so `taken = total -
//! |missing|`; every count and rate is then recomputed at class, package and root level with
//! coverage.py's formatting and ordering. Reports from different machines are matched by each
//! class's `filename`, which coverage.py writes relative to its source root.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::coverage_model::MergedCoverage;
use super::coverage_read::read_coverage;
use super::coverage_write::{write_coverage, CoverageTotals};
use super::error::ReportError;

/// Merge Cobertura files into one, written to `out`.
pub fn merge_coverage(
    inputs: &[PathBuf],
    out: &mut dyn Write,
) -> Result<CoverageTotals, ReportError> {
    if inputs.is_empty() {
        return Err(ReportError::Incompatible(
            "no coverage XML to merge: pass at least one Cobertura file".into(),
        ));
    }
    let mut merged = MergedCoverage::default();
    for (i, path) in inputs.iter().enumerate() {
        read_coverage(path, &mut merged, i == 0)?;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut out = BufWriter::with_capacity(1 << 16, out);
    write_coverage(&merged, now, &mut out)
}
