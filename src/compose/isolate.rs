//! Isolation: the project that is actually created for one group of a run.
//!
//! Invariants of an isolated project (the engine relies on them; tests pin them):
//! - `name` is `<base>-<run>-g<k>`, a valid Compose project name; `isolation` is set;
//! - every service has `container_name = Some("<project>-<service>-1")` and its labels hold
//!   the Compose labels (project, service, container-number 1, oneoff False) and ours
//!   (managed, run, group, base project);
//! - every service lists its networks explicitly (`default` when it had none and no
//!   `network_mode`), and on each of them its aliases contain the service name, its original
//!   `container_name` and the aliases other services' `links` give it, so `DB_HOST=db` works
//!   unchanged inside the group;
//! - every non-external network and named volume has `name = Some("<project>_<key>")` and the
//!   same labels (with the Compose network/volume label);
//! - fixed host ports are removed, or with `publish_ports` kept with `published: None`
//!   (an ephemeral host port);
//! - `network_mode: service:x` becomes `container:<x's container name>`;
//! - fixed `ipv4_address`es are dropped (each group's network gets its own subnet);
//! - `build:` services keep their one shared image name (the run builds it once);
//! - a writable bind mount onto a known database/cache data directory in a service other
//!   than the test service becomes a per-group volume, reported in `isolation.notes`;
//! - external networks and volumes and `network_mode: host` are kept and reported: they
//!   cannot be isolated.
//!
//! Mounts of named volumes keep the volume *key* as `source`, and services keep network
//! *keys*: the engine-side names are `project.volumes[key].name` and
//! `project.networks[key].name`. `links` need no engine support: the aliases they give are
//! already on the linked service's networks.

use indexmap::IndexMap;

use super::error::ComposeError;
use super::model::*;
use super::names::normalize_project_name;
use crate::labels;

/// What to isolate for.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// Run id (part of every name).
    pub run_id: String,
    /// 1-based group number.
    pub group: usize,
    /// Number of groups.
    pub groups: usize,
    /// Publish fixed host ports on ephemeral host ports instead of dropping them.
    pub publish_ports: bool,
    /// The service the tests run in (its bind mounts are never replaced).
    pub test_service: Option<String>,
}

/// Container paths where databases and caches keep their data. A writable bind mount there
/// (or below) would be shared by all groups (and corrupted), so it becomes a per-group volume.
const DATA_DIRS: &[&str] = &[
    "/var/lib/postgresql",
    "/var/lib/mysql",
    "/var/lib/mariadb",
    "/data/db",
    "/data/configdb",
    "/usr/share/elasticsearch/data",
    "/usr/share/opensearch/data",
    "/var/lib/elasticsearch",
    "/var/lib/rabbitmq",
    "/var/lib/redis",
    "/var/lib/mongodb",
    "/var/lib/clickhouse",
    "/var/lib/cassandra",
    "/var/lib/neo4j/data",
    "/var/opt/mssql",
    "/bitnami",
    "/opt/couchdb/data",
    "/var/lib/influxdb",
    "/var/lib/kafka/data",
    "/var/lib/zookeeper",
];

/// `/data` is too generic to claim for every image: it is the data directory of these
/// images only (elsewhere it often holds fixtures that must stay shared).
const DATA_IMAGES: &[&str] = &["redis", "valkey", "keydb", "dragonfly", "minio", "kvrocks"];

fn holds_persistent_data(target: &str, image: Option<&str>) -> bool {
    let t = target.trim_end_matches('/');
    let under = |d: &str| t == d || t.starts_with(&format!("{d}/"));
    if DATA_DIRS.iter().any(|d| under(d)) {
        return true;
    }
    let image = image.unwrap_or_default().to_lowercase();
    under("/data") && DATA_IMAGES.iter().any(|i| image.contains(i))
}

/// Pure: the project that will actually be created for one group.
pub fn isolate(project: &Project, iso: &Isolation) -> Result<Project, ComposeError> {
    let mut group = GroupIsolation::new(project, iso)?;
    let link_aliases = link_aliases(project);
    let mut out = project.clone();
    out.name = group.name.clone();
    let mut data_volumes: IndexMap<String, Volume> = IndexMap::new();
    for svc in out.services.values_mut() {
        group.service(svc, &link_aliases, &mut data_volumes);
    }
    out.volumes.extend(data_volumes);
    group.top_level("network", labels::COMPOSE_NETWORK, &mut out.networks);
    group.top_level("volume", labels::COMPOSE_VOLUME, &mut out.volumes);
    out.isolation = Some(IsolationInfo {
        run_id: iso.run_id.clone(),
        group: iso.group,
        groups: iso.groups,
        base_project: project.name.clone(),
        test_service: iso.test_service.clone(),
        notes: group.notes,
    });
    Ok(out)
}

