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
use super::interpolate::{interpolate_value, InterpolationError};
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
}

/// Parse, interpolate, normalise, resolve `extends` and apply `include` for one file.
pub(crate) fn prepare_file(
    source: &SourceFile,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
    walk: &mut Walk,
) -> Result<Mapping, ComposeError> {
    let mut doc = source.parse()?;
    interpolate_value(&mut doc, "", lookup, warnings).map_err(|(path, e)| {
        // `services.web.environment[2]` -> the keys to search for in the text.
        let parts: Vec<&str> = path
            .split('.')
            .map(|p| p.split('[').next().unwrap_or(p))
            .collect();
        match e {
            InterpolationError::Required { name, message } => ComposeError::MissingVariable {
                file: source.path.clone(),
                line: source.locate(&parts).map_or(0, |(line, _)| line),
                name,
                message,
            },
            InterpolationError::Syntax(m) => source.invalid(&parts, &m),
        }
    })?;
    let Value::Mapping(mut doc) = doc else {
        unreachable!("SourceFile::parse returns a mapping")
    };
    let tagged = untag_services(&mut doc);
    if let Some(Value::Mapping(services)) = doc.get_mut("services") {
        for (_, def) in services.iter_mut() {
            if let Value::Mapping(m) = def {
                normalize_service(m);
            }
        }
    }
    let names: Vec<String> = match doc.get("services") {
        Some(Value::Mapping(s)) => s
            .iter()
            .filter(|(_, def)| def.is_mapping())
            .filter_map(|(k, _)| k.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let original = doc.clone();
    for name in names {
        let resolved = resolve_extends(source, &original, &name, lookup, warnings, walk)?;
        if let Some(Value::Mapping(services)) = doc.get_mut("services") {
            services.insert(name.as_str().into(), Value::Mapping(resolved));
        }
    }
    retag_services(&mut doc, tagged);
    apply_include(source, &mut doc, lookup, warnings, walk)?;
    Ok(doc)
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
