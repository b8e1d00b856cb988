"""pytest plugin used by ci/bench: prints when the test session starts (epoch seconds).

Loaded with `-p bench_timing` in every approach the benchmark compares, so "time until all
environments were ready" is measured the same way for docker-compose, pytest-xdist and
compose-shard: the moment pytest itself starts in the last environment; and "time until the
last group started its first test": the moment each pytest starts its first test; and the
moment each pytest's last test ended (a group's test span runs from its first test's start to
its last test's end).
"""

import time

_first = []
_last = []
_config = []


def pytest_configure(config):
    _config.append(config)


def pytest_sessionstart(session):
    print(f"\nBENCH_SESSION_START {time.time():.3f}", flush=True)


def pytest_runtest_logstart(nodeid, location):
    """The moment this pytest starts its first test (after collection and, for
    compose-shard, after its group was handed its first tests). Written through the
    terminal reporter: pytest captures plain prints around tests."""
    if _first:
        return
    _first.append(time.time())
    _write(f"BENCH_FIRST_TEST {_first[0]:.3f}")


def pytest_runtest_logfinish(nodeid, location):
    _last[:] = [time.time()]


def pytest_sessionfinish(session):
    """The moment this pytest's last test ended: first to last test is the group's test span."""
    if _last:
        _write(f"BENCH_LAST_TEST {_last[0]:.3f}")


def _write(line):
    reporter = _config[0].pluginmanager.get_plugin("terminalreporter") if _config else None
    if reporter is not None:
        reporter.write_line(line)
        reporter._tw.flush()
    else:
        print(line, flush=True)
