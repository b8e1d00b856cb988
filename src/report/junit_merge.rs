//! Merging the groups' JUnit files into one `<testsuites>` document, one `<testsuite>` per
//! group named `pytest (group k/N)`.
//!
//! Two streaming passes per input: the first ([`scan_junit`]) validates the whole file and
//! counts outcomes, so the suite and root tags can carry totals; the second copies every
//! child of the input's `<testsuite>` elements (testcases with all their children, properties,
//! suite-level output) byte for byte. Memory holds the small testcase records of one input at
//! a time and the set of node ids seen (for duplicates), never a document tree.
//!
//! Totals are recomputed from the testcases, never taken from the inputs' attributes: `tests`
//! counts `<testcase>` elements, and `failures`, `errors` and `skipped` count testcases having
//! such a child (a test failing in the call and erroring in teardown is one testcase counted
//! once as failure and once as error, as pytest and junitparser count it). `time` is the sum
//! of the testcases' times (the inputs' suite times are wall-clock and cannot be added up).

use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Write};

use quick_xml::events::Event;

use super::error::ReportError;
use super::failure_location::{locate, one_line_message};
use super::junit_scan::{scan_junit, ScannedCase};
use super::junit_types::{FailedTest, FailureKind, GroupResult, GroupTotals, JunitTotals};
use super::node_id::NodeIdIndex;
use super::xml_input::{escape_text, local_name, push_attr, XmlFile};

const OUTPUT: &str = "JUnit XML";

/// Streaming merge. `expected` = the collected node ids (to report never-run and duplicates),
/// if known.
pub fn merge_junit(
    groups: &[GroupResult],
    expected: Option<&[String]>,
    out: &mut dyn Write,
) -> Result<JunitTotals, ReportError> {
    let index = expected.map(NodeIdIndex::new).unwrap_or_default();
    let (totals, heads) = compute_totals(groups, &index, expected)?;

    let mut out = BufWriter::with_capacity(1 << 16, out);
    let io = |source| ReportError::Output {
        what: OUTPUT,
        source,
    };
    let mut head = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites");
    push_attr(&mut head, "name", "compose-shard");
    push_counts(
        &mut head,
        totals.tests,
        totals.failures,
        totals.errors,
        totals.skipped,
        totals.time,
    );
    head.push_str(">\n");
    out.write_all(head.as_bytes()).map_err(io)?;
    for ((group, head), group_totals) in groups.iter().zip(&heads).zip(&totals.per_group) {
        write_suite(&mut out, group, head, group_totals)?;
    }
    out.write_all(b"</testsuites>\n").map_err(io)?;
    out.flush().map_err(io)?;
    Ok(totals)
}

