//! The orchestrator: images once, then every group concurrently (start the test service's
//! dependencies, run the test command as the test container's main process, copy results
//! out, tear down); every group collects the suite itself and the [`Dispatcher`] hands each
//! its share of the plan. Emits [`Event`]s; returns a [`RunOutcome`].
//!
//! All groups are futures joined on one task: the work is waiting on the engine, and a single
//! task means cancelling the run (Ctrl-C) is just dropping one future, after which cleanup by
//! label removes whatever had been created, including half-created resources.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::{FutureExt, LocalBoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::backend::Backend;
use super::bind_sources::{create_missing_bind_sources, created_notice};
use super::data_in_memory::{self, DataInMemory};
use super::dispatch::{Dispatcher, LostTest};
use super::error::RunError;
use super::event::{Activity, Event, EventSink, GroupReport};
use super::group::prepare_test_container;
use super::group::{run_tests, TestContainer};
use super::images::{prepare_images, Images};
use super::outcome::{EnvironmentFailure, FailureCause, GroupStatus};
use super::plugin_folders::PluginFolders;
use super::protocol::{env, GATE_FILE, PLUGIN_DIR};
use super::pytest_command::{is_pytest, test_invocation, PluginSettings};
use super::resource_labels::{describe, group_label, run_label};
use super::service_snapshot::{RunSnapshots, SnapshotStore};
use super::snapshot_layers;
use super::source_copy::{must_copy, SourceCopy};
use super::spec::{Assignment, RunSpec, TestSource};
use super::start_turns::{starts_at_once, StartTurns, Turn};
use super::startup::{
    create_resources, start_services, wait_test_dependencies, StartRequest, StartedEnvironment,
    Timing, Waits,
};
use super::warm_start::SnapshotUse;
use crate::compose::{Project, Service};
use crate::config::STARTS_AT_ONCE_ENV;
use crate::engine::{ContainerOverrides, ImageConfig};
use crate::report::{Phase, PhaseSpan};

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
    /// What the failed tests turned out to be (`--retries`).
    pub explanation: Option<super::explain::Explanation>,
    /// Why groups joined during the run (`--groups auto`).
    pub grown: Vec<String>,
}

impl RunOutcome {
    /// The highest group number that ran, at least `planned` (groups that joined during the
    /// run come after the planned ones).
    pub fn last_group(&self, planned: usize) -> usize {
        self.groups
            .iter()
            .map(|g| g.group)
            .max()
            .unwrap_or(0)
            .max(planned)
    }
}

fn group_of(project: &Project, index: usize) -> usize {
    project
        .isolation
        .as_ref()
        .map(|i| i.group)
        .unwrap_or(index + 1)
}

/// One engine a run may place groups on.
pub struct EngineSlot<'a, B: Backend> {
    /// The engine.
    pub backend: &'a B,
    /// How messages name it (its address).
    pub label: String,
    /// Reached over the network: it cannot see this machine's files.
    pub remote: bool,
}

/// An engine ready for its groups: images there, and whether the project files are copied.
struct Ready<'a, B: Backend> {
    backend: &'a B,
    label: String,
    /// The engine's id (empty if it did not say: no snapshots there).
    engine_id: String,
    /// `--tmpfs-data`: which services' data paths are in memory.
    data: DataInMemory,
    images: Images,
    copy: Option<SourceCopy>,
    /// Whether healthchecks with a short interval may run their own test before the
    /// engine's first probe ([`Timing::early_health_tests`]).
    early_health_tests: bool,
    /// Its groups' turns to set up.
    turns: StartTurns,
}

