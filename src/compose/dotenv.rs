//! `.env` and `env_file` files: `KEY=VALUE` lines.
//!
//! Accepted forms, as in Docker Compose: `export ` prefixes, `#` comments (whole line, or after
//! whitespace in an unquoted value), single quotes (literal), double quotes (with `\n`, `\t`,
//! `\"`, `\\` escapes and interpolation), unquoted values (trimmed, interpolated), and a bare
//! `KEY` (taken from the environment when set, otherwise left out).

use super::interpolate::{interpolate_str, InterpolationError};

/// One parsed entry: `None` is a bare `KEY` line.
pub(crate) type Entry = (String, Option<String>);

/// Parse an env file. `lookup` resolves `${VAR}` references in values (earlier entries of the
/// same file take part). Errors carry the 1-based line.
pub(crate) fn parse_env_file(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Entry>, (usize, String)> {
    let mut entries: Vec<Entry> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            check_key(line, line_no)?;
            entries.push((line.to_string(), None));
            continue;
        };
        let key = key.trim();
        check_key(key, line_no)?;
        let own = entries.clone();
        let chained = |name: &str| {
            lookup(name).or_else(|| {
                own.iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| v.clone())
            })
        };
        let value = parse_value(value.trim_start(), &chained, warnings).map_err(|e| match e {
            InterpolationError::Required { name, message } => (
                line_no,
                format!("required variable {name} is missing a value: {message}"),
            ),
            InterpolationError::Syntax(m) => (line_no, m),
        })?;
        entries.push((key.to_string(), Some(value)));
    }
    Ok(entries)
}

fn check_key(key: &str, line: usize) -> Result<(), (usize, String)> {
    let valid = !key.is_empty()
        && !key
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'');
    if valid {
        Ok(())
    } else {
        Err((
            line,
            format!("expected KEY=VALUE, got a line starting with {key:?}"),
        ))
    }
}

fn parse_value(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<String, InterpolationError> {
    if let Some(rest) = value.strip_prefix('\'') {
        let end = rest.find('\'').unwrap_or(rest.len());
        return Ok(rest[..end].to_string());
    }
    if let Some(rest) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                },
                other => out.push(other),
            }
        }
        return interpolate_str(&out, lookup, warnings);
    }
    // An unquoted value ends at ` #` (an inline comment).
    let cut = value.find(" #").unwrap_or(value.len());
    interpolate_str(value[..cut].trim(), lookup, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Entry> {
        let lookup = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        parse_env_file(text, &lookup, &mut Vec::new()).unwrap()
    }

    fn entry(k: &str, v: Option<&str>) -> Entry {
        (k.to_string(), v.map(str::to_string))
    }

    #[test]
    fn all_line_forms() {
        let got = parse(
            "# comment\n\nA=1\nexport B = two words # note\nC='lit $HOME # x'\nD=\"q\\n$HOME\"\nE\nF=\nG=${A}-x\nH=a=b\n",
        );
        assert_eq!(
            got,
            vec![
                entry("A", Some("1")),
                entry("B", Some("two words")),
                entry("C", Some("lit $HOME # x")),
                entry("D", Some("q\n/home/u")),
                entry("E", None),
                entry("F", Some("")),
                entry("G", Some("1-x")),
                entry("H", Some("a=b")),
            ]
        );
    }

    #[test]
    fn bad_line_reports_its_number() {
        let lookup = |_: &str| None;
        let err = parse_env_file("A=1\nnot a pair\n", &lookup, &mut Vec::new()).unwrap_err();
        assert_eq!(err.0, 2);
    }
}
