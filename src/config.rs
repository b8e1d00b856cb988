//! Validated configuration: what each subcommand needs, in plain types.
//!
//! Built by [`crate::cli`] from the command line; [`RunSettings`] and [`PlanSettings`] resolve
//! each command's settings in one call, filling what the command line left open from
//! `[tool.compose-shard]` in pyproject.toml, then from the defaults [`resolve`] defines.
//!
//! The enums of flag values derive clap's `ValueEnum`, so the command line accepts exactly
//! these values without mirror types; that derive is the only trace of clap here. Their
//! variants' docs are not shown as per-value help (`#[value(help = NO_HELP)]`): `--help`
//! lists the values, and the flag's own help says what they mean.

use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

mod ci_split;
mod plan_settings;
pub mod resolve;
mod run_settings;

pub use ci_split::CiSplit;
pub use plan_settings::PlanSettings;
pub use run_settings::{RunSettings, STARTS_AT_ONCE_ENV};

/// No per-value help in `--help` for the variants of the enums below (see the module docs).
const NO_HELP: Option<&str> = None;

/// One subcommand with its validated settings.
#[derive(Debug)]
pub enum Command {
    /// `compose-shard run`.
    Run(Box<RunConfig>),
    /// `compose-shard plan`.
    Plan(Box<PlanConfig>),
    /// `compose-shard merge`.
    Merge(MergeConfig),
    /// `compose-shard clean`.
    Clean(CleanConfig),
    /// `compose-shard config`.
    Config(ConfigCommand),
}

/// How to find and load the compose project (Docker Compose's own flags).
#[derive(Debug, Clone, Default)]
pub struct ComposeOptions {
    /// `-f` files in order; empty means the default file names (and `COMPOSE_FILE`).
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--profile`, added to `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `--env-file` (default `.env` in the project directory).
    pub env_file: Option<PathBuf>,
    /// Services the command names (the test service, `--with-service`): a service among
    /// them whose profiles are all inactive gets its profiles enabled, as
    /// `docker compose run SERVICE` does.
    pub enable_services: Vec<String>,
    /// Keep the problems that concern one service only (an `env_file` that cannot be
    /// read, a `${V:?message}` failing inside it, no image) in
    /// [`crate::compose::Loaded::problems`] instead of failing the load, so that a run
    /// fails only on those of the services it starts, as `docker compose run` does.
    pub defer_service_problems: bool,
}

/// `--split-by`: the unit that must not be divided between groups.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum SplitBy {
    /// Single tests may go to different groups.
    #[value(help = NO_HELP)]
    Test,
    /// Tests of one pytest class stay together (the default: `setUpClass` is paid once).
    #[default]
    #[value(help = NO_HELP)]
    Class,
    /// Tests of one module stay together.
    #[value(help = NO_HELP)]
    Module,
}

/// `--dist`: how tests reach the groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Dist {
    /// A work queue: each group pulls its next units when it is free (one runner's default).
    #[value(help = NO_HELP)]
    Dynamic,
    /// A fixed split made before the tests start, the same on every runner of a CI matrix
    /// (implied by `--only`, `--plan` and `--tests`).
    #[value(help = NO_HELP)]
    Static,
}

/// `--copy-source`: the project files uploaded into the containers instead of bind-mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum CopySource {
    /// Copy for remote engines and for engines that cannot see the checkout (the default).
    #[default]
    #[value(help = NO_HELP)]
    Auto,
    /// Always copy instead of bind-mounting the project tree (`--copy-source`).
    #[value(help = NO_HELP)]
    Always,
    /// Never copy: an engine that cannot see the checkout is an error that says so.
    #[value(help = NO_HELP)]
    Never,
}

/// `--snapshots`: snapshots of the groups' started services.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Snapshots {
    /// Use a snapshot that still matches the project, take one when there is none (the
    /// default).
    #[default]
    #[value(help = NO_HELP)]
    Auto,
    /// Neither use nor take snapshots.
    #[value(help = NO_HELP)]
    Off,
    /// Take a new snapshot even when one matches.
    #[value(help = NO_HELP)]
    Refresh,
}

