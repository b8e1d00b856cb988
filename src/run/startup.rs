//! Starting one group's environment as `docker compose run SERVICE` does: networks, volumes,
//! then the test service's dependencies in `depends_on` order. A dependent waits only for what
//! it declared (`service_started`, `service_healthy`, `service_completed_successfully`), never
//! for a healthcheck nobody asked for, and a plain dependency that exits is fine. On top of
//! that, probes that only help: a started dependency's TCP ports (from the compose file, else
//! the image's `EXPOSE`) are given a bounded time to open, so a database without healthcheck
//! does not race the first connection; healthchecks that are waited for run their own test
//! through exec instead of sitting out the first `interval` (when the interval is 2 s or
//! less, only once the service accepts connections on its ports: each exec costs the
//! starting service CPU).
//!
//! Services start as Compose's dependency graph ([`ServiceGraph`]) allows: each the moment
//! the conditions it declares on its own dependencies hold, so independent services (a
//! database and a cache) start at once and become ready in parallel, and a branch of the
//! graph never waits for another. A `service_started` dependency holds once its container
//! runs, as under Compose (a `migrate` service starts right after its database's
//! container); only the test service's own are port-probed. The test service's
//! own conditions are waited for by the caller ([`wait_test_dependencies`]), which creates
//! its container meanwhile and runs the port probes of its plain dependencies while it
//! collects.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::{FutureExt, LocalBoxFuture, Shared};
use indexmap::IndexMap;
use tokio::time::Instant;

use super::backend::Backend;
use super::event::{Activity, Event, EventSink};
use super::outcome::{EnvironmentFailure, FailureCause};
use super::service_snapshot::Action;
use super::{snapshot_layers, warm_start};
use crate::compose::{DependencyCondition, Project, Service, ServiceGraph};
use crate::engine::{
    ContainerOverrides, ContainerStatus, ExecOutcome, ExecRequest, Health, ImageConfig,
};

/// Lines of a failed service's log shown to the user.
pub const LOG_TAIL_LINES: usize = 30;

/// How often readiness is polled and how long to wait in total.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Longest pause between polls (Compose polls about every 500 ms).
    pub poll: Duration,
    /// When the group's environment must be ready.
    pub deadline: Instant,
    /// How long a started dependency's ports are probed before its dependents start anyway.
    pub probe_grace: Duration,
    /// Whether a healthcheck with a short interval runs its own test before the engine's
    /// first probe, once the service listens: when no more groups start on the engine than it
    /// has CPUs (beyond that every exec delays the other environments' start by more than
    /// it saves).
    pub early_health_tests: bool,
    /// The engine's healthchecks are off in this run's containers: compose-shard runs them
    /// ([`super::health`]).
    pub own_healthchecks: bool,
}

/// A started environment: service name -> container name.
#[derive(Debug, Clone, Default)]
pub struct StartedEnvironment {
    /// Containers by service, in start order.
    pub containers: IndexMap<String, String>,
    /// When every container had been started and the readiness wait began.
    pub all_started: Option<Instant>,
}

/// Services in an order where every dependency comes first (file order otherwise); `Err`
/// is a dependency cycle, its services in order.
pub fn start_order(project: &Project) -> Result<Vec<String>, Vec<String>> {
    ServiceGraph::new(project).topological_order()
}

/// TCP ports a service declares (`expose` and `ports` targets).
pub fn declared_tcp_ports(service: &Service) -> Vec<u16> {
    let mut ports: Vec<u16> = service
        .expose
        .iter()
        .filter(|p| !p.ends_with("/udp") && !p.ends_with("/sctp"))
        .filter_map(|p| p.trim_end_matches("/tcp").parse().ok())
        .collect();
    ports.extend(
        service
            .ports
            .iter()
            .filter(|p| p.protocol == "tcp")
            .map(|p| p.target),
    );
    ports.sort_unstable();
    ports.dedup();
    ports
}

