//! The loader: which files, which `.env`, which project name; then, per file, parse ->
//! interpolate -> resolve `extends`; then merge the files in order, apply profiles, and
//! canonicalise into the typed [`Project`].
//!
//! The steps live in their own files (discover, prepare, extends, merge, profiles,
//! canonical, references); [`load`] finds files through [`super::discover`]; [`load_from_str`] runs the same
//! pipeline on in-memory texts (tests use it; `env_file` and `extends: {file}` still read
//! the files they name).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::{IndexMap, IndexSet};
use serde_yaml::{Mapping, Value};

use super::canonical::{self, Context};
use super::discover::{find_files, read_dotenv};
use super::error::ComposeError;
use super::files::{self, Kind};
use super::merge::{merge_top, strip_tags};
use super::model::{Project, Service};
use super::names::{check_project_name, check_service_name, normalize_project_name};
use super::prepare::{prepare_file, DeferredVariable, Walk};
use super::profiles::apply_profiles;
use super::references::check_references;
use super::source::{read_source, SourceFile};
use super::toplevel;
use super::validate::validate;
use super::volumes::clean_path;
use super::warnings::aggregate_warnings;
use crate::config::ComposeOptions;

/// A loaded project and the warnings met on the way (unset variables, ignored keys...).
#[derive(Debug)]
pub struct Loaded {
    /// The resolved project.
    pub project: Project,
    /// Messages for the user (printed on stderr by the commands).
    pub warnings: Vec<String>,
    /// Problems that concern one service only, by service in file order: a required
    /// `env_file` that cannot be read, a `${V:?message}` failing inside its definition, no
    /// image. Empty unless [`ComposeOptions::defer_service_problems`] is set (the load
    /// fails on the first one otherwise); see [`Loaded::check_started`].
    pub problems: IndexMap<String, Vec<ComposeError>>,
}

impl Loaded {
    /// What `docker compose run` does with the problems of single services: fail on the
    /// first problem of a service in `started` (file order); each other service with a
    /// problem becomes one warning naming it, since nothing uses it.
    pub fn check_started(&mut self, started: &IndexSet<String>) -> Result<(), ComposeError> {
        let problems = std::mem::take(&mut self.problems);
        for (service, mut errors) in problems {
            if started.contains(&service) {
                return Err(errors.swap_remove(0));
            }
            let what: Vec<String> = errors.iter().map(ToString::to_string).collect();
            self.warnings.push(format!(
                "service {service:?} is not started by this run and is ignored: {}",
                what.join("; ")
            ));
        }
        Ok(())
    }
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
    let mut loaded = load_sources(
        &sources,
        &project_dir,
        name.as_deref(),
        (&profiles, &opts.enable_services),
        &lookup,
        opts.defer_service_problems,
    )?;
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
    load_sources(
        &sources,
        project_dir,
        name.as_deref(),
        (&profiles, &opts.enable_services),
        &lookup,
        opts.defer_service_problems,
    )
}

