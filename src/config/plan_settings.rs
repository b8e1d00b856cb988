//! [`PlanSettings`]: what `compose-shard plan` shares with `run` (the split, the durations,
//! the collection command and its environment, the engine), resolved in one call from the
//! flags ([`PlanConfig`]), the project's `[tool.compose-shard]` and the defaults, by the same
//! rules as [`super::RunSettings`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::resolve::{self, DurationsFile, EngineHosts};
use super::{PlanConfig, SplitBy};
use crate::errors::Error;
use crate::pyproject::Settings;

/// The settings of one `compose-shard plan`, every one resolved.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    /// `--split-by`, else `split-by`, else class.
    pub split_by: SplitBy,
    /// The durations file to read.
    pub durations: DurationsFile,
    /// `--durations-from-junit`.
    pub durations_from_junit: Vec<PathBuf>,
    /// The collection command: after `--`, else `command`, else `pytest`; with an entrypoint
    /// replaced, the entrypoint's words and what follows `--`.
    pub command: Vec<String>,
    /// `--entrypoint`, else `entrypoint`: the test service's entrypoint is cleared and these
    /// words lead [`PlanSettings::command`].
    pub entrypoint: Option<Vec<String>>,
    /// The test container's extra environment (`env`).
    pub env: Vec<(String, String)>,
    /// `ready-timeout`, else 3m (`plan` has no flag for it).
    pub ready_timeout: Duration,
    /// The engines; the collection runs on the first.
    pub engines: EngineHosts,
}

impl PlanSettings {
    /// Resolve every setting of a plan: `flags` first, then `project` (the
    /// `[tool.compose-shard]` of the project in `project_dir`), then the defaults.
    pub fn resolve(
        flags: &PlanConfig,
        project: &Settings,
        project_dir: &Path,
    ) -> Result<PlanSettings, Error> {
        let entrypoint_flag = flags.service_flags.entrypoint.as_deref();
        let (command, entrypoint) =
            resolve::command_and_entrypoint(entrypoint_flag, &flags.command, project)?;
        Ok(PlanSettings {
            split_by: resolve::split_by(flags.split_by, project),
            durations: resolve::durations_file(flags.durations.as_deref(), project, project_dir),
            durations_from_junit: flags.durations_from_junit.clone(),
            command,
            entrypoint,
            env: resolve::env(&[], project),
            ready_timeout: resolve::ready_timeout(None, project)?,
            engines: resolve::docker_hosts(&flags.docker_hosts, project),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ComposeOptions, PlanFormat};

    #[test]
    fn plan_resolves_like_run() {
        let flags = PlanConfig {
            compose: ComposeOptions::default(),
            service: None,
            groups: 2,
            tests_file: None,
            durations: None,
            durations_from_junit: Vec::new(),
            split_by: None,
            format: PlanFormat::Text,
            command: Vec::new(),
            service_flags: Default::default(),
            docker_hosts: Vec::new(),
        };
        let project = Settings::parse(
            "[tool.compose-shard]\nsplit-by = \"test\"\nready-timeout = \"1m\"\ncommand = [\"pytest\", \"-p\", \"no:cacheprovider\"]\n",
        )
        .unwrap();
        let s = PlanSettings::resolve(&flags, &project, Path::new("/p")).unwrap();
        assert_eq!(s.split_by, SplitBy::Test);
        assert_eq!(s.ready_timeout, Duration::from_secs(60));
        assert_eq!(s.command, ["pytest", "-p", "no:cacheprovider"]);
        assert_eq!(s.durations.path, PathBuf::from("/p/.test_durations"));
        let s = PlanSettings::resolve(&flags, &Settings::default(), Path::new("/p")).unwrap();
        assert_eq!(s.split_by, SplitBy::Class);
        assert_eq!(s.command, [resolve::DEFAULT_COMMAND]);
    }
}
