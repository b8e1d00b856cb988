//! pytest-split's `.test_durations` file: a JSON object `{node_id: seconds}` with sorted keys
//! and 4-space indentation. Read, updated and written byte-compatibly with pytest-split, so a
//! project can switch between the two tools without losing its history. Pure: reading and
//! writing the file is the durations store's (`src/durations_store.rs`).

use std::collections::{BTreeMap, HashSet};

use crate::duration::{is_plausible_seconds, MAX_TEST_SECONDS};

/// Recorded test durations in seconds, keyed by pytest node id (sorted, so output is stable).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Durations(pub BTreeMap<String, f64>);

/// A durations file that is not pytest-split's format.
#[derive(Debug, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct DurationsFormatError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

/// What a collection can say about which recorded tests no longer exist: a test it did not
/// collect is gone only if the collection covered where the test was. A run of one file or
/// of `-k expr` says nothing about the others (pytest-split, too, keeps every entry unless
/// told to clean them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruning {
    /// The node ids collected.
    pub collected: HashSet<String>,
    /// The paths (files or folders, relative to the root, `/`-separated) the collection
    /// covered whole; empty when it covered the whole suite.
    pub under: Vec<String>,
}

impl Pruning {
    /// A collection of the whole suite.
    pub fn whole(collected: HashSet<String>) -> Pruning {
        Pruning {
            collected,
            under: Vec::new(),
        }
    }

    /// Whether the entry of `id` goes: not collected, and where the collection looked.
    pub fn drops(&self, id: &str) -> bool {
        !self.collected.contains(id)
            && (self.under.is_empty() || self.under.iter().any(|p| is_within(id, p)))
    }
}

/// Whether node id `id` names a test in the file or folder `path`.
fn is_within(id: &str, path: &str) -> bool {
    id.strip_prefix(path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with("::"))
}

impl Durations {
    /// Parse pytest-split's JSON. Negative, non-finite or implausibly large values are rejected; an empty file is
    /// an empty set of durations (what a fresh `touch .test_durations` gives).
    pub fn parse(text: &str) -> Result<Self, DurationsFormatError> {
        if text.trim().is_empty() {
            return Ok(Durations::default());
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| DurationsFormatError {
                line: e.line(),
                column: e.column(),
                message: format!("{e} (expected a JSON object of \"node id\": seconds)"),
            })?;
        let object = value.as_object().ok_or_else(|| DurationsFormatError {
            line: 1,
            column: 1,
            message: "expected a JSON object mapping pytest node ids to seconds".into(),
        })?;
        let mut map = BTreeMap::new();
        for (id, seconds) in object {
            let secs = seconds.as_f64().filter(|s| is_plausible_seconds(*s));
            match secs {
                Some(s) => {
                    map.insert(id.clone(), s);
                }
                None => {
                    let line = locate_key(text, id);
                    return Err(DurationsFormatError {
                        line,
                        column: 1,
                        message: format!(
                            "duration of {id:?} is {seconds}, expected a number of seconds from 0 to {MAX_TEST_SECONDS}"
                        ),
                    });
                }
            }
        }
        Ok(Durations(map))
    }

