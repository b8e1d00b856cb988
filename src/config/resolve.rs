//! Every setting a command uses, resolved in one place (`config::resolve`): the flag when it was given, else the
//! project's `[tool.compose-shard]` (pyproject.toml), else the default defined here once.
//! Flags that have a default are `Option`s in [`crate::config`], so a flag typed with its
//! default value (`--ready-timeout 3m`) still wins over pyproject.toml.
//!
//! One function per setting; [`super::RunSettings`] and [`super::PlanSettings`] call them all
//! at once, so a command resolves its settings in one call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{GroupsSetting, Snapshots, SplitBy};
use crate::errors::Error;
use crate::pyproject::{Settings, Words};
use crate::report::ResultsLayout;

/// How long services may take to become ready, unless told otherwise.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(180);
/// The results folder, unless told otherwise.
pub const DEFAULT_OUT: &str = ResultsLayout::DEFAULT_ROOT;
/// The test command, unless told otherwise.
pub const DEFAULT_COMMAND: &str = "pytest";
/// pytest-split's default durations file name, relative to the project directory.
pub const DEFAULT_DURATIONS: &str = ".test_durations";
/// How long a test process may stay alive after pytest's session finished, unless told
/// otherwise.
pub const DEFAULT_EXIT_GRACE: Duration = Duration::from_secs(30);

fn setting_duration(key: &str, text: &str) -> Result<Duration, Error> {
    crate::duration::parse_duration(text)
        .map_err(|e| Error::Usage(format!("[tool.compose-shard] {key}: {e}")))
}

/// `--out`, else `out`, else [`DEFAULT_OUT`].
pub fn out_dir(flag: Option<&PathBuf>, settings: &Settings) -> PathBuf {
    flag.cloned()
        .or_else(|| settings.out.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT))
}

/// `--ready-timeout`, else `ready-timeout`, else [`DEFAULT_READY_TIMEOUT`].
pub fn ready_timeout(flag: Option<Duration>, settings: &Settings) -> Result<Duration, Error> {
    match (flag, &settings.ready_timeout) {
        (Some(given), _) => Ok(given),
        (None, Some(text)) => setting_duration("ready-timeout", text),
        (None, None) => Ok(DEFAULT_READY_TIMEOUT),
    }
}

/// `--timeout`, else `timeout`, else none.
pub fn timeout(flag: Option<Duration>, settings: &Settings) -> Result<Option<Duration>, Error> {
    match (flag, &settings.timeout) {
        (Some(given), _) => Ok(Some(given)),
        (None, Some(text)) => setting_duration("timeout", text).map(Some),
        (None, None) => Ok(None),
    }
}

/// `--exit-grace`, else `exit-grace`, else [`DEFAULT_EXIT_GRACE`].
pub fn exit_grace(flag: Option<Duration>, settings: &Settings) -> Result<Duration, Error> {
    match (flag, &settings.exit_grace) {
        (Some(given), _) => Ok(given),
        (None, Some(text)) => setting_duration("exit-grace", text),
        (None, None) => Ok(DEFAULT_EXIT_GRACE),
    }
}

/// `--test-timeout`, else `test-timeout`, else none.
pub fn test_timeout(
    flag: Option<Duration>,
    settings: &Settings,
) -> Result<Option<Duration>, Error> {
    match (flag, &settings.test_timeout) {
        (Some(given), _) => Ok(Some(given)),
        (None, Some(text)) => setting_duration("test-timeout", text).map(Some),
        (None, None) => Ok(None),
    }
}

/// `--retries`, else `retries` (a whole number, 0 or more), else 0.
pub fn retries(flag: Option<u32>, settings: &Settings) -> Result<u32, Error> {
    match (flag, &settings.retries) {
        (Some(given), _) => Ok(given),
        (None, Some(value)) => value
            .as_integer()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "[tool.compose-shard] retries: must be a whole number of 0 or more (got {value})"
                ))
            }),
        (None, None) => Ok(0),
    }
}

/// `--snapshots`, else `snapshots`, else auto.
pub fn snapshots(flag: Option<Snapshots>, settings: &Settings) -> Snapshots {
    flag.or(settings.snapshots).unwrap_or_default()
}

