//! Command-line flags (clap) and their translation into the validated [`crate::config`] types.
//!
//! Nothing outside this module sees clap: the rest of the program receives a [`Command`] built
//! from plain, checked values (ripgrep's two-stage argument handling). The one exception is
//! the enums of flag values in [`crate::config`], which derive clap's `ValueEnum` so that no
//! mirror types are needed. What a flag left open is resolved afterwards, per command, by
//! [`crate::config::RunSettings`] and [`crate::config::PlanSettings`].

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::{
    CleanConfig, Command, ComposeOptions, ConfigCommand, CopySource, Dist, GroupSelection,
    GroupsSetting, MergeConfig, OutputFormat, PlanConfig, PlanFormat, ProgressMode, RunConfig,
    Snapshots, SplitBy,
};
use crate::duration::parse_duration;

/// `--version`: the crate version and the git commit it was built from (build.rs), or
/// "unknown commit" when built from a tarball or sdist.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("COMPOSE_SHARD_BUILD_COMMIT"),
    ")"
);

/// Run a pytest suite in N isolated copies of its docker-compose project.
///
/// compose-shard reads the project's compose file the way Docker Compose does, collects the
/// test suite once, splits it into N groups balanced by recorded durations, starts one fully
/// namespaced copy of the services per group through the Docker Engine API, runs pytest in
/// each, and merges the JUnit and coverage XML into one result.
#[derive(Debug, Parser)]
#[command(name = "compose-shard", version = VERSION, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Start N isolated environments, run the test command in each, merge the results.
    ///
    /// Everything after `--` is the test command (default: `pytest`). Exit codes: 0 all tests
    /// passed, 1 some tests failed, 2 usage or configuration error, 3 environment error
    /// (daemon, image, service never ready, test container crashed), 130 interrupted.
    Run(Box<RunArgs>),
    /// Collect the tests and show how they would be split into groups.
    Plan(Box<PlanArgs>),
    /// Find the tests that make a test fail: the smallest set of the tests its group ran
    /// before it (in the saved plan), by delta debugging in fresh environments.
    ///
    /// The first probe replays the whole group up to TEST; if TEST passes there, what ran
    /// before it does not make it fail (exit 1). Otherwise each round runs parts of the
    /// earlier tests, then TEST, each in a fresh environment, several at once, until the
    /// culprits are found (exit 0) and checked: with them TEST fails, alone it passes. The
    /// result names them and the command that reproduces the failure with just them.
    Bisect(Box<BisectArgs>),
    /// Merge JUnit and coverage XML from several groups or runners into one of each.
    Merge(MergeArgs),
    /// Remove containers, networks and volumes left behind by earlier runs.
    ///
    /// Without `--run` or `--all`, removes what runs whose process is gone left behind (a run
    /// killed with `kill -9`, a crashed machine); resources of runs still in progress are
    /// kept. Resources are found by compose-shard's labels, never by name.
    Clean(CleanArgs),
    /// Print the resolved compose project, or one group's isolated copy of it.
    Config(ConfigArgs),
    /// Print a shell completion script to standard output.
    ///
    /// bash: `compose-shard completions bash > ~/.local/share/bash-completion/completions/compose-shard`;
    /// zsh: `compose-shard completions zsh > "${fpath[1]}/_compose-shard"`;
    /// fish: `compose-shard completions fish > ~/.config/fish/completions/compose-shard.fish`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), generated from the same definitions as `--help`.
    ///
    /// Read it with `compose-shard man | man -l -`, or install it:
    /// `compose-shard man > ~/.local/share/man/man1/compose-shard.1`.
    Man(ManArgs),
}

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
struct ManArgs {
    /// Print the page of this subcommand (`compose-shard-run(1)` ...) instead of the main page.
    #[arg(value_name = "SUBCOMMAND")]
    subcommand: Option<String>,
}

