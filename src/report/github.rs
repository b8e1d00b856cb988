//! GitHub Actions output: the Markdown appended to `$GITHUB_STEP_SUMMARY`, `::error`
//! workflow-command annotations for failed tests, and `::group::` folding of a group's log.
//! Pure text: the caller checks `GITHUB_ACTIONS` and writes where it belongs.

use std::fmt::Write as _;

use super::junit_types::{FailedTest, FailureKind, JunitTotals};
use super::summary::{format_seconds, wall_time, GroupSummary};

/// How many failures the step summary lists before saying how many more there are.
const SUMMARY_FAILURES: usize = 50;

/// The blob URL prefix failure links point into, from the variables Actions sets
/// (`GITHUB_SERVER_URL`, `GITHUB_REPOSITORY`, `GITHUB_SHA`).
pub fn github_blob_base(server: &str, repository: &str, sha: &str) -> String {
    format!("{}/{repository}/blob/{sha}", server.trim_end_matches('/'))
}

/// Markdown for `$GITHUB_STEP_SUMMARY`: verdict, per-group table, totals, problems, and the
/// failures linked to `file#Lline` under `link_base` (see [`github_blob_base`]) when given.
pub fn github_step_summary(
    groups: &[GroupSummary],
    totals: &JunitTotals,
    link_base: Option<&str>,
) -> String {
    let mut md = String::new();
    let verdict = if totals.all_passed() {
        "all passed".to_string()
    } else {
        format!(
            "{} failed, {} errors",
            totals.counts.failures, totals.counts.errors
        )
    };
    let _ = writeln!(
        md,
        "## compose-shard: {} tests in {} groups: {verdict}\n",
        totals.counts.tests,
        groups.len()
    );
    md.push_str("| group | tests | passed | failed | errors | skipped | time | status |\n");
    md.push_str("|---:|---:|---:|---:|---:|---:|---:|:---|\n");
    for g in groups {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            g.group,
            g.tests,
            g.passed,
            g.failed,
            g.errors,
            g.skipped,
            wall_time(g).map_or("-".into(), format_seconds),
            cell(&g.status)
        );
    }
    let _ = writeln!(
        md,
        "| **total** | **{}** | **{}** | **{}** | **{}** | **{}** | {} | |",
        totals.counts.tests,
        totals.counts.passed,
        totals.counts.failures,
        totals.counts.errors,
        totals.counts.skipped,
        format_seconds(totals.counts.time)
    );
    warnings(&mut md, groups);
    list(&mut md, "Ran in more than one group", &totals.duplicates);
    list(&mut md, "Collected but never run", &totals.never_run);
    failures(&mut md, &totals.failed_tests, link_base);
    md
}

/// One failed test of a run, what it turned out to be and how to reproduce it (filled by
/// the orchestrator's summary).
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRow {
    /// `FAILED`, `ERROR`, `LOST` or `flaky`.
    pub word: &'static str,
    /// Node id.
    pub node_id: String,
    /// Its group.
    pub group: usize,
    /// `flaky`, `order-dependent` or `real`, when `--retries` explained it.
    pub class: Option<&'static str>,
    /// What the explanation found.
    pub detail: String,
    /// The command that reproduces it on a laptop.
    pub reproduce: Option<String>,
}

/// The step summary's section on failures `--retries` explained: one row per test.
pub fn github_explained(rows: &[FailureRow]) -> String {
    let explained: Vec<&FailureRow> = rows.iter().filter(|r| r.class.is_some()).collect();
    if explained.is_empty() {
        return String::new();
    }
    let mut md = format!("\n### Failures explained ({})\n\n", explained.len());
    md.push_str(
        "| test | group | kind | what happened | reproduce |\n|:---|---:|:---|:---|:---|\n",
    );
    for r in explained {
        let _ = writeln!(
            md,
            "| {} | {} | **{}** | {} | {} |",
            code(&r.node_id),
            r.group,
            r.class.unwrap_or(""),
            cell(&r.detail),
            r.reproduce.as_deref().map(code).unwrap_or_default()
        );
    }
    md
}

