//! Plain types the engine hands to the rest of the program, so no bollard type leaks out.

/// A container's health as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No healthcheck is configured (neither in compose nor in the image).
    None,
    /// Within the start period, or not yet enough probes.
    Starting,
    /// The last probes passed.
    Healthy,
    /// `retries` probes in a row failed.
    Unhealthy,
}

/// What `inspect` tells the orchestrator about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    /// `created`, `running`, `exited`, `dead`...
    pub state: String,
    /// Whether it is running now.
    pub running: bool,
    /// Exit code once it has exited.
    pub exit_code: Option<i64>,
    /// Killed by the kernel's OOM killer.
    pub oom_killed: bool,
    /// Healthcheck state.
    pub health: Health,
    /// IPv4 addresses on its networks (for TCP readiness probes).
    pub ip_addresses: Vec<String>,
}

impl ContainerStatus {
    /// Whether the container has stopped for good.
    pub fn has_exited(&self) -> bool {
        !self.running && matches!(self.state.as_str(), "exited" | "dead")
    }

    /// A short human description: `running (healthy)`, `exited with code 1 (OOM killed)`.
    pub fn describe(&self) -> String {
        let mut text = if self.has_exited() {
            format!("exited with code {}", self.exit_code.unwrap_or(-1))
        } else {
            self.state.clone()
        };
        match self.health {
            Health::None => {}
            Health::Starting => text.push_str(" (health: starting)"),
            Health::Healthy => text.push_str(" (healthy)"),
            Health::Unhealthy => text.push_str(" (unhealthy)"),
        }
        if self.oom_killed {
            text.push_str(" (OOM killed)");
        }
        text
    }
}

/// Kinds of resources a run creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResourceKind {
    /// A container.
    Container,
    /// A network.
    Network,
    /// A volume.
    Volume,
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceKind::Container => "container",
            ResourceKind::Network => "network",
            ResourceKind::Volume => "volume",
        })
    }
}

/// One labelled resource found on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedResource {
    /// Container, network or volume.
    pub kind: ResourceKind,
    /// Its name.
    pub name: String,
    /// The run id label.
    pub run_id: Option<String>,
    /// The pid label of the process that created it.
    pub pid: Option<u32>,
}

/// What a command run with `exec` produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The process exit code (`None` if the engine could not tell, e.g. the container died).
    pub exit_code: Option<i64>,
}

/// What an image's own configuration says that the orchestrator needs: its `EXPOSE`d TCP
/// ports (readiness probes for services that declare none), its environment (to extend
/// `PYTHONPATH` rather than replace it) and its `HEALTHCHECK` test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// TCP ports from `EXPOSE`, sorted.
    pub exposed_tcp_ports: Vec<u16>,
    /// `ENV` as `(key, value)`.
    pub env: Vec<(String, String)>,
    /// The `HEALTHCHECK` test (`["CMD-SHELL", "..."]`, `["CMD", ...]`, `["NONE"]`), if any.
    pub healthcheck_test: Option<Vec<String>>,
    /// The `HEALTHCHECK`'s timing (what the compose file's `healthcheck:` does not set).
    pub healthcheck_timing: HealthTiming,
    /// The image's id (`sha256:...`): what a snapshot of a service's data was made with.
    pub id: String,
    /// Paths its `VOLUME` instruction declares (anonymous volumes of every container).
    pub volumes: Vec<String>,
    /// Its `ENTRYPOINT` (empty for none).
    pub entrypoint: Vec<String>,
}

/// A healthcheck's timing, each `None` where not set (the engine's default applies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthTiming {
    /// `interval`.
    pub interval: Option<std::time::Duration>,
    /// `timeout`.
    pub timeout: Option<std::time::Duration>,
    /// `retries`.
    pub retries: Option<u32>,
    /// `start_period`.
    pub start_period: Option<std::time::Duration>,
}

/// What an engine says about itself (`docker info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// The engine's address, as text.
    pub address: String,
    /// CPUs the engine can use (0 if it did not say).
    pub cpus: usize,
    /// Memory the engine can use, in bytes (0 if it did not say).
    pub memory_bytes: u64,
    /// The engine host's name.
    pub name: String,
    /// The daemon's version (`20.10.24+dfsg1`).
    pub server_version: String,
    /// The host's operating system (`Debian GNU/Linux 12 (bookworm)`).
    pub operating_system: String,
    /// The engine's own id (`docker info`'s `ID`): snapshots are never shared between
    /// engines.
    pub id: String,
}

/// A tar archive in a file, opened once and read by position, so that any number of
/// concurrent copies into containers share it (and the page cache) instead of each holding
/// it in memory; a file renamed or removed meanwhile stays readable through the open handle.
#[derive(Debug, Clone)]
pub struct ArchiveFile {
    /// Where it was opened.
    pub path: std::path::PathBuf,
    /// The open file.
    pub file: std::sync::Arc<std::fs::File>,
    /// Its size in bytes.
    pub len: u64,
}

impl ArchiveFile {
    /// Open `path` for reading.
    pub fn open(path: &std::path::Path) -> std::io::Result<ArchiveFile> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Ok(ArchiveFile {
            path: path.to_path_buf(),
            file: std::sync::Arc::new(file),
            len,
        })
    }

    /// `len` bytes from `at` (fewer at the end).
    pub fn read_piece(&self, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let len = len.min(usize::try_from(self.len.saturating_sub(at)).unwrap_or(usize::MAX));
        let mut piece = vec![0; len];
        self.file.read_exact_at(&mut piece, at)?;
        Ok(piece)
    }

    /// The whole content (small archives, tests).
    pub fn read_all(&self) -> std::io::Result<Vec<u8>> {
        self.read_piece(0, usize::try_from(self.len).unwrap_or(usize::MAX))
    }
}
