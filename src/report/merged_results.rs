//! The end of a run in one call: merged `junit.xml`, `coverage.xml` (when any group has
//! coverage) and `timeline.html` written into the result folder, all staged and renamed into
//! place only once every one of them succeeded.

use super::atomic::StagedFile;
use super::coverage_merge::merge_coverage;
use super::coverage_write::CoverageTotals;
use super::error::ReportError;
use super::junit_merge::merge_junit;
use super::junit_types::{GroupResult, JunitTotals};
use super::results_layout::ResultsLayout;
use super::summary::GroupSummary;
use super::timeline::render_timeline_html;

/// What [`write_merged_results`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedResults {
    /// Totals of the merged JUnit.
    pub junit: JunitTotals,
    /// Totals of the merged coverage, when any group produced coverage XML.
    pub coverage: Option<CoverageTotals>,
}

/// Merge the groups' results into `layout`'s `junit.xml` and `coverage.xml`, and draw
/// `timeline.html` from `summaries`. `expected` = the collected node ids, if known.
pub fn write_merged_results(
    layout: &ResultsLayout,
    groups: &[GroupResult],
    expected: Option<&[String]>,
    summaries: &[GroupSummary],
    title: &str,
) -> Result<MergedResults, ReportError> {
    let mut junit_file = StagedFile::create(&layout.merged_junit())?;
    let junit = merge_junit(groups, expected, junit_file.writer())?;
    let coverage_inputs: Vec<_> = groups.iter().filter_map(|g| g.coverage.clone()).collect();
    let mut coverage = None;
    let mut coverage_file = None;
    if !coverage_inputs.is_empty() {
        let mut file = StagedFile::create(&layout.merged_coverage())?;
        coverage = Some(merge_coverage(&coverage_inputs, file.writer())?);
        coverage_file = Some(file);
    }
    let mut timeline = StagedFile::create(&layout.timeline())?;
    timeline
        .writer()
        .write_all(render_timeline_html(summaries, title).as_bytes())
        .map_err(|source| ReportError::Output {
            what: "timeline HTML",
            source,
        })?;
    junit_file.commit()?;
    if let Some(file) = coverage_file {
        file.commit()?;
    }
    timeline.commit()?;
    Ok(MergedResults { junit, coverage })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::phase::{Phase, PhaseSpan};

    #[test]
    fn writes_all_three_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = ResultsLayout::new(dir.path());
        std::fs::create_dir_all(layout.group_dir(1)).unwrap();
        std::fs::write(
            layout.junit(1),
            r#"<testsuites><testsuite name="pytest"><testcase classname="t" name="test_a" time="1.5"/></testsuite></testsuites>"#,
        )
        .unwrap();
        std::fs::write(
            layout.coverage(1),
            r#"<coverage version="7" branch-rate="0"><sources><source>/s</source></sources><packages><package name="."><classes><class name="a.py" filename="a.py"><methods/><lines><line number="1" hits="1"/><line number="2" hits="0"/></lines></class></classes></package></packages></coverage>"#,
        )
        .unwrap();
        let groups = vec![
            layout.group_result(1, 2).unwrap(),
            layout.group_result(2, 2).unwrap(),
        ];
        let summaries = vec![GroupSummary {
            group: 1,
            phases: vec![PhaseSpan {
                phase: Phase::Tests,
                start: 0.0,
                end: 1.5,
            }],
            ..GroupSummary::default()
        }];
        let merged = write_merged_results(&layout, &groups, None, &summaries, "run").unwrap();
        assert_eq!(
            (merged.junit.counts.tests, merged.junit.counts.errors),
            (2, 1),
            "group 2 is missing"
        );
        assert_eq!(merged.coverage.unwrap().line_rate, "0.5");
        for path in [
            layout.merged_junit(),
            layout.merged_coverage(),
            layout.timeline(),
        ] {
            assert!(path.is_file(), "{}", path.display());
        }

        // A broken coverage input: nothing is replaced, nothing is left behind.
        std::fs::write(layout.coverage(1), "<coverage><packages>").unwrap();
        let before = std::fs::read(layout.merged_junit()).unwrap();
        let err = write_merged_results(&layout, &groups, None, &summaries, "run").unwrap_err();
        assert!(err.to_string().contains("coverage.xml:1: "), "{err}");
        assert_eq!(std::fs::read(layout.merged_junit()).unwrap(), before);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
