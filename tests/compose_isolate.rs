//! Per-group isolation: the invariants the engine relies on, and test-service selection.

use std::collections::HashMap;
use std::path::Path;

use compose_shard::compose::{
    isolate, load_from_str, select_test_service, ComposeError, Isolation, MountKind, Project,
};
use compose_shard::config::ComposeOptions;
use compose_shard::labels;

const STACK: &str = r#"
services:
  db:
    image: postgres:16
    container_name: myapp-postgres
    ports: ["5432:5432"]
    volumes: ["./pgdata:/var/lib/postgresql/data", "./init.sql:/docker-entrypoint-initdb.d/init.sql:ro"]
  cache:
    image: redis:7
    ports: ["6379"]
    volumes: ["redisdata:/data"]
  sidecar:
    image: busybox
    network_mode: "service:db"
  web:
    build: .
    links: ["cache:redis-host"]
    depends_on: [db]
    ports: ["8000:8000"]
    volumes: [".:/app"]
    networks:
      back: {aliases: [api]}
      default:
  tests:
    build: .
    depends_on: [db, cache]
    volumes: [".:/app", "./data:/data"]
networks:
  back:
    name: fixed-back
  shared:
    external: true
volumes:
  redisdata: {}
  ext: {external: true}
"#;

fn project() -> Project {
    load_from_str(
        &[("compose.yaml", STACK)],
        Path::new("/src/myapp"),
        &HashMap::new(),
        &ComposeOptions::default(),
    )
    .unwrap()
    .project
}

fn iso(group: usize, publish_ports: bool) -> Isolation {
    Isolation {
        run_id: "r1a2".into(),
        group,
        groups: 4,
        publish_ports,
        test_service: Some("tests".into()),
    }
}

#[test]
fn names_labels_and_isolation_info() {
    let p = isolate(&project(), &iso(3, false)).unwrap();
    assert_eq!(p.name, "myapp-r1a2-g3");
    let info = p.isolation.as_ref().unwrap();
    assert_eq!((info.group, info.groups), (3, 4));
    assert_eq!(info.base_project, "myapp");
    assert_eq!(info.test_service.as_deref(), Some("tests"));
    for svc in p.services.values() {
        assert_eq!(
            svc.container_name.as_deref(),
            Some(format!("myapp-r1a2-g3-{}-1", svc.name).as_str())
        );
        let l = &svc.labels;
        assert_eq!(l[labels::COMPOSE_PROJECT], "myapp-r1a2-g3");
        assert_eq!(l[labels::COMPOSE_SERVICE], svc.name);
        assert_eq!(l[labels::COMPOSE_CONTAINER_NUMBER], "1");
        assert_eq!(l[labels::COMPOSE_ONEOFF], "False");
        assert_eq!(l[labels::MANAGED], "true");
        assert_eq!(l[labels::RUN], "r1a2");
        assert_eq!(l[labels::GROUP], "3");
        assert_eq!(l[labels::BASE_PROJECT], "myapp");
    }
}

#[test]
fn networks_are_explicit_with_original_names_as_aliases() {
    let p = isolate(&project(), &iso(1, false)).unwrap();
    let db = &p.services["db"];
    assert_eq!(db.networks.keys().collect::<Vec<_>>(), vec!["default"]);
    assert_eq!(db.networks["default"].aliases, vec!["db", "myapp-postgres"]);
    assert_eq!(
        p.services["cache"].networks["default"].aliases,
        vec!["cache", "redis-host"]
    );
    let web = &p.services["web"];
    assert_eq!(web.networks["back"].aliases, vec!["api", "web"]);
    assert_eq!(web.networks["default"].aliases, vec!["web"]);
    assert_eq!(
        p.networks["default"].name.as_deref(),
        Some("myapp-r1a2-g1_default")
    );
    assert_eq!(
        p.networks["back"].name.as_deref(),
        Some("myapp-r1a2-g1_back")
    );
    assert_eq!(p.networks["back"].labels[labels::COMPOSE_NETWORK], "back");
    assert_eq!(p.networks["back"].labels[labels::RUN], "r1a2");
    assert!(p.networks["shared"].external);
    assert_eq!(p.networks["shared"].name, None);
    let notes = p.isolation.unwrap().notes.join("\n");
    assert!(notes.contains("\"shared\" is external"), "{notes}");
    assert!(notes.contains("fixed-back"), "{notes}");
}

