//! The loader: which files, which `.env`, which project name; then, per file, parse ->
//! interpolate -> resolve `extends`; then merge the files in order, apply profiles, and
//! canonicalise into the typed [`Project`].
//!
//! The steps live in their own files (discover, prepare, extends, merge, profiles,
//! canonical, references); [`load`] finds files through [`super::discover`]; [`load_from_str`] runs the same
//! pipeline on in-memory texts (tests use it; `env_file` and `extends: {file}` still read
//! the files they name).

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;
use serde_yaml::{Mapping, Value};

use super::canonical::{self, Context};
use super::discover::{find_files, read_dotenv};
use super::error::ComposeError;
use super::merge::{merge_top, strip_tags};
use super::model::Project;
use super::names::normalize_project_name;
use super::prepare::prepare_file;
use super::profiles::apply_profiles;
use super::references::check_references;
use super::source::{read_source, SourceFile};
use super::toplevel;
use super::volumes::clean_path;
use super::warnings::aggregate_warnings;
use crate::config::ComposeOptions;

/// A loaded project and the warnings met on the way (unset variables, ignored keys...).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The resolved project.
    pub project: Project,
    /// Messages for the user (printed on stderr by the commands).
    pub warnings: Vec<String>,
}

/// Load like Docker Compose. `env` is the process environment snapshot (injectable for
/// tests), `cwd` the working directory.
pub fn load(
    opts: &ComposeOptions,
    env: &HashMap<String, String>,
    cwd: &Path,
) -> Result<Loaded, ComposeError> {
    let mut warnings = Vec::new();
    // COMPOSE_* settings may come from a `.env` in the working (or given project) directory.
    let early_dir = opts
        .project_directory
        .as_ref()
        .map(|d| cwd.join(d))
        .unwrap_or_else(|| cwd.to_path_buf());
    let early_env = read_dotenv(
        opts.env_file.as_ref().map(|f| cwd.join(f)),
        &early_dir,
        env,
        &mut Vec::new(),
    )?;
    let setting = |k: &str| {
        env.get(k)
            .cloned()
            .or_else(|| early_env.get(k).cloned())
            .filter(|v| !v.is_empty())
    };
    let files = find_files(
        opts,
        cwd,
        setting("COMPOSE_FILE"),
        setting("COMPOSE_PATH_SEPARATOR"),
    )?;
    let project_dir = match &opts.project_directory {
        Some(d) => clean_path(&cwd.join(d)),
        None => files[0]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.to_path_buf()),
    };
    let dotenv = read_dotenv(
        opts.env_file.as_ref().map(|f| cwd.join(f)),
        &project_dir,
        env,
        &mut warnings,
    )?;
    let sources = files
        .iter()
        .map(|f| read_source(f))
        .collect::<Result<Vec<_>, _>>()?;
    let (profiles, name) = profiles_and_name(opts, setting);
    let lookup = |k: &str| env.get(k).cloned().or_else(|| dotenv.get(k).cloned());
    let mut loaded = load_sources(&sources, &project_dir, name.as_deref(), &profiles, &lookup)?;
    warnings.append(&mut loaded.warnings);
    loaded.warnings = warnings;
    Ok(loaded)
}

/// `--profile` plus `COMPOSE_PROFILES`, and `-p` else `COMPOSE_PROJECT_NAME`, with `setting`
/// looking a variable up where Compose does (the environment, then `.env`).
fn profiles_and_name(
    opts: &ComposeOptions,
    setting: impl Fn(&str) -> Option<String>,
) -> (Vec<String>, Option<String>) {
    let mut profiles = opts.profiles.clone();
    if let Some(p) = setting("COMPOSE_PROFILES") {
        profiles.extend(
            p.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        );
    }
    let name = opts
        .project_name
        .clone()
        .or_else(|| setting("COMPOSE_PROJECT_NAME"));
    (profiles, name)
}

