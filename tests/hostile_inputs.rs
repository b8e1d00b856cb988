//! Hostile and broken input given to the binary, one test per case that used to crash, hang,
//! print megabytes or write where it should not (issue 13). Each checks the exit code, that
//! the message names the file (and line and column where there is one), and that nothing was
//! written or replaced.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const JUNIT: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="2" time="0.3">
<testcase classname="tests.test_a" name="test_one" file="tests/test_a.py" time="0.1"/>
<testcase classname="tests.test_a" name="test_two" file="tests/test_a.py" time="0.2"/>
</testsuite></testsuites>
"#;

const COBERTURA: &str = r#"<?xml version="1.0" ?>
<coverage version="7" timestamp="1" lines-valid="1" lines-covered="1" line-rate="1" branches-valid="0" branches-covered="0" branch-rate="1" complexity="0">
<sources><source>/src</source></sources>
<packages><package name="." line-rate="1" branch-rate="1" complexity="0"><classes>
<class name="m.py" filename="m.py" complexity="0" line-rate="1" branch-rate="1"><methods/><lines><line number="1" hits="1"/></lines></class>
</classes></package></packages></coverage>
"#;

fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_compose-shard"));
    for var in [
        "COMPOSE_FILE",
        "COMPOSE_PROJECT_NAME",
        "COMPOSE_PROFILES",
        "GITHUB_ACTIONS",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Run to the end, killing the process past `limit` (a hang is a failure, not a stuck CI).
fn run_limited(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd.spawn().expect("start compose-shard");
    let pid = child.id();
    let start = Instant::now();
    let handle = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !handle.is_finished() {
        if start.elapsed() > limit {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let out = handle.join().unwrap();
            panic!(
                "compose-shard ran longer than {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.join().unwrap()
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = binary();
    cmd.current_dir(dir).args(args);
    run_limited(cmd, Duration::from_secs(30))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn config_of(text: &str) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "compose.yaml", text);
    let out = run_in(dir.path(), &["config"]);
    (dir, out)
}

/// Exit 2 and an error starting with `compose.yaml:LINE:COL:` (any column when `col` is 0).
fn assert_config_error_at(out: &Output, line: usize, col: usize, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let at = if col == 0 {
        format!("compose.yaml:{line}:")
    } else {
        format!("compose.yaml:{line}:{col}: ")
    };
    assert!(err.contains(&at), "expected {at:?} in {err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    assert!(err.len() < 2000, "error of {} bytes", err.len());
}

#[test]
fn interpolation_nested_20000_deep_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}x{}", "${A:-".repeat(20_000), "}".repeat(20_000));
    let (_dir, out) = config_of(&format!(
        "services:\n  web:\n    image: redis\n    environment:\n      A: \"{deep}\"\n"
    ));
    assert_config_error_at(&out, 5, 7, "nested more than 64 deep");
}

#[test]
fn yaml_nested_100000_deep_fails_fast_with_line_and_column() {
    for (opening, closing, column) in [("[", "]", 13 + 128), ("{a: ", "}", 13 + 4 * 128)] {
        let text = format!(
            "services:\n  web:\n    image: redis\n    labels: {}1{}\n",
            opening.repeat(100_000),
            closing.repeat(100_000)
        );
        let start = Instant::now();
        let (_dir, out) = config_of(&text);
        assert_config_error_at(&out, 4, column, "nesting deeper than 128 levels");
        // Used to take 18 s and 31 s; the limit is generous for a debug build on a busy CI.
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }
}

#[test]
fn top_level_list_is_an_error_with_line_and_column() {
    let (_dir, out) = config_of("# a comment\n\n[]\n");
    assert_config_error_at(&out, 3, 1, "expected a mapping at the top level");
}

#[test]
fn alias_bomb_is_an_error_at_the_first_alias() {
    let mut text = String::from("services:\n  web:\n    image: x\nx-bomb:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (i, c) in ('b'..='j').enumerate() {
        let prev = (b'a' + i as u8) as char;
        let refs = vec![format!("*{prev}"); 9].join(", ");
        text.push_str(&format!("  {c}: &{c} [{refs}]\n"));
    }
    let (_dir, out) = config_of(&text);
    assert_config_error_at(&out, 6, 10, "billion laughs");
}

#[test]
fn empty_compose_file_is_an_error() {
    let (_dir, out) = config_of("");
    assert_config_error_at(&out, 1, 1, "the file is empty");
    let (_dir, out) = config_of("# only a comment\n");
    assert_config_error_at(&out, 1, 1, "the file is empty");
}

#[test]
fn compose_file_dash_reads_standard_input_with_the_working_directory_as_project() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary();
    cmd.current_dir(dir.path())
        .args(["config", "-f", "-", "--format", "json"])
        .stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"services:\n  web:\n    image: redis:7\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["services"]["web"]["image"], "redis:7");
    let project_dir = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(
        std::fs::canonicalize(json["project_dir"].as_str().unwrap()).unwrap(),
        project_dir
    );
}

#[test]
fn many_services_with_one_unsupported_key_give_one_short_warning() {
    let mut text = String::from("services:\n");
    for i in 0..2000 {
        text.push_str(&format!(
            "  svc{i}:\n    image: redis\n    deploy: {{replicas: 1}}\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "compose.yaml", &text);
    let out = run_in(dir.path(), &["config", "--groups", "4", "--group", "2"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("2000 services: `deploy` is not supported by compose-shard and is ignored (\"svc0\", \"svc1\", \"svc2\", \"svc3\", \"svc4\" and 1995 more)"),
        "{err}"
    );
    let longest = err.lines().map(str::len).max().unwrap_or(0);
    assert!(
        err.lines().count() <= 3 && longest < 500,
        "{} lines, longest {longest} bytes",
        err.lines().count()
    );
}

/// Peak resident memory of the largest child this process waited for, in KiB.
fn children_peak_rss_kib() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a rusage into the pointer it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialised by the successful call above.
    unsafe { usage.assume_init() }.ru_maxrss as u64
}

#[test]
fn large_project_uses_memory_proportional_to_its_size() {
    // 25,000 services, about 4 MB: the same shape as the 50 MB file of the report.
    let mut text = String::from("services:\n");
    for i in 0..25_000 {
        text.push_str(&format!(
            "  svc{i}:\n    image: redis:7\n    ports: [\"6379\"]\n    environment: {{A: \"1\", B: \"${{B:-x}}\"}}\n    labels: [a=b, c=d]\n    depends_on: [{}]\n",
            // A chain, not a cycle (a cycle is refused before anything else).
            if i == 0 { String::new() } else { format!("svc{}", i - 1) }
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "compose.yaml", &text);
    let mut cmd = binary();
    cmd.current_dir(dir.path())
        .args(["config", "--format", "json"])
        .stdout(Stdio::null());
    let out = run_limited(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let input_kib = (text.len() / 1024) as u64;
    let peak = children_peak_rss_kib();
    // Measured: about 50 times the input (the parsed YAML tree is ~170 bytes a node); the
    // document copies that were removed made it 65-70 times.
    assert!(
        peak < 60 * input_kib + 20 * 1024,
        "peak RSS {peak} KiB for {input_kib} KiB of compose file"
    );
}

#[test]
fn merge_junit_xml_with_only_coverage_inputs_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cov = write(dir.path(), "coverage.xml", COBERTURA);
    let target = dir.path().join("o.xml");
    let out = run_in(
        dir.path(),
        &[
            "merge",
            "--junit-xml",
            target.to_str().unwrap(),
            cov.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("none of the inputs is a JUnit report"));
    assert!(!target.exists());
}

#[test]
fn merge_cov_xml_with_only_junit_inputs_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let junit = write(dir.path(), "junit.xml", JUNIT);
    let junit_out = dir.path().join("merged.xml");
    let cov_out = dir.path().join("cov.xml");
    let out = run_in(
        dir.path(),
        &[
            "merge",
            "--junit-xml",
            junit_out.to_str().unwrap(),
            "--cov-xml",
            cov_out.to_str().unwrap(),
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!junit_out.exists() && !cov_out.exists());
}

#[test]
fn merge_output_through_a_symlink_writes_the_link_target_and_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let junit = write(dir.path(), "junit.xml", JUNIT);
    let real = write(dir.path(), "elsewhere.xml", "old");
    let link = dir.path().join("link.xml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = run_in(
        dir.path(),
        &[
            "merge",
            "--junit-xml",
            link.to_str().unwrap(),
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&real).unwrap().contains("test_two"));
}

#[test]
fn merge_output_to_a_fifo_is_written_through_and_stays_a_fifo() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let junit = write(dir.path(), "junit.xml", JUNIT);
    let fifo = dir.path().join("pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = run_in(
        dir.path(),
        &[
            "merge",
            "--junit-xml",
            fifo.to_str().unwrap(),
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Checked before joining: a FIFO replaced by a file is never opened for writing, and the
    // reader would wait forever.
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(reader.join().unwrap().contains("test_two"));
}

#[test]
fn merge_output_to_dev_stdout_goes_to_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let junit = write(dir.path(), "junit.xml", JUNIT);
    let out = run_in(
        dir.path(),
        &[
            "merge",
            "--junit-xml",
            "/dev/stdout",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("<testsuites"), "{stdout}");
    assert!(Path::new("/dev/stdout").is_symlink() || !Path::new("/dev/stdout").is_file());
}

fn utf16le(text: &str, bom: bool) -> Vec<u8> {
    let mut out = if bom { vec![0xFF, 0xFE] } else { vec![] };
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

#[test]
fn merge_of_utf16_or_binary_input_names_the_file_and_the_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("bom.xml", utf16le(JUNIT, true), "UTF-16"),
        ("nobom.xml", utf16le(JUNIT, false), "UTF-16"),
        (
            "binary.xml",
            b"\x7fELF\x02\x01\x01\x00\x00\x00".to_vec(),
            "binary",
        ),
    ];
    for (name, bytes, word) in cases {
        let path = write(dir.path(), name, bytes);
        let out = run_in(dir.path(), &["merge", path.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("{}:1: ", path.display())), "{err}");
        assert!(err.contains(word), "{err}");
        assert!(!err.contains('\0'), "raw NUL bytes in {err:?}");
    }
}

#[test]
fn implausible_junit_durations_are_rejected_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let tests = write(
        dir.path(),
        "tests.txt",
        "tests/test_a.py::test_one\ntests/test_a.py::test_two\n",
    );
    for time in ["1e308", "-1", "NaN", "", "abc", "inf"] {
        let junit = write(
            dir.path(),
            "j.xml",
            format!(
                "<testsuites><testsuite name=\"p\" tests=\"1\">\n<testcase classname=\"tests.test_a\" name=\"test_one\" file=\"tests/test_a.py\" time=\"{time}\"/>\n</testsuite></testsuites>\n"
            ),
        );
        let out = run_in(
            dir.path(),
            &[
                "plan",
                "--groups",
                "2",
                "--tests",
                tests.to_str().unwrap(),
                "--durations-from-junit",
                junit.to_str().unwrap(),
            ],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "time={time:?}: {err}");
        assert!(err.contains(&format!("{}:2: ", junit.display())), "{err}");
        assert!(err.contains("time="), "{err}");
    }
}

#[test]
fn implausible_durations_file_entries_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let tests = write(dir.path(), "tests.txt", "tests/test_a.py::test_one\n");
    let durations = write(
        dir.path(),
        "d.json",
        "{\n    \"tests/test_a.py::test_one\": 1e308\n}",
    );
    let out = run_in(
        dir.path(),
        &[
            "plan",
            "--groups",
            "2",
            "--tests",
            tests.to_str().unwrap(),
            "--durations",
            durations.to_str().unwrap(),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("d.json: line 2"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("e+"));
}

#[test]
fn empty_or_garbage_test_list_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        ("empty.txt", b"", "holds no pytest node ids"),
        (
            "words.txt",
            b"hello world\nnot a test\n",
            "holds no pytest node ids",
        ),
        (
            "binary.txt",
            b"\xff\xfe\x00garbage\x80",
            "is not UTF-8 text",
        ),
    ];
    for (name, bytes, needle) in cases {
        let path = write(dir.path(), name, bytes);
        let out = run_in(
            dir.path(),
            &["plan", "--groups", "2", "--tests", path.to_str().unwrap()],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(name) && err.contains(needle), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn groups_100000_is_an_error_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let tests = write(dir.path(), "tests.txt", "tests/test_a.py::test_one\n");
    let out = run_in(
        dir.path(),
        &[
            "plan",
            "--groups",
            "100000",
            "--tests",
            tests.to_str().unwrap(),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--groups 100000 is more than 1024"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn garbage_docker_host_names_the_bad_scheme_and_the_accepted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary();
    cmd.current_dir(dir.path())
        .env("DOCKER_HOST", "garbage://x")
        .args(["clean", "--all", "--dry-run"]);
    let out = run_limited(cmd, Duration::from_secs(30));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("unknown scheme `garbage`"), "{err}");
    assert!(
        err.contains("unix://") && err.contains("tcp://HOST:PORT"),
        "{err}"
    );
    assert!(!err.contains("Start it"), "{err}");
}

#[test]
fn refused_tcp_docker_host_says_nothing_listens_there() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("tcp://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary();
    cmd.current_dir(dir.path())
        .env("DOCKER_HOST", &host)
        .args(["clean", "--all", "--dry-run"]);
    let out = run_limited(cmd, Duration::from_secs(30));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(&format!("nothing listens at {host}")), "{err}");
    assert!(!err.contains("hyper legacy client"), "{err}");
}
