//! Compose v2 features of the loader, each pinned by what Docker Compose v2.40 does (checked
//! by hand with `docker compose config` and, for whole projects, by
//! `compose_v2_differential.rs`): `!reset`/`!override` on whole services, top-level
//! `include`, `secrets`/`configs` and the files they give a container, and the checks
//! Compose makes before it touches the engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use compose_shard::compose::{
    file_mounts, load, load_from_str, ComposeError, FileMountSource, Loaded, Project,
};
use compose_shard::config::ComposeOptions;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Load `dir`'s default files with `env` as the whole environment.
fn load_dir(dir: &Path, env: &[(&str, &str)]) -> Result<Loaded, ComposeError> {
    load(&ComposeOptions::default(), &vars(env), dir)
}

fn from_str(yaml: &str) -> Result<Loaded, ComposeError> {
    load_from_str(
        &[("compose.yaml", yaml)],
        Path::new("/proj/app"),
        &HashMap::new(),
        &ComposeOptions::default(),
    )
}

fn names(p: &Project) -> Vec<&str> {
    p.services.keys().map(String::as_str).collect()
}

#[test]
fn reset_removes_a_whole_service_and_override_replaces_one() {
    let base = "services:\n  web: {image: web, environment: {A: '1'}, ports: ['80:80']}\n  nginx: {image: nginx}\n  db: {image: db, command: [a, b]}\n";
    let over = "services:\n  nginx: !reset\n  web: !override\n    image: web2\n  db:\n    command: !reset []\n";
    let l = load_from_str(
        &[("compose.yaml", base), ("compose.override.yaml", over)],
        Path::new("/p"),
        &HashMap::new(),
        &ComposeOptions::default(),
    )
    .unwrap();
    assert_eq!(names(&l.project), ["web", "db"]);
    let web = &l.project.services["web"];
    assert_eq!(web.image.as_deref(), Some("web2"));
    assert!(web.environment.is_empty() && web.ports.is_empty());
    assert_eq!(l.project.services["db"].command, None);
    // In a single file, a `!reset` service is simply not there.
    let one = from_str("services:\n  nginx: !reset\n  b: {image: x}\n").unwrap();
    assert_eq!(names(&one.project), ["b"]);
}

#[test]
fn tags_compose_does_not_know_are_ignored_at_any_level() {
    // `docker compose config` (v2.40) prints the plain project for each of these.
    for yaml in [
        "!foo\nservices:\n  web:\n    image: busybox\n    environment: {A: b}\n",
        "services: !foo\n  web: !bar\n    image: busybox\n    environment: !baz\n      A: b\n",
    ] {
        let l = from_str(yaml).unwrap_or_else(|e| panic!("{yaml:?}: {e}"));
        let web = &l.project.services["web"];
        assert_eq!(web.image.as_deref(), Some("busybox"), "{yaml:?}");
        assert_eq!(
            web.environment.get("A").and_then(|v| v.as_deref()),
            Some("b"),
            "{yaml:?}"
        );
    }
}

#[test]
fn include_in_all_its_forms() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "compose.yaml",
        "include:\n  - sub/compose.yaml\n  - path: ${OTHER:-other}/a.yaml\n    env_file: other/custom.env\n  - path: [other/b.yaml, other/b.override.yaml]\n    project_directory: other\nservices:\n  web: {image: web, depends_on: [db, cache, b]}\n",
    );
    write(d, ".env", "TAG=root\n");
    write(d, "sub/.env", "TAG=from-sub\nSUBONLY=yes\n");
    write(
        d,
        "sub/compose.yaml",
        "services:\n  db:\n    image: \"db:${TAG}-${SUBONLY}\"\n    env_file: db.env\n    volumes: ['./data:/data']\n    build: inner\n",
    );
    write(d, "sub/db.env", "X=1\n");
    write(d, "other/custom.env", "CTAG=custom\n");
    write(
        d,
        "other/a.yaml",
        "services:\n  cache: {image: \"cache:${CTAG:-none}\", volumes: ['./c:/c']}\n",
    );
    write(
        d,
        "other/b.yaml",
        "services:\n  b: {image: \"b:${TAG:-unset}\", volumes: ['./bdata:/b']}\n",
    );
    write(
        d,
        "other/b.override.yaml",
        "services:\n  b: {environment: {O: '1'}}\n",
    );
    let p = load_dir(d, &[]).unwrap().project;
    assert_eq!(names(&p), ["web", "db", "cache", "b"]);
    let db = &p.services["db"];
    // The including project's variables win; the included `.env` fills in the rest.
    assert_eq!(db.image.as_deref(), Some("db:root-yes"));
    assert_eq!(db.environment["X"].as_deref(), Some("1"));
    assert_eq!(
        db.volumes[0].source.as_deref(),
        Some(d.join("sub/data").to_str().unwrap())
    );
    assert_eq!(db.build.as_ref().unwrap().context, d.join("sub/inner"));
    assert_eq!(p.services["cache"].image.as_deref(), Some("cache:custom"));
    let cache_src = p.services["cache"].volumes[0].source.clone().unwrap();
    assert_eq!(cache_src, d.join("other/c").display().to_string());
    let b = &p.services["b"];
    assert_eq!(b.image.as_deref(), Some("b:root"));
    assert_eq!(b.environment["O"].as_deref(), Some("1"));
    // An interpolated file name.
    let p = load_dir(d, &[("OTHER", "elsewhere")]);
    let err = p.unwrap_err().to_string();
    assert!(err.contains("elsewhere/a.yaml"), "{err}");
}

