//! [`DockerEngine`]: the connection to the daemon, networks, volumes, and finding or removing
//! everything a run labelled. Containers are in `container.rs`, images in `image.rs`.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use bollard::Docker;
use indexmap::IndexMap;

use super::error::EngineError;
use super::types::{ManagedResource, ResourceKind};
use crate::labels;

/// The schemes `DOCKER_HOST` may use: those bollard connects with in this build (no `ssh` or
/// `ssl` feature, so no `ssh://` or `https://`).
pub const DOCKER_HOST_SCHEMES: &[&str] = &["unix", "tcp", "http"];

/// Where the daemon is: `DOCKER_HOST` (an empty value counts as unset, as for the docker CLI)
/// or the default socket; an error naming the scheme when this build cannot use it.
pub fn docker_host(value: Option<String>) -> Result<String, EngineError> {
    let endpoint = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
    let problem = match endpoint.split_once("://") {
        None => "it has no scheme (`SCHEME://...`)".to_string(),
        Some((scheme, _)) if DOCKER_HOST_SCHEMES.contains(&scheme) => return Ok(endpoint),
        Some((scheme @ ("ssh" | "https" | "npipe"), _)) => {
            format!("scheme `{scheme}` is not supported by this build")
        }
        Some((scheme, _)) => format!("unknown scheme `{scheme}`"),
    };
    Err(EngineError::UnsupportedHost { endpoint, problem })
}

/// A connection to the Docker engine. Cheap to clone (bollard shares one HTTP client).
#[derive(Debug, Clone)]
pub struct DockerEngine {
    pub(crate) docker: Docker,
    endpoint: String,
}

impl DockerEngine {
    /// Connect from `DOCKER_HOST` or the default socket and check the daemon answers.
    pub async fn connect() -> Result<DockerEngine, EngineError> {
        let endpoint = docker_host(std::env::var("DOCKER_HOST").ok())?;
        let docker = Docker::connect_with_host(&endpoint)
            .map_err(|e| EngineError::unreachable(&endpoint, &e))?;
        docker
            .ping()
            .await
            .map_err(|e| EngineError::unreachable(&endpoint, &e))?;
        Ok(DockerEngine { docker, endpoint })
    }

    /// Where we are connected.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The daemon's version string (`20.10.24+dfsg1`).
    pub async fn version(&self) -> Result<String, EngineError> {
        let v = self
            .docker
            .version()
            .await
            .map_err(EngineError::api("read the Docker daemon version"))?;
        Ok(v.version.unwrap_or_else(|| "unknown".into()))
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
            Err(e) => Err(EngineError::api(format!("create network {name}"))(e)),
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
            .map_err(EngineError::api(format!("create volume {name}")))?;
        Ok(())
    }

    /// Every container, network and volume carrying `label` (`key` or `key=value`).
    pub async fn list_labelled(&self, label: &str) -> Result<Vec<ManagedResource>, EngineError> {
        let filters: HashMap<&str, Vec<&str>> = HashMap::from([("label", vec![label])]);
        let mut found = Vec::new();
        let containers = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(EngineError::api(format!(
                "list containers labelled {label}"
            )))?;
        for c in containers {
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .or(c.id)
                .unwrap_or_default();
            found.push(resource(ResourceKind::Container, name, c.labels.as_ref()));
        }
        let networks = self
            .docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(EngineError::api(format!("list networks labelled {label}")))?;
        for n in networks {
            let name = n.name.unwrap_or_default();
            found.push(resource(ResourceKind::Network, name, n.labels.as_ref()));
        }
        let volumes = self
            .docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(EngineError::api(format!("list volumes labelled {label}")))?;
        for v in volumes.volumes.unwrap_or_default() {
            found.push(resource(ResourceKind::Volume, v.name, Some(&v.labels)));
        }
        Ok(found)
    }

    /// Remove one resource; a resource that is already gone is not an error.
    pub async fn remove(&self, res: &ManagedResource) -> Result<(), EngineError> {
        let result = match res.kind {
            ResourceKind::Container => {
                // force: kill if running; v: drop its anonymous volumes with it.
                self.docker
                    .remove_container(
                        &res.name,
                        Some(
                            RemoveContainerOptionsBuilder::new()
                                .force(true)
                                .v(true)
                                .build(),
                        ),
                    )
                    .await
            }
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
            Err(e) => Err(EngineError::api(format!(
                "remove {} {}",
                res.kind, res.name
            ))(e)),
        }
    }

    /// Remove everything carrying `label`: containers first (they hold networks and volumes),
    /// then networks, then volumes. Returns what was removed; keeps going after an error and
    /// reports the first one, so one stuck resource does not leave all the others behind.
    pub async fn remove_labelled(&self, label: &str) -> Result<Vec<ManagedResource>, EngineError> {
        let mut found = self.list_labelled(label).await?;
        found.sort_by_key(|r| r.kind);
        let mut removed = Vec::new();
        let mut first_error = None;
        for kind in [
            ResourceKind::Container,
            ResourceKind::Network,
            ResourceKind::Volume,
        ] {
            let batch: Vec<_> = found.iter().filter(|r| r.kind == kind).collect();
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
