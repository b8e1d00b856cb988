//! Behavioural differential against Docker Compose v2 (issue 23): not what `config` prints,
//! what the engine receives. For every corpus project v2 loads and every stack of
//! `compose-templates/`, Compose v2 creates (does not start) the containers of
//! `run SERVICE` (`docker compose create --no-build --pull never SERVICE`, which creates
//! SERVICE and its dependencies), and compose-shard creates the same services through the
//! library path a run takes: load (problems of single services deferred) -> the test
//! service -> its closure -> restrict -> isolate -> missing bind sources created -> networks
//! and volumes -> `DockerEngine::create_service_container` with the run's overrides (the
//! `secrets:`/`configs:` file mounts; a build service gets the image Compose names).
//!
//! `docker inspect` of both sides is reduced, service by service, to what a container runs
//! with: image, command, entrypoint, environment, user, working dir, mounts (type, source,
//! target, read-only, whether a missing bind source is created), tmpfs, ulimits,
//! healthcheck, init, extra hosts, networks and aliases, stop signal and grace period,
//! labels other than each tool's own, resource limits, privileges. Names differ by design
//! (project, containers, networks, volumes are normalised to their compose keys); every
//! other difference fails the test unless it is one of [`DELIBERATE`], each listed with its
//! reason in docs/compose.md.
//!
//! No registry is reachable: every image a project names is a local tag of the fixture image
//! for the time of the test (and removed afterwards with everything both tools created).
//! The corpus files are read in place from `COMPOSE_SHARD_SHARED` and copied to a temporary
//! folder with stand-ins for the env files and build contexts they name.

mod corpus_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use compose_shard::compose::{self, Isolation, Project, ServiceGraph};
use compose_shard::config::ComposeOptions;
use compose_shard::engine::{ContainerOverrides, DockerEngine};
use compose_shard::labels;
use serde_json::{json, Value};

const BASE_IMAGE: &str = "compose-shard-fixtures/base:bookworm";

/// The fixture images the templates name through these variables (`ci/fixture-env`).
const FIXTURE_ENV: [(&str, &str); 3] = [
    ("POSTGRES_IMAGE", "compose-shard-fixtures/postgres:15"),
    ("REDIS_IMAGE", "compose-shard-fixtures/redis:7"),
    ("PYTHON_IMAGE", "compose-shard-fixtures/python:3.11"),
];

/// Corpus files Compose v2 refuses alone (see `compose_v2_differential.rs`).
const V2_REFUSES: &[&str] = &[
    "mozilla__kitsune__docker__docker-compose.ci.yml",
    "taigaio__taiga-docker__docker-compose-inits.yml",
];

/// Differences by design, each listed in docs/compose.md ("What the engine receives"):
/// `(field, why)`. A difference in one of these fields is accepted only where the test
/// says so below (see [`deliberate`]).
const DELIBERATE: &[(&str, &str)] = &[
    (
        "mounts",
        "a writable bind of a data directory of a non-test service becomes a per-group volume",
    ),
    (
        "aliases",
        "a `links` alias is a network alias of the linked service (Compose v2 sends a legacy link on the linking container)",
    ),
];

