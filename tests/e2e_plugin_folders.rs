//! End-to-end: on a local engine the test container's plugin and results folders are folders
//! of this machine bind-mounted into it (the plugin's files, the gate, the lists of tests and
//! the collection are written and read here, not copied through the engine), and with
//! `COMPOSE_SHARD_HOST_FOLDERS=0` they are copied through the engine as before: both runs
//! give every test exactly once with the same outcomes; a kept container (`--keep`) still
//! finds its folders, which `clean --run` removes with the run.

#[path = "e2e_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use support::*;

/// The test containers of a kept run: (group label, mounts as `type source -> destination`).
fn kept_test_mounts(run_id: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for name in containers_of(&format!("dev.compose-shard.run={run_id}"), "tests") {
        let inspected = Command::new("docker")
            .args([
                "inspect",
                "--format",
                "{{range .Mounts}}{{.Type}} {{.Source}} -> {{.Destination}}\n{{end}}",
                &name,
            ])
            .output()
            .unwrap();
        let mounts = String::from_utf8_lossy(&inspected.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        found.push((name, mounts));
    }
    found.sort();
    found
}

/// Every test id the merged JUnit holds, with its outcome (`passed`/`failed`/`skipped`).
fn outcomes(out: &Path) -> BTreeSet<(String, String)> {
    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let mut set = BTreeSet::new();
    for case in xml.split("<testcase ").skip(1) {
        let attr = |name: &str| {
            // A space first: `name="` also ends `classname="`.
            format!(" {case}")
                .split_once(&format!(" {name}=\""))
                .and_then(|(_, rest)| rest.split_once('"').map(|(v, _)| v.to_string()))
                .unwrap_or_default()
        };
        let body = case.split_once("</testcase>").map_or(case, |(b, _)| b);
        let outcome = if body.contains("<failure") || body.contains("<error") {
            "failed"
        } else if body.contains("<skipped") {
            "skipped"
        } else {
            "passed"
        };
        let id = format!("{}::{}", attr("classname"), attr("name"));
        assert!(set.insert((id.clone(), outcome.to_string())), "{id} twice");
    }
    set
}

#[test]
fn the_plugin_folders_are_this_machines_on_a_local_engine_and_copied_with_the_switch_off() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    let run = |name: &str, host_folders: &str| {
        let out = stack.path().join(name);
        let output = binary()
            .current_dir(stack.path())
            .env("COMPOSE_SHARD_HOST_FOLDERS", host_folders)
            .args(["run", "--progress", "plain", "--groups", "2", "--keep"])
            .args(["--out", out.to_str().unwrap(), "--", "pytest"])
            .output()
            .unwrap();
        let all = text(&output);
        assert_eq!(output.status.code(), Some(0), "{name}: {all}");
        let run_id = run_id_of(&String::from_utf8_lossy(&output.stderr));
        let mounts = kept_test_mounts(&run_id);
        assert_eq!(
            mounts.len(),
            2,
            "{name}: two kept test containers: {mounts:?}"
        );
        (out, run_id, mounts)
    };

    let (local, local_id, mounts) = run("local", "1");
    for (container, mounts) in &mounts {
        for inside in ["/tmp/compose-shard-plugin", "/tmp/compose-shard"] {
            let bind = mounts
                .iter()
                .find(|m| m.ends_with(&format!(" -> {inside}")))
                .unwrap_or_else(|| panic!("{container}: no mount at {inside}: {mounts:?}"));
            let source = bind
                .strip_prefix("bind ")
                .and_then(|m| m.split_once(" -> "))
                .map(|(source, _)| Path::new(source).to_path_buf())
                .unwrap_or_else(|| panic!("{container}: {bind} is not a bind"));
            // Kept with the container, so that it still starts; the plugin was written here
            // and the collection read from here.
            if inside == "/tmp/compose-shard-plugin" {
                assert!(
                    source.join("compose_shard_plugin.py").is_file(),
                    "{container}: the plugin is in {}",
                    source.display()
                );
                assert!(
                    source.join("collected.txt").is_file(),
                    "{}",
                    source.display()
                );
            }
        }
        let started = Command::new("docker")
            .args(["start", container])
            .output()
            .unwrap();
        assert!(started.status.success(), "{container}: {started:?}");
    }
    let roots: BTreeSet<_> = mounts
        .iter()
        .flat_map(|(_, m)| m.iter())
        .filter_map(|m| m.strip_prefix("bind "))
        .filter_map(|m| m.split_once(" -> "))
        .filter(|(_, inside)| inside.starts_with("/tmp/compose-shard"))
        .filter_map(|(source, _)| Path::new(source).parent().map(Path::to_path_buf))
        .collect();
    assert_eq!(
        roots.len(),
        2,
        "one folder of this machine per group: {roots:?}"
    );

    let (copied, copied_id, mounts) = run("copied", "0");
    for (container, mounts) in &mounts {
        assert!(
            !mounts.iter().any(|m| m.contains("/tmp/compose-shard")),
            "{container}: with COMPOSE_SHARD_HOST_FOLDERS=0 nothing of this machine is mounted for the plugin: {mounts:?}"
        );
    }
    assert_eq!(outcomes(&local), outcomes(&copied));
    assert!(!outcomes(&local).is_empty());

    // `clean --run` removes the kept folders with the run's resources.
    for id in [&local_id, &copied_id] {
        let cleaned = binary().args(["clean", "--run", id]).output().unwrap();
        assert!(cleaned.status.success(), "{}", text(&cleaned));
        assert_eq!(leftovers(id), Vec::<String>::new());
    }
    for root in roots {
        assert!(!root.exists(), "clean left {}", root.display());
    }
}
