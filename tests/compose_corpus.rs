//! The corpus of real compose files (read in place from `../shared/corpus/compose`, see
//! tests/fixtures/compose/SOURCES.md): each loads, isolates into 4 groups that share no
//! container name, host port, named volume or network, and agrees with Debian's
//! `docker-compose config` (v1) on each service's image, command, environment and
//! dependencies.
//!
//! Each file is copied into a temporary directory together with empty stand-ins for the env
//! files and build contexts it references (the corpus holds compose files only).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use compose_shard::compose::{isolate, load, Isolation, Project};
use compose_shard::config::ComposeOptions;
use serde_yaml::{Mapping, Value};

fn corpus_dir() -> PathBuf {
    let shared = std::env::var_os("COMPOSE_SHARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("corpus/compose");
    assert!(
        dir.is_dir(),
        "the compose corpus is missing at {} (set COMPOSE_SHARD_SHARED to the shared folder)",
        dir.display()
    );
    dir
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "expected at least 15 corpus files, found {}",
        files.len()
    );
    files
}

/// A temporary project directory holding a copy of one corpus file and stand-ins.
struct Staged {
    dir: tempfile::TempDir,
    file: PathBuf,
    raw: Mapping,
}

fn stage(corpus_file: &Path) -> Staged {
    let dir = tempfile::tempdir().unwrap();
    // A subdirectory, so that `context: ..` stays inside the temporary directory.
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let file = project.join("docker-compose.yml");
    std::fs::copy(corpus_file, &file).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let mut raw: Value = serde_yaml::from_str(&text).unwrap();
    raw.apply_merge().unwrap();
    let raw = raw.as_mapping().cloned().unwrap();
    if let Some(Value::Mapping(services)) = raw.get("services") {
        for def in services.values() {
            for env_file in env_files(def) {
                let path = project.join(env_file);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap();
            }
            let context = match def.get("build") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Mapping(b)) => {
                    b.get("context").and_then(Value::as_str).map(str::to_string)
                }
                _ => None,
            };
            if let Some(c) = context.filter(|c| !c.contains('$')) {
                std::fs::create_dir_all(project.join(c)).unwrap();
            }
        }
    }
    Staged { dir, file, raw }
}

fn env_files(def: &Value) -> Vec<String> {
    let items = match def.get("env_file") {
        Some(Value::Sequence(s)) => s.clone(),
        Some(other) => vec![other.clone()],
        None => vec![],
    };
    items
        .iter()
        .filter_map(|i| match i {
            Value::String(s) => Some(s.clone()),
            Value::Mapping(m) => m.get("path").and_then(Value::as_str).map(str::to_string),
            _ => None,
        })
        .collect()
}

fn minimal_env(home: &Path) -> HashMap<String, String> {
    HashMap::from([("HOME".to_string(), home.display().to_string())])
}

fn load_staged(staged: &Staged, profiles: &[&str]) -> Project {
    let opts = ComposeOptions {
        files: vec![staged.file.clone()],
        profiles: profiles.iter().map(|p| p.to_string()).collect(),
        ..ComposeOptions::default()
    };
    load(&opts, &minimal_env(staged.dir.path()), staged.dir.path())
        .unwrap_or_else(|e| panic!("{}: {e}", staged.file.display()))
        .project
}

