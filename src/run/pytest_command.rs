//! The pytest side of a group: the command lines for collection and for a group's run, the
//! plugin that selects node ids from a file, and parsing the plugin's progress lines.
//!
//! Groups often share a bind-mounted source tree, so everything pytest and coverage would
//! write into the working directory is redirected into the container's own `/tmp`.

use super::event::TestOutcome;
use crate::config::Dist;

/// The plugin's source, uploaded into each test container.
pub const PLUGIN_SOURCE: &str = include_str!("compose_shard_plugin.py");
/// The plugin's module name (`-p compose_shard_plugin`).
pub const PLUGIN_MODULE: &str = "compose_shard_plugin";
/// Folder in the container holding the plugin (on PYTHONPATH) and the files it exchanges
/// with compose-shard (`collected.txt`, `tests.txt`, `tests.ready`).
pub const PLUGIN_DIR: &str = "/tmp/compose-shard-plugin";
/// Folder in the container where a group writes its results (copied out afterwards).
pub const RESULTS_DIR: &str = "/tmp/compose-shard";
/// The collection the plugin writes.
pub const COLLECTED_FILE: &str = "/tmp/compose-shard-plugin/collected.txt";
/// The test list compose-shard uploads, and the file whose presence says it is complete.
pub const TESTS_FILE_NAME: &str = "tests.txt";
/// See [`TESTS_FILE_NAME`].
pub const TESTS_READY_NAME: &str = "tests.ready";
/// The file whose presence tells a group's plugin to start no further test (`--maxfail`
/// reached across the groups); it holds the reason.
pub const STOP_FILE_NAME: &str = "stop";
/// The plugin's record of every finished test, one JSON object per line (node id, outcome,
/// seconds, failure text), in the results folder: what is left when pytest dies before it
/// writes its JUnit XML.
pub const PROGRESS_FILE_NAME: &str = "progress.jsonl";

/// The names of the files answering a dynamic group's `next K`: the unit's node ids, then the
/// file whose presence says they are complete.
pub fn unit_file_names(k: u64) -> (String, String) {
    (format!("unit-{k}.txt"), format!("unit-{k}.ready"))
}
const LINE_PREFIX: &str = "##compose-shard## ";

/// How the test container runs the test command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PytestInvocation {
    /// The command (the container's `cmd`; the service's entrypoint stays).
    pub argv: Vec<String>,
    /// Environment for the container, on top of the service's.
    pub env: Vec<(String, String)>,
}

fn uses_coverage(args: &[String]) -> bool {
    args.iter().any(|a| a == "--cov" || a.starts_with("--cov="))
}

/// `PYTHONPATH` with the plugin folder first, keeping the service's or image's own value.
fn python_path(existing: Option<&str>) -> String {
    match existing {
        Some(p) if !p.is_empty() => format!("{PLUGIN_DIR}:{p}"),
        _ => PLUGIN_DIR.to_string(),
    }
}

/// Whether the command is pytest itself (`pytest`, `py.test`, a path to either, or
/// `python -m pytest`), so options can be appended and win over the user's own; any other
/// command (a wrapper script, `make test`) gets them through `PYTEST_ADDOPTS`.
fn is_pytest(command: &[String]) -> bool {
    let name = |a: &String| a.rsplit('/').next().unwrap_or(a).to_string();
    match command.first().map(name).as_deref() {
        Some("pytest" | "py.test") => true,
        Some(p) if p.starts_with("python") => command
            .windows(2)
            .any(|w| w[0] == "-m" && (w[1] == "pytest" || w[1] == "py.test")),
        _ => false,
    }
}

/// pytest-cov's options that take a value, which may also come as the next argument.
const COVERAGE_OPTIONS_WITH_VALUE: [&str; 5] = [
    "--cov",
    "--cov-report",
    "--cov-config",
    "--cov-fail-under",
    "--cov-context",
];

/// The command without pytest-cov's options and their values. `--cov app` must lose `app`
/// too, or collection would treat it as a path to collect from (argparse gives `--cov` the
/// next argument when it does not start with `-`).
fn without_coverage_options(command: &[String]) -> Vec<String> {
    let mut kept = Vec::with_capacity(command.len());
    let mut args = command.iter().peekable();
    while let Some(arg) = args.next() {
        if !arg.starts_with("--cov") && arg != "--no-cov" && arg != "--no-cov-on-fail" {
            kept.push(arg.clone());
            continue;
        }
        if COVERAGE_OPTIONS_WITH_VALUE.contains(&arg.as_str()) {
            if let Some(next) = args.peek() {
                if !next.starts_with('-') {
                    args.next();
                }
            }
        }
    }
    kept
}

