//! End-to-end: several Docker engines in one run, and a checkout the engine cannot see.
//! The second engine is the independent dockerd `ci/second-engine start` runs on this
//! machine (ci/test starts it); these tests fail, rather than skip, when it is not there.
//! They share that engine (one of them kills and restarts it), so they take turns.

#[path = "e2e_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use support::*;

const SECOND_SOCKET: &str = "/run/compose-shard-engine2/docker.sock";
const SECOND_PID: &str = "/run/compose-shard-engine2/docker.pid";
static SECOND_ENGINE: Mutex<()> = Mutex::new(());

fn first_host() -> String {
    "unix:///var/run/docker.sock".into()
}

fn second_host() -> String {
    format!("unix://{SECOND_SOCKET}")
}

/// The second engine answers (started by ci/test through `ci/second-engine start`).
fn require_second_engine() {
    let ok = Command::new("docker")
        .args(["-H", &second_host(), "info"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the second Docker engine does not answer at {SECOND_SOCKET}: run `ci/second-engine start` first"
    );
}

/// Resources of `run_id` left on the engine at `host`.
fn leftovers_on(host: &str, run_id: &str) -> Vec<String> {
    let label = format!("label=dev.compose-shard.run={run_id}");
    let mut found = Vec::new();
    for args in [
        vec!["ps", "-a", "--format", "{{.Names}}"],
        vec!["network", "ls", "--format", "{{.Name}}"],
        vec!["volume", "ls", "--format", "{{.Name}}"],
    ] {
        let out = Command::new("docker")
            .args(["-H", host])
            .args(&args)
            .args(["--filter", &label])
            .output()
            .unwrap();
        assert!(out.status.success(), "docker -H {host} {args:?} failed");
        found.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    found
}

fn two_engine_args<'a>(out: &'a Path, first: &'a str, second: &'a str) -> Vec<&'a str> {
    vec![
        "--docker-host",
        first,
        "--docker-host",
        second,
        "--groups",
        "2",
        "--split-by",
        "test",
        "--out",
        out.to_str().unwrap(),
    ]
}

#[test]
fn the_example_runs_across_two_engines_every_test_once_and_nothing_is_left_on_either() {
    require_docker_and_images();
    // The lock first: the test that kills the second engine holds it until it has restarted it.
    let _turn = SECOND_ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    require_second_engine();
    let stack = stack_copy("pytest-redis");
    let out = stack.path().join("results");
    let (first, second) = (first_host(), second_host());
    let output = run_to_end(stack.path(), &two_engine_args(&out, &first, &second));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    // Each engine ran one group, and the summary says which.
    assert!(all.contains(&format!("engine {first}: g1")), "{all}");
    assert!(all.contains(&format!("engine {second}: g2")), "{all}");
    let ran = ran_per_group(&out);
    assert!(ran.values().all(|r| !r.is_empty()), "{ran:?}");
    let mut every: Vec<String> = ran.values().flatten().cloned().collect();
    let total = every.len();
    every.sort();
    every.dedup();
    assert_eq!(every.len(), total, "a test ran twice");
    assert_eq!(total, 35, "every test of the example once");
    let merged = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(merged.matches("<testcase ").count(), 35);
    assert!(!merged.contains("<failure") && !merged.contains("<error"));
    let timeline = std::fs::read_to_string(out.join("timeline.html")).unwrap();
    assert!(
        timeline.contains(&format!("2 on {second}")),
        "the timeline names the engine"
    );
    let run_id = run_id_of(&String::from_utf8_lossy(&output.stderr));
    assert_eq!(leftovers_on(&first, &run_id), Vec::<String>::new());
    assert_eq!(leftovers_on(&second, &run_id), Vec::<String>::new());
}