/// Images on one engine, then whether its containers get the project files uploaded.
/// `groups_here`: the groups planned on this engine.
async fn prepare_engine<'a, B: Backend>(
    slot: &EngineSlot<'a, B>,
    (project, groups_here): (&Project, usize),
    spec: &RunSpec,
    events: &EventSink,
) -> Result<Ready<'a, B>, RunError> {
    let images = prepare_images(slot.backend, project, spec, events)
        .await
        .map_err(|f| RunError::Environment(Box::new(f)))?;
    let out_dir =
        std::fs::canonicalize(&spec.results_root).unwrap_or_else(|_| spec.results_root.clone());
    let copy = SourceCopy::of(project, vec![out_dir]);
    let image = images
        .tags
        .get(&spec.test_service)
        .cloned()
        .or_else(|| project.services.get(&spec.test_service)?.image.clone())
        .unwrap_or_default();
    let (copying, notice) = must_copy(
        slot.backend,
        &slot.label,
        slot.remote,
        spec.copy_source,
        &copy,
        &image,
    )
    .await?;
    if let Some(notice) = notice {
        events.emit(Event::Notice(notice));
    }
    if !copying && !slot.remote {
        let created = create_missing_bind_sources(project).map_err(RunError::Environment)?;
        if !created.is_empty() {
            events.emit(Event::Notice(created_notice(&created)));
        }
    }
    let (engine_id, memory, cpus) = match slot.backend.engine_info().await {
        Ok(info) => (info.id, info.memory_bytes, info.cpus),
        Err(_) => (String::new(), 0, 0),
    };
    let at_once = spec
        .starts_at_once
        .unwrap_or_else(|| starts_at_once(spec.dist, cpus, groups_here, spec.tests_cpu_fraction));
    // The groups that set up at the same time.
    let setting_up = match at_once {
        0 => groups_here,
        n => n.min(groups_here),
    };
    if setting_up < groups_here {
        let why = match spec.starts_at_once {
            Some(_) => format!("as {STARTS_AT_ONCE_ENV} says"),
            None => format!("the engine has {cpus} CPU(s), one setup keeps about 1.5 busy and the tests wait more than they compute, so each group tests as soon as it is ready and later ones take less of the queue ({STARTS_AT_ONCE_ENV}=0 starts all at once)"),
        };
        events.emit(Event::Notice(format!(
            "{}: starting {at_once} environment(s) at a time: {why}",
            slot.label
        )));
    }
    let data = if spec.tmpfs_data {
        let groups = groups_at_once(spec);
        let sizing = (memory, groups, spec.tmpfs_size);
        let test = &spec.test_service;
        data_in_memory::plan(slot.backend, project, test, &images, sizing, events).await
    } else {
        DataInMemory::default()
    };
    Ok(Ready {
        backend: slot.backend,
        label: slot.label.clone(),
        engine_id,
        data,
        images,
        copy: copying.then_some(copy),
        // Measured: one group's setup 2.5-2.7 s -> 1.7-1.9 s; four groups starting at once on
        // 2 CPUs lost 0.3-0.6 s to the execs instead.
        early_health_tests: setting_up <= cpus,
        turns: StartTurns::new(at_once),
    })
}

/// How many groups may run at once (on any one engine, at most): the planned ones, or as many as
/// `--groups auto` may grow to.
fn groups_at_once(spec: &RunSpec) -> usize {
    let planned = spec.projects.len();
    spec.elastic
        .as_ref()
        .map_or(planned, |e| e.max_groups.max(planned))
}

/// The engine (index into the run's `engines`) of `spec.projects[i]`.
fn engine_of(spec: &RunSpec, engines: usize, i: usize) -> usize {
    spec.placement
        .get(i)
        .copied()
        .unwrap_or(0)
        .min(engines.saturating_sub(1))
}

/// Every engine that has groups, prepared at once; `None` for engines without groups.
async fn prepare_engines<'a, B: Backend>(
    engines: &[EngineSlot<'a, B>],
    spec: &RunSpec,
    events: &EventSink,
) -> Vec<Option<Result<Ready<'a, B>, RunError>>> {
    futures::future::join_all(engines.iter().enumerate().map(|(e, slot)| {
        let here: Vec<usize> = (0..spec.projects.len())
            .filter(|i| engine_of(spec, engines.len(), *i) == e)
            .collect();
        async move {
            let project = &spec.projects[*here.first()?];
            Some(prepare_engine(slot, (project, here.len()), spec, events).await)
        }
    }))
    .await
}

