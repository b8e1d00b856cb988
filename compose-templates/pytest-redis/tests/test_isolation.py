"""Tests that assume they own the Redis database (break when it is shared)."""
import time

import pytest

from scoreboard.jobs import Queue
from scoreboard.leaderboard import Leaderboard

pytestmark = pytest.mark.isolation


def test_database_holds_only_our_keys(r):
    Leaderboard(r, "weekly").submit("ann", 1)
    Queue(r, "mail").put({})
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        assert sorted(r.keys("*")) == ["board:weekly", "queue:mail:pending"]
        time.sleep(0.05)


def test_global_board_counts_every_submission(r):
    board = Leaderboard(r, "global")
    for i in range(10):
        board.add("team", 1)
        assert board.score("team") == i + 1
        time.sleep(0.03)


def test_queue_length_is_exact(r):
    q = Queue(r, "global")
    for i in range(10):
        q.put({"i": i})
        assert len(q) == i + 1
        time.sleep(0.03)


def test_flushed_database_is_empty(r):
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        assert r.dbsize() == 0
        time.sleep(0.05)