/// `--tmpfs-data` (there is no flag to turn it off), else `tmpfs-data`, else false.
pub fn tmpfs_data(flag: bool, settings: &Settings) -> bool {
    flag || settings.tmpfs_data.unwrap_or(false)
}

/// The command after `--`, else `command`, else `pytest`.
pub fn command(flag: &[String], settings: &Settings) -> Vec<String> {
    if !flag.is_empty() {
        return flag.to_vec();
    }
    settings
        .command
        .clone()
        .unwrap_or_else(|| vec![DEFAULT_COMMAND.to_string()])
}

/// `--entrypoint`, else `entrypoint`: the words that replace the test service's entrypoint,
/// split like a shell as `docker compose run --entrypoint` splits them (`''` clears it).
pub fn entrypoint(flag: Option<&str>, settings: &Settings) -> Result<Option<Vec<String>>, Error> {
    let split = |line: &str, place: &str| {
        shell_words::split(line).map_err(|e| {
            Error::Usage(format!(
                "{place} {line:?}: {e}: quote it as a shell would (e.g. --entrypoint \"pytest -k 'a or b'\")"
            ))
        })
    };
    match (flag, &settings.entrypoint) {
        (Some(line), _) => split(line, "--entrypoint").map(Some),
        (None, Some(Words::Line(line))) => split(line, "[tool.compose-shard] entrypoint").map(Some),
        (None, Some(Words::List(words))) => Ok(Some(words.clone())),
        (None, None) => Ok(None),
    }
}

/// The test command with an entrypoint replaced: the entrypoint's words, then the arguments
/// given after `--` (`docker compose run --entrypoint E SERVICE ARGS` runs `E ARGS`; neither
/// the service's `command` nor pyproject's `command` follows). Without an entrypoint, the
/// command is [`command`]'s.
/// Returns the command and the entrypoint's words (`--entrypoint`, else `entrypoint`).
pub fn command_and_entrypoint(
    entrypoint_flag: Option<&str>,
    flag: &[String],
    settings: &Settings,
) -> Result<(Vec<String>, Option<Vec<String>>), Error> {
    let Some(words) = entrypoint(entrypoint_flag, settings)? else {
        return Ok((command(flag, settings), None));
    };
    let argv: Vec<String> = words.iter().chain(flag).cloned().collect();
    if argv.is_empty() {
        return Err(Error::Usage(
            "the entrypoint is cleared and no test command follows: give it after `--` (e.g. `--entrypoint '' -- pytest`)".into(),
        ));
    }
    Ok((argv, Some(words)))
}

/// `env` of pyproject.toml, with `-e KEY=VAL` flags replacing the same keys.
pub fn env(flags: &[(String, String)], settings: &Settings) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = settings
        .env
        .iter()
        .filter(|(k, _)| !flags.iter().any(|(c, _)| c == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend(flags.iter().cloned());
    env
}

/// `--split-by`, else `split-by`, else `class`.
pub fn split_by(flag: Option<SplitBy>, settings: &Settings) -> SplitBy {
    flag.or(settings.split_by).unwrap_or_default()
}

/// `--groups N|auto`, else `groups`, else `auto`.
pub fn groups(flag: Option<GroupsSetting>, settings: &Settings) -> GroupsSetting {
    match (flag, &settings.groups) {
        (Some(g), _) => g,
        (None, Some(toml::Value::Integer(n))) => GroupsSetting::Count((*n).max(0) as usize),
        (None, _) => GroupsSetting::Auto,
    }
}

/// The durations file `run` and `plan` read, and whether `--durations` named it (then it must
/// exist; otherwise it may be missing, as on a first run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationsFile {
    /// The file (may not exist).
    pub path: PathBuf,
    /// Named by `--durations`.
    pub explicit: bool,
}

