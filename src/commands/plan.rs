//! `compose-shard plan`: read the test list and durations, split, print the plan.
//!
//! The durations file is `--durations FILE` when given (it must exist), else `durations` from
//! `[tool.compose-shard]` in ./pyproject.toml, else `./.test_durations`; a missing default
//! file only means every test is estimated.

use std::path::{Path, PathBuf};

use crate::config::{PlanConfig, PlanFormat};
use crate::errors::{Error, ExitCode};
use crate::plan::{self, Durations, PlanError};
use crate::pyproject::Settings;

/// The durations file pytest-split writes by default.
const DEFAULT_DURATIONS: &str = ".test_durations";

/// Execute `compose-shard plan`.
pub fn execute(cfg: PlanConfig) -> Result<ExitCode, Error> {
    if !cfg.durations_from_junit.is_empty() {
        return Err(Error::Usage(
            "--durations-from-junit is not supported by `plan` in this version; convert the JUnit files with `compose-shard merge --store-durations FILE` and pass --durations FILE".into(),
        ));
    }
    let Some(tests_file) = &cfg.tests_file else {
        return Err(Error::Usage(
            "collecting the tests in Docker is not available in `plan` yet; run `pytest --collect-only -q > tests.txt` and pass --tests tests.txt".into(),
        ));
    };
    let tests = read_tests(tests_file)?;
    let durations = load_durations(cfg.durations.as_deref(), Path::new("."))?;
    let plan = plan::split(&tests, &durations, cfg.groups, cfg.split_by)?;
    let output = match cfg.format {
        PlanFormat::Text => plan::render_text(&plan),
        PlanFormat::Json => plan.to_json(),
        PlanFormat::GithubMatrix => plan::render_github_matrix(&plan),
    };
    print!("{output}");
    Ok(ExitCode::Success)
}

fn read_tests(path: &Path) -> Result<Vec<String>, Error> {
    let text = read(path)?;
    plan::parse_collect_output(&text).map_err(|source| {
        Error::Plan(PlanError::TestList {
            file: path.display().to_string(),
            source,
        })
    })
}

/// Load the durations named on the command line, or the project's default file if present.
fn load_durations(explicit: Option<&Path>, project_dir: &Path) -> Result<Durations, Error> {
    let path = match explicit {
        Some(path) if !path.exists() => {
            return Err(Error::Usage(format!(
                "--durations {}: no such file; record one with `pytest --store-durations` (pytest-split) or `compose-shard run --store-durations FILE`, or leave out --durations to estimate every test",
                path.display()
            )))
        }
        Some(path) => path.to_path_buf(),
        None => {
            let settings = Settings::load(project_dir).map_err(|e| Error::Usage(e.to_string()))?;
            let path: PathBuf = project_dir.join(
                settings
                    .durations
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DURATIONS)),
            );
            if !path.exists() {
                return Ok(Durations::default());
            }
            path
        }
    };
    let text = read(&path)?;
    Durations::parse(&text).map_err(|source| {
        Error::Plan(PlanError::Durations {
            file: path.display().to_string(),
            source,
        })
    })
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}
