//! Snapshots during start-up: a service's container is filled from its snapshot before it
//! starts ([`restore`]), or, in the one environment that takes a missing snapshot, stopped
//! once ready, copied out and started again ([`capture`]) before anything that depends on
//! it starts. What is kept, under which key and where: [`super::service_snapshot`].

use std::time::Duration;

use tokio::time::Instant;

use super::backend::Backend;
use super::event::{Event, EventSink};
use super::outcome::EnvironmentFailure;
use super::service_snapshot::{
    now_epoch, parent_of, stop_grace, Action, DataPath, Meta, Overlap, RunSnapshots, Staging,
    Stored, SETTLE,
};
use super::startup::{
    healthcheck_passes, healthcheck_test, probe_ports, StartRequest, EARLY_RUN_LIMIT,
};
use crate::compose::Service;
use crate::engine::{EngineError, Health, ImageConfig};

/// Why a snapshot could not be taken (the run goes on without it).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Stopping, copying or starting the service failed.
    #[error("{}", crate::errors::render_chain(.0))]
    Engine(#[from] EngineError),
    /// A volume path was not in the stopped container.
    #[error("{0} is missing in the container")]
    Missing(String),
    /// The snapshot could not be written.
    #[error("cannot write it under {}: {source}; free some space there, or set COMPOSE_SHARD_CACHE_DIR to another folder", dir.display())]
    Write {
        /// The snapshots' folder.
        dir: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A run's snapshots as one engine's environments use them.
#[derive(Clone, Copy)]
pub struct SnapshotUse<'a> {
    /// The run's snapshots.
    pub run: &'a RunSnapshots,
    /// The engine's id.
    pub engine_id: &'a str,
}

/// What this environment does about `service`'s snapshot (nothing when snapshots are off,
/// or the service cannot have one).
pub fn action_for(request: &StartRequest<'_>, service: &Service) -> Action {
    let Some(using) = request.snapshots else {
        return Action::Nothing;
    };
    // A tmpfs is mounted only when the container starts: nothing copied in before would
    // be seen, and nothing is left to copy out once it stops.
    if !(request.overrides)(service).data_in_memory.is_empty() {
        return Action::Nothing;
    }
    let image = request.images.get(&service.name);
    match using
        .run
        .key_of(request.project, service, image, using.engine_id)
    {
        Ok((key, paths)) => using.run.action(&key, &paths),
        Err(_) => Action::Nothing,
    }
}

/// Fill a created container's volumes from a snapshot.
pub async fn restore<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    container: &str,
    stored: &Stored,
    events: &EventSink,
) -> Result<(), EnvironmentFailure> {
    let began = Instant::now();
    let overlap = restore_began(request);
    let mut copied = Ok(());
    for (path, archive) in stored.meta.paths.iter().zip(&stored.archives) {
        let (dir, _) = parent_of(&path.target);
        copied = backend.extract_file_into(container, dir, archive).await;
        if copied.is_err() {
            break;
        }
    }
    let alongside = restore_ended(request, overlap);
    copied.map_err(EnvironmentFailure::engine)?;
    let seconds = began.elapsed().as_secs_f64();
    let group = request.group;
    events.emit(Event::Info(format!(
        "[g{group}] {}: started from its snapshot ({}, copied in {seconds:.1}s; initialising took {:.1}s)",
        stored.meta.service,
        megabytes(stored.meta.bytes),
        stored.meta.init_seconds
    )));
    judge_restore(request, stored, seconds, alongside, events);
    Ok(())
}

/// A restore of this environment begins (see [`RunSnapshots::restore_began`]).
pub fn restore_began(request: &StartRequest<'_>) -> Option<Overlap> {
    request.snapshots.map(|u| u.run.restore_began())
}

/// It ended: how many restores shared the engine with it (1 without snapshots in use).
pub fn restore_ended(request: &StartRequest<'_>, overlap: Option<Overlap>) -> usize {
    match (request.snapshots, overlap) {
        (Some(using), Some(overlap)) => using.run.restore_ended(overlap),
        _ => 1,
    }
}

