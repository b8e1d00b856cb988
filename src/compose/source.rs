//! One compose file's text: YAML parsing (anchors, `<<` merge keys), removal of `x-*`
//! extension fields, and locating a key in the text for error messages.
//!
//! serde_yaml reports line and column for syntax errors but a [`Value`] carries no positions,
//! so type errors found later are located by searching the text for the key path
//! ([`SourceFile::locate`]): good enough to point at the right line.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::error::ComposeError;
use super::yaml_scan::{scan_yaml, MAX_NESTING};

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
        let scan = scan_yaml(&self.text);
        if let Some((line, column)) = scan.too_deep {
            return Err(self.at(line, column, format!(
                "nesting deeper than {MAX_NESTING} levels; a compose file needs a handful, so this file is probably generated wrong"
            )));
        }
        let mut value: Value = serde_yaml::from_str(&self.text).map_err(|e| {
            // The parser gives no position (or the document's start) for an alias bomb.
            let bomb = e.to_string().contains("repetition limit");
            let (line, column) = match (e.location(), scan.first_alias) {
                (_, Some(alias)) if bomb => alias,
                (Some(l), _) => (l.line(), l.column()),
                (None, alias) => alias.unwrap_or_else(|| self.first_content()),
            };
            let hint = if bomb {
                " (aliases expand to too much data, as in a \"billion laughs\" file; the first alias is here)"
            } else {
                ""
            };
            self.at(line, column, format!("invalid YAML: {e}{hint}"))
        })?;
        value.apply_merge().map_err(|e| {
            let (line, column) = scan.first_alias.unwrap_or_else(|| self.first_content());
            self.at(
                line,
                column,
                format!(
                "invalid `<<` merge key: {e} (expected an alias to a mapping or a list of them)"
            ),
            )
        })?;
        // Compose ignores a tag it does not know, also on the whole document (`!foo` before
        // `services:`); `is_mapping` looks through tags, the code after it does not.
        // `!reset` and `!override` mean something only on a key; Compose v2 crashes on them here.
        while let Value::Tagged(tagged) = value {
            let tag = tagged.tag.to_string();
            if matches!(tag.trim_start_matches('!'), "reset" | "override") {
                let (line, column) = self.first_content();
                return Err(self.at(line, column, format!(
                    "`{tag}` on the whole file: it resets or overrides one key of an earlier file (`services:\n  web: {tag}`), and Docker Compose v2 crashes on it here; remove the tag"
                )));
            }
            value = tagged.value;
        }
        if value.is_null() {
            return Err(self.at(
                1,
                1,
                "the file is empty; a compose file needs at least `services:` with one service"
                    .into(),
            ));
        }
        if !value.is_mapping() {
            let (line, column) = self.first_content();
            return Err(self.at(
                line,
                column,
                "expected a mapping at the top level (services:, networks:, volumes:...)".into(),
            ));
        }
        strip_extensions(&mut value);
        Ok(value)
    }

    fn at(&self, line: usize, column: usize, message: String) -> ComposeError {
        ComposeError::Invalid {
            file: self.path.clone(),
            line,
            column,
            message,
        }
    }

    /// 1-based (line, column) of the first character that is not blank, a comment or a
    /// document marker; (1, 1) for a file without one.
    fn first_content(&self) -> (usize, usize) {
        for (i, line) in self.text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
                continue;
            }
            return (i + 1, line.len() - trimmed.len() + 1);
        }
        (1, 1)
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
/// A compose file named `-` (`-f -`) is standard input, as in Compose; the project directory
/// is then the working directory, the parent of the `-` path the loader makes.
pub(crate) fn read_source(path: &Path) -> Result<SourceFile, ComposeError> {
    let read_error = |source| ComposeError::Read {
        path: path.to_path_buf(),
        source,
    };
    let text = if path.file_name() == Some(std::ffi::OsStr::new("-")) {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(read_error)?;
        text
    } else {
        std::fs::read_to_string(path).map_err(read_error)?
    };
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
    fn a_tag_on_the_whole_document_is_ignored_as_compose_does() {
        for text in [
            "!foo\nservices:\n  web:\n    image: busybox\n",
            "--- !foo\nservices:\n  web:\n    image: busybox\n",
        ] {
            let v = src(text).parse().unwrap();
            assert!(matches!(v, Value::Mapping(_)), "{text:?} gave {v:?}");
            assert_eq!(v["services"]["web"]["image"].as_str(), Some("busybox"));
        }
        assert!(matches!(
            src("!foo\n- a\n").parse(),
            Err(ComposeError::Invalid { .. })
        ));
        for tag in ["!reset", "!override"] {
            let text = format!("# note\n{tag}\nservices:\n  web:\n    image: busybox\n");
            match src(&text).parse() {
                Err(ComposeError::Invalid { line, message, .. }) => {
                    assert_eq!(line, 2, "{message}");
                    assert!(
                        message.contains(tag) && message.contains("remove the tag"),
                        "{message}"
                    );
                }
                other => panic!("{tag}: {other:?}"),
            }
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
