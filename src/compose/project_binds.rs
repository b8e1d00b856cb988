//! Bind mounts of the project tree (`.:/code`, `./src:/app/src`): what `--copy-source`
//! replaces by an upload of the files, for engines that cannot see this machine's checkout.
//!
//! Pure: bind sources are absolute after loading (Compose resolves `./x` against the project
//! directory, lexically), so "inside the project" is a lexical prefix test on path
//! components, without touching the filesystem. A bind of a path outside the project
//! (`/var/run/docker.sock`, `~/.aws`) is not the project's source and stays as it is.

use std::path::{Path, PathBuf};

use super::model::{MountKind, Service};

/// One bind mount of the project tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectBind {
    /// Its position in the service's `volumes`.
    pub index: usize,
    /// The host path (absolute, inside the project directory).
    pub source: PathBuf,
    /// The host path relative to the project directory (empty for the directory itself).
    pub relative: PathBuf,
    /// The path in the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// A missing host path is created rather than refused ([`super::Mount::create_host_path`]).
    pub create_host_path: bool,
}

/// The bind mounts of `service` whose host source is `project_dir` or inside it, ordered so
/// that a mount inside another's target comes after it (`/code` before `/code/data`), as
/// the engine mounts them: uploading in this order gives the same view.
pub fn project_tree_binds(service: &Service, project_dir: &Path) -> Vec<ProjectBind> {
    let mut binds: Vec<ProjectBind> = service
        .volumes
        .iter()
        .enumerate()
        .filter(|(_, m)| m.kind == MountKind::Bind)
        .filter_map(|(index, m)| {
            let source = PathBuf::from(m.source.as_deref()?);
            let relative = source.strip_prefix(project_dir).ok()?.to_path_buf();
            Some(ProjectBind {
                index,
                source,
                relative,
                target: m.target.clone(),
                read_only: m.read_only,
                create_host_path: m.create_host_path,
            })
        })
        .collect();
    binds.sort_by_key(|b| (Path::new(&b.target).components().count(), b.index));
    binds
}

/// `service` without its project-tree bind mounts (every other mount kept, in order).
pub fn without_project_binds(service: &Service, project_dir: &Path) -> Service {
    let drop: Vec<usize> = project_tree_binds(service, project_dir)
        .iter()
        .map(|b| b.index)
        .collect();
    let mut out = service.clone();
    out.volumes = service
        .volumes
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, m)| m.clone())
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::load_from_str;

    fn service(yaml: &str) -> (Service, PathBuf) {
        let env = std::collections::HashMap::from([("HOME".to_string(), "/home/u".to_string())]);
        let loaded = load_from_str(
            &[("compose.yaml", yaml)],
            Path::new("/work/proj"),
            &env,
            &crate::config::ComposeOptions::default(),
        )
        .unwrap();
        let svc = loaded.project.services["app"].clone();
        (svc, loaded.project.project_dir.clone())
    }

    #[test]
    fn only_binds_inside_the_project_directory_count() {
        let (svc, dir) = service(
            "services:\n  app:\n    image: x\n    volumes:\n      - ./data:/code/data\n      - .:/code\n      - ./src:/app/src:ro\n      - /var/run/docker.sock:/var/run/docker.sock\n      - ~/.aws:/root/.aws\n      - ../sibling:/sib\n      - /work/project-other:/other\n      - cache:/cache\n      - /tmp\n      - type: tmpfs\n        target: /scratch\nvolumes:\n  cache: {}\n",
        );
        assert_eq!(dir, PathBuf::from("/work/proj"));
        let binds = project_tree_binds(&svc, &dir);
        let got: Vec<(&str, &str, bool)> = binds
            .iter()
            .map(|b| (b.relative.to_str().unwrap(), b.target.as_str(), b.read_only))
            .collect();
        assert_eq!(
            got,
            [("", "/code", false), ("data", "/code/data", false), ("src", "/app/src", true)],
            "shallower targets first, then compose order; ../sibling and /work/project-other are outside"
        );
        assert_eq!(binds[0].source, PathBuf::from("/work/proj"));

        let rest = without_project_binds(&svc, &dir);
        let targets: Vec<&str> = rest.volumes.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(
            targets,
            [
                "/var/run/docker.sock",
                "/root/.aws",
                "/sib",
                "/other",
                "/cache",
                "/tmp",
                "/scratch"
            ]
        );
        assert_eq!(rest.name, svc.name);
    }

    #[test]
    fn a_service_without_binds_is_unchanged() {
        let (svc, dir) = service("services:\n  app:\n    image: x\n");
        assert!(project_tree_binds(&svc, &dir).is_empty());
        assert_eq!(without_project_binds(&svc, &dir), svc);
    }
}
