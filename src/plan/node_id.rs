//! The structure of a pytest node id, as far as splitting needs it: the file (module), the
//! enclosing class if any, and the unit a test belongs to for each `--split-by`.
//!
//! A node id is `path::Name::...::test[params]`. The file path never contains `::`, and Python
//! class and function names never contain `[`, so the parameter part starts at the first `[`
//! after the file path; everything from there on is opaque (it may hold `::`, brackets,
//! spaces and unicode) and never splits names.

use crate::config::SplitBy;

/// The file part of a node id (`tests/test_x.py` in `tests/test_x.py::TestA::test_b`); the
/// whole id when it has no `::`.
pub fn module_of(node_id: &str) -> &str {
    match node_id.find("::") {
        Some(end) => &node_id[..end],
        None => node_id,
    }
}

/// The class a test belongs to, as a node id prefix (`tests/test_x.py::TestA` for
/// `tests/test_x.py::TestA::test_b[p::q]`), or `None` for a module-level test. Nested classes
/// give the innermost class (`f.py::Outer::Inner`), since each class has its own
/// `setUpClass`.
pub fn class_of(node_id: &str) -> Option<&str> {
    let module_end = node_id.find("::")?;
    let names_start = module_end + 2;
    let names_end = node_id[names_start..]
        .find('[')
        .map_or(node_id.len(), |i| names_start + i);
    // The last `::` among the names separates the class path from the test name.
    let last_sep = node_id[names_start..names_end].rfind("::")?;
    Some(&node_id[..names_start + last_sep])
}

/// The unit that must stay in one group: the test itself, its class (module-level tests are
/// their own unit), or its file.
pub fn unit_of(node_id: &str, split_by: SplitBy) -> &str {
    match split_by {
        SplitBy::Test => node_id,
        SplitBy::Class => class_of(node_id).unwrap_or(node_id),
        SplitBy::Module => module_of(node_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_file_class_and_params() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("tests/test_x.py::test_a", "tests/test_x.py", None),
            (
                "tests/test_x.py::TestA::test_b[p::q]",
                "tests/test_x.py",
                Some("tests/test_x.py::TestA"),
            ),
            ("tests/test_x.py::test_c[A::B::c]", "tests/test_x.py", None),
            (
                "t.py::Outer::Inner::test[x[y]::z]",
                "t.py",
                Some("t.py::Outer::Inner"),
            ),
            (
                "dir with space/test_ü.py::TestÜ::test_é[a b]",
                "dir with space/test_ü.py",
                Some("dir with space/test_ü.py::TestÜ"),
            ),
            ("t.py::test[", "t.py", None),
            ("README.rst::README.rst", "README.rst", None),
            ("no_separator", "no_separator", None),
        ];
        for (id, module, class) in cases {
            assert_eq!(module_of(id), *module, "module of {id}");
            assert_eq!(class_of(id), *class, "class of {id}");
        }
    }

    #[test]
    fn unit_per_split_mode() {
        let id = "tests/test_x.py::TestA::test_b[p::q]";
        assert_eq!(unit_of(id, SplitBy::Test), id);
        assert_eq!(unit_of(id, SplitBy::Class), "tests/test_x.py::TestA");
        assert_eq!(unit_of(id, SplitBy::Module), "tests/test_x.py");
        let free = "tests/test_x.py::test_free[TestA::x]";
        assert_eq!(unit_of(free, SplitBy::Class), free);
    }
}
