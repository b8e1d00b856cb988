//! One compose file made ready to merge: parsed, `x-*` removed, interpolated, short forms
//! normalised, `extends` resolved, and its `include:` files brought in.
//!
//! A service tagged `!reset` (removes it from what earlier files defined) or `!override`
//! (replaces it instead of merging) keeps its tag for `merge_top`; an `!override` service is
//! prepared like any other inside the tag.

use std::path::PathBuf;

use serde_yaml::value::TaggedValue;
use serde_yaml::{Mapping, Value};

use super::error::ComposeError;
use super::extends::resolve_extends;
use super::include::apply_include;
use super::interpolate::{interpolate_tree, interpolate_value, InterpolationError};
use super::merge::normalize_service;
use super::source::SourceFile;

/// What the walk through files, `extends` and `include` carries along.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// `(file, service)` pairs being extended, and `(file, "")` for files being included:
    /// a repeat is a loop.
    pub stack: Vec<(PathBuf, String)>,
    /// Every file read through `include:`, so errors found later can point into them.
    pub included: Vec<SourceFile>,
    /// `${V:?message}` failures inside a service, set aside instead of failing the file
    /// (see [`DeferredVariable`]), in file order.
    pub deferred: Vec<DeferredVariable>,
}

/// A `${V:?message}` that failed inside one service's definition, set aside so that only a
/// run that starts the service fails on it; its value was left empty. A service that
/// `extends` such a service in the same file gets the same entry.
#[derive(Debug, Clone)]
pub(crate) struct DeferredVariable {
    /// The service.
    pub service: String,
    /// The compose file.
    pub file: PathBuf,
    /// 1-based line of the key, 0 when unknown.
    pub line: usize,
    /// The variable.
    pub name: String,
    /// The file's message.
    pub message: String,
}

impl DeferredVariable {
    /// The error a run starting the service fails with.
    pub fn error(&self) -> ComposeError {
        ComposeError::MissingVariable {
            file: self.file.clone(),
            line: self.line,
            name: self.name.clone(),
            message: self.message.clone(),
        }
    }
}

