"""The migrate service is a plain dependency that runs once and exits 0. Compose starts it
but does not wait for it to finish, so these tests wait (bounded) for its result."""

import time

import pytest

from ledger import migrate


@pytest.fixture
def migrated(conn):
    deadline = time.monotonic() + 30
    while True:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
            if cur.fetchone()[0]:
                cur.execute("SELECT count(*) FROM schema_migrations WHERE name = %s", (migrate.MIGRATION,))
                if cur.fetchone()[0] == 1:
                    conn.commit()
                    return conn
        conn.commit()
        assert time.monotonic() < deadline, "the migrate service never applied its migration"
        time.sleep(0.2)


def test_migration_job_seeded_currencies(migrated):
    with migrated.cursor() as cur:
        cur.execute("SELECT code, exponent FROM currencies ORDER BY code")
        assert cur.fetchall() == [("EUR", 2), ("JPY", 0), ("USD", 2)]


def test_migration_is_idempotent(migrated):
    assert migrate.apply(migrated) is False
