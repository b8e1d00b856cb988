//! Variable interpolation in values: `$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:?e}`, `${V?e}`,
//! `${V:+r}`, `${V+r}`, `$$`, and nested expressions inside defaults.
//!
//! Keys are never interpolated (Compose does the same). An unset variable without a default
//! becomes the empty string and produces a warning, as in Docker Compose.

use serde_yaml::Value;

/// Why interpolation failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InterpolationError {
    /// `${V:?msg}` / `${V?msg}` with `V` missing.
    Required {
        /// Variable name.
        name: String,
        /// The message from the file.
        message: String,
    },
    /// A malformed expression such as `${` without `}` or `${}`.
    Syntax(String),
}

/// Where variables come from: the shell environment first, then the project's `.env`.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The deepest nesting of `${...}` accepted. Expansion recurses once per level, so without a
/// limit checked beforehand `${A:-${A:-...` 20,000 deep overflows the stack; real files nest
/// two or three levels.
pub(crate) const MAX_INTERPOLATION_DEPTH: usize = 64;

/// Interpolate one string.
pub(crate) fn interpolate_str(
    text: &str,
    lookup: Lookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<String, InterpolationError> {
    if let Some(offset) = too_deep_at(text) {
        return Err(InterpolationError::Syntax(format!(
            "`${{...}}` nested more than {MAX_INTERPOLATION_DEPTH} deep (at character {} of the value); simplify the expression",
            text[..offset].chars().count() + 1
        )));
    }
    expand_str(text, lookup, warnings)
}

/// Byte offset of the `${` that nests deeper than [`MAX_INTERPOLATION_DEPTH`], if any: one
/// pass with a counter, no recursion.
fn too_deep_at(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, brace) in braces(text) {
        match brace {
            Brace::Open => {
                depth += 1;
                if depth > MAX_INTERPOLATION_DEPTH {
                    return Some(i);
                }
            }
            Brace::Close => depth = depth.saturating_sub(1),
        }
    }
    None
}

/// An opening `${` or a closing `}`.
#[derive(Clone, Copy)]
enum Brace {
    Open,
    Close,
}

/// The `${` and `}` of `s` with their byte offsets, in order; `$$` (a literal `$`) is
/// skipped, so `$${` opens nothing.
fn braces(s: &str) -> impl Iterator<Item = (usize, Brace)> + '_ {
    let bytes = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let at = i;
            match bytes[i] {
                b'$' if bytes.get(i + 1) == Some(&b'$') => i += 2,
                b'$' if bytes.get(i + 1) == Some(&b'{') => {
                    i += 2;
                    return Some((at, Brace::Open));
                }
                b'}' => {
                    i += 1;
                    return Some((at, Brace::Close));
                }
                _ => i += 1,
            }
        }
        None
    })
}

