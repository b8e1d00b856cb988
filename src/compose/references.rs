//! Checking what services refer to: other services, networks and volumes.

use super::model::{MountKind, Network, Project, Volume};

/// A network or volume used but not declared is reported and created as a project one
/// (Compose would refuse the file, but files meant to be layered on others use them, so we
/// keep going). Dependencies are checked by `validate.rs`.
pub(crate) fn check_references(project: &mut Project, warnings: &mut Vec<String>) {
    let mut needs_default = false;
    for svc in project.services.values_mut() {
        if svc.networks.is_empty() && svc.network_mode.is_none() {
            needs_default = true;
        }
        for net in svc.networks.keys() {
            if net == "default" {
                needs_default = true;
            } else if !project.networks.contains_key(net) {
                warnings.push(format!(
                    "service {:?} uses network {net:?}, which is not declared under top-level `networks:`; it is created as a project network",
                    svc.name
                ));
                project.networks.insert(net.clone(), Network::default());
            }
        }
        for m in &svc.volumes {
            if m.kind != MountKind::Volume {
                continue;
            }
            if let Some(src) = &m.source {
                if !project.volumes.contains_key(src) {
                    warnings.push(format!(
                        "service {:?} uses volume {src:?}, which is not declared under top-level `volumes:`; it is created as a project volume",
                        svc.name
                    ));
                    project.volumes.insert(src.clone(), Volume::default());
                }
            }
        }
    }
    if needs_default && !project.networks.contains_key("default") {
        project
            .networks
            .insert("default".into(), Network::default());
    }
}
