"""compose-shard's pytest plugin, uploaded into each group's test container.

The test command runs as the container's main process, through the service's entrypoint, as
`docker compose run SERVICE pytest` would run it. Each group's pytest collects the suite
itself; this plugin hands the collection to compose-shard and then runs what it is given.

The plugin is active only when compose-shard started pytest: it needs COMPOSE_SHARD_DIR and the
run's secret COMPOSE_SHARD_TOKEN, which it removes from the environment at once, so a pytest
started by a test (pytester, a subprocess) stays inert and no test can read the token from
its environment.

Channel. compose-shard reads the container's output; the plugin's lines start with
`##compose-shard:TOKEN## ` and are written on a duplicate of the original standard output,
taken before any test runs (so pytest's capture never swallows them). A line without the
token is test output, whatever it says. Files go the other way: compose-shard uploads them
into $COMPOSE_SHARD_DIR through the Docker API.

1. After collection the plugin prints `maxfail N` (pytest's -x / --maxfail, 0 for none),
   writes every node id to collected.txt and prints `collected N` (or `collection-errors N`
   when collection failed, and then lets pytest stop as it would).
2. Static mode (COMPOSE_SHARD_DIST=static): it waits for tests.ready, which compose-shard
   uploads together with tests.txt (one node id per line, in the order to run them; the
   archive writes tests.txt first, so the list is complete once tests.ready exists).
   Dynamic mode: it prints `next K` when it has no test left and waits for unit-K.ready and
   unit-K.txt, the same way; an empty unit means the queue is empty. pytest needs the test
   after a chunk's last one (it tears module, class and session fixtures down only when the
   next test no longer needs them): the plugin prints `next K now` when pytest first looks
   at it, at that test's teardown, or as the test starts where a project's hook takes
   `nextitem` (it must see a real item or None then). compose-shard answers at once, with a
   chunk, an empty unit, or the single line `#later` (this group would have to wait: the test
   ends as the last one, and the plugin asks again with `next K+1`). The next chunk is
   decided as late as that, so no group holds a chunk while it runs the one before.
3. After each test it prints `done OUTCOME SECONDS NODEID` (compose-shard's queue learns from
   the durations) and appends the same facts, with the failure's text, to progress.jsonl in
   $COMPOSE_SHARD_RESULTS: what is left when pytest dies before it writes its JUnit XML.
   Every CPU_EVERY seconds of tests it prints `cpu CPU WALL` (the CPU seconds the test
   process spent in its tests so far, and their wall seconds: whether the tests compute or
   wait, which `--groups auto` weighs while it runs).
   Before each test it looks for a `stop` file (compose-shard writes it when --maxfail is
   reached across the groups): then it stops as pytest's own --maxfail would.
4. When pytest's session is over (its JUnit XML and coverage written) it prints the last
   `cpu CPU WALL` and `finished STATUS` with pytest's exit status.

A watchdog thread (a daemon, so it never keeps the process alive) covers the ways a test
process can fail to end:
- `dump-K.request` from compose-shard (a group that shows no progress): every thread's stack
  goes to stacks-N.txt in the results folder, announced by `stacks N REASON`.
- COMPOSE_SHARD_TEST_TIMEOUT seconds: when one test runs longer, every thread's stack is
  written (`stacks N timeout`), `timeout N SECONDS NODEID` is printed, and the main thread
  is interrupted; the test is reported as an error naming the limit and the session ends
  (exit status 2), with its JUnit XML and coverage written. A faulthandler timer is the
  backstop for a test that holds the interpreter: it writes the stacks and exits.
- COMPOSE_SHARD_EXIT_GRACE seconds after `finished`, a process that is still alive (Python
  waits for every non-daemon thread before it exits) writes the stacks of the threads that
  keep it alive, prints `lingering N COUNT` and exits with pytest's own status.

0. With COMPOSE_SHARD_GATE set, pytest waits, before it loads any conftest or project code,
   for `go` in COMPOSE_SHARD_DIR (see pytest_load_initial_conftests below).

Files rather than arguments avoid any argument-length limit.
"""
import collections
import faulthandler
import json
import os
import signal
import sys
import threading
import time
import traceback

