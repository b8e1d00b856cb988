//! End-to-end (issue 23): what Docker Compose v2's `docker compose run SERVICE` *does* on a
//! fresh clone, compose-shard does too, on the real engine:
//! - a service the tests do not start may name an `env_file` that a developer creates by
//!   hand (`.env` for the development server): the run warns about it and goes on;
//! - the test service may bind a folder that is not in the repository (a coverage report's
//!   `./htmlcov`): it is created before the containers, owned by the user, and reported;
//!   with `--copy-source` it is made inside the container instead;
//! - the test service's entrypoint starts the application server, and the tests run with
//!   `docker compose run --rm --entrypoint pytest SERVICE`: `--entrypoint` replaces it the
//!   same way (split like a shell, the arguments after `--` following it), and `-u`, `-w`
//!   and `-v` (a relative source from the current directory) change the test container as
//!   they do under Compose, `--cap-add`, `--cap-drop` and `-l` too (`--rm` and `-T` are
//!   accepted as written), and `--no-deps` starts it alone.

#[path = "e2e_support/mod.rs"]
mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use support::*;

/// `compose.override`-style file Compose loads by default next to `docker-compose.yml`.
fn write_override(stack: &Path, text: &str) {
    std::fs::write(stack.join("docker-compose.override.yml"), text).unwrap();
}

fn assert_nothing_left(output: &std::process::Output) {
    let run_id = run_id_of(&String::from_utf8_lossy(&output.stderr));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}