/// `::warning` annotations for flaky and order-dependent tests (real failures already have
/// their `::error` from the JUnit).
pub fn github_explained_annotations(rows: &[FailureRow]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| match r.class? {
            "real" => None,
            class => Some(format!(
                "::warning title={}::{}",
                escape_property(&format!("{class}: {}", r.node_id)),
                escape_data(&r.detail)
            )),
        })
        .collect()
}

/// The failures, each linked to `file#Lline` under `link_base` when given.
fn failures(md: &mut String, failed_tests: &[FailedTest], link_base: Option<&str>) {
    if !failed_tests.is_empty() {
        let _ = writeln!(md, "\n### Failures ({})\n", failed_tests.len());
        for f in failed_tests.iter().take(SUMMARY_FAILURES) {
            let kind = match f.kind {
                FailureKind::Failure => "failed",
                FailureKind::Error => "error",
            };
            let name = code(&f.node_id);
            let target = match (link_base, &f.file) {
                (Some(base), Some(file)) => {
                    let anchor = f.line.map(|l| format!("#L{l}")).unwrap_or_default();
                    format!("[{name}]({base}/{}{anchor})", url_path(file))
                }
                _ => name,
            };
            let _ = writeln!(
                md,
                "- {target} ({kind}, group {}): {}",
                f.group,
                cell(&f.message)
            );
        }
        if failed_tests.len() > SUMMARY_FAILURES {
            let _ = writeln!(
                md,
                "- ... and {} more",
                failed_tests.len() - SUMMARY_FAILURES
            );
        }
    }
}

fn list(md: &mut String, title: &str, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n### {title} ({})\n", ids.len());
    for id in ids.iter().take(SUMMARY_FAILURES) {
        let _ = writeln!(md, "- {}", code(id));
    }
    if ids.len() > SUMMARY_FAILURES {
        let _ = writeln!(md, "- ... and {} more", ids.len() - SUMMARY_FAILURES);
    }
}

/// What groups want seen although it did not change their outcome, a line each.
fn warnings(md: &mut String, groups: &[GroupSummary]) {
    let lines: Vec<String> = groups
        .iter()
        .flat_map(|g| {
            g.warnings
                .iter()
                .map(move |w| format!("- **group {}**: {}", g.group, cell(w)))
        })
        .collect();
    if !lines.is_empty() {
        let _ = writeln!(md, "\n### Warnings ({})\n", lines.len());
        for line in lines {
            let _ = writeln!(md, "{line}");
        }
    }
}

/// Text safe inside a Markdown table cell or list item (no HTML, no column breaks).
fn cell(text: &str) -> String {
    let one_line = text.lines().next().unwrap_or("");
    quick_xml::escape::partial_escape(one_line).replace('|', "\\|")
}

/// A node id as inline code; `<code>` when it holds a backtick.
fn code(text: &str) -> String {
    if text.contains('`') {
        format!("<code>{}</code>", cell(text).replace('`', "&#96;"))
    } else {
        format!("`{}`", text.replace('|', "\\|"))
    }
}

fn url_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// `::error` workflow commands for failed tests, at most `cap` of them, plus one `::warning`
/// saying how many were left out.
pub fn github_annotations(totals: &JunitTotals, cap: usize) -> Vec<String> {
    let mut out: Vec<String> = totals
        .failed_tests
        .iter()
        .take(cap)
        .map(|f| {
            let mut props = Vec::new();
            if let Some(file) = &f.file {
                props.push(format!("file={}", escape_property(file)));
                if let Some(line) = f.line {
                    props.push(format!("line={line}"));
                }
            }
            props.push(format!("title={}", escape_property(&f.node_id)));
            format!("::error {}::{}", props.join(","), escape_data(&f.message))
        })
        .collect();
    if totals.failed_tests.len() > cap {
        out.push(format!(
            "::warning::{} more failed tests are not annotated (cap {cap}); see the job summary",
            totals.failed_tests.len() - cap
        ));
    }
    out
}

