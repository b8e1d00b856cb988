//! End-to-end: the work queue (`--dist dynamic`, the default for one runner) against the real
//! Docker engine and the example stacks: every collected test exactly once with no, accurate
//! and wrong durations; a replay of one group's tests from the written plan; a killed group
//! losing only its in-flight unit; `-x` stopping the whole run; `--groups auto` adding a group to a long suite only;
//! a run of one file keeping the rest of the remembered durations and a partial record still
//! sharing the suite; environments starting in turns once the tests were measured waiting.

#[path = "e2e_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use support::*;

/// What each group's pytest collected (the plugin's `collected N`), by group.
/// This file's tests run one at a time: `--groups auto` adds no group while the host's CPUs
/// are busy, and another test's environments starting beside it would keep them busy.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ALONE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn collected_counts(out: &Path) -> BTreeMap<usize, usize> {
    let mut counts = BTreeMap::new();
    for k in 1..=8 {
        let Ok(log) = std::fs::read_to_string(out.join(format!("g{k}/output.log"))) else {
            continue;
        };
        if let Some(n) = log.lines().find_map(|l| plugin_args(l, "collected")) {
            counts.insert(k, n.trim().parse().unwrap());
        }
    }
    counts
}

/// Every group collected the same number of tests, and together they ran each exactly once;
/// the merged JUnit holds each once, all passing. Returns the sorted ids that ran.
fn assert_exactly_once_and_passing(out: &Path, groups: usize, all: &str) -> Vec<String> {
    let counts = collected_counts(out);
    assert_eq!(
        counts.len(),
        groups,
        "every group collected: {counts:?}\n{all}"
    );
    let n = *counts.values().next().unwrap();
    assert!(counts.values().all(|c| *c == n), "{counts:?}");
    let ran = ran_per_group(out);
    assert!(
        ran.values().all(|ids| !ids.is_empty()),
        "every group took work: {:?}",
        ran.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>()
    );
    let mut every: Vec<String> = ran.values().flatten().cloned().collect();
    every.sort();
    let before = every.len();
    every.dedup();
    assert_eq!(before, every.len(), "a test ran twice");
    assert_eq!(every.len(), n, "every collected test ran");
    // What ran is what plan.json says each group ran, in order.
    let plan = planned(&out.join("plan.json"));
    for (k, ids) in &ran {
        assert_eq!(
            &plan[k], ids,
            "plan.json lists g{k}'s tests in the order they ran"
        );
    }
    let merged = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(merged.matches("<testcase ").count(), n, "merged junit");
    assert!(!merged.contains("<failure") && !merged.contains("<error"));
    assert!(out.join("coverage.xml").exists());
    assert!(all.contains("result: passed"), "{all}");
    every
}

/// A durations file with every recorded duration multiplied by a factor between 0.1 and 10
/// from a fixed-seed generator (so the test is reproducible).
fn wrong_durations(accurate: &Path, wrong: &Path) {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(accurate).unwrap()).unwrap();
    let mut state: u64 = 0x5eed_2026_1127;
    let mut changed = 0;
    for value in map.values_mut() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 0.1 + unit * 9.9;
        let seconds = value.as_f64().unwrap();
        *value = serde_json::json!(seconds * factor);
        changed += 1;
    }
    assert!(changed > 100, "the durations file has {changed} entries");
    std::fs::write(wrong, serde_json::to_string(&map).unwrap()).unwrap();
}

