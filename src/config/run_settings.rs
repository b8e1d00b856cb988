//! [`RunSettings`]: everything `compose-shard run` was told, resolved in one call from the
//! flags ([`RunConfig`]), the project's `[tool.compose-shard]`, the environment and the
//! defaults, the way uv's `RunSettings::resolve(args, filesystem, environment)` does.
//!
//! The environment speaks where a CI splits one job into parallel copies (see
//! [`super::ci_split`]): its variables give `--only K` and N groups. `--only` or `--groups`
//! on the command line win (the variables are then not used, with a warning); the CI's count
//! wins over `groups` in pyproject.toml, since that many copies run whatever it says.
//!
//! Which project and services a run starts (`-f`, `--service`, `--with-service`) is not here:
//! pyproject.toml is found through the loaded project, so `selection` resolves those while
//! loading it. Everything else the run uses comes from a `RunSettings`, never from the flags
//! or the settings table directly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ci_split::{self, CiSplit};
use super::resolve::{self, DurationsFile, EngineHosts};
use super::{
    CopySource, Dist, GroupSelection, GroupsSetting, ProgressMode, RunConfig, Snapshots, SplitBy,
};
use crate::errors::Error;
use crate::pyproject::Settings;

/// The settings of one `compose-shard run`, every one resolved.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// `--groups`, else the CI's parallel copies, else `groups`, else auto.
    pub groups: GroupsSetting,
    /// `--only`, else this copy of the CI's parallel copies: the groups to run here (all when
    /// `None`).
    pub only: Option<GroupSelection>,
    /// Where `groups` and `only` came from when a CI split the job (no flag given).
    pub ci_split: Option<CiSplit>,
    /// What the run should say before it starts (settings that were overridden).
    pub warnings: Vec<String>,
    /// `--plan`: a saved plan to rerun.
    pub plan_file: Option<PathBuf>,
    /// `--tests`: a test list instead of a collection.
    pub tests_file: Option<PathBuf>,
    /// `--dist` as given; [`RunSettings::dist`] decides once the group count is known.
    pub dist_flag: Option<Dist>,
    /// `--split-by`, else `split-by`, else class.
    pub split_by: SplitBy,
    /// The durations file to read.
    pub durations: DurationsFile,
    /// `--durations-from-junit`.
    pub durations_from_junit: Vec<PathBuf>,
    /// `--out`, else `out`, else `compose-shard-results`.
    pub out_dir: PathBuf,
    /// `--ready-timeout`, else `ready-timeout`, else 3m.
    pub ready_timeout: Duration,
    /// `--timeout`, else `timeout`, else none.
    pub timeout: Option<Duration>,
    /// The test command: after `--`, else `command`, else `pytest`; with an entrypoint
    /// replaced, the entrypoint's words and what follows `--`.
    pub command: Vec<String>,
    /// `--entrypoint`, else `entrypoint`: the test service's entrypoint is cleared and these
    /// words lead [`RunSettings::command`].
    pub entrypoint: Option<Vec<String>>,
    /// The test container's extra environment: `env`, with `-e` replacing the same keys.
    pub env: Vec<(String, String)>,
    /// The engines to run on (not yet resolved to addresses).
    pub engines: EngineHosts,
    /// `--copy-source`.
    pub copy_source: CopySource,
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
    /// `--store-durations`.
    pub store_durations: Option<PathBuf>,
    /// Where this run remembers the durations it measured when `--store-durations` is not
    /// given (`durations_store::remembered`; set once the test service is known).
    pub remembered: Option<PathBuf>,
    /// `--exit-grace`, else `exit-grace`, else 30s.
    pub exit_grace: Duration,
    /// `--test-timeout`, else `test-timeout`, else none.
    pub test_timeout: Option<Duration>,
    /// `--retries`, else `retries`, else 0.
    pub retries: u32,
    /// `--until TEST` (checked: with `--plan` and exactly one group).
    pub until: Option<String>,
    /// `--snapshots`, else `snapshots`, else auto.
    pub snapshots: Snapshots,
    /// `--tmpfs-data`, else `tmpfs-data`, else false.
    pub tmpfs_data: bool,
    /// `COMPOSE_SHARD_TMPFS_SIZE`: the size of each `--tmpfs-data` tmpfs, instead of a share
    /// of the engine's memory.
    pub tmpfs_size: Option<u64>,
    /// `COMPOSE_SHARD_SNAPSHOT_LAYERS`: restore snapshots by layering over templates on the
    /// engine (default), or (`0`) by copying them into every environment.
    pub snapshot_layers: bool,
    /// `COMPOSE_SHARD_HOST_FOLDERS`: the test container's plugin and results folders are
    /// folders of this machine where the engine shares them (default), or (`0`) are
    /// written and read through the engine.
    pub host_folders: bool,
    /// `COMPOSE_SHARD_OWN_HEALTHCHECKS`: compose-shard runs the services' healthchecks and
    /// turns the engine's off in the run's containers (default), or (`0`) leaves them to
    /// the engine, as Compose does; always the engine's for `--keep`.
    pub own_healthchecks: bool,
    /// `COMPOSE_SHARD_STARTS_AT_ONCE`: how many environments each engine starts at a time
    /// (0: all at once); unset, by the engine's CPUs (`run::start_turns`).
    pub starts_at_once: Option<usize>,
}

