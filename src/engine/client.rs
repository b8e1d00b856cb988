//! [`DockerEngine`]: the connection to the daemon, networks, volumes, and finding or removing
//! everything a run labelled. Containers are in `container.rs`, images in `image.rs`.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use bollard::Docker;
use indexmap::IndexMap;

use super::address::{EngineAddress, EngineEnv, Transport};
use super::error::EngineError;
use super::types::{EngineInfo, ManagedResource, ResourceKind};
use crate::labels;

/// The read/write timeout bollard applies to each request, in seconds (its own default).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// A connection to one Docker engine. Cheap to clone (bollard shares one HTTP client).
#[derive(Debug, Clone)]
pub struct DockerEngine {
    pub(crate) docker: Docker,
    address: EngineAddress,
    /// `address` as text, for error messages.
    label: String,
    /// Output streams attached before a container started ([`DockerEngine::start_attached`]),
    /// taken by [`DockerEngine::follow_logs`].
    pub(crate) attached: AttachedStreams,
    /// Folders of this machine bind-mounted into containers, written and read here.
    pub(crate) host_folders: super::host_folders::HostFolders,
    /// Whether folders of this machine are the containers' own (asked once per engine).
    pub(crate) shares_folders: std::sync::Arc<tokio::sync::OnceCell<bool>>,
}

/// Output streams by container, shared by clones of one engine.
#[derive(Clone, Default)]
pub(crate) struct AttachedStreams(
    pub(crate) std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, AttachedOutput>>>,
);

impl std::fmt::Debug for AttachedStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttachedStreams")
    }
}

/// A container's output stream, attached before it started.
pub(crate) type AttachedOutput = std::pin::Pin<
    Box<
        dyn futures::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>
            + Send,
    >,
>;

impl DockerEngine {
    /// Connect to the default engine (`DOCKER_HOST`, `DOCKER_CONTEXT`, the docker config's
    /// current context, else the default socket) and check it answers.
    pub async fn connect() -> Result<DockerEngine, EngineError> {
        let address = EngineAddress::default_engine(&EngineEnv::from_process())?;
        DockerEngine::connect_to(&address).await
    }

    /// Connect to the engine at `address` and check it answers. Errors name the address and
    /// say what to check for its kind of connection.
    pub async fn connect_to(address: &EngineAddress) -> Result<DockerEngine, EngineError> {
        let version = bollard::API_DEFAULT_VERSION;
        let docker = match address.transport() {
            Transport::Unix { .. } => {
                Docker::connect_with_unix(address.url(), REQUEST_TIMEOUT_SECS, version)
            }
            Transport::Tcp { .. } => {
                Docker::connect_with_http(address.url(), REQUEST_TIMEOUT_SECS, version)
            }
            Transport::Tls { authority, files } => {
                // Without a client certificate bollard finds no file there and sends none.
                let (cert, key) = files.client.clone().unwrap_or_else(|| {
                    let none = files.ca.with_file_name(".compose-shard-no-client-cert");
                    (none.clone(), none)
                });
                Docker::connect_with_ssl(
                    &format!("https://{authority}"),
                    &key,
                    &cert,
                    &files.ca,
                    REQUEST_TIMEOUT_SECS,
                    version,
                )
            }
            Transport::Ssh { .. } => {
                Docker::connect_with_ssh(address.url(), REQUEST_TIMEOUT_SECS, version, None)
            }
        }
        .map_err(|e| EngineError::unreachable(address, &e))?;
        docker
            .ping()
            .await
            .map_err(|e| EngineError::unreachable(address, &e))?;
        Ok(DockerEngine {
            docker,
            label: address.to_string(),
            address: address.clone(),
            attached: Default::default(),
            host_folders: Default::default(),
            shares_folders: Default::default(),
        })
    }

    /// Where we are connected, as text (`tcp://build1:2376 (context build1)`).
    pub fn endpoint(&self) -> &str {
        &self.label
    }

    /// Where we are connected.
    pub fn address(&self) -> &EngineAddress {
        &self.address
    }

    /// Wrap a bollard error with what was attempted on this engine.
    pub(crate) fn api_error(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> EngineError {
        EngineError::api(&self.label, action)
    }

    /// The daemon's version string (`20.10.24+dfsg1`).
    pub async fn version(&self) -> Result<String, EngineError> {
        let v = self
            .docker
            .version()
            .await
            .map_err(self.api_error("read the Docker daemon version"))?;
        Ok(v.version.unwrap_or_else(|| "unknown".into()))
    }

    /// What the engine says about itself: CPUs and memory (to place groups in proportion),
    /// name and version.
    pub async fn info(&self) -> Result<EngineInfo, EngineError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(self.api_error("read the engine's system information"))?;
        Ok(EngineInfo {
            address: self.label.clone(),
            cpus: info.ncpu.and_then(|n| usize::try_from(n).ok()).unwrap_or(0),
            memory_bytes: info
                .mem_total
                .and_then(|m| u64::try_from(m).ok())
                .unwrap_or(0),
            name: info.name.unwrap_or_default(),
            server_version: info.server_version.unwrap_or_default(),
            operating_system: info.operating_system.unwrap_or_default(),
            id: info.id.unwrap_or_default(),
        })
    }

