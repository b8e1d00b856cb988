//! `secrets:` and `configs:`: the top-level definitions (`file:`, `environment:`, `content:`
//! for configs, `external:`), the service-level entries that use them (short syntax `- name`,
//! long syntax `{source, target, uid, gid, mode}`), and [`file_mounts`], which says what
//! each container gets and where.
//!
//! Where Compose v2 (outside Swarm) puts them: a secret at `/run/secrets/<source>`, or at
//! `target` (a relative target under `/run/secrets/`); a config at `/<source>`, or at
//! `target` (a relative target under `/`). File sources are bind-mounted read-only;
//! `environment:` and `content:` sources are copied in (mode `0444` unless set).

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_yaml::Value;

use super::error::ComposeError;
use super::model::{Project, Service, ServiceFile};
use super::values::{boolean, err, scalar_string, string, FieldError};
use super::volumes::resolve_host_path;

/// Which of the two sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `secrets`.
    Secret,
    /// `configs`.
    Config,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Secret => "secrets",
            Kind::Config => "configs",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }
}

/// Parse a top-level `secrets:` or `configs:` section into entries that only lack the
/// service-level fields. Relative `file:` paths resolve against `dir`; `environment:`
/// sources take their value from `lookup` now, as Compose reads them from the project's
/// environment.
pub(crate) fn definitions(
    kind: Kind,
    section: &Value,
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, ServiceFile>, FieldError> {
    let mut out = IndexMap::new();
    let Value::Mapping(m) = section else {
        return if section.is_null() {
            Ok(out)
        } else {
            err(kind.key(), "expected a mapping of names to definitions")
        };
    };
    for (k, v) in m {
        let name = scalar_string(k).map_or_else(|| err(kind.key(), "expected names"), Ok)?;
        let def = definition(kind, &name, v, dir, lookup)
            .map_err(|(_, message)| (vec![name.clone()], message))?;
        out.insert(name, def);
    }
    Ok(out)
}

fn definition(
    kind: Kind,
    name: &str,
    v: &Value,
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ServiceFile, FieldError> {
    let Value::Mapping(m) = v else {
        return err(
            name,
            "expected a mapping with `file:`, `environment:`, `content:` or `external:`",
        );
    };
    let mut def = ServiceFile {
        source: name.to_string(),
        ..ServiceFile::default()
    };
    let home = lookup("HOME");
    for (k, val) in m {
        match k.as_str().unwrap_or_default() {
            "file" => {
                def.file = Some(resolve_host_path(
                    &string("file", val)?,
                    dir,
                    home.as_deref(),
                ))
            }
            "environment" => {
                let var = string("environment", val)?;
                def.environment_value = lookup(&var);
                def.environment = Some(var);
            }
            "content" if kind == Kind::Config => def.content = Some(string("content", val)?),
            "external" => {
                def.external = match val {
                    Value::Mapping(_) => true,
                    other => boolean("external", other)?,
                }
            }
            // The engine-side name, labels and drivers only matter to Swarm.
            "name" | "labels" | "driver" | "driver_opts" | "template_driver" => {}
            other => {
                return err(
                    other,
                    format!(
                        "`{other}` is not a {} option (expected file, environment{}, external)",
                        kind.noun(),
                        if kind == Kind::Config {
                            ", content"
                        } else {
                            ""
                        }
                    ),
                )
            }
        }
    }
    let sources = [
        def.file.is_some(),
        def.environment.is_some(),
        def.content.is_some(),
        def.external,
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return err(
            name,
            format!(
                "a {} needs exactly one source: `file:`, `environment:`{} or `external: true`",
                kind.noun(),
                if kind == Kind::Config {
                    ", `content:`"
                } else {
                    ""
                }
            ),
        );
    }
    Ok(def)
}

/// A service's `secrets:`/`configs:` list, each entry joined with its definition.
pub(crate) fn service_entries(
    kind: Kind,
    service: &str,
    v: &Value,
    defs: &IndexMap<String, ServiceFile>,
) -> Result<Vec<ServiceFile>, FieldError> {
    let Value::Sequence(items) = v else {
        return if v.is_null() {
            Ok(Vec::new())
        } else {
            err(
                kind.key(),
                "expected a list of names or {source, target, uid, gid, mode}",
            )
        };
    };
    items
        .iter()
        .map(|item| service_entry(kind, service, item, defs))
        .collect()
}

fn service_entry(
    kind: Kind,
    service: &str,
    item: &Value,
    defs: &IndexMap<String, ServiceFile>,
) -> Result<ServiceFile, FieldError> {
    let key = kind.key();
    let (source, long) = match item {
        Value::Mapping(m) => (
            m.get("source")
                .and_then(scalar_string)
                .map_or_else(|| err(key, "the long syntax needs `source:`"), Ok)?,
            Some(m),
        ),
        other => (
            scalar_string(other).map_or_else(|| err(key, "expected a name or a mapping"), Ok)?,
            None,
        ),
    };
    let Some(def) = defs.get(&source) else {
        return err(
            key,
            format!(
                "service {service:?} refers to undefined {} {source:?}: define it under top-level `{key}:`",
                kind.noun()
            ),
        );
    };
    let mut entry = def.clone();
    if let Some(m) = long {
        let text = |k: &str| m.get(k).and_then(scalar_string);
        entry.target = text("target");
        entry.uid = text("uid");
        entry.gid = text("gid");
        entry.mode = m.get("mode").map(mode).transpose()?;
        if let Some(other) = m
            .keys()
            .filter_map(Value::as_str)
            .find(|k| !["source", "target", "uid", "gid", "mode"].contains(k))
        {
            return err(key, format!("{source}: unknown option `{other}`"));
        }
    }
    if kind == Kind::Secret && entry.target.is_none() {
        entry.target = Some(format!("/run/secrets/{source}"));
    }
    Ok(entry)
}

/// `mode`: a number is taken as written (decimal), a string as octal, as Compose does.
fn mode(v: &Value) -> Result<u32, FieldError> {
    let parsed = match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
        _ => None,
    };
    parsed
        .filter(|m| *m <= 0o7777)
        .map_or_else(|| err("mode", "expected permission bits like 0440"), Ok)
}

/// Where a secret's or config's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMountSource {
    /// A host file (absolute path), bind-mounted read-only as Compose does; Compose ignores
    /// `uid`, `gid` and `mode` for these.
    HostFile(PathBuf),
    /// Bytes to copy into the container (`environment:` or `content:` sources).
    Content(Vec<u8>),
}

