//! End-to-end: `compose-shard run` against the real Docker engine and the example stacks.
//! Every test has its own run and checks that nothing carrying its run label remains.

#[path = "e2e_support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

#[test]
fn django_stack_in_four_groups_runs_every_collected_test_exactly_once() {
    require_docker_and_images();
    let stack = stack_copy("django-postgres-redis");
    let out = stack.path().join("results");
    let output = run_to_end(
        stack.path(),
        &[
            "--groups",
            "4",
            "--out",
            out.to_str().unwrap(),
            "--",
            "pytest",
            "--cov=catalog",
        ],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");

    let collected = all_planned(&out.join("plan.json"));
    assert!(
        collected.len() >= 150,
        "only {} tests collected",
        collected.len()
    );
    let ran = ran_per_group(&out);
    assert_eq!(ran.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    let mut every: Vec<String> = ran.values().flatten().cloned().collect();
    every.sort();
    assert_eq!(every, collected, "tests ran not exactly once each");
    let plan = planned(&out.join("plan.json"));
    for (k, ids) in &ran {
        let mut ids = ids.clone();
        let mut expected = plan[k].clone();
        ids.sort();
        expected.sort();
        assert_eq!(ids, expected, "group {k} ran exactly its planned tests");
    }
    for k in 1..=4 {
        let junit = std::fs::read_to_string(out.join(format!("g{k}/junit.xml"))).unwrap();
        assert!(junit.contains("<testcase"), "g{k} junit has no testcases");
        assert!(
            out.join(format!("g{k}/coverage.xml")).exists(),
            "g{k} coverage.xml"
        );
    }
    assert!(all.contains("result: passed"), "{all}");
    // The merged files CI dashboards read: every collected test once, the isolation-sensitive
    // ones (which fail on shared services) among them and passing.
    let merged = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(merged.matches("<testcase ").count(), collected.len());
    assert!(merged.contains("test_dbsize_counts_only_our_products"));
    assert!(!merged.contains("<failure") && !merged.contains("<error"));
    let coverage = std::fs::read_to_string(out.join("coverage.xml")).unwrap();
    assert!(
        coverage.contains("<source>/code/catalog</source>")
            && coverage.contains("filename=\"cache.py\"")
    );
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}

#[test]
fn two_runs_at_once_on_one_engine_do_not_collide() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    let outs = [stack.path().join("a"), stack.path().join("b")];
    let children: Vec<_> = outs
        .iter()
        .map(|out| {
            spawn_run(
                stack.path(),
                &["--groups", "2", "--out", out.to_str().unwrap()],
            )
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| wait_limited(c, Duration::from_secs(600)))
        .collect();
    let mut ids = Vec::new();
    for output in &outputs {
        assert_eq!(output.status.code(), Some(0), "{}", text(output));
        ids.push(run_id_of(&String::from_utf8_lossy(&output.stderr)));
    }
    assert_ne!(ids[0], ids[1]);
    for (out, id) in outs.iter().zip(&ids) {
        let ran: usize = ran_per_group(out).values().map(Vec::len).sum();
        assert_eq!(ran, 35, "run {id} ran every test once");
        assert_eq!(leftovers(id), Vec::<String>::new());
    }
}

#[test]
fn a_failing_test_exits_1_and_shows_up_in_the_output_and_the_junit() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    std::fs::write(
        stack.path().join("tests/test_zz_deliberate.py"),
        "def test_deliberately_fails():\n    assert 1 + 1 == 3, 'deliberate failure'\n",
    )
    .unwrap();
    let out = stack.path().join("results");
    let output = run_to_end(
        stack.path(),
        &["--groups", "2", "--out", out.to_str().unwrap()],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains("FAILED tests/test_zz_deliberate.py::test_deliberately_fails"),
        "{all}"
    );
    let junits: String = (1..=2)
        .map(|k| std::fs::read_to_string(out.join(format!("g{k}/junit.xml"))).unwrap())
        .collect();
    assert!(junits.contains("test_deliberately_fails"));
    assert!(junits.contains("deliberate failure"));
    assert!(all.contains("reproduce g"), "{all}");
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}

/// A copy of the pytest-redis stack whose Redis healthcheck never passes.
fn never_healthy_stack() -> tempfile::TempDir {
    let stack = stack_copy("pytest-redis");
    std::fs::write(
        stack.path().join("docker-compose.override.yml"),
        "services:\n  redis:\n    healthcheck:\n      test: [\"CMD-SHELL\", \"echo not yet; exit 1\"]\n      interval: 1s\n      retries: 1000\n",
    )
    .unwrap();
    stack
}

#[test]
fn a_service_that_never_becomes_healthy_exits_3_within_the_ready_timeout() {
    require_docker_and_images();
    let stack = never_healthy_stack();
    let out = stack.path().join("results");
    let output = run_to_end(
        stack.path(),
        &[
            "--groups",
            "2",
            "--ready-timeout",
            "8s",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    // Each group gave up after the 8 s ready timeout, not the 3 m default (the image build
    // before the groups start is not part of a group's setup).
    let stdout = String::from_utf8_lossy(&output.stdout);
    let header: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("group "))
        .unwrap_or_else(|| panic!("no summary table: {all}"))
        .split_whitespace()
        .collect();
    let column = header.iter().position(|c| *c == "setup").unwrap();
    for group in ["1", "2"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{group} ")))
            .unwrap_or_else(|| panic!("no summary row for group {group}: {all}"));
        // `9.50s`; a minute or more would read `1m02s`.
        let cell = row.split_whitespace().nth(column).unwrap();
        let setup: f64 = cell
            .strip_suffix('s')
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("group {group} setup {cell}: {all}"));
        assert!(setup < 60.0, "group {group} waited {setup}s: {all}");
    }
    assert!(all.contains("service redis"), "{all}");
    assert!(
        all.contains("not healthy within the ready timeout"),
        "{all}"
    );
    assert!(all.contains("last lines of its log"), "{all}");
    let merged = std::fs::read_to_string(out.join("junit.xml")).expect("merged junit.xml");
    assert!(
        merged.contains("<error") && merged.contains("service redis"),
        "a group without results is an error testcase in the merged JUnit: {merged}"
    );
    assert!(
        all.contains("Ready to accept connections") || all.contains("redis"),
        "{all}"
    );
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}

fn interrupted(sig: &str, during_tests: bool) {
    require_docker_and_images();
    let stack = if during_tests {
        let stack = stack_copy("pytest-redis");
        std::fs::write(
            stack.path().join("tests/test_zz_slow.py"),
            "import time\n\ndef test_takes_long():\n    time.sleep(120)\n",
        )
        .unwrap();
        stack
    } else {
        never_healthy_stack()
    };
    let out = stack.path().join("results");
    let child = spawn_run(
        stack.path(),
        &[
            "--groups",
            "2",
            "--ready-timeout",
            "5m",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    if during_tests {
        wait_for_testing(&out, Duration::from_secs(300));
    } else {
        std::thread::sleep(Duration::from_secs(6));
    }
    signal(&child, sig);
    let output = wait_limited(child, Duration::from_secs(120));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(130), "{all}");
    assert!(all.contains("interrupted"), "{all}");
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}

#[test]
fn sigint_during_startup_exits_130_and_leaves_nothing() {
    interrupted("-INT", false);
}

#[test]
fn sigterm_during_startup_exits_130_and_leaves_nothing() {
    interrupted("-TERM", false);
}

#[test]
fn sigint_during_tests_exits_130_and_leaves_nothing() {
    interrupted("-INT", true);
}

#[test]
fn sigterm_during_tests_exits_130_and_leaves_nothing() {
    interrupted("-TERM", true);
}

#[test]
fn only_runs_exactly_the_selected_group_and_a_saved_plan_reruns_the_same_tests() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    let out = stack.path().join("results");
    let output = run_to_end(
        stack.path(),
        &[
            "--groups",
            "4",
            "--only",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let plan = planned(&out.join("plan.json"));
    assert_eq!(plan.len(), 4);
    let ran = ran_per_group(&out);
    assert_eq!(
        ran.keys().copied().collect::<Vec<_>>(),
        vec![2],
        "only group 2 ran"
    );
    let mut ran2 = ran[&2].clone();
    let mut plan2 = plan[&2].clone();
    ran2.sort();
    plan2.sort();
    assert!(!plan2.is_empty());
    assert_eq!(ran2, plan2);
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );

    let out2 = stack.path().join("rerun");
    let plan_file = out.join("plan.json");
    let output = run_to_end(
        stack.path(),
        &[
            "--plan",
            plan_file.to_str().unwrap(),
            "--only",
            "2",
            "--out",
            out2.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let mut rerun = ran_per_group(&out2)[&2].clone();
    rerun.sort();
    assert_eq!(rerun, ran2, "the saved plan reruns exactly the same tests");
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}

#[test]
fn an_unreachable_daemon_exits_3_and_says_how_to_fix_it() {
    let stack = stack_copy("pytest-redis");
    let output = wait_limited(
        binary()
            .current_dir(stack.path())
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(["run", "--progress", "plain"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(60),
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(
        all.contains("cannot connect to the Docker daemon at unix:///nonexistent/docker.sock"),
        "{all}"
    );
    assert!(all.contains("DOCKER_HOST"), "{all}");
}

#[test]
fn a_missing_image_exits_3_naming_the_image_and_creates_nothing() {
    require_docker_and_images();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  tests:\n    image: compose-shard-fixtures/python:3.11\n    depends_on: [db]\n  db:\n    image: compose-shard-test/never-built:1\n",
    )
    .unwrap();
    let output = run_to_end(dir.path(), &["--service", "tests"]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(all.contains("compose-shard-test/never-built:1"), "{all}");
    assert!(all.contains("is not available"), "{all}");
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}

#[test]
fn an_only_group_beyond_the_group_count_is_a_usage_error() {
    let stack = stack_copy("pytest-redis");
    let output = run_to_end(stack.path(), &["--groups", "4", "--only", "5"]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(
        all.contains("--only names group 5, but there are only 4 groups"),
        "{all}"
    );
}

#[test]
fn a_test_container_that_dies_fails_its_group_with_the_cause_and_the_others_finish() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    std::fs::write(
        stack.path().join("tests/test_zz_slow.py"),
        "import time\n\ndef test_takes_long():\n    time.sleep(60)\n",
    )
    .unwrap();
    let out = stack.path().join("results");
    // Static: the plan says which group has the slow test (tests/e2e_dynamic.rs kills a
    // dynamic group).
    let child = spawn_run(
        stack.path(),
        &[
            "--groups",
            "2",
            "--dist",
            "static",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    // The slow test lands in one group; once that group has its tests, kill its container.
    wait_for_file(&out.join("plan.json"), Duration::from_secs(300));
    let plan = planned(&out.join("plan.json"));
    let slow = *plan
        .iter()
        .find(|(_, tests)| tests.iter().any(|t| t.contains("test_takes_long")))
        .unwrap()
        .0;
    wait_for_group_testing(&out, slow, Duration::from_secs(120));
    // This run's containers are the ones bind-mounting this stack copy.
    let names = std::process::Command::new("docker")
        .args(["ps", "--format", "{{.Names}}"])
        .arg("--filter")
        .arg(format!("volume={}", stack.path().display()))
        .arg("--filter")
        .arg(format!("label=dev.compose-shard.group={slow}"))
        .args(["--filter", "label=com.docker.compose.service=tests"])
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&names.stdout).into_owned();
    let ours = names
        .lines()
        .next()
        .unwrap_or_else(|| {
            panic!(
                "no test container of group {slow} for {}",
                stack.path().display()
            )
        })
        .to_string();
    let killed = std::process::Command::new("docker")
        .args(["kill", &ours])
        .output()
        .unwrap();
    assert!(killed.status.success(), "docker kill {ours} failed");
    let output = wait_limited(child, Duration::from_secs(300));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(
        all.contains(&format!("g{slow}: environment error")),
        "{all}"
    );
    assert!(all.contains("exited with code 137"), "{all}");
    let other = 3 - slow;
    assert!(all.contains(&format!("[g{other}] passed")), "{all}");
    let merged = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        merged.contains("<error") && merged.contains("exited with code 137"),
        "{merged}"
    );
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}
