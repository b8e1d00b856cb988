//! Canonicalisation: one merged, interpolated service definition (a YAML mapping) becomes a
//! typed [`Service`] in long syntax (top-level networks and volumes: see `toplevel.rs`).
//!
//! Errors name the key (`ports`, `healthcheck.interval`...) so the loader can point at the
//! line in the file that set it. Keys we know but do not act on produce a warning naming the
//! service and key; `restart` is ignored quietly because a test run never restarts services.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_yaml::{Mapping, Value};

use super::environment::{env_file_list, resolve_environment};
use super::files::{service_entries, Kind};
use super::model::*;
use super::ports::{parse_expose, parse_port};
use super::values::{
    boolean, bytes, command, err, key_values, scalar_string, seconds, string, string_list,
    string_map, FieldError,
};
use super::volumes::{parse_mount, resolve_host_path};

/// What canonicalisation needs from the loader.
pub(crate) struct Context<'a> {
    /// Base for relative paths.
    pub project_dir: &'a Path,
    /// Project name (for default image names).
    pub project_name: &'a str,
    /// Environment for bare `KEY` entries: shell environment, then `.env`.
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Warnings collected for the user.
    pub warnings: &'a mut Vec<String>,
    /// Top-level `secrets:` definitions by name.
    pub secrets: &'a IndexMap<String, ServiceFile>,
    /// Top-level `configs:` definitions by name.
    pub configs: &'a IndexMap<String, ServiceFile>,
    /// Problems of the service being canonicalised that only matter if it is started (a
    /// required `env_file` that cannot be read): the loader takes them after each service.
    pub problems: Vec<FieldError>,
}

/// Keys that are valid Compose but not acted on: each use is reported.
const UNSUPPORTED: &[&str] = &[
    "deploy",
    "develop",
    "logging",
    "dns",
    "dns_search",
    "dns_opt",
    "devices",
    "security_opt",
    "external_links",
    "ipc",
    "pid",
    "cgroup_parent",
    "domainname",
    "mac_address",
    "cpus",
    "cpu_shares",
    "cpuset",
    "mem_reservation",
    "memswap_limit",
    "oom_score_adj",
    "userns_mode",
    "runtime",
    "scale",
    "group_add",
    "isolation",
    "storage_opt",
    "annotations",
    "attach",
    "post_start",
    "pre_stop",
    "uts",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_runtime",
    "cpu_rt_period",
    "blkio_config",
    "credential_spec",
    "device_cgroup_rules",
    "gpus",
    "oom_kill_disable",
    "pids_limit",
    "mem_swappiness",
    "volume_driver",
    "models",
    "provider",
    "use_api_socket",
    "label_file",
    "env_from",
];
/// The type of an ignored key's value, checked as Compose v2 checks it (it refuses the file
/// when, say, `cpus: ${CPUS}` is left empty), so that ignoring a key never accepts a file
/// Compose refuses.
fn check_ignored_value(key: &str, v: &Value) -> Result<(), FieldError> {
    match key {
        "cpu_shares" | "cpu_count" | "cpu_percent" | "cpu_quota" | "cpu_period"
        | "cpu_rt_runtime" | "cpu_rt_period" | "pids_limit" | "oom_score_adj" | "scale" => {
            integer(key, v).map(drop)
        }
        "cpus" => match v {
            Value::Number(_) => Ok(()),
            Value::String(s) if s.trim().parse::<f64>().is_ok() => Ok(()),
            _ => err(
                key,
                format!(
                    "expected a number of CPUs, got {:?}",
                    scalar_string(v).unwrap_or_default()
                ),
            ),
        },
        "mem_reservation" | "memswap_limit" | "mem_swappiness" => bytes(key, v).map(drop),
        "oom_kill_disable" => boolean(key, v).map(drop),
        _ => Ok(()),
    }
}

/// A whole number written as a number or a string (Compose casts interpolated strings).
pub(crate) fn integer(key: &str, v: &Value) -> Result<i64, FieldError> {
    let parsed = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.map_or_else(
        || {
            err(
                key,
                format!(
                    "expected a whole number, got {:?}",
                    scalar_string(v).unwrap_or_default()
                ),
            )
        },
        Ok,
    )
}

