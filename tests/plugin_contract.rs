//! The plugin's contract: the real `compose_shard_plugin.py` under real pytest (the test
//! virtualenv's, a newer pytest than the fixture images' 7.2), driven the way compose-shard
//! drives it (files in its folder, answers to `next K`, dump requests), its output read with
//! compose-shard's own parser. Static and dynamic mode on `tests/python/protocol`, plus the
//! watchdog's three jobs: the test timeout, the exit grace and stack dumps on request.

#[path = "report_support.rs"]
mod report_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use compose_shard::run::protocol::{
    parse_line, unit_file_names, OutputLine, PluginLine, Token, LATER_LINE, PROGRESS_FILE_NAME,
    TESTS_FILE_NAME, TESTS_READY_NAME,
};
use compose_shard::run::{TestOutcome, PLUGIN_SOURCE};

const TOKEN: &str = "contract0token";
const SUITE: &str = "test_channel.py";

/// `test_channel.py::NAME`.
fn id(name: &str) -> String {
    format!("{SUITE}::{name}")
}

/// A pytest run under the plugin, in a scratch copy of the suite.
struct Session {
    dir: tempfile::TempDir,
    child: Child,
    lines: mpsc::Receiver<String>,
    started: Instant,
}

impl Session {
    fn plugin_dir(&self) -> PathBuf {
        self.dir.path().join("plugin")
    }

    fn results_dir(&self) -> PathBuf {
        self.dir.path().join("results")
    }
}

fn start(dist: &str, env: &[(&str, &str)], args: &[&str]) -> Session {
    start_in(Launch::Plain, dist, env, args)
}

/// How pytest's process is started.
#[derive(Clone, Copy, Debug)]
enum Launch {
    Plain,
    /// As a background job of a script without job control: SIGINT ignored, inherited
    /// through exec (Python then installs no KeyboardInterrupt handler of its own).
    SigintIgnored,
}

