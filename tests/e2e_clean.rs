//! End-to-end: a run killed with SIGKILL leaves its resources; `compose-shard clean` removes
//! them (and only resources whose creating process is gone). `clean --dry-run` lists the
//! snapshots of ready services under the cache folder; `clean --snapshots` removes them.

#[path = "e2e_support/mod.rs"]
mod support;

use std::time::Duration;

use compose_shard::run::service_snapshot::{now_epoch, DataPath, Meta, SnapshotStore};
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

#[test]
fn clean_lists_snapshots_with_their_size_and_removes_them_only_with_snapshots() {
    require_docker_and_images();
    let cache = tempfile::tempdir().unwrap();
    let store = SnapshotStore::under(cache.path());
    let meta = Meta {
        service: "db".into(),
        project_dir: "/work/shop".into(),
        image: "postgres:16".into(),
        engine: "E".into(),
        paths: vec![DataPath {
            target: "/var/lib/postgresql/data".into(),
            volume: Some("pgdata".into()),
        }],
        bytes: 2_500_000,
        created: now_epoch() - 3 * 3_600 - 30,
        init_seconds: 8.0,
        capture_seconds: 2.0,
        restore_seconds: Some(1.5),
        worth: true,
        reason: None,
    };
    store
        .save("0123456789abcdef01234567", &meta, &[vec![0; 2_500_000]])
        .unwrap();
    // `--run` with an id no run has keeps the engine side to nothing: the default mode would
    // also remove the leftovers the other test of this file is still looking at.
    let clean = |args: &[&str]| {
        let out = binary()
            .args(["clean", "--run", "cs-e2e-clean-snapshots"])
            .args(args)
            .env("COMPOSE_SHARD_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let line = "snapshot: db of /work/shop (postgres:16): 2.5 MB, taken 3 h ago, \
                initialising 8.0s, restoring 1.5s, worth it";

    let dry = clean(&["--dry-run"]);
    assert!(dry.contains(&format!("keeping {line}")), "{dry}");
    assert!(
        dry.contains("1 under ") && dry.contains("2.5 MB in all"),
        "{dry}"
    );
    assert!(
        dry.contains("`compose-shard clean --snapshots` removes them"),
        "{dry}"
    );
    assert_eq!(
        store.list().len(),
        1,
        "--dry-run must not remove a snapshot"
    );

    let dry = clean(&["--dry-run", "--snapshots"]);
    assert!(dry.contains(&format!("would remove {line}")), "{dry}");
    assert!(
        dry.contains("snapshots: would remove 1 of 1 under "),
        "{dry}"
    );
    assert_eq!(
        store.list().len(),
        1,
        "--dry-run must not remove a snapshot"
    );

    let removed = clean(&["--snapshots"]);
    assert!(removed.contains(&format!("removing {line}")), "{removed}");
    assert!(
        removed.contains("snapshots: removed 1 of 1 under "),
        "{removed}"
    );
    assert!(store.list().is_empty(), "{removed}");
    assert!(clean(&["--dry-run"]).contains("snapshots: none under "));
}