pub(super) async fn failure<B: Backend>(
    backend: &B,
    service: &str,
    container: &str,
    cause: FailureCause,
    status: Option<&ContainerStatus>,
) -> EnvironmentFailure {
    EnvironmentFailure {
        service: Some(service.to_string()),
        cause,
        state: status.map(ContainerStatus::describe),
        log_tail: backend.logs_tail(container, LOG_TAIL_LINES).await.ok(),
    }
}

/// What the orchestrator knows about a service's image: its `EXPOSE`d ports and its
/// `HEALTHCHECK`, used when the compose file declares neither.
pub type ImageConfigs = HashMap<String, ImageConfig>;

/// The healthcheck test that applies to a service: the compose one, else the image's.
pub(super) fn healthcheck_test(
    service: &Service,
    image: Option<&ImageConfig>,
) -> Option<Vec<String>> {
    let compose = service.healthcheck.as_ref().map(|h| h.test.clone());
    let test = match compose {
        Some(test) if !test.is_empty() => test,
        _ => image.and_then(|i| i.healthcheck_test.clone())?,
    };
    match test.first().map(String::as_str) {
        Some("CMD-SHELL") if test.len() == 2 => {
            Some(vec!["/bin/sh".into(), "-c".into(), test[1].clone()])
        }
        Some("CMD") if test.len() > 1 => Some(test[1..].to_vec()),
        _ => None, // NONE, or malformed: nothing to run
    }
}

/// Wait until a started dependency accepts connections, as far as that helps: ports the
/// compose file declares must all open; of ports only the image `EXPOSE`s, one is enough
/// (images expose optional ports, e.g. TLS, that may never open). A dependency that exits,
/// or whose ports stay closed past the grace period, does not fail anything: Compose would
/// not have waited at all.
async fn probe_started<B: Backend>(
    backend: &B,
    service: &Service,
    container: &str,
    image: Option<&ImageConfig>,
    timing: Timing,
) -> Result<Option<String>, EnvironmentFailure> {
    let ports = probe_ports(service, image);
    if ports.ports.is_empty() {
        return Ok(None);
    }
    let until = (Instant::now() + timing.probe_grace).min(timing.deadline);
    let mut pause = Duration::from_millis(50);
    loop {
        let status = backend
            .status(container)
            .await
            .map_err(EnvironmentFailure::engine)?;
        if status.has_exited() {
            return Ok(None);
        }
        if ports.open(backend, &status, PORT_PROBE_LIMIT).await {
            return Ok(None);
        }
        if Instant::now() >= until {
            return Ok(Some(format!(
                "{} accepted no connection on port(s) {:?} within {}s; its dependents go ahead anyway, as under Compose",
                service.name,
                ports.ports,
                timing.probe_grace.as_secs()
            )));
        }
        tokio::time::sleep(pause.min(timing.poll)).await;
        pause *= 2;
    }
}

/// How long one connection attempt of a port probe may take.
const PORT_PROBE_LIMIT: Duration = Duration::from_secs(1);
/// The same while a healthcheck is polled: the engine's status is polled in the same loop.
pub(super) const HEALTH_PORT_PROBE_LIMIT: Duration = Duration::from_millis(200);

/// The TCP ports a started service is probed on: the ports the compose file declares, which
/// must all open; else those only its image `EXPOSE`s, of which one is enough (images expose
/// optional ports, e.g. TLS, that may never open).
pub(super) struct ProbePorts {
    pub(super) ports: Vec<u16>,
    need_all: bool,
}

pub(super) fn probe_ports(service: &Service, image: Option<&ImageConfig>) -> ProbePorts {
    let declared = declared_tcp_ports(service);
    if declared.is_empty() {
        ProbePorts {
            ports: image
                .map(|i| i.exposed_tcp_ports.clone())
                .unwrap_or_default(),
            need_all: false,
        }
    } else {
        ProbePorts {
            ports: declared,
            need_all: true,
        }
    }
}

impl ProbePorts {
    /// Whether the service accepts connections on its ports (all, or one: see above), each
    /// attempt given at most `limit`.
    pub(super) async fn open<B: Backend>(
        &self,
        backend: &B,
        status: &ContainerStatus,
        limit: Duration,
    ) -> bool {
        let mut open = 0;
        for port in &self.ports {
            let probe = backend.port_open(status, *port);
            if tokio::time::timeout(limit, probe).await.unwrap_or(false) {
                open += 1;
            } else if self.need_all {
                return false;
            }
        }
        open > 0 && (!self.need_all || open == self.ports.len())
    }
}