/// Interpolate a string whose nesting depth was checked.
fn expand_str(
    text: &str,
    lookup: Lookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner_and_more) = after.strip_prefix('{') {
            let end = matching_brace(inner_and_more).ok_or_else(|| {
                InterpolationError::Syntax(format!(
                    "invalid interpolation format in {text:?}: `${{` without a closing `}}`"
                ))
            })?;
            out.push_str(&expand_braced(
                &inner_and_more[..end],
                text,
                lookup,
                warnings,
            )?);
            rest = &inner_and_more[end + 1..];
        } else {
            let name_len = name_length(after);
            if name_len == 0 {
                // A lone `$` (e.g. `$1` or `$ `) is kept literally.
                out.push('$');
                rest = after;
            } else {
                out.push_str(&value_or_warn(&after[..name_len], lookup, warnings));
                rest = &after[name_len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Length of the variable name at the start of `s` (`[A-Za-z_][A-Za-z0-9_]*`).
fn name_length(s: &str) -> usize {
    let mut len = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

/// Index of the `}` closing an expression whose `${` was just consumed, allowing nesting.
fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, brace) in braces(s) {
        match brace {
            Brace::Open => depth += 1,
            Brace::Close if depth == 0 => return Some(i),
            Brace::Close => depth -= 1,
        }
    }
    None
}

fn value_or_warn(name: &str, lookup: Lookup<'_>, warnings: &mut Vec<String>) -> String {
    match lookup(name) {
        Some(v) => v,
        None => {
            let w = format!("the {name:?} variable is not set; substituting an empty string");
            if !warnings.contains(&w) {
                warnings.push(w);
            }
            String::new()
        }
    }
}

fn expand_braced(
    inner: &str,
    whole: &str,
    lookup: Lookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<String, InterpolationError> {
    let name_len = name_length(inner);
    if name_len == 0 {
        return Err(InterpolationError::Syntax(format!(
            "invalid interpolation format in {whole:?}: `${{{inner}}}` does not start with a variable name"
        )));
    }
    let name = &inner[..name_len];
    let op = &inner[name_len..];
    if op.is_empty() {
        return Ok(value_or_warn(name, lookup, warnings));
    }
    let value = lookup(name);
    let (colon, op) = match op.strip_prefix(':') {
        Some(rest) => (true, rest),
        None => (false, op),
    };
    let mut chars = op.chars();
    let kind = chars.next();
    let arg = chars.as_str();
    // With a colon, an empty value counts as missing; without, only an unset one does.
    let present = match &value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    match kind {
        Some('-') => {
            if present {
                Ok(value.unwrap_or_default())
            } else {
                expand_str(arg, lookup, warnings)
            }
        }
        Some('?') => {
            if present {
                Ok(value.unwrap_or_default())
            } else {
                Err(InterpolationError::Required {
                    name: name.to_string(),
                    message: expand_str(arg, lookup, warnings)?,
                })
            }
        }
        Some('+') => {
            if present {
                expand_str(arg, lookup, warnings)
            } else {
                Ok(String::new())
            }
        }
        _ => Err(InterpolationError::Syntax(format!(
            "invalid interpolation format in {whole:?}: after `{name}` expected one of `:-`, `-`, `:?`, `?`, `:+`, `+` or `}}`"
        ))),
    }
}

/// Interpolate every string value in a YAML tree (not keys). `path` names the value in errors.
pub(crate) fn interpolate_value(
    value: &mut Value,
    path: &str,
    lookup: Lookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<(), (String, InterpolationError)> {
    interpolate_tree(value, path, lookup, warnings, &mut |path, e| Err((path, e)))
}

/// What to do with a value that failed to interpolate: `Err` stops the walk with that
/// error, `Ok` leaves the value empty and goes on (a problem set aside for later).
pub(crate) type OnError<'a> =
    &'a mut dyn FnMut(String, InterpolationError) -> Result<(), (String, InterpolationError)>;

/// [`interpolate_value`] with the decision on each failed value left to `on_error`.
pub(crate) fn interpolate_tree(
    value: &mut Value,
    path: &str,
    lookup: Lookup<'_>,
    warnings: &mut Vec<String>,
    on_error: OnError<'_>,
) -> Result<(), (String, InterpolationError)> {
    match value {
        Value::String(s) if s.contains('$') => match interpolate_str(s, lookup, warnings) {
            Ok(v) => *s = v,
            Err(e) => {
                on_error(path.to_string(), e)?;
                s.clear();
            }
        },
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                interpolate_tree(item, &format!("{path}[{i}]"), lookup, warnings, on_error)?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().map(str::to_string).unwrap_or_default();
                let sub = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                interpolate_tree(v, &sub, lookup, warnings, on_error)?;
            }
        }
        Value::Tagged(t) => interpolate_tree(&mut t.value, path, lookup, warnings, on_error)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(text: &str, vars: &[(&str, &str)]) -> (Result<String, InterpolationError>, Vec<String>) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| map.get(k).cloned();
        let mut warnings = Vec::new();
        let out = interpolate_str(text, &lookup, &mut warnings);
        (out, warnings)
    }

    fn ok(text: &str, vars: &[(&str, &str)]) -> String {
        run(text, vars).0.unwrap()
    }

    #[test]
    fn nesting_20000_deep_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}x{}", "${A:-".repeat(20_000), "}".repeat(20_000));
        let Err(InterpolationError::Syntax(message)) = run(&deep, &[]).0 else {
            panic!("expected a syntax error");
        };
        assert!(message.contains("nested more than 64 deep"), "{message}");
        assert!(message.contains("character 321 "), "{message}");
        let ok_depth = format!("{}x{}", "${A:-".repeat(64), "}".repeat(64));
        assert_eq!(ok(&ok_depth, &[]), "x");
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(ok("$A-$B", &[("A", "x"), ("B", "y")]), "x-y");
        assert_eq!(ok("${A}b", &[("A", "x")]), "xb");
        assert_eq!(ok("pre $A_1.post", &[("A_1", "v")]), "pre v.post");
    }

    #[test]
    fn unset_is_empty_with_a_warning() {
        let (out, warnings) = run("a${MISSING}b", &[]);
        assert_eq!(out.unwrap(), "ab");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("\"MISSING\""), "{warnings:?}");
    }

    #[test]
    fn colon_dash_default_covers_unset_and_empty() {
        assert_eq!(ok("${A:-d}", &[]), "d");
        assert_eq!(ok("${A:-d}", &[("A", "")]), "d");
        assert_eq!(ok("${A:-d}", &[("A", "v")]), "v");
    }

    #[test]
    fn dash_default_covers_only_unset() {
        assert_eq!(ok("${A-d}", &[]), "d");
        assert_eq!(ok("${A-d}", &[("A", "")]), "");
        assert_eq!(ok("${VERSION-v4.1-3.0.2}", &[]), "v4.1-3.0.2");
    }

    #[test]
    fn required_forms_give_the_files_message() {
        let (out, _) = run("${A:?set A please}", &[("A", "")]);
        assert_eq!(
            out.unwrap_err(),
            InterpolationError::Required {
                name: "A".into(),
                message: "set A please".into()
            }
        );
        assert_eq!(ok("${A?msg}", &[("A", "")]), "");
        assert!(run("${A?msg}", &[]).0.is_err());
        assert_eq!(ok("${A:?msg}", &[("A", "v")]), "v");
    }

    #[test]
    fn plus_forms_replace_when_set() {
        assert_eq!(ok("${A:+r}", &[("A", "v")]), "r");
        assert_eq!(ok("${A:+r}", &[("A", "")]), "");
        assert_eq!(ok("${A+r}", &[("A", "")]), "r");
        assert_eq!(ok("${A+r}", &[]), "");
    }

    #[test]
    fn dollar_dollar_is_literal() {
        assert_eq!(ok("$$HOME and $${X}", &[("HOME", "h")]), "$HOME and ${X}");
        assert_eq!(ok("cost $5", &[]), "cost $5");
    }

    #[test]
    fn nested_defaults() {
        assert_eq!(ok("${A:-${B:-b}}", &[]), "b");
        assert_eq!(ok("${A:-${B:-b}}", &[("B", "x")]), "x");
        assert_eq!(ok("${A:-pre-${B}-post}", &[("B", "x")]), "pre-x-post");
        assert_eq!(
            ok("${DATABASE_URL:-psql://u:p@h:5432/db}", &[]),
            "psql://u:p@h:5432/db"
        );
    }

    #[test]
    fn malformed_expressions_are_errors() {
        assert!(matches!(
            run("${A", &[]).0,
            Err(InterpolationError::Syntax(_))
        ));
        assert!(matches!(
            run("${}", &[]).0,
            Err(InterpolationError::Syntax(_))
        ));
        assert!(matches!(
            run("${A!x}", &[]).0,
            Err(InterpolationError::Syntax(_))
        ));
    }

    #[test]
    fn values_not_keys() {
        let mut v: Value = serde_yaml::from_str("$K: [\"$V\", {x: \"${V}\"}]").unwrap();
        let lookup = |k: &str| (k == "V").then(|| "val".to_string());
        let mut w = Vec::new();
        interpolate_value(&mut v, "", &lookup, &mut w).unwrap();
        let expected: Value = serde_yaml::from_str("$K: [val, {x: val}]").unwrap();
        assert_eq!(v, expected);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    proptest! {
        #[test]
        fn text_without_dollar_is_unchanged(text in "[^$]{0,40}") {
            let out = interpolate_str(&text, &none, &mut Vec::new()).unwrap();
            prop_assert_eq!(out, text);
        }

        #[test]
        fn escaped_dollars_come_back_literally(text in ".{0,40}") {
            let escaped = text.replace('$', "$$");
            let mut warnings = Vec::new();
            let out = interpolate_str(&escaped, &none, &mut warnings).unwrap();
            prop_assert_eq!(out, text);
            prop_assert!(warnings.is_empty());
        }

        #[test]
        fn a_set_variable_always_wins_over_defaults(value in "[a-z0-9]{1,10}", default in "[a-z]{0,10}") {
            let lookup = |k: &str| (k == "V").then(|| value.clone());
            for form in [":-", "-", ":?", "?"] {
                let text = format!("${{V{form}{default}}}");
                let out = interpolate_str(&text, &lookup, &mut Vec::new()).unwrap();
                prop_assert_eq!(&out, &value);
            }
        }
    }
}