#[test]
fn network_mode_service_points_at_the_groups_container() {
    let p = isolate(&project(), &iso(2, false)).unwrap();
    let sidecar = &p.services["sidecar"];
    assert_eq!(
        sidecar.network_mode.as_deref(),
        Some("container:myapp-r1a2-g2-db-1")
    );
    assert!(sidecar.networks.is_empty());
}

#[test]
fn fixed_host_ports_dropped_or_made_ephemeral() {
    let p = isolate(&project(), &iso(1, false)).unwrap();
    assert!(p.services["db"].ports.is_empty());
    assert!(p.services["web"].ports.is_empty());
    // An ephemeral port cannot collide and stays.
    assert_eq!(p.services["cache"].ports.len(), 1);
    let p = isolate(&project(), &iso(1, true)).unwrap();
    let db = &p.services["db"].ports;
    assert_eq!(db.len(), 1);
    assert_eq!((db[0].target, db[0].published.clone()), (5432, None));
}

#[test]
fn volumes_are_per_group_and_data_binds_replaced() {
    let p = isolate(&project(), &iso(4, false)).unwrap();
    assert_eq!(
        p.volumes["redisdata"].name.as_deref(),
        Some("myapp-r1a2-g4_redisdata")
    );
    assert_eq!(
        p.volumes["redisdata"].labels[labels::COMPOSE_VOLUME],
        "redisdata"
    );
    assert!(p.volumes["ext"].external);
    let db = &p.services["db"].volumes;
    assert_eq!(db[0].kind, MountKind::Volume);
    let key = db[0].source.clone().unwrap();
    assert_eq!(p.volumes[&key].name, Some(format!("myapp-r1a2-g4_{key}")));
    // Read-only init scripts and source code stay shared binds.
    assert_eq!(db[1].kind, MountKind::Bind);
    assert_eq!(p.services["web"].volumes[0].kind, MountKind::Bind);
    // The test service's own binds are never replaced, even onto /data.
    assert!(p.services["tests"]
        .volumes
        .iter()
        .all(|m| m.kind == MountKind::Bind));
    let notes = p.isolation.unwrap().notes.join("\n");
    assert!(notes.contains("/var/lib/postgresql/data"), "{notes}");
    assert!(notes.contains("\"ext\" is external"), "{notes}");
}

#[test]
fn build_services_share_one_image() {
    let base = project();
    let a = isolate(&base, &iso(1, false)).unwrap();
    let b = isolate(&base, &iso(2, false)).unwrap();
    assert_eq!(a.services["web"].image.as_deref(), Some("myapp-web"));
    assert_eq!(a.services["web"].image, b.services["web"].image);
    assert_eq!(a.services["web"].build, base.services["web"].build);
}

#[test]
fn groups_share_nothing() {
    let base = project();
    let groups: Vec<Project> = (1..=4)
        .map(|k| isolate(&base, &iso(k, true)).unwrap())
        .collect();
    let mut containers = std::collections::HashSet::new();
    let mut nets = std::collections::HashSet::new();
    let mut vols = std::collections::HashSet::new();
    for p in &groups {
        for s in p.services.values() {
            assert!(containers.insert(s.container_name.clone().unwrap()));
            assert!(s.ports.iter().all(|port| port.published.is_none()));
        }
        for n in p.networks.values().filter(|n| !n.external) {
            assert!(nets.insert(n.name.clone().unwrap()));
        }
        for v in p.volumes.values().filter(|v| !v.external) {
            assert!(vols.insert(v.name.clone().unwrap()));
        }
    }
    assert_eq!(containers.len(), 4 * 5);
}