#[test]
fn the_queue_runs_every_test_once_with_no_accurate_or_wrong_durations_and_a_group_replays() {
    let _alone = one_at_a_time();
    require_docker_and_images();
    let stack = stack_copy("django-postgres-redis");
    let durations = stack.path().join("recorded.json");
    let run = |name: &str, extra: &[&str]| {
        let out = stack.path().join(name);
        let mut args = vec!["--groups", "3", "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend(["--", "pytest", "--cov=catalog"]);
        let output = run_to_end(stack.path(), &args);
        let all = text(&output);
        assert_eq!(output.status.code(), Some(0), "{name}: {all}");
        assert!(
            !all.contains("--dist static"),
            "dynamic is the default: {all}"
        );
        assert_eq!(
            leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
            Vec::<String>::new()
        );
        (out, all)
    };

    // No durations file (the stack has no .test_durations): every unit weighs the same
    // until the queue measures them.
    assert!(!stack.path().join(".test_durations").exists());
    let (first, all) = run(
        "no-durations",
        &["--store-durations", durations.to_str().unwrap()],
    );
    assert!(all.contains("queue"), "the display shows the queue: {all}");
    let ran = assert_exactly_once_and_passing(&first, 3, &all);

    // Group 2 again, from the plan the dynamic run wrote: the same tests in the same order.
    let replay = stack.path().join("replay");
    let plan_file = first.join("plan.json");
    let output = run_to_end(
        stack.path(),
        &[
            "--plan",
            plan_file.to_str().unwrap(),
            "--only",
            "2",
            "--out",
            replay.to_str().unwrap(),
            "--",
            "pytest",
            "--cov=catalog",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let replayed = ran_per_group(&replay);
    assert_eq!(replayed.keys().copied().collect::<Vec<_>>(), vec![2]);
    assert_eq!(
        replayed[&2],
        planned(&plan_file)[&2],
        "--plan --only 2 reruns exactly what group 2 ran, in order"
    );

    // Accurate durations (what the first run stored), then deliberately wrong ones.
    let (accurate, all) = run("accurate", &["--durations", durations.to_str().unwrap()]);
    assert_eq!(assert_exactly_once_and_passing(&accurate, 3, &all), ran);
    let wrong = stack.path().join("wrong.json");
    wrong_durations(&durations, &wrong);
    let (skewed, all) = run("wrong", &["--durations", wrong.to_str().unwrap()]);
    assert_eq!(assert_exactly_once_and_passing(&skewed, 3, &all), ran);
}

/// A module of slow tests, so groups are busy long enough to be killed or stopped mid-run.
fn add_slow_tests(stack: &Path, count: usize, seconds: f64) {
    let mut text = String::from("import time\n\n");
    for i in 0..count {
        text.push_str(&format!(
            "def test_slow_{i:02}():\n    time.sleep({seconds})\n\n"
        ));
    }
    std::fs::write(stack.join("tests/test_slow_queue.py"), text).unwrap();
}

/// The running test container of `group` for this stack copy.
fn test_container(stack: &Path, group: usize) -> String {
    let names = std::process::Command::new("docker")
        .args(["ps", "--format", "{{.Names}}"])
        .arg("--filter")
        .arg(format!("volume={}", stack.display()))
        .arg("--filter")
        .arg(format!("label=dev.compose-shard.group={group}"))
        .args(["--filter", "label=com.docker.compose.service=tests"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&names.stdout)
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no test container of group {group}"))
        .to_string()
}

#[test]
fn a_killed_dynamic_group_loses_only_its_in_flight_unit_and_the_others_finish_the_queue() {
    let _alone = one_at_a_time();
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    add_slow_tests(stack.path(), 12, 2.0);
    let out = stack.path().join("results");
    let child = spawn_run(
        stack.path(),
        &[
            "--groups",
            "2",
            "--split-by",
            "test",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    // Once group 2 has finished a test, kill its container: it is in the middle of a unit.
    wait_for_group_testing(&out, 2, Duration::from_secs(300));
    let container = test_container(stack.path(), 2);
    let killed = std::process::Command::new("docker")
        .args(["kill", &container])
        .output()
        .unwrap();
    assert!(killed.status.success(), "docker kill {container} failed");
    let output = wait_limited(child, Duration::from_secs(600));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(all.contains("lost in flight"), "{all}");

    let n = collected_counts(&out)[&1];
    let merged = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    // Every collected test is in the merged JUnit exactly once: the finished ones with their
    // results (also group 2's, rebuilt from its progress record), the lost one as an error
    // naming the group and the cause.
    assert_eq!(merged.matches("<testcase ").count(), n, "{merged}");
    let lost = merged.matches("lost in flight").count();
    assert!(
        lost >= 2,
        "one lost test (attribute and text), got {lost}: {merged}"
    );
    assert!(merged.contains("group 2"), "{merged}");
    assert!(merged.contains("137"), "the cause: {merged}");
    assert_eq!(
        merged.matches("<error").count(),
        1,
        "only the in-flight test is lost (split by test): {merged}"
    );
    assert!(!merged.contains("<failure"));
    let ran = ran_per_group(&out);
    let g1 = ran[&1].len();
    let g2 = ran[&2].len();
    assert_eq!(g1 + g2 + 1, n, "g1 {g1} + g2 {g2} + 1 lost = {n}");
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}

#[test]
fn x_stops_every_group_and_the_summary_counts_what_did_not_run() {
    let _alone = one_at_a_time();
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    add_slow_tests(stack.path(), 12, 1.0);
    // Sorts first, so the queue hands it out in the first chunk.
    std::fs::write(
        stack.path().join("tests/test_aa_fails.py"),
        "def test_fails_first():\n    assert 1 + 1 == 3, 'deliberate failure'\n",
    )
    .unwrap();
    let out = stack.path().join("results");
    let output = run_to_end(
        stack.path(),
        &[
            "--groups",
            "2",
            "--split-by",
            "test",
            "--out",
            out.to_str().unwrap(),
            "--",
            "pytest",
            "-x",
        ],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("stopped early"), "{all}");
    assert!(all.contains("--maxfail=1 (-x)"), "{all}");
    let n = collected_counts(&out)[&1];
    let ran: usize = ran_per_group(&out).values().map(Vec::len).sum();
    assert!(ran < n / 2, "ran {ran} of {n} after -x");
    let not_run: usize = all
        .lines()
        .find_map(|l| {
            l.split_once("; ")
                .filter(|_| l.starts_with("stopped early"))
                .and_then(|(_, rest)| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or_else(|| panic!("no count of tests that did not run: {all}"));
    assert_eq!(ran + not_run, n, "ran {ran} + not run {not_run} = {n}");
    let merged = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(merged.contains("deliberate failure"));
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}

#[test]
fn auto_adds_a_group_to_a_long_suite_and_never_to_a_suite_of_a_few_seconds_and_remembers_durations()
{
    let _alone = one_at_a_time();
    require_docker_and_images();
    // A few seconds of tests (the example's, no durations recorded): one environment only.
    let quick = stack_copy("pytest-redis");
    let out = quick.path().join("results");
    let output = run_to_end(
        quick.path(),
        &["--groups", "auto", "--out", out.to_str().unwrap()],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(!all.contains("auto added group"), "{all}");
    assert_eq!(
        ran_per_group(&out).keys().copied().collect::<Vec<_>>(),
        vec![1]
    );
    assert!(all.contains("no durations recorded yet"), "{all}");
    assert!(!all.contains("remembered"), "{all}");

    // The second run knows the suite from the durations the first one remembered.
    let output = run_to_end(
        quick.path(),
        &["--groups", "auto", "--out", out.to_str().unwrap()],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(
        all.contains("durations: the ones the last run remembered"),
        "{all}"
    );
    assert!(!all.contains("no durations recorded yet"), "{all}");
    assert!(
        all.contains("s of recorded tests"),
        "auto weighs them: {all}"
    );
    // One part of a split across machines never plans from this machine's memory.
    let output = run_to_end(
        quick.path(),
        &[
            "--groups",
            "2",
            "--only",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(!all.contains("remembered"), "{all}");

    // 24 tests that wait a second each, no durations: the run starts with one group, and
    // once the first tests are measured (they wait: almost no CPU) more join, beyond the
    // CPUs if that pays; every test runs once.
    let long = stack_copy("pytest-redis");
    add_slow_tests(long.path(), 24, 1.0);
    let out = long.path().join("results");
    let output = run_to_end(
        long.path(),
        &["--groups", "auto", "--out", out.to_str().unwrap()],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(
        all.contains("auto added group 2: ") || all.contains("auto added groups 2-"),
        "the summary says why: {all}"
    );
    assert!(
        all.contains("% of a CPU)"),
        "it weighed the tests' CPU: {all}"
    );
    let ran = ran_per_group(&out);
    let groups = ran.len();
    assert!(groups >= 2, "{all}");
    assert_eq!(
        ran.keys().copied().collect::<Vec<_>>(),
        (1..=groups).collect::<Vec<_>>(),
        "{all}"
    );
    let mut every: Vec<String> = ran.values().flatten().cloned().collect();
    let n = collected_counts(&out)[&1];
    every.sort();
    every.dedup();
    assert_eq!(every.len(), n, "every collected test ran once: {all}");
    assert_eq!(ran.values().map(Vec::len).sum::<usize>(), n);
    // The plan the run wrote names every group, so `--plan --only K` reproduces each.
    assert_eq!(planned(&out.join("plan.json")).len(), groups);
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}

/// The path in `durations: the ones the last run remembered (PATH)`.
fn remembered_path(all: &str) -> std::path::PathBuf {
    let line = all
        .lines()
        .find(|l| l.contains("durations: the ones the last run remembered ("))
        .unwrap_or_else(|| panic!("no remembered durations: {all}"));
    let start = line.find('(').unwrap() + 1;
    let end = line.rfind(')').unwrap();
    std::path::PathBuf::from(&line[start..end])
}

/// Slow tests each group ran.
fn slow_per_group(out: &Path) -> BTreeMap<usize, usize> {
    ran_per_group(out)
        .into_iter()
        .map(|(k, ids)| (k, ids.iter().filter(|i| i.contains("test_slow_")).count()))
        .collect()
}

#[test]
fn a_run_of_one_file_keeps_the_rest_remembered_and_a_partial_record_still_shares_the_suite() {
    let _alone = one_at_a_time();
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    add_slow_tests(stack.path(), 16, 0.5);
    let out = stack.path().join("results");
    let out_arg = out.to_str().unwrap();

    // Durations that know two quick tests only (what a run of one file remembered before):
    // the guess for the rest is tiny, yet the queue shares the slow tests between groups.
    let partial = stack.path().join("partial.json");
    std::fs::write(
        &partial,
        r#"{"tests/test_jobs.py::test_fifo": 0.002, "tests/test_jobs.py::test_ack_twice": 0.002}"#,
    )
    .unwrap();
    let shared = run_to_end(
        stack.path(),
        &[
            "--groups",
            "2",
            "--durations",
            partial.to_str().unwrap(),
            "--out",
            out_arg,
        ],
    );
    let all = text(&shared);
    assert_eq!(shared.status.code(), Some(0), "{all}");
    let slow = slow_per_group(&out);
    assert_eq!(slow.values().sum::<usize>(), 16, "{slow:?}");
    assert!(
        slow.values().all(|&n| n >= 4),
        "each group ran a share of the slow tests: {slow:?}\n{all}"
    );

    // That run remembered every duration it measured. A run of one file, one test: what it
    // measured is added, nothing else is forgotten.
    let one = run_to_end(
        stack.path(),
        &[
            "--groups",
            "1",
            "--out",
            out_arg,
            "--",
            "pytest",
            "tests/test_jobs.py",
            "-k",
            "fifo",
        ],
    );
    let all = text(&one);
    assert_eq!(one.status.code(), Some(0), "{all}");
    let remembered = remembered_path(&all);
    let kept: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&remembered).unwrap()).unwrap();
    let slow = kept.keys().filter(|k| k.contains("test_slow_")).count();
    assert_eq!(slow, 16, "the slow module's durations stay: {kept:?}");
    assert!(kept.contains_key("tests/test_leaderboard.py::test_empty_board"));
    assert!(kept.contains_key("tests/test_jobs.py::test_fifo"));
}

/// `compose-shard run --groups 2 -- pytest --cov=scoreboard`, waited for.
fn run_two_groups(stack: &Path, pytest_args: &[&str]) -> std::process::Output {
    run_groups(stack, 2, pytest_args)
}

/// `compose-shard run --groups N -- pytest --cov=scoreboard`, waited for.
fn run_groups(stack: &Path, groups: usize, pytest_args: &[&str]) -> std::process::Output {
    let out = stack.join("results");
    let child = binary()
        .current_dir(stack)
        .args([
            "run",
            "--progress",
            "plain",
            "--groups",
            &groups.to_string(),
            "--out",
        ])
        .arg(&out)
        .args(["--", "pytest", "--cov=scoreboard"])
        .args(pytest_args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start compose-shard");
    wait_limited(child, Duration::from_secs(600))
}

/// `(group, phase, start, end)` of every span on the run's timeline.
fn timeline_spans(out: &Path) -> Vec<(usize, String, f64, f64)> {
    let html = std::fs::read_to_string(out.join("timeline.html")).unwrap();
    let mut spans = Vec::new();
    for part in html.split("group ").skip(1) {
        // "<k>: <phase> <secs>s (from <a>s to <b>s)"
        let Some((k, rest)) = part.split_once(": ") else {
            continue;
        };
        let (Ok(k), Some((phase, rest))) = (k.parse::<usize>(), rest.split_once(' ')) else {
            continue;
        };
        let Some(rest) = rest.split_once("(from ").map(|(_, r)| r) else {
            continue;
        };
        let Some((a, rest)) = rest.split_once("s to ") else {
            continue;
        };
        let Some((b, _)) = rest.split_once("s)") else {
            continue;
        };
        if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
            spans.push((k, phase.to_string(), a, b));
        }
    }
    spans.sort_by(|x, y| x.partial_cmp(y).unwrap());
    spans.dedup();
    spans
}

#[test]
fn environments_start_in_turns_once_the_tests_were_measured_waiting_on_few_cpus() {
    let _alone = one_at_a_time();
    require_docker_and_images();
    let cpus: usize = String::from_utf8_lossy(
        &std::process::Command::new("docker")
            .args(["info", "--format", "{{.NCPU}}"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .parse()
    .unwrap();
    let stack = stack_copy("pytest-redis");
    // Tests that sleep: they wait, they do not compute.
    add_slow_tests(stack.path(), 40, 0.5);
    let out = stack.path().join("results");
    let notice = "starting 1 environment(s) at a time";

    // First run: nothing measured yet, every environment at once.
    let first = run_two_groups(stack.path(), &[]);
    let all = text(&first);
    assert_eq!(first.status.code(), Some(0), "{all}");
    assert!(!all.contains("environment(s) at a time"), "{all}");
    assert!(timeline_spans(&out).iter().all(|s| s.1 != "waiting"));

    // A run of one test in between (to reproduce a failure) is mostly start-up: it must
    // not take the host's busy CPUs for tests that compute, nor forget what the first run
    // measured.
    let one = run_two_groups(stack.path(), &["-k", "test_slow_07"]);
    assert_eq!(one.status.code(), Some(0), "{}", text(&one));
    // One group running a few seconds of such tests is measured, and reads as tests that
    // wait: its share comes from the host's CPUs while it tested (0.07 here), not from its
    // start-up and teardown (taken over the whole run, this run read 0.25, the bundled
    // latency suite's 0.5-0.6, and the next run started every environment at once).
    let few = run_groups(
        stack.path(),
        1,
        &["-k", "test_slow_0 or test_slow_10 or test_slow_11"],
    );
    let all = text(&few);
    assert_eq!(few.status.code(), Some(0), "{all}");
    let timings = remembered_path(&all)
        .parent()
        .unwrap()
        .join(".compose-shard-timings.json");
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&timings).unwrap()).unwrap();
    let share = recorded["cpu_fraction"].as_f64();
    assert!(
        share.is_some_and(|s| s <= 0.15),
        "tests that sleep read as a CPU share of {share:?}: {recorded}"
    );

    // Then: the first run measured tests that wait; on an engine with fewer than 4 CPUs the
    // second group starts once the first is ready for its tests.
    let second = run_two_groups(stack.path(), &[]);
    let all = text(&second);
    assert_eq!(second.status.code(), Some(0), "{all}");
    assert_exactly_once_and_passing(&out, 2, &all);
    let spans = timeline_spans(&out);
    let waiting: Vec<_> = spans.iter().filter(|s| s.1 == "waiting").collect();
    if cpus >= 4 {
        assert!(waiting.is_empty() && !all.contains(notice), "{all}");
        return;
    }
    assert!(all.contains(notice), "{all}");
    assert_eq!(waiting.len(), 1, "{spans:?}");
    let (late, _, _, turn) = *waiting[0];
    let other = 3 - late;
    let span_of = |phase: &str| {
        let span = spans.iter().find(|s| s.0 == other && s.1 == phase);
        span.map(|s| (s.2, s.3))
            .unwrap_or_else(|| panic!("no {phase} span of g{other}: {spans:?}"))
    };
    // Its turn came once the other group was ready for its tests, before they ended.
    let (ready, tests) = (span_of("readiness"), span_of("tests"));
    assert!(
        turn >= ready.1 - 0.02 && turn < tests.1,
        "g{late} started at {turn} s, g{other} was ready at {} s and tested until {} s",
        ready.1,
        tests.1
    );
}
