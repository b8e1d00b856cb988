//! `compose-shard run`: load and isolate the compose project, connect to Docker, run the
//! orchestrator under signal handling, write the plan and merged results, print the summary.
//!
//! The run's settings are resolved once, by [`RunSettings::resolve`] (flags, then
//! `[tool.compose-shard]`, then the defaults), right after the project is loaded; everything
//! below reads them from there.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::compose::{self, Isolation, Project};
use crate::config::{Dist, GroupsSetting, RunConfig, RunSettings, SplitBy};
use crate::duration::format_duration;
use crate::durations_store;
use crate::engine::{engine_addresses, DockerEngine, EngineAddress, EngineEnv};
use crate::errors::{Error, ExitCode};
use crate::labels::run_id;
use crate::plan::{self, timings::TestingLoad, Plan};
use crate::report::{render_slowest, write_text};
use crate::run::{
    self, exit_code, find_leftovers, render_summary, run_with_signals, stamp_labels, Assignment,
    Display, DisplayMode, EventSink, RunError, RunSpec, TestSource,
};
use crate::selection::{select, Selection};

mod reports;

use reports::{github_output, store_durations, write_reports};

/// Execute `compose-shard run`.
pub fn execute(cfg: RunConfig) -> Result<ExitCode, Error> {
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        action: "start the async runtime for",
        path: "compose-shard run".into(),
        source,
    })?;
    runtime.block_on(run_command(cfg))
}

/// Everything decided before any container exists.
struct Prepared {
    spec: RunSpec,
    /// Taken by the run.
    source: Option<TestSource>,
    /// Durations and split for the plan of a dynamic run, written once it is known.
    dynamic_plan: Option<(plan::Durations, SplitBy, usize)>,
    plan_file: PathBuf,
    reproduce_flags: Vec<String>,
    /// What `--groups auto` chose and why.
    auto_reason: Option<String>,
    /// The engines to run on (`--docker-host`, `docker-hosts`, else the default engine).
    engines: Vec<EngineAddress>,
    /// The run's settings.
    settings: RunSettings,
    /// Fresh isolated copies of the project (retries, replays, probes).
    factory: run::ProjectFactory,
    /// The plan's group count: fresh environments are numbered after it.
    groups: usize,
    /// What the previous run recorded beside the durations file, and the tests the
    /// durations file knows (to tell a test that failed now but passed then).
    previous: Option<(plan::RunTimings, std::collections::HashSet<String>)>,
}

/// How long the searches for the tests that make another fail may take in all (`--retries`).
const BISECT_BUDGET: std::time::Duration = std::time::Duration::from_secs(600);

/// Fresh isolated copies of `project` numbered as the caller says (group `k` of `k`).
fn project_factory(
    settings: &RunSettings,
    project: &Project,
    test_service: &str,
    id: &str,
) -> run::ProjectFactory {
    let (project, test_service, id) = (project.clone(), test_service.to_string(), id.to_string());
    let publish_ports = settings.publish_ports;
    run::ProjectFactory(std::sync::Arc::new(move |k: usize| {
        let mut isolated = compose::isolate(
            &project,
            &Isolation {
                run_id: id.clone(),
                group: k,
                groups: k,
                publish_ports,
                test_service: Some(test_service.clone()),
            },
        )?;
        stamp_labels(&mut isolated, &id, k);
        Ok(isolated)
    }))
}

