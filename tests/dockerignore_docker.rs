//! `.dockerignore` against the real `docker build`: generated patterns (`**`, `*`, `?`,
//! `[...]` classes, `!` exceptions, leading and trailing `/`) over one fixed file tree; the
//! files our build context would put in the image must be exactly those `docker build` puts
//! there (`COPY . /ctx` in an image `FROM scratch`, listed with `docker export`: a `RUN find`
//! on the base image costs a container commit, 30 s a build on a loaded machine with
//! fuse-overlayfs, for the same file set). Bounded: COMPOSE_SHARD_DOCKERIGNORE_CASES builds
//! (default 24, under a second each) from a fixed seed.

#[path = "e2e_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use compose_shard::compose::Build;
use compose_shard::engine::{pack_build_context, IgnoreRules};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const FILES: &[&str] = &[
    "app.py",
    "README.md",
    "file1.txt",
    "filex.txt",
    "x1.log",
    "keep",
    "a/app.py",
    "a/debug.log",
    "a/keep",
    "a/b/c.py",
    "a/b/keep",
    "a/b/c/deep.md",
    "docs/README.md",
    "docs/guide.md",
    "build/out.bin",
    "build/keep",
    "node_modules/x/index.js",
    "tmp/x1.log",
    "b/tmp/file2.txt",
];

const SEGMENTS: &[&str] = &[
    "a",
    "b",
    "c",
    "docs",
    "build",
    "tmp",
    "keep",
    "*",
    "**",
    "?",
    "*.py",
    "*.log",
    "*.md",
    "file[0-9].txt",
    "x?.log",
    "[a-c]*",
    "[^d]*",
    "README.md",
    "node_modules",
    "Dockerfile",
    ".dockerignore",
];

fn pattern() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(prop::sample::select(SEGMENTS), 1..4),
    )
        .prop_map(|(negate, leading, trailing, segments)| {
            let mut p = segments.join("/");
            if leading {
                p.insert(0, '/');
            }
            if trailing {
                p.push('/');
            }
            if negate {
                p.insert(0, '!');
            }
            p
        })
}

fn write_context(dir: &Path, dockerignore: &str, marker: &str) {
    for file in FILES {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, file).unwrap();
    }
    std::fs::write(dir.join(".dockerignore"), dockerignore).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("# {marker}\nFROM scratch\nCOPY . /ctx\n"),
    )
    .unwrap();
}

/// What `docker build` put in /ctx, or its error.
fn docker_view(dir: &Path, marker: &str) -> Result<BTreeSet<String>, String> {
    let iid = dir.join("..").join(format!("{marker}.iid"));
    let out = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--no-cache", "--rm", "--force-rm", "--iidfile"])
        .arg(&iid)
        .arg(dir)
        .output()
        .expect("run docker build");
    if !out.status.success() {
        return Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let image = std::fs::read_to_string(&iid).unwrap().trim().to_string();
    let listing = export_listing(&image);
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    Ok(listing
        .lines()
        .filter_map(|l| l.strip_prefix("ctx/"))
        .map(|l| l.trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// The paths in `image`'s file system (`docker create` + `docker export`), one a line.
fn export_listing(image: &str) -> String {
    let created = Command::new("docker")
        .args(["create", image, "none"])
        .output()
        .expect("docker create");
    assert!(created.status.success(), "{created:?}");
    let container = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let export = Command::new("docker")
        .args(["export", &container])
        .output()
        .expect("docker export");
    let _ = Command::new("docker")
        .args(["rm", "-f", &container])
        .output();
    let mut names = String::new();
    for entry in tar::Archive::new(&export.stdout[..]).entries().unwrap() {
        names.push_str(&entry.unwrap().path().unwrap().display().to_string());
        names.push('\n');
    }
    names
}

/// What our build context puts in /ctx: its entries and their folders, less `.dockerignore`
/// and the Dockerfile when the file excludes them (the engine removes those after reading).
fn our_view(dir: &Path, dockerignore: &str) -> Result<BTreeSet<String>, String> {
    let build = Build {
        context: dir.to_path_buf(),
        ..Default::default()
    };
    let packed = pack_build_context(&build, &[]).map_err(|e| e.to_string())?;
    let rules = IgnoreRules::parse(dockerignore)?;
    let mut seen = BTreeSet::new();
    for entry in tar::Archive::new(&packed.archive[..]).entries().unwrap() {
        let name = entry.unwrap().path().unwrap().display().to_string();
        let name = name.trim_end_matches('/').to_string();
        let mut parent = Path::new(&name).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            seen.insert(p.display().to_string());
            parent = p.parent();
        }
        seen.insert(name);
    }
    for removed in [".dockerignore", "Dockerfile"] {
        if rules.is_ignored(removed) {
            seen.remove(removed);
        }
    }
    Ok(seen)
}

#[test]
fn build_context_matches_docker_build_on_generated_patterns() {
    support::require_docker_and_images();
    let cases: u32 = std::env::var("COMPOSE_SHARD_DOCKERIGNORE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let seed = [13u8; 32];
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let scratch = tempfile::Builder::new()
        .prefix("cs-dockerignore-")
        .tempdir()
        .unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&prop::collection::vec(pattern(), 1..6), |patterns| {
        let k = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let marker = format!("csdi{}x{k}", std::process::id());
        let dir = scratch.path().join(&marker);
        let dockerignore = patterns.join("\n") + "\n";
        write_context(&dir, &dockerignore, &marker);
        let docker = docker_view(&dir, &marker);
        let ours = our_view(&dir, &dockerignore);
        std::fs::remove_dir_all(&dir).unwrap();
        match (docker, ours) {
            (Ok(docker), Ok(ours)) => prop_assert_eq!(
                &ours,
                &docker,
                "different context for .dockerignore:\n{}",
                dockerignore
            ),
            // Every generated pattern is valid: both sides must have built.
            (docker, ours) => prop_assert!(
                false,
                ".dockerignore:\n{}\ndocker: {:?}\nours: {:?}",
                dockerignore,
                docker,
                ours
            ),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn hand_picked_patterns_match_docker_build() {
    support::require_docker_and_images();
    let scratch = tempfile::tempdir().unwrap();
    let cases = [
        "*\n!**/keep\n",
        "a\n!a/keep\n",
        "**/*.log\n!tmp\n",
        "/build/\n[a-c]*/**/keep\n",
        "*\n!docs\ndocs/guide.md\n",
        "file[!0-9].txt\n",
    ];
    for (i, dockerignore) in cases.iter().enumerate() {
        let marker = format!("csdh{}x{i}", std::process::id());
        let dir = scratch.path().join(&marker);
        write_context(&dir, dockerignore, &marker);
        let docker = docker_view(&dir, &marker);
        let ours = our_view(&dir, dockerignore);
        match (docker, ours) {
            (Ok(docker), Ok(ours)) => assert_eq!(ours, docker, ".dockerignore:\n{dockerignore}"),
            (Err(_), Err(_)) => {}
            (docker, ours) => {
                panic!(".dockerignore:\n{dockerignore}\ndocker: {docker:?}\nours: {ours:?}")
            }
        }
    }
}
