//! The grammar of a pytest node id, in one place: `file::Class::...::function[params]`.
//!
//! The file path never contains `::`, and Python class and function names never contain `[`,
//! so the parameter part starts at the first `[` after the file path; everything from there on
//! is opaque (it may hold `::`, brackets, spaces and unicode) and never splits names. An id
//! without `::` (a doctest file, a non-Python item) is all file. `plan` (a test's file, class
//! and split unit) and `report` (JUnit's `classname` and `name`) read node ids through this
//! module only; it needs nothing else, so both depend on it and data still flows one way.

/// A node id split by the grammar above, borrowing from the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeId<'a> {
    id: &'a str,
    /// Where the file ends (the first `::`, or the end).
    file_end: usize,
    /// Where the parameter part starts (its `[`, or the end).
    params_start: usize,
}

impl<'a> NodeId<'a> {
    /// Split `id`; every string is a node id (of a file, at least).
    pub fn parse(id: &'a str) -> NodeId<'a> {
        let Some(file_end) = id.find("::") else {
            return NodeId {
                id,
                file_end: id.len(),
                params_start: id.len(),
            };
        };
        let names_start = file_end + 2;
        let params_start = id[names_start..]
            .find('[')
            .map_or(id.len(), |i| names_start + i);
        NodeId {
            id,
            file_end,
            params_start,
        }
    }

    /// The whole id.
    pub fn as_str(&self) -> &'a str {
        self.id
    }

    /// The file (`tests/test_x.py` of `tests/test_x.py::TestA::test_b[p::q]`).
    pub fn file(&self) -> &'a str {
        &self.id[..self.file_end]
    }

    /// The names after the file, outermost class first, the function last (`TestA`,
    /// `test_b`); none for an id without `::`.
    pub fn names(&self) -> impl Iterator<Item = &'a str> {
        let names =
            (self.file_end < self.id.len()).then(|| &self.id[self.file_end + 2..self.params_start]);
        names.into_iter().flat_map(|n| n.split("::"))
    }

    /// The parameter part with its brackets (`[p::q]`), empty when there is none.
    pub fn params(&self) -> &'a str {
        &self.id[self.params_start..]
    }

    /// The id without its parameter part (`tests/test_x.py::TestA::test_b`).
    pub fn without_params(&self) -> &'a str {
        &self.id[..self.params_start]
    }

    /// The innermost class as a node id prefix (`tests/test_x.py::TestA`), `None` for a
    /// module-level test.
    pub fn class(&self) -> Option<&'a str> {
        let names_start = (self.file_end < self.id.len()).then_some(self.file_end + 2)?;
        // The last `::` among the names separates the class path from the test name.
        let last_sep = self.id[names_start..self.params_start].rfind("::")?;
        Some(&self.id[..names_start + last_sep])
    }
}

/// The file part of a node id (`tests/test_x.py` in `tests/test_x.py::TestA::test_b`); the
/// whole id when it has no `::`.
pub fn module_of(node_id: &str) -> &str {
    NodeId::parse(node_id).file()
}

/// The class a test belongs to, as a node id prefix (`tests/test_x.py::TestA` for
/// `tests/test_x.py::TestA::test_b[p::q]`), or `None` for a module-level test. Nested classes
/// give the innermost class (`f.py::Outer::Inner`), since each class has its own
/// `setUpClass`.
pub fn class_of(node_id: &str) -> Option<&str> {
    NodeId::parse(node_id).class()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(id: &str) -> (&str, Vec<&str>, &str, &str) {
        let n = NodeId::parse(id);
        (
            n.file(),
            n.names().collect(),
            n.params(),
            n.without_params(),
        )
    }

    #[test]
    fn splits_file_names_and_opaque_parameters() {
        assert_eq!(
            parts("tests/test_x.py::TestA::test_b[p::q]"),
            (
                "tests/test_x.py",
                vec!["TestA", "test_b"],
                "[p::q]",
                "tests/test_x.py::TestA::test_b"
            )
        );
        assert_eq!(
            parts("t.py::Outer::Inner::test[x[y]::z]"),
            (
                "t.py",
                vec!["Outer", "Inner", "test"],
                "[x[y]::z]",
                "t.py::Outer::Inner::test"
            )
        );
        assert_eq!(
            parts("t.py::test["),
            ("t.py", vec!["test"], "[", "t.py::test")
        );
        // A `[` in the file path is part of the file.
        assert_eq!(
            parts("tests/[v2]/t.py::test_a[1]"),
            (
                "tests/[v2]/t.py",
                vec!["test_a"],
                "[1]",
                "tests/[v2]/t.py::test_a"
            )
        );
        assert_eq!(
            parts("README.rst"),
            ("README.rst", vec![], "", "README.rst")
        );
        assert_eq!(parts("t.py::"), ("t.py", vec![""], "", "t.py::"));
        let id = NodeId::parse("d/t.py::T::f[a b]");
        assert_eq!(id.as_str(), "d/t.py::T::f[a b]");
        assert_eq!(id.class(), Some("d/t.py::T"));
        assert_eq!(NodeId::parse("d/t.py::f[T::g]").class(), None);
    }
}
