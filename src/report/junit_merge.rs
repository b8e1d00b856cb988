//! Merging the groups' JUnit files into one `<testsuites>` document, one `<testsuite>` per
//! group named `pytest (group k/N)`.
//!
//! One streaming pass per input ([`scan_junit`]) validates it, counts outcomes and copies
//! every child of its `<testsuite>` elements (testcases with all their children, properties,
//! suite-level output) byte for byte into an unnamed temporary file; once all totals are
//! known, the root and suite tags are written and the spilled content copied behind them.
//! Inputs are read in parallel, one per core. Memory holds the node ids and times of the
//! testcases (for duplicates, never-run tests and durations), never a document tree and never
//! the testcases' output.
//!
//! Totals are recomputed from the testcases, never taken from the inputs' attributes: `tests`
//! counts `<testcase>` elements, and `failures`, `errors` and `skipped` count testcases having
//! such a child (a test failing in the call and erroring in teardown is one testcase counted
//! once as failure and once as error, as pytest and junitparser count it). `time` is the sum
//! of the testcases' times (the inputs' suite times are wall-clock and cannot be added up).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::error::ReportError;
use super::failure_location::{locate, one_line_message};
use super::junit_scan::{scan_junit, ScannedCase};
use super::junit_types::{
    CaseCounts, FailedTest, FailureKind, GroupResult, GroupTotals, JunitTotals,
};
use super::node_id::NodeIdIndex;
use super::xml_input::{escape_text, push_attr};

const OUTPUT: &str = "JUnit XML";

/// Streaming merge. `expected` = the collected node ids (to report never-run and duplicates),
/// if known.
pub fn merge_junit(
    groups: &[GroupResult],
    expected: Option<&[String]>,
    out: &mut dyn Write,
) -> Result<JunitTotals, ReportError> {
    let index = expected.map(NodeIdIndex::new).unwrap_or_default();
    let mut scans = scan_groups(groups, &index)?;
    let totals = compute_totals(groups, &mut scans, expected);

    let mut out = BufWriter::with_capacity(1 << 16, out);
    let io = |source| ReportError::Output {
        what: OUTPUT,
        source,
    };
    let mut head = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites");
    push_attr(&mut head, "name", "compose-shard");
    push_counts(&mut head, &totals.counts);
    head.push_str(">\n");
    out.write_all(head.as_bytes()).map_err(io)?;
    for ((group, scan), group_totals) in groups.iter().zip(&mut scans).zip(&totals.per_group) {
        write_suite(&mut out, group, scan, group_totals)?;
    }
    out.write_all(b"</testsuites>\n").map_err(io)?;
    out.flush().map_err(io)?;
    Ok(totals)
}

/// One group's input after its single read.
struct GroupScan {
    /// What the suite tag copies from the input.
    name: Option<String>,
    timestamp: Option<String>,
    hostname: Option<String>,
    /// Counts, without the error testcase of a missing group.
    counts: GroupTotals,
    failed_tests: Vec<FailedTest>,
    /// `(node id, seconds)` per testcase, in document order.
    cases: Vec<(String, f64)>,
    /// The suites' content, spilled to an unnamed temporary file (gone even if the process
    /// dies) until the totals that head it are known.
    spill: Option<File>,
}

/// Read every group's input once, on as many threads as there are cores: parsing is the
/// whole cost of a merge and the inputs are independent.
fn scan_groups(groups: &[GroupResult], index: &NodeIdIndex) -> Result<Vec<GroupScan>, ReportError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, groups.len().max(1));
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<GroupScan, ReportError>>>> =
        groups.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(group) = groups.get(i) else { break };
                let result = scan_group(group, index);
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every group is scanned before the scope ends")
        })
        .collect()
}

