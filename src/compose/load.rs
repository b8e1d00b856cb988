//! The loader: which files, which `.env`, which project name; then, per file, parse ->
//! interpolate -> resolve `extends`; then merge the files in order, apply profiles, and
//! canonicalise into the typed [`Project`].
//!
//! Only this file touches the filesystem to find files; [`load_from_str`] runs the same
//! pipeline on in-memory texts (tests use it; `env_file` and `extends: {file}` still read
//! the files they name).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_yaml::{Mapping, Value};

use super::canonical::{self, Context};
use super::dotenv::parse_env_file;
use super::error::ComposeError;
use super::interpolate::{interpolate_value, InterpolationError};
use super::merge::{merge_service, merge_top, normalize_service, strip_tags};
use super::model::{Network, Project, Volume};
use super::names::normalize_project_name;
use super::source::{read_source, SourceFile};
use super::volumes::clean_path;
use crate::config::ComposeOptions;

/// A loaded project and the warnings met on the way (unset variables, ignored keys...).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The resolved project.
    pub project: Project,
    /// Messages for the user (printed on stderr by the commands).
    pub warnings: Vec<String>,
}

const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
const OVERRIDE_FILES: &[&str] = &[
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

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
    let lookup = |k: &str| env.get(k).cloned().or_else(|| dotenv.get(k).cloned());
    let mut loaded = load_sources(&sources, &project_dir, name.as_deref(), &profiles, &lookup)?;
    warnings.append(&mut loaded.warnings);
    loaded.warnings = warnings;
    Ok(loaded)
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
    let mut profiles = opts.profiles.clone();
    if let Some(p) = env.get("COMPOSE_PROFILES") {
        profiles.extend(
            p.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        );
    }
    let name = opts
        .project_name
        .clone()
        .or_else(|| env.get("COMPOSE_PROJECT_NAME").cloned());
    let lookup = |k: &str| env.get(k).cloned();
    load_sources(&sources, project_dir, name.as_deref(), &profiles, &lookup)
}

