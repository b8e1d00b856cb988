"""ci/bench's latency-bound suite (issue 21): what the orchestration itself costs.

The suite (ci/bench.d/gen_latency_suite.py) is the Django example with its own tests replaced
by 240 generated ones that each wait on their group's PostgreSQL (`SELECT pg_sleep(x)`,
skewed durations, 120 s of waiting in all). The CPUs stay mostly idle during the tests, so N
groups could test N times as fast, and whatever a run loses beyond that is the tool's:
start-up of N environments, the work queue, the per-test cost. Rows, side by side in one run:

  cs 1            compose-shard, one group (the reference for fixed costs)
  cs 4            4 groups, the work queue (--dist dynamic) without durations
  cs+durations 4  4 groups, the work queue with the true durations (only with cs-durations)
  cs-static 4     4 groups, --dist static with the true durations (a perfect durations file)
  cs-2engines 4   4 groups over two engines (the second from ci/second-engine), dynamic,
                  without durations
  handrolled 4    4 concurrent Docker Compose v2 projects + pytest-split with the true
                  durations (what users hand-roll)

Before any row, two short one-group runs on each engine take the database's snapshot and fill
the engine's template volumes, so every measured run starts as a user's second run does. The
engine's own cost of starting 4 groups' containers at once against one group's is measured
beside them (`docker run -d`): the floor under the setup ratio on this machine.

Figures, each the median of --repeat runs:
  - ideal: one group's fixed costs plus a quarter of the waiting, where one group's fixed
    costs are its wall time minus its test span (first test's start to last test's end);
  - wall / ideal (target <= 1.1 at 4 groups);
  - the slowest group's setup (compose-shard's own figure: from the group's start until its
    tests started) over one group's (target <= 1.2), where one group's is the median over the
    full one-group runs and a short one-group run taken just before each 4-group row;
  - each group's test span, and dynamic without durations / static with true durations
    (target <= 1.03) by wall and by the end of the last test.
"""

import json
import os
import statistics
import subprocess
import time

WAITING_GROUPS = 4


def _fmt(x, digits=1):
    return "–" if x is None else f"{x:.{digits}f}"


def _med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _span_lengths(spans):
    return [None if s is None else s[1] - s[0] for s in spans or []]


def warm_up(b, suite, engines):
    """Two short one-group runs on each engine before anything is measured: the first takes
    the database's snapshot (when the cache has none), the second fills the engine's template
    volumes that later restores layer over. Every measured run then starts the way a user's
    second and later runs do, whatever its place in the order (without this, the first
    restoring row paid for the templates and the one-group row mixed a run that initialised
    with runs that restored)."""
    empty = os.path.join(suite.dir, ".bench", "empty_durations")
    for host in engines:
        for i in range(2):
            out = os.path.join(suite.dir, f".bench/warm-up-{i}")
            b.run([suite.compose_shard, "run", "--groups", "1", "--docker-host", host,
                   "--project-directory", suite.dir, "--out", out, "--progress", "plain",
                   "--durations", empty, "--", "pytest", "-p", "bench_timing", "-k", "test_wait_0_1"],
                  suite.dir, suite.env, check=True)


def short_one_group_setup(b, suite, tag):
    """One group's setup from a short run (a few tests) just before a 4-group row: more
    samples of the reference the setup ratio divides by, taken at the same moment as what it
    is compared with (one group's setup varies by a second from run to run on a shared
    machine)."""
    r = b.approach_cs(suite, 1, f"lat-short-{tag}", False,
                      pytest_args=["-k", "test_wait_0_1 or test_wait_1_1 or test_wait_2_1"])
    setup = (r.get("setups") or [None])[0]
    b.log(f"  one group's setup (short run) {_fmt(setup, 2)} s")
    return setup