fn scan_group(group: &GroupResult, index: &NodeIdIndex) -> Result<GroupScan, ReportError> {
    let spill_error = |source| ReportError::Output {
        what: "JUnit XML (temporary spill file)",
        source,
    };
    let mut scan = GroupScan {
        name: None,
        timestamp: None,
        hostname: None,
        counts: GroupTotals {
            group: group.group,
            missing_reason: missing_reason(group),
            ..GroupTotals::default()
        },
        failed_tests: Vec::new(),
        cases: Vec::new(),
        spill: None,
    };
    let Some(path) = group.junit.as_deref() else {
        return Ok(scan);
    };
    let mut spill = BufWriter::with_capacity(1 << 16, tempfile::tempfile().map_err(spill_error)?);
    // Typical pytest testcases take 60 to 150 bytes.
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    scan.cases
        .reserve(usize::try_from(bytes / 128).unwrap_or(0).min(1 << 22));
    let (counts, failed, cases) = (
        &mut scan.counts.counts,
        &mut scan.failed_tests,
        &mut scan.cases,
    );
    let head = scan_junit(path, Some(&mut spill), |case| {
        let node_id = index.resolve(&case.classname, &case.name, case.file.as_deref());
        count_case(counts, case);
        record_failures(failed, group.group, case, &node_id);
        cases.push((node_id, case.time));
    })?;
    let mut spill = spill
        .into_inner()
        .map_err(|e| spill_error(e.into_error()))?;
    spill.seek(SeekFrom::Start(0)).map_err(spill_error)?;
    scan.name = head.suite_name;
    scan.timestamp = head.timestamp;
    scan.hostname = head.hostname;
    scan.spill = Some(spill);
    Ok(scan)
}

fn push_counts(s: &mut String, counts: &CaseCounts) {
    push_attr(s, "tests", &counts.tests.to_string());
    push_attr(s, "failures", &counts.failures.to_string());
    push_attr(s, "errors", &counts.errors.to_string());
    push_attr(s, "skipped", &counts.skipped.to_string());
    push_attr(s, "time", &format!("{:.3}", counts.time));
}

/// Why a group has no (complete) results, if it has none.
fn missing_reason(group: &GroupResult) -> Option<String> {
    match (&group.missing_reason, &group.junit) {
        (Some(reason), _) => Some(reason.clone()),
        (None, None) => Some("the group produced no JUnit XML".into()),
        (None, Some(_)) => None,
    }
}

fn group_label(group: &GroupResult) -> String {
    format!("group {}/{}", group.group, group.groups)
}

/// Totals in group order: duplicates are node ids already seen in an earlier group, and
/// durations are summed per node id within a group.
fn compute_totals(
    groups: &[GroupResult],
    scans: &mut [GroupScan],
    expected: Option<&[String]>,
) -> JunitTotals {
    let mut totals = JunitTotals::default();
    // node id -> (last group it ran in, its slot in `times`). The id strings move into
    // `totals.durations` at the end instead of being cloned per testcase.
    let mut seen: HashMap<String, (usize, usize)> =
        HashMap::with_capacity(scans.iter().map(|s| s.cases.len()).sum());
    let mut times: Vec<(Option<String>, f64)> = Vec::with_capacity(seen.capacity());
    let mut duplicates: HashSet<String> = HashSet::new();
    for (group, scan) in groups.iter().zip(scans.iter_mut()) {
        let mut g = scan.counts.clone();
        totals.failed_tests.append(&mut scan.failed_tests);
        for (node_id, time) in std::mem::take(&mut scan.cases) {
            match seen.entry(node_id) {
                Entry::Occupied(mut entry) => {
                    let (last_group, slot) = *entry.get();
                    if last_group == group.group {
                        times[slot].1 += time;
                    } else {
                        // The earlier group's slot keeps its own copy of the id.
                        duplicates.insert(entry.key().clone());
                        times[slot].0 = Some(entry.key().clone());
                        times.push((None, time));
                        *entry.get_mut() = (group.group, times.len() - 1);
                    }
                }
                Entry::Vacant(entry) => {
                    times.push((None, time));
                    entry.insert((group.group, times.len() - 1));
                }
            }
        }
        if let Some(reason) = &g.missing_reason {
            g.counts.tests += 1;
            g.counts.errors += 1;
            totals.failed_tests.push(FailedTest {
                node_id: group_label(group),
                group: group.group,
                kind: FailureKind::Error,
                file: None,
                line: None,
                message: format!("results of {} are missing: {reason}", group_label(group)),
            });
        }
        totals.counts.add(&g.counts);
        totals.per_group.push(g);
    }
    totals.duplicates = duplicates.into_iter().collect();
    totals.duplicates.sort();
    if let Some(expected) = expected {
        totals.never_run = expected
            .iter()
            .filter(|id| !seen.contains_key(*id))
            .cloned()
            .collect();
    }
    for (id, (_, slot)) in seen {
        times[slot].0 = Some(id);
    }
    totals.durations = times
        .into_iter()
        .map(|(id, secs)| (id.expect("every slot is named by its node id"), secs))
        .collect();
    totals
}

