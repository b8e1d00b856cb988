//! Checks Docker Compose makes before it touches the engine, so that a broken project fails
//! with exit 2 and the file and line, not later with an engine error: every service has an
//! `image` or a `build`, every required dependency is a service of the project, and
//! dependencies have no cycle. The messages follow Compose v2's wording.

use indexmap::IndexMap;

use super::error::ComposeError;
use super::graph::ServiceGraph;
use super::model::{Project, Service};

/// Validate the loaded project. `disabled`: services left out by profiles, with their
/// profiles (to say why a dependency is missing); `locate` makes an error pointing at a key.
/// A service without an image is a problem of that service (added to `problems`, unless it
/// has one already: a placeholder has no image), not an error: only starting it fails.
pub(crate) fn validate(
    project: &Project,
    disabled: &IndexMap<String, Vec<String>>,
    locate: &dyn Fn(&[&str], String) -> ComposeError,
    problems: &mut IndexMap<String, Vec<ComposeError>>,
) -> Result<(), ComposeError> {
    for svc in project.services.values() {
        // An empty `image:` (typically `${IMAGE}` with IMAGE unset) counts as none, as in
        // Compose.
        let no_image = svc.image.as_deref().map_or(true, str::is_empty) && svc.build.is_none();
        if no_image && !problems.contains_key(&svc.name) {
            let hint = if svc.image.is_some() {
                " (its `image:` is empty: is the variable it names unset?)"
            } else {
                ""
            };
            let error = locate(
                &["services", &svc.name],
                format!(
                    "service {:?} has neither an image nor a build context specified{hint}: add `image:` or `build:`",
                    svc.name
                ),
            );
            problems.insert(svc.name.clone(), vec![error]);
        }
        check_dependencies(project, svc, disabled, locate)?;
    }
    if let Some(cycle) = ServiceGraph::new(project).find_cycle() {
        return Err(locate_first(
            locate,
            &[
                &["services", &cycle[0], "depends_on"],
                &["services", &cycle[0]],
            ],
            format!(
                "dependency cycle detected: {} (remove one of these dependencies)",
                cycle.join(" -> ")
            ),
        ));
    }
    Ok(())
}

fn check_dependencies(
    project: &Project,
    svc: &Service,
    disabled: &IndexMap<String, Vec<String>>,
    locate: &dyn Fn(&[&str], String) -> ComposeError,
) -> Result<(), ComposeError> {
    for (dep, how) in &svc.depends_on {
        // An optional dependency may be missing: Compose skips it.
        if !how.required || project.services.contains_key(dep) {
            continue;
        }
        let why = match disabled.get(dep) {
            Some(profiles) => format!(
                "{dep:?} is only in profile(s) {}, none of which is active (enable one with --profile {})",
                profiles.join(", "),
                profiles[0]
            ),
            None => "define it, or remove it from `depends_on`/`links`".to_string(),
        };
        let key = if svc.links.iter().any(|l| l.split(':').next() == Some(dep)) {
            "links"
        } else if svc.network_mode.as_deref() == Some(&format!("service:{dep}")) {
            "network_mode"
        } else {
            "depends_on"
        };
        return Err(locate_first(
            locate,
            &[&["services", &svc.name, key], &["services", &svc.name]],
            format!(
                "service {:?} depends on undefined service {dep:?}: {why}",
                svc.name
            ),
        ));
    }
    Ok(())
}

/// The error for the first of `paths` found in a file (the last one is the fallback).
fn locate_first(
    locate: &dyn Fn(&[&str], String) -> ComposeError,
    paths: &[&[&str]],
    message: String,
) -> ComposeError {
    for path in &paths[..paths.len() - 1] {
        let e = locate(path, message.clone());
        if !matches!(e, ComposeError::Invalid { line: 0, .. }) {
            return e;
        }
    }
    locate(paths[paths.len() - 1], message)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use crate::compose::load_from_str;
    use crate::config::ComposeOptions;

    #[test]
    fn a_cycle_is_refused_with_its_path_and_the_file() {
        let text = "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, links: [c]}\n  c: {image: x, depends_on: [a]}\n";
        let err = load_from_str(
            &[("compose.yaml", text)],
            Path::new("/p"),
            &HashMap::new(),
            &ComposeOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("dependency cycle detected: a -> b -> c -> a"),
            "{err}"
        );
        assert!(err.contains("compose.yaml:2:"), "{err}");
    }
}
