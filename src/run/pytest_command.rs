//! The pytest side of a group: the command line and environment of the test container,
//! with the plugin that talks to compose-shard (its protocol is in [`super::protocol`]).
//!
//! Groups often share a bind-mounted source tree, so everything pytest and coverage would
//! write into the working directory is redirected into the container's own `/tmp`.

use std::time::Duration;

use super::protocol::{env, Token, PLUGIN_DIR, PLUGIN_MODULE, RESULTS_DIR};
use crate::config::Dist;

/// The plugin's source, uploaded into each test container.
pub const PLUGIN_SOURCE: &str = include_str!("compose_shard_plugin.py");

/// What the plugin is told through its environment.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    /// Static or dynamic.
    pub dist: Dist,
    /// The run's secret.
    pub token: Token,
    /// `--exit-grace`.
    pub exit_grace: Duration,
    /// `--test-timeout`.
    pub test_timeout: Option<Duration>,
}

/// Seconds as the plugin reads them.
fn seconds(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

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
pub(super) fn is_pytest(command: &[String]) -> bool {
    let name = |a: &String| a.rsplit('/').next().unwrap_or(a).to_string();
    match command.first().map(name).as_deref() {
        Some("pytest" | "py.test") => true,
        Some(p) if p.starts_with("python") => command
            .windows(2)
            .any(|w| w[0] == "-m" && (w[1] == "pytest" || w[1] == "py.test")),
        _ => false,
    }
}

/// pytest options that narrow the collection to a subset the command line cannot describe
/// as paths: by keyword, by marker, deselected ids, the last failures, stepwise, ignored
/// paths, module names.
const NARROWING_OPTIONS: [&str; 12] = [
    "-k",
    "-m",
    "--deselect",
    "--lf",
    "--last-failed",
    "--sw",
    "--stepwise",
    "--sw-skip",
    "--stepwise-skip",
    "--ignore",
    "--ignore-glob",
    "--pyargs",
];

/// Options of pytest and its common plugins whose value may come as the next argument (which
/// is then not a path to collect).
const OPTIONS_WITH_VALUE: [&str; 37] = [
    "-p",
    "-c",
    "-o",
    "-W",
    "-r",
    "-n",
    "--override-ini",
    "--pythonwarnings",
    "--rootdir",
    "--confcutdir",
    "--basetemp",
    "--junitxml",
    "--junit-xml",
    "--junit-prefix",
    "--maxfail",
    "--tb",
    "--durations",
    "--durations-min",
    "--log-level",
    "--log-format",
    "--log-date-format",
    "--log-file",
    "--log-file-level",
    "--log-cli-level",
    "--capture",
    "--color",
    "--import-mode",
    "--cov",
    "--cov-report",
    "--cov-config",
    "--cov-fail-under",
    "--cov-context",
    "--ds",
    "--dc",
    "--timeout",
    "--numprocesses",
    "--dist",
];

/// What the collection of `command` covers, for dropping the recorded durations of tests it
/// did not collect ([`crate::plan::Pruning`]): `Some([])` for the whole suite (no path and
/// no narrowing option: pytest's `testpaths` or the working folder), `Some(paths)` for the
/// files and folders it names (relative, `/`-separated, as node ids start), `None` when it
/// cannot be told (a wrapper command, `-k`, `-m`, `--deselect`, `--lf`, a node id, an
/// absolute path), so that nothing is dropped. Reading an unknown option's value as a path
/// only keeps more entries.
pub fn collection_scope(command: &[String]) -> Option<Vec<String>> {
    if !is_pytest(command) {
        return None;
    }
    let start = command
        .iter()
        .position(|a| {
            let name = a.rsplit('/').next().unwrap_or(a);
            name == "pytest" || name == "py.test"
        })
        .map_or(command.len(), |i| i + 1);
    let mut paths = Vec::new();
    let mut whole = false;
    let mut args = command[start..].iter().peekable();
    let mut only_paths = false;
    while let Some(arg) = args.next() {
        if !only_paths && arg == "--" {
            only_paths = true;
            continue;
        }
        if !only_paths && arg.starts_with('-') && arg.len() > 1 {
            let name = if arg.starts_with("--") {
                arg.split('=').next().unwrap_or(arg)
            } else {
                &arg[..2]
            };
            if NARROWING_OPTIONS.contains(&name) {
                return None;
            }
            let value_apart = name.len() == arg.len();
            if value_apart
                && OPTIONS_WITH_VALUE.contains(&name)
                && args.peek().is_some_and(|next| !next.starts_with('-'))
            {
                args.next();
            }
            continue;
        }
        if arg.contains("::") || arg.starts_with('/') {
            return None;
        }
        let mut path = arg.as_str();
        while let Some(rest) = path.strip_prefix("./") {
            path = rest;
        }
        let path = path.trim_end_matches('/');
        if path.is_empty() || path == "." {
            whole = true;
        } else {
            paths.push(path.to_string());
        }
    }
    Some(if whole { Vec::new() } else { paths })
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
    plugin: &PluginSettings,
) -> PytestInvocation {
    let mut ours = vec![
        "-p".to_string(),
        PLUGIN_MODULE.to_string(),
        "-p".to_string(),
        "no:cacheprovider".to_string(),
    ];
    let mut env = vec![
        ("PYTHONPATH".to_string(), python_path(existing_python_path)),
        (env::DIR.to_string(), PLUGIN_DIR.to_string()),
        // Bytecode caches in a shared tree are written concurrently by every group.
        ("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string()),
        (
            env::DIST.to_string(),
            match plugin.dist {
                Dist::Dynamic => "dynamic",
                Dist::Static => "static",
            }
            .to_string(),
        ),
        (env::RESULTS.to_string(), RESULTS_DIR.to_string()),
        (env::TOKEN.to_string(), plugin.token.as_str().to_string()),
        (env::EXIT_GRACE.to_string(), seconds(plugin.exit_grace)),
    ];
    if let Some(limit) = plugin.test_timeout {
        env.push((env::TEST_TIMEOUT.to_string(), seconds(limit)));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn plugin(dist: Dist) -> PluginSettings {
        PluginSettings {
            dist,
            token: Token::new("t0k3n"),
            exit_grace: Duration::from_secs(30),
            test_timeout: None,
        }
    }

    #[test]
    fn the_collection_covers_the_suite_the_paths_named_or_cannot_be_told() {
        let scope = |v: &[&str]| collection_scope(&s(v));
        let whole = Some(Vec::new());
        assert_eq!(scope(&["pytest"]), whole);
        assert_eq!(scope(&["pytest", "-x", "--cov=app", "-q"]), whole);
        assert_eq!(
            scope(&["python3", "-m", "pytest", "--cov", "app", "-p", "x"]),
            whole
        );
        assert_eq!(scope(&["/venv/bin/pytest", "./", "tests/"]), whole);
        assert_eq!(
            scope(&["pytest", "./tests/", "--tb", "short", "other/test_a.py"]),
            Some(s(&["tests", "other/test_a.py"]))
        );
        assert_eq!(
            scope(&["pytest", "--maxfail=2", "--", "-odd.py"]),
            Some(s(&["-odd.py"]))
        );
        // An unknown option's value read as a path only narrows what is dropped.
        assert_eq!(scope(&["pytest", "--myopt", "v"]), Some(s(&["v"])));
        for narrowed in [
            &["pytest", "tests/test_cache.py", "-k", "get_missing or put"][..],
            &["pytest", "-kput"],
            &["pytest", "-m", "not slow"],
            &["pytest", "--deselect=tests/a.py::t"],
            &["pytest", "--lf"],
            &["pytest", "tests/a.py::test_one"],
            &["pytest", "/code/tests"],
            &["make", "test"],
            &["sh", "-c", "pytest"],
        ] {
            assert_eq!(scope(narrowed), None, "{narrowed:?}");
        }
    }

    #[test]
    fn pytest_gets_the_plugin_and_per_group_outputs_appended() {
        let inv = test_invocation(
            &s(&["pytest", "--cov=app", "-x"]),
            Some("/code"),
            None,
            false,
            &plugin(Dist::Static),
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
            &plugin(Dist::Dynamic),
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
            &plugin(Dist::Static),
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
            &plugin(Dist::Static),
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
}
