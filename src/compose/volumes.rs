//! Service `volumes` in short and long syntax, canonicalised to [`Mount`]s.
//!
//! Short syntax `SOURCE:TARGET[:MODE]` or `TARGET` (anonymous volume). A source starting with
//! `.`, `/` or `~` is a host path (resolved against the project directory, `~` against HOME);
//! anything else names a volume. MODE is a comma list: `ro`/`rw`, anything else (`z`, `Z`,
//! `cached`, `delegated`, `nocopy`...) is kept in `options` for the engine.

use std::path::{Component, Path, PathBuf};

use serde_yaml::Value;

use super::model::{Mount, MountKind};
use super::names::parse_byte_size;

/// Resolve a host path as Compose does: `~` is HOME, relative paths join the base directory,
/// and `.`/`..` components are folded (without touching the filesystem).
pub(crate) fn resolve_host_path(raw: &str, base: &Path, home: Option<&str>) -> PathBuf {
    let joined = if let Some(rest) = raw.strip_prefix('~') {
        let home = PathBuf::from(home.unwrap_or("/root"));
        home.join(rest.trim_start_matches('/'))
    } else if Path::new(raw).is_absolute() {
        PathBuf::from(raw)
    } else {
        base.join(raw)
    };
    clean_path(&joined)
}

/// Fold `.` and `..` components lexically.
pub(crate) fn clean_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn is_host_path(s: &str) -> bool {
    s.starts_with('.') || s.starts_with('/') || s.starts_with('~')
}

/// Parse one service `volumes` entry.
pub(crate) fn parse_mount(value: &Value, base: &Path, home: Option<&str>) -> Result<Mount, String> {
    match value {
        Value::String(s) => parse_short(s, base, home),
        Value::Mapping(m) => {
            let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
            let kind = match text("type").as_deref() {
                Some("volume") | None => MountKind::Volume,
                Some("bind") => MountKind::Bind,
                Some("tmpfs") => MountKind::Tmpfs,
                Some(other) => {
                    return Err(format!(
                        "unsupported volume type {other:?} (expected volume, bind or tmpfs)"
                    ))
                }
            };
            let target = text("target").ok_or("long syntax needs `target`")?;
            let mut source = text("source").filter(|s| !s.is_empty());
            if kind == MountKind::Bind {
                let raw = source.ok_or("a bind mount needs `source`")?;
                source = Some(resolve_host_path(&raw, base, home).display().to_string());
            }
            let mut options = Vec::new();
            // Compose v2 sends such binds as `Binds`, whose missing sources the engine
            // creates; only `create_host_path: false` makes a missing one an error.
            let sub = |section: &str, key: &str| m.get(section).and_then(|s| s.get(key));
            let create_host_path =
                kind == MountKind::Bind && flag(sub("bind", "create_host_path"))? != Some(false);
            if let Some(bind) = m.get("bind") {
                if let Some(p) = bind.get("propagation").and_then(Value::as_str) {
                    options.push(p.to_string());
                }
                if let Some(s) = bind.get("selinux").and_then(Value::as_str) {
                    options.push(s.to_string());
                }
            }
            if flag(sub("volume", "nocopy"))? == Some(true) {
                options.push("nocopy".into());
            }
            if let Some(size) = sub("tmpfs", "size") {
                let size = match size {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    _ => String::new(),
                };
                parse_byte_size(&size).map_err(|e| format!("tmpfs.size: {e}"))?;
                options.push(format!("size={size}"));
            }
            Ok(Mount {
                kind,
                source,
                target,
                read_only: flag(m.get("read_only"))?.unwrap_or(false),
                options,
                create_host_path,
            })
        }
        _ => Err("expected \"SOURCE:TARGET[:MODE]\" or a mapping with `type` and `target`".into()),
    }
}

/// A boolean of the long syntax, `true`/`false` strings included (Compose casts
/// interpolated values); anything else, an empty string included, is refused as in Compose.
fn flag(v: Option<&Value>) -> Result<Option<bool>, String> {
    match v {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
        Some(other) => Err(format!(
            "expected true or false, got {:?}",
            serde_yaml::to_string(other).unwrap_or_default().trim()
        )),
    }
}