#[test]
fn every_corpus_file_loads_and_isolates_into_disjoint_groups() {
    for corpus_file in corpus_files() {
        let name = corpus_file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let staged = stage(&corpus_file);
        let project = load_staged(&staged, &[]);
        assert!(!project.services.is_empty(), "{name}: no services");
        let mut containers = HashSet::new();
        let mut ports = HashSet::new();
        let mut volumes = HashSet::new();
        let mut networks = HashSet::new();
        for k in 1..=4 {
            let iso = Isolation {
                run_id: "corpus".into(),
                group: k,
                groups: 4,
                publish_ports: false,
                test_service: None,
            };
            let p = isolate(&project, &iso).unwrap_or_else(|e| panic!("{name}: {e}"));
            for s in p.services.values() {
                let c = s.container_name.clone().unwrap();
                assert!(containers.insert(c.clone()), "{name}: container {c} shared");
                for port in &s.ports {
                    let h = port.published.clone().unwrap_or_default();
                    assert!(
                        h.is_empty() || ports.insert(h.clone()),
                        "{name}: host port {h} shared"
                    );
                }
            }
            for (key, v) in p.volumes.iter().filter(|(_, v)| !v.external) {
                let n = v
                    .name
                    .clone()
                    .unwrap_or_else(|| panic!("{name}: volume {key} unnamed"));
                assert!(volumes.insert(n.clone()), "{name}: volume {n} shared");
            }
            for (key, net) in p.networks.iter().filter(|(_, n)| !n.external) {
                let n = net
                    .name
                    .clone()
                    .unwrap_or_else(|| panic!("{name}: network {key} unnamed"));
                assert!(networks.insert(n.clone()), "{name}: network {n} shared");
            }
        }
        // Fixed host ports are dropped by default, so none may remain at all.
        assert!(ports.is_empty(), "{name}: host ports remain: {ports:?}");
    }
}

/// What we compare for one service.
#[derive(Debug, PartialEq)]
struct Resolved {
    image: Option<String>,
    command: Option<Vec<String>>,
    environment: BTreeMap<String, String>,
    depends_on: BTreeSet<String>,
}

