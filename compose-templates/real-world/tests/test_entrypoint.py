"""What the image ENTRYPOINT prepares before `exec "$@"`: only there when the test command
runs through it, as `docker compose run app pytest` does."""

import json
import os
import socket

from ledger import settings


def test_entrypoint_exported_the_dsn():
    dsn = os.environ.get("LEDGER_DSN")
    assert dsn, "LEDGER_DSN is exported by the image entrypoint"
    assert dsn == "postgresql://ledger:ledger@db:5432/ledger"


def test_entrypoint_wrote_bootstrap_file_for_this_container():
    path = os.path.join(settings.runtime_dir(), "bootstrap.json")
    with open(path) as f:
        info = json.load(f)
    assert info["hostname"] == socket.gethostname()
    assert info["db_waits"] >= 0


def test_entrypoint_exported_the_runtime_dir():
    assert os.environ.get("LEDGER_RUNTIME_DIR") == "/tmp/ledger-runtime"


def test_entrypoint_created_the_schema(conn):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' ORDER BY table_name"
        )
        tables = {row[0] for row in cur.fetchall()}
    assert {"accounts", "entries", "bootstrapped_containers"} <= tables


def test_entrypoint_recorded_this_container(conn):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM bootstrapped_containers WHERE hostname = %s",
            (socket.gethostname(),),
        )
        assert cur.fetchone()[0] == 1
