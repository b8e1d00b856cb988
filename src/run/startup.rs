//! Starting one group's environment: networks, volumes, then service containers in
//! `depends_on` order, honouring every condition, then waiting until every service is ready.
//!
//! Services start one after another in dependency order, and a service only waits for its own
//! dependencies' conditions, so independent services (a database and a cache) still start
//! back to back and become ready in parallel.

use std::time::Duration;

use indexmap::IndexMap;
use tokio::time::Instant;

use super::backend::Backend;
use super::event::{Event, EventSink, Phase};
use crate::compose::{DependencyCondition, Project, Service};
use crate::engine::{ContainerOverrides, ContainerStatus, EngineError, Health};

/// Lines of a failed service's log shown to the user.
pub const LOG_TAIL_LINES: usize = 30;

/// Why a group's environment could not be brought up.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentFailure {
    /// The service at fault, if one is.
    pub service: Option<String>,
    /// What happened.
    pub reason: String,
    /// Its state as last seen (`exited with code 1`).
    pub state: Option<String>,
    /// The last lines of its log.
    pub log_tail: Option<String>,
}

impl EnvironmentFailure {
    fn engine(e: EngineError) -> Self {
        EnvironmentFailure {
            service: None,
            reason: crate::errors::render_chain(&e),
            state: None,
            log_tail: None,
        }
    }
}

impl std::fmt::Display for EnvironmentFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(s) = &self.service {
            write!(f, "service {s}: ")?;
        }
        f.write_str(&self.reason)?;
        if let Some(state) = &self.state {
            write!(f, " (state: {state})")?;
        }
        if let Some(tail) = &self.log_tail {
            let tail = tail.trim_end();
            if !tail.is_empty() {
                write!(f, "\n--- last lines of its log ---\n{tail}")?;
            }
        }
        Ok(())
    }
}

/// How often readiness is polled and how long to wait in total.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Poll interval (Compose polls about every 500 ms).
    pub poll: Duration,
    /// When the group's environment must be ready.
    pub deadline: Instant,
}

/// A started environment: service name -> container name.
#[derive(Debug, Clone, Default)]
pub struct StartedEnvironment {
    /// Containers by service, in start order.
    pub containers: IndexMap<String, String>,
    /// When every container had been started and the readiness wait began.
    pub all_started: Option<Instant>,
}

