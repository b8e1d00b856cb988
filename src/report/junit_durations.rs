//! Test durations from a pytest JUnit file, for `--store-durations`.
//!
//! pytest's testcase `time` is already setup + call + teardown (`junit_duration_report =
//! total`, the default), which is what pytest-split stores. When a node id has several
//! testcase elements (older pytest wrote a teardown error as a second testcase), their times
//! are summed.

use std::path::Path;

use indexmap::IndexMap;

use super::error::ReportError;
use super::junit_scan::scan_junit;
use super::node_id::NodeIdIndex;

/// node id -> seconds (setup+call+teardown summed per node id, as pytest-split stores), from a
/// pytest JUnit file.
pub fn junit_durations(path: &Path) -> Result<Vec<(String, f64)>, ReportError> {
    junit_durations_with(path, &NodeIdIndex::default())
}

/// Like [`junit_durations`], resolving node ids exactly against the collected ones.
pub fn junit_durations_with(
    path: &Path,
    index: &NodeIdIndex,
) -> Result<Vec<(String, f64)>, ReportError> {
    let mut durations: IndexMap<String, f64> = IndexMap::new();
    scan_junit(path, None, |case| {
        // The error testcases `merge` writes for missing groups measured nothing.
        if case.classname != "compose-shard" {
            let id = index.resolve(&case.classname, &case.name, case.file.as_deref());
            *durations.entry(id).or_insert(0.0) += case.time;
        }
    })?;
    Ok(durations.into_iter().collect())
}
