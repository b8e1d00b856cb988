//! `[tool.compose-shard]` in the project's `pyproject.toml`: defaults for flags.
//!
//! Command-line flags always win. Unknown keys are an error (a typo must not be silently
//! ignored), naming the file and the key.
//!
//! ```toml
//! [tool.compose-shard]
//! service = "app"                # the test service
//! groups = 4                     # or "auto"
//! durations = ".test_durations"  # pytest-split format
//! split-by = "class"             # test | class | module
//! ready-timeout = "3m"
//! timeout = "30m"
//! out = "compose-shard-results"
//! env = { DJANGO_SETTINGS_MODULE = "app.settings.test" }
//! command = ["pytest", "-p", "no:cacheprovider"]
//! entrypoint = "pytest tests/unit"  # replaces the test service's entrypoint (or a list)
//! with-services = ["mailhog"]    # also start these (and their dependencies)
//! docker-hosts = ["unix:///var/run/docker.sock", "tcp://build2:2376", "build3"]  # URLs or contexts
//! exit-grace = "30s"             # a test process may outlive pytest's session this long
//! test-timeout = "5m"            # per-test limit
//! retries = 1                    # failed tests rerun in a fresh environment
//! snapshots = "auto"             # auto | off | refresh
//! tmpfs-data = true              # services' data in memory
//! ```

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

/// The settings table; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Test service.
    pub service: Option<String>,
    /// Number of groups: an integer or `"auto"`.
    pub groups: Option<toml::Value>,
    /// Durations file, relative to the project directory.
    pub durations: Option<PathBuf>,
    /// `test`, `class` or `module`.
    pub split_by: Option<crate::config::SplitBy>,
    /// Readiness timeout (`"3m"`).
    pub ready_timeout: Option<String>,
    /// Per-group timeout (`"30m"`).
    pub timeout: Option<String>,
    /// Output folder.
    pub out: Option<PathBuf>,
    /// Extra environment for the test container.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Default test command.
    pub command: Option<Vec<String>>,
    /// Services to start besides the test service's `depends_on` closure (each with its own
    /// dependencies), for suites that reach a service nothing depends on.
    #[serde(default)]
    pub with_services: Vec<String>,
    /// Docker engines to use (URLs or Docker context names), when no `--docker-host` is given.
    #[serde(default)]
    pub docker_hosts: Vec<String>,
    /// How long a test process may stay alive after pytest's session finished (`"30s"`).
    pub exit_grace: Option<String>,
    /// Per-test limit (`"5m"`).
    pub test_timeout: Option<String>,
    /// How many times a failed test is rerun in a fresh environment (0 or more).
    pub retries: Option<toml::Value>,
    /// `auto`, `off` or `refresh`.
    pub snapshots: Option<crate::config::Snapshots>,
    /// Keep the services' data in memory (tmpfs).
    pub tmpfs_data: Option<bool>,
    /// The test service's entrypoint replaced, as `docker compose run --entrypoint` does: a
    /// command line (split like a shell) or a list of words.
    pub entrypoint: Option<Words>,
}

/// A command given as one line (split like a shell) or as a list of words.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Words {
    /// `"pytest -q"`.
    Line(String),
    /// `["pytest", "-q"]`.
    List(Vec<String>),
}

/// `pyproject.toml` could not be read or has an invalid `[tool.compose-shard]` table.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct SettingsError {
    /// The pyproject.toml.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
struct PyProject {
    #[serde(default)]
    tool: Tool,
}

#[derive(Deserialize, Default)]
struct Tool {
    #[serde(rename = "compose-shard")]
    compose_shard: Option<toml::Value>,
}

