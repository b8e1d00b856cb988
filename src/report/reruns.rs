//! Retries in JUnit XML, the way Maven Surefire and nextest record them: a test that failed
//! and was run again keeps one `<testcase>`. When it passed in the end it is a passing
//! testcase with one `<flakyFailure>`/`<flakyError>` per failed run; when it never passed it
//! keeps its `<failure>`/`<error>` and gets one `<rerunFailure>`/`<rerunError>` per retry.
//! Each of those has `message` and `type`, a `<stackTrace>` and the run's `<system-out>` and
//! `<system-err>`, in the order Surefire's schema (surefire-test-report-3.0.xsd) gives.
//! Consumers that do not know these elements ignore them, so a flaky test reads as passed.
//!
//! [`read_attempts`] takes a retry's results from its JUnit file; [`apply_reruns`] rewrites
//! a group's JUnit file with them, streaming: only the retried testcases are rebuilt, every
//! other byte is copied through.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use quick_xml::events::{BytesStart, Event};

use super::error::ReportError;
use super::junit_scan::scan_junit;
use super::node_id::NodeIdIndex;
use super::xml_input::{end_name, escape_text, local_name, push_attr, XmlFile};

/// How one run of a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Passed.
    Passed,
    /// Its call failed (`<failure>`).
    Failure,
    /// Its setup or teardown failed (`<error>`).
    Error,
    /// Skipped.
    Skipped,
}

/// One run of a test: the first one in its group, or a retry.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The failure's one-line message.
    pub message: String,
    /// The failure's text (its end, for long ones).
    pub text: String,
    /// Seconds.
    pub time: f64,
}

impl Attempt {
    /// Whether this run failed (a failure or an error).
    pub fn failed(&self) -> bool {
        matches!(
            self.outcome,
            AttemptOutcome::Failure | AttemptOutcome::Error
        )
    }
}

/// What became of a failed test after its retries.
#[derive(Debug, Clone, PartialEq)]
pub struct Retried {
    /// The retries, in order.
    pub attempts: Vec<Attempt>,
    /// It counts as passed (flaky): a passing testcase with flaky elements. Otherwise it
    /// keeps its failure and gets rerun elements (also when a retry passed: an
    /// order-dependent test passes alone but is still a failure).
    pub passed: bool,
    /// What compose-shard found, for the testcase's `<system-err>`.
    pub note: Option<String>,
}

/// The runs of every test in a JUnit file, by node id (`index` maps testcases back to them).
pub fn read_attempts(
    path: &Path,
    index: &NodeIdIndex,
) -> Result<BTreeMap<String, Attempt>, ReportError> {
    let mut attempts = BTreeMap::new();
    scan_junit(path, None, |case| {
        let node_id = index.resolve(&case.classname, &case.name, case.file.as_deref());
        let (outcome, problem) = match (&case.failure, &case.error, case.skipped) {
            (Some(p), _, _) => (AttemptOutcome::Failure, Some(p)),
            (None, Some(p), _) => (AttemptOutcome::Error, Some(p)),
            (None, None, true) => (AttemptOutcome::Skipped, None),
            (None, None, false) => (AttemptOutcome::Passed, None),
        };
        attempts.insert(
            node_id,
            Attempt {
                outcome,
                message: problem.map(|p| p.message.clone()).unwrap_or_default(),
                text: problem.map(|p| p.tail.clone()).unwrap_or_default(),
                time: case.time,
            },
        );
    })?;
    Ok(attempts)
}

/// An exception's name for a `type` attribute: what precedes the first `:` of the message
/// when it looks like one (`AssertionError: ...`), else the element's own kind.
fn failure_type(message: &str, fallback: &str) -> String {
    let head = message.split(':').next().unwrap_or("").trim();
    let looks_like_name = !head.is_empty()
        && head.len() <= 80
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if looks_like_name && message.contains(':') {
        head.to_string()
    } else {
        fallback.to_string()
    }
}

/// One retried testcase being rebuilt: its start tag and the parts of its children.
#[derive(Default)]
struct Case {
    attrs: Vec<(String, String)>,
    /// The original run's failure or error: kind, message, type, text.
    original: Option<(AttemptOutcome, String, Option<String>, String)>,
    skipped: Option<String>,
    system_out: String,
    system_err: String,
    /// Other children, copied through (properties...).
    other: String,
}

