//! Volumes layered over a snapshot: the snapshot's data is copied once per engine into a
//! template volume, and every environment that restores it mounts an overlay of its own over
//! the template (`local` driver, `type=overlay`), so nothing is copied per environment and
//! what a service writes stays in its own upper layer.

use bollard::models::{Mount, MountType};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveVolumeOptionsBuilder};
use indexmap::IndexMap;

use super::client::{to_hash_map, DockerEngine};
use super::error::EngineError;
use super::types::ArchiveFile;
use super::visibility::{probe_body, random_token};

impl DockerEngine {
    /// Where the engine keeps a volume's files (in the engine's own filesystem), or `None` if
    /// there is no such volume.
    pub async fn volume_mountpoint(&self, name: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_volume(name).await {
            Ok(volume) => Ok(Some(volume.mountpoint)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.api_error(format!("inspect volume {name}"))(e)),
        }
    }

    /// Create a `local` volume with these driver options and labels; returns where the
    /// engine keeps its files.
    pub async fn create_local_volume(
        &self,
        name: &str,
        driver_opts: &IndexMap<String, String>,
        labels: &IndexMap<String, String>,
    ) -> Result<String, EngineError> {
        let request = bollard::models::VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some("local".into()),
            driver_opts: Some(to_hash_map(driver_opts)),
            labels: Some(to_hash_map(labels)),
            ..Default::default()
        };
        let volume = self
            .docker
            .create_volume(request)
            .await
            .map_err(self.api_error(format!("create volume {name}")))?;
        Ok(volume.mountpoint)
    }

    /// Remove a volume; one that does not exist is not an error.
    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveVolumeOptionsBuilder::new().force(true).build();
        match self.docker.remove_volume(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.api_error(format!("remove volume {name}"))(e)),
        }
    }

    /// Remove a container (running or not); one that does not exist is not an error.
    pub async fn remove_container(&self, name: &str) -> Result<(), EngineError> {
        match self.remove_container_forced(name).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.api_error(format!("remove container {name}"))(e)),
        }
    }

    /// Extract a tar archive file at the top of a volume, through a created, never-started
    /// container of `image` (any image present on the engine) that mounts it, removed after.
    pub async fn fill_volume(
        &self,
        volume: &str,
        image: &str,
        archive: &ArchiveFile,
    ) -> Result<(), EngineError> {
        let container = format!("compose-shard-fill-{}", random_token());
        let mount = Mount {
            target: Some("/compose-shard-volume".into()),
            source: Some(volume.to_string()),
            typ: Some(MountType::VOLUME),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new()
            .name(&container)
            .build();
        self.docker
            .create_container(Some(options), probe_body(image, vec![mount]))
            .await
            .map_err(self.api_error(format!(
                "create container {container} from {image} to fill volume {volume}"
            )))?;
        let filled = self
            .extract_file_into(&container, "/compose-shard-volume", archive)
            .await;
        let removed = self.remove_container(&container).await;
        filled?;
        removed
    }
}
