//! Restoring a snapshot without copying it into every environment. The snapshot's data is
//! copied once per engine into template volumes (labelled with the snapshot's key, kept across
//! runs like the snapshot itself); each environment that restores it mounts, at each of the
//! service's volume paths, a volume of its own that the engine mounts as an overlay over the
//! template (`local` driver, `type=overlay`): reads come from the template, writes go to the
//! environment's own upper layer, removed with the environment. Four environments then start
//! a database from its snapshot as fast as one.
//!
//! Where the engine cannot (no overlay support, a rootless engine, a template that cannot be
//! filled), the first failure says so once and the run copies the snapshot in instead
//! ([`super::warm_start::restore`]), as it does with `COMPOSE_SHARD_SNAPSHOT_LAYERS=0`.

use indexmap::IndexMap;
use tokio::time::Instant;

use super::backend::Backend;
use super::event::{Event, EventSink};
use super::outcome::EnvironmentFailure;
use super::service_snapshot::{
    parent_of, template_prefix, top_folder_entry, DataPath, RunSnapshots, Stored,
};
use super::startup::{create_container, StartRequest};
use super::warm_start;
use crate::compose::Service;
use crate::engine::{ContainerOverrides, EngineError};
use crate::labels;

/// How much of an archive's start holds its top folder's headers (extended ones included).
const HEAD: usize = 64 << 10;

/// An environment's own layers over a snapshot's templates.
struct Layers {
    /// (volume path, engine volume) the container mounts.
    mounts: Vec<(String, String)>,
    /// (parent folder, one-entry archive) giving each layer's top folder the snapshot's owner
    /// and mode.
    roots: Vec<(String, Vec<u8>)>,
}

/// Create a restoring service's container (with its `--copy-source` files) whose volume paths
/// hold the snapshot: layered over its templates where the engine can, else copied in.
pub async fn create_restored<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    service: &Service,
    stored: &Stored,
    events: &EventSink,
) -> Result<String, EnvironmentFailure> {
    let plain = (request.overrides)(service);
    let began = Instant::now();
    let overlap = warm_start::restore_began(request);
    let layered = match layers_for(backend, request, service, stored, &plain, events).await {
        Some(layers) => Some(create_layered(backend, request, service, &plain, &layers).await),
        None => None,
    };
    // Judged like a copy: what layering took (the templates included, when this environment
    // laid them out) against initialising (see [`warm_start::restore`]).
    let alongside = warm_start::restore_ended(request, overlap);
    if let Some(layered) = layered {
        match layered? {
            Ok(container) => {
                let seconds = began.elapsed().as_secs_f64();
                events.emit(Event::Info(format!(
                    "[g{}] {}: started from its snapshot ({}, layered over it in {seconds:.2}s; initialising took {:.1}s)",
                    request.group,
                    service.name,
                    warm_start::megabytes(stored.meta.bytes),
                    stored.meta.init_seconds
                )));
                warm_start::judge_restore(request, stored, seconds, alongside, events);
                return Ok(container);
            }
            Err((container, e)) => {
                give_up_layering(request, events, &e);
                backend
                    .remove_container(&container)
                    .await
                    .map_err(EnvironmentFailure::engine)?;
            }
        }
    }
    let container = create_container(backend, request, service, &plain).await?;
    warm_start::restore(backend, request, &container, stored, events).await?;
    Ok(container)
}

/// Create the container over its layers and settle them: `Err` (with the container) when the
/// engine could not layer.
async fn create_layered<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    service: &Service,
    plain: &ContainerOverrides,
    layers: &Layers,
) -> Result<Result<String, (String, EngineError)>, EnvironmentFailure> {
    let mut overrides = plain.clone();
    overrides.data_volumes = layers.mounts.clone();
    let container = create_container(backend, request, service, &overrides).await?;
    Ok(match settle(backend, &container, layers).await {
        Ok(()) => Ok(container),
        Err(e) => Err((container, e)),
    })
}

/// The first failure to layer: said once, and the rest of the run copies.
fn give_up_layering(request: &StartRequest<'_>, events: &EventSink, e: &EngineError) {
    if let Some(using) = request.snapshots {
        layering_failed(using.run, events, e);
    }
}

fn layering_failed(run: &RunSnapshots, events: &EventSink, e: &EngineError) {
    if run.layering() {
        run.layering_failed();
        events.emit(Event::Notice(format!(
            "snapshots are copied into every environment on this run: the engine could not layer a volume over one ({}); set COMPOSE_SHARD_SNAPSHOT_LAYERS=0 to skip trying",
            crate::errors::render_chain(e)
        )));
    }
}

