"""ci/bench's one-group comparison (issue 21): compose-shard with one group against the
project's own `docker compose run --rm SERVICE pytest` (Docker Compose v2), side by side,
alternated run by run, on the bundled example and on compose-templates/real-world.

  compose   docker compose -p P run --rm -T SERVICE pytest, then down -v (what the project
            does by hand; the wall covers both)
  cs        compose-shard run -s SERVICE --groups 1 -- pytest

Figures (medians of --repeat runs): both walls and their ratio (target <= 1.0); pytest's
own session time on both sides (its `N passed in X s` line: collection and tests, from
inside the container); compose-shard's collection and tests phases (its timeline). The
per-test overhead is reported two ways, in ms per test:
  - phases: (compose-shard's collection + tests phases - Compose's pytest session) / tests,
    the figure issue 21 quotes (it counts the interpreter's start-up in the container, which
    pytest's own timer does not);
  - session: (compose-shard's pytest session - Compose's) / tests, like for like.
"""

import os
import re
import shutil
import statistics
import time
import uuid

SESSION_RE = re.compile(r"=+ (.*?) in ([\d.]+)s(?: \([\d:]+\))? =+\s*$", re.M)
COUNT_RE = re.compile(r"(\d+) (passed|failed|errors?|skipped)")
PHASE_RE = re.compile(r"<title>group 1: (\w+) ([\dhms.]+) \(from")

REAL_WORLD = "real-world"


def _session(text):
    """(pytest's session seconds, tests that ran) from its last summary line."""
    found = SESSION_RE.findall(text)
    if not found:
        return None, None
    counts, secs = found[-1]
    ran = sum(int(n) for n, kind in COUNT_RE.findall(counts) if not kind.startswith("skip"))
    return float(secs), ran


def _compose(b, workdir, env, service):
    project = f"csb-one-{uuid.uuid4().hex[:6]}"
    t0 = time.monotonic()
    rc, out = b.run([b.COMPOSE[0], "-p", project, "run", "--rm", "-T", service, "pytest"],
                    workdir, env, check=False)
    b.run([b.COMPOSE[0], "-p", project, "down", "-v", "--remove-orphans"], workdir, env, check=False)
    wall = time.monotonic() - t0
    session, ran = _session(out)
    return dict(wall=wall, session=session, ran=ran, rc=rc)


def _cs(b, workdir, env, service, compose_shard):
    out_dir = os.path.join(workdir, ".bench", f"one-{uuid.uuid4().hex[:6]}")
    t0 = time.monotonic()
    rc, out = b.run([compose_shard, "run", "-s", service, "--groups", "1", "--progress", "plain",
                     "--out", out_dir, "--", "pytest"], workdir, env, check=False)
    wall = time.monotonic() - t0
    log = os.path.join(out_dir, "g1", "output.log")
    session, ran = _session(open(log, errors="replace").read()) if os.path.exists(log) else (None, None)
    phases = {}
    timeline = os.path.join(out_dir, "timeline.html")
    if os.path.exists(timeline):
        for name, secs in PHASE_RE.findall(open(timeline).read()):
            phases[name] = b.seconds_of(secs)
    return dict(wall=wall, session=session, ran=ran, rc=rc, collection=phases.get("collection"),
                tests=phases.get("tests"), setup_phases={k: v for k, v in phases.items()})


def _prepare_real_world(b, args, env):
    workdir = os.path.join(args.workdir, "one-group-real-world")
    if os.path.exists(workdir):
        shutil.rmtree(workdir)
    shutil.copytree(os.path.join(b.ROOT, "compose-templates", REAL_WORLD), workdir,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    with open(os.path.join(workdir, ".dockerignore"), "a") as f:
        f.write("\n.bench\n")
    os.makedirs(os.path.join(workdir, ".bench"), exist_ok=True)
    # Compose builds its image once; compose-shard uses the one it built (as `docker compose
    # run` would), so neither side builds inside the comparison.
    b.run([b.COMPOSE[0], "-p", "csb-one-build", "build", "app"], workdir, env)
    return workdir


def run_one_group(b, args, env, example_dir):
    """Both stacks, `args.repeat` alternated pairs each; return (markdown, raw results)."""
    rw_env = {k: v for k, v in env.items() if k not in ("COMPOSE_FILE", "BENCH_APP_IMAGE")}
    stacks = []
    if example_dir:
        stacks.append(("example", example_dir, env))
    stacks.append((REAL_WORLD, _prepare_real_world(b, args, rw_env), rw_env))
    raw, lines = {}, [
        "| stack | tests | compose v2 wall s | compose-shard 1 group wall s | / compose | "
        "compose pytest session s | cs pytest session s | cs collection + tests s | "
        "overhead ms/test (phases) | overhead ms/test (session) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, workdir, stack_env in stacks:
        # A warm-up pair: compose-shard's image and both sides' first-run caches.
        _compose(b, workdir, stack_env, "app")
        _cs(b, workdir, stack_env, "app", args.compose_shard)
        compose, cs = [], []
        for i in range(args.repeat):
            compose.append(_compose(b, workdir, stack_env, "app"))
            cs.append(_cs(b, workdir, stack_env, "app", args.compose_shard))
            b.log(f"one group, {name} {i + 1}/{args.repeat}: compose {compose[-1]['wall']:.1f}s "
                  f"(session {compose[-1]['session']}), compose-shard {cs[-1]['wall']:.1f}s "
                  f"(session {cs[-1]['session']}, collection {cs[-1]['collection']}, tests {cs[-1]['tests']})")
        med = {}
        for side, results in (("compose", compose), ("cs", cs)):
            med[side] = {k: statistics.median([r[k] for r in results if r.get(k) is not None] or [0])
                         for k in ("wall", "session", "collection", "tests", "ran")}
        tests = med["compose"]["ran"] or med["cs"]["ran"]
        phases = (med["cs"]["collection"] + med["cs"]["tests"]) if med["cs"]["tests"] else None
        per_phase = (phases - med["compose"]["session"]) * 1000 / tests if phases and tests else None
        per_session = ((med["cs"]["session"] - med["compose"]["session"]) * 1000 / tests
                       if tests and med["cs"]["session"] else None)
        raw[f"one-group/{name}"] = {"median": med, "runs": {"compose": compose, "cs": cs}}
        f = lambda x, d=1: "–" if x is None else f"{x:.{d}f}"  # noqa: E731
        lines.append(f"| {name} | {int(tests or 0)} | {f(med['compose']['wall'])} | {f(med['cs']['wall'])} | "
                     f"{f(med['cs']['wall'] / med['compose']['wall'], 2)} (target <= 1.0) | "
                     f"{f(med['compose']['session'], 2)} | {f(med['cs']['session'], 2)} | {f(phases, 2)} | "
                     f"{f(per_phase)} | {f(per_session)} |")
        if any(r["rc"] not in (0,) for r in compose + cs):
            lines.append(f"| {name}: exit codes compose {[r['rc'] for r in compose]}, "
                         f"compose-shard {[r['rc'] for r in cs]} |")
    return "\n".join(lines), raw
