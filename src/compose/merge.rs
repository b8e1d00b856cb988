//! Merging service definitions: several `-f` files in order, and `extends`.
//!
//! Rules (Compose specification, "Merge and override"): mappings merge key by key (so
//! `environment`, `labels`, `build.args`, `depends_on`, `networks` in list form are first
//! turned into mappings); `command`, `entrypoint` and `healthcheck.test` are replaced; `volumes`
//! merge by container path; other lists (`ports`, `expose`, `env_file`, `links`...) append
//! without duplicates; scalars are replaced. A value tagged `!reset` removes the key, one
//! tagged `!override` replaces it without merging; on a whole service (`nginx: !reset`,
//! `web: !override {...}`) the same holds for the service.

use serde_yaml::{Mapping, Value};

/// Keys whose list form is turned into a mapping before merging.
const LIST_OR_MAP: &[&str] = &["environment", "labels", "sysctls"];

/// Turn the short forms of mergeable fields into mappings so that merging is by key. A
/// `!reset`/`!override` tag on the field is kept around the normalised value.
pub(crate) fn normalize_service(service: &mut Mapping) {
    for key in LIST_OR_MAP {
        if let Some(v) = service.get_mut(*key) {
            list_to_map(v);
        }
    }
    if let Some(build) = service.get_mut("build").map(untag_mut) {
        if let Value::String(ctx) = build {
            let mut m = Mapping::new();
            m.insert("context".into(), Value::String(ctx.clone()));
            *build = Value::Mapping(m);
        }
        if let Some(args) = build.get_mut("args") {
            list_to_map(args);
        }
    }
    if let Some(deps) = service.get_mut("depends_on").map(untag_mut) {
        if let Value::Sequence(list) = deps {
            let mut m = Mapping::new();
            for d in list.iter() {
                let mut cond = Mapping::new();
                cond.insert("condition".into(), "service_started".into());
                m.insert(d.clone(), Value::Mapping(cond));
            }
            *deps = Value::Mapping(m);
        }
    }
    if let Some(nets) = service.get_mut("networks").map(untag_mut) {
        if let Value::Sequence(list) = nets {
            let m: Mapping = list.iter().map(|n| (n.clone(), Value::Null)).collect();
            *nets = Value::Mapping(m);
        }
    }
    if let Some(files) = service.get_mut("env_file").map(untag_mut) {
        if let Value::String(s) = files {
            *files = Value::Sequence(vec![Value::String(s.clone())]);
        }
    }
}

fn untag_mut(v: &mut Value) -> &mut Value {
    match v {
        Value::Tagged(t) => &mut t.value,
        other => other,
    }
}

fn untag_ref(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

/// `["A=1", "B"]` -> `{A: "1", B: null}`; mappings and other values are left alone.
fn list_to_map(value: &mut Value) {
    let target = match value {
        Value::Tagged(t) => &mut t.value,
        other => other,
    };
    if let Value::Sequence(items) = target {
        let mut m = Mapping::new();
        for item in items.iter() {
            match item.as_str() {
                Some(s) => match s.split_once('=') {
                    Some((k, v)) => m.insert(k.into(), v.into()),
                    None => m.insert(s.into(), Value::Null),
                },
                None => return,
            };
        }
        *target = Value::Mapping(m);
    }
}

fn tag_of(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(t) => Some(t.tag.to_string().trim_start_matches('!').to_string()),
        _ => None,
    }
}

/// `!reset` removes `key` from `target` and `!override` replaces it with the untagged value;
/// `true` when `value` carried either tag (there is nothing left to merge).
fn apply_tag(target: &mut Mapping, key: &Value, value: &Value) -> bool {
    match tag_of(value).as_deref() {
        Some("reset") => {
            target.remove(key);
            true
        }
        Some("override") => {
            target.insert(key.clone(), untag_ref(value).clone());
            true
        }
        _ => false,
    }
}

/// Merge `over` into `base` (both service mappings, already normalised).
pub(crate) fn merge_service(base: &mut Mapping, over: &Mapping) {
    for (key, value) in over {
        let name = key.as_str().unwrap_or_default();
        if apply_tag(base, key, value) {
            continue;
        }
        let merged = match (base.get(key), value) {
            (Some(old), new) => merge_field(name, old, new),
            (None, new) => new.clone(),
        };
        base.insert(key.clone(), merged);
    }
}