def engine_floor(image, groups, repeat=3):
    """What the engine alone takes to start `groups` groups of three containers, each group
    on its own network, all at once (`docker run -d`, the CLI's own cost included), against
    one group: the part of a group's setup no orchestration removes on this machine. Returns
    (median seconds for one group, median for `groups`)."""

    def once(n):
        names = [f"cs-floor-{g}-{c}" for g in range(n) for c in range(3)]
        nets = [f"cs-floor-{g}" for g in range(n)]
        t0 = time.monotonic()
        procs = [subprocess.Popen(["docker", "network", "create", net], stdout=subprocess.DEVNULL)
                 for net in nets]
        for p in procs:
            p.wait()
        procs = [subprocess.Popen(["docker", "run", "-d", "--network", f"cs-floor-{name.split('-')[2]}",
                                   "--name", name, image, "sleep", "60"], stdout=subprocess.DEVNULL)
                 for name in names]
        ok = all(p.wait() == 0 for p in procs)
        took = time.monotonic() - t0
        subprocess.run(["docker", "rm", "-f"] + names, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["docker", "network", "rm"] + nets, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return took if ok else None

    ones, many = [], []
    for _ in range(repeat):
        ones.append(once(1))
        many.append(once(groups))
    return _med(ones), _med(many)


def run_latency(b, args, env, approaches):
    """Run the latency suite's rows with bench module `b`; return (markdown, raw results)."""
    suite = b.prepare_suite("latency", args.workdir, env, 0, latency=True)
    suite.compose_shard, suite.venv_python = args.compose_shard, args.venv_python
    suite.durations_name = ".test_durations_true"
    suite.cov = False  # the orchestration alone: no coverage tracing in any approach
    with open(os.path.join(suite.dir, ".bench", "empty_durations"), "w") as f:
        f.write("{}")
    with open(os.path.join(suite.dir, suite.durations_name)) as f:
        waiting = sum(json.load(f).values())
    n = WAITING_GROUPS
    plan = [("cs", 1, lambda s, n, i: b.approach_cs(s, n, i, False))]
    if "cs" in approaches:
        plan.append(("cs", n, lambda s, n, i: b.approach_cs(s, n, i, False)))
    if "cs-durations" in approaches:
        plan.append(("cs+durations", n, lambda s, n, i: b.approach_cs(s, n, i, True)))
    if "cs-static" in approaches:
        plan.append(("cs-static", n, lambda s, n, i: b.approach_cs(s, n, i, True, "static")))
    second = os.environ.get("BENCH_SECOND_ENGINE")
    if "cs-2engines" in approaches and second:
        b.copy_app_image_to_second_engine(env)
        first = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        plan.append(("cs-2engines", n, lambda s, n, i, a=first, c=second:
                     b.approach_cs(s, n, i, False, "dynamic", [a, c])))
    if "handrolled" in approaches:
        plan.append(("handrolled", n, b.approach_handrolled))
    engines = [os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")]
    if any(label == "cs-2engines" for label, _, _ in plan):
        engines.append(second)
    b.log(f"latency: warming up (snapshot and templates) on {len(engines)} engine(s)")
    warm_up(b, suite, engines)
    floor = engine_floor(env.get("REDIS_IMAGE", "compose-shard-fixtures/redis:7"), n)
    raw, runs, short_setups = {}, {}, []
    # Alternate the rows run by run, so drift on a shared machine hits them alike.
    for i in range(args.repeat):
        for label, groups, fn in plan:
            if groups == n and label != "handrolled":
                short_setups.append(short_one_group_setup(b, suite, f"{label}-{i}"))
            b.log(f"latency: {label} N={groups} run {i + 1}/{args.repeat}")
            r = fn(suite, groups, f"lat-{label}-{groups}-{i}")
            r["span_lengths"] = _span_lengths(r.get("spans"))
            runs.setdefault((label, groups), []).append(r)
            b.log(f"  wall {b.fmt(r['wall'])}s failed {r['failed']} ran {r['ran']} "
                  f"spans {[_fmt(x) for x in r['span_lengths']]} setups {r.get('setups')}")
    medians = {}
    for key, results in runs.items():
        m = b.median_of(results)
        m["slowest_setup"] = _med([max((x for x in r.get("setups") or [] if x is not None), default=None)
                                   for r in results])
        m["longest_span"] = _med([max((x for x in r["span_lengths"] if x is not None), default=None)
                                  for r in results])
        # when the last test of the run ended (seconds from the start): with groups that start
        # in turns the longest span belongs to the group that started first, so spans no
        # longer compare a queue with a static split; the end of the last test does
        m["last_end"] = _med([max((s[1] for s in r.get("spans") or [] if s), default=None)
                              for r in results])
        # fixed costs: the wall minus the test span (only meaningful with one group)
        m["fixed"] = _med([r["wall"] - r["span_lengths"][0] for r in results
                           if r["span_lengths"] and r["span_lengths"][0] is not None])
        medians[key] = m
        raw[f"latency/{key[0]}/{key[1]}"] = {"median": m, "runs": results}
    one = dict(medians.get(("cs", 1), {}))
    # The reference for the setup ratio: one group's setup over every one-group run, the full
    # ones and the short ones taken just before each 4-group row.
    one_setups = [x for r in runs.get(("cs", 1), []) for x in (r.get("setups") or [])[:1]] + short_setups
    one_setups = [x for x in one_setups if x is not None]
    if one_setups:
        one["slowest_setup"] = _med(one_setups)
    ideal = one["fixed"] + waiting / n if one.get("fixed") is not None else None
    total = len(suite.collected)
    lines = [
        f"Latency-bound suite: {total} tests waiting {waiting:.0f} s in all on their group's PostgreSQL; "
        f"ideal at {n} groups = one group's fixed costs ({_fmt(one.get('fixed'))} s) + waiting/{n} "
        f"= {_fmt(ideal)} s.",
        "",
        "| approach | N | wall s | / ideal | slowest setup s | / one group's | test span per group s (last run) | "
        "last group's first test s | failed | every test exactly once |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (label, groups), m in medians.items():
        last = runs[(label, groups)][-1]
        once = m["ran"] == total and m["unique"] == total
        per_group = "/".join(_fmt(x) for x in last["span_lengths"]) or "–"
        over_ideal = m["wall"] / ideal if ideal and groups == n else None
        setup_ratio = (m["slowest_setup"] / one["slowest_setup"]
                       if m.get("slowest_setup") and one.get("slowest_setup") and label != "handrolled" else None)
        lines.append(f"| {label} | {groups} | {_fmt(m['wall'])} | {_fmt(over_ideal, 2)} | "
                     f"{_fmt(m.get('slowest_setup'), 2)} | {_fmt(setup_ratio, 2)} | {per_group} | "
                     f"{_fmt(m.get('first_test'), 2)} | {m['failed']} | {'yes' if once else 'no'} |")
    ratios = []

    def get(label, key="wall"):
        return medians.get((label, n), {}).get(key)

    for label in ("cs", "cs+durations", "cs-static", "cs-2engines", "handrolled"):
        if get(label) and ideal:
            ratios.append(f"- latency: {label} N={n} wall / ideal = {get(label) / ideal:.2f} (target <= 1.1)")
    if get("cs") and get("cs-static"):
        ratios.append(f"- latency: dynamic without durations / static with true durations = "
                      f"{get('cs') / get('cs-static'):.3f} wall, "
                      f"{get('cs', 'last_end') / get('cs-static', 'last_end'):.3f} by the end of the last test, "
                      f"{get('cs', 'longest_span') / get('cs-static', 'longest_span'):.3f} longest test span "
                      f"(target <= 1.03; with environments in turns the first group tests longest by design)")
    for label in ("cs", "cs-static"):
        if get(label, "slowest_setup") and one.get("slowest_setup"):
            ratios.append(f"- latency: {label} N={n} slowest group's setup / one group's = "
                          f"{get(label, 'slowest_setup') / one['slowest_setup']:.2f} (target <= 1.2)")
    if one_setups:
        ratios.append(f"- latency: one group's setup (the reference above) = median {one['slowest_setup']:.2f} s "
                      f"of {len(one_setups)} one-group runs ({min(one_setups):.2f}-{max(one_setups):.2f} s), "
                      f"the full ones and a short one before each {n}-group row")
        raw["latency/one-group-setups"] = one_setups
    if None not in floor:
        ratios.append(f"- latency: the engine alone starts {n} groups of 3 containers (each group on its own "
                      f"network, all at once, `docker run -d`) in {floor[1]:.2f} s against {floor[0]:.2f} s for "
                      f"one group: {floor[1] / floor[0]:.2f}x, a floor under the setup ratio that no "
                      f"orchestration removes on this machine")
        raw["latency/engine-floor"] = {"one_group": floor[0], "groups": floor[1]}
    if one.get("wall") and get("cs"):
        ratios.append(f"- latency: speed-up of {n} groups over one: {one['wall'] / get('cs'):.2f}x dynamic, "
                      f"{one['wall'] / get('cs-static'):.2f}x static; possible {one['wall'] / ideal:.2f}x"
                      if get("cs-static") and ideal else
                      f"- latency: speed-up of {n} groups over one: {one['wall'] / get('cs'):.2f}x")
    return "\n".join(lines) + "\n\n" + "\n".join(ratios), raw
