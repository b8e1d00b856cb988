//! Finding the compose files (`-f`, `COMPOSE_FILE`, default names in the directory or its
//! parents, the automatic override file) and reading the project's `.env`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::dotenv::parse_env_file;
use super::error::ComposeError;
use super::volumes::clean_path;
use crate::config::ComposeOptions;

pub(crate) const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
pub(crate) const OVERRIDE_FILES: &[&str] = &[
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// Read `explicit` (an error if missing) or `<dir>/.env` (nothing if missing or a folder).
pub(crate) fn read_dotenv(
    explicit: Option<PathBuf>,
    dir: &Path,
    env: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<HashMap<String, String>, ComposeError> {
    let path = explicit.clone().unwrap_or_else(|| dir.join(".env"));
    let lookup = |k: &str| env.get(k).cloned();
    read_env_file(&path, explicit.is_some(), &lookup, warnings).map(Option::unwrap_or_default)
}

/// The variables a `.env`-style file sets (`KEY` without a value is left out), or `None`
/// when an optional file is missing. Compose reads an optional file only when it is a file:
/// projects keep a `.env/` folder of per-environment files (`.env/.dev`), which is not an
/// error.
pub(crate) fn read_env_file(
    path: &Path,
    required: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<HashMap<String, String>>, ComposeError> {
    if !required && path.is_dir() {
        return Ok(None);
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(source) => {
            return Err(ComposeError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let entries = parse_env_file(&text, lookup, warnings).map_err(|(line, message)| {
        ComposeError::Invalid {
            file: path.to_path_buf(),
            line,
            column: 0,
            message,
        }
    })?;
    Ok(Some(
        entries
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect(),
    ))
}

/// The compose files to merge, in order.
pub(crate) fn find_files(
    opts: &ComposeOptions,
    cwd: &Path,
    compose_file: Option<String>,
    separator: Option<String>,
) -> Result<Vec<PathBuf>, ComposeError> {
    if !opts.files.is_empty() {
        return Ok(opts
            .files
            .iter()
            .map(|f| clean_path(&cwd.join(f)))
            .collect());
    }
    if let Some(list) = compose_file {
        let sep = separator.unwrap_or_else(|| ":".to_string());
        return Ok(list
            .split(sep.as_str())
            .filter(|s| !s.is_empty())
            .map(|f| clean_path(&cwd.join(f)))
            .collect());
    }
    let start = opts
        .project_directory
        .as_ref()
        .map(|d| cwd.join(d))
        .unwrap_or_else(|| cwd.to_path_buf());
    // Like Compose, look in the directory and then its parents.
    for dir in start.ancestors() {
        if let Some(main) = DEFAULT_FILES
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
        {
            let mut files = vec![main];
            if let Some(o) = OVERRIDE_FILES
                .iter()
                .map(|f| dir.join(f))
                .find(|p| p.is_file())
            {
                files.push(o);
            }
            return Ok(files);
        }
    }
    Err(ComposeError::NoFile { dir: start })
}

#[cfg(test)]
mod dotenv_tests {
    use super::*;

    /// A project keeping per-environment files in a `.env/` folder (testdrivenio's
    /// django-celery-project does): Compose ignores the folder, so must we.
    #[test]
    fn a_dotenv_folder_is_ignored_like_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".env")).unwrap();
        std::fs::write(dir.path().join(".env/.dev-sample"), "A=1\n").unwrap();
        let read = read_dotenv(None, dir.path(), &HashMap::new(), &mut Vec::new()).unwrap();
        assert!(read.is_empty());
        let explicit = read_dotenv(
            Some(dir.path().join(".env")),
            dir.path(),
            &HashMap::new(),
            &mut Vec::new(),
        );
        assert!(explicit.is_err(), "--env-file naming a folder is an error");
    }
}