/// `--durations` (relative to the current directory, like every path on the command line),
/// else `durations`, else [`DEFAULT_DURATIONS`], both relative to the project directory.
pub fn durations_file(
    flag: Option<&Path>,
    settings: &Settings,
    project_dir: &Path,
) -> DurationsFile {
    match flag {
        Some(path) => DurationsFile {
            path: path.to_path_buf(),
            explicit: true,
        },
        None => DurationsFile {
            path: project_dir.join(
                settings
                    .durations
                    .as_deref()
                    .unwrap_or(Path::new(DEFAULT_DURATIONS)),
            ),
            explicit: false,
        },
    }
}

/// The engines a command was told to use, and where they were named (for errors); none
/// means the default engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineHosts {
    /// URLs or Docker context names, not yet resolved.
    pub named: Vec<String>,
    /// Where they were named: `--docker-host` or `docker-hosts in [tool.compose-shard]`.
    pub origin: &'static str,
}

/// Every `--docker-host`, else `docker-hosts`, else none (the default engine).
pub fn docker_hosts(flags: &[String], settings: &Settings) -> EngineHosts {
    if flags.is_empty() {
        EngineHosts {
            named: settings.docker_hosts.clone(),
            origin: "docker-hosts in [tool.compose-shard]",
        }
    } else {
        EngineHosts {
            named: flags.to_vec(),
            origin: "--docker-host",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::parse(
            "[tool.compose-shard]\nout = \"ci-results\"\nready-timeout = \"5m\"\ntimeout = \"30m\"\ncommand = [\"pytest\", \"-q\"]\nenv = { A = \"1\", B = \"2\" }\ngroups = 3\nsplit-by = \"module\"\n",
        )
        .unwrap()
    }

    #[test]
    fn a_flag_given_with_the_default_value_still_wins_over_pyproject() {
        let s = settings();
        assert_eq!(
            out_dir(Some(&PathBuf::from(DEFAULT_OUT)), &s),
            PathBuf::from(DEFAULT_OUT)
        );
        assert_eq!(
            ready_timeout(Some(DEFAULT_READY_TIMEOUT), &s).unwrap(),
            DEFAULT_READY_TIMEOUT
        );
        assert_eq!(command(&["pytest".into()], &s), ["pytest"]);
    }

    #[test]
    fn pyproject_beats_the_defaults_and_flags_beat_pyproject() {
        let s = settings();
        assert_eq!(out_dir(None, &s), PathBuf::from("ci-results"));
        assert_eq!(ready_timeout(None, &s).unwrap(), Duration::from_secs(300));
        assert_eq!(timeout(None, &s).unwrap(), Some(Duration::from_secs(1800)));
        assert_eq!(command(&[], &s), ["pytest", "-q"]);
        assert_eq!(split_by(None, &s), SplitBy::Module);
        assert_eq!(groups(None, &s), GroupsSetting::Count(3));
        assert_eq!(groups(Some(GroupsSetting::Auto), &s), GroupsSetting::Auto);
        let e = env(&[("B".into(), "flag".into())], &s);
        assert!(e.contains(&("A".into(), "1".into())));
        assert!(e.contains(&("B".into(), "flag".into())));
        assert!(!e.contains(&("B".into(), "2".into())));
    }

    #[test]
    fn defaults_apply_when_nothing_is_said() {
        let s = Settings::default();
        assert_eq!(out_dir(None, &s), PathBuf::from("compose-shard-results"));
        assert_eq!(ready_timeout(None, &s).unwrap(), DEFAULT_READY_TIMEOUT);
        assert_eq!(timeout(None, &s).unwrap(), None);
        assert_eq!(command(&[], &s), ["pytest"]);
        assert_eq!(split_by(None, &s), SplitBy::Class);
        assert_eq!(groups(None, &s), GroupsSetting::Auto);
    }

    #[test]
    fn the_durations_flag_is_taken_as_given_and_the_setting_is_relative_to_the_project() {
        let dir = Path::new("/project");
        let given = durations_file(Some(Path::new("d.json")), &settings(), dir);
        assert_eq!(given.path, PathBuf::from("d.json"));
        assert!(given.explicit);
        let s = Settings::parse("[tool.compose-shard]\ndurations = \"ci/d.json\"\n").unwrap();
        let from_setting = durations_file(None, &s, dir);
        assert_eq!(from_setting.path, PathBuf::from("/project/ci/d.json"));
        assert!(!from_setting.explicit);
        let default = durations_file(None, &Settings::default(), dir);
        assert_eq!(default.path, PathBuf::from("/project/.test_durations"));
    }

    #[test]
    fn docker_host_flags_replace_the_settings_list() {
        let settings = Settings {
            docker_hosts: vec!["tcp://s1:2375".into(), "ssh://ci@s2".into()],
            ..Settings::default()
        };
        let flags = vec!["unix:///a.sock".to_string(), "tcp://b:2375".to_string()];
        let hosts = docker_hosts(&flags, &settings);
        assert_eq!(hosts.named, flags);
        assert_eq!(hosts.origin, "--docker-host");
        let hosts = docker_hosts(&[], &settings);
        assert_eq!(hosts.named, ["tcp://s1:2375", "ssh://ci@s2"]);
        assert_eq!(hosts.origin, "docker-hosts in [tool.compose-shard]");
        assert!(docker_hosts(&[], &Settings::default()).named.is_empty());
    }

    #[test]
    fn new_run_settings_flag_beats_pyproject_beats_default() {
        let s = Settings::parse(
            "[tool.compose-shard]\nexit-grace = \"1m\"\ntest-timeout = \"90s\"\nretries = 2\nsnapshots = \"off\"\ntmpfs-data = true\n",
        )
        .unwrap();
        let secs = Duration::from_secs;
        assert_eq!(exit_grace(Some(secs(5)), &s).unwrap(), secs(5));
        assert_eq!(exit_grace(None, &s).unwrap(), secs(60));
        assert_eq!(exit_grace(None, &Settings::default()).unwrap(), secs(30));
        assert_eq!(test_timeout(Some(secs(1)), &s).unwrap(), Some(secs(1)));
        assert_eq!(test_timeout(None, &s).unwrap(), Some(secs(90)));
        assert_eq!(test_timeout(None, &Settings::default()).unwrap(), None);
        assert_eq!(retries(Some(0), &s).unwrap(), 0);
        assert_eq!(retries(None, &s).unwrap(), 2);
        assert_eq!(retries(None, &Settings::default()).unwrap(), 0);
        assert_eq!(snapshots(Some(Snapshots::Refresh), &s), Snapshots::Refresh);
        assert_eq!(snapshots(None, &s), Snapshots::Off);
        assert_eq!(snapshots(None, &Settings::default()), Snapshots::Auto);
        assert!(tmpfs_data(true, &Settings::default()));
        assert!(tmpfs_data(false, &s));
        assert!(!tmpfs_data(false, &Settings::default()));
    }

    #[test]
    fn bad_new_settings_name_their_key() {
        let err = |text: &str| {
            let s = Settings::parse(&format!("[tool.compose-shard]\n{text}\n")).unwrap();
            [
                exit_grace(None, &s).err(),
                test_timeout(None, &s).err(),
                retries(None, &s).err(),
            ]
            .into_iter()
            .flatten()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
        };
        assert!(err("exit-grace = \"soon\"").contains("exit-grace"));
        assert!(err("test-timeout = \"5 min\"").contains("test-timeout"));
        for bad in ["-1", "\"3\"", "1.5", "4294967296"] {
            let e = err(&format!("retries = {bad}"));
            assert!(e.contains("[tool.compose-shard] retries"), "{bad}: {e}");
        }
        let parse_err =
            |text: &str| Settings::parse(&format!("[tool.compose-shard]\n{text}\n")).unwrap_err();
        let e = parse_err("snapshots = \"never\"");
        assert!(e.contains("snapshots") && e.contains("refresh"), "{e}");
        let e = parse_err("tmpfs-data = \"yes\"");
        assert!(e.contains("tmpfs-data"), "{e}");
        let e = parse_err("exit_grace = \"1m\"");
        assert!(e.contains("exit_grace"), "{e}");
    }

    #[test]
    fn a_bad_setting_names_its_key() {
        let s = Settings::parse("[tool.compose-shard]\nready-timeout = \"soon\"\n").unwrap();
        let err = ready_timeout(None, &s).unwrap_err().to_string();
        assert!(err.contains("ready-timeout"), "{err}");
    }
}
