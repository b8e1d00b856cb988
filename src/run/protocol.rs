//! The protocol between compose-shard and its pytest plugin (`compose_shard_plugin.py`): the
//! files exchanged in the test container, the environment the plugin reads, and the lines it
//! prints. The plugin's module docs describe the conversation; this module is its Rust side,
//! and the only place that knows the names (the fake engine uses them too).
//!
//! Lines are in-band, in the test container's output, so every run makes a random [`Token`]
//! and the plugin's lines carry it: `##compose-shard:TOKEN## VERB ARGS`. The plugin removes
//! the token from its environment when pytest starts, so a test cannot print it by accident
//! and a pytest started by a test (pytester, a subprocess) stays inert. A line without the
//! token is test output, whatever it says.

use std::hash::{BuildHasher, Hasher};

use super::event::TestOutcome;

/// The plugin's module name (`-p compose_shard_plugin`).
pub const PLUGIN_MODULE: &str = "compose_shard_plugin";
/// Folder in the container holding the plugin (on PYTHONPATH) and the files it exchanges
/// with compose-shard (`collected.txt`, `tests.txt`, `tests.ready`, ...).
pub const PLUGIN_DIR: &str = "/tmp/compose-shard-plugin";
/// Folder in the container where a group writes its results (copied out afterwards).
pub const RESULTS_DIR: &str = "/tmp/compose-shard";
/// The collection the plugin writes.
pub const COLLECTED_FILE: &str = "/tmp/compose-shard-plugin/collected.txt";
/// The test list compose-shard uploads (static mode), and the file whose presence says it
/// is complete.
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
/// The faulthandler backstop's output in the results folder: the stacks written when a test
/// held the interpreter past `--test-timeout` and the plugin's own watchdog could not act.
pub const BACKSTOP_STACKS_NAME: &str = "stacks-backstop.txt";

/// Environment variables the plugin reads.
pub mod env {
    /// The run's secret token.
    pub const TOKEN: &str = "COMPOSE_SHARD_TOKEN";
    /// The plugin's folder ([`super::PLUGIN_DIR`]).
    pub const DIR: &str = "COMPOSE_SHARD_DIR";
    /// The results folder ([`super::RESULTS_DIR`]).
    pub const RESULTS: &str = "COMPOSE_SHARD_RESULTS";
    /// `static` or `dynamic`.
    pub const DIST: &str = "COMPOSE_SHARD_DIST";
    /// Seconds a test may run (`--test-timeout`).
    pub const TEST_TIMEOUT: &str = "COMPOSE_SHARD_TEST_TIMEOUT";
    /// Seconds the process may stay alive after pytest finished (`--exit-grace`).
    pub const EXIT_GRACE: &str = "COMPOSE_SHARD_EXIT_GRACE";
    /// Set when the test container starts before its services are ready: pytest loads, then
    /// waits for [`super::GATE_FILE`] before it loads any project code.
    pub const GATE: &str = "COMPOSE_SHARD_GATE";
}

/// The file (in the plugin's folder) that lets an early-started pytest go on.
pub const GATE_FILE: &str = "go";

/// The names of the files answering a dynamic group's `next K`: the unit's node ids, then the
/// file whose presence says they are complete.
pub fn unit_file_names(k: u64) -> (String, String) {
    (format!("unit-{k}.txt"), format!("unit-{k}.ready"))
}

/// The whole answer to `next K now` when the group would have to wait for work (the queue is
/// empty but another group may give some back): the plugin's running test tears its fixtures
/// down as the last one, and the plugin asks again with `next K+1`. A node id always holds
/// `::`, so no test list is this line.
pub const LATER_LINE: &str = "#later";

/// The file asking the plugin for its Kth dump of every thread's stack.
pub fn dump_request_name(k: u64) -> String {
    format!("dump-{k}.request")
}

/// The Nth stack dump the plugin wrote, in the container's results folder.
pub fn stacks_file(n: u64) -> String {
    format!("{RESULTS_DIR}/stacks-{n}.txt")
}

