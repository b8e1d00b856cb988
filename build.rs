//! Build script: records the git commit compose-shard is built from, for `--version`.
//!
//! From a git checkout of this crate the commit is `git rev-parse --short=12 HEAD`. Built from
//! a tarball or an sdist (no `.git`, or no `git` program) it is "unknown commit"; packagers
//! who know the commit can set `COMPOSE_SHARD_COMMIT` at build time.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=COMPOSE_SHARD_COMMIT");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = std::env::var("COMPOSE_SHARD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git_commit(&manifest_dir));
    let text = match commit {
        Some(c) => format!("commit {}", c.trim()),
        None => "unknown commit".to_string(),
    };
    println!("cargo:rustc-env=COMPOSE_SHARD_BUILD_COMMIT={text}");
}

/// The short HEAD commit, only if the crate's own directory is the top of a git work tree
/// (an sdist unpacked inside some other repository must not take that repository's commit).
fn git_commit(dir: &Path) -> Option<String> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    let commit = git(dir, &["rev-parse", "--short=12", "HEAD"])?;
    // Rebuild when HEAD moves: HEAD itself, the branch it points to, and packed refs.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(dir, &["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(
            dir,
            &["rev-parse", "--path-format=absolute", "--git-path", &name],
        ) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    Some(commit)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}
