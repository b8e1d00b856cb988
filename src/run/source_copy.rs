//! Source delivered without bind mounts (`--copy-source`): when an engine cannot see the
//! checkout (a remote engine, or compose-shard itself running in a container whose paths
//! exist only there), a bind mount of the project tree (`.:/code`) would show the engine's
//! host an empty or different folder, and tests would pass on the wrong code or fail to
//! import. Instead, the group's services lose their project-tree binds and every affected
//! container gets the project files (honouring `.dockerignore`, as the build context does)
//! uploaded after it is created and before it starts; results still come back through the
//! API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::backend::Backend;
use super::error::RunError;
use super::outcome::{EnvironmentFailure, FailureCause};
use crate::compose::{project_tree_binds, without_project_binds, Project, ProjectBind};
use crate::engine::SourceUpload;

pub use crate::config::CopySource;

/// The project-tree binds of a group's services, replaced by uploads.
#[derive(Debug, Clone, Default)]
pub struct SourceCopy {
    project_dir: PathBuf,
    binds: HashMap<String, Vec<ProjectBind>>,
    excluded: Vec<PathBuf>,
}

impl SourceCopy {
    /// The project-tree binds of every service of `project`; `excluded` are folders never
    /// sent (the run's results folder).
    pub fn of(project: &Project, excluded: Vec<PathBuf>) -> SourceCopy {
        let binds = project
            .services
            .values()
            .map(|s| (s.name.clone(), project_tree_binds(s, &project.project_dir)))
            .filter(|(_, b)| !b.is_empty())
            .collect();
        SourceCopy {
            project_dir: project.project_dir.clone(),
            binds,
            excluded,
        }
    }

    /// Whether any service bind-mounts the project tree.
    pub fn is_empty(&self) -> bool {
        self.binds.is_empty()
    }

    /// The binds as `service: source:target` for messages.
    pub fn describe(&self) -> String {
        let mut all: Vec<String> = self
            .binds
            .iter()
            .flat_map(|(service, binds)| {
                binds.iter().map(move |b| {
                    let relative = b.relative.display().to_string();
                    let source = match relative.trim_end_matches('/') {
                        "" => ".".to_string(),
                        path => format!("./{path}"),
                    };
                    format!("{service}: {source}:{}", b.target)
                })
            })
            .collect();
        all.sort();
        all.join(", ")
    }

    /// `project` without the binds this copy replaces.
    pub fn strip(&self, project: &Project) -> Project {
        let mut stripped = project.clone();
        for service in stripped.services.values_mut() {
            if self.binds.contains_key(&service.name) {
                *service = without_project_binds(service, &self.project_dir);
            }
        }
        stripped
    }

    /// Upload `service`'s project-tree binds into its created (not started) `container`.
    pub async fn upload<B: Backend>(
        &self,
        backend: &B,
        service: &str,
        container: &str,
    ) -> Result<(), EnvironmentFailure> {
        for bind in self.binds.get(service).map(Vec::as_slice).unwrap_or(&[]) {
            let upload = SourceUpload {
                project_dir: &self.project_dir,
                source: &bind.source,
                target: &bind.target,
                excluded: &self.excluded,
                create_missing: bind.create_host_path,
            };
            backend.upload_tree(container, &upload).await.map_err(|e| {
                EnvironmentFailure::of(FailureCause::SourceCopy {
                    source_path: bind.source.clone(),
                    target: format!("{container}:{}", bind.target),
                    error: std::sync::Arc::new(e),
                })
                .in_service(service)
            })?;
        }
        Ok(())
    }
}

/// Whether `engine` must get the project files uploaded: `--copy-source always`; in `auto`,
/// a remote engine or one that cannot see `project_dir` (checked with a never-started
/// container from `image`); with it, a notice saying why. `Err` says why the run cannot go
/// on: the check failed, or `never` and the engine cannot see the checkout.
pub async fn must_copy<B: Backend>(
    backend: &B,
    engine: &str,
    remote: bool,
    mode: CopySource,
    copy: &SourceCopy,
    image: &str,
) -> Result<(bool, Option<String>), RunError> {
    if copy.is_empty() {
        return Ok((false, None));
    }
    match mode {
        CopySource::Always => return Ok((true, None)),
        CopySource::Auto if remote => {
            return Ok((
                true,
                Some(format!(
                    "engine {engine} is remote: the project files are copied into the containers instead of bind-mounted ({})",
                    copy.describe()
                )),
            ))
        }
        _ => {}
    }
    let sees = backend
        .engine_sees_path(image, &copy.project_dir)
        .await
        .map_err(|e| RunError::Environment(Box::new(EnvironmentFailure::engine(e))))?;
    match (sees, mode) {
        (true, _) => Ok((false, None)),
        (false, CopySource::Never) => Err(RunError::SourceNotVisible(not_visible(
            engine,
            &copy.project_dir,
            copy,
        ))),
        (false, _) => Ok((
            true,
            Some(format!(
                "engine {engine} cannot see {} (compose-shard runs where the engine's host does not have this folder): the project files are copied into the containers instead of bind-mounted ({})",
                copy.project_dir.display(),
                copy.describe()
            )),
        )),
    }
}

fn not_visible(engine: &str, dir: &Path, copy: &SourceCopy) -> String {
    format!(
        "engine {engine} cannot see {}: its bind mounts of the project tree ({}) would show the engine's host an empty or different folder, so the tests would not run on this checkout. This happens when compose-shard runs in a container (a CI runner in a container) or against a remote engine. Run with --copy-source (or without --copy-source never) to upload the project files into the containers instead, or run compose-shard where the engine sees the checkout at the same path.",
        dir.display(),
        copy.describe()
    )
}
