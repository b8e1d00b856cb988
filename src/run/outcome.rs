//! How a group ends, typed until it is shown: [`GroupStatus`] carries an
//! [`EnvironmentFailure`] (with the engine's own error inside), a [`CollectionFailure`] or the
//! limit a group reached, and each has exactly one `Display`. The summary, the live display,
//! the GitHub summary and the JUnit testcase of a group without results all print these, so
//! a message is worded in one place.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::EngineError;

/// How a group ended.
#[derive(Debug, Clone, Default)]
pub enum GroupStatus {
    /// pytest ran and every test passed (or the group was empty).
    #[default]
    Passed,
    /// pytest ran and some tests failed.
    Failed,
    /// The environment failed (service never ready, container died, engine error).
    Environment(EnvironmentFailure),
    /// The group exceeded `--timeout`.
    TimedOut {
        /// The limit.
        limit: Duration,
        /// Every thread's stack in the test process when it was stopped, if the plugin
        /// could write them.
        stacks: Option<String>,
    },
    /// A test ran longer than `--test-timeout`: it is an error, the group ended.
    TestTimedOut {
        /// The test.
        test: String,
        /// The limit.
        limit: Duration,
    },
    /// The test command did not collect the suite (collection errors, or it is not pytest).
    Collection(CollectionFailure),
}

impl GroupStatus {
    /// Short text for tables and the live display.
    pub fn label(&self) -> &'static str {
        match self {
            GroupStatus::Passed => "passed",
            GroupStatus::Failed => "failed",
            GroupStatus::Environment(_) => "env error",
            GroupStatus::TimedOut { .. } => "timed out",
            GroupStatus::TestTimedOut { .. } => "test timed out",
            GroupStatus::Collection(_) => "collect error",
        }
    }

    /// Whether pytest ran the group's tests to an outcome of its own (passed or failed, or a
    /// test timed out and pytest ended the session with its results).
    pub fn has_results(&self) -> bool {
        matches!(
            self,
            GroupStatus::Passed | GroupStatus::Failed | GroupStatus::TestTimedOut { .. }
        )
    }

    /// Why the group has no results of its own, when it has none (its JUnit testcase, its
    /// `missing.txt`, the `crashed:` status of the tables).
    pub fn problem(&self) -> Option<String> {
        match self {
            GroupStatus::Passed | GroupStatus::Failed | GroupStatus::TestTimedOut { .. } => None,
            GroupStatus::Environment(f) => Some(f.to_string()),
            other => Some(other.to_string()),
        }
    }
}

impl PartialEq for GroupStatus {
    /// Failures compare by what they say: an engine error is not comparable otherwise.
    fn eq(&self, other: &GroupStatus) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

/// `30s`, `2m5s`: a limit as the user would type it.
pub fn format_limit(limit: Duration) -> String {
    let secs = limit.as_secs();
    let millis = limit.subsec_millis();
    if secs == 0 {
        return format!("{millis}ms");
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut text = String::new();
    if h > 0 {
        text.push_str(&format!("{h}h"));
    }
    if m > 0 {
        text.push_str(&format!("{m}m"));
    }
    if s > 0 || text.is_empty() {
        text.push_str(&format!("{s}s"));
    }
    text
}

impl fmt::Display for GroupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupStatus::Passed => f.write_str("passed"),
            GroupStatus::Failed => f.write_str("failed"),
            GroupStatus::Environment(failure) => write!(f, "environment error: {failure}"),
            GroupStatus::TimedOut { limit, stacks } => {
                write!(f, "timed out after {} (--timeout)", format_limit(*limit))?;
                if let Some(stacks) = stacks {
                    write!(
                        f,
                        "\n--- the test process's threads when it was stopped ---\n{}",
                        stacks.trim_end()
                    )?;
                }
                Ok(())
            }
            GroupStatus::TestTimedOut { test, limit } => write!(
                f,
                "test {test} ran longer than --test-timeout {}: recorded as an error with every thread's stack, and the group ended",
                format_limit(*limit)
            ),
            GroupStatus::Collection(failure) => write!(f, "collection failed: {failure}"),
        }
    }
}

/// Why a group's environment, or its test process, failed.
#[derive(Debug, Clone)]
pub struct EnvironmentFailure {
    /// The service at fault, if one is.
    pub service: Option<String>,
    /// What happened.
    pub cause: FailureCause,
    /// Its state as last seen (`exited with code 1`).
    pub state: Option<String>,
    /// The last lines of its log.
    pub log_tail: Option<String>,
}

