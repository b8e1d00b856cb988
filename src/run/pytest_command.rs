//! The pytest side of a group: the command lines for collection and for a group's run, the
//! plugin that selects node ids from a file, and parsing the plugin's progress lines.
//!
//! Groups often share a bind-mounted source tree, so everything pytest and coverage would
//! write into the working directory is redirected into the container's own `/tmp`.

use super::event::TestOutcome;

/// The plugin's source, uploaded into each test container.
pub const PLUGIN_SOURCE: &str = include_str!("compose_shard_plugin.py");
/// The plugin's module name (`-p compose_shard_plugin`).
pub const PLUGIN_MODULE: &str = "compose_shard_plugin";
/// Folder in the container holding the plugin (on PYTHONPATH).
pub const PLUGIN_DIR: &str = "/tmp/compose-shard-plugin";
/// Folder in the container where a group writes its results (copied out afterwards).
pub const RESULTS_DIR: &str = "/tmp/compose-shard";
/// The node-id list inside the container.
pub const TESTS_FILE: &str = "/tmp/compose-shard-plugin/tests.txt";
const LINE_PREFIX: &str = "##compose-shard## ";

/// What to exec in the test container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PytestInvocation {
    /// argv.
    pub argv: Vec<String>,
    /// Environment.
    pub env: Vec<(String, String)>,
}

fn uses_coverage(args: &[String]) -> bool {
    args.iter().any(|a| a == "--cov" || a.starts_with("--cov="))
}

/// `PYTHONPATH` with the plugin folder first, keeping the service's own value.
fn python_path(service_python_path: Option<&str>) -> String {
    match service_python_path {
        Some(p) if !p.is_empty() => format!("{PLUGIN_DIR}:{p}"),
        _ => PLUGIN_DIR.to_string(),
    }
}

/// The collection command: the user's command without coverage options (coverage during
/// collection would write reports into the shared working directory), plus
/// `--collect-only -q`.
pub fn collect_invocation(
    command: &[String],
    service_python_path: Option<&str>,
) -> PytestInvocation {
    let mut argv = without_coverage_options(command);
    argv.extend(
        ["--collect-only", "-q", "-p", "no:cacheprovider"]
            .iter()
            .map(|s| s.to_string()),
    );
    PytestInvocation {
        argv,
        env: vec![
            ("PYTHONPATH".into(), python_path(service_python_path)),
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ],
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

/// The group's test command: the user's command plus the plugin, a per-group JUnit path,
/// no cache provider, and for `--cov` users a per-group coverage XML and data file.
pub fn group_invocation(
    command: &[String],
    service_python_path: Option<&str>,
    extra_env: &[(String, String)],
) -> PytestInvocation {
    let mut argv = command.to_vec();
    argv.extend([
        "-p".to_string(),
        PLUGIN_MODULE.to_string(),
        "-p".to_string(),
        "no:cacheprovider".to_string(),
        format!("--junitxml={RESULTS_DIR}/junit.xml"),
    ]);
    let mut env = extra_env.to_vec();
    env.push(("PYTHONPATH".into(), python_path(service_python_path)));
    env.push(("COMPOSE_SHARD_TESTS".into(), TESTS_FILE.into()));
    // Bytecode caches in a shared tree are written concurrently by every group.
    env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
    if uses_coverage(command) {
        argv.push(format!("--cov-report=xml:{RESULTS_DIR}/coverage.xml"));
        env.push(("COVERAGE_FILE".into(), format!("{RESULTS_DIR}/.coverage")));
    }
    PytestInvocation { argv, env }
}

/// One parsed plugin line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginLine {
    /// A test finished (its teardown ran) with this outcome.
    Done {
        /// Node id.
        node_id: String,
        /// Outcome: a failed call is `Failed`, a failed setup or teardown `Error`.
        outcome: TestOutcome,
    },
    /// A planned node id was not collected in this group.
    Missing(String),
}

/// Parse one output line; `None` for ordinary pytest output.
pub fn parse_plugin_line(line: &str) -> Option<PluginLine> {
    // pytest's progress dots can share the line (`.##compose-shard## done passed ...`).
    let line = line.trim_end_matches('\r');
    let rest = &line[line.find(LINE_PREFIX)? + LINE_PREFIX.len()..];
    if let Some(id) = rest.strip_prefix("missing ") {
        return Some(PluginLine::Missing(id.to_string()));
    }
    let rest = rest.strip_prefix("done ")?;
    let (result, node_id) = rest.split_once(' ')?;
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn group_command_isolates_everything_written_per_group() {
        let inv = group_invocation(&s(&["pytest", "--cov=app", "-x"]), Some("/code"), &[]);
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
        let plain = group_invocation(&s(&["pytest"]), None, &[]);
        assert!(!plain.argv.iter().any(|a| a.contains("cov")));
    }

    #[test]
    fn collection_drops_coverage_option_values_given_as_separate_arguments() {
        let inv = collect_invocation(
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
        );
        assert_eq!(
            inv.argv[..5],
            s(&["pytest", "-m", "not slow", "tests/unit", "--collect-only"])[..]
        );
    }

    #[test]
    fn collection_drops_coverage_options() {
        let inv = collect_invocation(&s(&["pytest", "--cov=app", "--cov-branch", "tests"]), None);
        assert_eq!(
            inv.argv,
            s(&[
                "pytest",
                "tests",
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider"
            ])
        );
    }

    #[test]
    fn plugin_lines_give_one_outcome_per_test() {
        let p = |l| parse_plugin_line(l).unwrap();
        let done = |id: &str, outcome| PluginLine::Done {
            node_id: id.into(),
            outcome,
        };
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
        assert_eq!(parse_plugin_line("t.py::x PASSED"), None);
        assert_eq!(
            parse_plugin_line("##compose-shard## done weird t.py::x"),
            None
        );
    }
}
