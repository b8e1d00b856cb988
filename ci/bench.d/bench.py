"""ci/bench: compose-shard measured side by side against what users would do instead.

Run through `ci/bench` (which prepares Docker, the images and a release build). For each
suite (the Django example, and a scaled-up copy with a generated suite) and N in 1, 2, 4:

  seq        docker-compose run --rm app pytest          (one environment, the baseline)
  handrolled N concurrent `docker-compose -p <random> run` projects with pytest-split
             (--splits N --group k), then junitparser + `coverage combine` to merge
  xdist      pytest -n N in one environment (shared database and cache)
  cs         compose-shard run --groups N with its default work queue (--dist dynamic) and
             no durations file; cs+durations with the recorded durations; cs-wrong with
             every recorded duration multiplied by a random factor in [0.1, 10] (seed 11);
             cs-static: --dist static with the recorded durations (the fixed split)

Two more suites (--suites latency,one-group, both in the default): the latency-bound suite,
where the orchestration alone shows (latency.py), and one group against the project's own
`docker compose run` on the example and real-world stacks (one_group.py).

Each cell is the median of --repeat runs. "ready" is the time from start until pytest's
session started in the last environment (a tiny plugin, ci/bench.d/bench_timing.py, prints
the moment in every approach alike). Results go to bench-results.json and a Markdown table.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
# The Compose binary every baseline uses: Docker Compose v2 (`--compose`, from ci/compose-v2).
COMPOSE = ["docker-compose"]
ROOT = os.path.dirname(os.path.dirname(HERE))
TEMPLATE = os.path.join(ROOT, "compose-templates", "django-postgres-redis")
START_RE = re.compile(r"BENCH_SESSION_START (\d+\.\d+)")
FIRST_RE = re.compile(r"BENCH_FIRST_TEST (\d+\.\d+)")
RSS_RE = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
USER_RE = re.compile(r"User time \(seconds\): ([\d.]+)")
SYS_RE = re.compile(r"System time \(seconds\): ([\d.]+)")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, cwd, env, check=True, capture=True):
    """Run a command, return (returncode, stdout+stderr text)."""
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None, text=True, errors="replace",
    )
    out = proc.stdout or ""
    if check and proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{out[-3000:]}")
    return proc.returncode, out


def timed(cmd, cwd, env):
    """Run under /usr/bin/time -v; return (rc, output, rss_kb, cpu_seconds)."""
    rc, out = run(["/usr/bin/time", "-v"] + cmd, cwd, env, check=False)
    rss = max((int(m) for m in RSS_RE.findall(out)), default=0)
    cpu = sum(float(x) for x in USER_RE.findall(out)[-1:]) + sum(float(x) for x in SYS_RE.findall(out)[-1:])
    return rc, out, rss, cpu


def junit_cases(paths):
    """(testcase keys, failures+errors, per-file total time) of JUnit files."""
    keys, bad, per_file = [], 0, []
    for path in paths:
        total = 0.0
        if not os.path.exists(path):
            per_file.append(0.0)
            continue
        for case in ET.parse(path).iter("testcase"):
            keys.append((case.get("classname"), case.get("name")))
            total += float(case.get("time") or 0)
            if case.find("failure") is not None or case.find("error") is not None:
                bad += 1
        per_file.append(total)
    return keys, bad, per_file


def balance(per_group):
    total = sum(per_group)
    if not per_group or total == 0:
        return None
    return max(per_group) / (total / len(per_group))


class Suite:
    def __init__(self, name, workdir, env, package, collected):
        self.name, self.dir, self.env, self.package, self.collected = name, workdir, env, package, collected


def adapt_compose_file(path):
    """Make the example's compose file usable by every approach alike.

    - Its fixed host ports (`5432:5432`, `8000:8000`, for local development) make N
      concurrent docker-compose projects collide; users of the hand-rolled approach keep a
      CI variant without them, so the benchmark drops them for everyone (compose-shard
      drops them by itself anyway).
    - PYTHONPATH=/code makes the timing plugin (`-p bench_timing`) importable everywhere.
    """
    text = open(path).read()
    text = re.sub(r"\n    ports:\n(      - .*\n)+", "\n", text)
    text = text.replace("      DJANGO_SETTINGS_MODULE:", "      PYTHONPATH: /code\n      DJANGO_SETTINGS_MODULE:", 1)
    if "ports:" in text or "PYTHONPATH" not in text:
        raise RuntimeError(f"could not adapt {path}: the example's compose file changed shape")
    with open(path, "w") as f:
        f.write(text)


def use_only_latency_tests(workdir):
    """The latency suite is the generated tests/latency alone (the example's own tests are
    CPU-bound; its conftest, Django and the app stay, as in a real project)."""
    path = os.path.join(workdir, "pyproject.toml")
    text = open(path).read()
    if 'testpaths = ["tests"]' not in text:
        raise RuntimeError(f"could not adapt {path}: the example's pytest settings changed shape")
    with open(path, "w") as f:
        f.write(text.replace('testpaths = ["tests"]', 'testpaths = ["tests/latency"]'))


def prepare_suite(name, workroot, env, generate, latency=False):
    """A copy of the example under workroot/name: `generate` scaled tests added, or with
    `latency` the latency-bound suite instead of the example's tests (its true durations are
    the generator's, so no run records them)."""
    workdir = os.path.join(workroot, name)
    if os.path.exists(workdir):
        shutil.rmtree(workdir)
    shutil.copytree(TEMPLATE, workdir, ignore=shutil.ignore_patterns(".bench", "__pycache__", ".pytest_cache"))
    shutil.copy(os.path.join(HERE, "bench_timing.py"), workdir)
    adapt_compose_file(os.path.join(workdir, "docker-compose.yml"))
    # Every approach writes its results under .bench/; like any project's result folders it
    # stays out of the build context, so compose-shard's content-addressed image is reused
    # across runs (docker-compose reuses its image regardless).
    with open(os.path.join(workdir, ".dockerignore"), "a") as f:
        f.write("\n.bench\n.test_durations\n")
    if generate:
        run([sys.executable, os.path.join(HERE, "gen_suite.py"), workdir, str(generate)], workdir, env)
    if latency:
        run([sys.executable, os.path.join(HERE, "gen_latency_suite.py"), workdir], workdir, env)
        use_only_latency_tests(workdir)
    os.makedirs(os.path.join(workdir, ".bench"), exist_ok=True)
    project = f"csb-prep-{uuid.uuid4().hex[:6]}"
    try:
        run([COMPOSE[0], "-p", project, "build", "app"], workdir, env)
        _, out = run([COMPOSE[0], "-p", project, "run", "--rm", "-T", "app",
                      "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"], workdir, env)
        collected = [l for l in out.splitlines() if "::" in l and not l.startswith(" ")]
        # pytest-split's durations, as a user's earlier run would have stored them
        if not latency:
            run([COMPOSE[0], "-p", project, "run", "--rm", "-T", "app", "pytest", "-q",
                 "-p", "no:cacheprovider", "--store-durations", "--durations-path", "/code/.test_durations"],
                workdir, env, check=False)
    finally:
        run([COMPOSE[0], "-p", project, "down", "-v", "--remove-orphans"], workdir, env, check=False)
    package = env.get("BENCH_COV_PACKAGE", "shop")
    log(f"{name}: {len(collected)} tests collected")
    return Suite(name, workdir, env, package, collected)


