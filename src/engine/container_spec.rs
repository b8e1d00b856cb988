//! Translate one service of an isolated compose project into the engine's create-container
//! request. Isolation already chose every engine-side name; this only changes representation.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig, Mount,
    MountTmpfsOptions, MountType, NetworkingConfig, PortBinding, ResourcesUlimits,
};

use super::client::to_hash_map;
use crate::compose::{FileMount, FileMountSource, Healthcheck, MountKind, Project, Service};

/// Changes the orchestrator makes to a service before creating its container.
#[derive(Debug, Clone, Default)]
pub struct ContainerOverrides {
    /// Replace the entrypoint and command (the test container sleeps; pytest runs via exec).
    pub entrypoint: Option<Vec<String>>,
    /// Replace the command.
    pub command: Option<Vec<String>>,
    /// Extra environment (`-e KEY=VAL`), overriding the service's.
    pub env: Vec<(String, String)>,
    /// The image to use instead of the service's (a built image's content-hash tag).
    pub image: Option<String>,
    /// `secrets:` and `configs:` files: host files are bind-mounted read-only, contents are
    /// copied into the created container before it starts (as Compose does).
    pub files: Vec<FileMount>,
    /// `--tmpfs-data`: volume paths (the service's own volumes, or its image's `VOLUME`s)
    /// mounted as a tmpfs of this many bytes instead.
    pub data_in_memory: Vec<(String, u64)>,
    /// Volume paths (the service's own volumes, or its image's `VOLUME`s) that mount this
    /// engine volume instead: the environment's own layer over a snapshot.
    pub data_volumes: Vec<(String, String)>,
    /// (container folder, folder of this machine) bind-mounted read-write: the test
    /// container's plugin and results folders when the engine shares this machine's files
    /// (the engine then writes and reads the protocol's files here, not through the engine).
    pub host_folders: Vec<(String, std::path::PathBuf)>,
    /// compose-shard runs the service's healthcheck itself until the service is healthy:
    /// the engine's (the compose file's and the image's) is turned off, so the engine does
    /// not probe every container of every group for the whole run.
    pub own_healthcheck: bool,
}

/// A create request plus the networks to connect after creation: API 1.41 accepts only one
/// endpoint at create time.
pub(crate) struct ContainerPlan {
    pub name: String,
    pub body: ContainerCreateBody,
    pub extra_networks: Vec<(String, EndpointSettings)>,
}

/// The engine name of a service's container.
pub fn container_name(project: &Project, service: &Service) -> String {
    service
        .container_name
        .clone()
        .unwrap_or_else(|| format!("{}-{}-1", project.name, service.name))
}