/// Record what a restore took (`seconds`, with `alongside` restores sharing the engine) in
/// the snapshot's record, and say so when it was slower than initialising: later runs then
/// initialise (see [`super::service_snapshot::RunSnapshots::restored`]).
pub fn judge_restore(
    request: &StartRequest<'_>,
    stored: &Stored,
    seconds: f64,
    alongside: usize,
    events: &EventSink,
) {
    if let Some(using) = request.snapshots {
        if let Some(notice) = using.run.restored(stored, seconds, alongside) {
            events.emit(Event::Notice(format!("[g{}] {notice}", request.group)));
        }
    }
}

/// Take a service's snapshot once it is ready. Never fails the environment: a snapshot that
/// cannot be taken is a warning, and the service is left running.
pub async fn capture<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    service: &Service,
    container: &str,
    (key, paths): (String, Vec<DataPath>),
    started: Instant,
    events: &EventSink,
) {
    let Some(using) = request.snapshots else {
        return;
    };
    let group = request.group;
    let image = request.images.get(&service.name);
    let target = (using, &key[..], &paths[..]);
    let taken = take(backend, request, service, container, target, image, started).await;
    match taken {
        Ok(stored) => {
            let meta = &stored.meta;
            let said = if meta.worth {
                format!(
                    "[g{group}] {}: snapshot taken ({}; initialising took {:.1}s, copying {:.1}s): later environments start from it",
                    service.name,
                    megabytes(meta.bytes),
                    meta.init_seconds,
                    meta.capture_seconds
                )
            } else {
                format!(
                    "[g{group}] {}: no snapshot ({}); it is initialised every time",
                    service.name,
                    meta.reason.as_deref().unwrap_or("not worth it")
                )
            };
            events.emit(Event::Info(said));
            let (worth, key) = (stored.meta.worth, stored.key.clone());
            using.run.taken(stored);
            let image = (request.overrides)(service).image;
            if let Some(image) = image.or_else(|| service.image.clone()).filter(|_| worth) {
                using.run.wants_templates(using.engine_id, &key, image);
            }
        }
        Err(why) => {
            events.emit(Event::Warning(format!(
                "[g{group}] {}: no snapshot taken: {why}",
                service.name
            )));
            using.run.failed(&key);
        }
    }
}

async fn take<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    service: &Service,
    container: &str,
    (using, key, paths): (SnapshotUse<'_>, &str, &[DataPath]),
    image: Option<&ImageConfig>,
    started: Instant,
) -> Result<Stored, CaptureError> {
    let store = using.run.store();
    let settled = wait_settled(backend, request, service, container, image).await;
    let (init_seconds, never) = match settled {
        Ok(ready) => (ready.saturating_duration_since(started).as_secs_f64(), None),
        Err(NotSettled::Engine(e)) => return Err(e.into()),
        Err(NotSettled::Never(why)) => (started.elapsed().as_secs_f64(), Some(why)),
    };
    let mut meta = Meta {
        service: service.name.clone(),
        project_dir: request.project.project_dir.clone(),
        image: service.image.clone().unwrap_or_default(),
        engine: using.engine_id.to_string(),
        paths: paths.to_vec(),
        bytes: 0,
        created: now_epoch(),
        init_seconds,
        capture_seconds: 0.0,
        restore_seconds: None,
        worth: true,
        reason: None,
    };
    let write_error = |source| CaptureError::Write {
        dir: store.root().to_path_buf(),
        source,
    };
    let staging = store.staging(key).map_err(write_error)?;
    let worth = using.run.worth();
    if let Some(why) = never {
        meta.worth = false;
        meta.reason = Some(why);
    } else if init_seconds < worth.as_secs_f64() {
        meta.worth = false;
        meta.reason = Some(format!("ready in {init_seconds:.1}s, faster than a copy"));
    } else {
        let began = Instant::now();
        match copy_out(backend, service, container, paths, &staging).await {
            Ok(bytes) => meta.bytes = bytes,
            Err(e) => {
                staging.discard();
                return Err(e);
            }
        }
        meta.capture_seconds = began.elapsed().as_secs_f64();
    }
    store.commit(key, staging, &meta).map_err(write_error)?;
    if !meta.worth {
        return Ok(Stored {
            key: key.to_string(),
            meta,
            archives: Vec::new(),
        });
    }
    store.load(key).ok_or_else(|| {
        write_error(std::io::Error::other(format!(
            "snapshot {key} was removed while it was being written"
        )))
    })
}