LAST_RE = re.compile(r"BENCH_LAST_TEST (\d+\.\d+)")
# compose-shard's summary: group tests passed failed errors skipped setup time status
SUMMARY_RE = re.compile(r"^(\d+)\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+(\S+)\s+(\S+)\s", re.M)


def seconds_of(text):
    """compose-shard's printed durations (`6.34s`, `2m03s`, `1h02m`) in seconds."""
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?", text or "")
    if not text or not m or not any(m.groups()):
        return None
    h, mi, se = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(se or 0)


def spans(texts, t0):
    """Per output: (first test's start, last test's end) in seconds from t0, or None."""
    out = []
    for text in texts:
        f, l = firsts(text), [float(x) for x in LAST_RE.findall(text)]
        out.append((min(f) - t0, max(l) - t0) if f and l else None)
    return out


def copy_app_image_to_second_engine(env):
    """The app image every approach uses, on the second engine too: without it the first
    two-engine run of a suite would build it there and measure the build."""
    second, image = env.get("BENCH_SECOND_ENGINE"), env.get("BENCH_APP_IMAGE")
    if not second or not image:
        return
    _, first_id = run(["docker", "image", "inspect", "-f", "{{.Id}}", image], ROOT, env)
    _, second_id = run(["docker", "-H", second, "image", "inspect", "-f", "{{.Id}}", image], ROOT, env, check=False)
    if first_id.strip() != second_id.strip():
        log(f"copying {image} to the second engine")
        run(["sh", "-c", 'docker save "$0" | docker -H "$1" load -q', image, second], ROOT, env)