import pytest

NAME = "compose-shard"
# How long the main thread may take to end the session after a test timed out, before the
# watchdog ends the process itself.
TIMEOUT_GRACE = 30.0
# A timed-out test that is still the current one this long after its interrupt (the test
# caught it, or the signal was lost) is interrupted again.
INTERRUPT_AGAIN = 2.0
# Seconds of tests between two `cpu` lines (`--groups auto` weighs them while the run grows).
CPU_EVERY = 1.0
# compose-shard's whole answer to `next K now` when there is no work for this group yet.
LATER = "#later"
_MESSAGE_LIMIT = 20000
# The innermost frames of each thread that a stack dump shows (the test's own code is there).
STACK_FRAMES = 30


@pytest.hookimpl(hookwrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """With COMPOSE_SHARD_GATE, the test container was started before the services it waits
    for were ready, so that the interpreter, pytest and its plugins load meanwhile; nothing of
    the project runs (no conftest, no settings, no test module) until compose-shard uploads
    `go` into COMPOSE_SHARD_DIR, once every condition holds, as `docker compose run` would
    have started the container then."""
    gate = os.environ.pop("COMPOSE_SHARD_GATE", None)
    directory = os.environ.get("COMPOSE_SHARD_DIR")
    if gate and directory:
        go = os.path.join(directory, "go")
        pause = 0.002
        while not os.path.exists(go):
            time.sleep(pause)
            pause = min(pause * 1.5, 0.01)
    yield


def pytest_configure(config):
    token = os.environ.pop("COMPOSE_SHARD_TOKEN", None)
    directory = os.environ.get("COMPOSE_SHARD_DIR")
    if not token or not directory:
        return
    config.pluginmanager.register(ComposeShard(config, token, directory), NAME)


def _seconds(name):
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if value > 0 else None


class TestTimeout(Exception):
    """The test ran longer than compose-shard's --test-timeout."""


class Channel:
    """Protocol lines to compose-shard, on a duplicate of the original standard output."""

    def __init__(self, token):
        self.prefix = "##compose-shard:%s## " % token
        self.fd = os.dup(1)
        self.lock = threading.Lock()

    def emit(self, text):
        data = (self.prefix + text.replace("\n", " ") + "\n").encode("utf-8", "replace")
        try:
            sys.stdout.flush()
        except Exception:  # a test may have replaced or closed sys.stdout
            pass
        with self.lock:
            while data:
                data = data[os.write(self.fd, data):]

    def close(self):
        with self.lock:
            os.close(self.fd)


class Progress:
    """progress.jsonl: one JSON object per finished test, written as it finishes."""

    def __init__(self, results):
        self.path = os.path.join(results, "progress.jsonl") if results else None
        self.handle = None
        self.lock = threading.Lock()
        self.recorded = set()

    def record(self, node_id, outcome, seconds, message):
        if self.path is None:
            return
        entry = {"id": node_id, "outcome": outcome, "seconds": round(seconds, 6)}
        if message:
            entry["message"] = message[:_MESSAGE_LIMIT]
        with self.lock:
            if node_id in self.recorded:
                return
            self.recorded.add(node_id)
            if self.handle is None:
                self.handle = open(self.path, "a", encoding="utf-8")
            self.handle.write(json.dumps(entry) + "\n")
            self.handle.flush()

    def close(self):
        with self.lock:
            if self.handle is not None:
                self.handle.close()
                self.handle = None


def thread_stacks(only=None):
    """Every thread's name, kind and Python stack (or those of `only`), as text."""
    frames = sys._current_frames()
    lines = []
    for thread in threading.enumerate():
        if only is not None and thread not in only:
            continue
        if getattr(thread, "compose_shard_watchdog", False):
            continue
        kind = "daemon" if thread.daemon else "non-daemon"
        if thread is threading.main_thread():
            kind = "main"
        lines.append("Thread %r (%s, id %s):" % (thread.name, kind, thread.ident))
        frame = frames.get(thread.ident)
        if frame is None:
            lines.append("  (no Python frame)")
        else:
            stack = traceback.format_stack(frame)
            if len(stack) > STACK_FRAMES:
                lines.append("  ... %d outer frames left out ..." % (len(stack) - STACK_FRAMES))
            lines.extend(l.rstrip("\n") for l in stack[-STACK_FRAMES:])
        lines.append("")
    return "\n".join(lines)


class ComposeShard:
    """The plugin object: registered in pytest_configure when compose-shard started pytest."""

    def __init__(self, config, token, directory):
        self.config = config
        self.directory = directory
        self.results = os.environ.get("COMPOSE_SHARD_RESULTS")
        self.dynamic = os.environ.get("COMPOSE_SHARD_DIST") == "dynamic"
        self.wait_limit = float(os.environ.get("COMPOSE_SHARD_WAIT", "3600"))
        self.test_timeout = _seconds("COMPOSE_SHARD_TEST_TIMEOUT")
        self.exit_grace = _seconds("COMPOSE_SHARD_EXIT_GRACE")
        self.channel = Channel(token)
        self.progress = Progress(self.results)
        self.outcomes = {}
        self.durations = {}
        self.messages = {}
        self.session = None
        self.status = None
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0
        self.cpu_told_at = 0.0
        self.stacks_written = 0
        self.stacks_lock = threading.Lock()
        # (node id, monotonic start) of the test running now; set by the main thread.
        self.current = None
        self.timed_out = None
        self.timeout_text = None
        self.timed_out_at = None
        self.timed_out_started = None
        self.interrupted_at = None
        self.finished_at = None
        self.main_ident = threading.main_thread().ident
        self.backstop = None
        if self.test_timeout and not self._faulthandler_timeout():
            self.backstop = self._open_results_file("stacks-backstop.txt")
        # The timeout interrupts the test with SIGINT; a process started with SIGINT ignored
        # (a background job of a script) would never see it, and only the backstop would end
        # the test. A handler the project installed is left as it is.
        if self.test_timeout and signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL):
            try:
                signal.signal(signal.SIGINT, signal.default_int_handler)
            except ValueError:  # not the main thread: nothing to do
                pass
        self.watchdog = Watchdog(self)
        self.watchdog.start()

    # -- helpers ---------------------------------------------------------------------------

    def emit(self, text):
        self.channel.emit(text)

    def _faulthandler_timeout(self):
        try:
            return float(self.config.getini("faulthandler_timeout") or 0) > 0
        except (ValueError, KeyError):
            return False

    def _open_results_file(self, name):
        if not self.results:
            return None
        try:
            return open(os.path.join(self.results, name), "w", encoding="utf-8")
        except OSError:
            return None

    def write_stacks(self, reason, only=None):
        """Write the threads' stacks to stacks-N.txt, print `stacks N REASON`; returns N and
        the text."""
        text = thread_stacks(only)
        with self.stacks_lock:
            self.stacks_written += 1
            number = self.stacks_written
        if self.results:
            path = os.path.join(self.results, "stacks-%d.txt" % number)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        if reason != "timeout":  # a timed-out test's report shows them
            sys.stderr.write("compose-shard: stacks of the test process (%s):\n%s\n" % (reason, text))
            sys.stderr.flush()
        self.emit("stacks %d %s" % (number, reason))
        return number, text

    def _wait_for(self, name):
        """Wait for NAME.ready, then return the node ids in NAME.txt."""
        ready = os.path.join(self.directory, name + ".ready")
        deadline = time.monotonic() + self.wait_limit
        pause = 0.002
        while not os.path.exists(ready):
            if time.monotonic() > deadline:
                raise pytest.UsageError(
                    "compose-shard: no answer (%s) arrived within %d s" % (name, self.wait_limit)
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 0.02)
        with open(os.path.join(self.directory, name + ".txt"), encoding="utf-8") as handle:
            return [line.rstrip("\n") for line in handle if line.strip()]

    def _stop_requested(self):
        path = os.path.join(self.directory, "stop")
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip() or "compose-shard asked to stop"

    # -- collection ------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        if session.testsfailed and not config.getoption("continue_on_collection_errors", False):
            self.emit("collection-errors %d" % session.testsfailed)
            return
        self.emit("maxfail %d" % (config.getoption("maxfail", 0) or 0))
        path = os.path.join(self.directory, "collected.txt")
        with open(path + ".partial", "w", encoding="utf-8") as handle:
            for item in items:
                handle.write(item.nodeid + "\n")
        os.replace(path + ".partial", path)
        self.emit("collected %d" % len(items))
        if config.option.collectonly or self.dynamic:
            return
        # Static: run exactly the given tests, in the given order.
        by_id = {item.nodeid: item for item in items}
        selected = []
        for node_id in self._wait_for("tests"):
            item = by_id.pop(node_id, None)
            if item is None:
                self.emit("missing " + node_id)
            else:
                selected.append(item)
        if by_id:
            config.hook.pytest_deselected(items=list(by_id.values()))
        items[:] = selected

    # -- running ---------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(
                "%d error%s during collection"
                % (session.testsfailed, "s" if session.testsfailed != 1 else "")
            )
        if session.config.option.collectonly:
            return True
        supply = Units(self, session) if self.dynamic else static_items(session.items)
        for item, nextitem in supply:
            reason = self._stop_requested()
            if reason:
                self.emit("stopped " + reason)
                break
            self._run_one(session, item, nextitem)
            if session.shouldfail:
                raise session.Failed(session.shouldfail)
            if session.shouldstop:
                raise session.Interrupted(session.shouldstop)
        return True

    def _run_one(self, session, item, nextitem):
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            self._protocol(session, item, nextitem)
        finally:
            self.cpu_seconds += time.process_time() - cpu
            self.wall_seconds += time.perf_counter() - wall
            if self.wall_seconds - self.cpu_told_at >= CPU_EVERY:
                self.cpu_told_at = self.wall_seconds
                self.emit("cpu %.3f %.3f" % (self.cpu_seconds, self.wall_seconds))

    def _protocol(self, session, item, nextitem):
        self.current = (item.nodeid, time.monotonic())
        if self.backstop is not None:
            faulthandler.dump_traceback_later(
                self.test_timeout + TIMEOUT_GRACE, exit=True, file=self.backstop
            )
        try:
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        except KeyboardInterrupt:
            if self.timed_out != item.nodeid:
                raise
            self._report_timeout(item)
            raise session.Interrupted(
                "compose-shard: %s ran longer than --test-timeout" % item.nodeid
            )
        finally:
            self.current = None
            if self.backstop is not None:
                faulthandler.cancel_dump_traceback_later()

    def _report_timeout(self, item):
        """The timed-out test as pytest reports an error: a failed teardown naming the limit."""
        call_info = getattr(pytest, "CallInfo", None)
        if call_info is None:  # pytest < 7 does not export it
            from _pytest.runner import CallInfo as call_info

        def fail():
            raise TestTimeout(self.timeout_text)

        call = call_info.from_call(fail, when="teardown")
        report = item.ihook.pytest_runtest_makereport(item=item, call=call)
        # The limit and the stacks say it all; the traceback of this report would not.
        report.longrepr = self.timeout_text
        report.duration = time.monotonic() - self.timed_out_started
        item.ihook.pytest_runtest_logreport(report=report)

    # One line per test, at its teardown: per-phase lines would triple the output.
    def pytest_runtest_logreport(self, report):
        node_id = report.nodeid
        self.durations[node_id] = self.durations.get(node_id, 0.0) + (report.duration or 0.0)
        if report.failed and node_id not in self.messages:
            try:
                self.messages[node_id] = "%s: %s" % (report.when, report.longreprtext)
            except Exception:  # a plugin's odd longrepr must not break the run
                self.messages[node_id] = report.when + ": failed"
        if report.when == "call":
            self.outcomes[node_id] = report.outcome
        elif report.outcome == "skipped":
            self.outcomes.setdefault(node_id, "skipped")
        elif report.outcome == "failed":
            if self.outcomes.get(node_id) != "failed":
                self.outcomes[node_id] = "error"
        if report.when == "teardown":
            self._done(
                node_id,
                self.outcomes.pop(node_id, "passed"),
                self.durations.pop(node_id, 0.0),
                self.messages.pop(node_id, None),
            )

    def _done(self, node_id, outcome, seconds, message):
        self.progress.record(node_id, outcome, seconds, message)
        self.emit("done %s %.6f %s" % (outcome, seconds, node_id))

    # -- the end ---------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        self.session = session

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config):
        status = getattr(self.session, "exitstatus", None)
        self.status = int(status) if status is not None else 3
        self.progress.close()
        if self.backstop is not None:
            self.backstop.close()
        if self.wall_seconds > 0:
            self.emit("cpu %.3f %.3f" % (self.cpu_seconds, self.wall_seconds))
        self.emit("finished %d" % self.status)
        self.finished_at = time.monotonic()

    # -- the watchdog's checks (another thread) --------------------------------------------

    def check_timeout(self, now):
        current = self.current
        if self.test_timeout is None or current is None or self.timed_out is not None:
            return
        node_id, started = current
        elapsed = now - started
        if elapsed < self.test_timeout:
            return
        self.timed_out = node_id
        self.timed_out_at = now
        self.timed_out_started = started
        number, stacks = self.write_stacks("timeout")
        self.timeout_text = (
            "timed out after %.0fs (--test-timeout %gs); the stack of every thread when it "
            "timed out (stacks-%d.txt):\n%s" % (elapsed, self.test_timeout, number, stacks)
        )
        self.emit("timeout %d %.3f %s" % (number, elapsed, node_id))
        self.interrupted_at = now
        signal.pthread_kill(self.main_ident, signal.SIGINT)

    def check_timeout_ended(self, now):
        """The main thread did not end the session after a timeout: interrupt the test again
        while it is still the current one, and end the process after the grace."""
        if self.timed_out_at is None or self.finished_at is not None:
            return
        if now - self.timed_out_at < TIMEOUT_GRACE:
            current = self.current
            if (
                current is not None
                and current[0] == self.timed_out
                and now - self.interrupted_at >= INTERRUPT_AGAIN
            ):
                self.interrupted_at = now
                signal.pthread_kill(self.main_ident, signal.SIGINT)
            return
        self._done(self.timed_out, "error", now - self.timed_out_at, "teardown: " + self.timeout_text)
        self.emit("finished 2")
        self._exit(2)

    def check_exit(self, now):
        if self.finished_at is None or self.exit_grace is None:
            return
        if now - self.finished_at < self.exit_grace:
            return
        main = threading.main_thread()
        lingering = [
            t
            for t in threading.enumerate()
            if t is not main and t.is_alive() and not t.daemon
            and not getattr(t, "compose_shard_watchdog", False)
        ]
        number, _ = self.write_stacks("lingering", only=lingering + [main])
        self.emit("lingering %d %d" % (number, len(lingering)))
        self._exit(self.status if self.status is not None else 3)

    def _exit(self, status):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status)


