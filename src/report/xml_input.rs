//! Reading untrusted XML reports: a streaming reader that turns every problem into an error
//! naming the file and line, and never expands entities.
//!
//! Hostile input is expected (reports come from crashed containers and other machines), so:
//! a `<!DOCTYPE>` is skipped and its entity declarations are never expanded (billion laughs and
//! external entities have nothing to act on); a reference to anything but the five predefined
//! entities or a character reference is an error; bytes that are not UTF-8 are an error; nesting
//! depth costs nothing because nothing recurses.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesEnd, BytesRef, BytesStart, Event};
use quick_xml::Reader;

use super::error::ReportError;

/// Why a file's first bytes cannot be a UTF-8 XML report: UTF-16 or UTF-32 (with or without a
/// byte order mark) or binary data (a NUL byte early on). Without this check such a file gets
/// "root element is <\0?\0x\0m\0l\0>", raw NUL bytes and no hint.
pub(crate) fn sniff_non_utf8(head: &[u8]) -> Option<String> {
    let head = &head[..head.len().min(512)];
    let utf16 = "the file is UTF-16 encoded; only UTF-8 reports are supported (convert it, e.g. `iconv -f UTF-16 -t UTF-8`)";
    let utf32 = "the file is UTF-32 encoded; only UTF-8 reports are supported (convert it, e.g. `iconv -f UTF-32 -t UTF-8`)";
    if head.starts_with(&[0, 0, 0xFE, 0xFF]) || head.starts_with(&[0xFF, 0xFE, 0, 0]) {
        return Some(utf32.into());
    }
    if head.starts_with(&[0xFE, 0xFF]) || head.starts_with(&[0xFF, 0xFE]) {
        return Some(utf16.into());
    }
    let nul = head.iter().position(|&b| b == 0)?;
    // `<` or whitespace next to a NUL: UTF-16 without a byte order mark, either byte order.
    let pairs = head.chunks_exact(2).take(8);
    let ascii_16 = pairs.clone().count() > 0
        && (pairs.clone().all(|p| p[1] == 0 && p[0] != 0)
            || pairs.clone().all(|p| p[0] == 0 && p[1] != 0));
    if ascii_16 {
        return Some(utf16.into());
    }
    Some(format!(
        "the file looks binary (a NUL byte at offset {nul}), not an XML report; pass the JUnit or Cobertura XML file"
    ))
}

/// A streaming XML reader over one input file that reports errors with file and line.
pub(crate) struct XmlFile {
    path: PathBuf,
    reader: Reader<BufReader<File>>,
}

impl XmlFile {
    /// Open `path` for streaming.
    pub(crate) fn open(path: &Path) -> Result<Self, ReportError> {
        let file = File::open(path).map_err(|source| ReportError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let mut buffered = BufReader::with_capacity(1 << 16, file);
        let head = buffered.fill_buf().map_err(|source| ReportError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(problem) = sniff_non_utf8(head) {
            return Err(ReportError::Malformed {
                file: path.display().to_string(),
                line: 1,
                message: problem,
            });
        }
        let mut reader = Reader::from_reader(buffered);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Ok(XmlFile {
            path: path.to_path_buf(),
            reader,
        })
    }

    /// The file being read.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The next event; an end of file inside an open element is an error.
    pub(crate) fn next<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, ReportError> {
        buf.clear();
        match self.reader.read_event_into(buf) {
            Ok(Event::Decl(decl)) => {
                if let Some(Ok(encoding)) = decl.encoding() {
                    let enc = String::from_utf8_lossy(&encoding).to_ascii_lowercase();
                    if enc != "utf-8" && enc != "utf8" {
                        return Err(self.error_here(format!(
                            "the XML declaration says encoding {enc:?}; only UTF-8 reports are supported"
                        )));
                    }
                }
                Ok(Event::Decl(decl))
            }
            Ok(event) => Ok(event),
            Err(err) => {
                let offset = self.reader.error_position();
                Err(self.error_at(offset, format!("malformed XML: {err}")))
            }
        }
    }

    /// An error located at the reader's current position.
    pub(crate) fn error_here(&self, message: String) -> ReportError {
        self.error_at(self.reader.buffer_position(), message)
    }

    /// At the end of the file: it must have had a root element (`seen_root`) and closed every
    /// element (`open` is how many are still open).
    pub(crate) fn check_complete(&self, seen_root: bool, open: usize) -> Result<(), ReportError> {
        if !seen_root {
            return Err(self.error_here("no root element (empty or truncated file)".into()));
        }
        if open != 0 {
            return Err(self.error_here(format!(
                "file ends inside {open} unclosed element(s) (truncated?)"
            )));
        }
        Ok(())
    }

    fn error_at(&self, offset: u64, message: String) -> ReportError {
        ReportError::Malformed {
            file: self.path.display().to_string(),
            line: line_at(&self.path, offset),
            message,
        }
    }

    /// Check a text-like event's raw bytes are UTF-8 and return them as text.
    pub(crate) fn utf8<'a>(&self, raw: &'a [u8]) -> Result<&'a str, ReportError> {
        std::str::from_utf8(raw).map_err(|e| {
            self.error_here(format!(
                "invalid UTF-8 (byte {} of this element or text)",
                e.valid_up_to()
            ))
        })
    }