/// Where the rewrite is inside a retried testcase.
#[derive(Clone, Copy, PartialEq)]
enum Inside {
    Nothing,
    Outcome,
    Out,
    Err,
    Other,
}

/// The retries of a testcase whose start tag this is, if it was retried.
fn retried<'r>(
    xml: &XmlFile,
    e: &BytesStart<'_>,
    reruns: &'r BTreeMap<String, Retried>,
    index: &NodeIdIndex,
) -> Result<Option<(Case, &'r Retried)>, ReportError> {
    if local_name(e).as_slice() != b"testcase" {
        return Ok(None);
    }
    let attrs = xml.attributes(e)?;
    let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let node_id = index.resolve(
        get("classname").unwrap_or(""),
        get("name").unwrap_or(""),
        get("file"),
    );
    Ok(reruns.get(&node_id).map(|retried| {
        let case = Case {
            attrs,
            ..Case::default()
        };
        (case, retried)
    }))
}

/// Rewrite the JUnit file `input` into `out` with the retries of its testcases (`reruns`:
/// node id -> the retries, in order; `index` maps testcases to node ids).
pub fn apply_reruns(
    input: &Path,
    reruns: &BTreeMap<String, Retried>,
    index: &NodeIdIndex,
    out: &mut dyn Write,
) -> Result<(), ReportError> {
    let io = |source| ReportError::Output {
        what: "JUnit XML with retries",
        source,
    };
    let mut xml = XmlFile::open(input)?;
    let mut buf = Vec::new();
    // The retried testcase being read, and how deep inside it the reader is.
    let mut open: Option<(Case, &Retried, usize)> = None;
    let mut inside = Inside::Nothing;
    loop {
        let event = xml.next(&mut buf)?;
        let Some((case, retries, depth)) = open.as_mut() else {
            match &event {
                Event::Start(e) => match retried(&xml, e, reruns, index)? {
                    Some((case, retries)) => {
                        open = Some((case, retries, 0));
                        inside = Inside::Nothing;
                    }
                    None => copy(&event, out).map_err(io)?,
                },
                Event::Empty(e) => match retried(&xml, e, reruns, index)? {
                    Some((case, retries)) => write_case(out, &case, retries).map_err(io)?,
                    None => copy(&event, out).map_err(io)?,
                },
                Event::Eof => break,
                _ => copy(&event, out).map_err(io)?,
            }
            continue;
        };
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(event, Event::Empty(_));
                if *depth == 0 {
                    inside = child_start(&xml, e, empty, case)?;
                } else if inside == Inside::Other {
                    raw_start(&mut case.other, e, empty);
                }
                *depth += usize::from(!empty);
            }
            Event::End(e) => {
                if *depth == 0 {
                    write_case(out, case, retries).map_err(io)?;
                    open = None;
                    continue;
                }
                *depth -= 1;
                if inside == Inside::Other {
                    case.other.push_str("</");
                    case.other
                        .push_str(&String::from_utf8_lossy(end_name(e).as_slice()));
                    case.other.push('>');
                }
                if *depth == 0 {
                    inside = Inside::Nothing;
                }
            }
            Event::Text(t) => child_text(case, inside, xml.utf8(t)?),
            Event::CData(t) => child_text(case, inside, xml.utf8(t)?),
            Event::GeneralRef(r) => {
                let c = xml.resolve_ref(r)?;
                child_text(case, inside, c.encode_utf8(&mut [0; 4]));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(())
}

/// A direct child of a retried testcase starts: what it is.
fn child_start(
    xml: &XmlFile,
    e: &BytesStart<'_>,
    empty: bool,
    case: &mut Case,
) -> Result<Inside, ReportError> {
    let name = local_name(e);
    Ok(match name.as_slice() {
        kind @ (b"failure" | b"error") if case.original.is_none() => {
            let outcome = if kind == b"failure" {
                AttemptOutcome::Failure
            } else {
                AttemptOutcome::Error
            };
            let message = xml.attr(e, "message")?.unwrap_or_default();
            let kind_attr = xml.attr(e, "type")?;
            case.original = Some((outcome, message, kind_attr, String::new()));
            Inside::Outcome
        }
        b"skipped" => {
            case.skipped = Some(xml.attr(e, "message")?.unwrap_or_default());
            Inside::Nothing
        }
        b"system-out" => Inside::Out,
        b"system-err" => Inside::Err,
        _ => {
            raw_start(&mut case.other, e, empty);
            Inside::Other
        }
    })
}

fn raw_start(out: &mut String, e: &BytesStart<'_>, empty: bool) {
    out.push('<');
    out.push_str(&String::from_utf8_lossy(e));
    out.push_str(if empty { "/>" } else { ">" });
}

fn child_text(case: &mut Case, inside: Inside, text: &str) {
    match inside {
        Inside::Outcome => {
            if let Some(original) = case.original.as_mut() {
                original.3.push_str(text);
            }
        }
        Inside::Out => case.system_out.push_str(text),
        Inside::Err => case.system_err.push_str(text),
        Inside::Other => escape_text(text, &mut case.other),
        Inside::Nothing => {}
    }
}

/// One event of the input, copied through unchanged.
fn copy(event: &Event<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    match event {
        Event::Start(e) => write_all(out, &[b"<", e, b">"]),
        Event::Empty(e) => write_all(out, &[b"<", e, b"/>"]),
        Event::End(e) => write_all(out, &[b"</", e.name().as_ref(), b">"]),
        Event::Text(t) => out.write_all(t),
        Event::CData(t) => write_all(out, &[b"<![CDATA[", t, b"]]>"]),
        Event::Comment(t) => write_all(out, &[b"<!--", t, b"-->"]),
        Event::GeneralRef(r) => write_all(out, &[b"&", r, b";"]),
        Event::Decl(d) => write_all(out, &[b"<?", d, b"?>"]),
        Event::PI(p) => write_all(out, &[b"<?", p, b"?>"]),
        Event::DocType(d) => write_all(out, &[b"<!DOCTYPE ", d, b">"]),
        Event::Eof => Ok(()),
    }
}

fn write_all(out: &mut dyn Write, parts: &[&[u8]]) -> std::io::Result<()> {
    for part in parts {
        out.write_all(part)?;
    }
    Ok(())
}

/// One failed run: failure or error, message, `type`, text.
struct Run {
    kind: AttemptOutcome,
    message: String,
    type_name: String,
    text: String,
}

impl Run {
    fn new(kind: AttemptOutcome, message: &str, type_name: Option<&str>, text: &str) -> Run {
        let fallback = if kind == AttemptOutcome::Failure {
            "failure"
        } else {
            "error"
        };
        Run {
            kind,
            message: message.to_string(),
            type_name: type_name.map_or_else(|| failure_type(message, fallback), str::to_string),
            text: text.to_string(),
        }
    }

    /// `<failure>`/`<error>`: the outcome of a test that never passed.
    fn outcome_element(&self, xml: &mut String) {
        let tag = if self.kind == AttemptOutcome::Failure {
            "failure"
        } else {
            "error"
        };
        xml.push('<');
        xml.push_str(tag);
        push_attr(xml, "message", &self.message);
        push_attr(xml, "type", &self.type_name);
        xml.push('>');
        escape_text(&self.text, xml);
        xml.push_str("</");
        xml.push_str(tag);
        xml.push('>');
    }

    /// `<flakyFailure>`, `<rerunError>`...: one more run of a retried test.
    fn run_element(&self, xml: &mut String, prefix: &str) {
        let tag = format!(
            "{prefix}{}",
            if self.kind == AttemptOutcome::Failure {
                "Failure"
            } else {
                "Error"
            }
        );
        xml.push('<');
        xml.push_str(&tag);
        push_attr(xml, "message", &self.message);
        push_attr(xml, "type", &self.type_name);
        xml.push_str("><stackTrace>");
        escape_text(&self.text, xml);
        xml.push_str("</stackTrace></");
        xml.push_str(&tag);
        xml.push('>');
    }
}

/// A retried testcase, rebuilt: passing with flaky elements when its last run passed, else
/// its original outcome with rerun elements; children in the schema's order (failure*,
/// rerunFailure*, flakyFailure*, skipped?, error?, rerunError*, flakyError*, system-out?,
/// system-err?).
fn write_case(out: &mut dyn Write, case: &Case, retried: &Retried) -> std::io::Result<()> {
    let retries = &retried.attempts;
    let passed = retried.passed;
    let mut xml = String::from("<testcase");
    for (k, v) in &case.attrs {
        let v = match (k.as_str(), passed) {
            // Durations learn from the passing run.
            ("time", true) => format!(
                "{:.3}",
                retries
                    .iter()
                    .rfind(|a| a.outcome == AttemptOutcome::Passed)
                    .map_or(0.0, |a| a.time)
            ),
            _ => v.clone(),
        };
        push_attr(&mut xml, k, &v);
    }
    xml.push('>');
    let original = case
        .original
        .as_ref()
        .map(|(kind, message, type_name, text)| {
            Run::new(*kind, message, type_name.as_deref(), text)
        });
    // The failed runs besides the outcome element: the original one when the test passed
    // in the end, and the failed retries.
    let mut runs: Vec<Run> = Vec::new();
    if passed {
        runs.extend(
            original
                .iter()
                .map(|r| Run::new(r.kind, &r.message, Some(&r.type_name), &r.text)),
        );
    }
    runs.extend(
        retries
            .iter()
            .filter(|a| a.failed())
            .map(|a| Run::new(a.outcome, &a.message, None, &a.text)),
    );
    let prefix = if passed { "flaky" } else { "rerun" };
    for kind in [AttemptOutcome::Failure, AttemptOutcome::Error] {
        if kind == AttemptOutcome::Error {
            if let Some(message) = &case.skipped {
                xml.push_str("<skipped");
                push_attr(&mut xml, "message", message);
                xml.push_str("/>");
            }
        }
        if let Some(original) = original.as_ref().filter(|r| !passed && r.kind == kind) {
            original.outcome_element(&mut xml);
        }
        for run in runs.iter().filter(|r| r.kind == kind) {
            run.run_element(&mut xml, prefix);
        }
    }
    xml.push_str(&case.other);
    output_elements(&mut xml, case, retried.note.as_deref());
    xml.push_str("</testcase>");
    out.write_all(xml.as_bytes())
}

/// The testcase's `<system-out>` and `<system-err>`, the latter ending with `note`.
fn output_elements(xml: &mut String, case: &Case, note: Option<&str>) {
    let mut system_err = case.system_err.clone();
    if let Some(note) = note {
        if !system_err.is_empty() && !system_err.ends_with('\n') {
            system_err.push('\n');
        }
        system_err.push_str(note);
    }
    for (tag, text) in [
        ("system-out", &case.system_out),
        ("system-err", &system_err),
    ] {
        if !text.is_empty() {
            xml.push('<');
            xml.push_str(tag);
            xml.push('>');
            escape_text(text, xml);
            xml.push_str("</");
            xml.push_str(tag);
            xml.push('>');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="2" skipped="0" tests="4" time="3.0"><testcase classname="tests.test_a" name="test_ok" time="0.100" /><testcase classname="tests.test_a" name="test_flaky" time="1.000"><failure message="AssertionError: coin said tails">def test_flaky():
&gt;       assert coin()
E       AssertionError: coin said tails</failure><system-out>tossing &lt;1&gt;</system-out></testcase><testcase classname="tests.test_a" name="test_real" time="0.500"><failure message="assert 1 == 2">assert 1 == 2</failure></testcase><testcase classname="tests.test_a" name="test_setup" time="0.200"><error message="failed on setup with &quot;RuntimeError: no db&quot;">RuntimeError: no db</error></testcase></testsuite></testsuites>"#;

    fn attempt(outcome: AttemptOutcome, message: &str, time: f64) -> Attempt {
        Attempt {
            outcome,
            message: message.into(),
            text: format!("{message} (retry)"),
            time,
        }
    }

    fn retried(attempts: Vec<Attempt>) -> Retried {
        let passed = attempts.last().is_some_and(|a| !a.failed());
        Retried {
            attempts,
            passed,
            note: None,
        }
    }

    fn rewrite(reruns: &BTreeMap<String, Retried>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("junit.xml");
        std::fs::write(&input, GROUP).unwrap();
        let ids: Vec<String> = ["test_ok", "test_flaky", "test_real", "test_setup"]
            .iter()
            .map(|n| format!("tests/test_a.py::{n}"))
            .collect();
        let mut out = Vec::new();
        apply_reruns(&input, reruns, &NodeIdIndex::new(&ids), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_test_that_passed_on_retry_passes_with_its_failed_runs_as_flaky_elements() {
        let reruns = BTreeMap::from([(
            "tests/test_a.py::test_flaky".to_string(),
            retried(vec![
                attempt(
                    AttemptOutcome::Error,
                    "failed on setup with \"OSError: x\"",
                    0.4,
                ),
                attempt(AttemptOutcome::Passed, "", 0.25),
            ]),
        )]);
        let xml = rewrite(&reruns);
        let case = xml
            .split("<testcase")
            .find(|c| c.contains("test_flaky"))
            .unwrap();
        assert!(
            case.contains("time=\"0.250\""),
            "the passing run's time: {case}"
        );
        assert!(
            !case.contains("<failure") && !case.contains("<error"),
            "{case}"
        );
        assert!(case.contains("<flakyFailure message=\"AssertionError: coin said tails\" type=\"AssertionError\"><stackTrace>def test_flaky():\n&gt;       assert coin()"), "{case}");
        assert!(case.contains("<flakyError message=\"failed on setup with &quot;OSError: x&quot;\" type=\"error\"><stackTrace>"), "{case}");
        // Schema order: flakyFailure before flakyError before system-out.
        let f = case.find("<flakyFailure").unwrap();
        let e = case.find("<flakyError").unwrap();
        let o = case
            .find("<system-out>tossing &lt;1&gt;</system-out>")
            .unwrap();
        assert!(f < e && e < o, "{case}");
        // Everything else is copied through byte for byte.
        assert!(
            xml.contains(r#"<testcase classname="tests.test_a" name="test_ok" time="0.100" />"#)
        );
        assert!(xml.contains(r#"<testcase classname="tests.test_a" name="test_real" time="0.500"><failure message="assert 1 == 2">assert 1 == 2</failure></testcase>"#));
    }

    #[test]
    fn a_test_that_never_passed_keeps_its_outcome_and_gets_rerun_elements() {
        let reruns = BTreeMap::from([
            (
                "tests/test_a.py::test_real".to_string(),
                retried(vec![
                    attempt(AttemptOutcome::Failure, "assert 1 == 2", 0.3),
                    attempt(AttemptOutcome::Error, "RuntimeError: gone", 0.1),
                ]),
            ),
            (
                "tests/test_a.py::test_setup".to_string(),
                Retried {
                    // Order-dependent: it passed alone, and still fails the run.
                    attempts: vec![
                        attempt(AttemptOutcome::Failure, "ValueError: v", 0.3),
                        attempt(AttemptOutcome::Passed, "", 0.2),
                    ],
                    passed: false,
                    note: Some("compose-shard: order-dependent".into()),
                },
            ),
        ]);
        let xml = rewrite(&reruns);
        let real = xml
            .split("<testcase")
            .find(|c| c.contains("test_real"))
            .unwrap();
        assert!(real.contains("time=\"0.500\""), "{real}");
        assert!(real.contains("<failure message=\"assert 1 == 2\" type=\"failure\">assert 1 == 2</failure><rerunFailure message=\"assert 1 == 2\" type=\"failure\"><stackTrace>assert 1 == 2 (retry)</stackTrace></rerunFailure><rerunError message=\"RuntimeError: gone\" type=\"RuntimeError\">"), "{real}");
        // An error first and a failure on retry: rerunFailure comes before error (schema).
        let setup = xml
            .split("<testcase")
            .find(|c| c.contains("test_setup"))
            .unwrap();
        let rerun = setup.find("<rerunFailure").unwrap();
        let error = setup.find("<error").unwrap();
        assert!(rerun < error, "{setup}");
        assert!(
            setup.contains("time=\"0.200\""),
            "keeps its own time: {setup}"
        );
        assert!(setup.ends_with("<system-err>compose-shard: order-dependent</system-err></testcase></testsuite></testsuites>"), "{setup}");
        // The rewritten file is still a JUnit file the merge reads, with the same totals.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.xml");
        std::fs::write(&path, &xml).unwrap();
        let group = crate::report::GroupResult {
            group: 1,
            groups: 1,
            junit: Some(path),
            ..Default::default()
        };
        let totals = crate::report::merge_junit(&[group], None, &mut Vec::new()).unwrap();
        assert_eq!(
            (
                totals.counts.tests,
                totals.counts.failures,
                totals.counts.errors
            ),
            (4, 2, 1)
        );
    }
}