/// Canonicalise one service.
pub(crate) fn service(
    name: &str,
    def: &Mapping,
    ctx: &mut Context<'_>,
) -> Result<Service, FieldError> {
    let mut svc = Service {
        name: name.to_string(),
        ..Service::default()
    };
    let mut env_files: Vec<(PathBuf, bool)> = Vec::new();
    let mut environment: Vec<(String, Option<String>)> = Vec::new();
    let mut volumes_from: Vec<String> = Vec::new();
    for (k, v) in def {
        let Some(key) = k.as_str() else {
            return err("?", "expected string keys");
        };
        if plain_field(&mut svc, key, v)? {
            continue;
        }
        match key {
            "build" => svc.build = Some(build(v, ctx)?),
            "environment" => environment = key_values(key, v)?,
            "env_file" => env_files = env_file_list(v, ctx.project_dir)?,
            "healthcheck" => svc.healthcheck = Some(healthcheck(name, v, ctx.warnings)?),
            "volumes" => {
                let home = (ctx.lookup)("HOME");
                svc.volumes = list_items(key, v, |item| {
                    parse_mount(item, ctx.project_dir, home.as_deref()).map(Some)
                })?
            }
            "secrets" => svc.secrets = service_entries(Kind::Secret, name, v, ctx.secrets)?,
            "configs" => svc.configs = service_entries(Kind::Config, name, v, ctx.configs)?,
            "volumes_from" => {
                volumes_from = string_list(key, v)?;
                ctx.warnings.push(format!(
                    "service {name:?}: `volumes_from` is not supported by compose-shard and is ignored (its services are still started first)"
                ));
            }
            // Restart policies matter for long-running deployments, not for one test run.
            "restart" | "extends" | "container_number" => {}
            other if UNSUPPORTED.contains(&other) => {
                check_ignored_value(other, v)?;
                ctx.warnings.push(format!(
                    "service {name:?}: `{other}` is not supported by compose-shard and is ignored"
                ))
            }
            other => ctx.warnings.push(format!(
                "service {name:?}: unknown key `{other}` is ignored"
            )),
        }
    }
    svc.environment = resolve_environment(&env_files, environment, ctx);
    if svc.build.is_some() && svc.image.is_none() {
        svc.image = Some(format!("{}-{}", ctx.project_name, name));
    }
    add_implicit_dependencies(&mut svc, &volumes_from);
    Ok(svc)
}

