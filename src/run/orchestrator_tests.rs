//! Orchestration tests against the scripted fake engine: startup order and dependency
//! conditions, the test command as the test container's main process, every group
//! collecting for itself, failure propagation, exactly-once test assignment, and cleanup on
//! every path.

use std::collections::BTreeMap;
use std::time::Duration;

use indexmap::IndexMap;

use crate::engine::{ContainerOverrides, ResourceKind};

use super::event::EventSink;
use super::fake_backend::{Behaviour, FakeBackend, Step};
use super::orchestrator::{run, run_on, EngineSlot, RunOutcome};
use super::outcome::{FailureCause, GroupStatus};
use super::resource_labels::stamp_labels;
use super::signals::run_interruptible;
use super::spec::{Assignment, RunSpec, TestSource};
use super::summary::exit_code;
use crate::compose::{
    Dependency, DependencyCondition, Healthcheck, IsolationInfo, Network, Project, Service,
    ServiceNetwork, Volume,
};
use crate::errors::ExitCode;
use crate::report::Phase;

const RUN: &str = "t1";

fn dep(condition: DependencyCondition, required: bool) -> Dependency {
    Dependency {
        condition,
        required,
    }
}

fn service(name: &str, project: &str) -> Service {
    Service {
        name: name.into(),
        image: Some(format!("fixture/{name}")),
        container_name: Some(format!("{project}-{name}-1")),
        networks: IndexMap::from([(
            "default".to_string(),
            ServiceNetwork {
                aliases: vec![name.into()],
                ipv4_address: None,
            },
        )]),
        ..Default::default()
    }
}

/// db (healthcheck), redis, migrate (one-shot), app (tests) depending on all three.
fn project(group: usize, groups: usize, redis_required: bool) -> Project {
    let name = format!("shop-{RUN}-g{group}");
    let mut db = service("db", &name);
    db.healthcheck = Some(Healthcheck {
        test: vec!["CMD".into(), "pg_isready".into()],
        ..Default::default()
    });
    db.expose = vec!["5432".into()];
    let mut redis = service("redis", &name);
    redis.expose = vec!["6379".into()];
    let mut migrate = service("migrate", &name);
    migrate.depends_on = IndexMap::from([(
        "db".to_string(),
        dep(DependencyCondition::ServiceHealthy, true),
    )]);
    let mut app = service("app", &name);
    app.depends_on = IndexMap::from([
        (
            "db".to_string(),
            dep(DependencyCondition::ServiceHealthy, true),
        ),
        (
            "redis".to_string(),
            dep(DependencyCondition::ServiceHealthy, redis_required),
        ),
        (
            "migrate".to_string(),
            dep(DependencyCondition::ServiceCompletedSuccessfully, true),
        ),
    ]);
    let mut p = Project {
        name: name.clone(),
        project_dir: "/src".into(),
        files: vec![],
        services: IndexMap::new(),
        networks: IndexMap::from([(
            "default".to_string(),
            Network {
                name: Some(format!("{name}_default")),
                ..Default::default()
            },
        )]),
        volumes: IndexMap::from([(
            "dbdata".to_string(),
            Volume {
                name: Some(format!("{name}_dbdata")),
                ..Default::default()
            },
        )]),
        isolation: Some(IsolationInfo {
            run_id: RUN.into(),
            group,
            groups,
            base_project: "shop".into(),
            test_service: Some("app".into()),
            notes: vec![],
        }),
    };
    // File order deliberately puts the dependent first: start order must not follow it.
    for s in [app, migrate, redis, db] {
        p.services.insert(s.name.clone(), s);
    }
    stamp_labels(&mut p, RUN, group);
    p
}

fn spec(groups: &[usize], total: usize, out: &std::path::Path) -> RunSpec {
    RunSpec {
        ready_timeout: Duration::from_secs(5),
        token: super::protocol::Token::new("fake-token"),
        poll: Duration::from_millis(1),
        // The fake engine reports health itself; the healthchecks compose-shard runs have
        // their own tests below.
        own_healthchecks: false,
        ..RunSpec::new(
            RUN,
            groups.iter().map(|g| project(*g, total, true)).collect(),
            "app",
            out,
        )
    }
}

fn round_robin(groups: usize) -> TestSource {
    TestSource::Collect(Box::new(move |ids: Vec<String>| {
        let mut a: Assignment = (1..=groups).map(|g| (g, Vec::new())).collect();
        for (i, id) in ids.into_iter().enumerate() {
            a.get_mut(&(i % groups + 1)).unwrap().push(id);
        }
        Ok(a)
    }))
}

/// A fake engine whose pytest collects `collected`; tests whose name contains `fail` fail.
fn fake(collected: &[&str]) -> FakeBackend {
    FakeBackend {
        collected: collected.iter().map(|s| s.to_string()).collect(),
        script: collected
            .iter()
            .filter(|id| id.contains("fail"))
            .map(|id| (id.to_string(), Step::Fail))
            .collect(),
        behaviours: [
            ("db".to_string(), Behaviour::HealthyAfter(2)),
            ("redis".to_string(), Behaviour::HealthyAfter(0)),
            ("migrate".to_string(), Behaviour::Exits(0)),
        ]
        .into(),
        ..Default::default()
    }
}

async fn go(backend: &FakeBackend, spec: &RunSpec, source: TestSource) -> RunOutcome {
    let (events, _rx) = EventSink::channel();
    run(backend, spec, source, &events).await
}

fn position(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("no call {call:?} in {calls:#?}"))
}

const IDS: [&str; 5] = [
    "tests/test_a.py::test_one",
    "tests/test_a.py::TestX::test_two",
    "tests/test_b.py::test_p[x y]",
    "tests/test_b.py::test_q",
    "tests/test_c.py::test_r",
];

#[tokio::test]
async fn starts_services_after_their_dependencies_and_runs_every_test_once() {
    let out = tempfile::tempdir().unwrap();
    let backend = fake(&IDS);
    let spec = spec(&[1, 2], 2, out.path());
    let outcome = go(&backend, &spec, round_robin(2)).await;

    let calls = backend.calls.borrow().clone();
    let start_db = position(&calls, "start db@g1");
    let start_migrate = position(&calls, "start migrate@g1");
    // pytest may start early, but no project code runs before its dependencies are ready.
    let start_app = position(&calls, "let go app@g1");
    assert!(
        start_db < start_migrate && start_migrate < start_app,
        "{calls:#?}"
    );
    let db_polls_before_app = calls[..start_app]
        .iter()
        .filter(|c| *c == "poll db")
        .count();
    assert!(
        db_polls_before_app >= 3,
        "app started before db was healthy: {calls:#?}"
    );
    assert!(position(&calls, "poll migrate") < start_app);
    assert_eq!(
        calls
            .iter()
            .filter(|c| *c == "read /tmp/compose-shard-plugin/collected.txt")
            .count(),
        2,
        "every group collects for itself"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| *c == "build app" || *c == "image fixture/app")
            .count(),
        1,
        "the test service's image is prepared once for all groups"
    );
    let mut ran: Vec<String> = outcome.groups.iter().flat_map(|g| g.ran.clone()).collect();
    ran.sort();
    let mut expected: Vec<String> = IDS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(ran, expected);
    assert!(outcome.missing.is_empty() && outcome.duplicated.is_empty());
    assert_eq!(outcome.groups[0].counts.planned, 3);
    assert_eq!(outcome.groups[1].counts.passed, 2);
    assert_eq!(exit_code(&outcome), ExitCode::Success);
    assert!(out.path().join("g1/output.log").exists());
    let test = backend.last_test_overrides.borrow().clone().unwrap();
    assert!(
        test.env.contains(&(
            "PYTHONPATH".into(),
            "/tmp/compose-shard-plugin:/opt/lib".into()
        )),
        "the image's PYTHONPATH is kept after the plugin folder: {:?}",
        test.env
    );
    assert_eq!(
        test.entrypoint, None,
        "the service's entrypoint runs the test command, as with `docker compose run`"
    );
    assert_eq!(test.command.unwrap()[0], "pytest");
    assert!(out.path().join("g2/junit.xml").exists());
    assert_eq!(backend.remaining(), Vec::<String>::new());
}

fn last_position(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .rposition(|c| c == call)
        .unwrap_or_else(|| panic!("no call {call:?} in {calls:#?}"))
}

