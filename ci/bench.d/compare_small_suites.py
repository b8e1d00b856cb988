"""Where refinement matters: small suites of few, uneven tests (or classes), the case in which
longest-first leaves a visible gap. Random suites from a fixed seed; for each N the table gives
the mean of slowest group / lower bound, where the lower bound max(total / N, longest test) is
what no split can beat, and how often compose-shard is strictly faster than pytest-split's
least_duration on the same tests and durations.

Usage: compare_small_suites.py COMPOSE_SHARD_BINARY
"""

import json
import os
import random
import subprocess
import sys
import tempfile

from pytest_split.algorithms import Algorithms

from compare_quality import Item

SUITES = 200


def suite(rng: random.Random) -> dict:
    count = rng.randint(6, 30)
    return {
        f"tests/test_{i // 5}.py::test_{i}": round(rng.lognormvariate(1.0, 1.0), 6)
        for i in range(count)
    }


def ours(binary: str, durations: dict, splits: int, workdir: str) -> float:
    tests = os.path.join(workdir, "tests.txt")
    times = os.path.join(workdir, "durations.json")
    with open(tests, "w", encoding="utf-8") as f:
        f.write("\n".join(durations) + "\n")
    with open(times, "w", encoding="utf-8") as f:
        json.dump(durations, f)
    out = subprocess.run(
        [binary, "plan", "--groups", str(splits), "--tests", tests, "--durations", times,
         "--split-by", "test", "--format", "json"],
        check=True, capture_output=True, text=True,
    ).stdout
    return max(g["estimated_seconds"] for g in json.loads(out)["groups"])


def main(binary: str) -> None:
    rng = random.Random(4)
    suites = [suite(rng) for _ in range(SUITES)]
    print(f"| N | suites | compose-shard / bound | least_duration / bound "
          f"| compose-shard faster | equal | slower |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as workdir:
        for n in (2, 4, 8):
            ratio_ours = ratio_least = 0.0
            faster = equal = slower = 0
            for durations in suites:
                bound = max(sum(durations.values()) / n, max(durations.values()))
                items = [Item(i) for i in durations]
                least = max(
                    g.duration for g in Algorithms.least_duration.value(n, items, durations)
                )
                mine = ours(binary, durations, n, workdir)
                ratio_ours += mine / bound
                ratio_least += least / bound
                # Durations are whole microseconds, so 1e-6 separates real differences from
                # float summation noise.
                if mine < least - 1e-6:
                    faster += 1
                elif mine > least + 1e-6:
                    slower += 1
                else:
                    equal += 1
            print(f"| {n} | {SUITES} | {ratio_ours / SUITES:.4f} | {ratio_least / SUITES:.4f} "
                  f"| {faster} | {equal} | {slower} |")


if __name__ == "__main__":
    main(sys.argv[1])
