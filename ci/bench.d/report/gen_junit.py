"""Write N pytest-style JUnit files of M testcases each (xunit2 layout, a few failures with
tracebacks, skips and captured output), as one group of a split run would."""
import random
import sys
from xml.sax.saxutils import escape, quoteattr


def main(out_dir, files, cases):
    rnd = random.Random(42)
    for g in range(1, files + 1):
        path = f"{out_dir}/junit-g{g}.xml"
        with open(path, "w", encoding="utf-8") as f:
            f.write('<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="pytest tests">')
            f.write(f'<testsuite name="pytest" errors="0" failures="0" skipped="0" tests="{cases}" '
                    f'time="{cases * 0.01:.3f}" timestamp="2026-01-01T00:00:00.000000+00:00" hostname="runner-{g}">')
            for i in range(cases):
                module = f"tests.pkg{i % 40}.test_mod{(i // 40) % 50}"
                name = f"test_case_{g}_{i}[param-{i % 7}]"
                cls = f"{module}.TestThing{i % 5}" if i % 3 == 0 else module
                t = rnd.random() * 0.2
                f.write(f'<testcase classname={quoteattr(cls)} name={quoteattr(name)} time="{t:.3f}"')
                r = i % 100
                if r == 0:
                    tb = "def test():\n>       assert compute() == 3\nE       assert 2 == 3\n\ntests/x.py:12: AssertionError"
                    f.write(f'><failure message="assert 2 == 3">{escape(tb)}</failure>'
                            f'<system-out>{escape("log line <" + str(i) + ">" * 3)}</system-out></testcase>')
                elif r == 1:
                    f.write('><skipped type="pytest.skip" message="not on linux">tests/x.py:3: not on linux</skipped></testcase>')
                else:
                    f.write(" />")
            f.write("</testsuite></testsuites>\n")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
