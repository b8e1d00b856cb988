//! The services of a project and their dependencies as one graph: what validation (cycles),
//! selection (`docker compose run SERVICE`'s closure) and start-up (which service may start
//! once which others are ready) all read, so that the order is computed in one place.
//!
//! Nodes are the project's services in file order; an edge `a -> b` is an entry `b` of
//! `a`'s `depends_on`, which the loader has already extended with `links`, `volumes_from:
//! [service]` and `network_mode: service:x` (as Compose does). An edge to a service that
//! is not in the project (an optional dependency whose profile is inactive, or a required
//! one the loader refused) is kept as a *dangling* edge: [`ServiceGraph::dependencies`]
//! lists it, nothing waits for it, and [`ServiceGraph::run_closure`] reports it when it is
//! required.
//!
//! Every walk is iterative: a chain of 50,000 services cannot overflow the stack, and each
//! operation is linear in nodes plus edges (the old recursive start order was quadratic).

use std::collections::{HashMap, HashSet};

use indexmap::{IndexMap, IndexSet};

use super::model::{Dependency, Project};

/// The dependency graph of a project's services. Built with [`ServiceGraph::new`]; cheap
/// to rebuild (it copies names and dependency settings only).
#[derive(Debug, Clone)]
pub struct ServiceGraph {
    /// Service name -> its `depends_on` (file order, dangling edges included).
    dependencies: IndexMap<String, IndexMap<String, Dependency>>,
    /// Service name -> the services whose `depends_on` names it (file order).
    dependents: HashMap<String, Vec<String>>,
}

/// A required dependency that is not a service of the project, met by
/// [`ServiceGraph::run_closure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingService {
    /// The name that is not a service.
    pub name: String,
    /// The service whose `depends_on` names it; `None` when it was one of the roots.
    pub dependent: Option<String>,
}

impl ServiceGraph {
    /// The graph of `project`'s services.
    pub fn new(project: &Project) -> ServiceGraph {
        let dependencies: IndexMap<String, IndexMap<String, Dependency>> = project
            .services
            .iter()
            .map(|(name, svc)| (name.clone(), svc.depends_on.clone()))
            .collect();
        let mut dependents: HashMap<String, Vec<String>> = HashMap::new();
        for (name, deps) in &dependencies {
            for dep in deps.keys() {
                dependents
                    .entry(dep.clone())
                    .or_default()
                    .push(name.clone());
            }
        }
        ServiceGraph {
            dependencies,
            dependents,
        }
    }

    /// Whether `name` is a service of the graph.
    pub fn contains(&self, name: &str) -> bool {
        self.dependencies.contains_key(name)
    }

