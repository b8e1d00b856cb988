//! Checks Docker Compose makes before it touches the engine, so that a broken project fails
//! with exit 2 and the file and line, not later with an engine error: every service has an
//! `image` or a `build`, every required dependency is a service of the project, and
//! dependencies have no cycle. The messages follow Compose v2's wording.

use std::collections::HashMap;

use indexmap::IndexMap;

use super::error::ComposeError;
use super::model::{Project, Service};

/// Validate the loaded project. `disabled`: services left out by profiles, with their
/// profiles (to say why a dependency is missing); `locate` makes an error pointing at a key.
pub(crate) fn validate(
    project: &Project,
    disabled: &IndexMap<String, Vec<String>>,
    locate: &dyn Fn(&[&str], String) -> ComposeError,
) -> Result<(), ComposeError> {
    for svc in project.services.values() {
        // An empty `image:` (typically `${IMAGE}` with IMAGE unset) counts as none, as in
        // Compose.
        if svc.image.as_deref().map_or(true, str::is_empty) && svc.build.is_none() {
            let hint = if svc.image.is_some() {
                " (its `image:` is empty: is the variable it names unset?)"
            } else {
                ""
            };
            return Err(locate(
                &["services", &svc.name],
                format!(
                    "service {:?} has neither an image nor a build context specified{hint}: add `image:` or `build:`",
                    svc.name
                ),
            ));
        }
        check_dependencies(project, svc, disabled, locate)?;
    }
    if let Some(cycle) = find_cycle(project) {
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

/// A dependency cycle as `[a, b, c, a]`, services visited in file order. Iterative, so a
/// long chain of dependencies cannot overflow the stack.
fn find_cycle(project: &Project) -> Option<Vec<String>> {
    // 1 = on the current path, 2 = finished.
    let mut marks: HashMap<&str, u8> = HashMap::new();
    for root in project.services.keys() {
        if marks.contains_key(root.as_str()) {
            continue;
        }
        // (service, index of the next dependency to look at)
        let mut path: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
        marks.insert(root, 1);
        while let Some((name, next)) = path.last_mut() {
            let deps = &project.services[*name].depends_on;
            let Some((dep, _)) = deps.get_index(*next) else {
                marks.insert(name, 2);
                path.pop();
                continue;
            };
            *next += 1;
            match marks.get(dep.as_str()) {
                Some(2) => {}
                Some(_) => {
                    let start = path.iter().position(|(n, _)| n == dep).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        path[start..].iter().map(|(n, _)| n.to_string()).collect();
                    cycle.push(dep.clone());
                    return Some(cycle);
                }
                None if project.services.contains_key(dep) => {
                    marks.insert(dep, 1);
                    path.push((dep.as_str(), 0));
                }
                None => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::{Dependency, DependencyCondition};

    fn chain(n: usize, close: bool) -> Project {
        let dep = || Dependency {
            condition: DependencyCondition::ServiceStarted,
            required: true,
        };
        let services = (0..n)
            .map(|i| {
                let mut s = Service {
                    name: format!("s{i}"),
                    image: Some("x".into()),
                    ..Service::default()
                };
                if i + 1 < n || close {
                    s.depends_on.insert(format!("s{}", (i + 1) % n), dep());
                }
                (s.name.clone(), s)
            })
            .collect();
        Project {
            name: "p".into(),
            project_dir: "/p".into(),
            files: vec![],
            services,
            networks: IndexMap::new(),
            volumes: IndexMap::new(),
            isolation: None,
        }
    }

    #[test]
    fn a_long_chain_is_walked_without_recursion() {
        assert_eq!(find_cycle(&chain(50_000, false)), None);
        let cycle = find_cycle(&chain(3, true)).unwrap();
        assert_eq!(cycle, ["s0", "s1", "s2", "s0"]);
    }
}
