//! First pass over one JUnit file: validate it completely and collect what the merge needs
//! to know before it writes anything (per-testcase outcome, time, failure location), so the
//! second pass can stream the testcases through with totals already in the suite tags.

use std::io::Write;
use std::path::Path;

use quick_xml::events::{BytesEnd, BytesStart, Event};

use super::error::ReportError;
use super::xml_input::{end_name, local_name, XmlFile};

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

/// What the first pass keeps of one JUnit file besides the testcases it hands out.
#[derive(Debug, Default)]
pub(crate) struct JunitScan {
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

/// Read and validate a whole JUnit file, handing each testcase to `on_case` as soon as it
/// ends. The same record is reused for every testcase, so scanning allocates next to nothing
/// per testcase and holds no list of them. With `copy`, everything inside the file's
/// `<testsuite>` elements (but not the suite tags) is copied there byte for byte, so a merge
/// reads each input once.
pub(crate) fn scan_junit(
    path: &Path,
    mut copy: Option<&mut dyn Write>,
    mut on_case: impl FnMut(&ScannedCase),
) -> Result<JunitScan, ReportError> {
    let mut xml = XmlFile::open(path)?;
    let mut open_suites = 0usize;
    let mut buf = Vec::new();
    let mut state = ScanState::new();
    loop {
        let event = xml.next(&mut buf)?;
        if let Some(out) = copy.as_deref_mut() {
            copy_event(&event, &mut open_suites, out).map_err(|source| ReportError::Output {
                what: "JUnit XML",
                source,
            })?;
        }
        match event {
            Event::Start(ref e) => state.start(&xml, e, false, &mut on_case)?,
            Event::Empty(ref e) => state.start(&xml, e, true, &mut on_case)?,
            Event::End(ref e) => state.end(e, &mut on_case),
            Event::Text(ref t) => {
                let text = xml.utf8(t)?;
                if !state.seen_root && !text.trim().is_empty() {
                    return Err(xml.error_here("text before the root element".into()));
                }
                state.append_tail(text);
            }
            Event::CData(ref t) => state.append_tail(xml.utf8(t)?),
            Event::GeneralRef(ref r) => {
                let c = xml.resolve_ref(r)?;
                state.append_tail(c.encode_utf8(&mut [0; 4]));
            }
            Event::Comment(ref t) => {
                xml.utf8(t)?;
            }
            Event::PI(ref p) => {
                xml.utf8(p)?;
            }
            Event::Decl(_) | Event::DocType(_) => {}
            Event::Eof => return state.finish(&xml),
        }
    }
}

/// Where the first pass is in the file, and the testcase being read.
struct ScanState {
    scan: JunitScan,
    /// How many elements are open.
    depth: usize,
    seen_root: bool,
    record: ScannedCase,
    /// The depth of the open testcase's children, while one is open.
    case_depth: Option<usize>,
    collecting: Collecting,
}

impl ScanState {
    fn new() -> Self {
        ScanState {
            scan: JunitScan::default(),
            depth: 0,
            seen_root: false,
            record: ScannedCase::default(),
            case_depth: None,
            collecting: Collecting::Nothing,
        }
    }

    /// A start tag, or an empty element (`empty`).
    fn start(
        &mut self,
        xml: &XmlFile,
        e: &BytesStart<'_>,
        empty: bool,
        on_case: &mut impl FnMut(&ScannedCase),
    ) -> Result<(), ReportError> {
        let name = local_name(e);
        if name.as_slice() != b"testcase" {
            xml.validate_attributes(e)?;
        }
        if !self.seen_root {
            self.seen_root = true;
            check_root(xml, name.as_slice())?;
        }
        match name.as_slice() {
            b"testsuite" if self.scan.suite_name.is_none() => {
                self.scan.suite_name = xml.attr(e, "name")?;
                self.scan.timestamp = xml.attr(e, "timestamp")?;
                self.scan.hostname = xml.attr(e, "hostname")?;
            }
            b"testcase" => {
                if self.case_depth.is_some() {
                    return Err(xml.error_here("<testcase> inside a <testcase>".into()));
                }
                read_case(xml, e, &mut self.record)?;
                if empty {
                    on_case(&self.record);
                } else {
                    self.case_depth = Some(self.depth + 1);
                }
            }
            kind @ (b"failure" | b"error" | b"skipped") if self.case_depth == Some(self.depth) => {
                self.outcome(xml, e, kind, empty)?;
            }
            _ => {}
        }
        if !empty {
            self.depth += 1;
        }
        Ok(())
    }