/// Stop the service cleanly, copy its volume paths out into `staging`, start it again
/// (also when copying failed). Returns the bytes written.
async fn copy_out<B: Backend>(
    backend: &B,
    service: &Service,
    container: &str,
    paths: &[DataPath],
    staging: &Staging,
) -> Result<u64, CaptureError> {
    backend.stop(container, stop_grace(service)).await?;
    let mut bytes = 0;
    let mut failed = None;
    for (i, path) in paths.iter().enumerate() {
        match backend
            .archive_to_file(container, &path.target, &staging.archive(i))
            .await
        {
            Ok(Some(size)) => bytes += size,
            Ok(None) => {
                failed = Some(CaptureError::Missing(path.target.clone()));
                break;
            }
            Err(e) => {
                failed = Some(e.into());
                break;
            }
        }
    }
    backend.start(container).await?;
    match failed {
        Some(why) => Err(why),
        None => Ok(bytes),
    }
}

/// How long a snapshot waits for its service to be seen ready before it gives up (and
/// remembers, so later runs do not wait again).
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// Why a service was not seen ready for its snapshot.
enum NotSettled {
    /// The engine failed: try again another time.
    Engine(EngineError),
    /// The service never looked ready in the way a snapshot needs: do not try again.
    Never(String),
}

/// Wait until the service is ready in a way that initialisation cannot fake: its
/// healthcheck passes (if it has one) *and* one of its TCP ports (declared, else exposed)
/// accepts connections (entrypoints initialise behind a server without TCP), seen twice at
/// least [`SETTLE`] apart, within [`SETTLE_LIMIT`]. Returns when it was first seen ready.
async fn wait_settled<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    service: &Service,
    container: &str,
    image: Option<&ImageConfig>,
) -> Result<Instant, NotSettled> {
    let test = healthcheck_test(service, image);
    let ports = probe_ports(service, image).ports;
    let until = (Instant::now() + SETTLE_LIMIT).min(request.timing.deadline);
    let mut first_ready: Option<Instant> = None;
    loop {
        let status = backend
            .status(container)
            .await
            .map_err(NotSettled::Engine)?;
        if status.has_exited() {
            return Err(NotSettled::Never("it stopped before it was ready".into()));
        }
        let healthy = match &test {
            None => true,
            Some(cmd) => {
                status.health == Health::Healthy
                    || (status.running
                        && healthcheck_passes(backend, container, cmd, EARLY_RUN_LIMIT).await)
            }
        };
        let mut listening = ports.is_empty();
        for port in &ports {
            if !healthy || listening {
                break;
            }
            listening = backend.port_open(&status, *port).await;
        }
        match (healthy && listening, first_ready) {
            (true, Some(at)) if at.elapsed() >= SETTLE => return Ok(at),
            (true, None) => first_ready = Some(Instant::now()),
            (true, Some(_)) => {}
            (false, _) => first_ready = None,
        }
        if Instant::now() >= until {
            return Err(NotSettled::Never(format!(
                "not seen ready (its healthcheck passing and one of its TCP ports {ports:?} open) in time"
            )));
        }
        let pause = if first_ready.is_some() {
            SETTLE
        } else {
            Duration::from_millis(200)
        };
        tokio::time::sleep(pause.min(request.timing.poll.max(Duration::from_millis(50)))).await;
    }
}

pub(super) fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