/// The pipeline on already-read sources. `(profiles, enable)`: the active profiles, and the
/// services whose profiles are enabled because they were named (see `profiles.rs`);
/// `defer`: keep the problems of single services in [`Loaded::problems`].
fn load_sources(
    sources: &[SourceFile],
    project_dir: &Path,
    name: Option<&str>,
    (profiles, enable): (&[String], &[String]),
    lookup: &dyn Fn(&str) -> Option<String>,
    defer: bool,
) -> Result<Loaded, ComposeError> {
    let mut warnings = Vec::new();
    let files: Vec<PathBuf> = sources.iter().map(|s| s.path.clone()).collect();
    let (merged, sources, deferred) = merge_files(sources, lookup, &mut warnings)?;
    let sources = sources.as_slice();
    let project_name = project_name(name, &merged, project_dir)?;
    warn_unsupported_top_level(&merged, &mut warnings);
    let locate = |path: &[&str], message: String| -> ComposeError {
        let source = sources
            .iter()
            .rev()
            .find(|s| s.locate(path).is_some())
            .unwrap_or(&sources[0]);
        source.invalid(path, &message)
    };
    let section = |key: &str| merged.get(key).unwrap_or(&Value::Null);
    let file_section = |kind: Kind, key: &str| {
        files::definitions(kind, section(key), project_dir, lookup).map_err(|(path, message)| {
            let mut full = vec![key];
            full.extend(path.iter().map(String::as_str));
            locate(&full, message)
        })
    };
    let secrets = file_section(Kind::Secret, "secrets")?;
    let configs = file_section(Kind::Config, "configs")?;
    let mut ctx = Context {
        project_dir,
        project_name: &project_name,
        lookup,
        warnings: &mut warnings,
        secrets: &secrets,
        configs: &configs,
        problems: Vec::new(),
    };
    let mut problems: IndexMap<String, Vec<ComposeError>> = IndexMap::new();
    for d in deferred {
        problems
            .entry(d.service.clone())
            .or_default()
            .push(d.error());
    }
    let mut services = canonical_services(section("services"), &mut ctx, &locate, &mut problems)?;
    let disabled = apply_profiles(&mut services, profiles, enable);
    let mut project = Project {
        name: project_name,
        project_dir: project_dir.to_path_buf(),
        files: files.to_vec(),
        services,
        networks: IndexMap::new(),
        volumes: IndexMap::new(),
        isolation: None,
    };
    top_level_sections(&mut project, &merged, &mut warnings, &locate)?;
    validate(&project, &disabled, &locate, &mut problems)?;
    check_references(&mut project, &mut warnings);
    let problems = problems_in_file_order(&project, problems, defer)?;
    let warnings = aggregate_warnings(warnings);
    Ok(Loaded {
        project,
        warnings,
        problems,
    })
}