/// Parse, interpolate, normalise, resolve `extends` and apply `include` for one file.
pub(crate) fn prepare_file(
    source: &SourceFile,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
    walk: &mut Walk,
) -> Result<Mapping, ComposeError> {
    let mut doc = source.parse()?;
    // Not inside `extends: {file}`: the base service is copied into another one, whose
    // name is not known here.
    let defer = walk.stack.last().map_or(true, |(_, s)| s.is_empty());
    let deferred_before = walk.deferred.len();
    interpolate_file(
        &mut doc,
        source,
        lookup,
        warnings,
        defer.then_some(&mut walk.deferred),
    )?;
    let Value::Mapping(mut doc) = doc else {
        unreachable!("SourceFile::parse returns a mapping")
    };
    let tagged = untag_services(&mut doc);
    propagate_through_extends(&doc, &mut walk.deferred, deferred_before);
    if let Some(Value::Mapping(services)) = doc.get_mut("services") {
        for (_, def) in services.iter_mut() {
            if let Value::Mapping(m) = def {
                normalize_service(m);
            }
        }
    }
    // Only services with `extends` change; the copy of the document they resolve against is
    // made only when there is one (a copy per file doubled the memory of large projects).
    let names: Vec<String> = match doc.get("services") {
        Some(Value::Mapping(s)) => s
            .iter()
            .filter(|(_, def)| def.get("extends").is_some())
            .filter_map(|(k, _)| k.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    if !names.is_empty() {
        let original = doc.clone();
        for name in names {
            let resolved = resolve_extends(source, &original, &name, lookup, warnings, walk)?;
            if let Some(Value::Mapping(services)) = doc.get_mut("services") {
                services.insert(name.as_str().into(), Value::Mapping(resolved));
            }
        }
    }
    retag_services(&mut doc, tagged);
    apply_include(source, &mut doc, lookup, warnings, walk)?;
    Ok(doc)
}

/// Interpolate a parsed file. With `deferred`, a `${V:?message}` failing inside a service
/// is recorded there (its value left empty) instead of failing the file.
fn interpolate_file(
    doc: &mut Value,
    source: &SourceFile,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
    deferred: Option<&mut Vec<DeferredVariable>>,
) -> Result<(), ComposeError> {
    let to_error = |(path, e): (String, InterpolationError)| {
        let (line, _) = locate_path(source, &path);
        match e {
            InterpolationError::Required { name, message } => ComposeError::MissingVariable {
                file: source.path.clone(),
                line,
                name,
                message,
            },
            InterpolationError::Syntax(m) => source.invalid(&path_keys(&path), &m),
        }
    };
    let Some(deferred) = deferred else {
        return interpolate_value(doc, "", lookup, warnings).map_err(to_error);
    };
    let Value::Mapping(top) = doc else {
        return interpolate_value(doc, "", lookup, warnings).map_err(to_error);
    };
    for (key, value) in top.iter_mut() {
        let key = key.as_str().unwrap_or_default().to_string();
        let Value::Mapping(services) = value else {
            interpolate_value(value, &key, lookup, warnings).map_err(to_error)?;
            continue;
        };
        if key != "services" {
            interpolate_value(value, &key, lookup, warnings).map_err(to_error)?;
            continue;
        }
        for (name, def) in services.iter_mut() {
            let service = name.as_str().unwrap_or_default().to_string();
            let mut set_aside = |path: String, e: InterpolationError| match e {
                InterpolationError::Required { name, message } => {
                    deferred.push(DeferredVariable {
                        service: service.clone(),
                        file: source.path.clone(),
                        line: locate_path(source, &path).0,
                        name,
                        message,
                    });
                    Ok(())
                }
                other => Err((path, other)),
            };
            let path = format!("services.{service}");
            interpolate_tree(def, &path, lookup, warnings, &mut set_aside).map_err(to_error)?;
        }
    }
    Ok(())
}

/// `services.web.environment[2]` -> the keys to search for in the text.
fn path_keys(path: &str) -> Vec<&str> {
    path.split('.')
        .map(|p| p.split('[').next().unwrap_or(p))
        .collect()
}

/// Line and column of an interpolation path in the file, `(0, 0)` when not found.
fn locate_path(source: &SourceFile, path: &str) -> (usize, usize) {
    source.locate(&path_keys(path)).unwrap_or((0, 0))
}

/// A service that `extends` (in the same file) a service with a set-aside failure has the
/// failure too: its definition was copied from the emptied value.
fn propagate_through_extends(doc: &Mapping, deferred: &mut Vec<DeferredVariable>, from: usize) {
    if deferred.len() == from {
        return;
    }
    let Some(Value::Mapping(services)) = doc.get("services") else {
        return;
    };
    let same_file_base = |def: &Value| match def.get("extends") {
        Some(Value::String(base)) => Some(base.clone()),
        Some(Value::Mapping(m)) if m.get("file").is_none() => {
            m.get("service").and_then(Value::as_str).map(str::to_string)
        }
        _ => None,
    };
    // Until nothing changes: a chain of n services takes n rounds at most.
    loop {
        let mut added = Vec::new();
        for (name, def) in services {
            let name = name.as_str().unwrap_or_default();
            let has = |svc: &str| deferred[from..].iter().any(|d| d.service == svc);
            if has(name) {
                continue;
            }
            if let Some(base) = same_file_base(def) {
                if let Some(d) = deferred[from..].iter().find(|d| d.service == base) {
                    added.push(DeferredVariable {
                        service: name.to_string(),
                        ..d.clone()
                    });
                }
            }
        }
        if added.is_empty() {
            return;
        }
        deferred.extend(added);
    }
}

/// Take the tags off whole services (`web: !override {...}`), returning them by name; a
/// `!reset` service is left tagged (it has nothing to prepare).
fn untag_services(doc: &mut Mapping) -> Vec<(Value, TaggedValue)> {
    let mut tagged = Vec::new();
    if let Some(Value::Mapping(services)) = doc.get_mut("services") {
        for (name, def) in services.iter_mut() {
            if let Value::Tagged(t) = def {
                if t.value.is_mapping() && t.tag != "reset" {
                    let inner = std::mem::replace(&mut t.value, Value::Null);
                    tagged.push((name.clone(), (**t).clone()));
                    *def = inner;
                }
            }
        }
    }
    tagged
}

fn retag_services(doc: &mut Mapping, tagged: Vec<(Value, TaggedValue)>) {
    let Some(Value::Mapping(services)) = doc.get_mut("services") else {
        return;
    };
    for (name, mut tag) in tagged {
        if let Some(def) = services.get_mut(&name) {
            tag.value = std::mem::replace(def, Value::Null);
            *def = Value::Tagged(Box::new(tag));
        }
    }
}
