//! End-to-end (issue 23): what Docker Compose v2's `docker compose run SERVICE` *does* on a
//! fresh clone, compose-shard does too, on the real engine:
//! - a service the tests do not start may name an `env_file` that a developer creates by
//!   hand (`.env` for the development server): the run warns about it and goes on;
//! - the test service may bind a folder that is not in the repository (a coverage report's
//!   `./htmlcov`): it is created before the containers, owned by the user, and reported;
//!   with `--copy-source` it is made inside the container instead.

#[path = "e2e_support/mod.rs"]
mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

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
