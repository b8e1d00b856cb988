//! Matching a plan's node ids with what one group collected.
//!
//! Every group's pytest collects the suite itself, and some suites make parametrized ids at
//! collection time (`uuid4()`, `datetime.now()`, objects without a stable `repr`), so the ids a
//! group collects can differ from the ones the plan was made from. Tests are then matched by
//! what is stable: the node id without its parameter part (`file::Class::function`) and the
//! position among that function's parametrizations in collection order. Ids that match
//! exactly always win; only the rest are matched by position.

use std::collections::{HashMap, HashSet};

/// The result of matching planned ids with a group's own collection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMatch {
    /// The group's own ids for its planned tests, in the plan's order.
    pub ids: Vec<String>,
    /// Planned ids that matched a different collected id by position: (planned, collected).
    pub unstable: Vec<(String, String)>,
    /// Planned ids with no counterpart in this collection.
    pub missing: Vec<String>,
}

/// `file::Class::test[params]` -> `file::Class::test` (an id whose parameter part is not
/// closed stays whole).
fn base(id: &str) -> &str {
    let parsed = crate::node_id::NodeId::parse(id);
    match (parsed.params().is_empty(), id.ends_with(']')) {
        (false, true) => parsed.without_params(),
        _ => id,
    }
}

/// Positions of every parametrized id among its function's ids, in collection order.
fn positions(ids: &[String]) -> HashMap<&str, (&str, usize)> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = HashMap::with_capacity(ids.len());
    for id in ids {
        let b = base(id);
        let n = seen.entry(b).or_default();
        out.insert(id.as_str(), (b, *n));
        *n += 1;
    }
    out
}

/// Match `planned` (ids of the plan's reference collection, a subset of `reference`) with
/// `collected` (this group's collection).
pub fn match_ids(planned: &[String], reference: &[String], collected: &[String]) -> IdMatch {
    let own: HashSet<&str> = collected.iter().map(String::as_str).collect();
    if planned.iter().all(|id| own.contains(id.as_str())) {
        return IdMatch {
            ids: planned.to_vec(),
            ..Default::default()
        };
    }
    let reference_positions = positions(reference);
    let mut by_position: HashMap<(&str, usize), &str> = HashMap::new();
    for (id, key) in positions(collected) {
        by_position.insert(key, id);
    }
    let mut result = IdMatch::default();
    for id in planned {
        if own.contains(id.as_str()) {
            result.ids.push(id.clone());
            continue;
        }
        let found = reference_positions
            .get(id.as_str())
            .and_then(|key| by_position.get(key));
        match found {
            Some(other) => {
                result.ids.push(other.to_string());
                result.unstable.push((id.clone(), other.to_string()));
            }
            None => result.missing.push(id.clone()),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identical_collections_keep_the_plan_as_it_is() {
        let reference = ids(&["a.py::t[1]", "a.py::t[2]", "a.py::u"]);
        let m = match_ids(&ids(&["a.py::t[2]"]), &reference, &reference);
        assert_eq!(m.ids, ids(&["a.py::t[2]"]));
        assert!(m.unstable.is_empty() && m.missing.is_empty());
    }

    #[test]
    fn random_parameter_ids_match_by_position_within_their_function() {
        let reference = ids(&["a.py::t[u-1f]", "a.py::t[u-9c]", "a.py::t[u-33]", "a.py::v"]);
        let collected = ids(&["a.py::t[u-aa]", "a.py::t[u-bb]", "a.py::t[u-cc]", "a.py::v"]);
        let m = match_ids(&ids(&["a.py::t[u-9c]", "a.py::v"]), &reference, &collected);
        assert_eq!(m.ids, ids(&["a.py::t[u-bb]", "a.py::v"]));
        assert_eq!(
            m.unstable,
            vec![("a.py::t[u-9c]".to_string(), "a.py::t[u-bb]".to_string())]
        );
        assert!(m.missing.is_empty());
    }

    #[test]
    fn a_test_that_is_gone_is_missing_not_matched_to_another_function() {
        let reference = ids(&["a.py::t", "a.py::gone"]);
        let collected = ids(&["a.py::t", "a.py::other"]);
        let m = match_ids(&ids(&["a.py::gone"]), &reference, &collected);
        assert!(m.ids.is_empty());
        assert_eq!(m.missing, ids(&["a.py::gone"]));
    }

    #[test]
    fn fewer_parametrizations_leave_the_extra_ones_missing() {
        let reference = ids(&["a.py::t[x1]", "a.py::t[x2]"]);
        let collected = ids(&["a.py::t[y1]"]);
        let m = match_ids(&reference, &reference, &collected);
        assert_eq!(m.ids, ids(&["a.py::t[y1]"]));
        assert_eq!(m.missing, ids(&["a.py::t[x2]"]));
    }
}