#[test]
fn bad_group_or_test_service_is_an_error() {
    let mut i = iso(5, false);
    assert!(isolate(&project(), &i).is_err());
    i.group = 1;
    i.test_service = Some("nope".into());
    assert!(matches!(
        isolate(&project(), &i),
        Err(ComposeError::TestService(_))
    ));
}

#[test]
fn test_service_selection_order() {
    let p = project();
    let name = |flag, configured| {
        select_test_service(&p, flag, configured)
            .map(|choice| choice.name)
            .unwrap()
    };
    assert_eq!(name(Some("web"), Some("tests")), "web");
    assert_eq!(name(None, Some("tests")), "tests");
    let err = select_test_service(&p, Some("nope"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--service") && err.contains("tests"), "{err}");
    // web and tests both build and nothing depends on them; tests is named for tests.
    let chosen = select_test_service(&p, None, None).unwrap();
    assert_eq!(chosen.name, "tests");
    assert!(chosen
        .reason
        .unwrap()
        .contains("its name or command says tests"));
    // Two services alike in every way: ambiguous, both listed.
    let mut twins = p.clone();
    let mut web2 = twins.services["web"].clone();
    web2.name = "web2".into();
    twins.services.shift_remove("tests");
    twins.services.insert("web2".into(), web2);
    let err = select_test_service(&twins, None, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("web, web2"), "{err}");
}

#[test]
fn fixed_addresses_are_dropped_and_reported() {
    let p = load_from_str(
        &[(
            "compose.yaml",
            "services:\n  db:\n    image: pg\n    networks:\n      back: {ipv4_address: 172.30.0.5}\nnetworks:\n  back: {}\n",
        )],
        Path::new("/src/x"),
        &HashMap::new(),
        &ComposeOptions::default(),
    )
    .unwrap()
    .project;
    assert_eq!(
        p.services["db"].networks["back"].ipv4_address.as_deref(),
        Some("172.30.0.5")
    );
    let g = isolate(&p, &iso_without_test(1)).unwrap();
    assert_eq!(g.services["db"].networks["back"].ipv4_address, None);
    assert_eq!(g.services["db"].networks["back"].aliases, vec!["db"]);
    assert!(g
        .isolation
        .unwrap()
        .notes
        .iter()
        .any(|n| n.contains("172.30.0.5")));
}

#[test]
fn network_mode_host_is_kept_and_reported() {
    let p = load_from_str(
        &[(
            "compose.yaml",
            "services:\n  a:\n    image: x\n    network_mode: host\n",
        )],
        Path::new("/src/x"),
        &HashMap::new(),
        &ComposeOptions::default(),
    )
    .unwrap()
    .project;
    let g = isolate(&p, &iso_without_test(2)).unwrap();
    assert_eq!(g.services["a"].network_mode.as_deref(), Some("host"));
    assert!(g.services["a"].networks.is_empty());
    assert!(g
        .isolation
        .unwrap()
        .notes
        .iter()
        .any(|n| n.contains("network_mode: host")));
}

fn iso_without_test(group: usize) -> Isolation {
    Isolation {
        run_id: "r".into(),
        group,
        groups: 2,
        publish_ports: false,
        test_service: None,
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn any_number_of_groups_shares_nothing(groups in 1usize..12, run in "[a-z0-9]{1,8}") {
            let base = project();
            let mut seen = HashSet::new();
            for k in 1..=groups {
                let p = isolate(&base, &Isolation {
                    run_id: run.clone(),
                    group: k,
                    groups,
                    publish_ports: false,
                    test_service: None,
                }).unwrap();
                let valid = compose_shard::compose::normalize_project_name(&p.name);
                prop_assert_eq!(valid, Some(p.name.clone()));
                for s in p.services.values() {
                    prop_assert!(seen.insert(s.container_name.clone().unwrap()));
                    prop_assert!(s.ports.iter().all(|port| port.published.is_none()));
                }
                for n in p.networks.values().filter(|n| !n.external) {
                    prop_assert!(seen.insert(n.name.clone().unwrap()));
                }
                for v in p.volumes.values().filter(|v| !v.external) {
                    prop_assert!(seen.insert(v.name.clone().unwrap()));
                }
            }
        }
    }
}
