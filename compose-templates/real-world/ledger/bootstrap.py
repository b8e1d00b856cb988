"""Run by the image entrypoint: wait for PostgreSQL, create the schema, write
$LEDGER_RUNTIME_DIR/bootstrap.json. Exits non-zero when the database never answers."""

import json
import os
import socket
import sys
import time

from ledger import schema, settings


def wait_for(connect, timeout, pause=0.2, clock=time.monotonic, sleep=time.sleep):
    """Calls connect() until it returns, for at most `timeout` seconds; returns the result
    and the number of failed attempts. Re-raises the last error once time is up."""
    deadline = clock() + timeout
    failures = 0
    while True:
        try:
            return connect(), failures
        except Exception:
            failures += 1
            if clock() >= deadline:
                raise
            sleep(pause)


def main():
    import psycopg2

    dsn = settings.dsn()
    conn, failures = wait_for(lambda: psycopg2.connect(dsn, connect_timeout=3), timeout=60)
    try:
        schema.create(conn)
    finally:
        conn.close()
    folder = settings.runtime_dir()
    os.makedirs(folder, exist_ok=True)
    info = {"hostname": socket.gethostname(), "pid": os.getpid(), "db_waits": failures}
    with open(os.path.join(folder, "bootstrap.json"), "w") as f:
        json.dump(info, f)
    print(f"ledger bootstrap: schema ready after {failures} failed attempt(s)", file=sys.stderr)


if __name__ == "__main__":
    main()