/// Wait for a dependency to be healthy. The engine on API 1.41 runs the first probe only one
/// `interval` after start, so the healthcheck's own test also runs here through exec and its
/// first success counts as healthy: at a short bounded rate when the interval is long; with
/// an interval of 2 s or less (the engine's probes come soon, and every exec costs the
/// starting service CPU) only when the engine has a CPU for each group it starts
/// ([`Timing::early_health_tests`]), before its first probe, and once the service accepts
/// connections on its TCP ports, which a connection attempt from here tells at no cost to
/// the service (a database restored from its snapshot listens well before that probe).
async fn wait_healthy<B: Backend>(
    backend: &B,
    service: &Service,
    container: &str,
    image: Option<&ImageConfig>,
    timing: Timing,
) -> Result<(), EnvironmentFailure> {
    if timing.own_healthchecks {
        return super::health::wait_healthy_here(backend, service, container, image, timing).await;
    }
    let test = healthcheck_test(service, image);
    let short_interval = service
        .healthcheck
        .as_ref()
        .and_then(|h| h.interval)
        .filter(|seconds| *seconds <= ENGINE_PROBES_SOON);
    let early = timing.early_health_tests;
    let ports = probe_ports(service, image);
    // With a short interval: when the engine's first probe is due (one interval after the
    // container was first seen running); past it, the engine's probes are as early as ours.
    let mut engine_probe_due: Option<Instant> = None;
    let mut pause = Duration::from_millis(100).min(timing.poll);
    loop {
        let status = backend
            .status(container)
            .await
            .map_err(EnvironmentFailure::engine)?;
        let problem = match status.health {
            Health::Healthy => return Ok(()),
            Health::Unhealthy => Some(FailureCause::Unhealthy),
            _ if status.has_exited() => Some(FailureCause::ExitedBeforeHealthy),
            Health::None if test.is_none() => Some(FailureCause::NoHealthcheck),
            _ => None,
        };
        if let Some(reason) = problem {
            return Err(failure(backend, &service.name, container, reason, Some(&status)).await);
        }
        if let Some(cmd) = test.as_ref().filter(|_| status.running) {
            let worth_a_run = match short_interval {
                None => true,
                Some(seconds) => {
                    let due = *engine_probe_due.get_or_insert_with(|| {
                        Instant::now() + Duration::from_secs_f64(seconds.max(0.0))
                    });
                    early
                        && Instant::now() < due
                        && !ports.ports.is_empty()
                        && ports.open(backend, &status, HEALTH_PORT_PROBE_LIMIT).await
                }
            };
            if worth_a_run && healthcheck_passes(backend, container, cmd, EARLY_RUN_LIMIT).await {
                return Ok(());
            }
        }
        if Instant::now() >= timing.deadline {
            let cause = FailureCause::NotHealthyInTime;
            return Err(failure(backend, &service.name, container, cause, Some(&status)).await);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(timing.poll);
    }
}

/// How long an early run of a healthcheck the engine also runs may take.
pub(super) const EARLY_RUN_LIMIT: Duration = Duration::from_secs(10);

/// A healthcheck interval (seconds) at or under which compose-shard runs the test itself only
/// once the service listens on its ports.
const ENGINE_PROBES_SOON: f64 = 2.0;

/// Run a healthcheck test in the container; passes on exit code 0 within `timeout`.
pub(super) async fn healthcheck_passes<B: Backend>(
    backend: &B,
    container: &str,
    cmd: &[String],
    timeout: Duration,
) -> bool {
    let request = ExecRequest {
        cmd: cmd.to_vec(),
        ..Default::default()
    };
    let mut discard = |_: &[u8]| {};
    let exec = backend.exec(container, &request, &mut discard);
    matches!(
        tokio::time::timeout(timeout, exec).await,
        Ok(Ok(ExecOutcome { exit_code: Some(0) }))
    )
}

/// Wait for a one-shot dependency to exit with 0.
async fn wait_completed<B: Backend>(
    backend: &B,
    service: &str,
    container: &str,
    timing: Timing,
) -> Result<(), EnvironmentFailure> {
    loop {
        let status = backend
            .status(container)
            .await
            .map_err(EnvironmentFailure::engine)?;
        if status.has_exited() {
            if status.exit_code == Some(0) {
                return Ok(());
            }
            let cause = FailureCause::CompletionFailed;
            return Err(failure(backend, service, container, cause, Some(&status)).await);
        }
        if Instant::now() >= timing.deadline {
            let cause = FailureCause::NotCompletedInTime;
            return Err(failure(backend, service, container, cause, Some(&status)).await);
        }
        tokio::time::sleep(timing.poll).await;
    }
}

/// Wait for what a dependent declared about `dep`: started (plus port probes that only
/// help), healthy, or completed successfully. Returns a notice for the user, if any.
async fn wait_dependency<B: Backend>(
    backend: &B,
    dep: &Service,
    container: &str,
    condition: DependencyCondition,
    image: Option<&ImageConfig>,
    timing: Timing,
) -> Result<Option<String>, EnvironmentFailure> {
    match condition {
        DependencyCondition::ServiceStarted => {
            probe_started(backend, dep, container, image, timing).await
        }
        DependencyCondition::ServiceHealthy => wait_healthy(backend, dep, container, image, timing)
            .await
            .map(|()| None),
        DependencyCondition::ServiceCompletedSuccessfully => {
            wait_completed(backend, &dep.name, container, timing)
                .await
                .map(|()| None)
        }
    }
}

/// Create the group's networks and volumes.
async fn create_networks_and_volumes<B: Backend>(
    backend: &B,
    project: &Project,
) -> Result<(), EnvironmentFailure> {
    // Compose's name for a resource without `name:`: `<project>_<key>`.
    let name = |key: &str, explicit: &Option<String>| {
        explicit
            .clone()
            .unwrap_or_else(|| format!("{}_{key}", project.name))
    };
    for (key, net) in project.networks.iter().filter(|(_, n)| !n.external) {
        let created = backend.create_network(&name(key, &net.name), net).await;
        created.map_err(EnvironmentFailure::engine)?;
    }
    for (key, vol) in project.volumes.iter().filter(|(_, v)| !v.external) {
        let created = backend.create_volume(&name(key, &vol.name), vol).await;
        created.map_err(EnvironmentFailure::engine)?;
    }
    Ok(())
}

/// Everything one group's start-up needs besides the engine.
pub struct StartRequest<'a> {
    /// The group's isolated project (already restricted to what the test service needs).
    pub project: &'a Project,
    /// The service the tests run in: its dependencies are started and waited for, it is not.
    pub test_service: &'a str,
    /// Per-service container changes (the built image's tag...).
    pub overrides: &'a dyn Fn(&Service) -> ContainerOverrides,
    /// Image configuration by service.
    pub images: &'a ImageConfigs,
    /// Poll rate and deadline.
    pub timing: Timing,
    /// The group number (for events).
    pub group: usize,
    /// Project files to upload into created containers instead of bind-mounting them
    /// (`--copy-source`); `project` has those binds removed already.
    pub copy: Option<&'a super::source_copy::SourceCopy>,
    /// Snapshots of ready services to start from or to take (`None`: `--snapshots off`).
    pub snapshots: Option<super::warm_start::SnapshotUse<'a>>,
}

