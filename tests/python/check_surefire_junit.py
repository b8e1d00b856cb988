"""Checks a merged JUnit file the way JUnit consumers read it (junitparser) and against the
structure of Maven Surefire's report schema (surefire-test-report-3.0.xsd) for the elements
that record retries; prints one JSON object per testcase: its id, outcome and retry elements.
Exits 1 with the reason when the file breaks a rule."""
import json
import sys
import xml.etree.ElementTree as ET

from junitparser import Error, Failure, JUnitXml, Skipped

# Surefire's xs:sequence of a testcase's children.
ORDER = [
    "failure",
    "rerunFailure",
    "flakyFailure",
    "skipped",
    "error",
    "rerunError",
    "flakyError",
    "system-out",
    "system-err",
]
RUNS = {"rerunFailure", "flakyFailure", "rerunError", "flakyError"}


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def check_schema(path):
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        counts = {"tests": len(cases), "failures": 0, "errors": 0, "skipped": 0}
        for case in cases:
            names = [child.tag for child in case if child.tag in ORDER]
            positions = [ORDER.index(n) for n in names]
            if positions != sorted(positions):
                fail("%s: children out of Surefire's order: %s" % (case.get("name"), names))
            for tag in ("failure", "error", "skipped"):
                if names.count(tag) > (1 if tag != "failure" else 1):
                    fail("%s: more than one <%s>" % (case.get("name"), tag))
            for child in case:
                if child.tag in RUNS:
                    if not child.get("type"):
                        fail("%s: <%s> without type" % (case.get("name"), child.tag))
                    inner = [c.tag for c in child]
                    if not inner or inner[0] != "stackTrace":
                        fail("%s: <%s> must start with <stackTrace>" % (case.get("name"), child.tag))
                    if any(t not in ("stackTrace", "system-out", "system-err") for t in inner):
                        fail("%s: <%s> holds %s" % (case.get("name"), child.tag, inner))
            flaky = any(n.startswith("flaky") for n in names)
            rerun = any(n.startswith("rerun") for n in names)
            if flaky and ("failure" in names or "error" in names):
                fail("%s: a flaky test must pass (no failure or error)" % case.get("name"))
            if rerun and not ("failure" in names or "error" in names):
                fail("%s: rerun elements belong to a test that failed" % case.get("name"))
            counts["failures"] += "failure" in names
            counts["errors"] += "error" in names
            counts["skipped"] += "skipped" in names
        for key, value in counts.items():
            if int(suite.get(key, "-1")) != value:
                fail("suite %s: %s=%s but its testcases say %d" % (suite.get("name"), key, suite.get(key), value))


def main(path):
    check_schema(path)
    xml = JUnitXml.fromfile(path)
    root = ET.parse(path).getroot()
    elements = {}
    for case in root.iter("testcase"):
        elements[(case.get("classname"), case.get("name"))] = [c.tag for c in case]
    for suite in xml:
        for case in suite:
            if case.is_passed:
                outcome = "passed"
            elif any(isinstance(r, Failure) for r in case.result):
                outcome = "failure"
            elif any(isinstance(r, Error) for r in case.result):
                outcome = "error"
            elif any(isinstance(r, Skipped) for r in case.result):
                outcome = "skipped"
            else:
                outcome = "unknown"
            print(json.dumps({
                "classname": case.classname,
                "name": case.name,
                "outcome": outcome,
                "children": elements.get((case.classname, case.name), []),
                "system_err": case.system_err or "",
            }))


if __name__ == "__main__":
    main(sys.argv[1])