/// What the test container of a group runs: the user's command with the plugin, a per-group
/// JUnit path, no cache provider, and for `--cov` users a per-group coverage XML and data
/// file (groups often share a bind-mounted tree, so nothing is written into it). With
/// `collect_only` (what `compose-shard plan` needs) it only collects.
///
/// `existing_python_path` and `existing_addopts` are the container's values before ours
/// (the service's, else the image's), which are kept.
pub fn test_invocation(
    command: &[String],
    existing_python_path: Option<&str>,
    existing_addopts: Option<&str>,
    collect_only: bool,
    dist: Dist,
) -> PytestInvocation {
    let mut ours = vec![
        "-p".to_string(),
        PLUGIN_MODULE.to_string(),
        "-p".to_string(),
        "no:cacheprovider".to_string(),
    ];
    let mut env = vec![
        ("PYTHONPATH".to_string(), python_path(existing_python_path)),
        ("COMPOSE_SHARD_DIR".to_string(), PLUGIN_DIR.to_string()),
        // Bytecode caches in a shared tree are written concurrently by every group.
        ("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string()),
        (
            "COMPOSE_SHARD_DIST".to_string(),
            match dist {
                Dist::Dynamic => "dynamic",
                Dist::Static => "static",
            }
            .to_string(),
        ),
        ("COMPOSE_SHARD_RESULTS".to_string(), RESULTS_DIR.to_string()),
    ];
    let command = if collect_only {
        ours.extend(["--collect-only".to_string(), "-q".to_string()]);
        without_coverage_options(command)
    } else {
        ours.push(format!("--junitxml={RESULTS_DIR}/junit.xml"));
        if uses_coverage(command) {
            ours.push(format!("--cov-report=xml:{RESULTS_DIR}/coverage.xml"));
            env.push(("COVERAGE_FILE".into(), format!("{RESULTS_DIR}/.coverage")));
        }
        command.to_vec()
    };
    let mut argv = command.clone();
    if is_pytest(&command) {
        argv.extend(ours);
    } else {
        let mut addopts: Vec<String> = existing_addopts
            .filter(|a| !a.trim().is_empty())
            .map(|a| vec![a.to_string()])
            .unwrap_or_default();
        addopts.extend(ours);
        env.push(("PYTEST_ADDOPTS".into(), addopts.join(" ")));
    }
    PytestInvocation { argv, env }
}

/// One parsed plugin line.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginLine {
    /// A test finished (its teardown ran) with this outcome.
    Done {
        /// Node id.
        node_id: String,
        /// Outcome: a failed call is `Failed`, a failed setup or teardown `Error`.
        outcome: TestOutcome,
        /// Setup, call and teardown together, when the plugin measured them.
        seconds: Option<f64>,
    },
    /// A planned node id was not collected in this group.
    Missing(String),
    /// The group's pytest collected this many tests (the list is in [`COLLECTED_FILE`]).
    Collected(usize),
    /// Collection failed with this many errors; pytest stops.
    CollectionErrors(usize),
    /// pytest's `--maxfail` in this group (0: none; `-x` is 1).
    Maxfail(usize),
    /// A dynamic group asks for its Kth unit.
    Next(u64),
    /// The group saw the stop file and starts no further test.
    Stopped(String),
}

