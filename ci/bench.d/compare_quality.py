"""Compare compose-shard's split with pytest-split's algorithms on real durations files.

For each durations file and each N, the tests are the file's node ids in the file's order
(pytest-split sorts the keys, which keeps each file's tests together much like collection
order). Every algorithm gets the same tests and durations; the score is the slowest group's
seconds divided by the ideal (total / N), so 1.0 is a perfect split, and the seconds
the slowest group runs past the ideal. compose-shard runs as a
process (`plan --split-by test --format json`), pytest-split's algorithms are imported from
the installed package and called on stand-in items that carry only a node id.

No split can beat max(total / N, heaviest unit): the last column gives that bound for
`--split-by module`, where single files can outweigh a group.

Usage: compare_quality.py COMPOSE_SHARD_BINARY DURATIONS_FILE...
Prints a Markdown table.
"""

import json
import os
import subprocess
import sys
import tempfile

from pytest_split.algorithms import Algorithms

GROUPS = (2, 4, 8, 16)


class Item:
    """The part of a pytest Item that pytest-split's algorithms read."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid

    def __str__(self) -> str:
        return self.nodeid


def slowest_pytest_split(algorithm, splits, items, durations) -> float:
    groups = algorithm.value(splits, items, durations)
    return max(g.duration for g in groups)


def slowest_compose_shard(binary, tests_file, durations_file, splits, split_by) -> float:
    out = subprocess.run(
        [binary, "plan", "--groups", str(splits), "--tests", tests_file,
         "--durations", durations_file, "--split-by", split_by, "--format", "json"],
        check=True, capture_output=True, text=True,
    ).stdout
    plan = json.loads(out)
    slowest = max(g["estimated_seconds"] for g in plan["groups"])
    return slowest, plan["longest_first_slowest_seconds"]


def score(slowest: float, ideal: float) -> str:
    """Ratio to the ideal, and the seconds the slowest group runs past it."""
    excess = slowest - ideal
    # Weights are whole microseconds, so sums can land a hair below the float ideal.
    excess = 0.0 if abs(excess) < 5e-5 else excess
    return f"{slowest / ideal:.5f} ({excess:+.4f} s)"


def main(binary: str, files: list) -> None:
    print("| durations file | tests | total s | N | compose-shard | least_duration "
          "| duration_based_chunks | compose-shard --split-by class "
          "| compose-shard --split-by module | longest-first on the same modules "
          "| lower bound for modules |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in files:
        with open(path, encoding="utf-8") as f:
            durations = json.load(f)
        ids = list(durations)
        items = [Item(i) for i in ids]
        total = sum(durations.values())
        modules = {}
        for node_id, seconds in durations.items():
            module = node_id.split("::", 1)[0]
            modules[module] = modules.get(module, 0.0) + seconds
        heaviest_module = max(modules.values())
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as t:
            t.write("\n".join(ids) + "\n")
            tests_file = t.name
        try:
            for n in GROUPS:
                ideal = total / n
                ours, _ = slowest_compose_shard(binary, tests_file, path, n, "test")
                ours_class, _ = slowest_compose_shard(binary, tests_file, path, n, "class")
                ours_module, lpt_module = slowest_compose_shard(
                    binary, tests_file, path, n, "module"
                )
                least = slowest_pytest_split(Algorithms.least_duration, n, items, durations)
                chunks = slowest_pytest_split(
                    Algorithms.duration_based_chunks, n, items, durations
                )
                print(f"| {os.path.basename(path)} | {len(ids)} | {total:.1f} | {n} "
                      f"| {score(ours, ideal)} | {score(least, ideal)} | {score(chunks, ideal)} "
                      f"| {score(ours_class, ideal)} | {score(ours_module, ideal)} "
                      f"| {score(lpt_module, ideal)} "
                      f"| {score(max(ideal, heaviest_module), ideal)} |")
        finally:
            os.unlink(tests_file)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
