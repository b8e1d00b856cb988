//! End-to-end: the `real-world` stack (compose-templates/real-world), built like the projects
//! users ship, passes unchanged as `docker compose run --rm app pytest` passes: only the test
//! service's `depends_on` closure starts, nobody waits for a healthcheck nobody asked for, a
//! migration job that exits 0 is fine, the image's ENTRYPOINT prepares the container before
//! pytest collects, and parametrized ids that change at every collection run exactly once.
//! Plus small stacks written here for waited-for healthchecks and published ports.

#[path = "e2e_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use support::*;

/// Testcase names (`classname.name`) in a JUnit file.
fn testcases(junit: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(junit).unwrap();
    text.split("<testcase ")
        .skip(1)
        .map(|tc| {
            let tc = format!(" {tc}");
            let attr = |name: &str| {
                tc.split_once(&format!(" {name}=\""))
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(v, _)| v.to_string())
                    .unwrap_or_default()
            };
            format!("{}.{}", attr("classname"), attr("name"))
        })
        .collect()
}

/// The services `docker compose run --rm SERVICE` starts, from Compose v2's dry run: the
/// dependencies it creates, plus the service itself.
fn compose_v2_run_services(dir: &Path, service: &str) -> BTreeSet<String> {
    let project = "csdiff";
    let out = Command::new(compose_v2())
        .current_dir(dir)
        .envs(FIXTURE_ENV)
        .args([
            "-p",
            project,
            "--dry-run",
            "run",
            "--rm",
            "-T",
            service,
            "true",
        ])
        .output()
        .unwrap();
    let all = text(&out);
    let mut services: BTreeSet<String> = all
        .lines()
        .filter_map(|l| {
            l.split_once(&format!("Container {project}-"))?
                .1
                .split_once("-1 ")
        })
        .map(|(svc, _)| svc.to_string())
        .collect();
    assert!(!services.is_empty() || all.contains("Creating"), "{all}");
    services.insert(service.to_string());
    services
}

/// The services a run started, from the containers it removed (`<project>-<svc>-1`).
fn started_services(output: &str, run_id: &str) -> BTreeSet<String> {
    output
        .split(", ")
        .flat_map(|part| part.split_whitespace())
        .filter_map(|word| {
            let rest = word.split_once(&format!("-{run_id}-g1-"))?.1;
            rest.strip_suffix("-1").map(str::to_string)
        })
        .collect()
}

#[test]
fn real_world_stack_passes_unchanged_in_three_groups() {
    require_docker_and_images();
    let stack = stack_copy("real-world");
    let out = stack.path().join("results");
    let output = run_to_end(
        stack.path(),
        &[
            "-s",
            "app",
            "--groups",
            "3",
            "--out",
            out.to_str().unwrap(),
            "--",
            "pytest",
            "--cov=ledger",
        ],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");

    // Every collected test ran exactly once, unstable ids included.
    let planned = all_planned(&out.join("plan.json"));
    let merged = testcases(&out.join("junit.xml"));
    assert_eq!(merged.len(), planned.len(), "{all}");
    let unique: BTreeSet<&String> = merged.iter().collect();
    assert_eq!(unique.len(), merged.len(), "a test ran twice: {merged:#?}");
    let ran: usize = ran_per_group(&out).values().map(Vec::len).sum();
    assert_eq!(ran, planned.len());
    assert!(
        all.contains("parametrized test ids change between collections"),
        "the summary names the unstable ids: {all}"
    );
    let coverage = std::fs::read_to_string(out.join("coverage.xml")).unwrap();
    assert!(coverage.contains("ledger/accounts.py") || coverage.contains("accounts.py"));

    // Only the closure of `app` started; the worker's and migration's shared build ran once.
    assert!(!all.contains("ci_app-1"), "ci_app must never start: {all}");
    assert!(!all.contains("worker-1"), "worker must never start: {all}");
    assert!(all.contains("migrate-1"), "migrate is a dependency: {all}");
    assert!(
        all.matches("building image for service").count() <= 1,
        "app and migrate share one build: {all}"
    );
    let run_id = run_id_of(&String::from_utf8_lossy(&output.stderr));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());

    // The timeline shows every phase, image preparation and collection included.
    let timeline = std::fs::read_to_string(out.join("timeline.html")).unwrap();
    for phase in ["images", "environment", "collection", "tests", "teardown"] {
        assert!(
            timeline.contains(&format!("group 1: {phase} ")),
            "no {phase} phase in the timeline"
        );
    }

    // What a group started is what `docker compose run --rm app` starts (Compose v2).
    assert_eq!(
        started_services(&all, &run_id),
        compose_v2_run_services(stack.path(), "app"),
        "{all}"
    );
}

