//! Validated configuration: what each subcommand needs, in plain types.
//!
//! Built by [`crate::cli`] from the command line; [`resolve`] fills what the command line left
//! open from `[tool.compose-shard]` in pyproject.toml, then from the defaults it defines.

use std::path::PathBuf;
use std::time::Duration;

pub mod resolve;

/// One subcommand with its validated settings.
#[derive(Debug)]
pub enum Command {
    /// `compose-shard run`.
    Run(RunConfig),
    /// `compose-shard plan`.
    Plan(PlanConfig),
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitBy {
    /// Single tests may go to different groups.
    Test,
    /// Tests of one pytest class stay together (the default: `setUpClass` is paid once).
    #[default]
    Class,
    /// Tests of one module stay together.
    Module,
}

/// `--dist`: how tests reach the groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dist {
    /// A work queue: each group pulls its next units when it is free (one runner's default).
    Dynamic,
    /// A fixed split made before the tests start, the same on every runner of a CI matrix
    /// (implied by `--only`, `--plan` and `--tests`).
    Static,
}

/// `--copy-source`: the project files uploaded into the containers instead of bind-mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopySource {
    /// Copy for remote engines and for engines that cannot see the checkout (the default).
    #[default]
    Auto,
    /// Always copy instead of bind-mounting the project tree (`--copy-source`).
    Always,
    /// Never copy: an engine that cannot see the checkout is an error that says so.
    Never,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars on a terminal, plain lines otherwise.
    Auto,
    /// Always bars.
    Bars,
    /// Always plain prefixed lines.
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

/// `compose-shard run`.
#[derive(Debug, Clone)]
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
    /// `--docker-host` (repeatable; URLs or Docker context names, not yet resolved: empty
    /// means `docker-hosts` of pyproject.toml, else the default engine).
    pub docker_hosts: Vec<String>,
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
    /// `--docker-host` (repeatable; the tests are collected on the first).
    pub docker_hosts: Vec<String>,
}

/// `plan --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    /// A table.
    Text,
    /// The documented JSON schema.
    Json,
    /// A GitHub Actions `strategy.matrix`.
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
    /// `--docker-host` (repeatable): clean every one of these engines.
    pub docker_hosts: Vec<String>,
}

/// `config --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// YAML, like `docker compose config`.
    Yaml,
    /// The documented JSON schema.
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
