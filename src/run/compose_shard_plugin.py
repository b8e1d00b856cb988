"""compose-shard's pytest plugin, uploaded into each group's test container.

The test command runs as the container's main process, through the service's entrypoint, as
`docker compose run SERVICE pytest` would run it. Each group's pytest collects the suite
itself; this plugin then hands the collection to compose-shard and waits for the group's share:

1. after collection it writes every node id to $COMPOSE_SHARD_DIR/collected.txt and prints
   `##compose-shard## collected N` (or `collection-errors N` when collection failed, and then
   lets pytest stop as it would);
2. it waits for $COMPOSE_SHARD_DIR/tests.ready, which compose-shard uploads together with
   tests.txt (one node id per line; they run in collection order; the archive writes tests.txt
   first, so the list is complete once tests.ready exists);
3. it runs exactly those tests and prints `##compose-shard## done OUTCOME NODEID` after each.

Files rather than arguments avoid any argument-length limit; printing through the terminal
reporter keeps the lines whole between pytest's own output.
"""
import os
import time

import pytest

_config = None


def pytest_configure(config):
    global _config
    _config = config


def _emit(text):
    reporter = _config.pluginmanager.get_plugin("terminalreporter") if _config else None
    if reporter is not None:
        reporter.write_line("##compose-shard## " + text)
    else:
        print("##compose-shard## " + text, flush=True)


def _write_collected(directory, items):
    path = os.path.join(directory, "collected.txt")
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        for item in items:
            handle.write(item.nodeid + "\n")
    os.replace(partial, path)


def _wait_for_list(directory):
    ready = os.path.join(directory, "tests.ready")
    limit = float(os.environ.get("COMPOSE_SHARD_WAIT", "3600"))
    deadline = time.monotonic() + limit
    pause = 0.01
    while not os.path.exists(ready):
        if time.monotonic() > deadline:
            raise pytest.UsageError(
                "compose-shard: no test list arrived within %d s" % limit
            )
        time.sleep(pause)
        pause = min(pause * 1.5, 0.1)
    with open(os.path.join(directory, "tests.txt"), encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    directory = os.environ.get("COMPOSE_SHARD_DIR")
    if not directory:
        return
    if session.testsfailed and not config.getoption("continue_on_collection_errors", False):
        _emit("collection-errors %d" % session.testsfailed)
        return
    _write_collected(directory, items)
    _emit("collected %d" % len(items))
    if config.option.collectonly:
        return
    wanted = _wait_for_list(directory)
    wanted_set = set(wanted)
    selected = [item for item in items if item.nodeid in wanted_set]
    deselected = [item for item in items if item.nodeid not in wanted_set]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = selected
    found = {item.nodeid for item in selected}
    for node_id in wanted:
        if node_id not in found:
            _emit("missing " + node_id)


# One line per test, at its teardown: per-phase lines would triple the output on large suites.
_outcomes = {}


def pytest_runtest_logreport(report):
    if report.when == "call":
        _outcomes[report.nodeid] = report.outcome
    elif report.outcome == "skipped":
        _outcomes.setdefault(report.nodeid, "skipped")
    elif report.outcome == "failed":
        if _outcomes.get(report.nodeid) != "failed":
            _outcomes[report.nodeid] = "error"
    if report.when == "teardown":
        outcome = _outcomes.pop(report.nodeid, "passed")
        _emit("done %s %s" % (outcome, report.nodeid))