/// Each file prepared (see `prepare.rs`) and merged over the ones before it, with the YAML
/// tags left after merging removed; and every file that contributed, included ones first, so
/// errors found later point into whichever file sets the key.
fn merge_files(
    sources: &[SourceFile],
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<(Mapping, Vec<SourceFile>, Vec<DeferredVariable>), ComposeError> {
    let mut merged = Mapping::new();
    let mut walk = Walk::default();
    for source in sources {
        let doc = prepare_file(source, lookup, warnings, &mut walk)?;
        if merged.is_empty() {
            merged = doc; // the first file: a move, not a copy
        } else {
            merge_top(&mut merged, &doc);
        }
    }
    let sources: Vec<SourceFile> = walk
        .included
        .into_iter()
        .chain(sources.iter().cloned())
        .collect();
    let mut merged_value = Value::Mapping(merged);
    strip_tags(&mut merged_value);
    let Value::Mapping(merged) = merged_value else {
        unreachable!("a mapping stays a mapping")
    };
    Ok((merged, sources, walk.deferred))
}

/// A warning for each top-level key compose-shard ignores.
fn warn_unsupported_top_level(merged: &Mapping, warnings: &mut Vec<String>) {
    for (k, _) in merged {
        match k.as_str().unwrap_or_default() {
            "services" | "networks" | "volumes" | "secrets" | "configs" | "name" | "version" => {}
            other => warnings.push(format!(
                "top-level key `{other}` is not supported by compose-shard and is ignored"
            )),
        }
    }
}

/// `-p` or `COMPOSE_PROJECT_NAME` must already be a valid name (Compose refuses others);
/// `name:` and the directory name are normalised as Compose does.
fn project_name(
    explicit: Option<&str>,
    merged: &Mapping,
    project_dir: &Path,
) -> Result<String, ComposeError> {
    if let Some(name) = explicit {
        return check_project_name(name)
            .map(str::to_string)
            .map_err(|message| {
                ComposeError::Reference(format!(
                "{message} (it comes from -p or COMPOSE_PROJECT_NAME; choose a valid name there)"
            ))
            });
    }
    let raw_name = merged
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            project_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    normalize_project_name(&raw_name).ok_or_else(|| {
        ComposeError::Reference(format!(
            "invalid project name {raw_name:?}: it must contain a lowercase letter or digit (set one with -p NAME or `name:`)"
        ))
    })
}

/// Every service, canonicalised, in file order. A service's own problems (see
/// [`Loaded::problems`]) go to `problems`; a service that fails to canonicalise because a
/// `${V:?}` inside it was left empty becomes a placeholder (no image, its profiles) with
/// that failure among its problems.
fn canonical_services(
    defs: &Value,
    ctx: &mut Context<'_>,
    locate: &dyn Fn(&[&str], String) -> ComposeError,
    problems: &mut IndexMap<String, Vec<ComposeError>>,
) -> Result<IndexMap<String, Service>, ComposeError> {
    let empty = Mapping::new();
    let defs = match defs {
        Value::Mapping(m) => m,
        Value::Null => &empty,
        _ => {
            return Err(locate(
                &["services"],
                "expected a mapping of service names to definitions".into(),
            ))
        }
    };
    let mut services = IndexMap::new();
    for (k, def) in defs {
        let svc_name = k.as_str().unwrap_or_default().to_string();
        check_service_name(&svc_name).map_err(|m| locate(&["services", &svc_name], m))?;
        let Value::Mapping(def) = def else {
            return Err(locate(
                &["services", &svc_name],
                "expected a mapping (image:, build:...)".into(),
            ));
        };
        let locate_in = |(path, message): (Vec<String>, String)| {
            let mut full: Vec<&str> = vec!["services", &svc_name];
            full.extend(path.iter().map(String::as_str));
            locate(&full, message)
        };
        let svc = match canonical::service(&svc_name, def, ctx) {
            Ok(svc) => svc,
            Err(e) if problems.contains_key(&svc_name) => {
                problems
                    .entry(svc_name.clone())
                    .or_default()
                    .push(locate_in(e));
                placeholder(&svc_name, def)
            }
            Err(e) => return Err(locate_in(e)),
        };
        for problem in ctx.problems.drain(..) {
            problems
                .entry(svc_name.clone())
                .or_default()
                .push(locate_in(problem));
        }
        services.insert(svc_name, svc);
    }
    Ok(services)
}

/// The problems of the project's services in file order (services removed by `!reset` or
/// disabled by profiles have none); without `defer`, the first one as the error.
fn problems_in_file_order(
    project: &Project,
    mut problems: IndexMap<String, Vec<ComposeError>>,
    defer: bool,
) -> Result<IndexMap<String, Vec<ComposeError>>, ComposeError> {
    let mut ordered: IndexMap<String, Vec<ComposeError>> = project
        .services
        .keys()
        .filter_map(|name| problems.swap_remove(name).map(|p| (name.clone(), p)))
        .collect();
    match ordered.shift_remove_index(0) {
        Some((_, mut errors)) if !defer => Err(errors.swap_remove(0)),
        Some((name, errors)) => {
            ordered.shift_insert(0, name, errors);
            Ok(ordered)
        }
        None => Ok(ordered),
    }
}

/// A service that could not be read, standing in so that the project still names it: its
/// profiles (so that profiles treat it as Compose would), nothing else.
fn placeholder(name: &str, def: &Mapping) -> Service {
    let profiles = match def.get("profiles") {
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    Service {
        name: name.to_string(),
        profiles,
        ..Service::default()
    }
}

/// Top-level `networks:` and `volumes:`.
fn top_level_sections(
    project: &mut Project,
    merged: &Mapping,
    warnings: &mut Vec<String>,
    locate: &dyn Fn(&[&str], String) -> ComposeError,
) -> Result<(), ComposeError> {
    if let Some(Value::Mapping(m)) = merged.get("networks") {
        for (k, v) in m {
            let key = k.as_str().unwrap_or_default().to_string();
            let n = toplevel::network(&key, v, warnings)
                .map_err(|(_, message)| locate(&["networks", &key], message))?;
            project.networks.insert(key, n);
        }
    }
    if let Some(Value::Mapping(m)) = merged.get("volumes") {
        for (k, v) in m {
            let key = k.as_str().unwrap_or_default().to_string();
            let vol = toplevel::volume(&key, v, warnings)
                .map_err(|(_, message)| locate(&["volumes", &key], message))?;
            project.volumes.insert(key, vol);
        }
    }
    Ok(())
}