/// Services in an order where every dependency comes first (file order otherwise).
pub fn start_order(project: &Project) -> Result<Vec<String>, String> {
    let mut order: Vec<String> = Vec::new();
    let mut visiting: Vec<String> = Vec::new();
    fn visit(
        project: &Project,
        name: &str,
        order: &mut Vec<String>,
        visiting: &mut Vec<String>,
    ) -> Result<(), String> {
        if order.iter().any(|n| n == name) {
            return Ok(());
        }
        if visiting.iter().any(|n| n == name) {
            visiting.push(name.to_string());
            return Err(format!("dependency cycle: {}", visiting.join(" -> ")));
        }
        let Some(service) = project.services.get(name) else {
            return Ok(());
        };
        visiting.push(name.to_string());
        for dep in service.depends_on.keys() {
            visit(project, dep, order, visiting)?;
        }
        visiting.pop();
        order.push(name.to_string());
        Ok(())
    }
    for name in project.services.keys() {
        visit(project, name, &mut order, &mut visiting)?;
    }
    Ok(order)
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

async fn failure<B: Backend>(
    backend: &B,
    service: &str,
    container: &str,
    reason: String,
    status: Option<&ContainerStatus>,
) -> EnvironmentFailure {
    EnvironmentFailure {
        service: Some(service.to_string()),
        reason,
        state: status.map(ContainerStatus::describe),
        log_tail: backend.logs_tail(container, LOG_TAIL_LINES).await.ok(),
    }
}

/// Whether some service waits for `name` to complete successfully (a one-shot job).
fn is_one_shot(project: &Project, name: &str) -> bool {
    project.services.values().any(|s| {
        s.depends_on
            .get(name)
            .is_some_and(|d| d.condition == DependencyCondition::ServiceCompletedSuccessfully)
    })
}

/// Whether a service is only an optional dependency: something depends on it and every
/// dependent says `required: false`. Its failure is then a warning, as in Compose.
fn is_optional_only(project: &Project, name: &str) -> bool {
    let mut dependents = project
        .services
        .values()
        .filter_map(|s| s.depends_on.get(name))
        .peekable();
    dependents.peek().is_some() && dependents.all(|d| !d.required)
}

/// Wait for a dependency's condition.
async fn wait_condition<B: Backend>(
    backend: &B,
    service: &str,
    container: &str,
    condition: DependencyCondition,
    timing: Timing,
) -> Result<(), EnvironmentFailure> {
    if condition == DependencyCondition::ServiceStarted {
        return Ok(());
    }
    loop {
        let status = backend
            .status(container)
            .await
            .map_err(EnvironmentFailure::engine)?;
        match condition {
            DependencyCondition::ServiceHealthy => match status.health {
                Health::Healthy => return Ok(()),
                Health::None => {
                    let reason =
                        "a dependent waits for it to be healthy, but it has no healthcheck".into();
                    return Err(failure(backend, service, container, reason, Some(&status)).await);
                }
                Health::Unhealthy => {
                    let reason = "it became unhealthy".into();
                    return Err(failure(backend, service, container, reason, Some(&status)).await);
                }
                Health::Starting if status.has_exited() => {
                    let reason = "it exited before becoming healthy".into();
                    return Err(failure(backend, service, container, reason, Some(&status)).await);
                }
                Health::Starting => {}
            },
            DependencyCondition::ServiceCompletedSuccessfully if status.has_exited() => {
                if status.exit_code == Some(0) {
                    return Ok(());
                }
                let reason =
                    "a dependent waits for it to complete successfully, but it failed".into();
                return Err(failure(backend, service, container, reason, Some(&status)).await);
            }
            _ => {}
        }
        if Instant::now() >= timing.deadline {
            let reason = format!(
                "not {} within the ready timeout",
                match condition {
                    DependencyCondition::ServiceHealthy => "healthy",
                    _ => "completed",
                }
            );
            return Err(failure(backend, service, container, reason, Some(&status)).await);
        }
        tokio::time::sleep(timing.poll).await;
    }
}

/// Wait until a started service is ready: healthy if it has a healthcheck, else running and
/// accepting TCP on its declared ports; one-shot jobs are ready once they exit with 0.
async fn wait_ready<B: Backend>(
    backend: &B,
    project: &Project,
    service: &Service,
    container: &str,
    is_test_service: bool,
    timing: Timing,
) -> Result<(), EnvironmentFailure> {
    let ports = if is_test_service {
        Vec::new()
    } else {
        declared_tcp_ports(service)
    };
    loop {
        let status = backend
            .status(container)
            .await
            .map_err(EnvironmentFailure::engine)?;
        if status.has_exited() {
            if status.exit_code == Some(0)
                && !is_test_service
                && is_one_shot(project, &service.name)
            {
                return Ok(());
            }
            let reason = "it exited".into();
            return Err(failure(backend, &service.name, container, reason, Some(&status)).await);
        }
        // The test container runs a sleep instead of its command, so its own healthcheck
        // (often an HTTP probe of the app) would never pass: running is ready.
        let health = if is_test_service {
            Health::None
        } else {
            status.health
        };
        let ready = match health {
            Health::Healthy => true,
            Health::Unhealthy => {
                let reason = "it became unhealthy".into();
                return Err(
                    failure(backend, &service.name, container, reason, Some(&status)).await,
                );
            }
            Health::Starting => false,
            Health::None => {
                let mut all_open = status.running;
                for port in &ports {
                    if !all_open {
                        break;
                    }
                    all_open = backend.port_open(&status, *port).await;
                }
                all_open
            }
        };
        if ready {
            return Ok(());
        }
        if Instant::now() >= timing.deadline {
            let what = if status.health == Health::None && !ports.is_empty() {
                format!("not accepting connections on port(s) {ports:?} within the ready timeout")
            } else {
                "not ready within the ready timeout".to_string()
            };
            return Err(failure(backend, &service.name, container, what, Some(&status)).await);
        }
        tokio::time::sleep(timing.poll).await;
    }
}

/// Bring up one group's environment and wait until it is ready. On failure, whatever was
/// created stays for the caller's label-based teardown.
pub async fn start_environment<B: Backend>(
    backend: &B,
    project: &Project,
    test_service: &str,
    overrides: &dyn Fn(&Service) -> ContainerOverrides,
    timing: Timing,
    group: usize,
    events: &EventSink,
) -> Result<StartedEnvironment, EnvironmentFailure> {
    events.emit(Event::Phase {
        group,
        phase: Phase::Creating,
    });
    for (key, net) in &project.networks {
        if net.external {
            continue;
        }
        let name = net
            .name
            .clone()
            .unwrap_or_else(|| format!("{}_{key}", project.name));
        backend
            .create_network(&name, net)
            .await
            .map_err(EnvironmentFailure::engine)?;
    }
    for (key, vol) in &project.volumes {
        if vol.external {
            continue;
        }
        let name = vol
            .name
            .clone()
            .unwrap_or_else(|| format!("{}_{key}", project.name));
        backend
            .create_volume(&name, vol)
            .await
            .map_err(EnvironmentFailure::engine)?;
    }

    let order = start_order(project).map_err(|reason| EnvironmentFailure {
        service: None,
        reason,
        state: None,
        log_tail: None,
    })?;
    let mut env = StartedEnvironment::default();
    for name in &order {
        let service = &project.services[name];
        for (dep, dependency) in &service.depends_on {
            let Some(container) = env.containers.get(dep) else {
                continue; // an optional dependency that failed to start
            };
            if let Err(fail) =
                wait_condition(backend, dep, container, dependency.condition, timing).await
            {
                if dependency.required {
                    return Err(fail);
                }
                events.emit(Event::Warning(format!(
                    "[g{group}] optional dependency of {name} failed: {fail}"
                )));
            }
        }
        events.emit(Event::Phase {
            group,
            phase: Phase::Starting(name.clone()),
        });
        let container = backend
            .start_service(project, service, &overrides(service))
            .await
            .map_err(EnvironmentFailure::engine)?;
        env.containers.insert(name.clone(), container);
    }

    env.all_started = Some(Instant::now());
    events.emit(Event::Phase {
        group,
        phase: Phase::WaitingFor(order.clone()),
    });
    let waits = env.containers.iter().map(|(name, container)| {
        let service = &project.services[name];
        wait_ready(
            backend,
            project,
            service,
            container,
            name == test_service,
            timing,
        )
    });
    let names: Vec<&String> = env.containers.keys().collect();
    for (name, result) in names
        .into_iter()
        .zip(futures::future::join_all(waits).await)
    {
        match result {
            Ok(()) => {}
            Err(fail) if name != test_service && is_optional_only(project, name) => {
                events.emit(Event::Warning(format!(
                    "[g{group}] optional service {name} is not ready: {fail}"
                )));
            }
            Err(fail) => return Err(fail),
        }
    }
    Ok(env)
}
