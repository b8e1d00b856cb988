//! What a run starts, shared by `run`, `plan` and `config --group`: load the project with the
//! profiles of the services named on the command line or in pyproject.toml enabled (as
//! `docker compose run SERVICE` enables the target's), choose the test service, and cut the
//! project down to the test service's `depends_on` closure plus `--with-service`s.

use std::collections::HashMap;
use std::path::Path;

use crate::compose::{self, Project};
use crate::config::ComposeOptions;
use crate::errors::Error;
use crate::pyproject::Settings;

/// The project a run starts, before isolation.
pub struct Selection {
    /// The project restricted to what the test service needs (every service when there is
    /// no test service and none was required).
    pub project: Project,
    /// The test service.
    pub test_service: Option<String>,
    /// `[tool.compose-shard]` of the project.
    pub settings: Settings,
    /// The services started besides the test service's own closure (`--with-service`, else
    /// `with-services`).
    pub with_services: Vec<String>,
}

/// Load the project, printing the loader's warnings.
pub fn load(
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

/// Select what a run starts. `service` and `with_services` are the flags (the latter replaces
/// `with-services` of pyproject.toml when given). Without `require_test_service`, a project
/// whose test service cannot be told is returned whole, with a warning.
///
/// As `docker compose run SERVICE` does, only the services the run starts are checked for
/// the problems of single services (an `env_file` that cannot be read, a `${V:?}` failing
/// inside the service, no image): such a problem in another service is a warning naming
/// it. A project returned whole is checked whole.
pub fn select(
    compose_opts: &ComposeOptions,
    service: Option<&str>,
    with_services: &[String],
    require_test_service: bool,
    env: &HashMap<String, String>,
    cwd: &Path,
) -> Result<Selection, Error> {
    let mut opts = compose_opts.clone();
    opts.enable_services.extend(service.map(str::to_string));
    opts.enable_services.extend(with_services.iter().cloned());
    opts.defer_service_problems = true;
    let mut loaded = compose::load(&opts, env, cwd)?;
    let settings =
        Settings::load(&loaded.project.project_dir).map_err(|e| Error::Usage(e.to_string()))?;
    let with_services = if with_services.is_empty() {
        settings.with_services.clone()
    } else {
        with_services.to_vec()
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
        loaded = compose::load(&opts, env, cwd)?;
    }
    let test_service =
        match compose::select_test_service(&loaded.project, service, settings.service.as_deref()) {
            Ok(choice) => {
                if let Some(reason) = &choice.reason {
                    eprintln!(
                        "tests run in service {:?} ({reason}); --service NAME chooses another",
                        choice.name
                    );
                }
                Some(choice.name)
            }
            Err(e) if !require_test_service && service.is_none() && settings.service.is_none() => {
                eprintln!("warning: {e}; printing every service of the project");
                None
            }
            Err(e) => return Err(e.into()),
        };
    let keep = match &test_service {
        Some(test) => compose::run_closure(&loaded.project, test, &with_services)?,
        None => loaded.project.services.keys().cloned().collect(),
    };
    loaded.check_started(&keep)?;
    // A key the run would ignore in a service it does not start is not worth a word:
    // `docker compose run` says nothing about it either.
    for w in loaded
        .warnings
        .iter()
        .filter(|w| warned_service(w).map_or(true, |s| keep.contains(s)))
    {
        eprintln!("warning: {w}");
    }
    let mut project = loaded.project;
    if let Some(test) = &test_service {
        project = compose::restrict(&project, &keep);
        add_named_services_before_tests(&mut project, test, &with_services);
    }
    Ok(Selection {
        project,
        test_service,
        settings,
        with_services,
    })
}

/// Services added by name start before the tests like plain dependencies, unless they
/// depend on the test service themselves (that would be a cycle).
fn add_named_services_before_tests(project: &mut Project, test: &str, with_services: &[String]) {
    let before_tests: Vec<&String> = with_services
        .iter()
        .filter(|extra| {
            compose::run_closure(project, extra, &[])
                .map_or(true, |closure| !closure.contains(test))
        })
        .collect();
    if let Some(svc) = project.services.get_mut(test) {
        for extra in before_tests {
            svc.depends_on
                .entry(extra.clone())
                .or_insert(compose::Dependency {
                    condition: compose::DependencyCondition::ServiceStarted,
                    required: true,
                });
        }
    }
}

/// The service a loader warning is about (`service "web": ...`), if it is about one.
fn warned_service(warning: &str) -> Option<&str> {
    let rest = warning.strip_prefix("service \"")?;
    let end = rest.find("\":")?;
    Some(&rest[..end])
}

#[cfg(test)]
mod warning_tests {
    use super::warned_service;

    #[test]
    fn a_warning_names_its_service() {
        assert_eq!(
            warned_service(
                "service \"playwright\": `ipc` is not supported by compose-shard and is ignored"
            ),
            Some("playwright")
        );
        assert_eq!(warned_service("top-level key `x` is not supported"), None);
    }
}
