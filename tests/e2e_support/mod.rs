//! Shared helpers for the end-to-end tests (included with `#[path]` by each `e2e_*.rs`).
//!
//! They run the real binary against the real Docker engine and the example stacks in
//! `compose-templates/`. They need `ci/ensure-docker` and `ci/images` to have run, and they
//! FAIL (never skip) when Docker or a fixture image is missing, naming what to run.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Fixture images the example stacks use, with the variables that point the stacks at them
/// (the values `ci/fixture-env` exports).
pub const FIXTURE_ENV: [(&str, &str); 3] = [
    ("POSTGRES_IMAGE", "compose-shard-fixtures/postgres:15"),
    ("REDIS_IMAGE", "compose-shard-fixtures/redis:7"),
    ("PYTHON_IMAGE", "compose-shard-fixtures/python:3.11"),
];

pub fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fail loudly unless Docker answers and every fixture image is present.
pub fn require_docker_and_images() {
    let info = Command::new("docker").arg("info").output();
    match info {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "Docker does not answer: run ci/ensure-docker first (these tests need a real engine)"
        ),
    }
    for (_, image) in FIXTURE_ENV {
        let ok = Command::new("docker")
            .args(["image", "inspect", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "fixture image {image} is missing: run ci/images first");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A private copy of an example stack (tests may add files; groups' writes stay out of the
/// repository). Same content -> same build-context hash -> the built image is shared.
pub fn stack_copy(template: &str) -> tempfile::TempDir {
    let src = crate_root().join("compose-templates").join(template);
    assert!(src.is_dir(), "example stack {} is missing", src.display());
    let dir = tempfile::Builder::new()
        .prefix("cs-e2e-")
        .tempdir()
        .unwrap();
    copy_dir(&src, dir.path());
    // A fixed project name gives built images a fixed repository (`cs-e2e-<stack>-tests`), so
    // copies with the same content reuse one tag instead of leaving one per temp folder.
    // Runs still never collide: every engine-side name also carries the run id.
    std::fs::write(
        dir.path().join(".env"),
        format!("COMPOSE_PROJECT_NAME=cs-e2e-{template}\n"),
    )
    .unwrap();
    dir
}

/// The variables with which a CI splits one job into parallel copies (`run` takes them as
/// `--only K` and the group count): removed, so a test suite that itself runs as one of
/// several parallel copies still runs every group; a test that wants them sets them.
pub const CI_SPLIT_ENV: [&str; 7] = [
    "CI_NODE_INDEX",
    "CI_NODE_TOTAL",
    "CI_JOB_NAME",
    "CIRCLE_NODE_INDEX",
    "CIRCLE_NODE_TOTAL",
    "BUILDKITE_PARALLEL_JOB",
    "BUILDKITE_PARALLEL_JOB_COUNT",
];

pub fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_compose-shard"));
    for (k, v) in FIXTURE_ENV {
        cmd.env(k, v);
    }
    for k in CI_SPLIT_ENV {
        cmd.env_remove(k);
    }
    // Durations remembered between runs go to a cache of the tests' own (keyed by each stack
    // copy's folder), not the user's.
    cmd.env(
        "COMPOSE_SHARD_CACHE_DIR",
        std::env::temp_dir().join("compose-shard-e2e-cache"),
    );
    cmd
}

/// `compose-shard run --progress plain <args>` in `dir`, started (not waited for).
pub fn spawn_run(dir: &Path, args: &[&str]) -> Child {
    binary()
        .current_dir(dir)
        .arg("run")
        .args(["--progress", "plain"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start compose-shard")
}

/// Wait for a child with a hard limit, killing it if over (so CI never hangs).
pub fn wait_limited(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let start = Instant::now();
    let handle = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !handle.is_finished() {
        if start.elapsed() > limit {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let out = handle.join().unwrap();
            panic!(
                "compose-shard did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    handle.join().unwrap()
}

pub fn run_to_end(dir: &Path, args: &[&str]) -> Output {
    wait_limited(spawn_run(dir, args), Duration::from_secs(900))
}

pub fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The run id from the `run <id>: ...` line.
pub fn run_id_of(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("run ").and_then(|r| r.split(':').next()))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no run id in stderr:\n{stderr}"))
}

/// Containers, networks and volumes still carrying the run's label.
pub fn leftovers(run_id: &str) -> Vec<String> {
    let label = format!("label=dev.compose-shard.run={run_id}");
    let mut found = Vec::new();
    for (kind, args) in [
        ("container", vec!["ps", "-a", "--format", "{{.Names}}"]),
        ("network", vec!["network", "ls", "--format", "{{.Name}}"]),
        ("volume", vec!["volume", "ls", "--format", "{{.Name}}"]),
    ] {
        let out = Command::new("docker")
            .args(&args)
            .args(["--filter", &label])
            .output()
            .unwrap();
        assert!(out.status.success(), "docker {args:?} failed");
        found.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| format!("{kind} {l}")),
        );
    }
    found
}

/// The arguments of the plugin's `VERB` line (`##compose-shard:TOKEN## VERB ARGS`, the token
/// being the run's), or `None` for any other line.
pub fn plugin_args<'a>(line: &'a str, verb: &str) -> Option<&'a str> {
    let at = line.find("##compose-shard:")?;
    let rest = &line[at + "##compose-shard:".len()..];
    let (token, rest) = rest.split_once("## ")?;
    if token.is_empty() || !token.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    rest.strip_prefix(verb)?.strip_prefix(' ')
}

/// Whether a log holds a plugin line `VERB`.
pub fn has_plugin_line(log: &str, verb: &str) -> bool {
    log.lines().any(|l| plugin_args(l, verb).is_some())
}

/// Node ids per group that finished, from the plugin lines in `<out>/g<k>/output.log`.
pub fn ran_per_group(out: &Path) -> BTreeMap<usize, Vec<String>> {
    let mut ran = BTreeMap::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(k) = name.strip_prefix('g').and_then(|k| k.parse::<usize>().ok()) else {
            continue;
        };
        let log = std::fs::read_to_string(out.join(&name).join("output.log")).unwrap();
        let ids = log
            .lines()
            .filter_map(|l| plugin_args(l, "done"))
            .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest))
            // `done OUTCOME SECONDS NODEID`
            .map(|rest| match rest.split_once(' ') {
                Some((seconds, id)) if seconds.parse::<f64>().is_ok() => id.to_string(),
                _ => rest.to_string(),
            })
            .collect();
        ran.insert(k, ids);
    }
    ran
}