fn count_case(g: &mut CaseCounts, case: &ScannedCase) {
    g.tests += 1;
    g.time += case.time;
    let failed = case.failure.is_some();
    let errored = case.error.is_some();
    g.failures += usize::from(failed);
    g.errors += usize::from(errored);
    g.skipped += usize::from(case.skipped);
    if !failed && !errored && !case.skipped {
        g.passed += 1;
    }
}

fn record_failures(out: &mut Vec<FailedTest>, group: usize, case: &ScannedCase, node_id: &str) {
    let problems = [
        (FailureKind::Failure, &case.failure),
        (FailureKind::Error, &case.error),
    ];
    for (kind, problem) in problems {
        if let Some(problem) = problem {
            let (file, line) = locate(case, node_id, &problem.tail);
            out.push(FailedTest {
                node_id: node_id.to_string(),
                group,
                kind,
                file,
                line,
                message: one_line_message(&problem.message, &problem.tail),
            });
        }
    }
}

fn write_suite(
    out: &mut dyn Write,
    group: &GroupResult,
    head: &mut GroupScan,
    totals: &GroupTotals,
) -> Result<(), ReportError> {
    let io = |source| ReportError::Output {
        what: OUTPUT,
        source,
    };
    let producer = head
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "pytest".into());
    let mut tag = String::from("<testsuite");
    push_attr(
        &mut tag,
        "name",
        &format!("{producer} ({})", group_label(group)),
    );
    push_counts(&mut tag, &totals.counts);
    if let Some(timestamp) = head.timestamp.as_deref() {
        push_attr(&mut tag, "timestamp", timestamp);
    }
    if let Some(hostname) = head.hostname.as_deref() {
        push_attr(&mut tag, "hostname", hostname);
    }
    tag.push('>');
    out.write_all(tag.as_bytes()).map_err(io)?;
    if let Some(spill) = head.spill.as_mut() {
        std::io::copy(spill, out).map_err(io)?;
    }
    if let Some(reason) = &totals.missing_reason {
        let mut case = String::from("\n<testcase");
        push_attr(&mut case, "classname", "compose-shard");
        push_attr(
            &mut case,
            "name",
            &format!("{} results", group_label(group)),
        );
        push_attr(&mut case, "time", "0.000");
        case.push_str("><error");
        let message = format!("results of {} are missing: {reason}", group_label(group));
        push_attr(&mut case, "message", &message);
        case.push('>');
        escape_text(&message, &mut case);
        case.push_str("</error></testcase>\n");
        out.write_all(case.as_bytes()).map_err(io)?;
    }
    if let Some(text) = &group.system_err {
        let mut element = String::from("<system-err>");
        escape_text(text, &mut element);
        element.push_str("</system-err>\n");
        out.write_all(element.as_bytes()).map_err(io)?;
    }
    out.write_all(b"</testsuite>\n").map_err(io)
}