/// `--until TEST`: the one group's list cut after TEST.
fn cut_at(mut assignment: Assignment, settings: &RunSettings) -> Result<Assignment, Error> {
    let (Some(test), Some(only)) = (&settings.until, &settings.only) else {
        return Ok(assignment);
    };
    let group = only.0[0];
    let list = assignment.entry(group).or_default();
    match list.iter().position(|id| id == test) {
        Some(at) => {
            list.truncate(at + 1);
            Ok(assignment)
        }
        None => Err(Error::Usage(format!(
            "--until {test}: group {group} of the plan does not run that test ({} tests, e.g. {}); name one of its tests, as the failed test's reproduce line does",
            list.len(),
            list.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// The inputs of `--groups auto`: the recorded test time and its longest unit, start-up
/// figures measured by earlier runs (or conservative defaults), this machine's CPUs.
fn auto_inputs(
    durations: &plan::Durations,
    split_by: SplitBy,
    timings: Option<plan::RunTimings>,
) -> plan::AutoInputs {
    let mut units: HashMap<&str, f64> = HashMap::new();
    for (id, seconds) in &durations.0 {
        *units.entry(plan::unit_of(id, split_by)).or_default() += seconds;
    }
    let total: f64 = units.values().sum();
    plan::AutoInputs {
        test_seconds: (!durations.is_empty()).then_some(total),
        longest_unit: units.values().copied().fold(0.0, f64::max),
        environment_seconds: timings
            .as_ref()
            .map_or(plan::auto_groups::DEFAULT_ENVIRONMENT_SECONDS, |t| {
                t.environment_seconds
            }),
        collection_seconds: timings
            .as_ref()
            .map_or(plan::auto_groups::DEFAULT_COLLECTION_SECONDS, |t| {
                t.collection_seconds
            }),
        cpus: crate::machine::cpus(),
        max_groups: crate::machine::memory_group_cap(),
        cpu_fraction: timings.as_ref().and_then(|t| t.cpu_fraction),
    }
}

fn assignment_of(plan: &Plan) -> Assignment {
    plan.groups
        .iter()
        .map(|g| (g.group, g.tests.clone()))
        .collect()
}

/// The flags a rerun of one group needs besides `--plan`, `--only` and the test command.
/// With an entrypoint replaced, the test command holds its words already, so the rerun
/// clears the entrypoint (`--entrypoint ''`) and runs that command as it is.
fn reproduce_flags(cfg: &RunConfig, test_service: &str, entrypoint: bool) -> Vec<String> {
    let mut flags = Vec::new();
    for f in &cfg.compose.files {
        flags.extend(["-f".to_string(), f.display().to_string()]);
    }
    if let Some(p) = &cfg.compose.project_name {
        flags.extend(["-p".to_string(), p.clone()]);
    }
    for p in &cfg.compose.profiles {
        flags.extend(["--profile".to_string(), p.clone()]);
    }
    if let Some(d) = &cfg.compose.project_directory {
        flags.extend(["--project-directory".to_string(), d.display().to_string()]);
    }
    flags.extend(["--service".to_string(), test_service.to_string()]);
    for s in &cfg.with_services {
        flags.extend(["--with-service".to_string(), s.clone()]);
    }
    flags.extend(cfg.service_flags.repeated(entrypoint));
    for (k, v) in &cfg.env {
        flags.extend(["-e".to_string(), format!("{k}={v}")]);
    }
    // What changes how a group's tests run, as given on the command line (pyproject.toml
    // applies to the rerun anyway). `--until` is the rerun's own business, and `--retries`
    // would run a reproduced failure again instead of showing it.
    let durations = [
        ("--exit-grace", cfg.exit_grace),
        ("--test-timeout", cfg.test_timeout),
    ];
    for (flag, value) in durations {
        if let Some(d) = value {
            flags.extend([flag.to_string(), format_duration(d)]);
        }
    }
    if let Some(s) = cfg.snapshots {
        flags.extend(["--snapshots".to_string(), s.name().to_string()]);
    }
    if cfg.tmpfs_data {
        flags.push("--tmpfs-data".to_string());
    }
    flags
}

/// Write what each group of a dynamic run actually ran, in order (its finished tests, then
/// the tests it lost in flight), as a plan `--plan FILE --only K` reruns.
fn write_dynamic_plan(
    path: &Path,
    outcome: &run::RunOutcome,
    (durations, split_by, groups): &(plan::Durations, SplitBy, usize),
) -> Result<(), Error> {
    let ran: Vec<(usize, Vec<String>)> = outcome
        .groups
        .iter()
        .map(|g| {
            let mut tests = g.ran.clone();
            tests.extend(
                outcome
                    .lost
                    .iter()
                    .filter(|l| l.group == g.group)
                    .map(|l| l.node_id.clone()),
            );
            (g.group, tests)
        })
        .collect();
    // Groups that joined during the run (`--groups auto`) are groups of the plan too.
    let groups = outcome.last_group(*groups);
    let plan = plan::plan_of_run(&ran, groups, durations, *split_by);
    Ok(write_text(path, &plan.to_json())?)
}

/// `--plan FILE`, read and checked.
fn read_fixed_plan(settings: &RunSettings) -> Result<Option<Plan>, Error> {
    let Some(path) = &settings.plan_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(io_error("read", path))?;
    Plan::from_json(&text).map(Some).map_err(|e| match e {
        plan::PlanError::PlanFormat { .. } => {
            Error::Usage(format!("--plan {}: {e}", path.display()))
        }
        other => Error::Plan(other),
    })
}

/// The group count: the plan's, `--groups N`, or what `--groups auto` chose (and why).
fn group_count(
    settings: &RunSettings,
    fixed_plan: Option<&Plan>,
    durations: &plan::Durations,
) -> Result<(usize, Option<String>), Error> {
    let (groups, reason) = match (fixed_plan, settings.groups) {
        (Some(plan), _) => (plan.groups.len(), None),
        (None, GroupsSetting::Count(n)) => (n, None),
        (None, GroupsSetting::Auto) => {
            let split_by = settings.split_by;
            let choice = plan::choose_groups(&auto_inputs(
                durations,
                split_by,
                previous_timings(settings),
            ));
            (choice.groups, Some(choice.reason))
        }
    };
    if groups == 0 {
        return Err(Error::Plan(plan::PlanError::NoGroups));
    }
    Ok((groups, reason))
}

/// Whether `--groups auto` may add groups while the run goes on: a dynamic run of the whole
/// suite on one engine (not a saved plan, a test list, `--only`, a CI's copy, `--dist
/// static`).
fn grows(settings: &RunSettings, fixed_plan: bool) -> bool {
    settings.groups == GroupsSetting::Auto
        && !fixed_plan
        && settings.tests_file.is_none()
        && settings.only.is_none()
        && settings.ci_split.is_none()
        && settings.dist_flag != Some(Dist::Static)
        && settings.engines.named.len() <= 1
}

/// How groups get their tests, and whether `--groups auto` may add groups (they pull from
/// the queue, so a growing run is dynamic).
fn distribution(
    settings: &RunSettings,
    fixed_plan: bool,
    groups: usize,
) -> Result<(Dist, bool), Error> {
    if grows(settings, fixed_plan) {
        return Ok((Dist::Dynamic, true));
    }
    Ok((settings.dist(groups)?, false))
}

/// `--groups auto` growing: up to [`auto_ceiling`] groups, weighing the tests' CPU share as
/// the last run measured it until this run measures its own.
fn elastic(settings: &RunSettings, factory: &run::ProjectFactory) -> run::Elastic {
    run::Elastic {
        factory: factory.clone(),
        max_groups: auto_ceiling(),
        cpus: crate::machine::cpus(),
        cpu_fraction: previous_timings(settings).and_then(|t| t.cpu_fraction),
        // The engine runs here (auto's CPUs are this machine's too).
        host_cpu: Some(crate::machine::cpu_sample),
    }
}

/// The most groups `--groups auto` goes to: four times the CPUs (more pay only for tests
/// that wait, which the run weighs as it measures them), capped by memory.
fn auto_ceiling() -> usize {
    (crate::machine::cpus().max(1) * 4)
        .min(crate::machine::memory_group_cap().max(1))
        .min(64)
}

/// What the previous run recorded, and the tests whose durations it stored.
fn previous_run(
    settings: &RunSettings,
) -> Option<(plan::RunTimings, std::collections::HashSet<String>)> {
    previous_timings(settings).map(|t| {
        let known = durations_store::load(&settings.durations, &[])
            .map(|d| d.0.into_keys().collect())
            .unwrap_or_default();
        (t, known)
    })
}

/// What the previous run recorded beside the durations file (`--store-durations`), else
/// beside the remembered durations.
fn previous_timings(settings: &RunSettings) -> Option<plan::RunTimings> {
    [Some(&settings.durations.path), settings.remembered.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|durations| plan::RunTimings::read(&durations.parent()?.join(plan::TIMINGS_FILE)))
}

/// Where this run remembers its durations (unless `--store-durations` names a file), and,
/// when neither `--durations` nor a file at the default place gives any, read the ones the
/// last run remembered. Not when the run is one part of a split across machines (`--only`,
/// a CI's parallel copies): every part must plan from the same durations, and another
/// machine's cache holds others.
fn remember_durations(settings: &mut RunSettings, project_dir: &Path, test_service: &str) {
    let env = |name: &str| std::env::var(name).ok();
    settings.remembered = durations_store::remembered(project_dir, test_service, &env);
    let split = settings.only.is_some() || settings.ci_split.is_some();
    if split || settings.durations.explicit || settings.durations.path.exists() {
        return;
    }
    if let Some(file) = settings.remembered.as_ref().filter(|f| f.exists()) {
        settings.durations.path = file.clone();
    }
}

/// A CI's parallel copies must be as many as the groups (a saved plan has its own count):
/// otherwise some groups would never run, or copies would have nothing to do.
fn check_ci_count(settings: &RunSettings, groups: usize) -> Result<(), Error> {
    match &settings.ci_split {
        Some(split) if split.groups != groups => Err(Error::Usage(format!(
            "{}, but the plan has {groups} groups: run {groups} parallel copies of the job, or choose the group with --only K",
            split.describe()
        ))),
        _ => Ok(()),
    }
}

/// The groups to run here: `--only`, else all.
fn selected_groups(settings: &RunSettings, groups: usize) -> Result<Vec<usize>, Error> {
    match &settings.only {
        Some(sel) => {
            sel.validate(groups).map_err(Error::Usage)?;
            Ok(sel.0.clone())
        }
        None => Ok((1..=groups).collect()),
    }
}

/// One isolated copy of the project per selected group.
fn isolate_groups(
    settings: &RunSettings,
    project: &Project,
    test_service: &str,
    id: &str,
    selected: &[usize],
    groups: usize,
) -> Result<Vec<Project>, Error> {
    selected
        .iter()
        .map(|group| {
            let mut isolated = compose::isolate(
                project,
                &Isolation {
                    run_id: id.to_string(),
                    group: *group,
                    groups,
                    publish_ports: settings.publish_ports,
                    test_service: Some(test_service.to_string()),
                },
            )?;
            stamp_labels(&mut isolated, id, *group);
            Ok(isolated)
        })
        .collect()
}

/// Where the tests come from: a given plan, a given list planned right away, the work
/// queue, or a static plan made from the first collection (saved to `plan_file`).
fn test_source(
    settings: &RunSettings,
    fixed_plan: Option<Plan>,
    durations: plan::Durations,
    (groups, dist): (usize, Dist),
    plan_file: &Path,
) -> Result<TestSource, Error> {
    let split_by = settings.split_by;
    if let Some(plan) = fixed_plan {
        if settings.plan_file.as_deref() != Some(plan_file) {
            write_text(plan_file, &plan.to_json())?;
        }
        return Ok(TestSource::Fixed(cut_at(assignment_of(&plan), settings)?));
    }
    if let Some(path) = &settings.tests_file {
        let tests = crate::test_list::read_tests(path)?;
        let plan = plan::split(&tests, &durations, groups, split_by)?;
        write_text(plan_file, &plan.to_json())?;
        return Ok(TestSource::Fixed(assignment_of(&plan)));
    }
    if dist == Dist::Dynamic {
        return Ok(TestSource::Queue {
            durations,
            split_by,
            groups,
        });
    }
    let plan_path = plan_file.to_path_buf();
    let planner = move |collected: Vec<String>| -> Result<Assignment, Error> {
        let plan = plan::split(&collected, &durations, groups, split_by)?;
        write_text(&plan_path, &plan.to_json())?;
        Ok(assignment_of(&plan))
    };
    Ok(TestSource::Collect(Box::new(planner)))
}

/// The project as `docker compose run SERVICE` would start it, and its settings.
fn select_for_run(cfg: &RunConfig) -> Result<Selection, Error> {
    let cwd = std::env::current_dir().map_err(io_error("read", Path::new(".")))?;
    let env: HashMap<String, String> = std::env::vars().collect();
    select(
        &cfg.compose,
        cfg.service.as_deref(),
        &cfg.with_services,
        true,
        &env,
        &cwd,
    )
}

/// The project as the run starts it (the test service changed by `docker compose run`'s
/// own flags), its test service and the run's settings, their warnings printed.
fn select_and_resolve(cfg: &RunConfig) -> Result<(compose::Project, String, RunSettings), Error> {
    let Selection {
        mut project,
        test_service,
        settings,
        with_services,
    } = select_for_run(cfg)?;
    let test_service = test_service.expect("a test service is required");
    let env = |name: &str| std::env::var(name).ok();
    let mut settings = RunSettings::resolve(cfg, &settings, &project.project_dir, &env)?;
    let replaced = settings.entrypoint.is_some(); // its words lead the test command
    let flags = &cfg.service_flags;
    flags.apply((replaced, &with_services), &mut project, &test_service)?;
    remember_durations(&mut settings, &project.project_dir, &test_service);
    for warning in &settings.warnings {
        eprintln!("warning: {warning}");
    }
    Ok((project, test_service, settings))
}

fn prepare(cfg: &RunConfig) -> Result<Prepared, Error> {
    let (project, test_service, settings) = select_and_resolve(cfg)?;
    let fixed_plan = read_fixed_plan(&settings)?;
    // Durations steer both the plan and `--groups auto`; a given plan needs neither.
    let durations = match fixed_plan {
        Some(_) => plan::Durations::default(),
        None => durations_store::load(&settings.durations, &settings.durations_from_junit)?,
    };
    let (groups, auto_reason) = group_count(&settings, fixed_plan.as_ref(), &durations)?;
    check_ci_count(&settings, groups)?;
    let selected = selected_groups(&settings, groups)?;
    let id = run_id();
    let projects = isolate_groups(&settings, &project, &test_service, &id, &selected, groups)?;
    let (dist, growing) = distribution(&settings, fixed_plan.is_some(), groups)?;
    let engines = engine_addresses(
        &settings.engines.named,
        settings.engines.origin,
        &EngineEnv::from_process(),
    )?;
    let files = compose::file_mounts_by_service(&project)?;
    let out_dir = &settings.out_dir;
    std::fs::create_dir_all(out_dir).map_err(io_error("create directory", out_dir))?;
    let plan_file = crate::report::ResultsLayout::new(out_dir).plan();
    let dynamic_plan =
        (fixed_plan.is_none() && settings.tests_file.is_none() && dist == Dist::Dynamic)
            .then(|| (durations.clone(), settings.split_by, groups));
    let source = test_source(&settings, fixed_plan, durations, (groups, dist), &plan_file)?;
    let factory = project_factory(&settings, &project, &test_service, &id);
    let elastic = growing.then(|| elastic(&settings, &factory));
    let previous = previous_run(&settings);
    Ok(Prepared {
        spec: RunSpec {
            command: settings.command.clone(),
            env: settings.env.clone(),
            ready_timeout: settings.ready_timeout,
            timeout: settings.timeout,
            keep: settings.keep,
            no_build: settings.no_build,
            build: settings.build,
            dist,
            copy_source: settings.copy_source,
            files,
            exit_grace: settings.exit_grace,
            test_timeout: settings.test_timeout,
            retries: settings.retries,
            until: settings.until.clone(),
            snapshots: settings.snapshots,
            cache_dir: durations_store::cache_root(&|name| std::env::var(name).ok()),
            tmpfs_data: settings.tmpfs_data,
            tmpfs_size: settings.tmpfs_size,
            snapshot_layers: settings.snapshot_layers,
            host_folders: settings.host_folders,
            own_healthchecks: settings.own_healthchecks,
            starts_at_once: settings.starts_at_once,
            tests_cpu_fraction: previous_timings(&settings).and_then(|t| t.cpu_fraction),
            elastic,
            ..RunSpec::new(id, projects, test_service.clone(), out_dir)
        },
        engines,
        source: Some(source),
        dynamic_plan,
        plan_file,
        reproduce_flags: reproduce_flags(cfg, &test_service, settings.entrypoint.is_some()),
        auto_reason,
        settings,
        factory,
        groups,
        previous,
    })
}

/// Connect to every engine; one that does not answer is left out with a warning as long as
/// another does (its groups go to the others). Returns the engines and their capacities.
async fn connect_engines(
    addresses: &[EngineAddress],
) -> Result<(Vec<DockerEngine>, Vec<usize>), Error> {
    let connected = futures::future::join_all(addresses.iter().map(DockerEngine::connect_to)).await;
    let mut engines = Vec::new();
    let mut errors = Vec::new();
    for result in connected {
        match result {
            Ok(engine) => engines.push(engine),
            Err(e) => errors.push(e),
        }
    }
    if engines.is_empty() {
        return Err(errors.remove(0).into());
    }
    for e in &errors {
        eprintln!(
            "warning: {}; its groups run on the other engines",
            crate::errors::render_chain(e)
        );
    }
    let mut capacities = Vec::new();
    for engine in &engines {
        let capacity = match run::Backend::engine_info(engine).await {
            Ok(info) => plan::capacity(info.cpus, info.memory_bytes),
            Err(_) => 1,
        };
        capacities.push(capacity);
    }
    Ok((engines, capacities))
}

/// Warn about resources earlier, killed runs left on `engine`.
async fn warn_about_leftovers(engine: &DockerEngine, events: &EventSink) {
    let Ok(leftovers) = find_leftovers(engine, false).await else {
        return;
    };
    if !leftovers.is_empty() {
        let count: usize = leftovers.values().map(Vec::len).sum();
        let runs: Vec<&str> = leftovers.keys().map(String::as_str).collect();
        events.emit(run::Event::Warning(format!(
            "{count} resources left by earlier runs that were killed (run ids: {}); remove them with `compose-shard clean`",
            runs.join(", ")
        )));
    }
}

/// The engines as the orchestrator sees them.
fn slots(engines: &[DockerEngine]) -> Vec<run::EngineSlot<'_, DockerEngine>> {
    engines
        .iter()
        .map(|e| run::EngineSlot {
            backend: e,
            label: e.endpoint().to_string(),
            remote: e.address().is_remote(),
        })
        .collect()
}

/// The end of a run: the plan of what ran, merged results, GitHub output, durations, the
/// summary on stdout; `cpus`: the first engine's.
fn finish(
    prepared: &Prepared,
    outcome: &run::RunOutcome,
    (cpus, load): (usize, Option<TestingLoad>),
) {
    let spec = &prepared.spec;
    if let Some(dynamic) = &prepared.dynamic_plan {
        if outcome.groups.iter().any(|g| g.counts.planned > 0) {
            if let Err(e) = write_dynamic_plan(&prepared.plan_file, outcome, dynamic) {
                eprintln!(
                    "warning: writing the plan of what ran: {}",
                    crate::errors::render_chain(&e)
                );
            }
        }
    }
    let merged = write_reports(spec, outcome);
    let plan_file = prepared.plan_file.display().to_string();
    let failures = run::failure_rows(
        outcome,
        &plan_file,
        &prepared.reproduce_flags,
        &spec.command,
    );
    if let Some(merged) = &merged {
        github_output(spec, outcome, merged, &failures);
        if let Some(path) = &prepared.settings.store_durations {
            if let Err(e) = store_durations(path, outcome, merged, load, &spec.command) {
                eprintln!(
                    "warning: --store-durations: {}",
                    crate::errors::render_chain(&e)
                );
            }
        } else if let Some(path) = &prepared.settings.remembered {
            let stored = path
                .parent()
                .map_or(Ok(()), |dir| {
                    std::fs::create_dir_all(dir).map_err(io_error("create directory", dir))
                })
                .and_then(|()| store_durations(path, outcome, merged, load, &spec.command));
            if let Err(e) = stored {
                eprintln!(
                    "warning: remembering the durations for the next run (set {}= to stop): {}",
                    durations_store::CACHE_DIR_ENV,
                    crate::errors::render_chain(&e)
                );
            }
        }
    }
    print!(
        "{}",
        render_summary(
            outcome,
            &prepared.plan_file.display().to_string(),
            &prepared.reproduce_flags,
            &spec.command,
        )
    );
    if let Some(merged) = merged.as_ref().filter(|m| !m.junit.durations.is_empty()) {
        print!("{}", render_slowest(&merged.junit.durations, 10));
    }
    if let Some(reason) = &prepared.auto_reason {
        println!("{reason}");
    }
    for reason in &outcome.grown {
        println!("{reason}");
    }
    if let Some(split) = &prepared.settings.ci_split {
        println!("{}", split.describe());
    }
    let previous = prepared
        .previous
        .as_ref()
        .map(|(t, recorded)| (t.failed.as_slice(), recorded));
    if let Some(note) = run::load_note(outcome, cpus, previous) {
        println!("{note}");
    }
}

/// Whether any test failed or was lost (what `--retries` runs again).
fn has_failures(outcome: &run::RunOutcome) -> bool {
    !outcome.lost.is_empty()
        || outcome.groups.iter().flat_map(|g| &g.results).any(|r| {
            matches!(
                r.outcome,
                run::TestOutcome::Failed | run::TestOutcome::Error
            )
        })
}

/// TEST's group in the plan, and the tests that ran before it there.
fn group_of(
    assignment: &Assignment,
    test: &str,
    plan: &Path,
) -> Result<(usize, Vec<String>), Error> {
    for (group, tests) in assignment {
        if let Some(at) = tests.iter().position(|t| t == test) {
            return Ok((*group, tests[..at].to_vec()));
        }
    }
    Err(Error::Usage(format!(
        "{test} is not in {} (it holds {} tests in {} groups): name a test as the plan writes it, e.g. from a failed test's line in the run's summary",
        plan.display(),
        assignment.values().map(Vec::len).sum::<usize>(),
        assignment.len()
    )))
}

/// `compose-shard bisect --plan PLAN TEST`: the tests of TEST's group that make it fail.
async fn bisect_command(
    cfg: &RunConfig,
    mut prepared: Prepared,
    test: &str,
) -> Result<ExitCode, Error> {
    let plan = prepared.settings.plan_file.clone().unwrap_or_default();
    let Some(TestSource::Fixed(assignment)) = prepared.source.take() else {
        return Err(Error::Usage("bisect needs --plan FILE".into()));
    };
    let (group, earlier) = group_of(&assignment, test, &plan)?;
    let (engines, _) = connect_engines(&prepared.engines).await?;
    let slots = slots(&engines);
    let (events, receiver) = EventSink::channel();
    let display = tokio::spawn(
        Display::new(DisplayMode::resolve(prepared.settings.progress)).consume(receiver),
    );
    events.emit(run::Event::Notice(format!(
        "bisect {test}: group {group} of {} ran {} test(s) before it; each probe runs some of them, then it, in a fresh environment",
        plan.display(),
        earlier.len()
    )));
    let spec = &prepared.spec;
    let explainer = run::Explainer {
        engines: &slots,
        spec,
        factory: prepared.factory.clone(),
        retries: 0,
        budget: cfg.bisect_budget.unwrap_or(BISECT_BUDGET),
        parallel: prepared.groups.clamp(1, 4),
        events: &events,
        rounds: Default::default(),
    };
    let backends: Vec<&DockerEngine> = engines.iter().collect();
    let work = explainer.bisect(test, group, earlier, prepared.groups + 1);
    let result = run_with_signals(&backends, &spec.run_id, work, &events).await;
    drop(events);
    let _ = display.await;
    let (class, rounds) = result.map_err(|_| Error::from(RunError::Interrupted))?;
    let run::FailureClass::OrderDependent {
        culprits,
        plan,
        note,
        ..
    } = class
    else {
        unreachable!("a bisection classifies as order-dependent");
    };
    match plan {
        Some(plan) if !culprits.is_empty() => {
            println!(
                "{test} fails after {} ({rounds} rounds of probes)",
                culprits.join(", ")
            );
            for c in &culprits {
                println!("  culprit: {c}");
            }
            let mut words = vec![
                "compose-shard".to_string(),
                "run".into(),
                "--plan".into(),
                plan.display().to_string(),
            ];
            words.extend(prepared.reproduce_flags.iter().cloned());
            words.push("--".into());
            words.extend(spec.command.iter().cloned());
            println!("reproduce: {}", shell_words::join(words));
            Ok(ExitCode::Success)
        }
        _ => {
            println!(
                "{test}: no culprit found after {rounds} rounds: {}",
                note.unwrap_or_else(|| "the search did not finish".into())
            );
            Ok(ExitCode::TestsFailed)
        }
    }
}

/// What the run is about to do: where its durations and group count come from, the CI's
/// split, the run id and where its results go.
fn announce(prepared: &Prepared, events: &EventSink) {
    if prepared.settings.remembered.as_ref() == Some(&prepared.settings.durations.path) {
        events.emit(run::Event::Info(format!(
            "durations: the ones the last run remembered ({})",
            prepared.settings.durations.path.display()
        )));
    }
    if let Some(reason) = &prepared.auto_reason {
        events.emit(run::Event::Info(reason.clone()));
    }
    if let Some(split) = &prepared.settings.ci_split {
        events.emit(run::Event::Info(split.describe()));
    }
    events.emit(run::Event::Info(format!(
        "run {}: {} group(s), results in {}",
        prepared.spec.run_id,
        prepared.spec.projects.len(),
        prepared.spec.out_dir.display()
    )));
}

async fn run_command(cfg: RunConfig) -> Result<ExitCode, Error> {
    let mut prepared = prepare(&cfg)?;
    if let Some(test) = cfg.bisect.clone() {
        return bisect_command(&cfg, prepared, &test).await;
    }
    let (engines, capacities) = connect_engines(&prepared.engines).await?;
    let engine = &engines[0];
    if engines.len() > 1 {
        prepared.spec.placement = plan::place_groups(prepared.spec.projects.len(), &capacities);
    }
    let slots = slots(&engines);
    let (events, receiver) = EventSink::channel();
    let mode = DisplayMode::resolve(prepared.settings.progress);
    let display = tokio::spawn(Display::new(mode).consume(receiver));

    warn_about_leftovers(engine, &events).await;
    announce(&prepared, &events);

    let source = prepared
        .source
        .take()
        .expect("a prepared run has its source");
    let spec = &prepared.spec;
    let backends: Vec<&DockerEngine> = engines.iter().collect();
    // How busy this host's CPUs are while the groups test, when every engine runs here:
    // `--groups auto` and the start turns learn from it whether the CPUs were the limit.
    let recorder = engines
        .iter()
        .all(|e| !e.address().is_remote())
        .then(crate::machine::CpuRecorder::start)
        .flatten();
    let work = async {
        let mut outcome = run::run_on(&slots, spec, source, &events).await;
        if spec.retries > 0 && outcome.fatal.is_none() && has_failures(&outcome) {
            let explainer = run::Explainer {
                engines: &slots,
                spec,
                factory: prepared.factory.clone(),
                retries: spec.retries as usize,
                budget: BISECT_BUDGET,
                parallel: spec.projects.len().max(1),
                events: &events,
                rounds: Default::default(),
            };
            // Fresh environments are numbered after every group, those that joined too.
            let next = outcome.last_group(prepared.groups) + 1;
            outcome.explanation = Some(explainer.explain(&outcome, next).await);
        }
        outcome
    };
    let result = run_with_signals(&backends, &spec.run_id, work, &events).await;
    drop(events);
    let _ = display.await;

    let outcome = match result {
        Ok(outcome) => outcome,
        Err(interrupted) => {
            eprintln!(
                "interrupted: removed {} resources of run {}",
                interrupted.removed.len(),
                spec.run_id
            );
            for e in &interrupted.errors {
                eprintln!("warning: cleanup: {e}");
            }
            return Err(RunError::Interrupted.into());
        }
    };
    let cpus = match run::Backend::engine_info(engine).await {
        Ok(info) => info.cpus,
        Err(_) => crate::machine::cpus(),
    };
    let load = recorder.and_then(|recorder| {
        let phases: Vec<&[crate::report::PhaseSpan]> =
            outcome.groups.iter().map(|g| g.phases.as_slice()).collect();
        crate::plan::timings::testing_load(&recorder.finish(), &phases)
    });
    finish(&prepared, &outcome, (cpus, load));
    Ok(exit_code(&outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_reproduce_command_repeats_the_run_flags_given() {
        let plain = reproduce_flags(&RunConfig::default(), "app", false);
        assert_eq!(plain, ["--service", "app"]);
        let cfg = RunConfig {
            exit_grace: Some(Duration::from_secs(90)),
            test_timeout: Some(Duration::from_millis(1500)),
            retries: Some(2),
            snapshots: Some(crate::config::Snapshots::Off),
            tmpfs_data: true,
            until: Some("t.py::test_a".into()),
            ..RunConfig::default()
        };
        let flags = reproduce_flags(&cfg, "app", false).join(" ");
        assert_eq!(
            flags,
            "--service app --exit-grace 90s --test-timeout 1500ms --snapshots off --tmpfs-data"
        );
    }

    #[test]
    fn a_replaced_entrypoint_is_cleared_in_the_reproduce_command_whose_command_holds_it() {
        let cfg = RunConfig {
            service_flags: crate::config::ServiceFlags {
                entrypoint: Some("pytest tests/unit".into()),
                user: Some("1000".into()),
                workdir: Some("/code".into()),
                volumes: vec!["./out:/out".into()],
                no_deps: true,
                cap_add: vec!["SYS_PTRACE".into()],
                cap_drop: vec![],
                labels: vec!["team=qa".into()],
            },
            ..RunConfig::default()
        };
        let flags = reproduce_flags(&cfg, "app", true);
        let expected = [
            "--service",
            "app",
            "--entrypoint",
            "",
            "--user",
            "1000",
            "--workdir",
            "/code",
            "--volume",
            "./out:/out",
            "--no-deps",
            "--cap-add",
            "SYS_PTRACE",
            "--label",
            "team=qa",
        ];
        assert_eq!(flags, expected);
        let line = run::reproduce_command(
            "plan.json",
            1,
            &flags,
            &["pytest".into(), "tests/unit".into()],
        );
        assert!(
            line.contains("--entrypoint '' ") && line.ends_with("-- pytest tests/unit"),
            "{line}"
        );
    }
}