/// Make a copy docker-compose v1 accepts: v1 rejects top-level `name:`, the newer `develop:`
/// and references to services or networks a layered file expects from another file. Those
/// are removed, and a `build` without `context` gets the default `.` written out; everything
/// compared stays untouched.
fn v1_compatible(raw: &Mapping) -> Mapping {
    let mut m = raw.clone();
    m.retain(|k, _| {
        !k.as_str()
            .is_some_and(|s| s == "name" || s.starts_with("x-"))
    });
    let service_names: HashSet<String> = m
        .get("services")
        .and_then(Value::as_mapping)
        .map(|s| {
            s.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let network_names: HashSet<String> = m
        .get("networks")
        .and_then(Value::as_mapping)
        .map(|s| {
            s.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let volume_names: HashSet<String> = m
        .get("volumes")
        .and_then(Value::as_mapping)
        .map(|s| {
            s.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Mapping(services)) = m.get_mut("services") {
        for def in services.values_mut() {
            let Value::Mapping(def) = def else { continue };
            def.retain(|k, _| {
                !k.as_str()
                    .is_some_and(|s| s == "develop" || s.starts_with("x-"))
            });
            // The spec's default context `.`: v1 insists on it being written.
            if let Some(Value::Mapping(build)) = def.get_mut("build") {
                if !build.contains_key("context") {
                    build.insert("context".into(), ".".into());
                }
            }
            match def.get_mut("depends_on") {
                Some(Value::Sequence(list)) => {
                    list.retain(|d| d.as_str().is_some_and(|d| service_names.contains(d)))
                }
                Some(Value::Mapping(map)) => {
                    map.retain(|d, _| d.as_str().is_some_and(|d| service_names.contains(d)))
                }
                _ => {}
            }
            match def.get_mut("networks") {
                Some(Value::Sequence(list)) => list.retain(|n| {
                    n.as_str()
                        .is_some_and(|n| n == "default" || network_names.contains(n))
                }),
                Some(Value::Mapping(map)) => map.retain(|n, _| {
                    n.as_str()
                        .is_some_and(|n| n == "default" || network_names.contains(n))
                }),
                _ => {}
            }
            if let Some(Value::Sequence(vols)) = def.get_mut("volumes") {
                vols.retain(|v| match v.as_str() {
                    Some(s) if s.contains(':') => {
                        let src = s.split(':').next().unwrap();
                        src.starts_with(['.', '/', '~', '$']) || volume_names.contains(src)
                    }
                    _ => true,
                });
            }
        }
    }
    m
}

fn words(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(shell_words::split(s).unwrap()),
        Value::Sequence(items) => Some(items.iter().map(scalar).collect()),
        other => Some(vec![scalar(other)]),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// v1's `config` output is meant to be loaded again, so it writes a literal `$` as `$$`.
fn unescape(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("$$", "$")),
        Value::Sequence(items) => Value::Sequence(items.iter().map(unescape).collect()),
        Value::Mapping(m) => {
            Value::Mapping(m.iter().map(|(k, v)| (k.clone(), unescape(v))).collect())
        }
        other => other.clone(),
    }
}

fn from_v1(def: &Value) -> Resolved {
    let def = &unescape(def);
    let environment = match def.get("environment") {
        Some(Value::Mapping(m)) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (scalar(k), scalar(v)))
            .collect(),
        _ => BTreeMap::new(),
    };
    let depends_on = match def.get("depends_on") {
        Some(Value::Mapping(m)) => m.keys().map(scalar).collect(),
        Some(Value::Sequence(s)) => s.iter().map(scalar).collect(),
        _ => BTreeSet::new(),
    };
    Resolved {
        image: def.get("image").map(scalar),
        command: def.get("command").and_then(words),
        environment,
        depends_on,
    }
}

#[test]
fn agrees_with_docker_compose_v1() {
    let installed = Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "docker-compose (v1) is not installed, and CI=true requires this comparison"
        );
        eprintln!("docker-compose is not installed: comparison skipped (CI=true makes this fail)");
        return;
    }
    let mut compared = 0;
    for corpus_file in corpus_files() {
        let name = corpus_file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let staged = stage(&corpus_file);
        // v1's `config` prints every service whatever its profiles: enable them all.
        let ours = load_staged(&staged, &["*"]);
        // Written as JSON (which is YAML) so that strings like "yes" stay strings for v1's
        // YAML 1.1 parser.
        let v1_file = staged.file.with_file_name("v1-compatible.yml");
        std::fs::write(
            &v1_file,
            serde_json::to_string(&v1_compatible(&staged.raw)).unwrap(),
        )
        .unwrap();
        let out = Command::new("docker-compose")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", staged.dir.path())
            .arg("-f")
            .arg(&v1_file)
            .arg("--project-directory")
            .arg(staged.file.parent().unwrap())
            .arg("config")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: docker-compose config failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v1: Value = serde_yaml::from_slice(&out.stdout).unwrap();
        let v1_services = v1["services"].as_mapping().unwrap();
        assert_eq!(
            ours.services.len(),
            v1_services.len(),
            "{name}: different service count"
        );
        for (svc_name, def) in v1_services {
            let svc_name = scalar(svc_name);
            let svc = ours
                .services
                .get(&svc_name)
                .unwrap_or_else(|| panic!("{name}: service {svc_name} missing from our project"));
            let theirs = from_v1(def);
            let implicit: BTreeSet<String> = svc
                .links
                .iter()
                .map(|l| l.split(':').next().unwrap().to_string())
                .chain(
                    svc.network_mode
                        .as_deref()
                        .and_then(|m| m.strip_prefix("service:"))
                        .map(str::to_string),
                )
                .collect();
            let mine = Resolved {
                // v1 prints no image for a build-only service; ours is `<project>-<service>`.
                image: if theirs.image.is_none() && svc.build.is_some() {
                    None
                } else {
                    svc.image.clone()
                },
                command: svc.command.clone(),
                environment: svc
                    .environment
                    .iter()
                    .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                    .collect(),
                depends_on: svc
                    .depends_on
                    .keys()
                    .filter(|d| !implicit.contains(*d) || theirs.depends_on.contains(*d))
                    .cloned()
                    .collect(),
            };
            assert_eq!(
                mine, theirs,
                "{name}: service {svc_name} differs from docker-compose config"
            );
            compared += 1;
        }
    }
    eprintln!("{compared} services agree with docker-compose config");
    assert!(compared >= 100, "only {compared} services compared");
}
