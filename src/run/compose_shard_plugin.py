"""compose-shard's pytest plugin, uploaded into each group's test container.

Runs exactly the node ids listed in the file named by $COMPOSE_SHARD_TESTS (one per line), in
collection order, and reports every test phase on one machine-readable line, so the runner can
count progress without parsing pytest's human output. Passing ids through a file avoids any
argument-length limit and works with old pytest versions that have no @argsfile support.
"""
import os

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


def pytest_collection_modifyitems(session, config, items):
    path = os.environ.get("COMPOSE_SHARD_TESTS")
    if not path:
        return
    with open(path, encoding="utf-8") as handle:
        wanted = [line.rstrip("\n") for line in handle if line.strip()]
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


# One line per test, at its teardown: every line costs a write through the engine's exec
# stream, so per-phase lines would triple the overhead on large suites.
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
