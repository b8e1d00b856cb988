//! One compose file's text: YAML parsing (anchors, `<<` merge keys), removal of `x-*`
//! extension fields, and locating a key in the text for error messages.
//!
//! serde_yaml reports line and column for syntax errors but a [`Value`] carries no positions,
//! so type errors found later are located by searching the text for the key path
//! ([`SourceFile::locate`]): good enough to point at the right line.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::error::ComposeError;

/// A compose file's path and text.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// Where the text came from (shown in errors).
    pub path: PathBuf,
    /// The text.
    pub text: String,
}

/// Keys under which `x-` prefixed names are data, not extension fields.
const DATA_MAPS: &[&str] = &[
    "environment",
    "labels",
    "args",
    "sysctls",
    "driver_opts",
    "extra_hosts",
    "annotations",
];

impl SourceFile {
    /// Parse into a YAML value with `<<` merge keys applied and `x-*` fields removed.
    pub fn parse(&self) -> Result<Value, ComposeError> {
        let mut value: Value = match serde_yaml::from_str(&self.text) {
            Ok(v) => v,
            Err(e) => {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                return Err(ComposeError::Invalid {
                    file: self.path.clone(),
                    line,
                    column,
                    message: format!("invalid YAML: {e}"),
                });
            }
        };
        value.apply_merge().map_err(|e| ComposeError::Invalid {
            file: self.path.clone(),
            line: 0,
            column: 0,
            message: format!(
                "invalid `<<` merge key: {e} (expected an alias to a mapping or a list of them)"
            ),
        })?;
        if value.is_null() {
            value = Value::Mapping(Default::default());
        }
        if !value.is_mapping() {
            return Err(self.invalid(
                &[],
                "expected a mapping at the top level (services:, networks:, volumes:...)",
            ));
        }
        strip_extensions(&mut value);
        Ok(value)
    }

    /// An error about the value at `path` (e.g. `["services", "web", "ports"]`).
    pub fn invalid(&self, path: &[&str], message: &str) -> ComposeError {
        let (line, column) = self.locate(path).unwrap_or((0, 0));
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{}: ", path.join("."))
        };
        ComposeError::Invalid {
            file: self.path.clone(),
            line,
            column,
            message: format!("{prefix}{message}"),
        }
    }

    /// 1-based (line, column) of the last key of `path`, found by indentation.
    pub fn locate(&self, path: &[&str]) -> Option<(usize, usize)> {
        let lines: Vec<&str> = self.text.lines().collect();
        let mut start = 0usize;
        let mut parent_indent: Option<usize> = None;
        let mut found = None;
        for segment in path {
            let mut hit = None;
            for (i, line) in lines.iter().enumerate().skip(start) {
                let trimmed = line.trim_start();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                let indent = line.len() - trimmed.len();
                if let Some(p) = parent_indent {
                    if indent <= p {
                        break;
                    }
                }
                let key = trimmed.trim_start_matches("- ");
                let matches = [
                    format!("{segment}:"),
                    format!("\"{segment}\":"),
                    format!("'{segment}':"),
                ]
                .iter()
                .any(|k| key.starts_with(k.as_str()));
                if matches {
                    hit = Some((i, indent));
                    break;
                }
            }
            let (i, indent) = hit?;
            found = Some((i + 1, indent + 1));
            start = i + 1;
            parent_indent = Some(indent);
        }
        found
    }
}

/// Read a file into a [`SourceFile`].
pub(crate) fn read_source(path: &Path) -> Result<SourceFile, ComposeError> {
    let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(SourceFile {
        path: path.to_path_buf(),
        text,
    })
}

fn strip_extensions(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            map.retain(|k, _| !k.as_str().is_some_and(|s| s.starts_with("x-")));
            for (k, v) in map.iter_mut() {
                if k.as_str().is_some_and(|s| DATA_MAPS.contains(&s)) {
                    continue;
                }
                strip_extensions(v);
            }
        }
        Value::Sequence(seq) => seq.iter_mut().for_each(strip_extensions),
        Value::Tagged(t) => strip_extensions(&mut t.value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> SourceFile {
        SourceFile {
            path: "compose.yaml".into(),
            text: text.to_string(),
        }
    }

    #[test]
    fn merge_keys_and_extensions() {
        let v = src("x-base: &b\n  image: pg\n  environment: {A: '1'}\nservices:\n  db:\n    <<: *b\n    x-note: hi\n    environment: {x-keep: '2'}\n")
            .parse()
            .unwrap();
        let db = &v["services"]["db"];
        assert_eq!(db["image"].as_str(), Some("pg"));
        assert!(db.get("x-note").is_none());
        assert_eq!(db["environment"]["x-keep"].as_str(), Some("2"));
        assert!(v.get("x-base").is_none());
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = src("services:\n  web:\n    image: [a\n")
            .parse()
            .unwrap_err();
        match err {
            ComposeError::Invalid { line, column, .. } => {
                assert!(line >= 3, "line {line}");
                assert!(column > 0);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn locates_nested_keys() {
        let s =
            src("services:\n  db:\n    image: x\n  web:\n    image: y\n    ports:\n      - 80\n");
        assert_eq!(s.locate(&["services", "web", "ports"]), Some((6, 5)));
        assert_eq!(s.locate(&["services", "db", "ports"]), None);
    }
}