/// Flags that choose and load the compose project (the same as Docker Compose's).
#[derive(Debug, Args)]
struct ComposeArgs {
    /// Compose file(s), merged in order (default: compose.yaml, docker-compose.yml, ... and the
    /// override file beside it; also COMPOSE_FILE).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Project name (default: COMPOSE_PROJECT_NAME, the file's `name:`, or the directory name).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    project_name: Option<String>,
    /// Enable a profile (repeatable; also COMPOSE_PROFILES).
    #[arg(long = "profile", value_name = "PROFILE")]
    profiles: Vec<String>,
    /// Directory relative paths are resolved against (default: the first file's directory).
    #[arg(long = "project-directory", value_name = "DIR")]
    project_directory: Option<PathBuf>,
    /// Alternative environment file for interpolation (default: `.env` in the project directory).
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SplitArgs {
    /// Durations file in pytest-split's format (default: `.test_durations`, or `durations` in
    /// `[tool.compose-shard]` of pyproject.toml).
    #[arg(long, value_name = "FILE")]
    durations: Option<PathBuf>,
    /// Read durations from JUnit XML files of earlier runs (repeatable).
    #[arg(long = "durations-from-junit", value_name = "FILE", num_args = 1..)]
    durations_from_junit: Vec<PathBuf>,
    /// What must stay together in one group: single tests, pytest classes, or whole modules
    /// [default: class, or `split-by` in `[tool.compose-shard]`].
    #[arg(long = "split-by", value_enum)]
    split_by: Option<SplitBy>,
}

/// `docker compose run`'s own flags for the service it runs, applied to the test service.
#[derive(Debug, Args)]
struct ServiceFlagArgs {
    /// Replace the test service's entrypoint, as `docker compose run --entrypoint` does: a
    /// command line, split like a shell, that runs with the arguments after `--` as the test
    /// command (`--entrypoint "pytest tests/unit"`; `''` clears it) [default: `entrypoint` in
    /// `[tool.compose-shard]`].
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    entrypoint: Option<String>,
    /// Run the test container as this user (`name`, `uid`, `uid:gid`), as `docker compose run
    /// -u` does.
    #[arg(short = 'u', long, value_name = "USER")]
    user: Option<String>,
    /// The test container's working directory, as `docker compose run -w` sets it.
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,
    /// Mount a bind or volume into the test container, as `docker compose run -v` does
    /// (repeatable; `SOURCE:TARGET[:MODE]` or `TARGET`; a relative source is taken from the
    /// current directory, as Compose does; a named volume is each group's own).
    #[arg(short = 'v', long = "volume", value_name = "SOURCE:TARGET[:MODE]")]
    volumes: Vec<String>,
    /// Start none of the test service's dependencies, as `docker compose run --no-deps` (for
    /// tests that need no service; `--with-service` ones still start).
    #[arg(long = "no-deps")]
    no_deps: bool,
    /// Add a Linux capability to the test container, as `docker compose run --cap-add` does
    /// (repeatable).
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<String>,
    /// Drop a Linux capability from the test container, as `docker compose run --cap-drop`
    /// does (repeatable).
    #[arg(long = "cap-drop", value_name = "CAP")]
    cap_drop: Vec<String>,
    /// Add or override a label of the test container, as `docker compose run -l` does
    /// (repeatable; `KEY=VALUE`, or `KEY` for an empty value).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Accepted as `docker compose run --rm` is written: compose-shard always removes the
    /// containers, networks and volumes it started (unless `run --keep`).
    #[arg(long = "rm")]
    rm: bool,
    /// Accepted as `docker compose run -T` is written: compose-shard never allocates a
    /// terminal to the tests.
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
}

impl ServiceFlagArgs {
    fn into_flags(self) -> crate::config::ServiceFlags {
        crate::config::ServiceFlags {
            entrypoint: self.entrypoint,
            user: self.user,
            workdir: self.workdir,
            volumes: self.volumes,
            no_deps: self.no_deps,
            cap_add: self.cap_add,
            cap_drop: self.cap_drop,
            labels: self.labels,
        }
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    compose: ComposeArgs,
    #[command(flatten)]
    split: SplitArgs,
    /// The service tests run in (default: `service` in `[tool.compose-shard]` of pyproject.toml,
    /// else the likeliest service with code: pytest configuration in its source folder, a
    /// name or command meant for tests, nothing depending on it; the run says which and why).
    #[arg(short = 's', long, value_name = "SERVICE")]
    service: Option<String>,
    /// Also start this service (and what it depends on) in every group, for tests that
    /// reach a service the test service does not depend on (repeatable; replaces
    /// `with-services` of [tool.compose-shard]).
    #[arg(long = "with-service", value_name = "NAME")]
    with_services: Vec<String>,
    #[command(flatten)]
    service_flags: ServiceFlagArgs,
    /// Number of groups, or `auto`: the count that minimises the predicted wall time, from
    /// the recorded durations, earlier runs' start-up times and the CPUs [default: `groups`
    /// in `[tool.compose-shard]`, else auto].
    #[arg(short = 'g', long, value_name = "N|auto")]
    groups: Option<String>,
    /// Run only these groups of the plan, e.g. `2` or `1,3-4` (for a CI matrix of runners).
    #[arg(long, value_name = "LIST")]
    only: Option<String>,
    /// Rerun exactly the plan saved in this file (e.g. `compose-shard-results/plan.json`).
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// Run group K's tests in plan order up to and including TEST (a node id), then stop:
    /// needs `--plan FILE` and exactly one `--only K`.
    #[arg(long, value_name = "TEST")]
    until: Option<String>,
    /// Use this test list instead of collecting (node ids, or `pytest --collect-only -q` output).
    #[arg(long, value_name = "FILE")]
    tests: Option<PathBuf>,
    /// How tests reach the groups: `dynamic`, a work queue each group pulls from when it is
    /// free, or `static`, a split fixed before the tests start (the same on every runner of a
    /// CI matrix) [default: static with --only, --plan or --tests or a single group, else dynamic].
    #[arg(long, value_enum)]
    dist: Option<Dist>,
    /// Upload the project files into the containers instead of bind-mounting the project
    /// tree (`.:/code`): `always` (the bare flag), `never`, or `auto`, which copies for remote
    /// engines and engines that cannot see this checkout (compose-shard in a container).
    #[arg(
        long = "copy-source",
        value_enum,
        num_args = 0..=1,
        default_missing_value = "always",
        default_value = "auto",
        value_name = "WHEN"
    )]
    copy_source: CopySource,
    /// Where results go: per-group folders, merged junit.xml and coverage.xml, plan.json.
    /// [default: `out` in `[tool.compose-shard]`, else compose-shard-results]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Per-group time limit for the test command (e.g. `30m`); the group is killed and reported.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// How long services may take to become ready (e.g. `2m`).
    /// [default: `ready-timeout` in `[tool.compose-shard]`, else 3m]
    #[arg(long = "ready-timeout", value_name = "DURATION")]
    ready_timeout: Option<String>,
    /// How long a test process may stay alive after pytest's session finished (threads or
    /// child processes that do not end) before it is stopped.
    /// [default: `exit-grace` in `[tool.compose-shard]`, else 30s]
    #[arg(long = "exit-grace", value_name = "DURATION")]
    exit_grace: Option<String>,
    /// Time limit for each single test (e.g. `5m`).
    /// [default: `test-timeout` in `[tool.compose-shard]`, else none]
    #[arg(long = "test-timeout", value_name = "DURATION")]
    test_timeout: Option<String>,
    /// Rerun each failed test up to N times, each time in a fresh environment.
    /// [default: `retries` in `[tool.compose-shard]`, else 0]
    #[arg(long, value_name = "N")]
    retries: Option<u32>,
    /// Keep the environments after the run and print how to enter them.
    #[arg(long)]
    keep: bool,
    /// Do not build images; use the ones already present.
    #[arg(long = "no-build", conflicts_with = "build")]
    no_build: bool,
    /// Build `build:` services from the current sources (tagged by content) even when their
    /// image already exists, e.g. from `docker compose build` (which `run` reuses, as
    /// `docker compose run` does).
    #[arg(long)]
    build: bool,
    /// Publish the services' fixed host ports on ephemeral host ports instead of dropping them.
    #[arg(long = "publish-ports")]
    publish_ports: bool,
    /// Snapshots of the groups' started services: `auto` uses one that still matches the
    /// project and takes one when there is none, `off` neither uses nor takes them,
    /// `refresh` takes a new one [default: `snapshots` in `[tool.compose-shard]`, else auto].
    #[arg(long, value_enum, value_name = "WHEN")]
    snapshots: Option<Snapshots>,
    /// Keep the services' data volumes in memory (tmpfs) instead of on disk
    /// [default: `tmpfs-data` in `[tool.compose-shard]`, else off].
    #[arg(long = "tmpfs-data")]
    tmpfs_data: bool,
    /// Progress display: bars on a terminal, plain prefixed lines otherwise.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    /// Extra environment variable for the test container (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VAL")]
    env: Vec<String>,
    /// After the run, update this durations file from the merged JUnit (pytest-split format).
    #[arg(long = "store-durations", value_name = "FILE")]
    store_durations: Option<PathBuf>,
    #[command(flatten)]
    engines: EngineArgs,
    /// The test command (default: `pytest`); put it after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct BisectArgs {
    #[command(flatten)]
    compose: ComposeArgs,
    /// The plan the run saved (e.g. `compose-shard-results/plan.json`): which group TEST ran
    /// in and what ran before it.
    #[arg(long, value_name = "FILE", required = true)]
    plan: PathBuf,
    /// The test that fails after others (a node id of the plan).
    #[arg(value_name = "TEST")]
    test: String,
    /// The service tests run in (as for `run`).
    #[arg(short = 's', long, value_name = "SERVICE")]
    service: Option<String>,
    /// Also start this service in every environment (repeatable, as for `run`).
    #[arg(long = "with-service", value_name = "NAME")]
    with_services: Vec<String>,
    #[command(flatten)]
    service_flags: ServiceFlagArgs,
    /// How long the search may take in all (e.g. `20m`) [default: 10m].
    #[arg(long, value_name = "DURATION")]
    budget: Option<String>,
    /// Where the probes' results and the culprits' plan go [default: as for `run`].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// How long services may take to become ready (as for `run`).
    #[arg(long = "ready-timeout", value_name = "DURATION")]
    ready_timeout: Option<String>,
    /// Progress display: bars on a terminal, plain prefixed lines otherwise.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    /// Extra environment variable for the test container (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VAL")]
    env: Vec<String>,
    #[command(flatten)]
    engines: EngineArgs,
    /// The test command (default: `pytest`, as for `run`); put it after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl BisectArgs {
    fn into_config(self) -> Result<RunConfig, String> {
        let env = self
            .env
            .iter()
            .map(|kv| parse_env_pair(kv))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RunConfig {
            compose: self.compose.into_options(),
            service: self.service,
            with_services: self.with_services,
            service_flags: self.service_flags.into_flags(),
            plan_file: Some(self.plan),
            out_dir: self.out,
            ready_timeout: duration_flag("--ready-timeout", self.ready_timeout.as_deref())?,
            progress: self.progress,
            env,
            command: self.command,
            docker_hosts: self.engines.into_list()?,
            bisect: Some(self.test),
            bisect_budget: duration_flag("--budget", self.budget.as_deref())?,
            ..RunConfig::default()
        })
    }
}