fn parse_short(text: &str, base: &Path, home: Option<&str>) -> Result<Mount, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, mode] => (Some(*source), *target, Some(*mode)),
        _ => {
            return Err(format!(
                "invalid volume {text:?}: expected SOURCE:TARGET[:MODE]"
            ))
        }
    };
    if target.is_empty() {
        return Err(format!("invalid volume {text:?}: empty container path"));
    }
    let mut read_only = false;
    let mut options = Vec::new();
    for opt in mode.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" => {}
            other => options.push(other.to_string()),
        }
    }
    let (kind, source) = match source {
        None => (MountKind::Volume, None),
        Some(s) if is_host_path(s) => (
            MountKind::Bind,
            Some(resolve_host_path(s, base, home).display().to_string()),
        ),
        Some(s) => (MountKind::Volume, Some(s.to_string())),
    };
    Ok(Mount {
        create_host_path: kind == MountKind::Bind,
        kind,
        source,
        target: target.to_string(),
        read_only,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(s: &str) -> Mount {
        parse_mount(&Value::from(s), Path::new("/proj"), Some("/home/u")).unwrap()
    }

    fn mount(
        kind: MountKind,
        source: Option<&str>,
        target: &str,
        ro: bool,
        options: &[&str],
    ) -> Mount {
        Mount {
            kind,
            source: source.map(str::to_string),
            target: target.into(),
            read_only: ro,
            options: options.iter().map(|s| s.to_string()).collect(),
            create_host_path: kind == MountKind::Bind,
        }
    }

    #[test]
    fn short_syntax() {
        assert_eq!(
            short("./src:/app:ro,z"),
            mount(MountKind::Bind, Some("/proj/src"), "/app", true, &["z"])
        );
        assert_eq!(
            short("../x:/x"),
            mount(MountKind::Bind, Some("/x"), "/x", false, &[])
        );
        assert_eq!(
            short("~/.aws:/root/.aws"),
            mount(
                MountKind::Bind,
                Some("/home/u/.aws"),
                "/root/.aws",
                false,
                &[]
            )
        );
        assert_eq!(
            short("pgdata:/var/lib/postgresql/data"),
            mount(
                MountKind::Volume,
                Some("pgdata"),
                "/var/lib/postgresql/data",
                false,
                &[]
            )
        );
        assert_eq!(
            short("/app/.venv"),
            mount(MountKind::Volume, None, "/app/.venv", false, &[])
        );
        assert_eq!(
            short(".:/app:delegated"),
            mount(
                MountKind::Bind,
                Some("/proj"),
                "/app",
                false,
                &["delegated"]
            )
        );
    }

    #[test]
    fn long_syntax() {
        let parse = |y: &str| {
            parse_mount(&serde_yaml::from_str(y).unwrap(), Path::new("/proj"), None).unwrap()
        };
        assert_eq!(
            parse("{type: tmpfs, target: /tmp, tmpfs: {size: 1000}}"),
            mount(MountKind::Tmpfs, None, "/tmp", false, &["size=1000"])
        );
        assert_eq!(
            parse("{type: bind, source: ./d, target: /d, read_only: true}"),
            mount(MountKind::Bind, Some("/proj/d"), "/d", true, &[])
        );
        assert_eq!(
            parse("{type: volume, source: v, target: /v, volume: {nocopy: true}}"),
            mount(MountKind::Volume, Some("v"), "/v", false, &["nocopy"])
        );
        // Compose v2 creates a missing host path unless told not to.
        let no_create =
            parse("{type: bind, source: ./d, target: /d, bind: {create_host_path: false}}");
        assert!(!no_create.create_host_path);
        let create = parse("{type: bind, source: ./d, target: /d, bind: {create_host_path: true}}");
        assert!(create.create_host_path);
        assert!(parse_mount(
            &serde_yaml::from_str("{type: npipe, target: /x}").unwrap(),
            Path::new("/"),
            None
        )
        .is_err());
    }
}
