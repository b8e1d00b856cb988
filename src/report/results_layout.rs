//! The result folder `run` writes and `merge` reads (documented in docs/reports.md):
//!
//! ```text
//! <out>/plan.json            the plan (its "groups"[]."group" and "tests" are what merge reads)
//! <out>/junit.xml            merged JUnit          <out>/coverage.xml   merged Cobertura
//! <out>/timeline.html        phase timeline
//! <out>/g<k>/junit.xml       group k's pytest JUnit XML
//! <out>/g<k>/coverage.xml    group k's Cobertura XML (when coverage was requested)
//! <out>/g<k>/output.log      group k's combined stdout/stderr
//! <out>/g<k>/missing.txt     present only when group k's results are missing: one line, why
//! ```

use std::path::{Path, PathBuf};

use super::error::ReportError;
use super::junit_types::GroupResult;

/// Paths inside one result folder: every path and file name of the layout above is defined
/// here and nowhere else (the test container writes [`ResultsLayout::JUNIT`] and
/// [`ResultsLayout::COVERAGE`] under these names, so they land in `g<k>/` as they are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsLayout {
    /// The folder (`--out`, default [`ResultsLayout::DEFAULT_ROOT`]).
    pub root: PathBuf,
}

impl ResultsLayout {
    /// The folder `run` writes into when neither `--out` nor pyproject.toml names one.
    pub const DEFAULT_ROOT: &'static str = "compose-shard-results";
    /// The plan's file name, in the root.
    pub const PLAN: &'static str = "plan.json";
    /// The JUnit file's name: merged in the root, one group's in `g<k>/`.
    pub const JUNIT: &'static str = "junit.xml";
    /// The Cobertura file's name: merged in the root, one group's in `g<k>/`.
    pub const COVERAGE: &'static str = "coverage.xml";
    /// A group's combined stdout/stderr, in `g<k>/`.
    pub const OUTPUT_LOG: &'static str = "output.log";
    /// Why a group's results are missing, in `g<k>/`.
    pub const MISSING: &'static str = "missing.txt";
    /// The phase timeline, in the root.
    pub const TIMELINE: &'static str = "timeline.html";

    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ResultsLayout { root: root.into() }
    }

    /// The name of group `group`'s folder: `g<k>`.
    pub fn group_dir_name(group: usize) -> String {
        format!("g{group}")
    }

    /// The group whose folder is named `name` (`g<k>`, `k` >= 1 written without leading
    /// zeros), if it is one.
    pub fn group_of_dir_name(name: &str) -> Option<usize> {
        let k: usize = name.strip_prefix('g')?.parse().ok()?;
        (k >= 1 && name == Self::group_dir_name(k)).then_some(k)
    }

    /// `<out>/plan.json`.
    pub fn plan(&self) -> PathBuf {
        self.root.join(Self::PLAN)
    }

    /// `<out>/g<k>`.
    pub fn group_dir(&self, group: usize) -> PathBuf {
        self.root.join(Self::group_dir_name(group))
    }

    /// `<out>/g<k>/junit.xml`.
    pub fn junit(&self, group: usize) -> PathBuf {
        self.group_dir(group).join(Self::JUNIT)
    }

    /// `<out>/g<k>/coverage.xml`.
    pub fn coverage(&self, group: usize) -> PathBuf {
        self.group_dir(group).join(Self::COVERAGE)
    }

    /// `<out>/g<k>/output.log`.
    pub fn output_log(&self, group: usize) -> PathBuf {
        self.group_dir(group).join(Self::OUTPUT_LOG)
    }

    /// `<out>/g<k>/missing.txt`.
    pub fn missing(&self, group: usize) -> PathBuf {
        self.group_dir(group).join(Self::MISSING)
    }

    /// `<out>/junit.xml`.
    pub fn merged_junit(&self) -> PathBuf {
        self.root.join(Self::JUNIT)
    }

    /// `<out>/coverage.xml`.
    pub fn merged_coverage(&self) -> PathBuf {
        self.root.join(Self::COVERAGE)
    }

    /// `<out>/timeline.html`.
    pub fn timeline(&self) -> PathBuf {
        self.root.join(Self::TIMELINE)
    }

    /// Group numbers that have a `g<k>` folder here, ascending.
    pub fn groups_present(&self) -> Result<Vec<usize>, ReportError> {
        let entries = std::fs::read_dir(&self.root).map_err(|source| ReportError::Io {
            action: "list",
            path: self.root.clone(),
            source,
        })?;
        let mut groups: Vec<usize> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| Self::group_of_dir_name(e.file_name().to_str()?))
            .collect();
        groups.sort_unstable();
        Ok(groups)
    }

    /// What group `group` (of `groups`) left here.
    pub fn group_result(&self, group: usize, groups: usize) -> Result<GroupResult, ReportError> {
        let existing = |p: PathBuf| p.is_file().then_some(p);
        let missing_path = self.missing(group);
        let missing_reason = match std::fs::read_to_string(&missing_path) {
            Ok(text) => Some(
                Some(text.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| {
                        "the group's results are missing (missing.txt is empty)".into()
                    }),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ReportError::Io {
                    action: "read",
                    path: missing_path,
                    source,
                })
            }
        };
        Ok(GroupResult {
            group,
            groups,
            junit: existing(self.junit(group)),
            coverage: existing(self.coverage(group)),
            missing_reason,
            system_err: None,
        })
    }
}