/// Tests per group from `<out>/plan.json`.
pub fn planned(plan_file: &Path) -> BTreeMap<usize, Vec<String>> {
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plan_file).unwrap()).unwrap();
    plan["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group"].as_u64().unwrap() as usize,
                g["tests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

/// `pytest --collect-only -q` lines from a group's output? No: collection happens once in the
/// run; the plan holds every collected test, so the plan's union is the collection.
pub fn all_planned(plan_file: &Path) -> Vec<String> {
    let mut all: Vec<String> = planned(plan_file).into_values().flatten().collect();
    all.sort();
    all
}

/// Wait until `path` exists and is not empty, or panic after `limit`.
pub fn wait_for_file(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        assert!(start.elapsed() < limit, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// Wait until some group's output shows a finished test (its tests are under way).
pub fn wait_for_testing(out: &Path, limit: Duration) {
    let start = Instant::now();
    loop {
        let testing = (1..=8).any(|k| {
            std::fs::read_to_string(out.join(format!("g{k}/output.log")))
                .is_ok_and(|l| has_plugin_line(&l, "done"))
        });
        if testing {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "no group started testing within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Wait until group `group`'s output shows a finished test, or panic after `limit`.
pub fn wait_for_group_testing(out: &Path, group: usize, limit: Duration) {
    let log = out.join(format!("g{group}/output.log"));
    let start = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| has_plugin_line(&l, "done")) {
        assert!(start.elapsed() < limit, "g{group} never started testing");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Docker Compose v2's binary (installed by `ci/compose-v2`; fails, never skips, without it).
pub fn compose_v2() -> String {
    if let Ok(path) = std::env::var("COMPOSE_V2") {
        return path;
    }
    let out = Command::new(crate_root().join("ci/compose-v2"))
        .output()
        .expect("run ci/compose-v2");
    assert!(out.status.success(), "ci/compose-v2 failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The containers (names, sorted) carrying `label` (`key=value`) of one compose service.
pub fn containers_of(label: &str, service: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .arg("--filter")
        .arg(format!("label={label}"))
        .arg("--filter")
        .arg(format!("label=com.docker.compose.service={service}"))
        .output()
        .unwrap();
    sorted_lines(&out.stdout)
}

/// A command's output, one entry per line, sorted (names a `docker ... ls` printed).
pub fn sorted_lines(stdout: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}
