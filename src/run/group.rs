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
use super::collection::{Coordinator, Handover};
use super::event::{Event, EventSink, GroupStatus, Phase, TestCounts, TestOutcome, TestResult};
use super::pytest_command::{
    parse_plugin_line, unit_file_names, PluginLine, COLLECTED_FILE, PLUGIN_DIR, PLUGIN_SOURCE,
    RESULTS_DIR, STOP_FILE_NAME, TESTS_FILE_NAME, TESTS_READY_NAME,
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
    /// How each of `ran` ended.
    pub results: Vec<TestResult>,
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
    results: Vec<TestResult>,
    missing: Vec<String>,
    collection_errors: Option<usize>,
    signals: Option<mpsc::UnboundedSender<Signal>>,
    tail: std::collections::VecDeque<String>,
    events: &'a EventSink,
}

/// What the output asks the group's handover task to do.
enum Signal {
    /// pytest collected: hand over the group's tests (or join the queue).
    Collected,
    /// A dynamic group asks for its Kth chunk.
    Next(u64),
    /// A test finished.
    Done {
        /// Its node id.
        node_id: String,
        /// Failed or errored.
        failed: bool,
        /// How long it took.
        seconds: Option<f64>,
    },
    /// The group's pytest `--maxfail`.
    Maxfail(usize),
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
        self.signals = None;
    }

    fn signal(&self, signal: Signal) {
        if let Some(tx) = &self.signals {
            let _ = tx.send(signal);
        }
    }

    fn line(&mut self, line: String) {
        match parse_plugin_line(&line) {
            Some(PluginLine::Done {
                node_id,
                outcome,
                seconds,
            }) => {
                match outcome {
                    TestOutcome::Passed => self.counts.passed += 1,
                    TestOutcome::Failed => self.counts.failed += 1,
                    TestOutcome::Skipped => self.counts.skipped += 1,
                    TestOutcome::Error => self.counts.errors += 1,
                }
                self.counts.done += 1;
                self.signal(Signal::Done {
                    node_id: node_id.clone(),
                    failed: matches!(outcome, TestOutcome::Failed | TestOutcome::Error),
                    seconds,
                });
                self.events.emit(Event::Test {
                    group: self.group,
                    node_id: node_id.clone(),
                    outcome,
                });
                self.ran.push(node_id);
                self.results.push(TestResult { outcome, seconds });
            }
            Some(PluginLine::Missing(id)) => self.missing.push(id),
            Some(PluginLine::Collected(_)) => self.signal(Signal::Collected),
            Some(PluginLine::Next(k)) => self.signal(Signal::Next(k)),
            Some(PluginLine::Maxfail(n)) => self.signal(Signal::Maxfail(n)),
            Some(PluginLine::Stopped(reason)) => self.events.emit(Event::Info(format!(
                "[g{}] stopped taking tests: {reason}",
                self.group
            ))),
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

/// Why the handover of a group's tests failed.
enum HandoverError {
    /// The group's collection cannot be used (it differs from the other groups').
    Collection(String),
    /// Reading or writing the container's files failed.
    Engine(String),
}

fn engine_error(e: crate::engine::EngineError) -> HandoverError {
    HandoverError::Engine(crate::errors::render_chain(&e))
}

/// What a group was given over its run.
#[derive(Debug, Default)]
struct Given {
    /// When its first tests were handed over.
    at: Option<Instant>,
    /// Every id it was given, in order.
    ids: Vec<String>,
    /// Planned tests it did not collect (static mode).
    missing: Vec<String>,
}

/// A list of node ids as a file: one per line.
fn id_file(ids: &[String]) -> String {
    let mut text = ids.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

/// Read the group's collection and hand it to the coordinator; in static mode, upload the
/// group's list (with the stop file first when the run has already stopped).
async fn take_collection<B: Backend>(
    backend: &B,
    container: &str,
    group: usize,
    coordinator: &Coordinator,
    given: &mut Given,
) -> Result<Option<usize>, HandoverError> {
    let text = backend
        .read_file(container, COLLECTED_FILE)
        .await
        .map_err(engine_error)?
        .ok_or_else(|| {
            HandoverError::Engine(format!(
                "pytest reported its collection, but {COLLECTED_FILE} is missing"
            ))
        })?;
    let collected: Vec<String> = String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    match coordinator
        .collected(group, &collected)
        .map_err(HandoverError::Collection)?
    {
        Handover::Queue => Ok(None),
        Handover::List { ids, missing } => {
            let list = id_file(&ids);
            let stop = coordinator.stopped().unwrap_or_default();
            let mut files: Vec<(&str, &[u8])> = Vec::with_capacity(3);
            if !stop.is_empty() {
                files.push((STOP_FILE_NAME, stop.as_bytes()));
            }
            // tests.txt comes before tests.ready in the archive, so the list is complete
            // once tests.ready exists.
            files.extend([(TESTS_FILE_NAME, list.as_bytes()), (TESTS_READY_NAME, b"")]);
            backend
                .upload(container, PLUGIN_DIR, &files)
                .await
                .map_err(engine_error)?;
            let count = ids.len();
            given.ids = ids;
            given.missing = missing;
            Ok(Some(count))
        }
    }
}

/// Answer a dynamic group's `next K` with its next chunk (empty when the queue is done).
async fn hand_chunk<B: Backend>(
    backend: &B,
    container: &str,
    group: usize,
    k: u64,
    coordinator: &Coordinator,
    events: &EventSink,
) -> Result<Vec<String>, HandoverError> {
    let chunk = coordinator.next(group);
    let list = id_file(&chunk.ids);
    let (list_name, ready_name) = unit_file_names(k);
    let files: [(&str, &[u8]); 2] = [(&list_name, list.as_bytes()), (&ready_name, b"")];
    backend
        .upload(container, PLUGIN_DIR, &files)
        .await
        .map_err(engine_error)?;
    events.emit(Event::Unit {
        group,
        units: coordinator.units_taken(group),
        tests: chunk.ids.len(),
        remaining_units: chunk.remaining_units,
        remaining_seconds: chunk.remaining_seconds,
    });
    Ok(chunk.ids)
}

/// Tell every other running group to start no further test.
async fn broadcast_stop<B: Backend>(
    backend: &B,
    coordinator: &Coordinator,
    group: usize,
    reason: &str,
) {
    for (other, container) in coordinator.containers() {
        if other != group {
            // A group that has already ended has nothing to stop.
            let _ = backend
                .upload(
                    &container,
                    PLUGIN_DIR,
                    &[(STOP_FILE_NAME, reason.as_bytes())],
                )
                .await;
        }
    }
}

/// Serve the group's signals until its output ends: hand over its tests as it asks. When a
/// handover fails (the engine went away), the container is killed and the signals still in
/// flight are drained: a test the group finished before the failure counts as finished, not
/// as lost.
async fn serve<B: Backend>(
    backend: &B,
    container: &str,
    group: usize,
    coordinator: &Coordinator,
    events: &EventSink,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    gate: FirstTestGate<'_>,
) -> Result<Given, HandoverError> {
    let mut state = Serving {
        given: Given::default(),
        collected: false,
        gate: Some(gate),
    };
    let mut failure = None;
    // A request for work held back while another group may still return some.
    let mut held: Option<u64> = None;
    loop {
        let signal = match held {
            Some(k) => tokio::select! {
                signal = signals.recv() => signal,
                () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {
                    if coordinator.must_wait(group) {
                        continue;
                    }
                    held = None;
                    Some(Signal::Next(k))
                }
            },
            None => signals.recv().await,
        };
        let Some(signal) = signal else { break };
        if let (Signal::Next(k), None) = (&signal, &failure) {
            if coordinator.must_wait(group) {
                held = Some(*k);
                continue;
            }
        }
        if failure.is_some() {
            if let Signal::Done {
                node_id,
                failed,
                seconds,
            } = signal
            {
                coordinator.finished(group, &node_id, failed, seconds);
            }
            continue;
        }
        let cx = (backend, container, group, coordinator, events);
        if let Err(e) = state.handle(cx, signal).await {
            let _ = backend.kill(container).await;
            failure = Some(e);
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(state.given),
    }
}

/// What [`serve`] keeps between signals.
struct Serving<'g> {
    given: Given,
    collected: bool,
    gate: Option<FirstTestGate<'g>>,
}

impl Serving<'_> {
    async fn handle<B: Backend>(
        &mut self,
        (backend, container, group, coordinator, events): (
            &B,
            &str,
            usize,
            &Coordinator,
            &EventSink,
        ),
        signal: Signal,
    ) -> Result<(), HandoverError> {
        if matches!(signal, Signal::Collected | Signal::Next(_)) {
            if let Some(gate) = self.gate.take() {
                gate.await.map_err(HandoverError::Engine)?;
            }
        }
        let testing = |given: &mut Given| {
            if given.at.is_none() {
                given.at = Some(Instant::now());
                events.emit(Event::Phase {
                    group,
                    phase: Phase::Testing,
                });
            }
        };
        match signal {
            Signal::Collected if !self.collected => {
                self.collected = true;
                let given = &mut self.given;
                if let Some(count) =
                    take_collection(backend, container, group, coordinator, given).await?
                {
                    events.emit(Event::Planned {
                        group,
                        tests: count,
                    });
                    testing(given);
                }
            }
            Signal::Collected => {}
            Signal::Next(k) => {
                let ids = hand_chunk(backend, container, group, k, coordinator, events).await?;
                testing(&mut self.given);
                self.given.ids.extend(ids);
            }
            Signal::Done {
                node_id,
                failed,
                seconds,
            } => {
                if let Some(reason) = coordinator.finished(group, &node_id, failed, seconds) {
                    events.emit(Event::Warning(format!("stopping every group: {reason}")));
                    broadcast_stop(backend, coordinator, group, &reason).await;
                }
            }
            Signal::Maxfail(n) => coordinator.set_maxfail(n),
        }
        Ok(())
    }
}

/// Upload the plugin and the empty results folder into the created test container.
pub async fn prepare_test_container<B: Backend>(
    backend: &B,
    container: &str,
) -> Result<(), String> {
    let plugin: [(&str, &[u8]); 1] = [("compose_shard_plugin.py", PLUGIN_SOURCE.as_bytes())];
    backend
        .upload(container, PLUGIN_DIR, &plugin)
        .await
        .map_err(|e| crate::errors::render_chain(&e))?;
    backend
        .upload(container, RESULTS_DIR, &[])
        .await
        .map_err(|e| crate::errors::render_chain(&e))
}

/// What must hold before a group's first test: the port probes of its plain dependencies.
pub type FirstTestGate<'a> = futures::future::LocalBoxFuture<'a, Result<(), String>>;

/// How the test container's run ended, as [`watch`] saw it.
struct Watched<'a> {
    followed: Result<(), crate::engine::EngineError>,
    tracker: OutputTracker<'a>,
    given: Result<Given, HandoverError>,
    exit: Result<Option<i64>, crate::engine::EngineError>,
    timed_out: bool,
}

/// Follow the started test container until it stops: its output through `tracker`, its
/// tests handed over as it asks, `--timeout` enforced by killing it.
async fn watch<'a, B: Backend>(
    backend: &B,
    spec: &RunSpec,
    group: usize,
    container: &str,
    coordinator: &Coordinator,
    mut tracker: OutputTracker<'a>,
    gate: FirstTestGate<'_>,
) -> Watched<'a> {
    let events = tracker.events;
    let (tx, rx) = mpsc::unbounded_channel();
    tracker.signals = Some(tx);
    let follow = async move {
        let result = backend
            .follow_logs(container, &mut |chunk| tracker.feed(chunk))
            .await;
        tracker.finish();
        (result, tracker)
    };
    let handover = async {
        let served = serve(backend, container, group, coordinator, events, rx, gate).await;
        if served.is_err() {
            let _ = backend.kill(container).await;
        }
        served
    };
    let work = async {
        let (followed, given) = futures::join!(follow, handover);
        let exit = backend.wait_exit(container).await;
        (followed, given, exit)
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
    let ((followed, tracker), given, exit) = tokio::select! {
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
        given,
        exit,
        timed_out,
    }
}