/// The groups of a `plan.json` as `(group, node ids)`; only those two fields are read, so the
/// plan's other fields may change freely.
pub fn read_plan_groups(path: &Path) -> Result<Vec<(usize, Vec<String>)>, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let malformed = |line: usize, message: String| ReportError::Malformed {
        file: path.display().to_string(),
        line,
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| malformed(e.line(), e.to_string()))?;
    let groups = value
        .get("groups")
        .and_then(|g| g.as_array())
        .ok_or_else(|| malformed(1, "no \"groups\" array: not a compose-shard plan".into()))?;
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let number = g
                .get("group")
                .and_then(|n| n.as_u64())
                .map_or(i + 1, |n| n as usize);
            let tests = g
                .get("tests")
                .and_then(|t| t.as_array())
                .ok_or_else(|| malformed(1, format!("group {number} has no \"tests\" array")))?
                .iter()
                .map(|t| {
                    t.as_str().map(str::to_string).ok_or_else(|| {
                        malformed(1, format!("group {number}: a test is not a string: {t}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((number, tests))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_groups_and_missing_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let layout = ResultsLayout::new(dir.path());
        for k in [1, 3, 10] {
            std::fs::create_dir_all(layout.group_dir(k)).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("g01")).unwrap();
        std::fs::write(layout.junit(1), "<testsuites/>").unwrap();
        std::fs::write(layout.missing(3), "timed out after 30m\n").unwrap();
        assert_eq!(layout.groups_present().unwrap(), vec![1, 3, 10]);
        let g1 = layout.group_result(1, 10).unwrap();
        assert_eq!(g1.junit, Some(layout.junit(1)));
        assert_eq!(g1.coverage, None);
        let g3 = layout.group_result(3, 10).unwrap();
        assert_eq!(g3.missing_reason.as_deref(), Some("timed out after 30m"));
    }

    #[test]
    fn group_folder_names_round_trip_and_nothing_else_is_a_group() {
        assert_eq!(ResultsLayout::group_dir_name(12), "g12");
        assert_eq!(ResultsLayout::group_of_dir_name("g12"), Some(12));
        for name in ["g0", "g01", "g", "g-1", "g1x", "x1", "G1"] {
            assert_eq!(ResultsLayout::group_of_dir_name(name), None, "{name}");
        }
        let layout = ResultsLayout::new("out");
        assert_eq!(layout.output_log(3), Path::new("out/g3/output.log"));
        assert_eq!(layout.plan(), Path::new("out/plan.json"));
        assert_eq!(layout.timeline(), Path::new("out/timeline.html"));
    }

    #[test]
    fn reads_plan_groups_and_names_bad_plans() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        std::fs::write(
            &plan,
            r#"{"version":1,"groups":[{"group":1,"tests":["a.py::t"]},{"group":2,"tests":[]}]}"#,
        )
        .unwrap();
        assert_eq!(
            read_plan_groups(&plan).unwrap(),
            vec![(1, vec!["a.py::t".to_string()]), (2, vec![])]
        );
        std::fs::write(&plan, "{\n\"groups\": 3}").unwrap();
        let err = read_plan_groups(&plan).unwrap_err().to_string();
        assert!(err.contains("plan.json:1: no \"groups\" array"), "{err}");
    }
}
