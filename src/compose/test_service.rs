//! Which service the tests run in when neither `--service` nor `[tool.compose-shard] service`
//! says: the service a user would name in `docker compose run SERVICE pytest`.
//!
//! Compose files of real projects have several buildable services (a web app, its celery
//! worker, a JavaScript client that depends on the API...). The choice ranks the candidates
//! (services with `build:`, services that run an image another service builds, services
//! named for tests that mount Python code) by, in order:
//! 1. what the service's source folders hold (its build context and the project folders
//!    bind-mounted into it): pytest configuration (`pytest.ini`, `conftest.py`, a
//!    `[tool:pytest]`/`[tool.pytest...]` section) beats other Python project files
//!    (`requirements*.txt`, `setup.py`, `pyproject.toml`, `manage.py`...), which beat none;
//! 2. a name meant for tests (`test`, `tests`, `pytest`, `app-tests`, `test_runner`...) or a
//!    command that runs tests (`pytest`, `py.test`, `tox`, `manage.py test`, `run-tests.sh`);
//! 3. nothing depending on it (a client that depends on the API is not where tests run);
//! 4. the checkout bind-mounted into it (of a `test` and a `test-image` service running the
//!    same image, the one that sees the current code).
//!
//! A service named for tests counts only when it has code to test (a build, the image
//! another service builds, or a Python folder bind-mounted): `test-db: {image: postgres}`
//! is a database.
//!
//! A unique best candidate is chosen and the reason is reported; a tie is an error that lists
//! the tied services and asks for `--service`.

use std::path::{Path, PathBuf};

use super::error::ComposeError;
use super::model::{MountKind, Project, Service};
use super::warnings::name_list;

/// What a folder shows about the code in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SourceEvidence {
    /// Nothing Python.
    None,
    /// A Python project (`requirements*.txt`, `setup.py`, `pyproject.toml`, `manage.py`...).
    Python,
    /// pytest is configured there (`pytest.ini`, `conftest.py`, a pytest section).
    Pytest,
}

/// The chosen test service and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestServiceChoice {
    /// The service.
    pub name: String,
    /// Why (for the run's output); `None` when a flag or pyproject.toml named it.
    pub reason: Option<String>,
}

/// `--service` flag, else `[tool.compose-shard] service` (passed in as `configured`), else the
/// best-ranked candidate (see the module docs), reading the candidates' folders from disk.
pub fn select_test_service(
    project: &Project,
    flag: Option<&str>,
    configured: Option<&str>,
) -> Result<TestServiceChoice, ComposeError> {
    choose_test_service(project, flag, configured, &folder_evidence)
}

/// [`select_test_service`] with the folder probe given (tests pass a fake one).
pub fn choose_test_service(
    project: &Project,
    flag: Option<&str>,
    configured: Option<&str>,
    evidence_of: &dyn Fn(&Path) -> SourceEvidence,
) -> Result<TestServiceChoice, ComposeError> {
    let all: Vec<&str> = project.services.keys().map(String::as_str).collect();
    if let Some((name, origin)) = flag
        .map(|f| (f, "--service"))
        .or_else(|| configured.map(|c| (c, "[tool.compose-shard] service")))
    {
        return if project.services.contains_key(name) {
            Ok(TestServiceChoice {
                name: name.to_string(),
                reason: None,
            })
        } else {
            Err(ComposeError::TestService(format!(
                "{origin} names {name:?}, which is not a service of project {:?} (services: {})",
                project.name,
                name_list(&all)
            )))
        };
    }
    let ranked: Vec<Candidate> = project
        .services
        .values()
        .filter(|s| is_candidate(project, s, evidence_of))
        .map(|s| Candidate::of(project, s, evidence_of))
        .collect();
    let Some(best) = ranked.iter().map(Candidate::rank).max() else {
        return Err(ComposeError::TestService(format!(
            "cannot tell which service runs the tests: no service has `build:`, runs an image another service builds, or is named for tests; pass --service NAME or set `service` in [tool.compose-shard] of pyproject.toml (services: {})",
            name_list(&all)
        )));
    };
    let top: Vec<&Candidate> = ranked.iter().filter(|c| c.rank() == best).collect();
    match top.as_slice() {
        [one] => Ok(TestServiceChoice {
            name: one.name.to_string(),
            reason: Some(one.reason(ranked.len())),
        }),
        many => {
            let names: Vec<&str> = many.iter().map(|c| c.name).collect();
            Err(ComposeError::TestService(format!(
                "cannot tell which service runs the tests: {} are equally likely (each: {}); pass --service NAME (as in `docker compose run NAME pytest`) or set `service` in [tool.compose-shard] of pyproject.toml",
                name_list(&names),
                many[0].signals()
            )))
        }
    }
}