def starts(text):
    return [float(x) for x in START_RE.findall(text)]


def firsts(text):
    return [float(x) for x in FIRST_RE.findall(text)]


def cov_args(suite):
    """`--cov` for every approach, except on suites that measure the orchestration alone."""
    return ["--cov"] if getattr(suite, "cov", True) else []


def approach_seq(suite, n, i):
    project = f"csb-seq-{uuid.uuid4().hex[:6]}"
    res = f".bench/seq-{i}"
    t0 = time.time()
    rc, out, rss, cpu = timed([COMPOSE[0], "-p", project, "run", "--rm", "-T", 
                               "app", "pytest", "-p", "bench_timing", "-p", "no:cacheprovider",
                               f"--junitxml=/code/{res}/junit.xml", "--cov",
                               f"--cov-report=xml:/code/{res}/coverage.xml"], suite.dir, suite.env)
    run([COMPOSE[0], "-p", project, "down", "-v"], suite.dir, suite.env, check=False)
    wall = time.time() - t0
    keys, bad, per = junit_cases([os.path.join(suite.dir, res, "junit.xml")])
    return dict(wall=wall, ready=max(starts(out), default=t0) - t0,
                first_test=max(firsts(out), default=t0) - t0, balance=1.0, rss_mb=rss / 1024,
                cpu=cpu, failed=bad, ran=len(keys), unique=len(set(keys)), rc=rc)


def approach_handrolled(suite, n, i):
    res = f".bench/hr-{i}"
    os.makedirs(os.path.join(suite.dir, res), exist_ok=True)
    projects = [f"csb-hr-{uuid.uuid4().hex[:6]}" for _ in range(n)]
    outs = [None] * n
    t0 = time.time()

    def one(k):
        outs[k] = timed([COMPOSE[0], "-p", projects[k], "run", "--rm", "-T",
                         "-e", f"COVERAGE_FILE=/code/{res}/.coverage.{k + 1}",
                         "app", "pytest", "-p", "bench_timing", "-p", "no:cacheprovider",
                         "--splits", str(n), "--group", str(k + 1), "--durations-path",
                         f"/code/{suite.durations_name}",
                         f"--junitxml=/code/{res}/junit-{k + 1}.xml"]
                        + (cov_args(suite) + ["--cov-report="] if cov_args(suite) else []), suite.dir, suite.env)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    downs = [threading.Thread(target=run, args=([COMPOSE[0], "-p", p, "down", "-v"], suite.dir, suite.env, False))
             for p in projects]
    for t in downs:
        t.start()
    for t in downs:
        t.join()
    junits = [os.path.join(suite.dir, res, f"junit-{k + 1}.xml") for k in range(n)]
    merged = os.path.join(suite.dir, res, "junit.xml")
    run([suite.venv_python, "-c",
         "import sys; from junitparser import JUnitXml\n"
         "x = JUnitXml()\n"
         "for p in sys.argv[2:]: x += JUnitXml.fromfile(p)\n"
         "x.write(sys.argv[1])", merged] + junits, suite.dir, suite.env)
    image = suite.env["BENCH_APP_IMAGE"]
    if cov_args(suite):
        run(["docker", "run", "--rm", "-v", f"{suite.dir}:/code", "-w", "/code", image, "sh", "-c",
             f"coverage combine {res} && coverage xml -o {res}/coverage.xml"], suite.dir, suite.env, check=False)
    wall = time.time() - t0
    keys, bad, per = junit_cases(junits)
    ready = max((s for o in outs for s in starts(o[1])), default=t0) - t0
    first = max((max(firsts(o[1]), default=t0) for o in outs), default=t0) - t0
    return dict(wall=wall, ready=ready, first_test=first, balance=balance(per), rss_mb=sum(o[2] for o in outs) / 1024,
                spans=spans([o[1] for o in outs], t0),
                cpu=sum(o[3] for o in outs), failed=bad, ran=len(keys), unique=len(set(keys)),
                rc=max(o[0] for o in outs))