    /// Create a network unless one with that name exists already (a retry after a partial
    /// start must not fail on its own leftovers).
    pub async fn create_network(
        &self,
        name: &str,
        driver: Option<&str>,
        internal: bool,
        labels: &IndexMap<String, String>,
    ) -> Result<(), EngineError> {
        let request = bollard::models::NetworkCreateRequest {
            name: name.to_string(),
            driver: driver.map(str::to_string),
            internal: Some(internal),
            attachable: Some(true),
            labels: Some(to_hash_map(labels)),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(self.api_error(format!("create network {name}"))(e)),
        }
    }

    /// Create a named volume (idempotent on the engine side).
    pub async fn create_volume(
        &self,
        name: &str,
        driver: Option<&str>,
        driver_opts: &IndexMap<String, String>,
        labels: &IndexMap<String, String>,
    ) -> Result<(), EngineError> {
        let request = bollard::models::VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: driver.map(str::to_string),
            driver_opts: Some(to_hash_map(driver_opts)),
            labels: Some(to_hash_map(labels)),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map_err(self.api_error(format!("create volume {name}")))?;
        Ok(())
    }

    /// Every container, network and volume carrying `label` (`key` or `key=value`); the
    /// three lists are asked for at once.
    pub async fn list_labelled(&self, label: &str) -> Result<Vec<ManagedResource>, EngineError> {
        let filters: HashMap<&str, Vec<&str>> = HashMap::from([("label", vec![label])]);
        let containers = async {
            self.docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::new()
                        .all(true)
                        .filters(&filters)
                        .build(),
                ))
                .await
                .map_err(self.api_error(format!("list containers labelled {label}")))
        };
        let networks = async {
            self.docker
                .list_networks(Some(
                    ListNetworksOptionsBuilder::new().filters(&filters).build(),
                ))
                .await
                .map_err(self.api_error(format!("list networks labelled {label}")))
        };
        let volumes = async {
            self.docker
                .list_volumes(Some(
                    ListVolumesOptionsBuilder::new().filters(&filters).build(),
                ))
                .await
                .map_err(self.api_error(format!("list volumes labelled {label}")))
        };
        let (containers, networks, volumes) =
            futures::future::try_join3(containers, networks, volumes).await?;
        let mut found = Vec::new();
        for c in containers {
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .or(c.id)
                .unwrap_or_default();
            found.push(resource(ResourceKind::Container, name, c.labels.as_ref()));
        }
        for n in networks {
            let name = n.name.unwrap_or_default();
            found.push(resource(ResourceKind::Network, name, n.labels.as_ref()));
        }
        for v in volumes.volumes.unwrap_or_default() {
            found.push(resource(ResourceKind::Volume, v.name, Some(&v.labels)));
        }
        Ok(found)
    }

    /// Remove a container, killing it if it runs, with its anonymous volumes.
    pub(crate) async fn remove_container_forced(
        &self,
        name: &str,
    ) -> Result<(), bollard::errors::Error> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        self.docker.remove_container(name, Some(options)).await
    }

    /// Remove one resource; a resource that is already gone is not an error.
    pub async fn remove(&self, res: &ManagedResource) -> Result<(), EngineError> {
        let result = match res.kind {
            ResourceKind::Container => self.remove_container_forced(&res.name).await,
            ResourceKind::Network => self.docker.remove_network(&res.name).await,
            ResourceKind::Volume => {
                self.docker
                    .remove_volume(
                        &res.name,
                        Some(RemoveVolumeOptionsBuilder::new().force(true).build()),
                    )
                    .await
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.api_error(format!("remove {} {}", res.kind, res.name))(
                e,
            )),
        }
    }

    /// Remove everything carrying `label`: containers first (they hold networks and volumes),
    /// then networks and volumes. Returns what was removed; keeps going after an error and
    /// reports the first one, so one stuck resource does not leave all the others behind.
    pub async fn remove_labelled(&self, label: &str) -> Result<Vec<ManagedResource>, EngineError> {
        let mut found = self.list_labelled(label).await?;
        found.sort_by_key(|r| r.kind);
        let mut removed = Vec::new();
        let mut first_error = None;
        // Containers first; networks and volumes do not hold each other and go together.
        let batches: [&[ResourceKind]; 2] = [
            &[ResourceKind::Container],
            &[ResourceKind::Network, ResourceKind::Volume],
        ];
        for kinds in batches {
            let batch: Vec<_> = found.iter().filter(|r| kinds.contains(&r.kind)).collect();
            let results = futures::future::join_all(batch.iter().map(|r| self.remove(r))).await;
            for (r, result) in batch.into_iter().zip(results) {
                match result {
                    Ok(()) => removed.push(r.clone()),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }
}

fn resource(
    kind: ResourceKind,
    name: String,
    labels: Option<&HashMap<String, String>>,
) -> ManagedResource {
    let get = |key: &str| labels.and_then(|l| l.get(key)).cloned();
    ManagedResource {
        kind,
        name,
        run_id: get(labels::RUN),
        pid: get(labels::PID).and_then(|p| p.parse().ok()),
    }
}

pub(crate) fn to_hash_map(map: &IndexMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
