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

/// Read `explicit` (an error if missing) or `<dir>/.env` (nothing if missing).
pub(crate) fn read_dotenv(
    explicit: Option<PathBuf>,
    dir: &Path,
    env: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<HashMap<String, String>, ComposeError> {
    let path = explicit.clone().unwrap_or_else(|| dir.join(".env"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok(HashMap::new())
        }
        Err(source) => return Err(ComposeError::Read { path, source }),
    };
    let lookup = |k: &str| env.get(k).cloned();
    let entries = parse_env_file(&text, &lookup, warnings).map_err(|(line, message)| {
        ComposeError::Invalid {
            file: path.clone(),
            line,
            column: 0,
            message,
        }
    })?;
    Ok(entries
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
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
