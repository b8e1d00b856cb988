//! The test phase of one group. The test command is the test container's main process, run
//! through the service's entrypoint as `docker compose run SERVICE pytest` runs it, so
//! whatever the entrypoint prepares (waiting for services, exported variables, a schema) is
//! there for collection and for the tests. Around it:
//!
//! 1. the plugin is uploaded into the created container, which is then started;
//! 2. its output is followed into `<out>/g<k>/output.log` and parsed for the plugin's lines;
//! 3. when pytest reports its collection, the group's share of the plan (in the ids it
//!    collected itself) is uploaded, and the plugin runs exactly those tests;
//! 4. once the container stops, its exit code classifies the group and the result files are
//!    copied out of the stopped container.

use std::io::Write;
use std::path::PathBuf;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backend::Backend;
use super::collection::{Coordinator, GroupTests};
use super::event::{Event, EventSink, GroupStatus, Phase, TestCounts, TestOutcome};
use super::pytest_command::{
    parse_plugin_line, PluginLine, COLLECTED_FILE, PLUGIN_DIR, PLUGIN_SOURCE, RESULTS_DIR,
    TESTS_FILE_NAME, TESTS_READY_NAME,
};
use super::spec::RunSpec;

/// What the test phase produced.
#[derive(Debug, Default)]
pub struct TestPhaseOutcome {
    /// Group status.
    pub status: GroupStatus,
    /// Counters.
    pub counts: TestCounts,
    /// pytest's exit code.
    pub pytest_exit: Option<i64>,
    /// Node ids that finished.
    pub ran: Vec<String>,
    /// The tests the group was given (its own ids).
    pub assigned: Vec<String>,
    /// Files copied out.
    pub files: Vec<PathBuf>,
    /// When the test container started.
    pub started: Option<Instant>,
    /// When the group's tests were handed over (collection done).
    pub tests_delivered: Option<Instant>,
    /// When the test container stopped.
    pub exited: Option<Instant>,
}

/// Feeds the container's output into the log file and the counters, line by line.
struct OutputTracker<'a> {
    group: usize,
    log: Option<std::fs::File>,
    partial: Vec<u8>,
    counts: TestCounts,
    ran: Vec<String>,
    missing: Vec<String>,
    collection_errors: Option<usize>,
    collected: Option<mpsc::UnboundedSender<usize>>,
    tail: std::collections::VecDeque<String>,
    events: &'a EventSink,
}

/// Lines of output kept for the summary when a group fails before its tests.
const TAIL_LINES: usize = 40;

impl OutputTracker<'_> {
    fn feed(&mut self, chunk: &[u8]) {
        if let Some(log) = &mut self.log {
            let _ = log.write_all(chunk);
        }
        self.partial.extend_from_slice(chunk);
        while let Some(pos) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            self.line(line);
        }
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
            self.line(rest);
        }
        self.collected = None;
    }

    fn line(&mut self, line: String) {
        match parse_plugin_line(&line) {
            Some(PluginLine::Done { node_id, outcome }) => {
                match outcome {
                    TestOutcome::Passed => self.counts.passed += 1,
                    TestOutcome::Failed => self.counts.failed += 1,
                    TestOutcome::Skipped => self.counts.skipped += 1,
                    TestOutcome::Error => self.counts.errors += 1,
                }
                self.counts.done += 1;
                self.events.emit(Event::Test {
                    group: self.group,
                    node_id: node_id.clone(),
                    outcome,
                });
                self.ran.push(node_id);
            }
            Some(PluginLine::Missing(id)) => self.missing.push(id),
            Some(PluginLine::Collected(n)) => {
                if let Some(tx) = &self.collected {
                    let _ = tx.send(n);
                }
            }
            Some(PluginLine::CollectionErrors(n)) => self.collection_errors = Some(n),
            None => {
                if self.tail.len() == TAIL_LINES {
                    self.tail.pop_front();
                }
                self.tail.push_back(line);
            }
        }
    }
}

/// Read the group's collection, get its share of the plan and upload it.
async fn deliver_tests<B: Backend>(
    backend: &B,
    container: &str,
    group: usize,
    coordinator: &Coordinator,
) -> Result<GroupTests, String> {
    let text = backend
        .read_file(container, COLLECTED_FILE)
        .await
        .map_err(|e| crate::errors::render_chain(&e))?
        .ok_or_else(|| {
            format!("pytest reported its collection, but {COLLECTED_FILE} is missing")
        })?;
    let collected: Vec<String> = String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let tests = coordinator.tests_for(group, &collected)?;
    let mut list = tests.ids.join("\n");
    list.push('\n');
    // tests.txt comes first in the archive, so the list is complete once tests.ready exists.
    let files: [(&str, &[u8]); 2] = [(TESTS_FILE_NAME, list.as_bytes()), (TESTS_READY_NAME, b"")];
    backend
        .upload(container, PLUGIN_DIR, &files)
        .await
        .map_err(|e| crate::errors::render_chain(&e))?;
    Ok(tests)
}

