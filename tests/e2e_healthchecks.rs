//! End-to-end: compose-shard runs the services' healthchecks itself and turns the engine's
//! off in a run's containers (the engine would otherwise probe every copy of every service
//! for the whole run); a `service_healthy` dependency is still waited for, a kept
//! environment and `COMPOSE_SHARD_OWN_HEALTHCHECKS=0` keep the engine's healthcheck, and a
//! test that keeps failing is unhealthy by the engine's rule, as under Docker Compose v2.

#[path = "e2e_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// `docker inspect` of one container with a Go template, trimmed.
fn inspect(container: &str, template: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "--format", template, container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Run the stack with `env`, watching its redis containers while it runs: returns the exit
/// status, the output, and each redis container's healthcheck test as the engine holds it.
fn run_watching(stack: &Path, env: &[(&str, &str)], extra: &[&str]) -> (i32, String, Vec<String>) {
    use std::io::BufRead;
    let out = stack.join("results");
    let mut child = binary()
        .current_dir(stack)
        .envs(env.iter().copied())
        .args(["run", "--progress", "plain", "--groups", "2"])
        .args(extra)
        .args(["--out", out.to_str().unwrap(), "--", "pytest"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let stderr = stderr.clone();
        let pipe = std::io::BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in pipe.lines().map_while(Result::ok) {
                let mut all = stderr.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        })
    };
    let started = Instant::now();
    let mut tests = std::collections::BTreeMap::new();
    while tests.len() < 2 && started.elapsed() < Duration::from_secs(120) {
        let seen = stderr.lock().unwrap().clone();
        if seen.lines().any(|l| l.starts_with("run ")) {
            let label = format!("dev.compose-shard.run={}", run_id_of(&seen));
            for name in containers_of(&label, "redis") {
                // Listed while still being created, a container may not inspect yet.
                let test = inspect(&name, "{{json .Config.Healthcheck.Test}}");
                if !test.is_empty() {
                    tests.entry(name).or_insert(test);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = wait_limited(child, Duration::from_secs(300));
    reader.join().unwrap();
    let all = format!("{}\nstderr:\n{}", text(&output), stderr.lock().unwrap());
    (
        output.status.code().unwrap_or(-1),
        all,
        tests.into_values().collect(),
    )
}

#[test]
fn the_engine_does_not_probe_a_runs_containers_unless_kept_or_switched_off() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    let engine_test = r#"["CMD","redis-cli","ping"]"#;

    // By default: the engine's healthcheck is off, and the run still waits for redis to be
    // healthy (its tests pass, which they do not against a Redis that is not up).
    let (code, all, tests) = run_watching(stack.path(), &[], &[]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(tests, vec![r#"["NONE"]"#; 2], "{all}");

    // Switched off: the compose file's healthcheck, run by the engine as under Compose.
    let (code, all, tests) = run_watching(
        stack.path(),
        &[("COMPOSE_SHARD_OWN_HEALTHCHECKS", "0")],
        &[],
    );
    assert_eq!(code, 0, "{all}");
    assert_eq!(tests, vec![engine_test; 2], "{all}");

    // Kept: looked at afterwards, so its health shows as under Compose.
    let (code, all, tests) = run_watching(stack.path(), &[], &["--keep"]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(tests, vec![engine_test; 2], "{all}");
    let run_id = run_id_of(all.split("stderr:\n").last().unwrap());
    let label = format!("dev.compose-shard.run={run_id}");
    let kept = containers_of(&label, "redis");
    assert_eq!(kept.len(), 2, "{all}");
    let started = Instant::now();
    for name in &kept {
        // The engine's probes run every second: healthy soon.
        while inspect(name, "{{.State.Health.Status}}") != "healthy" {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{name} never healthy"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let cleaned = binary().args(["clean", "--run", &run_id]).output().unwrap();
    assert!(cleaned.status.success(), "{}", text(&cleaned));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}

#[test]
fn a_failing_healthcheck_is_unhealthy_by_the_engines_rule_as_under_compose() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    // Three failures 300 ms apart after a 1 s start period: the engine calls it unhealthy
    // after about 1.9 s; compose-shard runs the test sooner but may not say so sooner.
    std::fs::write(
        stack.path().join("docker-compose.override.yml"),
        "services:\n  redis:\n    healthcheck:\n      test: [\"CMD-SHELL\", \"echo not today; exit 1\"]\n      interval: 300ms\n      retries: 3\n      start_period: 1s\n",
    )
    .unwrap();
    let out = stack.path().join("results");
    let started = Instant::now();
    let output = run_to_end(
        stack.path(),
        &["--groups", "1", "--out", out.to_str().unwrap()],
    );
    let took = started.elapsed();
    let all = text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(all.contains("service redis"), "{all}");
    assert!(all.contains("it became unhealthy"), "{all}");
    assert!(
        took < Duration::from_secs(60),
        "unhealthy is told at once, not at the ready timeout: {took:?}"
    );

    // Docker Compose v2 fails the same run the same way.
    let compose = Command::new(compose_v2())
        .current_dir(stack.path())
        .args(["-p", &format!("cs-hc-{}", std::process::id())])
        .args(["run", "--rm", "-T", "tests", "pytest"])
        .output()
        .unwrap();
    let compose_all = text(&compose);
    let _ = Command::new(compose_v2())
        .current_dir(stack.path())
        .args(["-p", &format!("cs-hc-{}", std::process::id())])
        .args(["down", "-v", "--remove-orphans"])
        .output();
    assert!(!compose.status.success(), "{compose_all}");
    assert!(compose_all.contains("unhealthy"), "{compose_all}");
}