fn push_counts(
    s: &mut String,
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    time: f64,
) {
    push_attr(s, "tests", &tests.to_string());
    push_attr(s, "failures", &failures.to_string());
    push_attr(s, "errors", &errors.to_string());
    push_attr(s, "skipped", &skipped.to_string());
    push_attr(s, "time", &format!("{time:.3}"));
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

/// What the suite tag of a group copies from its input.
#[derive(Default)]
struct SuiteHead {
    name: Option<String>,
    timestamp: Option<String>,
    hostname: Option<String>,
}

/// First pass over every group, one input at a time: only one input's testcase records are
/// held at once, plus the set of node ids seen.
fn compute_totals(
    groups: &[GroupResult],
    index: &NodeIdIndex,
    expected: Option<&[String]>,
) -> Result<(JunitTotals, Vec<SuiteHead>), ReportError> {
    let mut heads = Vec::with_capacity(groups.len());
    let mut totals = JunitTotals::default();
    let mut first_group: HashMap<String, usize> = HashMap::new();
    let mut duplicates: HashSet<String> = HashSet::new();
    for group in groups {
        let scan = group.junit.as_deref().map(scan_junit).transpose()?;
        let mut g = GroupTotals {
            group: group.group,
            missing_reason: missing_reason(group),
            ..GroupTotals::default()
        };
        for case in scan.iter().flat_map(|s| &s.cases) {
            let node_id = index.resolve(&case.classname, &case.name, case.file.as_deref());
            count_case(&mut g, case);
            record_failures(&mut totals.failed_tests, group.group, case, &node_id);
            match first_group.get(&node_id) {
                Some(&other) if other != group.group => {
                    duplicates.insert(node_id);
                }
                Some(_) => {}
                None => {
                    first_group.insert(node_id, group.group);
                }
            }
        }
        if let Some(reason) = &g.missing_reason {
            g.tests += 1;
            g.errors += 1;
            totals.failed_tests.push(FailedTest {
                node_id: group_label(group),
                group: group.group,
                kind: FailureKind::Error,
                file: None,
                line: None,
                message: format!("results of {} are missing: {reason}", group_label(group)),
            });
        }
        totals.tests += g.tests;
        totals.failures += g.failures;
        totals.errors += g.errors;
        totals.skipped += g.skipped;
        totals.passed += g.passed;
        totals.time += g.time;
        totals.per_group.push(g);
        heads.push(scan.map_or_else(SuiteHead::default, |s| SuiteHead {
            name: s.suite_name,
            timestamp: s.timestamp,
            hostname: s.hostname,
        }));
    }
    totals.duplicates = duplicates.into_iter().collect();
    totals.duplicates.sort();
    if let Some(expected) = expected {
        totals.never_run = expected
            .iter()
            .filter(|id| !first_group.contains_key(*id))
            .cloned()
            .collect();
    }
    Ok((totals, heads))
}

fn count_case(g: &mut GroupTotals, case: &ScannedCase) {
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
    head: &SuiteHead,
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
    push_counts(
        &mut tag,
        totals.tests,
        totals.failures,
        totals.errors,
        totals.skipped,
        totals.time,
    );
    if let Some(timestamp) = head.timestamp.as_deref() {
        push_attr(&mut tag, "timestamp", timestamp);
    }
    if let Some(hostname) = head.hostname.as_deref() {
        push_attr(&mut tag, "hostname", hostname);
    }
    tag.push('>');
    out.write_all(tag.as_bytes()).map_err(io)?;
    if let Some(path) = group.junit.as_deref() {
        copy_suite_children(&mut XmlFile::open(path)?, out)?;
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
    out.write_all(b"</testsuite>\n").map_err(io)
}

/// Copy everything inside the input's `<testsuite>` elements except the (possibly nested)
/// suite tags themselves. The input was fully validated by the first pass.
fn copy_suite_children(xml: &mut XmlFile, out: &mut dyn Write) -> Result<(), ReportError> {
    let io = |source| ReportError::Output {
        what: OUTPUT,
        source,
    };
    let mut buf = Vec::new();
    let mut open_suites = 0usize;
    loop {
        let event = xml.next(&mut buf)?;
        let inside = open_suites > 0;
        match event {
            Event::Start(ref e) => {
                let name = local_name(e);
                if name == b"testsuite" || name == b"testsuites" {
                    open_suites += usize::from(name == b"testsuite");
                    continue;
                }
                if inside {
                    write_parts(out, &[b"<", e, b">"]).map_err(io)?;
                }
            }
            Event::Empty(ref e) => {
                let name = local_name(e);
                if inside && name != b"testsuite" && name != b"testsuites" {
                    write_parts(out, &[b"<", e, b"/>"]).map_err(io)?;
                }
            }
            Event::End(ref e) => {
                let name = e.local_name().as_ref().to_vec();
                if name == b"testsuite" {
                    open_suites = open_suites.saturating_sub(1);
                } else if name != b"testsuites" && inside {
                    write_parts(out, &[b"</", e.name().as_ref(), b">"]).map_err(io)?;
                }
            }
            Event::Text(ref t) if inside => out.write_all(t).map_err(io)?,
            Event::CData(ref t) if inside => {
                write_parts(out, &[b"<![CDATA[", t, b"]]>"]).map_err(io)?
            }
            Event::Comment(ref t) if inside => {
                write_parts(out, &[b"<!--", t, b"-->"]).map_err(io)?
            }
            Event::GeneralRef(ref r) if inside => {
                xml.resolve_ref(r)?;
                write_parts(out, &[b"&", r, b";"]).map_err(io)?
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

fn write_parts(out: &mut dyn Write, parts: &[&[u8]]) -> std::io::Result<()> {
    for part in parts {
        out.write_all(part)?;
    }
    Ok(())
}
