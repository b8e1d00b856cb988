//! The orchestrator: images once, then every group concurrently (start the test service's
//! dependencies, run the test command as the test container's main process, copy results
//! out, tear down); every group collects the suite itself and the [`Coordinator`] hands each
//! its share of the plan. Emits [`Event`]s; returns a [`RunOutcome`].
//!
//! All groups are futures joined on one task: the work is waiting on the engine, and a single
//! task means cancelling the run (Ctrl-C) is just dropping one future, after which cleanup by
//! label removes whatever had been created, including half-created resources.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::backend::Backend;
use super::collection::{Coordinator, LostTest};
use super::error::RunError;
use super::event::{Event, EventSink, GroupReport, GroupStatus, Phase, PhaseSpan, TestCounts};
use super::group::run_tests;
use super::images::{prepare_images, Images};
use super::pytest_command::test_invocation;
use super::resource_labels::{describe, group_label, run_label};
use super::spec::{Assignment, RunSpec, TestSource};
use super::startup::{start_environment, EnvironmentFailure, StartRequest, Timing};
use crate::compose::{Project, Service};
use crate::engine::ContainerOverrides;

/// How long a started dependency's ports are probed before its dependents start anyway.
const PROBE_GRACE: Duration = Duration::from_secs(60);

/// How a run ended.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// One report per group run here, in group order.
    pub groups: Vec<GroupReport>,
    /// The collected node ids (when collected here).
    pub collected: Option<Vec<String>>,
    /// The assignment used.
    pub assignment: Assignment,
    /// Images, collection or planning failed: no tests could run.
    pub fatal: Option<RunError>,
    /// Planned tests of the groups run here that did not run.
    pub missing: Vec<String>,
    /// Tests that ran more than once.
    pub duplicated: Vec<String>,
    /// Planned ids a group collected under another id (parametrized ids made at collection
    /// time), matched by position: (planned, collected).
    pub unstable_ids: Vec<(String, String)>,
    /// Seconds spent on images before any group started.
    pub images_seconds: f64,
    /// Why the run stopped before every test ran (`--maxfail` across the groups).
    pub stopped: Option<String>,
    /// Tests lost in flight with a group whose container died (dynamic mode).
    pub lost: Vec<LostTest>,
    /// Tests that did not run because the run stopped early or no group was left to take
    /// them (dynamic mode).
    pub not_run: Vec<String>,
    /// Whether groups pulled from a work queue.
    pub dynamic: bool,
}

fn group_of(project: &Project, index: usize) -> usize {
    project
        .isolation
        .as_ref()
        .map(|i| i.group)
        .unwrap_or(index + 1)
}

/// Run everything. Never returns early with resources left behind (except with `--keep`).
pub async fn run<B: Backend>(
    backend: &B,
    spec: &RunSpec,
    source: TestSource,
    events: &EventSink,
) -> RunOutcome {
    let run_started = Instant::now();
    let mut outcome = RunOutcome::default();
    let Some(first) = spec.projects.first() else {
        outcome.fatal = Some(RunError::Environment("no groups selected".into()));
        return outcome;
    };
    let images = match prepare_images(backend, first, spec, events).await {
        Ok(images) => images,
        Err(e) => {
            outcome.fatal = Some(RunError::Environment(e));
            outcome.groups = spec
                .projects
                .iter()
                .enumerate()
                .map(|(i, p)| failed_report(group_of(p, i), "images unavailable"))
                .collect();
            return outcome;
        }
    };
    outcome.images_seconds = run_started.elapsed().as_secs_f64();

    outcome.dynamic = matches!(source, TestSource::Queue { .. });
    let coordinator = Coordinator::new(source);
    let context = GroupContext {
        backend,
        spec,
        images: &images,
        coordinator: &coordinator,
        run_started,
        events,
    };
    let groups = spec
        .projects
        .iter()
        .enumerate()
        .map(|(i, project)| run_group(&context, project, group_of(project, i)));
    outcome.groups = futures::future::join_all(groups).await;
    let finished = coordinator.finish();
    outcome.collected = finished.collected;
    outcome.assignment = finished.assignment;
    outcome.fatal = finished.fatal;
    outcome.unstable_ids = finished.unstable;
    outcome.stopped = finished.stopped;
    outcome.lost = finished.lost;
    outcome.not_run = finished.not_run;
    check_exactly_once(&mut outcome);

    if !spec.keep {
        // Groups tear themselves down; this sweep catches anything a failed teardown left.
        if let Ok(removed) = backend.remove_labelled(&run_label(&spec.run_id)).await {
            if !removed.is_empty() {
                events.emit(Event::Removed(describe(&removed)));
            }
        }
    }
    outcome
}