/// Upload the plugin into the created test container and start it.
async fn start_test_container<B: Backend>(backend: &B, container: &str) -> Result<(), String> {
    let plugin: [(&str, &[u8]); 1] = [("compose_shard_plugin.py", PLUGIN_SOURCE.as_bytes())];
    backend
        .upload(container, PLUGIN_DIR, &plugin)
        .await
        .map_err(|e| crate::errors::render_chain(&e))?;
    backend
        .upload(container, RESULTS_DIR, &[])
        .await
        .map_err(|e| crate::errors::render_chain(&e))?;
    backend
        .start(container)
        .await
        .map_err(|e| crate::errors::render_chain(&e))
}

/// How the test container's run ended, as [`watch`] saw it.
struct Watched<'a> {
    followed: Result<(), crate::engine::EngineError>,
    tracker: OutputTracker<'a>,
    handed: Result<Option<(GroupTests, Instant)>, String>,
    exit: Result<Option<i64>, crate::engine::EngineError>,
    timed_out: bool,
}

/// Follow the started test container until it stops: its output through `tracker`, its
/// collection handed over as it arrives, `--timeout` enforced by killing it.
async fn watch<'a, B: Backend>(
    backend: &B,
    spec: &RunSpec,
    group: usize,
    container: &str,
    coordinator: &Coordinator,
    mut tracker: OutputTracker<'a>,
) -> Watched<'a> {
    let events = tracker.events;
    let (tx, mut rx) = mpsc::unbounded_channel();
    tracker.collected = Some(tx);
    let follow = async move {
        let result = backend
            .follow_logs(container, &mut |chunk| tracker.feed(chunk))
            .await;
        tracker.finish();
        (result, tracker)
    };
    let handover = async {
        let mut given: Option<(GroupTests, Instant)> = None;
        while rx.recv().await.is_some() {
            if given.is_some() {
                continue;
            }
            let tests = deliver_tests(backend, container, group, coordinator).await;
            match tests {
                Ok(tests) => {
                    events.emit(Event::Planned {
                        group,
                        tests: tests.ids.len(),
                    });
                    events.emit(Event::Phase {
                        group,
                        phase: Phase::Testing,
                    });
                    given = Some((tests, Instant::now()));
                }
                Err(reason) => {
                    let _ = backend.kill(container).await;
                    return Err(reason);
                }
            }
        }
        Ok(given)
    };
    let work = async {
        let (followed, handed) = futures::join!(follow, handover);
        let exit = backend.wait_exit(container).await;
        (followed, handed, exit)
    };
    tokio::pin!(work);
    let limit = spec.timeout;
    let timer = async {
        match limit {
            Some(limit) => tokio::time::sleep(limit).await,
            None => futures::future::pending::<()>().await,
        }
    };
    let mut timed_out = false;
    let ((followed, tracker), handed, exit) = tokio::select! {
        done = &mut work => done,
        () = timer => {
            timed_out = true;
            let _ = backend.kill(container).await;
            work.await
        }
    };
    Watched {
        followed,
        tracker,
        handed,
        exit,
        timed_out,
    }
}