fn is_candidate(
    project: &Project,
    service: &Service,
    evidence_of: &dyn Fn(&Path) -> SourceEvidence,
) -> bool {
    service.build.is_some()
        || runs_built_image(project, service)
        || (named_for_tests(&service.name)
            && source_folders(project, service)
                .iter()
                .any(|dir| evidence_of(dir) > SourceEvidence::None))
}

/// A service with no `build:` that runs the image another service builds (a `test` service
/// beside the `web` service that builds `org/app:latest`).
fn runs_built_image(project: &Project, service: &Service) -> bool {
    let Some(image) = &service.image else {
        return false;
    };
    project
        .services
        .values()
        .any(|s| s.name != service.name && s.build.is_some() && s.image.as_ref() == Some(image))
}

/// `test`, `tests`, `pytest`, or a name with `test`/`tests` as a `-`/`_`/`.`-separated word.
pub fn named_for_tests(name: &str) -> bool {
    name.to_ascii_lowercase()
        .split(['-', '_', '.'])
        .any(|word| matches!(word, "test" | "tests" | "pytest" | "testing"))
}

/// Whether a service's command (or entrypoint) runs tests.
fn command_runs_tests(service: &Service) -> bool {
    let words: Vec<&str> = service
        .command
        .iter()
        .chain(&service.entrypoint)
        .flatten()
        .flat_map(|arg| arg.split([' ', '/', ';', '&', '|', '\'', '"']))
        .filter(|w| !w.is_empty())
        .collect();
    let runner = |w: &str| {
        matches!(w, "pytest" | "py.test" | "tox" | "nox")
            || (w.contains("test") && w.ends_with(".sh"))
    };
    words.iter().any(|w| runner(w))
        || words
            .windows(2)
            .any(|pair| pair[0] == "manage.py" && pair[1] == "test")
}

struct Candidate<'a> {
    name: &'a str,
    named_for_tests: bool,
    evidence: SourceEvidence,
    depended_on: bool,
    mounts_checkout: bool,
}

impl<'a> Candidate<'a> {
    fn of(
        project: &Project,
        service: &'a Service,
        evidence_of: &dyn Fn(&Path) -> SourceEvidence,
    ) -> Self {
        let evidence = source_folders(project, service)
            .iter()
            .map(|dir| evidence_of(dir))
            .max()
            .unwrap_or(SourceEvidence::None);
        let mounts_checkout = service.volumes.iter().any(|m| {
            m.kind == MountKind::Bind
                && m.source
                    .as_deref()
                    .is_some_and(|s| Path::new(s).starts_with(&project.project_dir))
        });
        Candidate {
            name: &service.name,
            named_for_tests: named_for_tests(&service.name) || command_runs_tests(service),
            mounts_checkout,
            evidence,
            depended_on: project
                .services
                .values()
                .any(|s| s.depends_on.contains_key(&service.name)),
        }
    }

    fn rank(&self) -> (SourceEvidence, bool, bool, bool) {
        (
            self.evidence,
            self.named_for_tests,
            !self.depended_on,
            self.mounts_checkout,
        )
    }

    fn reason(&self, candidates: usize) -> String {
        if candidates == 1 {
            return "the only service that builds or runs the project's code".to_string();
        }
        format!(
            "the likeliest of {candidates} services with code: {}",
            self.signals()
        )
    }

    /// What speaks for this candidate.
    fn signals(&self) -> String {
        let mut parts = vec![match self.evidence {
            SourceEvidence::Pytest => "its source folder has pytest configuration",
            SourceEvidence::Python => "its source folder holds a Python project",
            SourceEvidence::None => "no Python project found in its source folders",
        }
        .to_string()];
        if self.named_for_tests {
            parts.push("its name or command says tests".to_string());
        }
        if !self.depended_on {
            parts.push("no service depends on it".to_string());
        }
        if self.mounts_checkout {
            parts.push("the checkout is mounted into it".to_string());
        }
        parts.join(", ")
    }
}

