"""compose-shard's pytest plugin, uploaded into each group's test container.

The test command runs as the container's main process, through the service's entrypoint, as
`docker compose run SERVICE pytest` would run it. Each group's pytest collects the suite
itself; this plugin hands the collection to compose-shard and then runs what it is given.
Everything goes through files in $COMPOSE_SHARD_DIR (compose-shard uploads them through the
Docker API) and lines on standard output that start with `##compose-shard## `:

1. after collection it prints `maxfail N` (pytest's -x / --maxfail, 0 for none), writes every
   node id to collected.txt and prints `collected N` (or `collection-errors N` when collection
   failed, and then lets pytest stop as it would);
2. static mode (COMPOSE_SHARD_DIST=static): it waits for tests.ready, which compose-shard
   uploads together with tests.txt (one node id per line, in the order to run them; the
   archive writes tests.txt first, so the list is complete once tests.ready exists);
   dynamic mode: it prints `next K` whenever it needs work and waits for unit-K.ready and
   unit-K.txt, the same way; an empty unit means the queue is empty. It stays one unit
   ahead: as soon as a unit arrives it asks for the next, so the answer travels while the
   current one runs, and the last test's teardown knows which test comes next (pytest tears down module
   and class fixtures only when the next test no longer needs them);
3. it prints `done OUTCOME SECONDS NODEID` after each test (compose-shard's queue learns from
   the durations), and before each test it checks for a
   `stop` file (compose-shard writes it when --maxfail is reached across the groups): then it
   stops as pytest's own --maxfail would, without an error of its own.

Files rather than arguments avoid any argument-length limit; printing through the terminal
reporter keeps the lines whole between pytest's own output.
"""
import collections
import json
import os
import sys
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
        reporter._tw.flush()
    else:
        print("##compose-shard## " + text, flush=True)
    sys.stdout.flush()


def _directory():
    return os.environ.get("COMPOSE_SHARD_DIR")


def _dynamic():
    return os.environ.get("COMPOSE_SHARD_DIST") == "dynamic"


def _write_collected(directory, items):
    path = os.path.join(directory, "collected.txt")
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        for item in items:
            handle.write(item.nodeid + "\n")
    os.replace(partial, path)


def _wait_for(directory, name):
    """Wait for NAME.ready, then return the node ids in NAME.txt."""
    ready = os.path.join(directory, name + ".ready")
    limit = float(os.environ.get("COMPOSE_SHARD_WAIT", "3600"))
    deadline = time.monotonic() + limit
    pause = 0.002
    while not os.path.exists(ready):
        if time.monotonic() > deadline:
            raise pytest.UsageError(
                "compose-shard: no answer (%s) arrived within %d s" % (name, limit)
            )
        time.sleep(pause)
        pause = min(pause * 1.5, 0.02)
    with open(os.path.join(directory, name + ".txt"), encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    directory = _directory()
    if not directory:
        return
    if session.testsfailed and not config.getoption("continue_on_collection_errors", False):
        _emit("collection-errors %d" % session.testsfailed)
        return
    _emit("maxfail %d" % (config.getoption("maxfail", 0) or 0))
    _write_collected(directory, items)
    _emit("collected %d" % len(items))
    if config.option.collectonly or _dynamic():
        return
    # Static: run exactly the given tests, in the given order.
    wanted = _wait_for(directory, "tests")
    by_id = {item.nodeid: item for item in items}
    selected = []
    for node_id in wanted:
        item = by_id.pop(node_id, None)
        if item is None:
            _emit("missing " + node_id)
        else:
            selected.append(item)
    if by_id:
        config.hook.pytest_deselected(items=list(by_id.values()))
    items[:] = selected


def _stop_requested(directory):
    path = os.path.join(directory, "stop")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read().strip() or "compose-shard asked to stop"


class _Units:
    """The dynamic mode's supply of tests: asks compose-shard for unit after unit."""

    def __init__(self, directory, items):
        self.directory = directory
        self.by_id = {item.nodeid: item for item in items}
        self.pending = collections.deque()
        self.asked = 0
        self.answered = 0
        self.exhausted = False

    def ask(self):
        if not self.exhausted and self.asked == self.answered:
            self.asked += 1
            _emit("next %d" % self.asked)

    def refill(self):
        while not self.pending and not self.exhausted:
            self.ask()
            self.answered += 1
            ids = _wait_for(self.directory, "unit-%d" % self.answered)
            if not ids:
                self.exhausted = True
            for node_id in ids:
                item = self.by_id.get(node_id)
                if item is None:
                    _emit("missing " + node_id)
                else:
                    self.pending.append(item)

    def __iter__(self):
        self.refill()
        # Always one chunk ahead: the answer travels while the current chunk runs.
        self.ask()
        while self.pending:
            item = self.pending.popleft()
            if not self.pending:
                self.refill()
                self.ask()
            yield item, (self.pending[0] if self.pending else None)


def _static_items(items):
    for i, item in enumerate(items):
        yield item, (items[i + 1] if i + 1 < len(items) else None)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    directory = _directory()
    if not directory:
        return None
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(
            "%d error%s during collection"
            % (session.testsfailed, "s" if session.testsfailed != 1 else "")
        )
    if session.config.option.collectonly:
        return True
    supply = _Units(directory, session.items) if _dynamic() else _static_items(session.items)
    for item, nextitem in supply:
        reason = _stop_requested(directory)
        if reason:
            _emit("stopped " + reason)
            break
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
    return True


# One line per test, at its teardown: per-phase lines would triple the output on large suites.
# The same facts, with the time and the failure's text, go to progress.jsonl in the results
# folder: if the container dies before pytest writes its JUnit XML, compose-shard rebuilds the
# group's JUnit from it.
_outcomes = {}
_seconds = {}
_messages = {}
_progress = None
_MESSAGE_LIMIT = 20000


def _record(node_id, outcome):
    global _progress
    results = os.environ.get("COMPOSE_SHARD_RESULTS")
    if not results:
        return
    if _progress is None:
        _progress = open(os.path.join(results, "progress.jsonl"), "a", encoding="utf-8")
    entry = {
        "id": node_id,
        "outcome": outcome,
        "seconds": round(_seconds.pop(node_id, 0.0), 6),
    }
    message = _messages.pop(node_id, None)
    if message:
        entry["message"] = message[:_MESSAGE_LIMIT]
    _progress.write(json.dumps(entry) + "\n")
    _progress.flush()


def pytest_runtest_logreport(report):
    _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + (report.duration or 0.0)
    if report.failed and report.nodeid not in _messages:
        try:
            _messages[report.nodeid] = "%s: %s" % (report.when, report.longreprtext)
        except Exception:  # a plugin's odd longrepr must not break the run
            _messages[report.nodeid] = report.when + ": failed"
    if report.when == "call":
        _outcomes[report.nodeid] = report.outcome
    elif report.outcome == "skipped":
        _outcomes.setdefault(report.nodeid, "skipped")
    elif report.outcome == "failed":
        if _outcomes.get(report.nodeid) != "failed":
            _outcomes[report.nodeid] = "error"
    if report.when == "teardown":
        outcome = _outcomes.pop(report.nodeid, "passed")
        seconds = _seconds.get(report.nodeid, 0.0)
        _record(report.nodeid, outcome)
        _emit("done %s %.6f %s" % (outcome, seconds, report.nodeid))
