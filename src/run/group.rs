//! The test phase of one group. The test command is the test container's main process, run
//! through the service's entrypoint as `docker compose run SERVICE pytest` runs it, so
//! whatever the entrypoint prepares (waiting for services, exported variables, a schema) is
//! there for collection and for the tests. Around it:
//!
//! 1. the plugin is uploaded into the created container, which is then started;
//! 2. its output is followed into `<out>/g<k>/output.log` and read for the plugin's lines
//!    ([`output`]);
//! 3. the handover answers them: the group's share of the plan once pytest has collected,
//!    or the queue's chunks, and watches the group's limits ([`handover`]);
//! 4. once the container stops, how it ended classifies the group ([`classify`]) and the
//!    result files are copied out of the stopped container.
//!
//! A group's life, and who moves it on, is drawn in CONTRIBUTING.md ("A group's lifecycle").

mod classify;
mod handover;
mod output;

use std::path::PathBuf;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backend::Backend;
use super::dispatch::{Dispatcher, GroupEnd};
use super::event::{Activity, Event, EventSink, TestCounts, TestResult};
use super::outcome::{EnvironmentFailure, FailureCause, GroupStatus, Lingering};
use super::protocol::{PLUGIN_DIR, RESULTS_DIR};
use super::pytest_command::PLUGIN_SOURCE;
use super::spec::RunSpec;
use super::start_turns::Turn;
use classify::{classify, Ending};
pub use handover::FirstTestGate;
use handover::{serve, Handing, HandoverError, Served, Watch};
use output::OutputTracker;

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
    /// The process outlived pytest.
    pub lingering: Option<Lingering>,
    /// CPU and wall seconds of the tests.
    pub cpu: Option<(f64, f64)>,
}

/// Upload the plugin and the empty results folder into the created test container.
pub async fn prepare_test_container<B: Backend>(
    backend: &B,
    container: &str,
) -> Result<(), EnvironmentFailure> {
    let plugin: [(&str, &[u8]); 1] = [("compose_shard_plugin.py", PLUGIN_SOURCE.as_bytes())];
    backend
        .upload_folders(container, &[(PLUGIN_DIR, &plugin), (RESULTS_DIR, &[])])
        .await
        .map_err(EnvironmentFailure::engine)
}

/// How the test container's run ended, as [`watch`] saw it.
struct Watched<'a> {
    tracker: OutputTracker<'a>,
    served: Result<Served, HandoverError>,
    exit: Result<Option<i64>, crate::engine::EngineError>,
}

/// Follow the started test container until it stops: its output through `tracker`, its
/// tests handed over as it asks, its limits enforced by the handover.
async fn watch<'a, B: Backend>(
    handing: &Handing<'_, B>,
    mut tracker: OutputTracker<'a>,
    gate: FirstTestGate<'_>,
) -> Watched<'a> {
    let (tx, rx) = mpsc::unbounded_channel();
    tracker.signal_to(tx);
    let (backend, container) = (handing.backend, handing.container);
    let follow = async move {
        // A follower that fails (the engine went away) ends like one whose container
        // stopped: the exit code below says what happened.
        let _ = backend
            .follow_logs(container, &mut |chunk| tracker.feed(chunk))
            .await;
        tracker.finish();
        tracker
    };
    let handover = async {
        let served = serve(handing, rx, gate).await;
        if served.is_err() {
            let _ = backend.kill(container).await;
        }
        served
    };
    let (tracker, served) = futures::join!(follow, handover);
    let exit = backend.wait_exit(container).await;
    Watched {
        tracker,
        served,
        exit,
    }
}

/// A group's created and prepared test container.
#[derive(Debug, Clone, Copy)]
pub struct TestContainer<'a> {
    /// Its name.
    pub name: &'a str,
    /// Started already (before its services were ready; pytest waits for the gate file):
    /// when it was let go on.
    pub released: Option<Instant>,
    /// The group's turn to set up, when it lasts until this container has started (it was
    /// not started early).
    pub turn: Option<&'a Turn<'a>>,
}