impl Snapshots {
    /// The value as typed on the command line and in pyproject.toml.
    pub fn name(self) -> &'static str {
        match self {
            Snapshots::Auto => "auto",
            Snapshots::Off => "off",
            Snapshots::Refresh => "refresh",
        }
    }
}

/// `--groups`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupsSetting {
    /// A fixed number of groups (1 or more).
    Count(usize),
    /// Derive from CPU count and memory.
    Auto,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ProgressMode {
    /// Bars on a terminal, plain lines otherwise.
    #[default]
    #[value(help = NO_HELP)]
    Auto,
    /// Always bars.
    #[value(help = NO_HELP)]
    Bars,
    /// Always plain prefixed lines.
    #[value(help = NO_HELP)]
    Plain,
}

/// `--only 1,3-4`: a sorted, deduplicated set of 1-based group numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSelection(pub Vec<usize>);

impl GroupSelection {
    /// Parse `2`, `1,3`, `1-3,5`. Group numbers are 1-based.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut groups = Vec::new();
        for part in text.split(',').map(str::trim) {
            let bad = || format!("--only takes group numbers like `2` or `1,3-4` (got {text:?})");
            if part.is_empty() {
                return Err(bad());
            }
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (
                    a.trim().parse::<usize>().map_err(|_| bad())?,
                    b.trim().parse::<usize>().map_err(|_| bad())?,
                ),
                None => {
                    let n = part.parse::<usize>().map_err(|_| bad())?;
                    (n, n)
                }
            };
            if lo == 0 || hi < lo {
                return Err(bad());
            }
            groups.extend(lo..=hi);
        }
        groups.sort_unstable();
        groups.dedup();
        Ok(GroupSelection(groups))
    }

    /// Check that every selected group exists when there are `n` groups.
    pub fn validate(&self, n: usize) -> Result<(), String> {
        match self.0.iter().find(|&&g| g > n) {
            Some(g) => Err(format!(
                "--only names group {g}, but there are only {n} groups"
            )),
            None => Ok(()),
        }
    }

    /// Whether group `k` is selected.
    pub fn contains(&self, k: usize) -> bool {
        self.0.binary_search(&k).is_ok()
    }
}

/// `docker compose run`'s own flags for the service it runs, as typed: they change the test
/// service before it is isolated ([`crate::compose::apply_run_flags`]).
#[derive(Debug, Clone, Default)]
pub struct ServiceFlags {
    /// `--entrypoint`: replaces the test service's entrypoint (a command line).
    pub entrypoint: Option<String>,
    /// `-u/--user`.
    pub user: Option<String>,
    /// `-w/--workdir`.
    pub workdir: Option<String>,
    /// `-v/--volume` (repeatable).
    pub volumes: Vec<String>,
    /// `--no-deps`.
    pub no_deps: bool,
    /// `--cap-add` (repeatable).
    pub cap_add: Vec<String>,
    /// `--cap-drop` (repeatable).
    pub cap_drop: Vec<String>,
    /// `-l/--label` (repeatable), `KEY=VALUE` as typed.
    pub labels: Vec<String>,
}

impl ServiceFlags {
    /// Change `service` of `project` as they say, with its entrypoint cleared when one
    /// replaces it (from the flag or pyproject.toml: `replaced`) and, with `--no-deps`, only
    /// `also` started besides it; relative `-v` sources are taken from the current directory.
    pub fn apply(
        &self,
        (replaced, also): (bool, &[String]),
        project: &mut crate::compose::Project,
        service: &str,
    ) -> Result<(), crate::errors::Error> {
        let flags = crate::compose::RunFlags {
            clear_entrypoint: replaced,
            user: self.user.as_deref(),
            workdir: self.workdir.as_deref(),
            volumes: &self.volumes,
            no_deps: self.no_deps,
            also,
            cap_add: &self.cap_add,
            cap_drop: &self.cap_drop,
            labels: &self.labels,
        };
        let cwd = std::env::current_dir().map_err(|source| crate::errors::Error::Io {
            action: "read",
            path: ".".into(),
            source,
        })?;
        let home = std::env::var("HOME").ok();
        crate::compose::apply_run_flags(project, service, &flags, &cwd, home.as_deref())
            .map_err(crate::errors::Error::Usage)
    }