#[tokio::test]
async fn independent_services_are_created_together_and_the_test_container_while_they_get_ready() {
    let out = tempfile::tempdir().unwrap();
    let backend = fake(&IDS);
    go(&backend, &spec(&[1], 1, out.path()), round_robin(1)).await;
    let calls = backend.calls.borrow().clone();
    // db and redis depend on nothing: both are created before either is started.
    let created = position(&calls, "create db@g1").max(position(&calls, "create redis@g1"));
    let started = position(&calls, "start db@g1").min(position(&calls, "start redis@g1"));
    assert!(created < started, "{calls:#?}");
    // The test container is created (and the plugin uploaded) while db starts, becomes
    // healthy and migrate completes, and its pytest let go only once both hold, as Compose
    // starts it.
    let create_app = position(&calls, "create app@g1");
    assert!(
        create_app < position(&calls, "create migrate@g1"),
        "{calls:#?}"
    );
    let start_app = position(&calls, "let go app@g1");
    assert!(create_app < last_position(&calls, "poll db"), "{calls:#?}");
    assert!(
        create_app < last_position(&calls, "poll migrate"),
        "{calls:#?}"
    );
    assert!(start_app > last_position(&calls, "poll db"), "{calls:#?}");
    assert!(
        start_app > last_position(&calls, "poll migrate"),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn a_test_container_in_a_dependencys_network_namespace_is_created_once_that_runs() {
    let out = tempfile::tempdir().unwrap();
    let backend = FakeBackend {
        start_takes: Duration::from_millis(20),
        ..fake(&IDS)
    };
    let mut spec = spec(&[1], 1, out.path());
    let app = spec.projects[0].services.get_mut("app").unwrap();
    app.network_mode = Some("container:shop-t1-g1-db-1".into());
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(outcome.groups[0].status, GroupStatus::Passed);
    let calls = backend.calls.borrow().clone();
    // The engine refuses a container joining one that does not exist or run yet.
    assert!(
        position(&calls, "create app@g1") > position(&calls, "start db@g1"),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn a_plain_dependency_port_probe_holds_back_the_first_test_not_the_container() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .behaviours
        .insert("redis".into(), Behaviour::PortOpensAfter(6));
    let mut spec = spec(&[1], 1, out.path());
    for project in &mut spec.projects {
        let app = project.services.get_mut("app").unwrap();
        app.depends_on.insert(
            "redis".into(),
            dep(DependencyCondition::ServiceStarted, true),
        );
    }
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(outcome.groups[0].counts.passed, IDS.len());
    let calls = backend.calls.borrow().clone();
    let last_redis_poll = last_position(&calls, "poll redis");
    // Like `docker compose run`, the test container starts once redis has started; the
    // probe of redis's port runs meanwhile and only the first test waits for it.
    assert!(
        position(&calls, "start app@g1") < last_redis_poll,
        "{calls:#?}"
    );
    assert!(
        position(&calls, "read /tmp/compose-shard-plugin/collected.txt") > last_redis_poll,
        "tests were handed over before redis accepted connections: {calls:#?}"
    );
    assert_eq!(backend.remaining(), Vec::<String>::new());
}

#[tokio::test]
async fn a_service_started_dependency_of_another_service_is_not_port_probed() {
    // migrate depends on redis with service_started: under Compose it starts as soon as
    // redis's container runs; the probe of redis's port is for the test service only.
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .behaviours
        .insert("redis".into(), Behaviour::PortOpensAfter(6));
    let mut spec = spec(&[1], 1, out.path());
    for project in &mut spec.projects {
        let migrate = project.services.get_mut("migrate").unwrap();
        migrate.depends_on.insert(
            "redis".into(),
            dep(DependencyCondition::ServiceStarted, true),
        );
        let app = project.services.get_mut("app").unwrap();
        app.depends_on.insert(
            "redis".into(),
            dep(DependencyCondition::ServiceStarted, true),
        );
    }
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(outcome.groups[0].counts.passed, IDS.len());
    let calls = backend.calls.borrow().clone();
    let last_redis_poll = last_position(&calls, "poll redis");
    let migrate = position(&calls, "start migrate@g1");
    let polled_before = calls[..migrate]
        .iter()
        .filter(|c| c.starts_with("poll redis"))
        .count();
    assert!(
        polled_before < 6,
        "migrate waited for redis's port ({polled_before} polls): {calls:#?}"
    );
    // The test service's own probe still holds back the first test.
    assert!(
        position(&calls, "read /tmp/compose-shard-plugin/collected.txt") > last_redis_poll,
        "{calls:#?}"
    );
}

#[tokio::test]
async fn a_failing_test_gives_exit_code_1() {
    let out = tempfile::tempdir().unwrap();
    let backend = fake(&["t.py::test_ok", "t.py::test_fail"]);
    let outcome = go(&backend, &spec(&[1], 1, out.path()), round_robin(1)).await;
    assert_eq!(outcome.groups[0].status, GroupStatus::Failed);
    assert_eq!(outcome.groups[0].counts.failed, 1);
    assert_eq!(exit_code(&outcome), ExitCode::TestsFailed);
    assert_eq!(backend.remaining(), Vec::<String>::new());
}

#[tokio::test]
async fn a_never_healthy_service_fails_only_its_group_with_name_state_and_log() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .behaviours
        .insert("db@2".into(), Behaviour::NeverHealthy);
    let mut spec = spec(&[1, 2], 2, out.path());
    spec.ready_timeout = Duration::from_millis(150);
    let outcome = go(&backend, &spec, round_robin(2)).await;
    let GroupStatus::Environment(reason) = &outcome.groups[1].status else {
        panic!("group 2 should fail: {:?}", outcome.groups[1]);
    };
    let reason = reason.to_string();
    assert!(reason.contains("service db"), "{reason}");
    assert!(
        reason.contains("not healthy within the ready timeout"),
        "{reason}"
    );
    assert!(reason.contains("health: starting"), "{reason}");
    assert!(reason.contains("FATAL something broke"), "{reason}");
    assert_eq!(outcome.groups[0].status, GroupStatus::Passed);
    assert!(
        !backend
            .calls
            .borrow()
            .contains(&"let go app@g2".to_string()),
        "a dependent of a failed service must not run"
    );
    assert_eq!(exit_code(&outcome), ExitCode::Environment);
    assert_eq!(backend.remaining(), Vec::<String>::new());
}

#[tokio::test]
async fn an_unhealthy_or_crashing_service_fails_fast() {
    for behaviour in [Behaviour::Unhealthy, Behaviour::Exits(1)] {
        let out = tempfile::tempdir().unwrap();
        let mut backend = fake(&IDS);
        backend.behaviours.insert("db".into(), behaviour);
        let mut spec = spec(&[1], 1, out.path());
        spec.ready_timeout = Duration::from_secs(30);
        let started = std::time::Instant::now();
        let outcome = go(&backend, &spec, round_robin(1)).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{behaviour:?} waited for the timeout"
        );
        assert!(matches!(
            outcome.groups[0].status,
            GroupStatus::Environment(_)
        ));
        assert_eq!(exit_code(&outcome), ExitCode::Environment);
        assert_eq!(backend.remaining(), Vec::<String>::new());
    }
}

#[tokio::test]
async fn a_failing_optional_dependency_is_only_a_warning() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .behaviours
        .insert("redis".into(), Behaviour::Unhealthy);
    let mut spec = spec(&[1], 1, out.path());
    spec.projects = vec![project(1, 1, false)];
    let (events, mut rx) = EventSink::channel();
    let outcome = run(&backend, &spec, round_robin(1), &events).await;
    assert_eq!(
        outcome.groups[0].status,
        GroupStatus::Passed,
        "{:?}",
        outcome.groups[0]
    );
    let mut warned = false;
    while let Ok(e) = rx.try_recv() {
        if let super::event::Event::Warning(w) = e {
            warned |= w.contains("redis");
        }
    }
    assert!(warned);
}

#[tokio::test]
async fn a_collection_error_is_a_usage_error_and_cleans_up() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend.collect_fails = true;
    let outcome = go(&backend, &spec(&[1, 2], 2, out.path()), round_robin(2)).await;
    assert_eq!(exit_code(&outcome), ExitCode::Usage);
    let GroupStatus::Collection(reason) = &outcome.groups[0].status else {
        panic!("{:?}", outcome.groups[0].status);
    };
    let reason = reason.to_string();
    assert!(
        reason.contains("error(s) during collection") && reason.contains("ImportError"),
        "{reason}"
    );
    assert_eq!(backend.remaining(), Vec::<String>::new());
}

#[tokio::test]
async fn a_missing_image_fails_before_anything_is_created() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend.missing_image = Some("fixture/redis".into());
    let outcome = go(&backend, &spec(&[1], 1, out.path()), round_robin(1)).await;
    assert_eq!(exit_code(&outcome), ExitCode::Environment);
    assert!(outcome.fatal.unwrap().to_string().contains("fixture/redis"));
    assert!(!backend
        .calls
        .borrow()
        .iter()
        .any(|c| c.starts_with("network")));
}

#[tokio::test]
async fn only_the_selected_group_runs_exactly_its_planned_tests() {
    let out = tempfile::tempdir().unwrap();
    let backend = fake(&IDS);
    let assignment: Assignment = BTreeMap::from([
        (1, vec![IDS[0].to_string()]),
        (2, vec![IDS[1].to_string(), IDS[2].to_string()]),
        (3, vec![IDS[3].to_string(), IDS[4].to_string()]),
    ]);
    let outcome = go(
        &backend,
        &spec(&[2], 3, out.path()),
        TestSource::Fixed(assignment.clone()),
    )
    .await;
    assert_eq!(outcome.groups.len(), 1);
    assert_eq!(outcome.groups[0].ran, assignment[&2]);
    assert_eq!(outcome.collected, None, "a given plan is not re-planned");
    assert_eq!(exit_code(&outcome), ExitCode::Success);
}

#[tokio::test]
async fn a_group_over_its_timeout_is_reported_and_removed() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend.tests_hang = true;
    let mut spec = spec(&[1], 1, out.path());
    spec.timeout = Some(Duration::from_millis(50));
    let outcome = go(&backend, &spec, round_robin(1)).await;
    let GroupStatus::TimedOut { limit, stacks } = &outcome.groups[0].status else {
        panic!("{:?}", outcome.groups[0].status);
    };
    assert_eq!(*limit, Duration::from_millis(50));
    // The plugin was asked for every thread's stack before the container was killed.
    assert!(stacks
        .as_deref()
        .is_some_and(|s| s.contains("stuck-worker")));
    assert!(outcome.groups[0]
        .status
        .to_string()
        .starts_with("timed out after 50ms (--timeout)\n--- the test process's threads"));
    assert_eq!(exit_code(&outcome), ExitCode::TestsFailed);
    assert_eq!(backend.remaining(), Vec::<String>::new());
}

async fn interrupted_after(backend: &FakeBackend, spec: &RunSpec, delay: Duration) {
    let (events, _rx) = EventSink::channel();
    let result = run_interruptible(
        &[backend],
        RUN,
        run(backend, spec, round_robin(2), &events),
        tokio::time::sleep(delay),
        std::future::pending(),
        &events,
    )
    .await;
    let interrupted = result.expect_err("the run should have been interrupted");
    assert!(!interrupted.removed.is_empty());
    assert_eq!(backend.remaining(), Vec::<String>::new());
}

#[tokio::test]
async fn an_interrupt_during_startup_removes_everything() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .behaviours
        .insert("db".into(), Behaviour::NeverHealthy);
    let spec = spec(&[1, 2], 2, out.path());
    interrupted_after(&backend, &spec, Duration::from_millis(50)).await;
    assert!(!backend
        .calls
        .borrow()
        .iter()
        .any(|c| c.starts_with("let go app")));
}

#[tokio::test]
async fn an_interrupt_during_tests_removes_everything() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend.tests_hang = true;
    let spec = spec(&[1, 2], 2, out.path());
    interrupted_after(&backend, &spec, Duration::from_millis(200)).await;
    assert!(backend
        .calls
        .borrow()
        .iter()
        .any(|c| c.starts_with("let go app")));
}

#[test]
fn start_order_puts_dependencies_first_and_reports_cycles() {
    let p = project(1, 1, true);
    let order = super::startup::start_order(&p).unwrap();
    let pos = |s: &str| order.iter().position(|o| o == s).unwrap();
    assert!(pos("db") < pos("migrate") && pos("migrate") < pos("app") && pos("redis") < pos("app"));
    let mut cyclic = p.clone();
    cyclic.services["db"]
        .depends_on
        .insert("app".into(), dep(DependencyCondition::ServiceStarted, true));
    let cycle = super::startup::start_order(&cyclic).unwrap_err();
    assert!(
        cycle.contains(&"db".to_string()) && cycle.first() == cycle.last(),
        "{cycle:?}"
    );
}

#[tokio::test]
async fn keep_leaves_the_environments_and_says_how_to_enter_them() {
    let out = tempfile::tempdir().unwrap();
    let backend = fake(&IDS);
    let mut spec = spec(&[1], 1, out.path());
    spec.keep = true;
    let (events, mut rx) = EventSink::channel();
    let outcome = run(&backend, &spec, round_robin(1), &events).await;
    assert_eq!(exit_code(&outcome), ExitCode::Success);
    assert!(backend
        .remaining()
        .contains(&"container shop-t1-g1-app-1".to_string()));
    let mut notice = String::new();
    while let Ok(e) = rx.try_recv() {
        if let super::event::Event::Notice(n) = e {
            notice.push_str(&n);
        }
    }
    assert!(
        notice.contains("docker exec -it shop-t1-g1-app-1 sh")
            && notice.contains("compose-shard clean --run t1"),
        "{notice}"
    );
}

#[tokio::test]
async fn a_second_interrupt_is_acknowledged_and_cleanup_still_completes() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend.tests_hang = true;
    let spec = spec(&[1, 2], 2, out.path());
    let (events, mut rx) = EventSink::channel();
    let result = run_interruptible(
        &[&backend],
        RUN,
        run(&backend, &spec, round_robin(2), &events),
        tokio::time::sleep(Duration::from_millis(200)),
        tokio::time::sleep(Duration::from_millis(10)),
        &events,
    )
    .await;
    assert!(result.is_err());
    assert_eq!(backend.remaining(), Vec::<String>::new());
    let mut forced = false;
    while let Ok(e) = rx.try_recv() {
        forced |= e == super::event::Event::Interrupted { forced: true };
    }
    assert!(forced, "the second interrupt was not acknowledged");
}