/// A service's container, started (shared by every dependent waiting for it).
type Started<'a> = Shared<LocalBoxFuture<'a, Result<String, EnvironmentFailure>>>;
/// A dependent's condition on a dependency, holding (shared by every dependent that
/// declares the same one).
type Holds<'a> = Shared<LocalBoxFuture<'a, Result<(), EnvironmentFailure>>>;

/// Create the group's networks and volumes: what every container of the group, the test
/// container among them, needs to exist before it is created.
pub async fn create_resources<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    events: &EventSink,
) -> Result<(), EnvironmentFailure> {
    events.emit(Event::Activity {
        group: request.group,
        activity: Activity::Creating,
    });
    create_networks_and_volumes(backend, request.project).await
}

/// Bring up the test service's dependencies as Compose's dependency graph does (after
/// [`create_resources`]): each service is created and started the moment the conditions it
/// declares on its own dependencies hold, whatever another branch of the graph is still
/// doing (a database and a cache start at once, and a worker on the cache does not wait for
/// the database's migration). The test service's own conditions are not waited for here:
/// see [`wait_test_dependencies`]. On failure, whatever was created stays for the caller's
/// label-based teardown.
pub async fn start_services<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    events: &EventSink,
) -> Result<StartedEnvironment, EnvironmentFailure> {
    let StartRequest { project, group, .. } = *request;
    let order = start_order(project)
        .map_err(|cycle| EnvironmentFailure::of(FailureCause::DependencyCycle(cycle)))?;
    let order: Vec<&String> = order
        .iter()
        .filter(|n| n.as_str() != request.test_service)
        .collect();
    let mut started: HashMap<&str, Started<'_>> = HashMap::new();
    let mut holds: HashMap<(&str, &'static str), Holds<'_>> = HashMap::new();
    for name in &order {
        let service = &project.services[name.as_str()];
        let mut waits = Vec::new();
        for (dep, how) in &service.depends_on {
            let Some(dep_started) = started.get(dep.as_str()).cloned() else {
                continue; // an optional dependency left out of the project
            };
            let key = (dep.as_str(), condition_name(how.condition));
            let holding = holds.entry(key).or_insert_with(|| {
                let dep_service = &project.services[dep.as_str()];
                condition_holds(
                    backend,
                    request,
                    dep_service,
                    dep_started,
                    how.condition,
                    events,
                )
            });
            waits.push((dep.as_str(), how.required, holding.clone()));
        }
        let start = async move {
            if !waits.is_empty() {
                let deps = waits.iter().map(|(d, ..)| d.to_string()).collect();
                events.emit(Event::Activity {
                    group,
                    activity: Activity::WaitingFor(deps),
                });
            }
            for (dep, required, holding) in waits {
                match holding.await {
                    Ok(()) => {}
                    Err(fail) if !required => events.emit(Event::Warning(format!(
                        "[g{group}] optional dependency {dep} of {} failed: {fail}",
                        service.name
                    ))),
                    Err(fail) => return Err(fail),
                }
            }
            start_service(backend, request, service, events).await
        };
        started.insert(name.as_str(), start.boxed_local().shared());
    }
    let containers =
        futures::future::try_join_all(order.iter().map(|n| started[n.as_str()].clone())).await?;
    Ok(StartedEnvironment {
        containers: order.into_iter().cloned().zip(containers).collect(),
        all_started: Some(Instant::now()),
    })
}

/// The wait for what a dependent declared about `dep` (started, healthy, or completed
/// successfully), once `dep` is started.
fn condition_holds<'a, B: Backend>(
    backend: &'a B,
    request: &'a StartRequest<'a>,
    dep: &'a Service,
    dep_started: Started<'a>,
    condition: DependencyCondition,
    events: &'a EventSink,
) -> Holds<'a> {
    async move {
        let container = dep_started.await?;
        if condition == DependencyCondition::ServiceStarted {
            // Compose starts such a dependent as soon as the dependency's container runs;
            // the port probes that only help are for the test service's first test.
            return Ok(());
        }
        let image = request.images.get(&dep.name);
        let waited =
            wait_dependency(backend, dep, &container, condition, image, request.timing).await?;
        if let Some(notice) = waited {
            events.emit(Event::Info(format!("[g{}] {notice}", request.group)));
        }
        Ok(())
    }
    .boxed_local()
    .shared()
}