fn read_dotenv(
    explicit: Option<PathBuf>,
    dir: &Path,
    env: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<HashMap<String, String>, ComposeError> {
    let path = explicit.clone().unwrap_or_else(|| dir.join(".env"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok(HashMap::new())
        }
        Err(source) => return Err(ComposeError::Read { path, source }),
    };
    let lookup = |k: &str| env.get(k).cloned();
    let entries = parse_env_file(&text, &lookup, warnings).map_err(|(line, message)| {
        ComposeError::Invalid {
            file: path.clone(),
            line,
            column: 0,
            message,
        }
    })?;
    Ok(entries
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

fn find_files(
    opts: &ComposeOptions,
    cwd: &Path,
    compose_file: Option<String>,
    separator: Option<String>,
) -> Result<Vec<PathBuf>, ComposeError> {
    if !opts.files.is_empty() {
        return Ok(opts
            .files
            .iter()
            .map(|f| clean_path(&cwd.join(f)))
            .collect());
    }
    if let Some(list) = compose_file {
        let sep = separator.unwrap_or_else(|| ":".to_string());
        return Ok(list
            .split(sep.as_str())
            .filter(|s| !s.is_empty())
            .map(|f| clean_path(&cwd.join(f)))
            .collect());
    }
    let start = opts
        .project_directory
        .as_ref()
        .map(|d| cwd.join(d))
        .unwrap_or_else(|| cwd.to_path_buf());
    // Like Compose, look in the directory and then its parents.
    for dir in start.ancestors() {
        if let Some(main) = DEFAULT_FILES
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
        {
            let mut files = vec![main];
            if let Some(o) = OVERRIDE_FILES
                .iter()
                .map(|f| dir.join(f))
                .find(|p| p.is_file())
            {
                files.push(o);
            }
            return Ok(files);
        }
    }
    Err(ComposeError::NoFile { dir: start })
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
        merge_top(&mut merged, &doc);
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
            let n = canonical::network(&key, v, &mut warnings)
                .map_err(|(_, message)| locate(&["networks", &key], message))?;
            networks.insert(key, n);
        }
    }
    let mut volumes = IndexMap::new();
    if let Some(Value::Mapping(m)) = merged.get("volumes") {
        for (k, v) in m {
            let key = k.as_str().unwrap_or_default().to_string();
            let vol = canonical::volume(&key, v, &mut warnings)
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
    Ok(Loaded { project, warnings })
}

/// Parse, interpolate, normalise and resolve `extends` for one file.
fn prepare_file(
    source: &SourceFile,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
    stack: &mut Vec<(PathBuf, String)>,
) -> Result<Mapping, ComposeError> {
    let mut doc = source.parse()?;
    interpolate_value(&mut doc, "", lookup, warnings).map_err(|(path, e)| match e {
        InterpolationError::Required { name, message } => ComposeError::MissingVariable {
            file: source.path.clone(),
            name,
            message,
        },
        InterpolationError::Syntax(m) => {
            let parts: Vec<&str> = path
                .split('.')
                .map(|p| p.split('[').next().unwrap_or(p))
                .collect();
            source.invalid(&parts, &m)
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
    let names: Vec<String> = match doc.get("services") {
        Some(Value::Mapping(s)) => s
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let original = doc.clone();
    for name in names {
        let resolved = resolve_extends(source, &original, &name, lookup, warnings, stack)?;
        if let Some(Value::Mapping(services)) = doc.get_mut("services") {
            services.insert(name.as_str().into(), Value::Mapping(resolved));
        }
    }
    Ok(doc)
}

fn resolve_extends(
    source: &SourceFile,
    doc: &Mapping,
    name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
    stack: &mut Vec<(PathBuf, String)>,
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
    if stack.contains(&key) {
        return Err(ComposeError::Reference(format!(
            "{}: `extends` loop through service {name:?}",
            source.path.display()
        )));
    }
    stack.push(key);
    let mut base = match file {
        None => resolve_extends(source, doc, &base_name, lookup, warnings, stack)?,
        Some(f) => {
            let dir = source.path.parent().unwrap_or(Path::new("."));
            let other = read_source(&clean_path(&dir.join(f)))?;
            let other_doc = prepare_file(&other, lookup, warnings, stack)?;
            let mut base =
                resolve_extends(&other, &other_doc, &base_name, lookup, warnings, stack)?;
            let other_dir = other.path.parent().unwrap_or(Path::new(".")).to_path_buf();
            absolutize_paths(&mut base, &other_dir);
            base
        }
    };
    stack.pop();
    base.remove("extends");
    let mut own = def;
    own.remove("extends");
    merge_service(&mut base, &own);
    Ok(base)
}

/// Paths in a service taken from another file are relative to that file's directory: make
/// them absolute before they join this file's service.
fn absolutize_paths(def: &mut Mapping, dir: &Path) {
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

/// Keep services whose profiles are all inactive out of the project (`*` enables all).
fn apply_profiles(services: &mut IndexMap<String, super::model::Service>, profiles: &[String]) {
    let all = profiles.iter().any(|p| p == "*");
    let active: HashSet<&str> = profiles.iter().map(String::as_str).collect();
    let disabled: Vec<String> = services
        .values()
        .filter(|s| {
            !all && !s.profiles.is_empty()
                && !s.profiles.iter().any(|p| active.contains(p.as_str()))
        })
        .map(|s| s.name.clone())
        .collect();
    for name in &disabled {
        services.shift_remove(name);
    }
}

/// Dangling references (a `depends_on` service that is not in the project, a network or
/// volume used but not declared) are reported; Compose would refuse such a file, but files
/// meant to be layered on others use them, so we keep going.
fn check_references(project: &mut Project, warnings: &mut Vec<String>) {
    let names: HashSet<String> = project.services.keys().cloned().collect();
    let mut needs_default = false;
    for svc in project.services.values_mut() {
        let missing: Vec<String> = svc
            .depends_on
            .keys()
            .filter(|d| !names.contains(*d))
            .cloned()
            .collect();
        for d in missing {
            svc.depends_on.shift_remove(&d);
            warnings.push(format!(
                "service {:?} depends on {d:?}, which is not defined (or its profile is not active); the dependency is dropped",
                svc.name
            ));
        }
        if svc.networks.is_empty() && svc.network_mode.is_none() {
            needs_default = true;
        }
        for net in svc.networks.keys() {
            if net == "default" {
                needs_default = true;
            } else if !project.networks.contains_key(net) {
                warnings.push(format!(
                    "service {:?} uses network {net:?}, which is not declared under top-level `networks:`; it is created as a project network",
                    svc.name
                ));
                project.networks.insert(net.clone(), Network::default());
            }
        }
        for m in &svc.volumes {
            if m.kind != super::model::MountKind::Volume {
                continue;
            }
            if let Some(src) = &m.source {
                if !project.volumes.contains_key(src) {
                    warnings.push(format!(
                        "service {:?} uses volume {src:?}, which is not declared under top-level `volumes:`; it is created as a project volume",
                        svc.name
                    ));
                    project.volumes.insert(src.clone(), Volume::default());
                }
            }
        }
    }
    if needs_default && !project.networks.contains_key("default") {
        project
            .networks
            .insert("default".into(), Network::default());
    }
}
