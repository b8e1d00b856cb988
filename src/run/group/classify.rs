//! A group's status from how its test container's run ended: pure, from facts gathered by
//! the test phase.

use std::time::Duration;

use super::super::outcome::{CollectionFailure, EnvironmentFailure, FailureCause, GroupStatus};
use super::handover::HandoverError;
use crate::engine::EngineError;

/// How the test container's run ended.
pub(crate) struct Ending {
    /// `--timeout` ended the group (the limit, the stacks dumped before it was killed).
    pub timed_out: Option<(Duration, Option<String>)>,
    /// A test ran past `--test-timeout` (the test, the limit).
    pub test_timed_out: Option<(String, Duration)>,
    /// Whether tests were handed over (pytest collected and asked), or why that failed.
    pub handed: Result<bool, HandoverError>,
    /// The container's exit code.
    pub exit: Result<Option<i64>, EngineError>,
    /// pytest's own exit status, when its session finished (the plugin's `finished`).
    pub finished: Option<i64>,
    /// Collection errors pytest reported.
    pub collection_errors: Option<usize>,
    /// The last lines of test output.
    pub tail: String,
    /// Tests that failed or errored.
    pub failures: usize,
    /// The test container's state, when its exit code says it was killed or crashed.
    pub state: Option<String>,
}

/// An exit code pytest gives: 0 passed, 1 tests failed, 2 interrupted, 3 internal error,
/// 4 usage error, 5 nothing collected.
fn is_pytest_code(code: Option<i64>) -> bool {
    matches!(code, Some(0..=5))
}

/// The exit code that stands for pytest's: the container's, unless the container was
/// killed (or crashed) after pytest had finished, whose own status then counts.
pub(crate) fn pytest_exit(container: Option<i64>, finished: Option<i64>) -> Option<i64> {
    match finished {
        Some(status) if !is_pytest_code(container) => Some(status),
        _ => container,
    }
}

/// The group's status, and pytest's exit code.
pub(crate) fn classify(ending: Ending) -> (GroupStatus, Option<i64>) {
    if let Some((limit, stacks)) = ending.timed_out {
        return (GroupStatus::TimedOut { limit, stacks }, None);
    }
    let handed = match ending.handed {
        Ok(handed) => handed,
        Err(HandoverError::Collection(failure)) => return (GroupStatus::Collection(failure), None),
        Err(HandoverError::Engine(e)) => {
            return (
                GroupStatus::Environment(EnvironmentFailure::engine(e)),
                None,
            )
        }
        Err(HandoverError::Gate(failure)) => return (GroupStatus::Environment(failure), None),
    };
    let container = match ending.exit {
        Ok(code) => code,
        Err(e) => {
            return (
                GroupStatus::Environment(EnvironmentFailure::engine(e)),
                None,
            )
        }
    };
    let code = pytest_exit(container, ending.finished);
    if let Some((test, limit)) = ending.test_timed_out {
        return (GroupStatus::TestTimedOut { test, limit }, code);
    }
    if let Some(count) = ending.collection_errors {
        let failure = CollectionFailure::Errors {
            count,
            tail: ending.tail,
        };
        return (GroupStatus::Collection(failure), code);
    }
    if !handed {
        let failure = CollectionFailure::NotCollected {
            exit_code: code,
            tail: ending.tail,
        };
        return (GroupStatus::Collection(failure), code);
    }
    let status = match code {
        Some(0) | Some(5) if ending.failures == 0 => GroupStatus::Passed,
        Some(0..=5) => GroupStatus::Failed,
        other => GroupStatus::Environment(EnvironmentFailure {
            state: ending.state,
            ..EnvironmentFailure::of(FailureCause::TestProcess { exit_code: other })
        }),
    };
    (status, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending() -> Ending {
        Ending {
            timed_out: None,
            test_timed_out: None,
            handed: Ok(true),
            exit: Ok(Some(0)),
            finished: Some(0),
            collection_errors: None,
            tail: "last words".into(),
            failures: 0,
            state: None,
        }
    }

    #[test]
    fn pytest_codes_give_passed_or_failed() {
        assert_eq!(classify(ending()), (GroupStatus::Passed, Some(0)));
        let empty = Ending {
            exit: Ok(Some(5)),
            ..ending()
        };
        assert_eq!(classify(empty).0, GroupStatus::Passed);
        let failed = Ending {
            exit: Ok(Some(1)),
            failures: 2,
            ..ending()
        };
        assert_eq!(classify(failed), (GroupStatus::Failed, Some(1)));
        // Exit 0 with failures seen (a wrapper that swallows pytest's code) still fails.
        let swallowed = Ending {
            failures: 1,
            ..ending()
        };
        assert_eq!(classify(swallowed).0, GroupStatus::Failed);
    }

    #[test]
    fn a_process_killed_after_pytest_finished_keeps_pytests_outcome() {
        // The exit grace ran out and the container was killed: pytest had said 1.
        let killed = Ending {
            exit: Ok(Some(137)),
            finished: Some(1),
            failures: 1,
            ..ending()
        };
        assert_eq!(classify(killed), (GroupStatus::Failed, Some(1)));
        assert_eq!(pytest_exit(Some(137), Some(0)), Some(0));
        // A wrapper's own code (0..=5) is kept.
        assert_eq!(pytest_exit(Some(0), Some(1)), Some(0));
    }

    #[test]
    fn a_process_killed_before_pytest_finished_is_an_environment_error_with_its_state() {
        let killed = Ending {
            exit: Ok(Some(137)),
            finished: None,
            state: Some("exited with code 137 (OOM killed)".into()),
            ..ending()
        };
        let (status, code) = classify(killed);
        assert_eq!(code, Some(137));
        assert_eq!(
            status.to_string(),
            "environment error: the test process ended abnormally (exit code 137); test container: exited with code 137 (OOM killed)"
        );
    }

    #[test]
    fn limits_and_collection_problems_come_first() {
        let timed = Ending {
            timed_out: Some((Duration::from_secs(60), None)),
            exit: Ok(Some(137)),
            ..ending()
        };
        assert_eq!(classify(timed).0.label(), "timed out");
        let test = Ending {
            test_timed_out: Some(("t.py::slow".into(), Duration::from_secs(5))),
            exit: Ok(Some(2)),
            finished: Some(2),
            failures: 1,
            ..ending()
        };
        let (status, code) = classify(test);
        assert_eq!((status.label(), code), ("test timed out", Some(2)));
        let errors = Ending {
            collection_errors: Some(2),
            exit: Ok(Some(2)),
            ..ending()
        };
        let text = classify(errors).0.to_string();
        assert!(
            text.starts_with("collection failed: pytest reported 2 error(s)"),
            "{text}"
        );
        assert!(text.ends_with("last words"), "{text}");
        let never = Ending {
            handed: Ok(false),
            exit: Ok(Some(127)),
            finished: None,
            ..ending()
        };
        let text = classify(never).0.to_string();
        assert!(
            text.contains("exited (code 127) before pytest reported its collection"),
            "{text}"
        );
        let gate = Ending {
            handed: Err(HandoverError::Gate(EnvironmentFailure::of(
                FailureCause::NotHealthyInTime,
            ))),
            ..ending()
        };
        assert_eq!(classify(gate).0.label(), "env error");
    }
}