#[test]
fn include_conflicts_and_forms_compose_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "x1/c.yaml", "services:\n  db: {image: a}\n");
    write(d, "x2/c.yaml", "services:\n  db: {image: b}\n");
    write(d, "x3/c.yaml", "services:\n  db: {image: a}\n");
    // The same definition twice is fine.
    write(
        d,
        "compose.yaml",
        "include: [x1/c.yaml, x3/c.yaml]\nservices:\n  web: {image: w}\n",
    );
    assert_eq!(names(&load_dir(d, &[]).unwrap().project), ["web", "db"]);
    write(
        d,
        "compose.yaml",
        "include: [x1/c.yaml, x2/c.yaml]\nservices:\n  web: {image: w}\n",
    );
    let err = load_dir(d, &[]).unwrap_err().to_string();
    assert!(
        err.contains("services.db conflicts") && err.contains("x2/c.yaml"),
        "{err}"
    );
    write(
        d,
        "compose.yaml",
        "include: [x1/c.yaml]\nservices:\n\n  db: {image: other}\n",
    );
    let err = load_dir(d, &[]).unwrap_err().to_string();
    assert!(err.contains("compose.yaml:4:3:"), "{err}");
    write(
        d,
        "compose.yaml",
        "include: x1/c.yaml\nservices:\n  web: {image: w}\n",
    );
    let err = load_dir(d, &[]).unwrap_err().to_string();
    assert!(
        err.contains("compose.yaml:1:1:") && err.contains("must be a list"),
        "{err}"
    );
    write(d, "loop.yaml", "include: [compose.yaml]\n");
    write(
        d,
        "compose.yaml",
        "include: [loop.yaml]\nservices:\n  web: {image: w}\n",
    );
    let err = load_dir(d, &[]).unwrap_err().to_string();
    assert!(err.contains("`include` loop"), "{err}");
    write(
        d,
        "compose.yaml",
        "include: [nothere.yaml]\nservices:\n  web: {image: w}\n",
    );
    let err = load_dir(d, &[]).unwrap_err().to_string();
    assert!(err.contains("nothere.yaml"), "{err}");
}

const SECRETS: &str = r#"
services:
  web:
    image: web
    secrets:
      - token
      - source: apikey
        target: api_key.txt
        uid: "1000"
        gid: "1000"
        mode: 0440
      - {source: token, target: /etc/abs/token}
    configs:
      - app_conf
      - {source: inline, target: /etc/inline.conf, mode: 0644}
      - {source: envconf, target: relative.conf, mode: 440}
secrets:
  token: {file: ./token.txt}
  apikey: {environment: API_KEY}
  ext: {external: true}
configs:
  app_conf: {file: ./token.txt}
  inline: {content: "hello ${WHO}"}
  envconf: {environment: API_KEY}
"#;