/// The aliases `links` give each service (`target -> [alias, ...]`), collected before
/// services are rewritten.
fn link_aliases(project: &Project) -> IndexMap<String, Vec<String>> {
    let mut aliases: IndexMap<String, Vec<String>> = IndexMap::new();
    for svc in project.services.values() {
        for link in &svc.links {
            if let Some((target, alias)) = link.split_once(':') {
                aliases
                    .entry(target.to_string())
                    .or_default()
                    .push(alias.to_string());
            }
        }
    }
    aliases
}

/// One group's names and labels, and the notes on what could not be isolated as it was.
struct GroupIsolation<'a> {
    /// The isolated project name, `<base>-<run>-g<k>`.
    name: String,
    iso: &'a Isolation,
    base_project: &'a str,
    notes: Vec<String>,
}

impl<'a> GroupIsolation<'a> {
    /// Checks the group number, the run id and the test service.
    fn new(project: &'a Project, iso: &'a Isolation) -> Result<Self, ComposeError> {
        if iso.group == 0 || iso.group > iso.groups {
            return Err(ComposeError::Reference(format!(
                "group {} does not exist: groups are numbered 1 to {}",
                iso.group, iso.groups
            )));
        }
        let name =
            normalize_project_name(&format!("{}-{}-g{}", project.name, iso.run_id, iso.group))
                .ok_or_else(|| {
                    ComposeError::Reference(format!(
                        "run id {:?} gives no valid project name",
                        iso.run_id
                    ))
                })?;
        if let Some(t) = &iso.test_service {
            if !project.services.contains_key(t) {
                return Err(ComposeError::TestService(format!(
                    "test service {t:?} is not a service of project {:?}",
                    project.name
                )));
            }
        }
        Ok(GroupIsolation {
            name,
            iso,
            base_project: &project.name,
            notes: Vec::new(),
        })
    }

    /// Compose's project label, then `extra`, then ours.
    fn labels(&self, extra: &[(&str, String)]) -> IndexMap<String, String> {
        let mut l = IndexMap::new();
        l.insert(labels::COMPOSE_PROJECT.to_string(), self.name.clone());
        for (k, v) in extra {
            l.insert(k.to_string(), v.clone());
        }
        l.insert(labels::MANAGED.to_string(), "true".to_string());
        l.insert(labels::RUN.to_string(), self.iso.run_id.clone());
        l.insert(labels::GROUP.to_string(), self.iso.group.to_string());
        l.insert(
            labels::BASE_PROJECT.to_string(),
            self.base_project.to_string(),
        );
        l
    }

    /// The container name of `service` in this group.
    fn container(&self, service: &str) -> String {
        format!("{}-{service}-1", self.name)
    }

    /// Isolates one service: container name, labels, networks, ports, data mounts (whose
    /// new volumes go to `data_volumes`).
    fn service(
        &mut self,
        svc: &mut Service,
        link_aliases: &IndexMap<String, Vec<String>>,
        data_volumes: &mut IndexMap<String, Volume>,
    ) {
        let original_container = svc.container_name.replace(self.container(&svc.name));
        for (k, v) in self.labels(&[
            (labels::COMPOSE_SERVICE, svc.name.clone()),
            (labels::COMPOSE_CONTAINER_NUMBER, "1".to_string()),
            (labels::COMPOSE_ONEOFF, "False".to_string()),
        ]) {
            svc.labels.insert(k, v);
        }
        let mut aliases = vec![svc.name.clone()];
        aliases.extend(original_container);
        aliases.extend(link_aliases.get(&svc.name).cloned().unwrap_or_default());
        self.service_networks(svc, &aliases);
        self.service_ports(svc);
        self.service_data_mounts(svc, data_volumes);
    }

    /// `network_mode: service:x` points at x's container in this group; otherwise every
    /// network of the service carries `aliases` and loses its fixed address.
    fn service_networks(&mut self, svc: &mut Service, aliases: &[String]) {
        match svc.network_mode.as_deref() {
            Some(mode) if mode.starts_with("service:") => {
                let target = &mode["service:".len()..];
                svc.network_mode = Some(format!("container:{}", self.container(target)));
            }
            Some("host") => self.notes.push(format!(
                "service {:?} uses `network_mode: host`: it shares the host's network with every group and cannot be isolated",
                svc.name
            )),
            Some(_) => {}
            None => {
                if svc.networks.is_empty() {
                    svc.networks.insert("default".to_string(), ServiceNetwork::default());
                }
                for (key, net) in svc.networks.iter_mut() {
                    if let Some(ip) = net.ipv4_address.take() {
                        self.notes.push(format!(
                            "service {:?}: fixed address {ip} on network {key:?} dropped (every group's network gets its own addresses)",
                            svc.name
                        ));
                    }
                    for a in aliases {
                        if !net.aliases.contains(a) {
                            net.aliases.push(a.clone());
                        }
                    }
                }
            }
        }
    }