/// Run the group's tests in its created (not yet started) test container.
pub async fn run_tests<B: Backend>(
    backend: &B,
    spec: &RunSpec,
    group: usize,
    container: &str,
    coordinator: &Coordinator,
    events: &EventSink,
) -> TestPhaseOutcome {
    let group_dir = spec.out_dir.join(format!("g{group}"));
    let mut outcome = TestPhaseOutcome::default();
    if let Err(e) = std::fs::create_dir_all(&group_dir) {
        outcome.status =
            GroupStatus::EnvironmentError(format!("failed to create {}: {e}", group_dir.display()));
        return outcome;
    }
    if let Err(reason) = start_test_container(backend, container).await {
        outcome.status = GroupStatus::EnvironmentError(reason);
        return outcome;
    }
    outcome.started = Some(Instant::now());
    events.emit(Event::Phase {
        group,
        phase: Phase::Collecting,
    });

    let tracker = OutputTracker {
        group,
        log: std::fs::File::create(group_dir.join("output.log")).ok(),
        partial: Vec::new(),
        counts: TestCounts::default(),
        ran: Vec::new(),
        missing: Vec::new(),
        collection_errors: None,
        collected: None,
        tail: Default::default(),
        events,
    };
    let Watched {
        followed,
        tracker,
        handed,
        exit,
        timed_out,
    } = watch(backend, spec, group, container, coordinator, tracker).await;
    outcome.exited = Some(Instant::now());
    outcome.counts = tracker.counts.clone();
    outcome.ran = tracker.ran.clone();
    for id in &tracker.missing {
        events.emit(Event::Warning(format!(
            "[g{group}] planned test was not collected in this group: {id}"
        )));
    }
    let handed = match handed {
        Ok(Some((tests, at))) => {
            for id in &tests.missing {
                events.emit(Event::Warning(format!(
                    "[g{group}] planned test was not collected in this group: {id}"
                )));
            }
            outcome.counts.planned = tests.ids.len();
            outcome.assigned = tests.ids;
            outcome.tests_delivered = Some(at);
            Ok(true)
        }
        Ok(None) => Ok(false),
        Err(reason) => Err(reason),
    };
    outcome.status = classify(
        backend,
        container,
        &tracker,
        timed_out.then_some(spec.timeout).flatten(),
        followed.map_err(|e| crate::errors::render_chain(&e)),
        handed,
        exit.map_err(|e| crate::errors::render_chain(&e)),
        &mut outcome.pytest_exit,
    )
    .await;

    events.emit(Event::Phase {
        group,
        phase: Phase::Copying,
    });
    match backend.download(container, RESULTS_DIR, &group_dir).await {
        Ok(files) => outcome.files = files,
        Err(e) => events.emit(Event::Warning(format!(
            "[g{group}] could not copy results out: {}",
            crate::errors::render_chain(&e)
        ))),
    }
    outcome
}

/// The group's status from how its test container ended.
#[allow(clippy::too_many_arguments)] // every argument is one fact about the ending
async fn classify<B: Backend>(
    backend: &B,
    container: &str,
    tracker: &OutputTracker<'_>,
    timed_out: Option<std::time::Duration>,
    followed: Result<(), String>,
    handed: Result<bool, String>,
    exit: Result<Option<i64>, String>,
    pytest_exit: &mut Option<i64>,
) -> GroupStatus {
    if let Some(limit) = timed_out {
        return GroupStatus::TimedOut(limit);
    }
    let handed = match handed {
        Ok(handed) => handed,
        Err(reason) => return GroupStatus::EnvironmentError(reason),
    };
    let code = match (exit, followed) {
        (Ok(code), _) => code,
        (Err(e), _) => return GroupStatus::EnvironmentError(e),
    };
    *pytest_exit = code;
    let tail = || tracker.tail.iter().cloned().collect::<Vec<_>>().join("\n");
    if let Some(n) = tracker.collection_errors {
        return GroupStatus::CollectionFailed(format!(
            "pytest reported {n} error(s) during collection; fix them first (the output of the test command ends with):\n{}",
            tail()
        ));
    }
    if !handed {
        return GroupStatus::CollectionFailed(format!(
            "the test command exited (code {}) before pytest reported its collection: it must run pytest, and the service's entrypoint must run it (`exec \"$@\"`); its output ends with:\n{}",
            code.map_or("unknown".into(), |c| c.to_string()),
            tail()
        ));
    }
    classify_exit(backend, container, code, &tracker.counts).await
}

/// pytest's exit code -> group status. 0 passed, 1 tests failed, 5 nothing collected (an
/// empty group is fine); 2-4 (interrupted, internal, usage error) count as failed; anything
/// else means the process was killed, so the container's state gives the cause.
async fn classify_exit<B: Backend>(
    backend: &B,
    container: &str,
    code: Option<i64>,
    counts: &TestCounts,
) -> GroupStatus {
    match code {
        Some(0) | Some(5) if counts.failed + counts.errors == 0 => GroupStatus::Passed,
        Some(0..=5) => GroupStatus::Failed,
        other => {
            let state = match backend.status(container).await {
                Ok(s) => s.describe(),
                Err(e) => crate::errors::render_chain(&e),
            };
            GroupStatus::EnvironmentError(format!(
                "the test process ended abnormally (exit code {}); test container: {state}",
                other.map_or("unknown".into(), |c| c.to_string())
            ))
        }
    }
}
