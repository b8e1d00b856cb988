//! `extends`: a service starts from another service of the same file or of another file,
//! then its own keys merge on top (same rules as override files). Loops are errors.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::error::ComposeError;
use super::merge::merge_service;
use super::prepare::{prepare_file, Walk};
use super::source::{read_source, SourceFile};
use super::volumes::clean_path;

/// The fully extended definition of service `name` of `doc` (which came from `source`).
pub(crate) fn resolve_extends(
    source: &SourceFile,
    doc: &Mapping,
    name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
    walk: &mut Walk,
) -> Result<Mapping, ComposeError> {
    let def = match doc.get("services").and_then(|s| s.get(name)) {
        Some(Value::Mapping(m)) => m.clone(),
        Some(_) => return Err(source.invalid(&["services", name], "expected a mapping")),
        None => {
            return Err(ComposeError::Reference(format!(
                "{}: `extends` refers to service {name:?}, which is not defined there",
                source.path.display()
            )))
        }
    };
    let Some(ext) = def.get("extends").cloned() else {
        return Ok(def);
    };
    let (file, base_name) = match &ext {
        Value::String(s) => (None, s.clone()),
        Value::Mapping(m) => (
            m.get("file").and_then(Value::as_str).map(str::to_string),
            m.get("service")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    source.invalid(&["services", name, "extends"], "expected `service:`")
                })?
                .to_string(),
        ),
        _ => {
            return Err(source.invalid(
                &["services", name, "extends"],
                "expected a service name or {file, service}",
            ))
        }
    };
    let key = (source.path.clone(), name.to_string());
    if walk.stack.contains(&key) {
        return Err(ComposeError::Reference(format!(
            "{}: `extends` loop through service {name:?}",
            source.path.display()
        )));
    }
    walk.stack.push(key);
    let mut base = match file {
        None => resolve_extends(source, doc, &base_name, lookup, warnings, walk)?,
        Some(f) => {
            let dir = source.path.parent().unwrap_or(Path::new("."));
            let other = read_source(&clean_path(&dir.join(f)))?;
            let other_doc = prepare_file(&other, lookup, warnings, walk)?;
            let mut base = resolve_extends(&other, &other_doc, &base_name, lookup, warnings, walk)?;
            let other_dir = other.path.parent().unwrap_or(Path::new(".")).to_path_buf();
            absolutize_paths(&mut base, &other_dir);
            base
        }
    };
    walk.stack.pop();
    base.remove("extends");
    let mut own = def;
    own.remove("extends");
    merge_service(&mut base, &own);
    Ok(base)
}

/// Paths in a service taken from another file are relative to that file's directory: make
/// them absolute before they join this file's service.
pub(crate) fn absolutize_paths(def: &mut Mapping, dir: &Path) {
    let fix = |s: &str| -> String {
        if s.starts_with('.') || (!s.starts_with('/') && !s.starts_with('~') && !s.contains("://"))
        {
            clean_path(&dir.join(s)).display().to_string()
        } else {
            s.to_string()
        }
    };
    if let Some(Value::Mapping(b)) = def.get_mut("build") {
        let ctx = b
            .get("context")
            .and_then(Value::as_str)
            .unwrap_or(".")
            .to_string();
        b.insert("context".into(), fix(&ctx).into());
    }
    if let Some(Value::Sequence(files)) = def.get_mut("env_file") {
        for f in files.iter_mut() {
            match f {
                Value::String(s) => *s = fix(s),
                Value::Mapping(m) => {
                    if let Some(Value::String(p)) = m.get_mut("path") {
                        *p = fix(p);
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(Value::Sequence(vols)) = def.get_mut("volumes") {
        for v in vols.iter_mut() {
            match v {
                Value::String(s) if s.starts_with('.') => {
                    let (src, rest) = s.split_once(':').unwrap_or((s.as_str(), ""));
                    *s = format!("{}:{rest}", fix(src))
                        .trim_end_matches(':')
                        .to_string();
                }
                Value::Mapping(m) if m.get("type").and_then(Value::as_str) == Some("bind") => {
                    if let Some(Value::String(p)) = m.get_mut("source") {
                        if p.starts_with('.') {
                            *p = fix(p);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
