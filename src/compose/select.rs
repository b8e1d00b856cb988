//! Choosing the services a run starts (the test service is chosen in
//! [`super::test_service`]): the services `docker compose run SERVICE` would start with it
//! ([`run_closure`]), and the project cut down to them ([`restrict`]).

use std::collections::HashSet;

use indexmap::IndexSet;

use super::error::ComposeError;
use super::graph::ServiceGraph;
use super::model::{MountKind, Project};

/// The services `docker compose run TEST_SERVICE` starts, plus `extra` services (and what
/// they depend on), in file order.
///
/// Dependencies are `depends_on` (the loader folds `links`, `volumes_from` and
/// `network_mode: service:x` into it, as Compose does), followed transitively. A
/// `required: false` dependency is kept when it is in the project (Compose starts it and
/// only warns if it fails) and skipped when it is not (Compose skips it too, e.g. when its
/// profile is inactive); a required one that is missing is an error, as in Compose.
/// Profiles are applied by the loader: name the test service and extras in
/// [`crate::config::ComposeOptions::enable_services`] so that their profiles are enabled.
pub fn run_closure(
    project: &Project,
    test_service: &str,
    extra: &[String],
) -> Result<IndexSet<String>, ComposeError> {
    let mut roots: Vec<&str> = vec![test_service];
    roots.extend(extra.iter().map(String::as_str));
    ServiceGraph::new(project)
        .run_closure(&roots)
        .map_err(|missing| not_a_service(project, &missing.name, missing.dependent.as_deref()))
}

fn not_a_service(project: &Project, name: &str, dependent: Option<&str>) -> ComposeError {
    let services: Vec<&str> = project.services.keys().map(String::as_str).collect();
    let what = match dependent {
        Some(d) => format!("service {d:?} depends on {name:?}"),
        None => format!("{name:?} was named to be started"),
    };
    ComposeError::Reference(format!(
        "{what}, which is not a service of project {:?} (or none of its profiles is active: enable one with --profile); services: {}",
        project.name,
        services.join(", ")
    ))
}

