//! Reading test lists: real `pytest --collect-only` output of pytest 7, 8 and 9 (the files in
//! tests/fixtures/collect, made by ci/bench.d/make-collect-fixtures from the projects beside
//! them), and hand-written shapes that real runs produce less reliably.

use std::path::PathBuf;

use compose_shard::plan::{parse_collect_output, parse_test_list};

const VERSIONS: [u32; 3] = [7, 8, 9];

/// The ids of tests/fixtures/collect/project, as pytest prints them (it escapes non-ASCII
/// characters and tabs inside parameter ids, not in paths).
const PROJECT_IDS: [&str; 14] = [
    "tests/sub/test_ünicode.py::test_ids[id with space::x]",
    "tests/sub/test_ünicode.py::test_ids[\\xe9]",
    "tests/test_shapes.py::test_plain",
    "tests/test_shapes.py::test_params[a::b]",
    "tests/test_shapes.py::test_params[x y]",
    "tests/test_shapes.py::test_params[[z]]",
    "tests/test_shapes.py::test_params[\\xfc]",
    "tests/test_shapes.py::test_params[tab\\there]",
    "tests/test_shapes.py::test_with_unknown_mark",
    "tests/test_shapes.py::TestGroup::test_one",
    "tests/test_shapes.py::TestGroup::test_two[1]",
    "tests/test_shapes.py::TestGroup::test_two[2]",
    "tests/test_shapes.py::TestGroup::TestNested::test_inner",
    "tests/test_shapes.py::DjangoLike::test_a",
];

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/collect")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn expected(except: &[&str]) -> Vec<String> {
    sorted(
        PROJECT_IDS
            .iter()
            .filter(|id| !except.contains(id))
            .map(|s| s.to_string())
            .collect(),
    )
}

#[test]
fn quiet_output_of_every_pytest_version_gives_the_ids_in_printed_order() {
    for v in VERSIONS {
        let text = fixture(&format!("pytest{v}-q.txt"));
        let ids = parse_collect_output(&text).unwrap();
        assert_eq!(sorted(ids.clone()), expected(&[]), "pytest {v}");
        // Printed order is kept: it is the order tests run in inside a group.
        let printed: Vec<&str> = text
            .lines()
            .filter(|l| ids.iter().any(|i| i == l))
            .collect();
        assert_eq!(ids, printed, "pytest {v}");
        assert_eq!(parse_test_list(&text), ids);
    }
}

#[test]
fn deselected_summary_and_colours_are_handled() {
    for v in VERSIONS {
        let ids = parse_collect_output(&fixture(&format!("pytest{v}-q-deselected.txt"))).unwrap();
        assert_eq!(
            sorted(ids),
            expected(&["tests/test_shapes.py::test_plain"]),
            "pytest {v}"
        );
        let ids = parse_collect_output(&fixture(&format!("pytest{v}-q-color.txt"))).unwrap();
        assert_eq!(sorted(ids), expected(&[]), "pytest {v} --color=yes");
    }
}

#[test]
fn tree_output_is_rejected_with_advice_to_use_q() {
    for v in VERSIONS {
        let text = fixture(&format!("pytest{v}-tree.txt"));
        let err = parse_collect_output(&text).unwrap_err();
        assert!(err.message.contains("tree output"), "pytest {v}: {err}");
        assert!(
            err.message.contains("--collect-only -q"),
            "pytest {v}: {err}"
        );
        let first_tree_line = text.lines().position(|l| l.starts_with('<')).unwrap() + 1;
        assert_eq!(err.line, first_tree_line, "pytest {v}");
        assert!(parse_test_list(&text).is_empty());
    }
}

#[test]
fn per_file_counts_of_qq_are_rejected() {
    for v in VERSIONS {
        let err = parse_collect_output(&fixture(&format!("pytest{v}-qq.txt"))).unwrap_err();
        assert!(err.message.contains("-qq"), "pytest {v}: {err}");
        assert_eq!(err.line, 1);
    }
}

#[test]
fn collection_errors_are_rejected_since_tests_would_be_missing() {
    for v in VERSIONS {
        let text = fixture(&format!("pytest{v}-q-error.txt"));
        let err = parse_collect_output(&text).unwrap_err();
        assert!(
            err.message.contains("errors during collection"),
            "pytest {v}: {err}"
        );
        assert!(
            err.message.contains("tests/test_broken.py"),
            "pytest {v}: {err}"
        );
        // The lenient reader still finds the one test that was collected.
        assert_eq!(parse_test_list(&text), vec!["tests/test_ok.py::test_fine"]);
    }
}

#[test]
fn hand_written_shapes() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("empty input", "", &[]),
        ("nothing collected", "\nno tests collected in 0.01s\n", &[]),
        ("old summary", "no tests ran in 0.01s\n", &[]),
        (
            "one per line, CRLF, blank lines and trailing spaces",
            "a.py::t1\r\n\r\na.py::C::t2[x y]  \r\n",
            &["a.py::t1", "a.py::C::t2[x y]"],
        ),
        (
            "duplicates kept once, first position",
            "b.py::t\na.py::t\nb.py::t\n",
            &["b.py::t", "a.py::t"],
        ),
        (
            "pytest 6 style decorated summary",
            "a.py::t\n\n========== 1 test collected in 0.02s ==========\n",
            &["a.py::t"],
        ),
        (
            "warnings summary naming a test id is not counted again",
            "a.py::t1\na.py::t2\n\n===== warnings summary =====\na.py::t1\n  /x/a.py:3: DeprecationWarning: old\n\n-- Docs: https://docs.pytest.org/\n2 tests collected in 0.1s\n",
            &["a.py::t1", "a.py::t2"],
        ),
        (
            "non-python items and doctests",
            "README.rst::README.rst\ndata/cases.yaml::suite::case one\n",
            &["README.rst::README.rst", "data/cases.yaml::suite::case one"],
        ),
        (
            "plugin chatter without :: is skipped",
            "Using --randomly-seed=1234\na.py::t\n",
            &["a.py::t"],
        ),
    ];
    for (what, text, ids) in cases {
        let got = parse_collect_output(text).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, *ids, "{what}");
    }
}

#[test]
fn ids_that_mention_collection_errors_are_tests() {
    let text = "a.py::test_x[ERROR collecting during collection]\n1 test collected in 0.1s\n";
    assert_eq!(
        parse_collect_output(text).unwrap(),
        vec!["a.py::test_x[ERROR collecting during collection]"]
    );
}
