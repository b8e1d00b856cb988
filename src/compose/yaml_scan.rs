//! A cheap pass over a compose file's text before the YAML parser sees it, for what the parser
//! handles badly: nesting depth and alias positions.
//!
//! The YAML parser builds every event of the document before serde's recursion limit (128)
//! applies, and that parse is quadratic in the nesting depth: `[[[...` 100,000 deep takes 18 s
//! and `{a: {a: ...` 31 s before the error. This scan is linear and stops at the first level
//! past [`MAX_NESTING`], with the line and column of the bracket or `- ` that went too deep.
//! It also remembers where the first alias (`*name`) is, because the parser's "repetition
//! limit exceeded" (an alias bomb) carries no position.
//!
//! It is a lexer for the parts of YAML that open levels, not a parser: brackets count only
//! where a flow collection can start (so `foo[1]` in a plain scalar does not), quoted scalars
//! and comments are skipped, and so are the lines of block scalars (`|`, `>`). Indentation
//! nesting needs no check: its depth is bounded by the line length, and the parser's own
//! limit reports it with a position.

/// The deepest nesting accepted, serde's own recursion limit: compose files need about 8.
pub(crate) const MAX_NESTING: usize = 128;

/// What the scan found.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct YamlScan {
    /// 1-based (line, column) where nesting passed [`MAX_NESTING`].
    pub too_deep: Option<(usize, usize)>,
    /// 1-based (line, column) of the first alias.
    pub first_alias: Option<(usize, usize)>,
}

/// Lexer state carried from one line to the next.
#[derive(Default)]
struct State {
    flow_depth: usize,
    /// Inside a quoted scalar that continues on the next line: its quote character.
    quote: Option<u8>,
    /// Inside a block scalar: lines indented more than this belong to it.
    block_scalar_indent: Option<usize>,
}

/// Scan `text`; stops at the first nesting problem.
pub(crate) fn scan_yaml(text: &str) -> YamlScan {
    let mut state = State::default();
    let mut found = YamlScan::default();
    for (index, line) in text.lines().enumerate() {
        let bytes = line.as_bytes();
        let indent = bytes.iter().take_while(|&&b| b == b' ').count();
        if let Some(block) = state.block_scalar_indent {
            if indent > block || bytes[indent..].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            state.block_scalar_indent = None;
        }
        if let Err(column) = scan_line(bytes, indent, &mut state, &mut found, index + 1) {
            found.too_deep = Some((index + 1, column));
            return found;
        }
    }
    found
}

/// Scan one line; `Err(column)` when nesting passes the limit there.
fn scan_line(
    bytes: &[u8],
    indent: usize,
    state: &mut State,
    found: &mut YamlScan,
    line: usize,
) -> Result<(), usize> {
    let mut i = indent;
    let mut token_start = true;
    let mut sequence_markers = 0usize;
    let mut last_token_at = indent;
    while i < bytes.len() {
        if let Some(q) = state.quote {
            i = skip_quoted(bytes, i, q, state);
            continue;
        }
        let b = bytes[i];
        let next_is_space = bytes.get(i + 1).map_or(true, |c| *c == b' ' || *c == b'\t');
        if token_start && b != b' ' && b != b'\t' {
            last_token_at = i;
        }
        match b {
            b' ' | b'\t' => {
                i += 1;
                continue;
            }
            b'#' if i == 0 || matches!(bytes[i - 1], b' ' | b'\t') => break,
            b'-' | b'?' if token_start && next_is_space && state.flow_depth == 0 => {
                sequence_markers += 1;
                if sequence_markers + state.flow_depth > MAX_NESTING {
                    return Err(i + 1);
                }
            }
            b'[' | b'{' if token_start => {
                state.flow_depth += 1;
                if sequence_markers + state.flow_depth > MAX_NESTING {
                    return Err(i + 1);
                }
            }
            b']' | b'}' if state.flow_depth > 0 => {
                state.flow_depth -= 1;
                token_start = false;
            }
            b',' if state.flow_depth > 0 => token_start = true,
            b':' if next_is_space || state.flow_depth > 0 => token_start = true,
            b'\'' | b'"' if token_start => {
                state.quote = Some(b);
                i += 1;
                continue;
            }
            b'&' | b'!' if token_start => {
                // An anchor or a tag: the node it belongs to comes after it.
                while i < bytes.len() && !matches!(bytes[i], b' ' | b'\t') {
                    i += 1;
                }
                continue;
            }
            b'*' if token_start => {
                found.first_alias.get_or_insert((line, i + 1));
                token_start = false;
            }
            _ => token_start = false,
        }
        i += 1;
    }
    if state.quote.is_none() && state.flow_depth == 0 && starts_block_scalar(bytes, last_token_at) {
        state.block_scalar_indent = Some(indent);
    }
    Ok(())
}

/// Skip inside a quoted scalar from `i`; returns the index after its closing quote (and
/// clears the state), or the line's end.
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, state: &mut State) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            c if c == quote => {
                state.quote = None;
                return i + 1;
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Whether the token starting at `at` is a block scalar indicator (`|`, `>-`, `|2+`...).
fn starts_block_scalar(bytes: &[u8], at: usize) -> bool {
    let token = &bytes[at.min(bytes.len())..];
    let token = match token.iter().position(|&b| b == b'#') {
        Some(hash) => &token[..hash],
        None => token,
    };
    let token = token.trim_ascii();
    matches!(token.first(), Some(b'|' | b'>'))
        && token[1..]
            .iter()
            .all(|b| matches!(b, b'-' | b'+' | b'0'..=b'9'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_nesting_100000_deep_is_found_at_the_129th_bracket() {
        let text = format!("services:\n  web:\n    labels: {}\n", "[".repeat(100_000));
        assert_eq!(scan_yaml(&text).too_deep, Some((3, 13 + MAX_NESTING)));
        let text = format!("x: {}1{}\n", "{a: ".repeat(100_000), "}".repeat(100_000));
        assert_eq!(scan_yaml(&text).too_deep, Some((1, 4 + 4 * MAX_NESTING)));
    }

    #[test]
    fn anchors_and_tags_do_not_hide_the_collection_after_them() {
        let text = format!("a: &x !!seq {}\n", "[".repeat(MAX_NESTING + 1));
        assert_eq!(scan_yaml(&text).too_deep, Some((1, 12 + MAX_NESTING + 1)));
        assert_eq!(scan_yaml("b: &b [*a, *a]\n").first_alias, Some((1, 8)));
    }

    #[test]
    fn block_sequence_chain_is_nesting_too() {
        let text = format!("x:\n  {}1\n", "- ".repeat(1000));
        assert_eq!(scan_yaml(&text).too_deep, Some((2, 3 + 2 * MAX_NESTING)));
    }

    #[test]
    fn brackets_in_scalars_comments_and_block_scalars_do_not_count() {
        let deep = "[".repeat(MAX_NESTING + 5);
        let text = format!(
            "a: foo{deep}\nb: '{deep}'\nc: \"{deep}\\\"{deep}\"\nd: 1 # {deep}\ne: |\n  {deep}\n  {deep}\nf: >-\n  {deep}\ng: [1, 2]\n"
        );
        assert_eq!(scan_yaml(&text), YamlScan::default());
    }

    #[test]
    fn normal_nesting_passes_and_the_first_alias_is_found() {
        let text =
            "x-a: &a {k: [1, {b: !!str [2]}]}\nservices:\n  web:\n    <<: *a\n    image: 'it''s'\n";
        let scan = scan_yaml(text);
        assert_eq!(scan.too_deep, None);
        assert_eq!(scan.first_alias, Some((4, 9)));
    }
}