/// One file a container gets from a `secrets:` or `configs:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMount {
    /// `secrets` or `configs` name, for messages.
    pub name: String,
    /// Absolute path in the container.
    pub target: String,
    /// The bytes' origin.
    pub source: FileMountSource,
    /// Owner uid (default: root).
    pub uid: Option<String>,
    /// Owner gid (default: root).
    pub gid: Option<String>,
    /// Permission bits (Compose's default for copied files: `0o444`).
    pub mode: u32,
}

/// What `service`'s container gets from its `secrets:` and `configs:`, in order (secrets
/// first). External ones, a missing `file:` and an unset `environment:` variable are errors,
/// as they are for `docker compose run` outside Swarm.
pub fn file_mounts(project: &Project, service: &Service) -> Result<Vec<FileMount>, ComposeError> {
    let secrets = service.secrets.iter().map(|s| (Kind::Secret, s));
    let configs = service.configs.iter().map(|c| (Kind::Config, c));
    secrets
        .chain(configs)
        .map(|(kind, entry)| file_mount(project, service, kind, entry))
        .collect()
}

/// Every service's `secrets:` and `configs:` files (see [`file_mounts`]), by service name,
/// checked before any container exists (a missing file or unset variable is a configuration
/// error).
pub fn file_mounts_by_service(
    project: &Project,
) -> Result<std::collections::HashMap<String, Vec<FileMount>>, ComposeError> {
    project
        .services
        .values()
        .map(|s| Ok((s.name.clone(), file_mounts(project, s)?)))
        .collect()
}

fn file_mount(
    project: &Project,
    service: &Service,
    kind: Kind,
    entry: &ServiceFile,
) -> Result<FileMount, ComposeError> {
    let what = format!(
        "project {:?}, service {:?}: {} {:?}",
        project.name,
        service.name,
        kind.noun(),
        entry.source
    );
    let (base, default) = match kind {
        Kind::Secret => ("/run/secrets/", format!("/run/secrets/{}", entry.source)),
        Kind::Config => ("/", format!("/{}", entry.source)),
    };
    let target = match entry.target.as_deref() {
        None | Some("") => default,
        Some(t) if t.starts_with('/') => t.to_string(),
        Some(t) => format!("{base}{t}"),
    };
    let source = if entry.external {
        return Err(ComposeError::Reference(format!(
            "{what} is `external`, which Docker Compose supports only in Swarm mode; give it a `file:` or `environment:` source instead"
        )));
    } else if let Some(file) = &entry.file {
        if !file.exists() {
            return Err(ComposeError::Reference(format!(
                "{what}: file {} does not exist (create it, or fix `file:` in the definition)",
                file.display()
            )));
        }
        FileMountSource::HostFile(file.clone())
    } else if let Some(var) = &entry.environment {
        let Some(value) = &entry.environment_value else {
            return Err(ComposeError::Reference(format!(
                "{what}: environment variable {var:?} is not set (set it in the environment or in .env)"
            )));
        };
        FileMountSource::Content(value.clone().into_bytes())
    } else {
        FileMountSource::Content(entry.content.clone().unwrap_or_default().into_bytes())
    };
    Ok(FileMount {
        name: entry.source.clone(),
        target,
        source,
        uid: entry.uid.clone(),
        gid: entry.gid.clone(),
        mode: entry.mode.unwrap_or(0o444),
    })
}
