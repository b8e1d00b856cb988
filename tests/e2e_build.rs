//! End-to-end: an image build that fails leaves nothing behind. The classic builder keeps the
//! container of a failed `RUN` step unless the request asks for `forcerm`; that container
//! carries no compose-shard label, so `clean` could never find it.

#[path = "e2e_support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

/// Containers (any state) whose command mentions `token`.
fn containers_running(token: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}"])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(token))
        .map(str::to_string)
        .collect()
}

#[test]
fn build_failing_at_a_run_step_leaves_no_container_behind() {
    require_docker_and_images();
    let dir = tempfile::Builder::new()
        .prefix("cs-e2e-build-")
        .tempdir()
        .unwrap();
    // A token unique to this test run: the failed step's container runs `sh -c "echo TOKEN && false"`.
    let token = format!(
        "cs-forcerm-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM compose-shard-fixtures/base:bookworm\nRUN echo {token} && false\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "name: cs-e2e-build-fails\nservices:\n  tests:\n    build: .\n",
    )
    .unwrap();
    let output = wait_limited(
        binary()
            .current_dir(dir.path())
            .args(["run", "--progress", "plain", "--service", "tests"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(120),
    );
    let all = text(&output);
    let left = containers_running(&token);
    // Remove what an old build left, so a failure here does not leak into later runs.
    for line in &left {
        let id = line.split_whitespace().next().unwrap();
        let _ = Command::new("docker").args(["rm", "-f", id]).output();
    }
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(all.contains("failed to build image"), "{all}");
    assert_eq!(
        left,
        Vec::<String>::new(),
        "the failed RUN step's container stayed behind"
    );
    assert_eq!(
        leftovers(&run_id_of(&String::from_utf8_lossy(&output.stderr))),
        Vec::<String>::new()
    );
}