def approach_xdist(suite, n, i):
    project = f"csb-xd-{uuid.uuid4().hex[:6]}"
    res = f".bench/xd-{i}"
    t0 = time.time()
    rc, out, rss, cpu = timed([COMPOSE[0], "-p", project, "run", "--rm", "-T", 
                               "app", "pytest", "-n", str(n), "-p", "bench_timing", "-p", "no:cacheprovider",
                               f"--junitxml=/code/{res}/junit.xml"], suite.dir, suite.env)
    run([COMPOSE[0], "-p", project, "down", "-v"], suite.dir, suite.env, check=False)
    wall = time.time() - t0
    keys, bad, _ = junit_cases([os.path.join(suite.dir, res, "junit.xml")])
    return dict(wall=wall, ready=max(starts(out), default=t0) - t0, balance=None, rss_mb=rss / 1024,
                cpu=cpu, failed=bad, ran=len(keys), unique=len(set(keys)), rc=rc)


def approach_cs(suite, n, i, durations, dist="dynamic", engines=None, pytest_args=()):
    """compose-shard with --groups n (or the default --groups auto when n is None);
    `durations`: False (none), True (recorded), "wrong" (recorded times a random factor);
    `pytest_args` go after the suite's own (a selection, for a short run)."""
    kind = {False: "n", True: "d", "wrong": "w"}[durations]
    out_dir = os.path.join(suite.dir, f".bench/cs-{kind}-{dist}-{i}")
    dur = os.path.join(suite.dir, {False: ".bench/empty_durations", True: suite.durations_name,
                                   "wrong": ".bench/wrong_durations"}[durations])
    groups = ["--groups", str(n)] if n else []
    hosts = [arg for host in (engines or []) for arg in ("--docker-host", host)]
    t0 = time.time()
    rc, out, rss, cpu = timed([suite.compose_shard, "run"] + groups + hosts + ["--project-directory", suite.dir,
                               "--out", out_dir, "--progress", "plain", "--durations", dur,
                               "--dist", dist,
                               "--", "pytest", "-p", "bench_timing"] + cov_args(suite) + list(pytest_args),
                              suite.dir, suite.env)
    wall = time.time() - t0
    # compose-shard's own per-group setup and test time (its summary table)
    summary = {int(g): (seconds_of(a), seconds_of(b)) for g, a, b in SUMMARY_RE.findall(out)}
    if not n:
        chose = re.search(r"auto chose (\d+) group", out)
        n = int(chose.group(1)) if chose else 1
        n = max([n] + list(summary))  # groups `auto` added during the run
    logs = []
    for k in range(1, n + 1):
        p = os.path.join(out_dir, f"g{k}", "output.log")
        if os.path.exists(p):
            logs.append(open(p, errors="replace").read())
    keys, bad, _ = junit_cases([os.path.join(out_dir, "junit.xml")])
    per = []
    for k in range(1, n + 1):
        _, _, p = junit_cases([os.path.join(out_dir, f"g{k}", "junit.xml")])
        per += p
    test_start = max((s for log in logs for s in starts(log)), default=t0)
    # A group without tests never starts one; the others' first tests count.
    first = max((min(firsts(log)) for log in logs if firsts(log)), default=t0)
    group_spans = spans(logs, t0)
    ends = [s[1] for s in group_spans if s]
    return dict(groups=n, wall=wall, ready=test_start - t0, first_test=first - t0,
                balance=balance(per), rss_mb=rss / 1024, spans=group_spans,
                end_spread=max(ends) - min(ends) if len(ends) > 1 else None,
                setups=[summary.get(k, (None, None))[0] for k in range(1, n + 1)],
                test_times=[summary.get(k, (None, None))[1] for k in range(1, n + 1)],
                cpu=cpu, cpu_pct=100 * cpu / wall if wall else None, failed=bad, ran=len(keys),
                unique=len(set(keys)), rc=rc, merged=os.path.exists(os.path.join(out_dir, "coverage.xml")))