/// Create a service's container and upload its `--copy-source` files.
pub(super) async fn create_container<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    service: &Service,
    overrides: &ContainerOverrides,
) -> Result<String, EnvironmentFailure> {
    let container = backend
        .create_service(request.project, service, overrides)
        .await
        .map_err(EnvironmentFailure::engine)?;
    if let Some(copy) = request.copy {
        copy.upload(backend, &service.name, &container).await?;
    }
    Ok(container)
}

/// Create one service's container (uploading `--copy-source` files, filling its volumes
/// from its snapshot) and start it; the environment that takes the service's snapshot takes
/// it here, before any dependent starts.
async fn start_service<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    service: &Service,
    events: &EventSink,
) -> Result<String, EnvironmentFailure> {
    events.emit(Event::Activity {
        group: request.group,
        activity: Activity::Starting(service.name.clone()),
    });
    let snapshot = warm_start::action_for(request, service);
    let container = if let Action::Restore(stored) = &snapshot {
        snapshot_layers::create_restored(backend, request, service, stored, events).await?
    } else {
        let overrides = (request.overrides)(service);
        create_container(backend, request, service, &overrides).await?
    };
    let started = Instant::now();
    backend
        .start(&container)
        .await
        .map_err(EnvironmentFailure::engine)?;
    if let Action::Capture { key, paths } = snapshot {
        warm_start::capture(
            backend,
            request,
            service,
            &container,
            (key, paths),
            started,
            events,
        )
        .await;
    }
    Ok(container)
}

