//! Top-level `networks:` and `volumes:` definitions.

use serde_yaml::Value;

use super::model::{Network, Volume};
use super::values::{boolean, err, string, string_map, FieldError};

/// Canonicalise a top-level network definition.
pub(crate) fn network(
    key: &str,
    v: &Value,
    warnings: &mut Vec<String>,
) -> Result<Network, FieldError> {
    let mut n = Network::default();
    let Value::Mapping(m) = v else {
        return if v.is_null() {
            Ok(n)
        } else {
            err(key, "expected a mapping")
        };
    };
    for (k, val) in m {
        match k.as_str().unwrap_or_default() {
            "name" => n.name = Some(string("name", val)?),
            "driver" => n.driver = Some(string("driver", val)?),
            "internal" => n.internal = boolean("internal", val)?,
            "external" => n.external = external(val, &mut n.name)?,
            "labels" => n.labels = string_map("labels", val)?,
            // The engine picks addresses for each group's network; a fixed subnet would make
            // the groups' networks collide, so IP settings are not carried over.
            other => warnings.push(format!(
                "network {key:?}: `{other}` is not supported by compose-shard and is ignored"
            )),
        }
    }
    Ok(n)
}

/// Canonicalise a top-level volume definition.
pub(crate) fn volume(
    key: &str,
    v: &Value,
    warnings: &mut Vec<String>,
) -> Result<Volume, FieldError> {
    let mut vol = Volume::default();
    let Value::Mapping(m) = v else {
        return if v.is_null() {
            Ok(vol)
        } else {
            err(key, "expected a mapping")
        };
    };
    for (k, val) in m {
        match k.as_str().unwrap_or_default() {
            "name" => vol.name = Some(string("name", val)?),
            "driver" => vol.driver = Some(string("driver", val)?),
            "external" => vol.external = external(val, &mut vol.name)?,
            "driver_opts" => vol.driver_opts = string_map("driver_opts", val)?,
            "labels" => vol.labels = string_map("labels", val)?,
            other => warnings.push(format!(
                "volume {key:?}: `{other}` is not supported by compose-shard and is ignored"
            )),
        }
    }
    Ok(vol)
}

/// `external: true` or the legacy `external: {name: x}`.
fn external(v: &Value, name: &mut Option<String>) -> Result<bool, FieldError> {
    match v {
        Value::Mapping(m) => {
            if let Some(n) = m.get("name").and_then(Value::as_str) {
                *name = Some(n.to_string());
            }
            Ok(true)
        }
        other => boolean("external", other),
    }
}