    /// Resolve an entity or character reference; only XML's predefined entities are allowed.
    pub(crate) fn resolve_ref(&self, reference: &BytesRef<'_>) -> Result<char, ReportError> {
        if reference.is_char_ref() {
            return match reference.resolve_char_ref() {
                Ok(Some(c)) => Ok(c),
                _ => Err(self.error_here(format!(
                    "invalid character reference &{};",
                    String::from_utf8_lossy(reference)
                ))),
            };
        }
        match &**reference {
            b"lt" => Ok('<'),
            b"gt" => Ok('>'),
            b"amp" => Ok('&'),
            b"apos" => Ok('\''),
            b"quot" => Ok('"'),
            other => Err(self.error_here(format!(
                "reference to entity &{};: only the predefined XML entities are accepted (entities are never expanded)",
                String::from_utf8_lossy(other)
            ))),
        }
    }

    /// Visit every attribute of a start tag in document order, validated (UTF-8, only the
    /// predefined entities) and unescaped; values without references are not copied.
    pub(crate) fn for_each_attr(
        &self,
        start: &BytesStart<'_>,
        mut visit: impl FnMut(&str, Cow<'_, str>) -> Result<(), ReportError>,
    ) -> Result<(), ReportError> {
        self.utf8(start.name().0)?;
        // A repeated attribute is not worth a quadratic check on every element: the first
        // occurrence wins wherever one is looked up.
        for attr in start.attributes().with_checks(false) {
            let attr = attr.map_err(|e| self.error_here(format!("malformed attribute: {e}")))?;
            let key = self.utf8(attr.key.0)?;
            let raw = self.utf8(&attr.value)?;
            let value = if raw.as_bytes().contains(&b'&') {
                let unescaped = quick_xml::escape::unescape(raw).map_err(|e| {
                    self.error_here(format!(
                        "attribute {key}: {e} (entities other than the predefined five are never expanded)"
                    ))
                })?;
                Cow::Owned(unescaped.into_owned())
            } else {
                Cow::Borrowed(raw)
            };
            visit(key, value)?;
        }
        Ok(())
    }

    /// Every attribute of a start tag, decoded and unescaped, in document order.
    pub(crate) fn attributes(
        &self,
        start: &BytesStart<'_>,
    ) -> Result<Vec<(String, String)>, ReportError> {
        let mut out = Vec::new();
        self.for_each_attr(start, |k, v| {
            out.push((k.to_string(), v.into_owned()));
            Ok(())
        })?;
        Ok(out)
    }

    /// The value of one attribute, if present (all attributes are validated).
    pub(crate) fn attr(
        &self,
        start: &BytesStart<'_>,
        name: &str,
    ) -> Result<Option<String>, ReportError> {
        let mut found = None;
        self.for_each_attr(start, |k, v| {
            if k == name && found.is_none() {
                found = Some(v.into_owned());
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Validate every attribute of an element that is copied through verbatim.
    pub(crate) fn validate_attributes(&self, start: &BytesStart<'_>) -> Result<(), ReportError> {
        self.for_each_attr(start, |_, _| Ok(()))
    }

    /// Parse a numeric attribute, naming it in the error.
    pub(crate) fn number<T: std::str::FromStr>(
        &self,
        element: &str,
        name: &str,
        value: &str,
    ) -> Result<T, ReportError> {
        value.trim().parse().map_err(|_| {
            self.error_here(format!(
                "<{element}> attribute {name}={value:?} is not a valid number"
            ))
        })
    }
}

/// An element's local name, copied onto the stack so it outlives the event without an
/// allocation per element. Names longer than the buffer compare unequal to every name this
/// module looks for (all are short), which is all they are used for.
#[derive(Clone, Copy)]
pub(crate) struct TagName {
    bytes: [u8; 16],
    len: usize,
}

impl TagName {
    fn new(name: &[u8]) -> Self {
        let mut bytes = [0u8; 16];
        if name.len() > bytes.len() {
            // Longer than any name of interest: keep a prefix that cannot match (len 0 is
            // reserved for this and no element has an empty name).
            return TagName { bytes, len: 0 };
        }
        bytes[..name.len()].copy_from_slice(name);
        TagName {
            bytes,
            len: name.len(),
        }
    }

    /// The name's bytes (empty for names too long to be of interest).
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The local name of a start or empty tag.
pub(crate) fn local_name(start: &BytesStart<'_>) -> TagName {
    TagName::new(start.local_name().as_ref())
}

/// The local name of an end tag.
pub(crate) fn end_name(end: &BytesEnd<'_>) -> TagName {
    TagName::new(end.local_name().as_ref())
}

/// 1-based line of a byte offset, found by re-reading the file: errors are rare, so the
/// happy path does not pay for counting newlines.
pub(crate) fn line_at(path: &Path, offset: u64) -> usize {
    let Ok(file) = File::open(path) else {
        return 1;
    };
    let mut reader = BufReader::new(file).take(offset);
    let mut line = 1;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) if !chunk.is_empty() => chunk,
            _ => break,
        };
        line += chunk.iter().filter(|&&b| b == b'\n').count();
        let len = chunk.len();
        reader.consume(len);
    }
    line
}

/// Escape text content (`<`, `>`, `&`), with quick-xml's escaping.
pub(crate) fn escape_text(text: &str, out: &mut String) {
    out.push_str(&quick_xml::escape::partial_escape(text));
}

/// Escape an attribute value: quick-xml's escaping of `<>&'"`, then whitespace other than
/// space as character references so it survives attribute-value normalization on the way
/// back in (quick-xml has no public function for that set).
pub(crate) fn escape_attr(text: &str, out: &mut String) {
    let escaped = quick_xml::escape::escape(text);
    if !escaped.contains(['\n', '\r', '\t']) {
        out.push_str(&escaped);
        return;
    }
    for c in escaped.chars() {
        match c {
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

/// Append ` name="value"` with the value escaped.
pub(crate) fn push_attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_attr(value, out);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::sniff_non_utf8;

    fn utf16le(text: &str, bom: bool) -> Vec<u8> {
        let mut out = if bom { vec![0xFF, 0xFE] } else { vec![] };
        out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        out
    }

    #[test]
    fn utf16_report_with_or_without_bom_is_named_utf16() {
        for bom in [true, false] {
            let msg = sniff_non_utf8(&utf16le("<?xml version=\"1.0\"?><testsuites/>", bom));
            assert!(msg.unwrap().contains("UTF-16"), "bom={bom}");
        }
        let be: Vec<u8> = "<testsuites/>"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert!(sniff_non_utf8(&be).unwrap().contains("UTF-16"));
    }

    #[test]
    fn binary_report_is_named_binary_and_utf8_passes() {
        let msg = sniff_non_utf8(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00").unwrap();
        assert!(msg.contains("binary") && msg.contains("offset 7"), "{msg}");
        assert_eq!(sniff_non_utf8(b"\xEF\xBB\xBF<testsuites/>"), None);
        assert_eq!(sniff_non_utf8(b"<testsuites/>"), None);
        assert_eq!(sniff_non_utf8(b""), None);
    }
}
