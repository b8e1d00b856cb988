//! End-to-end: a CI's own parallel copies of one job (here GitLab's `parallel: 3`) split the
//! suite with no flags: the real binary, the real engine, the example stack.

#[path = "e2e_support/mod.rs"]
mod support;

use std::process::Stdio;
use std::time::Duration;

use support::*;

#[test]
fn gitlab_parallel_variables_run_exactly_the_second_group_of_three() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    let out = stack.path().join("results");
    // What GitLab gives the second copy of a job with `parallel: 3`.
    let child = binary()
        .current_dir(stack.path())
        .env("CI_NODE_INDEX", "2")
        .env("CI_NODE_TOTAL", "3")
        .env("CI_JOB_NAME", "test 2/3")
        .args(["run", "--progress", "plain", "--out", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start compose-shard");
    let output = wait_limited(child, Duration::from_secs(900));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");

    // A static plan of three groups, of which exactly the second ran, with exactly its tests.
    let plan = planned(&out.join("plan.json"));
    assert_eq!(
        plan.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3],
        "{all}"
    );
    assert!(plan.values().all(|tests| !tests.is_empty()), "{plan:?}");
    let ran = ran_per_group(&out);
    assert_eq!(
        ran.keys().copied().collect::<Vec<_>>(),
        vec![2],
        "only group 2 ran: {all}"
    );
    let (mut ran2, mut plan2) = (ran[&2].clone(), plan[&2].clone());
    ran2.sort();
    plan2.sort();
    assert_eq!(ran2, plan2, "group 2 ran exactly its planned tests");
    let merged = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(merged.matches("<testcase ").count(), plan2.len());

    // The run says where the split came from, when it starts and in the summary.
    let said = "group 2 of 3 from GitLab CI (CI_NODE_INDEX=2, CI_NODE_TOTAL=3)";
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stderr.contains(said), "{all}");
    assert!(stdout.contains(said), "{all}");
    assert!(stdout.contains("result: passed"), "{all}");
    assert_eq!(leftovers(&run_id_of(&stderr)), Vec::<String>::new());
}