impl Settings {
    /// Read `<dir>/pyproject.toml`; a missing file or table gives default settings.
    pub fn load(dir: &Path) -> Result<Settings, SettingsError> {
        let path = dir.join("pyproject.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Settings::parse(&text).map_err(|message| SettingsError { path, message }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(SettingsError {
                path,
                message: format!("cannot read: {e}"),
            }),
        }
    }

    /// Parse the text of a pyproject.toml.
    pub fn parse(text: &str) -> Result<Settings, String> {
        let doc: PyProject = toml::from_str(text).map_err(|e| e.to_string())?;
        let Some(table) = doc.tool.compose_shard else {
            return Ok(Settings::default());
        };
        let settings: Settings =
            table
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| match failing_key(&table) {
                    Some(key) => format!("[tool.compose-shard] {key}: {}", e.message()),
                    None => format!("[tool.compose-shard]: {}", e.message()),
                })?;
        if let Some(g) = &settings.groups {
            let ok = matches!(g, toml::Value::Integer(n) if *n >= 1)
                || matches!(g, toml::Value::String(s) if s == "auto");
            if !ok {
                return Err(format!(
                    "[tool.compose-shard]: groups must be a number of 1 or more, or \"auto\" (got {g})"
                ));
            }
        }
        Ok(settings)
    }
}

/// The first key of the table that is wrong on its own (an unknown key, a value of the wrong
/// type), so the error can name it: errors from a parsed table carry no position.
fn failing_key(table: &toml::Value) -> Option<&str> {
    table.as_table()?.iter().find_map(|(key, value)| {
        let alone = toml::Table::from_iter([(key.clone(), value.clone())]);
        let wrong = toml::Value::Table(alone).try_into::<Settings>().is_err();
        wrong.then_some(key.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_table() {
        let s = Settings::parse(
            "[project]\nname='x'\n[tool.compose-shard]\nservice='web'\ngroups=4\nsplit-by='module'\nenv={A='1'}\n",
        )
        .unwrap();
        assert_eq!(s.service.as_deref(), Some("web"));
        assert_eq!(s.groups, Some(toml::Value::Integer(4)));
        assert_eq!(s.split_by, Some(crate::config::SplitBy::Module));
        assert_eq!(s.env.get("A").map(String::as_str), Some("1"));
        assert!(s.with_services.is_empty());
        let s = Settings::parse("[tool.compose-shard]\nwith-services=['mail', 's3']\n").unwrap();
        assert_eq!(s.with_services, ["mail", "s3"]);
        assert!(Settings::parse("[tool.compose-shard]\nwith-services='mail'\n").is_err());
        let s = Settings::parse(
            "[tool.compose-shard]\ndocker-hosts=['unix:///var/run/docker.sock', 'build2']\n",
        )
        .unwrap();
        assert_eq!(s.docker_hosts, ["unix:///var/run/docker.sock", "build2"]);
        assert!(Settings::parse("[tool.compose-shard]\ndocker-hosts='tcp://a:1'\n").is_err());
    }

    #[test]
    fn missing_table_is_default_and_typos_are_errors() {
        assert_eq!(
            Settings::parse("[tool.black]\nx=1\n").unwrap(),
            Settings::default()
        );
        let err = Settings::parse("[tool.compose-shard]\nservce='web'\n").unwrap_err();
        assert!(err.contains("servce"), "{err}");
        assert!(Settings::parse("[tool.compose-shard]\ngroups=0\n").is_err());
    }

    #[test]
    fn a_value_of_the_wrong_kind_names_its_key() {
        let err = Settings::parse("[tool.compose-shard]\nservice='web'\nsnapshots='never'\n")
            .unwrap_err();
        assert!(
            err.starts_with("[tool.compose-shard] snapshots: unknown variant `never`"),
            "{err}"
        );
        let err = Settings::parse("[tool.compose-shard]\ntmpfs-data='yes'\n").unwrap_err();
        assert!(
            err.starts_with("[tool.compose-shard] tmpfs-data: "),
            "{err}"
        );
        let err = Settings::parse("[tool.compose-shard]\nexit_grace='1m'\n").unwrap_err();
        assert!(err.contains("exit_grace"), "{err}");
        let s = Settings::parse(
            "[tool.compose-shard]\nexit-grace='1m'\ntest-timeout='5m'\nretries=1\nsnapshots='refresh'\ntmpfs-data=true\n",
        )
        .unwrap();
        assert_eq!(s.exit_grace.as_deref(), Some("1m"));
        assert_eq!(s.test_timeout.as_deref(), Some("5m"));
        assert_eq!(s.retries, Some(toml::Value::Integer(1)));
        assert_eq!(s.snapshots, Some(crate::config::Snapshots::Refresh));
        assert_eq!(s.tmpfs_data, Some(true));
    }
}
