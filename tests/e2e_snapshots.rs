//! End-to-end: warm snapshots (`--snapshots auto|off|refresh`) against the real engine, the
//! fixture PostgreSQL and real pytest. Each test has a fresh cache folder of its own
//! (`COMPOSE_SHARD_CACHE_DIR`), so which run takes a snapshot and which restores it is
//! deterministic. Runs use `--keep` so the database's own log can be read after the tests:
//! the fixture entrypoint prints [`INIT_DONE`] only when it initialises the data directory.
//! Every kept run is removed (`compose-shard clean --run ID`) as soon as its logs are read,
//! and again by a guard if a test panics first.

#[path = "e2e_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::*;

/// What the fixture entrypoint (ci/images.d/postgres/docker-entrypoint.sh) prints after
/// `initdb` and the init scripts, and only then.
const INIT_DONE: &str = "PostgreSQL init process complete; ready for start up.";
/// What PostgreSQL logs once it serves (proves a log without [`INIT_DONE`] is a real start).
const SERVING: &str = "database system is ready to accept connections";

/// The tests of this file run one at a time: `clean --snapshots` (a test's end) also removes
/// leftovers, i.e. whatever a finished process left, and another test's kept run is one
/// until its logs are read. Taken first in each test, so it is released last.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ALONE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs kept with `--keep`, removed with `compose-shard clean --run ID`: explicitly (checking
/// nothing is left) once their logs are read, or on drop (also when a test panics).
#[derive(Default)]
struct KeptRuns {
    runs: Vec<String>,
}

impl KeptRuns {
    fn clean(run: &str) -> Output {
        binary()
            .current_dir(std::env::temp_dir())
            .args(["clean", "--run", run])
            .stdin(Stdio::null())
            .output()
            .expect("start compose-shard clean")
    }

    /// Remove one run now and check nothing carrying its label remains.
    fn remove(&mut self, run: &str) {
        let out = Self::clean(run);
        assert!(out.status.success(), "clean --run {run}: {}", text(&out));
        self.runs.retain(|r| r != run);
        assert_eq!(
            leftovers(run),
            Vec::<String>::new(),
            "run {run} left things"
        );
    }
}

impl Drop for KeptRuns {
    fn drop(&mut self) {
        for run in &self.runs {
            let _ = Self::clean(run);
        }
    }
}

/// A test's own cache folder; on drop, `compose-shard clean --snapshots` removes its
/// snapshots and their template volumes on the engine (also when a test panics).
struct Cache(tempfile::TempDir);