/// Parse one output line; `None` for ordinary pytest output.
pub fn parse_plugin_line(line: &str) -> Option<PluginLine> {
    // pytest's progress dots can share the line (`.##compose-shard## done passed ...`).
    let line = line.trim_end_matches('\r');
    let rest = &line[line.find(LINE_PREFIX)? + LINE_PREFIX.len()..];
    if let Some(id) = rest.strip_prefix("missing ") {
        return Some(PluginLine::Missing(id.to_string()));
    }
    if let Some(n) = rest.strip_prefix("collected ") {
        return n.trim().parse().ok().map(PluginLine::Collected);
    }
    if let Some(n) = rest.strip_prefix("collection-errors ") {
        return n.trim().parse().ok().map(PluginLine::CollectionErrors);
    }
    if let Some(n) = rest.strip_prefix("maxfail ") {
        return n.trim().parse().ok().map(PluginLine::Maxfail);
    }
    if let Some(k) = rest.strip_prefix("next ") {
        return k.trim().parse().ok().map(PluginLine::Next);
    }
    if let Some(reason) = rest.strip_prefix("stopped ") {
        return Some(PluginLine::Stopped(reason.to_string()));
    }
    let rest = rest.strip_prefix("done ")?;
    let (result, rest) = rest.split_once(' ')?;
    // `done OUTCOME SECONDS NODEID`; a node id never starts with a number and a space.
    let (seconds, node_id) = match rest.split_once(' ') {
        Some((number, id)) => match number.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => (Some(s), id),
            _ => (None, rest),
        },
        None => (None, rest),
    };
    let outcome = match result {
        "passed" => TestOutcome::Passed,
        "failed" => TestOutcome::Failed,
        "skipped" => TestOutcome::Skipped,
        "error" => TestOutcome::Error,
        _ => return None,
    };
    Some(PluginLine::Done {
        node_id: node_id.to_string(),
        outcome,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn pytest_gets_the_plugin_and_per_group_outputs_appended() {
        let inv = test_invocation(
            &s(&["pytest", "--cov=app", "-x"]),
            Some("/code"),
            None,
            false,
            Dist::Static,
        );
        assert_eq!(
            inv.argv,
            s(&[
                "pytest",
                "--cov=app",
                "-x",
                "-p",
                "compose_shard_plugin",
                "-p",
                "no:cacheprovider",
                "--junitxml=/tmp/compose-shard/junit.xml",
                "--cov-report=xml:/tmp/compose-shard/coverage.xml"
            ])
        );
        assert!(inv.env.contains(&(
            "COVERAGE_FILE".into(),
            "/tmp/compose-shard/.coverage".into()
        )));
        assert!(inv.env.contains(&(
            "PYTHONPATH".into(),
            "/tmp/compose-shard-plugin:/code".into()
        )));
        assert!(!inv.env.iter().any(|(k, _)| k == "PYTEST_ADDOPTS"));
        let plain = test_invocation(
            &s(&["python3", "-m", "pytest"]),
            None,
            None,
            false,
            Dist::Dynamic,
        );
        assert!(plain
            .env
            .contains(&("COMPOSE_SHARD_DIST".into(), "dynamic".into())));
        assert!(!plain.argv.iter().any(|a| a.contains("cov")));
        assert!(plain.argv.contains(&"compose_shard_plugin".to_string()));
    }

    #[test]
    fn other_commands_get_the_plugin_through_pytest_addopts_keeping_the_users() {
        let inv = test_invocation(
            &s(&["./run-tests.sh", "-v"]),
            None,
            Some("-ra"),
            false,
            Dist::Static,
        );
        assert_eq!(inv.argv, s(&["./run-tests.sh", "-v"]));
        let addopts = &inv
            .env
            .iter()
            .find(|(k, _)| k == "PYTEST_ADDOPTS")
            .unwrap()
            .1;
        assert!(
            addopts.starts_with("-ra -p compose_shard_plugin"),
            "{addopts}"
        );
    }

    #[test]
    fn collection_drops_coverage_option_values_given_as_separate_arguments() {
        let inv = test_invocation(
            &s(&[
                "pytest",
                "--cov",
                "app",
                "--cov-report",
                "term",
                "--cov",
                "-m",
                "not slow",
                "--no-cov-on-fail",
                "tests/unit",
            ]),
            None,
            None,
            true,
            Dist::Static,
        );
        assert_eq!(
            inv.argv,
            s(&[
                "pytest",
                "-m",
                "not slow",
                "tests/unit",
                "-p",
                "compose_shard_plugin",
                "-p",
                "no:cacheprovider",
                "--collect-only",
                "-q"
            ])
        );
        assert!(!inv.env.iter().any(|(k, _)| k == "COVERAGE_FILE"));
    }

    #[test]
    fn plugin_lines_give_one_outcome_per_test() {
        let p = |l| parse_plugin_line(l).unwrap();
        let done = |id: &str, outcome| PluginLine::Done {
            node_id: id.into(),
            outcome,
            seconds: None,
        };
        assert_eq!(
            p("##compose-shard## done passed 0.25 t.py::x y[a b]"),
            PluginLine::Done {
                node_id: "t.py::x y[a b]".into(),
                outcome: TestOutcome::Passed,
                seconds: Some(0.25),
            }
        );
        assert_eq!(
            p("##compose-shard## done failed t.py::x"),
            done("t.py::x", TestOutcome::Failed)
        );
        assert_eq!(
            p("##compose-shard## done passed t.py::x y[a b]"),
            done("t.py::x y[a b]", TestOutcome::Passed)
        );
        assert_eq!(
            p(".##compose-shard## done error t.py::x"),
            done("t.py::x", TestOutcome::Error)
        );
        assert_eq!(
            p("##compose-shard## missing t.py::gone"),
            PluginLine::Missing("t.py::gone".into())
        );
        assert_eq!(
            p("##compose-shard## collected 168"),
            PluginLine::Collected(168)
        );
        assert_eq!(
            p("##compose-shard## collection-errors 2"),
            PluginLine::CollectionErrors(2)
        );
        assert_eq!(p("##compose-shard## maxfail 1"), PluginLine::Maxfail(1));
        assert_eq!(p("##compose-shard## next 12"), PluginLine::Next(12));
        assert_eq!(
            p("##compose-shard## stopped 2 failures"),
            PluginLine::Stopped("2 failures".into())
        );
        assert_eq!(parse_plugin_line("##compose-shard## next x"), None);
        assert_eq!(parse_plugin_line("t.py::x PASSED"), None);
        assert_eq!(
            parse_plugin_line("##compose-shard## done weird t.py::x"),
            None
        );
    }
}