def write_wrong_durations(suite):
    """Every recorded duration times a factor drawn uniformly from [0.1, 10], fixed seed."""
    import random
    rng = random.Random(11)
    with open(os.path.join(suite.dir, suite.durations_name)) as f:
        recorded = json.load(f)
    wrong = {k: v * rng.uniform(0.1, 10.0) for k, v in sorted(recorded.items())}
    with open(os.path.join(suite.dir, ".bench", "wrong_durations"), "w") as f:
        json.dump(wrong, f)


def approach_cs_auto(suite, i):
    """The default `--groups auto`, after one run that recorded start-up timings beside the
    durations file (what `--store-durations` does for a user), into a copy so the durations
    every approach reads stay as they are."""
    if not getattr(suite, "timings_recorded", False):
        copy = os.path.join(suite.dir, ".test_durations.warmup")
        shutil.copy(os.path.join(suite.dir, suite.durations_name), copy)
        run([suite.compose_shard, "run", "--groups", "2", "--project-directory", suite.dir,
             "--out", os.path.join(suite.dir, ".bench/cs-warmup"), "--progress", "plain",
             "--durations", os.path.join(suite.dir, suite.durations_name), "--store-durations", copy,
             "--", "pytest", "--cov"], suite.dir, suite.env, check=False)
        suite.timings_recorded = True
    return approach_cs(suite, None, i, True)


def median_of(results):
    def med(key):
        vals = [r[key] for r in results if r.get(key) is not None]
        return statistics.median(vals) if vals else None
    keys = set().union(*results)
    return {k: med(k) if isinstance(results[0].get(k), (int, float)) and not isinstance(results[0].get(k), bool)
            else results[-1].get(k) for k in keys}


def fmt(x, unit=""):
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.2f}{unit}" if x < 10 else f"{x:.1f}{unit}"
    return f"{x}{unit}"


