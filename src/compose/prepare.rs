//! One compose file made ready to merge: parsed, `x-*` removed, interpolated, short forms
//! normalised, and `extends` resolved.

use std::path::PathBuf;

use serde_yaml::{Mapping, Value};

use super::error::ComposeError;
use super::extends::resolve_extends;
use super::interpolate::{interpolate_value, InterpolationError};
use super::merge::normalize_service;
use super::source::SourceFile;

/// Parse, interpolate, normalise and resolve `extends` for one file.
pub(crate) fn prepare_file(
    source: &SourceFile,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
    stack: &mut Vec<(PathBuf, String)>,
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
    if names.is_empty() {
        return Ok(doc);
    }
    let original = doc.clone();
    for name in names {
        let resolved = resolve_extends(source, &original, &name, lookup, warnings, stack)?;
        if let Some(Value::Mapping(services)) = doc.get_mut("services") {
            services.insert(name.as_str().into(), Value::Mapping(resolved));
        }
    }
    Ok(doc)
}