fn merge_field(name: &str, old: &Value, new: &Value) -> Value {
    match (name, old, new) {
        ("command" | "entrypoint", _, _) => new.clone(),
        ("volumes", Value::Sequence(a), Value::Sequence(b)) => {
            let mut out: Vec<Value> = a.clone();
            for item in b {
                let t = mount_target(item);
                match out.iter().position(|o| t.is_some() && mount_target(o) == t) {
                    Some(i) => out[i] = item.clone(),
                    None => out.push(item.clone()),
                }
            }
            Value::Sequence(out)
        }
        (_, Value::Sequence(a), Value::Sequence(b)) => {
            let mut out = a.clone();
            for item in b {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Value::Sequence(out)
        }
        (_, Value::Mapping(a), Value::Mapping(b)) => Value::Mapping(merge_mapping(a, b)),
        _ => new.clone(),
    }
}

/// Nested mappings (build, healthcheck, depends_on entries...): merge keys, replace lists.
fn merge_mapping(a: &Mapping, b: &Mapping) -> Mapping {
    let mut out = a.clone();
    for (k, v) in b {
        if apply_tag(&mut out, k, v) {
            continue;
        }
        let merged = match (out.get(k), v) {
            (Some(Value::Mapping(x)), Value::Mapping(y)) => Value::Mapping(merge_mapping(x, y)),
            _ => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    out
}

/// The container path of a `volumes` entry in short or long syntax.
pub(crate) fn mount_target(item: &Value) -> Option<String> {
    match item {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            Some(if parts.len() >= 2 { parts[1] } else { parts[0] }.to_string())
        }
        Value::Mapping(m) => m.get("target").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Merge two whole files' top-level mappings (services by name, other sections by key).
pub(crate) fn merge_top(base: &mut Mapping, over: &Mapping) {
    for (key, value) in over {
        let name = key.as_str().unwrap_or_default();
        match (name, base.get_mut(key), value) {
            ("services", Some(Value::Mapping(old)), Value::Mapping(new)) => {
                for (svc, def) in new {
                    // `web: !reset` removes the service; `!override` replaces it.
                    if apply_tag(old, svc, def) {
                        continue;
                    }
                    match (old.get_mut(svc), def) {
                        (Some(Value::Mapping(o)), Value::Mapping(n)) => merge_service(o, n),
                        _ => {
                            old.insert(svc.clone(), def.clone());
                        }
                    }
                }
            }
            (_, Some(Value::Mapping(old)), Value::Mapping(new)) => {
                let merged = merge_mapping(old, new);
                *old = merged;
            }
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Remove YAML tags left after merging (`!reset` with nothing to reset removes the key).
pub(crate) fn strip_tags(value: &mut Value) {
    match value {
        Value::Mapping(m) => {
            m.retain(|_, v| tag_of(v).as_deref() != Some("reset"));
            for (_, v) in m.iter_mut() {
                strip_tags(v);
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(strip_tags),
        Value::Tagged(t) => {
            let mut inner = std::mem::replace(&mut t.value, Value::Null);
            strip_tags(&mut inner);
            *value = inner;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(yaml: &str) -> Mapping {
        let mut m: Mapping = serde_yaml::from_str(yaml).unwrap();
        normalize_service(&mut m);
        m
    }

    fn merged(a: &str, b: &str) -> Mapping {
        let mut base = svc(a);
        merge_service(&mut base, &svc(b));
        let mut v = Value::Mapping(base);
        strip_tags(&mut v);
        match v {
            Value::Mapping(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn maps_merge_by_key_even_from_list_form() {
        let m = merged(
            "environment: [A=1, B=2]\nlabels: {x: '1'}",
            "environment: {B: '3', C: '4'}\nlabels: [y=2]",
        );
        assert_eq!(
            m["environment"],
            svc("environment: {A: '1', B: '3', C: '4'}")["environment"]
        );
        assert_eq!(m["labels"], svc("labels: {x: '1', y: '2'}")["labels"]);
    }

    #[test]
    fn command_replaces_and_ports_append() {
        let m = merged(
            "command: [a, b]\nports: ['80:80']\nexpose: ['1']",
            "command: c\nports: ['80:80', '81:81']\nexpose: ['2']",
        );
        assert_eq!(m["command"], Value::from("c"));
        assert_eq!(m["ports"], svc("p: ['80:80', '81:81']")["p"]);
        assert_eq!(m["expose"], svc("p: ['1', '2']")["p"]);
    }

    #[test]
    fn volumes_merge_by_target() {
        let m = merged(
            "volumes: ['./a:/data', 'v:/cache']",
            "volumes: ['./b:/data:ro', {type: tmpfs, target: /tmp}]",
        );
        assert_eq!(
            m["volumes"],
            svc("v: ['./b:/data:ro', 'v:/cache', {type: tmpfs, target: /tmp}]")["v"]
        );
    }

    #[test]
    fn nested_maps_merge_and_build_string_becomes_context() {
        let m = merged(
            "build: .\nhealthcheck: {test: [CMD, a], retries: 3}\ndepends_on: [db]",
            "build: {args: {X: '1'}}\nhealthcheck: {test: [CMD, b]}\ndepends_on: {cache: {condition: service_healthy}}",
        );
        assert_eq!(m["build"], svc("b: {context: ., args: {X: '1'}}")["b"]);
        assert_eq!(
            m["healthcheck"],
            svc("h: {test: [CMD, b], retries: 3}")["h"]
        );
        assert_eq!(
            m["depends_on"],
            svc("d: {db: {condition: service_started}, cache: {condition: service_healthy}}")["d"]
        );
    }

    #[test]
    fn override_tag_survives_normalisation() {
        let m = merged(
            "depends_on: [db, cache]\nnetworks: [a]",
            "depends_on: !override [db]\nnetworks: !override [b]",
        );
        assert_eq!(
            m["depends_on"],
            svc("d: {db: {condition: service_started}}")["d"]
        );
        assert_eq!(m["networks"], svc("n: {b: null}")["n"]);
    }

    #[test]
    fn reset_and_override_tags() {
        let m = merged(
            "ports: ['80:80']\nenvironment: {A: '1', B: '2'}\nimage: x",
            "ports: !reset []\nenvironment: !override {C: '3'}",
        );
        assert!(m.get("ports").is_none());
        assert_eq!(m["environment"], svc("e: {C: '3'}")["e"]);
        assert_eq!(m["image"], Value::from("x"));
    }
}
