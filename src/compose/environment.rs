//! A service's container environment: `env_file`s in order, overlaid by `environment`.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_yaml::Value;

use super::canonical::Context;
use super::dotenv::parse_env_file;
use super::values::{boolean, err, FieldError};
use super::volumes::resolve_host_path;

/// `env_file`: a string, a list of strings, or a list of `{path, required}`.
pub(crate) fn env_file_list(v: &Value, base: &Path) -> Result<Vec<(PathBuf, bool)>, FieldError> {
    let items = match v {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok((resolve_host_path(s, base, None), true)),
            Value::Mapping(m) => {
                let path = m
                    .get("path")
                    .and_then(Value::as_str)
                    .map_or_else(|| err("env_file", "long form needs `path`"), Ok)?;
                let required = match m.get("required") {
                    None => true,
                    Some(v) => boolean("env_file", v)
                        .map_err(|(k, _)| (k, "`required` expects true or false".to_string()))?,
                };
                Ok((resolve_host_path(path, base, None), required))
            }
            _ => err(
                "env_file",
                "expected a path, a list of paths or {path, required}",
            ),
        })
        .collect()
}

/// `env_file` contents in order, overlaid by `environment`. A bare `KEY` takes its value
/// from the environment, and is `None` (left out of the container) when unset there. A
/// required file that cannot be read is a problem of the service (`ctx.problems`), not an
/// error: the loader decides whether it matters.
pub(crate) fn resolve_environment(
    files: &[(PathBuf, bool)],
    environment: Vec<(String, Option<String>)>,
    ctx: &mut Context<'_>,
) -> IndexMap<String, Option<String>> {
    let mut out: IndexMap<String, Option<String>> = IndexMap::new();
    for (path, required) in files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                // Only a run that starts the service fails on it, as in Compose.
                ctx.problems.push((
                    vec!["env_file".to_string()],
                    format!(
                        "cannot read env file {}: {e} (create it, or use `{{path: ..., required: false}}`)",
                        path.display()
                    ),
                ));
                continue;
            }
        };
        let entries = match parse_env_file(&text, ctx.lookup, ctx.warnings) {
            Ok(entries) => entries,
            Err((line, m)) => {
                let message = format!("{}:{line}: {m}", path.display());
                ctx.problems.push((vec!["env_file".to_string()], message));
                continue;
            }
        };
        for (k, v) in entries {
            let v = v.or_else(|| (ctx.lookup)(&k));
            out.insert(k, v);
        }
    }
    for (k, v) in environment {
        let v = v.or_else(|| (ctx.lookup)(&k));
        out.insert(k, v);
    }
    out
}
