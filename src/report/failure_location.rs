//! Where a failed test should be pointed at: pytest ends a failure's text with the crash
//! location (`tests/test_x.py:12: AssertionError`), which is the line a reader wants; the
//! testcase's own `line` attribute is the 0-based line of the test function's `def`.

use super::junit_scan::ScannedCase;
use super::node_id::node_file;

/// `(file, 1-based line)` for a failed testcase.
pub(crate) fn locate(
    case: &ScannedCase,
    node_id: &str,
    tail: &str,
) -> (Option<String>, Option<u32>) {
    let test_file = case
        .file
        .clone()
        .or_else(|| Some(node_file(node_id).to_string()).filter(|f| f.ends_with(".py")));
    let crash_lines: Vec<(&str, u32)> = tail.lines().filter_map(crash_location).collect();
    let in_test_file = crash_lines
        .iter()
        .rev()
        .find(|(file, _)| test_file.as_deref() == Some(*file));
    if let Some((file, line)) = in_test_file.or(crash_lines.last()) {
        return (Some(file.to_string()), Some(*line));
    }
    (test_file, case.line.map(|l| l + 1))
}

/// Parse `path.py:123: Something` (pytest's crash line).
fn crash_location(line: &str) -> Option<(&str, u32)> {
    let (file, rest) = line.split_once(".py:")?;
    if file.is_empty() || file.contains(char::is_whitespace) {
        return None;
    }
    let digits: &str = rest.split(':').next()?;
    let number = digits.parse().ok()?;
    Some((&line[..file.len() + 3], number))
}

/// A one-line message: the `message` attribute, or the last non-empty line of the text.
pub(crate) fn one_line_message(message: &str, tail: &str) -> String {
    let source = if message.trim().is_empty() {
        tail.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    } else {
        message
    };
    let first = source.lines().next().unwrap_or("").trim();
    let mut out: String = first.chars().take(500).collect();
    if first.chars().count() > 500 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_crash_line_in_the_test_file() {
        let case = ScannedCase {
            file: None,
            line: Some(9),
            ..ScannedCase::default()
        };
        let tail =
            "    assert x\nE   assert 0\n\napp/core.py:3: in f\ntests/test_a.py:12: AssertionError";
        assert_eq!(
            locate(&case, "tests/test_a.py::test_x", tail),
            (Some("tests/test_a.py".into()), Some(12))
        );
    }

    #[test]
    fn falls_back_to_the_def_line_plus_one() {
        let case = ScannedCase {
            file: Some("tests/test_b.py".into()),
            line: Some(4),
            ..ScannedCase::default()
        };
        assert_eq!(
            locate(&case, "tests/test_b.py::test_y", "no location here"),
            (Some("tests/test_b.py".into()), Some(5))
        );
    }

    #[test]
    fn message_falls_back_to_last_text_line() {
        assert_eq!(one_line_message("", "a\nE  boom\n\n"), "E  boom");
        assert_eq!(one_line_message("assert 1 == 2\nmore", ""), "assert 1 == 2");
    }
}