/// app depends on a broker whose healthcheck never passes and on a migration job that exits
/// 0, both with plain `depends_on`: Compose treats both as started, so must we.
#[tokio::test]
async fn plain_dependencies_are_started_not_healthy_and_may_exit() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .behaviours
        .insert("redis".into(), Behaviour::NeverHealthy);
    let mut spec = spec(&[1], 1, out.path());
    for dep in spec.projects[0].services["app"].depends_on.values_mut() {
        dep.condition = DependencyCondition::ServiceStarted;
    }
    spec.ready_timeout = Duration::from_secs(30);
    let started = std::time::Instant::now();
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(
        outcome.groups[0].status,
        GroupStatus::Passed,
        "{:?}",
        outcome.groups[0]
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let calls = backend.calls.borrow();
    assert!(
        !calls.iter().any(|c| c == "healthcheck redis"),
        "nobody asked for redis to be healthy: {calls:#?}"
    );
}

/// The engine (API 1.41) runs the first healthcheck one interval after start; running the
/// healthcheck's own test through exec finds the service healthy without sitting it out.
#[tokio::test]
async fn a_waited_for_healthcheck_passes_through_its_own_test_before_the_engine_says_so() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .behaviours
        .insert("db".into(), Behaviour::ProbePasses);
    let mut spec = spec(&[1], 1, out.path());
    spec.ready_timeout = Duration::from_secs(30);
    let started = std::time::Instant::now();
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(outcome.groups[0].status, GroupStatus::Passed);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(backend
        .calls
        .borrow()
        .contains(&"healthcheck db".to_string()));
}

/// With a healthcheck interval of 2 s or less the engine's first probe comes soon and every
/// exec costs the starting service CPU: the healthcheck's own test runs only once the
/// service accepts connections on its ports, and its first success counts.
#[tokio::test]
async fn a_short_interval_healthcheck_runs_its_test_once_the_service_listens() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .behaviours
        .insert("db".into(), Behaviour::ListensAfter(3));
    let mut spec = spec(&[1], 1, out.path());
    spec.ready_timeout = Duration::from_secs(30);
    for project in &mut spec.projects {
        let db = project.services.get_mut("db").unwrap();
        db.healthcheck.as_mut().unwrap().interval = Some(2.0);
    }
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(
        outcome.groups[0].status,
        GroupStatus::Passed,
        "the engine never says healthy: only our own run of the test can"
    );
    let calls = backend.calls.borrow();
    let polls_before = polls_before_first_exec(&calls, "db");
    assert!(
        polls_before > 3,
        "no exec while the port was closed (polls before the first: {polls_before}): {calls:#?}"
    );
}

/// How often `service` was polled before its healthcheck's test first ran through exec.
fn polls_before_first_exec(calls: &[String], service: &str) -> usize {
    let first_exec = calls
        .iter()
        .position(|c| *c == format!("healthcheck {service}"))
        .unwrap_or_else(|| panic!("{service}'s test never ran through exec: {calls:#?}"));
    calls[..first_exec]
        .iter()
        .filter(|c| c.starts_with(&format!("poll {service}")))
        .count()
}

/// More groups starting on the engine than it has CPUs (the fake has 2): the execs would
/// delay the other environments more than they save, so the engine's probes decide.
#[tokio::test]
async fn short_interval_healthchecks_are_left_to_the_engine_when_groups_outnumber_cpus() {
    let out = tempfile::tempdir().unwrap();
    let backend = fake(&IDS);
    let mut spec = spec(&[1, 2, 3], 3, out.path());
    for project in &mut spec.projects {
        let db = project.services.get_mut("db").unwrap();
        db.healthcheck.as_mut().unwrap().interval = Some(2.0);
    }
    let outcome = go(&backend, &spec, round_robin(3)).await;
    assert!(outcome
        .groups
        .iter()
        .all(|g| g.status == GroupStatus::Passed));
    let calls = backend.calls.borrow();
    assert!(!calls.contains(&"healthcheck db".to_string()), "{calls:#?}");
}

/// A short interval and no port to tell when the service listens: the engine's own probes
/// decide, no exec.
#[tokio::test]
async fn a_short_interval_healthcheck_without_ports_is_left_to_the_engine() {
    let out = tempfile::tempdir().unwrap();
    let backend = fake(&IDS);
    let mut spec = spec(&[1], 1, out.path());
    for project in &mut spec.projects {
        let db = project.services.get_mut("db").unwrap();
        db.healthcheck.as_mut().unwrap().interval = Some(1.0);
        db.expose.clear();
    }
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(outcome.groups[0].status, GroupStatus::Passed);
    let calls = backend.calls.borrow();
    assert!(!calls.contains(&"healthcheck db".to_string()), "{calls:#?}");
    assert!(calls.iter().filter(|c| c.starts_with("poll db")).count() > 2);
}

/// compose-shard runs the healthchecks itself: the engine's is off in every container of
/// the run, the service's test runs through exec once its port listens, and its first
/// success is healthy although the engine never says so.
#[tokio::test]
async fn own_healthchecks_turn_the_engines_off_and_pass_on_the_first_success_once_listening() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .behaviours
        .insert("db".into(), Behaviour::ListensAfter(3));
    let mut spec = spec(&[1, 2], 2, out.path());
    spec.own_healthchecks = true;
    spec.ready_timeout = Duration::from_secs(30);
    for project in &mut spec.projects {
        let redis = project.services.get_mut("redis").unwrap();
        redis.healthcheck = Some(Healthcheck {
            test: vec!["CMD".into(), "redis-cli".into(), "ping".into()],
            ..Default::default()
        });
    }
    let outcome = go(&backend, &spec, round_robin(2)).await;
    assert!(
        outcome
            .groups
            .iter()
            .all(|g| g.status == GroupStatus::Passed),
        "{:#?}",
        outcome.groups
    );
    let calls = backend.calls.borrow();
    for group in [1, 2] {
        for service in ["db", "redis", "migrate", "app"] {
            let off = format!("engine healthcheck off {service}@g{group}");
            assert!(calls.contains(&off), "{off}: {calls:#?}");
        }
    }
    let polls_before = polls_before_first_exec(&calls, "db");
    assert!(
        polls_before > 3,
        "no exec while db's port was closed (polls before: {polls_before}): {calls:#?}"
    );
}