/// The project with only the services in `keep` (order kept), the networks and named
/// volumes those services use, and no `depends_on` entry naming a service left out (only
/// optional ones can be, see [`run_closure`]).
///
/// Networks and volumes no kept service uses are dropped: each group creates what its
/// project lists, so unused ones would cost engine calls per group, and an unused
/// `external` one that does not exist on this engine must not fail the run (Compose's
/// `run` does not look at it either).
pub fn restrict(project: &Project, keep: &IndexSet<String>) -> Project {
    let mut out = project.clone();
    out.services.retain(|name, _| keep.contains(name));
    for svc in out.services.values_mut() {
        svc.depends_on.retain(|dep, _| keep.contains(dep));
    }
    let mut networks: HashSet<String> = HashSet::new();
    let mut volumes: HashSet<String> = HashSet::new();
    for svc in out.services.values() {
        if svc.networks.is_empty() && svc.network_mode.is_none() {
            networks.insert("default".into());
        }
        networks.extend(svc.networks.keys().cloned());
        volumes.extend(
            svc.volumes
                .iter()
                .filter(|m| m.kind == MountKind::Volume)
                .filter_map(|m| m.source.clone()),
        );
    }
    out.networks.retain(|k, _| networks.contains(k));
    out.volumes.retain(|k, _| volumes.contains(k));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;
    use crate::compose::load_from_str;
    use crate::config::ComposeOptions;

    const STACK: &str = r#"
services:
  app:
    build: .
    depends_on:
      db: {condition: service_healthy}
      mq: {condition: service_started, required: false}
      opt: {condition: service_started, required: false}
    links: ["cache:redis"]
    networks: [front]
  db:
    image: postgres
    volumes: [dbdata:/var/lib/postgresql/data]
    network_mode: "service:netns"
  netns: {image: pause}
  cache:
    image: redis
    volumes_from: ["files:ro", "container:elsewhere"]
  files: {image: busybox}
  mq: {image: rabbitmq}
  opt: {image: opt, profiles: [optional]}
  ci_app: {image: "clearly_undefined_image", depends_on: [mq]}
  tool: {image: tool, profiles: [tools], depends_on: [helper, app]}
  helper: {image: helper, profiles: [tools]}
  reporter: {image: r, networks: [back], volumes: [reports:/r]}
networks: {front: {}, back: {}, unused: {external: true}}
volumes: {dbdata: {}, reports: {}, unused: {}}
"#;

    fn load(enable: &[&str]) -> Project {
        let opts = ComposeOptions {
            enable_services: enable.iter().map(|s| s.to_string()).collect(),
            ..ComposeOptions::default()
        };
        load_from_str(
            &[("compose.yaml", STACK)],
            Path::new("/p"),
            &HashMap::new(),
            &opts,
        )
        .unwrap()
        .project
    }

    fn closure(project: &Project, svc: &str, extra: &[&str]) -> Vec<String> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        run_closure(project, svc, &extra)
            .unwrap()
            .into_iter()
            .collect()
    }

    #[test]
    fn closure_follows_depends_on_links_volumes_from_and_network_mode() {
        let p = load(&[]);
        // Not ci_app (nothing app needs depends on it), not the disabled `opt`.
        assert_eq!(
            closure(&p, "app", &[]),
            ["app", "db", "netns", "cache", "files", "mq"]
        );
        assert_eq!(closure(&p, "mq", &[]), ["mq"]);
    }

    #[test]
    fn extra_services_bring_their_own_dependencies() {
        let p = load(&[]);
        assert_eq!(
            closure(&p, "db", &["ci_app", "reporter"]),
            ["db", "netns", "mq", "ci_app", "reporter"]
        );
        let err = run_closure(&p, "db", &["nope".to_string()]).unwrap_err();
        assert!(err.to_string().contains("\"nope\" was named"), "{err}");
    }

    #[test]
    fn optional_dependency_is_started_when_its_profile_is_active() {
        let p = load(&["app", "opt"]);
        assert!(closure(&p, "app", &[]).contains(&"opt".to_string()));
    }

    #[test]
    fn naming_a_service_of_an_inactive_profile_enables_that_profile() {
        let p = load(&[]);
        assert!(run_closure(&p, "tool", &[]).is_err());
        let p = load(&["tool"]);
        assert_eq!(
            closure(&p, "tool", &[]),
            ["app", "db", "netns", "cache", "files", "mq", "tool", "helper"]
        );
    }

    #[test]
    fn missing_required_dependency_names_the_dependent() {
        let mut p = load(&[]);
        p.services.shift_remove("netns");
        let err = run_closure(&p, "app", &[]).unwrap_err().to_string();
        assert!(err.contains("service \"db\" depends on \"netns\""), "{err}");
    }

    #[test]
    fn restrict_keeps_the_services_and_what_they_use() {
        let mut p = load(&[]);
        let optional = crate::compose::Dependency {
            condition: crate::compose::DependencyCondition::ServiceStarted,
            required: false,
        };
        let app = p.services.get_mut("app").unwrap();
        app.depends_on.insert("opt".into(), optional);
        let keep = run_closure(&p, "app", &[]).unwrap();
        let r = restrict(&p, &keep);
        assert_eq!(
            r.services.keys().collect::<Vec<_>>(),
            keep.iter().collect::<Vec<_>>()
        );
        // app uses `front`; cache, mq, netns, files use `default`; db shares netns's.
        assert_eq!(r.networks.keys().collect::<Vec<_>>(), ["front", "default"]);
        assert_eq!(r.volumes.keys().collect::<Vec<_>>(), ["dbdata"]);
        // The optional dependency on the disabled `opt` does not dangle.
        assert!(!r.services["app"].depends_on.contains_key("opt"));
        assert!(r.services["app"].depends_on.contains_key("mq"));
    }
}