/// What went wrong in an [`EnvironmentFailure`].
#[derive(Debug, Clone)]
pub enum FailureCause {
    /// An engine operation failed.
    Engine(Arc<EngineError>),
    /// A dependency a dependent waits for turned unhealthy.
    Unhealthy,
    /// A dependency a dependent waits for exited before it was healthy.
    ExitedBeforeHealthy,
    /// A dependent waits for it to be healthy, but it has no healthcheck.
    NoHealthcheck,
    /// Not healthy within `--ready-timeout`.
    NotHealthyInTime,
    /// A dependent waits for it to complete successfully, but it failed.
    CompletionFailed,
    /// Not completed within `--ready-timeout`.
    NotCompletedInTime,
    /// The dependencies form a cycle.
    DependencyCycle(Vec<String>),
    /// The group's results folder could not be created.
    ResultsFolder {
        /// The folder.
        path: std::path::PathBuf,
        /// The error.
        source: Arc<std::io::Error>,
    },
    /// The test process ended without pytest's exit status (killed, crashed).
    TestProcess {
        /// The container's exit code, if known.
        exit_code: Option<i64>,
    },
    /// Copying the project files into a container (`--copy-source`) failed.
    SourceCopy {
        /// The project folder or file.
        source_path: std::path::PathBuf,
        /// `container:path`.
        target: String,
        /// The engine's error.
        error: Arc<EngineError>,
    },
    /// A service has neither an image nor a build (or `--no-build` was given).
    NoImage,
    /// A missing bind-mount source could not be created.
    BindSource {
        /// The host path.
        path: std::path::PathBuf,
        /// Why.
        source: Arc<std::io::Error>,
    },
    /// The run has no group to run (none selected, or no engine).
    NothingToRun,
    /// A service's data in memory (`--tmpfs-data`) filled its tmpfs.
    DataInMemoryFull {
        /// The path in the container.
        path: String,
        /// The tmpfs's size limit.
        bytes: u64,
    },
    /// The group's engine could not be prepared (images, source copy).
    EngineUnavailable {
        /// The engine.
        engine: String,
        /// Why.
        reason: String,
    },
}

impl EnvironmentFailure {
    /// A failure of an engine operation, with no service at fault.
    pub fn engine(e: EngineError) -> Self {
        EnvironmentFailure::of(FailureCause::Engine(Arc::new(e)))
    }

    /// A failure with this cause and nothing else known.
    pub fn of(cause: FailureCause) -> Self {
        EnvironmentFailure {
            service: None,
            cause,
            state: None,
            log_tail: None,
        }
    }

    /// The same failure, blamed on `service`.
    pub fn in_service(mut self, service: &str) -> Self {
        self.service = Some(service.to_string());
        self
    }
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureCause::Engine(e) => f.write_str(&crate::errors::render_chain(e.as_ref())),
            FailureCause::Unhealthy => f.write_str("it became unhealthy"),
            FailureCause::ExitedBeforeHealthy => f.write_str("it exited before becoming healthy"),
            FailureCause::NoHealthcheck => {
                f.write_str("a dependent waits for it to be healthy, but it has no healthcheck")
            }
            FailureCause::NotHealthyInTime => f.write_str("not healthy within the ready timeout"),
            FailureCause::CompletionFailed => {
                f.write_str("a dependent waits for it to complete successfully, but it failed")
            }
            FailureCause::NotCompletedInTime => {
                f.write_str("not completed within the ready timeout")
            }
            FailureCause::DependencyCycle(cycle) => {
                write!(f, "dependency cycle: {}", cycle.join(" -> "))
            }
            FailureCause::ResultsFolder { path, source } => {
                write!(f, "failed to create {}: {source}", path.display())
            }
            FailureCause::TestProcess { exit_code } => write!(
                f,
                "the test process ended abnormally (exit code {})",
                exit_code.map_or("unknown".into(), |c| c.to_string())
            ),
            FailureCause::SourceCopy {
                source_path,
                target,
                error,
            } => write!(
                f,
                "copying {} into {target} (--copy-source): {}",
                source_path.display(),
                crate::errors::render_chain(error.as_ref())
            ),
            FailureCause::BindSource { path, source } => write!(
                f,
                "cannot create the missing bind-mount source {} (Compose creates it): {source}; create it yourself, or set `bind.create_host_path: false` to have the run refuse it",
                path.display()
            ),
            FailureCause::NoImage => {
                f.write_str("it has neither image nor build (or --no-build was given)")
            }
            FailureCause::NothingToRun => f.write_str("no groups selected"),
            FailureCause::DataInMemoryFull { path, bytes } => write!(
                f,
                "its data in memory is full (a tmpfs of {} MiB at {path}, from --tmpfs-data): run without --tmpfs-data (or `tmpfs-data = false`), or give the engine more memory",
                bytes >> 20
            ),
            FailureCause::EngineUnavailable { engine, reason } => {
                write!(f, "engine {engine}: {reason}")
            }
        }
    }
}

