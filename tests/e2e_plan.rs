//! `compose-shard plan` without `--tests`: the suite is collected inside one isolated copy of
//! the compose project, which is removed afterwards.

#[path = "e2e_support/mod.rs"]
mod e2e_support;

use e2e_support::*;
use std::time::Duration;

#[test]
fn plan_collects_in_docker_and_leaves_nothing_behind() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    let child = binary()
        .current_dir(stack.path())
        .args(["plan", "--groups", "3", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start compose-shard plan");
    let output = wait_limited(child, Duration::from_secs(600));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the plan JSON ({e}):\n{all}"));
    let groups = plan["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3);
    let mut ids: Vec<String> = groups
        .iter()
        .flat_map(|g| g["tests"].as_array().unwrap().iter())
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "a test is planned twice:\n{all}");
    assert_eq!(total, 35, "the pytest-redis example has 35 tests:\n{all}");
    assert!(ids
        .iter()
        .all(|id| id.starts_with("tests/") && id.contains("::")));

    // The same list given as a file plans the same groups (planning is deterministic).
    let list = stack.path().join("collected.txt");
    std::fs::write(&list, ids.join("\n")).unwrap();
    let from_file = binary()
        .current_dir(stack.path())
        .args(["plan", "--groups", "3", "--format", "json", "--tests"])
        .arg(&list)
        .output()
        .unwrap();
    assert_eq!(from_file.status.code(), Some(0), "{}", text(&from_file));
    let plan2: serde_json::Value = serde_json::from_slice(&from_file.stdout).unwrap();
    for (a, b) in groups.iter().zip(plan2["groups"].as_array().unwrap()) {
        let mut a: Vec<&str> = a["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let mut b: Vec<&str> = b["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    let run_id = run_id_of(&String::from_utf8_lossy(&output.stderr));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}
