//! The labels that find a run's resources again: stamped on everything a run creates, and
//! the selectors teardown and cleanup remove by.

use crate::compose::Project;
use crate::engine::ManagedResource;
use crate::labels;

/// Make sure every resource carries our labels (whatever isolation did) plus our pid, which
/// tells a later run whether a leftover's creator is still alive.
pub fn stamp_labels(project: &mut Project, run_id: &str, group: usize) {
    let name = project.name.clone();
    let stamp_all = |labels: &mut indexmap::IndexMap<String, String>| {
        labels.insert(labels::MANAGED.into(), "true".into());
        labels.insert(labels::RUN.into(), run_id.into());
        labels.insert(labels::GROUP.into(), group.to_string());
        labels.insert(labels::PID.into(), std::process::id().to_string());
        labels.insert(labels::COMPOSE_PROJECT.into(), name.clone());
    };
    for s in project.services.values_mut() {
        stamp_all(&mut s.labels);
        s.labels
            .insert(labels::COMPOSE_SERVICE.into(), s.name.clone());
    }
    for n in project.networks.values_mut().filter(|n| !n.external) {
        stamp_all(&mut n.labels);
    }
    for v in project.volumes.values_mut().filter(|v| !v.external) {
        stamp_all(&mut v.labels);
    }
}

/// The label selecting one group's resources.
pub fn group_label(project: &Project) -> String {
    format!("{}={}", labels::COMPOSE_PROJECT, project.name)
}

/// The label selecting all of a run's resources.
pub fn run_label(run_id: &str) -> String {
    format!("{}={}", labels::RUN, run_id)
}

/// `container x`, `network y`: resources as the user reads them.
pub(crate) fn describe(resources: &[ManagedResource]) -> Vec<String> {
    resources
        .iter()
        .map(|r| format!("{} {}", r.kind, r.name))
        .collect()
}