impl fmt::Display for EnvironmentFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.service {
            write!(f, "service {s}: ")?;
        }
        write!(f, "{}", self.cause)?;
        if let Some(state) = &self.state {
            match self.cause {
                FailureCause::TestProcess { .. } => write!(f, "; test container: {state}")?,
                _ => write!(f, " (state: {state})")?,
            }
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

/// Why a group could not collect the suite or use its collection.
#[derive(Debug, Clone)]
pub enum CollectionFailure {
    /// pytest reported errors during collection.
    Errors {
        /// How many.
        count: usize,
        /// The last lines of the test command's output.
        tail: String,
    },
    /// The test command exited before pytest reported its collection.
    NotCollected {
        /// Its exit code.
        exit_code: Option<i64>,
        /// The last lines of its output.
        tail: String,
    },
    /// The group collected other tests than the first group.
    Differs(CollectionMismatch),
    /// No plan could be made from the first collection.
    NoPlan(Arc<crate::errors::Error>),
    /// pytest reported its collection, but the file holding it is missing.
    FileMissing,
}

/// The tests a group's collection lacks or adds, compared with the first group's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionMismatch {
    /// The group.
    pub group: usize,
    /// Collected by the first group, missing here.
    pub missing: Vec<String>,
    /// Collected here, unknown to the first group.
    pub extra: Vec<String>,
}

/// At most this many ids are named in an error about differing collections.
const NAMED_IDS: usize = 10;

/// Up to [`NAMED_IDS`] ids, comma-separated, and how many more there are.
pub fn name_some(ids: &[String]) -> String {
    let mut text = ids
        .iter()
        .take(NAMED_IDS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > NAMED_IDS {
        text.push_str(&format!(" and {} more", ids.len() - NAMED_IDS));
    }
    text
}

impl fmt::Display for CollectionMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut problems = Vec::new();
        if !self.missing.is_empty() {
            problems.push(format!(
                "{} test(s) collected by the first group are missing here: {}",
                self.missing.len(),
                name_some(&self.missing)
            ));
        }
        if !self.extra.is_empty() {
            problems.push(format!(
                "{} test(s) collected here are unknown to the first group: {}",
                self.extra.len(),
                name_some(&self.extra)
            ));
        }
        write!(
            f,
            "group {} collected other tests than the first group: {}; every group must collect the same suite (a test list that depends on the environment, e.g. on a random seed or the host name, cannot be shared out; use --dist static with --tests FILE to fix the list)",
            self.group,
            problems.join("; ")
        )
    }
}

impl fmt::Display for CollectionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectionFailure::Errors { count, tail } => write!(
                f,
                "pytest reported {count} error(s) during collection; fix them first (the output of the test command ends with):\n{tail}"
            ),
            // pytest's own exit code for a usage error: the command did run pytest.
            CollectionFailure::NotCollected {
                exit_code: Some(4),
                tail,
            } => write!(
                f,
                "pytest stopped with a usage error (exit code 4: an unknown option, a bad configuration value or a missing required plugin) before it collected; its output ends with:\n{tail}"
            ),
            CollectionFailure::NotCollected { exit_code, tail } => write!(
                f,
                "the test command exited (code {}) before pytest reported its collection: it must run pytest, and the service's entrypoint must run it (`exec \"$@\"`); its output ends with:\n{tail}",
                exit_code.map_or("unknown".into(), |c| c.to_string())
            ),
            CollectionFailure::Differs(mismatch) => mismatch.fmt(f),
            CollectionFailure::NoPlan(error) => {
                write!(f, "no plan: {}", crate::errors::render_chain(error.as_ref()))
            }
            CollectionFailure::FileMissing => write!(
                f,
                "pytest reported its collection, but {} is missing",
                super::protocol::COLLECTED_FILE
            ),
        }
    }
}

/// What happened at the end of a group's test process that did not change its outcome but
/// must be seen: the process outlived pytest.
#[derive(Debug, Clone, PartialEq)]
pub struct Lingering {
    /// Non-daemon threads that kept it alive (as the plugin counted them; 0 if unknown).
    pub threads: usize,
    /// Their stacks, when the plugin could write them.
    pub stacks: Option<String>,
    /// The grace it had (`--exit-grace`).
    pub grace: Duration,
    /// compose-shard had to kill the container (the plugin could not end it).
    pub killed: bool,
}