class Watchdog(threading.Thread):
    """Dumps stacks on request, enforces the test timeout and the exit grace."""

    compose_shard_watchdog = True

    def __init__(self, plugin):
        super().__init__(name="compose-shard-watchdog", daemon=True)
        self.plugin = plugin
        self.requests = 0

    def run(self):
        plugin = self.plugin
        while True:
            time.sleep(0.2)
            try:
                now = time.monotonic()
                self._requests()
                plugin.check_timeout(now)
                plugin.check_timeout_ended(now)
                plugin.check_exit(now)
            except Exception as error:  # the watchdog must outlive anything it meets
                sys.stderr.write("compose-shard watchdog: %r\n" % (error,))

    def _requests(self):
        request = os.path.join(self.plugin.directory, "dump-%d.request" % (self.requests + 1))
        if os.path.exists(request):
            self.requests += 1
            self.plugin.write_stacks("request %d" % self.requests)


class Units:
    """The dynamic mode's supply of tests: asks compose-shard for chunk after chunk."""

    def __init__(self, plugin, session):
        self.plugin = plugin
        self.session = session
        self.by_id = {item.nodeid: item for item in session.items}
        self.pending = collections.deque()
        self.asked = 0
        self.exhausted = False
        # Whether a chunk's last test may get a NextItem (nothing but pytest reads it).
        self.lazy = not hooks_read_nextitem(session.config, plugin)
        # Whether what follows the running test is known (or was asked for).
        self.decided = True

    def _ask(self, now):
        """Ask for the next chunk and wait for the answer (`now`: see __iter__)."""
        self.asked += 1
        self.plugin.emit("next %d%s" % (self.asked, " now" if now else ""))
        ids = self.plugin._wait_for("unit-%d" % self.asked)
        if now and ids == [LATER]:
            return
        if not ids:
            self.exhausted = True
        for node_id in ids:
            item = self.by_id.get(node_id)
            if item is None:
                self.plugin.emit("missing " + node_id)
            else:
                self.pending.append(item)

    def _stopping(self):
        session = self.session
        return bool(session.shouldfail or session.shouldstop) or bool(
            self.plugin._stop_requested()
        )

    def decide(self):
        """The test after the running chunk's last one, asked for once, when first needed;
        None when the queue is done, or when compose-shard answered LATER."""
        if not self.decided:
            self.decided = True
            if not self.pending and not self.exhausted and not self._stopping():
                self._ask(now=True)
        return self.pending[0] if self.pending else None

    def __iter__(self):
        while True:
            while not self.pending and not self.exhausted:
                self._ask(now=False)
            if not self.pending:
                return
            item = self.pending.popleft()
            self.decided = bool(self.pending)
            if self.decided:
                yield item, self.pending[0]
            elif self.lazy:
                yield item, NextItem(self)
            else:
                # A project's hook reads `nextitem`: it must be a real item or None when
                # the test starts, so the next chunk is decided now.
                yield item, self.decide()


