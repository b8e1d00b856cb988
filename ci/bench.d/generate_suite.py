"""Generate a large synthetic pytest suite for timing `compose-shard plan`.

Writes TESTS (raw `pytest --collect-only -q` shaped output) and DURATIONS (pytest-split's
`.test_durations` layout). A fixed seed keeps every run of the benchmark on the same input.
Shape: files of classes and module-level tests, parametrized ids with `::`, spaces and
unicode, log-normal durations (most tests fast, a few slow), 5% of tests without a
recorded duration so the estimate path is exercised too.
"""

import json
import random
import sys


def main(count: int, tests_path: str, durations_path: str) -> None:
    rng = random.Random(20261121)
    ids = []
    file_no = 0
    while len(ids) < count:
        file_no += 1
        path = f"tests/pkg{file_no % 37}/test_mod{file_no}.py"
        for cls in range(rng.randint(0, 4)):
            for t in range(rng.randint(1, 12)):
                ids.append(f"{path}::TestCase{cls}::test_{t}")
        for t in range(rng.randint(1, 20)):
            if rng.random() < 0.3:
                for p in range(rng.randint(2, 8)):
                    ids.append(f"{path}::test_param_{t}[case {p}-x::y-é{p}]")
            else:
                ids.append(f"{path}::test_free_{t}")
    ids = ids[:count]
    durations = {
        node_id: round(rng.lognormvariate(-3.0, 1.5), 6)
        for node_id in ids
        if rng.random() >= 0.05
    }
    with open(tests_path, "w", encoding="utf-8") as f:
        f.write("\n".join(ids))
        f.write(f"\n\n{len(ids)} tests collected in 12.34s\n")
    with open(durations_path, "w", encoding="utf-8") as f:
        json.dump(durations, f, sort_keys=True, indent=4)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
