"""pytest plugin used by ci/bench: prints when the test session starts (epoch seconds).

Loaded with `-p bench_timing` in every approach the benchmark compares, so "time until all
environments were ready" is measured the same way for docker-compose, pytest-xdist and
compose-shard: the moment pytest itself starts in the last environment; and "time until the
last group started its first test": the moment each pytest starts its first test.
"""

import time

_first = []
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
    reporter = _config[0].pluginmanager.get_plugin("terminalreporter") if _config else None
    line = f"BENCH_FIRST_TEST {_first[0]:.3f}"
    if reporter is not None:
        reporter.write_line(line)
        reporter._tw.flush()
    else:
        print(line, flush=True)