#[test]
fn killing_the_second_engine_mid_run_loses_its_in_flight_work_and_the_first_finishes() {
    require_docker_and_images();
    let _turn = SECOND_ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    require_second_engine();
    let stack = stack_copy("pytest-redis");
    let mut slow = String::from("import time\n\n");
    for i in 0..12 {
        slow.push_str(&format!("def test_slow_{i:02}():\n    time.sleep(2)\n\n"));
    }
    std::fs::write(stack.path().join("tests/test_slow_engines.py"), slow).unwrap();
    let out = stack.path().join("results");
    let (first, second) = (first_host(), second_host());
    let child = spawn_run(stack.path(), &two_engine_args(&out, &first, &second));
    wait_for_group_testing(&out, 2, Duration::from_secs(300));
    let pid = std::fs::read_to_string(SECOND_PID).unwrap();
    let killed = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success(), "kill -9 the second engine ({pid})");
    let output = wait_limited(child, Duration::from_secs(600));
    // Bring the second engine back for the other tests, whatever happened.
    let restarted = Command::new(crate_root().join("ci/second-engine"))
        .arg("start")
        .output()
        .unwrap();
    let all = text(&output);
    assert!(
        restarted.status.success(),
        "ci/second-engine start: {}",
        String::from_utf8_lossy(&restarted.stderr)
    );
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(all.contains("g2: environment error"), "{all}");
    let ran = ran_per_group(&out);
    let merged = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let n = 35 + 12;
    // Every test is in the merged JUnit once: g2's finished ones, its lost one as an error
    // naming the group, and everything else, which the first engine's group finished.
    assert_eq!(merged.matches("<testcase ").count(), n, "{merged}");
    let lost = merged.matches("<error").count();
    assert!(lost <= 1, "only the in-flight test is lost: {merged}");
    assert_eq!(ran[&1].len() + ran[&2].len() + lost, n, "{all}");
    assert!(
        ran[&1].len() > ran[&2].len(),
        "the first engine finished the queue"
    );
    // What the dead engine kept is found and removed by `clean` once it is back.
    let run_id = run_id_of(&String::from_utf8_lossy(&output.stderr));
    assert_eq!(leftovers_on(&first, &run_id), Vec::<String>::new());
    let cleaned = binary()
        .args(["clean", "--docker-host", &second, "--run", &run_id])
        .output()
        .unwrap();
    assert!(cleaned.status.success(), "{}", text(&cleaned));
    assert_eq!(leftovers_on(&second, &run_id), Vec::<String>::new());
}

/// Run compose-shard in a private mount namespace where `dir` is a tmpfs holding the stack:
/// compose-shard sees the checkout there, the engine sees the empty folder under it, as
/// with a CI runner in a container.
fn run_hidden(stack: &Path, dir: &Path, args: &[&str]) -> std::process::Output {
    let bin = env!("CARGO_BIN_EXE_compose-shard");
    let script = format!(
        "mount -t tmpfs tmpfs '{dir}' && cp -a '{src}/.' '{dir}/' && cd '{dir}' && exec '{bin}' run --progress plain \"$@\"",
        dir = dir.display(),
        src = stack.display(),
    );
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
        "sh",
    ])
    .args(args);
    for (k, v) in FIXTURE_ENV {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start unshare");
    wait_limited(child, Duration::from_secs(600))
}

#[test]
fn a_checkout_the_engine_cannot_see_is_copied_in_or_explained_never_run_on_an_empty_folder() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    let hidden = tempfile::Builder::new()
        .prefix("cs-hidden-")
        .tempdir()
        .unwrap();
    let results = tempfile::tempdir().unwrap();

    // Without copying: a clear explanation, exit 2, and no test ran on the empty folder.
    let refused_out = results.path().join("refused");
    let output = run_hidden(
        stack.path(),
        hidden.path(),
        &[
            "--copy-source",
            "never",
            "--out",
            refused_out.to_str().unwrap(),
        ],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("cannot see"), "{all}");
    assert!(all.contains("--copy-source"), "{all}");
    assert!(all.contains("tests: .:/code"), "names the bind: {all}");
    for k in 1..=2 {
        assert!(
            !refused_out.join(format!("g{k}/output.log")).exists(),
            "no test command ran in g{k}"
        );
    }

    // The default notices it and uploads the project files: the tests see this checkout.
    let copied_out = results.path().join("copied");
    let output = run_hidden(
        stack.path(),
        hidden.path(),
        &["--groups", "2", "--out", copied_out.to_str().unwrap()],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("cannot see"), "the notice says why: {all}");
    let ran: usize = ran_per_group(&copied_out).values().map(Vec::len).sum();
    assert_eq!(ran, 35, "{all}");
    // The engine's side of the folder stayed empty: nothing was written through a bind.
    assert_eq!(std::fs::read_dir(hidden.path()).unwrap().count(), 0);
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}
