//! Missing bind-mount sources, created as Docker Compose v2 creates them: a short-syntax
//! bind (`./backend/htmlcov:/app/htmlcov`) or a long-syntax one without
//! `bind.create_host_path: false` whose host path does not exist gets an empty folder
//! there. Compose leaves it to the engine (it sends such binds as `Binds`, and dockerd makes
//! the folder as root when the container starts); compose-shard makes it itself, before any
//! container is created, so that it belongs to the user running compose-shard (a coverage
//! report written there can be read and deleted without root) and can be reported.
//!
//! Only for an engine that sees this machine's folders: with `--copy-source` the folder is
//! made inside the container instead (`SourceUpload::create_missing`), and a remote engine's
//! host is not this machine.

use std::path::{Path, PathBuf};

use super::outcome::{EnvironmentFailure, FailureCause};
use crate::compose::{MountKind, Project};

/// Create every missing host path of `project`'s binds that Compose would create, as
/// folders; the paths created (the top-most missing folder of each), in service order.
/// `Err` names the path that could not be created and why.
pub fn create_missing_bind_sources(
    project: &Project,
) -> Result<Vec<PathBuf>, Box<EnvironmentFailure>> {
    let mut created: Vec<PathBuf> = Vec::new();
    for service in project.services.values() {
        for mount in &service.volumes {
            if mount.kind != MountKind::Bind || !mount.create_host_path {
                continue;
            }
            let Some(source) = mount.source.as_deref().map(Path::new) else {
                continue;
            };
            // A dangling symbolic link exists: the engine reports it as it is.
            if source.symlink_metadata().is_ok() {
                continue;
            }
            let top = topmost_missing(source);
            std::fs::create_dir_all(source).map_err(|e| {
                Box::new(
                    EnvironmentFailure::of(FailureCause::BindSource {
                        path: source.to_path_buf(),
                        source: std::sync::Arc::new(e),
                    })
                    .in_service(&service.name),
                )
            })?;
            if !created.contains(&top) {
                created.push(top);
            }
        }
    }
    Ok(created)
}

/// The first folder of `path`, from the root down, that does not exist.
fn topmost_missing(path: &Path) -> PathBuf {
    let mut top = path.to_path_buf();
    let mut current = path;
    while let Some(parent) = current.parent() {
        if parent.as_os_str().is_empty() || parent.symlink_metadata().is_ok() {
            break;
        }
        top = parent.to_path_buf();
        current = parent;
    }
    top
}

/// The notice for the paths created.
pub fn created_notice(created: &[PathBuf]) -> String {
    let paths: Vec<String> = created.iter().map(|p| p.display().to_string()).collect();
    format!(
        "created the missing bind-mount source folder{} {} (as Docker Compose does; they stay after the run)",
        if created.len() == 1 { "" } else { "s" },
        paths.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::load_from_str;

    fn project(dir: &Path, volumes: &str) -> Project {
        let text = format!("services:\n  app:\n    image: x\n    volumes:\n{volumes}");
        load_from_str(
            &[("compose.yaml", &text)],
            dir,
            &std::collections::HashMap::new(),
            &crate::config::ComposeOptions::default(),
        )
        .unwrap()
        .project
    }

    #[test]
    fn short_and_long_binds_are_created_unless_create_host_path_is_false() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("there")).unwrap();
        let p = project(
            dir.path(),
            "      - ./backend/htmlcov:/app/htmlcov\n      - ./there:/there\n      - type: bind\n        source: ./long/a\n        target: /long\n      - type: bind\n        source: ./refused\n        target: /refused\n        bind: {create_host_path: false}\n      - data:/data\n",
        );
        let created = create_missing_bind_sources(&p).unwrap();
        assert_eq!(
            created,
            [dir.path().join("backend"), dir.path().join("long")],
            "the top-most folder each bind created"
        );
        assert!(dir.path().join("backend/htmlcov").is_dir());
        assert!(dir.path().join("long/a").is_dir());
        assert!(!dir.path().join("refused").exists());
        assert!(
            !dir.path().join("data").exists(),
            "a named volume is no path"
        );
        // Run again: nothing is missing any more.
        assert!(create_missing_bind_sources(&p).unwrap().is_empty());
        let notice = created_notice(&created);
        assert!(
            notice.contains("folders") && notice.contains("backend"),
            "{notice}"
        );
    }

    #[test]
    fn a_path_that_cannot_be_created_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let p = project(dir.path(), "      - ./file/sub:/sub\n");
        let err = create_missing_bind_sources(&p).unwrap_err().to_string();
        assert!(
            err.contains("file/sub") && err.starts_with("service app: "),
            "{err}"
        );
    }
}