#[test]
fn a_missing_env_file_of_a_service_the_tests_do_not_start_is_only_a_warning() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    write_override(
        stack.path(),
        "services:\n  web:\n    image: ${PYTHON_IMAGE}\n    command: python -m http.server\n    env_file: .env.web\n    depends_on: [redis]\n",
    );
    let output = run_to_end(stack.path(), &["--groups", "2"]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(
        all.contains("warning: service \"web\" is not started by this run and is ignored: ")
            && all.contains(".env.web"),
        "{all}"
    );
    assert!(all.contains("passed"), "{all}");
    assert_nothing_left(&output);

    // The test service's own missing env file still stops the run before the engine.
    write_override(
        stack.path(),
        "services:\n  tests:\n    env_file: .env.tests\n",
    );
    let output = run_to_end(stack.path(), &["--groups", "2"]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(
        all.contains("services.tests.env_file: cannot read env file"),
        "{all}"
    );
}

/// A test that writes into the bound folder, as a coverage report does.
const WRITES_REPORT: &str = "import os\n\ndef test_writes_into_the_report_folder():\n    assert os.path.isdir('/reports')\n    with open(f'/reports/{os.getpid()}.txt', 'w') as f:\n        f.write('ok')\n";

fn stack_binding_a_missing_folder() -> tempfile::TempDir {
    let stack = stack_copy("pytest-redis");
    std::fs::write(stack.path().join("tests/test_zz_report.py"), WRITES_REPORT).unwrap();
    write_override(
        stack.path(),
        "services:\n  tests:\n    volumes:\n      - ./build/htmlcov:/reports\n",
    );
    stack
}

#[test]
fn a_missing_bind_source_of_the_test_service_is_created_owned_by_the_user_and_reported() {
    require_docker_and_images();
    let stack = stack_binding_a_missing_folder();
    let folder = stack.path().join("build/htmlcov");
    assert!(!folder.exists());
    let output = run_to_end(stack.path(), &["--groups", "2"]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(
        all.contains(&format!(
            "created the missing bind-mount source folder {}",
            stack.path().join("build").display()
        )),
        "{all}"
    );
    assert!(folder.is_dir(), "the folder stays, as with Compose");
    let me = std::fs::metadata(stack.path()).unwrap();
    let made = std::fs::metadata(&folder).unwrap();
    assert_eq!((made.uid(), made.gid()), (me.uid(), me.gid()));
    let written = std::fs::read_dir(&folder).unwrap().count();
    assert_eq!(
        written, 1,
        "the group that ran the test wrote into the bind"
    );
    assert_nothing_left(&output);
}

#[test]
fn with_copy_source_the_missing_folder_is_made_in_the_container_only() {
    require_docker_and_images();
    let stack = stack_binding_a_missing_folder();
    let output = run_to_end(stack.path(), &["--groups", "2", "--copy-source", "always"]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(!stack.path().join("build").exists(), "{all}");
    assert!(
        !all.contains("created the missing bind-mount source"),
        "{all}"
    );
    assert_nothing_left(&output);
}

/// The outcome line pytest prints last (`5 passed in 1.2s`), without its time.
fn pytest_counts(output: &str) -> Option<String> {
    output.lines().rev().find_map(|line| {
        let line = line.trim().trim_matches('=').trim();
        let counts = line.split(" in ").next()?;
        counts.contains(" passed").then(|| counts.to_string())
    })
}

#[test]
fn an_entrypoint_replaced_as_compose_run_entrypoint_runs_the_same_tests() {
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    // The service as a development stack has it: its entrypoint serves the application and
    // never ends; `pytest` after it would be an argument of the server.
    write_override(
        stack.path(),
        "services:\n  tests:\n    entrypoint: [\"python\", \"-m\", \"http.server\"]\n",
    );
    let compose = |args: &[&str]| {
        // A project name of its own: the stack copies share theirs, and the tests of this
        // file run at the same time.
        let out = Command::new(compose_v2())
            .current_dir(stack.path())
            .envs(FIXTURE_ENV)
            .args(["-p", "cs-e2e-parity-entrypoint"])
            .args(args)
            .output()
            .expect("run docker compose");
        (out.status.code(), text(&out))
    };
    let (code, reference) = compose(&[
        "run",
        "--rm",
        "-T",
        "--entrypoint",
        "pytest -p no:cacheprovider",
        "tests",
        "-q",
    ]);
    compose(&["down", "-v", "--remove-orphans"]);
    assert_eq!(code, Some(0), "Compose v2's own run failed:\n{reference}");
    let expected = pytest_counts(&reference).expect("pytest's summary line from Compose's run");

    let output = run_to_end(
        stack.path(),
        &[
            "--groups",
            "2",
            "--entrypoint",
            "pytest -p no:cacheprovider",
            "--",
            "-q",
        ],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let passed: usize = expected
        .split(" passed")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The summary's totals row: tests, passed, failed, errors, skipped.
    let totals: Vec<&str> = all
        .lines()
        .find(|l| l.starts_with("total "))
        .map(|l| l.split_whitespace().skip(1).take(5).collect())
        .unwrap_or_default();
    let passed = passed.to_string();
    assert_eq!(
        totals,
        [passed.as_str(), passed.as_str(), "0", "0", "0"],
        "Compose ran `{expected}`:\n{all}"
    );
    assert_nothing_left(&output);

    // `plan` collects the same way.
    let planned = binary()
        .current_dir(stack.path())
        .args([
            "plan",
            "--groups",
            "2",
            "--entrypoint",
            "pytest -p no:cacheprovider",
        ])
        .output()
        .expect("run compose-shard plan");
    let plan_text = text(&planned);
    assert!(planned.status.success(), "{plan_text}");
    let plan_total = plan_text
        .lines()
        .find(|l| l.starts_with("total "))
        .and_then(|l| l.split_whitespace().nth(1));
    assert_eq!(plan_total, Some(passed.as_str()), "{plan_text}");

    // Without it, the server's entrypoint gets pytest as its argument, as with Compose.
    let output = run_to_end(stack.path(), &["--groups", "1", "--ready-timeout", "1m"]);
    let all = text(&output);
    assert_ne!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("collection failed"), "{all}");
}

#[test]
fn user_workdir_and_volume_flags_change_the_test_container_as_compose_run_does() {
    use std::os::unix::fs::PermissionsExt;
    require_docker_and_images();
    let stack = stack_copy("pytest-redis");
    let readable = |path: &Path| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    readable(stack.path());
    write_override(
        stack.path(),
        "services:\n  tests:\n    entrypoint: [\"python\", \"-m\", \"http.server\"]\n    working_dir: /tmp\n",
    );
    std::fs::write(
        stack.path().join("tests/test_flags.py"),
        "import os\n\ndef bounding_set():\n    with open('/proc/self/status') as f:\n        line = next(l for l in f if l.startswith('CapBnd:'))\n    return int(line.split()[1], 16)\n\ndef test_the_run_flags_apply():\n    assert (os.getuid(), os.getgid()) == (1234, 1234)\n    assert os.getcwd() == '/code'\n    with open('/extra/hello.txt') as f:\n        assert f.read() == 'hello'\n    assert bounding_set() & (1 << 12), 'NET_ADMIN added'\n    assert not bounding_set() & 1, 'CHOWN dropped'\n",
    )
    .unwrap();
    // The relative `-v` source is the current directory's, not the project's.
    let cwd = tempfile::tempdir().unwrap();
    readable(cwd.path());
    std::fs::create_dir(cwd.path().join("extra")).unwrap();
    std::fs::write(cwd.path().join("extra/hello.txt"), "hello").unwrap();
    readable(&cwd.path().join("extra"));
    let files = [
        "-f".to_string(),
        stack
            .path()
            .join("docker-compose.yml")
            .display()
            .to_string(),
        "-f".to_string(),
        stack
            .path()
            .join("docker-compose.override.yml")
            .display()
            .to_string(),
    ];
    // Written as `docker compose run` takes them (`--rm` and `-T` included).
    let flags = [
        "--rm",
        "-T",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "CHOWN",
        "-l",
        "dev.e2e.flags=given",
        "--no-deps",
        "-u",
        "1234:1234",
        "-w",
        "/code",
        "-v",
        "./extra:/extra:ro",
        "--entrypoint",
        "pytest",
    ];
    let compose = |args: &[&str]| {
        let out = Command::new(compose_v2())
            .current_dir(cwd.path())
            .envs(FIXTURE_ENV)
            .args(["-p", "cs-e2e-parity-flags"])
            .args(&files)
            .args(args)
            .output()
            .expect("run docker compose");
        (out.status.code(), text(&out))
    };
    let mut args = vec!["run"];
    args.extend(flags);
    args.extend(["tests", "-p", "no:cacheprovider", "tests/test_flags.py"]);
    let (code, reference) = compose(&args);
    compose(&["down", "-v", "--remove-orphans"]);
    assert_eq!(code, Some(0), "Compose v2's own run failed:\n{reference}");

    let mut args: Vec<&str> = files.iter().map(String::as_str).collect();
    args.extend(["--groups", "1", "--keep"]);
    args.extend(flags);
    args.extend(["--", "-p", "no:cacheprovider", "tests/test_flags.py"]);
    let output = wait_limited(
        binary()
            .current_dir(cwd.path())
            .args(["run", "--progress", "plain"])
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        std::time::Duration::from_secs(600),
    );
    let all = text(&output);
    // `-l`: the test container (kept with `--keep`) carries the label.
    let run_id = run_id_of(&String::from_utf8_lossy(&output.stderr));
    let labelled = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}", "--filter"])
        .arg(format!("label=dev.compose-shard.run={run_id}"))
        .args(["--filter", "label=dev.e2e.flags=given"])
        .output()
        .unwrap();
    let labelled = String::from_utf8_lossy(&labelled.stdout).into_owned();
    let clean = binary().args(["clean", "--run", &run_id]).output().unwrap();
    assert!(clean.status.success(), "{}", text(&clean));
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("1 passed, 0 failed"), "{all}");
    assert!(
        labelled.trim().ends_with("-g1-tests-1") && labelled.lines().count() == 1,
        "the test container alone is labelled: {labelled:?}"
    );
    // `--no-deps`: the test container alone, no Redis.
    assert!(
        all.contains("-g1-tests-1") && !all.contains("-g1-redis-1"),
        "{all}"
    );
    assert_nothing_left(&output);
}
