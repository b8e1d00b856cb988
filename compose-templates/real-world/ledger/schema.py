"""The schema the entrypoint creates before any command runs."""

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS accounts (
        id SERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        currency CHAR(3) NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS entries (
        id SERIAL PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        amount_cents BIGINT NOT NULL,
        memo TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE IF NOT EXISTS bootstrapped_containers (
        hostname TEXT PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL DEFAULT now()
    )""",
)

# Several containers of one stack (app, migrate, worker) bootstrap at the same time;
# concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's catalog, so the
# statements run under one advisory lock.
LOCK_KEY = 4242


def create(conn):
    """Creates the tables (idempotent) and records this container as bootstrapped."""
    import socket

    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            for statement in STATEMENTS:
                cur.execute(statement)
            cur.execute(
                "INSERT INTO bootstrapped_containers (hostname) VALUES (%s)"
                " ON CONFLICT DO NOTHING",
                (socket.gethostname(),),
            )
            conn.commit()
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            conn.commit()
