//! Whether an engine sees a folder of this machine at the same path: the check behind the
//! automatic `--copy-source`.
//!
//! A bind mount names a path on the *engine's* host. When compose-shard runs inside a
//! container (a CI runner that uses the host's engine through its socket) or talks to another
//! machine, the checkout's path does not exist there, or is another folder. Comparing paths
//! cannot tell; asking the engine can: we write a marker file with a random name and content
//! into the folder, create (never start) a throwaway container with the folder bind-mounted,
//! and read the marker through the archive API, which mounts a created container's volumes.
//! The engine sees the folder only if it returns our content. The container and the marker
//! are removed afterwards, also on errors.
//!
//! The probe is skipped when the engine is a `dockerd` on this machine's Unix socket running
//! in this process's mount namespace (the socket's peer process, from `SO_PEERCRED`, and
//! `/proc/PID/ns/mnt`): then every path here is the same path there. Any doubt (the peer is
//! in another pid namespace, is not `dockerd` but a forwarder such as ssh or socat, or its
//! namespace cannot be read without root) leaves the decision to the probe.
//!
//! The bind is a `Mounts` entry of type `bind`, not a `Binds` string: with `Binds` the engine
//! creates a missing source folder on its host (an empty one, where the tests would then run);
//! with `Mounts` it refuses ("bind source path does not exist"), which is the answer "not
//! visible".

use std::hash::{BuildHasher, Hasher};
use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::CreateContainerOptionsBuilder;

use super::client::DockerEngine;
use super::error::EngineError;
use crate::labels;

/// Where the folder is mounted in the probe container.
const PROBE_MOUNT: &str = "/compose-shard-probe";

/// A random hex token (no `rand` dependency: the std hasher's per-process random keys mixed
/// with the time and a counter).
pub(super) fn random_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

/// Removes the marker file when dropped, whatever happened in between.
struct Marker<'a>(&'a Path);

impl Drop for Marker<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// Whether an error from creating the probe container means "the source path does not exist
/// on the engine's host".
fn is_missing_bind_source(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError { status_code: 400, message }
            if message.contains("bind source path does not exist")
    )
}