/// Run everything on one engine (see [`run_on`]).
pub async fn run<B: Backend>(
    backend: &B,
    spec: &RunSpec,
    source: TestSource,
    events: &EventSink,
) -> RunOutcome {
    let slot = EngineSlot {
        backend,
        label: "default".into(),
        remote: false,
    };
    run_on(std::slice::from_ref(&slot), spec, source, events).await
}

/// Run everything, each group on the engine `spec.placement` gives it. Every engine with
/// groups is prepared at once; an engine that fails to prepare loses only its groups (their
/// queued work goes to the others). Never returns early with resources left behind (except
/// with `--keep`).
pub async fn run_on<B: Backend>(
    engines: &[EngineSlot<'_, B>],
    spec: &RunSpec,
    source: TestSource,
    events: &EventSink,
) -> RunOutcome {
    let run_started = Instant::now();
    let mut outcome = RunOutcome::default();
    if spec.projects.is_empty() || engines.is_empty() {
        outcome.fatal = Some(RunError::Environment(Box::new(EnvironmentFailure::of(
            FailureCause::NothingToRun,
        ))));
        return outcome;
    }
    let engine_of = |i: usize| engine_of(spec, engines.len(), i);
    let readies = prepare_engines(engines, spec, events).await;
    outcome.images_seconds = run_started.elapsed().as_secs_f64();
    let failed_engines: Vec<&RunError> = readies
        .iter()
        .flatten()
        .filter_map(|r| r.as_ref().err())
        .collect();
    if failed_engines.len() == readies.iter().flatten().count() {
        no_engine_ready(&mut outcome, engines, spec, &failed_engines);
        return outcome;
    }

    outcome.dynamic = matches!(source, TestSource::Queue { .. });
    let dispatcher = dispatcher_for(spec, source);
    let snapshots = run_snapshots(spec);
    let shared = Shared {
        spec,
        snapshots: snapshots.as_ref(),
        dispatcher: &dispatcher,
        run_started,
        events,
        multi_engine: engines.len() > 1,
    };
    let running: FuturesUnordered<LocalBoxFuture<'_, GroupReport>> = spec
        .projects
        .iter()
        .enumerate()
        .map(|(i, project)| {
            let ready = readies[engine_of(i)]
                .as_ref()
                .expect("an engine with groups is prepared");
            let label = &engines[engine_of(i)].label;
            run_group_on(shared, ready, label, project, group_of(project, i)).boxed_local()
        })
        .collect();
    let growth = spec.elastic.as_ref().and_then(|elastic| {
        let ready = readies[0].as_ref()?.as_ref().ok()?;
        Some(Growth {
            elastic,
            ready,
            next_group: spec.projects.len() + 1,
            started: Instant::now(),
            last: Vec::new(),
            stopped: false,
            host_since: std::cell::Cell::new(None),
        })
    });
    let (mut groups, grown) = run_groups(shared, running, growth).await;
    groups.sort_by_key(|g| g.group);
    outcome.groups = groups;
    outcome.grown = grown;
    let finished = dispatcher.finish();
    outcome.collected = finished.collected;
    outcome.assignment = finished.assignment;
    outcome.fatal = finished.fatal;
    outcome.unstable_ids = finished.unstable;
    outcome.stopped = finished.stopped;
    outcome.lost = finished.lost;
    outcome.not_run = finished.not_run;
    check_exactly_once(&mut outcome);
    if !spec.keep && spec.sweep {
        sweep(engines, spec, events).await;
    }
    outcome
}

/// The dispatcher of `spec`'s groups: it keeps the work of a group that may be abandoned
/// after a test timed out, and sizes chunks for the groups `--groups auto` may add.
fn dispatcher_for(spec: &RunSpec, source: TestSource) -> Dispatcher {
    Dispatcher::new(source)
        .may_abandon(spec.test_timeout.is_some())
        .may_grow_to(spec.elastic.as_ref().map_or(0, |e| e.max_groups))
}

/// The run's snapshots of ready services (`None`: off, or no cache folder to keep them in).
fn run_snapshots(spec: &RunSpec) -> Option<RunSnapshots> {
    let dir = spec.cache_dir.as_deref()?;
    let run = RunSnapshots::new(spec.snapshots, SnapshotStore::under(dir))?
        .worth_above(spec.snapshot_worth);
    Some(if spec.snapshot_layers {
        run
    } else {
        run.without_layers()
    })
}

/// A wait for a turn to start shorter than this is not shown on the timeline.
const WAITING_SHOWN: Duration = Duration::from_millis(5);

/// How long the host's CPUs are watched before their business says anything.
const HOST_WINDOW: Duration = Duration::from_secs(1);

/// `--groups auto` growing during a dynamic run (see [`super::elastic`]).
struct Growth<'a, B: Backend> {
    elastic: &'a super::spec::Elastic,
    ready: &'a Ready<'a, B>,
    /// The number the next group that joins gets.
    next_group: usize,
    /// When the groups started.
    started: Instant,
    /// The last groups that joined.
    last: Vec<usize>,
    /// No more group joins (the factory failed).
    stopped: bool,
    /// When the groups running now all had their tests, and the host's CPU counters then.
    host_since: std::cell::Cell<Option<(Instant, crate::machine::CpuSample)>>,
}

