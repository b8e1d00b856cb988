//! Mapping JUnit testcases back to pytest node ids (the node id grammar itself is
//! [`crate::node_id`]'s).
//!
//! pytest writes `classname` and `name` by "mangling" the node id: the file path loses `.py`
//! and its `/` become `.`, `::` separators become `.`, and the parameter part `[...]` stays in
//! `name`. That is not reversible in general: from `a.b.C` alone one cannot tell whether `b` is
//! a directory or a module, or `C` a module or a class. So, in order of preference:
//!
//! 1. when the collected node ids are known, mangle each of them the same way and look the
//!    testcase up (exact);
//! 2. when the testcase has a `file` attribute (`junit_family=xunit1`), the module path is
//!    known and only the part of `classname` after it is split into classes;
//! 3. otherwise, trailing `classname` segments that start with an upper-case letter are taken
//!    as classes (PEP 8 class names) and the rest as the module path: wrong for modules named
//!    in CapWords and for directories whose names contain dots.

use std::collections::HashMap;

use crate::node_id::NodeId;

/// A file path as pytest writes it in `classname`: `/` become `.`, a `.py` suffix goes.
fn dotted(path: &str) -> String {
    let dotted = path.replace('/', ".");
    match dotted.strip_suffix(".py") {
        Some(stripped) => stripped.to_string(),
        None => dotted,
    }
}

/// `(classname, name)` as pytest writes them for a node id (`mangle_test_address`): the
/// dotted file and the classes, then the function with its parameters. Old pytest versions'
/// `()` instance nodes are left out.
pub fn mangle(node_id: &str) -> (String, String) {
    let id = NodeId::parse(node_id);
    if let Some(cut) = id.file().find('[') {
        // pytest cuts the id at its first `[` anywhere, so with a `[` in the file path the
        // whole id is one name: the part before the `[` dotted, the rest as it is.
        return (
            String::new(),
            format!("{}{}", dotted(&node_id[..cut]), &node_id[cut..]),
        );
    }
    let mut names: Vec<&str> = std::iter::once(id.file())
        .chain(id.names())
        .filter(|n| *n != "()")
        .collect();
    let name = format!("{}{}", names.pop().unwrap_or(""), id.params());
    let mut parts: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    if let Some(first) = parts.first_mut() {
        *first = dotted(first);
    }
    (parts.join("."), name)
}

/// Index of collected node ids by their mangled `(classname, name)`.
#[derive(Debug, Default)]
pub struct NodeIdIndex {
    by_mangled: HashMap<(String, String), String>,
}

impl NodeIdIndex {
    /// Build the index from the collected node ids.
    pub fn new(node_ids: &[String]) -> Self {
        let by_mangled = node_ids.iter().map(|id| (mangle(id), id.clone())).collect();
        NodeIdIndex { by_mangled }
    }

    /// The node id of a testcase: exact when it was collected, reconstructed otherwise.
    pub fn resolve(&self, classname: &str, name: &str, file: Option<&str>) -> String {
        if !self.by_mangled.is_empty() {
            let key = (classname.to_string(), name.to_string());
            if let Some(id) = self.by_mangled.get(&key) {
                return id.clone();
            }
        }
        reconstruct(classname, name, file)
    }
}

/// Best-effort node id from a testcase's attributes alone (see the module docs).
pub fn reconstruct(classname: &str, name: &str, file: Option<&str>) -> String {
    if classname.is_empty() {
        return name.to_string();
    }
    if let Some(file) = file.filter(|f| !f.is_empty()) {
        let file = file.replace('\\', "/");
        let module = file.strip_suffix(".py").unwrap_or(&file).replace('/', ".");
        if classname == module {
            return format!("{file}::{name}");
        }
        if let Some(rest) = classname.strip_prefix(&format!("{module}.")) {
            return format!("{file}::{}::{name}", rest.replace('.', "::"));
        }
        return format!("{file}::{name}");
    }
    // Classes are the trailing segments that start with an upper-case letter; at least the
    // first segment is module path. Byte-wise: `.` and ASCII letters never occur inside a
    // multi-byte UTF-8 sequence.
    let bytes = classname.as_bytes();
    let mut module_end = bytes.len();
    while let Some(dot) = bytes[..module_end].iter().rposition(|&b| b == b'.') {
        if bytes.get(dot + 1).is_some_and(u8::is_ascii_uppercase) {
            module_end = dot;
        } else {
            break;
        }
    }
    let (module, classes) = classname.split_at(module_end);
    let mut id = String::with_capacity(classname.len() + name.len() + 8);
    for (i, part) in module.split('.').enumerate() {
        if i > 0 {
            id.push('/');
        }
        id.push_str(part);
    }
    id.push_str(".py");
    for class in classes.split('.').filter(|c| !c.is_empty()) {
        id.push_str("::");
        id.push_str(class);
    }
    id.push_str("::");
    id.push_str(name);
    id
}

/// The file part of a node id (`tests/test_x.py` of `tests/test_x.py::T::t[a::b]`).
pub fn node_file(node_id: &str) -> &str {
    crate::node_id::module_of(node_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mangles_like_pytest() {
        assert_eq!(
            mangle("tests/test_x.py::TestA::test_b[p::q.r]"),
            ("tests.test_x.TestA".into(), "test_b[p::q.r]".into())
        );
        assert_eq!(
            mangle("test_y.py::test_c"),
            ("test_y".into(), "test_c".into())
        );
        assert_eq!(
            mangle("t.py::TestA::()::test_d"),
            ("t.TestA".into(), "test_d".into())
        );
    }

    #[test]
    fn a_bracket_in_the_file_path_is_cut_where_pytest_cuts_it() {
        // pytest's `mangle_test_address` partitions at the first `[` of the whole id.
        assert_eq!(
            mangle("tests/[v2]/t.py::T::f[1]"),
            (String::new(), "tests.[v2]/t.py::T::f[1]".into())
        );
        let ids = vec!["tests/[v2]/t.py::T::f[1]".to_string()];
        let index = NodeIdIndex::new(&ids);
        assert_eq!(index.resolve("", "tests.[v2]/t.py::T::f[1]", None), ids[0]);
    }

    #[test]
    fn index_resolves_ambiguous_packages_exactly() {
        // `tests.Models.test_m` could be a class `Models`; the collection says it is a module.
        let ids = vec!["tests/Models/test_m.py::test_z".to_string()];
        let index = NodeIdIndex::new(&ids);
        assert_eq!(
            index.resolve("tests.Models.test_m", "test_z", None),
            "tests/Models/test_m.py::test_z"
        );
    }

    #[test]
    fn reconstructs_with_file_attribute() {
        assert_eq!(
            reconstruct(
                "tests.test_x.TestA.Inner",
                "test_b[1]",
                Some("tests/test_x.py")
            ),
            "tests/test_x.py::TestA::Inner::test_b[1]"
        );
        assert_eq!(
            reconstruct("tests.test_x", "test_b", Some("tests/test_x.py")),
            "tests/test_x.py::test_b"
        );
    }

    #[test]
    fn reconstructs_by_class_name_convention_without_file() {
        assert_eq!(
            reconstruct("tests.test_x.TestA", "test_b[p]", None),
            "tests/test_x.py::TestA::test_b[p]"
        );
        assert_eq!(
            reconstruct("tests.sub.test_y", "test_c", None),
            "tests/sub/test_y.py::test_c"
        );
        assert_eq!(reconstruct("", "doctest", None), "doctest");
    }

    #[test]
    fn node_file_ignores_parameters() {
        assert_eq!(node_file("a/b.py::T::t[x::y]"), "a/b.py");
    }
}
