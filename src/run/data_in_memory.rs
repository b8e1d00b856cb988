//! `--tmpfs-data`: the data volumes of the services other than the test service mounted as
//! tmpfs (in memory) instead of on disk. Database-heavy suites spend much of their time in
//! the database's writes; in memory they cost less.
//!
//! A path gets a tmpfs only where nothing can change because of it: the service's own
//! volumes (as [`super::service_snapshot::data_paths`] finds them: never shared, external or
//! driver volumes, never binds) and its image's `VOLUME`s, and only where the image has no
//! files at that path (checked through the engine): a named volume is filled from the image
//! on first use, a tmpfs is not. Each tmpfs is limited to a share of half the engine's
//! memory; a service whose tmpfs filled up fails its group with a message naming the flag.

use std::collections::HashMap;

use super::backend::Backend;
use super::event::{Event, EventSink};
use super::images::Images;
use super::outcome::{EnvironmentFailure, FailureCause};
use super::service_snapshot::data_paths;
use crate::compose::Project;

/// The smallest tmpfs a data path gets.
const MIN_BYTES: u64 = 64 << 20;

/// What a full filesystem makes a service print.
const FULL: &str = "No space left on device";

/// The paths of each service held in memory, with each one's size limit.
#[derive(Debug, Clone, Default)]
pub struct DataInMemory {
    by_service: HashMap<String, Vec<(String, u64)>>,
}

impl DataInMemory {
    /// A service's paths in memory (none when it keeps its data on disk).
    pub fn of(&self, service: &str) -> &[(String, u64)] {
        self.by_service.get(service).map_or(&[], Vec::as_slice)
    }
}

/// The size limit of each tmpfs unless `COMPOSE_SHARD_TMPFS_SIZE` fixes it: half the
/// engine's memory, shared by every group's paths, at least [`MIN_BYTES`] (an engine that
/// did not say its memory gets the minimum).
pub fn size_each(memory_bytes: u64, groups: usize, paths_per_group: usize) -> u64 {
    let shares = (groups.max(1) * paths_per_group.max(1)) as u64;
    (memory_bytes / 2 / shares).max(MIN_BYTES)
}

/// Decide which data paths of `project`'s services go in memory on this engine, saying
/// why the others stay on disk.
pub async fn plan<B: Backend>(
    backend: &B,
    project: &Project,
    test_service: &str,
    images: &Images,
    (memory_bytes, groups, fixed): (u64, usize, Option<u64>),
    events: &EventSink,
) -> DataInMemory {
    let mut chosen: Vec<(String, String)> = Vec::new();
    for service in project.services.values().filter(|s| s.name != test_service) {
        let paths = match data_paths(project, service, images.configs.get(&service.name)) {
            Ok(paths) => paths,
            Err(why) => {
                events.emit(Event::Info(format!(
                    "--tmpfs-data: {} keeps its data on disk: {why}",
                    service.name
                )));
                continue;
            }
        };
        let image = images
            .tags
            .get(&service.name)
            .cloned()
            .or_else(|| service.image.clone())
            .unwrap_or_default();
        for path in paths {
            match backend.image_has_files_at(&image, &path.target).await {
                Ok(false) => chosen.push((service.name.clone(), path.target)),
                Ok(true) => events.emit(Event::Info(format!(
                    "--tmpfs-data: {} keeps a volume at {}: its image has files there, which a tmpfs would hide",
                    service.name, path.target
                ))),
                Err(e) => events.emit(Event::Warning(format!(
                    "--tmpfs-data: {} keeps a volume at {}: cannot look into {image}: {}",
                    service.name,
                    path.target,
                    crate::errors::render_chain(&e)
                ))),
            }
        }
    }
    let bytes = fixed.unwrap_or_else(|| size_each(memory_bytes, groups, chosen.len()));
    let mut data = DataInMemory::default();
    for (service, target) in chosen {
        events.emit(Event::Info(format!(
            "--tmpfs-data: {service} {target} in memory (tmpfs of up to {} MiB)",
            bytes >> 20
        )));
        data.by_service
            .entry(service)
            .or_default()
            .push((target, bytes));
    }
    data
}

/// The failure of a group whose service filled its tmpfs, if one did: its log says the
/// device is full.
pub async fn full<B: Backend>(
    backend: &B,
    project: &Project,
    data: &DataInMemory,
) -> Option<EnvironmentFailure> {
    for (name, paths) in &data.by_service {
        let (Some(service), Some((target, bytes))) = (project.services.get(name), paths.first())
        else {
            continue;
        };
        let container = crate::engine::container_name(project, service);
        let Ok(log) = backend
            .logs_tail(&container, super::startup::LOG_TAIL_LINES)
            .await
        else {
            continue;
        };
        if log.contains(FULL) {
            return Some(EnvironmentFailure {
                service: Some(name.clone()),
                cause: FailureCause::DataInMemoryFull {
                    path: target.clone(),
                    bytes: *bytes,
                },
                state: None,
                log_tail: Some(log),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_the_engine_memory_is_shared_by_every_groups_paths_with_a_floor() {
        let gib = 1u64 << 30;
        assert_eq!(size_each(24 * gib, 4, 1), 3 * gib);
        assert_eq!(size_each(24 * gib, 4, 2), 3 * gib / 2);
        assert_eq!(size_each(0, 4, 1), MIN_BYTES);
        assert_eq!(size_each(gib, 64, 4), MIN_BYTES);
        assert_eq!(size_each(8 * gib, 0, 0), 4 * gib, "no path: one share");
    }
}