/// Run the group's tests in its test container (started here unless it was started early);
/// its first test waits for `gate`.
pub async fn run_tests<B: Backend>(
    backend: &B,
    spec: &RunSpec,
    group: usize,
    test_container: TestContainer<'_>,
    dispatcher: &Dispatcher,
    events: &EventSink,
    gate: FirstTestGate<'_>,
) -> TestPhaseOutcome {
    let container = test_container.name;
    let layout = crate::report::ResultsLayout::new(&spec.out_dir);
    let group_dir = layout.group_dir(group);
    let mut outcome = TestPhaseOutcome::default();
    if let Err(e) = std::fs::create_dir_all(&group_dir) {
        outcome.status =
            GroupStatus::Environment(EnvironmentFailure::of(FailureCause::ResultsFolder {
                path: group_dir,
                source: std::sync::Arc::new(e),
            }));
        return outcome;
    }
    if test_container.released.is_none() {
        let started = backend.start_attached(container).await;
        if let Some(turn) = test_container.turn {
            turn.end();
        }
        if let Err(e) = started {
            outcome.status = GroupStatus::Environment(EnvironmentFailure::engine(e));
            return outcome;
        }
    }
    outcome.started = Some(test_container.released.unwrap_or_else(Instant::now));
    events.emit(Event::Activity {
        group,
        activity: Activity::Collecting,
    });
    let log = std::fs::File::create(layout.output_log(group)).ok();
    let tracker = OutputTracker::new(group, spec.token.clone(), log, events);
    let handing = Handing {
        backend,
        container,
        group,
        dispatcher,
        events,
        watch: Watch {
            group_timeout: spec.timeout,
            exit_grace: spec.exit_grace,
            stall: spec.stall_warning,
        },
        last_output: tracker.last_output(),
    };
    dispatcher.register(group, container);
    let watched = watch(&handing, tracker, gate).await;
    dispatcher.unregister(group);
    conclude(&handing, spec, watched, &mut outcome).await;

    events.emit(Event::Activity {
        group,
        activity: Activity::Copying,
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
    h: &Handing<'_, B>,
    spec: &RunSpec,
    watched: Watched<'_>,
    outcome: &mut TestPhaseOutcome,
) {
    let Watched {
        tracker,
        served,
        exit,
    } = watched;
    let (group, events) = (h.group, h.events);
    outcome.exited = Some(Instant::now());
    outcome.counts = tracker.counts.clone();
    outcome.ran = tracker.ran.clone();
    outcome.results = tracker.results.clone();
    outcome.cpu = tracker.cpu;
    let mut timed_out = None;
    let handed = served.map(|served| {
        for id in tracker.missing.iter().chain(&served.given.missing) {
            events.emit(Event::Warning(format!(
                "[g{group}] planned test was not collected in this group: {id}"
            )));
        }
        outcome.counts.planned = served.given.ids.len();
        outcome.assigned = served.given.ids;
        outcome.tests_delivered = served.given.at;
        outcome.lingering = served.lingering;
        if served.timed_out {
            timed_out = spec.timeout.map(|limit| (limit, served.timeout_stacks));
        }
        served.given.at.is_some()
    });
    let container = exit.as_ref().ok().copied().flatten();
    let abnormal = tracker.finished.is_none() && !matches!(container, Some(0..=5));
    let state = match abnormal {
        true => Some(match h.backend.status(h.container).await {
            Ok(s) => s.describe(),
            Err(e) => crate::errors::render_chain(&e),
        }),
        false => None,
    };
    let ending = Ending {
        timed_out,
        test_timed_out: tracker.timed_out.clone().zip(spec.test_timeout),
        handed,
        exit,
        finished: tracker.finished,
        collection_errors: tracker.collection_errors,
        tail: tracker.tail(),
        failures: tracker.counts.failed + tracker.counts.errors,
        state,
    };
    let (status, pytest_exit) = classify(ending);
    settle_work(h, &status, outcome);
    if let Some(lingering) = &outcome.lingering {
        events.emit(Event::Warning(format!("[g{group}] {lingering}")));
    }
    outcome.status = status;
    outcome.pytest_exit = pytest_exit;
}

/// What the group's end does to its work: a group that died loses its test in flight, an
/// abandoned one (a test timed out) gives back what it did not finish (dynamic) or reports
/// it as not run (static).
fn settle_work<B: Backend>(h: &Handing<'_, B>, status: &GroupStatus, outcome: &TestPhaseOutcome) {
    let cause = match status {
        GroupStatus::Environment(failure) => Some(failure.to_string()),
        GroupStatus::TimedOut { limit, .. } => Some(format!(
            "timed out after {} (--timeout)",
            super::outcome::format_limit(*limit)
        )),
        _ => None,
    };
    let end = match (status, &cause) {
        (_, Some(cause)) => GroupEnd::Died(cause),
        (GroupStatus::TestTimedOut { .. }, None) => GroupEnd::Abandoned,
        _ => GroupEnd::Finished,
    };
    let group = h.group;
    let note = h.dispatcher.group_ended(group, end);
    if note.lost > 0 || note.requeued > 0 {
        h.events.emit(Event::Warning(format!(
            "[g{group}] ended early: {} test(s) in flight lost, {} unit(s) returned to the queue for the other groups",
            note.lost, note.requeued
        )));
    }
    if matches!(status, GroupStatus::TestTimedOut { .. }) && !h.dispatcher.is_dynamic() {
        let ran: std::collections::HashSet<&str> = outcome.ran.iter().map(String::as_str).collect();
        let rest: Vec<String> = outcome
            .assigned
            .iter()
            .filter(|id| !ran.contains(id.as_str()))
            .cloned()
            .collect();
        h.dispatcher.not_run(rest);
    }
}