impl<'a, B: Backend> Growth<'a, B> {
    /// The CPUs each of the `running` groups keeps busy on the host, the services its tests
    /// wait on included (the host's busy share x CPUs / groups), measured since the groups
    /// running now all had their tests: `Err` while that is less than [`HOST_WINDOW`] (the
    /// first call after a join starts the measure); `Ok(None)` when the host's counters
    /// cannot be read.
    fn host_share(&self, running: usize) -> Result<Option<f64>, ()> {
        let Some(now) = self.elastic.host_cpu.and_then(|read| read()) else {
            return Ok(None);
        };
        match self.host_since.get() {
            None => {
                self.host_since.set(Some((Instant::now(), now)));
                Err(())
            }
            Some((at, _)) if at.elapsed() < HOST_WINDOW => Err(()),
            Some((_, since)) => Ok(since.busy_until(&now).map(|busy| {
                crate::plan::auto_groups::cpus_per_group(busy, self.elastic.cpus, running as f64)
            })),
        }
    }

    /// Groups that should join now, and why: they pay for their start and the last ones
    /// that joined have their tests.
    fn due(&self, shared: Shared<'_>, running: usize) -> Option<(usize, String)> {
        if self.stopped
            || self
                .last
                .iter()
                .any(|&k| shared.dispatcher.units_taken(k) == 0)
        {
            return None;
        }
        let first = shared.dispatcher.first_handed()?;
        let host_share = self.host_share(running).ok()?;
        let (remaining_seconds, measured, recorded) = shared.dispatcher.work_left()?;
        let progress = super::elastic::Progress {
            groups: running,
            remaining_seconds,
            measured,
            recorded,
            start_cost: first.saturating_duration_since(self.started).as_secs_f64(),
            testing_for: first.elapsed().as_secs_f64(),
            cpus: self.elastic.cpus,
            cpu_fraction: shared
                .dispatcher
                .cpu_fraction()
                .or(self.elastic.cpu_fraction),
            host_share,
        };
        if !recorded && progress.cpu_fraction.is_none() {
            // Whether the tests compute or wait decides how many groups pay: a report is
            // due within a second or two of tests.
            return None;
        }
        super::elastic::should_grow(&progress, self.elastic.max_groups)
    }

    /// `count` groups that join now (fewer when a project cannot be made).
    fn join(
        &mut self,
        shared: Shared<'a>,
        count: usize,
        reason: String,
    ) -> Vec<LocalBoxFuture<'a, GroupReport>> {
        let mut projects = Vec::new();
        for _ in 0..count {
            let group = self.next_group + projects.len();
            match (self.elastic.factory.0)(group) {
                Ok(project) => projects.push((group, project)),
                Err(e) => {
                    shared.events.emit(Event::Warning(format!(
                        "auto could not add group {group}: {}",
                        crate::errors::render_chain(&e)
                    )));
                    self.stopped = true;
                    break;
                }
            }
        }
        if projects.is_empty() {
            return Vec::new();
        }
        shared.events.emit(Event::Notice(reason));
        self.next_group += projects.len();
        self.last = projects.iter().map(|(group, _)| *group).collect();
        self.host_since.set(None);
        let ready = self.ready;
        projects
            .into_iter()
            .map(|(group, project)| {
                shared.dispatcher.add_group();
                async move { run_ready_group(shared, ready, &project, group).await }.boxed_local()
            })
            .collect()
    }
}

