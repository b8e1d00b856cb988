//! Containers: create and start from a compose service, inspect, logs, exec with streamed
//! output, and copying files in and out through tar streams.

use std::path::Path;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerStateStatusEnum, HealthStatusEnum, NetworkConnectRequest};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    LogsOptionsBuilder, StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures::StreamExt;

use super::client::DockerEngine;
use super::container_spec::{plan_container, ContainerOverrides};
use super::error::{io_error, EngineError};
use super::extract::extract_tar;
use super::types::{ArchiveFile, ContainerStatus, ExecOutcome, Health};
use crate::compose::{FileMount, FileMountSource, Project, Service};

/// The size of the pieces an archive is sent to the engine in.
const UPLOAD_PIECE: usize = 1 << 20;

/// A folder of a container and the files (name, content) to write into it.
pub type Folder<'a> = (&'a str, &'a [(&'a str, &'a [u8])]);

/// A command to run in a running container.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// argv.
    pub cmd: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory (default: the container's).
    pub working_dir: Option<String>,
    /// User (default: the container's).
    pub user: Option<String>,
}

impl DockerEngine {
    /// Create a service's container, connected to all its networks, without starting it
    /// (files can be uploaded into a created container). Returns the container name.
    pub async fn create_service_container(
        &self,
        project: &Project,
        service: &Service,
        overrides: &ContainerOverrides,
    ) -> Result<String, EngineError> {
        let plan = plan_container(project, service, overrides);
        let name = plan.name.clone();
        self.docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                plan.body,
            )
            .await
            .map_err(self.api_error(format!(
                "create container {name} for service {}",
                service.name
            )))?;
        for (network, settings) in plan.extra_networks {
            let request = NetworkConnectRequest {
                container: name.clone(),
                endpoint_config: Some(settings),
            };
            self.docker
                .connect_network(&network, request)
                .await
                .map_err(
                    self.api_error(format!("connect container {name} to network {network}")),
                )?;
        }
        for file in &overrides.files {
            if let FileMountSource::Content(bytes) = &file.source {
                self.upload_file(&name, file, bytes).await?;
            }
        }
        self.host_folders.register(&name, &overrides.host_folders);
        Ok(name)
    }

    /// Copy one `secrets:`/`configs:` content into a created container, with its mode and
    /// numeric owner.
    async fn upload_file(
        &self,
        container: &str,
        file: &FileMount,
        content: &[u8],
    ) -> Result<(), EngineError> {
        let io_err = |source| EngineError::Io {
            action: format!("build a tar archive of {} for", file.name),
            path: file.target.clone().into(),
            source,
        };
        let mut header = tar::Header::new_gnu();
        header.set_mode(file.mode);
        header.set_size(content.len() as u64);
        header.set_uid(
            file.uid
                .as_deref()
                .and_then(|u| u.parse().ok())
                .unwrap_or(0),
        );
        header.set_gid(
            file.gid
                .as_deref()
                .and_then(|g| g.parse().ok())
                .unwrap_or(0),
        );
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append_data(&mut header, file.target.trim_start_matches('/'), content)
            .map_err(io_err)?;
        let archive = builder.into_inner().map_err(io_err)?;
        let what = format!(
            "copy {} to {} in container {container}",
            file.name, file.target
        );
        self.upload_archive(container, archive, what).await
    }

    /// Extract a tar archive (paths relative to `/`) into a container's filesystem.
    async fn upload_archive(
        &self,
        container: &str,
        archive: Vec<u8>,
        what: String,
    ) -> Result<(), EngineError> {
        self.upload_archive_into(container, "/", archive, what)
            .await
    }

    /// Upload a tar archive held in memory into `dir` of a created container.
    pub async fn upload_archive_into(
        &self,
        container: &str,
        dir: &str,
        archive: impl Into<bytes::Bytes>,
        what: String,
    ) -> Result<(), EngineError> {
        // Sent as a stream of slices of the one buffer: the HTTP client copies each piece it
        // writes into its own buffer, so a whole 48 MB body would be copied once per
        // concurrent upload; slices of 1 MiB are not (and share the caller's memory).
        let archive: bytes::Bytes = archive.into();
        let pieces: Vec<bytes::Bytes> = (0..archive.len())
            .step_by(UPLOAD_PIECE)
            .map(|at| archive.slice(at..(at + UPLOAD_PIECE).min(archive.len())))
            .collect();
        self.docker
            .upload_to_container(
                container,
                Some(UploadToContainerOptionsBuilder::new().path(dir).build()),
                bollard::body_stream(futures::stream::iter(pieces)),
            )
            .await
            .map_err(self.api_error(what))
    }

    /// Start a created container.
    pub async fn start(&self, container: &str) -> Result<(), EngineError> {
        self.docker
            .start_container(container, None)
            .await
            .map_err(self.api_error(format!("start container {container}")))
    }

    /// Attach to a created container's output, then start it: its output then reaches
    /// [`DockerEngine::follow_logs`] straight from the container's streams, as `docker run`
    /// shows it, instead of through the log file, whose followers see lines up to a few
    /// hundred milliseconds late (the plugin's requests for work travel on those lines).
    /// An engine that refuses the attach still runs the container; its output is then
    /// followed through the log.
    pub async fn start_attached(&self, container: &str) -> Result<(), EngineError> {
        let options = AttachContainerOptions {
            stream: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        if let Ok(attached) = self.docker.attach_container(container, Some(options)).await {
            self.attached_streams()
                .insert(container.to_string(), attached.output);
        }
        let started = self.start(container).await;
        if started.is_err() {
            self.attached_streams().remove(container);
        }
        started
    }

    fn attached_streams(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, super::client::AttachedOutput>>
    {
        self.attached.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Kill a running container (a timed-out test process). A container that has already
    /// stopped is not an error.
    pub async fn kill(&self, container: &str) -> Result<(), EngineError> {
        match self.docker.kill_container(container, None).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(self.api_error(format!("kill container {container}"))(e)),
        }
    }

    /// Stop a running container as `docker stop` does: its stop signal, then SIGKILL after
    /// `grace_seconds`. A container that has already stopped is not an error.
    pub async fn stop(&self, container: &str, grace_seconds: u32) -> Result<(), EngineError> {
        let grace = i32::try_from(grace_seconds).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(grace).build();
        match self.docker.stop_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(self.api_error(format!("stop container {container}"))(e)),
        }
    }

    /// Copy `path` of a container (a folder, with the volumes mounted there) into the file
    /// `dest` as a tar archive whose top entry is the folder's own name, written as it
    /// arrives (never whole in memory). Returns its size, or `None` (and no file) if the path
    /// does not exist.
    pub async fn archive_to_file(
        &self,
        container: &str,
        path: &str,
        dest: &Path,
    ) -> Result<Option<u64>, EngineError> {
        use tokio::io::AsyncWriteExt;
        let mut stream = self.archive_stream(container, path);
        let mut out = tokio::fs::File::create(dest)
            .await
            .map_err(io_error("create", dest))?;
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    drop(out);
                    let _ = tokio::fs::remove_file(dest).await;
                    return match e {
                        bollard::errors::Error::DockerResponseServerError {
                            status_code: 404,
                            ..
                        } => Ok(None),
                        e => Err(self
                            .api_error(format!("copy {path} out of container {container}"))(
                            e,
                        )),
                    };
                }
            };
            out.write_all(&chunk)
                .await
                .map_err(io_error("write", dest))?;
            written += chunk.len() as u64;
        }
        out.flush().await.map_err(io_error("write", dest))?;
        Ok(Some(written))
    }

    /// Extract a tar archive file into `dir` of a container (created or stopped: the engine
    /// mounts its volumes for the copy), keeping the owners and modes the archive records.
    /// The file is read in pieces as the engine takes them.
    pub async fn extract_file_into(
        &self,
        container: &str,
        dir: &str,
        archive: &ArchiveFile,
    ) -> Result<(), EngineError> {
        let unreadable = std::sync::Arc::new(std::sync::Mutex::new(None));
        let pieces = {
            let (archive, unreadable) = (archive.clone(), unreadable.clone());
            futures::stream::try_unfold(0u64, move |at| {
                let (archive, unreadable) = (archive.clone(), unreadable.clone());
                async move {
                    if at >= archive.len {
                        return Ok(None);
                    }
                    let read =
                        tokio::task::spawn_blocking(move || archive.read_piece(at, UPLOAD_PIECE))
                            .await
                            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                    match read {
                        Ok(piece) => {
                            let next = at + piece.len() as u64;
                            Ok(Some((bytes::Bytes::from(piece), next)))
                        }
                        Err(e) => {
                            let kind = e.kind();
                            *unreadable.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            Err(std::io::Error::from(kind))
                        }
                    }
                }
            })
        };
        let sent = self
            .docker
            .upload_to_container(
                container,
                Some(UploadToContainerOptionsBuilder::new().path(dir).build()),
                bollard::body_try_stream(pieces),
            )
            .await;
        let unreadable = unreadable.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(e) = unreadable {
            return Err(io_error("read", &archive.path)(e));
        }
        sent.map_err(self.api_error(format!(
            "copy {} into {dir} of container {container}",
            archive.path.display()
        )))
    }

    /// Follow a container's combined output from its start until it stops, handing every
    /// chunk to `on_output`. Following the log (rather than attaching) loses nothing that was
    /// printed before the call and ends when the container stops.
    pub async fn follow_logs(
        &self,
        container: &str,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(), EngineError> {
        let attached = self.attached_streams().remove(container);
        if let Some(mut stream) = attached {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(
                    self.api_error(format!("follow the output of container {container}")),
                )?;
                on_output(&chunk.into_bytes());
            }
            return Ok(());
        }
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .follow(true)
            .build();
        let mut stream = self.docker.logs(container, Some(options));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(self.api_error(format!("follow the output of container {container}")))?;
            on_output(&chunk.into_bytes());
        }
        Ok(())
    }

    /// Wait until a container stops; returns its exit code.
    pub async fn wait_exit(&self, container: &str) -> Result<Option<i64>, EngineError> {
        let mut stream = self.docker.wait_container(container, None);
        let mut code = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(response) => code = Some(response.status_code),
                // bollard reports a non-zero exit as this error: it is an answer, not a
                // failure to wait.
                Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => {
                    code = Some(c)
                }
                Err(e) => {
                    return Err(self
                        .api_error(format!("wait for container {container} to stop"))(
                        e
                    ))
                }
            }
        }
        Ok(code)
    }

    /// The engine's tar stream of `path` in a container.
    fn archive_stream<'a>(
        &'a self,
        container: &'a str,
        path: &'a str,
    ) -> impl futures::Stream<Item = Result<bytes::Bytes, bollard::errors::Error>> + 'a {
        self.docker.download_from_container(
            container,
            Some(
                DownloadFromContainerOptionsBuilder::new()
                    .path(path)
                    .build(),
            ),
        )
    }

    /// The tar archive of `path` in a container (running or stopped), `None` if the path
    /// does not exist.
    pub(super) async fn download_archive(
        &self,
        container: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let mut stream = self.archive_stream(container, path);
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => archive.extend_from_slice(&chunk),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Ok(None),
                Err(e) => {
                    return Err(self
                        .api_error(format!("copy {path} out of container {container}"))(
                        e
                    ))
                }
            }
        }
        Ok(Some(archive))
    }

    /// One file of a container (running or stopped), or `None` if it does not exist.
    pub async fn read_file(
        &self,
        container: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        if let Some(here) = self.host_folders.local(container, path) {
            return match std::fs::read(&here) {
                Ok(content) => Ok(Some(content)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(EngineError::Io {
                    action: format!("read {path} of container {container} at"),
                    path: here,
                    source,
                }),
            };
        }
        let Some(archive) = self.download_archive(container, path).await? else {
            return Ok(None);
        };
        let io_err = |source| EngineError::Io {
            action: format!("read the archive of {path} from container {container}:"),
            path: path.into(),
            source,
        };
        let mut tar = tar::Archive::new(&archive[..]);
        for entry in tar.entries().map_err(io_err)? {
            let mut entry = entry.map_err(io_err)?;
            if entry.header().entry_type().is_file() {
                let mut content = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut content).map_err(io_err)?;
                return Ok(Some(content));
            }
        }
        Ok(None)
    }

    /// A container's state, health and addresses.
    pub async fn inspect(&self, container: &str) -> Result<ContainerStatus, EngineError> {
        let info = self
            .docker
            .inspect_container(container, None)
            .await
            .map_err(self.api_error(format!("inspect container {container}")))?;
        let state = info.state.unwrap_or_default();
        let health = match state.health.and_then(|h| h.status) {
            Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
            Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
            Some(HealthStatusEnum::STARTING) => Health::Starting,
            _ => Health::None,
        };
        let status = match state.status {
            Some(ContainerStateStatusEnum::EMPTY) | None => "unknown".to_string(),
            Some(s) => s.to_string(),
        };
        let ip_addresses = info
            .network_settings
            .and_then(|n| n.networks)
            .map(|nets| {
                nets.into_values()
                    .filter_map(|e| e.ip_address)
                    .filter(|ip| !ip.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(ContainerStatus {
            state: status,
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            health,
            ip_addresses,
        })
    }

    /// The last `lines` lines of a container's stdout and stderr.
    pub async fn logs_tail(&self, container: &str, lines: usize) -> Result<String, EngineError> {
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(container, Some(options));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(self.api_error(format!("read the logs of container {container}")))?;
            out.extend_from_slice(&chunk.into_bytes());
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Run a command in a running container, handing every chunk of its combined output to
    /// `on_output` as it arrives. The stream is drained to its end before the exit code is
    /// read: the engine reports no exit code while output is still pending.
    pub async fn exec(
        &self,
        container: &str,
        request: &ExecRequest,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<ExecOutcome, EngineError> {
        let what = || format!("run {:?} in container {container}", request.cmd.join(" "));
        let env: Vec<String> = request
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let options = CreateExecOptions {
            cmd: Some(request.cmd.clone()),
            env: Some(env),
            working_dir: request.working_dir.clone(),
            user: request.user.clone(),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let created = self
            .docker
            .create_exec(container, options)
            .await
            .map_err(self.api_error(what()))?;
        let started = self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(self.api_error(what()))?;
        if let StartExecResults::Attached { mut output, .. } = started {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(self.api_error(what()))? {
                    LogOutput::StdOut { message }
                    | LogOutput::StdErr { message }
                    | LogOutput::Console { message } => on_output(&message),
                    LogOutput::StdIn { .. } => {}
                }
            }
        }
        let inspected = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(self.api_error(what()))?;
        Ok(ExecOutcome {
            exit_code: inspected.exit_code,
        })
    }

    /// Write files (name, content) into `dir` inside a container (created if missing, via
    /// the tar's directory entry).
    pub async fn upload_files(
        &self,
        container: &str,
        dir: &str,
        files: &[(&str, &[u8])],
    ) -> Result<(), EngineError> {
        self.upload_folders(container, &[(dir, files)]).await
    }

    /// Write several folders (each created if missing, open to every user, with its files)
    /// into a container in one archive: each copy into a container that has not started
    /// costs the engine a mount of its filesystem, so a test container's folders go in one.
    pub async fn upload_folders(
        &self,
        container: &str,
        folders: &[Folder<'_>],
    ) -> Result<(), EngineError> {
        let mut through_engine = Vec::new();
        for (dir, files) in folders {
            match self.host_folders.write(container, dir, files) {
                Some(written) => written?,
                None => through_engine.push((*dir, *files)),
            }
        }
        if through_engine.is_empty() {
            return Ok(());
        }
        let folders = &through_engine[..];
        let dirs: Vec<&str> = folders.iter().map(|(dir, _)| *dir).collect();
        let io_err = |source| EngineError::Io {
            action: "build a tar archive for".into(),
            path: dirs.join(", ").into(),
            source,
        };
        let mut builder = tar::Builder::new(Vec::new());
        for (dir, files) in folders {
            let rel_dir = dir.trim_start_matches('/');
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o777);
            header.set_size(0);
            builder
                .append_data(&mut header, format!("{rel_dir}/"), std::io::empty())
                .map_err(io_err)?;
            for (name, content) in *files {
                let mut header = tar::Header::new_gnu();
                header.set_mode(0o644);
                header.set_size(content.len() as u64);
                builder
                    .append_data(&mut header, format!("{rel_dir}/{name}"), *content)
                    .map_err(io_err)?;
            }
        }
        let archive = builder.into_inner().map_err(io_err)?;
        let what = format!(
            "upload files into {} of container {container}",
            dirs.join(" and ")
        );
        self.upload_archive(container, archive, what).await
    }

    /// Copy `path` (a folder) out of a container into `target`, refusing entries that would
    /// land outside `target`. The archive's top folder (the basename of `path`) is stripped.
    pub async fn download_dir(
        &self,
        container: &str,
        path: &str,
        target: &Path,
    ) -> Result<Vec<std::path::PathBuf>, EngineError> {
        // A folder of this machine: copied here, without the engine's archive of a stopped
        // container (0.1-0.3 s a group at the end of a run on a busy engine). Files this
        // process may not read (another user's, mode 600) still come through the engine.
        if let Some(here) = self.host_folders.local(container, path) {
            if let Ok(copied) = super::host_folders::copy_folder(&here, target) {
                return Ok(copied);
            }
        }
        let archive = self
            .download_archive(container, path)
            .await?
            .ok_or_else(|| {
                self.api_error(format!("copy {path} out of container {container}"))(
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        message: format!("{path} does not exist in the container"),
                    },
                )
            })?;
        extract_tar(&archive[..], target, 1).map_err(|e| e.into_engine_error(container))
    }
}
