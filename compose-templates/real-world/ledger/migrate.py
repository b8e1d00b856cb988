"""The migration job: seeds reference data once, records it, and exits 0."""

import sys

from ledger import settings

MIGRATION = "0001_currencies"
CURRENCIES = (("EUR", 2), ("USD", 2), ("JPY", 0))


def apply(conn):
    """Applies the data migration (idempotent); returns True when it ran now."""
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        cur.execute(
            "CREATE TABLE IF NOT EXISTS currencies (code CHAR(3) PRIMARY KEY,"
            " exponent SMALLINT NOT NULL)"
        )
        cur.execute("SELECT 1 FROM schema_migrations WHERE name = %s", (MIGRATION,))
        if cur.fetchone():
            conn.commit()
            return False
        cur.executemany(
            "INSERT INTO currencies (code, exponent) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            CURRENCIES,
        )
        cur.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (MIGRATION,))
    conn.commit()
    return True


def main():
    import psycopg2

    conn = psycopg2.connect(settings.dsn())
    try:
        ran = apply(conn)
    finally:
        conn.close()
    print(f"migrate: {MIGRATION} {'applied' if ran else 'already applied'}", file=sys.stderr)


if __name__ == "__main__":
    main()