/// A run's secret: the plugin's lines carry it, test output cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A fresh random token (128 bits from the standard library's randomly keyed hasher).
    pub fn generate() -> Token {
        let mut words = [0u64; 2];
        for (i, word) in words.iter_mut().enumerate() {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_usize(i);
            hasher.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            *word = hasher.finish();
        }
        Token(format!("{:016x}{:016x}", words[0], words[1]))
    }

    /// A given token (tests).
    pub fn new(text: &str) -> Token {
        Token(text.to_string())
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `##compose-shard:TOKEN## `, what every plugin line starts with.
    pub fn prefix(&self) -> String {
        format!("##compose-shard:{}## ", self.0)
    }
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
    /// A dynamic group asks for its Kth unit and waits for it (it has no test left).
    Next(u64),
    /// A dynamic group's chunk's last test is starting and pytest needs the test that
    /// follows it (to keep the fixtures it needs): the Kth unit is wanted now, or [`LATER_LINE`] when the group
    /// would have to wait, and then it asks again with `next K+1` after the test.
    NextNow(u64),
    /// The group saw the stop file and starts no further test.
    Stopped(String),
    /// pytest's session is over (JUnit and coverage written) with this exit status.
    Finished(i64),
    /// The CPU seconds the test process spent in its tests, and their wall seconds.
    Cpu {
        /// CPU seconds (every thread of the process).
        cpu: f64,
        /// Wall seconds.
        wall: f64,
    },
    /// The plugin wrote its Nth stack dump ([`stacks_file`]), for this reason.
    Stacks {
        /// Its number.
        number: u64,
        /// `request K`, `timeout` or `lingering`.
        reason: String,
    },
    /// A test ran longer than `--test-timeout`; the session ends.
    Timeout {
        /// The stack dump written when it timed out.
        stacks: u64,
        /// How long it had run.
        seconds: f64,
        /// The test.
        node_id: String,
    },
    /// The process stayed alive `--exit-grace` after pytest finished, kept by this many
    /// non-daemon threads; the plugin ends it with pytest's status.
    Lingering {
        /// The stack dump of those threads.
        stacks: u64,
        /// How many threads.
        threads: usize,
    },
}

/// One line of the test container's output.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputLine<'a> {
    /// A line of the plugin (with test output that shared the line before it, if any).
    Plugin(PluginLine),
    /// Anything else: test output, shown and logged as such.
    Text(&'a str),
}

/// Classify one output line: a plugin line carries this run's token (pytest's progress dots
/// or a test's unterminated output may precede it on the line); anything else, including a
/// line that imitates the plugin without the token, is text.
pub fn parse_line<'a>(line: &'a str, token: &Token) -> OutputLine<'a> {
    let line = line.trim_end_matches('\r');
    let prefix = token.prefix();
    match line.find(&prefix) {
        Some(at) => match parse_verb(&line[at + prefix.len()..]) {
            Some(parsed) => OutputLine::Plugin(parsed),
            None => OutputLine::Text(line),
        },
        None => OutputLine::Text(line),
    }
}

fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    text.trim().parse().ok()
}

fn parse_verb(rest: &str) -> Option<PluginLine> {
    let (verb, args) = rest.split_once(' ').unwrap_or((rest, ""));
    Some(match verb {
        "missing" => PluginLine::Missing(args.to_string()),
        "collected" => PluginLine::Collected(number(args)?),
        "collection-errors" => PluginLine::CollectionErrors(number(args)?),
        "maxfail" => PluginLine::Maxfail(number(args)?),
        "next" => match args.trim().strip_suffix(" now") {
            Some(k) => PluginLine::NextNow(number(k)?),
            None => PluginLine::Next(number(args)?),
        },
        "stopped" => PluginLine::Stopped(args.to_string()),
        "finished" => PluginLine::Finished(number(args)?),
        "cpu" => {
            let (cpu, wall) = args.split_once(' ')?;
            let (cpu, wall): (f64, f64) = (number(cpu)?, number(wall)?);
            if !(cpu.is_finite() && wall.is_finite() && cpu >= 0.0 && wall >= 0.0) {
                return None;
            }
            PluginLine::Cpu { cpu, wall }
        }
        "stacks" => {
            let (n, reason) = args.split_once(' ').unwrap_or((args, ""));
            PluginLine::Stacks {
                number: number(n)?,
                reason: reason.to_string(),
            }
        }
        "timeout" => {
            let mut parts = args.splitn(3, ' ');
            let stacks = number(parts.next()?)?;
            let seconds: f64 = parts.next()?.parse().ok()?;
            PluginLine::Timeout {
                stacks,
                seconds,
                node_id: parts.next()?.to_string(),
            }
        }
        "lingering" => {
            let (n, threads) = args.split_once(' ')?;
            PluginLine::Lingering {
                stacks: number(n)?,
                threads: number(threads)?,
            }
        }
        "done" => return parse_done(args),
        _ => return None,
    })
}