/// The environment variable that turns layered snapshot restores off (`0`).
pub const SNAPSHOT_LAYERS_ENV: &str = "COMPOSE_SHARD_SNAPSHOT_LAYERS";
/// The environment variable that keeps the plugin's files in the engine (`0`).
pub const HOST_FOLDERS_ENV: &str = "COMPOSE_SHARD_HOST_FOLDERS";
/// The environment variable that leaves healthchecks to the engine (`0`).
pub const OWN_HEALTHCHECKS_ENV: &str = "COMPOSE_SHARD_OWN_HEALTHCHECKS";

/// The environment variable that sets how many environments an engine starts at a time.
pub const STARTS_AT_ONCE_ENV: &str = "COMPOSE_SHARD_STARTS_AT_ONCE";

/// `COMPOSE_SHARD_STARTS_AT_ONCE`: a count (0 is all at once), if set.
fn starts_at_once(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<usize>, Error> {
    let Some(text) = env(STARTS_AT_ONCE_ENV).filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    text.trim().parse().map(Some).map_err(|_| {
        Error::Usage(format!(
            "{STARTS_AT_ONCE_ENV}={text}: expected how many environments each engine starts at a time (0: all at once; unset: half the engine's CPUs with the work queue)"
        ))
    })
}

/// `COMPOSE_SHARD_SNAPSHOT_LAYERS`: `1`/`0` (or true/false, yes/no, on/off); unset is `1`.
fn snapshot_layers(env: &dyn Fn(&str) -> Option<String>) -> Result<bool, Error> {
    switch(
        env,
        SNAPSHOT_LAYERS_ENV,
        "1 (layer restored snapshots over templates on the engine) or 0 (copy them into every environment)",
    )
}

/// `COMPOSE_SHARD_HOST_FOLDERS`: `1`/`0` (or true/false, yes/no, on/off); unset is `1`.
fn host_folders(env: &dyn Fn(&str) -> Option<String>) -> Result<bool, Error> {
    switch(
        env,
        HOST_FOLDERS_ENV,
        "1 (the plugin's folders are this machine's where the engine shares them) or 0 (copy the plugin's files through the engine)",
    )
}

/// `COMPOSE_SHARD_OWN_HEALTHCHECKS`: `1`/`0` (or true/false, yes/no, on/off); unset is `1`.
fn own_healthchecks(env: &dyn Fn(&str) -> Option<String>) -> Result<bool, Error> {
    switch(
        env,
        OWN_HEALTHCHECKS_ENV,
        "1 (compose-shard runs the healthchecks until the services are healthy; the engine does not probe) or 0 (the engine runs them all through the run, as under Compose)",
    )
}

/// An on/off environment variable, on when unset; `expected` says what each value does.
fn switch(env: &dyn Fn(&str) -> Option<String>, name: &str, expected: &str) -> Result<bool, Error> {
    let Some(text) = env(name).filter(|t| !t.trim().is_empty()) else {
        return Ok(true);
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::Usage(format!("{name}={text}: expected {expected}"))),
    }
}

