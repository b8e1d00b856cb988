"""The small-suite benchmark (issue 10): compose-shard against the project's own sequential
`docker compose run --rm SERVICE pytest` (Docker Compose v2), side by side in one run, on a
suite of a few seconds whose one environment starts in a few seconds.

Stack: compose-templates/real-world (PostgreSQL without healthcheck, a broker with a 30 s
healthcheck nobody waits on, a migration job, an entrypoint that prepares the container, a
CI-only service and a worker that must not start). Approaches, alternated run by run so drift
on a shared machine hits them alike:

  compose-v2   docker compose run --rm -T app pytest --cov=ledger, then down -v
  cs-auto      compose-shard run -s app (the default: --groups auto, from the durations and
               start-up figures a first run with --store-durations recorded)
  cs-4         compose-shard run -s app --groups 4

Targets: cs-auto <= 1.3x compose-v2; cs-4 <= 2.5x compose-v2 (2 cores).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TEMPLATE = os.path.join(ROOT, "compose-templates", "real-world")


def log(msg):
    print(f"[bench-small {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, cwd, env, check=True):
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    if check and proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}")
    return proc.returncode, proc.stdout


def timed(cmd, cwd, env):
    t0 = time.monotonic()
    rc, out = run(cmd, cwd, env, check=False)
    return time.monotonic() - t0, rc, out


def compose_v2(args, workdir, env):
    project = f"csb-small-{uuid.uuid4().hex[:6]}"
    t0 = time.monotonic()
    rc, out = run([args.compose, "-p", project, "run", "--rm", "-T", "app", "pytest", "-q",
                   "--cov=ledger"], workdir, env, check=False)
    run([args.compose, "-p", project, "down", "-v", "--remove-orphans"], workdir, env, check=False)
    return time.monotonic() - t0, rc, out


def compose_shard(args, workdir, env, extra):
    out_dir = os.path.join(workdir, ".bench", f"cs-{uuid.uuid4().hex[:6]}")
    return timed([args.compose_shard, "run", "-s", "app", "--progress", "plain", "--out", out_dir]
                 + extra + ["--", "pytest", "--cov=ledger"], workdir, env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--compose", required=True, help="Docker Compose v2 binary")
    ap.add_argument("--compose-shard", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    env = dict(os.environ)
    workdir = os.path.join(args.workdir, "small")
    if os.path.exists(workdir):
        shutil.rmtree(workdir)
    shutil.copytree(TEMPLATE, workdir, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    with open(os.path.join(workdir, ".dockerignore"), "a") as f:
        f.write("\n.bench\n.test_durations\n.compose-shard-timings.json\n")
    os.makedirs(os.path.join(workdir, ".bench"), exist_ok=True)

    log("warm-up: Compose builds its image; compose-shard builds its own and records durations")
    run([args.compose, "-p", "csb-small-build", "build", "app"], workdir, env)
    wall, rc, out = compose_v2(args, workdir, env)
    if rc != 0:
        raise RuntimeError(f"the baseline fails on this stack:\n{out[-3000:]}")
    wall, rc, out = compose_shard(args, workdir, env, ["--groups", "1", "--store-durations", ".test_durations"])
    if rc != 0:
        raise RuntimeError(f"compose-shard fails on this stack:\n{out[-3000:]}")

    approaches = [
        ("compose-v2", lambda: compose_v2(args, workdir, env)),
        ("cs-auto", lambda: compose_shard(args, workdir, env, [])),
        ("cs-4", lambda: compose_shard(args, workdir, env, ["--groups", "4"])),
    ]
    walls = {name: [] for name, _ in approaches}
    notes = {}
    for i in range(args.repeat):
        for name, fn in approaches:
            wall, rc, out = fn()
            if rc != 0:
                raise RuntimeError(f"{name} failed (exit {rc}):\n{out[-3000:]}")
            walls[name].append(wall)
            for line in out.splitlines():
                if line.startswith("auto chose"):
                    notes[name] = line
            log(f"run {i + 1}/{args.repeat}: {name} {wall:.1f}s")
    med = {name: statistics.median(v) for name, v in walls.items()}
    base = med["compose-v2"]
    lines = [
        "| small suite (real-world stack, 33 tests) | wall s (median) | runs | / compose v2 | target |",
        "|---|---:|---|---:|---|",
    ]
    targets = {"compose-v2": "", "cs-auto": "<= 1.3", "cs-4": "<= 2.5"}
    for name, _ in approaches:
        runs = ", ".join(f"{w:.1f}" for w in walls[name])
        lines.append(f"| {name} | {med[name]:.1f} | {runs} | {med[name] / base:.2f} | {targets[name]} |")
    text = "\n".join(lines)
    if "cs-auto" in notes:
        text += f"\n\n{notes['cs-auto']}"
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"walls": walls, "median": med, "markdown": text}, f, indent=2)


if __name__ == "__main__":
    main()
