//! The typed compose model: a project after loading, interpolation, merging and
//! canonicalisation (long syntax everywhere), and also after isolation for one group.
//!
//! Its JSON form (`compose-shard config --format json`) is a documented, stable interface:
//! fields are only ever added. Optional fields that are unset are omitted.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A loaded compose project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Project name (valid Compose project name: `[a-z0-9][a-z0-9_-]*`).
    pub name: String,
    /// Directory relative paths were resolved against.
    pub project_dir: PathBuf,
    /// The compose files that were merged, in order.
    pub files: Vec<PathBuf>,
    /// Services in file order (profiles already applied).
    pub services: IndexMap<String, Service>,
    /// Top-level networks by key; always contains `default` when a service uses it.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub networks: IndexMap<String, Network>,
    /// Top-level named volumes by key.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub volumes: IndexMap<String, Volume>,
    /// Set on an isolated project: which group of how many, the run id and the base project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<IsolationInfo>,
}

/// What an isolated project was made for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationInfo {
    /// Run id.
    pub run_id: String,
    /// 1-based group number.
    pub group: usize,
    /// Number of groups.
    pub groups: usize,
    /// The original project name.
    pub base_project: String,
    /// The service the tests run in, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_service: Option<String>,
    /// Changes isolation made that a user should know about (replaced bind mounts...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One service, canonicalised.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Service {
    /// Service name (the key under `services:`).
    pub name: String,
    /// `image`; for a `build:` service without one, `<project>-<service>` (Compose's rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// `command`, split shell-style when given as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// `entrypoint`, split shell-style when given as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `env_file` contents overlaid by `environment`; `None` value = `KEY` without `=` and
    /// unset in the environment (Compose leaves such variables out of the container).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub environment: IndexMap<String, Option<String>>,
    /// `working_dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `hostname`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `depends_on` (long form), also ordering from `links`/`volumes_from`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub depends_on: IndexMap<String, Dependency>,
    /// `healthcheck`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `expose`: container ports (`"5432"`, `"8125/udp"`, ranges expanded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    /// `ports`, long syntax.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    /// `volumes`, long syntax.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Mount>,
    /// `tmpfs` paths (`/run` or `/run:size=64m`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// `networks` the service joins, with per-network aliases. Empty = `default`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub networks: IndexMap<String, ServiceNetwork>,
    /// `network_mode` (`host`, `none`, `service:x`, `container:x`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// `links` as `service` or `service:alias`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// `container_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// `labels` (map form).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// `extra_hosts` as `host:ip`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// `shm_size` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// `init`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// `tty`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
    /// `stdin_open`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    /// `privileged`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// `platform`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `stop_signal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `stop_grace_period` in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<f64>,
    /// `cap_add`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// `cap_drop`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// `ulimits` by name: (soft, hard).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub ulimits: IndexMap<String, (i64, i64)>,
    /// `mem_limit` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<u64>,
    /// `profiles`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// `pull_policy` (`always`, `never`, `missing`, `build`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
    /// `read_only`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// `sysctls`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub sysctls: IndexMap<String, String>,
    /// `secrets`, each joined with the top-level definition it names (see [`ServiceFile`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceFile>,
    /// `configs`, each joined with the top-level definition it names (see [`ServiceFile`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ServiceFile>,
}

