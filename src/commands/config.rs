//! `compose-shard config`: print the resolved project, or exactly what one group starts:
//! the test service's `depends_on` closure (plus `--with-service`s), isolated.
//!
//! Warnings go to stderr, the project to stdout: YAML (the serde form of
//! [`crate::compose::Project`], laid out like `docker compose config`) or JSON (the same
//! structure; the documented, stable format scripts read).

use std::collections::HashMap;
use std::path::Path;

use crate::compose::{self, Isolation, Project};
use crate::config::{ComposeOptions, ConfigCommand, OutputFormat};
use crate::errors::{Error, ExitCode};
use crate::pyproject::Settings;

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

/// Load the project and print the loader's warnings.
fn load(
    opts: &ComposeOptions,
    env: &HashMap<String, String>,
    cwd: &Path,
) -> Result<Project, Error> {
    let loaded = compose::load(opts, env, cwd)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(loaded.project)
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
    let mut opts = cfg.compose.clone();
    opts.enable_services.extend(cfg.service.iter().cloned());
    opts.enable_services
        .extend(cfg.with_services.iter().cloned());
    let mut project = load(&opts, env, cwd)?;
    let settings = Settings::load(&project.project_dir).map_err(|e| Error::Usage(e.to_string()))?;
    let with_services = if cfg.with_services.is_empty() {
        settings.with_services.clone()
    } else {
        cfg.with_services.clone()
    };
    let named: Vec<String> = settings
        .service
        .iter()
        .chain(&with_services)
        .cloned()
        .collect();
    if named.iter().any(|n| !opts.enable_services.contains(n)) {
        // pyproject.toml is found through the loaded project: load again so that the
        // services it names get their profiles enabled too.
        opts.enable_services.extend(named);
        project = compose::load(&opts, env, cwd)?.project;
    }
    let test_service = match compose::select_test_service(
        &project,
        cfg.service.as_deref(),
        settings.service.as_deref(),
    ) {
        Ok(s) => Some(s),
        // Printing a group's project is still useful without a test service.
        Err(e) if cfg.service.is_none() && settings.service.is_none() => {
            eprintln!("warning: {e}; printing every service of the project");
            None
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(test) = &test_service {
        let keep = compose::run_closure(&project, test, &with_services)?;
        project = compose::restrict(&project, &keep);
    }
    let iso = Isolation {
        run_id: cfg.run_id.clone(),
        group,
        groups,
        publish_ports: cfg.publish_ports,
        test_service,
    };
    Ok(compose::isolate(&project, &iso)?)
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