    /// The flags again, as a rerun types them (`--entrypoint ''` when the command holds the
    /// replaced entrypoint's words already).
    pub fn repeated(&self, replaced: bool) -> Vec<String> {
        let mut words = Vec::new();
        if replaced {
            words.extend(["--entrypoint".to_string(), String::new()]);
        }
        if let Some(user) = &self.user {
            words.extend(["--user".to_string(), user.clone()]);
        }
        if let Some(dir) = &self.workdir {
            words.extend(["--workdir".to_string(), dir.clone()]);
        }
        for volume in &self.volumes {
            words.extend(["--volume".to_string(), volume.clone()]);
        }
        if self.no_deps {
            words.push("--no-deps".to_string());
        }
        let repeated = [
            ("--cap-add", &self.cap_add),
            ("--cap-drop", &self.cap_drop),
            ("--label", &self.labels),
        ];
        for (flag, values) in repeated {
            for value in values {
                words.extend([flag.to_string(), value.clone()]);
            }
        }
        words
    }
}

/// `compose-shard run`: the flags as given (the default value: no flags at all).
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    /// Which compose project.
    pub compose: ComposeOptions,
    /// `--service`.
    pub service: Option<String>,
    /// `--with-service` (repeatable).
    pub with_services: Vec<String>,
    /// `--groups` (None: from pyproject.toml or 1... decided by the command).
    pub groups: Option<GroupsSetting>,
    /// `--only`.
    pub only: Option<GroupSelection>,
    /// `--plan`.
    pub plan_file: Option<PathBuf>,
    /// `--tests`.
    pub tests_file: Option<PathBuf>,
    /// `--durations`.
    pub durations: Option<PathBuf>,
    /// `--durations-from-junit`.
    pub durations_from_junit: Vec<PathBuf>,
    /// `--split-by` (None: `split-by` from pyproject.toml, else class).
    pub split_by: Option<SplitBy>,
    /// `--dist` (None: static when `--only`, `--plan` or `--tests` is given, else dynamic).
    pub dist: Option<Dist>,
    /// `--copy-source`.
    pub copy_source: CopySource,
    /// `--out` (None: `out` from pyproject.toml, else the default).
    pub out_dir: Option<PathBuf>,
    /// `--timeout` per group.
    pub timeout: Option<Duration>,
    /// `--ready-timeout` (None: `ready-timeout` from pyproject.toml, else the default).
    pub ready_timeout: Option<Duration>,
    /// `--keep`.
    pub keep: bool,
    /// `--no-build`.
    pub no_build: bool,
    /// `--build`.
    pub build: bool,
    /// `--publish-ports`.
    pub publish_ports: bool,
    /// `--progress`.
    pub progress: ProgressMode,
    /// `-e KEY=VAL` for the test container.
    pub env: Vec<(String, String)>,
    /// `--store-durations`.
    pub store_durations: Option<PathBuf>,
    /// The test command after `--` (empty: `pytest`).
    pub command: Vec<String>,
    /// `--entrypoint`, `-u`, `-w`, `-v`: `docker compose run`'s own flags for the test service.
    pub service_flags: ServiceFlags,
    /// `--docker-host` (repeatable; URLs or Docker context names, not yet resolved: empty
    /// means `docker-hosts` of pyproject.toml, else the default engine).
    pub docker_hosts: Vec<String>,
    /// `--exit-grace` (None: `exit-grace` from pyproject.toml, else the default).
    pub exit_grace: Option<Duration>,
    /// `--test-timeout` (None: `test-timeout` from pyproject.toml, else none).
    pub test_timeout: Option<Duration>,
    /// `--retries` (None: `retries` from pyproject.toml, else 0).
    pub retries: Option<u32>,
    /// `--until TEST` (with `--plan` and one `--only K`).
    pub until: Option<String>,
    /// `--snapshots` (None: `snapshots` from pyproject.toml, else auto).
    pub snapshots: Option<Snapshots>,
    /// `--tmpfs-data` (false: `tmpfs-data` from pyproject.toml, else false).
    pub tmpfs_data: bool,
    /// `compose-shard bisect --plan PLAN TEST`: instead of running the plan, find the tests of
    /// TEST's group that make it fail.
    pub bisect: Option<String>,
    /// `bisect --budget`: how long the search may take (default 10m).
    pub bisect_budget: Option<Duration>,
}

