//! The collected test list: node ids one per line, or the raw output of
//! `pytest --collect-only -q` (which adds a summary line and, when there are warnings or
//! collection errors, `=====`-headed sections after the ids).
//!
//! Every pytest item id contains `::` (`path::test`, `path::Class::test[param]`, doctests
//! `file::name`), so a line without `::` is never a test. Sections after the ids
//! (`warnings summary`, `ERRORS`, `short test summary info`) are skipped as a whole, because
//! the warnings summary lists node ids of tests that warned and they must not be counted
//! twice. Repeated ids are kept once (first occurrence), so every test lands in exactly one
//! group.

use std::borrow::Cow;
use std::collections::HashSet;

/// The test list is output that the planner cannot use safely.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TestListError {
    /// 1-based line of the offending text.
    pub line: usize,
    /// What is wrong and what to do.
    pub message: String,
}

/// Node ids from either one-per-line or raw `pytest --collect-only -q` output (skip summary
/// lines like "12 tests collected in 0.3s", "no tests ran", warnings sections, blank lines;
/// keep ids with spaces, brackets, unicode, `::` in params). Lenient: lines it cannot use are
/// skipped; see [`parse_collect_output`] for the variant that rejects unusable output.
pub fn parse_test_list(text: &str) -> Vec<String> {
    scan(text).ids
}

/// Like [`parse_test_list`], but rejects output that would give a wrong plan: the tree printed
/// by `pytest --collect-only` without `-q` (`<Module test_x.py>`), the per-file counts of
/// `-qq`, and output of a collection that had errors (its tests would silently be missing).
pub fn parse_collect_output(text: &str) -> Result<Vec<String>, TestListError> {
    let scanned = scan(text);
    match scanned.problem {
        Some(problem) => Err(problem),
        None => Ok(scanned.ids),
    }
}

struct Scanned {
    ids: Vec<String>,
    problem: Option<TestListError>,
}

fn scan(text: &str) -> Scanned {
    let mut ids = Vec::new();
    let mut problem = None;
    let mut in_trailer = false;
    let mut note = |line: usize, message: String| {
        problem.get_or_insert(TestListError { line, message });
    };
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = strip_ansi(raw);
        let line = line.trim_end();
        if mentions_collection_error(line) {
            note(line_no, format!(
                "pytest reported errors during collection ({}); fix them first, otherwise the tests of the failing files would be missing from every group",
                line.trim_matches(|c| c == '=' || c == '_' || c == '!' || c == ' ')
            ));
        }
        if line.is_empty() || in_trailer {
            continue;
        }
        if is_section_header(line) {
            // pytest's own header (without -q) comes before the ids; every other section
            // comes after them.
            in_trailer = !line.contains("test session starts");
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        if line.starts_with('<') {
            note(line_no, format!(
                "{line:?} is `pytest --collect-only` tree output; collect with `pytest --collect-only -q` to get node ids"
            ));
            continue;
        }
        if !line.contains("::") {
            if is_per_file_count(line) {
                note(line_no, format!(
                    "{line:?} is a per-file count from `pytest --collect-only -qq`; collect with a single -q to get node ids"
                ));
            }
            continue;
        }
        ids.push(line.to_string());
    }
    Scanned {
        ids: first_occurrences(ids),
        problem,
    }
}

fn first_occurrences(mut ids: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::with_capacity(ids.len());
    let keep: Vec<bool> = ids.iter().map(|id| seen.insert(id.as_str())).collect();
    drop(seen);
    let mut keep = keep.into_iter();
    ids.retain(|_| keep.next().unwrap_or(false));
    ids
}

/// `=====` headers of pytest's sections and its `!!!! Interrupted !!!!` and `____ name ____`
/// separators.
fn is_section_header(line: &str) -> bool {
    ["===", "___", "!!!"]
        .iter()
        .any(|sep| line.starts_with(sep))
}

/// pytest's `____ ERROR collecting f.py ____` and `!!! Interrupted: 1 error during collection
/// !!!` separators, and the summary `3 tests collected, 1 error in 0.2s`. Only separator and
/// summary lines are looked at, so a test id that mentions collection errors is no problem.
fn mentions_collection_error(line: &str) -> bool {
    let separator = is_section_header(line)
        && (line.contains("ERROR collecting ") || line.contains("during collection"));
    let summary = !line.contains("::") && line.contains(" collected") && line.contains(" error");
    separator || summary
}

/// `tests/test_x.py: 12`, what `-qq` prints per file.
fn is_per_file_count(line: &str) -> bool {
    match line.rsplit_once(": ") {
        Some((path, count)) => {
            !path.is_empty() && !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Remove ANSI colour codes (`--color=yes` output pasted into a file).
fn strip_ansi(line: &str) -> Cow<'_, str> {
    if !line.contains('\u{1b}') {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters... final byte in '@'..='~'.
            if chars.clone().next() == Some('[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}