def hooks_read_nextitem(config, plugin):
    """Whether a hook other than pytest's own and this plugin's takes `nextitem` (a
    conftest's `pytest_runtest_teardown(item, nextitem)`, pytest-rerunfailures): such a hook
    may test `nextitem is None`, which a NextItem never is."""
    for name in ("pytest_runtest_protocol", "pytest_runtest_teardown"):
        for impl in getattr(config.pluginmanager.hook, name).get_hookimpls():
            if "nextitem" not in impl.argnames or impl.plugin is plugin:
                continue
            owner = getattr(impl.plugin, "__name__", None) or type(impl.plugin).__module__
            if owner == "_pytest" or owner.startswith("_pytest."):
                continue
            return True
    return False


class NextItem:
    """The next item pytest is given with a chunk's last test where nothing but pytest reads
    it. It is decided only when pytest first looks at it, at that test's teardown
    (`teardown_exact` keeps the module's, class's and session's fixtures the next test
    needs), so a group never holds a chunk it has not started while it runs a test and the
    others run out of work at the end of the queue. compose-shard answers that request at
    once (`next K now`): a chunk, the end of the queue, or LATER when this group would have
    to wait for work another group may give back; then the test tears everything down as the
    last one would, and the plugin asks again after it. It is true and behaves as that next
    item when there is one, false (with an empty `listchain()`) when there is none. Where a
    project's hook takes `nextitem` (it may test `nextitem is None`), the plugin decides as
    the test starts and gives a real item or None instead (see hooks_read_nextitem)."""

    __slots__ = ("_units",)

    def __init__(self, units):
        self._units = units

    def __bool__(self):
        return self._units.decide() is not None

    def __getattr__(self, name):
        item = self._units.decide()
        if item is not None:
            return getattr(item, name)
        if name == "listchain":
            return list
        raise AttributeError(name)

    def __repr__(self):
        return "<NextItem %r>" % (self._units.decide(),)


def static_items(items):
    for i, item in enumerate(items):
        yield item, (items[i + 1] if i + 1 < len(items) else None)
