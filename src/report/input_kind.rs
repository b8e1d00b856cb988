//! Telling JUnit from Cobertura by the root element, so `merge` accepts files in any order
//! and under any name.

use std::path::Path;

use quick_xml::events::Event;

use super::error::ReportError;
use super::xml_input::{local_name, XmlFile};

/// What kind of report a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// `<testsuites>` or `<testsuite>` root.
    Junit,
    /// `<coverage>` root.
    Cobertura,
}

/// Classify a report by its root element (reads only up to it).
pub fn classify(path: &Path) -> Result<ReportKind, ReportError> {
    let mut xml = XmlFile::open(path)?;
    let mut buf = Vec::new();
    loop {
        match xml.next(&mut buf)? {
            Event::Start(ref e) | Event::Empty(ref e) => {
                return match local_name(e).as_slice() {
                    b"testsuites" | b"testsuite" => Ok(ReportKind::Junit),
                    b"coverage" => Ok(ReportKind::Cobertura),
                    other => Err(ReportError::UnknownFormat {
                        file: path.display().to_string(),
                        root: String::from_utf8_lossy(other).into_owned(),
                    }),
                };
            }
            Event::Eof => {
                return Err(xml.error_here("no root element (empty or truncated file)".into()))
            }
            _ => {}
        }
    }
}