/// A group's log folded under a `::group::` header.
pub fn github_log_group(title: &str, log: &str) -> String {
    let mut out = format!("::group::{}\n", escape_data(title));
    // A line starting with `::` inside the log would be taken as a workflow command.
    out.push_str("::stop-commands::compose-shard-log\n");
    out.push_str(log);
    if !log.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("::compose-shard-log::\n::endgroup::\n");
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::junit_types::{CaseCounts, FailedTest};

    fn failed(id: &str, file: Option<&str>, line: Option<u32>, message: &str) -> FailedTest {
        FailedTest {
            node_id: id.into(),
            group: 2,
            kind: FailureKind::Failure,
            file: file.map(String::from),
            line,
            message: message.into(),
        }
    }

    #[test]
    fn annotations_escape_and_cap() {
        let totals = JunitTotals {
            failed_tests: vec![
                failed(
                    "t.py::test_a[x,y:z]",
                    Some("t.py"),
                    Some(7),
                    "100% wrong\nsecond",
                ),
                failed("group 3/3", None, None, "missing"),
                failed("t.py::test_c", Some("t.py"), None, "c"),
            ],
            ..JunitTotals::default()
        };
        let lines = github_annotations(&totals, 2);
        assert_eq!(
            lines[0],
            "::error file=t.py,line=7,title=t.py%3A%3Atest_a[x%2Cy%3Az]::100%25 wrong%0Asecond"
        );
        assert_eq!(lines[1], "::error title=group 3/3::missing");
        assert!(lines[2].starts_with("::warning::1 more failed tests"));
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn step_summary_links_failures() {
        let totals = JunitTotals {
            counts: CaseCounts {
                tests: 1,
                failures: 1,
                ..CaseCounts::default()
            },
            failed_tests: vec![failed(
                "tests/a b.py::t",
                Some("tests/a b.py"),
                Some(3),
                "x | y",
            )],
            ..JunitTotals::default()
        };
        let base = github_blob_base("https://github.com/", "o/r", "abc");
        let md = github_step_summary(&[], &totals, Some(&base));
        assert!(md.contains("- [`tests/a b.py::t`](https://github.com/o/r/blob/abc/tests/a%20b.py#L3) (failed, group 2): x \\| y"), "{md}");
        assert!(md.starts_with("## compose-shard: 1 tests in 0 groups: 1 failed, 0 errors"));
    }

    #[test]
    fn log_group_stops_commands_inside_the_log() {
        let text = github_log_group("group 1/2", "::error::not a real one");
        assert_eq!(text, "::group::group 1/2\n::stop-commands::compose-shard-log\n::error::not a real one\n::compose-shard-log::\n::endgroup::\n");
    }

    #[test]
    fn the_step_summary_of_a_run_with_every_kind_of_group() {
        use crate::report::{Phase, PhaseSpan};
        let group = |n: usize, status: &str, tests: usize, failed: usize| GroupSummary {
            group: n,
            tests,
            passed: tests - failed,
            failed,
            status: status.into(),
            phases: vec![PhaseSpan {
                phase: Phase::Tests,
                start: 5.0,
                end: 5.0 + 12.5 * n as f64,
            }],
            ..GroupSummary::default()
        };
        let mut first = group(1, "ok", 10, 0);
        first.warnings = vec!["pytest had finished, but 1 non-daemon thread kept the test process alive past --exit-grace 30s\n--- threads still alive ---\nThread 'x'".into()];
        let groups = vec![
            first,
            group(2, "failed", 9, 1),
            group(
                3,
                "crashed: the test process ended abnormally (exit code 137)\nmore",
                2,
                0,
            ),
        ];
        let totals = JunitTotals {
            counts: CaseCounts {
                tests: 22,
                passed: 20,
                failures: 1,
                errors: 1,
                time: 75.0,
                ..CaseCounts::default()
            },
            failed_tests: vec![
                failed(
                    "tests/t.py::test_bad",
                    Some("tests/t.py"),
                    Some(12),
                    "assert 1 == 2",
                ),
                FailedTest {
                    kind: FailureKind::Error,
                    ..failed("group 3/3", None, None, "results of group 3/3 are missing")
                },
            ],
            duplicates: vec!["tests/t.py::test_twice".into()],
            never_run: vec!["tests/t.py::test_never".into()],
            ..JunitTotals::default()
        };
        let md = github_step_summary(&groups, &totals, Some("https://github.com/o/r/blob/abc"));
        insta::assert_snapshot!(md);
    }
}
