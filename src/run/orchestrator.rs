//! The orchestrator: images once, then every group concurrently (start, wait, test, copy
//! results out, tear down), with collection in the first ready environment and planning in
//! between. Emits [`Event`]s; returns a [`RunOutcome`].
//!
//! All groups are futures joined on one task: the work is waiting on the engine, and a single
//! task means cancelling the run (Ctrl-C) is just dropping one future, after which cleanup by
//! label removes whatever had been created, including half-created resources.

use std::collections::HashMap;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::backend::Backend;
use super::collection::{coordinate, PlanState, ReadyEnv};
use super::error::RunError;
use super::event::{Event, EventSink, GroupReport, GroupStatus, Phase, TestCounts};
use super::group::run_tests;
use super::images::prepare_images;
use super::resource_labels::{describe, group_label, run_label};
use super::spec::{Assignment, RunSpec, TestSource};
use super::startup::{start_environment, EnvironmentFailure, Timing};
use crate::compose::{Project, Service};
use crate::engine::ContainerOverrides;

/// Sleep used as the test container's entrypoint: pytest runs through exec instead, so the
/// container must stay up without doing anything. A plain number works with coreutils and
/// busybox alike (`infinity` does not everywhere).
pub const TEST_CONTAINER_SLEEP: [&str; 2] = ["sleep", "2147483647"];

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

    let (plan_tx, plan_rx) = watch::channel(PlanState::Pending);
    let (ready_tx, ready_rx) = mpsc::unbounded_channel::<ReadyEnv>();
    let coordinator = coordinate(backend, spec, source, ready_rx, plan_tx, events);
    let groups = futures::future::join_all(spec.projects.iter().enumerate().map(|(i, project)| {
        run_group(
            backend,
            spec,
            project,
            group_of(project, i),
            run_started,
            &images,
            ready_tx.clone(),
            plan_rx.clone(),
            events,
        )
    }));
    drop(ready_tx);
    let ((collected, assignment, fatal), reports) = futures::join!(coordinator, groups);
    outcome.collected = collected;
    outcome.assignment = assignment;
    outcome.fatal = fatal;
    outcome.groups = reports;
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
    let mut missing = Vec::new();
    for report in &outcome.groups {
        if !matches!(report.status, GroupStatus::Passed | GroupStatus::Failed) {
            continue; // a failed environment is reported as such, not test by test
        }
        for id in outcome.assignment.get(&report.group).into_iter().flatten() {
            if !seen.contains_key(id.as_str()) {
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
        start_offset_seconds: 0.0,
        setup_seconds: 0.0,
        create_seconds: 0.0,
        test_seconds: 0.0,
        teardown_seconds: 0.0,
        pytest_exit: None,
        ran: Vec::new(),
        files: Vec::new(),
    }
}

fn test_overrides(
    spec: &RunSpec,
    images: &HashMap<String, String>,
    service: &Service,
) -> ContainerOverrides {
    let mut o = ContainerOverrides {
        image: images.get(&service.name).cloned(),
        ..Default::default()
    };
    if service.name == spec.test_service {
        o.entrypoint = Some(TEST_CONTAINER_SLEEP.iter().map(|s| s.to_string()).collect());
        o.command = Some(Vec::new());
        o.env = spec.env.clone();
    }
    o
}

#[allow(clippy::too_many_arguments)]
async fn run_group<B: Backend>(
    backend: &B,
    spec: &RunSpec,
    project: &Project,
    group: usize,
    run_started: Instant,
    images: &HashMap<String, String>,
    ready_tx: mpsc::UnboundedSender<ReadyEnv>,
    mut plan_rx: watch::Receiver<PlanState>,
    events: &EventSink,
) -> GroupReport {
    let started = Instant::now();
    let timing = Timing {
        poll: spec.poll,
        deadline: started + spec.ready_timeout,
    };
    let overrides = |s: &Service| test_overrides(spec, images, s);
    let mut report = failed_report(group, "");
    report.start_offset_seconds = started.duration_since(run_started).as_secs_f64();
    let env = start_environment(
        backend,
        project,
        &spec.test_service,
        &overrides,
        timing,
        group,
        events,
    )
    .await;
    let result: Result<(), String> = async {
        let env = env.map_err(|f: EnvironmentFailure| f.to_string())?;
        if let Some(all_started) = env.all_started {
            report.create_seconds = all_started.duration_since(started).as_secs_f64();
        }
        let container = env
            .containers
            .get(&spec.test_service)
            .cloned()
            .ok_or_else(|| format!("test service {} was not started", spec.test_service))?;
        let service = &project.services[&spec.test_service];
        // The exec's PYTHONPATH replaces the container's, so keep whatever the image or
        // the service configured after the plugin folder.
        let python_path = backend
            .container_env(&container)
            .await
            .ok()
            .and_then(|env| env.into_iter().find(|(k, _)| k == "PYTHONPATH"))
            .map(|(_, v)| v)
            .or_else(|| service.environment.get("PYTHONPATH").cloned().flatten());
        let _ = ready_tx.send(ReadyEnv {
            container: container.clone(),
            python_path: python_path.clone(),
            working_dir: service.working_dir.clone(),
            user: service.user.clone(),
        });
        drop(ready_tx);
        events.emit(Event::Phase {
            group,
            phase: Phase::WaitingForPlan,
        });
        let assignment = loop {
            match &*plan_rx.borrow_and_update() {
                PlanState::Ready(a) => break a.clone(),
                PlanState::Failed(reason) => return Err(reason.clone()),
                PlanState::Pending => {}
            }
            if plan_rx.changed().await.is_err() {
                return Err("planning ended without a plan".into());
            }
        };
        let tests = assignment.get(&group).cloned().unwrap_or_default();
        report.setup_seconds = started.elapsed().as_secs_f64();
        if spec.collect_only {
            report.status = GroupStatus::Passed;
            return Ok(());
        }
        let test_start = Instant::now();
        let outcome = run_tests(
            backend,
            spec,
            group,
            &container,
            python_path.as_deref(),
            service,
            &tests,
            events,
        )
        .await;
        report.test_seconds = test_start.elapsed().as_secs_f64();
        report.status = outcome.status;
        report.counts = outcome.counts;
        report.pytest_exit = outcome.pytest_exit;
        report.ran = outcome.ran;
        report.files = outcome.files;
        Ok(())
    }
    .await;
    if let Err(reason) = result {
        report.status = GroupStatus::EnvironmentError(reason);
        report.setup_seconds = started.elapsed().as_secs_f64();
    }

    let teardown = Instant::now();
    if spec.keep {
        events.emit(Event::Notice(format!(
            "[g{group}] kept: enter it with `docker exec -it {} sh`; remove it with `compose-shard clean --run {}`",
            crate::engine::container_name(project, &project.services[&spec.test_service]),
            spec.run_id
        )));
    } else {
        events.emit(Event::Phase {
            group,
            phase: Phase::TearingDown,
        });
        match backend.remove_labelled(&group_label(project)).await {
            Ok(removed) => events.emit(Event::Removed(describe(&removed))),
            Err(e) => events.emit(Event::Warning(format!(
                "[g{group}] teardown: {}",
                crate::errors::render_chain(&e)
            ))),
        }
    }
    report.teardown_seconds = teardown.elapsed().as_secs_f64();
    events.emit(Event::Phase {
        group,
        phase: Phase::Done,
    });
    events.emit(Event::GroupDone(Box::new(report.clone())));
    report
}
