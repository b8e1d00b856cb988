import psycopg2
import pytest
import redis

from ledger import settings


@pytest.fixture
def conn():
    """A connection to this stack's database, with empty ledger tables whose ids restart at 1."""
    connection = psycopg2.connect(settings.dsn())
    with connection.cursor() as cur:
        cur.execute("TRUNCATE entries, accounts RESTART IDENTITY CASCADE")
    connection.commit()
    yield connection
    connection.close()


@pytest.fixture
def broker():
    """The stack's Redis, emptied."""
    client = redis.Redis.from_url(settings.broker_url())
    client.flushdb()
    yield client
    client.close()