    /// The services, in file order.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.dependencies.keys().map(String::as_str)
    }

    /// `name`'s direct dependencies with their condition and `required`, in file order,
    /// dangling ones included (empty for an unknown name).
    pub fn dependencies(&self, name: &str) -> impl Iterator<Item = (&str, &Dependency)> {
        self.dependencies
            .get(name)
            .into_iter()
            .flat_map(|deps| deps.iter().map(|(d, how)| (d.as_str(), how)))
    }

    /// The services that depend directly on `name`, in file order.
    pub fn dependents(&self, name: &str) -> impl Iterator<Item = &str> {
        self.dependents
            .get(name)
            .into_iter()
            .flat_map(|d| d.iter().map(String::as_str))
    }

    /// A dependency cycle as `[a, b, c, a]`, looking from each service in file order; `None`
    /// when there is none. Dangling edges cannot be part of one.
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        // 1 = on the current path, 2 = finished.
        let mut marks: HashMap<&str, u8> = HashMap::new();
        for root in self.dependencies.keys() {
            if marks.contains_key(root.as_str()) {
                continue;
            }
            // (service, index of the next dependency to look at)
            let mut path: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
            marks.insert(root, 1);
            while let Some((name, next)) = path.last_mut() {
                let Some((dep, _)) = self.dependencies[*name].get_index(*next) else {
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
                    None if self.contains(dep) => {
                        marks.insert(dep, 1);
                        path.push((dep.as_str(), 0));
                    }
                    None => {}
                }
            }
        }
        None
    }

    /// What `docker compose run ROOT` starts for each of `roots`: the roots and, transitively,
    /// their dependencies, in file order. A `required: false` dependency is followed when it
    /// is a service of the graph (Compose starts it) and skipped when it is not (Compose
    /// skips it, e.g. its profile is inactive); a required one, or a root, that is not a
    /// service is a [`MissingService`].
    pub fn run_closure(&self, roots: &[&str]) -> Result<IndexSet<String>, MissingService> {
        let mut wanted: HashSet<&str> = HashSet::new();
        let mut stack: Vec<(&str, Option<&str>)> = roots.iter().rev().map(|r| (*r, None)).collect();
        while let Some((name, dependent)) = stack.pop() {
            if wanted.contains(name) {
                continue;
            }
            if !self.contains(name) {
                return Err(MissingService {
                    name: name.to_string(),
                    dependent: dependent.map(str::to_string),
                });
            }
            wanted.insert(name);
            for (dep, how) in self.dependencies(name) {
                if how.required || self.contains(dep) {
                    stack.push((dep, Some(name)));
                }
            }
        }
        Ok(self
            .dependencies
            .keys()
            .filter(|k| wanted.contains(k.as_str()))
            .cloned()
            .collect())
    }

    /// Every service after all of its dependencies; among services free to go, file order
    /// first. Dangling edges are ignored. A cycle is returned as in [`Self::find_cycle`].
    pub fn topological_order(&self) -> Result<Vec<String>, Vec<String>> {
        if let Some(cycle) = self.find_cycle() {
            return Err(cycle);
        }
        let mut done: HashSet<&str> = HashSet::new();
        let mut order: Vec<String> = Vec::with_capacity(self.dependencies.len());
        // Depth-first from each service in file order, dependencies before the service:
        // a service comes as early as its own dependencies allow, next to them.
        for root in self.dependencies.keys() {
            let mut path: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
            while let Some((name, next)) = path.last_mut() {
                if done.contains(*name) {
                    path.pop();
                    continue;
                }
                match self.dependencies[*name].get_index(*next) {
                    Some((dep, _)) => {
                        *next += 1;
                        if self.contains(dep) && !done.contains(dep.as_str()) {
                            path.push((dep.as_str(), 0));
                        }
                    }
                    None => {
                        done.insert(name);
                        order.push(name.to_string());
                        path.pop();
                    }
                }
            }
        }
        Ok(order)
    }

    /// The services not in `done` whose dependencies in the graph are all in `done`, in
    /// file order: what may start now. An orchestrator starting each service as soon as
    /// its own dependencies are ready calls this whenever a service becomes ready (and
    /// leaves out those it already started); an unrelated branch that is still starting
    /// holds nothing back. Which condition makes a dependency "done" (started, healthy,
    /// completed) is the caller's: see [`Self::dependencies`].
    pub fn ready_to_start(&self, done: &HashSet<String>) -> Vec<&str> {
        self.dependencies
            .iter()
            .filter(|(name, _)| !done.contains(name.as_str()))
            .filter(|(_, deps)| {
                deps.keys()
                    .all(|d| done.contains(d.as_str()) || !self.contains(d))
            })
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;
    use crate::compose::load_from_str;
    use crate::compose::model::{DependencyCondition, Service};
    use crate::config::ComposeOptions;

    fn graph(text: &str) -> ServiceGraph {
        let project = load_from_str(
            &[("compose.yaml", text)],
            Path::new("/p"),
            &HashMap::new(),
            &ComposeOptions::default(),
        )
        .unwrap()
        .project;
        ServiceGraph::new(&project)
    }

    fn set(names: &[&str]) -> HashSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Two branches: `app` needs `db` (slow: `db` needs `initdb`) and `cache`; `worker`
    /// needs only `cache`.
    const BRANCHES: &str = r#"
services:
  app:
    image: app
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
  worker: {image: app, depends_on: [cache]}
  db: {image: postgres, depends_on: [initdb]}
  initdb: {image: postgres}
  cache: {image: redis}
  lonely: {image: x, depends_on: {ghost: {condition: service_started, required: false}}}
"#;

    #[test]
    fn a_service_is_ready_when_its_own_dependencies_are_done_whatever_the_other_branches() {
        let g = graph(BRANCHES);
        assert_eq!(g.ready_to_start(&set(&[])), ["initdb", "cache", "lonely"]);
        // `cache` is up, `db` is still in initdb: `worker` goes, `app` waits.
        let ready = g.ready_to_start(&set(&["cache"]));
        assert!(ready.contains(&"worker"), "{ready:?}");
        assert!(!ready.contains(&"app"), "{ready:?}");
        assert!(!ready.contains(&"db"), "{ready:?}");
        let ready = g.ready_to_start(&set(&["cache", "initdb", "db"]));
        assert_eq!(ready, ["app", "worker", "lonely"]);
    }

    #[test]
    fn dependencies_and_dependents_in_file_order_with_conditions() {
        let g = graph(BRANCHES);
        let deps: Vec<(&str, DependencyCondition)> = g
            .dependencies("app")
            .map(|(d, how)| (d, how.condition))
            .collect();
        assert_eq!(
            deps,
            [
                ("db", DependencyCondition::ServiceHealthy),
                ("cache", DependencyCondition::ServiceStarted)
            ]
        );
        assert_eq!(g.dependents("cache").collect::<Vec<_>>(), ["app", "worker"]);
        assert_eq!(g.dependents("app").count(), 0);
        // A dangling optional edge is listed but waits for nothing.
        assert_eq!(g.dependencies("lonely").count(), 1);
        assert_eq!(g.dependents("ghost").collect::<Vec<_>>(), ["lonely"]);
    }

    #[test]
    fn topological_order_puts_dependencies_first_in_file_order() {
        let g = graph(BRANCHES);
        assert_eq!(
            g.topological_order().unwrap(),
            ["initdb", "db", "cache", "app", "worker", "lonely"]
        );
    }

    #[test]
    fn run_closure_skips_a_missing_optional_dependency_and_names_a_missing_required_one() {
        let g = graph(BRANCHES);
        let c: Vec<String> = g.run_closure(&["worker"]).unwrap().into_iter().collect();
        assert_eq!(c, ["worker", "cache"]);
        let c: Vec<String> = g.run_closure(&["lonely"]).unwrap().into_iter().collect();
        assert_eq!(c, ["lonely"]);
        assert_eq!(
            g.run_closure(&["worker", "nope"]).unwrap_err(),
            MissingService {
                name: "nope".into(),
                dependent: None
            }
        );
    }

    fn chain(n: usize, close: bool) -> Project {
        let services = (0..n)
            .map(|i| {
                let mut s = Service {
                    name: format!("s{i}"),
                    image: Some("x".into()),
                    ..Service::default()
                };
                if i + 1 < n || close {
                    s.depends_on.insert(
                        format!("s{}", (i + 1) % n),
                        Dependency {
                            condition: DependencyCondition::ServiceStarted,
                            required: true,
                        },
                    );
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
        let g = ServiceGraph::new(&chain(50_000, false));
        assert_eq!(g.find_cycle(), None);
        let order = g.topological_order().unwrap();
        assert_eq!(order.first().map(String::as_str), Some("s49999"));
        assert_eq!(order.last().map(String::as_str), Some("s0"));
        assert_eq!(g.run_closure(&["s0"]).unwrap().len(), 50_000);
        let g = ServiceGraph::new(&chain(3, true));
        assert_eq!(g.find_cycle().unwrap(), ["s0", "s1", "s2", "s0"]);
        assert_eq!(g.topological_order().unwrap_err(), ["s0", "s1", "s2", "s0"]);
    }
}
