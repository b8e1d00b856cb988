//! Helpers shared by the report tests (included with `#[path]`): the Python virtualenv with
//! pytest and coverage.py, and running its tools. A test that needs Python tools fails loudly
//! when they cannot be installed: it never skips.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The crate root.
pub fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The virtualenv's python, created by `tests/python/setup-venv.sh` when missing (once per
/// test binary: the tests of one binary run in parallel and must not install concurrently).
pub fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(install_python).clone()
}

fn install_python() -> PathBuf {
    let venv = std::env::var_os("COMPOSE_SHARD_PYENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_root().join("target/pyenv"));
    let python = venv.join("bin/python");
    let status = Command::new("bash")
        .arg(crate_root().join("tests/python/setup-venv.sh"))
        .env("COMPOSE_SHARD_PYENV", &venv)
        .status()
        .expect("run tests/python/setup-venv.sh");
    assert!(
        status.success() && python.exists(),
        "tests/python/setup-venv.sh failed: pytest, coverage, junitparser and pycobertura are required by this test (pip install -r tests/python/requirements.txt into {})",
        venv.display()
    );
    python
}

/// Run `python args...` in `dir`, panicking with its output on failure unless `allow_fail`.
pub fn run_python(dir: &Path, args: &[&str], allow_fail: bool) -> String {
    let output = Command::new(python())
        .args(args)
        .current_dir(dir)
        .env_remove("COVERAGE_FILE")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("start python");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !allow_fail && !output.status.success() {
        panic!(
            "python {args:?} in {} failed: {}\n{stdout}\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
}

/// Copy a directory tree (the Python fixtures are small).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" || name == ".pytest_cache" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Drop the attributes that legitimately differ between two runs (`timestamp`).
pub fn without_timestamp(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(pos) = rest.find(" timestamp=\"") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + " timestamp=\"".len()..];
        let end = after.find('"').expect("closing quote");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}