    /// A `<failure>`, `<error>` or `<skipped>` child of the open testcase.
    fn outcome(
        &mut self,
        xml: &XmlFile,
        e: &BytesStart<'_>,
        kind: &[u8],
        empty: bool,
    ) -> Result<(), ReportError> {
        let problem = Problem {
            message: xml.attr(e, "message")?.unwrap_or_default(),
            tail: String::new(),
        };
        let current = &mut self.record;
        match kind {
            b"failure" => {
                current.failure.get_or_insert(problem);
                self.collecting = Collecting::Failure;
            }
            b"error" => {
                current.error.get_or_insert(problem);
                self.collecting = Collecting::Error;
            }
            _ => current.skipped = true,
        }
        if empty {
            self.collecting = Collecting::Nothing;
        }
        Ok(())
    }

    fn end(&mut self, e: &BytesEnd<'_>, on_case: &mut impl FnMut(&ScannedCase)) {
        self.depth = self.depth.saturating_sub(1);
        let name = end_name(e);
        if matches!(name.as_slice(), b"failure" | b"error") {
            self.collecting = Collecting::Nothing;
        }
        if name.as_slice() == b"testcase" && self.case_depth.take().is_some() {
            on_case(&self.record);
        }
    }

    /// Text inside the open testcase's failure or error: keep its last [`TAIL_BYTES`].
    fn append_tail(&mut self, text: &str) {
        if self.case_depth.is_none() {
            return;
        }
        let problem = match self.collecting {
            Collecting::Nothing => return,
            Collecting::Failure => self.record.failure.as_mut(),
            Collecting::Error => self.record.error.as_mut(),
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

    /// The end of the file: it must have had a root element, and closed it.
    fn finish(self, xml: &XmlFile) -> Result<JunitScan, ReportError> {
        xml.check_complete(self.seen_root, self.depth)?;
        Ok(self.scan)
    }
}

fn is_suite(name: &[u8]) -> bool {
    name == b"testsuite" || name == b"testsuites"
}

/// Copy one event if it is inside a `<testsuite>` and not itself a suite tag (nested suites
/// are flattened into the group's suite). Validation happens in the scan; a file that fails
/// it fails the whole merge, so what was copied is thrown away.
fn copy_event(
    event: &Event<'_>,
    open_suites: &mut usize,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let inside = *open_suites > 0;
    match event {
        Event::Start(e) => {
            let name = local_name(e);
            if is_suite(name.as_slice()) {
                *open_suites += usize::from(name.as_slice() == b"testsuite");
            } else if inside {
                write_parts(out, &[b"<", e, b">"])?;
            }
        }
        Event::Empty(e) if inside && !is_suite(local_name(e).as_slice()) => {
            write_parts(out, &[b"<", e, b"/>"])?;
        }
        Event::End(e) => {
            let name = end_name(e);
            if name.as_slice() == b"testsuite" {
                *open_suites = open_suites.saturating_sub(1);
            } else if inside && !is_suite(name.as_slice()) {
                write_parts(out, &[b"</", e.name().as_ref(), b">"])?;
            }
        }
        Event::Text(t) if inside => out.write_all(t)?,
        Event::CData(t) if inside => write_parts(out, &[b"<![CDATA[", t, b"]]>"])?,
        Event::Comment(t) if inside => write_parts(out, &[b"<!--", t, b"-->"])?,
        Event::GeneralRef(r) if inside => write_parts(out, &[b"&", r, b";"])?,
        _ => {}
    }
    Ok(())
}

fn write_parts(out: &mut dyn Write, parts: &[&[u8]]) -> std::io::Result<()> {
    for part in parts {
        out.write_all(part)?;
    }
    Ok(())
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

/// Fill `case` from a testcase's attributes, reusing its buffers.
fn read_case(xml: &XmlFile, e: &BytesStart<'_>, case: &mut ScannedCase) -> Result<(), ReportError> {
    case.classname.clear();
    case.name.clear();
    case.file = None;
    case.line = None;
    case.time = 0.0;
    case.failure = None;
    case.error = None;
    case.skipped = false;
    xml.for_each_attr(e, |key, value| {
        match key {
            "classname" => case.classname.push_str(&value),
            "name" => case.name.push_str(&value),
            "file" => case.file = Some(value.into_owned()),
            "line" if !value.trim().is_empty() => {
                case.line = Some(xml.number("testcase", "line", &value)?)
            }
            "time" => {
                let secs: f64 = xml.number("testcase", "time", &value)?;
                if !crate::duration::is_plausible_seconds(secs) {
                    return Err(xml.error_here(format!(
                        "<testcase> time={value:?} is not a number of seconds from 0 to {}",
                        crate::duration::MAX_TEST_SECONDS
                    )));
                }
                case.time = secs;
            }
            _ => {}
        }
        Ok(())
    })
}
