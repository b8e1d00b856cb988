"""Catalogue change events over PostgreSQL LISTEN/NOTIFY on one fixed channel."""
import json
import select

from django.db import connection

CHANNEL = "catalog_events"


def publish(kind, **payload):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, json.dumps({"kind": kind, **payload}, sort_keys=True)])


def listen(raw_connection):
    """Subscribe a dedicated psycopg2 connection (autocommit) to the channel."""
    raw_connection.autocommit = True
    with raw_connection.cursor() as cursor:
        cursor.execute(f"LISTEN {CHANNEL}")


def drain(raw_connection, timeout_s):
    """Collect every notification that arrives within timeout_s seconds."""
    received = []
    if select.select([raw_connection], [], [], timeout_s) != ([], [], []):
        raw_connection.poll()
    while raw_connection.notifies:
        received.append(json.loads(raw_connection.notifies.pop(0).payload))
    return received
