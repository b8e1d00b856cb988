//! [`Backend`]: the engine operations the orchestrator needs, in our own types. The real
//! implementation is [`DockerEngine`]; tests use a scripted fake so startup order, dependency
//! conditions, failure propagation and cleanup can be checked without Docker.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;

use crate::compose::{Network, Project, Service, Volume};
use crate::engine::{
    ArchiveFile, ContainerOverrides, ContainerStatus, DockerEngine, EngineError, EngineInfo,
    ExecOutcome, ExecRequest, ImageConfig, ImageSource, ManagedResource, SourceUpload,
    UploadSummary,
};

/// The operations the orchestrator performs on an engine.
///
/// `async fn` in a trait gives futures without a `Send` bound; that is deliberate: all groups
/// run as futures joined on one task (their work is waiting on the engine, not computing), so
/// nothing is ever moved across threads.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// Build a `build:` service's image (or reuse the cached build), leaving `excluded`
    /// folders out of its context; returns the tag to use.
    async fn build_image(
        &self,
        service: &Service,
        excluded: &[PathBuf],
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(String, ImageSource), EngineError>;
    /// Make a non-build image available (local, else pulled if allowed).
    async fn ensure_image(
        &self,
        image: &str,
        allow_pull: bool,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ImageSource, EngineError>;
    /// Create a network (labelled via `net.labels`).
    async fn create_network(&self, name: &str, net: &Network) -> Result<(), EngineError>;
    /// Create a volume (labelled via `vol.labels`).
    async fn create_volume(&self, name: &str, vol: &Volume) -> Result<(), EngineError>;
    /// Create a service's container without starting it; returns its name.
    async fn create_service(
        &self,
        project: &Project,
        service: &Service,
        overrides: &ContainerOverrides,
    ) -> Result<String, EngineError>;
    /// Start a created container.
    async fn start(&self, container: &str) -> Result<(), EngineError>;
    /// Start a created container whose output [`Backend::follow_logs`] follows next: an
    /// engine may attach to its output first, so nothing is read late.
    async fn start_attached(&self, container: &str) -> Result<(), EngineError> {
        self.start(container).await
    }
    /// Kill a running container (a stopped one is not an error).
    async fn kill(&self, container: &str) -> Result<(), EngineError>;
    /// Stop a container cleanly: its stop signal, then SIGKILL after `grace_seconds`.
    async fn stop(&self, container: &str, grace_seconds: u32) -> Result<(), EngineError>;
    /// A folder of a (stopped or created) container, volumes included, written to the file
    /// `dest` as a tar archive whose top entry is the folder; its size, or `None` if absent.
    async fn archive_to_file(
        &self,
        container: &str,
        path: &str,
        dest: &Path,
    ) -> Result<Option<u64>, EngineError>;
    /// Extract a tar archive file into a folder of a created container, volumes included
    /// (read in pieces: every environment restoring it shares the one file).
    async fn extract_file_into(
        &self,
        container: &str,
        dir: &str,
        archive: &ArchiveFile,
    ) -> Result<(), EngineError>;
    /// Where the engine keeps a volume's files; `None` if there is no such volume.
    async fn volume_mountpoint(&self, name: &str) -> Result<Option<String>, EngineError>;
    /// Create a `local` volume with driver options and labels; where its files are kept.
    async fn create_local_volume(
        &self,
        name: &str,
        driver_opts: &IndexMap<String, String>,
        labels: &IndexMap<String, String>,
    ) -> Result<String, EngineError>;
    /// Remove a volume (an absent one is not an error).
    async fn remove_volume(&self, name: &str) -> Result<(), EngineError>;
    /// Remove a container (an absent one is not an error).
    async fn remove_container(&self, name: &str) -> Result<(), EngineError>;
    /// Extract a tar archive file at the top of a volume (through a never-started container
    /// of `image`).
    async fn fill_volume(
        &self,
        volume: &str,
        image: &str,
        archive: &ArchiveFile,
    ) -> Result<(), EngineError>;
    /// Upload a small tar archive into a folder of a created container, volumes included.
    async fn upload_archive_bytes(
        &self,
        container: &str,
        dir: &str,
        archive: Vec<u8>,
    ) -> Result<(), EngineError>;
    /// Whether an image has files under `path` (a tmpfs there would hide them).
    async fn image_has_files_at(&self, image: &str, path: &str) -> Result<bool, EngineError>;
    /// An image's `EXPOSE`, `ENV` and `HEALTHCHECK`.
    async fn image_config(&self, image: &str) -> Result<ImageConfig, EngineError>;
    /// Follow a container's output until it stops.
    async fn follow_logs(
        &self,
        container: &str,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(), EngineError>;
    /// Wait until a container stops; its exit code.
    async fn wait_exit(&self, container: &str) -> Result<Option<i64>, EngineError>;
    /// One file of a container, `None` if absent.
    async fn read_file(&self, container: &str, path: &str) -> Result<Option<Vec<u8>>, EngineError>;
    /// Inspect a container.
    async fn status(&self, container: &str) -> Result<ContainerStatus, EngineError>;
    /// Whether a TCP port of the container accepts connections.
    async fn port_open(&self, status: &ContainerStatus, port: u16) -> bool;
    /// The last lines of a container's log.
    async fn logs_tail(&self, container: &str, lines: usize) -> Result<String, EngineError>;
    /// Run a command in a container, streaming its output.
    async fn exec(
        &self,
        container: &str,
        request: &ExecRequest,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<ExecOutcome, EngineError>;
    /// Write files into a folder of a container.
    async fn upload(
        &self,
        container: &str,
        dir: &str,
        files: &[(&str, &[u8])],
    ) -> Result<(), EngineError>;
    /// Write several folders with their files into a created container in one go.
    async fn upload_folders(
        &self,
        container: &str,
        folders: &[crate::engine::Folder<'_>],
    ) -> Result<(), EngineError>;
    /// Copy a folder out of a container into `target`.
    async fn download(
        &self,
        container: &str,
        path: &str,
        target: &Path,
    ) -> Result<Vec<PathBuf>, EngineError>;
    /// Everything carrying a label.
    async fn list_labelled(&self, label: &str) -> Result<Vec<ManagedResource>, EngineError>;
    /// Remove everything carrying a label.
    async fn remove_labelled(&self, label: &str) -> Result<Vec<ManagedResource>, EngineError>;
    /// Copy a folder (or file) of the project into a created container, honouring the
    /// project's `.dockerignore` (`--copy-source`, instead of a project-tree bind mount).
    async fn upload_tree(
        &self,
        container: &str,
        upload: &SourceUpload<'_>,
    ) -> Result<UploadSummary, EngineError>;
    /// Whether the engine sees `dir` of this machine at the same path (a bind mount of it
    /// would show these files), checked with a never-started container from `image`.
    async fn engine_sees_path(&self, image: &str, dir: &Path) -> Result<bool, EngineError>;
    /// The engine's CPUs and memory (to place groups in proportion), name and version.
    async fn engine_info(&self) -> Result<EngineInfo, EngineError>;
    /// Whether a folder of this machine, bind-mounted into a container, is that container's
    /// folder: a `dockerd` on this machine's socket, in this process's mount namespace.
    async fn shares_host_folders(&self) -> bool;
}

impl Backend for DockerEngine {
    async fn build_image(
        &self,
        service: &Service,
        excluded: &[PathBuf],
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(String, ImageSource), EngineError> {
        self.build_service_image(service, excluded, on_line).await
    }

    async fn ensure_image(
        &self,
        image: &str,
        allow_pull: bool,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ImageSource, EngineError> {
        DockerEngine::ensure_image(self, image, allow_pull, on_line).await
    }

    async fn create_network(&self, name: &str, net: &Network) -> Result<(), EngineError> {
        DockerEngine::create_network(self, name, net.driver.as_deref(), net.internal, &net.labels)
            .await
    }

    async fn create_volume(&self, name: &str, vol: &Volume) -> Result<(), EngineError> {
        DockerEngine::create_volume(
            self,
            name,
            vol.driver.as_deref(),
            &vol.driver_opts,
            &vol.labels,
        )
        .await
    }

    async fn create_service(
        &self,
        project: &Project,
        service: &Service,
        overrides: &ContainerOverrides,
    ) -> Result<String, EngineError> {
        self.create_service_container(project, service, overrides)
            .await
    }

    async fn start(&self, container: &str) -> Result<(), EngineError> {
        DockerEngine::start(self, container).await
    }

    async fn start_attached(&self, container: &str) -> Result<(), EngineError> {
        DockerEngine::start_attached(self, container).await
    }

    async fn kill(&self, container: &str) -> Result<(), EngineError> {
        DockerEngine::kill(self, container).await
    }

    async fn stop(&self, container: &str, grace_seconds: u32) -> Result<(), EngineError> {
        DockerEngine::stop(self, container, grace_seconds).await
    }

    async fn archive_to_file(
        &self,
        container: &str,
        path: &str,
        dest: &Path,
    ) -> Result<Option<u64>, EngineError> {
        DockerEngine::archive_to_file(self, container, path, dest).await
    }

    async fn extract_file_into(
        &self,
        container: &str,
        dir: &str,
        archive: &ArchiveFile,
    ) -> Result<(), EngineError> {
        DockerEngine::extract_file_into(self, container, dir, archive).await
    }

    async fn volume_mountpoint(&self, name: &str) -> Result<Option<String>, EngineError> {
        DockerEngine::volume_mountpoint(self, name).await
    }

    async fn create_local_volume(
        &self,
        name: &str,
        driver_opts: &IndexMap<String, String>,
        labels: &IndexMap<String, String>,
    ) -> Result<String, EngineError> {
        DockerEngine::create_local_volume(self, name, driver_opts, labels).await
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        DockerEngine::remove_volume(self, name).await
    }

    async fn remove_container(&self, name: &str) -> Result<(), EngineError> {
        DockerEngine::remove_container(self, name).await
    }

    async fn fill_volume(
        &self,
        volume: &str,
        image: &str,
        archive: &ArchiveFile,
    ) -> Result<(), EngineError> {
        DockerEngine::fill_volume(self, volume, image, archive).await
    }

    async fn upload_archive_bytes(
        &self,
        container: &str,
        dir: &str,
        archive: Vec<u8>,
    ) -> Result<(), EngineError> {
        let what = format!("copy into {dir} of container {container}");
        DockerEngine::upload_archive_into(self, container, dir, archive, what).await
    }

    async fn image_has_files_at(&self, image: &str, path: &str) -> Result<bool, EngineError> {
        DockerEngine::image_has_files_at(self, image, path).await
    }

    async fn image_config(&self, image: &str) -> Result<ImageConfig, EngineError> {
        DockerEngine::image_config(self, image).await
    }

    async fn follow_logs(
        &self,
        container: &str,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(), EngineError> {
        DockerEngine::follow_logs(self, container, on_output).await
    }

    async fn wait_exit(&self, container: &str) -> Result<Option<i64>, EngineError> {
        DockerEngine::wait_exit(self, container).await
    }

    async fn read_file(&self, container: &str, path: &str) -> Result<Option<Vec<u8>>, EngineError> {
        DockerEngine::read_file(self, container, path).await
    }

    async fn status(&self, container: &str) -> Result<ContainerStatus, EngineError> {
        self.inspect(container).await
    }

    async fn port_open(&self, status: &ContainerStatus, port: u16) -> bool {
        // The host reaches containers on Linux bridge networks directly: connecting to the
        // container's own address is "from inside its network" without needing a shell or
        // probe tool in the image.
        for ip in &status.ip_addresses {
            let connect = tokio::net::TcpStream::connect((ip.as_str(), port));
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), connect).await {
                return true;
            }
        }
        false
    }

    async fn logs_tail(&self, container: &str, lines: usize) -> Result<String, EngineError> {
        DockerEngine::logs_tail(self, container, lines).await
    }

    async fn exec(
        &self,
        container: &str,
        request: &ExecRequest,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<ExecOutcome, EngineError> {
        DockerEngine::exec(self, container, request, on_output).await
    }

    async fn upload(
        &self,
        container: &str,
        dir: &str,
        files: &[(&str, &[u8])],
    ) -> Result<(), EngineError> {
        self.upload_files(container, dir, files).await
    }

    async fn upload_folders(
        &self,
        container: &str,
        folders: &[crate::engine::Folder<'_>],
    ) -> Result<(), EngineError> {
        DockerEngine::upload_folders(self, container, folders).await
    }

    async fn download(
        &self,
        container: &str,
        path: &str,
        target: &Path,
    ) -> Result<Vec<PathBuf>, EngineError> {
        self.download_dir(container, path, target).await
    }

    async fn list_labelled(&self, label: &str) -> Result<Vec<ManagedResource>, EngineError> {
        DockerEngine::list_labelled(self, label).await
    }

    async fn remove_labelled(&self, label: &str) -> Result<Vec<ManagedResource>, EngineError> {
        DockerEngine::remove_labelled(self, label).await
    }

    async fn upload_tree(
        &self,
        container: &str,
        upload: &SourceUpload<'_>,
    ) -> Result<UploadSummary, EngineError> {
        DockerEngine::upload_tree(self, container, upload).await
    }

    async fn engine_sees_path(&self, image: &str, dir: &Path) -> Result<bool, EngineError> {
        DockerEngine::engine_sees_path(self, image, dir).await
    }

    async fn engine_info(&self) -> Result<EngineInfo, EngineError> {
        self.info().await
    }

    async fn shares_host_folders(&self) -> bool {
        DockerEngine::shares_host_folders(self).await
    }
}
