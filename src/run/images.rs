//! Images for every group, prepared once before any group starts, for the services a group
//! starts and no others: `build:` services are built (or their cached build reused), once per
//! distinct build definition (a worker and the app often share one), other images are used
//! locally or pulled if missing. Each image's configuration (`EXPOSE`, `ENV`, `HEALTHCHECK`)
//! is read once for readiness probes and the test container's environment.

use std::collections::HashMap;

use super::backend::Backend;
use super::event::{Event, EventSink};
use super::outcome::{EnvironmentFailure, FailureCause};
use super::spec::RunSpec;
use super::startup::ImageConfigs;
use crate::compose::{Build, Project, Service};

/// The images a run uses.
#[derive(Debug, Default)]
pub(crate) struct Images {
    /// Service -> the built image's tag (only `build:` services).
    pub tags: HashMap<String, String>,
    /// Service -> its image's configuration.
    pub configs: ImageConfigs,
}

/// A build definition's identity: services with equal keys share one build.
fn build_key(build: &Build) -> String {
    serde_json::to_string(build).unwrap_or_else(|_| format!("{build:?}"))
}

async fn build<B: Backend>(
    backend: &B,
    service: &Service,
    spec: &RunSpec,
    events: &EventSink,
) -> Result<String, EnvironmentFailure> {
    let mut on_line = |line: &str| events.emit(Event::Info(format!("{}: {line}", service.name)));
    events.emit(Event::Info(format!(
        "building image for service {}",
        service.name
    )));
    let (tag, source) = backend
        .build_image(
            service,
            std::slice::from_ref(&spec.results_root),
            &mut on_line,
        )
        .await
        .map_err(EnvironmentFailure::engine)?;
    events.emit(Event::Info(format!(
        "service {}: image {tag} ({source:?})",
        service.name
    )));
    Ok(tag)
}

/// The image a `build:` service already has (`image:`, or Compose's `<project>-<service>`),
/// e.g. from `docker compose build`: `docker compose run` uses it without building, and so
/// does a run without `--build`.
async fn existing<B: Backend>(
    backend: &B,
    service: &Service,
    spec: &RunSpec,
    events: &EventSink,
) -> Option<String> {
    let image = service.image.as_ref().filter(|_| !spec.build)?;
    backend.ensure_image(image, false, &mut |_| {}).await.ok()?;
    events.emit(Event::Info(format!(
        "service {}: using the existing image {image}, as `docker compose run` does (--build builds from the current sources)",
        service.name
    )));
    Some(image.clone())
}

async fn ensure<B: Backend>(
    backend: &B,
    service: &Service,
    image: &str,
    spec: &RunSpec,
    events: &EventSink,
) -> Result<(), EnvironmentFailure> {
    let mut on_line = |line: &str| events.emit(Event::Info(format!("{}: {line}", service.name)));
    let allow_pull = service.pull_policy.as_deref() != Some("never")
        && !(service.build.is_some() && spec.no_build);
    backend
        .ensure_image(image, allow_pull, &mut on_line)
        .await
        .map(|_| ())
        .map_err(|e| EnvironmentFailure::engine(e).in_service(&service.name))
}

/// Build or find every image the project's services need, once for all groups. Builds run
/// one after another (their output stays readable); finding the other images and reading
/// every image's configuration then run concurrently.
pub(crate) async fn prepare_images<B: Backend>(
    backend: &B,
    project: &Project,
    spec: &RunSpec,
    events: &EventSink,
) -> Result<Images, EnvironmentFailure> {
    let mut images = Images::default();
    let mut built: HashMap<String, String> = HashMap::new();
    let mut to_find: Vec<(&Service, String)> = Vec::new();
    for service in project.services.values() {
        match (&service.build, &service.image) {
            (Some(b), _) if !spec.no_build => {
                let key = build_key(b);
                let tag = match built.get(&key) {
                    Some(tag) => tag.clone(),
                    None => {
                        let tag = match existing(backend, service, spec, events).await {
                            Some(image) => image,
                            None => build(backend, service, spec, events).await?,
                        };
                        built.insert(key, tag.clone());
                        tag
                    }
                };
                images.tags.insert(service.name.clone(), tag);
            }
            (_, Some(image)) => to_find.push((service, image.clone())),
            (_, None) => {
                return Err(EnvironmentFailure::of(FailureCause::NoImage).in_service(&service.name))
            }
        }
    }
    let found = futures::future::join_all(
        to_find
            .iter()
            .map(|(service, image)| ensure(backend, service, image, spec, events)),
    )
    .await;
    found
        .into_iter()
        .collect::<Result<Vec<()>, EnvironmentFailure>>()?;
    let image_of = |service: &Service| -> String {
        images.tags.get(&service.name).cloned().unwrap_or_else(|| {
            service
                .image
                .clone()
                .expect("a service without build has an image")
        })
    };
    let configs = futures::future::join_all(project.services.values().map(|service| {
        let image = image_of(service);
        async move {
            let config = backend
                .image_config(&image)
                .await
                .map_err(|e| EnvironmentFailure::engine(e).in_service(&service.name))?;
            Ok::<_, EnvironmentFailure>((service.name.clone(), config))
        }
    }))
    .await;
    for config in configs {
        let (name, config) = config?;
        images.configs.insert(name, config);
    }
    Ok(images)
}
