//! `compose-shard config`: print the resolved project, or exactly what one group starts:
//! the test service's `depends_on` closure (plus `--with-service`s), isolated.
//!
//! Warnings go to stderr, the project to stdout: YAML (the serde form of
//! [`crate::compose::Project`], laid out like `docker compose config`) or JSON (the same
//! structure; the documented, stable format scripts read).

use std::collections::HashMap;
use std::path::Path;

use crate::compose::{self, Isolation, Project};
use crate::config::{ConfigCommand, OutputFormat};
use crate::errors::{Error, ExitCode};
use crate::selection::{load, select};

/// Execute `compose-shard config`.
pub fn execute(cfg: ConfigCommand) -> Result<ExitCode, Error> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir().map_err(|source| Error::Io {
        action: "read the current directory",
        path: ".".into(),
        source,
    })?;
    let project = match cfg.group {
        None => load(&cfg.compose, &env, &cwd)?,
        Some(group) => group_project(&cfg, group, &env, &cwd)?,
    };
    print!("{}", render(&project, cfg.format)?);
    Ok(ExitCode::Success)
}

/// What group `group` of `groups` starts: the test service's `depends_on` closure plus the
/// `--with-service`s (else `with-services` of pyproject.toml), restricted and isolated.
/// Naming a service whose profiles are inactive enables them, as `docker compose run` does.
fn group_project(
    cfg: &ConfigCommand,
    (group, groups): (usize, usize),
    env: &HashMap<String, String>,
    cwd: &Path,
) -> Result<Project, Error> {
    let selection = select(
        &cfg.compose,
        cfg.service.as_deref(),
        &cfg.with_services,
        false,
        env,
        cwd,
    )?;
    let iso = Isolation {
        run_id: cfg.run_id.clone(),
        group,
        groups,
        publish_ports: cfg.publish_ports,
        test_service: selection.test_service,
    };
    Ok(compose::isolate(&selection.project, &iso)?)
}

/// The project as printed by `config`.
pub fn render(project: &Project, format: OutputFormat) -> Result<String, Error> {
    match format {
        OutputFormat::Yaml => serde_yaml::to_string(project)
            .map_err(|e| Error::Usage(format!("failed to render the project as YAML: {e}"))),
        OutputFormat::Json => serde_json::to_string_pretty(project)
            .map(|s| s + "\n")
            .map_err(|e| Error::Usage(format!("failed to render the project as JSON: {e}"))),
    }
}