/// Run the group's tests in its created and prepared (not yet started) test container; its
/// first test waits for `gate`.
pub async fn run_tests<B: Backend>(
    backend: &B,
    spec: &RunSpec,
    group: usize,
    container: &str,
    coordinator: &Coordinator,
    events: &EventSink,
    gate: FirstTestGate<'_>,
) -> TestPhaseOutcome {
    let layout = crate::report::ResultsLayout::new(&spec.out_dir);
    let group_dir = layout.group_dir(group);
    let mut outcome = TestPhaseOutcome::default();
    if let Err(e) = std::fs::create_dir_all(&group_dir) {
        outcome.status =
            GroupStatus::EnvironmentError(format!("failed to create {}: {e}", group_dir.display()));
        return outcome;
    }
    if let Err(e) = backend.start_attached(container).await {
        outcome.status = GroupStatus::EnvironmentError(crate::errors::render_chain(&e));
        return outcome;
    }
    outcome.started = Some(Instant::now());
    events.emit(Event::Phase {
        group,
        phase: Phase::Collecting,
    });

    let tracker = OutputTracker {
        group,
        log: std::fs::File::create(layout.output_log(group)).ok(),
        partial: Vec::new(),
        counts: TestCounts::default(),
        ran: Vec::new(),
        results: Vec::new(),
        missing: Vec::new(),
        collection_errors: None,
        signals: None,
        tail: Default::default(),
        events,
    };
    coordinator.register(group, container);
    let watched = watch(backend, spec, group, container, coordinator, tracker, gate).await;
    coordinator.unregister(group);
    conclude(
        backend,
        spec,
        group,
        container,
        coordinator,
        watched,
        &mut outcome,
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

/// What the watched run of the test container comes to: counters, what the group was given,
/// its status, and (dynamic mode) what its end did to the queue.
async fn conclude<B: Backend>(
    backend: &B,
    spec: &RunSpec,
    group: usize,
    container: &str,
    coordinator: &Coordinator,
    watched: Watched<'_>,
    outcome: &mut TestPhaseOutcome,
) {
    let Watched {
        followed,
        tracker,
        given,
        exit,
        timed_out,
    } = watched;
    let events = tracker.events;
    outcome.exited = Some(Instant::now());
    outcome.counts = tracker.counts.clone();
    outcome.ran = tracker.ran.clone();
    outcome.results = tracker.results.clone();
    let handed = given.map(|given| {
        for id in tracker.missing.iter().chain(&given.missing) {
            events.emit(Event::Warning(format!(
                "[g{group}] planned test was not collected in this group: {id}"
            )));
        }
        outcome.counts.planned = given.ids.len();
        outcome.assigned = given.ids;
        outcome.tests_delivered = given.at;
        given.at.is_some()
    });
    let ending = Ending {
        timed_out: timed_out.then_some(spec.timeout).flatten(),
        followed: followed.map_err(|e| crate::errors::render_chain(&e)),
        handed,
        exit: exit.map_err(|e| crate::errors::render_chain(&e)),
    };
    let (status, pytest_exit) = classify(backend, container, &tracker, ending).await;
    let died = match &status {
        GroupStatus::EnvironmentError(reason) => Some(reason.clone()),
        GroupStatus::TimedOut(limit) => Some(format!("timed out after {}s", limit.as_secs())),
        _ => None,
    };
    outcome.status = status;
    outcome.pytest_exit = pytest_exit;
    let note = coordinator.group_ended(group, died.as_deref());
    if note.lost > 0 || note.requeued > 0 {
        events.emit(Event::Warning(format!(
            "[g{group}] ended early: {} test(s) in flight lost, {} unit(s) returned to the queue for the other groups",
            note.lost, note.requeued
        )));
    }
}

/// How the test container's run ended, as facts for [`classify`].
struct Ending {
    timed_out: Option<std::time::Duration>,
    followed: Result<(), String>,
    /// Whether tests were handed over (pytest collected and asked).
    handed: Result<bool, HandoverError>,
    exit: Result<Option<i64>, String>,
}

/// The group's status from how its test container ended, and pytest's exit code.
async fn classify<B: Backend>(
    backend: &B,
    container: &str,
    tracker: &OutputTracker<'_>,
    ending: Ending,
) -> (GroupStatus, Option<i64>) {
    if let Some(limit) = ending.timed_out {
        return (GroupStatus::TimedOut(limit), None);
    }
    let handed = match ending.handed {
        Ok(handed) => handed,
        Err(HandoverError::Collection(reason)) => {
            return (GroupStatus::CollectionFailed(reason), None)
        }
        Err(HandoverError::Engine(reason)) => return (GroupStatus::EnvironmentError(reason), None),
    };
    let code = match (ending.exit, ending.followed) {
        (Ok(code), _) => code,
        (Err(e), _) => return (GroupStatus::EnvironmentError(e), None),
    };
    let tail = || tracker.tail.iter().cloned().collect::<Vec<_>>().join("\n");
    if let Some(n) = tracker.collection_errors {
        return (GroupStatus::CollectionFailed(format!(
            "pytest reported {n} error(s) during collection; fix them first (the output of the test command ends with):\n{}",
            tail()
        )), code);
    }
    if !handed {
        return (GroupStatus::CollectionFailed(format!(
            "the test command exited (code {}) before pytest reported its collection: it must run pytest, and the service's entrypoint must run it (`exec \"$@\"`); its output ends with:\n{}",
            code.map_or("unknown".into(), |c| c.to_string()),
            tail()
        )), code);
    }
    (
        classify_exit(backend, container, code, &tracker.counts).await,
        code,
    )
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