#[derive(Debug, Args)]
struct PlanArgs {
    #[command(flatten)]
    compose: ComposeArgs,
    #[command(flatten)]
    split: SplitArgs,
    /// Number of groups.
    #[arg(short = 'g', long, value_name = "N")]
    groups: usize,
    /// Plan from this test list instead of collecting in Docker (node ids one per line, or the
    /// raw output of `pytest --collect-only -q`).
    #[arg(long, value_name = "FILE")]
    tests: Option<PathBuf>,
    /// The service to collect in (see `run --service`).
    #[arg(short = 's', long, value_name = "SERVICE")]
    service: Option<String>,
    #[command(flatten)]
    service_flags: ServiceFlagArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    format: PlanFormat,
    #[command(flatten)]
    engines: EngineArgs,
    /// The test command used for collection (default: `pytest`); put it after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// Write the merged JUnit XML here.
    #[arg(long = "junit-xml", value_name = "OUT")]
    junit_xml: Option<PathBuf>,
    /// Write the merged Cobertura coverage XML here.
    #[arg(long = "cov-xml", value_name = "OUT")]
    cov_xml: Option<PathBuf>,
    /// Update this durations file (pytest-split format) from the merged JUnit.
    #[arg(long = "store-durations", value_name = "FILE")]
    store_durations: Option<PathBuf>,
    /// JUnit/coverage XML files, or result folders written by `run` (e.g. from `--only` runners).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct CleanArgs {
    /// Remove only what this run created.
    #[arg(long, value_name = "ID", conflicts_with = "all")]
    run: Option<String>,
    /// Remove everything any compose-shard run left behind on this engine.
    #[arg(long)]
    all: bool,
    /// List what would be removed without removing it, and the snapshots of ready services
    /// kept under the cache folder (size, age, whether each is worth it).
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Also remove the snapshots of ready services kept under the cache folder
    /// (`run --snapshots`); later runs initialise those services again.
    #[arg(long)]
    snapshots: bool,
    #[command(flatten)]
    engines: EngineArgs,
}

