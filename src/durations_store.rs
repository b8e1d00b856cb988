//! The durations store: where `run`, `plan` and `merge` read recorded durations from, and
//! the one place durations files are read, updated and written.
//!
//! Where `run` and `plan` read them, with the same rules for both:
//! - `--durations FILE` (relative to the current directory, like every path on the command
//!   line) must exist;
//! - else `durations` from `[tool.compose-shard]`, else `.test_durations`, both relative to
//!   the project directory; either may be missing (a first run, which `--store-durations`
//!   will record), and then every test is estimated;
//! - `--durations-from-junit FILE...` is read on top: JUnit timings from earlier runs are
//!   newer than the durations file, so they win for the tests they contain.
//!
//! Without `--durations` and with no file at the default place, `run` reads the durations it
//! remembered from the last run of the same project and test service ([`remembered`]):
//! every run that is not told where to store them keeps them in the user's cache, so a
//! second run is balanced and `--groups auto` knows the suite without any setup.
//!
//! `run --store-durations` and `merge --store-durations` update a file with [`write_update`]
//! or [`stage_update`]: a regular file is replaced atomically, a device, pipe or symlink is
//! written through (see `report::StagedFile`). Errors name the file. The format itself
//! (pytest-split's JSON) is `plan::Durations`, which stays pure; this module does the I/O
//! for the commands, so that `plan` needs none.

use std::path::{Path, PathBuf};

use crate::config::resolve::{durations_file, DurationsFile};
use crate::errors::Error;
use crate::plan::{Durations, PlanError, Pruning};
use crate::pyproject::Settings;
use crate::report::StagedFile;

/// The environment variable that moves the cache of remembered durations (an empty value
/// turns remembering off).
pub const CACHE_DIR_ENV: &str = "COMPOSE_SHARD_CACHE_DIR";

/// compose-shard's cache folder (remembered durations, snapshots of ready services):
/// `$COMPOSE_SHARD_CACHE_DIR`, else `$XDG_CACHE_HOME/compose-shard`, else
/// `~/.cache/compose-shard`; `None` when the cache is off (an empty
/// `$COMPOSE_SHARD_CACHE_DIR`) or there is no home.
pub fn cache_root(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    match env(CACHE_DIR_ENV) {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => Some(match env("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir).join("compose-shard"),
            None => PathBuf::from(env("HOME").filter(|d| !d.is_empty())?)
                .join(".cache")
                .join("compose-shard"),
        }),
    }
}

/// The file where runs of the project in `project_dir` with `test_service` remember their
/// durations: `$COMPOSE_SHARD_CACHE_DIR`, else `$XDG_CACHE_HOME/compose-shard`, else
/// `~/.cache/compose-shard`, then `projects/<key>/.test_durations` (the key hashes the
/// project directory and the service). `None` when remembering is off or there is no home.
pub fn remembered(
    project_dir: &Path,
    test_service: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    use sha2::Digest;
    let root = cache_root(env)?;
    let dir = std::fs::canonicalize(project_dir).unwrap_or_else(|_| project_dir.to_path_buf());
    let mut hash = sha2::Sha256::new();
    hash.update(dir.to_string_lossy().as_bytes());
    hash.update([0]);
    hash.update(test_service.as_bytes());
    let key = hex::encode(&hash.finalize()[..8]);
    Some(
        root.join("projects")
            .join(key)
            .join(crate::config::resolve::DEFAULT_DURATIONS),
    )
}

/// The text of the durations file at `path`, `None` when there is none.
fn read_text(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Parse the text of the durations file at `path`; the error names the file.
fn parse(path: &Path, text: &str) -> Result<Durations, Error> {
    Durations::parse(text).map_err(|source| {
        Error::Plan(PlanError::Durations {
            file: path.display().to_string(),
            source,
        })
    })
}

/// The durations file at `path`; a missing file holds no durations (a first run).
pub fn read_file(path: &Path) -> Result<Durations, Error> {
    parse(path, &read_text(path)?.unwrap_or_default())
}

/// The durations file at `path` (missing: empty) updated with `measured` (see
/// [`Durations::update`]), staged beside it: [`StagedFile::commit`] replaces the file, so a
/// command can replace it together with its other outputs.
pub fn stage_update(
    path: &Path,
    measured: impl IntoIterator<Item = (String, f64)>,
    pruning: Option<&Pruning>,
) -> Result<StagedFile, Error> {
    let mut durations = read_file(path)?;
    durations.update(measured, pruning);
    let mut file = StagedFile::create(path)?;
    file.writer()
        .write_all(durations.to_json().as_bytes())
        .map_err(|source| Error::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })?;
    Ok(file)
}

