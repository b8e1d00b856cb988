//! Top-level `include:` (Compose 2.20+): other projects' files brought into this file.
//!
//! As in Compose v2: `include` is a list whose items are a path or a mapping with `path`
//! (a path or a list of paths merged like `-f` files), `project_directory` (default: the
//! directory of the first path) and `env_file` (a path or a list; default
//! `<project_directory>/.env`, optional). Paths are relative to the including file's
//! directory, and were interpolated with the including file's environment. Each included
//! file is interpolated with the including environment first and its own env files after
//! (a variable set by the including project wins); its relative paths resolve against its
//! project directory. A service, network, volume, secret or config that the including file
//! (or another include) already defines differently is an error, as in Compose; the same
//! definition twice (one file included twice) is fine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::discover::read_env_file;
use super::error::ComposeError;
use super::extends::absolutize_paths;
use super::merge::{merge_top, strip_tags};
use super::prepare::{prepare_file, Walk};
use super::source::{read_source, SourceFile};
use super::volumes::resolve_host_path;

/// Top-level sections an included file contributes.
const SECTIONS: &[&str] = &["services", "networks", "volumes", "secrets", "configs"];

/// One `include` item, resolved to absolute paths.
struct Include {
    paths: Vec<PathBuf>,
    project_dir: PathBuf,
    /// `(file, required)`.
    env_files: Vec<(PathBuf, bool)>,
}

/// Remove `include` from `doc` and add what the included files define.
pub(crate) fn apply_include(
    source: &SourceFile,
    doc: &mut Mapping,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
    walk: &mut Walk,
) -> Result<(), ComposeError> {
    let Some(value) = doc.remove("include") else {
        return Ok(());
    };
    let base = source.path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let items = match value {
        Value::Sequence(items) => items,
        Value::Null => Vec::new(),
        other => {
            return Err(source.invalid(
                &["include"],
                &format!(
                    "`include` must be a list, got {}: write `include: [FILE]` or a list of `- path: FILE`",
                    serde_yaml::to_string(&other).unwrap_or_default().trim()
                ),
            ))
        }
    };
    for item in &items {
        let inc = parse_item(item, &base).map_err(|m| source.invalid(&["include"], &m))?;
        let included = load_included(&inc, lookup, warnings, walk)?;
        add_definitions(source, doc, included, &inc.paths[0])?;
    }
    Ok(())
}

fn parse_item(item: &Value, base: &Path) -> Result<Include, String> {
    let resolve = |s: &str| resolve_host_path(s, base, None);
    let list = |v: &Value, what: &str| -> Result<Vec<String>, String> {
        match v {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Sequence(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("`{what}` must be a path or a list of paths")),
            _ => Err(format!("`{what}` must be a path or a list of paths")),
        }
    };
    let (paths, project_dir, env_files) = match item {
        Value::String(s) => (vec![s.clone()], None, None),
        Value::Mapping(m) => {
            for k in m.keys().filter_map(Value::as_str) {
                if !["path", "project_directory", "env_file"].contains(&k) {
                    return Err(format!(
                        "unknown include option `{k}` (expected path, project_directory, env_file)"
                    ));
                }
            }
            let paths = list(
                m.get("path").ok_or("an include item needs `path:`")?,
                "path",
            )?;
            let dir = m
                .get("project_directory")
                .map(|d| {
                    d.as_str()
                        .map(str::to_string)
                        .ok_or("`project_directory` must be a path")
                })
                .transpose()?;
            let env = m.get("env_file").map(|e| list(e, "env_file")).transpose()?;
            (paths, dir, env)
        }
        _ => return Err("each include item must be a path or a mapping with `path:`".into()),
    };
    if paths.is_empty() {
        return Err("an include item needs at least one path".into());
    }
    let paths: Vec<PathBuf> = paths.iter().map(|p| resolve(p)).collect();
    let project_dir = match project_dir {
        Some(d) => resolve(&d),
        None => paths[0].parent().unwrap_or(base).to_path_buf(),
    };
    let env_files = match env_files {
        Some(files) => files.iter().map(|f| (resolve(f), true)).collect(),
        None => vec![(project_dir.join(".env"), false)],
    };
    Ok(Include {
        paths,
        project_dir,
        env_files,
    })
}

/// Read, prepare and merge the included files; make their relative paths absolute.
fn load_included(
    inc: &Include,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
    walk: &mut Walk,
) -> Result<Mapping, ComposeError> {
    let own_env = read_env_files(&inc.env_files, lookup, warnings)?;
    let sub_lookup = |k: &str| lookup(k).or_else(|| own_env.get(k).cloned());
    let mut merged = Mapping::new();
    for path in &inc.paths {
        let key = (path.clone(), String::new());
        if walk.stack.contains(&key) {
            return Err(ComposeError::Reference(format!(
                "{}: `include` loop: the file includes itself through {}",
                path.display(),
                walk.stack
                    .iter()
                    .filter(|(_, s)| s.is_empty())
                    .map(|(p, _)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" -> ")
            )));
        }
        let sub = read_source(path)?;
        walk.stack.push(key);
        let doc = prepare_file(&sub, &sub_lookup, warnings, walk)?;
        walk.stack.pop();
        walk.included.push(sub);
        merge_top(&mut merged, &doc);
    }
    let mut value = Value::Mapping(merged);
    strip_tags(&mut value);
    let Value::Mapping(mut merged) = value else {
        unreachable!("a mapping stays a mapping")
    };
    absolutize(&mut merged, &inc.project_dir);
    Ok(merged)
}

fn read_env_files(
    files: &[(PathBuf, bool)],
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<HashMap<String, String>, ComposeError> {
    let mut env = HashMap::new();
    for (path, required) in files {
        if let Some(read) = read_env_file(path, *required, lookup, warnings)? {
            env.extend(read);
        }
    }
    Ok(env)
}

/// Relative paths of an included project, made absolute against its project directory.
fn absolutize(doc: &mut Mapping, dir: &Path) {
    if let Some(Value::Mapping(services)) = doc.get_mut("services") {
        for (_, def) in services.iter_mut() {
            if let Value::Mapping(m) = def {
                absolutize_paths(m, dir);
            }
        }
    }
    for section in ["secrets", "configs"] {
        if let Some(Value::Mapping(defs)) = doc.get_mut(section) {
            for (_, def) in defs.iter_mut() {
                if let Some(Value::String(f)) = def.get_mut("file") {
                    *f = resolve_host_path(f, dir, None).display().to_string();
                }
            }
        }
    }
}

/// Add the included definitions to `doc`, refusing a name defined differently.
fn add_definitions(
    source: &SourceFile,
    doc: &mut Mapping,
    included: Mapping,
    from: &Path,
) -> Result<(), ComposeError> {
    for section in SECTIONS {
        let Some(Value::Mapping(defs)) = included.get(*section) else {
            continue;
        };
        let target = doc
            .entry((*section).into())
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if target.is_null() {
            *target = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(target) = target else {
            return Err(source.invalid(&[section], "expected a mapping"));
        };
        for (name, def) in defs {
            match target.get(name) {
                Some(existing) if existing == def => {}
                Some(_) => {
                    let key = name.as_str().unwrap_or_default();
                    return Err(source.invalid(
                        &[section, key],
                        &format!(
                            "{section}.{key} conflicts with the one {} brings in through `include` (Compose refuses this too): rename one of them, or define it in one file only",
                            from.display()
                        ),
                    ));
                }
                None => {
                    target.insert(name.clone(), def.clone());
                }
            }
        }
    }
    Ok(())
}
