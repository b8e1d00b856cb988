import pytest

import scoreboard


@pytest.fixture
def r():
    """The Redis database, emptied before the test: tests assume they own it."""
    client = scoreboard.connect()
    client.flushdb()
    yield client
    client.flushdb()