#[derive(Debug, Args)]
struct EngineArgs {
    /// A Docker engine to use: unix:///path/to/docker.sock, tcp://HOST:PORT (TLS with
    /// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH), https://HOST:PORT, ssh://[USER@]HOST, or
    /// a Docker context name. Repeatable; replaces `docker-hosts` of [tool.compose-shard]
    /// [default: DOCKER_HOST, DOCKER_CONTEXT, the current context, /var/run/docker.sock].
    #[arg(long = "docker-host", value_name = "URL|CONTEXT")]
    docker_hosts: Vec<String>,
}

impl EngineArgs {
    fn into_list(self) -> Result<Vec<String>, String> {
        if let Some(empty) = self.docker_hosts.iter().find(|h| h.trim().is_empty()) {
            return Err(format!(
                "--docker-host takes an engine URL or a Docker context name (got {empty:?})"
            ));
        }
        Ok(self.docker_hosts)
    }
}

#[derive(Debug, Args)]
struct ConfigArgs {
    #[command(flatten)]
    compose: ComposeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Yaml)]
    format: OutputFormat,
    /// With `--group`: the number of groups to isolate for.
    #[arg(short = 'g', long, value_name = "N", requires = "group")]
    groups: Option<usize>,
    /// Print group K's isolated project (1-based; needs `--groups`).
    #[arg(long, value_name = "K", requires = "groups")]
    group: Option<usize>,
    /// Run id used in isolated names (default: `r0`, so the output is reproducible).
    #[arg(long = "run-id", value_name = "ID", default_value = "r0")]
    run_id: String,
    /// Publish fixed host ports on ephemeral host ports instead of dropping them.
    #[arg(long = "publish-ports")]
    publish_ports: bool,
    /// The test service (affects which service the isolated project marks as the test service).
    #[arg(short = 's', long, value_name = "SERVICE")]
    service: Option<String>,
    /// With `--group`: also start this service and what it depends on (repeatable; replaces
    /// `with-services` of [tool.compose-shard]).
    #[arg(long = "with-service", value_name = "NAME")]
    with_services: Vec<String>,
}

