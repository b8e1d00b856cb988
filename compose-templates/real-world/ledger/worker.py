"""The background worker: applies queued transfers to the ledger."""

import sys

from ledger import accounts, jobs, settings


def handle(conn, job):
    """Applies one job; returns a short result line."""
    if job["kind"] != "transfer":
        raise accounts.LedgerError(f"unknown job kind {job['kind']!r}")
    p = job["payload"]
    accounts.transfer(conn, p["source"], p["target"], p["amount_cents"])
    return f"{job['id']}: moved {p['amount_cents']} from {p['source']} to {p['target']}"


def process_one(conn, client, timeout=1):
    """Takes one job from the queue and applies it; None when the queue stayed empty."""
    job = jobs.dequeue(client, timeout=timeout)
    return None if job is None else handle(conn, job)


def main():  # pragma: no cover - the long-running service, not exercised by the tests
    import psycopg2
    import redis

    conn = psycopg2.connect(settings.dsn())
    client = redis.Redis.from_url(settings.broker_url())
    while True:
        try:
            line = process_one(conn, client, timeout=5)
        except accounts.LedgerError as e:
            line = f"rejected: {e}"
        if line:
            print(line, file=sys.stderr)


if __name__ == "__main__":
    main()
