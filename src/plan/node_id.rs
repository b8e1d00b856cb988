//! A node id as splitting sees it: the file (module), the enclosing class if any, and the
//! unit a test belongs to for each `--split-by`. The grammar of node ids is
//! [`crate::node_id`]'s; this module adds only what `--split-by` makes of it.

pub use crate::node_id::{class_of, module_of};

use crate::config::SplitBy;

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
