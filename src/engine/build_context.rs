//! The build context of a `build:` service as a tar archive, honouring `.dockerignore`, and
//! a content hash of everything that shapes the image (files, Dockerfile name, args, target).
//!
//! The archive is deterministic (sorted entries, zeroed times and owners) so that the hash is
//! stable, and an unchanged context maps to an already-built image that every group reuses.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::dockerignore::{IgnoreRules, ParentMatches};
use super::error::EngineError;
use crate::compose::Build;

/// A packed build context.
pub struct BuildContext {
    /// The tar archive to send to the engine.
    pub archive: Vec<u8>,
    /// Hex sha256 over the archive, the Dockerfile path, build args and target.
    pub hash: String,
}

/// The context-relative paths (`/`-separated, sorted per folder) that `docker build` would
/// send: `TarWithOptions`' walk. An excluded folder is left out with its contents unless an
/// exception pattern starts with its path; then it is entered but not itself packed. The
/// `skip` folders (the run's own results) are never entered. `rel` is where to start ("" for
/// the whole context; the source upload, `upload.rs`, starts at a bound sub-folder).
pub(super) fn walk(
    root: &Path,
    rel: &str,
    parent: Option<&ParentMatches>,
    rules: &IgnoreRules,
    skip: &[String],
    out: &mut Vec<String>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if skip
            .iter()
            .any(|e| path == *e || path.starts_with(&format!("{e}/")))
        {
            continue;
        }
        let (ignored, matches) = rules.matches(&path, parent);
        if !entry.file_type()?.is_dir() {
            if !ignored {
                out.push(path);
            }
            continue;
        }
        if ignored && rules.can_skip_dir(&path) {
            continue;
        }
        if !ignored {
            out.push(path.clone());
        }
        walk(root, &path, Some(&matches), rules, skip, out)?;
    }
    Ok(())
}

/// `excluded` folders that lie inside `root`, relative to it (`/`-separated).
pub(super) fn excluded_inside(root: &Path, excluded: &[PathBuf]) -> Vec<String> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let root = canonical(root);
    excluded
        .iter()
        .filter_map(|e| {
            let rel = canonical(e).strip_prefix(&root).ok()?.to_path_buf();
            let text = rel.to_string_lossy().replace('\\', "/");
            (!text.is_empty()).then_some(text)
        })
        .collect()
}

/// The rules of `<root>/.dockerignore`; none when the file does not exist.
pub(super) fn read_ignore_rules(root: &Path) -> Result<IgnoreRules, EngineError> {
    let ignore_file = root.join(".dockerignore");
    match std::fs::read_to_string(&ignore_file) {
        Ok(text) => IgnoreRules::parse(&text).map_err(|message| EngineError::InvalidDockerignore {
            path: ignore_file.clone(),
            message,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IgnoreRules::default()),
        Err(source) => Err(EngineError::Io {
            action: "read".into(),
            path: ignore_file,
            source,
        }),
    }
}

/// Pack `build.context` for the engine, leaving out `excluded` folders (the run's own result
/// folder: it changes on every run and would otherwise change the hash, forcing a rebuild).
pub fn pack(build: &Build, excluded: &[PathBuf]) -> Result<BuildContext, EngineError> {
    let root = &build.context;
    let excluded = excluded_inside(root, excluded);
    let io = super::error::io_error;
    let dockerfile = build.dockerfile.as_deref().unwrap_or("Dockerfile");
    let mut ignore = read_ignore_rules(root)?;
    ignore.keep_build_files(dockerfile.trim_start_matches("./"));
    let mut paths = Vec::new();
    walk(root, "", None, &ignore, &excluded, &mut paths)
        .map_err(io("read the build context", root))?;

    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for text in paths {
        let rel = PathBuf::from(&text);
        let full = root.join(&rel);
        let meta = std::fs::symlink_metadata(&full).map_err(io("read", &full))?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
        header.set_mtime(0);
        if meta.is_dir() {
            builder
                .append_data(&mut header, format!("{text}/"), std::io::empty())
                .map_err(io("pack", &full))?;
        } else if meta.file_type().is_symlink() {
            let to = std::fs::read_link(&full).map_err(io("read link", &full))?;
            builder
                .append_link(&mut header, &text, &to)
                .map_err(io("pack", &full))?;
        } else if meta.is_file() {
            let file = std::fs::File::open(&full).map_err(io("open", &full))?;
            builder
                .append_data(&mut header, &text, file)
                .map_err(io("pack", &full))?;
        }
    }
    let archive = builder.into_inner().map_err(io("pack", root))?;

    let mut hasher = Sha256::new();
    hasher.update(&archive);
    hasher.update(dockerfile.as_bytes());
    for (k, v) in &build.args {
        hasher.update(format!("\0arg {k}={}", v.as_deref().unwrap_or("")).as_bytes());
    }
    if let Some(target) = &build.target {
        hasher.update(format!("\0target {target}").as_bytes());
    }
    Ok(BuildContext {
        archive,
        hash: hex::encode(hasher.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_changes_with_content_args_and_target_but_not_ignored_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "*.log\n").unwrap();
        std::fs::write(dir.path().join("app.py"), "print(1)\n").unwrap();
        let build = Build {
            context: dir.path().to_path_buf(),
            ..Default::default()
        };
        let first = pack(&build, &[]).unwrap();
        assert_eq!(pack(&build, &[]).unwrap().hash, first.hash, "deterministic");

        std::fs::write(dir.path().join("debug.log"), "noise").unwrap();
        assert_eq!(pack(&build, &[]).unwrap().hash, first.hash, "ignored file");

        std::fs::write(dir.path().join("app.py"), "print(2)\n").unwrap();
        let changed = pack(&build, &[]).unwrap();
        assert_ne!(changed.hash, first.hash, "content");

        let mut with_arg = build.clone();
        with_arg.args.insert("A".into(), Some("1".into()));
        assert_ne!(pack(&with_arg, &[]).unwrap().hash, changed.hash, "args");
        let mut with_target = build.clone();
        with_target.target = Some("test".into());
        assert_ne!(
            pack(&with_target, &[]).unwrap().hash,
            changed.hash,
            "target"
        );

        std::fs::create_dir(dir.path().join("results")).unwrap();
        std::fs::write(dir.path().join("results/junit.xml"), "<testsuites/>").unwrap();
        let excluded = [dir.path().join("results")];
        assert_eq!(
            pack(&build, &excluded).unwrap().hash,
            changed.hash,
            "the run's result folder is not part of the context"
        );
        std::fs::remove_dir_all(dir.path().join("results")).unwrap();

        let names: Vec<String> = tar::Archive::new(&changed.archive[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec![".dockerignore", "Dockerfile", "app.py"]);
    }
}