    /// Serialize exactly as pytest-split does (`json.dump(..., sort_keys=True, indent=4)`).
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (id, secs)) in self.0.iter().enumerate() {
            out.push_str(if i == 0 { "\n    " } else { ",\n    " });
            out.push_str(&serde_json::to_string(id).expect("strings always serialize"));
            out.push_str(": ");
            out.push_str(&python_float(*secs));
        }
        if !self.0.is_empty() {
            out.push('\n');
        }
        out.push('}');
        out
    }

    /// Merge newly measured durations: measured tests take their new time, tests that were
    /// not measured keep their old entry, and when `pruning` is given, entries for tests
    /// that no longer exist are dropped (see [`Pruning`]).
    pub fn update<I>(&mut self, measured: I, pruning: Option<&Pruning>)
    where
        I: IntoIterator<Item = (String, f64)>,
    {
        for (id, secs) in measured {
            if is_plausible_seconds(secs) {
                self.0.insert(id, secs);
            }
        }
        if let Some(pruning) = pruning {
            self.0.retain(|id, _| !pruning.drops(id));
        }
    }

    /// The recorded duration of a test, if any.
    pub fn get(&self, node_id: &str) -> Option<f64> {
        self.0.get(node_id).copied()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Format a float the way Python's `repr` does for the values durations take (shortest
/// round-trip representation, always with a decimal point or exponent).
fn python_float(x: f64) -> String {
    let s = format!("{x:?}");
    // Rust's Debug is shortest round-trip too; Python writes 1e-05 where Rust writes 1e-5.
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("+", exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

fn locate_key(text: &str, id: &str) -> usize {
    let needle = serde_json::to_string(id).unwrap_or_default();
    text.find(&needle)
        .map(|pos| text[..pos].matches('\n').count() + 1)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_pytest_split_layout() {
        let text = "{\n    \"a.py::t\": 0.5,\n    \"b.py::C::t[x y]\": 1.25e-05\n}";
        let d = Durations::parse(text).unwrap();
        assert_eq!(d.get("b.py::C::t[x y]"), Some(1.25e-05));
        assert_eq!(d.to_json(), text);
    }

    #[test]
    fn python_float_formatting() {
        assert_eq!(python_float(2.0), "2.0");
        assert_eq!(python_float(0.1), "0.1");
        assert_eq!(python_float(1e-5), "1e-05");
        assert_eq!(python_float(1.5e20), "1.5e+20");
    }

    #[test]
    fn empty_file_and_empty_object() {
        assert!(Durations::parse("").unwrap().is_empty());
        assert_eq!(Durations::default().to_json(), "{}");
    }

    #[test]
    fn rejects_non_object_and_negative_with_location() {
        let err = Durations::parse("[1, 2]").unwrap_err();
        assert!(err.message.contains("JSON object"));
        let err = Durations::parse("{\n    \"a\": 1,\n    \"b\": -1\n}").unwrap_err();
        assert_eq!(err.line, 3);
        let err = Durations::parse("{\n  \"a\": 1,,\n}").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn update_overwrites_keeps_and_drops() {
        let mut d = Durations::parse(r#"{"a": 1.0, "b": 2.0, "gone": 3.0}"#).unwrap();
        let exists: HashSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        d.update(
            vec![("a".into(), 5.0), ("c".into(), 0.25)],
            Some(&Pruning::whole(exists)),
        );
        assert_eq!(d.get("a"), Some(5.0));
        assert_eq!(d.get("b"), Some(2.0));
        assert_eq!(d.get("c"), Some(0.25));
        assert_eq!(d.get("gone"), None);
    }

    #[test]
    fn a_collection_of_some_paths_drops_only_what_it_covered() {
        let mut d = Durations::parse(
            r#"{"tests/test_cache.py::gone": 1.0, "tests/test_cache.py::get": 1.0,
                "tests/test_cache2.py::x": 1.0, "tests/api/test_a.py::old": 1.0,
                "tests/api::odd": 1.0, "tests/test_models.py::m": 1.0}"#,
        )
        .unwrap();
        let pruning = Pruning {
            collected: ["tests/test_cache.py::get".to_string()]
                .into_iter()
                .collect(),
            under: vec!["tests/test_cache.py".into(), "tests/api".into()],
        };
        d.update(
            vec![("tests/test_cache.py::get".into(), 0.5)],
            Some(&pruning),
        );
        let kept: Vec<&str> = d.0.keys().map(String::as_str).collect();
        assert_eq!(
            kept,
            [
                "tests/test_cache.py::get",
                "tests/test_cache2.py::x",
                "tests/test_models.py::m"
            ]
        );
        assert_eq!(d.get("tests/test_cache.py::get"), Some(0.5));
    }
}