/// One entry of a service's `secrets:` or `configs:` (short syntax `- name` or long syntax
/// `{source, target, uid, gid, mode}`), together with the source the top-level definition
/// `secrets.<source>` / `configs.<source>` gives it: exactly one of `file`, `environment`,
/// `content` (configs only) or `external`.
///
/// Compose prints the definitions in top-level sections; here each service entry carries its
/// own, so that what a container needs is in one place (Compose's `config` output also
/// leaves unused definitions out). [`crate::compose::file_mounts`] turns entries into what
/// the engine mounts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServiceFile {
    /// The name of the top-level definition.
    pub source: String,
    /// `target` as written; for secrets without one, `/run/secrets/<source>` (as Compose's
    /// `config` prints it). A relative secret target lands under `/run/secrets/`, a relative
    /// config target under `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `uid` of the file in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// `gid` of the file in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// Permission bits, printed in octal (`"0440"`) as Compose prints them. In the file, a
    /// string is read as octal and a number as decimal (`mode: 0440` is octal 440, like
    /// Compose; `mode: 440` is decimal 440 = `"0670"`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "octal_mode")]
    pub mode: Option<u32>,
    /// Source: an absolute host file (`file:` of the definition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Source: the variable named by `environment:` of the definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Source: inline `content:` (configs), already interpolated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// `external: true`: managed outside the project (Compose refuses these outside Swarm).
    #[serde(default, skip_serializing_if = "is_false")]
    pub external: bool,
    /// The value of `environment` when the project was loaded (from the same environment as
    /// interpolation); never printed.
    #[serde(skip)]
    pub environment_value: Option<String>,
}

/// `mode` as an octal string (`"0440"`), the way Compose prints it.
mod octal_mode {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match mode {
            Some(m) => s.serialize_str(&format!("{m:#o}").replace("0o", "0")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            u32::from_str_radix(t.trim_start_matches("0o"), 8).map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `build`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Build {
    /// Absolute context directory.
    pub context: PathBuf,
    /// Dockerfile path relative to the context (default `Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Build args (`None`: a bare name that was unset in the environment).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub args: IndexMap<String, Option<String>>,
    /// `target` stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A `depends_on` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    /// What to wait for.
    pub condition: DependencyCondition,
    /// `required: false` turns failure into a warning.
    pub required: bool,
}

/// `depends_on.<svc>.condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyCondition {
    /// Started (the short form).
    ServiceStarted,
    /// Healthy per its healthcheck.
    ServiceHealthy,
    /// Exited with code 0.
    ServiceCompletedSuccessfully,
}

/// `healthcheck`, canonicalised. Durations in seconds; `None` means "inherit from the image or
/// engine default".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]` (disabled); empty = inherit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<f64>,
    /// `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// `retries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// `start_period`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<f64>,
    /// `start_interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<f64>,
}

impl Healthcheck {
    /// Whether the healthcheck is explicitly disabled (`disable: true` or `test: ["NONE"]`).
    pub fn is_disabled(&self) -> bool {
        self.test.first().map(String::as_str) == Some("NONE")
    }
}

/// A `ports` entry in long syntax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Container port.
    pub target: u16,
    /// Host port or range (`"8000"`, `"2003-2004"`); `None` = ephemeral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// Host IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// A `volumes` entry in long syntax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    /// Kind of mount.
    #[serde(rename = "type")]
    pub kind: MountKind,
    /// Volume key (named volume), absolute host path (bind); absent for anonymous/tmpfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Path in the container.
    pub target: String,
    /// `ro`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Bind options kept verbatim for the engine (`z`, `Z`, `cached`, `delegated`...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// A bind whose host path is created (as a folder) when it does not exist: every
    /// short-syntax bind, and long-syntax ones unless `bind.create_host_path: false`, as in
    /// Compose v2.
    #[serde(default, skip_serializing_if = "is_false")]
    pub create_host_path: bool,
}

/// `volumes[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A named or anonymous volume.
    Volume,
    /// A host path.
    Bind,
    /// A tmpfs.
    Tmpfs,
}

/// A service's membership of one network.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServiceNetwork {
    /// Extra DNS names on that network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `ipv4_address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
}

/// A top-level network.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Network {
    /// The engine-side name (`<project>_<key>` unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `driver`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// `external`: not created by us.
    #[serde(default, skip_serializing_if = "is_false")]
    pub external: bool,
    /// `internal`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub internal: bool,
    /// `labels`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
}

/// A top-level named volume.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Volume {
    /// The engine-side name (`<project>_<key>` unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `driver`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// `driver_opts`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub driver_opts: IndexMap<String, String>,
    /// `external`: not created by us.
    #[serde(default, skip_serializing_if = "is_false")]
    pub external: bool,
    /// `labels`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
}