/// Update the durations file at `path` with `measured` and replace it (see [`stage_update`]).
pub fn write_update(
    path: &Path,
    measured: impl IntoIterator<Item = (String, f64)>,
    pruning: Option<&Pruning>,
) -> Result<(), Error> {
    stage_update(path, measured, pruning)?.commit()?;
    Ok(())
}

/// Load the durations `run` and `plan` balance by, from the file `--durations` names, else
/// the one the settings name (see `config::resolve::durations_file`).
pub fn load_durations(
    explicit: Option<&Path>,
    settings: &Settings,
    project_dir: &Path,
    from_junit: &[PathBuf],
) -> Result<Durations, Error> {
    load(&durations_file(explicit, settings, project_dir), from_junit)
}

/// Load the durations `run` and `plan` balance by: `file`, then `from_junit` on top.
pub fn load(file: &DurationsFile, from_junit: &[PathBuf]) -> Result<Durations, Error> {
    let path = &file.path;
    let mut durations = match read_text(path)? {
        Some(text) => parse(path, &text)?,
        None if file.explicit => {
            return Err(Error::Usage(format!(
                "--durations {}: no such file; record one with `compose-shard run --store-durations FILE` (or pytest-split's `pytest --store-durations`), or leave out --durations to estimate every test",
                path.display()
            )))
        }
        None => Durations::default(),
    };
    for junit in from_junit {
        durations.update(crate::report::junit_durations(junit)?, None);
    }
    Ok(durations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_durations_are_per_project_and_service_and_can_be_moved_or_turned_off() {
        let vars = |cache: Option<&'static str>| {
            move |name: &str| match name {
                "HOME" => Some("/home/u".to_string()),
                CACHE_DIR_ENV => cache.map(str::to_string),
                _ => None,
            }
        };
        let home = remembered(Path::new("/p/a"), "tests", &vars(None)).unwrap();
        assert!(
            home.starts_with("/home/u/.cache/compose-shard/projects/"),
            "{home:?}"
        );
        assert!(home.ends_with(".test_durations"));
        assert_eq!(
            home,
            remembered(Path::new("/p/a"), "tests", &vars(None)).unwrap()
        );
        assert_ne!(
            home,
            remembered(Path::new("/p/b"), "tests", &vars(None)).unwrap()
        );
        assert_ne!(
            home,
            remembered(Path::new("/p/a"), "app", &vars(None)).unwrap()
        );
        let moved = remembered(Path::new("/p/a"), "tests", &vars(Some("/c"))).unwrap();
        assert!(moved.starts_with("/c/projects/"), "{moved:?}");
        assert_eq!(
            remembered(Path::new("/p/a"), "tests", &vars(Some(""))),
            None
        );
        let xdg = |name: &str| (name == "XDG_CACHE_HOME").then(|| "/x".to_string());
        let at = remembered(Path::new("/p/a"), "tests", &xdg).unwrap();
        assert!(at.starts_with("/x/compose-shard/projects/"), "{at:?}");
    }

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
    fn a_missing_file_is_empty_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        assert!(read_file(&path).unwrap().is_empty());
        std::fs::write(&path, "{\"t.py::a\": \"slow\"}").unwrap();
        let err = read_file(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!("durations file {}: line 1", path.display())),
            "{err}"
        );
        std::fs::create_dir(dir.path().join("folder")).unwrap();
        let err = read_file(&dir.path().join("folder"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("failed to read "), "{err}");
    }

    #[test]
    fn update_keeps_unmeasured_drops_removed_and_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".test_durations");
        std::fs::write(
            &path,
            r#"{"t.py::a": 1.0, "t.py::b": 2.0, "t.py::gone": 3.0}"#,
        )
        .unwrap();
        let still: std::collections::HashSet<String> =
            ["t.py::a", "t.py::b", "t.py::c"].map(String::from).into();
        write_update(
            &path,
            [("t.py::a".to_string(), 1.5), ("t.py::c".to_string(), 0.25)],
            Some(&Pruning::whole(still)),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n    \"t.py::a\": 1.5,\n    \"t.py::b\": 2.0,\n    \"t.py::c\": 0.25\n}"
        );
        // Replaced by a rename: no temporary file is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_symlinked_file_is_written_through_and_a_staged_update_waits_for_commit() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("shared.json");
        std::fs::write(&real, r#"{"t.py::a": 1.0}"#).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let staged = stage_update(&link, [("t.py::b".to_string(), 2.0)], None).unwrap();
        assert_eq!(
            std::fs::read_to_string(&real).unwrap(),
            r#"{"t.py::a": 1.0}"#
        );
        staged.commit().unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(read_file(&real).unwrap().get("t.py::b"), Some(2.0));
        assert_eq!(read_file(&real).unwrap().get("t.py::a"), Some(1.0));
    }
}