/// A test that keeps failing is unhealthy once the engine would have counted `retries`
/// failures an `interval` apart after `start_period`, not sooner; a service waited for
/// without any healthcheck fails at once, naming what is missing.
#[tokio::test]
async fn own_healthchecks_call_a_service_unhealthy_by_the_engines_rule_and_need_a_test() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .behaviours
        .insert("db".into(), Behaviour::NeverHealthy);
    let mut spec = spec(&[1], 1, out.path());
    spec.own_healthchecks = true;
    spec.ready_timeout = Duration::from_secs(30);
    let db = spec.projects[0].services.get_mut("db").unwrap();
    let check = db.healthcheck.as_mut().unwrap();
    check.interval = Some(0.1);
    check.retries = Some(3);
    check.start_period = Some(0.2);
    let started = std::time::Instant::now();
    let outcome = go(&backend, &spec, round_robin(1)).await;
    let took = started.elapsed();
    match &outcome.groups[0].status {
        GroupStatus::Environment(f) => {
            assert!(matches!(f.cause, FailureCause::Unhealthy), "{f:?}");
            assert_eq!(f.service.as_deref(), Some("db"));
        }
        other => panic!("expected db unhealthy, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(500),
        "called unhealthy after {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    let out = tempfile::tempdir().unwrap();
    let backend = fake(&IDS);
    let mut spec = self::spec(&[1], 1, out.path());
    spec.own_healthchecks = true;
    let outcome = go(&backend, &spec, round_robin(1)).await;
    match &outcome.groups[0].status {
        GroupStatus::Environment(f) => {
            assert!(matches!(f.cause, FailureCause::NoHealthcheck), "{f:?}");
            assert_eq!(f.service.as_deref(), Some("redis"));
        }
        other => panic!("expected redis without a healthcheck, got {other:?}"),
    }
}

/// Parametrized ids made at collection time differ between groups: tests are matched by
/// position, each runs exactly once, and the outcome names them.
#[tokio::test]
async fn unstable_parametrized_ids_run_exactly_once_and_are_reported() {
    let out = tempfile::tempdir().unwrap();
    let reference = [
        "t.py::test_u[aa]",
        "t.py::test_u[bb]",
        "t.py::test_u[cc]",
        "t.py::test_v",
    ];
    let mut backend = fake(&reference);
    let mut spec = spec(&[1, 2], 2, out.path());
    spec.ready_timeout = Duration::from_secs(30);
    // Group 2 starts later, so group 1's collection is the plan's reference.
    backend
        .behaviours
        .insert("db@2".into(), Behaviour::HealthyAfter(20));
    backend.collected_by_group.insert(
        2,
        [
            "t.py::test_u[xx]",
            "t.py::test_u[yy]",
            "t.py::test_u[zz]",
            "t.py::test_v",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    );
    let outcome = go(&backend, &spec, round_robin(2)).await;
    assert!(outcome.missing.is_empty(), "{:?}", outcome.missing);
    assert!(outcome.duplicated.is_empty());
    assert_eq!(exit_code(&outcome), ExitCode::Success);
    let ran: usize = outcome.groups.iter().map(|g| g.ran.len()).sum();
    assert_eq!(ran, 4);
    assert_eq!(
        outcome.groups[1].ran,
        vec!["t.py::test_u[yy]".to_string(), "t.py::test_v".to_string()]
    );
    assert_eq!(
        outcome.unstable_ids,
        vec![(
            "t.py::test_u[bb]".to_string(),
            "t.py::test_u[yy]".to_string()
        )]
    );
}

/// A `build:` service whose image already exists (from `docker compose build`) is used as
/// `docker compose run` uses it; `--build` builds from the current sources instead.
#[tokio::test]
async fn an_existing_image_of_a_build_service_is_used_unless_build_is_asked_for() {
    for build in [false, true] {
        let out = tempfile::tempdir().unwrap();
        let backend = fake(&IDS);
        let mut spec = spec(&[1], 1, out.path());
        spec.build = build;
        spec.projects[0].services["app"].build = Some(crate::compose::Build {
            context: "/src".into(),
            ..Default::default()
        });
        let outcome = go(&backend, &spec, round_robin(1)).await;
        assert_eq!(exit_code(&outcome), ExitCode::Success);
        let calls = backend.calls.borrow();
        assert_eq!(
            calls.contains(&"build app".to_string()),
            build,
            "build={build}: {calls:#?}"
        );
    }
}

fn queue(groups: usize) -> TestSource {
    TestSource::Queue {
        durations: crate::plan::Durations::default(),
        split_by: crate::config::SplitBy::Test,
        groups,
    }
}

fn dynamic_spec(groups: &[usize], total: usize, out: &std::path::Path) -> RunSpec {
    RunSpec {
        dist: crate::config::Dist::Dynamic,
        ..spec(groups, total, out)
    }
}

fn many(n: usize, failing: &[usize]) -> Vec<String> {
    (0..n)
        .map(|i| {
            if failing.contains(&i) {
                format!("tests/test_m.py::test_{i:03}_fail")
            } else {
                format!("tests/test_m.py::test_{i:03}")
            }
        })
        .collect()
}

#[tokio::test]
async fn a_group_whose_last_test_ends_while_another_holds_unstarted_work_is_told_later() {
    // 26 tiny tests: the first chunk (a quarter second at least) is 25 of them, the other
    // group gets the last one. When that one ends, pytest asks `next 2 now`: nothing is
    // pending, but g1 still holds units it may give back, so the answer is "later" (not a
    // wait with the test in hand); g2 then asks again after its test, is held until g1
    // cannot give anything back, and ends.
    let out = tempfile::tempdir().unwrap();
    let ids = many(26, &[]);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut backend = fake(&refs);
    backend.test_seconds = Some((0.01, Duration::from_millis(20)));
    let recorded: Vec<String> = ids.iter().map(|id| format!("{id:?}: 0.01")).collect();
    let durations = crate::plan::Durations::parse(&format!("{{{}}}", recorded.join(", "))).unwrap();
    let spec = RunSpec {
        starts_at_once: Some(2),
        ..dynamic_spec(&[1, 2], 2, out.path())
    };
    let source = TestSource::Queue {
        durations,
        split_by: crate::config::SplitBy::Test,
        groups: 2,
    };
    let outcome = go(&backend, &spec, source).await;
    let sizes: Vec<usize> = outcome.groups.iter().map(|g| g.ran.len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 26, "{sizes:?}");
    assert!(
        sizes.contains(&1),
        "one group took the single test left: {sizes:?}"
    );
    let small = if sizes[0] == 1 { 1 } else { 2 };
    assert_eq!(*backend.told_later.borrow(), vec![small]);
    let mut ran: Vec<String> = outcome.groups.iter().flat_map(|g| g.ran.clone()).collect();
    ran.sort();
    assert_eq!(ran, ids);
    assert!(outcome
        .groups
        .iter()
        .all(|g| g.status == GroupStatus::Passed));
}

#[tokio::test]
async fn dynamic_groups_pull_from_one_queue_and_run_every_test_exactly_once() {
    let out = tempfile::tempdir().unwrap();
    let ids = many(40, &[]);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let backend = fake(&refs);
    let spec = dynamic_spec(&[1, 2, 3], 3, out.path());
    let outcome = go(&backend, &spec, queue(3)).await;
    assert!(outcome.dynamic);
    let mut ran: Vec<String> = outcome.groups.iter().flat_map(|g| g.ran.clone()).collect();
    assert_eq!(ran.len(), 40, "{:?}", outcome.groups);
    ran.sort();
    assert_eq!(ran, ids);
    assert!(
        outcome.groups.iter().all(|g| !g.ran.is_empty()),
        "every group took work"
    );
    for g in &outcome.groups {
        assert_eq!(
            g.assigned, g.ran,
            "g{} ran what it was given, in order",
            g.group
        );
    }
    assert!(outcome.missing.is_empty() && outcome.duplicated.is_empty());
    assert!(outcome.not_run.is_empty() && outcome.lost.is_empty());
    assert_eq!(outcome.collected.as_deref(), Some(&ids[..]));
    assert_eq!(exit_code(&outcome), ExitCode::Success);
    let test = backend.last_test_overrides.borrow().clone().unwrap();
    assert!(test
        .env
        .contains(&("COMPOSE_SHARD_DIST".into(), "dynamic".into())));
}

/// A dynamic run of `n` tests in 2 groups on a fake engine that `break_group_2` sets up to
/// end group 2 badly; checks group 2 ended with an environment error.
async fn group_2_ends_badly(
    n: usize,
    break_group_2: impl FnOnce(&mut FakeBackend),
) -> (Vec<String>, RunOutcome) {
    let out = tempfile::tempdir().unwrap();
    let ids = many(n, &[]);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut backend = fake(&refs);
    break_group_2(&mut backend);
    let spec = dynamic_spec(&[1, 2], 2, out.path());
    let outcome = go(&backend, &spec, queue(2)).await;
    let g2 = &outcome.groups[1];
    assert!(
        matches!(g2.status, GroupStatus::Environment(_)),
        "{:?}",
        g2.status
    );
    (ids, outcome)
}

/// Every test that ran in some group or was lost in flight, sorted.
fn ran_or_lost(outcome: &RunOutcome) -> Vec<String> {
    let mut all: Vec<String> = outcome.groups.iter().flat_map(|g| g.ran.clone()).collect();
    all.extend(outcome.lost.iter().map(|l| l.node_id.clone()));
    all.sort();
    all
}

#[tokio::test]
async fn a_dead_dynamic_group_loses_only_its_in_flight_test_and_the_others_finish() {
    // Early, while group 1 still has most of the queue ahead of it.
    let (ids, outcome) = group_2_ends_badly(30, |b| {
        b.dies_after.insert(2, 1);
    })
    .await;
    let g2 = &outcome.groups[1];
    assert_eq!(g2.ran.len(), 1);
    assert_eq!(outcome.lost.len(), 1, "{:?}", outcome.lost);
    assert_eq!(outcome.lost[0].group, 2);
    assert!(
        outcome.lost[0].cause.contains("137"),
        "{}",
        outcome.lost[0].cause
    );
    assert_eq!(
        ran_or_lost(&outcome),
        ids,
        "everything else ran exactly once"
    );
    assert!(outcome.not_run.is_empty());
    assert_eq!(exit_code(&outcome), ExitCode::Environment);
}

#[tokio::test]
async fn a_test_finished_just_before_the_engine_went_away_is_not_also_lost() {
    // Group 2 asks for its next chunk before its last test runs (as the plugin does); the
    // answer fails because the engine is gone, and the `done` of that last test arrives
    // after the failed request.
    let (ids, outcome) = group_2_ends_badly(40, |b| {
        b.engine_gone_after.insert(2, 1);
    })
    .await;
    let g2 = &outcome.groups[1];
    let lost: Vec<&str> = outcome.lost.iter().map(|l| l.node_id.as_str()).collect();
    for finished in &g2.ran {
        assert!(
            !lost.contains(&finished.as_str()),
            "{finished} finished in group 2 and is also reported lost: {lost:?}"
        );
    }
    assert_eq!(
        ran_or_lost(&outcome),
        ids,
        "every test once: ran or lost, never both"
    );
}

#[tokio::test]
async fn maxfail_stops_every_dynamic_group_and_counts_what_did_not_run() {
    let out = tempfile::tempdir().unwrap();
    let ids = many(60, &[2]);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut backend = fake(&refs);
    backend.maxfail = 1;
    let spec = dynamic_spec(&[1, 2], 2, out.path());
    let outcome = go(&backend, &spec, queue(2)).await;
    let reason = outcome.stopped.clone().expect("the run stopped");
    assert!(reason.contains("--maxfail=1"), "{reason}");
    let ran: usize = outcome.groups.iter().map(|g| g.ran.len()).sum();
    assert!(ran < 60, "ran {ran}");
    assert_eq!(ran + outcome.not_run.len(), 60);
    assert!(outcome.missing.is_empty(), "{:?}", outcome.missing);
    assert_eq!(exit_code(&outcome), ExitCode::TestsFailed);
}

#[tokio::test]
async fn a_group_that_collects_other_tests_fails_with_a_collection_error_naming_them() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .collected_by_group
        .insert(2, vec!["tests/test_other.py::test_z".into()]);
    let spec = dynamic_spec(&[1, 2], 2, out.path());
    let outcome = go(&backend, &spec, queue(2)).await;
    let statuses: Vec<&GroupStatus> = outcome.groups.iter().map(|g| &g.status).collect();
    let refused = statuses
        .iter()
        .find_map(|s| match s {
            GroupStatus::Collection(reason) => Some(reason.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{statuses:?}"));
    assert!(refused.contains("tests/test_other.py::test_z"), "{refused}");
    assert_eq!(exit_code(&outcome), ExitCode::Usage);
}

fn with_code_bind(mut spec: RunSpec) -> RunSpec {
    for p in &mut spec.projects {
        let app = p.services.get_mut("app").unwrap();
        app.volumes.push(crate::compose::Mount {
            kind: crate::compose::MountKind::Bind,
            source: Some("/src".into()),
            target: "/code".into(),
            read_only: false,
            options: vec![],
            // Not created on this machine by a unit test.
            create_host_path: false,
        });
    }
    spec
}

#[tokio::test]
async fn groups_on_two_engines_pull_from_one_queue_and_each_engine_is_swept() {
    let out = tempfile::tempdir().unwrap();
    let ids = many(24, &[]);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (a, b) = (fake(&refs), fake(&refs));
    let mut spec = dynamic_spec(&[1, 2, 3], 3, out.path());
    spec.placement = vec![0, 0, 1];
    let slots = [
        EngineSlot {
            backend: &a,
            label: "unix:///a.sock".into(),
            remote: false,
        },
        EngineSlot {
            backend: &b,
            label: "tcp://b:2376".into(),
            remote: false,
        },
    ];
    let (events, _rx) = EventSink::channel();
    let outcome = run_on(&slots, &spec, queue(3), &events).await;
    let mut ran: Vec<String> = outcome.groups.iter().flat_map(|g| g.ran.clone()).collect();
    ran.sort();
    assert_eq!(ran, ids, "every test exactly once across both engines");
    assert_eq!(outcome.groups[2].engine, "tcp://b:2376");
    assert_eq!(outcome.groups[0].engine, "unix:///a.sock");
    assert!(b.calls.borrow().iter().any(|c| c == "create app@g3"));
    assert!(!a.calls.borrow().iter().any(|c| c == "create app@g3"));
    assert!(a.remaining().is_empty() && b.remaining().is_empty());
    assert_eq!(exit_code(&outcome), ExitCode::Success);
}

#[tokio::test]
async fn an_engine_that_fails_to_prepare_loses_only_its_groups_and_the_others_finish() {
    let out = tempfile::tempdir().unwrap();
    let ids = many(12, &[]);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let a = fake(&refs);
    let mut b = fake(&refs);
    b.missing_image = Some("fixture/db".into());
    let mut spec = dynamic_spec(&[1, 2], 2, out.path());
    spec.placement = vec![0, 1];
    let slots = [
        EngineSlot {
            backend: &a,
            label: "a".into(),
            remote: false,
        },
        EngineSlot {
            backend: &b,
            label: "b".into(),
            remote: false,
        },
    ];
    let (events, _rx) = EventSink::channel();
    let outcome = run_on(&slots, &spec, queue(2), &events).await;
    assert!(outcome.fatal.is_none(), "{:?}", outcome.fatal);
    match &outcome.groups[1].status {
        GroupStatus::Environment(reason) => {
            let reason = reason.to_string();
            assert!(reason.starts_with("engine b: "), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let mut ran = outcome.groups[0].ran.clone();
    ran.sort();
    assert_eq!(ran, ids, "group 1 ran the whole queue");
    assert_eq!(exit_code(&outcome), ExitCode::Environment);
}

#[tokio::test]
async fn an_engine_that_cannot_see_the_checkout_gets_the_files_uploaded_instead() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend.paths_hidden = true;
    let spec = with_code_bind(spec(&[1], 1, out.path()));
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(
        exit_code(&outcome),
        ExitCode::Success,
        "{:?}",
        outcome.groups
    );
    let uploads = backend.uploaded_trees.borrow().clone();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert_eq!(uploads[0].1, std::path::PathBuf::from("/src"));
    assert_eq!(uploads[0].2, "/code");
    // The bind itself is gone from the container that was created.
    let calls = backend.calls.borrow().clone();
    assert!(
        !calls.iter().any(|c| c.starts_with("bind app")),
        "{calls:#?}"
    );
    assert!(
        position(&calls, "create app@g1") < position(&calls, "start app@g1"),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn copy_source_never_explains_an_engine_that_cannot_see_the_checkout() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend.paths_hidden = true;
    let mut spec = with_code_bind(spec(&[1], 1, out.path()));
    spec.copy_source = crate::config::CopySource::Never;
    let outcome = go(&backend, &spec, round_robin(1)).await;
    let fatal = outcome
        .fatal
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(fatal.contains("cannot see /src"), "{fatal}");
    assert!(fatal.contains("--copy-source"), "{fatal}");
    assert_eq!(exit_code(&outcome), ExitCode::Usage);
    assert!(backend.uploaded_trees.borrow().is_empty());
    assert!(!backend
        .calls
        .borrow()
        .iter()
        .any(|c| c.starts_with("create app")));
}

#[tokio::test]
async fn a_remote_engine_always_gets_the_files_and_a_visible_one_never_does() {
    let out = tempfile::tempdir().unwrap();
    let backend = fake(&IDS);
    let spec = with_code_bind(spec(&[1], 1, out.path()));
    let slots = [EngineSlot {
        backend: &backend,
        label: "ssh://build1".into(),
        remote: true,
    }];
    let (events, _rx) = EventSink::channel();
    run_on(&slots, &spec, round_robin(1), &events).await;
    assert_eq!(backend.uploaded_trees.borrow().len(), 1);
    assert!(!backend
        .calls
        .borrow()
        .iter()
        .any(|c| c.starts_with("bind app")));
    let local = fake(&IDS);
    go(&local, &spec, round_robin(1)).await;
    assert!(local.uploaded_trees.borrow().is_empty());
    assert!(local
        .calls
        .borrow()
        .iter()
        .any(|c| c == "bind app@g1 /code"));
}

/// Run and collect every event the run emitted.
async fn go_watched(
    backend: &FakeBackend,
    spec: &RunSpec,
    source: TestSource,
) -> (RunOutcome, Vec<super::event::Event>) {
    let (events, mut rx) = EventSink::channel();
    let outcome = run(backend, spec, source, &events).await;
    drop(events);
    let mut seen = Vec::new();
    while let Some(e) = rx.recv().await {
        seen.push(e);
    }
    (outcome, seen)
}

fn warnings(events: &[super::event::Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            super::event::Event::Warning(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_static_test_that_times_out_is_an_error_and_its_group_ends() {
    let out = tempfile::tempdir().unwrap();
    let ids = many(6, &[]);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut backend = fake(&refs);
    backend.script.insert(ids[1].clone(), Step::TimesOut);
    let mut spec = spec(&[1], 1, out.path());
    spec.test_timeout = Some(Duration::from_secs(5));
    let (outcome, events) = go_watched(&backend, &spec, round_robin(1)).await;
    let g = &outcome.groups[0];
    assert_eq!(
        g.status,
        GroupStatus::TestTimedOut {
            test: ids[1].clone(),
            limit: Duration::from_secs(5)
        }
    );
    assert_eq!(g.ran, ids[..2].to_vec(), "the timed-out test is finished");
    assert_eq!((g.counts.errors, g.counts.passed), (1, 1));
    assert_eq!(g.pytest_exit, Some(2));
    // Static: the rest of the group's list did not run, and says so.
    assert_eq!(outcome.not_run, ids[2..].to_vec());
    assert!(outcome.missing.is_empty(), "{:?}", outcome.missing);
    assert_eq!(exit_code(&outcome), ExitCode::TestsFailed);
    assert!(warnings(&events)
        .iter()
        .any(|w| w.contains(&format!("{} ran longer than --test-timeout", ids[1]))));
    assert_eq!(backend.remaining(), Vec::<String>::new());
}

#[tokio::test]
async fn a_dynamic_test_that_times_out_hands_its_groups_other_tests_to_the_others_exactly_once() {
    let out = tempfile::tempdir().unwrap();
    let ids = many(40, &[]);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut backend = fake(&refs);
    // One test times out (the plugin's watchdog ends its group's session).
    backend.script.insert(ids[21].clone(), Step::TimesOut);
    let mut spec = dynamic_spec(&[1, 2], 2, out.path());
    spec.test_timeout = Some(Duration::from_secs(5));
    let outcome = go(&backend, &spec, queue(2)).await;
    let timed_out: Vec<&GroupStatus> = outcome
        .groups
        .iter()
        .map(|g| &g.status)
        .filter(|s| matches!(s, GroupStatus::TestTimedOut { .. }))
        .collect();
    assert!(!timed_out.is_empty(), "{:?}", outcome.groups);
    // Every test ran exactly once (the timed-out ones as errors): a free group waited for
    // the work a timed-out group might give back, and took it.
    let mut all: Vec<String> = outcome.groups.iter().flat_map(|g| g.ran.clone()).collect();
    all.sort();
    assert_eq!(all, ids);
    assert!(outcome.not_run.is_empty(), "{:?}", outcome.not_run);
    assert!(outcome.duplicated.is_empty() && outcome.lost.is_empty());
    assert_eq!(exit_code(&outcome), ExitCode::TestsFailed);
}

#[tokio::test]
async fn threads_left_behind_are_named_and_pytests_outcome_is_kept() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .script
        .insert(IDS[0].to_string(), Step::LeavesThread);
    let spec = spec(&[1], 1, out.path());
    let (outcome, events) = go_watched(&backend, &spec, round_robin(1)).await;
    // Regression: the lingering threads' dump was once shown as a stall warning too.
    assert!(
        !warnings(&events)
            .iter()
            .any(|w| w.contains("no test finished")),
        "{:?}",
        warnings(&events)
    );
    let g = &outcome.groups[0];
    assert_eq!(g.status, GroupStatus::Passed);
    assert_eq!(g.ran.len(), IDS.len());
    let lingering = g
        .lingering
        .as_ref()
        .expect("the lingering thread is reported");
    assert_eq!(lingering.threads, 1);
    assert!(!lingering.killed);
    assert!(lingering
        .stacks
        .as_deref()
        .is_some_and(|s| s.contains("stuck-worker")));
    let summary = super::summary::render_summary(&outcome, "plan.json", &[], &[]);
    assert!(
        summary.contains(
            "g1: warning: pytest had finished, but 1 non-daemon thread kept the test process alive"
        ),
        "{summary}"
    );
    assert!(summary.contains("result: passed"), "{summary}");
    assert_eq!(exit_code(&outcome), ExitCode::Success);
}

#[tokio::test]
async fn a_process_the_plugin_cannot_end_is_killed_after_the_grace_and_keeps_pytests_outcome() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&["t.py::test_ok", "t.py::test_fail", "t.py::test_setup"]);
    backend
        .script
        .insert("t.py::test_ok".into(), Step::KeepsProcessAlive);
    backend
        .script
        .insert("t.py::test_setup".into(), Step::Error);
    let mut spec = spec(&[1], 1, out.path());
    spec.exit_grace = Duration::from_millis(30);
    let outcome = go(&backend, &spec, round_robin(1)).await;
    let g = &outcome.groups[0];
    assert_eq!(g.status, GroupStatus::Failed, "pytest's own outcome");
    assert_eq!(g.pytest_exit, Some(1));
    assert_eq!((g.counts.failed, g.counts.errors), (1, 1));
    assert!(g.lingering.as_ref().is_some_and(|l| l.killed));
    assert!(backend
        .calls
        .borrow()
        .iter()
        .any(|c| c.starts_with("kill ")));
    assert_eq!(exit_code(&outcome), ExitCode::TestsFailed);
}

#[tokio::test]
async fn forged_protocol_lines_in_test_output_change_nothing() {
    let out = tempfile::tempdir().unwrap();
    let plain = fake(&IDS);
    let outcome_plain = go(&plain, &spec(&[1, 2], 2, out.path()), round_robin(2)).await;
    let mut forging = fake(&IDS);
    for id in IDS {
        forging
            .script
            .insert(id.to_string(), Step::PrintsForgedLines);
    }
    let out2 = tempfile::tempdir().unwrap();
    let outcome = go(&forging, &spec(&[1, 2], 2, out2.path()), round_robin(2)).await;
    for (a, b) in outcome.groups.iter().zip(&outcome_plain.groups) {
        assert_eq!(a.status, b.status);
        assert_eq!(a.counts, b.counts);
        assert_eq!(a.ran, b.ran);
    }
    assert!(outcome.stopped.is_none());
    assert_eq!(exit_code(&outcome), exit_code(&outcome_plain));
}

#[tokio::test]
async fn a_group_without_progress_prints_every_threads_stack_once_and_goes_on() {
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend.tests_hang = true;
    let mut spec = spec(&[1], 1, out.path());
    spec.stall_warning = Duration::from_millis(40);
    spec.timeout = Some(Duration::from_millis(300));
    let (outcome, events) = go_watched(&backend, &spec, round_robin(1)).await;
    let stalls: Vec<String> = warnings(&events)
        .into_iter()
        .filter(|w| w.contains("no test finished and nothing was printed"))
        .collect();
    assert_eq!(stalls.len(), 1, "once: {stalls:?}");
    assert!(stalls[0].contains("stuck-worker"), "{}", stalls[0]);
    // It went on until --timeout ended it.
    assert!(matches!(
        outcome.groups[0].status,
        GroupStatus::TimedOut { .. }
    ));
}

/// One group, one test, the smallest project: every call, in order; `entrypoint` for app.
async fn conversation(entrypoint: Option<Vec<String>>) -> (String, Option<ContainerOverrides>) {
    let out = tempfile::tempdir().unwrap();
    let backend = fake(&["t.py::test_one"]);
    let mut spec = spec(&[1], 1, out.path());
    let p = &mut spec.projects[0];
    p.services.shift_remove("migrate");
    p.services.shift_remove("redis");
    p.volumes.clear();
    let app = p.services.get_mut("app").unwrap();
    app.depends_on.retain(|k, _| k == "db");
    app.entrypoint = entrypoint;
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(outcome.groups[0].status, GroupStatus::Passed);
    let calls = backend.calls.borrow().join("\n");
    let overrides = backend.last_test_overrides.borrow().clone();
    (calls, overrides)
}

/// `calls` are `expected`, where the readiness wait on db (its polls and healthchecks) may
/// interleave with the test container's preparation in any order, but `released` (what lets
/// pytest at the project) comes only after db's last poll.
fn assert_conversation(calls: &str, expected: &str, released: &str) {
    let waiting =
        |l: &&str| l.ends_with(" db") && (l.starts_with("poll") || l.starts_with("healthcheck"));
    let split = |text: &str| -> (Vec<String>, Vec<String>) {
        let (wait, rest): (Vec<&str>, Vec<&str>) = text.lines().partition(waiting);
        (
            wait.into_iter().map(str::to_string).collect(),
            rest.into_iter().map(str::to_string).collect(),
        )
    };
    assert_eq!(split(calls), split(expected), "{calls}");
    let lines: Vec<&str> = calls.lines().collect();
    let last_poll = lines.iter().rposition(|l| *l == "poll db");
    let release = lines.iter().position(|l| *l == released);
    assert!(
        last_poll < release,
        "{released} before db was ready:\n{calls}"
    );
}

#[tokio::test]
async fn the_whole_conversation_of_one_static_group_with_the_engine() {
    // The test container is created while db starts; pytest with nothing before it starts
    // at once, and is let go (`go` uploaded into the plugin's folder) once db is healthy.
    let (calls, overrides) = conversation(None).await;
    let expected = "\
image fixture/app
image fixture/db
inspect image fixture/app
inspect image fixture/db
network shop-t1-g1_default
create db@g1
create app@g1
start db@g1
upload /tmp/compose-shard-plugin
upload /tmp/compose-shard
start app@g1
poll db
healthcheck db
poll db
healthcheck db
poll db
let go app@g1
read /tmp/compose-shard-plugin/collected.txt
upload /tmp/compose-shard-plugin
remove com.docker.compose.project=shop-t1-g1
remove dev.compose-shard.run=t1";
    assert_conversation(&calls, expected, "let go app@g1");
    let gate = ("COMPOSE_SHARD_GATE".to_string(), "1".to_string());
    assert!(overrides.unwrap().env.contains(&gate));

    // An entrypoint runs the project's own code first: the container starts only once db is
    // healthy, as `docker compose run` starts it.
    let (calls, overrides) = conversation(Some(vec!["/entrypoint.sh".into()])).await;
    let expected = "\
image fixture/app
image fixture/db
inspect image fixture/app
inspect image fixture/db
network shop-t1-g1_default
create db@g1
create app@g1
start db@g1
upload /tmp/compose-shard-plugin
upload /tmp/compose-shard
poll db
healthcheck db
poll db
healthcheck db
poll db
start app@g1
read /tmp/compose-shard-plugin/collected.txt
upload /tmp/compose-shard-plugin
remove com.docker.compose.project=shop-t1-g1
remove dev.compose-shard.run=t1";
    assert_conversation(&calls, expected, "start app@g1");
    assert!(!overrides
        .unwrap()
        .env
        .iter()
        .any(|(k, _)| k == "COMPOSE_SHARD_GATE"));
}

// Over 80 lines: a run with the three kinds of failure, then its explanation, read best in
// one place.
#[tokio::test]
async fn failures_are_explained_flaky_order_dependent_or_real_with_the_culprit_found() {
    let out = tempfile::tempdir().unwrap();
    // Group 1 runs the even tests, group 2 the odd ones (round robin), in order.
    let ids: Vec<String> = (0..12)
        .map(|i| format!("tests/test_k.py::test_{i:02}"))
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut backend = fake(&refs);
    backend.script.insert(ids[4].clone(), Step::FailsFirstTime);
    // test_08 fails after test_02, which group 1 ran before it.
    backend
        .script
        .insert(ids[8].clone(), Step::FailsAfter(ids[2].clone()));
    backend.script.insert(ids[5].clone(), Step::Fail);
    let spec = spec(&[1, 2], 2, out.path());
    let outcome = go(&backend, &spec, round_robin(2)).await;
    assert_eq!(outcome.groups[0].counts.failed, 2);
    assert_eq!(outcome.groups[1].counts.failed, 1);
    let base = project(1, 2, true);
    let factory = super::spec::ProjectFactory(std::sync::Arc::new(move |k: usize| {
        let mut p = base.clone();
        let name = format!("shop-{RUN}-g{k}");
        p.name = name.clone();
        for s in p.services.values_mut() {
            s.container_name = Some(format!("{name}-{}-1", s.name));
        }
        if let Some(i) = p.isolation.as_mut() {
            i.group = k;
            i.groups = k;
        }
        stamp_labels(&mut p, RUN, k);
        Ok(p)
    }));
    let slot = EngineSlot {
        backend: &backend,
        label: "fake".into(),
        remote: false,
    };
    let (events, _rx) = EventSink::channel();
    let explainer = super::explain::Explainer {
        engines: std::slice::from_ref(&slot),
        spec: &spec,
        factory,
        retries: 2,
        budget: Duration::from_secs(60),
        parallel: 2,
        events: &events,
        rounds: Default::default(),
    };
    let explanation = explainer.explain(&outcome, 3).await;
    use super::explain::FailureClass;
    assert_eq!(
        explanation.classes[&ids[4]],
        FailureClass::Flaky { passed_on: 1 }
    );
    assert_eq!(explanation.classes[&ids[5]], FailureClass::Real);
    let FailureClass::OrderDependent {
        group,
        culprits,
        plan,
        note,
    } = &explanation.classes[&ids[8]]
    else {
        panic!("{:?}", explanation.classes[&ids[8]]);
    };
    assert_eq!(
        (*group, culprits.clone(), note.clone()),
        (1, vec![ids[2].clone()], None)
    );
    let plan = std::fs::read_to_string(plan.as_ref().unwrap()).unwrap();
    assert!(plan.contains(&ids[2]) && plan.contains(&ids[8]), "{plan}");
    // The real failure was retried twice and failed both times; the flaky one passed on
    // its first retry.
    assert_eq!(explanation.retries[&ids[5]].len(), 2);
    assert!(explanation.retries[&ids[5]].iter().all(|a| a.failed()));
    assert_eq!(explanation.retries[&ids[4]].len(), 1);
    assert!(!explanation.retries[&ids[4]][0].failed());
    assert_eq!(
        backend.remaining(),
        Vec::<String>::new(),
        "every fresh environment is removed"
    );
}

#[tokio::test]
async fn a_service_starts_while_an_unrelated_branch_of_the_graph_is_still_getting_ready() {
    // db (slow to be healthy) <- migrate; cache <- worker <- notifier; app needs migrate and
    // notifier. Wave by wave, notifier would wait for migrate (the same wave as worker).
    let out = tempfile::tempdir().unwrap();
    let mut backend = fake(&IDS);
    backend
        .behaviours
        .insert("db".into(), Behaviour::HealthyAfter(30));
    backend
        .behaviours
        .insert("cache".into(), Behaviour::Running);
    let mut spec = spec(&[1], 1, out.path());
    let p = &mut spec.projects[0];
    p.services.shift_remove("redis");
    let name = p.name.clone();
    let mut cache = service("cache", &name);
    cache.labels = p.services["db"].labels.clone();
    let mut worker = service("worker", &name);
    worker.labels = p.services["db"].labels.clone();
    worker.depends_on = IndexMap::from([(
        "cache".to_string(),
        dep(DependencyCondition::ServiceStarted, true),
    )]);
    let mut notifier = service("notifier", &name);
    notifier.labels = p.services["db"].labels.clone();
    notifier.depends_on = IndexMap::from([(
        "worker".to_string(),
        dep(DependencyCondition::ServiceStarted, true),
    )]);
    let app = p.services.get_mut("app").unwrap();
    app.depends_on.shift_remove("redis");
    app.depends_on.insert(
        "notifier".into(),
        dep(DependencyCondition::ServiceStarted, true),
    );
    for s in [cache, worker, notifier] {
        p.services.insert(s.name.clone(), s);
    }
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(outcome.groups[0].status, GroupStatus::Passed);
    let calls = backend.calls.borrow().clone();
    let notifier_started = position(&calls, "start notifier@g1");
    let migrate_started = position(&calls, "start migrate@g1");
    let db_healthy = last_position(&calls, "poll db");
    assert!(
        notifier_started < migrate_started && notifier_started < db_healthy,
        "notifier started only after the other branch: {calls:#?}"
    );
}

/// A factory of fresh projects numbered as asked, like `commands::run`'s.
fn fresh_projects() -> super::spec::ProjectFactory {
    super::spec::ProjectFactory(std::sync::Arc::new(|k: usize| Ok(project(k, k, true))))
}

#[tokio::test]
async fn auto_adds_groups_while_the_work_left_pays_for_them_and_each_test_runs_once() {
    // The tests compute (90 % of a CPU), so no more groups than the 2 CPUs.
    let (ids, backend) = long_suite(Some(0.9));
    let out = tempfile::tempdir().unwrap();
    let mut spec = dynamic_spec(&[1], 1, out.path());
    spec.elastic = Some(elastic(4, None));
    let (outcome, events) = go_watched(&backend, &spec, queue(1)).await;
    assert_eq!(outcome.groups.len(), 2, "{:?}", outcome.grown);
    assert_eq!(outcome.grown.len(), 1, "{:?}", outcome.grown);
    assert!(
        outcome.grown[0].starts_with("auto added group 2: "),
        "{:?}",
        outcome.grown
    );
    assert!(events.iter().any(
        |e| matches!(e, super::event::Event::Notice(n) if n.starts_with("auto added group 2"))
    ));
    let mut ran: Vec<String> = outcome.groups.iter().flat_map(|g| g.ran.clone()).collect();
    ran.sort();
    assert_eq!(ran, ids, "every test once across the groups that joined");
    assert!(outcome.groups.iter().all(|g| !g.ran.is_empty()));
    assert_eq!(exit_code(&outcome), ExitCode::Success);
    assert_eq!(backend.remaining(), Vec::<String>::new());
}

#[tokio::test]
async fn auto_learns_in_the_run_that_the_tests_wait_and_adds_groups_beyond_the_cpus() {
    // The plugin reports 10 % CPU: four groups on 2 CPUs pay, and they join together.
    let (ids, mut backend) = long_suite(Some(0.1));
    let out = tempfile::tempdir().unwrap();
    let mut spec = dynamic_spec(&[1], 1, out.path());
    spec.elastic = Some(elastic(4, None));
    let outcome = go(&backend, &spec, queue(1)).await;
    assert_eq!(outcome.groups.len(), 4, "{:?}", outcome.grown);
    assert!(
        outcome.grown[0].starts_with("auto added groups 2-4: ")
            && outcome.grown[0].contains("(their tests use 10% of a CPU)"),
        "{:?}",
        outcome.grown
    );
    let mut ran: Vec<String> = outcome.groups.iter().flat_map(|g| g.ran.clone()).collect();
    ran.sort();
    assert_eq!(ran, ids, "every test once across the groups that joined");
    assert!(outcome.groups.iter().all(|g| !g.ran.is_empty()));

    // The last run's figure stands in until this run measures its own.
    let out = tempfile::tempdir().unwrap();
    backend.test_cpu_share = None;
    let mut spec = dynamic_spec(&[1], 1, out.path());
    spec.elastic = Some(elastic(4, Some(0.1)));
    let outcome = go(&backend, &spec, queue(1)).await;
    assert_eq!(outcome.groups.len(), 4, "{:?}", outcome.grown);
}

/// 60 tests that each say they took 5 s (and take 25 ms): 300 s of work for one group,
/// the plugin reporting `cpu_share` of it as CPU seconds.
fn long_suite(cpu_share: Option<f64>) -> (Vec<String>, FakeBackend) {
    let ids = many(60, &[]);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut backend = fake(&refs);
    backend.test_seconds = Some((5.0, Duration::from_millis(25)));
    backend.test_cpu_share = cpu_share;
    (ids, backend)
}

fn elastic(max_groups: usize, cpu_fraction: Option<f64>) -> super::spec::Elastic {
    super::spec::Elastic {
        factory: fresh_projects(),
        max_groups,
        cpus: 2,
        cpu_fraction,
        host_cpu: None,
    }
}

/// A host whose CPUs are 95 % busy: each read is 1000 ticks later, 950 of them busy.
fn busy_host() -> Option<crate::machine::CpuSample> {
    static TICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let t = TICKS.fetch_add(1000, std::sync::atomic::Ordering::Relaxed) + 1000;
    Some(crate::machine::CpuSample::new(t / 20 * 19, t))
}

#[tokio::test]
async fn auto_adds_no_group_while_the_hosts_cpus_are_busy() {
    // The tests' own share says they wait (10 %), but the host's CPUs are 95 % busy (the
    // services they wait on use them): no group joins.
    let (_, backend) = long_suite(Some(0.1));
    let out = tempfile::tempdir().unwrap();
    let mut spec = dynamic_spec(&[1], 1, out.path());
    spec.elastic = Some(super::spec::Elastic {
        host_cpu: Some(busy_host),
        ..elastic(4, None)
    });
    let outcome = go(&backend, &spec, queue(1)).await;
    assert_eq!(outcome.groups.len(), 1, "{:?}", outcome.grown);
    assert!(outcome.grown.is_empty());
}

#[tokio::test]
async fn auto_never_adds_a_group_to_a_suite_of_a_few_seconds() {
    let out = tempfile::tempdir().unwrap();
    let ids = many(40, &[]);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut backend = fake(&refs);
    // 40 tests of 10 ms (each really takes 25 ms, so the decision is taken several
    // times) and an environment that takes 300 ms to start: never worth a second one.
    backend.test_seconds = Some((0.01, Duration::from_millis(25)));
    backend.start_takes = Duration::from_millis(100);
    let mut spec = dynamic_spec(&[1], 1, out.path());
    spec.elastic = Some(elastic(4, Some(0.1)));
    let outcome = go(&backend, &spec, queue(1)).await;
    assert_eq!(outcome.groups.len(), 1, "{:?}", outcome.grown);
    assert!(outcome.grown.is_empty());
    assert_eq!(outcome.groups[0].ran.len(), 40);
}

/// The standard project with db keeping its data in the `dbdata` volume, and an engine
/// whose db image has an id (so db can have a snapshot) and `VOLUME /logs`.
fn snapshot_spec(groups: &[usize], out: &std::path::Path, cache: &std::path::Path) -> RunSpec {
    let mut spec = spec(groups, groups.len(), out);
    for project in &mut spec.projects {
        project.services["db"].volumes = vec![crate::compose::Mount {
            kind: crate::compose::MountKind::Volume,
            source: Some("dbdata".into()),
            target: "/var/lib/postgresql/data".into(),
            read_only: false,
            options: vec![],
            create_host_path: false,
        }];
    }
    spec.cache_dir = Some(cache.to_path_buf());
    spec.snapshot_worth = Duration::ZERO;
    spec
}

fn snapshot_fake() -> FakeBackend {
    FakeBackend {
        image_volumes: [("fixture/db".to_string(), vec!["/logs".to_string()])].into(),
        ..fake(&IDS)
    }
}

fn calls_like(backend: &FakeBackend, prefix: &str) -> Vec<String> {
    let calls = backend.calls.borrow();
    calls
        .iter()
        .filter(|c| c.starts_with(prefix))
        .cloned()
        .collect()
}

// Over 80 lines: one snapshot's whole life over three runs (taken, restored by copying,
// restored by layering), read best in one place.
#[tokio::test]
async fn one_group_takes_the_snapshot_before_dependents_start_and_the_next_run_restores_it() {
    let out = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let spec = snapshot_spec(&[1, 2], out.path(), cache.path());
    let first = snapshot_fake();
    let outcome = go(&first, &spec, round_robin(2)).await;
    assert_eq!(exit_code(&outcome), ExitCode::Success);
    let stops = calls_like(&first, "stop db@");
    assert_eq!(stops.len(), 1, "exactly one group takes it: {stops:?}");
    let group = stops[0]
        .trim_start_matches("stop db@")
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(
        stops[0],
        format!("stop db@{group} 10s"),
        "Docker's grace period"
    );
    let calls = first.calls.borrow().clone();
    let copied = position(
        &calls,
        &format!("copy out db@{group} /var/lib/postgresql/data"),
    );
    position(&calls, &format!("copy out db@{group} /logs"));
    let restarted = calls
        .iter()
        .rposition(|c| *c == format!("start db@{group}"))
        .unwrap();
    assert!(
        copied < restarted,
        "started again after the copy: {calls:#?}"
    );
    assert!(
        restarted < position(&calls, &format!("start migrate@{group}")),
        "nothing that depends on db starts before its snapshot is taken: {calls:#?}"
    );
    assert!(calls_like(&first, "copy in").is_empty());

    // The next run starts every group's db from the snapshot, and takes none: copied into
    // each environment when layering is off...
    let out = tempfile::tempdir().unwrap();
    let mut spec = snapshot_spec(&[1, 2], out.path(), cache.path());
    spec.snapshot_layers = false;
    let second = snapshot_fake();
    let outcome = go(&second, &spec, round_robin(2)).await;
    assert_eq!(exit_code(&outcome), ExitCode::Success);
    let mut restored = calls_like(&second, "copy in");
    restored.sort();
    assert_eq!(
        restored,
        [
            "copy in db@g1 /",
            "copy in db@g1 /var/lib/postgresql",
            "copy in db@g2 /",
            "copy in db@g2 /var/lib/postgresql",
        ]
    );
    assert!(calls_like(&second, "stop").is_empty());
    assert!(calls_like(&second, "fill").is_empty());
    let calls = second.calls.borrow().clone();
    assert!(
        position(&calls, "copy in db@g1 /var/lib/postgresql") < position(&calls, "start db@g1"),
        "filled before it starts"
    );
    let g1 = second.volume_data.borrow().values().next().unwrap().clone();
    assert_eq!(
        g1.get("/var/lib/postgresql").map(Vec::as_slice),
        Some(&b"initialised db /var/lib/postgresql/data"[..]),
        "what was copied out is what is copied in"
    );
    // Migrations still run: a snapshot replaces a service's initialisation, not its dependents.
    position(&calls, "start migrate@g1");

    // ... and by default layered over one template per path, filled once for both groups
    // (the copies' restore time cleared, to see the layered restores record theirs).
    let store = super::service_snapshot::SnapshotStore::under(cache.path());
    for listed in store.list() {
        let mut meta = listed.meta.clone().unwrap();
        assert!(meta.restore_seconds.is_some(), "copies record theirs");
        meta.restore_seconds = None;
        let key = listed
            .dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        store.update_meta(&key, &meta).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let spec = snapshot_spec(&[1, 2], out.path(), cache.path());
    let third = snapshot_fake();
    let outcome = go(&third, &spec, round_robin(2)).await;
    assert_eq!(exit_code(&outcome), ExitCode::Success);
    assert!(calls_like(&third, "copy in").is_empty());
    assert!(calls_like(&third, "stop").is_empty());
    let fills = calls_like(&third, "fill compose-shard-snapshot-");
    assert_eq!(fills.len(), 2, "one template per path, once: {fills:?}");
    let mut roots = calls_like(&third, "layer root");
    roots.sort();
    assert_eq!(
        roots,
        [
            "layer root db@g1 /",
            "layer root db@g1 /var/lib/postgresql",
            "layer root db@g2 /",
            "layer root db@g2 /var/lib/postgresql",
        ]
    );
    let layers = calls_like(&third, "layer volume");
    assert_eq!(layers.len(), 4, "{layers:?}");
    let template = fills[0].split(' ').nth(1).unwrap();
    assert!(
        layers.iter().any(|l| l.contains(&format!(
            "lowerdir=/fake/volumes/{template}/_data/data,upperdir=/fake/volumes/"
        )) && l.contains("-upper/_data,workdir=/fake/volumes/")),
        "an overlay over the template's folder: {layers:?}"
    );
    let calls = third.calls.borrow().clone();
    assert!(
        position(&calls, "layer root db@g1 /var/lib/postgresql") < position(&calls, "start db@g1")
    );
    // A layered restore is recorded like a copied one (`clean --dry-run` shows it, and a
    // restore slower than initialising marks the snapshot not worth it).
    let listed = store.list();
    let metas: Vec<_> = listed.iter().filter_map(|l| l.meta.as_ref()).collect();
    assert_eq!(metas.len(), 1, "{listed:?}");
    assert!(metas[0].restore_seconds.is_some(), "{:?}", metas[0]);
    assert!(metas[0].worth);
    // Teardown removes every environment's layers; the templates stay for the next run.
    let volumes: Vec<String> = third
        .resources
        .borrow()
        .keys()
        .filter(|(kind, _)| *kind == ResourceKind::Volume)
        .map(|(_, name)| name.clone())
        .collect();
    assert!(
        volumes
            .iter()
            .all(|v| v.starts_with("compose-shard-snapshot-")),
        "{volumes:?}"
    );
    assert_eq!(
        volumes.len(),
        3,
        "two templates and their mark: {volumes:?}"
    );
}

#[tokio::test]
async fn the_run_that_takes_a_snapshot_lays_it_out_while_its_tests_run_and_the_next_restores_at_once(
) {
    let out = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let spec = snapshot_spec(&[1], out.path(), cache.path());
    let backend = snapshot_fake();
    let (events, mut rx) = EventSink::channel();
    let outcome = run(&backend, &spec, round_robin(1), &events).await;
    assert_eq!(exit_code(&outcome), ExitCode::Success);
    let calls = backend.calls.borrow().clone();
    let fills = calls_like(&backend, "fill compose-shard-snapshot-");
    assert_eq!(fills.len(), 2, "one template per path: {calls:#?}");
    let app = calls
        .iter()
        .position(|c| c.starts_with("start app@g1"))
        .expect("the test container started");
    assert!(
        calls.iter().position(|c| c == &fills[0]).unwrap() > app,
        "laid out beside the tests, not before them: {calls:#?}"
    );
    let mut said = Vec::new();
    while let Ok(event) = rx.try_recv() {
        if let crate::run::Event::Info(text) = event {
            said.push(text);
        }
    }
    assert!(
        said.iter()
            .any(|t| t.starts_with("[g1] db: snapshot laid out on the engine")),
        "{said:?}"
    );
    // The next run on the same engine layers over those templates without filling any.
    backend.calls.borrow_mut().clear();
    let out = tempfile::tempdir().unwrap();
    let spec = snapshot_spec(&[1], out.path(), cache.path());
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(exit_code(&outcome), ExitCode::Success);
    assert!(calls_like(&backend, "fill").is_empty());
    assert!(calls_like(&backend, "stop").is_empty());
    assert_eq!(calls_like(&backend, "layer root db@g1").len(), 2);

    // Without layering nothing is laid out.
    let cache = tempfile::tempdir().unwrap();
    let mut spec = snapshot_spec(&[1], out.path(), cache.path());
    spec.snapshot_layers = false;
    let backend = snapshot_fake();
    go(&backend, &spec, round_robin(1)).await;
    assert_eq!(calls_like(&backend, "stop db@").len(), 1, "taken");
    assert!(calls_like(&backend, "fill").is_empty());
}

#[tokio::test]
async fn an_engine_that_cannot_layer_gets_the_snapshot_copied_in_and_the_run_says_so_once() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let spec = snapshot_spec(&[1, 2], out.path(), cache.path());
    go(&snapshot_fake(), &spec, round_robin(2)).await;
    let out = tempfile::tempdir().unwrap();
    let spec = snapshot_spec(&[1, 2], out.path(), cache.path());
    let backend = FakeBackend {
        layers_fail: true,
        ..snapshot_fake()
    };
    let outcome = go(&backend, &spec, round_robin(2)).await;
    assert_eq!(exit_code(&outcome), ExitCode::Success);
    let mut restored = calls_like(&backend, "copy in");
    restored.sort();
    assert_eq!(
        restored,
        [
            "copy in db@g1 /",
            "copy in db@g1 /var/lib/postgresql",
            "copy in db@g2 /",
            "copy in db@g2 /var/lib/postgresql",
        ],
        "every group copies once layering failed"
    );
    let calls = backend.calls.borrow().clone();
    let failed = calls_like(&backend, "layer root").len();
    assert!(failed >= 1);
    assert_eq!(
        calls_like(&backend, "remove db@").len(),
        failed.min(2),
        "the container with the unmountable layer is replaced: {calls:#?}"
    );
}

#[tokio::test]
async fn refresh_retakes_off_ignores_and_a_changed_definition_gets_its_own_snapshot() {
    let cache = tempfile::tempdir().unwrap();
    let run_with = |mode: crate::config::Snapshots, env: Option<&str>| {
        let out = tempfile::tempdir().unwrap();
        let mut spec = snapshot_spec(&[1], out.path(), cache.path());
        spec.snapshots = mode;
        if let Some(value) = env {
            for p in &mut spec.projects {
                let db = &mut p.services["db"];
                db.environment
                    .insert("POSTGRES_DB".into(), Some(value.into()));
            }
        }
        async move {
            let backend = snapshot_fake();
            let outcome = go(&backend, &spec, round_robin(1)).await;
            assert_eq!(exit_code(&outcome), ExitCode::Success);
            drop(out);
            (
                calls_like(&backend, "stop").len(),
                calls_like(&backend, "layer root").len(),
            )
        }
    };
    use crate::config::Snapshots::{Auto, Off, Refresh};
    assert_eq!(run_with(Auto, None).await, (1, 0), "taken");
    assert_eq!(run_with(Auto, None).await, (0, 2), "restored");
    assert_eq!(run_with(Refresh, None).await, (1, 0), "taken again");
    assert_eq!(run_with(Off, None).await, (0, 0), "neither");
    assert_eq!(
        run_with(Auto, Some("other")).await,
        (1, 0),
        "new definition"
    );
    assert_eq!(
        run_with(Auto, None).await,
        (0, 2),
        "the old one still there"
    );
    let store = super::service_snapshot::SnapshotStore::under(cache.path());
    assert_eq!(store.list().len(), 2);
}

#[tokio::test]
async fn a_service_ready_faster_than_a_copy_is_not_snapshotted_and_later_runs_do_not_try() {
    let cache = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = tempfile::tempdir().unwrap();
        let mut spec = snapshot_spec(&[1], out.path(), cache.path());
        spec.snapshot_worth = Duration::from_secs(3600);
        let backend = snapshot_fake();
        let outcome = go(&backend, &spec, round_robin(1)).await;
        assert_eq!(exit_code(&outcome), ExitCode::Success);
        assert!(calls_like(&backend, "stop").is_empty());
        assert!(calls_like(&backend, "copy").is_empty());
    }
    let store = super::service_snapshot::SnapshotStore::under(cache.path());
    let listed = store.list();
    assert_eq!(listed.len(), 1);
    let meta = listed[0].meta.as_ref().unwrap();
    assert!(!meta.worth);
    assert!(meta.reason.as_ref().unwrap().contains("faster than a copy"));
}

#[tokio::test]
async fn tmpfs_data_puts_db_data_in_memory_where_its_image_has_no_files_and_takes_no_snapshot() {
    let out = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut spec = snapshot_spec(&[1, 2], out.path(), cache.path());
    spec.tmpfs_data = true;
    let backend = FakeBackend {
        image_files: vec![("fixture/db".into(), "/logs".into())],
        ..snapshot_fake()
    };
    let outcome = go(&backend, &spec, round_robin(2)).await;
    assert_eq!(exit_code(&outcome), ExitCode::Success);
    let mut tmpfs = calls_like(&backend, "tmpfs");
    tmpfs.sort();
    // Half of the fake engine's 4 GiB, shared by two groups' one path each.
    assert_eq!(
        tmpfs,
        [
            "tmpfs db@g1 /var/lib/postgresql/data 1024MiB",
            "tmpfs db@g2 /var/lib/postgresql/data 1024MiB",
        ],
        "the image's /logs keeps its volume; nothing of the test service"
    );
    assert!(
        calls_like(&backend, "stop").is_empty(),
        "no snapshot of data in memory"
    );
    assert!(calls_like(&backend, "copy").is_empty());
}

#[tokio::test]
async fn a_full_tmpfs_fails_the_group_with_a_message_that_names_the_flag() {
    let out = tempfile::tempdir().unwrap();
    let mut spec = spec(&[1], 1, out.path());
    spec.tmpfs_data = true;
    spec.projects[0].services["db"].volumes =
        snapshot_spec(&[1], out.path(), out.path()).projects[0].services["db"]
            .volumes
            .clone();
    let mut backend = fake(&["tests/t.py::test_fails_to_write"]);
    backend.logs.insert(
        "db".into(),
        "ERROR:  could not extend file \"base/16384/16385\": No space left on device\n".into(),
    );
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(exit_code(&outcome), ExitCode::Environment);
    let GroupStatus::Environment(failure) = &outcome.groups[0].status else {
        panic!("{:?}", outcome.groups[0].status);
    };
    let said = failure.to_string();
    assert!(
        said.starts_with("service db: its data in memory is full (a tmpfs of"),
        "{said}"
    );
    assert!(said.contains("--tmpfs-data"), "{said}");
    assert!(
        said.contains("No space left on device"),
        "the log tail: {said}"
    );
    assert_eq!(
        outcome.groups[0].counts.failed, 1,
        "the test results are kept"
    );

    // Without --tmpfs-data the same log changes nothing: the test failed, that is all.
    spec.tmpfs_data = false;
    let outcome = go(&backend, &spec, round_robin(1)).await;
    assert_eq!(exit_code(&outcome), ExitCode::TestsFailed);
}

#[tokio::test]
async fn a_service_never_seen_listening_gets_no_snapshot_and_later_runs_do_not_wait_for_one() {
    let cache = tempfile::tempdir().unwrap();
    let mut healthchecks = Vec::new();
    for _ in 0..2 {
        let out = tempfile::tempdir().unwrap();
        let mut spec = snapshot_spec(&[1], out.path(), cache.path());
        spec.ready_timeout = Duration::from_millis(300);
        let mut backend = snapshot_fake();
        // Its healthcheck passes, its port never opens: nothing proves it finished initialising.
        backend
            .behaviours
            .insert("db".into(), Behaviour::PortOpensAfter(usize::MAX));
        let outcome = go(&backend, &spec, round_robin(1)).await;
        assert_eq!(exit_code(&outcome), ExitCode::Success, "the run goes on");
        assert!(calls_like(&backend, "stop").is_empty(), "never stopped");
        healthchecks.push(calls_like(&backend, "healthcheck db").len());
    }
    assert!(
        healthchecks[0] > 2,
        "the first run waited for it: {healthchecks:?}"
    );
    assert!(
        healthchecks[1] <= 2,
        "the second run does not wait for a snapshot again: {healthchecks:?}"
    );
    let listed = super::service_snapshot::SnapshotStore::under(cache.path()).list();
    let meta = listed[0].meta.as_ref().unwrap();
    assert!(!meta.worth);
    assert!(
        meta.reason.as_ref().unwrap().contains("not seen ready"),
        "{meta:?}"
    );
}

/// The start of `phase` of group `g` (seconds into the run).
fn phase_start(outcome: &RunOutcome, g: usize, phase: Phase) -> Option<f64> {
    outcome.groups[g - 1]
        .phases
        .iter()
        .find(|p| p.phase == phase)
        .map(|p| p.start)
}

#[tokio::test]
async fn environments_start_in_turns_each_once_the_one_before_is_ready() {
    let out = tempfile::tempdir().unwrap();
    let ids = many(30, &[]);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut backend = fake(&refs);
    // Tests that take a while, so the groups overlap.
    backend.test_seconds = Some((0.02, Duration::from_millis(20)));
    // pytest collects for a while after the services are ready: the next environment starts
    // meanwhile, not once the tests are handed; starting a container takes a while too.
    backend.collect_takes = Duration::from_millis(150);
    backend.start_takes = Duration::from_millis(40);
    // Started early, the test container waits for its services with pytest loaded: the turn
    // ends once they are ready. Otherwise (an entrypoint runs first) it ends once the engine
    // has started the container.
    for early_start in [true, false] {
        let spec = RunSpec {
            starts_at_once: Some(1),
            early_start,
            ..dynamic_spec(&[1, 2, 3], 3, out.path())
        };
        let outcome = go(&backend, &spec, queue(3)).await;
        assert_eq!(exit_code(&outcome), ExitCode::Success);
        let mut order: Vec<(f64, usize)> = (1..=3)
            .map(|g| (phase_start(&outcome, g, Phase::Environment).unwrap(), g))
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in order.windows(2) {
            let (before, next) = (pair[0].1, pair[1].1);
            let span_of = |phase: Phase| {
                let p = outcome.groups[before - 1]
                    .phases
                    .iter()
                    .find(|p| p.phase == phase);
                p.map(|p| (p.start, p.end)).unwrap()
            };
            let turn_ended = match early_start {
                true => span_of(Phase::Readiness).1,
                false => span_of(Phase::Collection).0,
            };
            assert!(
                pair[1].0 >= turn_ended - 0.005,
                "early {early_start}: g{next}'s environment started at {} before g{before}'s turn ended at {turn_ended}",
                pair[1].0
            );
            let tests = span_of(Phase::Tests);
            assert!(
                pair[1].0 < tests.0,
                "early {early_start}: g{next}'s environment started at {}, not while g{before} collected (tests from {})",
                pair[1].0,
                tests.0
            );
            assert!(
                phase_start(&outcome, next, Phase::Waiting).is_some(),
                "g{next} waited for its turn"
            );
        }
        assert!(outcome.groups.iter().all(|g| !g.ran.is_empty()));
        assert!(phase_start(&outcome, order[0].1, Phase::Waiting).is_none());
        let mut ran: Vec<String> = outcome.groups.iter().flat_map(|g| g.ran.clone()).collect();
        ran.sort();
        assert_eq!(ran, ids);
    }

    // All at once (0): every environment starts before any group has its tests.
    let backend = fake(&refs);
    let spec = RunSpec {
        starts_at_once: Some(0),
        ..dynamic_spec(&[1, 2, 3], 3, out.path())
    };
    let outcome = go(&backend, &spec, queue(3)).await;
    let first_tests = (1..=3)
        .filter_map(|g| phase_start(&outcome, g, Phase::Tests))
        .fold(f64::MAX, f64::min);
    for g in 1..=3 {
        assert!(phase_start(&outcome, g, Phase::Environment).unwrap() < first_tests);
        assert!(phase_start(&outcome, g, Phase::Waiting).is_none());
    }
}

#[tokio::test]
async fn a_group_that_fails_before_its_tests_hands_its_turn_on() {
    let out = tempfile::tempdir().unwrap();
    let ids = many(20, &[]);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut backend = fake(&refs);
    // Group 2 collects something else: it fails before any test is handed to it.
    backend
        .collected_by_group
        .insert(2, vec!["tests/test_other.py::test_x".to_string()]);
    // Tests that take a little time, so that g1 does not empty the queue before g3 is ready.
    backend.test_seconds = Some((0.01, Duration::from_millis(5)));
    let spec = RunSpec {
        starts_at_once: Some(1),
        ..dynamic_spec(&[1, 2, 3], 3, out.path())
    };
    let outcome = go(&backend, &spec, queue(3)).await;
    assert!(outcome.groups[1].ran.is_empty());
    assert!(
        !outcome.groups[2].ran.is_empty(),
        "g3 still got its turn and took work: {:?}",
        outcome.groups[2].status
    );
    let mut ran: Vec<String> = outcome.groups.iter().flat_map(|g| g.ran.clone()).collect();
    ran.sort();
    assert_eq!(ran, ids);
}
