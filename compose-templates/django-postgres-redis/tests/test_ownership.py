"""Tests that only pass when the suite owns its Redis database.

They are correct for one suite against its own services, and fail when two copies (or two
pytest-xdist workers) share one Redis: another copy's FLUSHDB, keys or counters show up
in the middle of these tests. Each one watches its key space for a while, as a real
cache-consistency test does while a background job runs.
"""
import time

import pytest

from catalog import cache

pytestmark = pytest.mark.isolation

WATCH_S = 1.2
STEP_S = 0.05


def watch(redis_db, expected_keys, counter=None):
    """Keep checking, for WATCH_S seconds, that the database holds exactly our keys."""
    deadline = time.monotonic() + WATCH_S
    bumps = 0
    while time.monotonic() < deadline:
        if counter is not None:
            bumps += 1
            assert redis_db.incr(counter) == bumps, f"{counter} was changed by someone else"
        assert redis_db.dbsize() == expected_keys, f"DBSIZE {redis_db.dbsize()} != {expected_keys}: foreign keys present"
        time.sleep(STEP_S)


def test_dbsize_counts_only_our_products(redis_db):
    for pid in range(20):
        cache.put_product({"id": pid, "sku": f"S{pid}"})
    watch(redis_db, 20)


def test_flushed_cache_stays_empty(redis_db):
    watch(redis_db, 0)


def test_shared_view_counter_is_ours(redis_db):
    watch(redis_db, 1, counter="catalog:views:1")


def test_recent_list_is_exactly_ours(redis_db):
    for pid in [5, 6, 7]:
        cache.count_view(pid)
    deadline = time.monotonic() + WATCH_S
    while time.monotonic() < deadline:
        assert cache.recently_viewed() == [7, 6, 5]
        time.sleep(STEP_S)


def test_top_viewed_over_whole_keyspace(redis_db):
    for _ in range(3):
        cache.count_view(11)
    cache.count_view(12)
    deadline = time.monotonic() + WATCH_S
    while time.monotonic() < deadline:
        assert cache.top_viewed(10) == [11, 12]
        time.sleep(STEP_S)


def test_rate_limit_window_is_ours(redis_db):
    for expected in range(1, 25):
        assert cache.hit_rate_limit("10.0.0.1", 100, 60) == expected
        time.sleep(STEP_S)


def test_keyspace_listing(redis_db):
    cache.put_product({"id": 1})
    cache.count_view(1)
    deadline = time.monotonic() + WATCH_S
    while time.monotonic() < deadline:
        assert cache.catalog_keys() == ["catalog:product:1", "catalog:recent", "catalog:views:1"]
        time.sleep(STEP_S)