fn compose_v2() -> PathBuf {
    if let Some(p) = std::env::var_os("COMPOSE_V2") {
        return PathBuf::from(p);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/compose-v2");
    let out = Command::new(&script).output().expect("run ci/compose-v2");
    assert!(
        out.status.success(),
        "ci/compose-v2 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker")
}

/// One project to compare.
struct Case {
    label: String,
    /// Project directory (the compose files are in it).
    dir: PathBuf,
    /// `-f` arguments, empty for the default files.
    files: Vec<String>,
    env: Vec<(String, String)>,
    _keep: tempfile::TempDir,
}

fn corpus_cases() -> Vec<Case> {
    corpus_support::corpus_files()
        .into_iter()
        .filter_map(|file| {
            let name = file.file_name()?.to_string_lossy().into_owned();
            if V2_REFUSES.contains(&name.as_str()) {
                return None;
            }
            let staged = corpus_support::stage(&[(&file, "docker-compose.yml")]);
            Some(Case {
                label: name,
                dir: staged.files[0].parent().unwrap().to_path_buf(),
                files: vec!["docker-compose.yml".into()],
                env: staged.env.clone(),
                _keep: staged.dir,
            })
        })
        .collect()
}

/// A project written here that uses every compared field (the corpus and templates leave
/// many unused): the test service with its dependencies, a healthcheck, `links`, aliases,
/// secrets and configs from files, binds in both syntaxes (a missing source to create, an
/// existing one that must not be), tmpfs, ulimits, init, extra hosts, stop settings,
/// labels, limits and privileges.
const FIELDS: &str = r#"
services:
  tests:
    image: fields/app:1
    build: .
    command: pytest -q "tests/a b"
    entrypoint: ["/bin/sh", "-c", "exec \"$$@\"", "--"]
    working_dir: /code
    user: "1000:1000"
    hostname: tests-host
    environment:
      - PLAIN=1
      - QUOTED="two words"
      - FROM_SHELL
    env_file: [app.env]
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
    links: ["cache:redis-cache"]
    volumes:
      - .:/code
      - ./reports/htmlcov:/code/htmlcov
      - type: bind
        source: ./fixtures
        target: /fixtures
        read_only: true
        bind: {create_host_path: false}
      - scratch:/scratch
      - /anonymous
    tmpfs: ["/run/app:size=1m"]
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      nproc: 512
    init: true
    extra_hosts: ["api.local:10.1.2.3", "other.local=10.1.2.4"]
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    labels: {team: qa, "org.example.kind": tests}
    mem_limit: 256m
    shm_size: 128m
    cap_add: [SYS_PTRACE]
    cap_drop: [NET_RAW]
    read_only: false
    sysctls: {net.core.somaxconn: "1024"}
    tty: true
    stdin_open: true
    secrets: [token]
    configs:
      - source: settings
        target: /etc/app/settings.ini
  db:
    image: fields/postgres:15
    environment: {POSTGRES_PASSWORD: pw}
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 2s
      timeout: 5s
      retries: 10
      start_period: 30s
    volumes: ["./pgdata:/var/lib/postgresql/data"]
    networks:
      default:
        aliases: [database, pg]
  cache:
    image: fields/redis:7
    command: ["redis-server", "--save", ""]
    stop_grace_period: 3s
    healthcheck:
      disable: true
  unrelated:
    image: fields/other
    env_file: missing-by-design.env
volumes:
  scratch: {}
secrets:
  token: {file: ./token.txt}
configs:
  settings: {file: ./settings.ini}
"#;

fn fields_case() -> Case {
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path().join("fields");
    std::fs::create_dir_all(dir.join("fixtures")).unwrap();
    std::fs::create_dir_all(dir.join("pgdata")).unwrap();
    for (name, text) in [
        ("compose.yaml", FIELDS),
        ("app.env", "FROM_FILE=yes\nPLAIN=overridden\n"),
        ("token.txt", "s3cret\n"),
        ("settings.ini", "[app]\n"),
        ("Dockerfile", "FROM scratch\n"),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    Case {
        label: "fields (written by this test)".into(),
        dir,
        files: Vec::new(),
        env: vec![("FROM_SHELL".into(), "shell value".into())],
        _keep: keep,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn template_cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("compose-templates");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("docker-compose.yml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 3, "templates: {names:?}");
    names
        .into_iter()
        .map(|name| {
            let keep = tempfile::tempdir().unwrap();
            let dir = keep.path().join(&name);
            copy_dir(&root.join(&name), &dir);
            Case {
                label: format!("compose-templates/{name}"),
                dir,
                files: Vec::new(),
                env: FIXTURE_ENV
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                _keep: keep,
            }
        })
        .collect()
}

/// Compose v2 in the case's folder with exactly the case's environment (plus PATH, HOME).
fn v2(case: &Case, project: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(compose_v2());
    cmd.current_dir(&case.dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &case.dir)
        .envs(case.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["-p", project]);
    for f in &case.files {
        cmd.args(["-f", f]);
    }
    cmd.args(args).stdin(Stdio::null()).output().unwrap()
}

/// External networks and volumes a project names, created for the time of a case (both
/// tools refuse to create containers on a missing external network).
struct Externals(Vec<(&'static str, String)>);

impl Externals {
    fn create(config: &Value) -> Externals {
        let mut made = Vec::new();
        for (kind, section) in [("network", "networks"), ("volume", "volumes")] {
            let Some(defs) = config[section].as_object() else {
                continue;
            };
            for (key, def) in defs {
                if def["external"].as_bool() != Some(true) {
                    continue;
                }
                let name = def["name"].as_str().unwrap_or(key).to_string();
                if docker(&[kind, "inspect", &name]).status.success() {
                    continue;
                }
                let out = docker(&[kind, "create", &name]);
                assert!(out.status.success(), "docker {kind} create {name}: {out:?}");
                made.push((kind, name));
            }
        }
        Externals(made)
    }
}

impl Drop for Externals {
    fn drop(&mut self) {
        for (kind, name) in &self.0 {
            let _ = docker(&[kind, "rm", name]);
        }
    }
}

/// Tags of the fixture image made for a case, removed at the end.
#[derive(Default)]
struct Tags(Vec<String>);

impl Tags {
    fn ensure(&mut self, image: &str) {
        if image.is_empty() || self.0.iter().any(|t| t == image) {
            return;
        }
        if docker(&["image", "inspect", image]).status.success() {
            return;
        }
        let out = docker(&["tag", BASE_IMAGE, image]);
        assert!(out.status.success(), "docker tag {image}: {out:?}");
        self.0.push(image.to_string());
    }
}

impl Drop for Tags {
    fn drop(&mut self) {
        for tag in &self.0 {
            let _ = docker(&["rmi", "--no-prune", tag]);
        }
    }
}

/// Everything both tools created for a case, removed even when the comparison fails.
struct Cleanup<'a> {
    case: &'a Case,
    v2_project: String,
    run_id: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = v2(
            self.case,
            &self.v2_project,
            &["down", "-v", "--remove-orphans"],
        );
        let label = format!("{}={}", labels::RUN, self.run_id);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            if let Ok(engine) = DockerEngine::connect().await {
                let _ = engine.remove_labelled(&label).await;
            }
        });
    }
}

/// The environment as the loader sees it: the case's variables only.
fn env_map(case: &Case) -> std::collections::HashMap<String, String> {
    let mut env: std::collections::HashMap<String, String> = case.env.iter().cloned().collect();
    env.insert("HOME".into(), case.dir.display().to_string());
    env
}

/// What a group of `compose-shard run` would start for `case`, isolated, with its test
/// service, following the run's own steps (see `commands/selection.rs`).
fn our_group(case: &Case, project_name: &str, run_id: &str) -> (Project, String, Value) {
    let opts = ComposeOptions {
        files: case.files.iter().map(PathBuf::from).collect(),
        project_name: Some(project_name.to_string()),
        defer_service_problems: true,
        ..ComposeOptions::default()
    };
    let mut loaded = compose::load(&opts, &env_map(case), &case.dir)
        .unwrap_or_else(|e| panic!("{}: compose-shard cannot load it: {e}", case.label));
    let project = &loaded.project;
    let test = match compose::select_test_service(project, None, None) {
        Ok(choice) => choice.name,
        // No service looks like the tests': the one that starts the most.
        Err(_) => {
            let graph = ServiceGraph::new(project);
            project
                .services
                .keys()
                .max_by_key(|s| graph.run_closure(&[s]).map_or(0, |c| c.len()))
                .cloned()
                .unwrap()
        }
    };
    let keep = compose::run_closure(project, &test, &[]).unwrap();
    loaded
        .check_started(&keep)
        .unwrap_or_else(|e| panic!("{}: {e}", case.label));
    let whole = serde_json::to_value(&loaded.project).unwrap();
    let restricted = compose::restrict(&loaded.project, &keep);
    let iso = Isolation {
        run_id: run_id.to_string(),
        group: 1,
        groups: 1,
        publish_ports: false,
        test_service: Some(test.clone()),
    };
    (compose::isolate(&restricted, &iso).unwrap(), test, whole)
}

/// Create the group's networks, volumes and containers as a run does, without starting.
async fn create_ours(engine: &DockerEngine, project: &Project) -> Result<(), String> {
    compose_shard::run::create_missing_bind_sources(project).map_err(|e| e.to_string())?;
    let name = |key: &str, explicit: &Option<String>| {
        explicit
            .clone()
            .unwrap_or_else(|| format!("{}_{key}", project.name))
    };
    for (key, net) in project.networks.iter().filter(|(_, n)| !n.external) {
        engine
            .create_network(
                &name(key, &net.name),
                net.driver.as_deref(),
                net.internal,
                &net.labels,
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    for (key, vol) in project.volumes.iter().filter(|(_, v)| !v.external) {
        engine
            .create_volume(
                &name(key, &vol.name),
                vol.driver.as_deref(),
                &vol.driver_opts,
                &vol.labels,
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let order = ServiceGraph::new(project).topological_order().unwrap();
    for service in order.iter().map(|s| &project.services[s]) {
        let overrides = ContainerOverrides {
            files: compose::file_mounts(project, service).map_err(|e| e.to_string())?,
            ..ContainerOverrides::default()
        };
        engine
            .create_service_container(project, service, &overrides)
            .await
            .map_err(|e| compose_shard::errors::render_chain(&e))?;
    }
    Ok(())
}

/// `docker inspect` of the containers carrying `label`, by compose service.
fn inspect_by_service(label: &str) -> BTreeMap<String, Value> {
    let out = docker(&["ps", "-a", "-q", "--filter", &format!("label={label}")]);
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return BTreeMap::new();
    }
    let mut args = vec!["inspect"];
    args.extend(ids.iter().map(String::as_str));
    let out = docker(&args);
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    all.into_iter()
        .map(|c| {
            let service = c["Config"]["Labels"][labels::COMPOSE_SERVICE]
                .as_str()
                .unwrap_or("?")
                .to_string();
            (service, c)
        })
        .collect()
}

/// How one side names things, to bring names back to compose keys.
struct Naming<'a> {
    /// Network and volume prefix (`<project>_`).
    prefix: String,
    /// Engine network name -> compose key, for networks with a `name:`.
    networks: BTreeMap<String, String>,
    /// Engine container name -> service.
    containers: BTreeMap<String, String>,
    /// Original `container_name`s by service (what the other side also answers to).
    original_names: &'a BTreeMap<String, String>,
}

impl<'a> Naming<'a> {
    /// The naming of project `project` whose containers are `inspected` (by service).
    fn of(
        project: &str,
        networks: BTreeMap<String, String>,
        inspected: &BTreeMap<String, Value>,
        original_names: &'a BTreeMap<String, String>,
    ) -> Naming<'a> {
        Naming {
            prefix: format!("{project}_"),
            networks,
            containers: inspected
                .iter()
                .map(|(s, c)| (container_name(c), s.clone()))
                .collect(),
            original_names,
        }
    }

    fn network(&self, engine_name: &str) -> String {
        if let Some(k) = self.networks.get(engine_name) {
            return k.clone();
        }
        engine_name
            .strip_prefix(&self.prefix)
            .unwrap_or(engine_name)
            .to_string()
    }

    fn volume(&self, engine_name: &str) -> String {
        if engine_name.len() == 64 && engine_name.chars().all(|c| c.is_ascii_hexdigit()) {
            return "<anonymous>".into();
        }
        engine_name
            .strip_prefix(&self.prefix)
            .unwrap_or(engine_name)
            .to_string()
    }
}

fn sorted_strings(v: &Value) -> Value {
    let mut items: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    items.sort();
    json!(items)
}

/// The fields compared, from one container's inspect. `created_binds`: targets of binds
/// whose missing source is created.
fn reduce(
    c: &Value,
    naming: &Naming<'_>,
    created_binds: &BTreeSet<String>,
) -> BTreeMap<String, Value> {
    let config = &c["Config"];
    let host = &c["HostConfig"];
    let mut f = BTreeMap::new();
    f.insert("image".into(), config["Image"].clone());
    f.insert("command".into(), config["Cmd"].clone());
    f.insert("entrypoint".into(), config["Entrypoint"].clone());
    f.insert("environment".into(), sorted_strings(&config["Env"]));
    f.insert("user".into(), config["User"].clone());
    f.insert("working_dir".into(), config["WorkingDir"].clone());
    f.insert("mounts".into(), reduced_mounts(c, naming, created_binds));
    f.insert("tmpfs".into(), host["Tmpfs"].clone());
    // Compose v2 walks a Go map: the order is not meaningful.
    let mut ulimits = host["Ulimits"].as_array().cloned().unwrap_or_default();
    ulimits.sort_by_key(|u| u["Name"].as_str().unwrap_or("").to_string());
    f.insert("ulimits".into(), json!(ulimits));
    f.insert("healthcheck".into(), config["Healthcheck"].clone());
    f.insert(
        "init".into(),
        json!(host["Init"].as_bool().unwrap_or(false)),
    );
    f.insert("extra_hosts".into(), sorted_strings(&host["ExtraHosts"]));
    f.insert("stop_signal".into(), config["StopSignal"].clone());
    f.insert("stop_timeout".into(), config["StopTimeout"].clone());
    let own = |k: &str| k.starts_with("com.docker.compose.") || k.starts_with("dev.compose-shard.");
    let user_labels: BTreeMap<String, Value> = config["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !own(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    f.insert("labels".into(), json!(user_labels));
    f.insert("resources".into(), pick(host, RESOURCES));
    f.insert("privileges".into(), pick(host, PRIVILEGES));
    f.insert("tty".into(), json!([config["Tty"], config["OpenStdin"]]));
    f.insert("network_mode".into(), network_mode(host, naming));
    f.insert("aliases".into(), reduced_aliases(c, naming));
    f
}

/// Resource limits of the host config compared.
const RESOURCES: &[&str] = &[
    "Memory",
    "MemoryReservation",
    "MemorySwap",
    "NanoCpus",
    "CpuShares",
    "CpuQuota",
    "CpuPeriod",
    "CpusetCpus",
    "PidsLimit",
    "ShmSize",
    "OomKillDisable",
];

/// Privileges of the host config compared.
const PRIVILEGES: &[&str] = &[
    "Privileged",
    "CapAdd",
    "CapDrop",
    "Sysctls",
    "ReadonlyRootfs",
    "SecurityOpt",
    "Devices",
];

fn pick(host: &Value, keys: &[&str]) -> Value {
    let picked: BTreeMap<&str, Value> = keys.iter().map(|k| (*k, host[*k].clone())).collect();
    json!(picked)
}

/// The mounts by target: type, source (a volume by its compose key), read-only, and whether
/// a missing bind source is created.
fn reduced_mounts(c: &Value, naming: &Naming<'_>, created_binds: &BTreeSet<String>) -> Value {
    let mut mounts: Vec<Value> = c["Mounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let kind = m["Type"].as_str().unwrap_or("");
            let target = m["Destination"].as_str().unwrap_or("").to_string();
            let source = match kind {
                "volume" => naming.volume(m["Name"].as_str().unwrap_or("")),
                _ => m["Source"].as_str().unwrap_or("").to_string(),
            };
            json!({
                "type": kind,
                "source": source,
                "target": target,
                "read_only": !m["RW"].as_bool().unwrap_or(true),
                "created_if_missing": kind == "bind" && created_binds.contains(&target),
            })
        })
        .collect();
    mounts.sort_by_key(|m| m["target"].as_str().unwrap_or("").to_string());
    json!(mounts)
}

/// `container:<service>`, `<network>` for a project network, else the mode as it is.
fn network_mode(host: &Value, naming: &Naming<'_>) -> Value {
    let mode = host["NetworkMode"].as_str().unwrap_or("");
    let reduced = match mode.strip_prefix("container:") {
        Some(name) => format!(
            "container:{}",
            naming
                .containers
                .get(name)
                .cloned()
                .unwrap_or_else(|| name.to_string())
        ),
        None if mode.contains('_') || naming.networks.contains_key(mode) => "<network>".into(),
        None => mode.to_string(),
    };
    json!(reduced)
}

/// Each network by compose key with the container's aliases there, without its own engine
/// name and short id, with the service's original `container_name` (the other side's
/// container answers to it as its name).
fn reduced_aliases(c: &Value, naming: &Naming<'_>) -> Value {
    let service = c["Config"]["Labels"][labels::COMPOSE_SERVICE]
        .as_str()
        .unwrap_or("");
    let own_name = container_name(c);
    let id = c["Id"].as_str().unwrap_or("");
    let networks: BTreeMap<String, Value> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|nets| {
            nets.iter()
                .map(|(name, ep)| {
                    let mut aliases: BTreeSet<String> = ep["Aliases"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    // The engine adds the container's short id (API < 1.45).
                    aliases.retain(|a| {
                        *a != own_name && !(a.len() == 12 && id.starts_with(a.as_str()))
                    });
                    if let Some(original) = naming.original_names.get(service) {
                        aliases.insert(original.clone());
                    }
                    (naming.network(name), json!(aliases))
                })
                .collect()
        })
        .unwrap_or_default();
    json!(networks)
}

/// Whether a difference in `field` of `service` is one of [`DELIBERATE`].
fn deliberate(
    field: &str,
    service: &str,
    (ours, theirs): (&Value, &Value),
    project: &Project,
) -> bool {
    let notes = project
        .isolation
        .as_ref()
        .map(|i| i.notes.as_slice())
        .unwrap_or_default();
    if !DELIBERATE.iter().any(|(f, _)| *f == field) {
        return false;
    }
    match field {
        // The data-directory replacement is reported in the isolation notes; everything
        // else about the mounts must still match.
        "mounts" => {
            let replaced: Vec<String> = notes
                .iter()
                .filter(|n| n.starts_with(&format!("service {service:?}: bind mount ")))
                .filter_map(|n| {
                    n.split(" -> ")
                        .nth(1)?
                        .split(' ')
                        .next()
                        .map(str::to_string)
                })
                .collect();
            let without = |v: &Value| -> Vec<Value> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .filter(|m| !replaced.iter().any(|t| m["target"] == json!(t)))
                    .cloned()
                    .collect()
            };
            !replaced.is_empty() && without(ours) == without(theirs)
        }
        // Our extra aliases must be exactly the `links` aliases naming this service.
        "aliases" => {
            let link_aliases: Vec<String> = project
                .services
                .values()
                .flat_map(|s| &s.links)
                .filter_map(|l| l.split_once(':'))
                .filter(|(target, _)| *target == service)
                .map(|(_, alias)| alias.to_string())
                .collect();
            let mut stripped = ours.clone();
            for aliases in stripped
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
            {
                if let Some(list) = aliases.as_array_mut() {
                    list.retain(|a| !link_aliases.iter().any(|l| a == l));
                }
            }
            !link_aliases.is_empty() && stripped == *theirs
        }
        _ => false,
    }
}

/// Compare one case; the differences found (not deliberate), as lines.
fn compare_case(index: usize, case: &Case, tags: &mut Tags) -> Result<Vec<String>, String> {
    // The process id keeps two test runs on one engine apart.
    let v2_project = format!("csv2diff{}x{index}", std::process::id());
    let run_id = format!("d{}x{index}", std::process::id());
    // Same project name for both, so that default image names (`<project>-<service>`) agree.
    let (ours, test, whole) = our_group(case, &v2_project, &run_id);
    // The images, container names and networks to prepare, from v2's `config`; when v2's
    // `config` refuses the project for a service the run does not start (it checks them
    // all, `run` and `create SERVICE` do not), from ours, which agrees on these fields.
    let config = v2(case, &v2_project, &["config", "--format", "json"]);
    let v2_config: Value = if config.status.success() {
        serde_json::from_slice(&config.stdout).unwrap()
    } else {
        whole
    };
    let _externals = Externals::create(&v2_config);
    let _cleanup = Cleanup {
        case,
        v2_project: v2_project.clone(),
        run_id: run_id.clone(),
    };
    let original_names = tag_images(&v2_config, &ours, &v2_project, tags);
    let created = v2(
        case,
        &v2_project,
        &["create", "--no-build", "--pull", "never", &test],
    );
    if !created.status.success() {
        return Err(format!(
            "Compose v2 cannot create {test}: {}",
            String::from_utf8_lossy(&created.stderr)
        ));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let engine = DockerEngine::connect().await.map_err(|e| e.to_string())?;
        create_ours(&engine, &ours).await
    })
    .map_err(|e| format!("compose-shard cannot create {test}'s group: {e}"))?;

    let theirs_c = inspect_by_service(&format!("{}={v2_project}", labels::COMPOSE_PROJECT));
    let ours_c = inspect_by_service(&format!("{}={run_id}", labels::RUN));
    let names =
        |side: &BTreeMap<String, Value>| -> BTreeSet<String> { side.keys().cloned().collect() };
    if theirs_c.is_empty() {
        return Err(format!(
            "no container of Compose v2's project {v2_project} found"
        ));
    }
    eprintln!(
        "{}: {} containers each ({test} and its dependencies)",
        case.label,
        theirs_c.len()
    );
    if names(&theirs_c) != names(&ours_c) {
        return Ok(vec![format!(
            "services created: Compose v2 {:?}, compose-shard {:?}",
            names(&theirs_c),
            names(&ours_c)
        )]);
    }
    let v2_naming = Naming::of(
        &v2_project,
        named_networks(&v2_config, |k| format!("{v2_project}_{k}")),
        &theirs_c,
        &original_names,
    );
    let our_networks = ours
        .networks
        .iter()
        .filter_map(|(k, n)| Some((n.name.clone()?, k.clone())))
        .collect();
    let our_naming = Naming::of(&ours.name, our_networks, &ours_c, &original_names);
    Ok(compare_containers(
        (&theirs_c, &v2_naming),
        (&ours_c, &our_naming),
        &ours,
    ))
}

/// Tag the fixture image under every image both tools need (a build service's image is
/// `<project>-<service>` for v2); the original `container_name`s by service.
fn tag_images(
    v2_config: &Value,
    ours: &Project,
    v2_project: &str,
    tags: &mut Tags,
) -> BTreeMap<String, String> {
    let mut original_names = BTreeMap::new();
    for (name, svc) in v2_config["services"].as_object().unwrap() {
        if let Some(image) = svc["image"].as_str() {
            tags.ensure(image);
        }
        if svc.get("build").is_some() && svc["image"].is_null() {
            tags.ensure(&format!("{v2_project}-{name}"));
        }
        if let Some(cn) = svc["container_name"].as_str() {
            original_names.insert(name.clone(), cn.to_string());
        }
    }
    for svc in ours.services.values() {
        tags.ensure(svc.image.as_deref().unwrap_or(""));
    }
    original_names
}

/// Every field of every service that differs, unless [`deliberate`].
fn compare_containers(
    (theirs_c, v2_naming): (&BTreeMap<String, Value>, &Naming<'_>),
    (ours_c, our_naming): (&BTreeMap<String, Value>, &Naming<'_>),
    ours: &Project,
) -> Vec<String> {
    let mut differences = Vec::new();
    for (service, theirs) in theirs_c {
        let v2_created = v2_created_binds(theirs);
        let our_created: BTreeSet<String> = ours.services[service]
            .volumes
            .iter()
            .filter(|m| m.kind == compose::MountKind::Bind && m.create_host_path)
            .map(|m| m.target.clone())
            .collect();
        let a = reduce(theirs, v2_naming, &v2_created);
        let b = reduce(&ours_c[service], our_naming, &our_created);
        if std::env::var_os("COMPOSE_SHARD_DIFF_SHOW").is_some() {
            eprintln!("{service}: {}", serde_json::to_string(&b).unwrap());
        }
        for (field, theirs_v) in &a {
            let ours_v = &b[field];
            if ours_v != theirs_v && !deliberate(field, service, (ours_v, theirs_v), ours) {
                differences.push(format!(
                    "{service}.{field}: Compose v2 {theirs_v}, compose-shard {ours_v}"
                ));
            }
        }
    }
    differences
}

fn container_name(c: &Value) -> String {
    c["Name"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string()
}

/// Engine names of networks with `name:` in v2's config -> their keys.
fn named_networks(config: &Value, default: impl Fn(&str) -> String) -> BTreeMap<String, String> {
    config["networks"]
        .as_object()
        .map(|nets| {
            nets.iter()
                .map(|(k, n)| {
                    (
                        n["name"]
                            .as_str()
                            .map_or_else(|| default(k), str::to_string),
                        k.clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Compose v2 sends a bind whose missing source is to be created as a `Binds` string (the
/// engine creates it), any other through the mount API.
fn v2_created_binds(c: &Value) -> BTreeSet<String> {
    c["HostConfig"]["Binds"]
        .as_array()
        .map(|binds| {
            binds
                .iter()
                .filter_map(|b| b.as_str()?.split(':').nth(1).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn containers_created_for_a_run_match_what_compose_v2_creates() {
    let out = docker(&["image", "inspect", BASE_IMAGE]);
    assert!(
        out.status.success(),
        "fixture image {BASE_IMAGE} is missing: run ci/images first"
    );
    let mut cases = corpus_cases();
    cases.extend(template_cases());
    cases.push(fields_case());
    let mut tags = Tags::default();
    let mut report = Vec::new();
    let mut compared = 0;
    for (i, case) in cases.iter().enumerate() {
        match compare_case(i, case, &mut tags) {
            Ok(differences) if differences.is_empty() => compared += 1,
            Ok(differences) => {
                report.push(format!("{}:\n  {}", case.label, differences.join("\n  ")))
            }
            Err(e) => report.push(format!("{}: {e}", case.label)),
        }
    }
    eprintln!(
        "{compared} of {} projects create the same containers",
        cases.len()
    );
    assert!(report.is_empty(), "{}", report.join("\n"));
    assert!(compared >= 18, "only {compared} projects compared");
}

/// The exceptions accept exactly their difference: a mount or alias difference that is not
/// the data-directory replacement or a `links` alias is reported.
#[test]
fn deliberate_differences_accept_only_what_they_name() {
    let text = "services:\n  app: {image: a, links: ['db:database']}\n  db:\n    image: postgres\n    volumes: ['./pgdata:/var/lib/postgresql/data', './init:/docker-entrypoint-initdb.d']\n";
    let loaded = compose::load_from_str(
        &[("compose.yaml", text)],
        Path::new("/p"),
        &std::collections::HashMap::new(),
        &ComposeOptions::default(),
    )
    .unwrap();
    let iso = Isolation {
        run_id: "r".into(),
        group: 1,
        groups: 1,
        publish_ports: false,
        test_service: Some("app".into()),
    };
    let project = compose::isolate(&loaded.project, &iso).unwrap();
    let mount = |kind: &str, source: &str, target: &str| json!({"type": kind, "source": source, "target": target, "read_only": false, "created_if_missing": kind == "bind"});
    let init = mount("bind", "/p/init", "/docker-entrypoint-initdb.d");
    let theirs = json!([
        mount("bind", "/p/pgdata", "/var/lib/postgresql/data"),
        init.clone()
    ]);
    let ours = json!([
        mount(
            "volume",
            "compose-shard-db-data-1",
            "/var/lib/postgresql/data"
        ),
        init
    ]);
    assert!(deliberate("mounts", "db", (&ours, &theirs), &project));
    let other = json!([
        mount(
            "volume",
            "compose-shard-db-data-1",
            "/var/lib/postgresql/data"
        ),
        mount("bind", "/p/other", "/docker-entrypoint-initdb.d")
    ]);
    assert!(!deliberate("mounts", "db", (&other, &theirs), &project));
    assert!(!deliberate("mounts", "app", (&ours, &theirs), &project));

    let theirs = json!({"default": ["db"]});
    assert!(deliberate(
        "aliases",
        "db",
        (&json!({"default": ["database", "db"]}), &theirs),
        &project
    ));
    assert!(!deliberate(
        "aliases",
        "db",
        (&json!({"default": ["db", "pg"]}), &theirs),
        &project
    ));
    assert!(!deliberate(
        "image",
        "db",
        (&json!("a"), &json!("b")),
        &project
    ));
}