impl fmt::Display for Lingering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.threads {
            0 => "the test process".to_string(),
            1 => "1 non-daemon thread".to_string(),
            n => format!("{n} non-daemon threads"),
        };
        write!(
            f,
            "pytest had finished, but {who} kept the test process alive past --exit-grace {}; it was {} (pytest's own results are kept)",
            format_limit(self.grace),
            if self.killed {
                "killed"
            } else {
                "ended with pytest's exit status"
            }
        )?;
        if let Some(stacks) = &self.stacks {
            write!(f, "\n--- threads still alive ---\n{}", stacks.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_typed() {
        assert_eq!(format_limit(Duration::from_secs(30)), "30s");
        assert_eq!(format_limit(Duration::from_secs(125)), "2m5s");
        assert_eq!(format_limit(Duration::from_secs(3600)), "1h");
        assert_eq!(format_limit(Duration::from_millis(50)), "50ms");
    }

    #[test]
    fn a_pytest_usage_error_is_named_as_one_and_other_exits_point_at_the_command() {
        let tail = "ERROR: Missing required plugins: pytest-html>=4.1.1".to_string();
        let usage = CollectionFailure::NotCollected {
            exit_code: Some(4),
            tail: tail.clone(),
        }
        .to_string();
        assert!(usage.starts_with("pytest stopped with a usage error (exit code 4"));
        assert!(
            usage.ends_with(&tail) && !usage.contains("entrypoint"),
            "{usage}"
        );
        let missing = CollectionFailure::NotCollected {
            exit_code: Some(127),
            tail,
        }
        .to_string();
        assert!(missing.contains("(code 127)") && missing.contains("exec \"$@\""));
    }

    #[test]
    fn every_status_has_one_wording() {
        let env = GroupStatus::Environment(EnvironmentFailure {
            service: Some("redis".into()),
            cause: FailureCause::NotHealthyInTime,
            state: Some("running (health: starting)".into()),
            log_tail: Some("ready to accept\n".into()),
        });
        assert_eq!(
            env.to_string(),
            "environment error: service redis: not healthy within the ready timeout (state: running (health: starting))\n--- last lines of its log ---\nready to accept"
        );
        assert_eq!(
            env.problem().unwrap(),
            "service redis: not healthy within the ready timeout (state: running (health: starting))\n--- last lines of its log ---\nready to accept"
        );
        let timed = GroupStatus::TimedOut {
            limit: Duration::from_secs(1800),
            stacks: None,
        };
        assert_eq!(timed.to_string(), "timed out after 30m (--timeout)");
        assert_eq!(timed.problem().unwrap(), "timed out after 30m (--timeout)");
        let test = GroupStatus::TestTimedOut {
            test: "t.py::slow".into(),
            limit: Duration::from_secs(5),
        };
        assert!(test
            .to_string()
            .contains("t.py::slow ran longer than --test-timeout 5s"));
        assert!(test.problem().is_none() && test.has_results());
        let process = EnvironmentFailure {
            state: Some("exited with code 137".into()),
            ..EnvironmentFailure::of(FailureCause::TestProcess {
                exit_code: Some(137),
            })
        };
        assert_eq!(
            process.to_string(),
            "the test process ended abnormally (exit code 137); test container: exited with code 137"
        );
    }

    #[test]
    fn a_mismatch_names_at_most_ten_ids_of_each_kind() {
        let ids: Vec<String> = (0..12).map(|i| format!("t.py::t{i}")).collect();
        let text = CollectionMismatch {
            group: 2,
            missing: ids.clone(),
            extra: vec!["t.py::z".into()],
        }
        .to_string();
        assert!(
            text.contains("12 test(s) collected by the first group are missing here: t.py::t0"),
            "{text}"
        );
        assert!(text.contains("t.py::t9 and 2 more"), "{text}");
        assert!(
            text.contains("unknown to the first group: t.py::z"),
            "{text}"
        );
    }

    #[test]
    fn lingering_names_the_threads_and_the_grace() {
        let text = Lingering {
            threads: 2,
            stacks: Some("Thread 'stuck' (non-daemon):\n  File x\n".into()),
            grace: Duration::from_secs(30),
            killed: false,
        }
        .to_string();
        assert!(
            text.contains("2 non-daemon threads kept the test process alive past --exit-grace 30s"),
            "{text}"
        );
        assert!(text.contains("ended with pytest's exit status"), "{text}");
        assert!(text.ends_with("  File x"), "{text}");
    }
}