/// Whether the process serving `socket` is a `dockerd` in this process's mount namespace.
pub(crate) async fn dockerd_shares_our_mount_namespace(socket: &Path) -> bool {
    let Ok(stream) = tokio::net::UnixStream::connect(socket).await else {
        return false;
    };
    let Some(pid) = stream
        .peer_cred()
        .ok()
        .and_then(|cred| cred.pid())
        .filter(|pid| *pid > 0)
    else {
        return false;
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim_end() != "dockerd" {
        return false;
    }
    match (
        std::fs::read_link(format!("/proc/{pid}/ns/mnt")),
        // The calling thread's own namespace (a thread may have unshared its mounts).
        std::fs::read_link("/proc/thread-self/ns/mnt"),
    ) {
        (Ok(theirs), Ok(ours)) => theirs == ours,
        _ => false,
    }
}

impl DockerEngine {
    /// Whether a folder of this machine bind-mounted into a container is that container's
    /// folder at once: only for a `dockerd` on this machine's Unix socket in this process's
    /// mount namespace (no probe: anything else copies through the engine).
    /// An engine that labels containers for SELinux is left out too: a folder of this
    /// machine would need relabelling before a container may write into it.
    pub async fn shares_host_folders(&self) -> bool {
        let cell = self.shares_folders.clone();
        *cell.get_or_init(|| self.ask_shares_host_folders()).await
    }

    async fn ask_shares_host_folders(&self) -> bool {
        let super::address::Transport::Unix { socket } = self.address().transport() else {
            return false;
        };
        if !dockerd_shares_our_mount_namespace(socket).await {
            return false;
        }
        match self.docker.info().await {
            Ok(info) => !info
                .security_options
                .unwrap_or_default()
                .iter()
                .any(|o| o.contains("selinux")),
            Err(_) => false,
        }
    }

    /// Whether this engine sees `dir` (a folder of this machine) at the same path: a local
    /// `dockerd` in our mount namespace does; otherwise a throwaway container created from
    /// `image` (any image present on the engine; the container is never started) tells. See
    /// the module docs.
    pub async fn engine_sees_path(&self, image: &str, dir: &Path) -> Result<bool, EngineError> {
        if let super::address::Transport::Unix { socket } = self.address().transport() {
            if dockerd_shares_our_mount_namespace(socket).await {
                return Ok(true);
            }
        }
        let token = random_token();
        let marker_name = format!(".compose-shard-visible-{token}");
        let marker_path = dir.join(&marker_name);
        std::fs::write(&marker_path, token.as_bytes()).map_err(|source| EngineError::Io {
            action: "write a marker file (to check whether the engine sees this folder) at".into(),
            path: marker_path.clone(),
            source,
        })?;
        let _marker = Marker(&marker_path);
        let container = format!("compose-shard-probe-{token}");
        let body = probe_body(
            image,
            vec![Mount {
                target: Some(PROBE_MOUNT.into()),
                source: Some(dir.display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Default::default()
            }],
        );
        let created = self
            .docker
            .create_container(
                Some(
                    CreateContainerOptionsBuilder::new()
                        .name(&container)
                        .build(),
                ),
                body,
            )
            .await;
        match created {
            Ok(_) => {}
            Err(e) if is_missing_bind_source(&e) => return Ok(false),
            Err(e) => {
                return Err(self.api_error(format!(
                    "create container {container} from {image} to check whether the engine sees {}",
                    dir.display()
                ))(e))
            }
        }
        let read = self
            .read_file(&container, &format!("{PROBE_MOUNT}/{marker_name}"))
            .await;
        let removed = self
            .remove_container_forced(&container)
            .await
            .map_err(self.api_error(format!("remove container {container}")));
        let seen = read?.is_some_and(|content| content == token.as_bytes());
        removed?;
        Ok(seen)
    }
}

/// A throwaway container from `image` that is never started: no network, labelled as ours
/// (with our pid, so `clean` removes it if we die before we do).
pub(super) fn probe_body(image: &str, mounts: Vec<Mount>) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["true".into()]),
        labels: Some(
            [
                (labels::MANAGED.to_string(), "true".to_string()),
                (labels::PID.to_string(), std::process::id().to_string()),
            ]
            .into(),
        ),
        host_config: Some(HostConfig {
            mounts: (!mounts.is_empty()).then_some(mounts),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl DockerEngine {
    /// Whether `image` has files or folders under `path` (a volume created there would be
    /// filled with them; a tmpfs would hide them): read through the archive API from a
    /// created, never-started container without mounts, removed afterwards.
    pub async fn image_has_files_at(&self, image: &str, path: &str) -> Result<bool, EngineError> {
        let container = format!("compose-shard-probe-{}", random_token());
        let body = probe_body(image, Vec::new());
        let options = CreateContainerOptionsBuilder::new()
            .name(&container)
            .build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(self.api_error(format!(
                "create container {container} from {image} to look at its {path}"
            )))?;
        let read = self.download_archive(&container, path).await;
        let removed = self
            .remove_container_forced(&container)
            .await
            .map_err(self.api_error(format!("remove container {container}")));
        let archive = read?;
        removed?;
        Ok(archive.is_some_and(|tar| super::extract::archive_has_content(&tar[..])))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_socket_served_by_anything_but_dockerd_leaves_the_answer_to_the_probe() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("fake-docker.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let accept = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
        // The peer is this test process (in our namespace, but not dockerd): a forwarder
        // such as ssh or socat looks the same, and its engine may be anywhere.
        assert!(!super::dockerd_shares_our_mount_namespace(&socket).await);
        accept.await.unwrap().unwrap();
        assert!(!super::dockerd_shares_our_mount_namespace(&dir.path().join("none.sock")).await);
    }

    #[test]
    fn tokens_differ() {
        let a = super::random_token();
        let b = super::random_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
    }
}
