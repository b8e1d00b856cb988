//! `compose-shard plan`: get the test list, read durations, split, print the plan.
//!
//! The test list is `--tests FILE`, or else collected once inside Docker: one isolated copy
//! of the compose project is started (exactly as `run` starts a group), the test command runs
//! with `--collect-only -q` in the test service, and everything is removed again. Durations
//! follow the same rules as `run` (see `durations_store`). With several `--docker-host`s
//! (or `docker-hosts`), the collection runs on the first.

use std::collections::HashMap;
use std::path::Path;

use crate::compose::{self, Isolation};
use crate::config::{PlanConfig, PlanFormat, PlanSettings, ProgressMode};
use crate::durations_store;
use crate::engine::{engine_addresses, DockerEngine, EngineAddress, EngineEnv};
use crate::errors::{Error, ExitCode};
use crate::plan;
use crate::pyproject::Settings;
use crate::run::{
    self, run_with_signals, stamp_labels, Assignment, Display, DisplayMode, EventSink, GroupStatus,
    RunError, RunOutcome, RunSpec, TestSource,
};
use crate::selection::{select, Selection};
use crate::test_list::read_tests;

/// Execute `compose-shard plan`.
pub fn execute(cfg: PlanConfig) -> Result<ExitCode, Error> {
    let cwd = std::env::current_dir().map_err(|source| Error::Io {
        action: "read",
        path: ".".into(),
        source,
    })?;
    let (tests, settings) = match &cfg.tests_file {
        Some(tests_file) => {
            let settings = PlanSettings::resolve(&cfg, &load_settings(&cwd)?, &cwd)?;
            (read_tests(tests_file)?, settings)
        }
        None => {
            let env: HashMap<String, String> = std::env::vars().collect();
            let mut selection =
                select(&cfg.compose, cfg.service.as_deref(), &[], true, &env, &cwd)?;
            let settings =
                PlanSettings::resolve(&cfg, &selection.settings, &selection.project.project_dir)?;
            let test_service = selection.test_service.clone().expect("required");
            let replaced = settings.entrypoint.is_some(); // its words lead the command
            let also = selection.with_services.clone();
            cfg.service_flags
                .apply((replaced, &also), &mut selection.project, &test_service)?;
            let tests = collect_in_docker(&settings, &selection, &test_service)?;
            (tests, settings)
        }
    };
    let durations = durations_store::load(&settings.durations, &settings.durations_from_junit)?;
    let plan = plan::split(&tests, &durations, cfg.groups, settings.split_by)?;
    let output = match cfg.format {
        PlanFormat::Text => plan::render_text(&plan),
        PlanFormat::Json => plan.to_json(),
        PlanFormat::GithubMatrix => plan::render_github_matrix(&plan),
    };
    print!("{output}");
    Ok(ExitCode::Success)
}

fn load_settings(dir: &Path) -> Result<Settings, Error> {
    Settings::load(dir).map_err(|e| Error::Usage(e.to_string()))
}

/// Start one isolated environment, collect there, remove it. Progress goes to stderr, so
/// stdout stays the plan alone (`--format json` can be piped).
fn collect_in_docker(
    settings: &PlanSettings,
    selection: &Selection,
    test_service: &str,
) -> Result<Vec<String>, Error> {
    // The scratch folder (the run's results folder, thrown away) lives as long as the run.
    let (spec, _scratch) = collection_spec(settings, selection, test_service)?;
    // Collection needs one engine: the first configured.
    let engines = &settings.engines;
    let address = engine_addresses(&engines.named, engines.origin, &EngineEnv::from_process())?
        .swap_remove(0);
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        action: "start the async runtime for",
        path: "compose-shard plan".into(),
        source,
    })?;
    runtime.block_on(collect(&spec, &address))
}

/// A run of one group that only collects, with its results in a temporary folder.
fn collection_spec(
    settings: &PlanSettings,
    selection: &Selection,
    test_service: &str,
) -> Result<(RunSpec, tempfile::TempDir), Error> {
    let project = &selection.project;
    let test_service = test_service.to_string();
    let run_id = crate::labels::run_id();
    let mut isolated = compose::isolate(
        project,
        &Isolation {
            run_id: run_id.clone(),
            group: 1,
            groups: 1,
            publish_ports: false,
            test_service: Some(test_service.clone()),
        },
    )?;
    stamp_labels(&mut isolated, &run_id, 1);
    let scratch = tempfile::tempdir().map_err(|source| Error::Io {
        action: "create a temporary directory in",
        path: std::env::temp_dir(),
        source,
    })?;
    let spec = RunSpec {
        command: settings.command.clone(),
        env: settings.env.clone(),
        ready_timeout: settings.ready_timeout,
        collect_only: true,
        files: compose::file_mounts_by_service(project)?,
        ..RunSpec::new(run_id, vec![isolated], test_service, scratch.path())
    };
    Ok((spec, scratch))
}

/// Run the collection, with progress on stderr and signals handled.
async fn collect(spec: &RunSpec, address: &EngineAddress) -> Result<Vec<String>, Error> {
    let engine = DockerEngine::connect_to(address).await?;
    let (events, receiver) = EventSink::channel();
    let display =
        tokio::spawn(Display::new(DisplayMode::resolve(ProgressMode::Auto)).consume(receiver));
    // The plan is made from the collection afterwards; the orchestrator only needs to
    // know there is nothing to run.
    let planner = Box::new(|_: Vec<String>| Ok(Assignment::new()));
    events.emit(run::Event::Info(format!(
        "run {}: collecting the tests in one environment",
        spec.run_id
    )));
    let result = run_with_signals(
        &[&engine],
        &spec.run_id,
        run::run(&engine, spec, TestSource::Collect(planner), &events),
        &events,
    )
    .await;
    drop(events);
    let _ = display.await;
    collected_tests(result.map_err(|_| Error::from(RunError::Interrupted))?)
}

/// The collected node ids, or why there are none.
fn collected_tests(outcome: RunOutcome) -> Result<Vec<String>, Error> {
    if let Some(fatal) = outcome.fatal {
        return Err(fatal.into());
    }
    if let Some(tests) = outcome.collected {
        return Ok(tests);
    }
    for g in &outcome.groups {
        match &g.status {
            GroupStatus::Environment(failure) => {
                return Err(RunError::Environment(Box::new(failure.clone())).into())
            }
            GroupStatus::Collection(failure) => {
                return Err(RunError::Collection(Box::new(failure.clone())).into())
            }
            _ => {}
        }
    }
    Err(
        RunError::Collection(Box::new(run::CollectionFailure::NotCollected {
            exit_code: None,
            tail: "(the environment ended before the tests were collected)".into(),
        }))
        .into(),
    )
}
