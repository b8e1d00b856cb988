//! A group's JUnit XML rebuilt from the plugin's `progress.jsonl` (one JSON object per
//! finished test: `id`, `outcome`, `seconds`, `message`), for a group whose container died
//! before pytest wrote its own report: the tests it finished keep their results, and the
//! tests it was running when it died become error testcases that name the group and the
//! cause. Names follow pytest's junitxml: `classname` is the file path with `/` as `.` and
//! without `.py`, followed by the classes; `name` is the function with its parameters.

use quick_xml::escape::escape;
use serde::Deserialize;

/// One finished test as the plugin recorded it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProgressEntry {
    /// Node id.
    pub id: String,
    /// `passed`, `failed`, `skipped` or `error`.
    pub outcome: String,
    /// Setup, call and teardown together.
    #[serde(default)]
    pub seconds: f64,
    /// The failure's text, if it failed.
    #[serde(default)]
    pub message: Option<String>,
}

/// The entries of a `progress.jsonl`; a line that is not a whole entry (the last one, cut
/// off when the container died) is skipped.
pub fn parse_progress(text: &str) -> Vec<ProgressEntry> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<ProgressEntry>(line).ok())
        .filter(|e| e.seconds.is_finite() && e.seconds >= 0.0)
        .collect()
}

/// pytest's (classname, name) for a node id.
fn junit_names(node_id: &str) -> (String, String) {
    super::node_id::mangle(node_id)
}

fn testcase(out: &mut String, node_id: &str, seconds: f64) {
    let (classname, name) = junit_names(node_id);
    out.push_str(&format!(
        "<testcase classname=\"{}\" name=\"{}\" time=\"{seconds:.3}\"",
        escape(classname.as_str()),
        escape(name.as_str())
    ));
}

fn child(out: &mut String, tag: &str, message: &str) {
    let first = message.lines().next().unwrap_or_default();
    out.push_str(&format!(
        "><{tag} message=\"{}\">{}</{tag}></testcase>\n",
        escape(first),
        escape(message)
    ));
}

/// A JUnit document for `entries` plus one error testcase per lost test (`lost`: node id and
/// the reason to give).
pub fn junit_from_progress(entries: &[ProgressEntry], lost: &[(String, String)]) -> String {
    let mut body = String::new();
    let (mut failures, mut errors, mut skipped, mut time) = (0, 0, 0, 0.0);
    for e in entries {
        time += e.seconds;
        testcase(&mut body, &e.id, e.seconds);
        let message = e.message.as_deref().unwrap_or(e.outcome.as_str());
        match e.outcome.as_str() {
            "failed" => {
                failures += 1;
                child(&mut body, "failure", message);
            }
            "error" => {
                errors += 1;
                child(&mut body, "error", message);
            }
            "skipped" => {
                skipped += 1;
                child(&mut body, "skipped", message);
            }
            _ => body.push_str(" />\n"),
        }
    }
    for (id, reason) in lost {
        errors += 1;
        testcase(&mut body, id, 0.0);
        child(&mut body, "error", reason);
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites><testsuite name=\"pytest\" errors=\"{errors}\" failures=\"{failures}\" skipped=\"{skipped}\" tests=\"{}\" time=\"{time:.3}\">\n{body}</testsuite></testsuites>\n",
        entries.len() + lost.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_pytest_junitxml() {
        assert_eq!(
            junit_names("tests/shop/test_cart.py::TestCart::test_add[2-x]"),
            (
                "tests.shop.test_cart.TestCart".into(),
                "test_add[2-x]".into()
            )
        );
        assert_eq!(
            junit_names("test_a.py::test_b"),
            ("test_a".into(), "test_b".into())
        );
    }

    #[test]
    fn parameters_holding_separators_stay_in_the_name() {
        // The rebuilt JUnit must name a test as pytest does, or the merge cannot map it back.
        assert_eq!(
            junit_names("tests/test_x.py::TestA::test_c[A::B.c]"),
            ("tests.test_x.TestA".into(), "test_c[A::B.c]".into())
        );
        assert_eq!(junit_names("README.rst"), ("".into(), "README.rst".into()));
    }

    #[test]
    fn finished_tests_keep_their_results_and_lost_ones_are_errors() {
        let text = concat!(
            "{\"id\": \"t.py::ok\", \"outcome\": \"passed\", \"seconds\": 0.5}\n",
            "{\"id\": \"t.py::bad\", \"outcome\": \"failed\", \"seconds\": 1.25, \"message\": \"call: assert 1 == <2>\"}\n",
            "{\"id\": \"t.py::cut\", \"outc"
        );
        let entries = parse_progress(text);
        assert_eq!(entries.len(), 2);
        let xml = junit_from_progress(
            &entries,
            &[(
                "t.py::T::lost".into(),
                "lost: group 2's test container died (exit 137) while running it".into(),
            )],
        );
        assert!(xml.contains("tests=\"3\""), "{xml}");
        assert!(xml.contains("failures=\"1\" skipped=\"0\""), "{xml}");
        assert!(xml.contains("errors=\"1\""), "{xml}");
        assert!(xml.contains("assert 1 == &lt;2&gt;"), "{xml}");
        assert!(xml.contains("classname=\"t.T\" name=\"lost\""), "{xml}");
        assert!(xml.contains("group 2&apos;s test container died") || xml.contains("group 2's"));
        // The merge reads it back with the same totals.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        std::fs::write(&path, &xml).unwrap();
        let group = crate::report::GroupResult {
            group: 2,
            groups: 2,
            junit: Some(path),
            coverage: None,
            missing_reason: None,
            system_err: None,
        };
        let mut out = Vec::new();
        let totals = crate::report::merge_junit(&[group], None, &mut out).unwrap();
        assert_eq!(
            (
                totals.counts.tests,
                totals.counts.failures,
                totals.counts.errors
            ),
            (3, 1, 1)
        );
    }
}