fn network_engine_name(project: &Project, key: &str) -> String {
    project
        .networks
        .get(key)
        .and_then(|n| n.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

fn volume_engine_name(project: &Project, key: &str) -> String {
    match project.volumes.get(key) {
        Some(v) => v
            .name
            .clone()
            .unwrap_or_else(|| format!("{}_{key}", project.name)),
        // Not a declared key: a path-less anonymous source or an engine volume name.
        None => key.to_string(),
    }
}

fn nanos(seconds: Option<f64>) -> Option<i64> {
    seconds.map(|s| (s * 1e9) as i64)
}

fn health_config(h: &Healthcheck) -> HealthConfig {
    HealthConfig {
        test: (!h.test.is_empty()).then(|| h.test.clone()),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        retries: h.retries.map(|r| r as i64),
        start_period: nanos(h.start_period),
        start_interval: nanos(h.start_interval),
    }
}

/// What replaces a volume path: a tmpfs (`--tmpfs-data`) or a snapshot's layer.
fn replacement(overrides: &ContainerOverrides, target: &str) -> Option<Mount> {
    let target = target.trim_end_matches('/');
    let same = |t: &String| t.trim_end_matches('/') == target;
    let tmpfs = overrides
        .data_in_memory
        .iter()
        .find(|(t, _)| same(t))
        .map(|(_, bytes)| Mount {
            target: Some(target.to_string()),
            typ: Some(MountType::TMPFS),
            tmpfs_options: Some(MountTmpfsOptions {
                size_bytes: Some(i64::try_from(*bytes).unwrap_or(i64::MAX)),
                ..Default::default()
            }),
            ..Default::default()
        });
    let layer = || {
        overrides
            .data_volumes
            .iter()
            .find(|(t, _)| same(t))
            .map(|(_, volume)| Mount {
                target: Some(target.to_string()),
                source: Some(volume.clone()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            })
    };
    tmpfs.or_else(layer)
}

fn mounts(project: &Project, service: &Service, overrides: &ContainerOverrides) -> Vec<Mount> {
    let files = &overrides.files;
    let replaced = |target: &str| replacement(overrides, target);
    // Image `VOLUME`s the service does not mount anything at.
    let replaced_targets = (overrides.data_in_memory.iter().map(|(t, _)| t))
        .chain(overrides.data_volumes.iter().map(|(t, _)| t));
    let image_volumes = replaced_targets.filter_map(|target| {
        let declared = service
            .volumes
            .iter()
            .any(|m| m.target.trim_end_matches('/') == target.trim_end_matches('/'));
        (!declared).then(|| replaced(target)).flatten()
    });
    let host_files = files.iter().filter_map(|f| match &f.source {
        FileMountSource::HostFile(path) => Some(Mount {
            target: Some(f.target.clone()),
            source: Some(path.display().to_string()),
            typ: Some(MountType::BIND),
            read_only: Some(true),
            ..Default::default()
        }),
        FileMountSource::Content(_) => None,
    });
    let host_folders = overrides.host_folders.iter().map(|(target, here)| Mount {
        target: Some(target.clone()),
        source: Some(here.display().to_string()),
        typ: Some(MountType::BIND),
        read_only: Some(false),
        ..Default::default()
    });
    service
        .volumes
        .iter()
        .map(|m| {
            if m.kind == MountKind::Volume {
                if let Some(replacement) = replaced(&m.target) {
                    return replacement;
                }
            }
            let (typ, source) = match m.kind {
                MountKind::Bind => (MountType::BIND, m.source.clone()),
                MountKind::Volume => (
                    MountType::VOLUME,
                    m.source.as_deref().map(|s| volume_engine_name(project, s)),
                ),
                MountKind::Tmpfs => (MountType::TMPFS, None),
            };
            Mount {
                target: Some(m.target.clone()),
                source,
                typ: Some(typ),
                read_only: Some(m.read_only),
                ..Default::default()
            }
        })
        .chain(image_volumes)
        .chain(host_files)
        .chain(host_folders)
        .collect()
}

/// Capabilities as Compose v2 sends them: `CAP_`-prefixed (`SYS_PTRACE` ->
/// `CAP_SYS_PTRACE`), `ALL` as it is; `None` for none.
fn capabilities(names: &[String]) -> Option<Vec<String>> {
    let full = |c: &String| {
        let c = c.to_ascii_uppercase();
        if c == "ALL" || c.starts_with("CAP_") {
            c
        } else {
            format!("CAP_{c}")
        }
    };
    (!names.is_empty()).then(|| names.iter().map(full).collect())
}

fn endpoint(project: &Project, service: &Service, key: &str) -> (String, EndpointSettings) {
    let net = service.networks.get(key).cloned().unwrap_or_default();
    let mut aliases = net.aliases.clone();
    if !aliases.contains(&service.name) {
        aliases.push(service.name.clone());
    }
    let settings = EndpointSettings {
        aliases: Some(aliases),
        ipam_config: net.ipv4_address.map(|ip| EndpointIpamConfig {
            ipv4_address: Some(ip),
            ..Default::default()
        }),
        ..Default::default()
    };
    (network_engine_name(project, key), settings)
}

// Long on purpose: one statement per compose key mapped onto the create request, in the
// order of docs/compose.md; split up, the mapping would no longer read as one table.
pub(crate) fn plan_container(
    project: &Project,
    service: &Service,
    overrides: &ContainerOverrides,
) -> ContainerPlan {
    let name = container_name(project, service);
    let mut env: Vec<String> = service
        .environment
        .iter()
        .filter(|(k, _)| !overrides.env.iter().any(|(o, _)| o == *k))
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    env.extend(overrides.env.iter().map(|(k, v)| format!("{k}={v}")));

    let mut exposed: Vec<String> = service
        .expose
        .iter()
        .map(|p| {
            if p.contains('/') {
                p.clone()
            } else {
                format!("{p}/tcp")
            }
        })
        .collect();
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &service.ports {
        let key = format!("{}/{}", p.target, p.protocol);
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        // A port without a host port is published on an ephemeral host port, as in
        // Compose (`ports: ["8000"]`); isolation leaves only such ports (`--publish-ports`).
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: Some(p.published.clone().unwrap_or_default()),
            });
    }

    let network_keys: Vec<String> = if service.networks.is_empty() {
        vec!["default".to_string()]
    } else {
        service.networks.keys().cloned().collect()
    };
    let uses_networks = service.network_mode.is_none();
    let mut endpoints: Vec<(String, EndpointSettings)> = if uses_networks {
        network_keys
            .iter()
            .map(|k| endpoint(project, service, k))
            .collect()
    } else {
        Vec::new()
    };
    let first = (!endpoints.is_empty()).then(|| endpoints.remove(0));
    let network_mode = match (&service.network_mode, &first) {
        (Some(mode), _) => Some(mode.clone()),
        (None, Some((net, _))) => Some(net.clone()),
        (None, None) => None,
    };

    let host_config = HostConfig {
        mounts: Some(mounts(project, service, overrides)),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        network_mode,
        extra_hosts: (!service.extra_hosts.is_empty()).then(|| service.extra_hosts.clone()),
        shm_size: service.shm_size.map(|s| s as i64),
        init: service.init,
        privileged: Some(service.privileged),
        cap_add: capabilities(&service.cap_add),
        cap_drop: capabilities(&service.cap_drop),
        ulimits: (!service.ulimits.is_empty()).then(|| {
            service
                .ulimits
                .iter()
                .map(|(name, (soft, hard))| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(*soft),
                    hard: Some(*hard),
                })
                .collect()
        }),
        memory: service.mem_limit.map(|m| m as i64),
        readonly_rootfs: Some(service.read_only),
        sysctls: (!service.sysctls.is_empty()).then(|| to_hash_map(&service.sysctls)),
        tmpfs: (!service.tmpfs.is_empty()).then(|| {
            service
                .tmpfs
                .iter()
                .map(|t| match t.split_once(':') {
                    Some((path, opts)) => (path.to_string(), opts.to_string()),
                    None => (t.clone(), String::new()),
                })
                .collect()
        }),
        ..Default::default()
    };

    let body = ContainerCreateBody {
        image: overrides.image.clone().or_else(|| service.image.clone()),
        hostname: service.hostname.clone(),
        user: service.user.clone(),
        env: Some(env),
        cmd: overrides
            .command
            .clone()
            .or_else(|| service.command.clone()),
        entrypoint: overrides
            .entrypoint
            .clone()
            .or_else(|| service.entrypoint.clone()),
        working_dir: service.working_dir.clone(),
        labels: Some(to_hash_map(&service.labels)),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: Some(service.tty),
        open_stdin: Some(service.stdin_open),
        stop_signal: service.stop_signal.clone(),
        stop_timeout: service.stop_grace_period.map(|s| s.ceil() as i64),
        healthcheck: if overrides.own_healthcheck {
            Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            })
        } else {
            service.healthcheck.as_ref().map(health_config)
        },
        host_config: Some(host_config),
        networking_config: first.map(|(net, settings)| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(net, settings)])),
        }),
        ..Default::default()
    };
    ContainerPlan {
        name,
        body,
        extra_networks: endpoints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{Mount as ComposeMount, Network, PortMapping, ServiceNetwork, Volume};
    use indexmap::IndexMap;

    fn project() -> (Project, Service) {
        let mut service = Service {
            name: "db".into(),
            image: Some("postgres:15".into()),
            container_name: Some("p-g1-db-1".into()),
            expose: vec!["5432".into(), "8125/udp".into()],
            ports: vec![PortMapping {
                target: 8000,
                published: None,
                host_ip: None,
                protocol: "tcp".into(),
            }],
            volumes: vec![ComposeMount {
                kind: MountKind::Volume,
                source: Some("data".into()),
                target: "/var/lib/postgresql/data".into(),
                read_only: false,
                options: vec![],
                create_host_path: false,
            }],
            ..Default::default()
        };
        service.environment.insert("A".into(), Some("1".into()));
        service.environment.insert("UNSET".into(), None);
        service.networks = IndexMap::from([
            (
                "front".to_string(),
                ServiceNetwork {
                    aliases: vec!["database".into()],
                    ipv4_address: None,
                },
            ),
            ("back".to_string(), ServiceNetwork::default()),
        ]);
        let project = Project {
            name: "p-g1".into(),
            project_dir: "/src".into(),
            files: vec![],
            services: IndexMap::from([("db".to_string(), service.clone())]),
            networks: IndexMap::from([
                (
                    "front".to_string(),
                    Network {
                        name: Some("p-g1_front".into()),
                        ..Default::default()
                    },
                ),
                ("back".to_string(), Network::default()),
            ]),
            volumes: IndexMap::from([(
                "data".to_string(),
                Volume {
                    name: Some("p-g1_data".into()),
                    ..Default::default()
                },
            )]),
            isolation: None,
        };
        (project, service)
    }

    #[test]
    fn first_network_at_create_others_connected_later_all_with_the_service_alias() {
        let (project, service) = project();
        let plan = plan_container(&project, &service, &ContainerOverrides::default());
        assert_eq!(plan.name, "p-g1-db-1");
        let host = plan.body.host_config.as_ref().unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("p-g1_front"));
        let endpoints = plan
            .body
            .networking_config
            .unwrap()
            .endpoints_config
            .unwrap();
        assert_eq!(
            endpoints["p-g1_front"].aliases,
            Some(vec!["database".to_string(), "db".to_string()])
        );
        assert_eq!(plan.extra_networks.len(), 1);
        assert_eq!(plan.extra_networks[0].0, "p-g1_back");
        assert_eq!(
            plan.extra_networks[0].1.aliases,
            Some(vec!["db".to_string()])
        );
    }

    #[test]
    fn the_engine_healthcheck_is_the_compose_one_unless_compose_shard_runs_it() {
        let (project, mut service) = project();
        service.healthcheck = Some(Healthcheck {
            test: vec!["CMD-SHELL".into(), "pg_isready".into()],
            interval: Some(1.5),
            ..Default::default()
        });
        let engine = plan_container(&project, &service, &ContainerOverrides::default());
        let h = engine.body.healthcheck.expect("the compose healthcheck");
        assert_eq!(h.test, Some(vec!["CMD-SHELL".into(), "pg_isready".into()]));
        assert_eq!(h.interval, Some(1_500_000_000));
        let own = ContainerOverrides {
            own_healthcheck: true,
            ..Default::default()
        };
        // NONE also turns off a HEALTHCHECK of the image.
        let h = plan_container(&project, &service, &own).body.healthcheck;
        assert_eq!(h.and_then(|h| h.test), Some(vec!["NONE".to_string()]));
    }

    #[test]
    fn volumes_ports_and_environment_use_engine_names_and_overrides() {
        let (project, service) = project();
        let overrides = ContainerOverrides {
            env: vec![("A".into(), "2".into())],
            entrypoint: Some(vec!["sleep".into(), "9".into()]),
            command: Some(vec![]),
            image: Some("postgres:cs-1".into()),
            files: vec![FileMount {
                name: "token".into(),
                target: "/run/secrets/token".into(),
                source: FileMountSource::HostFile("/src/token.txt".into()),
                uid: None,
                gid: None,
                mode: 0o444,
            }],
            data_in_memory: vec![],
            data_volumes: vec![],
            host_folders: vec![(
                "/tmp/compose-shard-plugin".into(),
                "/tmp/cs-g1/plugin".into(),
            )],
            own_healthcheck: false,
        };
        let plan = plan_container(&project, &service, &overrides);
        let body = plan.body;
        assert_eq!(
            body.env,
            Some(vec!["A=2".to_string()]),
            "override wins, unset dropped"
        );
        assert_eq!(body.image.as_deref(), Some("postgres:cs-1"));
        assert_eq!(
            body.entrypoint,
            Some(vec!["sleep".to_string(), "9".to_string()])
        );
        assert_eq!(
            body.exposed_ports,
            Some(vec![
                "5432/tcp".to_string(),
                "8125/udp".to_string(),
                "8000/tcp".to_string()
            ])
        );
        let host = body.host_config.unwrap();
        let bindings = host.port_bindings.clone().expect("ports are bound");
        assert_eq!(
            bindings["8000/tcp"],
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some(String::new())
            }]),
            "a port without a host port is published on an ephemeral host port"
        );
        assert_eq!(bindings.len(), 1, "exposed-only ports are not published");
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts[0].source.as_deref(), Some("p-g1_data"));
        assert_eq!(mounts[0].typ, Some(MountType::VOLUME));
        assert_eq!(mounts[1].source.as_deref(), Some("/src/token.txt"));
        assert_eq!(mounts[1].target.as_deref(), Some("/run/secrets/token"));
        assert_eq!(mounts[1].read_only, Some(true), "secrets are read-only");
        assert_eq!(mounts[2].source.as_deref(), Some("/tmp/cs-g1/plugin"));
        assert_eq!(
            mounts[2].target.as_deref(),
            Some("/tmp/compose-shard-plugin")
        );
        assert_eq!(mounts[2].typ, Some(MountType::BIND));
        assert_eq!(
            mounts[2].read_only,
            Some(false),
            "the plugin writes into it"
        );
        assert_eq!(mounts.len(), 3);
    }

    /// A read-only bind of init scripts, which no data override touches.
    fn with_init_scripts(service: &mut Service) {
        service.volumes.push(ComposeMount {
            kind: MountKind::Bind,
            source: Some("/src/init".into()),
            target: "/docker-entrypoint-initdb.d".into(),
            read_only: true,
            options: vec![],
            create_host_path: false,
        });
    }

    #[test]
    fn data_in_memory_replaces_the_volume_and_covers_an_image_volume_binds_stay() {
        let (project, mut service) = project();
        with_init_scripts(&mut service);
        let overrides = ContainerOverrides {
            data_in_memory: vec![
                ("/var/lib/postgresql/data".into(), 64 << 20),
                ("/image/volume/".into(), 1 << 20),
            ],
            ..Default::default()
        };
        let mounts = mounts(&project, &service, &overrides);
        let described: Vec<_> = mounts
            .iter()
            .map(|m| {
                (
                    m.target.clone().unwrap(),
                    m.typ,
                    m.tmpfs_options.as_ref().and_then(|o| o.size_bytes),
                )
            })
            .collect();
        assert_eq!(
            described,
            [
                (
                    "/var/lib/postgresql/data".to_string(),
                    Some(MountType::TMPFS),
                    Some(64 << 20)
                ),
                (
                    "/docker-entrypoint-initdb.d".to_string(),
                    Some(MountType::BIND),
                    None
                ),
                (
                    "/image/volume".to_string(),
                    Some(MountType::TMPFS),
                    Some(1 << 20)
                ),
            ]
        );
    }

    #[test]
    fn a_snapshot_layer_replaces_the_named_volume_and_covers_an_image_volume() {
        let (project, mut service) = project();
        with_init_scripts(&mut service);
        let overrides = ContainerOverrides {
            data_volumes: vec![
                (
                    "/var/lib/postgresql/data/".into(),
                    "p-g1_snapshot-db-0".into(),
                ),
                ("/image/volume".into(), "p-g1_snapshot-db-1".into()),
            ],
            ..Default::default()
        };
        let described: Vec<_> = mounts(&project, &service, &overrides)
            .iter()
            .map(|m| (m.target.clone().unwrap(), m.typ, m.source.clone()))
            .collect();
        assert_eq!(
            described,
            [
                (
                    "/var/lib/postgresql/data".to_string(),
                    Some(MountType::VOLUME),
                    Some("p-g1_snapshot-db-0".to_string())
                ),
                (
                    "/docker-entrypoint-initdb.d".to_string(),
                    Some(MountType::BIND),
                    Some("/src/init".to_string())
                ),
                (
                    "/image/volume".to_string(),
                    Some(MountType::VOLUME),
                    Some("p-g1_snapshot-db-1".to_string())
                ),
            ]
        );
    }
}
