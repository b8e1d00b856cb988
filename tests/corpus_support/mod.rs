//! The corpus of real compose files, read in place from `../shared/corpus/compose` (or
//! `$COMPOSE_SHARD_SHARED/corpus/compose`), and staging: copying files into a temporary
//! project directory with empty stand-ins for the env files and build contexts they name
//! (the corpus holds compose files only). Shared by the corpus and differential tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

/// Variables a corpus file needs before Compose v2 loads it.
pub const CORPUS_ENV: &[(&str, &[(&str, &str)])] = &[(
    // `image: "$SNUBA_IMAGE"`: empty, Compose v2 refuses the services.
    "getsentry__snuba__docker-compose.gcb.yml",
    &[
        ("SNUBA_IMAGE", "getsentry/snuba:ci"),
        ("SNUBA_SETTINGS", "test"),
    ],
)];

pub fn corpus_dir() -> PathBuf {
    let shared = std::env::var_os("COMPOSE_SHARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("corpus/compose");
    assert!(
        dir.is_dir(),
        "the compose corpus is missing at {} (set COMPOSE_SHARD_SHARED to the shared folder)",
        dir.display()
    );
    dir
}

pub fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "expected at least 15 corpus files, found {}",
        files.len()
    );
    files
}

/// A temporary project directory holding copies of corpus files and stand-ins.
pub struct Staged {
    /// Variables the staged files need before Docker Compose v2 loads them ([`CORPUS_ENV`]);
    /// every tool under test gets them.
    pub env: Vec<(String, String)>,
    pub dir: tempfile::TempDir,
    /// The copies, in merge order (the first one's directory is the project directory).
    pub files: Vec<PathBuf>,
    /// Each copy parsed (merge keys applied), for the stand-ins and the v1-compatible copy.
    pub raws: Vec<Mapping>,
}

/// Copy `(corpus file, path in the project)` pairs and create empty stand-ins for the env
/// files and build contexts they reference (relative to the project directory, as Compose
/// resolves them for every file).
pub fn stage(files: &[(&Path, &str)]) -> Staged {
    let dir = tempfile::tempdir().unwrap();
    // A subdirectory, so that `context: ..` stays inside the temporary directory.
    let project = dir.path().join("project");
    let mut copies = Vec::new();
    let mut raws = Vec::new();
    for (corpus_file, dest) in files {
        let file = project.join(dest);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::copy(corpus_file, &file).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let mut raw: Value = serde_yaml::from_str(&text).unwrap();
        raw.apply_merge().unwrap();
        let raw = raw.as_mapping().cloned().unwrap();
        create_stand_ins(&raw, &project);
        copies.push(file);
        raws.push(raw);
    }
    let env = files
        .iter()
        .filter_map(|(f, _)| f.file_name().and_then(|n| n.to_str()))
        .filter_map(|n| CORPUS_ENV.iter().find(|(f, _)| *f == n))
        .flat_map(|(_, vars)| vars.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Staged {
        env,
        dir,
        files: copies,
        raws,
    }
}

fn create_stand_ins(raw: &Mapping, project: &Path) {
    let Some(Value::Mapping(services)) = raw.get("services") else {
        return;
    };
    for def in services.values() {
        for env_file in env_files(def) {
            let path = project.join(env_file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
        }
        let context = match def.get("build") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Mapping(b)) => b.get("context").and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        if let Some(c) = context.filter(|c| !c.contains('$')) {
            std::fs::create_dir_all(project.join(c)).unwrap();
        }
    }
}

fn env_files(def: &Value) -> Vec<String> {
    let items = match def.get("env_file") {
        Some(Value::Sequence(s)) => s.clone(),
        Some(other) => vec![other.clone()],
        None => vec![],
    };
    items
        .iter()
        .filter_map(|i| match i {
            Value::String(s) => Some(s.clone()),
            Value::Mapping(m) => m.get("path").and_then(Value::as_str).map(str::to_string),
            _ => None,
        })
        .collect()
}
