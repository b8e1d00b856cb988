//! End-to-end: a run killed with SIGKILL leaves its resources; `compose-shard clean` removes
//! them (and only resources whose creating process is gone).

#[path = "e2e_support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

#[test]
fn clean_removes_what_a_killed_run_left_behind() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    std::fs::write(
        stack.path().join("tests/test_zz_slow.py"),
        "import time\n\ndef test_takes_long():\n    time.sleep(120)\n",
    )
    .unwrap();
    let out = stack.path().join("results");
    let child = spawn_run(
        stack.path(),
        &["--groups", "2", "--out", out.to_str().unwrap()],
    );
    wait_for_file(&out.join("g1/output.log"), Duration::from_secs(300));
    signal(&child, "-9");
    let output = wait_limited(child, Duration::from_secs(30));
    let run_id = run_id_of(&String::from_utf8_lossy(&output.stderr));
    assert!(
        !leftovers(&run_id).is_empty(),
        "a SIGKILLed run should leave resources behind"
    );

    let dry = binary().args(["clean", "--dry-run"]).output().unwrap();
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(String::from_utf8_lossy(&dry.stdout).contains(&run_id));
    assert!(
        !leftovers(&run_id).is_empty(),
        "--dry-run must not remove anything"
    );

    let clean = binary().arg("clean").output().unwrap();
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}