/// The broker's probe fails and its interval is 30 s, but nothing declared
/// `service_healthy`: Compose runs the tests, and so must we, well within a ready timeout
/// shorter than one healthcheck interval.
#[test]
fn a_failing_healthcheck_nobody_waits_for_does_not_fail_the_run() {
    require_docker_and_images();
    let stack = stack_copy("real-world");
    let out = stack.path().join("results");
    let child = binary()
        .current_dir(stack.path())
        .env("BROKER_PROBE", "false")
        .args(["run", "--progress", "plain", "-s", "app"])
        .args(["--ready-timeout", "20s", "--out", out.to_str().unwrap()])
        .args(["--", "pytest", "-k", "not unstable"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_limited(child, std::time::Duration::from_secs(600));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    // No --groups and no recorded durations: auto runs one group and says why.
    assert!(
        all.contains("auto chose 1 group to start with: no durations recorded yet"),
        "{all}"
    );
}

fn write_stack(dir: &Path, compose: &str) {
    std::fs::write(dir.join("docker-compose.yml"), compose).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        dir.join("tests/test_redis.py"),
        "import socket\n\n\ndef test_cache_answers():\n    s = socket.create_connection(('cache', 6379), timeout=5)\n    s.sendall(b'PING\\r\\n')\n    assert s.recv(16).startswith(b'+PONG')\n",
    )
    .unwrap();
}

/// A dependent that declares `service_healthy` on a service whose healthcheck interval is
/// 60 s: the engine (API 1.41) would report healthy only after a minute; running the
/// healthcheck's own test through exec finds it healthy within the 30 s ready timeout.
#[test]
fn a_waited_for_healthcheck_is_run_through_exec_instead_of_sitting_out_its_interval() {
    require_docker_and_images();
    let dir = tempfile::tempdir().unwrap();
    write_stack(
        dir.path(),
        r#"
services:
  cache:
    image: compose-shard-fixtures/redis:7
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 60s
      retries: 3
  tests:
    image: compose-shard-fixtures/python:3.11
    working_dir: /code
    volumes: [".:/code"]
    depends_on:
      cache: {condition: service_healthy}
"#,
    );
    let output = run_to_end(
        dir.path(),
        &["-s", "tests", "--groups", "1", "--ready-timeout", "30s"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

/// `--publish-ports` publishes a fixed host port on an ephemeral host port (not the fixed
/// one, so groups never collide), and the port really is bound.
#[test]
fn publish_ports_binds_an_ephemeral_host_port() {
    require_docker_and_images();
    let dir = tempfile::tempdir().unwrap();
    write_stack(
        dir.path(),
        r#"
services:
  cache:
    image: compose-shard-fixtures/redis:7
    ports: ["6379:6379"]
  tests:
    image: compose-shard-fixtures/python:3.11
    working_dir: /code
    volumes: [".:/code"]
    depends_on: [cache]
"#,
    );
    let output = run_to_end(
        dir.path(),
        &["-s", "tests", "--groups", "2", "--publish-ports", "--keep"],
    );
    let all = text(&output);
    let run_id = run_id_of(&String::from_utf8_lossy(&output.stderr));
    let inspect = Command::new("docker")
        .args(["ps", "-a", "--filter"])
        .arg(format!("label=dev.compose-shard.run={run_id}"))
        .args(["--filter", "label=com.docker.compose.service=cache"])
        .args(["--format", "{{.Ports}}"])
        .output()
        .unwrap();
    let ports = String::from_utf8_lossy(&inspect.stdout).into_owned();
    let clean = binary().args(["clean", "--run", &run_id]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(clean.status.success(), "{}", text(&clean));
    let bound: Vec<&str> = ports.lines().filter(|l| l.contains("->6379/tcp")).collect();
    assert_eq!(bound.len(), 2, "each group's cache is published: {ports:?}");
    for line in bound {
        assert!(
            !line.contains(":6379->"),
            "the fixed host port must not be used: {line}"
        );
    }
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}

/// `secrets:` and `configs:` reach the test container where Compose mounts them: a file
/// secret at `/run/secrets/<name>` (read-only), an `environment:` secret, and a config with
/// `content:` at its `target`.
#[test]
fn secrets_and_configs_are_where_compose_puts_them() {
    require_docker_and_images();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_token.txt"), "s3cr3t-file\n").unwrap();
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        r#"
services:
  tests:
    image: compose-shard-fixtures/python:3.11
    working_dir: /code
    volumes: [".:/code"]
    secrets:
      - api_token
      - source: db_password
        target: db.pass
    configs:
      - source: app_settings
        target: /etc/app/settings.ini
secrets:
  api_token:
    file: ./api_token.txt
  db_password:
    environment: CS_TEST_DB_PASSWORD
configs:
  app_settings:
    content: |
      [app]
      mode = testing
"#,
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("tests/test_files.py"),
        r#"import os


def test_file_secret():
    assert open("/run/secrets/api_token").read() == "s3cr3t-file\n"


def test_environment_secret_with_relative_target():
    assert open("/run/secrets/db.pass").read() == "from-the-environment"


def test_config_content_at_its_target():
    assert "mode = testing" in open("/etc/app/settings.ini").read()


def test_file_secret_is_read_only():
    try:
        open("/run/secrets/api_token", "w")
    except OSError:
        return
    raise AssertionError("a secret must not be writable")
"#,
    )
    .unwrap();
    let child = binary()
        .current_dir(dir.path())
        .env("CS_TEST_DB_PASSWORD", "from-the-environment")
        .args(["run", "--progress", "plain", "-s", "tests", "--groups", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_limited(child, std::time::Duration::from_secs(600));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("4 passed"), "{all}");
}