/// Parse the process arguments. On `--help`, `--version`, `completions`, `man` or a clap error,
/// the text is printed here and the exit code to use is returned as `Err`.
pub fn parse_args<I, T>(args: I) -> Result<Command, i32>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return Err(code);
        }
    };
    // Like `--help`, these print what the clap definitions generate; nothing to validate.
    let cli = match cli.command {
        CliCommand::Completions(a) => return Err(print_generated(completions(a.shell))),
        CliCommand::Man(a) => return Err(print_generated(man_page(a.subcommand.as_deref()))),
        command => Cli { command },
    };
    match cli.into_command() {
        Ok(cmd) => Ok(cmd),
        Err(msg) => {
            eprintln!("error: {msg}");
            Err(2)
        }
    }
}

impl Cli {
    /// Validate the raw flags into a [`Command`].
    fn into_command(self) -> Result<Command, String> {
        Ok(match self.command {
            CliCommand::Run(a) => Command::Run(Box::new(a.into_config()?)),
            CliCommand::Plan(a) => Command::Plan(Box::new(a.into_config()?)),
            CliCommand::Bisect(a) => Command::Run(Box::new(a.into_config()?)),
            CliCommand::Merge(a) => Command::Merge(MergeConfig {
                junit_xml: a.junit_xml,
                cov_xml: a.cov_xml,
                store_durations: a.store_durations,
                inputs: a.inputs,
            }),
            CliCommand::Clean(a) => Command::Clean(CleanConfig {
                run_id: a.run,
                all: a.all,
                dry_run: a.dry_run,
                snapshots: a.snapshots,
                docker_hosts: a.engines.into_list()?,
            }),
            CliCommand::Config(a) => Command::Config(a.into_config()?),
            CliCommand::Completions(_) | CliCommand::Man(_) => {
                return Err("`completions` and `man` only print; parse_args handles them".into())
            }
        })
    }
}