/// The folders of this machine a service's code comes from: its build context and the
/// directories inside the project folder bind-mounted into it.
fn source_folders(project: &Project, service: &Service) -> Vec<PathBuf> {
    let built_by = service.build.as_ref().or_else(|| {
        let image = service.image.as_ref()?;
        project
            .services
            .values()
            .find(|s| s.build.is_some() && s.image.as_ref() == Some(image))
            .and_then(|s| s.build.as_ref())
    });
    let mut folders: Vec<PathBuf> = built_by.map(|b| b.context.clone()).into_iter().collect();
    folders.extend(
        service
            .volumes
            .iter()
            .filter(|m| m.kind == MountKind::Bind)
            .filter_map(|m| m.source.as_deref().map(PathBuf::from))
            .filter(|p| p.starts_with(&project.project_dir)),
    );
    folders
}

/// What `dir` shows at its top level (and in a `tests`/`test` folder for `conftest.py`).
pub fn folder_evidence(dir: &Path) -> SourceEvidence {
    let has = |name: &str| dir.join(name).is_file();
    let mentions = |name: &str, needles: &[&str]| {
        std::fs::read_to_string(dir.join(name))
            .map(|text| needles.iter().any(|n| text.contains(n)))
            .unwrap_or(false)
    };
    let pytest = has("pytest.ini")
        || has("conftest.py")
        || dir.join("tests/conftest.py").is_file()
        || dir.join("test/conftest.py").is_file()
        || mentions("pyproject.toml", &["[tool.pytest"])
        || mentions("setup.cfg", &["[tool:pytest]"])
        || mentions("tox.ini", &["[pytest]", "[tool:pytest]"]);
    if pytest {
        return SourceEvidence::Pytest;
    }
    let python_files = [
        "setup.py",
        "pyproject.toml",
        "setup.cfg",
        "manage.py",
        "Pipfile",
        "poetry.lock",
        "uv.lock",
    ];
    let requirements = std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("requirements") && name.ends_with(".txt")
            })
        })
        .unwrap_or(false);
    if requirements || python_files.iter().any(|f| has(f)) || dir.join("requirements").is_dir() {
        SourceEvidence::Python
    } else {
        SourceEvidence::None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::compose::load_from_str;
    use crate::config::ComposeOptions;

    fn load(yaml: &str) -> Project {
        load_from_str(
            &[("compose.yaml", yaml)],
            Path::new("/p"),
            &HashMap::new(),
            &ComposeOptions::default(),
        )
        .unwrap()
        .project
    }

    /// Folders named `py*` hold pytest configuration, `lib*` a Python project, others nothing.
    fn fake(dir: &Path) -> SourceEvidence {
        let name = dir.file_name().unwrap().to_string_lossy();
        if name.starts_with("py") {
            SourceEvidence::Pytest
        } else if name.starts_with("lib") {
            SourceEvidence::Python
        } else {
            SourceEvidence::None
        }
    }

    fn choose(yaml: &str) -> Result<TestServiceChoice, ComposeError> {
        choose_test_service(&load(yaml), None, None, &fake)
    }

    #[test]
    fn a_javascript_client_depending_on_the_api_is_not_the_test_service() {
        let yaml = r#"
services:
  server: {build: ./pyserver, depends_on: [db]}
  client: {build: ./client, depends_on: [server]}
  db: {image: postgres}
"#;
        let choice = choose(yaml).unwrap();
        assert_eq!(choice.name, "server");
        let reason = choice.reason.unwrap();
        assert!(reason.contains("pytest configuration"), "{reason}");
    }

    #[test]
    fn a_service_named_for_tests_that_runs_the_built_image_wins() {
        let yaml = r#"
services:
  web: {build: ./pyapp, image: "org/app:latest", depends_on: [db]}
  test: {image: "org/app:latest", depends_on: [db]}
  db: {image: postgres}
"#;
        assert_eq!(choose(yaml).unwrap().name, "test");
    }

    #[test]
    fn of_two_test_services_on_one_image_the_one_that_mounts_the_checkout_wins() {
        let yaml = r#"
services:
  web: {build: ./pyapp, image: "org/app:latest", command: ./bin/run-dev.sh, volumes: [".:/app"]}
  test: {image: "org/app:latest", command: ./bin/run-tests.sh, volumes: [".:/app"]}
  test-image: {image: "org/app:latest", command: ./bin/run-tests.sh}
  worker: {image: "org/app:latest", command: ./bin/run-worker.sh, volumes: [".:/app"]}
"#;
        let chosen = choose(yaml).unwrap();
        assert_eq!(chosen.name, "test");
        assert!(chosen.reason.unwrap().contains("checkout is mounted"));
    }

    #[test]
    fn a_command_that_runs_tests_marks_the_service() {
        let yaml = r#"
services:
  web: {build: ./libapp, command: "gunicorn app:app"}
  ci: {build: ./libapp, command: "sh -c 'python manage.py test --noinput'"}
"#;
        assert_eq!(choose(yaml).unwrap().name, "ci");
        let yaml = r#"
services:
  web: {build: ./libapp, command: "gunicorn app:app"}
  check: {build: ./libapp, command: ["python", "-m", "pytest", "-q"]}
"#;
        assert_eq!(choose(yaml).unwrap().name, "check");
    }

    #[test]
    fn a_database_named_for_tests_is_not_a_candidate() {
        let yaml = r#"
services:
  app: {build: ./pyapp, depends_on: [test-db]}
  test-db: {image: postgres, volumes: ["./init:/docker-entrypoint-initdb.d"]}
"#;
        assert_eq!(choose(yaml).unwrap().name, "app");
    }

    #[test]
    fn a_javascript_test_runner_loses_to_the_python_service() {
        let yaml = r#"
services:
  web: {build: ./pyweb}
  e2e-tests: {build: ./e2e, depends_on: [web]}
"#;
        assert_eq!(choose(yaml).unwrap().name, "web");
    }

    #[test]
    fn bind_mounted_project_folders_count_as_the_service_source() {
        let yaml = r#"
services:
  app: {build: ./docker/app, volumes: ["./pysrc:/code"]}
  worker: {build: ./docker/worker}
"#;
        assert_eq!(choose(yaml).unwrap().name, "app");
    }

    #[test]
    fn services_sharing_one_build_are_a_tie_that_names_them() {
        let yaml = r#"
services:
  web: {build: ./libapp}
  worker: {build: ./libapp}
  redis: {image: redis}
"#;
        let err = choose(yaml).unwrap_err().to_string();
        assert!(err.contains("web") && err.contains("worker"), "{err}");
        assert!(err.contains("--service"), "{err}");
        assert!(!err.contains("redis"), "{err}");
    }

    #[test]
    fn nothing_depending_on_it_breaks_an_evidence_tie() {
        let yaml = r#"
services:
  api: {build: ./libapi, depends_on: [auth]}
  auth: {build: ./libauth}
"#;
        assert_eq!(choose(yaml).unwrap().name, "api");
    }

    #[test]
    fn no_candidate_is_an_error_and_a_flag_always_wins() {
        let yaml = "services:\n  db: {image: postgres}\n  cache: {image: redis}\n";
        let err = choose(yaml).unwrap_err().to_string();
        assert!(err.contains("pass --service"), "{err}");
        let project = load(yaml);
        let chosen = choose_test_service(&project, Some("cache"), None, &fake).unwrap();
        assert_eq!(chosen.name, "cache");
        assert!(chosen.reason.is_none());
        let err = choose_test_service(&project, None, Some("nope"), &fake).unwrap_err();
        assert!(
            err.to_string().contains("[tool.compose-shard] service"),
            "{err}"
        );
    }

    #[test]
    fn names_meant_for_tests() {
        for yes in [
            "test",
            "tests",
            "app-tests",
            "test_runner",
            "Pytest",
            "api.test",
        ] {
            assert!(named_for_tests(yes), "{yes}");
        }
        for no in ["web", "latest", "contest", "testdriven", "attest-api"] {
            assert!(!named_for_tests(no), "{no}");
        }
    }

    #[test]
    fn folder_evidence_reads_the_files_a_python_project_has() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(folder_evidence(dir.path()), SourceEvidence::None);
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        assert_eq!(folder_evidence(dir.path()), SourceEvidence::None);
        std::fs::write(dir.path().join("requirements-dev.txt"), "pytest\n").unwrap();
        assert_eq!(folder_evidence(dir.path()), SourceEvidence::Python);
        std::fs::write(dir.path().join("pyproject.toml"), "[project]\nname='x'\n").unwrap();
        assert_eq!(folder_evidence(dir.path()), SourceEvidence::Python);
        std::fs::write(
            dir.path().join("pyproject.toml"),
            "[tool.pytest.ini_options]\naddopts='-q'\n",
        )
        .unwrap();
        assert_eq!(folder_evidence(dir.path()), SourceEvidence::Pytest);
        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir(other.path().join("tests")).unwrap();
        std::fs::write(other.path().join("tests/conftest.py"), "").unwrap();
        assert_eq!(folder_evidence(other.path()), SourceEvidence::Pytest);
        assert_eq!(
            folder_evidence(Path::new("/nonexistent/compose-shard")),
            SourceEvidence::None
        );
    }
}