/// Wait for the test service's own conditions on its dependencies. `Waits::Declared` waits
/// for what Compose waits for before it creates the test container (`service_healthy`,
/// `service_completed_successfully`); `Waits::Probes` runs the port probes of its
/// `service_started` dependencies, which only help, so the caller runs them while the test
/// container starts and collects, and holds back only the first test.
pub async fn wait_test_dependencies<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    env: &StartedEnvironment,
    waits: Waits,
    events: &EventSink,
) -> Result<(), EnvironmentFailure> {
    match request.project.services.get(request.test_service) {
        Some(test) => wait_dependencies(backend, request, test, env, waits, events).await,
        None => Ok(()),
    }
}

/// Which of a service's dependency conditions to wait for.
#[derive(Clone, Copy)]
pub enum Waits {
    /// `service_healthy` and `service_completed_successfully` only.
    Declared,
    /// The port probes of `service_started` dependencies only.
    Probes,
}

impl Waits {
    fn includes(self, condition: DependencyCondition) -> bool {
        match self {
            Waits::Declared => condition != DependencyCondition::ServiceStarted,
            Waits::Probes => condition == DependencyCondition::ServiceStarted,
        }
    }
}

fn condition_name(condition: DependencyCondition) -> &'static str {
    match condition {
        DependencyCondition::ServiceStarted => "started",
        DependencyCondition::ServiceHealthy => "healthy",
        DependencyCondition::ServiceCompletedSuccessfully => "completed",
    }
}

/// Wait for the conditions `service` declares on its dependencies that `waits` includes.
async fn wait_dependencies<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    service: &Service,
    env: &StartedEnvironment,
    waits: Waits,
    events: &EventSink,
) -> Result<(), EnvironmentFailure> {
    let group = request.group;
    let todo: Vec<(&String, &crate::compose::Dependency, &String)> = service
        .depends_on
        .iter()
        .filter(|(_, d)| waits.includes(d.condition))
        .filter_map(|(dep, d)| env.containers.get(dep).map(|c| (dep, d, c)))
        .collect();
    if todo.is_empty() {
        return Ok(());
    }
    if !matches!(waits, Waits::Probes) {
        events.emit(Event::Activity {
            group,
            activity: Activity::WaitingFor(todo.iter().map(|(dep, ..)| (*dep).clone()).collect()),
        });
    }
    for (dep, dependency, container) in todo {
        let dep_service = &request.project.services[dep];
        let image = request.images.get(dep);
        let waited = wait_dependency(
            backend,
            dep_service,
            container,
            dependency.condition,
            image,
            request.timing,
        )
        .await;
        match waited {
            Ok(None) => {}
            Ok(Some(notice)) => events.emit(Event::Info(format!("[g{group}] {notice}"))),
            Err(fail) if !dependency.required => events.emit(Event::Warning(format!(
                "[g{group}] optional dependency of {} failed: {fail}",
                service.name
            ))),
            Err(fail) => return Err(fail),
        }
    }
    Ok(())
}