/// Compare what ran with what was planned for the groups run here.
fn check_exactly_once(outcome: &mut RunOutcome) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for report in &outcome.groups {
        for id in &report.ran {
            *seen.entry(id).or_default() += 1;
        }
    }
    // Tests a stopped run did not start are reported as such, not as missing.
    let not_run: std::collections::HashSet<&str> =
        outcome.not_run.iter().map(String::as_str).collect();
    let mut missing = Vec::new();
    for report in &outcome.groups {
        if !matches!(report.status, GroupStatus::Passed | GroupStatus::Failed) {
            continue; // a failed environment is reported as such, not test by test
        }
        for id in &report.assigned {
            if !seen.contains_key(id.as_str()) && !not_run.contains(id.as_str()) {
                missing.push(id.clone());
            }
        }
    }
    let duplicated = seen
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(id, _)| id.to_string())
        .collect();
    outcome.missing = missing;
    outcome.duplicated = duplicated;
}

fn failed_report(group: usize, reason: &str) -> GroupReport {
    GroupReport {
        group,
        status: GroupStatus::EnvironmentError(reason.to_string()),
        counts: TestCounts::default(),
        setup_seconds: 0.0,
        test_seconds: 0.0,
        teardown_seconds: 0.0,
        pytest_exit: None,
        ran: Vec::new(),
        files: Vec::new(),
        assigned: Vec::new(),
        phases: Vec::new(),
    }
}

/// What every group of a run shares.
struct GroupContext<'a, B: Backend> {
    backend: &'a B,
    spec: &'a RunSpec,
    images: &'a Images,
    coordinator: &'a Coordinator,
    run_started: Instant,
    events: &'a EventSink,
}

/// A service's container changes: the built image's tag; for the test service, the test
/// command as its command (its entrypoint stays, as with `docker compose run SERVICE CMD`)
/// and the environment the plugin needs, keeping the service's or image's `PYTHONPATH` and
/// `PYTEST_ADDOPTS`.
fn container_overrides(spec: &RunSpec, images: &Images, service: &Service) -> ContainerOverrides {
    let mut o = ContainerOverrides {
        image: images.tags.get(&service.name).cloned(),
        files: spec.files.get(&service.name).cloned().unwrap_or_default(),
        ..Default::default()
    };
    if service.name != spec.test_service {
        return o;
    }
    let existing = |key: &str| -> Option<String> {
        spec.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .or_else(|| service.environment.get(key).cloned().flatten())
            .or_else(|| {
                let config = images.configs.get(&service.name)?;
                config
                    .env
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            })
    };
    let invocation = test_invocation(
        &spec.command,
        existing("PYTHONPATH").as_deref(),
        existing("PYTEST_ADDOPTS").as_deref(),
        spec.collect_only,
        spec.dist,
    );
    o.command = Some(invocation.argv);
    o.env = spec.env.clone();
    o.env
        .retain(|(k, _)| !invocation.env.iter().any(|(i, _)| i == k));
    o.env.extend(invocation.env);
    o
}

/// Seconds since the run started.
fn offset(run_started: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(run_started).as_secs_f64()
}

/// A phase from `start` to `end`, on the run's time axis.
fn span(run_started: Instant, name: &'static str, start: Instant, end: Instant) -> PhaseSpan {
    PhaseSpan {
        name,
        start: offset(run_started, start),
        end: offset(run_started, end),
    }
}