impl Cache {
    fn new() -> Cache {
        Cache(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn clean_snapshots(&self) -> Output {
        self.clean(&["--snapshots"])
    }

    fn clean(&self, args: &[&str]) -> Output {
        binary()
            .current_dir(std::env::temp_dir())
            .env("COMPOSE_SHARD_CACHE_DIR", self.path())
            .arg("clean")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("start compose-shard clean")
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = self.clean_snapshots();
    }
}

/// The engine's template volumes of the snapshot with this key.
fn templates(key: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter"])
        .arg(format!("label=dev.compose-shard.snapshot={key}"))
        .output()
        .expect("docker volume ls");
    assert!(out.status.success(), "docker volume ls: {}", text(&out));
    sorted_lines(&out.stdout)
}

/// One finished run: its output, id and the log of each group's `db` container.
struct Finished {
    output: Output,
    all: String,
    run: String,
    db_logs: BTreeMap<usize, String>,
}

impl Finished {
    /// The `[gK] db: ...` info lines of the run containing `what`.
    fn db_lines(&self, what: &str) -> Vec<&str> {
        self.all
            .lines()
            .filter(|l| l.starts_with("[g") && l.contains("] db: ") && l.contains(what))
            .collect()
    }

    /// Whether group `k` says its db started from a snapshot.
    fn restored(&self, k: usize) -> bool {
        self.all
            .lines()
            .any(|l| l.starts_with(&format!("[g{k}] db: started from its snapshot")))
    }
}

/// `compose-shard run --progress plain --keep ARGS` in `dir` with its own cache folder; the
/// `db` containers' logs are read and the run removed before this returns.
fn run_kept(dir: &Path, cache: &Path, args: &[&str], kept: &mut KeptRuns) -> Finished {
    run_kept_with(dir, cache, args, &[], kept)
}

/// [`run_kept`] with extra environment variables.
fn run_kept_with(
    dir: &Path,
    cache: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    kept: &mut KeptRuns,
) -> Finished {
    let child = binary()
        .current_dir(dir)
        .env("COMPOSE_SHARD_CACHE_DIR", cache)
        .envs(env.iter().copied())
        .arg("run")
        .args(["--progress", "plain", "--keep"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start compose-shard");
    let output = wait_limited(child, Duration::from_secs(300));
    let all = text(&output);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let run = stderr
        .lines()
        .find_map(|l| l.strip_prefix("run ").and_then(|r| r.split(':').next()))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no run id in the output:\n{all}"));
    kept.runs.push(run.clone());
    let db_logs = db_logs(&run);
    kept.remove(&run);
    Finished {
        output,
        all,
        run,
        db_logs,
    }
}

/// The logs (stdout and stderr) of each group's `db` container of a kept run, by group.
fn db_logs(run: &str) -> BTreeMap<usize, String> {
    let ps = Command::new("docker")
        .args(["ps", "-a", "--filter"])
        .arg(format!("label=dev.compose-shard.run={run}"))
        .args(["--filter", "label=com.docker.compose.service=db"])
        .args([
            "--format",
            "{{.Label \"dev.compose-shard.group\"}} {{.Names}}",
        ])
        .output()
        .unwrap();
    assert!(ps.status.success(), "docker ps: {}", text(&ps));
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (group, name) = l.split_once(' ').unwrap();
            let logs = Command::new("docker")
                .args(["logs", name])
                .output()
                .unwrap();
            assert!(logs.status.success(), "docker logs {name}: {}", text(&logs));
            let group = group
                .parse()
                .unwrap_or_else(|_| panic!("group label of {name}: {group:?}"));
            (group, text(&logs))
        })
        .collect()
}

/// Each testcase of a JUnit file (`classname::name`) with its outcome: `passed`, `failure`,
/// `error` or `skipped`.
fn outcomes(junit: &Path) -> BTreeMap<String, String> {
    use quick_xml::events::{BytesStart, Event};
    let xml = std::fs::read_to_string(junit)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", junit.display()));
    let mut reader = quick_xml::Reader::from_str(&xml);
    let attr = |e: &BytesStart<'_>, key: &str| -> String {
        e.attributes()
            .filter_map(Result::ok)
            .find(|a| a.key.as_ref() == key.as_bytes())
            .map(|a| a.unescape_value().unwrap().into_owned())
            .unwrap_or_default()
    };
    let mut found = BTreeMap::new();
    let mut open: Option<String> = None;
    loop {
        let event = reader.read_event().expect("well-formed JUnit XML");
        let (e, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) if e.local_name().as_ref() == b"testcase" => {
                open = None;
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        match e.local_name().as_ref() {
            b"testcase" => {
                let id = format!("{}::{}", attr(e, "classname"), attr(e, "name"));
                let again = found.insert(id.clone(), "passed".to_string());
                assert!(again.is_none(), "{id} twice in {}", junit.display());
                open = (!empty).then_some(id);
            }
            kind @ (b"failure" | b"error" | b"skipped") => {
                if let Some(id) = &open {
                    found.insert(id.clone(), String::from_utf8_lossy(kind).into_owned());
                }
            }
            _ => {}
        }
    }
    found
}

/// The snapshot folders under a cache folder (ignoring partial ones).
fn snapshot_dirs(cache: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(cache.join("snapshots")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn meta(snapshot: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(snapshot.join("meta.json"))
        .unwrap_or_else(|e| panic!("{}/meta.json: {e}", snapshot.display()));
    serde_json::from_str(&text).unwrap()
}

/// The bundled example twice with one cache folder: the first run takes the db's snapshot,
/// the second starts every group's db from it (no `initdb`), and every test ends the same.
#[test]
fn the_second_run_of_the_example_starts_its_databases_from_the_first_runs_snapshot() {
    let _alone = one_at_a_time();
    require_docker_and_images();
    let stack = stack_copy("django-postgres-redis");
    let cache = Cache::new();
    let mut kept = KeptRuns::default();
    let out1 = stack.path().join("results-1");
    let out2 = stack.path().join("results-2");

    let first = run_kept(
        stack.path(),
        cache.path(),
        &["--groups", "2", "--out", out1.to_str().unwrap()],
        &mut kept,
    );
    let all = &first.all;
    assert_eq!(first.output.status.code(), Some(0), "{all}");
    let taken = first.db_lines("snapshot taken");
    assert_eq!(taken.len(), 1, "one group takes the snapshot:\n{all}");
    let taker: usize = taken[0][2..].split(']').next().unwrap().parse().unwrap();
    assert_eq!(
        first.db_logs.keys().copied().collect::<Vec<_>>(),
        vec![1, 2],
        "run {}: a db per group",
        first.run
    );
    let log = &first.db_logs[&taker];
    assert!(
        log.contains(INIT_DONE),
        "g{taker} initialised its db before the snapshot:\n{log}"
    );
    // Stopped cleanly for the copy, then started again on the initialised data.
    assert!(
        log.contains("received fast shutdown request") && log.matches(SERVING).count() >= 2,
        "g{taker}'s db was stopped for the copy and started again:\n{log}"
    );
    for (k, log) in &first.db_logs {
        assert!(
            log.contains(INIT_DONE) || first.restored(*k),
            "g{k} neither initialised nor restored:\n{log}\n{all}"
        );
    }
    let snapshots = snapshot_dirs(cache.path());
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let recorded = meta(&snapshots[0]);
    assert_eq!(recorded["service"], "db");
    assert_eq!(recorded["worth"], true, "{recorded}");
    assert_eq!(recorded["paths"][0]["target"], "/var/lib/postgresql/data");
    assert!(
        std::fs::metadata(snapshots[0].join("0.tar")).unwrap().len() > 1_000_000,
        "the data directory's archive holds a database"
    );
    // The group that took it laid it out on the engine while its tests ran (unless the other
    // group started late enough to restore it, and did so itself): the next environment to
    // restore it layers over it at once.
    let restored_in_run_1 = (1..=2).any(|k| first.restored(k));
    assert_eq!(
        first.db_lines("snapshot laid out on the engine").len(),
        usize::from(!restored_in_run_1),
        "{all}"
    );
    let key = snapshots[0].file_name().unwrap().to_str().unwrap();
    let ours = format!(
        "compose-shard-snapshot-{key}-{}-",
        meta(&snapshots[0])["created"]
    );
    let ours_on_engine = || -> Vec<String> {
        templates(key)
            .into_iter()
            .filter(|t| t.starts_with(&ours))
            .collect()
    };
    assert_eq!(
        ours_on_engine().len(),
        2,
        "the template and its mark after run 1"
    );

    let second = run_kept(
        stack.path(),
        cache.path(),
        &["--groups", "2", "--out", out2.to_str().unwrap()],
        &mut kept,
    );
    let all = &second.all;
    assert_eq!(second.output.status.code(), Some(0), "{all}");
    assert_eq!(
        second.db_lines("snapshot taken"),
        Vec::<&str>::new(),
        "{all}"
    );
    assert_eq!(
        second.db_logs.keys().copied().collect::<Vec<_>>(),
        vec![1, 2],
        "run {}: a db per group",
        second.run
    );
    for (k, log) in &second.db_logs {
        assert!(
            second.restored(*k),
            "g{k} started from the snapshot:\n{all}"
        );
        assert!(
            !log.contains(INIT_DONE),
            "g{k}'s db ran initdb again despite the snapshot:\n{log}"
        );
        assert!(log.contains(SERVING), "g{k}'s db served:\n{log}");
    }
    assert_eq!(snapshot_dirs(cache.path()), snapshots, "no second snapshot");
    // Layered over one template on the engine, not copied into each environment.
    for k in 1..=2 {
        assert!(
            all.lines().any(
                |l| l.starts_with(&format!("[g{k}] db: started from its snapshot"))
                    && l.contains("layered over it")
            ),
            "g{k} layered over the snapshot's template:\n{all}"
        );
    }
    // This snapshot's templates (another cache folder may hold one of the same key): the
    // same two, not made again.
    let made = ours_on_engine();
    assert_eq!(made.len(), 2, "the template and its mark: {made:?}");
    assert!(
        !second.all.contains("snapshot laid out on the engine"),
        "{all}"
    );

    let before = outcomes(&out1.join("junit.xml"));
    let after = outcomes(&out2.join("junit.xml"));
    assert!(before.len() >= 150, "only {} tests in run 1", before.len());
    let not_passed: Vec<_> = before.iter().filter(|(_, o)| *o != "passed").collect();
    assert!(not_passed.is_empty(), "run 1: {not_passed:?}");
    assert_eq!(before, after, "every test ends the same in both runs");

    // The layered restores were recorded: `clean --dry-run` tells what restoring took.
    let listing = cache.clean(&["--dry-run"]);
    let listing = text(&listing);
    let line = listing
        .lines()
        .find(|l| l.contains("initialising "))
        .unwrap_or_else(|| panic!("no snapshot listed:\n{listing}"));
    assert!(line.contains(", restoring "), "{line}");
    assert!(
        line.ends_with("worth it") && !line.contains("not worth"),
        "{line}"
    );

    // `clean --snapshots` removes the snapshot and its templates on the engine.
    let cleaned = cache.clean_snapshots();
    assert!(cleaned.status.success(), "{}", text(&cleaned));
    assert_eq!(ours_on_engine(), Vec::<String>::new(), "{}", text(&cleaned));
    assert_eq!(snapshot_dirs(cache.path()), Vec::<PathBuf>::new());
}

/// A minimal stack: `db` (the fixture PostgreSQL, `./initdb.d` bind-mounted as its init
/// scripts, `01.sql` inserting `value`; data in the image's `VOLUME`) and `tests` (the fixture Python image) whose one
/// test reads the row the init script inserted.
fn seeded_stack(value: &str, db_extra_env: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("cs-e2e-snap-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    std::fs::write(root.join(".env"), "COMPOSE_PROJECT_NAME=cs-e2e-snapshots\n").unwrap();
    write_compose(root, db_extra_env);
    std::fs::write(
        root.join("pyproject.toml"),
        "[tool.pytest.ini_options]\ntestpaths = [\"tests\"]\naddopts = \"-p no:cacheprovider\"\n\n[tool.compose-shard]\nservice = \"tests\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("initdb.d")).unwrap();
    std::fs::create_dir_all(root.join("tests")).unwrap();
    // Initialising then always takes over a second (WORTH_SECONDS), however fast the
    // machine: a snapshot is always worth taking, so whether one is taken is deterministic.
    std::fs::write(root.join("initdb.d/00-slow.sh"), "sleep 1\n").unwrap();
    seed(root, value);
    dir
}

fn write_compose(root: &Path, db_extra_env: &str) {
    std::fs::write(
        root.join("docker-compose.yml"),
        format!(
            r#"services:
  db:
    image: ${{POSTGRES_IMAGE:-postgres:15}}
    environment:
      POSTGRES_USER: seed
      POSTGRES_PASSWORD: seed
      POSTGRES_DB: seed
{db_extra_env}    volumes:
      - ./initdb.d:/docker-entrypoint-initdb.d:ro
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U seed -d seed -h 127.0.0.1"]
      interval: 1s
      timeout: 3s
      retries: 60
  tests:
    image: compose-shard-fixtures/python:3.11
    working_dir: /code
    volumes: [".:/code"]
    depends_on:
      db:
        condition: service_healthy
"#
        ),
    )
    .unwrap();
}

/// The init script inserts `value`; the test expects it.
fn seed(root: &Path, value: &str) {
    std::fs::write(
        root.join("initdb.d/01.sql"),
        format!("CREATE TABLE seed (value text NOT NULL);\nINSERT INTO seed VALUES ('{value}');\n"),
    )
    .unwrap();
    std::fs::write(
        root.join("tests/test_seed.py"),
        format!(
            r#"import psycopg2


def test_the_init_scripts_row():
    with psycopg2.connect(host="db", user="seed", password="seed", dbname="seed") as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT value FROM seed")
            assert cur.fetchall() == [("{value}",)]
"#
        ),
    )
    .unwrap();
}

const SEED_TEST: &str = "tests.test_seed::test_the_init_scripts_row";

/// The one test of [`seeded_stack`] passed in the run whose results are in `out`.
fn assert_seed_test_passed(run: &Finished, out: &Path) {
    assert_eq!(run.output.status.code(), Some(0), "{}", run.all);
    assert_eq!(
        outcomes(&out.join("junit.xml")),
        BTreeMap::from([(SEED_TEST.to_string(), "passed".to_string())]),
        "{}",
        run.all
    );
}

/// The single group's db log of a `--groups 1` run.
fn only_db_log(run: &Finished) -> &str {
    assert_eq!(
        run.db_logs.keys().copied().collect::<Vec<_>>(),
        vec![1],
        "run {}: one db",
        run.run
    );
    &run.db_logs[&1]
}

/// Initialised from scratch: the entrypoint ran initdb and the init script, and a snapshot
/// was taken of the result.
fn assert_initialised_and_taken(run: &Finished) {
    let log = only_db_log(run);
    assert!(log.contains(INIT_DONE), "db initialised:\n{log}");
    assert_eq!(
        run.db_lines("snapshot taken").len(),
        1,
        "a snapshot is taken:\n{}",
        run.all
    );
    assert!(!run.restored(1), "{}", run.all);
}

/// The snapshot's key covers the bind-mounted init scripts and the environment: the same
/// stack is restored, a changed `01.sql` or an added variable initialises `db` afresh (and
/// the test sees the new row, not the old snapshot's).
#[test]
fn a_changed_init_script_or_environment_initialises_the_database_again() {
    let _alone = one_at_a_time();
    require_docker_and_images();
    let stack = seeded_stack("first", "");
    let root = stack.path();
    let cache = Cache::new();
    let mut kept = KeptRuns::default();
    let run = |n: usize, kept: &mut KeptRuns| {
        let out = root.join(format!("results-{n}"));
        let finished = run_kept(
            root,
            cache.path(),
            &["--groups", "1", "--out", out.to_str().unwrap()],
            kept,
        );
        assert_seed_test_passed(&finished, &out);
        finished
    };

    let first = run(1, &mut kept);
    assert_initialised_and_taken(&first);
    assert_eq!(snapshot_dirs(cache.path()).len(), 1);

    // Unchanged: restored (copied in, with layering turned off), no initdb, and the test
    // still reads the init script's row.
    let out = root.join("results-2");
    let second = run_kept_with(
        root,
        cache.path(),
        &["--groups", "1", "--out", out.to_str().unwrap()],
        &[("COMPOSE_SHARD_SNAPSHOT_LAYERS", "0")],
        &mut kept,
    );
    assert_seed_test_passed(&second, &out);
    assert!(
        second.db_lines("copied in").len() == 1,
        "restored by copying:\n{}",
        second.all
    );
    let log = only_db_log(&second);
    assert!(second.restored(1), "{}", second.all);
    assert!(!log.contains(INIT_DONE), "initdb ran again:\n{log}");
    assert!(log.contains(SERVING), "{log}");
    assert_eq!(second.db_lines("snapshot taken"), Vec::<&str>::new());
    assert_eq!(snapshot_dirs(cache.path()).len(), 1);

    // A new value in the init script: the old snapshot (holding "first") must not be used.
    seed(root, "second");
    let third = run(3, &mut kept);
    assert_initialised_and_taken(&third);
    assert_eq!(snapshot_dirs(cache.path()).len(), 2);

    // An environment variable added to db: initialised again too.
    write_compose(root, "      FOO: bar\n");
    let fourth = run(4, &mut kept);
    assert_initialised_and_taken(&fourth);
    assert_eq!(snapshot_dirs(cache.path()).len(), 3);
}

/// `--snapshots off` writes no snapshot on a fresh cache folder (where `auto` then writes
/// one) and does not use the matching snapshot that is there afterwards.
#[test]
fn snapshots_off_neither_writes_nor_uses_a_snapshot() {
    let _alone = one_at_a_time();
    require_docker_and_images();
    let stack = seeded_stack("off", "");
    let root = stack.path();
    let cache = Cache::new();
    let mut kept = KeptRuns::default();
    let (out_off, out_auto, out_off_again) = (
        root.join("results-off"),
        root.join("results-auto"),
        root.join("results-off-again"),
    );
    fn off(out: &Path) -> Vec<&str> {
        vec![
            "--groups",
            "1",
            "--snapshots",
            "off",
            "--out",
            out.to_str().unwrap(),
        ]
    }

    let first = run_kept(root, cache.path(), &off(&out_off), &mut kept);
    assert_seed_test_passed(&first, &out_off);
    assert!(only_db_log(&first).contains(INIT_DONE));
    assert_eq!(
        first.db_lines("snapshot"),
        Vec::<&str>::new(),
        "{}",
        first.all
    );
    let written: Vec<_> = std::fs::read_dir(cache.path().join("snapshots"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert_eq!(written, Vec::<PathBuf>::new(), "--snapshots off wrote");

    // The same run with the default (auto) takes one in this cache folder: the control.
    let auto = run_kept(
        root,
        cache.path(),
        &["--groups", "1", "--out", out_auto.to_str().unwrap()],
        &mut kept,
    );
    assert_seed_test_passed(&auto, &out_auto);
    assert_initialised_and_taken(&auto);
    let snapshots = snapshot_dirs(cache.path());
    assert_eq!(snapshots.len(), 1);
    let recorded = std::fs::read(snapshots[0].join("meta.json")).unwrap();

    // Off again with a matching snapshot present: it initialises and leaves the snapshot be.
    let again = run_kept(root, cache.path(), &off(&out_off_again), &mut kept);
    assert_seed_test_passed(&again, &out_off_again);
    assert!(only_db_log(&again).contains(INIT_DONE), "{}", again.all);
    assert_eq!(
        again.db_lines("snapshot"),
        Vec::<&str>::new(),
        "{}",
        again.all
    );
    assert_eq!(snapshot_dirs(cache.path()), snapshots);
    assert_eq!(
        std::fs::read(snapshots[0].join("meta.json")).unwrap(),
        recorded,
        "an unused snapshot's record is untouched"
    );
}