/// Load in-memory compose texts (`(file name, text)`, merged in order) as if they were files
/// in `project_dir`, with `env` as the whole environment.
pub fn load_from_str(
    texts: &[(&str, &str)],
    project_dir: &Path,
    env: &HashMap<String, String>,
    opts: &ComposeOptions,
) -> Result<Loaded, ComposeError> {
    let sources: Vec<SourceFile> = texts
        .iter()
        .map(|(name, text)| SourceFile {
            path: project_dir.join(name),
            text: text.to_string(),
        })
        .collect();
    let (profiles, name) = profiles_and_name(opts, |k| env.get(k).cloned());
    let lookup = |k: &str| env.get(k).cloned();
    load_sources(&sources, project_dir, name.as_deref(), &profiles, &lookup)
}

/// The pipeline on already-read sources.
fn load_sources(
    sources: &[SourceFile],
    project_dir: &Path,
    name: Option<&str>,
    profiles: &[String],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ComposeError> {
    let mut warnings = Vec::new();
    let mut merged = Mapping::new();
    for source in sources {
        let doc = prepare_file(source, lookup, &mut warnings, &mut Vec::new())?;
        if merged.is_empty() {
            merged = doc; // the first file: a move, not a copy
        } else {
            merge_top(&mut merged, &doc);
        }
    }
    let mut merged_value = Value::Mapping(merged);
    strip_tags(&mut merged_value);
    let Value::Mapping(merged) = merged_value else {
        unreachable!("a mapping stays a mapping")
    };
    let raw_name = name
        .map(str::to_string)
        .or_else(|| {
            merged
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(|| {
            project_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let project_name = normalize_project_name(&raw_name).ok_or_else(|| {
        ComposeError::Reference(format!(
            "invalid project name {raw_name:?}: it must contain a lowercase letter or digit (set one with -p NAME or `name:`)"
        ))
    })?;
    for (k, _) in &merged {
        match k.as_str().unwrap_or_default() {
            "services" | "networks" | "volumes" | "name" | "version" => {}
            other => warnings.push(format!(
                "top-level key `{other}` is not supported by compose-shard and is ignored"
            )),
        }
    }
    let locate = |path: &[&str], message: String| -> ComposeError {
        let source = sources
            .iter()
            .rev()
            .find(|s| s.locate(path).is_some())
            .unwrap_or(&sources[0]);
        source.invalid(path, &message)
    };
    let empty = Mapping::new();
    let service_defs = match merged.get("services") {
        Some(Value::Mapping(m)) => m,
        None | Some(Value::Null) => &empty,
        Some(_) => {
            return Err(locate(
                &["services"],
                "expected a mapping of service names to definitions".into(),
            ))
        }
    };
    let mut services = IndexMap::new();
    for (k, def) in service_defs {
        let svc_name = k.as_str().unwrap_or_default().to_string();
        let Value::Mapping(def) = def else {
            return Err(locate(
                &["services", &svc_name],
                "expected a mapping (image:, build:...)".into(),
            ));
        };
        let mut ctx = Context {
            project_dir,
            project_name: &project_name,
            lookup,
            warnings: &mut warnings,
        };
        let svc = canonical::service(&svc_name, def, &mut ctx).map_err(|(path, message)| {
            let mut full: Vec<&str> = vec!["services", &svc_name];
            full.extend(path.iter().map(String::as_str));
            locate(&full, message)
        })?;
        services.insert(svc_name, svc);
    }
    apply_profiles(&mut services, profiles);
    let mut networks = IndexMap::new();
    if let Some(Value::Mapping(m)) = merged.get("networks") {
        for (k, v) in m {
            let key = k.as_str().unwrap_or_default().to_string();
            let n = toplevel::network(&key, v, &mut warnings)
                .map_err(|(_, message)| locate(&["networks", &key], message))?;
            networks.insert(key, n);
        }
    }
    let mut volumes = IndexMap::new();
    if let Some(Value::Mapping(m)) = merged.get("volumes") {
        for (k, v) in m {
            let key = k.as_str().unwrap_or_default().to_string();
            let vol = toplevel::volume(&key, v, &mut warnings)
                .map_err(|(_, message)| locate(&["volumes", &key], message))?;
            volumes.insert(key, vol);
        }
    }
    let mut project = Project {
        name: project_name,
        project_dir: project_dir.to_path_buf(),
        files: sources.iter().map(|s| s.path.clone()).collect(),
        services,
        networks,
        volumes,
        isolation: None,
    };
    check_references(&mut project, &mut warnings);
    let warnings = aggregate_warnings(warnings);
    Ok(Loaded { project, warnings })
}