/// One group: start its environment, run the tests, tear down. Never fails: what went
/// wrong is in the report.
async fn run_group<B: Backend>(
    cx: &GroupContext<'_, B>,
    project: &Project,
    group: usize,
) -> GroupReport {
    let started = Instant::now();
    let mut report = failed_report(group, "");
    if started > cx.run_started {
        report
            .phases
            .push(span(cx.run_started, "images", cx.run_started, started));
    }
    match start_and_test(cx, project, group, started, &mut report).await {
        Ok(()) => {}
        Err(reason) => {
            report.status = GroupStatus::EnvironmentError(reason);
            report.setup_seconds = started.elapsed().as_secs_f64();
        }
    }
    let teardown = Instant::now();
    tear_down(cx, project, group).await;
    report.teardown_seconds = teardown.elapsed().as_secs_f64();
    report
        .phases
        .push(span(cx.run_started, "teardown", teardown, Instant::now()));
    cx.events.emit(Event::Phase {
        group,
        phase: Phase::Done,
    });
    cx.events.emit(Event::GroupDone(Box::new(report.clone())));
    report
}

async fn start_and_test<B: Backend>(
    cx: &GroupContext<'_, B>,
    project: &Project,
    group: usize,
    started: Instant,
    report: &mut GroupReport,
) -> Result<(), String> {
    let spec = cx.spec;
    let timing = Timing {
        poll: spec.poll,
        deadline: started + spec.ready_timeout,
        probe_grace: PROBE_GRACE.min(spec.ready_timeout),
    };
    let overrides = |s: &Service| container_overrides(spec, cx.images, s);
    let request = StartRequest {
        project,
        test_service: &spec.test_service,
        overrides: &overrides,
        images: &cx.images.configs,
        timing,
        group,
    };
    let env = start_environment(cx.backend, &request, cx.events)
        .await
        .map_err(|f: EnvironmentFailure| f.to_string())?;
    let ready = Instant::now();
    let all_started = env.all_started.unwrap_or(ready);
    report
        .phases
        .push(span(cx.run_started, "environment", started, all_started));
    report
        .phases
        .push(span(cx.run_started, "readiness", all_started, ready));
    let service = &project.services[&spec.test_service];
    let container = cx
        .backend
        .create_service(project, service, &overrides(service))
        .await
        .map_err(|e| crate::errors::render_chain(&e))?;
    let outcome = run_tests(
        cx.backend,
        spec,
        group,
        &container,
        cx.coordinator,
        cx.events,
    )
    .await;
    let test_start = outcome.tests_delivered.or(outcome.exited).unwrap_or(ready);
    let exited = outcome.exited.unwrap_or_else(Instant::now);
    report.setup_seconds = test_start.duration_since(started).as_secs_f64();
    report.test_seconds = exited.saturating_duration_since(test_start).as_secs_f64();
    report.phases.push(span(
        cx.run_started,
        "collection",
        outcome.started.unwrap_or(ready),
        test_start,
    ));
    if outcome.tests_delivered.is_some() {
        report
            .phases
            .push(span(cx.run_started, "tests", test_start, exited));
    }
    report
        .phases
        .push(span(cx.run_started, "results", exited, Instant::now()));
    report.status = outcome.status;
    report.counts = outcome.counts;
    report.pytest_exit = outcome.pytest_exit;
    report.ran = outcome.ran;
    report.assigned = outcome.assigned;
    report.files = outcome.files;
    Ok(())
}

/// Remove the group's resources, or with `--keep` say how to enter them.
async fn tear_down<B: Backend>(cx: &GroupContext<'_, B>, project: &Project, group: usize) {
    let spec = cx.spec;
    if spec.keep {
        cx.events.emit(Event::Notice(format!(
            "[g{group}] kept: enter it with `docker exec -it {} sh` (the test container has stopped: `docker start` it first); remove it with `compose-shard clean --run {}`",
            crate::engine::container_name(project, &project.services[&spec.test_service]),
            spec.run_id
        )));
        return;
    }
    cx.events.emit(Event::Phase {
        group,
        phase: Phase::TearingDown,
    });
    match cx.backend.remove_labelled(&group_label(project)).await {
        Ok(removed) => cx.events.emit(Event::Removed(describe(&removed))),
        Err(e) => cx.events.emit(Event::Warning(format!(
            "[g{group}] teardown: {}",
            crate::errors::render_chain(&e)
        ))),
    }
}