impl ComposeArgs {
    fn into_options(self) -> ComposeOptions {
        ComposeOptions {
            files: self.files,
            project_name: self.project_name,
            profiles: self.profiles,
            project_directory: self.project_directory,
            env_file: self.env_file,
            enable_services: Vec::new(),
            defer_service_problems: false,
        }
    }
}

impl RunArgs {
    fn into_config(self) -> Result<RunConfig, String> {
        let groups = match self.groups.as_deref() {
            None => None,
            Some("auto") => Some(GroupsSetting::Auto),
            Some(n) => Some(GroupsSetting::Count(parse_group_count(n)?)),
        };
        let only = self
            .only
            .as_deref()
            .map(GroupSelection::parse)
            .transpose()?;
        let timeout = duration_flag("--timeout", self.timeout.as_deref())?;
        let ready_timeout = duration_flag("--ready-timeout", self.ready_timeout.as_deref())?;
        let env = self
            .env
            .iter()
            .map(|kv| parse_env_pair(kv))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RunConfig {
            compose: self.compose.into_options(),
            service: self.service,
            with_services: self.with_services,
            service_flags: self.service_flags.into_flags(),
            groups,
            only,
            plan_file: self.plan,
            tests_file: self.tests,
            durations: self.split.durations,
            durations_from_junit: self.split.durations_from_junit,
            split_by: self.split.split_by,
            copy_source: self.copy_source,
            dist: self.dist,
            out_dir: self.out,
            timeout,
            ready_timeout,
            keep: self.keep,
            no_build: self.no_build,
            build: self.build,
            publish_ports: self.publish_ports,
            progress: self.progress,
            env,
            store_durations: self.store_durations,
            command: self.command,
            docker_hosts: self.engines.into_list()?,
            exit_grace: duration_flag("--exit-grace", self.exit_grace.as_deref())?,
            test_timeout: duration_flag("--test-timeout", self.test_timeout.as_deref())?,
            retries: self.retries,
            until: self.until,
            snapshots: self.snapshots,
            tmpfs_data: self.tmpfs_data,
            bisect: None,
            bisect_budget: None,
        })
    }
}

