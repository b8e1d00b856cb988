//! `compose-shard config` run as a binary: resolved and isolated output, formats, errors.

use std::path::Path;
use std::process::{Command, Output};

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_compose-shard"))
        .arg("config")
        .args(args)
        .current_dir(dir)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES")
        .env("TAG", "7")
        .output()
        .unwrap()
}

fn project_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  db:\n    image: redis:${TAG}\n    ports: ['6379:6379']\n    colour: red\n  tests:\n    build: .\n    depends_on: [db]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[tool.compose-shard]\nservice = 'tests'\n",
    )
    .unwrap();
    dir
}

#[test]
fn prints_the_resolved_project_as_json_with_warnings_on_stderr() {
    let dir = project_dir();
    let out = run(dir.path(), &["-p", "demo", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["name"], "demo");
    assert_eq!(json["services"]["db"]["image"], "redis:7");
    assert_eq!(json["services"]["db"]["ports"][0]["published"], "6379");
    assert_eq!(json["services"]["tests"]["image"], "demo-tests");
    assert_eq!(
        json["services"]["tests"]["depends_on"]["db"]["condition"],
        "service_started"
    );
    assert!(json.get("isolation").is_none());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("`colour`"),
        "{stderr}"
    );
}

#[test]
fn prints_one_groups_isolated_project_as_yaml() {
    let dir = project_dir();
    let out = run(
        dir.path(),
        &[
            "-p", "demo", "--groups", "3", "--group", "2", "--run-id", "abc",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(yaml["name"].as_str(), Some("demo-abc-g2"));
    assert_eq!(yaml["isolation"]["test_service"].as_str(), Some("tests"));
    assert_eq!(yaml["isolation"]["group"].as_u64(), Some(2));
    assert_eq!(
        yaml["services"]["db"]["container_name"].as_str(),
        Some("demo-abc-g2-db-1")
    );
    assert!(yaml["services"]["db"].get("ports").is_none());
    // The output is the documented model: it reads back into a Project.
    let project: compose_shard::compose::Project = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(
        project.networks["default"].name.as_deref(),
        Some("demo-abc-g2_default")
    );
}

#[test]
fn invalid_file_exits_2_with_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a:\n    image: x\n    init: maybe\n",
    )
    .unwrap();
    let out = run(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("compose.yaml:4:5") && stderr.contains("services.a.init"),
        "{stderr}"
    );
    assert!(stderr.contains("expected true or false"), "{stderr}");
}

/// The seed article's shape (issue 10): a CI-only service the test service does not depend
/// on, a tool in an inactive profile, and a service added by name.
fn selection_dir(pyproject: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        r#"
services:
  app: {build: ., depends_on: [db], networks: [front]}
  db: {image: "postgres:15", volumes: [pgdata:/var/lib/postgresql/data]}
  ci_app: {image: clearly_undefined_image, depends_on: [db]}
  mail: {image: mailhog, profiles: [mail], depends_on: [relay]}
  relay: {image: relay, profiles: [mail]}
  cache: {image: "redis:7", networks: [back], volumes: [cachedata:/data]}
networks: {front: {}, back: {}}
volumes: {pgdata: {}, cachedata: {}}
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("pyproject.toml"), pyproject).unwrap();
    dir
}

fn group_services(dir: &Path, extra: &[&str]) -> (Vec<String>, serde_json::Value) {
    let mut args = vec![
        "-p", "sel", "--groups", "2", "--group", "1", "--format", "json",
    ];
    args.extend(extra);
    let out = run(dir, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = json["services"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    (names, json)
}

#[test]
fn group_starts_only_the_test_services_dependency_closure() {
    let dir = selection_dir("[tool.compose-shard]\nservice = 'app'\n");
    let (names, json) = group_services(dir.path(), &[]);
    assert_eq!(names, ["app", "db"]);
    let nets: Vec<&String> = json["networks"].as_object().unwrap().keys().collect();
    assert_eq!(nets, ["front", "default"]);
    let vols: Vec<&String> = json["volumes"].as_object().unwrap().keys().collect();
    assert_eq!(vols, ["pgdata"]);
}

#[test]
fn with_service_adds_services_and_enables_their_profiles() {
    let dir = selection_dir("[tool.compose-shard]\nservice = 'app'\nwith-services = ['cache']\n");
    let (names, _) = group_services(dir.path(), &[]);
    assert_eq!(names, ["app", "db", "cache"]);
    // The flag replaces the pyproject list; `mail`'s profile comes on with it.
    let (names, _) = group_services(dir.path(), &["--with-service", "mail"]);
    assert_eq!(names, ["app", "db", "mail", "relay"]);
    let out = run(
        dir.path(),
        &["--groups", "2", "--group", "1", "--with-service", "nope"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"nope\" was named"), "{stderr}");
}

#[test]
fn a_test_service_in_an_inactive_profile_is_enabled_as_compose_run_does() {
    let dir = selection_dir("[tool.compose-shard]\nservice = 'mail'\n");
    let (names, json) = group_services(dir.path(), &[]);
    assert_eq!(names, ["mail", "relay"]);
    assert_eq!(json["isolation"]["test_service"], "mail");
}

/// Issue 23: a developer's `.env` for `web` is missing in a fresh clone; the test service
/// does not depend on `web`. `config` (like `docker compose config`) refuses the project,
/// what a group starts (like `docker compose run test`) does not.
#[test]
fn an_unrelated_services_missing_env_file_fails_config_but_not_a_group() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  test:\n    image: app\n    depends_on: [db]\n  db:\n    image: mariadb\n  web:\n    image: app\n    env_file: .env\n",
    )
    .unwrap();
    let out = run(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("services.web.env_file: cannot read env file"),
        "{stderr}"
    );

    let out = run(
        dir.path(),
        &[
            "--groups", "2", "--group", "1", "-s", "test", "--format", "json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: service \"web\" is not started by this run and is ignored: ")
            && stderr.contains("cannot read env file"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services: Vec<&String> = json["services"].as_object().unwrap().keys().collect();
    assert_eq!(services, ["test", "db"]);

    let out = run(dir.path(), &["--groups", "2", "--group", "1", "-s", "web"]);
    assert_eq!(out.status.code(), Some(2), "web itself cannot start");
}