/// This environment's layers over the snapshot's templates (made once per run), or `None`
/// when they cannot be had: the snapshot is then copied in.
async fn layers_for<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    service: &Service,
    stored: &Stored,
    overrides: &ContainerOverrides,
    events: &EventSink,
) -> Option<Layers> {
    let using = request.snapshots?;
    if !using.run.layering() || stored.archives.len() != stored.meta.paths.len() {
        return None;
    }
    // Only a snapshot whose every archive starts with its folder can give a layer its owner.
    let roots = (stored.meta.paths.iter().zip(&stored.archives))
        .map(|(path, archive)| {
            let head = archive.read_piece(0, HEAD).ok()?;
            Some((
                parent_of(&path.target).0.to_string(),
                top_folder_entry(&head)?,
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    let image = overrides.image.clone().or_else(|| service.image.clone())?;
    let cell = using.run.templates(&stored.key);
    let templates = cell
        .get_or_init(|| async {
            match make_templates(backend, stored, &image).await {
                Ok(folders) => Some(folders),
                Err(e) => {
                    give_up_layering(request, events, &e);
                    None
                }
            }
        })
        .await
        .clone()?;
    match make_layers(backend, request, service, &stored.meta.paths, &templates).await {
        Ok(mounts) => Some(Layers { mounts, roots }),
        Err(e) => {
            give_up_layering(request, events, &e);
            None
        }
    }
}

/// Make the templates of the snapshots taken on this run on `using`'s engine (run beside the
/// tests of the environment that took them): the next environment to restore one, of this
/// run or the next, then layers over them at once instead of waiting for the copy.
pub async fn make_untemplated<B: Backend>(
    backend: &B,
    using: Option<warm_start::SnapshotUse<'_>>,
    group: usize,
    events: &EventSink,
) {
    let Some(using) = using else {
        return;
    };
    for (stored, image) in using.run.untemplated(using.engine_id) {
        let began = Instant::now();
        let made = std::cell::Cell::new(false);
        let cell = using.run.templates(&stored.key);
        cell.get_or_init(|| async {
            if !using.run.layering() {
                return None;
            }
            match make_templates(backend, &stored, &image).await {
                Ok(folders) => {
                    made.set(true);
                    Some(folders)
                }
                Err(e) => {
                    layering_failed(using.run, events, &e);
                    None
                }
            }
        })
        .await;
        if made.get() {
            events.emit(Event::Info(format!(
                "[g{group}] {}: snapshot laid out on the engine for the next environments to layer over ({:.2}s)",
                stored.meta.service,
                began.elapsed().as_secs_f64()
            )));
        }
    }
}

/// The engine names of a snapshot's template volumes, and of the volume whose existence says
/// they are complete. Both carry when the snapshot was taken: a snapshot taken again under the
/// same key (`--snapshots refresh`) gets new templates and never touches ones in use.
fn template_names(stored: &Stored) -> (Vec<String>, String) {
    let base = format!("{}{}", template_prefix(&stored.key), stored.meta.created);
    let names = (0..stored.meta.paths.len())
        .map(|i| format!("{base}-{i}"))
        .collect();
    (names, format!("{base}-done"))
}

/// Where a template's folder is: the volume's files hold the archive's top folder.
fn template_folder(mountpoint: &str, path: &DataPath) -> String {
    format!(
        "{}/{}",
        mountpoint.trim_end_matches('/'),
        parent_of(&path.target).1
    )
}

/// The template folders of a snapshot on the engine: the existing ones when complete, else
/// made afresh (copied in once, through a never-started container of `image`).
async fn make_templates<B: Backend>(
    backend: &B,
    stored: &Stored,
    image: &str,
) -> Result<Vec<String>, EngineError> {
    let (names, done) = template_names(stored);
    let paths = &stored.meta.paths;
    if backend.volume_mountpoint(&done).await?.is_some() {
        let mut folders = Vec::new();
        for (name, path) in names.iter().zip(paths) {
            match backend.volume_mountpoint(name).await? {
                Some(mountpoint) => folders.push(template_folder(&mountpoint, path)),
                None => break,
            }
        }
        if folders.len() == paths.len() {
            return Ok(folders);
        }
        backend.remove_volume(&done).await?;
    }
    let labels = IndexMap::from([(labels::SNAPSHOT.to_string(), stored.key.clone())]);
    let mut folders = Vec::new();
    for ((name, path), archive) in names.iter().zip(paths).zip(&stored.archives) {
        backend.remove_volume(name).await?;
        let mountpoint = backend
            .create_local_volume(name, &IndexMap::new(), &labels)
            .await?;
        backend.fill_volume(name, image, archive).await?;
        folders.push(template_folder(&mountpoint, path));
    }
    backend
        .create_local_volume(&done, &IndexMap::new(), &labels)
        .await?;
    Ok(folders)
}

/// The environment's own overlay volume over each template, with its upper and work folders
/// (plain volumes beside it), labelled like the rest of the environment.
async fn make_layers<B: Backend>(
    backend: &B,
    request: &StartRequest<'_>,
    service: &Service,
    paths: &[DataPath],
    templates: &[String],
) -> Result<Vec<(String, String)>, EngineError> {
    let stamped = [
        labels::MANAGED,
        labels::RUN,
        labels::GROUP,
        labels::PID,
        labels::COMPOSE_PROJECT,
    ];
    let labels: IndexMap<String, String> = service
        .labels
        .iter()
        .filter(|(k, _)| stamped.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut mounts = Vec::new();
    for (i, (path, lower)) in paths.iter().zip(templates).enumerate() {
        let name = format!("{}_snapshot-{}-{i}", request.project.name, service.name);
        let none = IndexMap::new();
        let upper = backend
            .create_local_volume(&format!("{name}-upper"), &none, &labels)
            .await?;
        let work = backend
            .create_local_volume(&format!("{name}-work"), &none, &labels)
            .await?;
        let options = IndexMap::from([
            ("type".to_string(), "overlay".to_string()),
            ("device".to_string(), "overlay".to_string()),
            (
                "o".to_string(),
                format!("lowerdir={lower},upperdir={upper},workdir={work}"),
            ),
        ]);
        backend
            .create_local_volume(&name, &options, &labels)
            .await?;
        mounts.push((path.target.clone(), name));
    }
    Ok(mounts)
}

/// Give each layer's top folder the snapshot's owner and mode; this is also where the engine
/// first mounts the layers, so an engine that cannot fails here, before anything started.
async fn settle<B: Backend>(
    backend: &B,
    container: &str,
    layers: &Layers,
) -> Result<(), EngineError> {
    for (dir, entry) in &layers.roots {
        backend
            .upload_archive_bytes(container, dir, entry.clone())
            .await?;
    }
    Ok(())
}
