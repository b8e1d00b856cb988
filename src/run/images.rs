//! Images for every group, prepared once before any group starts: `build:` services are built
//! (or their cached build reused), other images are used locally or pulled if missing.

use std::collections::HashMap;

use super::backend::Backend;
use super::event::{Event, EventSink};
use super::spec::RunSpec;
use crate::compose::Project;

/// Build or find every image once, for all groups. Returns service -> image to use.
pub(crate) async fn prepare_images<B: Backend>(
    backend: &B,
    project: &Project,
    spec: &RunSpec,
    events: &EventSink,
) -> Result<HashMap<String, String>, String> {
    let mut images = HashMap::new();
    for service in project.services.values() {
        let mut on_line =
            |line: &str| events.emit(Event::Info(format!("{}: {line}", service.name)));
        if service.build.is_some() && !spec.no_build {
            events.emit(Event::Info(format!(
                "building image for service {}",
                service.name
            )));
            let (tag, source) = backend
                .build_image(service, std::slice::from_ref(&spec.out_dir), &mut on_line)
                .await
                .map_err(|e| crate::errors::render_chain(&e))?;
            events.emit(Event::Info(format!(
                "service {}: image {tag} ({source:?})",
                service.name
            )));
            images.insert(service.name.clone(), tag);
        } else if let Some(image) = &service.image {
            let allow_pull = service.pull_policy.as_deref() != Some("never")
                && !(service.build.is_some() && spec.no_build);
            backend
                .ensure_image(image, allow_pull, &mut on_line)
                .await
                .map_err(|e| {
                    format!(
                        "service {}: {}",
                        service.name,
                        crate::errors::render_chain(&e)
                    )
                })?;
        } else {
            return Err(format!(
                "service {} has neither image nor build (or --no-build was given)",
                service.name
            ));
        }
    }
    Ok(images)
}
