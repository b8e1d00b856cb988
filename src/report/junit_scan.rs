//! First pass over one JUnit file: validate it completely and collect what the merge needs
//! to know before it writes anything (per-testcase outcome, time, failure location), so the
//! second pass can stream the testcases through with totals already in the suite tags.

use std::path::Path;

use quick_xml::events::{BytesStart, Event};

use super::error::ReportError;
use super::xml_input::{local_name, XmlFile};

/// Only the end of a failure's text is kept: pytest puts the `path:line: Exception` line the
/// location comes from last, and a test's output can be megabytes.
const TAIL_BYTES: usize = 8 * 1024;

/// A `<failure>` or `<error>` of one testcase.
#[derive(Debug, Clone, Default)]
pub(crate) struct Problem {
    /// The `message` attribute.
    pub message: String,
    /// The last [`TAIL_BYTES`] of the element's text.
    pub tail: String,
}

/// One `<testcase>` as read in the first pass.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScannedCase {
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub time: f64,
    pub failure: Option<Problem>,
    pub error: Option<Problem>,
    pub skipped: bool,
}

/// Everything the first pass learned about one JUnit file.
#[derive(Debug, Default)]
pub(crate) struct JunitScan {
    pub cases: Vec<ScannedCase>,
    /// `name` of the first `<testsuite>` (pytest writes `pytest`).
    pub suite_name: Option<String>,
    pub timestamp: Option<String>,
    pub hostname: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Collecting {
    Nothing,
    Failure,
    Error,
}

/// Read and validate a whole JUnit file.
pub(crate) fn scan_junit(path: &Path) -> Result<JunitScan, ReportError> {
    let mut xml = XmlFile::open(path)?;
    let mut buf = Vec::new();
    let mut scan = JunitScan::default();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut case: Option<(ScannedCase, usize)> = None;
    let mut collecting = Collecting::Nothing;
    loop {
        let event = xml.next(&mut buf)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                xml.validate_attributes(e)?;
                let name = local_name(e);
                if !seen_root {
                    seen_root = true;
                    check_root(&xml, &name)?;
                }
                match name.as_slice() {
                    b"testsuite" if scan.suite_name.is_none() => {
                        scan.suite_name = xml.attr(e, "name")?;
                        scan.timestamp = xml.attr(e, "timestamp")?;
                        scan.hostname = xml.attr(e, "hostname")?;
                    }
                    b"testcase" => {
                        if case.is_some() {
                            return Err(xml.error_here("<testcase> inside a <testcase>".into()));
                        }
                        let started = read_case(&xml, e)?;
                        if empty {
                            scan.cases.push(started);
                        } else {
                            case = Some((started, depth + 1));
                        }
                    }
                    kind @ (b"failure" | b"error" | b"skipped") => {
                        if let Some((current, case_depth)) = case.as_mut() {
                            if depth == *case_depth {
                                let problem = Problem {
                                    message: xml.attr(e, "message")?.unwrap_or_default(),
                                    tail: String::new(),
                                };
                                match kind {
                                    b"failure" => {
                                        current.failure.get_or_insert(problem);
                                        collecting = Collecting::Failure;
                                    }
                                    b"error" => {
                                        current.error.get_or_insert(problem);
                                        collecting = Collecting::Error;
                                    }
                                    _ => current.skipped = true,
                                }
                                if empty {
                                    collecting = Collecting::Nothing;
                                }
                            }
                        }
                    }
                    _ => {}
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(ref e) => {
                depth = depth.saturating_sub(1);
                let name = e.local_name().as_ref().to_vec();
                if matches!(name.as_slice(), b"failure" | b"error") {
                    collecting = Collecting::Nothing;
                }
                if name == b"testcase" {
                    if let Some((finished, _)) = case.take() {
                        scan.cases.push(finished);
                    }
                }
            }
            Event::Text(ref t) => {
                let text = xml.utf8(t)?;
                if !seen_root && !text.trim().is_empty() {
                    return Err(xml.error_here("text before the root element".into()));
                }
                append_tail(&mut case, collecting, text);
            }
            Event::CData(ref t) => {
                let text = xml.utf8(t)?;
                append_tail(&mut case, collecting, text);
            }
            Event::GeneralRef(ref r) => {
                let c = xml.resolve_ref(r)?;
                append_tail(&mut case, collecting, c.encode_utf8(&mut [0; 4]));
            }
            Event::Comment(ref t) => {
                xml.utf8(t)?;
            }
            Event::PI(ref p) => {
                xml.utf8(p)?;
            }
            Event::Decl(_) | Event::DocType(_) => {}
            Event::Eof => {
                if !seen_root {
                    return Err(xml.error_here("no root element (empty or truncated file)".into()));
                }
                if depth != 0 {
                    return Err(xml.error_here(format!(
                        "file ends inside {depth} unclosed element(s) (truncated?)"
                    )));
                }
                return Ok(scan);
            }
        }
    }
}

fn check_root(xml: &XmlFile, name: &[u8]) -> Result<(), ReportError> {
    if name == b"testsuites" || name == b"testsuite" {
        return Ok(());
    }
    Err(ReportError::UnknownFormat {
        file: xml.path().display().to_string(),
        root: String::from_utf8_lossy(name).into_owned(),
    })
}

fn read_case(xml: &XmlFile, e: &BytesStart<'_>) -> Result<ScannedCase, ReportError> {
    let time = match xml.attr(e, "time")? {
        Some(t) if !t.trim().is_empty() => {
            let secs: f64 = xml.number("testcase", "time", &t)?;
            if secs.is_finite() && secs >= 0.0 {
                secs
            } else {
                return Err(xml.error_here(format!(
                    "<testcase> time={t:?} is not a non-negative number of seconds"
                )));
            }
        }
        _ => 0.0,
    };
    let line = match xml.attr(e, "line")? {
        Some(l) if !l.trim().is_empty() => Some(xml.number("testcase", "line", &l)?),
        _ => None,
    };
    Ok(ScannedCase {
        classname: xml.attr(e, "classname")?.unwrap_or_default(),
        name: xml.attr(e, "name")?.unwrap_or_default(),
        file: xml.attr(e, "file")?,
        line,
        time,
        ..ScannedCase::default()
    })
}

fn append_tail(case: &mut Option<(ScannedCase, usize)>, collecting: Collecting, text: &str) {
    let Some((current, _)) = case.as_mut() else {
        return;
    };
    let problem = match collecting {
        Collecting::Nothing => return,
        Collecting::Failure => current.failure.as_mut(),
        Collecting::Error => current.error.as_mut(),
    };
    if let Some(problem) = problem {
        problem.tail.push_str(text);
        if problem.tail.len() > 2 * TAIL_BYTES {
            let mut cut = problem.tail.len() - TAIL_BYTES;
            while !problem.tail.is_char_boundary(cut) {
                cut += 1;
            }
            problem.tail.drain(..cut);
        }
    }
}