/// Every group to its end; with `growth`, more join while the work left pays for them.
/// The reports, and why groups joined.
async fn run_groups<'a, B: Backend>(
    shared: Shared<'a>,
    mut running: FuturesUnordered<LocalBoxFuture<'a, GroupReport>>,
    mut growth: Option<Growth<'a, B>>,
) -> (Vec<GroupReport>, Vec<String>) {
    let mut reports = Vec::new();
    let mut grown = Vec::new();
    loop {
        let tick = tokio::time::sleep(Duration::from_millis(500));
        tokio::select! {
            report = running.next() => match report {
                Some(report) => reports.push(report),
                None => break,
            },
            () = tick, if growth.is_some() => {
                let growth = growth.as_mut().expect("checked");
                if let Some((count, reason)) = growth.due(shared, running.len()) {
                    let joined = growth.join(shared, count, reason.clone());
                    if !joined.is_empty() {
                        grown.push(reason);
                        running.extend(joined);
                    }
                }
            }
        }
    }
    (reports, grown)
}

/// No engine could be prepared: every group fails, and the first engine's error is the
/// run's.
fn no_engine_ready<B: Backend>(
    outcome: &mut RunOutcome,
    engines: &[EngineSlot<'_, B>],
    spec: &RunSpec,
    failed: &[&RunError],
) {
    outcome.groups = (0..spec.projects.len())
        .map(|i| {
            let cause = FailureCause::EngineUnavailable {
                engine: engines[engine_of(spec, engines.len(), i)].label.clone(),
                reason: "no engine could run it".into(),
            };
            failed_report(group_of(&spec.projects[i], i), cause)
        })
        .collect();
    outcome.fatal = Some(match failed.first() {
        Some(RunError::SourceNotVisible(r)) => RunError::SourceNotVisible(r.clone()),
        Some(RunError::Environment(f)) => RunError::Environment(f.clone()),
        other => RunError::Environment(Box::new(EnvironmentFailure::of(
            FailureCause::EngineUnavailable {
                engine: engines[0].label.clone(),
                reason: other.map(|e| e.to_string()).unwrap_or_default(),
            },
        ))),
    });
}

/// Remove whatever carries the run's label on every engine: groups tear themselves down,
/// this catches anything a failed teardown left.
async fn sweep<B: Backend>(engines: &[EngineSlot<'_, B>], spec: &RunSpec, events: &EventSink) {
    let label = run_label(&spec.run_id);
    let sweeps = engines.iter().map(|e| e.backend.remove_labelled(&label));
    for removed in futures::future::join_all(sweeps)
        .await
        .into_iter()
        .flatten()
    {
        if !removed.is_empty() {
            events.emit(Event::Removed(describe(&removed)));
        }
    }
}

/// What every group of a run shares.
#[derive(Clone, Copy)]
struct Shared<'a> {
    spec: &'a RunSpec,
    snapshots: Option<&'a RunSnapshots>,
    dispatcher: &'a Dispatcher,
    run_started: Instant,
    events: &'a EventSink,
    multi_engine: bool,
}

/// One group on its engine, or its report when the engine could not be prepared.
async fn run_group_on<B: Backend>(
    shared: Shared<'_>,
    ready: &Result<Ready<'_, B>, RunError>,
    label: &str,
    project: &Project,
    group: usize,
) -> GroupReport {
    let ready = match ready {
        Ok(ready) => ready,
        Err(e) => {
            let cause = FailureCause::EngineUnavailable {
                engine: label.to_string(),
                reason: e.to_string(),
            };
            shared
                .events
                .emit(Event::Warning(format!("[g{group}] {cause}")));
            let mut report = failed_report(group, cause);
            report.engine = label.to_string();
            return report;
        }
    };
    run_ready_group(shared, ready, project, group).await
}

/// One group on its prepared engine.
async fn run_ready_group<B: Backend>(
    shared: Shared<'_>,
    ready: &Ready<'_, B>,
    project: &Project,
    group: usize,
) -> GroupReport {
    let cx = GroupContext {
        backend: ready.backend,
        spec: shared.spec,
        images: &ready.images,
        data: &ready.data,
        copy: ready.copy.as_ref(),
        engine: &ready.label,
        snapshots: shared.snapshots.map(|run| SnapshotUse {
            run,
            engine_id: &ready.engine_id,
        }),
        multi_engine: shared.multi_engine,
        early_health_tests: ready.early_health_tests,
        dispatcher: shared.dispatcher,
        run_started: shared.run_started,
        events: shared.events,
        turns: &ready.turns,
    };
    run_group(&cx, project, group).await
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
        if !report.status.has_results() {
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

fn failed_report(group: usize, cause: FailureCause) -> GroupReport {
    GroupReport {
        status: GroupStatus::Environment(EnvironmentFailure::of(cause)),
        ..GroupReport::new(group)
    }
}

/// What a group runs with: its engine's backend, images and source copy, and what every
/// group of the run shares.
struct GroupContext<'a, B: Backend> {
    backend: &'a B,
    spec: &'a RunSpec,
    images: &'a Images,
    data: &'a DataInMemory,
    copy: Option<&'a SourceCopy>,
    engine: &'a str,
    snapshots: Option<SnapshotUse<'a>>,
    multi_engine: bool,
    early_health_tests: bool,
    dispatcher: &'a Dispatcher,
    run_started: Instant,
    events: &'a EventSink,
    turns: &'a StartTurns,
}

/// A service's container changes: the built image's tag; for the test service, the test
/// command as its command (its entrypoint stays, as with `docker compose run SERVICE CMD`)
/// and the environment the plugin needs, keeping the service's or image's `PYTHONPATH` and
/// `PYTEST_ADDOPTS`.
fn container_overrides(
    spec: &RunSpec,
    (images, data): (&Images, &DataInMemory),
    service: &Service,
) -> ContainerOverrides {
    let mut o = ContainerOverrides {
        image: images.tags.get(&service.name).cloned(),
        files: spec.files.get(&service.name).cloned().unwrap_or_default(),
        data_in_memory: data.of(&service.name).to_vec(),
        own_healthcheck: spec.own_healthchecks,
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
    let plugin = PluginSettings {
        dist: spec.dist,
        token: spec.token.clone(),
        exit_grace: spec.exit_grace,
        test_timeout: spec.test_timeout,
    };
    let invocation = test_invocation(
        &spec.command,
        existing("PYTHONPATH").as_deref(),
        existing("PYTEST_ADDOPTS").as_deref(),
        spec.collect_only,
        &plugin,
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
fn span(run_started: Instant, phase: Phase, start: Instant, end: Instant) -> PhaseSpan {
    PhaseSpan {
        phase,
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
    let asked = Instant::now();
    let mut report = GroupReport::new(group);
    if cx.multi_engine {
        report.engine = cx.engine.to_string();
        cx.events
            .emit(Event::Info(format!("[g{group}] on engine {}", cx.engine)));
    }
    if asked > cx.run_started {
        report
            .phases
            .push(span(cx.run_started, Phase::Images, cx.run_started, asked));
    }
    let turn = cx.turns.take().await;
    let started = Instant::now();
    if started.duration_since(asked) >= WAITING_SHOWN {
        report
            .phases
            .push(span(cx.run_started, Phase::Waiting, asked, started));
    }
    let result = start_and_test(cx, project, group, (started, &turn), &mut report).await;
    turn.end();
    if let Err(failure) = result {
        report.status = GroupStatus::Environment(failure);
        report.setup_seconds = started.elapsed().as_secs_f64();
        // The environment never got ready: all its time was setup.
        if !report.phases.iter().any(|p| p.phase == Phase::Environment) {
            report.phases.push(span(
                cx.run_started,
                Phase::Environment,
                started,
                Instant::now(),
            ));
        }
    }
    // A service whose data in memory filled up explains the failures better than they do.
    if !matches!(report.status, GroupStatus::Passed) {
        if let Some(full) = data_in_memory::full(cx.backend, project, cx.data).await {
            report.status = GroupStatus::Environment(full);
        }
    }
    let teardown = Instant::now();
    tear_down(cx, project, group).await;
    report.teardown_seconds = teardown.elapsed().as_secs_f64();
    report.phases.push(span(
        cx.run_started,
        Phase::Teardown,
        teardown,
        Instant::now(),
    ));
    cx.events.emit(Event::Activity {
        group,
        activity: Activity::Done,
    });
    cx.events.emit(Event::GroupDone(Box::new(report.clone())));
    report
}

// Over 80 lines: the group's life in order (environment, test container, source copy, the
// waits overlapped with it, tests, the phase spans of each step), which reads best in one
// place.
async fn start_and_test<B: Backend>(
    cx: &GroupContext<'_, B>,
    project: &Project,
    group: usize,
    (started, turn): (Instant, &Turn<'_>),
    report: &mut GroupReport,
) -> Result<(), EnvironmentFailure> {
    let spec = cx.spec;
    let timing = Timing {
        poll: spec.poll,
        deadline: started + spec.ready_timeout,
        probe_grace: PROBE_GRACE.min(spec.ready_timeout),
        early_health_tests: cx.early_health_tests,
        own_healthchecks: spec.own_healthchecks,
    };
    // With --copy-source the project-tree binds are gone and the files are uploaded instead.
    let stripped = cx.copy.map(|copy| copy.strip(project));
    let project = stripped.as_ref().unwrap_or(project);
    let overrides = |s: &Service| container_overrides(spec, (cx.images, cx.data), s);
    let request = StartRequest {
        copy: cx.copy,
        project,
        test_service: &spec.test_service,
        overrides: &overrides,
        images: &cx.images.configs,
        timing,
        group,
        snapshots: cx.snapshots,
    };
    create_resources(cx.backend, &request, cx.events).await?;
    let env_started = start_services(cx.backend, &request, cx.events)
        .boxed_local()
        .shared();
    // Compose creates the test container once the conditions it declares hold; creating it
    // (and uploading into it) while its dependencies start changes nothing the tests see, and
    // saves that time. Only a container that joins a dependency's network namespace
    // (`network_mode: service:x`) must wait for that container to exist.
    let service = &project.services[&spec.test_service];
    // pytest itself, with no entrypoint before it, may start loading while the services get
    // ready: it waits for the gate file before it loads any project code.
    let early = starts_early(spec, service, cx.images.configs.get(&service.name));
    let mut test_overrides = overrides(service);
    // Its plugin and results folders are this machine's where the engine shares them.
    let folders = plugin_folders(cx, project).await;
    if let Some(folders) = &folders {
        test_overrides.host_folders = folders.mounts();
    }
    if early {
        test_overrides.env.push((env::GATE.into(), "1".into()));
    }
    let joins_a_dependency = service
        .network_mode
        .as_deref()
        .is_some_and(|mode| mode.starts_with("container:"));
    let prepare = async {
        if joins_a_dependency {
            env_started.clone().await?;
        }
        let container = cx
            .backend
            .create_service(project, service, &test_overrides)
            .await
            .map_err(EnvironmentFailure::engine)?;
        if let Some(copy) = cx.copy {
            copy.upload(cx.backend, &service.name, &container).await?;
        }
        prepare_test_container(cx.backend, &container).await?;
        if early {
            cx.backend
                .start_attached(&container)
                .await
                .map_err(EnvironmentFailure::engine)?;
        }
        Ok::<String, EnvironmentFailure>(container)
    };
    let declared = async {
        let env = env_started.clone().await?;
        wait_test_dependencies(cx.backend, &request, &env, Waits::Declared, cx.events).await?;
        Ok::<StartedEnvironment, EnvironmentFailure>(env)
    };
    let (env, container) = futures::join!(declared, prepare);
    let env = env?;
    let container = container?;
    let all_started = env.all_started.unwrap_or(started);
    report.phases.push(span(
        cx.run_started,
        Phase::Environment,
        started,
        all_started,
    ));
    let ready = Instant::now();
    // The next environment may start: what is left of this setup (the test process
    // loading and collecting) takes one CPU, not the engine's (see run::start_turns). A
    // test container not started yet keeps the turn until the engine has started it.
    if early {
        turn.end();
        let go: [(&str, &[u8]); 1] = [(GATE_FILE, b"")];
        cx.backend
            .upload(&container, PLUGIN_DIR, &go)
            .await
            .map_err(EnvironmentFailure::engine)?;
    }
    report
        .phases
        .push(span(cx.run_started, Phase::Readiness, all_started, ready));
    // The port probes of plain dependencies only help: they run while the test container
    // starts and collects, and hold back only its first test.
    let probes = Box::pin(wait_test_dependencies(
        cx.backend,
        &request,
        &env,
        Waits::Probes,
        cx.events,
    ));
    let test_container = TestContainer {
        name: &container,
        released: early.then_some(ready),
        turn: (!early).then_some(turn),
    };
    // A snapshot this environment took is laid out for layering while the tests run.
    let (outcome, ()) = futures::join!(
        run_tests(
            cx.backend,
            spec,
            group,
            test_container,
            cx.dispatcher,
            cx.events,
            probes,
        ),
        snapshot_layers::make_untemplated(cx.backend, cx.snapshots, group, cx.events),
    );
    let test_start = outcome.tests_delivered.or(outcome.exited).unwrap_or(ready);
    let exited = outcome.exited.unwrap_or_else(Instant::now);
    report.setup_seconds = test_start.duration_since(started).as_secs_f64();
    report.test_seconds = exited.saturating_duration_since(test_start).as_secs_f64();
    report.phases.push(span(
        cx.run_started,
        Phase::Collection,
        outcome.started.unwrap_or(ready),
        test_start,
    ));
    if outcome.tests_delivered.is_some() {
        report
            .phases
            .push(span(cx.run_started, Phase::Tests, test_start, exited));
    }
    report
        .phases
        .push(span(cx.run_started, Phase::Results, exited, Instant::now()));
    report.status = outcome.status;
    report.counts = outcome.counts;
    report.pytest_exit = outcome.pytest_exit;
    report.ran = outcome.ran;
    report.results = outcome.results;
    report.assigned = outcome.assigned;
    report.files = outcome.files;
    report.lingering = outcome.lingering;
    report.cpu = outcome.cpu;
    Ok(())
}

/// The test container's plugin and results folders on this machine, where the engine
/// shares this machine's files and `COMPOSE_SHARD_HOST_FOLDERS` is not `0`.
async fn plugin_folders<B: Backend>(
    cx: &GroupContext<'_, B>,
    project: &Project,
) -> Option<PluginFolders> {
    if !cx.spec.host_folders || !cx.backend.shares_host_folders().await {
        return None;
    }
    PluginFolders::make(&project.name, cx.spec.keep)
}

/// Whether the test container may start before its services are ready: the command is
/// pytest itself and nothing runs before it (no entrypoint of the service or its image), so
/// what runs early is the interpreter loading pytest and its plugins, and the plugin holds
/// everything of the project (conftests, settings, test modules) until the conditions hold,
/// when `docker compose run` would have started the container.
fn starts_early(spec: &RunSpec, service: &Service, image: Option<&ImageConfig>) -> bool {
    let entrypoint = match &service.entrypoint {
        Some(own) => own.is_empty(),
        None => image.is_some_and(|i| i.entrypoint.is_empty()),
    };
    spec.early_start && entrypoint && is_pytest(&spec.command)
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
    cx.events.emit(Event::Activity {
        group,
        activity: Activity::TearingDown,
    });
    match cx.backend.remove_labelled(&group_label(project)).await {
        Ok(removed) => cx.events.emit(Event::Removed(describe(&removed))),
        Err(e) => cx.events.emit(Event::Warning(format!(
            "[g{group}] teardown: {}",
            crate::errors::render_chain(&e)
        ))),
    }
}