impl PlanArgs {
    fn into_config(self) -> Result<PlanConfig, String> {
        if self.groups == 0 {
            return Err("--groups must be 1 or more".into());
        }
        Ok(PlanConfig {
            compose: self.compose.into_options(),
            service: self.service,
            groups: self.groups,
            tests_file: self.tests,
            durations: self.split.durations,
            durations_from_junit: self.split.durations_from_junit,
            split_by: self.split.split_by,
            format: self.format,
            command: self.command,
            service_flags: self.service_flags.into_flags(),
            docker_hosts: self.engines.into_list()?,
        })
    }
}

impl ConfigArgs {
    fn into_config(self) -> Result<ConfigCommand, String> {
        let group = match (self.groups, self.group) {
            (Some(n), Some(k)) => {
                if n == 0 {
                    return Err("--groups must be 1 or more".into());
                }
                if k == 0 || k > n {
                    return Err(format!("--group must be between 1 and {n} (got {k})"));
                }
                Some((k, n))
            }
            _ => None,
        };
        Ok(ConfigCommand {
            compose: self.compose.into_options(),
            format: self.format,
            group,
            run_id: self.run_id,
            publish_ports: self.publish_ports,
            service: self.service,
            with_services: self.with_services,
        })
    }
}

/// The completion script for `shell`.
fn completions(shell: clap_complete::Shell) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "compose-shard", &mut out);
    Ok(out)
}

/// The roff manual page of compose-shard, or of one of its subcommands.
fn man_page(subcommand: Option<&str>) -> Result<Vec<u8>, String> {
    let mut cmd = Cli::command();
    // Building fills in the subcommands' display names (`compose-shard-run`), their page titles.
    cmd.build();
    let page = match subcommand {
        None => cmd,
        Some(name) => cmd.find_subcommand(name).cloned().ok_or_else(|| {
            let names: Vec<_> = cmd.get_subcommands().map(|c| c.get_name()).collect();
            format!(
                "man: no subcommand {name:?}; choose one of {}",
                names.join(", ")
            )
        })?,
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| format!("man: cannot render the page: {e}"))?;
    Ok(out)
}

/// Write generated text to stdout; the exit code for [`parse_args`].
fn print_generated(text: Result<Vec<u8>, String>) -> i32 {
    use std::io::Write;
    match text {
        Ok(bytes) => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: cannot write to standard output: {e}");
                    1
                }
            }
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            2
        }
    }
}

/// A duration flag's value, parsed; the error names the flag.
fn duration_flag(flag: &str, text: Option<&str>) -> Result<Option<std::time::Duration>, String> {
    text.map(|t| parse_duration(t).map_err(|e| format!("{flag}: {e}")))
        .transpose()
}

fn parse_group_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("--groups must be 1 or more".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("--groups takes a number or `auto` (got {text:?})")),
    }
}

