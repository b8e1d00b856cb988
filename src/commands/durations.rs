//! Where `run` and `plan` get recorded durations from, with the same rules for both.
//!
//! - `--durations FILE` (relative to the current directory, like every path on the command
//!   line) must exist;
//! - else `durations` from `[tool.compose-shard]`, else `.test_durations`, both relative to
//!   the project directory; either may be missing (a first run, which `--store-durations`
//!   will record), and then every test is estimated;
//! - `--durations-from-junit FILE...` is read on top: JUnit timings from earlier runs are
//!   newer than the durations file, so they win for the tests they contain.

use std::path::{Path, PathBuf};

use crate::config::SplitBy;
use crate::errors::Error;
use crate::plan::{Durations, PlanError};
use crate::pyproject::Settings;

/// pytest-split's default durations file name.
pub const DEFAULT_DURATIONS: &str = ".test_durations";

/// The durations file `run` and `plan` read (which may not exist).
pub fn durations_path(explicit: Option<&Path>, settings: &Settings, project_dir: &Path) -> PathBuf {
    match explicit {
        Some(path) => path.to_path_buf(),
        None => project_dir.join(
            settings
                .durations
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_DURATIONS)),
        ),
    }
}

/// Load the durations `run` and `plan` balance by.
pub fn load_durations(
    explicit: Option<&Path>,
    settings: &Settings,
    project_dir: &Path,
    from_junit: &[PathBuf],
) -> Result<Durations, Error> {
    let path = durations_path(explicit, settings, project_dir);
    let required = explicit.is_some();
    let mut durations = match std::fs::read_to_string(&path) {
        Ok(text) => Durations::parse(&text).map_err(|source| {
            Error::Plan(PlanError::Durations {
                file: path.display().to_string(),
                source,
            })
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Durations::default(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Usage(format!(
                "--durations {}: no such file; record one with `compose-shard run --store-durations FILE` (or pytest-split's `pytest --store-durations`), or leave out --durations to estimate every test",
                path.display()
            )))
        }
        Err(source) => {
            return Err(Error::Io {
                action: "read",
                path,
                source,
            })
        }
    };
    for junit in from_junit {
        durations.update(crate::report::junit_durations(junit)?, None);
    }
    Ok(durations)
}

/// `--split-by`, else `split-by` from pyproject.toml, else `class`.
pub fn split_by(flag: Option<SplitBy>, settings: &Settings) -> SplitBy {
    flag.or(settings.split_by).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_file_must_exist_default_may_be_missing() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::default();
        let missing = dir.path().join("nope.json");
        let err = load_durations(Some(&missing), &settings, dir.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
        assert!(load_durations(None, &settings, dir.path(), &[])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn settings_path_is_relative_to_the_project_and_junit_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.json"),
            r#"{"t.py::a": 1.0, "t.py::b": 2.0}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("j.xml"),
            r#"<testsuites><testsuite name="pytest" tests="1"><testcase classname="t" name="a" file="t.py" time="5.0"/></testsuite></testsuites>"#,
        )
        .unwrap();
        let settings = Settings {
            durations: Some(PathBuf::from("d.json")),
            ..Settings::default()
        };
        let d = load_durations(None, &settings, dir.path(), &[dir.path().join("j.xml")]).unwrap();
        assert_eq!(d.get("t.py::a"), Some(5.0));
        assert_eq!(d.get("t.py::b"), Some(2.0));
    }

    #[test]
    fn split_by_flag_beats_settings_beats_default() {
        let settings = Settings {
            split_by: Some(SplitBy::Module),
            ..Settings::default()
        };
        assert_eq!(split_by(Some(SplitBy::Test), &settings), SplitBy::Test);
        assert_eq!(split_by(None, &settings), SplitBy::Module);
        assert_eq!(split_by(None, &Settings::default()), SplitBy::Class);
    }
}