def machine():
    """What the figures were measured on: cores, kernel, load, the engine's storage driver."""
    _, driver = run(["docker", "info", "-f", "{{.Driver}}"], ROOT, os.environ, check=False)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {"cores": os.cpu_count(), "uname": os.uname().release, "load_average": load,
            "storage_driver": driver.strip()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--groups", default="1,2,4")
    ap.add_argument("--scaled", type=int, default=2000, help="tests in the generated suite (0: skip)")
    ap.add_argument("--compose-shard", required=True)
    ap.add_argument("--venv-python", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--json", default="bench-results.json")
    ap.add_argument("--only", default="seq,handrolled,xdist,cs,cs-durations,cs-wrong,cs-static,cs-2engines,cs-auto,cs-auto-fresh")
    ap.add_argument("--compose", default="docker-compose", help="Docker Compose v2 binary")
    ap.add_argument("--suites", default="example,scaled,latency,one-group",
                    help="which suites to run: example, scaled, latency (the latency-bound suite), "
                         "one-group (one group against docker compose run on the example and real-world)")
    args = ap.parse_args()
    COMPOSE[0] = args.compose
    env = dict(os.environ)
    groups = [int(g) for g in args.groups.split(",")]
    approaches = args.only.split(",")
    wanted = args.suites.split(",")
    suites = ([("example", 0)] if "example" in wanted else []) + (
        [("scaled", args.scaled)] if args.scaled and "scaled" in wanted else [])
    before = machine()
    rows, raw = [], {}
    example_dir = None
    for name, gen in suites:
        suite = prepare_suite(name, args.workdir, env, gen)
        if name == "example":
            example_dir = suite.dir
        if "cs-2engines" in approaches:
            copy_app_image_to_second_engine(env)
        suite.compose_shard, suite.venv_python = args.compose_shard, args.venv_python
        suite.durations_name = ".test_durations"
        with open(os.path.join(suite.dir, ".bench", "empty_durations"), "w") as f:
            f.write("{}")
        write_wrong_durations(suite)
        plan = [("seq", 1, approach_seq)] if "seq" in approaches else []
        for n in groups:
            # N=1 is the one-group reference of the start-up ratio; the comparisons are at N>1.
            if "handrolled" in approaches and n > 1:
                plan.append(("handrolled", n, approach_handrolled))
            if "xdist" in approaches and n > 1:
                plan.append(("xdist", n, approach_xdist))
            if "cs" in approaches:
                plan.append(("cs", n, lambda s, n, i: approach_cs(s, n, i, False)))
            if "cs-durations" in approaches and n > 1:
                plan.append(("cs+durations", n, lambda s, n, i: approach_cs(s, n, i, True)))
            if "cs-wrong" in approaches and n > 1:
                plan.append(("cs-wrong", n, lambda s, n, i: approach_cs(s, n, i, "wrong")))
            if "cs-static" in approaches and n > 1:
                plan.append(("cs-static", n, lambda s, n, i: approach_cs(s, n, i, True, "static")))
            second = os.environ.get("BENCH_SECOND_ENGINE")
            if "cs-2engines" in approaches and n > 1 and second:
                # The same total group count, half on each engine (both share this machine's
                # cores, so the figure is the overhead of a second engine).
                first = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
                plan.append(("cs-2engines", n, lambda s, n, i, a=first, b=second:
                             approach_cs(s, n, i, True, "dynamic", [a, b])))
        if "cs-auto" in approaches:
            # The default: no --groups, the recorded durations (and start-up timings kept
            # beside them by the runs above) decide.
            plan.append(("cs-auto", 0, lambda s, n, i: approach_cs_auto(s, i)))
        if "cs-auto-fresh" in approaches:
            # A first run: no durations at all (an empty file, so nothing remembered is read
            # either); `auto` starts with one group and adds more as it learns the suite.
            plan.append(("cs-auto-fresh", 0, lambda s, n, i: approach_cs(s, None, i, False)))
        # Alternate the rows run by run, so drift on a shared machine hits them alike.
        results_of = {}
        for i in range(args.repeat):
            for label, n, fn in plan:
                log(f"{name}: {label} N={n} run {i + 1}/{args.repeat}")
                results_of.setdefault((label, n), []).append(fn(suite, n, f"{label}-{n}-{i}"))
        for label, n, _ in plan:
            results = results_of[(label, n)]
            m = median_of(results)
            raw[f"{name}/{label}/{n}"] = {"median": m, "runs": results}
            once = m["ran"] == len(suite.collected) and m["unique"] == len(suite.collected)
            rows.append((name, label, n, m, once, len(suite.collected)))
            log(f"  wall {fmt(m['wall'])}s ready {fmt(m['ready'])}s failed {m['failed']} ran {m['ran']}")
    lines = ["| suite | approach | N | wall s | ready s | first test s | slowest/mean | peak RSS MB | failed | every test exactly once |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, label, n, m, once, total in rows:
        lines.append(f"| {name} ({total} tests) | {label} | {n} | {fmt(m['wall'])} | {fmt(m['ready'])} | "
                     f"{fmt(m.get('first_test'))} | {fmt(m['balance'])} | {fmt(m['rss_mb'])} | {m['failed']} | "
                     f"{'yes' if once else 'no'} |")
    table = "\n".join(lines)
    ratios = []
    for name, _ in suites:
        def get(label, n, key="wall"):
            v = raw.get(f"{name}/{label}/{n}")
            return v["median"].get(key) if v else None
        f1 = get("cs", 1, "first_test")
        for n, target in ((2, 1.3), (4, 1.5)):
            fn = get("cs", n, "first_test")
            if f1 and fn:
                ratios.append(f"- {name}: last group's first test N={n} / first test with one group = "
                              f"{fn / f1:.2f} (target <= {target})")
        for label in ("cs", "cs-wrong", "cs+durations", "cs-static"):
            for n in groups:
                b = get(label, n, "balance")
                if b and n > 1:
                    spread = get(label, n, "end_spread")
                    ratios.append(f"- {name}: {label} N={n} slowest group's test time / mean = {b:.3f}"
                                  + (" (target <= 1.05)" if label in ("cs", "cs-wrong") else "")
                                  + (f"; the groups' last tests ended within {spread:.2f} s of each other "
                                     f"(the test time also counts how much later a group started)"
                                     if spread is not None else ""))
        h4, c4 = get("handrolled", 4), get("cs+durations", 4) or get("cs", 4)
        if h4 and c4:
            ratios.append(f"- {name}: end to end, compose-shard N=4 / hand-rolled N=4 = {c4 / h4:.2f} (target <= 0.6)")
        for n in groups:
            one, two = get("cs+durations", n), get("cs-2engines", n)
            if one and two:
                ratios.append(f"- {name}: end to end N={n}, two engines / one engine = {two / one:.2f} (target <= 1.15)")
        for n in groups:
            d, st = get("cs+durations", n), get("cs-static", n)
            if d and st:
                ratios.append(f"- {name}: end to end N={n}, dynamic / static = {d / st:.2f} (target < 1)")
        auto = get("cs-auto", 0)
        fixed = [get("cs+durations", n) for n in groups if get("cs+durations", n)]
        if auto and fixed:
            ratios.append(f"- {name}: --groups auto (chose {get('cs-auto', 0, 'groups')}) / best fixed group count = "
                          f"{auto / min(fixed):.2f} (target <= 1.10)")
        fresh = get("cs-auto-fresh", 0)
        fixed_any = [get(label, n) for label in ("cs", "cs+durations") for n in groups if get(label, n)]
        if fresh and fixed_any:
            ratios.append(f"- {name}: --groups auto without durations (ended with "
                          f"{get('cs-auto-fresh', 0, 'groups')} groups) / best fixed group count = "
                          f"{fresh / min(fixed_any):.2f} (target <= 1.15)")
        rss = get("cs", 4, "rss_mb")
        cpu = get("cs", 4, "cpu_pct")
        if rss is not None:
            ratios.append(f"- {name}: compose-shard N=4 peak RSS {rss:.1f} MB (target < 50), "
                          f"CPU {cpu:.1f}% of one core averaged over the run (target < 5%)")
    parts = [table + "\n\n" + "\n".join(ratios)] if rows else []
    if "latency" in wanted:
        import latency
        text, found = latency.run_latency(sys.modules[__name__], args, env, approaches)
        parts.append(text)
        raw.update(found)
    if "one-group" in wanted:
        import one_group
        if example_dir is None:
            example_dir = prepare_suite("example", args.workdir, env, 0).dir
        text, found = one_group.run_one_group(sys.modules[__name__], args, env, example_dir)
        parts.append(text)
        raw.update(found)
    after = machine()
    parts.append(f"Machine: {before['cores']} cores, engine storage driver {before['storage_driver']}, "
                 f"load average {before['load_average']} before and {after['load_average']} after "
                 "(the cores are shared with other work: timings are noisy).")
    text = "\n\n".join(parts)
    print(text)
    with open(args.json, "w") as f:
        json.dump({"machine": {"before": before, "after": after},
                   "results": raw, "markdown": text}, f, indent=2)


if __name__ == "__main__":
    main()