fn parse_env_pair(kv: &str) -> Result<(String, String), String> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => match std::env::var(kv) {
            // `-e KEY` passes the caller's value through, as `docker run -e KEY` does.
            Ok(v) if !kv.is_empty() => Ok((kv.to_string(), v)),
            _ => Err(format!(
                "-e takes KEY=VAL, or KEY set in the environment (got {kv:?})"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
        cli.into_command()
    }

    #[test]
    fn run_takes_the_test_command_after_double_dash() {
        let Command::Run(cfg) = parse(&[
            "compose-shard",
            "run",
            "-g",
            "4",
            "--",
            "pytest",
            "--cov=app",
            "-x",
        ])
        .unwrap() else {
            panic!("expected run");
        };
        assert_eq!(cfg.groups, Some(GroupsSetting::Count(4)));
        assert_eq!(cfg.command, vec!["pytest", "--cov=app", "-x"]);
    }

    #[test]
    fn run_rejects_zero_groups_and_bad_only() {
        assert!(parse(&["compose-shard", "run", "-g", "0"])
            .unwrap_err()
            .contains("1 or more"));
        assert!(parse(&["compose-shard", "run", "--only", "2-1"]).is_err());
        assert!(parse(&["compose-shard", "run", "--timeout", "5 minutes"]).is_err());
    }

    #[test]
    fn config_group_must_be_in_range() {
        let err = parse(&["compose-shard", "config", "--groups", "2", "--group", "3"]).unwrap_err();
        assert!(err.contains("between 1 and 2"), "{err}");
    }

    #[test]
    fn clean_removes_snapshots_only_when_asked() {
        let Command::Clean(cfg) = parse(&["compose-shard", "clean", "--dry-run"]).unwrap() else {
            panic!("expected clean");
        };
        assert!(cfg.dry_run && !cfg.snapshots);
        let Command::Clean(cfg) =
            parse(&["compose-shard", "clean", "--all", "--snapshots"]).unwrap()
        else {
            panic!("expected clean");
        };
        assert!(cfg.all && cfg.snapshots && !cfg.dry_run);
    }

    #[test]
    fn docker_host_repeats_on_run_plan_and_clean() {
        let Command::Run(cfg) = parse(&[
            "compose-shard",
            "run",
            "--docker-host",
            "unix:///a.sock",
            "--docker-host",
            "build2",
        ])
        .unwrap() else {
            panic!("expected run");
        };
        assert_eq!(cfg.docker_hosts, ["unix:///a.sock", "build2"]);
        let Command::Clean(cfg) =
            parse(&["compose-shard", "clean", "--docker-host", "tcp://h:2375"]).unwrap()
        else {
            panic!("expected clean");
        };
        assert_eq!(cfg.docker_hosts, ["tcp://h:2375"]);
        let Command::Plan(cfg) =
            parse(&["compose-shard", "plan", "-g", "2", "--docker-host", "ctx"]).unwrap()
        else {
            panic!("expected plan");
        };
        assert_eq!(cfg.docker_hosts, ["ctx"]);
        let err = parse(&["compose-shard", "clean", "--docker-host", " "]).unwrap_err();
        assert!(err.contains("--docker-host takes"), "{err}");
    }

    #[test]
    fn new_run_flags_reach_the_config() {
        let Command::Run(cfg) = parse(&[
            "compose-shard",
            "run",
            "--exit-grace",
            "10s",
            "--test-timeout",
            "2m",
            "--retries",
            "2",
            "--plan",
            "p.json",
            "--only",
            "3",
            "--until",
            "t.py::T::test_x[a b]",
            "--snapshots",
            "refresh",
            "--tmpfs-data",
        ])
        .unwrap() else {
            panic!("expected run");
        };
        assert_eq!(cfg.exit_grace, Some(std::time::Duration::from_secs(10)));
        assert_eq!(cfg.test_timeout, Some(std::time::Duration::from_secs(120)));
        assert_eq!(cfg.retries, Some(2));
        assert_eq!(cfg.until.as_deref(), Some("t.py::T::test_x[a b]"));
        assert_eq!(cfg.snapshots, Some(Snapshots::Refresh));
        assert!(cfg.tmpfs_data);
        let Command::Run(cfg) = parse(&["compose-shard", "run"]).unwrap() else {
            panic!("expected run");
        };
        assert_eq!(
            (cfg.exit_grace, cfg.test_timeout, cfg.retries, cfg.snapshots),
            (None, None, None, None)
        );
        assert!(!cfg.tmpfs_data && cfg.until.is_none());
        let err = parse(&["compose-shard", "run", "--exit-grace", "soon"]).unwrap_err();
        assert!(err.starts_with("--exit-grace: "), "{err}");
        let err = parse(&["compose-shard", "run", "--test-timeout", "1 hour"]).unwrap_err();
        assert!(err.starts_with("--test-timeout: "), "{err}");
        assert!(parse(&["compose-shard", "run", "--retries", "-1"]).is_err());
        assert!(parse(&["compose-shard", "run", "--snapshots", "never"]).is_err());
    }

    #[test]
    fn env_pairs_split_on_first_equals() {
        assert_eq!(parse_env_pair("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(parse_env_pair("=x").is_err());
    }
}
