//! Loading compose files like Docker Compose: every feature with field-by-field expectations.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use compose_shard::compose::{
    load, load_from_str, Build, ComposeError, Dependency, DependencyCondition, Healthcheck, Loaded,
    Mount, MountKind, PortMapping, ServiceNetwork,
};
use compose_shard::config::ComposeOptions;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn from_str(yaml: &str, vars: &[(&str, &str)]) -> Loaded {
    load_from_str(
        &[("compose.yaml", yaml)],
        Path::new("/proj/app"),
        &env(vars),
        &ComposeOptions::default(),
    )
    .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn opts() -> ComposeOptions {
    ComposeOptions::default()
}

#[test]
fn interpolation_in_values_with_defaults() {
    let l = from_str(
        "services:\n  web:\n    image: \"${REG:-docker.io}/app:${TAG-latest}\"\n    environment:\n      DB: $DB_HOST\n      LIT: \"$$HOME\"\n      NESTED: ${A:-${B:-b}}\n      PLUS: ${DB_HOST:+set}\n",
        &[("DB_HOST", "db")],
    );
    let web = &l.project.services["web"];
    assert_eq!(web.image.as_deref(), Some("docker.io/app:latest"));
    assert_eq!(web.environment["DB"].as_deref(), Some("db"));
    assert_eq!(web.environment["LIT"].as_deref(), Some("$HOME"));
    assert_eq!(web.environment["NESTED"].as_deref(), Some("b"));
    assert_eq!(web.environment["PLUS"].as_deref(), Some("set"));
}

#[test]
fn missing_required_variable_gives_the_files_message() {
    let err = load_from_str(
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: ${IMAGE:?set IMAGE to the app image}\n",
        )],
        Path::new("/p"),
        &env(&[]),
        &opts(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ComposeError::MissingVariable { line: 3, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.starts_with("/p/compose.yaml:3: "), "{text}");
    assert!(text.contains("set IMAGE to the app image"), "{text}");
    assert!(text.contains("IMAGE"), "{text}");
}

#[test]
fn unset_variable_warns() {
    let l = from_str("services:\n  web:\n    image: app:${NOPE}\n", &[]);
    assert_eq!(l.project.services["web"].image.as_deref(), Some("app:"));
    assert!(
        l.warnings.iter().any(|w| w.contains("NOPE")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn anchors_merge_keys_and_extension_fields() {
    let l = from_str(
        "version: '3.8'\nx-common: &common\n  image: base\n  environment: &env\n    A: '1'\nservices:\n  one:\n    <<: *common\n    x-ignored: true\n  two:\n    <<: *common\n    image: other\n    environment: *env\n",
        &[],
    );
    let one = &l.project.services["one"];
    let two = &l.project.services["two"];
    assert_eq!(one.image.as_deref(), Some("base"));
    assert_eq!(two.image.as_deref(), Some("other"));
    assert_eq!(two.environment["A"].as_deref(), Some("1"));
    assert!(
        l.warnings.iter().all(|w| !w.contains("x-")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn command_entrypoint_and_build_forms() {
    let l = from_str(
        "services:\n  a:\n    build: .\n    command: python -c 'print(1)'\n    entrypoint: [\"/bin/sh\", \"-c\"]\n  b:\n    build:\n      context: ../other\n      dockerfile: docker/Dockerfile\n      target: test\n      args: [GIT_SHA, X=1]\n    image: b:dev\n",
        &[("GIT_SHA", "abc")],
    );
    let a = &l.project.services["a"];
    assert_eq!(a.image.as_deref(), Some("app-a"));
    assert_eq!(
        a.build,
        Some(Build {
            context: "/proj/app".into(),
            ..Build::default()
        })
    );
    assert_eq!(
        a.command.as_ref().unwrap(),
        &vec!["python", "-c", "print(1)"]
    );
    assert_eq!(a.entrypoint.as_ref().unwrap(), &vec!["/bin/sh", "-c"]);
    let b = l.project.services["b"].build.clone().unwrap();
    assert_eq!(b.context, PathBuf::from("/proj/other"));
    assert_eq!(b.dockerfile.as_deref(), Some("docker/Dockerfile"));
    assert_eq!(b.target.as_deref(), Some("test"));
    assert_eq!(b.args["GIT_SHA"].as_deref(), Some("abc"));
    assert_eq!(b.args["X"].as_deref(), Some("1"));
    assert_eq!(l.project.services["b"].image.as_deref(), Some("b:dev"));
}

#[test]
fn depends_on_short_long_and_links() {
    let l = from_str(
        "services:\n  db: {image: pg}\n  cache: {image: redis}\n  init: {image: x}\n  web:\n    image: w\n    links: ['cache:redis-host']\n    depends_on:\n      db: {condition: service_healthy}\n      init: {condition: service_completed_successfully, required: false}\n  worker:\n    image: w\n    depends_on: [db]\n",
        &[],
    );
    let web = &l.project.services["web"];
    let dep = |c, r| Dependency {
        condition: c,
        required: r,
    };
    assert_eq!(
        web.depends_on["db"],
        dep(DependencyCondition::ServiceHealthy, true)
    );
    assert_eq!(
        web.depends_on["init"],
        dep(DependencyCondition::ServiceCompletedSuccessfully, false)
    );
    assert_eq!(
        web.depends_on["cache"],
        dep(DependencyCondition::ServiceStarted, true)
    );
    assert_eq!(
        l.project.services["worker"].depends_on["db"],
        dep(DependencyCondition::ServiceStarted, true)
    );
}

#[test]
fn healthcheck_forms() {
    let l = from_str(
        "services:\n  a:\n    image: x\n    healthcheck:\n      test: pg_isready -U app\n      interval: 1m30s\n      timeout: 500ms\n      retries: 5\n      start_period: 10s\n  b:\n    image: x\n    healthcheck:\n      test: [CMD, redis-cli, ping]\n  c:\n    image: x\n    healthcheck:\n      disable: true\n",
        &[],
    );
    assert_eq!(
        l.project.services["a"].healthcheck,
        Some(Healthcheck {
            test: vec!["CMD-SHELL".into(), "pg_isready -U app".into()],
            interval: Some(90.0),
            timeout: Some(0.5),
            retries: Some(5),
            start_period: Some(10.0),
            start_interval: None,
        })
    );
    assert_eq!(
        l.project.services["b"].healthcheck.as_ref().unwrap().test,
        vec!["CMD", "redis-cli", "ping"]
    );
    assert!(l.project.services["c"]
        .healthcheck
        .as_ref()
        .unwrap()
        .is_disabled());
}

#[test]
fn ports_volumes_networks_and_scalars() {
    let l = from_str(
        "services:\n  db:\n    image: pg\n    ports: ['127.0.0.1:5432:5432', 8125:8125/udp]\n    expose: [5432]\n    volumes: ['pgdata:/var/lib/postgresql/data', './init:/docker-entrypoint-initdb.d:ro', {type: tmpfs, target: /tmp}]\n    tmpfs: /run\n    networks:\n      back: {aliases: [database]}\n    container_name: app-db\n    labels: [a=b]\n    extra_hosts: ['host.docker.internal:host-gateway']\n    shm_size: 256m\n    init: true\n    tty: true\n    platform: linux/amd64\n    user: '1000'\n    working_dir: /srv\n    restart: always\nnetworks:\n  back: {internal: true}\nvolumes:\n  pgdata: {driver: local}\n",
        &[],
    );
    let db = &l.project.services["db"];
    assert_eq!(
        db.ports,
        vec![
            PortMapping {
                target: 5432,
                published: Some("5432".into()),
                host_ip: Some("127.0.0.1".into()),
                protocol: "tcp".into()
            },
            PortMapping {
                target: 8125,
                published: Some("8125".into()),
                host_ip: None,
                protocol: "udp".into()
            },
        ]
    );
    assert_eq!(db.expose, vec!["5432"]);
    assert_eq!(
        db.volumes,
        vec![
            Mount {
                kind: MountKind::Volume,
                source: Some("pgdata".into()),
                target: "/var/lib/postgresql/data".into(),
                read_only: false,
                options: vec![],
                create_host_path: false,
            },
            Mount {
                kind: MountKind::Bind,
                source: Some("/proj/app/init".into()),
                target: "/docker-entrypoint-initdb.d".into(),
                read_only: true,
                options: vec![],
                create_host_path: true,
            },
            Mount {
                kind: MountKind::Tmpfs,
                source: None,
                target: "/tmp".into(),
                read_only: false,
                options: vec![],
                create_host_path: false,
            },
        ]
    );
    assert_eq!(db.tmpfs, vec!["/run"]);
    assert_eq!(
        db.networks["back"],
        ServiceNetwork {
            aliases: vec!["database".into()],
            ipv4_address: None
        }
    );
    assert_eq!(db.container_name.as_deref(), Some("app-db"));
    assert_eq!(db.labels["a"], "b");
    assert_eq!(db.extra_hosts, vec!["host.docker.internal:host-gateway"]);
    assert_eq!(db.shm_size, Some(256 << 20));
    assert_eq!(db.init, Some(true));
    assert!(db.tty);
    assert_eq!(db.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(db.user.as_deref(), Some("1000"));
    assert_eq!(db.working_dir.as_deref(), Some("/srv"));
    assert!(l.project.networks["back"].internal);
    assert_eq!(l.project.volumes["pgdata"].driver.as_deref(), Some("local"));
    assert!(!l.project.networks.contains_key("default"));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn default_network_is_declared_when_used() {
    let l = from_str("services:\n  a: {image: x}\n", &[]);
    assert!(l.project.networks.contains_key("default"));
}

#[test]
fn unknown_and_unsupported_keys_warn_naming_service_and_key() {
    let l = from_str(
        "services:\n  web:\n    image: x\n    deploy: {replicas: 2}\n    colour: blue\n    healthcheck: {test: [CMD, x], frequency: 1s}\nnetworks:\n  n: {ipam: {config: [{subnet: 10.5.0.0/16}]}}\nmodels: {}\n",
        &[],
    );
    let w = l.warnings.join("\n");
    assert!(w.contains("\"web\"") && w.contains("`deploy`"), "{w}");
    assert!(w.contains("`colour`"), "{w}");
    assert!(w.contains("`models`"), "{w}");
    assert!(w.contains("`healthcheck.frequency`"), "{w}");
    assert!(w.contains("network \"n\": `ipam`"), "{w}");
}

#[test]
fn type_errors_point_at_the_line() {
    let err = load_from_str(
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: x\n    ports:\n      - nonsense\n",
        )],
        Path::new("/p"),
        &env(&[]),
        &opts(),
    )
    .unwrap_err();
    match &err {
        ComposeError::Invalid {
            file,
            line,
            message,
            ..
        } => {
            assert_eq!(file, Path::new("/p/compose.yaml"));
            assert_eq!(*line, 4);
            assert!(message.contains("services.web.ports"), "{message}");
            assert!(message.contains("port number"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn syntax_errors_have_line_and_column() {
    let err = load_from_str(
        &[("compose.yaml", "services:\n  web:\n    image: \"x\n")],
        Path::new("/p"),
        &env(&[]),
        &opts(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("/p/compose.yaml:"), "{text}");
    assert!(matches!(err, ComposeError::Invalid { line, column, .. } if line > 0 && column > 0));
}

#[test]
fn several_files_merge_in_order_with_reset_and_override() {
    let l = load_from_str(
        &[
            (
                "compose.yaml",
                "services:\n  web:\n    image: w\n    command: a b\n    ports: ['80:80']\n    environment: [A=1, B=2]\n    labels: {x: '1'}\n  db: {image: pg}\n",
            ),
            (
                "compose.ci.yaml",
                "services:\n  web:\n    command: [c]\n    ports: !reset []\n    environment: {B: '3'}\n    labels: !override {y: '2'}\n  cache: {image: redis}\n",
            ),
        ],
        Path::new("/p"),
        &env(&[]),
        &opts(),
    )
    .unwrap();
    let web = &l.project.services["web"];
    assert_eq!(web.command.as_ref().unwrap(), &vec!["c"]);
    assert!(web.ports.is_empty());
    assert_eq!(web.environment["A"].as_deref(), Some("1"));
    assert_eq!(web.environment["B"].as_deref(), Some("3"));
    assert_eq!(web.labels.len(), 1);
    assert_eq!(web.labels["y"], "2");
    let names: Vec<&str> = l.project.services.keys().map(String::as_str).collect();
    assert_eq!(names, vec!["web", "db", "cache"]);
}

#[test]
fn profiles_from_flag_and_environment() {
    let yaml = "services:\n  web: {image: w}\n  beat: {image: b, profiles: [beat]}\n  debug: {image: d, profiles: [debug]}\n";
    let names = |l: &Loaded| l.project.services.keys().cloned().collect::<Vec<_>>();
    let none = from_str(yaml, &[]);
    assert_eq!(names(&none), vec!["web"]);
    let mut o = opts();
    o.profiles = vec!["beat".into()];
    let flag = load_from_str(&[("compose.yaml", yaml)], Path::new("/p"), &env(&[]), &o).unwrap();
    assert_eq!(names(&flag), vec!["web", "beat"]);
    let envp = from_str(yaml, &[("COMPOSE_PROFILES", "debug,beat")]);
    assert_eq!(names(&envp), vec!["web", "beat", "debug"]);
}

#[test]
fn project_name_precedence() {
    let yaml = "name: From-File\nservices:\n  a: {image: x}\n";
    assert_eq!(from_str(yaml, &[]).project.name, "from-file");
    assert_eq!(
        from_str(yaml, &[("COMPOSE_PROJECT_NAME", "envname")])
            .project
            .name,
        "envname"
    );
    let mut o = opts();
    o.project_name = Some("flag-name".into());
    let l = load_from_str(
        &[("compose.yaml", yaml)],
        Path::new("/p"),
        &env(&[("COMPOSE_PROJECT_NAME", "envname")]),
        &o,
    )
    .unwrap();
    assert_eq!(l.project.name, "flag-name");
    // Like Compose v2, a name given with -p or COMPOSE_PROJECT_NAME is not normalised: an
    // invalid one is refused (a `name:` or directory name is normalised).
    o.project_name = Some("Flag.Name".into());
    let err = load_from_str(&[("compose.yaml", yaml)], Path::new("/p"), &env(&[]), &o)
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid project name \"Flag.Name\""), "{err}");
    let err = load_from_str(
        &[("compose.yaml", yaml)],
        Path::new("/p"),
        &env(&[("COMPOSE_PROJECT_NAME", "My Proj")]),
        &opts(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("COMPOSE_PROJECT_NAME"), "{err}");
    assert_eq!(
        from_str("services:\n  a: {image: x}\n", &[]).project.name,
        "app"
    );
}

#[test]
fn extends_in_the_same_file() {
    let l = from_str(
        "services:\n  base:\n    image: py\n    environment: {A: '1', B: '1'}\n    command: base\n  web:\n    extends: base\n    environment: {B: '2'}\n  tests:\n    extends: {service: web}\n    command: pytest\n",
        &[],
    );
    let tests = &l.project.services["tests"];
    assert_eq!(tests.image.as_deref(), Some("py"));
    assert_eq!(tests.environment["A"].as_deref(), Some("1"));
    assert_eq!(tests.environment["B"].as_deref(), Some("2"));
    assert_eq!(tests.command.as_ref().unwrap(), &vec!["pytest"]);
}

#[test]
fn extends_loop_is_an_error() {
    let err = load_from_str(
        &[(
            "compose.yaml",
            "services:\n  a: {extends: b}\n  b: {extends: a}\n",
        )],
        Path::new("/p"),
        &env(&[]),
        &opts(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("loop"), "{err}");
}

#[test]
fn extends_from_another_file_resolves_its_paths_there() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "common/base.yml",
        "services:\n  py:\n    build: ./ctx\n    env_file: base.env\n    volumes: ['./src:/src']\n",
    );
    write(root, "common/base.env", "FROM_BASE=yes\n");
    write(root, "compose.yaml", "services:\n  app:\n    extends: {file: common/base.yml, service: py}\n    environment: [LOCAL=1]\n");
    let l = load(&opts(), &env(&[]), root).unwrap();
    let app = &l.project.services["app"];
    assert_eq!(app.build.as_ref().unwrap().context, root.join("common/ctx"));
    assert_eq!(app.environment["FROM_BASE"].as_deref(), Some("yes"));
    assert_eq!(app.environment["LOCAL"].as_deref(), Some("1"));
    assert_eq!(
        app.volumes[0].source.as_deref(),
        Some(root.join("common/src").to_str().unwrap())
    );
}

#[test]
fn env_files_and_environment_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.env", "A=from-a\nB=from-a\nFROM_SHELL\n");
    write(root, "b.env", "B=from-b\n");
    write(
        root,
        "compose.yaml",
        "services:\n  s1:\n    image: x\n    env_file: a.env\n  s2:\n    image: x\n    env_file: [a.env, b.env]\n    environment: [B=env, C, D]\n  s3:\n    image: x\n    env_file:\n      - path: missing.env\n        required: false\n      - path: b.env\n",
    );
    let l = load(&opts(), &env(&[("FROM_SHELL", "sh"), ("C", "c")]), root).unwrap();
    let s = &l.project.services;
    assert_eq!(s["s1"].environment["A"].as_deref(), Some("from-a"));
    assert_eq!(s["s1"].environment["FROM_SHELL"].as_deref(), Some("sh"));
    assert_eq!(s["s2"].environment["B"].as_deref(), Some("env"));
    assert_eq!(s["s2"].environment["C"].as_deref(), Some("c"));
    assert_eq!(s["s2"].environment["D"], None);
    assert_eq!(s["s3"].environment["B"].as_deref(), Some("from-b"));
    let missing = write(
        root,
        "compose.yaml",
        "services:\n  s:\n    image: x\n    env_file: nope.env\n",
    );
    let err = load(&opts(), &env(&[]), root).unwrap_err().to_string();
    assert!(
        err.contains("nope.env") && err.contains(missing.to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn dotenv_feeds_interpolation_and_shell_wins() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        ".env",
        "TAG=from-dotenv\nPORT=5555\nCOMPOSE_PROJECT_NAME=dotenvname\n",
    );
    write(
        root,
        "compose.yaml",
        "services:\n  a:\n    image: app:${TAG}\n    ports: ['${PORT}:80']\n",
    );
    let l = load(&opts(), &env(&[("TAG", "shell")]), root).unwrap();
    let a = &l.project.services["a"];
    assert_eq!(a.image.as_deref(), Some("app:shell"));
    assert_eq!(a.ports[0].published.as_deref(), Some("5555"));
    assert_eq!(l.project.name, "dotenvname");
    // `.env` is for interpolation only: it does not reach the container.
    assert!(a.environment.is_empty());
}

#[test]
fn default_files_override_file_and_compose_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "docker-compose.yml",
        "services:\n  a: {image: main}\n",
    );
    write(
        root,
        "docker-compose.override.yml",
        "services:\n  a: {image: override}\n",
    );
    write(
        root,
        "ci.yml",
        "services:\n  a: {image: ci}\n  b: {image: b}\n",
    );
    let sub = root.join("sub");
    std::fs::create_dir(&sub).unwrap();
    // Found from a subdirectory, with the override applied automatically.
    let l = load(&opts(), &env(&[]), &sub).unwrap();
    assert_eq!(l.project.services["a"].image.as_deref(), Some("override"));
    assert_eq!(l.project.files.len(), 2);
    assert_eq!(l.project.project_dir, root);
    // COMPOSE_FILE replaces the default files (no automatic override).
    let l = load(
        &opts(),
        &env(&[("COMPOSE_FILE", "docker-compose.yml:ci.yml")]),
        root,
    )
    .unwrap();
    assert_eq!(l.project.services["a"].image.as_deref(), Some("ci"));
    assert_eq!(
        l.project.files,
        vec![root.join("docker-compose.yml"), root.join("ci.yml")]
    );
    // -f wins over COMPOSE_FILE.
    let mut o = opts();
    o.files = vec!["docker-compose.yml".into()];
    let l = load(&o, &env(&[("COMPOSE_FILE", "ci.yml")]), root).unwrap();
    assert_eq!(l.project.services["a"].image.as_deref(), Some("main"));
}

#[test]
fn project_directory_sets_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "deploy/compose.yaml",
        "services:\n  a:\n    build: .\n",
    );
    let mut o = opts();
    o.files = vec!["deploy/compose.yaml".into()];
    o.project_directory = Some(".".into());
    let l = load(&o, &env(&[]), root).unwrap();
    assert_eq!(l.project.project_dir, root);
    assert_eq!(
        l.project.services["a"].build.as_ref().unwrap().context,
        root
    );
    let expected_name =
        compose_shard::compose::normalize_project_name(root.file_name().unwrap().to_str().unwrap());
    assert_eq!(Some(l.project.name.clone()), expected_name);
}

#[test]
fn no_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&opts(), &env(&[]), dir.path()).unwrap_err();
    assert!(matches!(err, ComposeError::NoFile { .. }));
    assert!(err.to_string().contains("compose.yaml"));
}

#[test]
fn env_file_flag_replaces_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".env", "TAG=dotenv\n");
    write(root, "ci.env", "TAG=ci\n");
    write(
        root,
        "compose.yaml",
        "services:\n  a:\n    image: app:${TAG}\n",
    );
    let mut o = opts();
    o.env_file = Some("ci.env".into());
    let l = load(&o, &env(&[]), root).unwrap();
    assert_eq!(l.project.services["a"].image.as_deref(), Some("app:ci"));
    o.env_file = Some("missing.env".into());
    let err = load(&o, &env(&[]), root).unwrap_err().to_string();
    assert!(err.contains("missing.env"), "{err}");
}

#[test]
fn type_error_in_an_override_file_names_that_file() {
    let err = load_from_str(
        &[
            ("compose.yaml", "services:\n  web:\n    image: x\n"),
            ("compose.override.yaml", "services:\n  web: {}\n  db:\n    image: pg\n    healthcheck:\n      interval: soon\n"),
        ],
        Path::new("/p"),
        &env(&[]),
        &opts(),
    )
    .unwrap_err();
    match err {
        ComposeError::Invalid {
            file,
            line,
            message,
            ..
        } => {
            assert_eq!(file, Path::new("/p/compose.override.yaml"));
            assert_eq!(line, 6);
            assert!(
                message.contains("services.db.healthcheck.interval"),
                "{message}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Issue 23: `docker compose run SERVICE` reads and checks only what it starts; the
/// problems of single services wait until a run starts them.
mod problems_of_single_services {
    use super::*;
    use indexmap::IndexSet;

    const STACK: &str = "services:
  test:
    image: app
    depends_on: [db]
  db:
    image: postgres
  web:
    image: app
    env_file: .env
  webx:
    extends: web
  ci:
    image: ${CI_IMAGE:?set CI_IMAGE to the image CI built}
    environment:
      - TOKEN=${TOKEN:?}
  ci-copy:
    extends: ci
  tool:
    image: ${TOOL_IMAGE}
";

    fn deferred() -> ComposeOptions {
        ComposeOptions {
            defer_service_problems: true,
            ..ComposeOptions::default()
        }
    }

    fn set(names: &[&str]) -> IndexSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn config_still_fails_on_the_first_problem_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_from_str(&[("compose.yaml", STACK)], dir.path(), &env(&[]), &opts())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot read env file") && err.contains(".env"),
            "{err}"
        );
        assert!(
            err.contains("compose.yaml:9:"),
            "points at web's env_file: {err}"
        );
    }

    #[test]
    fn each_service_keeps_its_own_problems_and_extends_inherits_them() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load_from_str(
            &[("compose.yaml", STACK)],
            dir.path(),
            &env(&[]),
            &deferred(),
        )
        .unwrap();
        let with_problems: Vec<&String> = loaded.problems.keys().collect();
        assert_eq!(with_problems, ["web", "webx", "ci", "ci-copy", "tool"]);
        let ci: Vec<String> = loaded.problems["ci"]
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(ci.len(), 2, "{ci:?}");
        assert!(ci[0].contains("compose.yaml:13: required variable CI_IMAGE is missing a value: set CI_IMAGE to the image CI built"), "{ci:?}");
        assert!(ci[1].contains("TOKEN"), "{ci:?}");
        assert!(loaded.problems["ci-copy"][0]
            .to_string()
            .contains("CI_IMAGE"));
        assert!(loaded.problems["tool"][0]
            .to_string()
            .contains("neither an image nor a build"));
        // The services are still there, so that nothing else about the project changes.
        assert!(loaded.project.services.contains_key("ci-copy"));
    }

    #[test]
    fn a_run_fails_only_on_the_services_it_starts_and_warns_about_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let load = || {
            load_from_str(
                &[("compose.yaml", STACK)],
                dir.path(),
                &env(&[]),
                &deferred(),
            )
            .unwrap()
        };
        let mut loaded = load();
        loaded.check_started(&set(&["test", "db"])).unwrap();
        assert!(loaded.problems.is_empty());
        for service in ["web", "webx", "ci", "ci-copy", "tool"] {
            assert!(
                loaded.warnings.iter().any(|w| w.starts_with(&format!(
                    "service {service:?} is not started by this run and is ignored: "
                ))),
                "{service}: {:?}",
                loaded.warnings
            );
        }
        let err = load()
            .check_started(&set(&["webx"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read env file"), "{err}");
        let err = load()
            .check_started(&set(&["ci-copy"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("CI_IMAGE"), "{err}");
        // Once the file exists and the variables are set, nothing is left.
        write(dir.path(), ".env", "A=1\n");
        let vars = env(&[("CI_IMAGE", "ci"), ("TOKEN", "t"), ("TOOL_IMAGE", "tool")]);
        let loaded =
            load_from_str(&[("compose.yaml", STACK)], dir.path(), &vars, &deferred()).unwrap();
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(
            loaded.project.services["webx"].environment["A"].as_deref(),
            Some("1")
        );
    }

    #[test]
    fn a_disabled_or_reset_service_has_no_problems() {
        let dir = tempfile::tempdir().unwrap();
        let text = "services:\n  test: {image: app}\n  web: {image: app, env_file: .env, profiles: [dev]}\n  gone: {image: '${GONE:?}'}\n";
        let reset = "services:\n  gone: !reset {}\n";
        let loaded = load_from_str(
            &[("compose.yaml", text), ("compose.override.yaml", reset)],
            dir.path(),
            &env(&[]),
            &opts(),
        )
        .unwrap();
        assert!(loaded.problems.is_empty());
        assert_eq!(loaded.project.services.keys().collect::<Vec<_>>(), ["test"]);
    }
}