    /// Fixed host ports are dropped, or published on ephemeral host ports.
    fn service_ports(&mut self, svc: &mut Service) {
        let publish = self.iso.publish_ports;
        let fixed: Vec<String> = svc
            .ports
            .iter()
            .filter_map(|p| p.published.as_ref().map(|h| format!("{h}:{}", p.target)))
            .collect();
        if publish {
            for p in &mut svc.ports {
                p.published = None;
            }
        } else {
            svc.ports.retain(|p| p.published.is_none());
        }
        if !fixed.is_empty() {
            self.notes.push(format!(
                "service {:?}: fixed host ports {} {}",
                svc.name,
                fixed.join(", "),
                if publish {
                    "are published on ephemeral host ports"
                } else {
                    "are not published"
                }
            ));
        }
    }

    /// Writable bind mounts onto a data directory (outside the test service) become
    /// per-group volumes, added to `data_volumes`.
    fn service_data_mounts(
        &mut self,
        svc: &mut Service,
        data_volumes: &mut IndexMap<String, Volume>,
    ) {
        if self.iso.test_service.as_deref() == Some(svc.name.as_str()) {
            return;
        }
        let image = svc.image.as_deref();
        for (i, m) in svc.volumes.iter_mut().enumerate() {
            if m.kind != MountKind::Bind || m.read_only || !holds_persistent_data(&m.target, image)
            {
                continue;
            }
            let key = format!("compose-shard-{}-data-{}", svc.name, i + 1);
            self.notes.push(format!(
                "service {:?}: bind mount {} -> {} holds persistent data and would be shared by all groups; replaced by the per-group volume {key:?}",
                svc.name,
                m.source.as_deref().unwrap_or("?"),
                m.target
            ));
            m.kind = MountKind::Volume;
            m.source = Some(key.clone());
            m.options.retain(|o| o == "nocopy");
            data_volumes.insert(key, Volume::default());
        }
    }

    /// Top-level networks or volumes (`kind`) get per-group names and labels (with the
    /// Compose label `compose_label`); external ones are kept and reported.
    fn top_level<R: TopLevelResource>(
        &mut self,
        kind: &str,
        compose_label: &str,
        resources: &mut IndexMap<String, R>,
    ) {
        for (key, resource) in resources.iter_mut() {
            let (external, name, labels) = resource.parts();
            if external {
                self.notes.push(format!(
                    "{kind} {key:?} is external: all groups share it and it cannot be isolated"
                ));
                continue;
            }
            if let Some(n) = name.as_ref() {
                self.notes.push(format!(
                    "{kind} {key:?}: its fixed name {n:?} is replaced by a per-group name"
                ));
            }
            *name = Some(format!("{}_{key}", self.name));
            for (k, v) in self.labels(&[(compose_label, key.clone())]) {
                labels.insert(k, v);
            }
        }
    }
}

/// What isolation changes on a top-level network or volume.
trait TopLevelResource {
    /// `external`, `name` and `labels`.
    fn parts(&mut self) -> (bool, &mut Option<String>, &mut IndexMap<String, String>);
}

impl TopLevelResource for Network {
    fn parts(&mut self) -> (bool, &mut Option<String>, &mut IndexMap<String, String>) {
        (self.external, &mut self.name, &mut self.labels)
    }
}

impl TopLevelResource for Volume {
    fn parts(&mut self) -> (bool, &mut Option<String>, &mut IndexMap<String, String>) {
        (self.external, &mut self.name, &mut self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::holds_persistent_data;

    #[test]
    fn data_directories() {
        assert!(holds_persistent_data(
            "/var/lib/postgresql/data",
            Some("postgres:16")
        ));
        assert!(holds_persistent_data(
            "/var/lib/postgresql/data/pgdata/",
            None
        ));
        assert!(holds_persistent_data("/var/lib/mysql", Some("mariadb")));
        assert!(holds_persistent_data(
            "/data",
            Some("docker.io/valkey/valkey:8")
        ));
        assert!(holds_persistent_data("/data/db", Some("mongo:7")));
        assert!(!holds_persistent_data("/data", Some("myapp")));
        assert!(!holds_persistent_data(
            "/data/fixtures",
            Some("python:3.12")
        ));
        assert!(!holds_persistent_data("/var/lib/postgresql-client", None));
        assert!(!holds_persistent_data("/app", Some("redis")));
    }
}