/// The environment variable that fixes the size of each `--tmpfs-data` tmpfs.
pub const TMPFS_SIZE_ENV: &str = "COMPOSE_SHARD_TMPFS_SIZE";

/// `COMPOSE_SHARD_TMPFS_SIZE` (`512m`, `2g`, bytes), if set.
fn tmpfs_size(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<u64>, Error> {
    let Some(text) = env(TMPFS_SIZE_ENV).filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    crate::compose::parse_byte_size(text.trim())
        .map(Some)
        .map_err(|why| {
            Error::Usage(format!(
                "{TMPFS_SIZE_ENV}={text}: {why}; give a size such as 512m or 2g, or unset it to size each tmpfs from the engine's memory"
            ))
        })
}

impl RunSettings {
    /// Resolve every setting of a run: `flags` first, then a CI's parallel-job variables
    /// (looked up with `env`), then `project` (the `[tool.compose-shard]` of the project in
    /// `project_dir`), then the defaults. A bad value in pyproject.toml is a usage error
    /// naming its key, inconsistent CI variables one naming the variables.
    pub fn resolve(
        flags: &RunConfig,
        project: &Settings,
        project_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RunSettings, Error> {
        let Split {
            groups,
            only,
            ci_split,
            warnings,
        } = split(flags, project, env)?;
        check_until(flags, only.as_ref())?;
        let entrypoint_flag = flags.service_flags.entrypoint.as_deref();
        let (command, entrypoint) =
            resolve::command_and_entrypoint(entrypoint_flag, &flags.command, project)?;
        Ok(RunSettings {
            groups,
            only,
            ci_split,
            warnings,
            plan_file: flags.plan_file.clone(),
            tests_file: flags.tests_file.clone(),
            dist_flag: flags.dist,
            split_by: resolve::split_by(flags.split_by, project),
            durations: resolve::durations_file(flags.durations.as_deref(), project, project_dir),
            durations_from_junit: flags.durations_from_junit.clone(),
            out_dir: resolve::out_dir(flags.out_dir.as_ref(), project),
            ready_timeout: resolve::ready_timeout(flags.ready_timeout, project)?,
            timeout: resolve::timeout(flags.timeout, project)?,
            command,
            entrypoint,
            env: resolve::env(&flags.env, project),
            engines: resolve::docker_hosts(&flags.docker_hosts, project),
            copy_source: flags.copy_source,
            keep: flags.keep,
            no_build: flags.no_build,
            build: flags.build,
            publish_ports: flags.publish_ports,
            progress: flags.progress,
            store_durations: flags.store_durations.clone(),
            remembered: None,
            exit_grace: resolve::exit_grace(flags.exit_grace, project)?,
            test_timeout: resolve::test_timeout(flags.test_timeout, project)?,
            retries: resolve::retries(flags.retries, project)?,
            until: flags.until.clone(),
            snapshots: resolve::snapshots(flags.snapshots, project),
            tmpfs_data: resolve::tmpfs_data(flags.tmpfs_data, project),
            tmpfs_size: tmpfs_size(env)?,
            snapshot_layers: snapshot_layers(env)?,
            host_folders: host_folders(env)?,
            // A kept environment is looked at afterwards: its health shows as under Compose.
            own_healthchecks: own_healthchecks(env)? && !flags.keep,
            starts_at_once: starts_at_once(env)?,
        })
    }

    /// `--dist`, else static when `--only`, `--plan` or `--tests` fixes the split or a single
    /// group runs everything (a queue with one taker only adds round trips), else dynamic.
    pub fn dist(&self, groups: usize) -> Result<Dist, Error> {
        let only = match &self.ci_split {
            Some(split) => format!("--only (from {}: {})", split.ci, split.variables),
            None => "--only".to_string(),
        };
        let fixed = [
            (self.only.is_some(), only.as_str()),
            (self.plan_file.is_some(), "--plan"),
            (self.tests_file.is_some(), "--tests"),
        ];
        let fixing: Vec<&str> = fixed
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| *f)
            .collect();
        match self.dist_flag {
            Some(Dist::Dynamic) if !fixing.is_empty() => Err(Error::Usage(format!(
                "--dist dynamic cannot be combined with {}: they fix each group's tests before the run; drop --dist dynamic (static is implied) or drop {}",
                fixing.join(" and "),
                fixing.join(" and ")
            ))),
            Some(dist) => Ok(dist),
            None if fixing.is_empty() && groups > 1 => Ok(Dist::Dynamic),
            None => Ok(Dist::Static),
        }
    }
}

/// The group count and the groups to run here, and where they came from.
struct Split {
    groups: GroupsSetting,
    only: Option<GroupSelection>,
    ci_split: Option<CiSplit>,
    warnings: Vec<String>,
}

/// `--groups`/`--only` when either is given, else a CI's parallel copies, else `groups`.
fn split(
    flags: &RunConfig,
    project: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Split, Error> {
    let detected = ci_split::detect(env);
    let given: Vec<&str> = [
        (flags.only.is_some(), "--only"),
        (flags.groups.is_some(), "--groups"),
    ]
    .into_iter()
    .filter_map(|(on, flag)| on.then_some(flag))
    .collect();
    if !given.is_empty() {
        let warnings = match detected {
            Ok(Some(ci)) => vec![format!(
                "{} given, so {}'s parallel-job variables ({}) are not used: every parallel copy of this job runs what the flags select",
                given.join(" and "),
                ci.ci,
                ci.variables
            )],
            _ => Vec::new(),
        };
        return Ok(Split {
            groups: resolve::groups(flags.groups, project),
            only: flags.only.clone(),
            ci_split: None,
            warnings,
        });
    }
    let Some(ci) = detected.map_err(Error::Usage)? else {
        return Ok(Split {
            groups: resolve::groups(None, project),
            only: None,
            ci_split: None,
            warnings: Vec::new(),
        });
    };
    let mut warnings = Vec::new();
    if project.groups.is_some() && resolve::groups(None, project) != GroupsSetting::Count(ci.groups)
    {
        warnings.push(format!(
            "groups in [tool.compose-shard] is not used: {} runs {} parallel copies of this job, one group each",
            ci.ci, ci.groups
        ));
    }
    Ok(Split {
        groups: GroupsSetting::Count(ci.groups),
        only: Some(GroupSelection(vec![ci.group])),
        ci_split: Some(ci),
        warnings,
    })
}

/// `--until TEST` runs one group of a saved plan: it needs `--plan` and exactly one group.
fn check_until(flags: &RunConfig, only: Option<&GroupSelection>) -> Result<(), Error> {
    let Some(test) = &flags.until else {
        return Ok(());
    };
    let one_group = matches!(only, Some(GroupSelection(groups)) if groups.len() == 1);
    if flags.plan_file.is_some() && one_group {
        return Ok(());
    }
    let got = match (&flags.plan_file, only) {
        (None, None) => "neither was given".to_string(),
        (None, Some(_)) if one_group => "--plan is missing".to_string(),
        (_, Some(GroupSelection(groups))) if !one_group => {
            format!("--only names {} groups", groups.len())
        }
        _ => "--only is missing".to_string(),
    };
    Err(Error::Usage(format!(
        "--until {test:?} runs one group's tests in plan order up to that test, so it needs --plan FILE and exactly one --only K ({got}); e.g. `compose-shard run --plan compose-shard-results/plan.json --only 2 --until {test:?}`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags of `compose-shard run` with nothing given.
    fn no_flags() -> RunConfig {
        RunConfig::default()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    const GITLAB_2_OF_3: &[(&str, &str)] = &[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "3")];

    fn project() -> Settings {
        Settings::parse(
            "[tool.compose-shard]\ngroups = 3\nsplit-by = \"module\"\nout = \"ci\"\nready-timeout = \"5m\"\ntimeout = \"30m\"\ncommand = [\"pytest\", \"-q\"]\nenv = { A = \"1\" }\ndurations = \"d.json\"\ndocker-hosts = [\"tcp://s:2375\"]\n",
        )
        .unwrap()
    }

    #[test]
    fn an_entrypoint_leads_the_test_command_as_compose_run_entrypoint_does() {
        let dir = Path::new("/p");
        let resolve = |flags: RunConfig, toml: &str| {
            let project = Settings::parse(toml).unwrap();
            RunSettings::resolve(&flags, &project, dir, &no_env)
        };
        // The flag, split like a shell, then what follows `--`; pyproject's `command` is
        // not appended (Compose appends neither the service's command nor anything else).
        let s = resolve(
            RunConfig {
                service_flags: crate::config::ServiceFlags {
                    entrypoint: Some("pytest 'tests/a b' -p no:x".into()),
                    ..Default::default()
                },
                command: vec!["-q".into()],
                ..no_flags()
            },
            "[tool.compose-shard]\ncommand = [\"pytest\", \"-x\"]\nentrypoint = \"ignored\"\n",
        )
        .unwrap();
        assert_eq!(s.command, ["pytest", "tests/a b", "-p", "no:x", "-q"]);
        assert_eq!(s.entrypoint.as_deref(), Some(&s.command[..4]));
        // pyproject's `entrypoint`, as a list, without a command after `--`.
        let s = resolve(
            no_flags(),
            "[tool.compose-shard]\ncommand = [\"pytest\", \"-x\"]\nentrypoint = [\"python\", \"-m\", \"pytest\"]\n",
        )
        .unwrap();
        assert_eq!(s.command, ["python", "-m", "pytest"]);
        // `''` clears it: the command after `--` runs as it is.
        let cleared = RunConfig {
            service_flags: crate::config::ServiceFlags {
                entrypoint: Some(String::new()),
                ..Default::default()
            },
            command: vec!["pytest".into()],
            ..no_flags()
        };
        let s = resolve(cleared, "").unwrap();
        assert_eq!(
            (s.command, s.entrypoint),
            (vec!["pytest".to_string()], Some(vec![]))
        );
        // No entrypoint: the command is what it always was.
        let s = resolve(no_flags(), "").unwrap();
        assert_eq!(
            (s.command, s.entrypoint),
            (vec!["pytest".to_string()], None)
        );
    }

    #[test]
    fn an_entrypoint_that_leaves_nothing_to_run_or_cannot_be_split_says_how_to_write_it() {
        let dir = Path::new("/p");
        let cleared = RunConfig {
            service_flags: crate::config::ServiceFlags {
                entrypoint: Some(String::new()),
                ..Default::default()
            },
            ..no_flags()
        };
        let err = RunSettings::resolve(&cleared, &Settings::default(), dir, &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("after `--`"), "{err}");
        let unbalanced = RunConfig {
            service_flags: crate::config::ServiceFlags {
                entrypoint: Some("pytest -k 'a or b".into()),
                ..Default::default()
            },
            ..no_flags()
        };
        let err = RunSettings::resolve(&unbalanced, &Settings::default(), dir, &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--entrypoint") && err.contains("quote"),
            "{err}"
        );
        let project = Settings::parse("[tool.compose-shard]\nentrypoint = \"pytest \\\"x\"\n");
        let err = RunSettings::resolve(&no_flags(), &project.unwrap(), dir, &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[tool.compose-shard] entrypoint"), "{err}");
    }

    #[test]
    fn one_call_resolves_every_setting_flags_first_then_pyproject_then_defaults() {
        let dir = Path::new("/p");
        let s = RunSettings::resolve(&no_flags(), &project(), dir, &no_env).unwrap();
        assert_eq!(s.groups, GroupsSetting::Count(3));
        assert_eq!(s.split_by, SplitBy::Module);
        assert_eq!(s.out_dir, PathBuf::from("ci"));
        assert_eq!(s.ready_timeout, Duration::from_secs(300));
        assert_eq!(s.timeout, Some(Duration::from_secs(1800)));
        assert_eq!(s.command, ["pytest", "-q"]);
        assert_eq!(s.env, [("A".to_string(), "1".to_string())]);
        assert_eq!(s.durations.path, PathBuf::from("/p/d.json"));
        assert_eq!(s.engines.named, ["tcp://s:2375"]);

        let flags = RunConfig {
            groups: Some(GroupsSetting::Auto),
            split_by: Some(SplitBy::Test),
            out_dir: Some("out".into()),
            ready_timeout: Some(Duration::from_secs(7)),
            command: vec!["pytest".into()],
            docker_hosts: vec!["unix:///a.sock".into()],
            ..no_flags()
        };
        let s = RunSettings::resolve(&flags, &project(), dir, &no_env).unwrap();
        assert_eq!(s.groups, GroupsSetting::Auto);
        assert_eq!(s.split_by, SplitBy::Test);
        assert_eq!(s.out_dir, PathBuf::from("out"));
        assert_eq!(s.ready_timeout, Duration::from_secs(7));
        assert_eq!(s.command, ["pytest"]);
        assert_eq!(s.engines.origin, "--docker-host");

        let s = RunSettings::resolve(&no_flags(), &Settings::default(), dir, &no_env).unwrap();
        assert_eq!(s.groups, GroupsSetting::Auto);
        assert_eq!(s.split_by, SplitBy::Class);
        assert_eq!(s.out_dir, PathBuf::from(resolve::DEFAULT_OUT));
        assert_eq!(s.ready_timeout, resolve::DEFAULT_READY_TIMEOUT);
        assert_eq!(s.timeout, None);
        assert_eq!(s.durations.path, PathBuf::from("/p/.test_durations"));
    }

    #[test]
    fn the_new_settings_resolve_flag_first_then_pyproject_then_default() {
        let project = Settings::parse(
            "[tool.compose-shard]\nexit-grace = \"1m\"\ntest-timeout = \"90s\"\nretries = 2\nsnapshots = \"refresh\"\ntmpfs-data = true\n",
        )
        .unwrap();
        let dir = Path::new(".");
        let s = RunSettings::resolve(&no_flags(), &project, dir, &no_env).unwrap();
        assert_eq!(s.exit_grace, Duration::from_secs(60));
        assert_eq!(s.test_timeout, Some(Duration::from_secs(90)));
        assert_eq!(s.retries, 2);
        assert_eq!(s.snapshots, Snapshots::Refresh);
        assert!(s.tmpfs_data);
        let flags = RunConfig {
            exit_grace: Some(Duration::from_secs(3)),
            test_timeout: Some(Duration::from_secs(4)),
            retries: Some(0),
            snapshots: Some(Snapshots::Off),
            ..no_flags()
        };
        let s = RunSettings::resolve(&flags, &project, dir, &no_env).unwrap();
        assert_eq!(s.exit_grace, Duration::from_secs(3));
        assert_eq!(s.test_timeout, Some(Duration::from_secs(4)));
        assert_eq!(s.retries, 0);
        assert_eq!(s.snapshots, Snapshots::Off);
        let s = RunSettings::resolve(&no_flags(), &Settings::default(), dir, &no_env).unwrap();
        assert_eq!(s.exit_grace, resolve::DEFAULT_EXIT_GRACE);
        assert_eq!(s.test_timeout, None);
        assert_eq!(s.retries, 0);
        assert_eq!(s.snapshots, Snapshots::Auto);
        assert!(!s.tmpfs_data);
    }

    #[test]
    fn until_needs_a_plan_and_exactly_one_group() {
        let dir = Path::new(".");
        let until = |plan: bool, only: Option<Vec<usize>>| {
            let flags = RunConfig {
                until: Some("t.py::test_b".into()),
                plan_file: plan.then(|| PathBuf::from("plan.json")),
                only: only.map(GroupSelection),
                ..no_flags()
            };
            RunSettings::resolve(&flags, &Settings::default(), dir, &no_env)
                .map_err(|e| e.to_string())
        };
        let s = until(true, Some(vec![2])).unwrap();
        assert_eq!(s.until.as_deref(), Some("t.py::test_b"));
        for (plan, only, says) in [
            (false, None, "neither was given"),
            (false, Some(vec![2]), "--plan is missing"),
            (true, None, "--only is missing"),
            (true, Some(vec![1, 2]), "--only names 2 groups"),
        ] {
            let err = until(plan, only).unwrap_err();
            assert!(
                err.contains("needs --plan FILE and exactly one --only K") && err.contains(says),
                "{err}"
            );
        }
    }

    #[test]
    fn a_bad_pyproject_value_names_its_key() {
        let bad = Settings::parse("[tool.compose-shard]\ntimeout = \"later\"\n").unwrap();
        let err = RunSettings::resolve(&no_flags(), &bad, Path::new("."), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[tool.compose-shard] timeout"), "{err}");
    }

    #[test]
    fn dist_is_static_when_the_split_is_fixed_or_one_group_runs() {
        let settings = |flags: RunConfig| {
            RunSettings::resolve(&flags, &Settings::default(), Path::new("."), &no_env).unwrap()
        };
        assert_eq!(settings(no_flags()).dist(4).unwrap(), Dist::Dynamic);
        assert_eq!(settings(no_flags()).dist(1).unwrap(), Dist::Static);
        let only = RunConfig {
            only: Some(GroupSelection(vec![2])),
            ..no_flags()
        };
        assert_eq!(settings(only.clone()).dist(4).unwrap(), Dist::Static);
        let err = settings(RunConfig {
            dist: Some(Dist::Dynamic),
            ..only
        })
        .dist(4)
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot be combined with --only"), "{err}");
    }

    #[test]
    fn a_ci_split_gives_only_and_the_group_count_over_pyproject() {
        let env = env_of(GITLAB_2_OF_3);
        let four = Settings::parse("[tool.compose-shard]\ngroups = 4\n").unwrap();
        let s = RunSettings::resolve(&no_flags(), &four, Path::new("."), &env).unwrap();
        assert_eq!(s.groups, GroupsSetting::Count(3));
        assert_eq!(s.only, Some(GroupSelection(vec![2])));
        assert_eq!(
            s.ci_split.as_ref().map(CiSplit::describe).as_deref(),
            Some("group 2 of 3 from GitLab CI (CI_NODE_INDEX=2, CI_NODE_TOTAL=3)")
        );
        assert!(
            s.warnings[0].starts_with("groups in [tool.compose-shard] is not used"),
            "{:?}",
            s.warnings
        );
        assert_eq!(s.dist(3).unwrap(), Dist::Static);
        for same_or_none in [project(), Settings::default()] {
            let s = RunSettings::resolve(&no_flags(), &same_or_none, Path::new("."), &env).unwrap();
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        }
        let circle = env_of(&[("CIRCLE_NODE_INDEX", "0"), ("CIRCLE_NODE_TOTAL", "1")]);
        let s = RunSettings::resolve(&no_flags(), &project(), Path::new("."), &circle).unwrap();
        assert_eq!(
            (s.groups, s.only, s.ci_split),
            (GroupsSetting::Count(3), None, None)
        );
    }

    #[test]
    fn only_or_groups_given_win_over_the_ci_split() {
        let env = env_of(GITLAB_2_OF_3);
        let only = RunConfig {
            only: Some(GroupSelection(vec![1])),
            groups: Some(GroupsSetting::Count(2)),
            ..no_flags()
        };
        let s = RunSettings::resolve(&only, &Settings::default(), Path::new("."), &env).unwrap();
        assert_eq!(s.groups, GroupsSetting::Count(2));
        assert_eq!(s.only, Some(GroupSelection(vec![1])));
        assert_eq!(s.ci_split, None);
        assert!(
            s.warnings[0].starts_with("--only and --groups given, so GitLab CI's parallel-job variables (CI_NODE_INDEX=2, CI_NODE_TOTAL=3) are not used"),
            "{:?}",
            s.warnings
        );
        let groups = RunConfig {
            groups: Some(GroupsSetting::Auto),
            ..no_flags()
        };
        let s = RunSettings::resolve(&groups, &Settings::default(), Path::new("."), &env).unwrap();
        assert_eq!((s.groups, s.only), (GroupsSetting::Auto, None));
        // Inconsistent variables do not matter when the flags decide.
        let bad = env_of(&[("CI_NODE_INDEX", "5"), ("CI_NODE_TOTAL", "3")]);
        let s = RunSettings::resolve(&groups, &Settings::default(), Path::new("."), &bad).unwrap();
        assert!(s.warnings.is_empty());
        let err = RunSettings::resolve(&no_flags(), &Settings::default(), Path::new("."), &bad)
            .unwrap_err();
        assert!(matches!(err, Error::Usage(_)));
        assert!(
            err.to_string().contains("CI_NODE_INDEX=5, CI_NODE_TOTAL=3"),
            "{err}"
        );
    }

    #[test]
    fn the_ci_group_counts_as_only_for_until_and_dist() {
        let env = env_of(GITLAB_2_OF_3);
        let flags = RunConfig {
            plan_file: Some("plan.json".into()),
            until: Some("t.py::test_b".into()),
            ..no_flags()
        };
        let s = RunSettings::resolve(&flags, &Settings::default(), Path::new("."), &env).unwrap();
        assert_eq!(s.only, Some(GroupSelection(vec![2])));
        let dynamic = RunConfig {
            dist: Some(Dist::Dynamic),
            ..no_flags()
        };
        let err = RunSettings::resolve(&dynamic, &Settings::default(), Path::new("."), &env)
            .unwrap()
            .dist(3)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--only (from GitLab CI: CI_NODE_INDEX=2, CI_NODE_TOTAL=3)"),
            "{err}"
        );
    }

    /// The settings with no flags and only `variable` set to `value` (unset for `None`).
    fn with_variable(variable: &str, value: Option<&str>) -> Result<RunSettings, Error> {
        let env = |name: &str| {
            (name == variable)
                .then_some(value)
                .flatten()
                .map(str::to_string)
        };
        RunSettings::resolve(&no_flags(), &Settings::default(), Path::new("."), &env)
    }

    #[test]
    fn the_tmpfs_size_comes_from_its_variable_and_a_bad_one_says_how_to_write_it() {
        let resolve = |value| with_variable(TMPFS_SIZE_ENV, value);
        assert_eq!(resolve(None).unwrap().tmpfs_size, None);
        assert_eq!(resolve(Some("8m")).unwrap().tmpfs_size, Some(8 << 20));
        let err = resolve(Some("lots")).unwrap_err().to_string();
        assert!(err.starts_with("COMPOSE_SHARD_TMPFS_SIZE=lots: "), "{err}");
        assert!(err.contains("512m"), "{err}");
    }

    #[test]
    fn starts_at_once_is_a_count_or_unset_and_a_bad_value_says_what_it_takes() {
        let resolve = |value| with_variable(STARTS_AT_ONCE_ENV, value);
        assert_eq!(resolve(None).unwrap().starts_at_once, None);
        assert_eq!(resolve(Some(" ")).unwrap().starts_at_once, None);
        assert_eq!(resolve(Some("0")).unwrap().starts_at_once, Some(0));
        assert_eq!(resolve(Some("3")).unwrap().starts_at_once, Some(3));
        let err = resolve(Some("two")).unwrap_err().to_string();
        assert!(
            err.starts_with("COMPOSE_SHARD_STARTS_AT_ONCE=two: "),
            "{err}"
        );
        assert!(err.contains("0: all at once"), "{err}");
    }

    #[test]
    fn kept_environments_leave_healthchecks_to_the_engine() {
        let keep = RunConfig {
            keep: true,
            ..no_flags()
        };
        let settings = RunSettings::resolve(&keep, &Settings::default(), Path::new("."), &no_env);
        assert!(!settings.unwrap().own_healthchecks);
    }

    #[test]
    fn on_off_variables_are_on_unless_they_say_0_and_a_bad_value_names_both_choices() {
        type Get = fn(&RunSettings) -> bool;
        let cases: [(&str, Get, &str); 2] = [
            (
                HOST_FOLDERS_ENV,
                |s| s.host_folders,
                "or 0 (copy the plugin's files through the engine)",
            ),
            (
                OWN_HEALTHCHECKS_ENV,
                |s| s.own_healthchecks,
                "or 0 (the engine runs them all through the run",
            ),
        ];
        for (variable, get, off_choice) in cases {
            let resolve = |value| with_variable(variable, value);
            assert!(get(&resolve(None).unwrap()), "{variable}");
            assert!(get(&resolve(Some("yes")).unwrap()), "{variable}");
            assert!(!get(&resolve(Some("0")).unwrap()), "{variable}");
            assert!(!get(&resolve(Some("Off")).unwrap()), "{variable}");
            let err = resolve(Some("maybe")).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{variable}=maybe: expected 1 (")),
                "{err}"
            );
            assert!(err.contains(off_choice), "{err}");
        }
    }
}
