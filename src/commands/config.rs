//! `compose-shard config`: print the resolved project, or one group's isolated project.
//!
//! Warnings go to stderr, the project to stdout: YAML (the serde form of
//! [`crate::compose::Project`], laid out like `docker compose config`) or JSON (the same
//! structure; the documented, stable format scripts read).

use std::collections::HashMap;

use crate::compose::{self, Isolation, Project};
use crate::config::{ConfigCommand, OutputFormat};
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
    let loaded = compose::load(&cfg.compose, &env, &cwd)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let project = match cfg.group {
        None => loaded.project,
        Some((group, groups)) => {
            let settings = Settings::load(&loaded.project.project_dir)
                .map_err(|e| Error::Usage(e.to_string()))?;
            let test_service = match compose::select_test_service(
                &loaded.project,
                cfg.service.as_deref(),
                settings.service.as_deref(),
            ) {
                Ok(s) => Some(s),
                // Printing a group's project is still useful without a test service.
                Err(e) if cfg.service.is_none() && settings.service.is_none() => {
                    eprintln!("warning: {e}");
                    None
                }
                Err(e) => return Err(e.into()),
            };
            let iso = Isolation {
                run_id: cfg.run_id.clone(),
                group,
                groups,
                publish_ports: cfg.publish_ports,
                test_service,
            };
            compose::isolate(&loaded.project, &iso)?
        }
    };
    print!("{}", render(&project, cfg.format)?);
    Ok(ExitCode::Success)
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