/// Set `key` on `svc` if it is a field whose value converts on its own (without the
/// project's directory, variables, secrets or warnings); `false` for any other key.
fn plain_field(svc: &mut Service, key: &str, v: &Value) -> Result<bool, FieldError> {
    match key {
        "image" => svc.image = Some(string(key, v)?),
        "command" => svc.command = command(key, v)?,
        "entrypoint" => svc.entrypoint = command(key, v)?,
        "working_dir" => svc.working_dir = Some(string(key, v)?),
        "user" => svc.user = Some(string(key, v)?),
        "hostname" => svc.hostname = Some(string(key, v)?),
        "depends_on" => svc.depends_on = depends_on(v)?,
        "expose" => svc.expose = list_items(key, v, parse_expose)?,
        "ports" => svc.ports = list_items(key, v, parse_port)?,
        "tmpfs" => svc.tmpfs = string_list(key, v)?,
        "networks" => svc.networks = service_networks(v)?,
        "network_mode" => svc.network_mode = Some(string(key, v)?),
        "links" => svc.links = string_list(key, v)?,
        "container_name" => svc.container_name = Some(string(key, v)?),
        "labels" => svc.labels = string_map(key, v)?,
        "extra_hosts" => svc.extra_hosts = extra_hosts(v)?,
        "shm_size" => svc.shm_size = Some(bytes(key, v)?),
        "mem_limit" => svc.mem_limit = Some(bytes(key, v)?),
        "init" => svc.init = Some(boolean(key, v)?),
        "tty" => svc.tty = boolean(key, v)?,
        "stdin_open" => svc.stdin_open = boolean(key, v)?,
        "privileged" => svc.privileged = boolean(key, v)?,
        "read_only" => svc.read_only = boolean(key, v)?,
        "platform" => svc.platform = Some(string(key, v)?),
        "stop_signal" => svc.stop_signal = Some(string(key, v)?),
        "stop_grace_period" => svc.stop_grace_period = Some(seconds(key, v)?),
        "cap_add" => svc.cap_add = string_list(key, v)?,
        "cap_drop" => svc.cap_drop = string_list(key, v)?,
        "ulimits" => svc.ulimits = ulimits(v)?,
        "profiles" => svc.profiles = string_list(key, v)?,
        "pull_policy" => svc.pull_policy = Some(string(key, v)?),
        "sysctls" => svc.sysctls = string_map(key, v)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Every item of a list field parsed by `parse`, the results flattened in order.
fn list_items<T, I: IntoIterator<Item = T>>(
    key: &str,
    v: &Value,
    mut parse: impl FnMut(&Value) -> Result<I, String>,
) -> Result<Vec<T>, FieldError> {
    let items = v
        .as_sequence()
        .map_or_else(|| err(key, "expected a list"), Ok)?;
    let mut out = Vec::new();
    for item in items {
        out.extend(parse(item).or_else(|e| err(key, e))?);
    }
    Ok(out)
}

/// A map or `KEY=VAL` list of strings (a bare `KEY` is an empty value).
fn build(v: &Value, ctx: &mut Context<'_>) -> Result<Build, FieldError> {
    let home = (ctx.lookup)("HOME");
    let context_of = |raw: &str| -> PathBuf {
        // Remote contexts (git URLs) are kept verbatim.
        if raw.contains("://") || raw.starts_with("git@") {
            PathBuf::from(raw)
        } else {
            resolve_host_path(raw, ctx.project_dir, home.as_deref())
        }
    };
    match v {
        Value::String(s) => Ok(Build {
            context: context_of(s),
            ..Build::default()
        }),
        Value::Mapping(m) => {
            let mut b = Build {
                context: context_of(m.get("context").and_then(Value::as_str).unwrap_or(".")),
                ..Build::default()
            };
            for (k, val) in m {
                match k.as_str().unwrap_or_default() {
                    "context" => {}
                    "dockerfile" => b.dockerfile = Some(string("build.dockerfile", val)?),
                    "target" => b.target = Some(string("build.target", val)?),
                    // Checked as Compose does, then ignored like other build options.
                    "shm_size" if bytes("build.shm_size", val).is_err() => {
                        let (_, m) = bytes("build.shm_size", val).unwrap_err();
                        return Err((vec!["build".into(), "shm_size".into()], m));
                    }
                    "args" => {
                        b.args = key_values("build.args", val)
                            .map_err(|(_, m)| (vec!["build".into(), "args".into()], m))?
                            .into_iter()
                            .map(|(k, v)| {
                                let v = v.or_else(|| (ctx.lookup)(&k));
                                (k, v)
                            })
                            .collect()
                    }
                    other => ctx.warnings.push(format!(
                        "build option `{other}` is not supported by compose-shard and is ignored"
                    )),
                }
            }
            Ok(b)
        }
        _ => err(
            "build",
            "expected a context path or a mapping with `context`",
        ),
    }
}

fn depends_on(v: &Value) -> Result<IndexMap<String, Dependency>, FieldError> {
    let mut out = IndexMap::new();
    let Value::Mapping(m) = v else {
        return err("depends_on", "expected a list of services or a mapping");
    };
    for (k, cond) in m {
        let name =
            scalar_string(k).map_or_else(|| err("depends_on", "expected service names"), Ok)?;
        let condition = match cond.get("condition").and_then(Value::as_str) {
            None | Some("service_started") => DependencyCondition::ServiceStarted,
            Some("service_healthy") => DependencyCondition::ServiceHealthy,
            Some("service_completed_successfully") => DependencyCondition::ServiceCompletedSuccessfully,
            Some(other) => {
                return err(
                    "depends_on",
                    format!("{name}: unknown condition {other:?} (expected service_started, service_healthy or service_completed_successfully)"),
                )
            }
        };
        let required = match cond.get("required") {
            None => true,
            Some(r) => boolean("depends_on", r)?,
        };
        out.insert(
            name,
            Dependency {
                condition,
                required,
            },
        );
    }
    Ok(out)
}

fn healthcheck(
    service: &str,
    v: &Value,
    warnings: &mut Vec<String>,
) -> Result<Healthcheck, FieldError> {
    let Value::Mapping(m) = v else {
        return err("healthcheck", "expected a mapping");
    };
    let mut h = Healthcheck::default();
    let field = |k: &str| vec!["healthcheck".to_string(), k.to_string()];
    for (k, val) in m {
        let key = k.as_str().unwrap_or_default();
        let at = |e: FieldError| (field(key), e.1);
        match key {
            "test" => {
                h.test = match val {
                    Value::String(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    Value::Null => Vec::new(),
                    other => string_list(key, other).map_err(at)?,
                }
            }
            "interval" => h.interval = Some(seconds(key, val).map_err(at)?),
            "timeout" => h.timeout = Some(seconds(key, val).map_err(at)?),
            "start_period" => h.start_period = Some(seconds(key, val).map_err(at)?),
            "start_interval" => h.start_interval = Some(seconds(key, val).map_err(at)?),
            "retries" => {
                h.retries = Some(
                    val.as_u64()
                        .or_else(|| val.as_str().and_then(|s| s.parse().ok()))
                        .map_or_else(
                            || Err((field(key), "expected a whole number".to_string())),
                            Ok,
                        )?,
                )
            }
            "disable" => {}
            other => warnings.push(format!(
                "service {service:?}: unknown key `healthcheck.{other}` is ignored"
            )),
        }
    }
    if m.get("disable")
        .map(|d| boolean("healthcheck", d))
        .transpose()?
        == Some(true)
    {
        h.test = vec!["NONE".to_string()];
    }
    Ok(h)
}

fn service_networks(v: &Value) -> Result<IndexMap<String, ServiceNetwork>, FieldError> {
    let Value::Mapping(m) = v else {
        return err("networks", "expected a list of network names or a mapping");
    };
    let mut out = IndexMap::new();
    for (k, val) in m {
        let name =
            scalar_string(k).map_or_else(|| err("networks", "expected network names"), Ok)?;
        let mut sn = ServiceNetwork::default();
        if let Value::Mapping(opts) = val {
            if let Some(a) = opts.get("aliases") {
                sn.aliases = string_list("networks", a)?;
            }
            sn.ipv4_address = opts.get("ipv4_address").and_then(scalar_string);
            if let Some(priority) = opts.get("priority") {
                integer("networks", priority)?;
            }
        }
        out.insert(name, sn);
    }
    Ok(out)
}

fn extra_hosts(v: &Value) -> Result<Vec<String>, FieldError> {
    match v {
        Value::Mapping(m) => m
            .iter()
            .map(|(k, val)| {
                let host = scalar_string(k).unwrap_or_default();
                Ok(match val {
                    Value::Sequence(ips) => ips
                        .iter()
                        .filter_map(scalar_string)
                        .map(|ip| format!("{host}:{ip}"))
                        .collect::<Vec<_>>()
                        .join(","),
                    other => format!("{host}:{}", scalar_string(other).unwrap_or_default()),
                })
            })
            .collect(),
        other => Ok(string_list("extra_hosts", other)?
            .into_iter()
            .map(|s| match s.split_once('=') {
                Some((h, ip)) => format!("{h}:{ip}"),
                None => s,
            })
            .collect()),
    }
}

fn ulimits(v: &Value) -> Result<IndexMap<String, (i64, i64)>, FieldError> {
    let Value::Mapping(m) = v else {
        return err("ulimits", "expected a mapping");
    };
    let mut out = IndexMap::new();
    for (k, val) in m {
        let name = scalar_string(k).unwrap_or_default();
        let number = |v: &Value| integer("ulimits", v).ok();
        let pair = match val {
            Value::Number(_) | Value::String(_) if number(val).is_some() => {
                let x = number(val).unwrap_or(0);
                (x, x)
            }
            Value::Mapping(sh) => {
                let get = |f: &str| sh.get(f).and_then(number);
                match (get("soft"), get("hard")) {
                    (Some(s), Some(h)) => (s, h),
                    _ => {
                        return err(
                            "ulimits",
                            format!("{name}: expected {{soft, hard}} numbers"),
                        )
                    }
                }
            }
            _ => {
                return err(
                    "ulimits",
                    format!("{name}: expected a number or {{soft, hard}}"),
                )
            }
        };
        out.insert(name, pair);
    }
    Ok(out)
}

/// `links`, `volumes_from: [service[:ro]]` and `network_mode: service:x` also order startup
/// (Compose turns them into required `service_started` dependencies).
fn add_implicit_dependencies(svc: &mut Service, volumes_from: &[String]) {
    let mut implicit: Vec<String> = svc
        .links
        .iter()
        .map(|l| l.split(':').next().unwrap_or(l).to_string())
        .collect();
    implicit.extend(
        volumes_from
            .iter()
            .filter(|v| !v.starts_with("container:"))
            .map(|v| v.split(':').next().unwrap_or(v).to_string()),
    );
    if let Some(target) = svc
        .network_mode
        .as_deref()
        .and_then(|m| m.strip_prefix("service:"))
    {
        implicit.push(target.to_string());
    }
    for name in implicit {
        svc.depends_on.entry(name).or_insert(Dependency {
            condition: DependencyCondition::ServiceStarted,
            required: true,
        });
    }
}