#[test]
fn secrets_and_configs_in_the_model_and_as_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "compose.yaml", SECRETS);
    write(d, "token.txt", "s3cret\n");
    let p = load_dir(d, &[("API_KEY", "k1"), ("WHO", "world")])
        .unwrap()
        .project;
    let web = &p.services["web"];
    let s = &web.secrets;
    assert_eq!(s[0].target.as_deref(), Some("/run/secrets/token"));
    assert_eq!(s[0].file.as_deref(), Some(d.join("token.txt").as_path()));
    assert_eq!(
        (s[1].uid.as_deref(), s[1].mode),
        (Some("1000"), Some(0o440))
    );
    assert_eq!(s[1].environment.as_deref(), Some("API_KEY"));
    assert_eq!(web.configs[1].content.as_deref(), Some("hello world"));
    // `mode: 440` is decimal, as in Compose (printed "0670").
    assert_eq!(web.configs[2].mode, Some(440));
    let json = serde_json::to_value(web).unwrap();
    assert_eq!(json["configs"][2]["mode"], "0670");
    assert!(
        !json.to_string().contains("k1"),
        "a secret's value is never printed"
    );

    let mounts = file_mounts(&p, web).unwrap();
    let targets: Vec<&str> = mounts.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "/run/secrets/token",
            "/run/secrets/api_key.txt",
            "/etc/abs/token",
            "/app_conf",
            "/etc/inline.conf",
            "/relative.conf"
        ]
    );
    assert_eq!(
        mounts[0].source,
        FileMountSource::HostFile(d.join("token.txt"))
    );
    assert_eq!(mounts[1].source, FileMountSource::Content(b"k1".to_vec()));
    assert_eq!((mounts[1].mode, mounts[3].mode), (0o440, 0o444));
    assert_eq!(
        mounts[4].source,
        FileMountSource::Content(b"hello world".to_vec())
    );
}

#[test]
fn secrets_compose_cannot_provide_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "compose.yaml",
        &SECRETS.replace("      - token\n", "      - ext\n"),
    );
    write(d, "token.txt", "s3cret\n");
    let p = load_dir(d, &[("API_KEY", "k1")]).unwrap().project;
    let err = file_mounts(&p, &p.services["web"]).unwrap_err().to_string();
    assert!(err.contains("\"ext\" is `external`"), "{err}");
    write(d, "compose.yaml", SECRETS);
    let p = load_dir(d, &[]).unwrap().project;
    let err = file_mounts(&p, &p.services["web"]).unwrap_err().to_string();
    assert!(err.contains("\"API_KEY\" is not set"), "{err}");
    std::fs::remove_file(d.join("token.txt")).unwrap();
    let err = file_mounts(&p, &p.services["web"]).unwrap_err().to_string();
    assert!(err.contains("token.txt does not exist"), "{err}");
    let err = from_str("services:\n  web:\n    image: x\n    configs: [nope]\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("compose.yaml:4:5:") && err.contains("undefined config \"nope\""),
        "{err}"
    );
}

#[test]
fn dependency_cycles_are_refused_naming_the_cycle() {
    let err = from_str(
        "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, links: [c]}\n  c: {image: x, depends_on: [a]}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("dependency cycle detected: a -> b -> c -> a") && err.contains(":2:"),
        "{err}"
    );
    let err = from_str("services:\n  a: {image: x, depends_on: [a]}\n").unwrap_err();
    assert!(err.to_string().contains("a -> a"), "{err}");
}

#[test]
fn services_compose_would_refuse() {
    let err = from_str("services:\n  web: {image: w}\n  a:\n    command: x\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("compose.yaml:3:3:")
            && err.contains("service \"a\" has neither an image nor a build context"),
        "{err}"
    );
    let err = from_str("services:\n  my web: {image: w}\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(":2:3:") && err.contains("invalid service name \"my web\""),
        "{err}"
    );
    let err = from_str("services:\n  a:\n    image: x\n    depends_on: [nope]\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(":4:5:")
            && err.contains("service \"a\" depends on undefined service \"nope\""),
        "{err}"
    );
    // A dependency in an inactive profile: Compose refuses it too; we say which profile.
    let err = from_str(
        "services:\n  a: {image: x, depends_on: [db]}\n  db: {image: x, profiles: [dbp]}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("--profile dbp"), "{err}");
    // An optional one is kept, as Compose's `config` keeps it, and not started.
    let l = from_str("services:\n  a:\n    image: x\n    depends_on: {db: {condition: service_started, required: false}}\n  db: {image: x, profiles: [dbp]}\n")
        .unwrap();
    assert!(!l.project.services["a"].depends_on["db"].required);
}

#[test]
fn errors_in_an_included_file_point_into_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "compose.yaml",
        "include: [sub/c.yaml]\nservices:\n  web: {image: w}\n",
    );
    write(
        d,
        "sub/c.yaml",
        "services:\n  db:\n    image: x\n    ports:\n      - nonsense\n",
    );
    let err = load_dir(d, &[]).unwrap_err().to_string();
    assert!(err.contains("sub/c.yaml:4:5: services.db.ports"), "{err}");
}
