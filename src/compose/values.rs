//! Reading scalar and list values of a compose file with the forms Compose accepts (numbers
//! and booleans where strings are expected, strings or lists, maps or `KEY=VAL` lists), each
//! failure naming the key.

use indexmap::IndexMap;
use serde_yaml::Value;

use super::names::parse_byte_size;
use crate::duration::parse_duration;

/// A canonicalisation error: the key path inside the service and the message.
pub(crate) type FieldError = (Vec<String>, String);

pub(crate) fn err<T>(key: &str, message: impl Into<String>) -> Result<T, FieldError> {
    Err((vec![key.to_string()], message.into()))
}

pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn string(key: &str, v: &Value) -> Result<String, FieldError> {
    scalar_string(v).map_or_else(|| err(key, "expected a string"), Ok)
}

pub(crate) fn boolean(key: &str, v: &Value) -> Result<bool, FieldError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
        _ => err(key, "expected true or false"),
    }
}

pub(crate) fn string_list(key: &str, v: &Value) -> Result<Vec<String>, FieldError> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .map(|i| scalar_string(i).map_or_else(|| err(key, "expected a list of strings"), Ok))
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => scalar_string(other)
            .map(|s| vec![s])
            .map_or_else(|| err(key, "expected a string or a list of strings"), Ok),
    }
}

/// A command line: a string split shell-style, or a list. `null` means unset.
pub(crate) fn command(key: &str, v: &Value) -> Result<Option<Vec<String>>, FieldError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => shell_words::split(s)
            .map(Some)
            .or_else(|e| err(key, format!("cannot split {s:?} into words: {e}"))),
        Value::Sequence(_) => string_list(key, v).map(Some),
        _ => err(key, "expected a string or a list of strings"),
    }
}

/// A map or `KEY=VALUE` list of strings (labels, sysctls, driver options): a key without a
/// value maps to the empty string.
pub(crate) fn string_map(key: &str, v: &Value) -> Result<IndexMap<String, String>, FieldError> {
    Ok(key_values(key, v)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// `{K: V}` or `[K=V, K]`; a null value means "from the environment".
pub(crate) fn key_values(
    key: &str,
    v: &Value,
) -> Result<Vec<(String, Option<String>)>, FieldError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Mapping(m) => m
            .iter()
            .map(|(k, val)| {
                let k = scalar_string(k).map_or_else(|| err(key, "expected string keys"), Ok)?;
                let val = match val {
                    Value::Null => None,
                    other => Some(scalar_string(other).map_or_else(
                        || err(key, format!("{k}: expected a string, number or boolean")),
                        Ok,
                    )?),
                };
                Ok((k, val))
            })
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .map(|i| {
                let s =
                    scalar_string(i).map_or_else(|| err(key, "expected KEY=VALUE strings"), Ok)?;
                Ok(match s.split_once('=') {
                    Some((k, val)) => (k.to_string(), Some(val.to_string())),
                    None => (s, None),
                })
            })
            .collect(),
        _ => err(key, "expected a mapping or a list of KEY=VALUE strings"),
    }
}

pub(crate) fn seconds(key: &str, v: &Value) -> Result<f64, FieldError> {
    let text = string(key, v)?;
    parse_duration(&text)
        .map(|d| d.as_secs_f64())
        .or_else(|e| err(key, e))
}

pub(crate) fn bytes(key: &str, v: &Value) -> Result<u64, FieldError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map_or_else(|| err(key, "expected a positive size"), Ok),
        Value::String(s) => parse_byte_size(s).or_else(|e| err(key, e)),
        _ => err(key, "expected a size like 64m or a number of bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn commands_split_shell_style() {
        assert_eq!(
            command("command", &yaml("\"sh -c 'echo $$X; ls'\"")).unwrap(),
            Some(vec!["sh".into(), "-c".into(), "echo $$X; ls".into()])
        );
        assert_eq!(
            command("command", &yaml("[a, 1, true]")).unwrap(),
            Some(vec!["a".into(), "1".into(), "true".into()])
        );
        assert_eq!(command("command", &yaml("null")).unwrap(), None);
        let e = command("command", &yaml("\"unterminated 'quote\"")).unwrap_err();
        assert_eq!(e.0, vec!["command"]);
    }

    #[test]
    fn key_values_from_maps_and_lists() {
        let pairs = |t: &str| key_values("environment", &yaml(t)).unwrap();
        let expected = vec![
            ("A".to_string(), Some("1".to_string())),
            ("B".to_string(), None),
            ("C".to_string(), Some("x=y".to_string())),
        ];
        assert_eq!(pairs("{A: 1, B: null, C: x=y}"), expected);
        assert_eq!(pairs("[A=1, B, C=x=y]"), expected);
        assert!(key_values("environment", &yaml("just a string")).is_err());
        assert!(key_values("environment", &yaml("{A: [1]}")).is_err());
    }

    #[test]
    fn scalars_booleans_sizes_durations() {
        assert_eq!(string("user", &yaml("1000")).unwrap(), "1000");
        assert!(string("user", &yaml("[a]")).is_err());
        assert!(boolean("init", &yaml("true")).unwrap());
        assert_eq!(
            boolean("init", &yaml("maybe")).unwrap_err().1,
            "expected true or false"
        );
        assert_eq!(string_list("tmpfs", &yaml("/run")).unwrap(), vec!["/run"]);
        assert_eq!(bytes("shm_size", &yaml("2g")).unwrap(), 2 << 30);
        assert_eq!(bytes("shm_size", &yaml("1024")).unwrap(), 1024);
        assert_eq!(seconds("interval", &yaml("1m30s")).unwrap(), 90.0);
        assert!(seconds("interval", &yaml("soon")).is_err());
    }
}