fn start_in(launch: Launch, dist: &str, env: &[(&str, &str)], args: &[&str]) -> Session {
    let dir = tempfile::tempdir().unwrap();
    let suite = report_support::crate_root().join("tests/python/protocol");
    report_support::copy_tree(&suite, &dir.path().join("suite"));
    for sub in ["plugin", "results"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    std::fs::write(
        dir.path().join("plugin/compose_shard_plugin.py"),
        PLUGIN_SOURCE,
    )
    .unwrap();
    let mut command = match launch {
        Launch::Plain => Command::new(report_support::python()),
        Launch::SigintIgnored => {
            let mut sh = Command::new("sh");
            sh.args(["-c", "trap '' INT; exec \"$0\" \"$@\""])
                .arg(report_support::python());
            sh
        }
    };
    command
        .args([
            "-m",
            "pytest",
            "-p",
            "compose_shard_plugin",
            "-p",
            "no:cacheprovider",
        ])
        .arg(format!(
            "--junitxml={}",
            dir.path().join("results/junit.xml").display()
        ))
        .args(args)
        .current_dir(dir.path().join("suite"))
        .env("PYTHONPATH", dir.path().join("plugin"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("COMPOSE_SHARD_DIR", dir.path().join("plugin"))
        .env("COMPOSE_SHARD_RESULTS", dir.path().join("results"))
        .env("COMPOSE_SHARD_DIST", dist)
        .env("COMPOSE_SHARD_TOKEN", TOKEN)
        .env("COMPOSE_SHARD_EXIT_GRACE", "30")
        .env_remove("PYTEST_ADDOPTS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start pytest");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Session {
        dir,
        child,
        lines,
        started: Instant::now(),
    }
}

/// Everything a session printed, and how it ended (its folders live as long as this).
struct Ended {
    _dir: tempfile::TempDir,
    lines: Vec<String>,
    plugin: Vec<PluginLine>,
    status: Option<i32>,
    seconds: f64,
    stderr: String,
}

impl Ended {
    fn done(&self) -> Vec<(String, TestOutcome)> {
        self.plugin
            .iter()
            .filter_map(|l| match l {
                PluginLine::Done {
                    node_id, outcome, ..
                } => Some((node_id.clone(), *outcome)),
                _ => None,
            })
            .collect()
    }

    fn has(&self, wanted: &PluginLine) -> bool {
        self.plugin.contains(wanted)
    }

    fn text(&self) -> String {
        format!("{}\n--- stderr ---\n{}", self.lines.join("\n"), self.stderr)
    }
}

/// Read the session to its end, answering each line with `answer` (which may write files
/// into the plugin's folder), within `limit`.
fn drive(
    mut session: Session,
    limit: Duration,
    mut answer: impl FnMut(&Path, &PluginLine),
) -> Ended {
    let token = Token::new(TOKEN);
    let mut lines = Vec::new();
    let mut plugin = Vec::new();
    let deadline = Instant::now() + limit;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match session.lines.recv_timeout(wait) {
            Ok(line) => {
                if let OutputLine::Plugin(parsed) = parse_line(&line, &token) {
                    answer(&session.plugin_dir(), &parsed);
                    plugin.push(parsed);
                }
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = session.child.kill();
                panic!(
                    "pytest did not end within {limit:?}; its output:\n{}",
                    lines.join("\n")
                );
            }
        }
    }
    let output = session.child.wait_with_output().unwrap();
    Ended {
        _dir: session.dir,
        lines,
        plugin,
        status: output.status.code(),
        seconds: session.started.elapsed().as_secs_f64(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn write_list(dir: &Path, list: &str, ready: &str, ids: &[String]) {
    let mut text = ids.join("\n");
    text.push('\n');
    std::fs::write(dir.join(list), text).unwrap();
    std::fs::write(dir.join(ready), "").unwrap();
}

/// Answer the plugin's `next K` with `ids` (none: the queue is done).
fn answer_unit(dir: &Path, k: u64, ids: &[String]) {
    let (list, ready) = unit_file_names(k);
    if ids.is_empty() {
        std::fs::write(dir.join(&list), "").unwrap();
        std::fs::write(dir.join(&ready), "").unwrap();
    } else {
        write_list(dir, &list, &ready, ids);
    }
}

fn static_list(session: &Session, ids: &[String]) {
    write_list(
        &session.plugin_dir(),
        TESTS_FILE_NAME,
        TESTS_READY_NAME,
        ids,
    );
}

#[test]
fn static_mode_runs_exactly_the_given_list_in_order_and_reports_each_test() {
    let session = start("static", &[], &["-s"]);
    let wanted = vec![
        id("test_fail"),
        id("test_pass"),
        id("test_forges_protocol_lines"),
        id("test_skip"),
        id("no_such_test"),
        id("test_the_token_is_not_in_the_environment"),
    ];
    static_list(&session, &wanted);
    let results = session.results_dir();
    let plugin_dir = session.plugin_dir();
    let ended = drive(session, Duration::from_secs(120), |_, _| {});
    let text = ended.text();
    assert!(ended.has(&PluginLine::Maxfail(0)), "{text}");
    assert!(ended.has(&PluginLine::Collected(11)), "{text}");
    assert!(
        ended.has(&PluginLine::Missing(id("no_such_test"))),
        "{text}"
    );
    assert_eq!(
        ended.done(),
        vec![
            (id("test_fail"), TestOutcome::Failed),
            (id("test_pass"), TestOutcome::Passed),
            (id("test_forges_protocol_lines"), TestOutcome::Passed),
            (id("test_skip"), TestOutcome::Skipped),
            (
                id("test_the_token_is_not_in_the_environment"),
                TestOutcome::Passed
            ),
        ],
        "{text}"
    );
    // The forged lines were printed (-s) and are test output, nothing else.
    assert!(
        ended
            .lines
            .iter()
            .any(|l| l == "##compose-shard## done failed 0.1 test_channel.py::test_pass"),
        "{text}"
    );
    assert_eq!(
        ended.plugin.last(),
        Some(&PluginLine::Finished(1)),
        "{text}"
    );
    assert_eq!(ended.status, Some(1));
    let collected = std::fs::read_to_string(plugin_dir.join("collected.txt")).unwrap();
    assert_eq!(collected.lines().count(), 11);
    let progress = std::fs::read_to_string(results.join(PROGRESS_FILE_NAME)).unwrap();
    assert_eq!(progress.lines().count(), 5, "{progress}");
    assert!(progress.contains("one is not two"), "{progress}");
    let junit = std::fs::read_to_string(results.join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"5\""), "{junit}");
}

/// The chunk a `next K` or `next K now` asks for, and whether it was `now`.
fn asked_for(line: &PluginLine) -> Option<(u64, bool)> {
    match line {
        PluginLine::Next(k) => Some((*k, false)),
        PluginLine::NextNow(k) => Some((*k, true)),
        _ => None,
    }
}

/// Where in the plugin's lines `wanted` is.
fn position(ended: &Ended, wanted: impl Fn(&PluginLine) -> bool) -> usize {
    ended
        .plugin
        .iter()
        .position(wanted)
        .unwrap_or_else(|| panic!("missing line: {}", ended.text()))
}

fn done_of(test: &str) -> impl Fn(&PluginLine) -> bool + '_ {
    move |l| matches!(l, PluginLine::Done { node_id, .. } if node_id == test)
}

#[test]
fn dynamic_mode_asks_for_each_chunk_as_the_last_test_before_it_ends_and_runs_each_once() {
    let session = start("dynamic", &[], &[]);
    let units: Vec<Vec<String>> = vec![
        vec![id("test_pass"), id("test_skip")],
        vec![id("test_fail")],
        vec![id("test_sleeps"), id("test_forges_protocol_lines")],
    ];
    let mut asked = Vec::new();
    let ended = drive(session, Duration::from_secs(120), |dir, line| {
        if let Some((k, now)) = asked_for(line) {
            asked.push((k, now));
            let ids = units.get(k as usize - 1).cloned().unwrap_or_default();
            answer_unit(dir, k, &ids);
        }
    });
    let text = ended.text();
    // The first chunk is waited for; each later one is asked for while the chunk before
    // ends (its last test's teardown; as it starts where a hook takes `nextitem`: see
    // chunks_that_follow_each_other_...), not when that chunk began.
    assert_eq!(
        asked,
        vec![(1, false), (2, true), (3, true), (4, true)],
        "{text}"
    );
    let second = position(&ended, |l| *l == PluginLine::NextNow(2));
    assert!(
        position(&ended, done_of(&id("test_pass"))) < second
            && second < position(&ended, done_of(&id("test_skip"))),
        "next 2 is asked while the first chunk's last test ends: {text}"
    );
    let ran: Vec<String> = ended.done().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ran, units.concat(), "{text}");
    assert_eq!(
        ended.plugin.last(),
        Some(&PluginLine::Finished(1)),
        "{text}"
    );
    assert_eq!(ended.status, Some(1));
}

#[test]
fn chunks_that_follow_each_other_keep_the_session_fixtures_also_one_test_chunks() {
    // Each chunk's last test is given the next chunk's first as its next test, so pytest
    // keeps the fixtures they share: a session fixture (a test database) is set up once for
    // the whole run, also through chunks of one test (the end of a queue). The next chunk is
    // asked for at the last test's teardown, once its body ran; where a project's hook takes
    // `nextitem` (`-p next_hook`), as that test starts, and the hook sees a real next test, or
    // None after the last one.
    for hooked in [false, true] {
        let log = tempfile::NamedTempFile::new().unwrap();
        let log_path = log.path().display().to_string();
        let next_log = tempfile::NamedTempFile::new().unwrap();
        let next_path = next_log.path().display().to_string();
        let ran_log = tempfile::NamedTempFile::new().unwrap();
        let ran_path = ran_log.path().display().to_string();
        let hook: &[&str] = if hooked { &["-p", "next_hook"] } else { &[] };
        let session = start(
            "dynamic",
            &[
                ("PROTOCOL_WAIT", "0.3"),
                ("PROTOCOL_SESSION_LOG", &log_path),
                ("PROTOCOL_NEXT_LOG", &next_path),
                ("PROTOCOL_RAN_LOG", &ran_path),
            ],
            hook,
        );
        let wait = |n: u32| format!("test_session.py::test_waits[{n}]");
        let units: Vec<Vec<String>> = vec![vec![wait(0), wait(1)], vec![wait(2)], vec![wait(3)]];
        // Which test bodies had run when each `next K now` came.
        let mut ran_when_asked = Vec::new();
        let ended = drive(session, Duration::from_secs(120), |dir, line| {
            if let Some((k, now)) = asked_for(line) {
                if now {
                    let ran = std::fs::read_to_string(&ran_path).unwrap();
                    ran_when_asked.push((k, ran.lines().count()));
                }
                let ids = units.get(k as usize - 1).cloned().unwrap_or_default();
                answer_unit(dir, k, &ids);
            }
        });
        let text = ended.text();
        let ran: Vec<String> = ended.done().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ran, units.concat(), "{text}");
        let sessions = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(sessions, "setup\nteardown\n", "{text}");
        let expected_asks = if hooked {
            [(2, 1), (3, 2), (4, 3)]
        } else {
            [(2, 2), (3, 3), (4, 4)]
        };
        assert_eq!(ran_when_asked, expected_asks, "hooked {hooked}: {text}");
        let next = std::fs::read_to_string(next_log.path()).unwrap();
        let expected: String = if hooked {
            (0..4)
                .map(|n| {
                    let after = if n < 3 { wait(n + 1) } else { "None".into() };
                    format!("{} -> {after}\n", wait(n))
                })
                .collect()
        } else {
            String::new()
        };
        assert_eq!(next, expected, "{text}");
        assert_eq!(ended.status, Some(0), "{text}");
    }
}

#[test]
fn a_test_past_the_timeout_is_an_error_with_every_threads_stack_and_the_session_ends() {
    for (swallow, launch) in [
        ("0", Launch::Plain),
        ("1", Launch::Plain),
        ("0", Launch::SigintIgnored),
    ] {
        let session = start_in(
            launch,
            "static",
            &[
                ("COMPOSE_SHARD_TEST_TIMEOUT", "1"),
                ("PROTOCOL_SLEEP", "60"),
                ("PROTOCOL_SWALLOW_INTERRUPT", swallow),
            ],
            &[],
        );
        static_list(
            &session,
            &[id("test_pass"), id("test_sleeps"), id("test_fail")],
        );
        let results = session.results_dir();
        let ended = drive(session, Duration::from_secs(60), |_, _| {});
        let text = ended.text();
        // Well before the backstop (the timeout and 30 s), also when the test caught the
        // first interrupt: it is interrupted again while it is still the current test.
        assert!(
            ended.seconds < 20.0,
            "swallow {swallow}, {launch:?}: ended after {}s: {text}",
            ended.seconds
        );
        let timeout = ended
            .plugin
            .iter()
            .find_map(|l| match l {
                PluginLine::Timeout {
                    stacks,
                    seconds,
                    node_id,
                } => Some((*stacks, *seconds, node_id.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no timeout line: {text}"));
        assert_eq!(timeout.2, id("test_sleeps"));
        assert!(timeout.1 >= 1.0, "{text}");
        assert_eq!(
            ended.done(),
            vec![
                (id("test_pass"), TestOutcome::Passed),
                (id("test_sleeps"), TestOutcome::Error),
            ],
            "the session ends after the timed-out test: {text}"
        );
        assert_eq!(
            ended.plugin.last(),
            Some(&PluginLine::Finished(2)),
            "{text}"
        );
        assert_eq!(ended.status, Some(2));
        let stacks =
            std::fs::read_to_string(results.join(format!("stacks-{}.txt", timeout.0))).unwrap();
        assert!(stacks.contains("time.sleep"), "{stacks}");
        let junit = std::fs::read_to_string(results.join("junit.xml")).unwrap();
        assert!(junit.contains("name=\"test_sleeps\""), "{junit}");
        assert!(junit.contains("--test-timeout 1s"), "{junit}");
        assert!(junit.contains("<error"), "{junit}");
    }
}

#[test]
fn a_process_kept_alive_by_a_thread_ends_after_the_grace_with_pytests_status() {
    let session = start(
        "static",
        &[("COMPOSE_SHARD_EXIT_GRACE", "1"), ("PROTOCOL_LINGER", "1")],
        &[],
    );
    static_list(&session, &[id("test_leaves_a_thread"), id("test_fail")]);
    let results = session.results_dir();
    let ended = drive(session, Duration::from_secs(60), |_, _| {});
    let text = ended.text();
    assert!(ended.has(&PluginLine::Finished(1)), "{text}");
    let (stacks, threads) = ended
        .plugin
        .iter()
        .find_map(|l| match l {
            PluginLine::Lingering { stacks, threads } => Some((*stacks, *threads)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no lingering line: {text}"));
    assert_eq!(threads, 1, "{text}");
    assert_eq!(ended.status, Some(1), "pytest's status: {text}");
    assert!(ended.seconds < 20.0, "{text}");
    let dump = std::fs::read_to_string(results.join(format!("stacks-{stacks}.txt"))).unwrap();
    assert!(dump.contains("stuck-worker"), "{dump}");
    assert!(dump.contains("non-daemon"), "{dump}");
    // The JUnit XML was written before the grace began.
    assert!(results.join("junit.xml").is_file());
}

#[test]
fn stacks_are_dumped_on_request_while_a_test_runs() {
    let session = start("static", &[("PROTOCOL_SLEEP", "4")], &[]);
    static_list(&session, &[id("test_sleeps")]);
    let results = session.results_dir();
    let mut requested = false;
    let ended = drive(session, Duration::from_secs(60), |dir, line| {
        if matches!(line, PluginLine::Collected(_)) && !requested {
            requested = true;
            std::fs::write(dir.join("dump-1.request"), "").unwrap();
        }
    });
    let text = ended.text();
    let number = ended
        .plugin
        .iter()
        .find_map(|l| match l {
            PluginLine::Stacks { number, reason } if reason == "request 1" => Some(*number),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no stacks line: {text}"));
    let dump = std::fs::read_to_string(results.join(format!("stacks-{number}.txt"))).unwrap();
    assert!(dump.contains("MainThread"), "{dump}");
    assert_eq!(ended.status, Some(0), "{text}");
}

#[test]
fn a_chunks_last_test_told_later_ends_as_the_last_one_and_the_plugin_asks_again_after_it() {
    // compose-shard answers `next K now` with `#later` when the queue is empty but another
    // group may still give work back: the plugin must not wait with a test in hand. It tears
    // everything down as after a last test, then asks again with `next K+1` and waits; here
    // the answer is a test given back, and then the end.
    let log = tempfile::NamedTempFile::new().unwrap();
    let log_path = log.path().display().to_string();
    let next_log = tempfile::NamedTempFile::new().unwrap();
    let next_path = next_log.path().display().to_string();
    let session = start(
        "dynamic",
        &[
            ("PROTOCOL_SESSION_LOG", &log_path),
            ("PROTOCOL_NEXT_LOG", &next_path),
        ],
        &["-p", "next_hook"],
    );
    let wait = |n: u32| format!("test_session.py::test_waits[{n}]");
    let first = vec![wait(0), wait(1)];
    let mut asked = Vec::new();
    let ended = drive(session, Duration::from_secs(60), |dir, line| {
        let Some((k, now)) = asked_for(line) else {
            return;
        };
        asked.push((k, now));
        match (k, now) {
            (1, false) => answer_unit(dir, 1, &first),
            (2, true) => {
                let (list, ready) = unit_file_names(2);
                std::fs::write(dir.join(list), format!("{LATER_LINE}\n")).unwrap();
                std::fs::write(dir.join(ready), "").unwrap();
            }
            (3, false) => answer_unit(dir, 3, &[wait(2)]),
            (k, _) => answer_unit(dir, k, &[]),
        }
    });
    let text = ended.text();
    assert_eq!(
        asked,
        vec![(1, false), (2, true), (3, false), (4, true)],
        "{text}"
    );
    assert!(
        position(&ended, done_of(&wait(1))) < position(&ended, |l| *l == PluginLine::Next(3)),
        "next 3 is asked once the test told `later` is over: {text}"
    );
    let ran: Vec<String> = ended.done().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ran, [first, vec![wait(2)]].concat(), "{text}");
    let sessions = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(
        sessions, "setup\nteardown\nsetup\nteardown\n",
        "told later, the test ended as the last one: {text}"
    );
    let next = std::fs::read_to_string(next_log.path()).unwrap();
    assert_eq!(
        next,
        format!(
            "{} -> {}\n{} -> None\n{} -> None\n",
            wait(0),
            wait(1),
            wait(1),
            wait(2)
        ),
        "hooks see None after the test told later, and after the last: {text}"
    );
    assert_eq!(ended.status, Some(0), "{text}");
}

#[test]
fn an_early_started_pytest_loads_no_project_code_until_it_is_let_go() {
    let session = start("static", &[("COMPOSE_SHARD_GATE", "1")], &[]);
    // Written after pytest started: a pytest that loaded its conftests already would miss it.
    let marker = session.dir.path().join("conftest-loaded");
    std::fs::write(
        session.dir.path().join("suite/conftest.py"),
        format!("open({:?}, 'w').close()\n", marker.display().to_string()),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!marker.exists(), "the conftest ran before `go`");
    assert!(
        session.lines.try_recv().is_err(),
        "pytest said something before `go`"
    );
    static_list(&session, &[id("test_pass")]);
    std::fs::write(session.plugin_dir().join("go"), "").unwrap();
    let ended = drive(session, Duration::from_secs(120), |_, _| {});
    let text = ended.text();
    assert!(marker.exists(), "the conftest ran after `go`: {text}");
    assert_eq!(
        ended.done(),
        vec![(id("test_pass"), TestOutcome::Passed)],
        "{text}"
    );
    assert_eq!(ended.status, Some(0), "{text}");
}
