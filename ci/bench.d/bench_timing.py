"""pytest plugin used by ci/bench: prints when the test session starts (epoch seconds).

Loaded with `-p bench_timing` in every approach the benchmark compares, so "time until all
environments were ready" is measured the same way for docker-compose, pytest-xdist and
compose-shard: the moment pytest itself starts in the last environment.
"""

import time


def pytest_sessionstart(session):
    print(f"\nBENCH_SESSION_START {time.time():.3f}", flush=True)