/// `compose-shard plan`.
#[derive(Debug, Clone)]
pub struct PlanConfig {
    /// Which compose project (when collecting in Docker).
    pub compose: ComposeOptions,
    /// `--service`.
    pub service: Option<String>,
    /// `--groups`.
    pub groups: usize,
    /// `--tests`.
    pub tests_file: Option<PathBuf>,
    /// `--durations`.
    pub durations: Option<PathBuf>,
    /// `--durations-from-junit`.
    pub durations_from_junit: Vec<PathBuf>,
    /// `--split-by` (None: `split-by` from pyproject.toml, else class).
    pub split_by: Option<SplitBy>,
    /// `--format`.
    pub format: PlanFormat,
    /// The collection command after `--` (empty: `pytest`).
    pub command: Vec<String>,
    /// `--entrypoint`, `-u`, `-w`, `-v`: `docker compose run`'s own flags for the test service.
    pub service_flags: ServiceFlags,
    /// `--docker-host` (repeatable; the tests are collected on the first).
    pub docker_hosts: Vec<String>,
}

/// `plan --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// A table.
    #[value(help = NO_HELP)]
    Text,
    /// The documented JSON schema.
    #[value(help = NO_HELP)]
    Json,
    /// A GitHub Actions `strategy.matrix`.
    #[value(help = NO_HELP)]
    GithubMatrix,
}

/// `compose-shard merge`.
#[derive(Debug, Clone)]
pub struct MergeConfig {
    /// `--junit-xml`.
    pub junit_xml: Option<PathBuf>,
    /// `--cov-xml`.
    pub cov_xml: Option<PathBuf>,
    /// `--store-durations`.
    pub store_durations: Option<PathBuf>,
    /// Files or result folders.
    pub inputs: Vec<PathBuf>,
}

/// `compose-shard clean`.
#[derive(Debug, Clone)]
pub struct CleanConfig {
    /// `--run`.
    pub run_id: Option<String>,
    /// `--all`.
    pub all: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--snapshots`: also remove the snapshots of ready services under the cache folder.
    pub snapshots: bool,
    /// `--docker-host` (repeatable): clean every one of these engines.
    pub docker_hosts: Vec<String>,
}

/// `config --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// YAML, like `docker compose config`.
    #[value(help = NO_HELP)]
    Yaml,
    /// The documented JSON schema.
    #[value(help = NO_HELP)]
    Json,
}

/// `compose-shard config`.
#[derive(Debug, Clone)]
pub struct ConfigCommand {
    /// Which compose project.
    pub compose: ComposeOptions,
    /// `--format`.
    pub format: OutputFormat,
    /// `(group, groups)` from `--group K --groups N`.
    pub group: Option<(usize, usize)>,
    /// `--run-id`.
    pub run_id: String,
    /// `--publish-ports`.
    pub publish_ports: bool,
    /// `--service`.
    pub service: Option<String>,
    /// `--with-service` (empty: `with-services` from pyproject.toml).
    pub with_services: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_selection_parses_lists_and_ranges() {
        assert_eq!(GroupSelection::parse("2").unwrap().0, vec![2]);
        assert_eq!(GroupSelection::parse("3-4,1").unwrap().0, vec![1, 3, 4]);
        assert_eq!(GroupSelection::parse("1,1,2-3").unwrap().0, vec![1, 2, 3]);
        assert!(GroupSelection::parse("0").is_err());
        assert!(GroupSelection::parse("a").is_err());
        assert!(GroupSelection::parse("").is_err());
        assert!(GroupSelection::parse("4-2").is_err());
    }

    #[test]
    fn group_selection_checks_range() {
        let sel = GroupSelection::parse("2,5").unwrap();
        assert!(sel.validate(5).is_ok());
        assert!(sel.validate(4).unwrap_err().contains("group 5"));
        assert!(sel.contains(5) && !sel.contains(3));
    }
}
