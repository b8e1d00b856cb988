//! Reading one Cobertura report into the merge, streaming: only `<class>`-level data is kept
//! while a file is read, and it is folded into [`MergedCoverage`] at each `</class>`.

use std::path::Path;

use quick_xml::events::{BytesStart, Event};

use super::coverage_model::{Branches, Line, MergedCoverage, SourceFile, EXIT};
use super::error::ReportError;
use super::xml_input::{local_name, XmlFile};

#[derive(Clone, Copy, PartialEq)]
enum Tag {
    Coverage,
    Sources,
    Source,
    Package,
    Class,
    /// `<methods>`: other producers put per-method `<lines>` here, which repeat the class's.
    Methods,
    ClassLines,
    Other,
}

/// Fold one report into `merged`. `first` says whether it is the first report (whose version,
/// comments and sources head the output).
pub(crate) fn read_coverage(
    path: &Path,
    merged: &mut MergedCoverage,
    first: bool,
) -> Result<(), ReportError> {
    let mut xml = XmlFile::open(path)?;
    let mut buf = Vec::new();
    let mut reader = ReportReader::new(first);
    loop {
        let event = xml.next(&mut buf)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let tag = reader.start(&xml, e, merged)?;
                if matches!(event, Event::Empty(_)) {
                    reader.finish(tag, merged);
                } else {
                    reader.stack.push(tag);
                }
            }
            Event::End(_) => {
                if let Some(tag) = reader.stack.pop() {
                    reader.finish(tag, merged);
                }
            }
            Event::Text(ref t) => reader.source_text(xml.utf8(t)?),
            Event::CData(ref t) => reader.source_text(xml.utf8(t)?),
            Event::GeneralRef(ref r) => {
                let c = xml.resolve_ref(r)?;
                reader.source_text(c.encode_utf8(&mut [0; 4]));
            }
            Event::Comment(ref t) => {
                let text = xml.utf8(t)?;
                if first && reader.stack.len() == 1 {
                    merged.comments.push(text.to_string());
                }
            }
            Event::PI(ref p) => {
                xml.utf8(p)?;
            }
            Event::Decl(_) | Event::DocType(_) => {}
            Event::Eof => return reader.end_of_file(&xml, merged),
        }
    }
}

/// Where the reader is in one report, and what it holds until the enclosing element ends.
struct ReportReader {
    first: bool,
    /// The open elements.
    stack: Vec<Tag>,
    seen_root: bool,
    sources: Vec<String>,
    /// The text of the open `<source>`.
    source_text: String,
    /// The `name` of the open `<package>`.
    package: String,
    /// The open `<class>`: its file name and what was read of it.
    class: Option<(String, SourceFile)>,
}

impl ReportReader {
    fn new(first: bool) -> Self {
        ReportReader {
            first,
            stack: Vec::new(),
            seen_root: false,
            sources: Vec::new(),
            source_text: String::new(),
            package: String::new(),
            class: None,
        }
    }

    /// A start tag or empty element: what it is, given its parent.
    fn start(
        &mut self,
        xml: &XmlFile,
        e: &BytesStart<'_>,
        merged: &mut MergedCoverage,
    ) -> Result<Tag, ReportError> {
        let name = local_name(e);
        Ok(match (self.stack.last().copied(), name.as_slice()) {
            (None, b"coverage") => {
                self.seen_root = true;
                read_root(xml, e, merged, self.first)?;
                Tag::Coverage
            }
            (None, other) => {
                return Err(ReportError::UnknownFormat {
                    file: xml.path().display().to_string(),
                    root: String::from_utf8_lossy(other).into_owned(),
                })
            }
            (Some(Tag::Coverage), b"sources") => Tag::Sources,
            (Some(Tag::Sources), b"source") => {
                self.source_text.clear();
                Tag::Source
            }
            (_, b"package") => {
                self.package = xml.attr(e, "name")?.unwrap_or_default();
                Tag::Package
            }
            (_, b"class") => {
                self.class = Some(read_class(xml, e, &self.package)?);
                Tag::Class
            }
            (Some(Tag::Class), b"methods") => Tag::Methods,
            (Some(Tag::Class), b"lines") => Tag::ClassLines,
            (Some(Tag::ClassLines), b"line") => {
                let line = read_line(xml, e)?;
                merged.has_branches |= line.branches.is_some();
                if let Some((_, file)) = self.class.as_mut() {
                    file.lines.push(line);
                }
                Tag::Other
            }
            _ => {
                xml.validate_attributes(e)?;
                Tag::Other
            }
        })
    }

    /// Text, kept only inside a `<source>`.
    fn source_text(&mut self, text: &str) {
        if self.stack.last() == Some(&Tag::Source) {
            self.source_text.push_str(text);
        }
    }

