//! End-to-end: `--tmpfs-data` against the real engine, real services and real pytest.
//!
//! A path of a service other than the test service goes in memory only where its image has
//! no files (a named volume is filled from the image, a tmpfs is not): a service whose image
//! has a file under its `VOLUME` keeps that volume, and its empty named-volume path becomes a
//! tmpfs, seen from inside the running service. A PostgreSQL whose tmpfs is too small for
//! `initdb` fails its group as an environment failure naming the flag and the size.
//!
//! Each test has a fresh cache folder of its own (`COMPOSE_SHARD_CACHE_DIR`), and each run is
//! checked to leave nothing carrying its label.

#[path = "e2e_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use support::*;

/// What the `store` image holds at `/seed/hello.txt`, under its `VOLUME /seed`.
const HELLO: &str = "hello from the store image";

/// `compose-shard run --progress plain ARGS` in `dir` with the cache folder `cache` and the
/// extra environment `env`, waited for (at most three minutes).
fn run(dir: &Path, cache: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = binary();
    cmd.current_dir(dir)
        .env("COMPOSE_SHARD_CACHE_DIR", cache)
        .env_remove("COMPOSE_SHARD_TMPFS_SIZE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .arg("run")
        .args(["--progress", "plain"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start compose-shard");
    wait_limited(child, Duration::from_secs(180))
}

/// The run's output and each group's test output (`compose-shard-results/gK/output.log`).
fn everything(dir: &Path, output: &Output) -> String {
    let mut all = text(output);
    for k in 1..=4 {
        let log = dir.join(format!("compose-shard-results/g{k}/output.log"));
        if let Ok(log) = std::fs::read_to_string(&log) {
            all.push_str(&format!("\ng{k}/output.log:\n{log}"));
        }
    }
    all
}

/// Nothing carrying the run's label (containers, networks, volumes) is left.
fn assert_nothing_left(output: &Output) {
    let run = run_id_of(&String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        leftovers(&run),
        Vec::<String>::new(),
        "run {run} left things\n{}",
        text(output)
    );
}

fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// The `store` service's server: `/seed/hello.txt` and what is mounted at `/seed` and
/// `/scratch` (filesystem type and options, from `/proc/mounts`), as JSON on port 8000.
const SERVE_PY: &str = r#"import http.server
import json
import os


def mount(path):
    found = None
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[1] == path:
                # The last mount at a path is the one seen.
                found = {"type": fields[2], "options": fields[3]}
    return found


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            with open("/seed/hello.txt") as f:
                hello = f.read()
        except OSError as e:
            hello = "unreadable: %s" % e
        st = os.statvfs("/scratch")
        body = json.dumps(
            {
                "hello": hello,
                "seed": mount("/seed"),
                "scratch": mount("/scratch"),
                "scratch_bytes": st.f_blocks * st.f_frsize,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"#;

/// The test: the store's seed file is there (its volume was kept and filled from the
/// image), `/scratch` is a tmpfs exactly when `EXPECT_SCRATCH=tmpfs`, and the test
/// service's own named volume is never a tmpfs.
const TEST_STORE_PY: &str = r#"import json
import os
import time
import urllib.request


def mount(path):
    found = None
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[1] == path:
                found = {"type": fields[2], "options": fields[3]}
    return found


def state():
    last = None
    for _ in range(100):
        try:
            with urllib.request.urlopen("http://store:8000/", timeout=5) as r:
                return json.load(r)
        except OSError as e:
            last = e
            time.sleep(0.2)
    raise AssertionError("the store does not answer: %s" % last)


def test_the_store_keeps_its_seed_and_its_scratch_is_where_expected():
    got = state()
    print("store:", json.dumps(got))
    assert got["hello"] == "HELLO", got
    assert got["seed"] is not None and got["seed"]["type"] != "tmpfs", got
    assert got["scratch"] is not None, got
    if os.environ["EXPECT_SCRATCH"] == "tmpfs":
        assert got["scratch"]["type"] == "tmpfs", got
        print("scratch-bytes:", got["scratch_bytes"])
    else:
        assert got["scratch"]["type"] != "tmpfs", got


def test_the_test_services_own_volume_stays_on_disk():
    own = mount("/cache")
    assert own is not None and own["type"] != "tmpfs", own
"#;

/// A stack with `store` (built: a file under its image's `VOLUME /seed`, an empty `/scratch`
/// from a named volume) and `tests` (the fixture Python, with a named volume of its own).
fn store_stack() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("cs-e2e-tmpfs-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    write(
        root,
        "compose.yaml",
        r#"name: cs-e2e-tmpfs-store
services:
  store:
    build: ./store
    volumes:
      - scratch:/scratch
    healthcheck:
      test: ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/', timeout=2)"]
      interval: 1s
      timeout: 3s
      retries: 60
  tests:
    image: compose-shard-fixtures/python:3.11
    working_dir: /code
    volumes:
      - .:/code
      - cache:/cache
    depends_on:
      store:
        condition: service_healthy
volumes:
  scratch: {}
  cache: {}
"#,
    );
    write(
        root,
        "store/Dockerfile",
        "FROM compose-shard-fixtures/python:3.11\nCOPY hello.txt /seed/hello.txt\nRUN mkdir -p /scratch\nVOLUME /seed\nCOPY serve.py /serve.py\nCMD [\"python3\", \"/serve.py\"]\n",
    );
    write(root, "store/hello.txt", HELLO);
    write(root, "store/serve.py", SERVE_PY);
    write(
        root,
        "pyproject.toml",
        "[tool.pytest.ini_options]\ntestpaths = [\"tests\"]\naddopts = \"-p no:cacheprovider\"\n\n[tool.compose-shard]\nservice = \"tests\"\n",
    );
    write(
        root,
        "tests/test_store.py",
        &TEST_STORE_PY.replace("\"HELLO\"", &format!("{HELLO:?}")),
    );
    dir
}

/// The `N` of the run's `--tmpfs-data: SERVICE PATH in memory (tmpfs of up to N MiB)` line.
fn in_memory_mib(all: &str, service: &str, path: &str) -> Option<u64> {
    let prefix = format!("--tmpfs-data: {service} {path} in memory (tmpfs of up to ");
    all.lines().find_map(|l| {
        let rest = &l[l.find(&prefix)? + prefix.len()..];
        rest.strip_suffix(" MiB)")?.parse().ok()
    })
}

#[test]
fn an_image_with_files_at_the_volume_path_keeps_its_volume_and_an_empty_path_goes_in_memory() {
    require_docker_and_images();
    let stack = store_stack();
    let cache = tempfile::tempdir().unwrap();

    let output = run(
        stack.path(),
        cache.path(),
        &[],
        &[
            "--tmpfs-data",
            "--groups",
            "1",
            "-e",
            "EXPECT_SCRATCH=tmpfs",
            "--",
            "pytest",
            "-s",
        ],
    );
    let all = everything(stack.path(), &output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("2 passed"), "{all}");
    assert!(
        all.contains(
            "--tmpfs-data: store keeps a volume at /seed: its image has files there, which a tmpfs would hide"
        ),
        "{all}"
    );
    let mib = in_memory_mib(&all, "store", "/scratch")
        .unwrap_or_else(|| panic!("no in-memory line for store /scratch:\n{all}"));
    assert!(mib >= 64, "at least the 64 MiB floor: {mib}\n{all}");
    // The size the run announced is the one the store sees (`statvfs`, page-rounded; the
    // kernel does not list a tmpfs's size among its options when it is its default).
    let bytes: u64 = all
        .lines()
        .find_map(|l| l.split("scratch-bytes: ").nth(1))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no scratch-bytes line from the test:\n{all}"));
    assert!(
        (bytes >> 20).abs_diff(mib) <= 1,
        "announced {mib} MiB, the store sees {bytes} bytes\n{all}"
    );
    // Only the services other than the test service, and only where the image is empty.
    assert!(!all.contains("--tmpfs-data: tests "), "{all}");
    assert!(!all.contains("/seed in memory"), "{all}");
    assert_nothing_left(&output);

    // Control: without the flag, /scratch is the named volume (the test fails if the flag
    // did nothing), and nothing about --tmpfs-data is said.
    let output = run(
        stack.path(),
        cache.path(),
        &[],
        &[
            "--groups",
            "1",
            "--snapshots",
            "off",
            "-e",
            "EXPECT_SCRATCH=volume",
        ],
    );
    let all = everything(stack.path(), &output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("2 passed"), "{all}");
    assert!(!all.contains("--tmpfs-data:"), "{all}");
    assert_nothing_left(&output);
}

/// A PostgreSQL (the fixture image, an empty `VOLUME` at its data directory, mounted from a
/// named volume) and a trivial test that waits for it to be healthy.
fn postgres_stack() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("cs-e2e-tmpfs-pg-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    write(
        root,
        "compose.yaml",
        r#"name: cs-e2e-tmpfs-pg
services:
  db:
    image: ${POSTGRES_IMAGE:-postgres:15}
    environment:
      POSTGRES_PASSWORD: secret
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres -h 127.0.0.1"]
      interval: 1s
      timeout: 3s
      retries: 60
  tests:
    image: compose-shard-fixtures/python:3.11
    working_dir: /code
    volumes:
      - .:/code
    depends_on:
      db:
        condition: service_healthy
volumes:
  pgdata: {}
"#,
    );
    write(
        root,
        "pyproject.toml",
        "[tool.pytest.ini_options]\ntestpaths = [\"tests\"]\naddopts = \"-p no:cacheprovider\"\n\n[tool.compose-shard]\nservice = \"tests\"\n",
    );
    write(
        root,
        "tests/test_db.py",
        "import psycopg2\n\n\ndef test_the_database_answers():\n    with psycopg2.connect(host=\"db\", user=\"postgres\", password=\"secret\") as conn:\n        with conn.cursor() as cur:\n            cur.execute(\"SELECT 1\")\n            assert cur.fetchone() == (1,)\n",
    );
    dir
}

#[test]
fn a_full_tmpfs_fails_the_group_naming_the_flag() {
    require_docker_and_images();
    let stack = postgres_stack();
    let cache = tempfile::tempdir().unwrap();

    // initdb needs some 40 MB: 8 MiB fills up.
    let output = run(
        stack.path(),
        cache.path(),
        &[("COMPOSE_SHARD_TMPFS_SIZE", "8m")],
        &["--tmpfs-data", "--groups", "1"],
    );
    let all = everything(stack.path(), &output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(
        all.contains("--tmpfs-data: db /var/lib/postgresql/data in memory (tmpfs of up to 8 MiB)"),
        "{all}"
    );
    assert!(
        all.contains(
            "service db: its data in memory is full (a tmpfs of 8 MiB at /var/lib/postgresql/data, from --tmpfs-data): run without --tmpfs-data"
        ),
        "{all}"
    );
    assert!(all.contains("No space left on device"), "{all}");
    assert_nothing_left(&output);

    // Control: the same stack with each tmpfs sized from the engine's memory passes.
    let output = run(
        stack.path(),
        cache.path(),
        &[],
        &["--tmpfs-data", "--groups", "1"],
    );
    let all = everything(stack.path(), &output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("1 passed"), "{all}");
    let mib = in_memory_mib(&all, "db", "/var/lib/postgresql/data")
        .unwrap_or_else(|| panic!("no in-memory line for db:\n{all}"));
    assert!(mib >= 64, "at least the 64 MiB floor: {mib}\n{all}");
    assert!(!all.contains("its data in memory is full"), "{all}");
    assert_nothing_left(&output);
}