/// `done OUTCOME SECONDS NODEID` (SECONDS may be missing: a node id never starts with a
/// number and a space).
fn parse_done(args: &str) -> Option<PluginLine> {
    let (result, rest) = args.split_once(' ')?;
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

    fn token() -> Token {
        Token::new("0123abcd")
    }

    fn p(line: &str) -> PluginLine {
        match parse_line(line, &token()) {
            OutputLine::Plugin(parsed) => parsed,
            OutputLine::Text(t) => panic!("not a plugin line: {t}"),
        }
    }

    fn is_text(line: &str) -> bool {
        matches!(parse_line(line, &token()), OutputLine::Text(_))
    }

    #[test]
    fn plugin_lines_give_one_outcome_per_test() {
        let done = |id: &str, outcome| PluginLine::Done {
            node_id: id.into(),
            outcome,
            seconds: None,
        };
        let t = "##compose-shard:0123abcd## ";
        assert_eq!(
            p(&format!("{t}done passed 0.25 t.py::x y[a b]")),
            PluginLine::Done {
                node_id: "t.py::x y[a b]".into(),
                outcome: TestOutcome::Passed,
                seconds: Some(0.25),
            }
        );
        assert_eq!(
            p(&format!("{t}done failed t.py::x")),
            done("t.py::x", TestOutcome::Failed)
        );
        assert_eq!(
            p(&format!(".{t}done error t.py::x\r")),
            done("t.py::x", TestOutcome::Error)
        );
        assert_eq!(
            p(&format!("{t}missing t.py::gone")),
            PluginLine::Missing("t.py::gone".into())
        );
        assert_eq!(p(&format!("{t}collected 168")), PluginLine::Collected(168));
        assert_eq!(
            p(&format!("{t}collection-errors 2")),
            PluginLine::CollectionErrors(2)
        );
        assert_eq!(p(&format!("{t}maxfail 1")), PluginLine::Maxfail(1));
        assert_eq!(p(&format!("{t}next 12")), PluginLine::Next(12));
        assert_eq!(p(&format!("{t}next 13 now")), PluginLine::NextNow(13));
        assert!(matches!(
            parse_line(&format!("{t}next 13 later"), &token()),
            OutputLine::Text(_)
        ));
        assert_eq!(
            p(&format!("{t}stopped 2 failures")),
            PluginLine::Stopped("2 failures".into())
        );
        assert_eq!(p(&format!("{t}finished 1")), PluginLine::Finished(1));
        assert_eq!(
            p(&format!("{t}cpu 1.500 12.000")),
            PluginLine::Cpu {
                cpu: 1.5,
                wall: 12.0
            }
        );
        assert!(is_text(&format!("{t}cpu -1 2")));
        assert_eq!(
            p(&format!("{t}stacks 3 request 1")),
            PluginLine::Stacks {
                number: 3,
                reason: "request 1".into()
            }
        );
        assert_eq!(
            p(&format!("{t}timeout 1 30.250 t.py::T::slow[a b]")),
            PluginLine::Timeout {
                stacks: 1,
                seconds: 30.25,
                node_id: "t.py::T::slow[a b]".into()
            }
        );
        assert_eq!(
            p(&format!("{t}lingering 2 3")),
            PluginLine::Lingering {
                stacks: 2,
                threads: 3
            }
        );
        assert!(is_text(&format!("{t}next x")));
        assert!(is_text(&format!("{t}done weird t.py::x")));
        assert!(is_text("t.py::x PASSED"));
    }

    #[test]
    fn lines_without_this_runs_token_are_test_output() {
        // The old prefix, another run's token, a token cut short: all text.
        for forged in [
            "##compose-shard## done failed 0.1 tests/test_plain.py::test_00",
            "##compose-shard## stopped maxfail",
            "##compose-shard:ffffffff## next 9",
            "##compose-shard:0123abc## finished 0",
            "print: ##compose-shard:## done passed 1 t.py::x",
        ] {
            assert!(is_text(forged), "{forged}");
        }
    }

    #[test]
    fn tokens_are_random_and_long() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