    /// The end of an element: a class is folded into `merged`, a source kept.
    fn finish(&mut self, tag: Tag, merged: &mut MergedCoverage) {
        match tag {
            Tag::Class => {
                if let Some((filename, mut file)) = self.class.take() {
                    file.lines.sort_by_key(|l| l.number);
                    file.lines.dedup_by_key(|l| l.number);
                    merged.add_file(filename, file);
                }
            }
            Tag::Source => self.sources.push(self.source_text.trim().to_string()),
            _ => {}
        }
    }

    /// The end of the file: it must have had a root element, and closed it.
    fn end_of_file(self, xml: &XmlFile, merged: &mut MergedCoverage) -> Result<(), ReportError> {
        xml.check_complete(self.seen_root, self.stack.len())?;
        add_sources(merged, self.sources, self.first);
        Ok(())
    }
}

/// Source roots: the first report's, plus roots of later reports that add to them. A later
/// report listing as many roots as the first but different ones is taken to be the same
/// project checked out elsewhere (another runner): its files are matched by their paths
/// relative to those roots, and its roots are not added.
fn add_sources(merged: &mut MergedCoverage, sources: Vec<String>, first: bool) {
    if first {
        merged.sources = sources;
        return;
    }
    if sources.len() == merged.sources.len() {
        return;
    }
    for s in sources {
        if !merged.sources.contains(&s) {
            merged.sources.push(s);
        }
    }
}

fn read_root(
    xml: &XmlFile,
    e: &BytesStart<'_>,
    merged: &mut MergedCoverage,
    first: bool,
) -> Result<(), ReportError> {
    let attrs = xml.attributes(e)?;
    for (key, value) in attrs {
        match key.as_str() {
            "version" if first => merged.version = Some(value),
            // coverage.py writes branch-rate="0" and branches-valid="0" when branch coverage
            // was off; with it on and no branches at all, the rate is "1".
            "branch-rate" if value.trim() != "0" => merged.has_branches = true,
            "branches-valid" if value.trim() != "0" => merged.has_branches = true,
            _ => {}
        }
    }
    Ok(())
}

fn read_class(
    xml: &XmlFile,
    e: &BytesStart<'_>,
    package: &str,
) -> Result<(String, SourceFile), ReportError> {
    let mut filename = None;
    let mut name = None;
    for (key, value) in xml.attributes(e)? {
        match key.as_str() {
            "filename" => filename = Some(value.replace('\\', "/")),
            "name" => name = Some(value),
            _ => {}
        }
    }
    let filename =
        filename.ok_or_else(|| xml.error_here("<class> has no filename attribute".into()))?;
    Ok((
        filename.clone(),
        SourceFile {
            package: package.to_string(),
            name: name.unwrap_or(filename),
            lines: Vec::new(),
        },
    ))
}

fn read_line(xml: &XmlFile, e: &BytesStart<'_>) -> Result<Line, ReportError> {
    let mut number = None;
    let mut hits = 0u64;
    let mut is_branch = false;
    let mut total = None;
    let mut missing = Vec::new();
    xml.for_each_attr(e, |key, value| {
        match key {
            "number" => number = Some(xml.number::<u32>("line", "number", &value)?),
            "hits" => hits = xml.number("line", "hits", &value)?,
            "branch" => is_branch = value == "true",
            "condition-coverage" => total = Some(condition_total(xml, &value)?),
            "missing-branches" => missing = missing_branches(xml, &value)?,
            _ => {}
        }
        Ok(())
    })?;
    let number = number.ok_or_else(|| xml.error_here("<line> has no number attribute".into()))?;
    let branches = match (is_branch, total) {
        (true, Some(total)) => Some(Branches { total, missing }),
        (true, None) => {
            return Err(xml.error_here(format!(
                "branch <line number=\"{number}\"> has no condition-coverage attribute"
            )))
        }
        (false, _) => None,
    };
    Ok(Line {
        number,
        hits,
        branches,
    })
}

/// The total of `"50% (1/2)"`.
fn condition_total(xml: &XmlFile, value: &str) -> Result<u32, ReportError> {
    value
        .rsplit_once('/')
        .and_then(|(_, rest)| rest.trim_end_matches(')').trim().parse().ok())
        .ok_or_else(|| {
            xml.error_here(format!(
                "condition-coverage={value:?} is not of the form \"50% (1/2)\""
            ))
        })
}

/// `"12,exit"` -> `[12, EXIT]`.
fn missing_branches(xml: &XmlFile, value: &str) -> Result<Vec<u32>, ReportError> {
    value
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| match s.trim() {
            "exit" => Ok(EXIT),
            n => n.parse().map_err(|_| {
                xml.error_here(format!(
                    "missing-branches={value:?}: {n:?} is neither a line number nor \"exit\""
                ))
            }),
        })
        .collect()
}
